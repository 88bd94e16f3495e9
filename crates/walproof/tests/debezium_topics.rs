//! The Debezium topics read by a client that is not ours: the PyPI confluent-kafka consumer in
//! `debezium_rebuild.py` rebuilds every table from the change events alone, and the result
//! equals the source after a snapshot and a workload with inserts, key updates, deletes, a
//! truncate and DDL (a volatile default, a type change, columns added and dropped).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::stack::wait_until;
use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::LedgerReader;

mod common;
use common::python;

const BIN: &str = env!("CARGO_BIN_EXE_walproof");
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_kafka_client_rebuilds_every_table_from_the_debezium_topics() {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, "debezium").await.unwrap();
    let sql = db.connect().await.unwrap();
    sql.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, active bool, qty int);
         CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (a, b));
         CREATE TABLE events (kind text, n int);
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO accounts SELECT g, 'acct ' || g, g % 2 = 0, g FROM generate_series(1, 200) g;
         INSERT INTO pairs SELECT g % 10, 'b' || g, 'v' FROM generate_series(1, 50) g;
         INSERT INTO events VALUES ('boot', 1), ('boot', 1);",
    )
    .await
    .unwrap();
    let topics = TestTopics::new(&stack, "debezium");
    let (host, port, user) = db.host_port_user();
    let slot = db.slot_name("slot");
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    let common = |command: &mut Command| {
        command
            .env("WALPROOF_SOURCE_URL", &url)
            .env("WALPROOF_SLOT", &slot)
            .env("WALPROOF_KAFKA_BROKERS", &stack.kafka_brokers)
            .env("WALPROOF_TOPIC_PREFIX", topics.prefix())
            .env("RUST_LOG", "warn");
    };
    let mut setup = Command::new(BIN);
    common(setup.arg("setup"));
    assert!(setup.output().unwrap().status.success());
    let mut decode = Command::new(BIN);
    common(decode.args([
        "decode",
        "--debezium-partitions",
        "3",
        "--metrics-addr",
        "off",
    ]));
    let mut decoder = decode.stdout(Stdio::null()).spawn().unwrap();

    // A workload of key updates, deletes, a truncate and a multiset table: its first third
    // races the snapshot, the rest certainly follows it (streamed).
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    for i in 0..30 {
        if i == 10 {
            wait_until("the snapshot to reach the ledger", WAIT, || async {
                let ledger = LedgerReader::from_start(&settings)?
                    .read_to_end(Duration::from_secs(10))
                    .await?;
                Ok(!ledger.transactions.is_empty())
            })
            .await
            .unwrap();
        }
        sql.batch_execute(&format!(
            "UPDATE accounts SET qty = qty + 1, active = NOT active WHERE id % 7 = {m7};
             UPDATE accounts SET id = id + 1000 WHERE id = {i} + 1;
             DELETE FROM accounts WHERE id = {i} + 100;
             INSERT INTO accounts VALUES ({i} + 5000, 'new', true, {i});
             UPDATE pairs SET b = b || 'x' WHERE a = {m10} AND b LIKE 'b1%';
             INSERT INTO events VALUES ('tick', {m3});
             DELETE FROM events WHERE ctid IN (SELECT ctid FROM events WHERE kind = 'tick' AND n = {m3} LIMIT 1) AND {i} % 4 = 0;",
            m7 = i % 7,
            m10 = i % 10,
            m3 = i % 3
        ))
        .await
        .unwrap();
        let ddl = match i {
            12 => "ALTER TABLE accounts ADD COLUMN token text DEFAULT md5(random()::text)",
            15 => "ALTER TABLE events ADD COLUMN w int",
            18 => "ALTER TABLE accounts ALTER COLUMN qty TYPE bigint",
            20 => "TRUNCATE pairs; INSERT INTO pairs VALUES (1, 'after', 'truncate')",
            // Debezium topics carry no DDL (nor does Debezium's PostgreSQL connector): a
            // consumer learns the new shape from the table's next event.
            25 => "ALTER TABLE pairs DROP COLUMN v; INSERT INTO pairs VALUES (2, 'after drop')",
            _ => continue,
        };
        sql.batch_execute(ddl).await.unwrap();
    }
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &slot, target, WAIT)
        .await
        .unwrap();
    let ledger = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(Duration::from_secs(30))
        .await
        .unwrap();
    let last = ledger.transactions.last().unwrap().commit_lsn;
    let rebuilt = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/debezium_rebuild.py"
        ))
        .args([
            stack.kafka_brokers.as_str(),
            topics.prefix(),
            &last.as_u64().to_string(),
        ])
        .output()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &decoder.id().to_string()])
        .status()
        .unwrap();
    assert!(decoder.wait().unwrap().success());
    eprintln!(
        "debezium_rebuild.py: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let rebuilt: BTreeMap<String, Vec<String>> = serde_json::from_slice(&rebuilt.stdout).unwrap();

    let mut source = BTreeMap::new();
    for table in ["accounts", "pairs", "events"] {
        let rows = sql
            .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
            .await
            .unwrap();
        let mut rows: Vec<String> = rows
            .iter()
            .map(|row| {
                let value: serde_json::Value = serde_json::from_str(row.get(0)).unwrap();
                // Python's json.dumps(sort_keys=True) form.
                python_json(&value)
            })
            .collect();
        rows.sort();
        source.insert(format!("public.{table}"), rows);
    }
    // On a mismatch, name the rows each side lacks rather than print both in full.
    let mut differences = Vec::new();
    for table in rebuilt
        .keys()
        .chain(source.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (ours, theirs) = (rebuilt.get(table), source.get(table));
        let (ours, theirs) = (
            ours.cloned().unwrap_or_default(),
            theirs.cloned().unwrap_or_default(),
        );
        for row in ours.iter().filter(|r| !theirs.contains(r)) {
            differences.push(format!("{table}: rebuilt only: {row}"));
        }
        for row in theirs.iter().filter(|r| !ours.contains(r)) {
            differences.push(format!("{table}: source only: {row}"));
        }
        if differences.is_empty() && ours.len() != theirs.len() {
            differences.push(format!(
                "{table}: {} rows rebuilt, {} in the source",
                ours.len(),
                theirs.len()
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// `json.dumps(value, sort_keys=True)`: ", " and ": " separators, sorted keys.
fn python_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}: {}",
                        serde_json::Value::from(k.as_str()),
                        python_json(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn an_idle_source_still_gets_heartbeats_on_the_heartbeat_topic() {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::{Message, Offset, TopicPartitionList};

    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, "heartbeat").await.unwrap();
    db.connect()
        .await
        .unwrap()
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    let topics = TestTopics::new(&stack, "heartbeat");
    let (host, port, user) = db.host_port_user();
    let mut command = Command::new(BIN);
    command
        .env(
            "WALPROOF_SOURCE_URL",
            format!("postgres://{user}@{host}:{port}/{}", db.name()),
        )
        .env("WALPROOF_SLOT", db.slot_name("slot"))
        .env("WALPROOF_KAFKA_BROKERS", &stack.kafka_brokers)
        .env("WALPROOF_TOPIC_PREFIX", topics.prefix())
        .env("RUST_LOG", "warn");
    let mut setup = Command::new(BIN);
    setup
        .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .arg("setup");
    assert!(setup.output().unwrap().status.success());
    let mut decoder = command
        .args([
            "decode",
            "--heartbeat-interval-ms",
            "200",
            "--metrics-addr",
            "off",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    // Nothing happens on the source; heartbeats arrive anyway.
    let topic = format!("__debezium-heartbeat.{}", topics.prefix());
    let consumer: StreamConsumer = topics
        .client_config()
        .set("group.id", "heartbeat-test")
        .create()
        .unwrap();
    let mut beats = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while beats.len() < 3 {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Offset(beats.len() as i64))
            .unwrap();
        if consumer.assign(&assignment).is_ok() {
            if let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
            {
                let value: serde_json::Value =
                    serde_json::from_slice(message.payload().unwrap()).unwrap();
                beats.push(value["payload"]["ts_ms"].as_i64().unwrap());
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} heartbeats within 30 s",
            beats.len()
        );
    }
    Command::new("kill")
        .args(["-TERM", &decoder.id().to_string()])
        .status()
        .unwrap();
    assert!(decoder.wait().unwrap().success());
    assert!(
        beats.windows(2).all(|w| w[0] <= w[1]),
        "heartbeats carry increasing times: {beats:?}"
    );
}
