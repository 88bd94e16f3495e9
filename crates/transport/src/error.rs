//! Errors of the Kafka transport.

use rdkafka::error::KafkaError;
use walproof_core::{ChainBreak, DecodeError, Lsn};

/// Result alias of this crate.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;

/// What went wrong talking to Kafka or reading the ledger.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The broker or client failed; usually retryable by restarting the stage.
    #[error("Kafka {operation} failed: {source}")]
    Kafka {
        /// What was being done.
        operation: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The ledger topic exists with more than one partition, so it has no total order.
    #[error("ledger topic {topic} has {partitions} partitions; the ledger must have exactly one")]
    LedgerPartitions {
        /// The topic.
        topic: String,
        /// How many partitions it has.
        partitions: usize,
    },
    /// A record of the ledger is not a valid entry.
    #[error("ledger record at offset {offset} of {topic} is invalid: {source}")]
    InvalidRecord {
        /// The topic.
        topic: String,
        /// The record's offset.
        offset: i64,
        /// What is wrong with it.
        source: DecodeError,
    },
    /// A record does not extend the chain: a gap, a reorder, an edit or a foreign writer.
    #[error("ledger record at offset {offset} of {topic} does not extend the chain: {source}")]
    ChainBroken {
        /// The topic.
        topic: String,
        /// The record's offset.
        offset: i64,
        /// The break.
        source: Box<ChainBreak>,
    },
    /// Entries out of their required order (identity rules of design.md).
    #[error("ledger record at offset {offset} of {topic}: {problem}")]
    OutOfOrder {
        /// The topic.
        topic: String,
        /// The record's offset.
        offset: i64,
        /// What rule it breaks.
        problem: String,
    },
    /// A record of the roots topic that does not parse or does not follow the one before it.
    #[error("root record at offset {offset} of {topic}: {problem}")]
    InvalidRoot {
        /// The topic.
        topic: String,
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        problem: String,
    },
    /// A transaction was handed to the writer at or below what the ledger already holds.
    #[error(
        "transaction {commit_lsn} is not after the ledger's last complete transaction {last_complete}"
    )]
    NotAfterTail {
        /// The offered commit LSN.
        commit_lsn: Lsn,
        /// The ledger's last complete commit LSN.
        last_complete: Lsn,
    },
    /// A transaction could not be expressed as Debezium events.
    #[error("Debezium encoding failed: {0}")]
    Debezium(Box<crate::debezium::DebeziumError>),
    /// The broker did not answer in time.
    #[error("timed out after {seconds} s: {operation}")]
    Timeout {
        /// What was being done.
        operation: String,
        /// How long we waited.
        seconds: u64,
    },
    /// A task of this crate ended without saying why (it panicked).
    #[error("{0} stopped unexpectedly")]
    Stopped(&'static str),
}

impl TransportError {
    pub(crate) fn kafka(operation: impl Into<String>) -> impl FnOnce(KafkaError) -> TransportError {
        let operation = operation.into();
        move |source| TransportError::Kafka { operation, source }
    }
}
