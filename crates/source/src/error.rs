//! The decoder's errors, split into what a retry can cure and what needs a person.

use walproof_core::Lsn;
use walproof_core::schema_change::SchemaChangeError;
use walproof_transport::TransportError;

use crate::pending::SpillError;
use crate::pgoutput::ParseError;
use crate::tuple::TupleError;

/// Result alias of the decoder.
pub type Result<T, E = DecoderError> = std::result::Result<T, E>;

/// Why the decoder stopped.
#[derive(Debug, thiserror::Error)]
pub enum DecoderError {
    /// The source, or Kafka, cannot be reached right now; the decoder retries with backoff.
    #[error("{what} is unavailable: {reason}")]
    Unavailable {
        /// What could not be reached.
        what: String,
        /// Why.
        reason: String,
    },
    /// Another decoder holds the slot.
    #[error(
        "another walproof decoder is running on slot {slot} ({detail}); refusing to start a second one"
    )]
    AlreadyRunning {
        /// The slot.
        slot: String,
        /// Who holds it.
        detail: String,
    },
    /// The replication slot does not exist.
    #[error(
        "replication slot {slot} does not exist in database {database}; create it with `walproof setup`"
    )]
    MissingSlot {
        /// The slot.
        slot: String,
        /// The database.
        database: String,
    },
    /// The slot exists but is not a pgoutput slot of this database.
    #[error(
        "replication slot {slot} uses plugin {plugin} in database {database}; walproof needs a pgoutput slot in this database"
    )]
    WrongSlot {
        /// The slot.
        slot: String,
        /// Its plugin.
        plugin: String,
        /// Its database.
        database: String,
    },
    /// The publication does not exist.
    #[error("publication {publication} does not exist; create it with `walproof setup`")]
    MissingPublication {
        /// The publication.
        publication: String,
    },
    /// A pgoutput message that does not parse. Nothing at or after `lsn` is confirmed.
    #[error("malformed pgoutput message at {lsn}: {source}")]
    Malformed {
        /// WAL position of the message.
        lsn: Lsn,
        /// What is wrong with it.
        source: ParseError,
    },
    /// A DDL-capture message (schema change or post-DDL rows) that does not parse or fit.
    #[error("schema change at {lsn}: {source}")]
    SchemaChange {
        /// WAL position of the message.
        lsn: Lsn,
        /// What is wrong with it.
        source: SchemaChangeError,
    },
    /// A tuple that does not fit its relation.
    #[error("change at {lsn}: {source}")]
    Tuple {
        /// WAL position of the change.
        lsn: Lsn,
        /// What is wrong.
        source: TupleError,
    },
    /// The stream broke the protocol's order (a change outside a transaction, a change to a
    /// relation never described, a Commit that does not match its Begin).
    #[error("replication stream out of order at {lsn}: {problem}")]
    Protocol {
        /// WAL position.
        lsn: Lsn,
        /// What happened.
        problem: String,
    },
    /// A published table was truncated, rewritten or dropped after the snapshot's consistent
    /// point, or an exclusive lock request on one is waiting for the copy, so the copy cannot
    /// read the tables as they were; the decoder takes the snapshot again.
    #[error(
        "the initial snapshot at {consistent_point} cannot be read consistently: {reason}; taking it again"
    )]
    SnapshotInvalidated {
        /// The snapshot's consistent point.
        consistent_point: Lsn,
        /// What happened, naming the tables.
        reason: String,
    },
    /// Spilling a transaction to disk failed.
    #[error(transparent)]
    Spill(#[from] SpillError),
    /// Writing the ledger failed for good (a broken chain, a wrong topic).
    #[error(transparent)]
    Ledger(TransportError),
    /// A source SQL statement failed.
    #[error("source query failed ({what}): {source}")]
    Sql {
        /// What the query was for.
        what: &'static str,
        /// The error.
        source: tokio_postgres::Error,
    },
}

impl DecoderError {
    /// Whether waiting and reconnecting can cure it.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DecoderError::Unavailable { .. } | DecoderError::SnapshotInvalidated { .. }
        )
    }

    /// Classifies a ledger error: a broker that does not answer is retryable, the rest is not.
    pub fn ledger(error: TransportError) -> DecoderError {
        match error {
            TransportError::Kafka { .. } | TransportError::Timeout { .. } => {
                DecoderError::Unavailable {
                    what: "Kafka".into(),
                    reason: error.to_string(),
                }
            }
            other => DecoderError::Ledger(other),
        }
    }

    /// Classifies a SQL error: a closed connection or a server going away is retryable.
    pub fn sql(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> DecoderError {
        move |source| {
            let server_going_away = source.code().is_some_and(|code| {
                matches!(
                    code.code(),
                    "57P01" | "57P02" | "57P03" | "08006" | "08001" | "08004"
                )
            });
            if source.is_closed() || source.code().is_none() || server_going_away {
                DecoderError::Unavailable {
                    what: "the source database".into(),
                    reason: format!("{what}: {source}"),
                }
            } else {
                DecoderError::Sql { what, source }
            }
        }
    }
}
