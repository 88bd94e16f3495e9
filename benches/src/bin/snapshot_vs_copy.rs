//! The snapshot benchmark: walproof's initial snapshot of one table (`walproof decode
//! --snapshot-mode initial_only`, into the ledger, then exit) next to Postgres's own `COPY … TO
//! STDOUT` of the same table, in the same run: time, rows/s, peak RSS and the ratio. Prints
//! figures and ratios; fails only when something does not work, never on speed.
//!
//! Run it with `bash benches/run.sh snapshot` (builds the release binaries, loads `.stack/env`).

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use walproof_benches::clients::Source;
use walproof_benches::env::BenchEnv;
use walproof_benches::report::{cpu_line, machine_line, mib, settle, step, thousands};
use walproof_benches::snapshot::{
    self, CopyOutput, CopyRun, LedgerCheck, SnapshotRun, SnapshotSpec,
};
use walproof_benches::workload;
use walproof_testkit::TestDatabase;
use walproof_testkit::topics::TestTopics;

/// walproof's initial snapshot of an N-row table vs `COPY … TO STDOUT` of the same table.
#[derive(Debug, Parser)]
struct Args {
    /// Rows of the table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Rounds of one `COPY … TO` and one `walproof decode --no-debezium` snapshot each; the
    /// best of each side is compared.
    #[arg(long, default_value_t = 2)]
    runs: u32,
    /// `--snapshot-workers` for walproof [default: walproof's own; a single table is copied
    /// by one session whatever the number]
    #[arg(long)]
    snapshot_workers: Option<usize>,
    /// Skip the snapshot with walproof's default settings, which include the in-process
    /// Debezium publisher.
    #[arg(long)]
    skip_debezium: bool,
    /// The release `walproof` binary [default: next to this benchmark's binary].
    #[arg(long, env = "WALPROOF_BIN")]
    walproof_bin: Option<PathBuf>,
    /// Directory of Postgres's client programs (psql).
    #[arg(
        long,
        env = "WALPROOF_PG_BIN",
        default_value = "/usr/lib/postgresql/15/bin"
    )]
    pg_bin: PathBuf,
    /// Longest a single snapshot may take, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
    /// Keep the logs of `walproof setup` and `walproof decode` (they are removed otherwise).
    #[arg(long)]
    keep_logs: bool,
}

/// The target: the snapshot at no less than half of `COPY … TO`'s rate.
const TARGET_RATIO: f64 = 0.5;

/// Resident memory at which a snapshot run is stopped (SIGKILL) instead of waited for.
const RSS_CAP: u64 = 12 << 30;

/// The table's key column, summed over the ledger's snapshot rows as a check.
const KEY_COLUMN: &str = "id";

