//! walproof's shared data contracts: what every stage agrees on.
//!
//! Consumes nothing and produces nothing on its own; every other crate builds on it.
//!
//! - [`Lsn`]: WAL positions in Postgres's `X/Y` form. A transaction's identity is its commit LSN.
//! - [`Value`], [`Row`], [`Change`], [`Relation`]: change records with canonical text values,
//!   NULL, and the explicit "unchanged TOAST" marker.
//! - [`Transaction`], [`LedgerEntry`]: a committed transaction and the ledger entries it is
//!   split into, with the versioned Protobuf encoding checked in under `proto/`.
//! - [`SealedEntry`], [`Chain`]: the hash chain that makes a gap, an edit or a reorder visible.
//! - [`Reassembler`]: whole transactions from ledger entries, abandoned runs voided.
//! - [`schema_change`]: DDL captured on the source, as it travels in the stream.
//! - [`leaf`]: row keys and leaves for the Sparse Merkle Tree, pinned by `testdata/vectors.json`.
//! - [`ident`]: identifiers, literals and table names quoted as Postgres quotes them.
//! - [`pg_text`]: canonical text values parsed: dates, times, timestamps, intervals, arrays,
//!   `numeric` and `money`, for the stages that re-encode them.
//!
//! Guarantees: decoding never panics, whatever the bytes; a [`DecodeError`] or [`ChainBreak`]
//! names the offending field, value or hash.

pub mod chain;
pub mod change;
pub mod digest;
pub mod ident;
pub mod leaf;
pub mod ledger;
pub mod lsn;
pub mod pg_text;
pub mod reassembly;
pub mod schema_change;
pub mod value;

pub use chain::{Chain, ChainBreak, SealedEntry};
pub use change::{Change, Column, OldRow, Op, Relation, RelationId, ReplicaIdentity, Row};
pub use digest::{Digest, DigestMap, DigestSet};
pub use ledger::{
    DecodeError, EncodedEntry, EntryBody, LedgerEntry, PartSplitter, Transaction, TransactionPart,
};
pub use lsn::Lsn;
pub use reassembly::{OrderError, Progress, Reassembled, Reassembler};
pub use value::{CANONICAL_SESSION_SETTINGS, Value};
