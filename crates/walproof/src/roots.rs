//! `walproof roots`: wires the CLI to the committer's offline rebuild.

use std::fmt::Write as _;
use std::time::Duration;

use walproof_committer::rebuild::rebuild;

use crate::cli::RootsArgs;
use crate::config::FileConfig;

/// Recomputes every root; returns the text to print.
pub async fn run(args: RootsArgs, file: &FileConfig) -> anyhow::Result<String> {
    let settings = args.kafka.settings(file);
    let mut out = String::new();
    let mut transactions = 0u64;
    let state = rebuild(
        &settings,
        Duration::from_secs(30),
        None,
        |transaction, committed| {
            transactions += 1;
            if !args.last {
                let _ = writeln!(
                    out,
                    "{} {} {}",
                    committed.commit_lsn, committed.root, committed.changes
                );
            }
            if transactions % 10_000 == 0 {
                tracing::info!("{transactions} transactions, at {}", transaction.commit_lsn);
            }
        },
    )
    .await?;
    if args.last {
        let _ = writeln!(
            out,
            "{} {} ({transactions} transactions, {} keys)",
            state
                .last_applied()
                .map_or_else(|| "-".to_owned(), |lsn| lsn.to_string()),
            state.root(),
            state.keys()
        );
    }
    Ok(out)
}
