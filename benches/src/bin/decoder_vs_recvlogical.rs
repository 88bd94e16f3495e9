//! The decoder benchmark: the same changes streamed once by `pg_recvlogical` (pgoutput) and once
//! by `walproof decode` into the ledger, from copies of one slot, in the same run; the archiver
//! and the validator over that ledger (the validator's replay next to Postgres's own ingest of
//! the same rows); then the decoder's peak memory during one big transaction. Prints figures
//! and ratios; fails only when something does not work, never on speed.
//!
//! Run it with `bash benches/run.sh` (builds the release binaries, loads `.stack/env`).

#![allow(clippy::print_stdout)] // a benchmark's output is its report

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use walproof_benches::clients::{
    self, DecoderFeatures, DecoderRun, DecoderSpec, Follow, RecvlogicalRun, Source,
};
use walproof_benches::env::BenchEnv;
use walproof_benches::ingest::{self, IngestPlan, IngestRun};
use walproof_benches::report::{GIB, cpu_line, machine_line, mib, settle, step, thousands};
use walproof_benches::validator::{self, CommitterRun, ValidatorRun};
use walproof_benches::workload::{self, Batch};
use walproof_benches::{broker, procfs};
use walproof_core::Lsn;
use walproof_testkit::TestDatabase;
use walproof_testkit::topics::TestTopics;

/// Decoder vs pg_recvlogical on the same slot contents, and the decoder's peak RSS during one
/// big transaction.
#[derive(Debug, Parser)]
struct Args {
    /// Rows inserted.
    #[arg(long, default_value_t = 1_000_000)]
    inserts: u64,
    /// Rows updated (the first ones inserted).
    #[arg(long, default_value_t = 200_000)]
    updates: u64,
    /// Rows deleted (the last ones inserted).
    #[arg(long, default_value_t = 100_000)]
    deletes: u64,
    /// Rows per transaction.
    #[arg(long, default_value_t = 10_000)]
    rows_per_transaction: u64,
    /// Rows of the single transaction of the memory phase; 0 skips the phase.
    #[arg(long, default_value_t = 1_000_000)]
    big_transaction_rows: u64,
    /// Spill threshold of the memory phase's reference run, large enough to hold the big
    /// transaction in memory.
    #[arg(long, default_value_t = 4_000_000_000)]
    in_memory_spill_threshold: u64,
    /// Skip the broker's raw produce ceiling.
    #[arg(long)]
    no_broker_ceiling: bool,
    /// Skip the archiver run over the decoder's ledger.
    #[arg(long)]
    no_archive: bool,
    /// Skip the validator run over the decoder's ledger (and its baseline, Postgres's own
    /// ingest of the same rows, and the committer run before it).
    #[arg(long)]
    no_validator: bool,
    /// Skip the runs with default settings, which include the in-process Debezium publisher
    /// (they write several GB of JSON to the broker and take a minute or two each).
    #[arg(long)]
    skip_debezium: bool,
    /// Longest wait for the in-process Debezium publisher to catch up after the ledger, in
    /// seconds.
    #[arg(long, default_value_t = 600)]
    debezium_timeout_s: u64,
    /// The release `walproof` binary [default: next to this benchmark's binary].
    #[arg(long, env = "WALPROOF_BIN")]
    walproof_bin: Option<PathBuf>,
    /// Directory of Postgres's client programs (pg_recvlogical).
    #[arg(
        long,
        env = "WALPROOF_PG_BIN",
        default_value = "/usr/lib/postgresql/15/bin"
    )]
    pg_bin: PathBuf,
    /// Longest a single client run may take, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout_s: u64,
}

/// Memory target of the issue: peak RSS during a 1M-row transaction (taken as MiB).
const RSS_TARGET_MIB: f64 = 256.0;

/// Memory the machine must have available before the default-settings run on the big
/// transaction (its Debezium publisher has been measured at ~9 GiB, the broker holds ~5 GiB).
const MIN_AVAILABLE_FOR_DEFAULTS: u64 = 16 << 30;

/// Resident memory at which a run is stopped instead of followed further.
const RSS_CAP: u64 = 12 << 30;

/// The target for the validator: its replay at this share of Postgres's own ingest of
/// the same rows.
const REPLAY_TARGET: f64 = 0.5;

/// What the validator phase measured.
struct ValidatorPhase {
    ingest: IngestRun,
    script_bytes: u64,
    committer: CommitterRun,
    validator: ValidatorRun,
    /// Rows and digest of the workload table on the source, the baseline's database and the
    /// shadow database.
    digests: [(i64, String); 3],
}

/// Everything the benchmark needs to start clients.
struct Bench {
    source: Source,
    pg_bin: PathBuf,
    broker_pid: Option<u32>,
    spec: DecoderSpec,
    features: DecoderFeatures,
    prefix: String,
    debezium_timeout: Duration,
}

