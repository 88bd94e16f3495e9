//! walproof's benchmarks: figures and ratios against a baseline measured in the same run, on
//! the local stack's real services. Speed targets are checked here by printing, never by timed
//! assertions in tests.
//!
//! - [`workload`]: the benchmark table, its workload, and the exact end LSN of its last commit.
//! - [`clients`]: `pg_recvlogical` and `walproof decode` run on copies of the same slot, timed,
//!   with CPU and memory read from `/proc`.
//! - [`broker`]: the broker's raw ceiling for the ledger's own records.
//! - [`procfs`]: resident memory and CPU time of a process.

pub mod broker;
pub mod clients;
pub mod procfs;
pub mod workload;
