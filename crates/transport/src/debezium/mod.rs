//! Debezium-compatible change events: a transaction as Kafka records (pure; see `DEBEZIUM.md`).

mod changes;
mod envelope;
mod error;
mod heartbeat;
mod json;
mod options;
mod partition;
mod record;
mod table;
mod temporal;
mod transaction;
mod value;

pub use changes::{TransactionEncoder, encode_transaction};
pub use error::{DebeziumError, Result};
pub use heartbeat::{heartbeat_record, heartbeat_topic};
pub use options::DebeziumOptions;
pub use partition::{murmur2, partition_for};
pub use record::{Record, TransactionRecords};
