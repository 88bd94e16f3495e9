//! The benchmark's table and workload on the source database.

use anyhow::{Context, bail};
use tokio_postgres::Client;
use walproof_core::Lsn;

/// The published table.
pub const TABLE: &str = "bench_rows";

/// The benchmark table's columns: a bigint key and six columns of common types.
pub const COLUMNS: &str = "id         bigint PRIMARY KEY,
     account_id integer NOT NULL,
     status     text NOT NULL,
     amount     numeric(12,2) NOT NULL,
     created_at timestamptz NOT NULL,
     active     boolean NOT NULL,
     note       text";

/// The values of row `g` for [`COLUMNS`], as a select list over `generate_series(…) g`
/// (about 100 bytes of text per row).
pub const ROW_VALUES: &str = "g, g % 50000, (ARRAY['pending','paid','shipped','cancelled'])[1 + g % 4], \
     round((g % 100000) / 7.0, 2), \
     timestamptz '2024-01-01 00:00:00+00' + g * interval '1.5 second', \
     g % 3 <> 0, 'order ' || md5(g::text)";

/// Creates the table (a bigint key and six columns of common types, about 100 bytes of text
/// per row), the publication, and `pg_walinspect` (to find a commit's exact end LSN).
pub async fn prepare(sql: &Client, publication: &str) -> anyhow::Result<()> {
    sql.batch_execute(&format!(
        "CREATE TABLE {TABLE} ({COLUMNS});
         CREATE PUBLICATION {publication} FOR TABLE {TABLE};
         CREATE EXTENSION IF NOT EXISTS pg_walinspect;"
    ))
    .await
    .context("creating the benchmark table, publication and pg_walinspect")
}

/// Creates a pgoutput slot (before the workload, so it sees all of it).
pub async fn create_slot(sql: &Client, slot: &str) -> anyhow::Result<()> {
    sql.execute(
        "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
        &[&slot],
    )
    .await
    .with_context(|| format!("creating slot {slot}"))?;
    Ok(())
}

/// Copies slot `from` (unconsumed) to `to`, so both start at the same point of the same WAL.
pub async fn copy_slot(sql: &Client, from: &str, to: &str) -> anyhow::Result<()> {
    sql.execute(
        "SELECT pg_copy_logical_replication_slot($1, $2)",
        &[&from, &to],
    )
    .await
    .with_context(|| format!("copying slot {from} to {to}"))?;
    Ok(())
}

/// One statement in its own transaction, with the number of rows it must touch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The SQL.
    pub statement: String,
    /// Rows it must insert, update or delete.
    pub rows: u64,
}

/// `INSERT` of rows `first..=last`.
pub fn insert(first: u64, last: u64) -> Batch {
    Batch {
        statement: format!(
            "INSERT INTO {TABLE} SELECT {ROW_VALUES} \
             FROM generate_series({first}::bigint, {last}::bigint) g"
        ),
        rows: last - first + 1,
    }
}

/// `UPDATE` of rows `first..=last` (three columns change; the key does not).
pub fn update(first: u64, last: u64) -> Batch {
    Batch {
        statement: format!(
            "UPDATE {TABLE} SET status = 'refunded', amount = amount + 1, note = note || ' r' \
             WHERE id BETWEEN {first} AND {last}"
        ),
        rows: last - first + 1,
    }
}

/// `DELETE` of rows `first..=last`.
pub fn delete(first: u64, last: u64) -> Batch {
    Batch {
        statement: format!("DELETE FROM {TABLE} WHERE id BETWEEN {first} AND {last}"),
        rows: last - first + 1,
    }
}

/// `count` consecutive ranges of `size` rows from `first`, each made into a batch by `make`.
pub fn ranges(first: u64, count: u64, size: u64, make: fn(u64, u64) -> Batch) -> Vec<Batch> {
    (0..count)
        .map(|i| first + i * size)
        .map(|start| make(start, start + size - 1))
        .collect()
}

/// Where the last transaction of a workload committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCommit {
    /// The commit record's own LSN: the transaction's commit LSN, its identity in the ledger
    /// (what pgoutput's Begin announces as the final LSN).
    pub lsn: Lsn,
    /// The end of the commit record: what pgoutput reports as the transaction's end, and what
    /// the slot is confirmed to.
    pub end: Lsn,
}

