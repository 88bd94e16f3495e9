//! Connection settings shared by every Kafka client walproof creates.

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// Where the brokers are, what the topics are called, and extra librdkafka properties.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic name prefix; topics are `<prefix>.ledger`, `<prefix>.<schema>.<table>`, ….
    pub topic_prefix: String,
    /// Extra librdkafka properties (security, tuning), applied last.
    pub properties: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Settings with no extra properties.
    pub fn new(brokers: impl Into<String>, topic_prefix: impl Into<String>) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            topic_prefix: topic_prefix.into(),
            properties: Vec::new(),
        }
    }

    /// `<prefix>.ledger`: one partition, the hash-chained source of truth.
    pub fn ledger_topic(&self) -> String {
        format!("{}.ledger", self.topic_prefix)
    }

    /// A librdkafka config with the brokers and the extra properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Client context of walproof's ledger readers: librdkafka errors go to `tracing`, except the
/// end-of-partition notice, which readers ask for and handle as a normal condition.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for ReaderContext {}
