//! The end-to-end latency benchmark: a source database with `walproof setup`, and `walproof
//! decode`, `walproof commit` and `walproof validate` running as their own processes; a steady
//! rate of one-row transactions (1,000 then 5,000 a second by default) and, for each, the time
//! from its commit at the source to its root attestation on `<prefix>.attestations`. Prints
//! p50/p90/p99/max per rate against the target p99 < 1 s, and says so when the pipeline does
//! not keep up. Fails only when something does not work, never on speed.
//!
//! Run it with `bash benches/run.sh validator` (builds the release binaries, loads
//! `.stack/env`).

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use tokio::process::Command;
use tokio_postgres::Client;
use walproof_benches::clients::{self, POLL, Source};
use walproof_benches::env::BenchEnv;
use walproof_benches::latency::{self, AttestationTail, Load, LoadRun};
use walproof_benches::procfs::CpuWatch;
use walproof_benches::report::{
    cores, cpu_line, duration, machine_line, percentile, settle, step, thousands,
};
use walproof_benches::validator::{self, Service, lsn_metric};
use walproof_benches::workload;
use walproof_core::Lsn;
use walproof_testkit::TestDatabase;
use walproof_testkit::topics::TestTopics;

/// Source commit to root attestation at a steady rate of small transactions.
#[derive(Debug, Parser)]
struct Args {
    /// Transactions a second, one load after the other.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    rates: Vec<u64>,
    /// Seconds each load lasts.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Client sessions sharing each load.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Rows in the table before the pipeline starts (the decoder's initial snapshot); updates
    /// pick one of them.
    #[arg(long, default_value_t = 100_000)]
    prefill_rows: u64,
    /// Width of the windows the latency is also printed by, seconds.
    #[arg(long, default_value_t = 5)]
    window_s: u64,
    /// Longest wait, after a load stopped, for its last attestation.
    #[arg(long, default_value_t = 120)]
    drain_timeout_s: u64,
    /// Run the committer without its store (`--in-memory`) instead of with a durable one.
    #[arg(long)]
    committer_in_memory: bool,
    /// Keep the services' logs (they are in a temporary directory, removed at the end).
    #[arg(long)]
    keep_logs: bool,
    /// The release `walproof` binary [default: next to this benchmark's binary].
    #[arg(long, env = "WALPROOF_BIN")]
    walproof_bin: Option<PathBuf>,
    /// Longest the pipeline may take to start and attest the initial snapshot, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

/// The target: p99 from source commit to attestation.
const P99_TARGET_SECONDS: f64 = 1.0;

/// `application_name` of the load's sessions.
const LOAD_APPLICATION: &str = "walproof-bench-load";

/// The pipeline's processes.
struct Pipeline {
    decoder: Service,
    committer: Service,
    validator: Service,
}

impl Pipeline {
    fn alive(&mut self) -> anyhow::Result<()> {
        self.decoder.alive()?;
        self.committer.alive()?;
        self.validator.alive()
    }

