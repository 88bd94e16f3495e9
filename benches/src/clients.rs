//! The two clients measured on the same slot contents: `pg_recvlogical` (the baseline) and the
//! release `walproof decode` binary, each timed wall-clock from process start, with the CPU
//! time of the processes involved and the decoder's memory sampled along the way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_postgres::Client;
use walproof_core::Lsn;

use crate::broker;
use crate::procfs::{self, Cpu, CpuWatch};

/// How often a running client is observed.
pub const POLL: Duration = Duration::from_millis(25);

/// How often the Debezium topic is counted after the ledger was acknowledged.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Where the source database is.
#[derive(Debug, Clone)]
pub struct Source {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Database.
    pub database: String,
    /// Publication.
    pub publication: String,
}

impl Source {
    /// `postgres://user@host:port/database`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

/// The walsender serving `slot`, once it is active.
async fn walsender(sql: &Client, slot: &str) -> Option<u32> {
    let row = sql
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .ok()??;
    row.get::<_, Option<i32>>(0).map(|pid| pid as u32)
}

/// The slot's `confirmed_flush_lsn`.
async fn slot_confirmed(sql: &Client, slot: &str) -> anyhow::Result<Lsn> {
    let row = sql
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    let text: Option<String> = row.get(0);
    Ok(text.and_then(|text| text.parse().ok()).unwrap_or(Lsn::ZERO))
}

/// One run of `pg_recvlogical`.
#[derive(Debug)]
pub struct RecvlogicalRun {
    /// Wall-clock seconds from process start to its exit at the end position.
    pub seconds: f64,
    /// CPU seconds of `pg_recvlogical`, its walsender and the broker during the run.
    pub cpu: Vec<(String, Cpu)>,
    /// Busy CPU seconds of the whole machine during the run.
    pub machine_busy: f64,
}

/// Streams `slot` with `pg_recvlogical` (pgoutput, proto_version 1, the publication) to
/// /dev/null until `end`, and times it.
pub async fn run_recvlogical(
    pg_bin: &Path,
    source: &Source,
    slot: &str,
    end: Lsn,
    sql: &Client,
    broker_pid: Option<u32>,
) -> anyhow::Result<RecvlogicalRun> {
    let program = pg_bin.join("pg_recvlogical");
    let mut command = Command::new(&program);
    command
        .args([
            "--start",
            "--no-loop",
            "--slot",
            slot,
            "--file",
            "/dev/null",
            "--endpos",
        ])
        .arg(end.to_string())
        .args(["--option", "proto_version=1", "--option"])
        .arg(format!("publication_names={}", source.publication))
        .arg("--dbname")
        .arg(format!(
            "host={} port={} user={} dbname={}",
            source.host, source.port, source.user, source.database
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = child.id().context("pg_recvlogical has no pid")?;
    cpu.track("pg_recvlogical", pid, true);
    let mut ticker = tokio::time::interval(POLL);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = ticker.tick() => {
                if !cpu.tracks("walsender") {
                    if let Some(walsender) = walsender(sql, slot).await {
                        cpu.track("walsender", walsender, true);
                    }
                }
                cpu.sample();
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        bail!("pg_recvlogical failed ({status}): {stderr}");
    }
    cpu.sample();
    Ok(RecvlogicalRun {
        seconds,
        cpu: cpu.report(),
        machine_busy: cpu.machine_busy(),
    })
}

/// How to run `walproof decode`.
#[derive(Debug, Clone)]
pub struct DecoderSpec {
    /// The release `walproof` binary.
    pub binary: PathBuf,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic prefix of this run.
    pub topic_prefix: String,
    /// Extra flags (e.g. a spill threshold).
    pub extra_args: Vec<String>,
    /// The decoder's log file.
    pub log: PathBuf,
    /// Spill directory.
    pub spill_dir: PathBuf,
    /// Longest the run may take.
    pub timeout: Duration,
    /// After the ledger: wait for the Debezium publisher to fill this topic.
    pub follow: Option<Follow>,
}

/// What the `walproof decode` binary at hand supports, from its `--help`.
#[derive(Debug, Clone, Copy)]
pub struct DecoderFeatures {
    /// `--snapshot-mode`: an initial snapshot, which the benchmark turns off (`never`): it
    /// measures streaming from the slot, and a snapshot would drop and recreate the slot and
    /// copy the table instead.
    pub snapshot_mode: bool,
    /// In-process Debezium publisher (on by default), turned off by `--no-debezium`.
    pub debezium: bool,
    /// `--snapshot-mode initial_only`: take the initial snapshot, then stop.
    pub initial_only: bool,
    /// `--snapshot-workers`: sessions copying tables in parallel during the snapshot.
    pub snapshot_workers: bool,
}

impl DecoderFeatures {
    /// Asks the binary.
    pub async fn probe(binary: &Path) -> anyhow::Result<DecoderFeatures> {
        let help = Command::new(binary)
            .args(["decode", "--help"])
            .output()
            .await
            .with_context(|| format!("running {} decode --help", binary.display()))?;
        let help = String::from_utf8_lossy(&help.stdout);
        Ok(DecoderFeatures {
            snapshot_mode: help.contains("--snapshot-mode"),
            debezium: help.contains("--no-debezium"),
            initial_only: help.contains("initial_only"),
            snapshot_workers: help.contains("--snapshot-workers"),
        })
    }

    /// Flags every benchmark run gets.
    pub fn streaming_only_args(self) -> Vec<String> {
        if self.snapshot_mode {
            vec!["--snapshot-mode".into(), "never".into()]
        } else {
            Vec::new()
        }
    }
}

/// A topic the decoder's in-process Debezium publisher fills after the ledger; the run waits
/// until it holds `expected` messages.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The per-table topic.
    pub topic: String,
    /// Messages it must hold (change events and tombstones).
    pub expected: u64,
    /// Longest wait after the ledger was acknowledged.
    pub timeout: Duration,
    /// Resident memory at which the decoder is stopped (SIGKILL) rather than followed further,
    /// to protect a shared machine.
    pub rss_cap: u64,
}

/// Moments of a decoder run, seconds after process start.
#[derive(Debug, Default)]
pub struct DecoderTimes {
    /// /metrics answered.
    pub metrics_up: Option<f64>,
    /// The first change was appended to the ledger.
    pub first_change: Option<f64>,
    /// Every change was appended (produced, not yet acknowledged).
    pub all_appended: Option<f64>,
    /// Kafka acknowledged the last transaction (the decoder's confirmed position reached the
    /// last commit's end).
    pub acknowledged: Option<f64>,
    /// The slot's `confirmed_flush_lsn` reached it (the decoder reports to the source every
    /// status interval, 1 s by default).
    pub slot_confirmed: Option<f64>,
    /// The Debezium topic held every expected message.
    pub followed: Option<f64>,
}

/// One run of `walproof decode`.
#[derive(Debug)]
pub struct DecoderRun {
    /// When things happened.
    pub times: DecoderTimes,
    /// Highest `VmRSS` sampled.
    pub sampled_peak_rss: u64,
    /// `VmHWM` when the ledger was acknowledged: the kernel's peak resident set.
    pub peak_rss: u64,
    /// `VmHWM` at the end (after the Debezium topic filled, when followed).
    pub final_peak_rss: u64,
    /// CPU seconds of the decoder, its walsender and the broker until the ledger was
    /// acknowledged.
    pub cpu: Vec<(String, Cpu)>,
    /// Busy CPU seconds of the whole machine until the ledger was acknowledged.
    pub machine_busy: f64,
    /// The decoder's CPU seconds by thread group until the ledger was acknowledged.
    pub threads: BTreeMap<String, f64>,
    /// Messages in the followed Debezium topic at the end.
    pub followed_messages: Option<u64>,
    /// The process outgrew [`Follow::rss_cap`] and was killed (SIGKILL) there.
    pub rss_cap_hit: bool,
    /// The final /metrics text.
    pub metrics: String,
    /// `walproof_decoder_changes_total` at the end.
    pub changes: u64,
    /// `walproof_decoder_transactions_total` at the end.
    pub transactions: u64,
}

/// Usage of a decoder run at the moment the ledger was acknowledged.
struct AtAck {
    cpu: Vec<(String, Cpu)>,
    machine_busy: f64,
    threads: BTreeMap<String, f64>,
    peak_rss: u64,
}

/// A free loopback address for a process's HTTP endpoint.
pub fn free_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// GET /metrics: the whole response, headers included ([`metric`] skips them).
pub async fn scrape(address: &str) -> anyhow::Result<String> {
    http_get(address, "/metrics").await
}

/// GET `path` from walproof's HTTP endpoint at `address` (one response per connection): the
/// whole response when the status is 200, headers included.
pub async fn http_get(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    if !response.starts_with("HTTP/1.1 200") {
        bail!(
            "unexpected {path} response: {}",
            response.lines().next().unwrap_or_default()
        );
    }
    Ok(response)
}

/// A metric's value from the Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Messages in `topic` (all partitions; 0 while it does not exist). See
/// [`broker::messages_in`].
fn topic_messages(brokers: &str, topic: &str) -> u64 {
    tokio::task::block_in_place(|| broker::messages_in(brokers, topic).unwrap_or(0))
}

/// The last lines of a log file, for failures.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Runs `walproof decode` on `slot` from process start until Kafka acknowledged the
/// transaction that ends at `end` and the slot is confirmed to it, then stops it with SIGTERM.
/// `expected_changes` is what the decoder's change counter must reach.
pub async fn run_decoder(
    spec: &DecoderSpec,
    source: &Source,
    slot: &str,
    end: Lsn,
    expected_changes: u64,
    sql: &Client,
    broker_pid: Option<u32>,
) -> anyhow::Result<DecoderRun> {
    let timeout = spec.timeout;
    let metrics_addr = free_address()?;
    let log = std::fs::File::create(&spec.log)
        .with_context(|| format!("creating {}", spec.log.display()))?;
    let mut command = Command::new(&spec.binary);
    command
        .arg("decode")
        .args([
            "--source-url",
            &source.url(),
            "--slot",
            slot,
            "--publication",
            &source.publication,
        ])
        .args([
            "--brokers",
            &spec.brokers,
            "--topic-prefix",
            &spec.topic_prefix,
        ])
        .args(["--metrics-addr", &metrics_addr])
        .arg("--spill-dir")
        .arg(&spec.spill_dir)
        .args(&spec.extra_args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", spec.binary.display()))?;
    let pid = child.id().context("walproof has no pid")?;
    cpu.track("walproof decode", pid, true);
    let since = |started: Instant| Some(started.elapsed().as_secs_f64());
    let mut times = DecoderTimes::default();
    let mut sampled_peak_rss = 0;
    let mut at_ack = None;
    let mut ticker = tokio::time::interval(POLL);
    loop {
        ticker.tick().await;
        if let Some(status) = child.try_wait()? {
            bail!(
                "walproof decode exited early ({status}); log {}:\n{}",
                spec.log.display(),
                log_tail(&spec.log)
            );
        }
        if let Some((rss, _)) = procfs::memory(pid) {
            sampled_peak_rss = sampled_peak_rss.max(rss);
        }
        if !cpu.tracks("walsender") {
            if let Some(walsender) = walsender(sql, slot).await {
                cpu.track("walsender", walsender, true);
            }
        }
        cpu.sample();
        if let Ok(text) = scrape(&metrics_addr).await {
            times.metrics_up = times.metrics_up.or(since(started));
            let changes = metric(&text, "walproof_decoder_changes_total").unwrap_or(0.0);
            let confirmed = metric(&text, "walproof_decoder_confirmed_lsn").unwrap_or(0.0) as u64;
            if changes > 0.0 {
                times.first_change = times.first_change.or(since(started));
            }
            if changes >= expected_changes as f64 {
                times.all_appended = times.all_appended.or(since(started));
            }
            if confirmed >= end.as_u64() && times.acknowledged.is_none() {
                times.acknowledged = since(started);
                // Usage up to this moment: the measured window.
                at_ack = Some(AtAck {
                    cpu: cpu.report(),
                    machine_busy: cpu.machine_busy(),
                    threads: procfs::thread_cpu_seconds(pid),
                    peak_rss: procfs::memory(pid).map_or(0, |(_, hwm)| hwm),
                });
            }
        }
        if times.slot_confirmed.is_none() && slot_confirmed(sql, slot).await? >= end {
            times.slot_confirmed = since(started);
        }
        if times.acknowledged.is_some() && times.slot_confirmed.is_some() {
            break;
        }
        if started.elapsed() > timeout {
            let _ = child.start_kill();
            bail!(
                "walproof decode did not confirm {end} within {timeout:?}; log {}:\n{}",
                spec.log.display(),
                log_tail(&spec.log)
            );
        }
    }
    let at_ack = at_ack.context("no acknowledgement")?;
    let mut followed_messages = None;
    let mut rss_cap_hit = false;
    if let Some(follow) = &spec.follow {
        let deadline = Instant::now() + follow.timeout;
        let (mut last, mut last_change) = (0, Instant::now());
        // Counting opens a consumer: poll less often than the ledger.
        let mut ticker = tokio::time::interval(FOLLOW_POLL);
        loop {
            ticker.tick().await;
            if let Some(status) = child.try_wait()? {
                bail!(
                    "walproof decode exited early ({status}); log {}:\n{}",
                    spec.log.display(),
                    log_tail(&spec.log)
                );
            }
            if let Some((rss, _)) = procfs::memory(pid) {
                sampled_peak_rss = sampled_peak_rss.max(rss);
                if rss > follow.rss_cap {
                    // Protect the shared machine: stop here and report the cap as exceeded.
                    rss_cap_hit = true;
                    break;
                }
            }
            let messages = topic_messages(&spec.brokers, &follow.topic);
            followed_messages = Some(messages);
            if messages >= follow.expected {
                times.followed = since(started);
                break;
            }
            if messages != last {
                (last, last_change) = (messages, Instant::now());
            }
            // Stalled short of the expectation (or past the deadline): report what is there.
            let stalled = messages > 0 && last_change.elapsed() > Duration::from_secs(5);
            if stalled || Instant::now() > deadline {
                break;
            }
        }
    }
    let final_peak_rss = procfs::memory(pid).map_or(0, |(_, hwm)| hwm);
    let metrics = scrape(&metrics_addr).await?;
    let changes = metric(&metrics, "walproof_decoder_changes_total").unwrap_or(0.0) as u64;
    let transactions =
        metric(&metrics, "walproof_decoder_transactions_total").unwrap_or(0.0) as u64;
    if rss_cap_hit {
        child.start_kill()?;
        child.wait().await?;
        return Ok(DecoderRun {
            times,
            sampled_peak_rss,
            peak_rss: at_ack.peak_rss,
            final_peak_rss,
            cpu: at_ack.cpu,
            machine_busy: at_ack.machine_busy,
            threads: at_ack.threads,
            followed_messages,
            rss_cap_hit,
            metrics,
            changes,
            transactions,
        });
    }
    let terminated = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    if !terminated.success() {
        bail!("could not send SIGTERM to walproof decode (pid {pid})");
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .context("walproof decode did not stop within 60 s of SIGTERM")??;
    if !status.success() {
        bail!(
            "walproof decode exited with {status} after SIGTERM; log {}:\n{}",
            spec.log.display(),
            log_tail(&spec.log)
        );
    }
    Ok(DecoderRun {
        times,
        sampled_peak_rss,
        peak_rss: at_ack.peak_rss,
        final_peak_rss,
        cpu: at_ack.cpu,
        machine_busy: at_ack.machine_busy,
        threads: at_ack.threads,
        followed_messages,
        rss_cap_hit,
        metrics,
        changes,
        transactions,
    })
}
