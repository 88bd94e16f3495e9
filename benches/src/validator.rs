//! `walproof commit` and `walproof validate` as the benchmarks run them, each its own release
//! process observed through its HTTP endpoint and `/proc`: the committer until it applied a
//! given transaction, the validator until its shadow database holds it and it attested its
//! root. [`Service`] is any `walproof` process a benchmark keeps running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio_postgres::Client;
use walproof_core::Lsn;

use crate::clients::{self, POLL, log_tail};
use crate::procfs::{self, Cpu, CpuWatch};

/// anvil's first development key: public knowledge, good for a benchmark's validator only.
pub const TEST_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// `application_name` of the validator's session on its shadow database.
pub const SHADOW_APPLICATION: &str = "walproof validator";

/// A `walproof` process the benchmark started. Killed (SIGKILL) if dropped; [`Service::stop`]
/// stops it with SIGTERM and requires a clean exit.
#[derive(Debug)]
pub struct Service {
    /// `walproof <subcommand>`, for messages.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// Its HTTP endpoint (`/metrics`, …), when it serves one.
    pub http: Option<String>,
    /// Its log (stderr).
    pub log: PathBuf,
    /// When it was started.
    pub started: Instant,
    child: Child,
}

impl Service {
    /// Starts `binary <args>` with a clean environment (`PATH`, `RUST_LOG=info`, `NO_COLOR`,
    /// and `env`), stderr into `log`. `http` is the address it was told to serve on.
    pub fn start(
        binary: &Path,
        args: &[String],
        env: &[(&str, &str)],
        http: Option<String>,
        log: &Path,
    ) -> anyhow::Result<Service> {
        let name = format!(
            "walproof {}",
            args.first().map_or("", String::as_str).to_owned()
        );
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", binary.display()))?;
        let pid = child.id().with_context(|| format!("{name} has no pid"))?;
        Ok(Service {
            name,
            pid,
            http,
            log: log.to_owned(),
            started,
            child,
        })
    }

