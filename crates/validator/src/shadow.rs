//! The shadow database: one SQL transaction per source transaction, with the progress row.
//!
//! The session runs under the canonical settings, so the shadow's text output of a value is the
//! text the source printed. `synchronous_commit` is off: the progress row commits atomically
//! with the rows it describes, so a shadow server that loses its last commits in a crash loses
//! them together with their progress, and the validator replays them again from the ledger to
//! the same roots (signatures are deterministic, RFC 6979).
//!
//! walproof keeps its own tables in the schema [`WALPROOF_SCHEMA`]: `progress` (one row: the
//! last transaction applied, its ledger offset and hash, the root after it) and `divergences`
//! (each divergence found; while one is there the validator signs nothing).

use std::fmt::Write as _;
use std::pin::pin;

use futures_util::StreamExt as _;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};
use walproof_core::{Digest, Lsn};

use crate::divergence::{Divergence, DivergenceKind};
use crate::error::{Result, ValidateError};
use crate::replay::{Expect, Statement, Subject};
use crate::schema::TypeNames;

/// The schema of walproof's own tables in the shadow database.
pub const WALPROOF_SCHEMA: &str = "walproof_validator";

/// About the most bytes of SQL sent in one round trip.
const ROUND_TRIP_BYTES: usize = 4 << 20;

/// Where the shadow database stands: the last source transaction it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Its commit LSN.
    pub commit_lsn: Lsn,
    /// The ledger offset of its last record.
    pub ledger_offset: i64,
    /// The hash of its last record (the chain head).
    pub ledger_hash: Digest,
    /// The root this validator computed after it.
    pub root: Digest,
    /// The last commit LSN this validator had attested (with whichever key) when it planned the
    /// transaction: a validator whose key is new at each start resumes signing after it.
    pub attested: Option<Lsn>,
}

/// What a session on the shadow database is for; its `application_name` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Applies the replayed transactions ([`crate::shadow_writer`]): `walproof validator`.
    Writer,
    /// Everything else, never inside the writer's SQL transactions: the progress row at start,
    /// type names, the audit's reads, divergences: `walproof validator checks`.
    Checks,
}

impl Role {
    /// The session's `application_name`.
    pub fn application_name(self) -> &'static str {
        match self {
            Role::Writer => "walproof validator",
            Role::Checks => "walproof validator checks",
        }
    }
}