/// Runs every batch in its own transaction and returns where the last one committed.
pub async fn run(sql: &mut Client, batches: &[Batch]) -> anyhow::Result<LastCommit> {
    let mut last = None;
    for batch in batches {
        let tx = sql.transaction().await?;
        let row = tx
            .query_one(
                "SELECT txid_current() & 4294967295, pg_current_wal_insert_lsn()::text",
                &[],
            )
            .await?;
        let (xid, before): (i64, String) = (row.get(0), row.get(1));
        let touched = tx
            .execute(batch.statement.as_str(), &[])
            .await
            .with_context(|| batch.statement.clone())?;
        if touched != batch.rows {
            bail!(
                "{} touched {touched} rows, expected {}",
                batch.statement,
                batch.rows
            );
        }
        tx.commit().await?;
        last = Some((xid, before));
    }
    let Some((xid, before)) = last else {
        bail!("no batches")
    };
    commit_record(sql, xid, &before).await
}

/// Where transaction `xid`'s commit record starts and ends, searched from `from`.
async fn commit_record(sql: &Client, xid: i64, from: &str) -> anyhow::Result<LastCommit> {
    let row = sql
        .query_opt(
            "SELECT start_lsn::text, end_lsn::text \
             FROM pg_get_wal_records_info($1::text::pg_lsn, pg_current_wal_flush_lsn()) \
             WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%' AND xid::text::bigint = $2 \
             ORDER BY end_lsn DESC LIMIT 1",
            &[&from, &xid],
        )
        .await
        .context("finding the last commit record with pg_walinspect")?
        .with_context(|| format!("no commit record of xid {xid} after {from}"))?;
    let parse = |text: String| -> anyhow::Result<Lsn> {
        text.parse()
            .map_err(|err| anyhow::anyhow!("commit record LSN {text:?}: {err}"))
    };
    Ok(LastCommit {
        lsn: parse(row.get(0))?,
        end: parse(row.get(1))?,
    })
}

/// The snapshot benchmark's table.
pub const SNAPSHOT_TABLE: &str = "bench_snapshot";

/// Rows inserted per statement while filling [`SNAPSHOT_TABLE`].
const FILL_ROWS_PER_STATEMENT: u64 = 250_000;

/// Creates [`SNAPSHOT_TABLE`] with [`COLUMNS`] and a small jsonb document per row (about 70
/// bytes of text), fills it with rows `1..=rows`, and runs `VACUUM ANALYZE` on it, so hint bits
/// and the visibility map are set and no reader pays for them.
pub async fn fill_snapshot_table(sql: &Client, rows: u64) -> anyhow::Result<()> {
    sql.batch_execute(&format!(
        "CREATE TABLE {SNAPSHOT_TABLE} ({COLUMNS}, attributes jsonb NOT NULL)"
    ))
    .await
    .with_context(|| format!("creating {SNAPSHOT_TABLE}"))?;
    let mut first = 1;
    while first <= rows {
        let last = (first + FILL_ROWS_PER_STATEMENT - 1).min(rows);
        let statement = format!(
            "INSERT INTO {SNAPSHOT_TABLE} SELECT {ROW_VALUES}, \
             jsonb_build_object('sku', 'SKU-' || lpad((g % 9973)::text, 5, '0'), 'qty', 1 + g % 7, \
                                'tags', jsonb_build_array('t' || g % 13, 't' || g % 17), 'gift', g % 11 = 0) \
             FROM generate_series({first}::bigint, {last}::bigint) g"
        );
        let inserted = sql
            .execute(statement.as_str(), &[])
            .await
            .with_context(|| format!("filling {SNAPSHOT_TABLE}"))?;
        if inserted != last - first + 1 {
            bail!(
                "inserted {inserted} rows into {SNAPSHOT_TABLE}, expected {}",
                last - first + 1
            );
        }
        first = last + 1;
    }
    // VACUUM cannot run in the implicit transaction of a multi-statement query: on its own.
    sql.batch_execute(&format!("VACUUM (ANALYZE) {SNAPSHOT_TABLE}"))
        .await
        .with_context(|| format!("VACUUM ANALYZE {SNAPSHOT_TABLE}"))?;
    Ok(())
}
