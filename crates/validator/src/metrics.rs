//! The validator's Prometheus metrics.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters and gauges the validator updates as it runs.
#[derive(Debug, Default)]
pub struct ValidatorMetrics {
    /// Source transactions applied to the shadow database.
    pub transactions: AtomicU64,
    /// Changes applied to the shadow database.
    pub changes: AtomicU64,
    /// Published roots this validator reproduced.
    pub roots_agreed: AtomicU64,
    /// Attestations published.
    pub attestations: AtomicU64,
    /// The commit LSN last applied, as a 64-bit WAL position.
    pub applied_lsn: AtomicU64,
    /// The commit LSN last attested.
    pub attested_lsn: AtomicU64,
    /// Deep audits run.
    pub audits: AtomicU64,
    /// Shadow rows the audits checked against the tree.
    pub audited_rows: AtomicU64,
    /// Sum of source-commit-to-attestation latencies, microseconds.
    pub attestation_latency_us_sum: AtomicU64,
    /// Withdrawal approvals signed and published.
    pub withdrawals_approved: AtomicU64,
    /// Rows of the outbound table that are not payable withdrawals (logged with their position).
    pub withdrawals_rejected: AtomicU64,
    /// Divergences found, by kind label.
    pub divergences: Mutex<Vec<(&'static str, u64)>>,
}

impl ValidatorMetrics {
    /// Counts a divergence of the kind `label`.
    pub fn diverged(&self, label: &'static str) {
        if let Ok(mut divergences) = self.divergences.lock() {
            match divergences.iter_mut().find(|(l, _)| *l == label) {
                Some((_, count)) => *count += 1,
                None => divergences.push((label, 1)),
            }
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |counter: &AtomicU64| counter.load(Relaxed) as f64;
        for (name, kind, help, value) in [
            (
                "walproof_validator_transactions_total",
                "counter",
                "Source transactions applied to the shadow database.",
                get(&self.transactions),
            ),
            (
                "walproof_validator_changes_total",
                "counter",
                "Changes applied to the shadow database.",
                get(&self.changes),
            ),
            (
                "walproof_validator_roots_agreed_total",
                "counter",
                "Published roots this validator reproduced.",
                get(&self.roots_agreed),
            ),
            (
                "walproof_validator_attestations_total",
                "counter",
                "Root attestations signed and published.",
                get(&self.attestations),
            ),
            (
                "walproof_validator_withdrawals_approved_total",
                "counter",
                "Withdrawal approvals signed and published.",
                get(&self.withdrawals_approved),
            ),
            (
                "walproof_validator_withdrawals_rejected_total",
                "counter",
                "Rows of the outbound table that are not payable withdrawals (logged at ERROR with their position).",
                get(&self.withdrawals_rejected),
            ),
            (
                "walproof_validator_applied_lsn",
                "gauge",
                "Commit LSN of the last transaction applied, as a 64-bit WAL position.",
                get(&self.applied_lsn),
            ),
            (
                "walproof_validator_attested_lsn",
                "gauge",
                "Commit LSN of the last root attested, as a 64-bit WAL position.",
                get(&self.attested_lsn),
            ),
            (
                "walproof_validator_audits_total",
                "counter",
                "Deep audits of the shadow database run.",
                get(&self.audits),
            ),
            (
                "walproof_validator_audited_rows_total",
                "counter",
                "Shadow rows the deep audits checked against the tree.",
                get(&self.audited_rows),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP walproof_validator_attestation_latency_seconds From source commit to the attestation's publication.\n\
             # TYPE walproof_validator_attestation_latency_seconds summary\n\
             walproof_validator_attestation_latency_seconds_sum {}\n\
             walproof_validator_attestation_latency_seconds_count {}",
            get(&self.attestation_latency_us_sum) / 1e6,
            self.attestations.load(Relaxed)
        );
        let divergences = self
            .divergences
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP walproof_validator_divergences_total Divergences found, by kind; after one the validator signs nothing.\n\
             # TYPE walproof_validator_divergences_total counter"
        );
        for (label, count) in &divergences {
            let _ = writeln!(
                out,
                "walproof_validator_divergences_total{{kind=\"{label}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP walproof_validator_diverged 1 once a divergence was found: the validator has stopped attesting.\n\
             # TYPE walproof_validator_diverged gauge\nwalproof_validator_diverged {}",
            u8::from(!divergences.is_empty())
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergences_are_counted_by_kind_and_raise_the_gauge() {
        let metrics = ValidatorMetrics::default();
        metrics.transactions.store(3, Relaxed);
        let text = metrics.render();
        assert!(
            text.contains("walproof_validator_transactions_total 3\n"),
            "{text}"
        );
        assert!(text.contains("walproof_validator_diverged 0\n"), "{text}");
        metrics.diverged("root");
        metrics.diverged("root");
        let text = metrics.render();
        assert!(
            text.contains("walproof_validator_divergences_total{kind=\"root\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("walproof_validator_diverged 1\n"), "{text}");
    }
}