impl Bench {
    async fn recvlogical(
        &self,
        sql: &tokio_postgres::Client,
        slot: &str,
        end: Lsn,
        changes: u64,
    ) -> anyhow::Result<RecvlogicalRun> {
        let run =
            clients::run_recvlogical(&self.pg_bin, &self.source, slot, end, sql, self.broker_pid)
                .await?;
        println!(
            "    {:.2} s, {} changes/s",
            run.seconds,
            thousands(changes as f64 / run.seconds)
        );
        Ok(run)
    }

    /// Runs the decoder into `<prefix>.<name>.*`; with Debezium on, also waits for its
    /// per-table topic to hold `debezium_messages`.
    #[allow(clippy::too_many_arguments)]
    async fn decoder(
        &self,
        sql: &tokio_postgres::Client,
        name: &str,
        slot: &str,
        end: Lsn,
        changes: u64,
        debezium_messages: Option<u64>,
        extra: &[String],
        work_dir: &Path,
    ) -> anyhow::Result<DecoderRun> {
        let topic_prefix = format!("{}.{name}", self.prefix);
        let follow = debezium_messages.map(|expected| Follow {
            topic: format!("{topic_prefix}.public.{}", workload::TABLE),
            expected,
            timeout: self.debezium_timeout,
            rss_cap: RSS_CAP,
        });
        let spec = DecoderSpec {
            topic_prefix,
            log: work_dir.join(format!("decode-{name}.log")),
            extra_args: [self.features.streaming_only_args(), extra.to_vec()].concat(),
            follow,
            ..self.spec.clone()
        };
        println!(
            "    walproof decode {} --slot {slot} --topic-prefix {}",
            spec.extra_args.join(" "),
            spec.topic_prefix
        );
        let run = clients::run_decoder(
            &spec,
            &self.source,
            slot,
            end,
            changes,
            sql,
            self.broker_pid,
        )
        .await?;
        let acked = run.times.acknowledged.unwrap_or_default();
        println!(
            "    {acked:.2} s to the ledger acknowledged, {} changes/s; peak RSS {:.0} MiB{}",
            thousands(changes as f64 / acked),
            mib(run.peak_rss),
            match (run.times.followed, run.followed_messages) {
                (Some(at), _) => format!("; Debezium topic complete at {at:.2} s"),
                (None, Some(n)) if run.rss_cap_hit => format!(
                    "; stopped at {:.0} MiB RSS with {n} Debezium events published",
                    mib(run.final_peak_rss)
                ),
                (None, Some(n)) => format!("; Debezium topic holds {n} messages, not complete"),
                (None, None) => String::new(),
            }
        );
        if run.changes != changes {
            bail!(
                "the decoder reports {} changes; the workload made {changes}",
                run.changes
            );
        }
        // The broker keeps topics in memory: free the run's topics (Debezium's are several GB
        // of JSON) now; only the main ledger is kept, for the broker ceiling.
        let keep = if name == "main" {
            vec![format!("{}.ledger", spec.topic_prefix)]
        } else {
            Vec::new()
        };
        broker::delete_topics(
            &self.spec.brokers,
            &format!("{}.", spec.topic_prefix),
            &keep,
        )
        .await?;
        Ok(run)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.updates + args.deletes <= args.inserts && args.rows_per_transaction > 0,
        "updates + deletes must not exceed inserts"
    );
    let env = BenchEnv::load(args.walproof_bin.clone()).await?;
    let (stack, broker_pid, walproof_bin, features) = (
        &env.stack,
        env.broker_pid,
        env.walproof_bin.clone(),
        env.features,
    );