    /// Fails, quoting its log, when the process has exited.
    pub fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); log {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Its `/metrics`, `None` while it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        clients::scrape(self.http.as_deref()?).await.ok()
    }

    /// Seconds since it was started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Stops it with SIGTERM and waits (up to 60 s) for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.alive()?;
        let terminated = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await?;
        if !terminated.success() {
            bail!("could not send SIGTERM to {} (pid {})", self.name, self.pid);
        }
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .with_context(|| format!("{} did not stop within 60 s of SIGTERM", self.name))??;
        if !status.success() {
            bail!(
                "{} exited with {status} after SIGTERM; log {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }
}

/// `walproof commit` with its proof API on a free address (`/roots/latest` shows how far it
/// got), and `extra` flags (e.g. `--in-memory`, or `--state-dir DIR`).
pub fn start_committer(
    binary: &Path,
    brokers: &str,
    topic_prefix: &str,
    extra: &[String],
    log: &Path,
) -> anyhow::Result<Service> {
    let http = clients::free_address()?;
    let args: Vec<String> = [
        "commit",
        "--brokers",
        brokers,
        "--topic-prefix",
        topic_prefix,
        "--proof-addr",
        &http,
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .chain(extra.iter().cloned())
    .collect();
    Service::start(binary, &args, &[], Some(http), log)
}

/// `walproof validate` into the shadow database at `shadow_url`, with [`TEST_KEY`] and its
/// HTTP endpoint on a free address; deep audits at walproof's default interval; its state
/// directory beside `log`.
pub fn start_validator(
    binary: &Path,
    brokers: &str,
    topic_prefix: &str,
    shadow_url: &str,
    log: &Path,
) -> anyhow::Result<Service> {
    let http = clients::free_address()?;
    // Its snapshot (written when it stops) beside its log, none left from an earlier run.
    let state_dir = log.with_extension("state");
    let _ = std::fs::remove_dir_all(&state_dir);
    let args: Vec<String> = [
        "validate",
        "--brokers",
        brokers,
        "--topic-prefix",
        topic_prefix,
        "--shadow-url",
        shadow_url,
        "--http-addr",
        &http,
        "--state-dir",
        state_dir.to_str().context("a log path in UTF-8")?,
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    Service::start(
        binary,
        &args,
        &[("WALPROOF_VALIDATOR_KEY", TEST_KEY)],
        Some(http),
        log,
    )
}

/// The commit LSN of the last transaction the committer applied (`GET /roots/latest`), `None`
/// before the first or while it does not answer.
pub async fn committer_latest(committer: &Service) -> Option<Lsn> {
    let response = clients::http_get(committer.http.as_deref()?, "/roots/latest")
        .await
        .ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json.get("commit_lsn")?.as_str()?.parse().ok()
}

/// A validator gauge holding an LSN (`walproof_validator_applied_lsn`, …); 0 when absent.
pub fn lsn_metric(metrics: &str, name: &str) -> Lsn {
    Lsn::new(clients::metric(metrics, name).unwrap_or(0.0) as u64)
}

/// One committer run over a whole ledger.
#[derive(Debug)]
pub struct CommitterRun {
    /// Seconds from process start until it had applied the last transaction (and queued its
    /// root on `<prefix>.roots`).
    pub seconds: f64,
    /// Its peak resident set (`VmHWM`) then.
    pub peak_rss: u64,
    /// Its CPU time then.
    pub cpu: Cpu,
}

/// Runs `walproof commit --in-memory` over `<topic_prefix>.ledger` until it applied the
/// transaction committed at `last`, then stops it (its roots stay on `<prefix>.roots`).
pub async fn run_committer(
    binary: &Path,
    brokers: &str,
    topic_prefix: &str,
    last: Lsn,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<CommitterRun> {
    let mut committer =
        start_committer(binary, brokers, topic_prefix, &["--in-memory".into()], log)?;
    let (mut peak_rss, mut cpu) = (0, Cpu::default());
    let mut ticker = tokio::time::interval(POLL);
    let seconds = loop {
        ticker.tick().await;
        committer.alive()?;
        if let Some((_, hwm)) = procfs::memory(committer.pid) {
            peak_rss = hwm;
        }
        if let Some(now) = procfs::cpu(committer.pid) {
            cpu = now;
        }
        if committer_latest(&committer)
            .await
            .is_some_and(|at| at >= last)
        {
            break committer.elapsed();
        }
        if committer.started.elapsed() > timeout {
            bail!(
                "walproof commit did not apply {last} within {timeout:?}; log {}:\n{}",
                committer.log.display(),
                log_tail(&committer.log)
            );
        }
    };
    committer.stop().await?;
    Ok(CommitterRun {
        seconds,
        peak_rss,
        cpu,
    })
}

/// Moments of a validator run, seconds after process start.
#[derive(Debug, Default)]
pub struct ValidatorTimes {
    /// `/metrics` answered.
    pub metrics_up: Option<f64>,
    /// The first transaction was applied to the shadow database.
    pub first_applied: Option<f64>,
    /// The last transaction was applied (`walproof_validator_applied_lsn` reached it).
    pub applied: Option<f64>,
    /// Its root was attested (`walproof_validator_attested_lsn` reached it).
    pub attested: Option<f64>,
}

/// One validator run over a whole ledger.
#[derive(Debug)]
pub struct ValidatorRun {
    /// When things happened.
    pub times: ValidatorTimes,
    /// `VmHWM` when the last transaction was applied.
    pub peak_rss: u64,
    /// `VmHWM` at the end (every root attested).
    pub final_peak_rss: u64,
    /// CPU seconds of the validator, its shadow session's backend and the broker until the
    /// last transaction was applied.
    pub cpu: Vec<(String, Cpu)>,
    /// Busy CPU seconds of the whole machine until then.
    pub machine_busy: f64,
    /// The validator's CPU seconds by thread group until then.
    pub threads: std::collections::BTreeMap<String, f64>,
    /// The final `/metrics` text.
    pub metrics: String,
    /// `walproof_validator_changes_total` at the end.
    pub changes: u64,
    /// `walproof_validator_transactions_total` at the end.
    pub transactions: u64,
    /// `walproof_validator_attestations_total` at the end.
    pub attestations: u64,
}

/// Usage at the moment the last transaction was applied.
struct AtApplied {
    cpu: Vec<(String, Cpu)>,
    machine_busy: f64,
    threads: std::collections::BTreeMap<String, f64>,
    peak_rss: u64,
}

/// Runs `walproof validate` over `<topic_prefix>.ledger` into the empty database
/// `shadow_database` (at `shadow_url`) until it applied the transaction committed at `last`
/// and attested its root, then stops it. `sql` is a session on the same server (to find the
/// validator's backend). Fails when the validator diverges or its counters are not
/// `expected_transactions` and `expected_changes`.
#[allow(clippy::too_many_arguments)]
pub async fn run_validator(
    binary: &Path,
    brokers: &str,
    topic_prefix: &str,
    shadow_url: &str,
    shadow_database: &str,
    last: Lsn,
    expected_transactions: u64,
    expected_changes: u64,
    sql: &Client,
    broker_pid: Option<u32>,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<ValidatorRun> {
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    let mut validator = start_validator(binary, brokers, topic_prefix, shadow_url, log)?;
    let pid = validator.pid;
    cpu.track("walproof validate", pid, true);
    let since = |service: &Service| Some(service.elapsed());
    let mut times = ValidatorTimes::default();
    let mut at_applied = None;
    let mut ticker = tokio::time::interval(POLL);
    loop {
        ticker.tick().await;
        validator.alive()?;
        if !cpu.tracks("shadow backend (postgres)") {
            if let Some(backend) = backend_of(sql, shadow_database, SHADOW_APPLICATION).await? {
                cpu.track("shadow backend (postgres)", backend, true);
            }
        }
        cpu.sample();
        if let Some(text) = validator.metrics().await {
            times.metrics_up = times.metrics_up.or(since(&validator));
            if clients::metric(&text, "walproof_validator_diverged").unwrap_or(0.0) > 0.0 {
                bail!(
                    "the validator diverged; log {}:\n{}",
                    validator.log.display(),
                    log_tail(&validator.log)
                );
            }
            let applied = lsn_metric(&text, "walproof_validator_applied_lsn");
            let attested = lsn_metric(&text, "walproof_validator_attested_lsn");
            if applied.as_u64() > 0 {
                times.first_applied = times.first_applied.or(since(&validator));
            }
            if applied >= last && times.applied.is_none() {
                times.applied = since(&validator);
                at_applied = Some(AtApplied {
                    cpu: cpu.report(),
                    machine_busy: cpu.machine_busy(),
                    threads: procfs::thread_cpu_seconds(pid),
                    peak_rss: procfs::memory(pid).map_or(0, |(_, hwm)| hwm),
                });
            }
            if attested >= last {
                times.attested = since(&validator);
                break;
            }
        }
        if validator.started.elapsed() > timeout {
            bail!(
                "walproof validate did not apply and attest {last} within {timeout:?}; log {}:\n{}",
                validator.log.display(),
                log_tail(&validator.log)
            );
        }
    }
    let at_applied = at_applied.context("the last transaction was attested before applied")?;
    let final_peak_rss = procfs::memory(pid).map_or(0, |(_, hwm)| hwm);
    let metrics = validator
        .metrics()
        .await
        .context("the validator's /metrics")?;
    validator.stop().await?;
    let count = |name: &str| clients::metric(&metrics, name).unwrap_or(0.0) as u64;
    let run = ValidatorRun {
        times,
        peak_rss: at_applied.peak_rss,
        final_peak_rss,
        cpu: at_applied.cpu,
        machine_busy: at_applied.machine_busy,
        threads: at_applied.threads,
        changes: count("walproof_validator_changes_total"),
        transactions: count("walproof_validator_transactions_total"),
        attestations: count("walproof_validator_attestations_total"),
        metrics,
    };
    if (run.transactions, run.changes) != (expected_transactions, expected_changes) {
        bail!(
            "the validator applied {} transactions with {} changes; the ledger holds {expected_transactions} with {expected_changes}",
            run.transactions,
            run.changes
        );
    }
    Ok(run)
}

/// The backend of the session of `database` named `application`, once it is connected.
pub async fn backend_of(
    sql: &Client,
    database: &str,
    application: &str,
) -> anyhow::Result<Option<u32>> {
    let row = sql
        .query_opt(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 LIMIT 1",
            &[&database, &application],
        )
        .await?;
    Ok(row.map(|row| row.get::<_, i32>(0) as u32))
}
