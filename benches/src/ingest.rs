//! Postgres's own ingest of the decoder workload's rows: the baseline of the validator's replay.
//!
//! The same changes the ledger carries — the inserted rows, the updated rows' new values, the
//! deleted keys — applied by plain SQL from one client (`psql`, a thin libpq client) to an
//! empty table of the same shape, in Postgres's fastest ordinary way: one `COPY … FROM STDIN`
//! of every inserted row, then per source transaction one `UPDATE … FROM (VALUES …)` joining
//! its 10,000 new row values by key, and one `DELETE … WHERE id = ANY(…)` of its keys. Values
//! travel as text, as in the ledger. Hash and merge joins are turned off for the session, so
//! each batch of updates finds its rows through the primary key (the planner's own choice, a
//! hash join over a sequential scan of the whole table per batch, takes about twice as long):
//! the baseline is as strong as plain SQL gets. The script is written once, untimed; the run is
//! timed from `psql`'s start to its exit, and `psql` times each statement (`\timing`).

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_postgres::Client;
use walproof_core::CANONICAL_SESSION_SETTINGS;
use walproof_core::ident::quote_literal;

use crate::clients::{POLL, Source};
use crate::procfs::{Cpu, CpuWatch};
use crate::validator::backend_of;
use crate::workload::{self, ROW_VALUES, TABLE};

/// `application_name` of the baseline's `psql` session, to find its backend.
const INGEST_APPLICATION: &str = "walproof-bench-ingest";

/// What the baseline applies, as the workload made it.
#[derive(Debug, Clone, Copy)]
pub struct IngestPlan {
    /// Rows `1..=inserts` inserted.
    pub inserts: u64,
    /// Rows `1..=updates` updated.
    pub updates: u64,
    /// Rows `inserts - deletes + 1..=inserts` deleted.
    pub deletes: u64,
    /// Rows per source transaction (and per `UPDATE` or `DELETE` of the baseline).
    pub rows_per_transaction: u64,
}

impl IngestPlan {
    /// Statements of the script and the command tag each must report: the two `SET`s, `COPY
    /// n`, then `UPDATE n` and `DELETE n` per transaction.
    fn expected_tags(&self) -> Vec<String> {
        let per = self.rows_per_transaction;
        let mut tags = vec!["SET".to_owned(), "SET".to_owned()];
        tags.push(format!("COPY {}", self.inserts));
        tags.extend((0..self.updates / per).map(|_| format!("UPDATE {per}")));
        tags.extend((0..self.deletes / per).map(|_| format!("DELETE {per}")));
        tags
    }
}

/// The canonical session settings and `synchronous_commit=off` (as the validator's shadow
/// session has them), as `PGOPTIONS` or a startup `options` string.
pub fn session_options() -> String {
    let mut options: Vec<String> = CANONICAL_SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("-c {name}={value}"))
        .collect();
    options.push("-c synchronous_commit=off".into());
    options.join(" ")
}

/// Writes the baseline's `psql` script to `path`: the inserted rows' COPY text (from the
/// workload's own row expression, by `psql` on the source under the canonical settings), the
/// updated rows' new values (read from the source table after the workload), the deleted keys.
/// Returns its size in bytes.
pub async fn write_script(
    pg_bin: &Path,
    source: &Source,
    sql: &Client,
    plan: &IngestPlan,
    path: &Path,
) -> anyhow::Result<u64> {
    let mut script =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(
        script,
        "SET enable_hashjoin = off;\nSET enable_mergejoin = off;\n\\timing on\nCOPY {TABLE} FROM STDIN;"
    )?;
    script.flush()?;
    let copy = format!(
        "COPY (SELECT {ROW_VALUES} FROM generate_series(1::bigint, {}::bigint) g) TO STDOUT",
        plan.inserts
    );
    let status = psql(pg_bin, source, "walproof-bench-ingest-script")
        .args(["-q", "-c"])
        .arg(&copy)
        .stdout(script.try_clone()?)
        .status()
        .await
        .context("running psql for the inserted rows' COPY text")?;
    if !status.success() {
        bail!("psql {copy:?} failed ({status})");
    }
    let mut script = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(path)?);
    writeln!(script, "\\.")?;
    let per = plan.rows_per_transaction;
    for batch in 0..plan.updates / per {
        let (first, last) = (1 + batch * per, (batch + 1) * per);
        let rows = sql
            .query(
                &format!(
                    "SELECT id, status, amount::text, note FROM {TABLE} WHERE id BETWEEN $1 AND $2 ORDER BY id"
                ),
                &[&(first as i64), &(last as i64)],
            )
            .await
            .context("reading the updated rows from the source")?;
        anyhow::ensure!(
            rows.len() as u64 == per,
            "the source holds {} of the updated rows {first}..={last}",
            rows.len()
        );
        write!(
            script,
            "UPDATE {TABLE} AS t SET status = u.status, amount = u.amount, note = u.note FROM (VALUES "
        )?;
        for (i, row) in rows.iter().enumerate() {
            let note: Option<&str> = row.get(3);
            write!(
                script,
                "{}({}, {}, {}::numeric, {})",
                if i > 0 { ", " } else { "" },
                row.get::<_, i64>(0),
                quote_literal(row.get(1)),
                quote_literal(row.get(2)),
                note.map_or("NULL".into(), quote_literal)
            )?;
        }
        writeln!(
            script,
            ") AS u(id, status, amount, note) WHERE t.id = u.id;"
        )?;
    }
    let first_deleted = plan.inserts - plan.deletes + 1;
    for batch in 0..plan.deletes / per {
        let keys: Vec<String> = (0..per)
            .map(|i| (first_deleted + batch * per + i).to_string())
            .collect();
        writeln!(
            script,
            "DELETE FROM {TABLE} WHERE id = ANY('{{{}}}'::bigint[]);",
            keys.join(",")
        )?;
    }
    script.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// One timed run of the baseline.