    let db = TestDatabase::create(stack, "bench").await?;
    let topics = TestTopics::new(stack, "bench");
    let work_dir = std::env::temp_dir().join(format!("walproof-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let mut sql = db.connect().await?;
    let (host, port, user) = db.host_port_user();
    let source = Source {
        host,
        port,
        user,
        database: db.name().to_owned(),
        publication: "bench_pub".into(),
    };
    let server: String = sql.query_one("SHOW server_version", &[]).await?.get(0);
    println!(
        "walproof decoder benchmark: {}, Postgres {server}, {}",
        machine_line(),
        env.broker_line()
    );
    println!(
        "    walproof binary {} (in-process Debezium publisher: {}); logs in {}",
        walproof_bin.display(),
        if features.debezium {
            "yes, on by default"
        } else {
            "no"
        },
        work_dir.display()
    );
    let bench = Bench {
        source: source.clone(),
        pg_bin: args.pg_bin.clone(),
        broker_pid,
        spec: DecoderSpec {
            binary: walproof_bin.clone(),
            brokers: stack.kafka_brokers.clone(),
            topic_prefix: String::new(),
            extra_args: Vec::new(),
            log: PathBuf::new(),
            spill_dir: work_dir.join("spill"),
            timeout: Duration::from_secs(args.timeout_s),
            follow: None,
        },
        features,
        prefix: topics.prefix().to_owned(),
        debezium_timeout: Duration::from_secs(args.debezium_timeout_s),
    };
    // The decoder alone (the target) runs with --no-debezium when the binary has the
    // in-process Debezium publisher; the default configuration (with it) runs last in each
    // phase, because its gigabytes of JSON disturb whatever runs after it.
    let ledger_args: Vec<String> = if features.debezium {
        vec!["--no-debezium".to_owned()]
    } else {
        Vec::new()
    };
    let ledger_name = if features.debezium {
        "walproof decode --no-debezium (the decoder into the ledger)"
    } else {
        "walproof decode (the decoder into the ledger)"
    };
    let with_debezium = features.debezium && !args.skip_debezium;

    // ---- Phase 1: the workload, once, read by every client from copies of one slot.
    step(&format!(
        "database {}: table {}, publication {}",
        db.name(),
        workload::TABLE,
        source.publication
    ));
    workload::prepare(&sql, &source.publication).await?;
    let slot_first = db.slot_name("bench_recv1");
    let slot_ledger = db.slot_name("bench_decoder");
    let slot_second = db.slot_name("bench_recv2");
    let slot_default = db.slot_name("bench_defaults");
    workload::create_slot(&sql, &slot_first).await?;
    let start: String = sql
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot_first],
        )
        .await?
        .get(0);
    let per = args.rows_per_transaction;
    let (inserts, updates, deletes) = (
        args.inserts / per * per,
        args.updates / per * per,
        args.deletes / per * per,
    );
    let mut batches: Vec<Batch> = Vec::new();
    batches.extend(workload::ranges(1, inserts / per, per, workload::insert));
    batches.extend(workload::ranges(1, updates / per, per, workload::update));
    batches.extend(workload::ranges(
        inserts - deletes + 1,
        deletes / per,
        per,
        workload::delete,
    ));
    let changes: u64 = batches.iter().map(|b| b.rows).sum();
    step(&format!(
        "workload: {} inserts, {} updates, {} deletes in {} transactions of {} rows (slot {slot_first} created before it)",
        thousands(inserts as f64),
        thousands(updates as f64),
        thousands(deletes as f64),
        batches.len(),
        thousands(per as f64)
    ));
    let began = Instant::now();
    let last = workload::run(&mut sql, &batches).await?;
    let end = last.end;
    let wal: i64 = sql
        .query_one(
            "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)::bigint",
            &[&end.to_string(), &start],
        )
        .await?
        .get(0);
    println!(
        "    {} changes committed in {:.1} s; last commit ends at {end}; {:.0} MiB of WAL from the slot's start {start}",
        thousands(changes as f64),
        began.elapsed().as_secs_f64(),
        mib(wal as u64)
    );
    let mut copies = vec![slot_ledger.clone(), slot_second.clone()];
    if with_debezium {
        copies.push(slot_default.clone());
    }
    for copy in &copies {
        workload::copy_slot(&sql, &slot_first, copy).await?;
    }
    step(&format!(
        "copied slot {slot_first} to {}: all start at {start}",
        copies.join(", ")
    ));

    settle().await;
    step(&format!(
        "baseline 1: pg_recvlogical (pgoutput proto_version=1) on {slot_first} to /dev/null, --endpos {end}"
    ));
    let first = bench.recvlogical(&sql, &slot_first, end, changes).await?;
    settle().await;
    step(&format!("{ledger_name}, until Kafka acknowledged {end}"));
    let ledger_run = bench
        .decoder(
            &sql,
            "main",
            &slot_ledger,
            end,
            changes,
            None,
            &ledger_args,
            &work_dir,
        )
        .await?;
    if ledger_run.transactions != batches.len() as u64 {
        bail!(
            "the decoder reports {} transactions; the workload made {}",
            ledger_run.transactions,
            batches.len()
        );
    }
    settle().await;
    step(&format!(
        "baseline 2: pg_recvlogical on {slot_second} (the same changes again, after the decoder)"
    ));
    let second = bench.recvlogical(&sql, &slot_second, end, changes).await?;

