//! The initial snapshot: every published row at the slot's consistent point, copied in
//! parallel from sessions that share the snapshot the slot exported, written to the ledger as
//! op `r` at the consistent point's LSN.
//!
//! Consistency: the slot is created over the replication session with an exported snapshot;
//! that session stays idle until the copy is done and then starts streaming from the slot, so
//! the stream begins exactly where the snapshot ends — no gap, no overlap.
//!
//! TRUNCATE and table rewrites are not MVCC-safe: one committed after the slot's consistent
//! point but before the copy reads the table would make the copy see the table empty (or
//! rewritten) instead of as it was at the snapshot. So, as pg_dump does, a guard session takes
//! ACCESS SHARE locks on all published tables before anything is copied and holds them until
//! the copy ends, then checks that each table's storage (relfilenode) is still the one the
//! snapshot sees. The copying sessions lock each table again with NOWAIT just before copying
//! it: a TRUNCATE queued behind the guard's lock would otherwise queue the copy behind itself,
//! a deadlock. A rewrite before the guard's lock, or a conflicting lock request during the
//! copy, ends the attempt with [`DecoderError::SnapshotInvalidated`] naming the tables, and
//! the decoder takes the snapshot again at a new consistent point.
//!
//! Restart during the snapshot: nothing is complete in the ledger yet, so the next start drops
//! the slot, which nothing has consumed, and takes the snapshot again at a new consistent
//! point. The partial run of the interrupted snapshot is voided by the abandon marker the
//! ledger writer appends, so no row is lost or counted twice.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use pgwire_replication::ReplicationClient;
use tokio::sync::mpsc;
use walproof_core::ident::quote_ident;
use walproof_core::{Column, Lsn, Relation, RelationId, ReplicaIdentity, Row, Value};

use crate::connection::SourceConnection;
use crate::error::{DecoderError, Result};

/// When the decoder takes an initial snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// On first start (the ledger holds no complete transaction), then stream.
    #[default]
    Initial,
    /// Never: stream from the slot's position only.
    Never,
    /// Take the snapshot on first start, then stop without streaming.
    InitialOnly,
}

impl FromStr for SnapshotMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "initial" => Ok(SnapshotMode::Initial),
            "never" => Ok(SnapshotMode::Never),
            "initial_only" => Ok(SnapshotMode::InitialOnly),
            other => Err(format!(
                "unknown snapshot mode {other:?}: use initial, never or initial_only"
            )),
        }
    }
}

/// How the snapshot is taken.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// When to take it.
    pub mode: SnapshotMode,
    /// Sessions copying tables in parallel.
    pub workers: usize,
    /// Rows per batch handed from a copying session to the ledger writer.
    pub batch_rows: usize,
    /// Log a progress line per table every 5 seconds (off when a progress bar shows it).
    pub log_progress: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            mode: SnapshotMode::Initial,
            workers: 2,
            batch_rows: 1000,
            log_progress: true,
        }
    }
}

/// A slot just created with an exported snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedSnapshot {
    /// The slot's consistent point: the snapshot's LSN and where streaming starts.
    pub consistent_point: Lsn,
    /// The exported snapshot's name, for `SET TRANSACTION SNAPSHOT`.
    pub name: String,
}

