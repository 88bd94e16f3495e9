//! Kafka transport: the ledger topic and the topics built beside it.
//!
//! **Consumes** encoded ledger entries from the decoder, and `<prefix>.ledger` records for the
//! stages downstream.
//!
//! **Produces** `<prefix>.ledger`: one partition, hash-chained, one writer, idempotent producer
//! with `acks=all`.
//!
//! **Guarantees** exactly-once in effect without Kafka transactions: the writer resumes after
//! the last complete transaction in the ledger's tail, voids an interrupted one with an abandon
//! marker, and reports acknowledgements in production order so the source is confirmed only up
//! to what the broker holds; readers accept only records that extend the chain they hold.
//!
//! # Layout
//! - [`debezium`]: a committed transaction as Debezium-compatible change events, tombstones
//!   and BEGIN/END records (pure encoding; the type mapping is in `DEBEZIUM.md`).
//! - [`kafka`]: connection settings and topic names.
//! - [`ledger`]: the single writer, the tail it resumes from, and the verifying reader.
//! - [`publisher`]: the ledger as Debezium events, at-least-once.
//! - [`roots`]: the `<prefix>.roots` topic the committer publishes, one record per commit LSN,
//!   read whole or followed as it grows.
//! - [`attestations`]: the `<prefix>.attestations` topic validators publish their signed roots to.
//! - `topic`: what those two share: a one-partition topic of string-keyed records, its writer
//!   and its read to the end.
//! - [`error`]: typed errors.

pub mod attestations;
pub mod debezium;
pub mod error;
pub mod kafka;
pub mod ledger;
pub mod publisher;
pub mod roots;
mod topic;

pub use error::{Result, TransportError};
pub use kafka::KafkaSettings;
