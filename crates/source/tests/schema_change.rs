//! Schema changes against the real Postgres and broker: `walproof setup` installs DDL capture,
//! and DDL mid-stream reaches the ledger at its exact position — relations followed (ADD,
//! DROP, RENAME COLUMN, ALTER TYPE, CREATE, DROP and RENAME TABLE, tables added to and removed
//! from the publication), the post-DDL rows of a rewriting DDL inside the DDL's own
//! transaction — and the ledger replays into exactly the source's tables.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use walproof_core::schema_change::{SCHEMA_CHANGE_PREFIX, SchemaChange, TableChangeKind};
use walproof_core::{Op, Transaction};
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

/// A database with `schema`, set up by `walproof setup` (publication `tables`, or all tables),
/// and the decoder streaming it from the start of the slot.
async fn streaming(
    test: &str,
    schema: &str,
    tables: Option<&[&str]>,
) -> (
    TestDatabase,
    TestTopics,
    tokio_postgres::Client,
    DecoderConfig,
    watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), walproof_source::DecoderError>>,
) {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, test).await.unwrap();
    let sql = db.connect().await.unwrap();
    sql.batch_execute(schema).await.unwrap();
    let slot = db.slot_name("slot");
    let options = SetupOptions {
        publication: "ddl_pub".into(),
        slot: slot.clone(),
        tables: tables.map(|t| t.iter().map(|name| name.parse().unwrap()).collect()),
        dry_run: false,
    };
    let plan = setup::plan(&sql, &options).await.unwrap();
    setup::apply(&sql, &plan).await.unwrap();
    assert!(
        setup::ddl_capture_installed(&sql, "ddl_pub").await.unwrap(),
        "setup installs DDL capture"
    );
    let again = setup::plan(&sql, &options).await.unwrap();
    assert!(again.is_ready(), "a second setup finds everything in place");

    let (host, port, user) = db.host_port_user();
    let source: SourceConnection = format!("postgres://{user}@{host}:{port}/{}", db.name())
        .parse()
        .unwrap();
    let topics = TestTopics::new(&stack, test);
    let config = DecoderConfig {
        source,
        slot,
        publication: "ddl_pub".into(),
        kafka: KafkaSettings::new(&stack.kafka_brokers, topics.prefix()),
        writer: WriterOptions::default(),
        max_entry_bytes: 4 * 1024,
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
    let decoder = tokio::spawn(run(config.clone(), metrics.clone(), stopped));
    // The snapshot first, so that every DDL below is streamed.
    wait_until("the decoder to stream", WAIT, || async {
        Ok(metrics.confirmed_lsn.load(Relaxed) > 0)
    })
    .await
    .unwrap();
    (db, topics, sql, config, stop, decoder)
}

/// Waits until the slot confirmed everything, stops the decoder and reads the ledger.
async fn ledger(
    sql: &tokio_postgres::Client,
    config: &DecoderConfig,
    stop: watch::Sender<bool>,
    decoder: tokio::task::JoinHandle<Result<(), walproof_source::DecoderError>>,
) -> Vec<Transaction> {
    let target = current_wal_lsn(sql).await.unwrap();
    wait_slot_confirmed(sql, &config.slot, target, WAIT)
        .await
        .unwrap();
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, decoder)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    LedgerReader::from_start(&config.kafka)
        .unwrap()
        .read_to_end(Duration::from_secs(20))
        .await
        .unwrap()
        .transactions
}

/// The schema changes in a transaction, in order.
fn schema_changes(transaction: &Transaction) -> Vec<SchemaChange> {
    transaction
        .changes
        .iter()
        .filter_map(|c| match &c.op {
            Op::Message { prefix, content } if prefix == SCHEMA_CHANGE_PREFIX => {
                Some(SchemaChange::parse(content).unwrap())
            }
            _ => None,
        })
        .collect()
}

