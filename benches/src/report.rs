//! Printing a benchmark's figures: step lines, numbers with thousands separators, MiB, CPU
//! lines, and the wait for a quiet machine before each timed run.

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::time::Duration;

use crate::procfs::{self, Cpu};

/// Bytes in a GiB, as a float.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A `==> …` line: the benchmark's next step.
pub fn step(text: &str) {
    println!("==> {text}");
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// CPUs this process may use.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, usize::from) as f64
}

/// The machine's CPUs and load average, for a report's first line.
pub fn machine_line() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{} CPUs, load average {}",
        cores(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// One line per tracked process (CPU seconds, share of a core, user/system, context switches)
/// over `seconds`, then the whole machine's busy time and what "everything else" used.
pub fn cpu_line(cpu: &[(String, Cpu)], machine_busy: f64, seconds: f64) -> String {
    let mut lines: Vec<String> = cpu
        .iter()
        .map(|(label, used)| {
            format!(
                "{label} {:.2} s = {:.0}% of a core ({:.2} user + {:.2} sys, {} context switches)",
                used.total(),
                100.0 * used.total() / seconds,
                used.user,
                used.system,
                thousands(used.switches as f64)
            )
        })
        .collect();
    let ours: f64 = cpu.iter().map(|(_, used)| used.total()).sum();
    lines.push(format!(
        "whole machine {machine_busy:.2} s busy of {:.2} s ({:.0} cores); everything else \
         (other processes, this benchmark) {:.2} s",
        cores() * seconds,
        cores(),
        (machine_busy - ours).max(0.0)
    ));
    lines.join("\n           ")
}

/// Before each timed run: wait (up to 30 s) until less than a tenth of a core is busy, so
/// a run does not start in the wake of the previous one (or of something else running).
pub async fn settle() {
    let busy = procfs::settle(0.1 * cores(), Duration::from_secs(30)).await;
    if busy >= 0.1 * cores() {
        println!(
            "    (the machine is still busy: {:.0}% of its {} cores over the last second; measuring anyway)",
            100.0 * busy / cores(),
            cores()
        );
    }
}

/// The `p`-th percentile (0–100) of `sorted` (ascending), by nearest rank; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds below one as milliseconds (`12.3 ms`), else as seconds (`1.25 s`).
pub fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