/// Creates `slot` over the gated replication session, exporting its snapshot. The snapshot
/// stays valid while that session runs no other command.
pub async fn create_slot_with_snapshot(
    replication: &mut ReplicationClient,
    slot: &str,
) -> Result<ExportedSnapshot> {
    let sql = format!(
        "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
        quote_ident(slot)
    );
    let rows = replication
        .simple_query(&sql)
        .await
        .map_err(|err| DecoderError::Unavailable {
            what: format!("creating slot {slot}"),
            reason: err.to_string(),
        })?;
    let text = |i: usize| -> Option<String> {
        rows.first()
            .and_then(|row| row.get(i))
            .and_then(|v| v.as_ref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let protocol = |what: &str| DecoderError::Protocol {
        lsn: Lsn::ZERO,
        problem: format!("CREATE_REPLICATION_SLOT returned no {what}"),
    };
    let consistent_point = text(1)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| protocol("consistent point"))?;
    let name = text(2).ok_or_else(|| protocol("snapshot name"))?;
    Ok(ExportedSnapshot {
        consistent_point,
        name,
    })
}

/// The published tables as the catalog describes them now, shaped exactly as pgoutput's
/// Relation messages will describe them (same OIDs, columns, key columns).
pub async fn published_relations(
    sql: &tokio_postgres::Client,
    publication: &str,
) -> Result<Vec<Relation>> {
    let tables = sql
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relreplident::text \
             FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             WHERE p.pubname = $1 ORDER BY n.nspname, c.relname",
            &[&publication],
        )
        .await
        .map_err(DecoderError::sql("listing the published tables"))?;
    let mut relations = Vec::with_capacity(tables.len());
    for table in tables {
        let id: u32 = table.get(0);
        let identity = match table.get::<_, String>(3).as_str() {
            "f" => ReplicaIdentity::Full,
            "i" => ReplicaIdentity::Index,
            "n" => ReplicaIdentity::Nothing,
            _ => ReplicaIdentity::Default,
        };
        // Key columns by design.md's rule, as RelationCache derives them from pgoutput.
        let key_index = match identity {
            ReplicaIdentity::Index => "indisreplident",
            ReplicaIdentity::Nothing => "false",
            ReplicaIdentity::Default | ReplicaIdentity::Full => "indisprimary",
        };
        let columns = sql
            .query(
                &format!(
                    "SELECT a.attname::text, a.atttypid, a.atttypmod, \
                     EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.{key_index} \
                             AND a.attnum = ANY (i.indkey::int2[])) \
                     FROM pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 \
                     AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum"
                ),
                &[&id],
            )
            .await
            .map_err(DecoderError::sql("describing a published table"))?
            .into_iter()
            .map(|row| Column { name: row.get(0), type_oid: row.get(1), type_modifier: row.get(2), key: row.get(3) })
            .collect();
        relations.push(Relation {
            id,
            schema: table.get(1),
            name: table.get(2),
            replica_identity: identity,
            columns,
        });
    }
    Ok(relations)
}

/// Rows of one table, in a batch.
#[derive(Debug)]
pub struct SnapshotBatch {
    /// The table.
    pub relation: RelationId,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// Rows copied so far, per table and in total, for progress lines, the progress bar and
/// metrics. Shared through [`crate::metrics::DecoderMetrics::snapshot`].
#[derive(Debug, Default)]
pub struct SnapshotProgress {
    /// Whether the snapshot is written (or was not needed).
    pub finished: std::sync::atomic::AtomicBool,
    tables: std::sync::Mutex<Vec<TableProgress>>,
}

#[derive(Debug, Clone)]
struct TableProgress {
    name: String,
    estimate: u64,
    copied: u64,
    started: Option<Instant>,
    finished: Option<Instant>,
}

/// One table's snapshot progress, as of when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSnapshot {
    /// `schema.table`.
    pub name: String,
    /// The planner's row estimate (`pg_class.reltuples`), 0 when unknown.
    pub estimate: u64,
    /// Rows copied.
    pub copied: u64,
    /// Whether its copy has started.
    pub started: bool,
    /// Whether it is copied completely.
    pub done: bool,
    /// Rows per second since its copy started (until it ended).
    pub rows_per_second: f64,
}

impl TableSnapshot {
    /// Estimated percent done: 100 when done, else copied / estimate, at most 99.
    pub fn percent(&self) -> f64 {
        if self.done {
            100.0
        } else if self.estimate > 0 {
            (100.0 * self.copied as f64 / self.estimate as f64).min(99.0)
        } else {
            0.0
        }
    }
}

