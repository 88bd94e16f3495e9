//! The decoder's Prometheus metrics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::snapshot::SnapshotProgress;

/// Counters and gauges the decoder updates as it runs; [`DecoderMetrics::render`] writes them
/// in the Prometheus text format.
#[derive(Debug, Default)]
pub struct DecoderMetrics {
    /// Changes written to the ledger.
    pub changes: AtomicU64,
    /// Source transactions written to the ledger.
    pub transactions: AtomicU64,
    /// Bytes of pgoutput decoded.
    pub decoded_bytes: AtomicU64,
    /// Source transactions dropped because the ledger already holds them.
    pub redelivered_transactions: AtomicU64,
    /// Transactions that spilled to disk.
    pub spilled_transactions: AtomicU64,
    /// Rows written by the initial snapshot.
    pub snapshot_rows: AtomicU64,
    /// The initial snapshot's progress per table.
    pub snapshot: Arc<SnapshotProgress>,
    /// The server's latest WAL position seen on the stream.
    pub server_wal_lsn: AtomicU64,
    /// The position confirmed to the slot.
    pub confirmed_lsn: AtomicU64,
    /// Sum of Kafka acknowledgement latencies, microseconds.
    pub ack_latency_us_sum: AtomicU64,
    /// Number of latencies summed.
    pub ack_latency_count: AtomicU64,
}

impl DecoderMetrics {
    /// Raises a monotonic position gauge.
    pub fn raise(gauge: &AtomicU64, value: u64) {
        gauge.fetch_max(value, Relaxed);
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |counter: &AtomicU64| counter.load(Relaxed) as f64;
        metric(
            "walproof_decoder_changes_total",
            "counter",
            "Changes written to the ledger.",
            get(&self.changes),
        );
        metric(
            "walproof_decoder_transactions_total",
            "counter",
            "Source transactions written to the ledger.",
            get(&self.transactions),
        );
        metric(
            "walproof_decoder_decoded_bytes_total",
            "counter",
            "Bytes of pgoutput decoded.",
            get(&self.decoded_bytes),
        );
        metric(
            "walproof_decoder_redelivered_transactions_total",
            "counter",
            "Source transactions dropped because the ledger already holds them.",
            get(&self.redelivered_transactions),
        );
        metric(
            "walproof_decoder_spilled_transactions_total",
            "counter",
            "Transactions that spilled to local disk.",
            get(&self.spilled_transactions),
        );
        metric(
            "walproof_decoder_snapshot_rows_total",
            "counter",
            "Rows written to the ledger by the initial snapshot.",
            get(&self.snapshot_rows),
        );
        let server = self.server_wal_lsn.load(Relaxed);
        let confirmed = self.confirmed_lsn.load(Relaxed);
        metric(
            "walproof_decoder_replication_lag_bytes",
            "gauge",
            "Server WAL position minus the slot position walproof confirmed.",
            server.saturating_sub(confirmed) as f64,
        );
        metric(
            "walproof_decoder_confirmed_lsn",
            "gauge",
            "The slot position walproof confirmed, as a 64-bit WAL position.",
            confirmed as f64,
        );
        let _ = writeln!(
            out,
            "# HELP walproof_decoder_kafka_ack_latency_seconds Produce-to-acknowledgement latency of ledger records.\n\
             # TYPE walproof_decoder_kafka_ack_latency_seconds summary\n\
             walproof_decoder_kafka_ack_latency_seconds_sum {}\n\
             walproof_decoder_kafka_ack_latency_seconds_count {}",
            get(&self.ack_latency_us_sum) / 1e6,
            self.ack_latency_count.load(Relaxed)
        );
        let tables = self.snapshot.tables();
        if !tables.is_empty() {
            for (name, help, value) in [
                (
                    "walproof_decoder_snapshot_table_rows",
                    "Rows of the table copied by the initial snapshot.",
                    &(|t: &crate::snapshot::TableSnapshot| t.copied as f64) as &dyn Fn(_) -> f64,
                ),
                (
                    "walproof_decoder_snapshot_table_estimated_rows",
                    "The planner's row estimate of the table when the snapshot started.",
                    &|t: &crate::snapshot::TableSnapshot| t.estimate as f64,
                ),
                (
                    "walproof_decoder_snapshot_table_percent",
                    "Estimated percent of the table copied (100 once done).",
                    &|t: &crate::snapshot::TableSnapshot| t.percent(),
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for table in &tables {
                    let label = table.name.replace('\\', "\\\\").replace('"', "\\\"");
                    let _ = writeln!(out, "{name}{{table=\"{label}\"}} {}", value(table));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_writes_every_metric_with_help_and_type() {
        let metrics = DecoderMetrics::default();
        metrics.changes.store(7, Relaxed);
        DecoderMetrics::raise(&metrics.server_wal_lsn, 1000);
        DecoderMetrics::raise(&metrics.confirmed_lsn, 400);
        let text = metrics.render();
        assert!(
            text.contains("walproof_decoder_changes_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("walproof_decoder_replication_lag_bytes 600\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE walproof_decoder_kafka_ack_latency_seconds summary"));
        assert!(
            !text.contains("snapshot_table"),
            "no per-table lines before a snapshot"
        );
    }

    #[test]
    fn the_snapshot_is_reported_per_table_with_escaped_names() {
        let metrics = DecoderMetrics::default();
        metrics.snapshot.begin([
            ("public.big".to_owned(), 1000),
            (r#"odd."qu\oted""#.to_owned(), 0),
        ]);
        let text = metrics.render();
        assert!(
            text.contains(
                "walproof_decoder_snapshot_table_estimated_rows{table=\"public.big\"} 1000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"walproof_decoder_snapshot_table_rows{table="odd.\"qu\\oted\""} 0"#),
            "{text}"
        );
        assert!(text.contains("# TYPE walproof_decoder_snapshot_table_percent gauge"));
    }
}