/// A session on the shadow database.
pub struct Shadow {
    client: Client,
    name: String,
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What staging a transaction came to ([`Shadow::stage`]).
#[derive(Debug)]
pub enum Staged {
    /// Applied and checked, progress row included; its SQL transaction is open, to be
    /// committed.
    Open,
    /// Rolled back: the transaction does not apply to the shadow.
    Diverged(Divergence),
}

impl Shadow {
    /// Connects to the shadow database at `url` under the canonical settings, for `role`.
    pub async fn connect(url: &str, role: Role) -> Result<Shadow> {
        let mut config: Config = url.parse().map_err(|err: tokio_postgres::Error| {
            ValidateError::Config(format!("invalid shadow database URL: {err}"))
        })?;
        let name = format!(
            "database {} on {:?}",
            config.get_dbname().unwrap_or("postgres"),
            config.get_hosts().first()
        );
        config.options(format!(
            "{} -c synchronous_commit=off -c client_min_messages=warning",
            walproof_core::value::canonical_startup_options()
        ));
        config.application_name(role.application_name());
        let (client, connection) =
            config
                .connect(NoTls)
                .await
                .map_err(ValidateError::shadow(format!(
                    "connecting to the shadow {name}"
                )))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::error!(%err, "the shadow database connection ended");
            }
        });
        let shadow = Shadow { client, name };
        shadow.prepare().await?;
        Ok(shadow)
    }

    async fn prepare(&self) -> Result<()> {
        self.client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {WALPROOF_SCHEMA};
                 CREATE TABLE IF NOT EXISTS {WALPROOF_SCHEMA}.progress (
                     only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
                     commit_lsn pg_lsn NOT NULL,
                     ledger_offset bigint NOT NULL,
                     ledger_hash text NOT NULL,
                     root text NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now());
                 ALTER TABLE {WALPROOF_SCHEMA}.progress ADD COLUMN IF NOT EXISTS attested_lsn pg_lsn;
                 CREATE TABLE IF NOT EXISTS {WALPROOF_SCHEMA}.divergences (
                     found_at timestamptz NOT NULL DEFAULT now(),
                     kind text NOT NULL,
                     commit_lsn pg_lsn,
                     detail text NOT NULL);"
            ))
            .await
            .map_err(ValidateError::shadow(format!(
                "preparing the shadow {}",
                self.name
            )))
    }

    /// The last transaction the shadow holds, if any.
    pub async fn progress(&self) -> Result<Option<Progress>> {
        let rows = self
            .client
            .simple_query(&format!(
                "SELECT commit_lsn, ledger_offset, ledger_hash, root, attested_lsn FROM {WALPROOF_SCHEMA}.progress"
            ))
            .await
            .map_err(ValidateError::shadow("reading the progress row"))?;
        let Some(row) = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        }) else {
            return Ok(None);
        };
        let field = |i: usize| row.get(i).unwrap_or_default();
        let bad = |what: &str, err: &dyn std::fmt::Display| {
            ValidateError::Config(format!("the shadow's progress row has a bad {what}: {err}"))
        };
        Ok(Some(Progress {
            commit_lsn: field(0).parse().map_err(|e| bad("commit_lsn", &e))?,
            ledger_offset: field(1).parse().map_err(|e| bad("ledger_offset", &e))?,
            ledger_hash: field(2).parse().map_err(|e| bad("ledger_hash", &e))?,
            root: field(3).parse().map_err(|e| bad("root", &e))?,
            attested: row
                .get(4)
                .map(str::parse)
                .transpose()
                .map_err(|e| bad("attested_lsn", &e))?,
        }))
    }

    /// The first divergence recorded, if any: `(kind, commit LSN, detail)` as stored.
    pub async fn recorded_divergence(&self) -> Result<Option<String>> {
        let rows = self
            .client
            .simple_query(&format!(
                "SELECT kind || ' divergence' || coalesce(' at ' || commit_lsn::text, '') || ': ' || detail
                 FROM {WALPROOF_SCHEMA}.divergences ORDER BY found_at LIMIT 1"
            ))
            .await
            .map_err(ValidateError::shadow("reading the recorded divergences"))?;
        Ok(rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        }))
    }

    /// Keeps `divergence` in the shadow database.
    pub async fn record_divergence(&self, divergence: &Divergence) -> Result<()> {
        use walproof_core::ident::quote_literal;
        let lsn = divergence
            .commit_lsn
            .map_or("NULL".to_owned(), |lsn| quote_literal(&lsn.to_string()));
        self.client
            .batch_execute(&format!(
                "INSERT INTO {WALPROOF_SCHEMA}.divergences (kind, commit_lsn, detail) VALUES ({}, {lsn}, {})",
                quote_literal(divergence.kind.label()),
                quote_literal(&divergence.detail)
            ))
            .await
            .map_err(ValidateError::shadow("recording a divergence"))
    }

    /// Looks up the names of `pairs` (type OID, modifier) with `format_type`.
    pub async fn name_types(&self, types: &mut TypeNames, pairs: &[(u32, i32)]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut sql = String::from("SELECT o, m, format_type(o::oid, m) FROM (VALUES ");
        for (i, (oid, modifier)) in pairs.iter().enumerate() {
            let _ = write!(sql, "{}({oid}, {modifier})", if i > 0 { ", " } else { "" });
        }
        sql.push_str(") AS t(o, m)");
        let rows = self
            .client
            .simple_query(&sql)
            .await
            .map_err(ValidateError::shadow("naming column types"))?;
        for message in rows {
            if let SimpleQueryMessage::Row(row) = message {
                let (Some(oid), Some(modifier), Some(name)) = (row.get(0), row.get(1), row.get(2))
                else {
                    continue;
                };
                if let (Ok(oid), Ok(modifier)) = (oid.parse(), modifier.parse()) {
                    if name != "???" {
                        types.insert(oid, modifier, name.to_owned());
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies one source transaction's `statements` and the progress row `progress` in a new
    /// SQL transaction, checks them, and leaves it open for [`Shadow::commit`], or for the next
    /// `stage` to commit. A statement that fails or touches another number of rows than it must
    /// rolls the transaction back and comes back as a divergence naming the statement's change,
    /// table and key.
    ///
    /// With `commit_open`, the transaction the previous `stage` left open is committed first,
    /// in the same round trip: `COMMIT; BEGIN; …`. A COMMIT that fails is an error, and
    /// Postgres skips the rest of the round trip: the new transaction is not even begun. Once
    /// this returns `Ok`, the previous transaction is committed, whatever became of this one.
    pub async fn stage(
        &self,
        statements: &[Statement],
        progress: &Progress,
        commit_open: bool,
    ) -> Result<Staged> {
        let progress_sql = format!(
            "INSERT INTO {WALPROOF_SCHEMA}.progress (commit_lsn, ledger_offset, ledger_hash, root, attested_lsn)
             VALUES ('{}', {}, '{}', '{}', {})
             ON CONFLICT (only_row) DO UPDATE SET commit_lsn = excluded.commit_lsn,
               ledger_offset = excluded.ledger_offset, ledger_hash = excluded.ledger_hash,
               root = excluded.root, attested_lsn = excluded.attested_lsn, applied_at = now()",
            progress.commit_lsn,
            progress.ledger_offset,
            progress.ledger_hash,
            progress.root,
            progress
                .attested
                .map_or_else(|| "NULL".to_owned(), |lsn| format!("'{lsn}'"))
        );
        // What each statement sent must report, in order: the COMMIT of the open transaction,
        // BEGIN, the statements, the progress.
        let mut expected: Vec<(Expect, Option<&Subject>)> = Vec::new();
        let mut first = String::new();
        if commit_open {
            expected.push((Expect::Any, None));
            first.push_str("COMMIT;\n");
        }
        expected.push((Expect::Any, None));
        first.push_str("BEGIN");
        let mut round_trips: Vec<String> = vec![first];
        for statement in statements {
            let current = round_trips
                .last_mut()
                .filter(|sql| sql.len() < ROUND_TRIP_BYTES);
            match current {
                Some(sql) => {
                    sql.push_str(";\n");
                    sql.push_str(&statement.sql);
                }
                None => round_trips.push(statement.sql.clone()),
            }
            expected.push((statement.expect, Some(&statement.subject)));
        }
        if let Some(sql) = round_trips.last_mut() {
            sql.push_str(";\n");
            sql.push_str(&progress_sql);
        }
        expected.push((Expect::Rows(1), None));
        let mut done = 0usize;
        for sql in &round_trips {
            let outcome = self.run(sql, &expected, &mut done).await;
            let divergence = match outcome {
                Ok(None) => continue,
                Ok(Some(problem)) => problem,
                Err(err) if commit_open && done == 0 => {
                    return Err(ValidateError::shadow("committing a transaction")(err));
                }
                Err(err) => match err.as_db_error() {
                    Some(db) => {
                        let mut message = db.message().to_owned();
                        if let Some(detail) = db.detail() {
                            message = format!("{message} ({detail})");
                        }
                        let failed = expected.get(done).and_then(|(_, s)| *s);
                        describe(failed, &message)
                    }
                    None => {
                        return Err(ValidateError::shadow("applying a transaction")(err));
                    }
                },
            };
            self.client
                .batch_execute("ROLLBACK")
                .await
                .map_err(ValidateError::shadow("rolling back a transaction"))?;
            return Ok(Staged::Diverged(Divergence::new(
                DivergenceKind::Replay,
                Some(progress.commit_lsn),
                divergence,
            )));
        }
        Ok(Staged::Open)
    }

    /// Commits the transaction [`Shadow::stage`] left open.
    pub async fn commit(&self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(ValidateError::shadow("committing a transaction"))
    }

    /// Sends `sql` and checks each statement's row count against `expected[done..]`. Returns
    /// a problem, or the database's error.
    async fn run(
        &self,
        sql: &str,
        expected: &[(Expect, Option<&Subject>)],
        done: &mut usize,
    ) -> std::result::Result<Option<String>, tokio_postgres::Error> {
        let stream = self.client.simple_query_raw(sql).await?;
        let mut stream = pin!(stream);
        while let Some(message) = stream.next().await {
            if let SimpleQueryMessage::CommandComplete(rows) = message? {
                let (expect, subject) = expected.get(*done).copied().unwrap_or((Expect::Any, None));
                if let Expect::Rows(wanted) = expect {
                    if rows != wanted {
                        // Drain the rest so the session is ready for the rollback.
                        while stream.next().await.is_some() {}
                        return Ok(Some(describe(
                            subject,
                            &format!(
                                "touched {rows} rows of the shadow database, the change says {wanted}"
                            ),
                        )));
                    }
                }
                *done += 1;
            }
        }
        Ok(None)
    }

    /// Runs a query and returns its rows as text (the canonical text output), NULL as `None`.
    pub async fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(ValidateError::shadow("reading rows for the audit"))?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }
}

fn describe(subject: Option<&Subject>, problem: &str) -> String {
    match subject {
        Some(subject) => format!("{subject}: {problem}"),
        None => problem.to_owned(),
    }
}