impl SnapshotProgress {
    /// Every table of the snapshot, in copy order.
    pub fn tables(&self) -> Vec<TableSnapshot> {
        let tables = self.tables.lock().map(|t| t.clone()).unwrap_or_default();
        tables
            .into_iter()
            .map(|t| {
                let seconds = match (t.started, t.finished) {
                    (Some(started), Some(finished)) => (finished - started).as_secs_f64(),
                    (Some(started), None) => started.elapsed().as_secs_f64(),
                    _ => 0.0,
                };
                TableSnapshot {
                    rows_per_second: t.copied as f64 / seconds.max(0.001),
                    name: t.name,
                    estimate: t.estimate,
                    copied: t.copied,
                    started: t.started.is_some(),
                    done: t.finished.is_some(),
                }
            })
            .collect()
    }

    /// One line per table that is copying or done: rows, rows/s, estimated percent.
    pub fn describe(&self) -> Vec<String> {
        self.tables()
            .iter()
            .filter(|t| t.started)
            .map(|t| {
                format!(
                    "{}: {} rows, {:.0} rows/s, {:.0}%",
                    t.name,
                    t.copied,
                    t.rows_per_second,
                    t.percent()
                )
            })
            .collect()
    }

    /// Starts (or restarts) the count for these tables (`schema.table`, row estimate).
    pub(crate) fn begin(&self, tables: impl IntoIterator<Item = (String, u64)>) {
        if let Ok(mut known) = self.tables.lock() {
            *known = tables
                .into_iter()
                .map(|(name, estimate)| TableProgress {
                    name,
                    estimate,
                    copied: 0,
                    started: None,
                    finished: None,
                })
                .collect();
        }
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut TableProgress)) {
        if let Ok(mut tables) = self.tables.lock() {
            if let Some(table) = tables.get_mut(index) {
                f(table);
            }
        }
    }
}

/// Copies every relation at the exported snapshot with `workers` sessions, sending batches of
/// rows to `sink` (bounded, so memory stays bounded whatever the table sizes).
pub async fn copy_tables(
    source: &SourceConnection,
    snapshot: &ExportedSnapshot,
    relations: &[Relation],
    options: &SnapshotOptions,
    progress: Arc<SnapshotProgress>,
    sink: mpsc::Sender<SnapshotBatch>,
) -> Result<()> {
    let estimates = {
        let sql = source
            .connect_sql("walproof-snapshot")
            .await
            .map_err(DecoderError::sql("connecting"))?;
        let mut estimates = Vec::new();
        for relation in relations {
            let row = sql
                .query_one(
                    "SELECT greatest(reltuples, 0)::int8 FROM pg_class WHERE oid = $1::oid",
                    &[&relation.id],
                )
                .await
                .map_err(DecoderError::sql("estimating a table's rows"))?;
            estimates.push(row.get::<_, i64>(0) as u64);
        }
        estimates
    };
    progress.begin(
        relations
            .iter()
            .zip(estimates)
            .map(|(r, estimate)| (format!("{}.{}", r.schema, r.name), estimate)),
    );
    // The guard: the tables cannot be rewritten from here until the copy ends.
    let guard = begin_at_snapshot(source, snapshot).await?;
    hold_tables_unchanged(&guard, relations, snapshot).await?;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.workers.max(1).min(relations.len().max(1)) {
        let (source, snapshot, relations) = (source.clone(), snapshot.clone(), relations.to_vec());
        let (next, progress, sink, batch_rows) = (
            next.clone(),
            progress.clone(),
            sink.clone(),
            options.batch_rows.max(1),
        );
        workers.spawn(async move {
            let sql = begin_at_snapshot(&source, &snapshot).await?;
            loop {
                let index = next.fetch_add(1, Relaxed) as usize;
                let Some(relation) = relations.get(index) else {
                    break;
                };
                progress.update(index, |t| t.started = Some(Instant::now()));
                lock_without_waiting(&sql, relation, &snapshot).await?;
                copy_table(&sql, relation, batch_rows, &sink, &progress, index).await?;
                progress.update(index, |t| t.finished = Some(Instant::now()));
            }
            sql.batch_execute("COMMIT")
                .await
                .map_err(DecoderError::sql("ending the snapshot transaction"))?;
            Ok::<_, DecoderError>(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|err| DecoderError::Protocol {
            lsn: snapshot.consistent_point,
            problem: format!("a snapshot worker failed: {err}"),
        })??;
    }
    guard
        .batch_execute("COMMIT")
        .await
        .map_err(DecoderError::sql("ending the snapshot's guard transaction"))?;
    Ok(())
}

/// A session in a read-only transaction at the exported snapshot.
async fn begin_at_snapshot(
    source: &SourceConnection,
    snapshot: &ExportedSnapshot,
) -> Result<tokio_postgres::Client> {
    let sql = source
        .connect_sql("walproof-snapshot")
        .await
        .map_err(DecoderError::sql("connecting"))?;
    sql.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        snapshot.name.replace('\'', "''")
    ))
    .await
    .map_err(DecoderError::sql("importing the slot's snapshot"))?;
    Ok(sql)
}

