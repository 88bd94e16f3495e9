//! The `walproof` binary's wiring: command-line parsing and dispatch to the stage crates.
//!
//! # Layout
//!
//! A tour of the workspace, one hop to wherever you need to go:
//!
//! - `crates/core` (`walproof-core`): the contracts every stage shares: `Lsn`, change records
//!   and canonical values, the ledger entry and its Protobuf schema, the hash chain, and the SMT
//!   key/leaf hashing pinned by test vectors.
//! - `crates/source` (`walproof-source`): the decoder, pgoutput to committed transactions.
//! - `crates/transport` (`walproof-transport`): Kafka: the single-writer ledger topic and the
//!   Debezium-compatible topics.
//! - `crates/committer` (`walproof-committer`): Sparse Merkle Tree roots per commit LSN, proofs.
//! - `crates/archive` (`walproof-archive`): Parquet archives on GCS or a local directory.
//! - `crates/validator` (`walproof-validator`): shadow replay, independent roots, attestations,
//!   withdrawal approvals.
//! - `crates/trust` (`walproof-trust`): signing keys and their providers (file, TEE), key
//!   attestations.
//! - `crates/relayer` (`walproof-relayer`): contract bindings, deployment, and the relayer that
//!   submits roots and withdrawals to the bridge.
//! - `crates/testkit` (`walproof-testkit`): a private database, slot, topic prefix and bucket
//!   per test on the local stack.
//! - `crates/walproof` (this crate): the CLI. [`cli`] declares commands and [`config`] merges
//!   flags, `WALPROOF_*` variables and the TOML file; [`setup`], [`decode`], [`inspect`]
//!   [`roots`], [`proofs`], [`commit`], [`archive`] and [`validate`] only wire a command to the crates above;
//!   [`keys`] generates, attests, registers and inspects validator keys;
//!   [`run`] runs the decoder, committer, archiver and a validator together in one process;
//!   [`metrics_http`] serves `/metrics` and the committer's proofs over HTTP;
//!   [`progress_bar`] draws the snapshot's bars on a terminal.
//!
//! Outside `crates/`: `deploy/` (the local stack and the two README commands), `tests/`
//! (cross-process tests against the real services), `contracts/`, `connectors/`, `dashboards/`,
//! `benches/`.

pub mod archive;
pub mod cli;
pub mod commit;
pub mod config;
pub mod decode;
pub mod inspect;
pub mod keys;
pub mod metrics_http;
pub mod progress_bar;
pub mod proofs;
pub mod relayer;
pub mod roots;
pub mod run;
pub mod setup;
pub mod validate;

/// `err` and its causes on one line, `outer: cause: …`, each cause named once: the stage
/// crates' errors already end with their cause's text (so that a log line showing only the
/// outer error is complete), and `{err:#}` would print that text twice.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line == text || line.ends_with(&format!(": {text}")) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    /// An error that shows its cause in its own text and also returns it as its source.
    #[derive(Debug)]
    struct Inlined {
        source: std::io::Error,
    }

    impl std::fmt::Display for Inlined {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "reading the ledger failed: {}", self.source)
        }
    }

    impl std::error::Error for Inlined {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let inlined = anyhow::Error::new(Inlined {
            source: std::io::Error::other("broker gone"),
        })
        .context("walproof commit");
        assert_eq!(
            error_chain(&inlined),
            "walproof commit: reading the ledger failed: broker gone"
        );
        let plain = anyhow::anyhow!("disk full").context("writing the snapshot");
        assert_eq!(error_chain(&plain), "writing the snapshot: disk full");
        // A cause that only ends like the text before it is its own.
        let suffix = anyhow::anyhow!("timed out").context("connect timed out");
        assert_eq!(error_chain(&suffix), "connect timed out: timed out");
    }
}
