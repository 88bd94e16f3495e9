//! The snapshot benchmark's clients, on the same table: Postgres's own `COPY … TO STDOUT` by
//! `psql` into /dev/null (the baseline), and `walproof setup` + `walproof decode
//! --snapshot-mode initial_only` (the initial snapshot into the ledger, then exit). Each is timed
//! wall-clock from process start to exit, with CPU time and peak memory read from `/proc`; the
//! ledger a snapshot wrote is read back and checked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_postgres::Client;
use walproof_core::ident::quote_ident;
use walproof_core::{
    CANONICAL_SESSION_SETTINGS, Chain, EntryBody, Op, Progress, Reassembler, RelationId,
    SealedEntry,
};

use crate::clients::{Source, log_tail};
use crate::procfs::{self, Cpu, CpuWatch};

/// How often a running client's memory is read (`VmHWM` is the kernel's own high-water mark,
/// so a sample misses nothing but what happens after the last one).
const POLL: Duration = Duration::from_millis(10);

/// Every how many polls CPU times are read.
const CPU_EVERY: u32 = 5;

/// Every how many polls the server's sessions are listed, to find a client's backends.
const BACKENDS_EVERY: u32 = 10;

/// `application_name` of the baseline's `psql` session, to find its backend.
const COPY_APPLICATION: &str = "walproof-bench-copy";

/// The statement walproof's snapshot runs to copy `schema.table`:
/// `COPY (SELECT "c1", "c2", … FROM ONLY "schema"."table") TO STDOUT`.
pub async fn copy_statement(sql: &Client, schema: &str, table: &str) -> anyhow::Result<String> {
    let rows = sql
        .query(
            "SELECT a.attname::text FROM pg_attribute a \
             WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass \
             AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .with_context(|| format!("listing the columns of {schema}.{table}"))?;
    let columns: Vec<String> = rows
        .iter()
        .map(|row| quote_ident(row.get(0)).into_owned())
        .collect();
    anyhow::ensure!(!columns.is_empty(), "{schema}.{table} has no columns");
    Ok(format!(
        "COPY (SELECT {} FROM ONLY {}.{}) TO STDOUT",
        columns.join(", "),
        quote_ident(schema),
        quote_ident(table)
    ))
}

/// `psql` running `statement` once, under walproof's canonical session settings (`PGOPTIONS`),
/// so COPY's output is byte for byte what walproof's snapshot sessions receive.
fn psql(pg_bin: &Path, source: &Source, statement: &str) -> Command {
    let options: Vec<String> = CANONICAL_SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("-c {name}={value}"))
        .collect();
    let mut command = Command::new(pg_bin.join("psql"));
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!(
            "host={} port={} user={} dbname={}",
            source.host, source.port, source.user, source.database
        ))
        .arg("-c")
        .arg(statement)
        .env("PGOPTIONS", options.join(" "))
        .env("PGAPPNAME", COPY_APPLICATION)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The sessions of `database` whose `application_name` starts with `application`:
/// `(pid, application_name, backend_type)`.
async fn backends(
    sql: &Client,
    database: &str,
    application: &str,
) -> anyhow::Result<Vec<(u32, String, String)>> {
    let rows = sql
        .query(
            "SELECT pid, application_name, backend_type FROM pg_stat_activity \
             WHERE datname = $1 AND starts_with(application_name, $2) AND pid <> pg_backend_pid()",
            &[&database, &application],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, i32>(0) as u32, row.get(1), row.get(2)))
        .collect())
}

/// What `COPY … TO STDOUT` yields: counted once, untimed, by reading `psql`'s output here.
#[derive(Debug, Clone, Copy)]
pub struct CopyOutput {
    /// Lines, one per row.
    pub rows: u64,
    /// Bytes of COPY text.
    pub bytes: u64,
}

