//! The initial snapshot against the real Postgres and broker: a populated database yields the
//! snapshot (op `r` at the slot's consistent point) and then the stream, with no gap and no
//! duplicate, and the ledger replays into exactly the source's tables.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::watch;
use walproof_core::Op;
use walproof_source::connection::SourceConnection;
use walproof_source::decoder::{DecoderConfig, run};
use walproof_source::metrics::DecoderMetrics;
use walproof_source::pending::SpillOptions;
use walproof_source::snapshot::{SnapshotMode, SnapshotOptions};
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::model::Model;
use walproof_testkit::stack::wait_until;
use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerContents, LedgerReader, WriterOptions};

const WAIT: Duration = Duration::from_secs(60);

async fn populated(
    test: &str,
    mode: SnapshotMode,
) -> (
    TestDatabase,
    TestTopics,
    tokio_postgres::Client,
    DecoderConfig,
) {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, test).await.unwrap();
    let sql = db.connect().await.unwrap();
    for statement in [
        "CREATE TABLE big (id int PRIMARY KEY, label text, amount numeric(12,2), at timestamptz)",
        "INSERT INTO big SELECT g, 'row ' || g, g / 7.0, '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 20000) g",
        "CREATE TABLE log (line text, n int)",
        "ALTER TABLE log REPLICA IDENTITY FULL",
        "INSERT INTO log SELECT 'same', 1 FROM generate_series(1, 5)",
        "CREATE TABLE empty (id int PRIMARY KEY)",
        "CREATE PUBLICATION snap_pub FOR ALL TABLES",
    ] {
        sql.batch_execute(statement).await.unwrap();
    }
    let slot = db.slot_name("slot");
    // As `walproof setup` leaves it: the slot exists and nothing has consumed it.
    sql.batch_execute(&format!(
        "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
    ))
    .await
    .unwrap();
    let (host, port, user) = db.host_port_user();
    let source: SourceConnection = format!("postgres://{user}@{host}:{port}/{}", db.name())
        .parse()
        .unwrap();
    let topics = TestTopics::new(&stack, test);
    let config = DecoderConfig {
        source,
        slot,
        publication: "snap_pub".into(),
        kafka: KafkaSettings::new(&stack.kafka_brokers, topics.prefix()),
        writer: WriterOptions::default(),
        max_entry_bytes: 16 * 1024,
        spill: SpillOptions {
            threshold_bytes: 1 << 20,
            directory: std::env::temp_dir().join(db.name()),
        },
        snapshot: SnapshotOptions {
            mode,
            workers: 2,
            batch_rows: 500,
        },
        status_interval: Duration::from_millis(200),
        retry: (Duration::from_millis(200), Duration::from_secs(2)),
        shutdown_timeout: Duration::from_secs(30),
    };
    (db, topics, sql, config)
}

