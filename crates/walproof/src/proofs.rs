//! `walproof prove` and `walproof verify`: wire the CLI to the committer's proofs.

use std::time::Duration;

use anyhow::{Context, bail};
use walproof_committer::proof::{RowProof, RowSubject};
use walproof_committer::rebuild::rebuild;
use walproof_core::{Digest, Lsn};

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
    let row = match &args.values {
        Some(values) => RowSubject::Values(parse_values(values).context("--values")?),
        None => RowSubject::Key(args.key),
    };
    let settings = args.kafka.settings(file);
    let state = rebuild(&settings, Duration::from_secs(30), at, |_, _| {}).await?;
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
    let proof = state.prove_row(schema, table, &row)?;
    Ok(if args.compact {
        proof.to_compact_json()?
    } else {
        proof.to_json()
    } + "\n")
}

/// What the proof shows, or an error saying why it does not hold.
pub fn verify(
    root: &str,
    values: Option<&str>,
    columns: Option<&[String]>,
    proof: &std::path::Path,
) -> anyhow::Result<String> {
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
    let values = values
        .map(|text| parse_values(text).context("--values"))
        .transpose()?;
    proof
        .verify_in_order(&root, values.as_deref(), columns)
        .map_err(|reason| anyhow::anyhow!("the proof does not hold: {reason}"))
}

/// A row's values given as a JSON object of column name to text or null
/// (`{"kind":"tick","n":null}`).
pub fn parse_values(text: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).context("not a JSON object of column name to text or null")?;
    object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::Null => Ok((name, None)),
            serde_json::Value::String(text) => Ok((name, Some(text))),
            other => bail!("column {name} must be text or null, not {other}"),
        })
        .collect()
}
