//! `walproof validate`: one validator and its HTTP endpoint, wired.
//!
//! ```text
//! GET /metrics                 Prometheus metrics (walproof_validator_*)
//! GET /status                  {"validator", "applied_lsn", "attested_lsn", "divergence"}
//! GET /attestations[?after=L]  the most recent signed attestations (after LSN L), oldest
//!                              first, as a JSON array of the records on <prefix>.attestations
//! GET /withdrawals[?after=L]   the most recent signed withdrawal approvals (of rows inserted
//!                              after LSN L), oldest first, likewise
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use alloy::primitives::Address;
use anyhow::Context as _;
use std::path::PathBuf;
use tokio::sync::watch;
use walproof_core::Lsn;
use walproof_trust::confidential_space::{ConfidentialSpace, Launcher};
use walproof_trust::{KeyAttestor as _, Registration, WorkloadKey};
use walproof_validator::attestation::{AttestationSigner, Domain, FileKey};
use walproof_validator::run::{ValidateOptions, ValidatorStatus};
use walproof_validator::withdrawal::WithdrawalTable;

use crate::cli::ValidateArgs;
use crate::config::{FileConfig, pick};
use crate::metrics_http::{Handler, Response, parse_target, serve_with};

/// The environment variable that may hold the validator's key (hex).
pub const KEY_VARIABLE: &str = "WALPROOF_VALIDATOR_KEY";

/// Where the validator's signing key lives.
#[derive(Debug)]
pub enum ValidatorKey {
    /// A key file or environment variable (development).
    File(FileKey),
    /// A key generated in this process, never written, attested by the GCP Confidential
    /// Space launcher when the validator starts.
    Workload {
        /// The key.
        key: WorkloadKey,
        /// How it is attested and registered.
        tee: Box<TeeAttestation>,
    },
}

impl ValidatorKey {
    /// The key as the validator signs with it.
    pub fn signer(&self) -> &dyn AttestationSigner {
        match self {
            ValidatorKey::File(key) => key,
            ValidatorKey::Workload { key, .. } => key,
        }
    }
}

/// The Confidential Space attestation of a workload key.
#[derive(Debug)]
pub struct TeeAttestation {
    /// The token's audience.
    pub audience: String,
    /// The launcher's socket.
    pub launcher: PathBuf,
    /// The chain, registry and verifier the key is bound to.
    pub registration: Registration,
    /// Where the evidence is written.
    pub evidence_out: Option<PathBuf>,
    /// The chain's endpoint and the transaction key that registers the key, if the validator
    /// registers it itself.
    pub register: Option<(String, PathBuf)>,
}

/// Everything `walproof validate` needs, resolved from flags, environment and file.
#[derive(Debug)]
pub struct Validate {
    /// The validator's options.
    pub options: ValidateOptions,
    /// Its key.
    pub key: ValidatorKey,
    /// The HTTP address, `None` when off.
    pub http_addr: Option<String>,
}