    let archive = if args.no_archive {
        None
    } else {
        let prefix = format!("{}.main", topics.prefix());
        settle().await;
        step(&format!(
            "walproof archive: {prefix}.ledger from its first record into Parquet in a local directory, until every change is in a file"
        ));
        let run = walproof_benches::archive::run_archive(
            &bench.spec.binary,
            &bench.spec.brokers,
            &prefix,
            &work_dir.join("archive"),
            changes,
            Duration::from_millis(500),
            Duration::from_secs(args.timeout_s),
        )
        .await?;
        println!(
            "    {:.2} s, {} rows/s, {} files, {:.1} MiB of Parquet ({:.1} bytes per row); peak RSS {:.0} MiB",
            run.seconds,
            thousands(run.rows as f64 / run.seconds),
            run.files,
            mib(run.bytes),
            run.bytes as f64 / run.rows.max(1) as f64,
            mib(run.peak_rss)
        );
        Some(run)
    };

    let validation = if args.no_validator {
        None
    } else {
        let prefix = format!("{}.main", topics.prefix());
        let plan = IngestPlan {
            inserts,
            updates,
            deletes,
            rows_per_transaction: per,
        };
        step(&format!(
            "validator baseline, Postgres's own ingest of the same rows: writing its psql script \
             (COPY of the {} inserted rows, the updated rows' new values by key, the deleted keys; untimed)",
            thousands(inserts as f64)
        ));
        let script = work_dir.join("ingest.sql");
        let script_bytes =
            ingest::write_script(&args.pg_bin, &source, &sql, &plan, &script).await?;
        println!(
            "    {:.0} MiB of SQL and COPY text in {}",
            mib(script_bytes),
            script.display()
        );
        let ingest_db = TestDatabase::create(stack, "bench_ingest").await?;
        let ingest_sql = ingest_db.connect().await?;
        let target = Source {
            database: ingest_db.name().to_owned(),
            ..source.clone()
        };
        settle().await;
        step(&format!(
            "validator baseline: psql -f {} into an empty {} in the fresh database {} (one session, synchronous_commit off)",
            script.display(),
            workload::TABLE,
            ingest_db.name()
        ));
        let ingest_run = ingest::run_ingest(
            &args.pg_bin,
            &target,
            &ingest_sql,
            &plan,
            &script,
            broker_pid,
        )
        .await?;
        let _ = std::fs::remove_file(&script);
        println!(
            "    {:.2} s, {} changes/s",
            ingest_run.seconds,
            thousands(changes as f64 / ingest_run.seconds)
        );

        settle().await;
        step(&format!(
            "walproof commit --in-memory over {prefix}.ledger, until it applied the last transaction ({})",
            last.lsn
        ));
        let committer = validator::run_committer(
            &bench.spec.binary,
            &bench.spec.brokers,
            &prefix,
            last.lsn,
            &work_dir.join("commit-main.log"),
            Duration::from_secs(args.timeout_s),
        )
        .await?;
        println!(
            "    {:.2} s, {} changes/s; peak RSS {:.0} MiB",
            committer.seconds,
            thousands(changes as f64 / committer.seconds),
            mib(committer.peak_rss)
        );

        let shadow_db = TestDatabase::create(stack, "bench_shadow").await?;
        let shadow = Source {
            database: shadow_db.name().to_owned(),
            ..source.clone()
        };
        settle().await;
        step(&format!(
            "walproof validate: {prefix}.ledger from its first record into the empty shadow database {}, \
             until it applied {} and attested its root",
            shadow_db.name(),
            last.lsn
        ));
        let run = validator::run_validator(
            &bench.spec.binary,
            &bench.spec.brokers,
            &prefix,
            &shadow.url(),
            shadow_db.name(),
            last.lsn,
            batches.len() as u64,
            changes,
            &sql,
            broker_pid,
            &work_dir.join("validate-main.log"),
            Duration::from_secs(args.timeout_s),
        )
        .await?;
        let applied = run.times.applied.unwrap_or_default();
        println!(
            "    {applied:.2} s to the last transaction applied, {} changes/s; all {} roots attested at {:.2} s; peak RSS {:.0} MiB",
            thousands(changes as f64 / applied),
            run.attestations,
            run.times.attested.unwrap_or_default(),
            mib(run.peak_rss)
        );
        step(
            "comparing the table on the source, in the baseline's database and in the shadow database",
        );
        let digests = [
            ingest::table_digest(&db.connect().await?, workload::TABLE).await?,
            ingest::table_digest(&ingest_sql, workload::TABLE).await?,
            ingest::table_digest(&shadow_db.connect().await?, workload::TABLE).await?,
        ];
        if digests[1] != digests[0] || digests[2] != digests[0] {
            bail!(
                "the rows differ: source {:?}, Postgres's own ingest {:?}, the validator's shadow {:?}",
                digests[0],
                digests[1],
                digests[2]
            );
        }
        println!(
            "    all three hold the same {} rows",
            thousands(digests[0].0 as f64)
        );
        drop(ingest_sql);
        drop(ingest_db);
        drop(shadow_db);
        Some(ValidatorPhase {
            ingest: ingest_run,
            script_bytes,
            committer,
            validator: run,
            digests,
        })
    };

