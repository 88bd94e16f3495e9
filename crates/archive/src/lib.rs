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
//! Status: the contract only; the archiver arrives with the archiver issue.
