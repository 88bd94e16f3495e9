//! The shadow database: each source transaction whole in one SQL transaction, with the progress
//! row; small ones queued together may share one ([`Shadow::stage_group`]).
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

use std::collections::HashSet;
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

/// Most SQL of one transaction that [`Shadow::stage_group`] takes in a group.
const GROUP_BYTES: usize = 64 << 10;

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
        let steps = steps(
            statements,
            Some(progress),
            if commit_open {
                "COMMIT;\nBEGIN"
            } else {
                "BEGIN"
            },
        );
        for step in &steps {
            let failed = match self.step(step, statements).await {
                Ok(()) => continue,
                Err(failed) => failed,
            };
            let failed = match failed {
                // The COMMIT of the open transaction, first in the first step.
                Failed::Database { check: 0, error }
                    if commit_open && std::ptr::eq(step, &steps[0]) =>
                {
                    return Err(ValidateError::shadow("committing a transaction")(error));
                }
                failed => failed,
            };
            self.rollback().await?;
            let problem = match failed {
                Failed::Database { check, error } => {
                    let Some(db) = error.as_db_error() else {
                        return Err(ValidateError::shadow("applying a transaction")(error));
                    };
                    let mut message = db.message().to_owned();
                    if let Some(detail) = db.detail() {
                        message = format!("{message} ({detail})");
                    }
                    let failed = step.statement(check).map(|i| &statements[i].subject);
                    describe(failed, &message)
                }
                Failed::Count {
                    statement,
                    rows,
                    wanted,
                } => {
                    let missing = match statement {
                        Some(i) => self.first_missing(statements, i).await?,
                        None => None,
                    };
                    let (subject, rows, wanted) = match &missing {
                        Some(subject) => (Some(subject), 0, 1),
                        None => (statement.map(|i| &statements[i].subject), rows, wanted),
                    };
                    describe(
                        subject,
                        &format!(
                            "touched {rows} rows of the shadow database, the change says {wanted}"
                        ),
                    )
                }
            };
            return Ok(Staged::Diverged(Divergence::new(
                DivergenceKind::Replay,
                Some(progress.commit_lsn),
                problem,
            )));
        }
        Ok(Staged::Open)
    }

    /// Applies several small source transactions (each [`Shadow::groups`] allows) in one SQL
    /// transaction and one round trip, with the progress row of the last, checks every
    /// statement, and leaves it open like [`Shadow::stage`]. `true` when all applied; `false`
    /// when one did not: everything of the group is rolled back (the transaction left open
    /// before it is committed all the same), and the caller stages them one by one, which
    /// names the one that does not apply.
    ///
    /// Why: a source transaction of a row or two costs a round trip to the shadow, two
    /// wake-ups of two processes; while the validator is behind, the transactions queued
    /// behind it go together.
    pub async fn stage_group(
        &self,
        group: &[(&[Statement], &Progress)],
        commit_open: bool,
    ) -> Result<bool> {
        let first = if commit_open {
            "COMMIT;\nBEGIN"
        } else {
            "BEGIN"
        };
        let mut sql = first.to_owned();
        let mut checks = vec![Check::ANY; first.matches(';').count() + 1];
        for (statements, _) in group {
            for statement in statements.iter() {
                debug_assert!(statement.copy.is_none(), "a COPY in a group");
                sql.push_str(";\n");
                sql.push_str(&statement.sql);
                checks.push(Check {
                    expect: statement.expect,
                    statement: None,
                });
            }
        }
        if let Some((_, progress)) = group.last() {
            sql.push_str(";\n");
            sql.push_str(&progress_sql(progress));
            checks.push(Check {
                expect: Expect::Rows(1),
                statement: None,
            });
        }
        match self.query(&sql, &checks).await {
            Ok(()) => Ok(true),
            Err(Failed::Database { check: 0, error }) if commit_open => {
                Err(ValidateError::shadow("committing a transaction")(error))
            }
            Err(_) => {
                self.rollback().await?;
                Ok(false)
            }
        }
    }

    /// Whether a transaction planned as `statements` may go in a group
    /// ([`Shadow::stage_group`]): no COPY, and little SQL.
    pub fn groups(statements: &[Statement]) -> bool {
        statements.iter().all(|statement| statement.copy.is_none())
            && statements.iter().map(|s| s.sql.len()).sum::<usize>() <= GROUP_BYTES
    }

    /// Commits the transaction [`Shadow::stage`] left open.
    pub async fn commit(&self) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(ValidateError::shadow("committing a transaction"))
    }

    async fn rollback(&self) -> Result<()> {
        self.client
            .batch_execute("ROLLBACK")
            .await
            .map_err(ValidateError::shadow("rolling back a transaction"))
    }

    /// Runs one step of [`Shadow::stage`], checking each statement's row count.
    async fn step(&self, step: &Step, statements: &[Statement]) -> std::result::Result<(), Failed> {
        match step {
            Step::Query { sql, checks } => self.query(sql, checks).await,
            Step::Copy { statement } => {
                let copied = &statements[*statement];
                let rows = self
                    .copy(copied)
                    .await
                    .map_err(|error| Failed::Database { check: 0, error })?;
                match copied.expect {
                    Expect::Rows(wanted) if rows != wanted => Err(Failed::Count {
                        statement: Some(*statement),
                        rows,
                        wanted,
                    }),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Sends `sql` as one simple query and checks each statement's row count against
    /// `checks`.
    async fn query(&self, sql: &str, checks: &[Check]) -> std::result::Result<(), Failed> {
        let mut done = 0;
        let failed = |done| move |error| Failed::Database { check: done, error };
        let stream = self
            .client
            .simple_query_raw(sql)
            .await
            .map_err(failed(done))?;
        let mut stream = pin!(stream);
        while let Some(message) = stream.next().await {
            if let SimpleQueryMessage::CommandComplete(rows) = message.map_err(failed(done))? {
                let check = checks.get(done).copied().unwrap_or(Check::ANY);
                if let Expect::Rows(wanted) = check.expect {
                    if rows != wanted {
                        // Drain the rest so the session is ready for the rollback.
                        while stream.next().await.is_some() {}
                        return Err(Failed::Count {
                            statement: check.statement,
                            rows,
                            wanted,
                        });
                    }
                }
                done += 1;
            }
        }
        Ok(())
    }

    /// Runs a COPY statement with its rows; returns the rows copied.
    async fn copy(&self, statement: &Statement) -> std::result::Result<u64, tokio_postgres::Error> {
        use futures_util::SinkExt as _;
        let sink = self.client.copy_in(statement.sql.as_str()).await?;
        let mut sink = pin!(sink);
        let data = statement.copy.as_deref().unwrap_or_default();
        sink.send(bytes::Bytes::copy_from_slice(data.as_bytes()))
            .await?;
        sink.as_mut().finish().await
    }

    /// For a batched delete (`statements[failed]`, with its [`Keys`]) that touched fewer rows
    /// than it deletes: the change whose row the shadow lacks (or that an earlier delete of
    /// the batch took), found by applying the statements before it again in a transaction
    /// that is rolled back. `None` when the statement has no keys or the search fails.
    async fn first_missing(
        &self,
        statements: &[Statement],
        failed: usize,
    ) -> Result<Option<Subject>> {
        let Some(keys) = &statements[failed].keys else {
            return Ok(None);
        };
        let before = &statements[..failed];
        let mut present = None;
        let mut steps_ok = true;
        for step in &steps(before, None, "BEGIN") {
            if self.step(step, before).await.is_err() {
                steps_ok = false;
                break;
            }
        }
        if steps_ok {
            present = Some(
                self.rows(&keys.probe)
                    .await?
                    .into_iter()
                    .filter_map(|row| row.into_iter().next().flatten())
                    .collect::<HashSet<String>>(),
            );
        }
        self.rollback().await?;
        let subject = &statements[failed].subject;
        Ok(present.as_ref().and_then(|present| {
            keys.first_missing(present).map(|(ordinal, key)| Subject {
                ordinal,
                changes: 1,
                action: subject.action,
                table: subject.table.clone(),
                key: Some(keys.describe(key)),
            })
        }))
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

/// What a statement sent in a simple query must report.
#[derive(Debug, Clone, Copy)]
struct Check {
    expect: Expect,
    /// Its index in the transaction's statements (`None`: BEGIN, COMMIT, the progress row).
    statement: Option<usize>,
}

impl Check {
    const ANY: Check = Check {
        expect: Expect::Any,
        statement: None,
    };
}

/// One round trip of [`Shadow::stage`].
#[derive(Debug)]
enum Step {
    /// Statements sent together as one simple query.
    Query { sql: String, checks: Vec<Check> },
    /// One COPY statement and its rows.
    Copy { statement: usize },
}

impl Step {
    /// The statement of the `check`th check of the step.
    fn statement(&self, check: usize) -> Option<usize> {
        match self {
            Step::Query { checks, .. } => checks.get(check).and_then(|c| c.statement),
            Step::Copy { statement } => Some(*statement),
        }
    }
}

/// How a step failed.
#[derive(Debug)]
enum Failed {
    /// The database refused the `check`th statement of the step.
    Database {
        check: usize,
        error: tokio_postgres::Error,
    },
    /// A statement touched another number of rows than it must.
    Count {
        statement: Option<usize>,
        rows: u64,
        wanted: u64,
    },
}

/// The round trips that apply `statements` after `first` (`BEGIN`, or `COMMIT; BEGIN`), and
/// the progress row when there is one: consecutive SQL statements go together, up to about
/// [`ROUND_TRIP_BYTES`], and each COPY goes alone.
fn steps(statements: &[Statement], progress: Option<&Progress>, first: &str) -> Vec<Step> {
    let mut steps = vec![Step::Query {
        sql: first.to_owned(),
        checks: vec![Check::ANY; first.matches(';').count() + 1],
    }];
    for (i, statement) in statements.iter().enumerate() {
        if statement.copy.is_some() {
            steps.push(Step::Copy { statement: i });
        } else {
            let check = Check {
                expect: statement.expect,
                statement: Some(i),
            };
            push(&mut steps, &statement.sql, check);
        }
    }
    if let Some(progress) = progress {
        let check = Check {
            expect: Expect::Rows(1),
            statement: None,
        };
        push(&mut steps, &progress_sql(progress), check);
    }
    steps
}

/// Appends `sql` to the last step when it is a query not yet full, else as a new step.
fn push(steps: &mut Vec<Step>, sql: &str, check: Check) {
    match steps.last_mut() {
        Some(Step::Query {
            sql: current,
            checks,
        }) if current.len() < ROUND_TRIP_BYTES => {
            current.push_str(";\n");
            current.push_str(sql);
            checks.push(check);
        }
        _ => steps.push(Step::Query {
            sql: sql.to_owned(),
            checks: vec![check],
        }),
    }
}

/// The statement that records `progress` in the progress row.
fn progress_sql(progress: &Progress) -> String {
    format!(
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
    )
}