impl Validate {
    /// Resolves the settings; the error names the setting that is missing or wrong.
    pub fn resolve(args: &ValidateArgs, file: &FileConfig) -> anyhow::Result<Validate> {
        let section = &file.validator;
        let shadow_url = args
            .shadow_url
            .clone()
            .or(section.shadow_url.clone())
            .context("no shadow database: give --shadow-url, WALPROOF_SHADOW_URL or [validator] shadow_url")?;
        let chain_id = pick(args.chain_id, section.chain_id, || 31337);
        let provider = pick(
            args.key_provider.clone(),
            section.key_provider.clone(),
            || "file".into(),
        );
        let key = match provider.as_str() {
            "file" => ValidatorKey::File(match args.key_file.clone().or(section.key_file.clone()) {
                Some(path) => FileKey::from_file(&path)?,
                None => FileKey::from_env(KEY_VARIABLE).context(
                    "no validator key: give --key-file, WALPROOF_VALIDATOR_KEY_FILE, [validator] key_file or WALPROOF_VALIDATOR_KEY",
                )?,
            }),
            "confidential-space" => {
                let address = |flag: &str, value: Option<String>| -> anyhow::Result<Address> {
                    let text = value.with_context(|| {
                        format!("--key-provider confidential-space needs --{flag}")
                    })?;
                    text.parse()
                        .map_err(|err| anyhow::anyhow!("--{flag} {text}: not an address: {err}"))
                };
                let registration = Registration {
                    chain_id,
                    registry: address("registry", args.registry.clone().or(section.registry.clone()))?,
                    verifier: address("verifier", args.verifier.clone().or(section.verifier.clone()))?,
                };
                let register = match args
                    .register_from_key_file
                    .clone()
                    .or(section.register_from_key_file.clone())
                {
                    None => None,
                    Some(path) => Some((
                        args.rpc_url
                            .clone()
                            .or(section.rpc_url.clone())
                            .context("--register-from-key-file needs --rpc-url (WALPROOF_ETH_RPC_URL)")?,
                        path,
                    )),
                };
                ValidatorKey::Workload {
                    key: WorkloadKey::generate()?,
                    tee: Box::new(TeeAttestation {
                        audience: args
                            .tee_audience
                            .clone()
                            .or(section.tee_audience.clone())
                            .context("--key-provider confidential-space needs --tee-audience")?,
                        launcher: args
                            .launcher_socket
                            .clone()
                            .or(section.launcher_socket.clone())
                            .unwrap_or_else(|| Launcher::default().socket().to_owned()),
                        registration,
                        evidence_out: args.evidence_out.clone().or(section.evidence_out.clone()),
                        register,
                    }),
                }
            }
            other => anyhow::bail!(
                "--key-provider {other}: expected `file` or `confidential-space`"
            ),
        };
        let bridge = pick(args.bridge.clone(), section.bridge.clone(), || {
            "0x0000000000000000000000000000000000000000".into()
        });
        let bridge = bridge
            .parse()
            .map_err(|err| anyhow::anyhow!("--bridge {bridge}: not an address: {err}"))?;
        let http_addr = pick(args.http_addr.clone(), section.http_addr.clone(), || {
            "127.0.0.1:9189".into()
        });
        let withdrawals = pick(
            args.withdrawals_table.clone(),
            section.withdrawals_table.clone(),
            || walproof_validator::withdrawal::DEFAULT_TABLE.into(),
        );
        let withdrawals = match withdrawals.as_str() {
            "off" => None,
            name => Some(
                WithdrawalTable::parse(name)
                    .map_err(|err| anyhow::anyhow!("--withdrawals-table: {err}"))?,
            ),
        };
        Ok(Validate {
            options: ValidateOptions {
                shadow_url,
                domain: Domain::new(chain_id, bridge),
                audit_interval: std::time::Duration::from_millis(pick(
                    args.audit_interval_ms,
                    section.audit_interval_ms,
                    || 60_000,
                )),
                audit_rows: pick(args.audit_rows, section.audit_rows, || 10_000),
                withdrawals,
                ephemeral_key: matches!(key, ValidatorKey::Workload { .. }),
                state_dir: (!args.no_snapshot).then(|| {
                    pick(args.state_dir.clone(), section.state_dir.clone(), || {
                        "walproof-state/validator".into()
                    })
                }),
                snapshot_interval: std::time::Duration::from_millis(pick(
                    args.snapshot_interval_ms,
                    section.snapshot_interval_ms,
                    || 300_000,
                )),
            },
            key,
            http_addr: (http_addr != "off").then_some(http_addr),
        })
    }
}

/// Runs the validator, serving HTTP on `http_addr`, until `shutdown`.
pub async fn run(
    settings: &walproof_transport::KafkaSettings,
    validate: Validate,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let status = Arc::new(ValidatorStatus::default());
    if let ValidatorKey::Workload { key, tee } = &validate.key {
        attest_workload_key(key, tee).await?;
    }
    let address = validate.key.signer().address();
    tracing::info!(validator = %address, chain_id = validate.options.domain.chain_id, bridge = %validate.options.domain.bridge, "validator key loaded");
    if let Some(addr) = &validate.http_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("--http-addr {addr}: {err}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /status, /attestations and /withdrawals");
        tokio::spawn(serve_with(
            listener,
            handler(status.clone(), address.to_checksum(None)),
            shutdown.clone(),
        ));
    }
    walproof_validator::run::run(
        settings,
        &validate.options,
        validate.key.signer(),
        &status,
        shutdown,
    )
    .await?;
    Ok(())
}