    let ceiling = if args.no_broker_ceiling {
        None
    } else {
        let ledger = format!("{}.main.ledger", topics.prefix());
        settle().await;
        step(&format!(
            "broker ceiling: read {ledger} back, produce the same records to a fresh topic with the ledger producer's settings"
        ));
        let brokers = stack.kafka_brokers.clone();
        let read_from = ledger.clone();
        let records = tokio::task::spawn_blocking(move || {
            broker::read_all(&brokers, &read_from, Duration::from_secs(300))
        })
        .await??;
        let bytes: usize = records
            .iter()
            .map(|(k, v)| v.len() + k.as_ref().map_or(0, Vec::len))
            .sum();
        let raw = format!("{}.raw", topics.prefix());
        broker::create_topic(&stack.kafka_brokers, &raw).await?;
        let mut cpu = procfs::CpuWatch::default();
        if let Some(pid) = broker_pid {
            cpu.track("broker (tansu)", pid, false);
        }
        let seconds = broker::produce_all(&stack.kafka_brokers, &raw, &records).await?;
        cpu.sample();
        println!(
            "    {} records, {:.1} MiB ({:.0} KiB each): produced and acknowledged in {seconds:.2} s = {:.1} MiB/s",
            records.len(),
            mib(bytes as u64),
            bytes as f64 / records.len().max(1) as f64 / 1024.0,
            mib(bytes as u64) / seconds
        );
        let count = records.len();
        drop(records);
        broker::delete_topics(&stack.kafka_brokers, &format!("{}.", topics.prefix()), &[]).await?;
        Some((count, bytes, seconds, cpu.report(), cpu.machine_busy()))
    };

    let default_run = if with_debezium {
        settle().await;
        step(&format!(
            "walproof decode with default settings (+ Debezium topics) until Kafka acknowledged {end}, \
             then until its Debezium publisher filled {}.defaults.public.{}",
            topics.prefix(),
            workload::TABLE
        ));
        let events = changes + deletes; // a tombstone follows each delete event
        Some(
            bench
                .decoder(
                    &sql,
                    "defaults",
                    &slot_default,
                    end,
                    changes,
                    Some(events),
                    &[],
                    &work_dir,
                )
                .await?,
        )
    } else {
        None
    };

    // ---- Phase 2: peak memory during one big transaction.
    let memory = if args.big_transaction_rows == 0 {
        None
    } else {
        let rows = args.big_transaction_rows;
        let slot_spill = db.slot_name("bench_big_spill");
        let slot_base = db.slot_name("bench_big_recv");
        let slot_memory = db.slot_name("bench_big_memory");
        let slot_big_default = db.slot_name("bench_big_defaults");
        workload::create_slot(&sql, &slot_spill).await?;
        step(&format!(
            "memory: one transaction inserting {} rows (slot {slot_spill} created before it)",
            thousands(rows as f64)
        ));
        let began = Instant::now();
        let big_end = workload::run(
            &mut sql,
            &[workload::insert(args.inserts + 1, args.inserts + rows)],
        )
        .await?
        .end;
        println!(
            "    committed in {:.1} s; it ends at {big_end}",
            began.elapsed().as_secs_f64()
        );
        for copy in [&slot_base, &slot_memory, &slot_big_default] {
            workload::copy_slot(&sql, &slot_spill, copy).await?;
        }
        settle().await;
        step("memory: pg_recvlogical on the big transaction (reference)");
        let base = bench.recvlogical(&sql, &slot_base, big_end, rows).await?;
        settle().await;
        step(&format!(
            "memory: {ledger_name}, spill threshold 64 MiB (the default)"
        ));
        let spilled = bench
            .decoder(
                &sql,
                "big_spill",
                &slot_spill,
                big_end,
                rows,
                None,
                &ledger_args,
                &work_dir,
            )
            .await?;
        settle().await;
        step(&format!(
            "memory: the same with --spill-threshold-bytes {} (held in memory, for reference)",
            args.in_memory_spill_threshold
        ));
        let threshold = [
            ledger_args.clone(),
            vec![
                "--spill-threshold-bytes".to_owned(),
                args.in_memory_spill_threshold.to_string(),
            ],
        ]
        .concat();
        let held = bench
            .decoder(
                &sql,
                "big_memory",
                &slot_memory,
                big_end,
                rows,
                None,
                &threshold,
                &work_dir,
            )
            .await?;
        let available = procfs::memory_available().unwrap_or(0);
        let defaults = if !with_debezium {
            None
        } else if available < MIN_AVAILABLE_FOR_DEFAULTS {
            println!(
                "    skipping walproof decode with default settings on the big transaction: only {:.1} GiB of memory \
                 available, it needs about {:.0} GiB",
                available as f64 / GIB,
                MIN_AVAILABLE_FOR_DEFAULTS as f64 / GIB
            );
            None
        } else {
            settle().await;
            step("memory: walproof decode with default settings (+ Debezium topics)");
            Some(
                bench
                    .decoder(
                        &sql,
                        "big_defaults",
                        &slot_big_default,
                        big_end,
                        rows,
                        Some(rows),
                        &[],
                        &work_dir,
                    )
                    .await?,
            )
        };
        Some((rows, base, spilled, held, defaults))
    };

