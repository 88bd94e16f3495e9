//! Decoder: the source side of walproof.
//!
//! **Consumes** pgoutput (protocol version 1) from a logical replication slot on the source
//! Postgres, through `pgwire-replication`, on a connection with walproof's canonical session
//! settings.
//!
//! **Produces** committed source transactions, whole and in strictly increasing commit-LSN
//! order, with every change numbered by its ordinal.
//!
//! **Guarantees** that only committed transactions are emitted, that unchanged TOASTed values
//! are never invented (filled from the old tuple under REPLICA IDENTITY FULL, otherwise marked
//! unchanged), and that the slot's `confirmed_flush_lsn` never passes what the ledger has durably
//! accepted.
//!
//! # Layout
//! - [`decoder`]: the event loop: stream, assemble, write the ledger, confirm the slot.
//! - [`pgoutput`]: pgoutput messages parsed from bytes (pure functions, fuzzed).
//! - [`relation`]: the relations the stream described, with their key columns.
//! - [`tuple`]: pgoutput tuples to rows of canonical values; unchanged TOAST kept explicit.
//! - [`pending`]: a transaction between Begin and Commit, spilled to disk past a threshold.
//! - [`snapshot`]: the initial snapshot at the slot's consistent point, copied in parallel.
//! - [`connection`]: the source URL, its SQL and replication sessions.
//! - [`session`]: the canonical session settings.
//! - [`setup`]: `walproof setup`: checks, publication, slot, keyability of each table.
//! - [`metrics`], [`error`].

pub mod connection;
pub mod decoder;
pub mod error;
pub mod metrics;
pub mod pending;
pub mod pgoutput;
pub mod relation;
pub mod session;
pub mod setup;
pub mod snapshot;
pub mod tuple;

pub use decoder::{DecoderConfig, run};
pub use error::DecoderError;
