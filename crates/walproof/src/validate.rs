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

use anyhow::Context as _;
use tokio::sync::watch;
use walproof_core::Lsn;
use walproof_validator::attestation::{AttestationSigner, Domain, FileKey};
use walproof_validator::run::{ValidateOptions, ValidatorStatus};
use walproof_validator::withdrawal::WithdrawalTable;

use crate::cli::ValidateArgs;
use crate::config::{FileConfig, pick};
use crate::metrics_http::{Handler, Response, parse_target, serve_with};

/// The environment variable that may hold the validator's key (hex).
pub const KEY_VARIABLE: &str = "WALPROOF_VALIDATOR_KEY";

/// Everything `walproof validate` needs, resolved from flags, environment and file.
#[derive(Debug)]
pub struct Validate {
    /// The validator's options.
    pub options: ValidateOptions,
    /// Its key.
    pub signer: FileKey,
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
        let signer = match args.key_file.clone().or(section.key_file.clone()) {
            Some(path) => FileKey::from_file(&path)?,
            None => FileKey::from_env(KEY_VARIABLE).context(
                "no validator key: give --key-file, WALPROOF_VALIDATOR_KEY_FILE, [validator] key_file or WALPROOF_VALIDATOR_KEY",
            )?,
        };
        let bridge = pick(args.bridge.clone(), section.bridge.clone(), || {
            "0x0000000000000000000000000000000000000000".into()
        });
        let bridge = bridge
            .parse()
            .map_err(|err| anyhow::anyhow!("--bridge {bridge}: not an address: {err}"))?;
        let chain_id = pick(args.chain_id, section.chain_id, || 31337);
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
            },
            signer,
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
    let address = validate.signer.address();
    tracing::info!(validator = %address, chain_id = validate.options.domain.chain_id, bridge = %validate.options.domain.bridge, "validator key loaded");
    if let Some(addr) = &validate.http_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("--http-addr {addr}: {err}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /status and /attestations");
        tokio::spawn(serve_with(
            listener,
            handler(status.clone(), address.to_checksum(None)),
            shutdown.clone(),
        ));
    }
    walproof_validator::run::run(
        settings,
        &validate.options,
        &validate.signer,
        &status,
        shutdown,
    )
    .await?;
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
