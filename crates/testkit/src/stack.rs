//! Where the local stack's services are, read from the env file `deploy/stack.sh up` writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

/// The command that starts the local stack, named in every "not up" failure.
pub const START_COMMAND: &str = "bash deploy/stack.sh up";

/// Connection settings of the local stack's services.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Source Postgres, as a URL to its `postgres` database.
    pub pg_url: String,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
    /// GCS emulator JSON API endpoint, e.g. `http://127.0.0.2:80`.
    pub gcs_endpoint: String,
    /// anvil's JSON-RPC URL.
    pub eth_rpc_url: String,
    /// The env file the settings came from, for messages.
    pub env_file: PathBuf,
}

impl Stack {
    /// Loads the settings: environment variables, else the env file.
    pub fn load() -> anyhow::Result<Stack> {
        crate::ensure_crypto_provider();
        let env_file = std::env::var_os("WALPROOF_STACK_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(default_env_file);
        let file = match std::fs::read_to_string(&env_file) {
            Ok(text) => parse_env_file(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(err) => return Err(err).context(format!("reading {}", env_file.display())),
        };
        let get = |key: &str| -> anyhow::Result<String> {
            std::env::var(key).ok().or_else(|| file.get(key).cloned()).with_context(|| {
                format!(
                    "the local stack is not up: {key} is neither set nor in {} — start it with `{START_COMMAND}`",
                    env_file.display()
                )
            })
        };
        Ok(Stack {
            pg_url: get("WALPROOF_PG_URL")?,
            kafka_brokers: get("WALPROOF_KAFKA_BROKERS")?,
            gcs_endpoint: get("WALPROOF_GCS_ENDPOINT")?,
            eth_rpc_url: get("WALPROOF_ETH_RPC_URL")?,
            env_file,
        })
    }

    /// The failure for a service that does not answer, naming what to run.
    pub fn not_answering(
        &self,
        service: &str,
        address: &str,
        err: impl std::fmt::Display,
    ) -> anyhow::Error {
        anyhow::anyhow!(
            "{service} at {address} does not answer ({err}). Is the local stack up? Start it with \
             `{START_COMMAND}` and check `bash deploy/stack.sh status`."
        )
    }

    /// Fails with [`Stack::not_answering`] unless a TCP connection to `address` opens quickly.
    pub async fn require_listening(&self, service: &str, address: &str) -> anyhow::Result<()> {
        match tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(self.not_answering(service, address, err)),
            Err(_) => Err(self.not_answering(service, address, "connect timed out")),
        }
    }
}

fn default_env_file() -> PathBuf {
    // crates/testkit → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.stack/env")
}

/// Reads `KEY=value` lines; blank lines, comments and an `export ` prefix are allowed.
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("export ").unwrap_or(line).split_once('='))
        .map(|(key, value)| {
            (
                key.trim().to_owned(),
                value.trim().trim_matches(['"', '\'']).to_owned(),
            )
        })
        .collect()
}

/// Fails unless `condition` holds within `timeout`, polling every 50 ms: tests wait on a
/// condition, never on a bare sleep.
pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut condition: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_parse_with_comments_exports_and_quotes() {
        let vars = parse_env_file("# stack\nexport A=1\nB=\"two words\"\n\nC='x=y'\n");
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
        assert_eq!(vars.len(), 3);
    }
}
