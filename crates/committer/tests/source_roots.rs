//! Roots against the real source: the decoder streams a workload (the initial snapshot, key
//! updates, deletes, a truncate, a multiset table, unchanged TOASTed values and schema changes)
//! into the ledger; the offline rebuild recomputes a root per transaction from the ledger
//! alone; and the last root equals the root of the source's tables read directly — the tree
//! commits to the rows, not to how they came about.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use walproof_committer::CommitState;
use walproof_committer::rebuild::rebuild;
use walproof_core::{Change, Lsn, Op, Row, Transaction, Value};
use walproof_source::connection::SourceConnection;
use walproof_source::decoder::{DecoderConfig, run};
use walproof_source::metrics::DecoderMetrics;
use walproof_source::pending::SpillOptions;
use walproof_source::setup::{self, SetupOptions};
use walproof_source::snapshot::{SnapshotMode, SnapshotOptions};
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::model::Model;
use walproof_testkit::stack::wait_until;
use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerReader, WriterOptions};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_root_is_the_root_of_the_source_tables_and_every_rebuild_agrees() {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, "roots").await.unwrap();
    let sql = db.connect().await.unwrap();
    sql.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, balance numeric, doc text);
         INSERT INTO accounts SELECT g, 'acct ' || g, g * 1.5, NULL FROM generate_series(1, 300) g;
         CREATE TABLE events (kind text, n int);
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO events SELECT 'boot', g % 3 FROM generate_series(1, 30) g;
         CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (a, b));
         INSERT INTO pairs SELECT g % 10, 'b' || g, 'v' FROM generate_series(1, 60) g;",
    )
    .await
    .unwrap();
    let slot = db.slot_name("slot");
    let options = SetupOptions {
        publication: "roots_pub".into(),
        slot: slot.clone(),
        tables: None,
        dry_run: false,
    };
    setup::apply(&sql, &setup::plan(&sql, &options).await.unwrap())
        .await
        .unwrap();
    let (host, port, user) = db.host_port_user();
    let source: SourceConnection = format!("postgres://{user}@{host}:{port}/{}", db.name())
        .parse()
        .unwrap();
    let topics = TestTopics::new(&stack, "roots");
    let kafka = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    let config = DecoderConfig {
        source,
        slot: slot.clone(),
        publication: "roots_pub".into(),
        kafka: kafka.clone(),
        writer: WriterOptions::default(),
        max_entry_bytes: 8 * 1024,
        spill: SpillOptions {
            threshold_bytes: 1 << 20,
            directory: std::env::temp_dir().join(db.name()),
        },
        snapshot: SnapshotOptions {
            mode: SnapshotMode::Initial,
            ..SnapshotOptions::default()
        },
        status_interval: Duration::from_millis(200),
        retry: (Duration::from_millis(200), Duration::from_secs(2)),
        shutdown_timeout: Duration::from_secs(30),
    };
    let (stop, stopped) = watch::channel(false);
    let metrics = Arc::new(DecoderMetrics::default());
    let decoder = tokio::spawn(run(config, metrics.clone(), stopped));
    wait_until("the snapshot", WAIT, || async {
        Ok(metrics.confirmed_lsn.load(Relaxed) > 0)
    })
    .await
    .unwrap();

    // A TOASTed value, then updates that leave it unchanged (pgoutput sends the marker).
    let big = "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)";
    for statement in [
        format!("UPDATE accounts SET doc = {big} WHERE id <= 3"),
        "UPDATE accounts SET balance = balance + 1 WHERE id <= 10".into(),
        "UPDATE accounts SET id = id + 1000 WHERE id BETWEEN 11 AND 20".into(),
        "DELETE FROM accounts WHERE id BETWEEN 21 AND 40".into(),
        "INSERT INTO events SELECT 'tick', g % 2 FROM generate_series(1, 10) g".into(),
        "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE kind = 'boot' LIMIT 5)"
            .into(),
        "UPDATE events SET n = 7 WHERE kind = 'tick' AND n = 0".into(),
        "UPDATE pairs SET b = b || 'x' WHERE a = 3".into(),
        "TRUNCATE pairs".into(),
        "INSERT INTO pairs VALUES (1, 'after', 'truncate'), (2, 'after', 'truncate')".into(),
        // Schema changes: derivable (rows reshaped from the hashes held) and not (rows sent).
        "ALTER TABLE accounts ADD COLUMN note text".into(),
        "UPDATE accounts SET note = 'n' WHERE id % 50 = 0".into(),
        "ALTER TABLE accounts RENAME COLUMN name TO label".into(),
        "ALTER TABLE events DROP COLUMN n".into(),
        "ALTER TABLE pairs RENAME TO couples".into(),
        "UPDATE couples SET v = 'renamed' WHERE a = 1".into(),
        "ALTER TABLE accounts ADD COLUMN opened timestamptz DEFAULT clock_timestamp()".into(),
        "UPDATE accounts SET balance = 0 WHERE id <= 3".into(),
    ] {
        sql.batch_execute(&statement).await.unwrap();
    }
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &slot, target, WAIT)
        .await
        .unwrap();
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, decoder)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // The offline rebuild, twice: the same root for every LSN.
    let mut first = Vec::new();
    let state = rebuild(&kafka, Duration::from_secs(20), None, |_, c| first.push(*c))
        .await
        .unwrap();
    let mut second = Vec::new();
    rebuild(&kafka, Duration::from_secs(20), None, |_, c| {
        second.push(*c)
    })
    .await
    .unwrap();
    assert_eq!(first, second);
    assert!(first.len() > 15, "a root per transaction");
    for pair in first.windows(2) {
        assert_eq!(
            pair[1].previous_root, pair[0].root,
            "the roots form a chain"
        );
        assert!(pair[1].commit_lsn > pair[0].commit_lsn);
    }

    // The source's tables, read directly, committed from scratch: the same root.
    let ledger = LedgerReader::from_start(&kafka)
        .unwrap()
        .read_to_end(Duration::from_secs(20))
        .await
        .unwrap();
    let unchanged = ledger
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .filter(|c| matches!(&c.op, Op::Update { new, .. } if new.0.contains(&Value::Unchanged)))
        .count();
    assert!(
        unchanged > 0,
        "the workload produced unchanged TOAST markers"
    );
    let (_, relations) = Model::replay(&ledger.transactions).unwrap();
    let source_rows = Model::from_source(&sql, &relations).await.unwrap();
    let by_name: HashMap<String, _> = relations
        .iter()
        .map(|r| (format!("{}.{}", r.schema, r.name), r.clone()))
        .collect();
    let mut changes = Vec::new();
    for (name, rows) in &source_rows.tables {
        let relation = &by_name[name];
        for (row, count) in rows.values() {
            for _ in 0..*count {
                let row = Row(row
                    .iter()
                    .map(|v| v.clone().map_or(Value::Null, Value::Text))
                    .collect());
                changes.push(Change {
                    ordinal: changes.len() as u32,
                    op: Op::Snapshot {
                        relation: relation.id,
                        row,
                    },
                });
            }
        }
    }
    let from_source = CommitState::default()
        .apply(&Transaction {
            commit_lsn: Lsn::new(1),
            xid: 0,
            commit_time_us: 0,
            relations: relations.iter().map(|r| (r.id, r.clone())).collect(),
            changes,
        })
        .unwrap();
    assert_eq!(state.root(), from_source.root);
    assert_eq!(state.keys(), from_source_keys(&source_rows));
}

/// Keys of the source's rows: one per keyed row, one per distinct multiset row.
fn from_source_keys(model: &Model) -> usize {
    model.tables.values().map(|rows| rows.len()).sum()
}
