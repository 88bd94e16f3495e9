//! The decoder against the real Postgres and broker of the local stack: what reaches the
//! ledger replays into exactly the source's tables; the slot is confirmed only as far as the
//! ledger holds, and moves on when the publication is quiet; one decoder per slot.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use walproof_core::Lsn;
use walproof_source::decoder::{DecoderConfig, run};
use walproof_source::metrics::DecoderMetrics;
use walproof_source::pending::SpillOptions;
use walproof_source::snapshot::{SnapshotMode, SnapshotOptions};
use walproof_source::{DecoderError, connection::SourceConnection};
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::model::Model;
use walproof_testkit::stack::wait_until;
use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::{LedgerReader, WriterOptions};

const WAIT: Duration = Duration::from_secs(60);

/// A source database with a publication and slot, a topic prefix, and a decoder config.
struct Fixture {
    db: TestDatabase,
    _topics: TestTopics,
    config: DecoderConfig,
    sql: tokio_postgres::Client,
}

impl Fixture {
    async fn new(test: &str, schema: &[&str], publish: &str) -> Fixture {
        let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
        let db = TestDatabase::create(&stack, test).await.unwrap();
        let sql = db.connect().await.unwrap();
        for statement in schema {
            sql.batch_execute(statement).await.unwrap();
        }
        let slot = db.slot_name("slot");
        sql.batch_execute(&format!("CREATE PUBLICATION walproof_pub FOR {publish}"))
            .await
            .unwrap();
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
        let spill_dir = std::env::temp_dir().join(format!("walproof-test-spill-{}", db.name()));
        let config = DecoderConfig {
            source,
            slot,
            publication: "walproof_pub".into(),
            kafka: KafkaSettings::new(&stack.kafka_brokers, topics.prefix()),
            writer: WriterOptions::default(),
            // Small entries and a small spill threshold: big transactions span parts and spill.
            max_entry_bytes: 4 * 1024,
            spill: SpillOptions {
                threshold_bytes: 64 * 1024,
                directory: spill_dir,
            },
            // These tests start on empty tables and use the slot the fixture created.
            snapshot: SnapshotOptions {
                mode: SnapshotMode::Never,
                ..SnapshotOptions::default()
            },
            status_interval: Duration::from_millis(200),
            retry: (Duration::from_millis(200), Duration::from_secs(2)),
            shutdown_timeout: Duration::from_secs(30),
        };
        Fixture {
            db,
            _topics: topics,
            config,
            sql,
        }
    }

    fn start(&self) -> Decoder {
        let (stop, stopped) = watch::channel(false);
        let metrics = Arc::new(DecoderMetrics::default());
        let task = tokio::spawn(run(self.config.clone(), metrics.clone(), stopped));
        Decoder {
            stop,
            metrics,
            task,
        }
    }

    async fn slot_position(&self) -> (Lsn, bool) {
        let row = self
            .sql
            .query_one(
                "SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.config.slot],
            )
            .await
            .unwrap();
        (row.get::<_, String>(0).parse().unwrap(), row.get(1))
    }

    async fn current_wal(&self) -> Lsn {
        current_wal_lsn(&self.sql).await.unwrap()
    }

    /// Waits until the slot is confirmed at or past the current WAL position: everything
    /// committed so far is in the ledger and acknowledged.
    async fn wait_caught_up(&self) {
        let target = self.current_wal().await;
        wait_slot_confirmed(&self.sql, &self.config.slot, target, WAIT)
            .await
            .unwrap();
    }

    async fn ledger(&self) -> walproof_transport::ledger::LedgerContents {
        LedgerReader::from_start(&self.config.kafka)
            .unwrap()
            .read_to_end(Duration::from_secs(20))
            .await
            .unwrap()
    }
}

struct Decoder {
    stop: watch::Sender<bool>,
    metrics: Arc<DecoderMetrics>,
    task: JoinHandle<Result<(), DecoderError>>,
}

impl Decoder {
    async fn stop(self) -> Arc<DecoderMetrics> {
        self.stop.send(true).unwrap();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("decoder stops")
            .unwrap()
            .unwrap();
        self.metrics
    }
}

/// A deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

mod common;
use common::every_type::{EVERY_TYPE_ROWS, EVERY_TYPE_SCHEMA};

