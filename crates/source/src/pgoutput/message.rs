//! pgoutput messages (protocol version 1), borrowing their strings and values from the bytes of
//! the XLogData they were parsed from.

use walproof_core::{Lsn, ReplicaIdentity};

/// One pgoutput message, as [`parse_message`](super::parse_message) reads it from the payload
/// of an XLogData frame.
///
/// Strings and column values borrow from that payload: nothing is copied until a caller decides
/// to keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A transaction starts (`B`).
    Begin {
        /// The LSN of the transaction's commit record.
        final_lsn: Lsn,
        /// Commit time in microseconds since 2000-01-01 (the Postgres epoch), as sent; see
        /// [`pg_time_to_unix_us`](super::pg_time_to_unix_us).
        commit_time: i64,
        /// The transaction's id.
        xid: u32,
    },
    /// A transaction committed (`C`).
    Commit {
        /// Flags; currently unused by Postgres (0).
        flags: u8,
        /// The LSN of the commit record: the transaction's identity.
        commit_lsn: Lsn,
        /// The LSN just past the commit record.
        end_lsn: Lsn,
        /// Commit time in microseconds since 2000-01-01, as sent.
        commit_time: i64,
    },
    /// The transaction was replicated from another node (`O`).
    Origin {
        /// The commit LSN on the origin server.
        commit_lsn: Lsn,
        /// The origin's name.
        name: &'a str,
    },
    /// The shape of a relation, sent before its first change in a session and after it changes
    /// (`R`).
    Relation(RelationMessage<'a>),
    /// A non-builtin data type used by a relation that follows (`Y`).
    Type {
        /// The type's OID.
        id: u32,
        /// Schema of the type; empty for `pg_catalog`.
        namespace: &'a str,
        /// The type's name.
        name: &'a str,
    },
    /// A row was inserted (`I`).
    Insert {
        /// OID of the row's relation.
        relation: u32,
        /// The new row.
        new: TupleData<'a>,
    },
    /// A row was updated (`U`).
    Update {
        /// OID of the row's relation.
        relation: u32,
        /// The old key (when a key column changed) or the whole old row (REPLICA IDENTITY
        /// FULL); absent otherwise.
        old: Option<OldTuple<'a>>,
        /// The new row; unchanged TOASTed columns are [`TupleColumn::UnchangedToast`].
        new: TupleData<'a>,
    },
    /// A row was deleted (`D`).
    Delete {
        /// OID of the row's relation.
        relation: u32,
        /// The old key, or the whole old row under REPLICA IDENTITY FULL.
        old: OldTuple<'a>,
    },
    /// Relations were truncated (`T`).
    Truncate {
        /// `TRUNCATE … CASCADE` (option bit 1).
        cascade: bool,
        /// `TRUNCATE … RESTART IDENTITY` (option bit 2).
        restart_identity: bool,
        /// OIDs of the truncated relations.
        relations: Vec<u32>,
    },
    /// A logical decoding message from `pg_logical_emit_message` (`M`).
    Message {
        /// Emitted inside a transaction, and so delivered with it; otherwise delivered at once.
        transactional: bool,
        /// The LSN of the message.
        lsn: Lsn,
        /// The message's prefix, which names its sender.
        prefix: &'a str,
        /// The message's bytes.
        content: &'a [u8],
    },
}

/// The shape of a relation (`R`): its identity and its columns in attribute order (generated
/// columns are not sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationMessage<'a> {
    /// The relation's OID, by which changes refer to it.
    pub id: u32,
    /// Schema of the relation; empty for `pg_catalog`.
    pub namespace: &'a str,
    /// The relation's name.
    pub name: &'a str,
    /// How old rows of the relation are identified.
    pub replica_identity: ReplicaIdentity,
    /// Columns in attribute order.
    pub columns: Vec<RelationColumn<'a>>,
}

/// One column of a [`RelationMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn<'a> {
    /// Part of the replica identity key (flag bit 1).
    pub key: bool,
    /// The column's name.
    pub name: &'a str,
    /// The column's `pg_type` OID.
    pub type_oid: u32,
    /// The column's `atttypmod`; -1 when it has none.
    pub type_modifier: i32,
}

/// The columns of one row, in attribute order of its relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleData<'a> {
    /// One entry per column.
    pub columns: Vec<TupleColumn<'a>>,
}

/// One column value of a [`TupleData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleColumn<'a> {
    /// SQL NULL (`n`).
    Null,
    /// A TOASTed value that did not change and was not sent (`u`). Never a value: whoever
    /// needs it resolves it from the old tuple or its own state.
    UnchangedToast,
    /// The value's text output (`t`), under the walsender's session settings.
    Text(&'a str),
    /// The value's binary send format (`b`), only when the stream was started with `binary`.
    Binary(&'a [u8]),
}

/// The old tuple sent with an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple<'a> {
    /// Only the replica identity key columns carry data (`K`); the others are NULL.
    Key(TupleData<'a>),
    /// The whole old row (`O`), under REPLICA IDENTITY FULL.
    Full(TupleData<'a>),
}

impl<'a> OldTuple<'a> {
    /// The tuple, whichever kind it is.
    pub fn tuple(&self) -> &TupleData<'a> {
        match self {
            OldTuple::Key(tuple) | OldTuple::Full(tuple) => tuple,
        }
    }
}