/// Takes a copying session's own lock on `relation`, failing instead of queueing behind a
/// waiting exclusive lock request (which itself waits for the guard).
async fn lock_without_waiting(
    sql: &tokio_postgres::Client,
    relation: &Relation,
    snapshot: &ExportedSnapshot,
) -> Result<()> {
    let name = format!(
        "{}.{}",
        quote_ident(&relation.schema),
        quote_ident(&relation.name)
    );
    match sql
        .batch_execute(&format!("LOCK TABLE {name} IN ACCESS SHARE MODE NOWAIT"))
        .await
    {
        Ok(()) => Ok(()),
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            Err(DecoderError::SnapshotInvalidated {
                consistent_point: snapshot.consistent_point,
                reason: format!(
                    "an exclusive lock request on {}.{} (TRUNCATE, ALTER TABLE, …) is waiting \
                     for the copy",
                    relation.schema, relation.name
                ),
            })
        }
        Err(err) => Err(DecoderError::sql("locking a table to copy")(err)),
    }
}

/// Locks every relation against rewrites for the rest of the guard's transaction, then fails
/// with [`DecoderError::SnapshotInvalidated`] if one was rewritten (TRUNCATE, a rewriting ALTER
/// TABLE, VACUUM FULL, CLUSTER) or dropped since the snapshot.
async fn hold_tables_unchanged(
    sql: &tokio_postgres::Client,
    relations: &[Relation],
    snapshot: &ExportedSnapshot,
) -> Result<()> {
    if relations.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = relations
        .iter()
        .map(|r| format!("{}.{}", quote_ident(&r.schema), quote_ident(&r.name)))
        .collect();
    let invalidated = |reason: String| DecoderError::SnapshotInvalidated {
        consistent_point: snapshot.consistent_point,
        reason,
    };
    if let Err(err) = sql
        .batch_execute(&format!(
            "LOCK TABLE {} IN ACCESS SHARE MODE",
            names.join(", ")
        ))
        .await
    {
        use tokio_postgres::error::SqlState;
        if [
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ]
        .iter()
        .any(|state| err.code() == Some(state))
        {
            return Err(invalidated(format!(
                "the published tables could not be locked for the copy ({err})"
            )));
        }
        if err.code() == Some(&SqlState::UNDEFINED_TABLE) {
            return Err(invalidated(format!(
                "a published table was dropped after the snapshot was taken ({err})"
            )));
        }
        return Err(DecoderError::sql("locking the published tables")(err));
    }
    // pg_class as the snapshot sees it, against the storage the table has now (the lock
    // above made this session read the current catalog).
    let ids: Vec<RelationId> = relations.iter().map(|r| r.id).collect();
    let rewritten = sql
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = ANY ($1::oid[]) \
             AND c.relfilenode IS DISTINCT FROM pg_relation_filenode(c.oid) ORDER BY 1",
            &[&ids],
        )
        .await
        .map_err(DecoderError::sql(
            "checking the published tables for rewrites",
        ))?;
    if !rewritten.is_empty() {
        let names: Vec<String> = rewritten.iter().map(|row| row.get(0)).collect();
        return Err(invalidated(format!(
            "{} was truncated or rewritten (TRUNCATE, a rewriting ALTER TABLE, VACUUM FULL or \
             CLUSTER) after the snapshot was taken",
            names.join(", ")
        )));
    }
    // The shapes the copy will write (read from the current catalog) must be the ones the
    // snapshot sees, or a DDL committed since the consistent point would shift the columns
    // of rows that the schema change following in the stream then reshapes again.
    let seen = sql
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, \
                    coalesce(array_agg(a.attname::text ORDER BY a.attnum) \
                             FILTER (WHERE a.attnum IS NOT NULL), '{}'), \
                    coalesce(array_agg(a.atttypid ORDER BY a.attnum) \
                             FILTER (WHERE a.attnum IS NOT NULL), '{}') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 \
                  AND NOT a.attisdropped AND a.attgenerated = '' \
             WHERE c.oid = ANY ($1::oid[]) GROUP BY c.oid, n.nspname, c.relname",
            &[&ids],
        )
        .await
        .map_err(DecoderError::sql(
            "reading the published tables' shapes at the snapshot",
        ))?;
    let mut changed = Vec::new();
    for relation in relations {
        let same = seen.iter().any(|row| {
            row.get::<_, RelationId>(0) == relation.id
                && row.get::<_, String>(1) == relation.schema
                && row.get::<_, String>(2) == relation.name
                && row.get::<_, Vec<String>>(3)
                    == relation
                        .columns
                        .iter()
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                && row.get::<_, Vec<u32>>(4)
                    == relation
                        .columns
                        .iter()
                        .map(|c| c.type_oid)
                        .collect::<Vec<_>>()
        });
        if !same {
            changed.push(format!("{}.{}", relation.schema, relation.name));
        }
    }
    if changed.is_empty() {
        Ok(())
    } else {
        Err(invalidated(format!(
            "the shape of {} changed (a DDL) after the snapshot was taken",
            changed.join(", ")
        )))
    }
}