/// The columns of `every_type` after its key.
const EVERY_TYPE_COLUMNS: [&str; 33] = [
    "c_int2",
    "c_int4",
    "c_int8",
    "c_numeric",
    "c_float4",
    "c_float8",
    "c_bool",
    "c_text",
    "c_varchar",
    "c_char",
    "c_bytea",
    "c_date",
    "c_time",
    "c_timetz",
    "c_timestamp",
    "c_timestamptz",
    "c_interval",
    "c_uuid",
    "c_json",
    "c_jsonb",
    "c_inet",
    "c_cidr",
    "c_macaddr",
    "c_bit",
    "c_varbit",
    "c_money",
    "c_mood",
    "c_positive",
    "c_int_array",
    "c_text_2d",
    "c_int4range",
    "c_tstzrange",
    "c_pair",
];

const SCHEMA: &[&str] = &[
    EVERY_TYPE_SCHEMA,
    "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(20,4), mood mood, tags text[], seen timestamptz)",
    "CREATE TABLE docs (id bigint PRIMARY KEY, title text, body text)",
    "ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL",
    "CREATE TABLE docs_full (id int PRIMARY KEY, title text, body text)",
    "ALTER TABLE docs_full REPLICA IDENTITY FULL",
    "ALTER TABLE docs_full ALTER COLUMN body SET STORAGE EXTERNAL",
    "CREATE TABLE events (kind text, amount float8, payload jsonb, during tstzrange)",
    "ALTER TABLE events REPLICA IDENTITY FULL",
    "CREATE TABLE tagged (code text NOT NULL, n int, raw bytea, span interval, addr inet, flags bit varying(8))",
    "CREATE UNIQUE INDEX tagged_code ON tagged (code)",
    "ALTER TABLE tagged REPLICA IDENTITY USING INDEX tagged_code",
];

