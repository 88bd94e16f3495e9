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
            log_progress: true,
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
    // Small entries and batches: the interrupted run leaves parts in the ledger. (Not
    // smaller: the test broker, tansu, slows down reading a topic of many small records,
    // 400 records/s at 2 KB entries here.)
    config.max_entry_bytes = 16384;
    config.writer.batch_bytes = 32768;
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

/// TRUNCATE is not MVCC-safe: committed after the slot's consistent point but before the copy,
/// it would make the copy read the table as empty. The copy refuses such a snapshot by name;
/// once a copying session holds a table, a TRUNCATE of it waits; a TRUNCATE queued for a table
/// not copied yet ends the attempt rather than deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_racing_the_copy_never_yields_a_wrong_snapshot() {
    use tokio::sync::oneshot;
    use walproof_source::DecoderError;
    use walproof_source::snapshot::{
        SnapshotBatch, SnapshotProgress, copy_tables, create_slot_with_snapshot,
        published_relations,
    };

    let (db, _topics, sql, mut config) =
        populated("snapshot_truncated", SnapshotMode::Initial).await;
    // One copying session: big, then empty, then log (name order).
    config.snapshot.workers = 1;
    let relations = published_relations(&sql, &config.publication)
        .await
        .unwrap();
    let replication_config =
        config
            .source
            .replication_config(&config.slot, &config.publication, Duration::from_secs(1));
    // A fresh slot and snapshot (the replication session must stay open while it is used).
    let export = || async {
        wait_until("the slot to be released", WAIT, || async {
            let active = sql
                .query(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active",
                    &[&config.slot],
                )
                .await?;
            Ok(active.is_empty())
        })
        .await
        .unwrap();
        sql.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1",
            &[&config.slot],
        )
        .await
        .unwrap();
        let mut replication =
            pgwire_replication::ReplicationClient::connect_gated(replication_config.clone())
                .await
                .unwrap();
        let exported = create_slot_with_snapshot(&mut replication, &config.slot)
            .await
            .unwrap();
        (replication, exported)
    };
    // The copy, its rows drained only once `drain` fires (until then it is stuck inside big).
    let copy = |exported, drain: oneshot::Receiver<()>| {
        let (config, relations) = (config.clone(), relations.clone());
        tokio::spawn(async move {
            let (sink, mut batches) = tokio::sync::mpsc::channel::<SnapshotBatch>(2);
            let rows = tokio::spawn(async move {
                let _ = drain.await;
                let mut rows = 0;
                while let Some(batch) = batches.recv().await {
                    rows += batch.rows.len();
                }
                rows
            });
            let outcome = copy_tables(
                &config.source,
                &exported,
                &relations,
                &config.snapshot,
                Arc::new(SnapshotProgress::default()),
                sink,
            )
            .await;
            (outcome, rows.await.unwrap())
        })
    };
    let snapshot_locks_on = |table: &'static str| {
        let sql = &sql;
        async move {
            let row = sql
                .query_one(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
                     WHERE l.relation = $1::text::regclass AND l.granted \
                     AND a.application_name = 'walproof-snapshot'",
                    &[&table],
                )
                .await?;
            Ok::<i64, tokio_postgres::Error>(row.get(0))
        }
    };
    // A TRUNCATE in its own session, left running.
    let truncate = |other: tokio_postgres::Client, table: &'static str| {
        tokio::spawn(async move { other.batch_execute(&format!("TRUNCATE {table}")).await })
    };
    let invalidated = |outcome: Result<(), DecoderError>, naming: &str| match outcome {
        Err(err @ DecoderError::SnapshotInvalidated { .. }) => {
            assert!(err.to_string().contains(naming), "{err}");
            assert!(err.is_retryable(), "the decoder takes the snapshot again");
        }
        other => panic!("expected SnapshotInvalidated naming {naming}, got {other:?}"),
    };

    // 1. Truncated between the export and the copy: refused before any row is sent.
    let (mut replication, exported) = export().await;
    sql.batch_execute("TRUNCATE log").await.unwrap();
    let (drain, drained) = oneshot::channel();
    drop(drain);
    let (outcome, rows) = copy(exported, drained).await.unwrap();
    invalidated(outcome, "public.log was truncated or rewritten");
    assert_eq!(rows, 0, "nothing of the invalid snapshot is written");
    replication.abort();

    // 2. TRUNCATE big while big is being copied: it waits, the copy is whole.
    let (mut replication, exported) = export().await;
    let (drain, drained) = oneshot::channel();
    let copying = copy(exported, drained);
    // The guard's lock and the copying session's own.
    wait_until("the copy to hold big", WAIT, || async {
        Ok(snapshot_locks_on("big").await? == 2)
    })
    .await
    .unwrap();
    let waiting = truncate(db.connect().await.unwrap(), "big");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "TRUNCATE waits for the copy");
    drain.send(()).unwrap();
    let (outcome, rows) = copying.await.unwrap();
    outcome.unwrap();
    assert_eq!(rows, 20_000, "every row of big as of the snapshot");
    waiting.await.unwrap().unwrap();
    replication.abort();

    // 3. TRUNCATE log queued while the copy is still inside big: log cannot be locked without
    //    queueing behind it (which waits for the guard), so the attempt ends, naming log.
    sql.batch_execute("INSERT INTO big SELECT g, 'again' FROM generate_series(1, 20000) g")
        .await
        .unwrap();
    let (mut replication, exported) = export().await;
    let (drain, drained) = oneshot::channel();
    let copying = copy(exported, drained);
    wait_until("the copy to hold big", WAIT, || async {
        Ok(snapshot_locks_on("big").await? == 2)
    })
    .await
    .unwrap();
    let waiting = truncate(db.connect().await.unwrap(), "log");
    wait_until("TRUNCATE log to queue", WAIT, || async {
        let row = sql
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE relation = 'log'::regclass AND NOT granted",
                &[],
            )
            .await?;
        Ok(row.get::<_, i64>(0) == 1)
    })
    .await
    .unwrap();
    drain.send(()).unwrap();
    let (outcome, _) = copying.await.unwrap();
    invalidated(outcome, "an exclusive lock request on public.log");
    replication.abort();
    waiting.await.unwrap().unwrap();

    // 4. A column dropped between the export and the copy, so the catalog the copy is
    //     planned from (as the decoder reads it) differs from what the snapshot sees: refused
    //     by name before anything is written.
    let (mut replication, exported) = export().await;
    sql.batch_execute("ALTER TABLE big DROP COLUMN at")
        .await
        .unwrap();
    let relations_now = published_relations(&sql, &config.publication)
        .await
        .unwrap();
    assert_ne!(relations_now, relations, "the catalog moved on");
    let (sink, mut batches) = tokio::sync::mpsc::channel::<SnapshotBatch>(2);
    let outcome = copy_tables(
        &config.source,
        &exported,
        &relations_now,
        &config.snapshot,
        Arc::new(SnapshotProgress::default()),
        sink,
    )
    .await;
    invalidated(outcome, "the shape of public.big changed");
    assert!(batches.recv().await.is_none(), "nothing copied");
    replication.abort();
}

