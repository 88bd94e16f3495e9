//! The committer's benchmark: its apply path (a root per 100-row transaction) next to the
//! SHA-256 bound and stock monotree, measured in the same run. Prints figures and ratios; fails
//! only when something does not work, never on speed.
//!
//! Each measurement runs in its own child process (this binary with `--phase`), so every peak
//! RSS is that measurement's alone. Run it with `bash benches/run.sh committer` (no services
//! needed).

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Parser;
use walproof_benches::committer::{self, Measured, Phase};
use walproof_benches::report::{machine_line, mib, step, thousands};

/// The committer's apply path vs the SHA-256 bound and stock monotree.
#[derive(Debug, Parser)]
struct Args {
    /// Tree sizes (live keys) to measure at, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    keys: Vec<u64>,
    /// Row changes measured at each size (after the tree is filled).
    #[arg(long, default_value_t = 500_000)]
    updates: u64,
    /// Rows per transaction (one root each) in the measured part.
    #[arg(long, default_value_t = 100)]
    rows_per_transaction: usize,
    /// Largest tree stock monotree is measured at: its MemoryDB keeps every node ever
    /// written, about 4.5 GB per million keys filled.
    #[arg(long, default_value_t = 1_000_000)]
    monotree_max_keys: u64,
    /// Largest tree the validator's snapshot is measured at (it holds the state twice, and
    /// writes it to the temporary directory).
    #[arg(long, default_value_t = 1_000_000)]
    snapshot_max_keys: u64,
    /// Internal: run one measurement and print it as JSON.
    #[arg(long, hide = true)]
    phase: Option<Phase>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(phase) = args.phase {
        let keys = *args.keys.first().context("--keys")?;
        let measured =
            committer::run_phase(phase, keys, args.updates, args.rows_per_transaction, None)?;
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(());
    }
    println!("{}", machine_line());
    step("(a) SHA-256 of 64 bytes (the hashing bound: 20 hashes per update)");
    let sha_ns = committer::sha256_ns(5_000_000);
    let bound = 1e9 / (sha_ns * 20.0);
    println!(
        "    {sha_ns:.1} ns per SHA-256 → bound {} updates/s",
        thousands(bound)
    );
    let mut results: BTreeMap<(u64, &str), Measured> = BTreeMap::new();
    for &keys in &args.keys {
        let mut phases = vec![Phase::Memory, Phase::Durable, Phase::Pruned];
        if keys <= args.monotree_max_keys {
            phases.insert(0, Phase::Monotree);
        }
        if keys <= args.snapshot_max_keys {
            phases.push(Phase::Snapshot);
        }
        for phase in phases {
            step(&format!(
                "{} at {} keys: fill, then {} row changes in transactions of {}",
                phase.describe(),
                thousands(keys as f64),
                thousands(args.updates as f64),
                args.rows_per_transaction
            ));
            let measured = run_child(&args, phase, keys)?;
            print_measured(&measured, bound);
            results.insert((keys, phase.name()), measured);
        }
    }
    step("summary");
    for &keys in &args.keys {
        let get = |phase: Phase| results.get(&(keys, phase.name()));
        let Some(memory) = get(Phase::Memory) else {
            continue;
        };
        let mut line = format!(
            "    {} keys: in memory {} updates/s (c/a {:.2}",
            thousands(keys as f64),
            thousands(memory.updates_per_s),
            memory.updates_per_s / bound
        );
        if let Some(stock) = get(Phase::Monotree) {
            line += &format!(", c/b {:.2}", memory.updates_per_s / stock.updates_per_s);
        }
        line += &format!(
            "), proof {:.0} bytes as nodes, {:.0} compact (largest {}), peak RSS {:.0} MiB",
            memory.proof_bytes,
            memory.compact_proof_bytes,
            memory.compact_proof_max,
            mib(memory.peak_rss)
        );
        println!("{line}");
        if let Some(durable) = get(Phase::Durable) {
            println!(
                "    {} keys: durable {} updates/s ({:.2} × in memory), {:.0} store bytes per update, reopen {:.1} s",
                thousands(keys as f64),
                thousands(durable.updates_per_s),
                durable.updates_per_s / memory.updates_per_s,
                durable.store_bytes_per_update.unwrap_or(0.0),
                durable.reopen_s.unwrap_or(0.0)
            );
            if let Some(snapshot) = get(Phase::Snapshot) {
                println!(
                    "    {} keys: the validator's snapshot: the state copied in {:.2} s (the pause while running), the copy saved in {:.2} s ({:.0} MiB)",
                    thousands(keys as f64),
                    snapshot.snapshot_copy_s.unwrap_or(0.0),
                    snapshot.snapshot_save_s.unwrap_or(0.0),
                    mib(snapshot.snapshot_bytes)
                );
            }
            if let Some(pruned) = get(Phase::Pruned) {
                println!(
                    "    {} keys: pruned to the last {} roots {} updates/s ({:.2} × durable), store {:.0} MiB vs {:.0} MiB unpruned ({:.2}×), {} compactions, longest {:.2} s",
                    thousands(keys as f64),
                    thousands(committer::RETAIN_ROOTS as f64),
                    thousands(pruned.updates_per_s),
                    pruned.updates_per_s / durable.updates_per_s,
                    mib(pruned.store_bytes_total),
                    mib(durable.store_bytes_total),
                    pruned.store_bytes_total as f64 / durable.store_bytes_total.max(1) as f64,
                    pruned.compactions,
                    pruned.longest_compaction_s
                );
            }
        }
    }
    Ok(())
}