/// Runs `statement` with `psql` and counts the rows and bytes it writes (not a measurement:
/// the pipe to this process adds its own cost).
pub async fn count_copy(
    pg_bin: &Path,
    source: &Source,
    statement: &str,
) -> anyhow::Result<CopyOutput> {
    let mut child = psql(pg_bin, source, statement)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting psql")?;
    let mut stdout = child.stdout.take().context("psql has no stdout")?;
    let mut buffer = vec![0u8; 1 << 18];
    let mut output = CopyOutput { rows: 0, bytes: 0 };
    loop {
        let n = stdout.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        output.bytes += n as u64;
        output.rows += buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
    }
    let status = child.wait().await?;
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        bail!("psql failed ({status}): {stderr}");
    }
    Ok(output)
}

/// One timed `COPY … TO STDOUT`.
#[derive(Debug)]
pub struct CopyRun {
    /// Wall-clock seconds from `psql`'s start to its exit.
    pub seconds: f64,
    /// `psql`'s peak resident set (`VmHWM`).
    pub peak_rss: u64,
    /// CPU seconds of `psql`, its backend and the broker during the run.
    pub cpu: Vec<(String, Cpu)>,
    /// Busy CPU seconds of the whole machine during the run.
    pub machine_busy: f64,
}

/// Runs `statement` with `psql -o /dev/null` and times it from process start to exit.
pub async fn run_copy(
    pg_bin: &Path,
    source: &Source,
    statement: &str,
    sql: &Client,
    broker_pid: Option<u32>,
) -> anyhow::Result<CopyRun> {
    let mut command = psql(pg_bin, source, statement);
    command.args(["-o", "/dev/null"]).stdout(Stdio::null());
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    let started = Instant::now();
    let mut child = command.spawn().context("starting psql")?;
    let pid = child.id().context("psql has no pid")?;
    cpu.track("psql", pid, true);
    let mut peak_rss = 0;
    let mut ticks = 0u32;
    let mut ticker = tokio::time::interval(POLL);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = ticker.tick() => {
                if let Some((_, hwm)) = procfs::memory(pid) {
                    peak_rss = peak_rss.max(hwm);
                }
                if !cpu.tracks("postgres backend") {
                    if let Some((backend, _, _)) = backends(sql, &source.database, COPY_APPLICATION).await?.first() {
                        cpu.track("postgres backend", *backend, true);
                    }
                }
                if ticks % CPU_EVERY == 0 {
                    cpu.sample();
                }
                ticks += 1;
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        bail!("psql failed ({status}): {stderr}");
    }
    cpu.sample();
    Ok(CopyRun {
        seconds,
        peak_rss,
        cpu: cpu.report(),
        machine_busy: cpu.machine_busy(),
    })
}

/// How to run `walproof setup` and `walproof decode --snapshot-mode initial_only`.
#[derive(Debug, Clone)]
pub struct SnapshotSpec {
    /// The `walproof` binary.
    pub binary: PathBuf,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic prefix of this run.
    pub topic_prefix: String,
    /// The run's slot (`walproof setup` creates it, the snapshot recreates it).
    pub slot: String,
    /// The published table, `schema.table`.
    pub table: String,
    /// Flags added to `walproof decode` (e.g. `--no-debezium`).
    pub extra_args: Vec<String>,
    /// The decoder's log; `walproof setup`'s report goes next to it.
    pub log: PathBuf,
    /// Spill directory.
    pub spill_dir: PathBuf,
    /// Longest the snapshot may take.
    pub timeout: Duration,
    /// Resident memory at which the decoder is stopped (SIGKILL), to protect a shared machine.
    pub rss_cap: u64,
}