    async fn stop(self) -> anyhow::Result<()> {
        // Downstream first, so nothing waits on a stage that is gone.
        self.validator.stop().await?;
        self.committer.stop().await?;
        self.decoder.stop().await
    }
}

/// One attested transaction of a load.
struct Sample {
    /// Seconds from the load's start to its commit.
    at: f64,
    /// Seconds from its commit to its attestation read from the topic.
    latency: f64,
    /// The same, step by step, from the records' timestamps (CreateTime, when each stage
    /// produced its record; ms resolution): commit → ledger record, → root, → attestation, →
    /// read by this benchmark.
    steps: Option<[f64; 4]>,
}

/// The steps of [`Sample::steps`], as printed.
const STEPS: [&str; 4] = [
    "decoder (commit → ledger record produced)",
    "committer (→ root produced)",
    "validator (→ attestation produced)",
    "broker and consumer (→ attestation read)",
];

/// What one load measured.
struct Phase {
    rate: u64,
    load: LoadRun,
    /// Transactions not yet attested when the load stopped.
    backlog_at_end: usize,
    /// Seconds from the end of the load until its last transaction was attested (`None`: not
    /// within the drain timeout).
    drained: Option<f64>,
    /// Transactions of the load found in the ledger.
    in_ledger: usize,
    /// Each attested transaction.
    samples: Vec<Sample>,
    /// The validator's own mean of commit-to-attestation over the load, seconds.
    validator_mean: Option<f64>,
    cpu: Vec<(String, walproof_benches::procfs::Cpu)>,
    machine_busy: f64,
    seconds: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.rates.is_empty() && args.rates.iter().all(|r| *r > 0) && args.connections > 0,
        "give positive --rates and --connections"
    );
    let env = BenchEnv::load(args.walproof_bin.clone()).await?;
    let stack = &env.stack;
    let db = TestDatabase::create(stack, "bench_latency").await?;
    let shadow_db = TestDatabase::create(stack, "bench_latency_shadow").await?;
    let topics = TestTopics::new(stack, "bench_latency");
    let prefix = topics.prefix().to_owned();
    let work_dir =
        std::env::temp_dir().join(format!("walproof-bench-latency-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let sql = db.connect().await?;
    let (host, port, user) = db.host_port_user();
    let source = Source {
        host,
        port,
        user,
        database: db.name().to_owned(),
        publication: "bench_latency_pub".into(),
    };
    let shadow = Source {
        database: shadow_db.name().to_owned(),
        ..source.clone()
    };
    let slot = db.slot_name("bench_latency");
    let server: String = sql.query_one("SHOW server_version", &[]).await?.get(0);
    let settings: Vec<String> = sql
        .query(
            "SELECT name || '=' || setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_level') ORDER BY name",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    println!(
        "walproof validator latency benchmark: {}, Postgres {server} ({}), {}",
        machine_line(),
        settings.join(", "),
        env.broker_line()
    );
    println!(
        "    walproof binary {}; logs in {}",
        env.walproof_bin.display(),
        work_dir.display()
    );

    step(&format!(
        "database {}: table {} with {} rows; walproof setup (publication {}, DDL capture, slot {slot})",
        db.name(),
        workload::TABLE,
        thousands(args.prefill_rows as f64),
        source.publication
    ));
    sql.batch_execute(&format!(
        "CREATE TABLE {table} ({columns});
         INSERT INTO {table} SELECT {values} FROM generate_series(1::bigint, {rows}::bigint) g;",
        table = workload::TABLE,
        columns = workload::COLUMNS,
        values = workload::ROW_VALUES,
        rows = args.prefill_rows
    ))
    .await
    .context("creating and filling the table")?;
    // VACUUM cannot run in the implicit transaction of a multi-statement query: on its own.
    sql.batch_execute(&format!("VACUUM ANALYZE {}", workload::TABLE))
        .await
        .context("VACUUM ANALYZE")?;
    let setup = Command::new(&env.walproof_bin)
        .args([
            "setup",
            "--source-url",
            &source.url(),
            "--slot",
            &slot,
            "--publication",
            &source.publication,
            "--table",
            &format!("public.{}", workload::TABLE),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .output()
        .await
        .context("running walproof setup")?;
    if !setup.status.success() {
        bail!(
            "walproof setup failed ({}):\n{}{}",
            setup.status,
            String::from_utf8_lossy(&setup.stdout),
            String::from_utf8_lossy(&setup.stderr)
        );
    }

    let mut decode_args: Vec<String> = [
        "decode",
        "--source-url",
        &source.url(),
        "--slot",
        &slot,
        "--publication",
        &source.publication,
        "--brokers",
        &stack.kafka_brokers,
        "--topic-prefix",
        &prefix,
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let decoder_http = clients::free_address()?;
    decode_args.extend(["--metrics-addr".into(), decoder_http.clone()]);
    decode_args.extend([
        "--spill-dir".into(),
        work_dir.join("spill").display().to_string(),
    ]);
    if env.features.debezium {
        decode_args.push("--no-debezium".into());
    }
    let committer_args: Vec<String> = if args.committer_in_memory {
        vec!["--in-memory".into()]
    } else {
        vec![
            "--state-dir".into(),
            work_dir.join("committer").display().to_string(),
        ]
    };
    step(&format!(
        "starting walproof {} (initial snapshot, then streaming), walproof commit {}, walproof validate into {}",
        decode_args[1..]
            .iter()
            .filter(|arg| !arg.starts_with("postgres://"))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        committer_args.join(" "),
        shadow_db.name()
    ));
    let decoder = Service::start(
        &env.walproof_bin,
        &decode_args,
        &[],
        Some(decoder_http),
        &work_dir.join("decode.log"),
    )?;
    let committer = validator::start_committer(
        &env.walproof_bin,
        &stack.kafka_brokers,
        &prefix,
        &committer_args,
        &work_dir.join("commit.log"),
    )?;
    let validator = validator::start_validator(
        &env.walproof_bin,
        &stack.kafka_brokers,
        &prefix,
        &shadow.url(),
        &work_dir.join("validate.log"),
    )?;
    let mut pipeline = Pipeline {
        decoder,
        committer,
        validator,
    };
    let began = Instant::now();
    let snapshot_lsn = loop {
        tokio::time::sleep(POLL * 4).await;
        pipeline.alive()?;
        if let Some(metrics) = pipeline.validator.metrics().await {
            let attested = lsn_metric(&metrics, "walproof_validator_attested_lsn");
            if attested.as_u64() > 0
                && attested >= lsn_metric(&metrics, "walproof_validator_applied_lsn")
            {
                break attested;
            }
        }
        if began.elapsed() > Duration::from_secs(args.timeout_s) {
            bail!(
                "the initial snapshot was not attested within {} s; validator log {}:\n{}",
                args.timeout_s,
                pipeline.validator.log.display(),
                clients::log_tail(&pipeline.validator.log)
            );
        }
    };
    println!(
        "    the initial snapshot ({} rows) attested at {snapshot_lsn}, {:.1} s after start",
        thousands(args.prefill_rows as f64),
        began.elapsed().as_secs_f64()
    );
    let tail = AttestationTail::start(&stack.kafka_brokers, &format!("{prefix}.attestations"))?;
    // Postgres's sessions serving the pipeline, for their CPU time (the load's own sessions are
    // in "everything else").
    let mut sessions_served: Vec<(&str, u32)> = Vec::new();
    let walsender: Option<i32> = sql
        .query_one(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?
        .get(0);
    if let Some(pid) = walsender {
        sessions_served.push(("walsender (postgres)", pid as u32));
    }
    if let Some(pid) =
        validator::backend_of(&sql, shadow_db.name(), validator::SHADOW_APPLICATION).await?
    {
        sessions_served.push(("shadow backend (postgres)", pid));
    }

    let mut config = db.config().clone();
    config.application_name(LOAD_APPLICATION);
    let mut sessions = Vec::new();
    for _ in 0..args.connections {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        sessions.push(client);
    }
    let next_id = Arc::new(AtomicU64::new(args.prefill_rows + 1));
    let mut phases = Vec::new();
    for rate in args.rates.clone() {
        settle().await;
        step(&format!(
            "{} transactions/s for {} s from {} sessions (each an autocommitted insert of a new row or update of an existing one)",
            thousands(rate as f64),
            args.seconds,
            args.connections
        ));
        let (back, phase) = run_phase(
            &args,
            rate,
            sessions,
            next_id.clone(),
            &mut pipeline,
            &tail,
            &sql,
            &stack.kafka_brokers,
            &prefix,
            env.broker_pid,
            &sessions_served,
        )
        .await?;
        sessions = back;
        print_phase_summary(&phase);
        phases.push(phase);
    }
    tail.stop()?;
    step("stopping the pipeline");
    pipeline.stop().await?;

    println!();
    println!("==================== results ====================");
    println!(
        "latency from a transaction's commit at the source (its commit timestamp, carried in the ledger) to its root \
         attestation read from {prefix}.attestations by a consumer (fetch wait 5 ms); same machine, same clock"
    );
    println!(
        "pipeline: walproof decode --no-debezium, walproof commit {}, walproof validate, each its own process; \
         tansu in memory; Postgres on the same 2 cores",
        if args.committer_in_memory {
            "--in-memory"
        } else {
            "(durable store)"
        }
    );
    for phase in &phases {
        print_phase(phase, &args);
    }

    step("cleaning up: the databases with their slots, the topics");
    drop(sessions);
    drop(sql);
    drop(db);
    drop(shadow_db);
    drop(topics);
    if !args.keep_logs {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(())
}

/// The server's current WAL insert position.
async fn wal_insert_lsn(sql: &Client) -> anyhow::Result<Lsn> {
    let text: String = sql
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await?
        .get(0);
    text.parse().map_err(anyhow::Error::msg)
}

#[allow(clippy::too_many_arguments)]
async fn run_phase(
    args: &Args,
    rate: u64,
    sessions: Vec<Client>,
    next_id: Arc<AtomicU64>,
    pipeline: &mut Pipeline,
    tail: &AttestationTail,
    sql: &Client,
    brokers: &str,
    prefix: &str,
    broker_pid: Option<u32>,
    sessions_served: &[(&str, u32)],
) -> anyhow::Result<(Vec<Client>, Phase)> {
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    for (label, pid) in sessions_served {
        cpu.track(label, *pid, false);
    }
    cpu.track("walproof decode", pipeline.decoder.pid, false);
    cpu.track("walproof commit", pipeline.committer.pid, false);
    cpu.track("walproof validate", pipeline.validator.pid, false);
    cpu.track("this benchmark (load, tail)", std::process::id(), false);
    let before_metrics = pipeline.validator.metrics().await.unwrap_or_default();
    let from = wal_insert_lsn(sql).await?;
    let started_us = latency::unix_us();
    let started = Instant::now();
    let load = Load {
        rate: rate as f64,
        duration: Duration::from_secs(args.seconds),
        prefill: args.prefill_rows,
    };
    let (sessions, run) = latency::drive(sessions, load, next_id).await?;
    let seconds = started.elapsed().as_secs_f64();
    cpu.sample();
    let to = wal_insert_lsn(sql).await?;
    let committed = run.committed as usize;
    let backlog_at_end = committed.saturating_sub(tail.count_between(from, to));
    println!(
        "    {} transactions committed in {:.2} s = {} transactions/s ({} started >10 ms late, the latest {}); \
         {backlog_at_end} not attested yet",
        thousands(committed as f64),
        run.seconds,
        thousands(committed as f64 / args.seconds as f64),
        run.late,
        duration(run.max_late)
    );
    let load_end = Instant::now();
    let drain_timeout = Duration::from_secs(args.drain_timeout_s);
    let drained = loop {
        if tail.count_between(from, to) >= committed {
            break Some(load_end.elapsed().as_secs_f64());
        }
        if load_end.elapsed() > drain_timeout {
            break None;
        }
        pipeline.alive()?;
        tokio::time::sleep(POLL).await;
    };
    let after_metrics = pipeline.validator.metrics().await.unwrap_or_default();
    let mean = |metrics: &str| {
        (
            clients::metric(
                metrics,
                "walproof_validator_attestation_latency_seconds_sum",
            )
            .unwrap_or(0.0),
            clients::metric(
                metrics,
                "walproof_validator_attestation_latency_seconds_count",
            )
            .unwrap_or(0.0),
        )
    };
    let ((sum0, count0), (sum1, count1)) = (mean(&before_metrics), mean(&after_metrics));
    let validator_mean = (count1 > count0).then(|| (sum1 - sum0) / (count1 - count0));
    let (brokers, ledger) = (brokers.to_owned(), format!("{prefix}.ledger"));
    let roots_topic = format!("{prefix}.roots");
    let (times, roots) = tokio::task::spawn_blocking(move || {
        let wait = Duration::from_secs(60);
        anyhow::Ok((
            latency::commit_times(&brokers, &ledger, from, to, committed, wait)?,
            latency::root_times(&brokers, &roots_topic, from, to, committed, wait)?,
        ))
    })
    .await??;
    if times.len() > committed {
        bail!(
            "the ledger holds {} transactions between {from} and {to}; the load committed {committed}",
            times.len()
        );
    }
    let seen = tail.seen_between(from, to);
    let samples: Vec<Sample> = times
        .iter()
        .filter_map(|(lsn, committed)| {
            let seen = seen.get(lsn)?;
            let commit_us = committed.commit_us;
            let steps = match (committed.ledger_ms, roots.get(lsn), seen.produced_ms) {
                (Some(ledger), Some(root), Some(attestation)) => Some([
                    (ledger * 1000 - commit_us) as f64 / 1e6,
                    (root - ledger) as f64 / 1e3,
                    (attestation - root) as f64 / 1e3,
                    (seen.received_us - attestation * 1000) as f64 / 1e6,
                ]),
                _ => None,
            };
            Some(Sample {
                at: (commit_us - started_us) as f64 / 1e6,
                latency: (seen.received_us - commit_us) as f64 / 1e6,
                steps,
            })
        })
        .collect();
    Ok((
        sessions,
        Phase {
            rate,
            load: run,
            backlog_at_end,
            drained,
            in_ledger: times.len(),
            samples,
            validator_mean,
            cpu: cpu.report(),
            machine_busy: cpu.machine_busy(),
            seconds,
        },
    ))
}

/// Percentiles of a set of latencies, seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Spread {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

/// The [`Spread`] of `values`, sorted here.
fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(f64::total_cmp);
    Spread {
        p50: percentile(&values, 50.0),
        p90: percentile(&values, 90.0),
        p99: percentile(&values, 99.0),
        max: values.last().copied().unwrap_or(0.0),
    }
}

fn print_phase_summary(phase: &Phase) {
    let Spread { p50, p99, max, .. } = spread(phase.samples.iter().map(|s| s.latency).collect());
    println!(
        "    drained {}; latency p50 {}, p99 {}, max {}",
        phase
            .drained
            .map_or("NOT within the drain timeout".into(), |s| format!(
                "{s:.2} s after the load stopped"
            )),
        duration(p50),
        duration(p99),
        duration(max)
    );
}

fn print_phase(phase: &Phase, args: &Args) {
    let committed = phase.load.committed;
    let achieved = committed as f64 / args.seconds as f64;
    println!(
        "  {} transactions/s asked, {} achieved ({} committed in {} s by {} sessions; {} inserts, {} updates; \
         {} started >10 ms behind schedule, the latest by {})",
        thousands(phase.rate as f64),
        thousands(achieved),
        thousands(committed as f64),
        args.seconds,
        args.connections,
        thousands(phase.load.inserts as f64),
        thousands((committed - phase.load.inserts) as f64),
        phase.load.late,
        duration(phase.load.max_late)
    );
    if achieved < 0.95 * phase.rate as f64 {
        let saturated = phase.machine_busy > 0.9 * cores() * phase.seconds;
        println!(
            "      the load reached only {:.0}% of the asked rate: {}",
            100.0 * achieved / phase.rate as f64,
            if saturated {
                "the machine's cores were saturated (the pipeline, Postgres and the load share them), so the sessions \
                 could not commit faster"
            } else {
                "the sessions could not commit faster (try more --connections)"
            }
        );
    }
    let attested = phase.samples.len();
    let Spread { p50, p90, p99, max } = spread(phase.samples.iter().map(|s| s.latency).collect());
    println!(
        "      commit → attestation read from the topic: p50 {}  p90 {}  p99 {}  max {}  ({} of {} transactions attested{})",
        duration(p50),
        duration(p90),
        duration(p99),
        duration(max),
        thousands(attested as f64),
        thousands(committed as f64),
        if phase.in_ledger < committed as usize {
            format!(
                "; only {} in the ledger within 60 s",
                thousands(phase.in_ledger as f64)
            )
        } else {
            String::new()
        }
    );
    let steps: Vec<[f64; 4]> = phase.samples.iter().filter_map(|s| s.steps).collect();
    if !steps.is_empty() {
        let lines: Vec<String> = STEPS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let step = spread(steps.iter().map(|s| s[i]).collect());
                format!(
                    "{name}: p50 {}, p99 {}",
                    duration(step.p50),
                    duration(step.p99)
                )
            })
            .collect();
        println!(
            "      step by step, from each record's CreateTime (ms resolution):\n        {}",
            lines.join("\n        ")
        );
    }
    if let Some(mean) = phase.validator_mean {
        println!(
            "      the validator's own mean, commit → attestation queued (walproof_validator_attestation_latency_seconds): {}",
            duration(mean)
        );
    }
    let window = args.window_s.max(1) as f64;
    let windows = (args.seconds as f64 / window).ceil() as usize;
    let mut by_window: Vec<Vec<f64>> = vec![Vec::new(); windows.max(1)];
    for sample in &phase.samples {
        let index = ((sample.at / window).max(0.0) as usize).min(by_window.len() - 1);
        by_window[index].push(sample.latency);
    }
    let by_window: Vec<(usize, Spread)> = by_window
        .into_iter()
        .map(|values| (values.len(), spread(values)))
        .collect();
    let lines: Vec<String> = by_window
        .iter()
        .enumerate()
        .map(|(i, (count, window_spread))| {
            format!(
                "{:>3.0}–{:<3.0} s: {count:>6} tx, p50 {:>9}, p99 {:>9}, max {:>9}",
                i as f64 * window,
                (i + 1) as f64 * window,
                duration(window_spread.p50),
                duration(window_spread.p99),
                duration(window_spread.max)
            )
        })
        .collect();
    println!(
        "      by commit time:\n        {}",
        lines.join("\n        ")
    );
    println!(
        "      when the load stopped {} transactions were not attested yet; the last was attested {}",
        thousands(phase.backlog_at_end as f64),
        phase.drained.map_or(
            format!("NOT within {} s", args.drain_timeout_s),
            |s| format!("{s:.2} s later")
        )
    );
    println!(
        "      cpu during the load: {}",
        cpu_line(&phase.cpu, phase.machine_busy, phase.seconds)
    );
    if committed > 0 {
        println!("      {}", cpu_per_transaction(phase, committed));
    }
    // More than a second of the load still waiting for its attestation when the load stopped:
    // the pipeline fell behind, and the percentiles grow with the load's length.
    let behind = phase.backlog_at_end as f64 > achieved * P99_TARGET_SECONDS;
    let verdict = if phase.drained.is_none() || attested < committed as usize {
        format!(
            "NOT MET: {} of {} transactions were not attested within {} s after the load",
            thousands((committed as usize - attested) as f64),
            thousands(committed as f64),
            args.drain_timeout_s
        )
    } else if behind {
        format!(
            "NOT MET: the pipeline fell behind at {} transactions/s — {} transactions ({:.1} s of the load) were \
             still waiting for their attestation when the load stopped, so these latencies grow with the load's length \
             rather than measure a steady state",
            thousands(achieved),
            thousands(phase.backlog_at_end as f64),
            phase.backlog_at_end as f64 / achieved.max(1.0)
        )
    } else if achieved < phase.rate as f64 * 0.9 {
        // The load could not commit at the asked rate: no figure at that rate to judge.
        format!(
            "NOT MET at the asked rate: the load reached only {} transactions/s ({:.0}%); at that rate p99 is {} ({})",
            thousands(achieved),
            100.0 * achieved / phase.rate as f64,
            duration(p99),
            if p99 < P99_TARGET_SECONDS {
                "under the target"
            } else {
                "over the target"
            }
        )
    } else if p99 < P99_TARGET_SECONDS {
        "MET".to_owned()
    } else {
        "NOT MET".to_owned()
    };
    println!(
        "  TARGET p99 < {P99_TARGET_SECONDS:.0} s from source commit to attestation at {} transactions/s: p99 {} — {verdict}",
        thousands(phase.rate as f64),
        duration(p99)
    );
}

/// What each tracked process, and the whole machine, spent per committed transaction, and how
/// many cores the asked rate would take at the whole machine's cost: when the load could not
/// reach the rate, this says whether the machine could have carried it. Per-transaction costs
/// fall somewhat as the rate rises (more per batch, fewer wake-ups), so it is an estimate.
fn cpu_per_transaction(phase: &Phase, committed: u64) -> String {
    let per_tx = |seconds: f64| seconds * 1e6 / committed as f64;
    let parts: Vec<String> = phase
        .cpu
        .iter()
        .map(|(label, used)| {
            let name = label.split(" (").next().unwrap_or(label);
            format!("{name} {:.0} µs", per_tx(used.total()))
        })
        .collect();
    let ours: f64 = phase.cpu.iter().map(|(_, used)| used.total()).sum();
    let whole = per_tx(phase.machine_busy);
    format!(
        "cpu per committed transaction: {}, everything else (the load's sessions, other Postgres \
         processes) {:.0} µs; the whole machine {whole:.0} µs, so {} transactions/s would take {:.1} \
         cores at this cost (this machine has {:.0})",
        parts.join(", "),
        per_tx((phase.machine_busy - ours).max(0.0)),
        thousands(phase.rate as f64),
        whole * phase.rate as f64 / 1e6,
        cores()
    )
}