async fn ledger(config: &DecoderConfig) -> LedgerContents {
    LedgerReader::from_start(&config.kafka)
        .unwrap()
        .read_to_end(Duration::from_secs(20))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_database_yields_the_snapshot_then_the_stream_with_no_gap_or_duplicate() {
    let (_db, _topics, sql, config) = populated("snapshot_stream", SnapshotMode::Initial).await;
    let (stop, stopped) = watch::channel(false);
    let metrics = Arc::new(DecoderMetrics::default());
    let decoder = tokio::spawn(run(config.clone(), metrics.clone(), stopped));
    // Changes made while the snapshot may still be copying belong to the stream.
    for i in 0..20 {
        sql.batch_execute(&format!(
            "UPDATE big SET label = 'changed {i}' WHERE id % 20 = {i}; DELETE FROM big WHERE id = {}; \
             INSERT INTO big VALUES ({}, 'new', 1, now()); INSERT INTO log VALUES ('same', 1)",
            100 + i,
            30000 + i
        ))
        .await
        .unwrap();
    }
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &config.slot, target, WAIT)
        .await
        .unwrap();
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, decoder)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let contents = ledger(&config).await;
    let snapshot = &contents.transactions[0];
    assert!(
        snapshot
            .changes
            .iter()
            .all(|c| matches!(c.op, Op::Snapshot { .. })),
        "the first transaction is the snapshot"
    );
    // The workload races the snapshot: what committed before the consistent point is in it,
    // the rest follows as streamed transactions — together exactly the 20 transactions.
    let streamed = contents.transactions.len() - 1;
    let in_snapshot = 20 - streamed;
    // Each workload transaction adds one row in all (a delete and an insert in big, one in log).
    assert_eq!(
        snapshot.changes.len(),
        20005 + in_snapshot,
        "every row at the consistent point"
    );
    assert_eq!(
        metrics.snapshot_rows.load(Relaxed),
        snapshot.changes.len() as u64
    );
    assert!(
        contents.transactions[1..]
            .iter()
            .all(|t| t.commit_lsn > snapshot.commit_lsn)
    );
    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    assert_eq!(model, Model::from_source(&sql, &relations).await.unwrap());
}

#[tokio::test]
async fn initial_only_writes_the_snapshot_and_stops_and_a_second_run_does_nothing() {
    let (_db, _topics, sql, config) = populated("snapshot_only", SnapshotMode::InitialOnly).await;
    let (_stop, stopped) = watch::channel(false);
    tokio::time::timeout(WAIT, run(config.clone(), Arc::default(), stopped.clone()))
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(WAIT, run(config.clone(), Arc::default(), stopped))
        .await
        .unwrap()
        .unwrap();
    let contents = ledger(&config).await;
    assert_eq!(contents.transactions.len(), 1);
    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    assert_eq!(model, Model::from_source(&sql, &relations).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_interrupted_midway_is_voided_and_taken_again_whole() {
    let (_db, _topics, sql, mut config) =
        populated("snapshot_again", SnapshotMode::InitialOnly).await;
    sql.batch_execute(
        "INSERT INTO big SELECT g, 'more', g, now() FROM generate_series(20001, 300000) g",
    )
    .await
    .unwrap();
    // Small entries and batches: the interrupted run leaves parts in the ledger.
    config.max_entry_bytes = 2048;
    config.writer.batch_bytes = 4096;
    let metrics = Arc::new(DecoderMetrics::default());
    let (_stop, stopped) = watch::channel(false);
    let first = tokio::spawn(run(config.clone(), metrics.clone(), stopped.clone()));
    // Abort as soon as the broker holds the snapshot's first entries (the topic appears then).
    let watcher: BaseConsumer = config
        .kafka
        .client_config()
        .set("group.id", "watch")
        .create()
        .unwrap();
    wait_until(
        "the snapshot's first entries to reach the ledger",
        WAIT,
        || async {
            Ok(watcher
                .fetch_watermarks(&config.kafka.ledger_topic(), 0, Duration::from_secs(1))
                .is_ok_and(|(_, high)| high > 0))
        },
    )
    .await
    .unwrap();
    assert!(
        metrics.snapshot_rows.load(Relaxed) < 300_005,
        "still copying"
    );
    first.abort(); // the process dies: its producer's unsent records are lost
    let _ = first.await;
    tokio::time::timeout(WAIT, run(config.clone(), Arc::default(), stopped))
        .await
        .unwrap()
        .unwrap();

    let contents = ledger(&config).await;
    assert_eq!(
        contents.abandoned.len(),
        1,
        "the partial snapshot is voided"
    );
    assert_eq!(contents.transactions.len(), 1, "one whole snapshot");
    assert!(
        contents.abandoned[0] < contents.transactions[0].commit_lsn,
        "taken again at a later point"
    );
    assert_eq!(contents.transactions[0].changes.len(), 300005);
    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    assert_eq!(model, Model::from_source(&sql, &relations).await.unwrap());
}