async fn assert_replays_into_the_source(sql: &tokio_postgres::Client, ledger: &[Transaction]) {
    let (model, relations) = Model::replay(ledger).unwrap();
    let source = Model::from_source(sql, &relations).await.unwrap();
    assert!(model == source, "{}", model.differences(&source).join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_mid_stream_is_followed_and_replays_into_the_source() {
    let (_db, _topics, sql, config, stop, decoder) = streaming(
        "ddl_stream",
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, balance int);
         INSERT INTO accounts SELECT g, 'acct ' || g, g * 10 FROM generate_series(1, 50) g;
         CREATE TABLE events (kind text, n int);
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO events VALUES ('boot', 1), ('boot', 1), ('tick', 2);",
        None,
    )
    .await;
    for statement in [
        // Derivable from what a consumer holds: no rows follow.
        "ALTER TABLE accounts ADD COLUMN note text",
        "UPDATE accounts SET note = 'vip' WHERE id <= 5",
        "ALTER TABLE accounts RENAME COLUMN name TO label",
        "ALTER TABLE accounts DROP COLUMN balance",
        "INSERT INTO accounts VALUES (100, 'after drop', 'n')",
        "ALTER TABLE events DROP COLUMN n",
        "INSERT INTO events VALUES ('tock')",
        // Values the stream never carries: the post-DDL rows follow in the same transaction.
        "ALTER TABLE accounts ADD COLUMN score float8 DEFAULT random()",
        "ALTER TABLE accounts ADD COLUMN opened timestamptz DEFAULT clock_timestamp()",
        "ALTER TABLE accounts ADD COLUMN tier int DEFAULT 3",
        "ALTER TABLE events ADD COLUMN weight numeric DEFAULT 1.5",
        "ALTER TABLE accounts ALTER COLUMN label TYPE varchar(40)",
        "ALTER TABLE accounts ALTER COLUMN tier TYPE text USING 'tier ' || tier",
        // A schema change inside a transaction with changes on both sides of it.
        "BEGIN; INSERT INTO accounts (id, label) VALUES (200, 'before'); \
         ALTER TABLE accounts DROP COLUMN note; \
         INSERT INTO accounts (id, label) VALUES (201, 'after'); COMMIT",
        // Tables created, renamed, dropped.
        "CREATE TABLE later (k int PRIMARY KEY, v text)",
        "INSERT INTO later VALUES (1, 'one'), (2, 'two')",
        "ALTER TABLE later RENAME TO renamed",
        "UPDATE renamed SET v = 'uno' WHERE k = 1",
        // Another key: the rows follow (a new key needs the key columns' values).
        "ALTER TABLE renamed ALTER COLUMN v SET NOT NULL; \
         CREATE UNIQUE INDEX renamed_v ON renamed (v); \
         ALTER TABLE renamed REPLICA IDENTITY USING INDEX renamed_v",
        "UPDATE renamed SET k = 10 WHERE v = 'two'",
        "CREATE TABLE copied AS SELECT id, label FROM accounts WHERE id < 10",
        "ALTER TABLE copied ADD PRIMARY KEY (id)",
        "UPDATE copied SET label = 'copy' WHERE id = 3",
        "CREATE TABLE doomed (k int PRIMARY KEY)",
        "INSERT INTO doomed VALUES (1)",
        "DROP TABLE doomed",
        "UPDATE accounts SET label = 'changed' WHERE id = 7",
        // A type's text changes with no table DDL: an enum value renamed.
        "CREATE TYPE mood AS ENUM ('sad', 'ok')",
        "CREATE TABLE feelings (id int PRIMARY KEY, m mood)",
        "INSERT INTO feelings VALUES (1, 'sad'), (2, 'ok')",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy'",
        // A generated column that stops being generated keeps values the stream never had.
        "CREATE TABLE sums (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED)",
        "INSERT INTO sums (id, a) VALUES (1, 21)",
        "ALTER TABLE sums ALTER COLUMN twice DROP EXPRESSION",
        // A DDL inside another one: CREATE TABLE AS calls a function that creates a table.
        "CREATE FUNCTION make_side() RETURNS int LANGUAGE plpgsql AS \
         $$ BEGIN CREATE TABLE side (k int PRIMARY KEY); INSERT INTO side VALUES (1); \
         RETURN 1; END $$",
        "CREATE TABLE outer_t AS SELECT make_side() AS one, 'x' AS label",
        "ALTER TABLE outer_t ADD PRIMARY KEY (one)",
        "INSERT INTO side VALUES (2)",
    ] {
        sql.batch_execute(statement).await.unwrap();
    }
    let ledger = ledger(&sql, &config, stop, decoder).await;

    // The volatile default's DDL carries the table's rows: a truncate and one row each, the
    // source's random() values, in the DDL's own transaction.
    let with_random = ledger
        .iter()
        .find(|t| {
            schema_changes(t)
                .iter()
                .any(|c| c.statement.contains("random()"))
        })
        .expect("the ADD COLUMN … DEFAULT random() transaction");
    let change = &schema_changes(with_random)[0];
    assert_eq!(change.tag, "ALTER TABLE");
    assert_eq!(change.tables.len(), 1);
    assert!(change.tables[0].rows_follow);
    let ops: Vec<char> = with_random.changes.iter().map(|c| c.op.code()).collect();
    assert_eq!(ops[..2], ['m', 't']);
    assert_eq!(ops.iter().filter(|op| **op == 'r').count(), 51);

    // Derivable changes carry no rows; the rename maps the column, not drop + add.
    let rename = ledger
        .iter()
        .flat_map(schema_changes)
        .find(|c| c.statement.contains("RENAME COLUMN"))
        .unwrap();
    assert!(!rename.tables[0].rows_follow);
    let label = rename.tables[0]
        .columns
        .iter()
        .find(|c| c.name == "label")
        .unwrap();
    assert_eq!(label.was, Some(1));
    let rekeyed: Vec<SchemaChange> = ledger
        .iter()
        .flat_map(schema_changes)
        .filter(|c| c.statement.contains("renamed_v"))
        .collect();
    assert_eq!(
        rekeyed.len(),
        1,
        "only the replica identity change alters the shape"
    );
    assert!(
        rekeyed[0].tables[0].rows_follow,
        "a new key: the rows follow"
    );
    // Both DDLs of the nested pair are described, each once.
    let nested: Vec<(String, String)> = ledger
        .iter()
        .flat_map(schema_changes)
        .filter(|c| c.statement.contains("make_side()") && c.tag != "CREATE FUNCTION")
        .flat_map(|c| c.tables.into_iter().map(move |t| (c.tag.clone(), t.name)))
        .collect();
    assert_eq!(
        nested,
        [
            ("CREATE TABLE".to_owned(), "side".to_owned()),
            ("CREATE TABLE AS".to_owned(), "outer_t".to_owned())
        ]
    );
    let kinds: Vec<TableChangeKind> = ledger
        .iter()
        .flat_map(schema_changes)
        .flat_map(|c| c.tables.into_iter().map(|t| t.change))
        .collect();
    for kind in [
        TableChangeKind::Created,
        TableChangeKind::Altered,
        TableChangeKind::Dropped,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    assert_replays_into_the_source(&sql, &ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_added_to_the_publication_later_arrives_with_its_rows() {
    let (_db, _topics, sql, config, stop, decoder) = streaming(
        "ddl_publication",
        "CREATE TABLE listed (id int PRIMARY KEY, v text);
         INSERT INTO listed VALUES (1, 'a');
         CREATE TABLE outside (id int PRIMARY KEY, v text);
         INSERT INTO outside SELECT g, 'o' || g FROM generate_series(1, 30) g;",
        Some(&["listed"]),
    )
    .await;
    for statement in [
        "INSERT INTO outside VALUES (31, 'not published yet')",
        "INSERT INTO listed VALUES (2, 'b')",
        "ALTER PUBLICATION ddl_pub ADD TABLE outside",
        "UPDATE outside SET v = 'published' WHERE id = 1",
        "ALTER PUBLICATION ddl_pub DROP TABLE listed",
        "INSERT INTO listed VALUES (3, 'not published any more')",
    ] {
        sql.batch_execute(statement).await.unwrap();
    }
    // What walproof cannot follow fails loudly instead of diverging: a row filter, and rows
    // to send from a transaction that cannot see every committed row.
    let refused = sql
        .batch_execute("ALTER PUBLICATION ddl_pub SET TABLE outside WHERE (id > 5)")
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("row filter"), "{refused:?}");
    let refused = sql
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; \
             ALTER TABLE outside ADD COLUMN c int DEFAULT 0; COMMIT",
        )
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("needs READ COMMITTED"),
        "{refused:?}"
    );
    sql.batch_execute("ROLLBACK").await.unwrap();
    let ledger = ledger(&sql, &config, stop, decoder).await;
    let changes: Vec<SchemaChange> = ledger.iter().flat_map(schema_changes).collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].tables[0].change, TableChangeKind::Published);
    assert!(changes[0].tables[0].rows_follow);
    assert_eq!(changes[1].tables[0].change, TableChangeKind::Unpublished);

    // The model holds what the publication carries now: outside (all 31 rows), not listed.
    let (model, relations) = Model::replay(&ledger).unwrap();
    assert_eq!(
        relations
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["outside"]
    );
    assert_eq!(model.tables["public.outside"].len(), 31);
    assert!(!model.tables.contains_key("public.listed"));
    assert_eq!(model, Model::from_source(&sql, &relations).await.unwrap());
}

