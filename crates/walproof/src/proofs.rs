//! `walproof prove` and `walproof verify`: wire the CLI to the committer's proofs.

use std::time::Duration;

use anyhow::{Context, bail};
use walproof_committer::proof::RowProof;
use walproof_committer::state::CommitState;
use walproof_core::{Digest, Lsn, Reassembled};
use walproof_transport::ledger::{LedgerReader, ledger_topic_exists};

use crate::cli::ProveArgs;
use crate::config::FileConfig;

/// The proof's JSON.
pub async fn prove(args: ProveArgs, file: &FileConfig) -> anyhow::Result<String> {
    let (schema, table) = args
        .table
        .split_once('.')
        .with_context(|| format!("--table {}: give it as schema.table", args.table))?;
    let at: Option<Lsn> = args
        .at
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|err| anyhow::anyhow!("--at: {err}"))?;
    let settings = args.kafka.settings(file);
    if !ledger_topic_exists(&settings, Duration::from_secs(30)).await? {
        bail!(
            "topic {} does not exist: no ledger to prove from",
            settings.ledger_topic()
        );
    }
    let mut reader = LedgerReader::from_start(&settings)?;
    let mut state = CommitState::default();
    while let Some((_, outcome)) = reader.next(Duration::from_secs(30)).await? {
        if let Reassembled::Complete(transaction) = outcome {
            if at.is_some_and(|at| transaction.commit_lsn > at) {
                break;
            }
            state.apply(&transaction)?;
        }
    }
    if let Some(at) = at {
        if state.last_applied() != Some(at) {
            bail!(
                "no transaction commits at {at} (the last one at or before it is {})",
                state
                    .last_applied()
                    .map_or_else(|| "none".to_owned(), |l| l.to_string())
            );
        }
    }
    Ok(state.prove_row(schema, table, &args.key)?.to_json() + "\n")
}

/// What the proof shows, or an error saying why it does not hold.
pub fn verify(root: &str, values: Option<&str>, proof: &std::path::Path) -> anyhow::Result<String> {
    let root: Digest = root
        .parse()
        .map_err(|err| anyhow::anyhow!("--root: {err}"))?;
    let bytes = if proof.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        bytes
    } else {
        std::fs::read(proof).with_context(|| format!("reading {}", proof.display()))?
    };
    let proof = RowProof::from_json(&bytes)
        .map_err(|err| anyhow::anyhow!("{} is not a walproof row proof: {err}", "the proof"))?;
    let values: Option<Vec<(String, Option<String>)>> = values
        .map(|text| -> anyhow::Result<_> {
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(text).context("--values must be a JSON object")?;
            object
                .into_iter()
                .map(|(name, value)| match value {
                    serde_json::Value::Null => Ok((name, None)),
                    serde_json::Value::String(text) => Ok((name, Some(text))),
                    other => bail!("--values: column {name} must be text or null, not {other}"),
                })
                .collect()
        })
        .transpose()?;
    proof
        .verify(&root, values.as_deref())
        .map_err(|reason| anyhow::anyhow!("the proof does not hold: {reason}"))
}
