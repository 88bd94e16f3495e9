//! Archiver: the ledger as Parquet, per table, queryable by any engine.
//!
//! **Consumes** `<prefix>.ledger`, whole transactions only.
//!
//! **Produces** Parquet files per table laid out Hive-style on Google Cloud Storage or a local
//! directory, named by LSN range, each with a manifest tying it to the ledger hash and SMT root
//! of its last LSN.
//!
//! **Guarantees** every change archived exactly once: a retry rewrites the same object.
//!
//! - [`columns`]: Postgres types as Arrow types, canonical text as Arrow values.
//! - [`rows`]: one table's archived rows: its columns plus what each change was.
//! - [`file`]: a table's rows as a Parquet file, and the manifest tying it to the ledger and
//!   the roots.
//! - [`objects`]: where objects are kept: a local directory or a Google Cloud Storage bucket.
//! - [`archiver`]: whole transactions rolled into files by table, shape and date, named by LSN
//!   range, with an index that makes a retry rewrite the same objects.
//! - [`seal`]: encryption at rest: objects sealed with AES-256-GCM, keys derived (HKDF-SHA256)
//!   from one secret.
//! - [`run`]: the service following the ledger (`walproof archive`).

pub mod archiver;
pub mod columns;
pub mod file;
pub mod objects;
pub mod rows;
pub mod run;
pub mod seal;
