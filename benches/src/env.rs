//! What every benchmark starts from: the local stack's settings (`.stack/env`, or the
//! environment), a broker that answers and its process, and the release `walproof` binary with
//! what its `decode` supports.

use std::path::PathBuf;

use anyhow::Context;
use walproof_testkit::Stack;

use crate::clients::DecoderFeatures;
use crate::procfs;

/// The stack, the broker and the binary under test.
#[derive(Debug)]
pub struct BenchEnv {
    /// The local stack's settings.
    pub stack: Stack,
    /// The broker's process (tansu), when found, for its CPU time.
    pub broker_pid: Option<u32>,
    /// The `walproof` binary.
    pub walproof_bin: PathBuf,
    /// What its `decode` supports.
    pub features: DecoderFeatures,
}

impl BenchEnv {
    /// Loads the stack's settings, checks that the broker answers, finds its process, and
    /// probes the `walproof` binary: `given`, or the one next to this benchmark's binary.
    pub async fn load(given: Option<PathBuf>) -> anyhow::Result<BenchEnv> {
        let walproof_bin = walproof_binary(given)?;
        let features = DecoderFeatures::probe(&walproof_bin).await?;
        let stack = Stack::load()?;
        let first_broker = stack
            .kafka_brokers
            .split(',')
            .next()
            .unwrap_or_default()
            .to_owned();
        stack
            .require_listening("Kafka broker", &first_broker)
            .await?;
        let broker_port = first_broker
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let broker_pid = procfs::find_process(&["tansu", &format!(":{broker_port}")]);
        Ok(BenchEnv {
            stack,
            broker_pid,
            walproof_bin,
            features,
        })
    }

    /// `broker <brokers> (tansu pid <pid>)`, for a report's first line.
    pub fn broker_line(&self) -> String {
        format!(
            "broker {} (tansu pid {})",
            self.stack.kafka_brokers,
            self.broker_pid
                .map_or("not found".into(), |pid| pid.to_string()),
        )
    }
}

/// The `walproof` binary: `given`, or `walproof` next to the running benchmark (both are built
/// into the same target directory); it must exist.
pub fn walproof_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark binary has no directory")?
            .join("walproof"),
    };
    anyhow::ensure!(
        path.is_file(),
        "no walproof binary at {} (build it with `cargo build --release -p walproof`, or pass --walproof-bin)",
        path.display()
    );
    Ok(path)
}