/// One random transaction of the workload.
fn random_transaction(rng: &mut Rng, round: u64) -> Vec<String> {
    let mut sql = Vec::new();
    let big = rng.below(20) == 0;
    let statements = if big { 3 } else { 1 + rng.below(6) };
    for _ in 0..statements {
        let id = rng.below(60);
        let n = rng.next() % 1000;
        let statement = match rng.below(17) {
            // Every type: copy a row of tricky values, copy one column between rows, delete.
            14 => format!(
                "INSERT INTO every_type SELECT {}, {columns} FROM every_type WHERE id = {} ON CONFLICT (id) DO NOTHING",
                100 + n,
                1 + n % 4,
                columns = EVERY_TYPE_COLUMNS.join(", ")
            ),
            15 => format!(
                "UPDATE every_type t SET {column} = s.{column} FROM every_type s WHERE s.id = {} AND t.id % 7 = {}",
                1 + n % 4,
                id % 7,
                column = EVERY_TYPE_COLUMNS[(n % 33) as usize]
            ),
            16 => format!(
                "DELETE FROM every_type WHERE id > 4 AND id % 13 = {}",
                id % 13
            ),
            0 | 1 => format!(
                "INSERT INTO accounts VALUES ({id}, 'owner {n}', {n}.{n:04}, '{}', ARRAY['a', NULL, 'c{n}'], now()) \
                 ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + 1, tags = NULL",
                ["sad", "ok", "happy"][(n % 3) as usize]
            ),
            2 => format!(
                "UPDATE accounts SET balance = balance * 2, mood = 'happy' WHERE id % 7 = {}",
                id % 7
            ),
            3 => format!("UPDATE accounts SET id = id + 1000 WHERE id = {id}"),
            4 => format!("DELETE FROM accounts WHERE id % 11 = {}", id % 11),
            5 => format!(
                "INSERT INTO docs SELECT g, 'title ' || g, repeat(md5(g::text || '{n}'), 100) FROM generate_series({}, {}) g \
                 ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                id * 10,
                id * 10 + 3
            ),
            // Only the title changes: the TOASTed body is not sent (an unchanged marker).
            6 => format!(
                "UPDATE docs SET title = 'retitled {n}' WHERE id % 5 = {}",
                id % 5
            ),
            7 => format!(
                "INSERT INTO docs_full VALUES ({id}, 't{n}', repeat('x{n}', 2000)) ON CONFLICT (id) DO UPDATE SET title = 'u{n}'"
            ),
            8 => format!(
                "UPDATE docs_full SET title = 'only title {n}' WHERE id % 3 = {}",
                id % 3
            ),
            9 => format!(
                "INSERT INTO events VALUES ('k{}', {}, '{{\"n\": {n}, \"x\": [1, null]}}', '[2026-01-01,2026-02-01)')",
                n % 3,
                ["'NaN'", "'-Infinity'", "-0", "0.1", "1e300"][(n % 5) as usize]
            ),
            10 => format!(
                "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE kind = 'k{}' LIMIT 1)",
                n % 3
            ),
            11 => format!(
                "INSERT INTO tagged VALUES ('c{id}', {n}, '\\x{n:04x}'::bytea, '{n} days 03:00:01.5', '10.0.{}.1/24', B'1010') \
                 ON CONFLICT (code) DO UPDATE SET n = EXCLUDED.n + 1, flags = B'0101'",
                n % 255
            ),
            12 => format!("UPDATE tagged SET code = code || 'x' WHERE code = 'c{id}'"),
            _ if round % 40 == 39 => "TRUNCATE accounts, events".to_owned(),
            _ => format!("DELETE FROM tagged WHERE n % 9 = {}", n % 9),
        };
        sql.push(statement);
    }
    if big {
        // A transaction big enough to span many ledger entries and spill to disk.
        sql.push(format!(
            "INSERT INTO events SELECT 'bulk', g, jsonb_build_object('g', g), NULL FROM generate_series(1, {}) g",
            2000 + rng.below(3000)
        ));
    }
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_workload_reaches_the_ledger_once_in_order_and_replays_to_the_source_tables() {
    let fixture = Fixture::new("decoder_workload", SCHEMA, "ALL TABLES").await;
    let decoder = fixture.start();
    // The rows of tricky values of every type, which the workload copies and mixes.
    fixture.sql.batch_execute(EVERY_TYPE_ROWS).await.unwrap();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for round in 0..120 {
        let statements = random_transaction(&mut rng, round);
        fixture
            .sql
            .batch_execute(&format!("BEGIN; {}; COMMIT;", statements.join("; ")))
            .await
            .unwrap();
    }
    fixture.wait_caught_up().await;
    let metrics = decoder.stop().await;

    let contents = fixture.ledger().await;
    assert!(contents.abandoned.is_empty());
    let lsns: Vec<Lsn> = contents.transactions.iter().map(|t| t.commit_lsn).collect();
    assert!(
        lsns.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing commit LSNs"
    );
    // Postgres sends no empty transactions (an UPDATE that matched nothing), so up to 120.
    let count = contents.transactions.len();
    assert!((100..=121).contains(&count), "{count} transactions");
    let mut xids: Vec<u32> = contents.transactions.iter().map(|t| t.xid).collect();
    xids.sort_unstable();
    xids.dedup();
    assert_eq!(xids.len(), count, "every source transaction once");
    assert!(contents.transactions.iter().all(|t| !t.changes.is_empty()));
    for tx in &contents.transactions {
        let ordinals: Vec<u32> = tx.changes.iter().map(|c| c.ordinal).collect();
        assert_eq!(ordinals, (0..tx.changes.len() as u32).collect::<Vec<_>>());
    }
    assert!(
        contents.records > 120,
        "big transactions span several entries"
    );
    assert!(
        metrics.spilled_transactions.load(Relaxed) > 0,
        "a big transaction spilled to disk"
    );
    assert_eq!(metrics.transactions.load(Relaxed), count as u64);
    assert!(
        contents
            .transactions
            .iter()
            .flat_map(|t| t.relations.values())
            .any(|r| r.name == "every_type"),
        "every type went through the ledger"
    );

    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    let source = Model::from_source(&fixture.sql, &relations).await.unwrap();
    assert!(
        source.tables.len() >= 4,
        "the workload leaves rows in most tables: {:?}",
        source.tables.keys()
    );
    assert_eq!(
        model.tables.keys().collect::<Vec<_>>(),
        source.tables.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &source.tables {
        assert_eq!(
            model.tables.get(table),
            Some(rows),
            "table {table} differs from the source"
        );
    }
    drop(fixture.db);
}

#[tokio::test]
async fn an_idle_publication_with_busy_unpublished_tables_keeps_the_slot_moving() {
    let schema = [
        "CREATE TABLE published (id int PRIMARY KEY)",
        "CREATE TABLE busy (id int PRIMARY KEY, v text)",
    ];
    let fixture = Fixture::new("decoder_idle", &schema, "TABLE published").await;
    let decoder = fixture.start();
    for batch in 0..20 {
        fixture
            .sql
            .batch_execute(&format!(
                "INSERT INTO busy SELECT g, repeat('w', 200) FROM generate_series({}, {}) g",
                batch * 500,
                batch * 500 + 499
            ))
            .await
            .unwrap();
    }
    let before = fixture.slot_position().await.0;
    // Nothing was published, yet the slot reaches the end of all that WAL.
    fixture.wait_caught_up().await;
    assert!(fixture.slot_position().await.0 > before);
    decoder.stop().await;
    assert_eq!(
        fixture.ledger().await.records,
        0,
        "nothing published, nothing in the ledger"
    );
}

#[tokio::test]
async fn a_second_decoder_on_the_same_slot_refuses_to_run_while_the_first_is_alive() {
    let fixture = Fixture::new(
        "decoder_second",
        &["CREATE TABLE t (id int PRIMARY KEY)"],
        "ALL TABLES",
    )
    .await;
    let first = fixture.start();
    wait_until("the first decoder to hold the slot", WAIT, || async {
        Ok(fixture.slot_position().await.1)
    })
    .await
    .unwrap();
    let second = fixture.start();
    let err = tokio::time::timeout(WAIT, second.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DecoderError::AlreadyRunning { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("another walproof decoder is running"),
        "{err}"
    );
    first.stop().await;
}

#[tokio::test]
async fn a_clean_stop_confirms_the_slot_to_the_ledger_and_a_restart_resumes_without_repeats() {
    let fixture = Fixture::new(
        "decoder_restart",
        &["CREATE TABLE t (id int PRIMARY KEY, v text)"],
        "ALL TABLES",
    )
    .await;
    let decoder = fixture.start();
    for i in 0..30 {
        fixture
            .sql
            .batch_execute(&format!("INSERT INTO t VALUES ({i}, 'first run')"))
            .await
            .unwrap();
    }
    // Stopped once the ledger holds them, not once the slot confirms them (the slot's status
    // lags): the clean stop itself must confirm the slot to the ledger's end. (Comparing with
    // the WAL position would race with other tests' databases writing to the same WAL.)
    wait_until("the first run in the ledger", WAIT, || async {
        Ok(fixture.ledger().await.transactions.len() == 30)
    })
    .await
    .unwrap();
    decoder.stop().await;
    let (position, active) = fixture.slot_position().await;
    assert!(!active, "the slot is released");
    let last = fixture
        .ledger()
        .await
        .transactions
        .last()
        .unwrap()
        .commit_lsn;
    assert!(
        position >= last,
        "the slot is confirmed up to the ledger's last commit {last}: {position}"
    );

    // Changes while the decoder is down, then a second run.
    for i in 30..60 {
        fixture
            .sql
            .batch_execute(&format!("INSERT INTO t VALUES ({i}, 'while down')"))
            .await
            .unwrap();
    }
    let decoder = fixture.start();
    fixture
        .sql
        .batch_execute("UPDATE t SET v = 'second run' WHERE id % 2 = 0")
        .await
        .unwrap();
    fixture.wait_caught_up().await;
    let metrics = decoder.stop().await;
    assert_eq!(
        metrics.redelivered_transactions.load(Relaxed),
        0,
        "a clean stop leaves nothing to redeliver"
    );

    let contents = fixture.ledger().await;
    assert_eq!(contents.transactions.len(), 61);
    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    assert_eq!(
        model,
        Model::from_source(&fixture.sql, &relations).await.unwrap()
    );
}

#[tokio::test]
async fn a_missing_slot_or_publication_is_an_error_that_names_it_and_the_fix() {
    let fixture = Fixture::new(
        "decoder_missing",
        &["CREATE TABLE t (id int PRIMARY KEY)"],
        "ALL TABLES",
    )
    .await;
    let mut config = fixture.config.clone();
    config.slot = "no_such_slot".into();
    let (_stop, stopped) = watch::channel(false);
    let err = run(config, Arc::default(), stopped.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, DecoderError::MissingSlot { .. }), "{err}");
    assert!(
        err.to_string().contains("no_such_slot") && err.to_string().contains("walproof setup"),
        "{err}"
    );

    let mut config = fixture.config.clone();
    config.publication = "no_such_publication".into();
    let err = run(config, Arc::default(), stopped).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("publication no_such_publication does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_source_is_retried_until_stopped_and_the_stop_is_clean() {
    let fixture = Fixture::new(
        "decoder_unreachable",
        &["CREATE TABLE t (id int PRIMARY KEY)"],
        "ALL TABLES",
    )
    .await;
    let mut config = fixture.config.clone();
    // Nothing listens on port 1: every attempt fails, and the decoder keeps retrying.
    config.source = "postgres://postgres@127.0.0.1:1/postgres".parse().unwrap();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(config, Arc::default(), stopped));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !task.is_finished(),
        "an unreachable source is retried, not fatal"
    );
    stop.send(true).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops promptly")
        .unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
}