mod common;

/// The post-DDL rows are each value's text output under the canonical settings — the same
/// bytes pgoutput sends — for every type, whatever the settings of the session running the DDL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_ddl_rows_of_every_type_are_the_canonical_text_whatever_the_session_settings() {
    use common::every_type::{EVERY_TYPE_ROWS, EVERY_TYPE_SCHEMA};

    let (db, _topics, sql, config, stop, decoder) = streaming(
        "ddl_every_type",
        &format!("{EVERY_TYPE_SCHEMA}; {EVERY_TYPE_ROWS}"),
        None,
    )
    .await;
    let user = db.connect().await.unwrap();
    user.batch_execute(
        "SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'; SET extra_float_digits = 0;
         SET bytea_output = 'escape'; SET IntervalStyle = 'sql_standard';
         ALTER TABLE every_type ADD COLUMN extra int DEFAULT 1",
    )
    .await
    .unwrap();
    let ledger = ledger(&sql, &config, stop, decoder).await;
    let rows = ledger
        .iter()
        .find(|t| !schema_changes(t).is_empty())
        .expect("the ALTER TABLE transaction")
        .changes
        .iter()
        .filter(|c| c.op.code() == 'r')
        .count();
    assert!(rows >= 2, "the table's rows follow the DDL ({rows})");
    assert_replays_into_the_source(&sql, &ledger).await;
}
