//! Why the committer cannot apply a transaction. Every error names the commit LSN.

use walproof_core::Lsn;
use walproof_core::schema_change::SchemaChangeError;

/// Result alias of the committer.
pub type Result<T, E = CommitError> = std::result::Result<T, E>;

/// A transaction the committer cannot apply; no root is produced for it.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The transaction does not fit the state (a change to an undescribed relation, a row of
    /// the wrong width, an unchanged value with no earlier row, a delete of a row not held).
    #[error("transaction {commit_lsn}, change {ordinal}: {problem}")]
    Change {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change.
        ordinal: u32,
        /// What is wrong.
        problem: String,
    },
    /// A schema-change message that does not parse.
    #[error("transaction {commit_lsn}: {source}")]
    SchemaChange {
        /// The transaction.
        commit_lsn: Lsn,
        /// What is wrong.
        source: SchemaChangeError,
    },
    /// The ledger could not be read or failed verification (a broken chain, an unknown
    /// version, a record out of order).
    #[error(transparent)]
    Ledger(Box<walproof_transport::TransportError>),
    /// The roots topic holds a root the ledger does not reproduce (or lacks one).
    #[error(
        "the roots topic disagrees with the ledger at {commit_lsn}: published {}, recomputed {recomputed}",
        published.as_deref().unwrap_or("nothing")
    )]
    Disagrees {
        /// The transaction.
        commit_lsn: walproof_core::Lsn,
        /// What the topic holds there.
        published: Option<String>,
        /// What the ledger gives.
        recomputed: walproof_core::Digest,
    },
    /// There is no ledger to rebuild from.
    #[error(
        "topic {topic} does not exist: no ledger to compute roots from (is the topic prefix right?)"
    )]
    NoLedger {
        /// The ledger topic looked for.
        topic: String,
    },
    /// The tree failed (a proof asked for mid-transaction, a stored tree that does not hash
    /// to its root).
    #[error("the state tree failed: {0}")]
    Tree(String),
    /// A proof that cannot be given: an unknown table, a wrong number of key values, an LSN
    /// outside the roots kept.
    #[error("cannot prove: {0}")]
    NoProof(String),
    /// The durable store failed or is damaged; the message names the file and place.
    #[error("the committer's store: {0}")]
    Store(String),
}

impl CommitError {
    /// Wraps a ledger error.
    pub fn ledger(error: walproof_transport::TransportError) -> CommitError {
        CommitError::Ledger(Box::new(error))
    }
}