async fn copy_table(
    sql: &tokio_postgres::Client,
    relation: &Relation,
    batch_rows: usize,
    sink: &mpsc::Sender<SnapshotBatch>,
    progress: &SnapshotProgress,
    index: usize,
) -> Result<()> {
    use futures_util::StreamExt;
    let columns: Vec<String> = relation
        .columns
        .iter()
        .map(|c| quote_ident(&c.name).into_owned())
        .collect();
    let statement = format!(
        "COPY (SELECT {} FROM ONLY {}.{}) TO STDOUT",
        if columns.is_empty() {
            "NULL".to_owned()
        } else {
            columns.join(", ")
        },
        quote_ident(&relation.schema),
        quote_ident(&relation.name)
    );
    let stream = sql
        .copy_out(statement.as_str())
        .await
        .map_err(DecoderError::sql("copying a table"))?;
    let mut stream = std::pin::pin!(stream);
    let mut pending = Vec::<u8>::new();
    let mut rows = Vec::with_capacity(batch_rows);
    let width = relation.columns.len();
    while let Some(chunk) = stream.next().await {
        let chunk: Bytes = chunk.map_err(DecoderError::sql("copying a table"))?;
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            let line = &pending[start..start + end];
            let row = parse_copy_line(line, width).map_err(|problem| DecoderError::Protocol {
                lsn: Lsn::ZERO,
                problem: format!("COPY of {}.{}: {problem}", relation.schema, relation.name),
            })?;
            rows.push(row);
            start += end + 1;
            if rows.len() >= batch_rows {
                send(sink, relation.id, &mut rows, progress, index).await?;
            }
        }
        pending.drain(..start);
    }
    send(sink, relation.id, &mut rows, progress, index).await
}

