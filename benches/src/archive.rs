//! `walproof archive` over a ledger the decoder wrote, from its first record into Parquet in a
//! local directory: how long until every change is in a file, the bytes written, the peak RSS
//! and CPU of the archiver.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::Command;
use walproof_archive::archiver::Index;

use crate::procfs::{self, Cpu};

/// What one archiver run measured.
#[derive(Debug, Clone)]
pub struct ArchiveRun {
    /// Seconds from the start until the index held every change.
    pub seconds: f64,
    /// Rows (changes) archived.
    pub rows: u64,
    /// Parquet files written.
    pub files: usize,
    /// Bytes of the Parquet files.
    pub bytes: u64,
    /// Peak resident set of the archiver.
    pub peak_rss: u64,
    /// The archiver's CPU time.
    pub cpu: Cpu,
}

fn parquet_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                parquet_bytes(&path)
            } else if path.extension().is_some_and(|e| e == "parquet") {
                entry.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}

/// Runs `binary archive` on `<topic_prefix>.ledger` into `dir` until its index holds `rows`
/// rows (rolling every `roll` at the latest), then stops it with SIGTERM.
pub async fn run_archive(
    binary: &Path,
    brokers: &str,
    topic_prefix: &str,
    dir: &Path,
    rows: u64,
    roll: Duration,
    timeout: Duration,
) -> anyhow::Result<ArchiveRun> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let log = std::fs::File::create(dir.with_extension("log"))?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args([
            "archive",
            "--brokers",
            brokers,
            "--topic-prefix",
            topic_prefix,
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--roll-interval-ms", &roll.as_millis().to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting walproof archive")?;
    let pid = child.id().context("the archiver's pid")?;
    let index_path: PathBuf = dir.join(topic_prefix).join("_walproof/index.json");
    let (mut peak_rss, mut cpu) = (0, Cpu::default());
    let seconds = loop {
        if let Some((_, hwm)) = procfs::memory(pid) {
            peak_rss = peak_rss.max(hwm);
        }
        if let Some(now) = procfs::cpu(pid) {
            cpu = now;
        }
        let archived = std::fs::read(&index_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Index>(&bytes).ok())
            .map_or(0, |index| index.files.iter().map(|f| f.rows).sum::<u64>());
        if archived >= rows {
            break started.elapsed().as_secs_f64();
        }
        if let Some(status) = child.try_wait()? {
            bail!("walproof archive exited ({status}) with {archived} of {rows} rows archived");
        }
        if started.elapsed() > timeout {
            let _ = child.kill().await;
            bail!("walproof archive: {archived} of {rows} rows after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let status = child.wait().await?;
    if !status.success() {
        bail!("walproof archive did not stop cleanly: {status}");
    }
    let index: Index = serde_json::from_slice(&std::fs::read(&index_path)?)?;
    Ok(ArchiveRun {
        seconds,
        rows: index.files.iter().map(|f| f.rows).sum(),
        files: index.files.len(),
        bytes: parquet_bytes(dir),
        peak_rss,
        cpu,
    })
}