/// One walproof snapshot run and what its ledger holds.
struct Measured {
    name: String,
    command: String,
    run: SnapshotRun,
    ledger: LedgerCheck,
    /// Events on the Debezium per-table topic when the process exited (defaults run only).
    debezium_events: Option<u64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rows > 0 && args.runs > 0,
        "--rows and --runs must be positive"
    );
    let env = BenchEnv::load(args.walproof_bin.clone()).await?;
    if !env.features.initial_only {
        bail!(
            "{} has no `--snapshot-mode initial_only` (see `walproof decode --help`): it cannot take a snapshot and stop",
            env.walproof_bin.display()
        );
    }
    let stack = &env.stack;
    let db = TestDatabase::create(stack, "snapbench").await?;
    let topics = TestTopics::new(stack, "snapbench");
    let work_dir = std::env::temp_dir().join(format!("walproof-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let sql = db.connect().await?;
    let (host, port, user) = db.host_port_user();
    let source = Source {
        host,
        port,
        user,
        database: db.name().to_owned(),
        publication: "bench_snapshot_pub".into(),
    };
    let server: String = sql.query_one("SHOW server_version", &[]).await?.get(0);
    println!(
        "walproof snapshot benchmark: {}, Postgres {server}, {}",
        machine_line(),
        env.broker_line()
    );
    println!(
        "    walproof binary {} (in-process Debezium publisher: {}); logs in {}",
        env.walproof_bin.display(),
        if env.features.debezium {
            "yes, on by default"
        } else {
            "no"
        },
        work_dir.display()
    );

    // ---- The table.
    let table = workload::SNAPSHOT_TABLE;
    step(&format!(
        "database {}: table public.{table} of {} rows (bigint key, integer, text, numeric, timestamptz, boolean, text, jsonb), VACUUM ANALYZE",
        db.name(),
        thousands(args.rows as f64)
    ));
    let began = Instant::now();
    workload::fill_snapshot_table(&sql, args.rows).await?;
    let (count, table_bytes): (i64, i64) = {
        let row = sql
            .query_one(
                &format!("SELECT count(*), pg_total_relation_size('{table}') FROM {table}"),
                &[],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    if count as u64 != args.rows {
        bail!("{table} holds {count} rows, expected {}", args.rows);
    }
    println!(
        "    filled in {:.1} s; {:.0} MiB on disk with its index",
        began.elapsed().as_secs_f64(),
        mib(table_bytes as u64)
    );
    let statement = snapshot::copy_statement(&sql, "public", table).await?;
    step(&format!(
        "COPY … TO STDOUT once through this benchmark, untimed (warms the cache, counts its output): {statement}"
    ));
    let output = snapshot::count_copy(&args.pg_bin, &source, &statement).await?;
    if output.rows != args.rows {
        bail!("COPY wrote {} lines for {} rows", output.rows, args.rows);
    }
    println!(
        "    {} rows, {:.1} MiB of COPY text ({:.0} bytes a row)",
        thousands(output.rows as f64),
        mib(output.bytes),
        output.bytes as f64 / output.rows as f64
    );

    let spec = |name: &str, extra: Vec<String>| SnapshotSpec {
        binary: env.walproof_bin.clone(),
        brokers: stack.kafka_brokers.clone(),
        topic_prefix: format!("{}.{name}", topics.prefix()),
        slot: db.slot_name(&format!("snap_{name}")),
        table: format!("public.{table}"),
        extra_args: [
            args.snapshot_workers
                .filter(|_| env.features.snapshot_workers)
                .map(|n| vec!["--snapshot-workers".to_owned(), n.to_string()])
                .unwrap_or_default(),
            extra,
        ]
        .concat(),
        log: work_dir.join(format!("decode-{name}.log")),
        spill_dir: work_dir.join("spill"),
        timeout: Duration::from_secs(args.timeout_s),
        rss_cap: RSS_CAP,
    };
    let alone_args: Vec<String> = if env.features.debezium {
        vec!["--no-debezium".to_owned()]
    } else {
        Vec::new()
    };
    let alone_name = if env.features.debezium {
        "walproof decode --no-debezium (the decoder alone)"
    } else {
        "walproof decode (the decoder; this build has no Debezium publisher)"
    };

    // ---- Rounds of COPY, then walproof's snapshot.
    let mut copies: Vec<CopyRun> = Vec::new();
    let mut snapshots: Vec<Measured> = Vec::new();
    for round in 1..=args.runs {
        settle().await;
        step(&format!(
            "round {round}: COPY … TO STDOUT by psql -o /dev/null"
        ));
        let copy =
            snapshot::run_copy(&args.pg_bin, &source, &statement, &sql, env.broker_pid).await?;
        println!(
            "    {:.2} s, {} rows/s",
            copy.seconds,
            thousands(args.rows as f64 / copy.seconds)
        );
        copies.push(copy);
        settle().await;
        step(&format!(
            "round {round}: {alone_name}: walproof setup, then walproof decode --snapshot-mode initial_only"
        ));
        let spec = spec(&format!("r{round}"), alone_args.clone());
        snapshots.push(measure(&spec, &source, &sql, &env, args.rows, alone_name).await?);
    }
    let defaults = if env.features.debezium && !args.skip_debezium {
        settle().await;
        step(
            "walproof decode with default settings (+ the in-process Debezium publisher): walproof setup, then walproof decode --snapshot-mode initial_only",
        );
        let spec = spec("defaults", Vec::new());
        Some(
            measure(
                &spec,
                &source,
                &sql,
                &env,
                args.rows,
                "walproof decode, default settings (+ Debezium publisher)",
            )
            .await?,
        )
    } else {
        None
    };

    report(
        &args,
        &output,
        table_bytes as u64,
        &copies,
        &snapshots,
        defaults.as_ref(),
    );

    step("cleaning up: the benchmark database with its slots, and the topics");
    drop(sql);
    drop(db);
    drop(topics);
    if args.keep_logs {
        let _ = std::fs::remove_dir_all(work_dir.join("spill"));
        println!("    logs kept in {}", work_dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(())
}

/// Runs one snapshot, checks its ledger, counts its Debezium events, and removes its topics and
/// slot.
async fn measure(
    spec: &SnapshotSpec,
    source: &Source,
    sql: &tokio_postgres::Client,
    env: &BenchEnv,
    rows: u64,
    name: &str,
) -> anyhow::Result<Measured> {
    let command = format!("walproof decode {}", spec.decode_args(source).join(" "));
    println!("    {command}");
    let run = snapshot::run_snapshot(spec, source, sql, env.broker_pid).await?;
    println!(
        "    {:.2} s, {} rows/s, peak RSS {:.0} MiB{}",
        run.seconds,
        thousands(rows as f64 / run.seconds),
        mib(run.peak_rss),
        if run.rss_cap_hit {
            format!(
                " — stopped (SIGKILL) above the {:.0} GiB cap",
                RSS_CAP as f64 / (1u64 << 30) as f64
            )
        } else {
            String::new()
        }
    );
    let brokers = env.stack.kafka_brokers.clone();
    let ledger_topic = format!("{}.ledger", spec.topic_prefix);
    let ledger = {
        let (brokers, topic) = (brokers.clone(), ledger_topic.clone());
        tokio::task::spawn_blocking(move || {
            snapshot::read_ledger(&brokers, &topic, KEY_COLUMN, Duration::from_secs(600))
        })
        .await??
    };
    let expected_key_sum = u128::from(rows) * (u128::from(rows) + 1) / 2;
    println!(
        "    ledger {ledger_topic} read back in {:.1} s (every record's hash and link checked): {} records, {:.1} MiB, \
         {} transaction(s), {} snapshot rows, sum of {KEY_COLUMN} {}",
        ledger.seconds,
        ledger.records,
        mib(ledger.bytes),
        ledger.transactions,
        thousands(ledger.snapshot_rows as f64),
        if ledger.key_sum == expected_key_sum {
            "as expected"
        } else {
            "WRONG"
        }
    );
    if !run.rss_cap_hit {
        let problems: Vec<String> = [
            (ledger.snapshot_rows != rows)
                .then(|| format!("{} snapshot rows, expected {rows}", ledger.snapshot_rows)),
            (ledger.transactions != 1)
                .then(|| format!("{} complete transactions, expected 1", ledger.transactions)),
            (ledger.other_changes != 0).then(|| {
                format!(
                    "{} changes that are not snapshot rows",
                    ledger.other_changes
                )
            }),
            (ledger.key_sum != expected_key_sum).then(|| {
                format!(
                    "the keys sum to {}, expected {expected_key_sum}",
                    ledger.key_sum
                )
            }),
            (run.logged_rows.is_some_and(|logged| logged != rows))
                .then(|| format!("the decoder logged {:?} rows", run.logged_rows)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            bail!("the ledger of {name} is wrong: {}", problems.join("; "));
        }
    }
    let debezium_events =
        if spec.extra_args.iter().any(|a| a == "--no-debezium") || !env.features.debezium {
            None
        } else {
            let topic = format!("{}.public.{}", spec.topic_prefix, workload::SNAPSHOT_TABLE);
            let brokers = brokers.clone();
            Some(
                tokio::task::spawn_blocking(move || {
                    walproof_benches::broker::messages_in(&brokers, &topic).unwrap_or(0)
                })
                .await?,
            )
        };
    if let Some(events) = debezium_events {
        println!(
            "    its Debezium publisher had published {} of {} snapshot events when the process exited",
            thousands(events as f64),
            thousands(rows as f64)
        );
    }
    // The broker keeps topics in memory: free this run's now.
    walproof_benches::broker::delete_topics(&brokers, &format!("{}.", spec.topic_prefix), &[])
        .await?;
    walproof_benches::broker::delete_topics(
        &brokers,
        &format!("__debezium-heartbeat.{}", spec.topic_prefix),
        &[],
    )
    .await?;
    snapshot::drop_slot(sql, &spec.slot).await?;
    Ok(Measured {
        name: name.to_owned(),
        command,
        run,
        ledger,
        debezium_events,
    })
}

fn report(
    args: &Args,
    output: &CopyOutput,
    table_bytes: u64,
    copies: &[CopyRun],
    snapshots: &[Measured],
    defaults: Option<&Measured>,
) {
    let rows = args.rows as f64;
    let rate = |seconds: f64| rows / seconds;
    println!();
    println!("==================== results ====================");
    println!(
        "table: {} rows of 8 columns, {:.0} MiB on disk with its index; COPY text {:.1} MiB ({:.0} bytes a row)",
        thousands(rows),
        mib(table_bytes),
        mib(output.bytes),
        output.bytes as f64 / rows
    );
    let Some(best_copy) = copies.iter().map(|run| run.seconds).min_by(f64::total_cmp) else {
        return;
    };
    println!(
        "  {:<58} {:>8} {:>12} {:>10} {:>9}",
        "", "time", "rows/s", "peak RSS", "vs COPY"
    );
    for (i, copy) in copies.iter().enumerate() {
        println!(
            "  {:<58} {:>6.2} s {:>12} {:>6.0} MiB {:>9}",
            format!("COPY … TO STDOUT (psql -o /dev/null), round {}", i + 1),
            copy.seconds,
            thousands(rate(copy.seconds)),
            mib(copy.peak_rss),
            format!("{:.2}x", best_copy / copy.seconds)
        );
        println!(
            "      cpu: {}",
            cpu_line(&copy.cpu, copy.machine_busy, copy.seconds)
        );
    }
    let mut all: Vec<(String, &Measured)> = snapshots
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("{}, round {}", m.name, i + 1), m))
        .collect();
    if let Some(m) = defaults {
        all.push((m.name.clone(), m));
    }
    for (label, m) in &all {
        let run = &m.run;
        println!(
            "  {:<58} {:>6.2} s {:>12} {:>6.0} MiB {:>9}",
            label,
            run.seconds,
            thousands(rate(run.seconds)),
            mib(run.peak_rss),
            format!("{:.2}x", best_copy / run.seconds)
        );
        println!("      {}", m.command);
        println!(
            "      walproof setup took {:.2} s before (not counted); the decoder logged {} rows in {} \
             (listing the tables to the last record appended, without start-up, slot creation and close: {})",
            run.setup_seconds,
            run.logged_rows.map_or("?".into(), |n| thousands(n as f64)),
            run.logged_seconds
                .map_or("?".into(), |s| format!("{s:.2} s")),
            run.logged_seconds.map_or("-".into(), |s| format!(
                "{} rows/s = {:.2}x COPY",
                thousands(rate(s)),
                best_copy / s
            ))
        );
        let mut moments: Vec<String> = run
            .timeline
            .iter()
            .map(|(meaning, at)| {
                format!(
                    "{meaning} {}",
                    at.map_or("-".into(), |s| format!("{s:.2} s"))
                )
            })
            .collect();
        moments.push(format!("exited {:.2} s", run.seconds));
        println!("      timeline: {}", moments.join(", "));
        println!(
            "      ledger: {} records, {:.1} MiB ({:.0} bytes a row); peak RSS (VmHWM) {:.0} MiB, highest VmRSS sampled {:.0} MiB{}",
            m.ledger.records,
            mib(m.ledger.bytes),
            m.ledger.bytes as f64 / rows,
            mib(run.peak_rss),
            mib(run.sampled_peak_rss),
            match m.debezium_events {
                Some(events) => format!(
                    "; Debezium events published before exit: {}",
                    thousands(events as f64)
                ),
                None => String::new(),
            }
        );
        println!(
            "      cpu: {}",
            cpu_line(&run.cpu, run.machine_busy, run.seconds)
        );
        let mut threads: Vec<(&String, &f64)> =
            run.threads.iter().filter(|(_, s)| **s >= 0.01).collect();
        threads.sort_by(|a, b| b.1.total_cmp(a.1));
        let threads: Vec<String> = threads
            .iter()
            .map(|(name, s)| format!("{name} {s:.2} s"))
            .collect();
        println!("      decoder threads: {}", threads.join(", "));
    }
    println!(
        "  baseline: the best COPY … TO of {}: {best_copy:.2} s = {} rows/s",
        copies.len(),
        thousands(rate(best_copy))
    );
    let best_alone = snapshots
        .iter()
        .map(|m| m.run.seconds)
        .min_by(f64::total_cmp);
    let mut verdicts: Vec<(String, f64)> = Vec::new();
    if let (Some(seconds), Some(first)) = (best_alone, snapshots.first()) {
        verdicts.push((
            format!("{} (best of {})", first.name, snapshots.len()),
            seconds,
        ));
    }
    if let Some(m) = defaults {
        verdicts.push((m.name.clone(), m.run.seconds));
    }
    for (name, seconds) in verdicts {
        let ratio = best_copy / seconds;
        println!(
            "  TARGET snapshot >= {TARGET_RATIO}x COPY's rate — {name}: {:.2} s, {} rows/s = {ratio:.2}x {}",
            seconds,
            thousands(rate(seconds)),
            if ratio >= TARGET_RATIO {
                "MET"
            } else {
                "NOT MET"
            }
        );
    }
}