    // ---- The report.
    println!();
    println!("==================== results ====================");
    println!(
        "workload: {} changes in {} transactions of {} rows; {:.0} MiB of WAL decoded by each client",
        thousands(changes as f64),
        batches.len(),
        thousands(per as f64),
        mib(wal as u64)
    );
    let rate = |seconds: f64| changes as f64 / seconds;
    let report_recv = |name: &str, run: &RecvlogicalRun| {
        println!(
            "  {name:<62} {:>7.2} s {:>11} changes/s",
            run.seconds,
            thousands(rate(run.seconds))
        );
        println!(
            "      cpu: {}",
            cpu_line(&run.cpu, run.machine_busy, run.seconds)
        );
    };
    // The baseline is the mean time of the two pg_recvlogical runs around the decoder's.
    let baseline = (first.seconds + second.seconds) / 2.0;
    let report_decoder = |name: &str, run: &DecoderRun| {
        let acked = run.times.acknowledged.unwrap_or_default();
        println!(
            "  {name:<62} {acked:>7.2} s {:>11} changes/s  = {:.2}x pg_recvlogical (ledger acknowledged)",
            thousands(rate(acked)),
            baseline / acked
        );
        print_decoder_detail(run, acked);
    };
    report_recv("pg_recvlogical, run 1 (before the decoder)", &first);
    report_decoder(ledger_name, &ledger_run);
    report_recv("pg_recvlogical, run 2 (after the decoder)", &second);
    if let Some(run) = &default_run {
        report_decoder("walproof decode, default settings (+ Debezium topics)", run);
        if let Some(at) = run.times.followed {
            println!(
                "      the Debezium topics were complete {at:.2} s after start: {} changes/s end to end",
                thousands(rate(at))
            );
        }
    }
    println!(
        "  baseline: mean of the two pg_recvlogical runs, {baseline:.2} s = {} changes/s",
        thousands(rate(baseline))
    );
    let mut verdicts = vec![(ledger_name, &ledger_run)];
    if let Some(run) = &default_run {
        verdicts.push(("walproof decode, default settings (+ Debezium topics)", run));
    }
    for (name, run) in verdicts {
        let acked = run.times.acknowledged.unwrap_or_default();
        let ratio = baseline / acked;
        println!(
            "  TARGET decoder >= 1.0x pg_recvlogical with the ledger acknowledged — {name}: {ratio:.2}x {}",
            if ratio >= 1.0 { "MET" } else { "NOT MET" }
        );
        if let Some(slot_confirmed) = run.times.slot_confirmed {
            println!(
                "      (timed to the slot's confirmed_flush_lsn instead, which trails the acknowledgement by up to \
                 the decoder's 1 s status interval: {slot_confirmed:.2} s, {:.2}x)",
                baseline / slot_confirmed
            );
        }
    }
    if let Some(run) = &archive {
        let acked = ledger_run.times.acknowledged.unwrap_or_default();
        println!(
            "  walproof archive (the ledger into Parquet, zstd, local directory) {:>7.2} s {:>11} rows/s = {:.2}x the decoder; \
             {:.1} MiB/s of Parquet, {:.1} bytes per row, {} files; peak RSS {:.0} MiB; cpu {:.2} s user + {:.2} s system",
            run.seconds,
            thousands(run.rows as f64 / run.seconds),
            acked / run.seconds,
            mib(run.bytes) / run.seconds,
            run.bytes as f64 / run.rows.max(1) as f64,
            run.files,
            mib(run.peak_rss),
            run.cpu.user,
            run.cpu.system
        );
        println!(
            "      (the last roll waits up to 0.5 s, the roll interval, after the last change arrives)"
        );
    }
    if let Some(phase) = &validation {
        print_validation(phase, changes, batches.len());
    }
    if let Some((records, bytes, seconds, cpu, machine)) = &ceiling {
        println!(
            "  broker ceiling: the ledger's {records} records ({:.1} MiB) re-produced in {seconds:.2} s = {:.1} MiB/s, \
             i.e. {} changes/s of this workload ({:.2}x pg_recvlogical)",
            mib(*bytes as u64),
            mib(*bytes as u64) / seconds,
            thousands(rate(*seconds)),
            baseline / seconds
        );
        println!("      cpu: {}", cpu_line(cpu, *machine, *seconds));
    }
    if let Some((rows, base, spilled, held, defaults)) = &memory {
        println!(
            "memory: one transaction of {} inserted rows",
            thousands(*rows as f64)
        );
        println!(
            "  pg_recvlogical (reference)                      {:>7.2} s {:>11} changes/s",
            base.seconds,
            thousands(*rows as f64 / base.seconds)
        );
        println!(
            "      cpu: {}",
            cpu_line(&base.cpu, base.machine_busy, base.seconds)
        );
        let mut runs = vec![
            (format!("{ledger_name}, spill threshold 64 MiB"), spilled),
            (
                format!(
                    "{ledger_name}, --spill-threshold-bytes {} (in memory)",
                    args.in_memory_spill_threshold
                ),
                held,
            ),
        ];
        if let Some(run) = defaults {
            runs.push((
                "walproof decode, default settings (+ Debezium topics)".to_owned(),
                run,
            ));
        }
        for (name, run) in runs {
            let acked = run.times.acknowledged.unwrap_or_default();
            println!("  {name}:");
            println!(
                "      peak RSS (VmHWM) {:.0} MiB until the ledger was acknowledged{}",
                mib(run.peak_rss),
                match (run.followed_messages, run.rss_cap_hit) {
                    (_, true) => format!(
                        ", over {:.0} MiB afterwards (stopped there, {} Debezium events published)",
                        mib(run.final_peak_rss),
                        run.followed_messages.unwrap_or(0)
                    ),
                    (Some(_), false) => format!(
                        ", {:.0} MiB until its Debezium topic was complete",
                        mib(run.final_peak_rss)
                    ),
                    (None, false) => String::new(),
                }
            );
            println!(
                "      {acked:.2} s to acknowledged, {} changes/s = {:.2}x pg_recvlogical; spilled transactions: {}",
                thousands(*rows as f64 / acked),
                base.seconds / acked,
                clients::metric(&run.metrics, "walproof_decoder_spilled_transactions_total")
                    .unwrap_or(0.0)
            );
            print_decoder_detail(run, acked);
        }
        let mut verdicts = vec![(ledger_name, spilled)];
        if let Some(run) = defaults {
            verdicts.push(("walproof decode, default settings (+ Debezium topics)", run));
        }
        for (name, run) in verdicts {
            let peak = run.final_peak_rss.max(run.peak_rss);
            println!(
                "  TARGET peak RSS < {RSS_TARGET_MIB:.0} MB during a {}-row transaction — {name}: {:.0} MiB {}",
                thousands(*rows as f64),
                mib(peak),
                if mib(peak) < RSS_TARGET_MIB && !run.rss_cap_hit {
                    "MET"
                } else {
                    "NOT MET"
                }
            );
        }
    }

