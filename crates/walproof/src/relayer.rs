//! `walproof relayer` and `walproof chain`: the relayer service and the contracts' deployment,
//! wired.
//!
//! ```text
//! GET /metrics   Prometheus metrics (walproof_relayer_*)
//! GET /status    {"bridge", "committed_lsn", "roots_committed", "withdrawals_paid", "last_error"}
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use tokio::sync::watch;
use walproof_core::Lsn;
use walproof_relayer::chain::Chain;
use walproof_relayer::deploy::{DeployOptions, Deployment};
use walproof_relayer::run::{RelayerOptions, RelayerStatus};
use walproof_validator::attestation::FileKey;
use walproof_validator::withdrawal::{DEFAULT_TABLE, WithdrawalTable};

use crate::cli::KafkaArgs;
use crate::config::{FileConfig, pick};
use crate::metrics_http::{Handler, Response, parse_target, serve_with};

/// The environment variable that may hold the relayer's transaction key (hex).
pub const SENDER_KEY_VARIABLE: &str = "WALPROOF_RELAYER_KEY";

/// The default JSON-RPC endpoint (the local stack's anvil listens on 18545 and exports
/// WALPROOF_ETH_RPC_URL).
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8545";

/// Where the chain is and which bridge: flags shared by `relayer` and `chain`.
#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    /// The chain's JSON-RPC endpoint [default: http://127.0.0.1:8545]
    #[arg(long, env = "WALPROOF_ETH_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The bridge contract's address (or give --deployment)
    #[arg(long, env = "WALPROOF_BRIDGE_ADDRESS", value_name = "0x…")]
    pub bridge: Option<String>,
    /// A deployment file written by `walproof chain deploy`, naming the bridge
    #[arg(long, env = "WALPROOF_DEPLOYMENT", value_name = "FILE")]
    pub deployment: Option<PathBuf>,
}

impl ChainArgs {
    fn rpc(&self, file: &FileConfig) -> String {
        pick(self.rpc_url.clone(), file.relayer.rpc_url.clone(), || {
            DEFAULT_RPC.into()
        })
    }

    fn bridge(&self, file: &FileConfig) -> anyhow::Result<Address> {
        let deployment = self.deployment.clone().or(file.relayer.deployment.clone());
        match (
            self.bridge.clone().or(file.relayer.bridge.clone()),
            deployment,
        ) {
            (Some(text), _) => text
                .parse()
                .map_err(|err| anyhow::anyhow!("--bridge {text}: not an address: {err}")),
            (None, Some(path)) => Ok(Deployment::read(&path)
                .map_err(|err| anyhow::anyhow!("--deployment: {err}"))?
                .bridge),
            (None, None) => anyhow::bail!(
                "no bridge: give --bridge (WALPROOF_BRIDGE_ADDRESS, [relayer] bridge) or --deployment (WALPROOF_DEPLOYMENT, [relayer] deployment)"
            ),
        }
    }
}

/// `walproof relayer`.
#[derive(Debug, Args)]
pub struct RelayerArgs {
    /// Kafka and topics.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The chain and bridge.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The key that pays for the relayer's transactions (hex; or WALPROOF_RELAYER_KEY). It
    /// signs transactions only: what counts on chain are the validators' signatures
    #[arg(long, env = "WALPROOF_RELAYER_KEY_FILE", value_name = "FILE")]
    pub sender_key_file: Option<PathBuf>,
    /// Submit as soon as this many roots are ready [default: 20]
    #[arg(long, env = "WALPROOF_RELAYER_BATCH_ROOTS", value_name = "N")]
    pub batch_roots: Option<usize>,
    /// Submit whatever is ready at least this often [default: 5000]
    #[arg(long, env = "WALPROOF_RELAYER_BATCH_INTERVAL_MS", value_name = "MS")]
    pub batch_interval_ms: Option<u64>,
    /// At most this many roots in one transaction [default: 50]
    #[arg(long, env = "WALPROOF_RELAYER_MAX_BATCH", value_name = "N")]
    pub max_batch: Option<usize>,
    /// Also poll this validator's HTTP endpoint (`http://host:port`, serving /attestations and
    /// /withdrawals); repeat for each validator
    #[arg(
        long = "validator-url",
        env = "WALPROOF_RELAYER_VALIDATOR_URLS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub validator_urls: Vec<String>,
    /// Do not follow <prefix>.attestations: collect from --validator-url endpoints only
    #[arg(long, env = "WALPROOF_RELAYER_NO_TOPIC", requires = "validator_urls")]
    pub no_topic: bool,
    /// Do not submit withdrawals (roots only)
    #[arg(long, env = "WALPROOF_RELAYER_NO_WITHDRAWALS")]
    pub no_withdrawals: bool,
    /// Where to serve /metrics and /status, or `off` [default: 127.0.0.1:9190]
    #[arg(long, env = "WALPROOF_RELAYER_HTTP_ADDR", value_name = "HOST:PORT")]
    pub http_addr: Option<String>,
}

