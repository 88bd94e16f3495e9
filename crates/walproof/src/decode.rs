//! `walproof decode`: wires the CLI to the decoder, its metrics endpoint, progress log and
//! snapshot progress bar.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::Instrument as _;
use walproof_core::Lsn;
use walproof_source::decoder::DecoderConfig;
use walproof_source::metrics::DecoderMetrics;
use walproof_source::pending::SpillOptions;
use walproof_source::snapshot::SnapshotOptions;
use walproof_transport::debezium::DebeziumOptions;
use walproof_transport::ledger::WriterOptions;
use walproof_transport::publisher::run_publisher;

use crate::cli::DecodeArgs;
use crate::config::{FileConfig, pick};
use crate::{metrics_http, progress_bar};

/// Runs the decoder until `shutdown` or a fatal error.
pub async fn run(
    args: DecodeArgs,
    file: FileConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let metrics_addr = args.metrics_addr(&file);
    let kafka = args.kafka.settings(&file);
    let url = args
        .source
        .source_url
        .or(file.source.url)
        .context("no source URL: pass --source-url, set WALPROOF_SOURCE_URL, or [source] url in the config file")?;
    let d = file.decoder;
    let defaults = WriterOptions::default();
    let writer = WriterOptions {
        linger: Duration::from_millis(pick(args.linger_ms, file.kafka.linger_ms, || {
            defaults.linger.as_millis() as u64
        })),
        batch_records: pick(args.batch_records, file.kafka.batch_records, || {
            defaults.batch_records
        }),
        batch_bytes: pick(args.batch_bytes, file.kafka.batch_bytes, || {
            defaults.batch_bytes
        }),
        ..defaults
    };
    let config = DecoderConfig {
        source: url.parse()?,
        slot: pick(args.source.slot, file.source.slot, || "walproof".into()),
        publication: pick(args.source.publication, file.source.publication, || {
            "walproof".into()
        }),
        kafka,
        writer,
        max_entry_bytes: pick(args.max_entry_bytes, d.max_entry_bytes, || 512 * 1024),
        spill: SpillOptions {
            threshold_bytes: pick(args.spill_threshold_bytes, d.spill_threshold_bytes, || {
                64 << 20
            }),
            directory: pick(args.spill_dir, d.spill_dir, || {
                std::env::temp_dir().join("walproof-spill")
            }),
        },
        snapshot: SnapshotOptions {
            mode: pick(args.snapshot_mode, d.snapshot_mode, || "initial".into())
                .parse()
                .map_err(anyhow::Error::msg)?,
            workers: pick(args.snapshot_workers, d.snapshot_workers, || 2),
            // On a terminal the progress bar shows it; elsewhere, log lines.
            log_progress: !std::io::stderr().is_terminal(),
            ..SnapshotOptions::default()
        },
        status_interval: Duration::from_millis(pick(
            args.status_interval_ms,
            d.status_interval_ms,
            || 1000,
        )),
        retry: (Duration::from_millis(500), Duration::from_secs(30)),
        shutdown_timeout: Duration::from_secs(30),
    };
    let metrics = Arc::new(DecoderMetrics::default());
    if let Some(metrics_addr) = metrics_addr {
        let render = {
            let metrics = metrics.clone();
            Arc::new(move || metrics.render())
        };
        let listener = tokio::net::TcpListener::bind(&metrics_addr)
            .await
            .with_context(|| format!("binding the metrics endpoint to {metrics_addr}"))?;
        tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(metrics_http::serve(listener, render, shutdown.clone()));
    }
    let every =
        Duration::from_secs(pick(args.progress_interval_s, d.progress_interval_s, || 10).max(1));
    // In the decoder's span, which `walproof run` names it by.
    tokio::spawn(log_progress(metrics.clone(), every, shutdown.clone()).in_current_span());
    if !config.snapshot.log_progress {
        tokio::spawn(progress_bar::draw(metrics.clone(), shutdown.clone()));
    }
    tracing::info!(source = %config.source, slot = %config.slot, ledger = %config.kafka.ledger_topic(), "decoder starting");
    // The Debezium publisher follows the ledger and stops with the decoder.
    let (stop_publisher, publisher_stopped) = watch::channel(false);
    let publisher = (!args.no_debezium && d.debezium.unwrap_or(true)).then(|| {
        let mut options =
            DebeziumOptions::new(&config.kafka.topic_prefix, config.source.database());
        options.partitions = pick(args.debezium_partitions, d.debezium_partitions, || 1);
        options.tombstones = !args.no_tombstones && d.tombstones.unwrap_or(true);
        let heartbeat = match pick(args.heartbeat_interval_ms, d.heartbeat_interval_ms, || {
            10_000
        }) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        let kafka = config.kafka.clone();
        let mut stop = shutdown.clone();
        let publish = async move {
            let mut stopped = publisher_stopped;
            // Stop on the operator's signal or when the decoder ends.
            let (tx, rx) = watch::channel(false);
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
                let _ = tx.send(true);
            });
            run_publisher(&kafka, options, heartbeat, rx).await
        };
        tokio::spawn(publish.in_current_span())
    });
    let decoded = walproof_source::run(config, metrics, shutdown).await;
    let _ = stop_publisher.send(true);
    if let Some(publisher) = publisher {
        match publisher.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!("Debezium publisher: {err}"),
            Err(err) => tracing::error!("Debezium publisher: {err}"),
        }
    }
    decoded?;
    Ok(())
}

/// A progress line every `every`: totals, rates, and how far the slot trails the server.
async fn log_progress(
    metrics: Arc<DecoderMetrics>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let (mut changes, mut transactions) = (0, 0);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (now_changes, now_transactions) = (
            metrics.changes.load(Relaxed),
            metrics.transactions.load(Relaxed),
        );
        let seconds = every.as_secs_f64();
        let confirmed = Lsn::new(metrics.confirmed_lsn.load(Relaxed));
        let lag = metrics
            .server_wal_lsn
            .load(Relaxed)
            .saturating_sub(confirmed.as_u64());
        tracing::info!(
            "progress: {now_transactions} transactions, {now_changes} changes ({:.0} changes/s, {:.0} tx/s); confirmed {confirmed}, lag {lag} bytes",
            (now_changes - changes) as f64 / seconds,
            (now_transactions - transactions) as f64 / seconds,
        );
        (changes, transactions) = (now_changes, now_transactions);
    }
}