    step("cleaning up: the benchmark database with its slots, and the topics");
    drop(sql);
    drop(db);
    drop(topics);
    let _ = std::fs::remove_dir_all(&work_dir);
    Ok(())
}

fn print_decoder_detail(run: &DecoderRun, acked: f64) {
    let t = &run.times;
    let at = |moment: Option<f64>| moment.map_or("-".into(), |s| format!("{s:.2} s"));
    println!(
        "      timeline: /metrics up {}, first transaction appended {}, all appended {}, acknowledged {}, slot confirmed {}{}",
        at(t.metrics_up),
        at(t.first_change),
        at(t.all_appended),
        at(t.acknowledged),
        at(t.slot_confirmed),
        match (t.followed, run.followed_messages) {
            (Some(_), _) => format!(", Debezium topic complete {}", at(t.followed)),
            (None, Some(n)) => format!(", Debezium topic incomplete ({n} messages)"),
            (None, None) => String::new(),
        }
    );
    println!(
        "      cpu until acknowledged: {}",
        cpu_line(&run.cpu, run.machine_busy, acked)
    );
    let mut threads: Vec<(&String, &f64)> =
        run.threads.iter().filter(|(_, s)| **s >= 0.01).collect();
    threads.sort_by(|a, b| b.1.total_cmp(a.1));
    let threads: Vec<String> = threads
        .iter()
        .map(|(name, s)| format!("{name} {s:.2} s"))
        .collect();
    println!("      decoder threads: {}", threads.join(", "));
    let latency_sum = clients::metric(
        &run.metrics,
        "walproof_decoder_kafka_ack_latency_seconds_sum",
    )
    .unwrap_or(0.0);
    let latency_count = clients::metric(
        &run.metrics,
        "walproof_decoder_kafka_ack_latency_seconds_count",
    )
    .unwrap_or(0.0);
    let bytes =
        clients::metric(&run.metrics, "walproof_decoder_decoded_bytes_total").unwrap_or(0.0);
    println!(
        "      pgoutput decoded {:.0} MiB; acknowledgement updates {latency_count:.0}, mean produce-to-ack latency {:.0} ms",
        bytes / (1024.0 * 1024.0),
        1000.0 * latency_sum / latency_count.max(1.0)
    );
}

