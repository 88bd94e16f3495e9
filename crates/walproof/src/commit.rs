//! `walproof commit`: the committer service and its proof API, wired.
//!
//! ```text
//! GET /proof?table=<schema.table>&key=<text>[&key=…][&at=<LSN>][&compact=true]
//!     200 the row's proof (JSON, as `walproof prove` prints it); 400 a bad parameter;
//!     404 an unknown table, a wrong number of key values, an LSN before the roots kept
//! GET /roots/latest
//!     200 {"commit_lsn", "root", "keys"} of the last transaction applied; 404 before the first
//! ```

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use walproof_committer::CommitError;
use walproof_committer::proof::RowSubject;
use walproof_committer::run::{CommitOptions, Query};
use walproof_transport::KafkaSettings;

use crate::metrics_http::{Handler, Response, parse_target, serve_with};

/// Runs the committer, with its proof API on `proof_addr` (unless `None`), until `shutdown`.
pub async fn run(
    settings: &KafkaSettings,
    options: &CommitOptions,
    proof_addr: Option<&str>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (queries, answered) = mpsc::channel(64);
    if let Some(addr) = proof_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| anyhow::anyhow!("--proof-addr {addr}: {err}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving proofs at /proof and /roots/latest");
        tokio::spawn(serve_with(listener, handler(queries), shutdown.clone()));
    }
    walproof_committer::run::run(settings, options, answered, shutdown).await?;
    Ok(())
}

fn json_error(status: &'static str, message: &str) -> Response {
    (
        status,
        "application/json",
        serde_json::json!({ "error": message }).to_string() + "\n",
    )
}

fn handler(queries: mpsc::Sender<Query>) -> Handler {
    Arc::new(move |target: String| {
        let queries = queries.clone();
        Box::pin(async move { respond(&queries, &target).await })
    })
}

async fn respond(queries: &mpsc::Sender<Query>, target: &str) -> Response {
    let (path, params) = parse_target(target);
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let stopped = || json_error("503 Service Unavailable", "the committer is stopping");
    match path.as_str() {
        "/proof" => {
            let Some((schema, table)) = param("table").and_then(|t| t.split_once('.')) else {
                return json_error("400 Bad Request", "table=<schema.table> is required");
            };
            let key_values: Vec<String> = params
                .iter()
                .filter(|(n, _)| n == "key")
                .map(|(_, v)| v.clone())
                .collect();
            let row = match (param("values"), key_values.is_empty()) {
                (None, false) => RowSubject::Key(key_values),
                (Some(values), true) => match crate::proofs::parse_values(values) {
                    Ok(values) => RowSubject::Values(values),
                    Err(err) => {
                        return json_error("400 Bad Request", &format!("values: {err:#}"));
                    }
                },
                _ => {
                    return json_error(
                        "400 Bad Request",
                        "key=<text> is required, once per key column (or, for a table without a key, values=<JSON object of column to text or null>, not both)",
                    );
                }
            };
            let at = match param("at").map(str::parse) {
                None => None,
                Some(Ok(at)) => Some(at),
                Some(Err(err)) => return json_error("400 Bad Request", &format!("at: {err}")),
            };
            let compact = matches!(param("compact"), Some("true" | "1"));
            let (reply, answer) = oneshot::channel();
            let query = Query::Prove {
                schema: schema.to_owned(),
                table: table.to_owned(),
                row,
                at,
                reply,
            };
            if queries.send(query).await.is_err() {
                return stopped();
            }
            match answer.await {
                Err(_) => stopped(),
                Ok(Ok(proof)) => {
                    let json = if compact {
                        proof.to_compact_json().map_err(|err| err.to_string())
                    } else {
                        Ok(proof.to_json())
                    };
                    match json {
                        Ok(json) => ("200 OK", "application/json", json + "\n"),
                        Err(err) => json_error("500 Internal Server Error", &err),
                    }
                }
                Ok(Err(err @ CommitError::NoProof(_))) => {
                    json_error("404 Not Found", &err.to_string())
                }
                Ok(Err(err)) => json_error("500 Internal Server Error", &err.to_string()),
            }
        }
        "/roots/latest" => {
            let (reply, answer) = oneshot::channel();
            if queries.send(Query::Latest { reply }).await.is_err() {
                return stopped();
            }
            match answer.await {
                Err(_) => stopped(),
                Ok(None) => json_error("404 Not Found", "no transaction is committed yet"),
                Ok(Some((lsn, root, keys))) => (
                    "200 OK",
                    "application/json",
                    serde_json::json!({
                        "commit_lsn": lsn.to_string(),
                        "root": root.to_string(),
                        "keys": keys,
                    })
                    .to_string()
                        + "\n",
                ),
            }
        }
        _ => json_error(
            "404 Not Found",
            "walproof commit serves /proof?table=&key=[&at=][&compact=] and /roots/latest",
        ),
    }
}