async fn send(
    sink: &mpsc::Sender<SnapshotBatch>,
    relation: RelationId,
    rows: &mut Vec<Row>,
    progress: &SnapshotProgress,
    index: usize,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let batch = SnapshotBatch {
        relation,
        rows: std::mem::take(rows),
    };
    let count = batch.rows.len() as u64;
    sink.send(batch).await.map_err(|_| DecoderError::Protocol {
        lsn: Lsn::ZERO,
        problem: "the snapshot's ledger writer stopped".into(),
    })?;
    progress.update(index, |t| t.copied += count);
    Ok(())
}

/// Parses one line of COPY's text format (without its newline) into `width` values: fields
/// separated by tabs, `\N` for NULL, backslash escapes undone.
pub fn parse_copy_line(line: &[u8], width: usize) -> std::result::Result<Row, String> {
    let mut values = Vec::with_capacity(width);
    for field in line.split(|b| *b == b'\t') {
        if field == b"\\N" {
            values.push(Value::Null);
            continue;
        }
        if !field.contains(&b'\\') {
            // Most fields: nothing to unescape, one copy.
            let text = std::str::from_utf8(field)
                .map_err(|_| format!("field {} is not UTF-8", values.len()))?;
            values.push(Value::Text(text.to_owned()));
            continue;
        }
        let mut out = Vec::with_capacity(field.len());
        let mut i = 0;
        while i < field.len() {
            let b = field[i];
            if b != b'\\' || i + 1 == field.len() {
                out.push(b);
                i += 1;
                continue;
            }
            let next = field[i + 1];
            i += 2;
            match next {
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(11),
                b'0'..=b'7' => {
                    let mut value = u32::from(next - b'0');
                    for _ in 0..2 {
                        match field.get(i) {
                            Some(d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push((value & 0xFF) as u8);
                }
                b'x' => {
                    let mut value = 0u32;
                    let mut digits = 0;
                    while digits < 2 {
                        match field.get(i).and_then(|d| (*d as char).to_digit(16)) {
                            Some(d) => {
                                value = value * 16 + d;
                                i += 1;
                                digits += 1;
                            }
                            None => break,
                        }
                    }
                    if digits == 0 {
                        out.push(b'x');
                    } else {
                        out.push(value as u8);
                    }
                }
                other => out.push(other),
            }
        }
        let text =
            String::from_utf8(out).map_err(|_| format!("field {} is not UTF-8", values.len()))?;
        values.push(Value::Text(text));
    }
    if width == 0 && values.len() == 1 && values[0] == Value::Null {
        // A table without columns is copied as `SELECT NULL`.
        values.clear();
    }
    if values.len() != width {
        return Err(format!(
            "a line has {} fields, the table has {width} columns",
            values.len()
        ));
    }
    Ok(Row(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_unescape_and_keep_null_apart_from_the_text_null() {
        let row = parse_copy_line(b"1\t\\N\tNULL\ta\\tb\\nc\\\\d\t\\101\\x42\t", 6).unwrap();
        assert_eq!(
            row,
            Row(vec![
                "1".into(),
                Value::Null,
                "NULL".into(),
                "a\tb\nc\\d".into(),
                "AB".into(),
                "".into()
            ])
        );
    }

    #[test]
    fn a_line_of_the_wrong_width_is_refused() {
        let err = parse_copy_line(b"1\t2", 3).unwrap_err();
        assert!(
            err.contains("2 fields") && err.contains("3 columns"),
            "{err}"
        );
        assert_eq!(parse_copy_line(b"\\N", 0).unwrap(), Row(vec![]));
    }

    #[test]
    fn snapshot_modes_parse_by_name() {
        assert_eq!(
            "initial_only".parse::<SnapshotMode>(),
            Ok(SnapshotMode::InitialOnly)
        );
        assert!(
            "sometimes"
                .parse::<SnapshotMode>()
                .unwrap_err()
                .contains("initial, never or initial_only")
        );
    }
}