/// The decoder's side of the race: a TRUNCATE issued while the snapshot copies ends that
/// attempt; the decoder takes the snapshot again after it, and the ledger (the voided attempt,
/// one whole snapshot, the stream) replays into exactly the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_during_the_snapshot_makes_the_decoder_take_it_again() {
    let (_db, _topics, sql, mut config) =
        populated("snapshot_retaken", SnapshotMode::Initial).await;
    sql.batch_execute(
        "INSERT INTO big SELECT g, 'more', g, now() FROM generate_series(20001, 300000) g",
    )
    .await
    .unwrap();
    config.snapshot.workers = 1; // big first, then empty, then log
    let (stop, stopped) = watch::channel(false);
    let metrics = Arc::new(DecoderMetrics::default());
    let decoder = tokio::spawn(run(config.clone(), metrics.clone(), stopped));
    wait_until("the snapshot to start copying big", WAIT, || async {
        Ok(metrics.snapshot_rows.load(Relaxed) > 0)
    })
    .await
    .unwrap();
    sql.batch_execute("TRUNCATE log; INSERT INTO log VALUES ('after', 2)")
        .await
        .unwrap();
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
    assert_eq!(contents.abandoned.len(), 1, "the first attempt is voided");
    let snapshot = &contents.transactions[0];
    assert_eq!(snapshot.changes.len(), 300_001, "big and the new log row");
    assert!(snapshot.commit_lsn > contents.abandoned[0]);
    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    assert_eq!(model, Model::from_source(&sql, &relations).await.unwrap());
}
