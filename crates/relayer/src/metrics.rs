//! The relayer's Prometheus metrics (`walproof_relayer_*`).

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Counters and gauges of one relayer.
#[derive(Debug, Default)]
pub struct RelayerMetrics {
    /// Root attestation signatures collected (each validator and LSN once).
    pub root_signatures: AtomicU64,
    /// Withdrawal approval signatures collected.
    pub withdrawal_signatures: AtomicU64,
    /// Records of the attestations topic that did not check out.
    pub rejected_records: AtomicU64,
    /// Roots committed on chain by this relayer.
    pub roots_committed: AtomicU64,
    /// The bridge's last committed LSN, as a 64-bit WAL position.
    pub committed_lsn: AtomicU64,
    /// Withdrawals paid by this relayer's submissions.
    pub withdrawals_paid: AtomicU64,
    /// Gas used by this relayer's transactions.
    pub gas_used: AtomicU64,
    /// Submissions that failed (reverted or unreachable node), each retried.
    pub failures: AtomicU64,
}

impl RelayerMetrics {
    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, counter) in [
            (
                "walproof_relayer_root_signatures_total",
                "counter",
                "Root attestation signatures collected (each validator and LSN once).",
                &self.root_signatures,
            ),
            (
                "walproof_relayer_withdrawal_signatures_total",
                "counter",
                "Withdrawal approval signatures collected.",
                &self.withdrawal_signatures,
            ),
            (
                "walproof_relayer_rejected_records_total",
                "counter",
                "Records of the attestations topic that did not check out (logged with their offset).",
                &self.rejected_records,
            ),
            (
                "walproof_relayer_roots_committed_total",
                "counter",
                "Roots this relayer committed on chain.",
                &self.roots_committed,
            ),
            (
                "walproof_relayer_committed_lsn",
                "gauge",
                "The bridge's last committed LSN, as a 64-bit WAL position.",
                &self.committed_lsn,
            ),
            (
                "walproof_relayer_withdrawals_paid_total",
                "counter",
                "Withdrawals paid by this relayer's submissions.",
                &self.withdrawals_paid,
            ),
            (
                "walproof_relayer_gas_used_total",
                "counter",
                "Gas used by this relayer's transactions.",
                &self.gas_used,
            ),
            (
                "walproof_relayer_failures_total",
                "counter",
                "Submissions that failed (reverted, or the node unreachable); each is retried.",
                &self.failures,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                counter.load(Relaxed)
            );
        }
        out
    }
}
