//! A private Kafka topic prefix per test; its topics are deleted afterwards.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::names::unique_name;
use crate::stack::Stack;

/// A topic prefix owned by one test (`wp_<test>_<pid>_<n>`). Dropping it deletes every topic
/// that starts with the prefix.
#[derive(Debug)]
pub struct TestTopics {
    prefix: String,
    brokers: String,
}

impl TestTopics {
    /// A new prefix named after `test`.
    pub fn new(stack: &Stack, test: &str) -> TestTopics {
        TestTopics {
            prefix: unique_name(test),
            brokers: stack.kafka_brokers.clone(),
        }
    }

    /// The prefix, as walproof's `--topic-prefix` would take it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.<suffix>`.
    pub fn topic(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// A client config with the stack's brokers.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config
    }

    /// Creates `<prefix>.<suffix>` with `partitions` partitions, replication factor 1.
    pub async fn create(&self, suffix: &str, partitions: i32) -> anyhow::Result<String> {
        let name = self.topic(suffix);
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let results = admin
            .create_topics(
                &[NewTopic::new(&name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await?;
        for result in results {
            result.map_err(|(topic, code)| anyhow::anyhow!("creating topic {topic}: {code}"))?;
        }
        Ok(name)
    }
}

impl Drop for TestTopics {
    fn drop(&mut self) {
        let (prefix, config) = (format!("{}.", self.prefix), self.client_config());
        // Debezium's heartbeat topic carries the prefix at its end.
        let heartbeat = format!("__debezium-heartbeat.{}", self.prefix);
        crate::run_cleanup(format!("topics {prefix}*"), move || async move {
            let admin: AdminClient<DefaultClientContext> = config.create()?;
            let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(5))?;
            let ours: Vec<String> = metadata
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .filter(|name| name.starts_with(&prefix) || *name == heartbeat)
                .collect();
            if !ours.is_empty() {
                let names: Vec<&str> = ours.iter().map(String::as_str).collect();
                admin.delete_topics(&names, &AdminOptions::new()).await?;
            }
            Ok(())
        });
    }
}
