//! Errors of the Debezium encoding.

use walproof_core::{Lsn, RelationId};

/// Result alias of the Debezium encoding.
pub type Result<T, E = DebeziumError> = std::result::Result<T, E>;

/// A transaction that cannot be encoded. Every variant is fatal for that transaction: the
/// same input always fails the same way, so retrying does not help. None should occur for a
/// transaction the decoder assembled; each names what is wrong so the report can say where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DebeziumError {
    /// The options cannot produce records.
    #[error("invalid Debezium options: {problem}")]
    InvalidOptions {
        /// What is wrong.
        problem: String,
    },
    /// A change refers to a relation the transaction does not describe.
    #[error("transaction {commit_lsn}, change {ordinal}: relation {relation} is not described")]
    UnknownRelation {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change's ordinal.
        ordinal: u32,
        /// The missing relation.
        relation: RelationId,
    },
    /// A row is not as wide as its relation.
    #[error(
        "transaction {commit_lsn}, change {ordinal}: a row of {table} has {got} values for {expected} columns"
    )]
    RowWidth {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change's ordinal.
        ordinal: u32,
        /// `schema.table`.
        table: String,
        /// The relation's column count.
        expected: usize,
        /// The row's value count.
        got: usize,
    },
    /// A value's text is not valid text output of its column's type.
    #[error(
        "transaction {commit_lsn}, change {ordinal}: {table}.{column} (type oid {type_oid}) value {value:?} is invalid: {reason}"
    )]
    InvalidValue {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change's ordinal.
        ordinal: u32,
        /// `schema.table`.
        table: String,
        /// The column.
        column: String,
        /// The column's `pg_type` OID.
        type_oid: u32,
        /// The offending text.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A key column of an update is an unchanged-TOAST marker and no old tuple carries it,
    /// so the event's key cannot be built.
    #[error(
        "transaction {commit_lsn}, change {ordinal}: key column {table}.{column} is unchanged and no old tuple carries it"
    )]
    KeyUnavailable {
        /// The transaction.
        commit_lsn: Lsn,
        /// The change's ordinal.
        ordinal: u32,
        /// `schema.table`.
        table: String,
        /// The key column.
        column: String,
    },
}