/// Everything `walproof relayer` needs, resolved from flags, environment and file.
#[derive(Debug)]
pub struct Relayer {
    /// The JSON-RPC endpoint.
    pub rpc: String,
    /// The bridge.
    pub bridge: Address,
    /// The transaction key.
    pub sender: PrivateKeySigner,
    /// Batching and retries.
    pub options: RelayerOptions,
    /// The HTTP address, `None` when off.
    pub http_addr: Option<String>,
}

impl Relayer {
    /// Resolves the settings; the error names the setting that is missing or wrong.
    pub fn resolve(args: &RelayerArgs, file: &FileConfig) -> anyhow::Result<Relayer> {
        let section = &file.relayer;
        let sender = load_key(
            args.sender_key_file
                .clone()
                .or(section.sender_key_file.clone()),
            SENDER_KEY_VARIABLE,
            "no relayer key: give --sender-key-file, WALPROOF_RELAYER_KEY_FILE, [relayer] sender_key_file or WALPROOF_RELAYER_KEY",
        )?;
        let defaults = RelayerOptions::default();
        let options = RelayerOptions {
            batch_roots: pick(args.batch_roots, section.batch_roots, || {
                defaults.batch_roots
            })
            .max(1),
            batch_interval: Duration::from_millis(pick(
                args.batch_interval_ms,
                section.batch_interval_ms,
                || defaults.batch_interval.as_millis() as u64,
            )),
            max_batch: pick(args.max_batch, section.max_batch, || defaults.max_batch).max(1),
            withdrawals: !(args.no_withdrawals || section.no_withdrawals.unwrap_or(false)),
            key_status_ttl: defaults.key_status_ttl,
            follow_topic: !(args.no_topic || section.no_topic.unwrap_or(false)),
            validator_urls: if args.validator_urls.is_empty() {
                section.validator_urls.clone().unwrap_or_default()
            } else {
                args.validator_urls.clone()
            },
            poll_interval: defaults.poll_interval,
        };
        if !options.follow_topic && options.validator_urls.is_empty() {
            anyhow::bail!(
                "no_topic without validator_urls: the relayer would collect nothing ([relayer] validator_urls or --validator-url)"
            );
        }
        let http_addr = pick(args.http_addr.clone(), section.http_addr.clone(), || {
            "127.0.0.1:9190".into()
        });
        Ok(Relayer {
            rpc: args.chain.rpc(file),
            bridge: args.chain.bridge(file)?,
            sender,
            options,
            http_addr: (http_addr != "off").then_some(http_addr),
        })
    }
}

/// A transaction key from `path`, else from the environment variable `var`.
fn load_key(path: Option<PathBuf>, var: &str, missing: &str) -> anyhow::Result<PrivateKeySigner> {
    let key = match path {
        Some(path) => FileKey::from_file(&path)?,
        None => FileKey::from_env(var).context(missing.to_owned())?,
    };
    Ok(key.into_local_signer())
}

/// Runs the relayer, serving HTTP on `http_addr`, until `shutdown`.
pub async fn run(
    settings: &walproof_transport::KafkaSettings,
    relayer: Relayer,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let sender = relayer.sender.address();
    let chain = Chain::connect(&relayer.rpc, relayer.bridge, relayer.sender)
        .await
        .with_context(|| {
            format!(
                "connecting to the bridge {} at {}",
                relayer.bridge, relayer.rpc
            )
        })?;
    tracing::info!(bridge = %relayer.bridge, registry = %chain.registry(), %sender, rpc = %relayer.rpc, "relayer connected");
    let status = Arc::new(RelayerStatus::default());
    if let Some(addr) = &relayer.http_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("--http-addr {addr}: {err}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics and /status");
        tokio::spawn(serve_with(
            listener,
            handler(status.clone(), relayer.bridge),
            shutdown.clone(),
        ));
    }
    walproof_relayer::run::run(settings, &chain, &relayer.options, &status, shutdown).await?;
    Ok(())
}

fn handler(status: Arc<RelayerStatus>, bridge: Address) -> Handler {
    Arc::new(move |target: String| {
        let response = respond(&status, bridge, &target);
        Box::pin(async move { response })
    })
}