fn run_child(args: &Args, phase: Phase, keys: u64) -> anyhow::Result<Measured> {
    let own = std::env::current_exe()?;
    let started = Instant::now();
    let mut command = Command::new(own);
    command
        .arg("--phase")
        .arg(phase.name())
        .arg("--keys")
        .arg(keys.to_string())
        .arg("--updates")
        .arg(args.updates.to_string())
        .arg("--rows-per-transaction")
        .arg(args.rows_per_transaction.to_string());
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running a measurement")?;
    if !output.status.success() {
        bail!("the {} measurement failed: {}", phase.name(), output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    let measured: Measured = serde_json::from_str(line)
        .with_context(|| format!("the {} measurement printed {text:?}", phase.name()))?;
    println!(
        "    (measurement took {:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(measured)
}

fn print_measured(m: &Measured, bound: f64) {
    println!(
        "    fill: {} keys in {:.1} s ({} rows/s)",
        thousands(m.keys as f64),
        m.fill_s,
        thousands(m.keys as f64 / m.fill_s.max(1e-9))
    );
    println!(
        "    measured: {} updates in {:.2} s → {} updates/s ({:.2} × the SHA-256 bound), {:.2} ms per root",
        thousands(m.updates as f64),
        m.measured_s,
        thousands(m.updates_per_s),
        m.updates_per_s / bound,
        m.ms_per_root
    );
    for (part, seconds) in &m.breakdown {
        println!(
            "      {part}: {:.2} s ({:.0}%), {:.2} µs per update",
            seconds,
            100.0 * seconds / m.measured_s.max(1e-9),
            seconds * 1e6 / m.updates.max(1) as f64
        );
    }
    if m.proofs > 0 {
        println!(
            "    proofs: {:.0} bytes as nodes, {:.0} bytes compact on average, largest compact {} (over {} keys, live and absent)",
            m.proof_bytes, m.compact_proof_bytes, m.compact_proof_max, m.proofs
        );
    }
    if let Some(bytes) = m.store_bytes_per_update {
        println!(
            "    store: {:.0} bytes per update ({:.1} MiB written while measured, {:.1} MiB in all); reopened (tree read back and checked) in {:.1} s",
            bytes,
            mib(m.store_bytes_measured),
            mib(m.store_bytes_total),
            m.reopen_s.unwrap_or(0.0)
        );
    }
    if m.store_bytes_per_update.is_none() && m.reopen_s.is_some() {
        println!(
            "    store: {:.1} MiB at the end; {} compactions while measured, {:.2} s in all ({:.2} s finding what the kept roots reach, {:.2} s copying it), the longest {:.2} s; reopened in {:.1} s",
            mib(m.store_bytes_total),
            m.compactions,
            m.compaction_s,
            m.compaction_walk_s,
            m.compaction_copy_s,
            m.longest_compaction_s,
            m.reopen_s.unwrap_or(0.0)
        );
    }
    if let (Some(copy_s), Some(save_s)) = (m.snapshot_copy_s, m.snapshot_save_s) {
        println!(
            "    snapshot: the state copied in {copy_s:.2} s, the copy saved as a store in {save_s:.2} s ({:.1} MiB, synced)",
            mib(m.snapshot_bytes)
        );
    }
    println!("    peak RSS {:.0} MiB", mib(m.peak_rss));
}
