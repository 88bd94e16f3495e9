//! walproof's benchmarks: figures and ratios against a baseline measured in the same run, on
//! the local stack's real services. Speed targets are checked here by printing, never by timed
//! assertions in tests.
//!
//! - [`env`]: the stack's settings, the broker's process, the `walproof` binary under test.
//! - [`workload`]: the benchmark tables, the decoder's workload, and the exact end LSN of its
//!   last commit.
//! - [`clients`]: `pg_recvlogical` and `walproof decode` run on copies of the same slot, timed,
//!   with CPU and memory read from `/proc`.
//! - [`snapshot`]: `COPY … TO STDOUT` and `walproof decode --snapshot-mode initial_only` of the
//!   same table, timed, and the snapshot's ledger read back.
//! - [`committer`]: the committer's apply path, stock monotree and the SHA-256 bound on the
//!   same keys.
//! - [`archive`]: `walproof archive` over a ledger the decoder wrote: rows/s, bytes written.
//! - [`validator`]: `walproof commit` and `walproof validate` as processes: how long until
//!   the validator applied a ledger to its shadow database and attested its roots.
//! - [`ingest`]: Postgres's own ingest of the workload's rows by plain SQL (the validator's
//!   baseline).
//! - [`latency`]: a steady rate of small source transactions, and the time from each commit to
//!   its root attestation.
//! - [`broker`]: the broker's raw ceiling for the ledger's own records.
//! - [`procfs`]: resident memory and CPU time of a process.
//! - [`report`]: printing figures.

pub mod archive;
pub mod broker;
pub mod clients;
pub mod committer;
pub mod env;
pub mod ingest;
pub mod latency;
pub mod procfs;
pub mod report;
pub mod snapshot;
pub mod validator;
pub mod workload;