impl SnapshotSpec {
    /// `walproof decode`'s arguments, after the subcommand.
    pub fn decode_args(&self, source: &Source) -> Vec<String> {
        let mut args: Vec<String> = [
            "--source-url",
            &source.url(),
            "--slot",
            &self.slot,
            "--publication",
            &source.publication,
            "--brokers",
            &self.brokers,
            "--topic-prefix",
            &self.topic_prefix,
            "--snapshot-mode",
            "initial_only",
            "--metrics-addr",
            "off",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.push("--spill-dir".into());
        args.push(self.spill_dir.display().to_string());
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// One `walproof decode --snapshot-mode initial_only` run.
#[derive(Debug)]
pub struct SnapshotRun {
    /// Seconds `walproof setup` took (publication and slot; not part of the snapshot's time).
    pub setup_seconds: f64,
    /// Wall-clock seconds from `walproof decode`'s start to its exit: the snapshot written to
    /// the ledger and acknowledged by Kafka (the ledger writer closes before the process exits).
    pub seconds: f64,
    /// The decoder's peak resident set: `VmHWM` at the last sample before it exited.
    pub peak_rss: u64,
    /// Highest `VmRSS` sampled.
    pub sampled_peak_rss: u64,
    /// CPU seconds of the decoder, its Postgres sessions and the broker.
    pub cpu: Vec<(String, Cpu)>,
    /// Busy CPU seconds of the whole machine during the run.
    pub machine_busy: f64,
    /// The decoder's CPU seconds by thread group (each group's highest sample).
    pub threads: BTreeMap<String, f64>,
    /// `rows=` of the decoder's "initial snapshot written" log line.
    pub logged_rows: Option<u64>,
    /// `seconds=` of that line: the snapshot's own time inside the process (from listing the
    /// tables to the last ledger record appended), without start-up, slot creation and close.
    pub logged_seconds: Option<f64>,
    /// The process outgrew [`SnapshotSpec::rss_cap`] and was killed (SIGKILL).
    pub rss_cap_hit: bool,
    /// Moments of the run from the decoder's log, seconds after its start: see [`MILESTONES`].
    pub timeline: Vec<(&'static str, Option<f64>)>,
}

/// The decoder's log lines that mark the steps of a snapshot run, and what each means.
pub const MILESTONES: [(&str, &str); 4] = [
    ("decoder session starting", "ledger opened"),
    ("initial snapshot starting", "slot created, copy starts"),
    ("initial snapshot written", "last record appended"),
    (
        "snapshot written (snapshot mode initial_only)",
        "ledger acknowledged",
    ),
];

/// Runs `walproof setup` (publication for the table, slot), then `walproof decode
/// --snapshot-mode initial_only`, timed from its start to its exit.
pub async fn run_snapshot(
    spec: &SnapshotSpec,
    source: &Source,
    sql: &Client,
    broker_pid: Option<u32>,
) -> anyhow::Result<SnapshotRun> {
    let environment = |command: &mut Command| {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
    };
    // Setup: the publication (this table) and the slot, as an operator would.
    let setup_log = spec.log.with_extension("setup.log");
    let mut setup = Command::new(&spec.binary);
    setup.arg("setup").args([
        "--source-url",
        &source.url(),
        "--slot",
        &spec.slot,
        "--publication",
        &source.publication,
        "--table",
        &spec.table,
    ]);
    environment(&mut setup);
    let began = Instant::now();
    let output = setup
        .output()
        .await
        .with_context(|| format!("running {} setup", spec.binary.display()))?;
    let setup_seconds = began.elapsed().as_secs_f64();
    std::fs::write(
        &setup_log,
        [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
    )
    .with_context(|| format!("writing {}", setup_log.display()))?;
    if !output.status.success() {
        bail!(
            "walproof setup failed ({}); its report:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let log = std::fs::File::create(&spec.log)
        .with_context(|| format!("creating {}", spec.log.display()))?;
    let mut command = Command::new(&spec.binary);
    command.arg("decode").args(spec.decode_args(source));
    environment(&mut command);
    command.stdout(Stdio::null()).stderr(log);
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    let started = Instant::now();
    let started_at = unix_seconds(std::time::SystemTime::now());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", spec.binary.display()))?;
    let pid = child.id().context("walproof has no pid")?;
    cpu.track("walproof decode", pid, true);
    let (mut peak_rss, mut sampled_peak_rss, mut rss_cap_hit) = (0, 0, false);
    let mut threads = BTreeMap::new();
    let mut ticks = 0u32;
    let mut ticker = tokio::time::interval(POLL);
    let status = loop {
        let over_cap = tokio::select! {
            status = child.wait() => break status?,
            _ = ticker.tick() => {
                let mut over_cap = false;
                if let Some((rss, hwm)) = procfs::memory(pid) {
                    peak_rss = peak_rss.max(hwm);
                    sampled_peak_rss = sampled_peak_rss.max(rss);
                    over_cap = rss > spec.rss_cap;
                }
                if ticks % BACKENDS_EVERY == 0 {
                    for (backend, application, kind) in backends(sql, &source.database, "walproof").await? {
                        let label = format!("postgres {kind} {backend} ({application})");
                        cpu.track(&label, backend, true);
                    }
                }
                if ticks % CPU_EVERY == 0 {
                    cpu.sample();
                    // Threads end before the process does (librdkafka's at close): keep
                    // each group's highest figure.
                    for (group, seconds) in procfs::thread_cpu_seconds(pid) {
                        let highest = threads.entry(group).or_insert(0.0);
                        *highest = f64::max(*highest, seconds);
                    }
                }
                ticks += 1;
                over_cap
            }
        };
        if over_cap {
            // Protect the shared machine: stop here and report the cap as exceeded.
            rss_cap_hit = true;
            child.start_kill()?;
            break child.wait().await?;
        }
        if started.elapsed() > spec.timeout {
            let _ = child.start_kill();
            bail!(
                "walproof decode did not finish the snapshot within {:?}; log {}:\n{}",
                spec.timeout,
                spec.log.display(),
                log_tail(&spec.log)
            );
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    cpu.sample();
    if !status.success() && !rss_cap_hit {
        bail!(
            "walproof decode failed ({status}); log {}:\n{}",
            spec.log.display(),
            log_tail(&spec.log)
        );
    }
    let (logged_rows, logged_seconds) = logged_snapshot(&spec.log);
    let log_text = std::fs::read_to_string(&spec.log).unwrap_or_default();
    let timeline = MILESTONES
        .iter()
        .map(|(needle, meaning)| {
            let at = log_text
                .lines()
                .find(|line| line.contains(needle))
                .and_then(log_line_time)
                .map(|at| at - started_at);
            (*meaning, at)
        })
        .collect();
    Ok(SnapshotRun {
        setup_seconds,
        seconds,
        peak_rss,
        sampled_peak_rss,
        cpu: cpu.report(),
        machine_busy: cpu.machine_busy(),
        threads,
        logged_rows,
        logged_seconds,
        rss_cap_hit,
        timeline,
    })
}

/// Seconds since the Unix epoch.
fn unix_seconds(time: std::time::SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The time of a log line that starts with an RFC 3339 UTC timestamp
/// (`2026-01-02T03:04:05.123456Z …`, tracing's format), in seconds since the Unix epoch.
fn log_line_time(line: &str) -> Option<f64> {
    let line = strip_ansi(line);
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.split(':');
    let hours: f64 = time.next()?.parse().ok()?;
    let minutes: f64 = time.next()?.parse().ok()?;
    let seconds: f64 = time.next()?.parse().ok()?;
    // Days from 1970-01-01 to the civil date (proleptic Gregorian calendar).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3_600.0 + minutes * 60.0 + seconds)
}

/// `text` without ANSI escape sequences (colours), should the log have them.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters… final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `rows=` and `seconds=` of the decoder's "initial snapshot written" log line.
fn logged_snapshot(log: &Path) -> (Option<u64>, Option<f64>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(line) = text
        .lines()
        .rev()
        .find(|line| line.contains("initial snapshot written"))
    else {
        return (None, None);
    };
    let line = strip_ansi(line);
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|token| token.strip_prefix(name))
            .map(str::to_owned)
    };
    (
        field("rows=").and_then(|v| v.parse().ok()),
        field("seconds=").and_then(|v| v.parse().ok()),
    )
}

/// Drops `slot` once no session holds it (the decoder's walsender may take a moment to end).
pub async fn drop_slot(sql: &Client, slot: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        let row = sql
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        match row.map(|row| row.get::<_, bool>(0)) {
            None => return Ok(()),
            Some(false) => {
                sql.execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                    .await
                    .with_context(|| format!("dropping slot {slot}"))?;
                return Ok(());
            }
            Some(true) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    bail!("slot {slot} still active after 10 s")
}

/// What the ledger holds, read back from its first record with every record's hash and link
/// checked (as every consumer reads it, with walproof-core's chain and reassembly rules).
#[derive(Debug, Default)]
pub struct LedgerCheck {
    /// Records read.
    pub records: u64,
    /// Bytes of those records (values).
    pub bytes: u64,
    /// Complete transactions.
    pub transactions: u64,
    /// Voided runs (abandon markers).
    pub abandoned: u64,
    /// Snapshot rows (op `r`).
    pub snapshot_rows: u64,
    /// Changes of any other kind.
    pub other_changes: u64,
    /// Sum of the key column's values over the snapshot rows.
    pub key_sum: u128,
    /// Seconds the read took.
    pub seconds: f64,
}

/// Reads `topic` (the ledger, partition 0) from its start to its end: blocking, run it off the
/// runtime. `key_column` is summed over the snapshot rows (it must hold integers).
pub fn read_ledger(
    brokers: &str,
    topic: &str,
    key_column: &str,
    timeout: Duration,
) -> anyhow::Result<LedgerCheck> {
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}.bench-check"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .context("creating a consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let (mut chain, mut reassembler) = (Chain::genesis(), Reassembler::new());
    let mut key_index: HashMap<RelationId, Option<usize>> = HashMap::new();
    let mut check = LedgerCheck::default();
    let deadline = Instant::now() + timeout;
    loop {
        if Instant::now() > deadline {
            bail!("reading {topic} took longer than {timeout:?}");
        }
        let message = match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(err)) => return Err(err).context(format!("reading {topic}")),
            Some(Ok(message)) => message,
        };
        let offset = message.offset();
        let payload = message.payload().unwrap_or_default();
        check.records += 1;
        check.bytes += payload.len() as u64;
        let sealed = SealedEntry::from_bytes(payload)
            .with_context(|| format!("{topic} offset {offset} is not a ledger record"))?;
        chain
            .extend(&sealed)
            .with_context(|| format!("{topic} offset {offset}"))?;
        let entry = sealed
            .decode_entry()
            .with_context(|| format!("{topic} offset {offset}"))?;
        let progress = reassembler
            .check(&entry)
            .with_context(|| format!("{topic} offset {offset}"))?;
        match progress {
            Progress::Abandoned => check.abandoned += 1,
            Progress::Part { last } => check.transactions += u64::from(last),
        }
        let EntryBody::Transaction(part) = entry.body else {
            continue;
        };
        for relation in &part.relations {
            key_index.insert(
                relation.id,
                relation.columns.iter().position(|c| c.name == key_column),
            );
        }
        for change in &part.changes {
            let Op::Snapshot { relation, row } = &change.op else {
                check.other_changes += 1;
                continue;
            };
            check.snapshot_rows += 1;
            let key = key_index
                .get(relation)
                .copied()
                .flatten()
                .and_then(|i| row.0.get(i))
                .and_then(|value| value.as_text())
                .and_then(|text| text.parse::<u64>().ok())
                .with_context(|| {
                    format!(
                        "{topic} offset {offset}: a snapshot row without an integer {key_column}"
                    )
                })?;
            check.key_sum += u128::from(key);
        }
    }
    check.seconds = started.elapsed().as_secs_f64();
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_are_read_as_unix_time() {
        let line =
            "2026-11-21T19:33:21.500000Z  INFO walproof_source::decoder: initial snapshot starting";
        assert_eq!(log_line_time(line), Some(1_795_289_601.5));
        assert_eq!(log_line_time("1970-01-01T00:00:01Z x"), Some(1.0));
        assert_eq!(log_line_time("2000-03-01T00:00:00Z x"), Some(951_868_800.0));
        assert_eq!(log_line_time("no time here"), None);
    }

    #[test]
    fn the_snapshot_log_line_gives_rows_and_seconds() {
        let dir = std::env::temp_dir().join(format!("walproof-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("decode.log");
        std::fs::write(
            &log,
            "2026-11-21T19:33:24.501410Z  INFO walproof_source::decoder: initial snapshot written; \
             streaming from 0/E969C718 \u{1b}[3mrows\u{1b}[0m\u{1b}[2m=\u{1b}[0m1000000 seconds=2.892954748\n",
        )
        .unwrap();
        assert_eq!(logged_snapshot(&log), (Some(1_000_000), Some(2.892954748)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