#[derive(Debug)]
pub struct IngestRun {
    /// Wall-clock seconds from `psql`'s start to its exit.
    pub seconds: f64,
    /// Seconds of the `COPY`, the `UPDATE`s and the `DELETE`s, as `psql` timed them.
    pub statements: [f64; 3],
    /// CPU seconds of `psql`, its backend and the broker during the run.
    pub cpu: Vec<(String, Cpu)>,
    /// Busy CPU seconds of the whole machine during the run.
    pub machine_busy: f64,
}

/// Creates the workload's table in the empty database `target` (untimed), then runs the
/// script with `psql -f`, timed from its start to its exit, and checks every statement's
/// command tag (every row inserted, updated and deleted).
pub async fn run_ingest(
    pg_bin: &Path,
    target: &Source,
    target_sql: &Client,
    plan: &IngestPlan,
    script: &Path,
    broker_pid: Option<u32>,
) -> anyhow::Result<IngestRun> {
    target_sql
        .batch_execute(&format!("CREATE TABLE {TABLE} ({})", workload::COLUMNS))
        .await
        .context("creating the baseline's table")?;
    let mut command = psql(pg_bin, target, INGEST_APPLICATION);
    command.arg("-f").arg(script).stdout(Stdio::piped());
    let mut cpu = CpuWatch::default();
    if let Some(pid) = broker_pid {
        cpu.track("broker (tansu)", pid, false);
    }
    let started = Instant::now();
    let mut child = command.spawn().context("starting psql")?;
    let pid = child.id().context("psql has no pid")?;
    cpu.track("psql", pid, true);
    let mut stdout = child.stdout.take().context("psql has no stdout")?;
    let reader = tokio::spawn(async move {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.map(|_| text)
    });
    let mut ticker = tokio::time::interval(POLL);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = ticker.tick() => {
                if !cpu.tracks("postgres backend") {
                    if let Some(backend) = backend_of(target_sql, &target.database, INGEST_APPLICATION).await? {
                        cpu.track("postgres backend", backend, true);
                    }
                }
                cpu.sample();
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let output = reader.await??;
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        bail!("psql -f {} failed ({status}): {stderr}", script.display());
    }
    cpu.sample();
    // Each statement's command tag, and after each one timed its `Time: 12.345 ms (…)` line.
    let (times, tags): (Vec<&str>, Vec<&str>) = output
        .lines()
        .filter(|line| *line != "Timing is on.")
        .partition(|line| line.starts_with("Time: "));
    let milliseconds: Vec<f64> = times
        .iter()
        .filter_map(|line| {
            line["Time: ".len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let expected = plan.expected_tags();
    if tags != expected {
        bail!(
            "the baseline's statements reported {} command tags ({:?} …), expected {} ({:?} …)",
            tags.len(),
            &tags[..tags.len().min(3)],
            expected.len(),
            &expected[..expected.len().min(3)]
        );
    }
    // Timed: the COPY, then the updates, then the deletes.
    let updates = (plan.updates / plan.rows_per_transaction) as usize;
    let sum = |from: usize, to: usize| {
        milliseconds
            .get(from..to.min(milliseconds.len()))
            .map_or(0.0, |ms| ms.iter().sum::<f64>())
            / 1000.0
    };
    Ok(IngestRun {
        seconds,
        statements: [
            sum(0, 1),
            sum(1, 1 + updates),
            sum(1 + updates, milliseconds.len()),
        ],
        cpu: cpu.report(),
        machine_busy: cpu.machine_busy(),
    })
}

/// The workload table's rows as `(count, md5 of the rows' md5s in key order)`, each row as
/// its canonical text: equal on two databases when they hold the same rows.
pub async fn table_digest(sql: &Client, table: &str) -> anyhow::Result<(i64, String)> {
    sql.batch_execute("SET DateStyle = ISO; SET TimeZone = UTC; SET extra_float_digits = 3")
        .await?;
    let row = sql
        .query_one(
            &format!(
                "SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY t.id)), '') FROM {table} t"
            ),
            &[],
        )
        .await
        .with_context(|| format!("digesting {table}"))?;
    Ok((row.get(0), row.get(1)))
}

/// `psql` on `target` under [`session_options`], stopping at the first error; stderr piped.
fn psql(pg_bin: &Path, target: &Source, application: &str) -> Command {
    let mut command = Command::new(pg_bin.join("psql"));
    command
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!(
            "host={} port={} user={} dbname={}",
            target.host, target.port, target.user, target.database
        ))
        .env("PGOPTIONS", session_options())
        .env("PGAPPNAME", application)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}
