//! `walproof setup`: wires the CLI to `walproof_source::setup`.

use anyhow::Context;
use walproof_source::connection::SourceConnection;
use walproof_source::setup::{self, SetupError, SetupOptions, TableName};

use crate::cli::SetupArgs;
use crate::config::{FileConfig, pick};

/// What setup found; the report is printed either way.
#[derive(Debug)]
pub struct Outcome {
    /// The human report.
    pub report: String,
    /// Whether the source is ready (nothing refused).
    pub ready: bool,
}

/// Plans, prints and (unless a dry run) applies the setup.
pub async fn run(args: SetupArgs, file: &FileConfig) -> anyhow::Result<Outcome> {
    let url = args
        .source
        .source_url
        .or_else(|| file.source.url.clone())
        .context("no source URL: pass --source-url, set WALPROOF_SOURCE_URL, or [source] url in the config file")?;
    let source: SourceConnection = url.parse()?;
    let tables = if args.tables.is_empty() {
        file.source.tables.clone()
    } else {
        Some(args.tables)
    };
    let tables = tables
        .map(|names| {
            names
                .iter()
                .map(|name| name.parse::<TableName>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let options = SetupOptions {
        publication: pick(
            args.source.publication,
            file.source.publication.clone(),
            || "walproof".into(),
        ),
        slot: pick(args.source.slot, file.source.slot.clone(), || {
            "walproof".into()
        }),
        tables,
        dry_run: args.dry_run,
    };
    let client = source
        .connect_sql("walproof-setup")
        .await
        .with_context(|| format!("connecting to the source {source}"))?;
    let plan = setup::plan(&client, &options).await?;
    let report = plan.render();
    match setup::apply(&client, &plan).await {
        Ok(()) => Ok(Outcome {
            report,
            ready: true,
        }),
        // The report already lists every problem with its fix.
        Err(SetupError::Refused { .. }) => Ok(Outcome {
            report,
            ready: false,
        }),
        Err(err) => Err(err.into()),
    }
}