fn print_validation(phase: &ValidatorPhase, changes: u64, transactions: usize) {
    let rate = |seconds: f64| thousands(changes as f64 / seconds);
    let ingest = &phase.ingest;
    println!(
        "  {:<62} {:>7.2} s {:>11} changes/s",
        "Postgres's own ingest of the same rows (baseline, psql -f)",
        ingest.seconds,
        rate(ingest.seconds)
    );
    println!(
        "      one session, synchronous_commit off: COPY … FROM STDIN of the inserted rows {:.2} s, then per source \
         transaction one UPDATE … FROM (VALUES …) of its new rows by key (hash and merge joins off: through the primary \
         key) {:.2} s, one DELETE … WHERE id = ANY(…) of its keys {:.2} s ({:.0} MiB of SQL and COPY text; values as \
         text, like the ledger's)",
        ingest.statements[0],
        ingest.statements[1],
        ingest.statements[2],
        mib(phase.script_bytes)
    );
    println!(
        "      cpu: {}",
        cpu_line(&ingest.cpu, ingest.machine_busy, ingest.seconds)
    );
    let run = &phase.validator;
    let applied = run.times.applied.unwrap_or_default();
    let ratio = ingest.seconds / applied;
    println!(
        "  {:<62} {applied:>7.2} s {:>11} changes/s  = {ratio:.2}x Postgres's own ingest",
        "walproof validate (the ledger replayed into a shadow database)",
        rate(applied)
    );
    let at = |moment: Option<f64>| moment.map_or("-".into(), |s| format!("{s:.2} s"));
    println!(
        "      timed from process start until walproof_validator_applied_lsn reached the last transaction; {} transactions, \
         {} changes applied, each source transaction in one SQL transaction with the progress row; roots recomputed \
         and signed along the way",
        run.transactions,
        thousands(run.changes as f64)
    );
    if let Some(first) = run.times.first_applied.filter(|first| *first < applied) {
        // The transactions are of equal size: those after the first, without start-up.
        let after_first = changes as f64 * (1.0 - 1.0 / transactions.max(1) as f64);
        let steady = after_first / (applied - first);
        println!(
            "      the {} transactions after the first (without start-up: connecting, reading the attestations topic, the \
             first ledger fetch): {:.2} s, {} changes/s = {:.2}x Postgres's own ingest",
            transactions.saturating_sub(1),
            applied - first,
            thousands(steady),
            steady / (changes as f64 / ingest.seconds)
        );
    }
    println!(
        "      timeline: /metrics up {}, first transaction applied {}, last applied {}, its root attested {} ({} of {transactions} roots attested)",
        at(run.times.metrics_up),
        at(run.times.first_applied),
        at(run.times.applied),
        at(run.times.attested),
        run.attestations
    );
    println!(
        "      peak RSS (VmHWM) {:.0} MiB when the last transaction was applied, {:.0} MiB at the end; deep audits run: {}",
        mib(run.peak_rss),
        mib(run.final_peak_rss),
        clients::metric(&run.metrics, "walproof_validator_audits_total").unwrap_or(0.0)
    );
    println!(
        "      cpu until applied: {}",
        cpu_line(&run.cpu, run.machine_busy, applied)
    );
    let mut threads: Vec<(&String, &f64)> =
        run.threads.iter().filter(|(_, s)| **s >= 0.01).collect();
    threads.sort_by(|a, b| b.1.total_cmp(a.1));
    let threads: Vec<String> = threads
        .iter()
        .map(|(name, s)| format!("{name} {s:.2} s"))
        .collect();
    println!("      validator threads: {}", threads.join(", "));
    let committer = &phase.committer;
    println!(
        "  walproof commit --in-memory over the same ledger, before the validator (context): {:.2} s, {} changes/s; \
         peak RSS {:.0} MiB; cpu {:.2} s user + {:.2} s system",
        committer.seconds,
        rate(committer.seconds),
        mib(committer.peak_rss),
        committer.cpu.user,
        committer.cpu.system
    );
    println!(
        "  the source, the baseline's database and the shadow database hold the same {} rows (md5 {})",
        thousands(phase.digests[0].0 as f64),
        phase.digests[0].1
    );
    println!(
        "  TARGET validator replay >= {REPLAY_TARGET}x Postgres's own ingest of the same rows: {ratio:.2}x {}",
        if ratio >= REPLAY_TARGET {
            "MET"
        } else {
            "NOT MET"
        }
    );
}