/// Has the launcher attest the workload key, writes the evidence, and registers the key when
/// told to; before anything is signed.
async fn attest_workload_key(key: &WorkloadKey, tee: &TeeAttestation) -> anyhow::Result<()> {
    let attestor = ConfidentialSpace::new(Launcher::new(&tee.launcher), tee.audience.clone());
    let evidence = attestor
        .attest(key, &tee.registration)
        .await
        .with_context(|| {
            format!(
                "attesting the validator key {} for {}",
                key.address(),
                tee.registration
            )
        })?;
    tracing::info!(key = %key.address(), registration = %tee.registration, "the Confidential Space launcher attested the validator key");
    if let Some(path) = &tee.evidence_out {
        crate::keys::write_evidence(path, &evidence).context("--evidence-out")?;
        tracing::info!(path = %path.display(), "wrote the key's evidence (walproof keys register --evidence takes it)");
    }
    if let Some((rpc, sender)) = &tee.register {
        let sender = FileKey::from_file(sender)?;
        let printed = crate::keys::submit_registration(
            rpc,
            &evidence,
            tee.registration.registry,
            tee.registration.verifier,
            sender,
        )
        .await?;
        tracing::info!(key = %key.address(), "{}", printed.lines().next().unwrap_or_default());
    }
    Ok(())
}

fn handler(status: Arc<ValidatorStatus>, address: String) -> Handler {
    Arc::new(move |target: String| {
        let response = respond(&status, &address, &target);
        Box::pin(async move { response })
    })
}

fn json(status: &'static str, value: &serde_json::Value) -> Response {
    (status, "application/json", value.to_string() + "\n")
}

fn respond(status: &ValidatorStatus, address: &str, target: &str) -> Response {
    let (path, params) = parse_target(target);
    let lsn = |gauge: &std::sync::atomic::AtomicU64| match gauge.load(Relaxed) {
        0 => serde_json::Value::Null,
        raw => Lsn::new(raw).to_string().into(),
    };
    match path.as_str() {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4",
            status.metrics.render(),
        ),
        "/status" => {
            let divergence = status
                .divergence
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default();
            json(
                "200 OK",
                &serde_json::json!({
                    "validator": address,
                    "applied_lsn": lsn(&status.metrics.applied_lsn),
                    "attested_lsn": lsn(&status.metrics.attested_lsn),
                    "divergence": divergence,
                }),
            )
        }
        "/attestations" | "/withdrawals" => {
            let after: Option<Lsn> = match params.iter().find(|(n, _)| n == "after") {
                None => None,
                Some((_, value)) => match value.parse() {
                    Ok(lsn) => Some(lsn),
                    Err(err) => {
                        return json(
                            "400 Bad Request",
                            &serde_json::json!({ "error": format!("after: {err}") }),
                        );
                    }
                },
            };
            let kept = if path == "/withdrawals" {
                status
                    .approvals
                    .lock()
                    .map(|kept| {
                        kept.iter()
                            .filter(|a| after.is_none_or(|after| a.withdrawal.commit_lsn > after))
                            .map(|a| a.to_json())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            } else {
                status
                    .attestations
                    .lock()
                    .map(|kept| {
                        kept.iter()
                            .filter(|a| after.is_none_or(|after| a.commit_lsn > after))
                            .map(|a| a.to_json())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            (
                "200 OK",
                "application/json",
                format!("[{}]\n", kept.join(",")),
            )
        }
        _ => json(
            "404 Not Found",
            &serde_json::json!({ "error": "walproof validate serves /metrics, /status, /attestations[?after=LSN] and /withdrawals[?after=LSN]" }),
        ),
    }
}