fn respond(status: &RelayerStatus, bridge: Address, target: &str) -> Response {
    let (path, _) = parse_target(target);
    let metrics = &status.metrics;
    match path.as_str() {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        "/status" => {
            let committed = match metrics.committed_lsn.load(Relaxed) {
                0 => serde_json::Value::Null,
                raw => Lsn::new(raw).to_string().into(),
            };
            let last_error = status
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default();
            (
                "200 OK",
                "application/json",
                serde_json::json!({
                    "bridge": bridge.to_checksum(None),
                    "committed_lsn": committed,
                    "roots_committed": metrics.roots_committed.load(Relaxed),
                    "withdrawals_paid": metrics.withdrawals_paid.load(Relaxed),
                    "last_error": last_error,
                })
                .to_string()
                    + "\n",
            )
        }
        _ => (
            "404 Not Found",
            "application/json",
            "{\"error\": \"walproof relayer serves /metrics and /status\"}\n".into(),
        ),
    }
}

/// `walproof chain`.
#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Deploy the key registry, the development attestation verifier and the bridge, accept
    /// the verifier in the registry and fund the bridge; writes the addresses as JSON.
    ///
    /// For development and the local stack: keys are registered with `walproof keys attest
    /// --provider dev` and `walproof keys register`, signed by --attester's key.
    Deploy(DeployArgs),
    /// Show the bridge's state: last committed LSN and root, threshold, registry.
    Status {
        /// The chain and bridge.
        #[command(flatten)]
        chain: ChainArgs,
    },
}

/// `walproof chain deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The key that deploys and owns the contracts (hex; or WALPROOF_DEPLOYER_KEY)
    #[arg(long, env = "WALPROOF_DEPLOYER_KEY_FILE", value_name = "FILE")]
    pub deployer_key_file: Option<PathBuf>,
    /// The development attester's address: its signature registers validator keys
    #[arg(long, value_name = "0x…")]
    pub attester: String,
    /// Validator signatures the bridge needs per root and per withdrawal
    #[arg(long, default_value_t = 1)]
    pub threshold: u64,
    /// The outbound withdrawal table whose rows the bridge hashes for proofs
    #[arg(long, default_value = DEFAULT_TABLE, value_name = "SCHEMA.TABLE")]
    pub withdrawals_table: String,
    /// Wei sent to the bridge to pay withdrawals
    #[arg(long, default_value = "0", value_name = "WEI")]
    pub fund_wei: String,
    /// Where to write the deployment JSON (also printed)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs a `walproof chain` command; returns what to print.
pub async fn chain(command: ChainCommand, file: &FileConfig) -> anyhow::Result<String> {
    match command {
        ChainCommand::Deploy(args) => {
            let deployer = load_key(
                args.deployer_key_file.clone(),
                "WALPROOF_DEPLOYER_KEY",
                "no deployer key: give --deployer-key-file, WALPROOF_DEPLOYER_KEY_FILE or WALPROOF_DEPLOYER_KEY",
            )?;
            let table = WithdrawalTable::parse(&args.withdrawals_table)
                .map_err(|err| anyhow::anyhow!("--withdrawals-table: {err}"))?;
            let options = DeployOptions {
                threshold: args.threshold,
                attester: args.attester.parse().map_err(|err| {
                    anyhow::anyhow!("--attester {}: not an address: {err}", args.attester)
                })?,
                withdrawal_table: (table.schema, table.table),
                fund_wei: U256::from_str_radix(&args.fund_wei, 10).map_err(|err| {
                    anyhow::anyhow!("--fund-wei {}: not a number of wei: {err}", args.fund_wei)
                })?,
            };
            let rpc = args.chain.rpc(file);
            let deployment = walproof_relayer::deploy::deploy(&rpc, deployer, &options)
                .await
                .with_context(|| format!("deploying to {rpc}"))?;
            let json = deployment.to_json();
            if let Some(out) = &args.out {
                std::fs::write(out, &json).with_context(|| format!("writing {}", out.display()))?;
            }
            Ok(json)
        }
        ChainCommand::Status { chain } => {
            let rpc = chain.rpc(file);
            let bridge = chain.bridge(file)?;
            // Reads only: any key will do as the (unused) sender.
            let reader = PrivateKeySigner::from_bytes(&alloy::primitives::B256::repeat_byte(1))
                .context("a reader key")?;
            let connected = Chain::connect(&rpc, bridge, reader)
                .await
                .with_context(|| format!("connecting to the bridge {bridge} at {rpc}"))?;
            let state = connected.state().await?;
            let root = connected.root_of(state.last_commit_lsn).await?;
            Ok(serde_json::to_string_pretty(&serde_json::json!({
                "chain_id": connected.chain_id().await?,
                "bridge": bridge.to_checksum(None),
                "registry": connected.registry().to_checksum(None),
                "threshold": state.threshold,
                "last_commit_lsn": (state.last_commit_lsn != Lsn::ZERO).then(|| state.last_commit_lsn.to_string()),
                "last_root": root.map(|r| r.to_string()),
                "bridge_balance_wei": connected.balance(bridge).await?.to_string(),
            }))? + "\n")
        }
    }
}
