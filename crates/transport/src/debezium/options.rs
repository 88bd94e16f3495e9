//! What the Debezium encoding is configured with.

use super::error::{DebeziumError, Result};

/// Settings of the Debezium encoding; [`DebeziumOptions::new`] gives Debezium's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebeziumOptions {
    /// Topic prefix (Debezium's `topic.prefix`): topics are `<prefix>.<schema>.<table>` and
    /// `<prefix>.transaction`; Connect schema names start with it too.
    pub topic_prefix: String,
    /// `source.name` (Debezium's logical server name); usually the topic prefix.
    pub server_name: String,
    /// `source.db`: the source database's name.
    pub database: String,
    /// Partitions of every per-table topic (at least 1). Records are assigned to them as the
    /// Java Kafka client's default partitioner would.
    pub partitions: u32,
    /// Whether a delete is followed by a tombstone (Debezium's `tombstones.on.delete`,
    /// default true).
    pub tombstones: bool,
    /// Whether keys and values carry their Connect schema as JsonConverter's
    /// `schemas.enable=true` writes them (`{"schema": …, "payload": …}`, Kafka Connect's
    /// default), or the payload alone.
    pub schemas: bool,
}

impl DebeziumOptions {
    /// Options with Debezium's defaults: `server_name` = `topic_prefix`, one partition,
    /// tombstones on, schemas on.
    pub fn new(topic_prefix: impl Into<String>, database: impl Into<String>) -> DebeziumOptions {
        let topic_prefix = topic_prefix.into();
        DebeziumOptions {
            server_name: topic_prefix.clone(),
            topic_prefix,
            database: database.into(),
            partitions: 1,
            tombstones: true,
            schemas: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let problem = if self.partitions == 0 {
            "partitions must be at least 1"
        } else if self.topic_prefix.is_empty() {
            "the topic prefix must not be empty"
        } else {
            return Ok(());
        };
        Err(DebeziumError::InvalidOptions {
            problem: problem.to_owned(),
        })
    }

    /// `<prefix>.transaction`, where BEGIN and END records go.
    pub fn transaction_topic(&self) -> String {
        super::table::topic_name(&format!("{}.transaction", self.topic_prefix))
    }
}
