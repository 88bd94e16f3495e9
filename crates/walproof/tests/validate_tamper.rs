//! The validator catches tampering, each case with a clear message and no attestation from
//! there on:
//! (a) an edited ledger record — left unsealed (the chain breaks at its offset) or re-sealed
//!     with every record after it (the chain holds, but the root the validator computes is not
//!     the published one) — caught at that transaction;
//! (b) a forged root on the roots topic, caught at its transaction;
//! (c) a row changed behind the validator's back in its shadow database, caught by the deep
//!     audit — in a keyed table, and in a table without a key (a multiset: a row duplicated,
//!     or one of its values changed).
//!
//! A ledger and its roots are made once per test by `walproof decode` and `walproof commit`;
//! (a) and (b) copy them, tampered, under a new topic prefix for the validator to read.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Child;
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use walproof_core::{Digest, EntryBody, LedgerEntry, Lsn, Op, SealedEntry, Value};
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::stack::wait_until;
use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};
use walproof_transport::KafkaSettings;
use walproof_transport::attestations::read_attestations;
use walproof_transport::roots::{RootRecord, read_roots};
use walproof_validator::attestation::SignedAttestation;

const WAIT: Duration = Duration::from_secs(90);

/// Records of a topic, `(key, value)`, in offset order.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

mod common;
use common::{setup_and_decode, sigterm, source, walproof};

/// anvil's first development key: public knowledge, for tests only.
const TEST_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// A source, its ledger and roots under the topic prefix `topics`: a snapshot, then six
/// transactions (by default each inserts a row and updates another).
struct Made {
    stack: Stack,
    _db: TestDatabase,
    topics: TestTopics,
    /// Every ledger record, `(key, value)`, in offset order.
    ledger: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every root, in order.
    roots: Vec<RootRecord>,
}

async fn make(test: &str) -> Made {
    make_from(
        test,
        "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2));
         INSERT INTO accounts SELECT g, 'owner ' || g, 100 FROM generate_series(1, 20) g;",
        |i| {
            format!(
                "INSERT INTO accounts VALUES ({i} + 100, 'new {i}', {i});
                 UPDATE accounts SET balance = balance + 1 WHERE id = {i};"
            )
        },
    )
    .await
}

/// A source made with `schema`, then the six transactions `transaction(1..=6)`, each one SQL
/// batch (one source transaction).
async fn make_from(test: &str, schema: &str, transaction: impl Fn(u32) -> String) -> Made {
    let (stack, db, topics, sql, env) = source(test, schema).await;
    let slot = env[1].1.clone();
    let mut decoder = setup_and_decode(&env);
    let mut committer = walproof(&env, &["commit", "--in-memory", "--proof-addr", "off"])
        .spawn()
        .unwrap();
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    let ledger_transactions = || async {
        walproof_transport::ledger::LedgerReader::from_start(&settings)
            .unwrap()
            .read_to_end(Duration::from_secs(30))
            .await
            .unwrap()
            .transactions
            .len()
    };
    // The snapshot first, so each transaction below is one of its own in the ledger.
    wait_until("the snapshot in the ledger", WAIT, || async {
        Ok(ledger_transactions().await == 1)
    })
    .await
    .unwrap();
    for i in 1..=6 {
        sql.batch_execute(&transaction(i)).await.unwrap();
    }
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &slot, target, WAIT)
        .await
        .unwrap();
    let transactions = ledger_transactions().await;
    assert_eq!(transactions, 7, "the snapshot and six transactions");
    wait_until("a root per transaction", WAIT, || async {
        Ok(read_roots(&settings, Duration::from_secs(30)).await?.len() == transactions)
    })
    .await
    .unwrap();
    sigterm(&mut committer);
    sigterm(&mut decoder);
    let roots = read_roots(&settings, Duration::from_secs(30))
        .await
        .unwrap();
    let ledger = read_topic(&topics, &topics.topic("ledger"));
    Made {
        stack,
        _db: db,
        topics,
        ledger,
        roots,
    }
}

/// Every record of a one-partition topic, `(key, value)`.
fn read_topic(topics: &TestTopics, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = topics
        .client_config()
        .set("group.id", "walproof-tamper-copy")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut partition = rdkafka::TopicPartitionList::new();
    partition
        .add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&partition).unwrap();
    let mut records = Vec::new();
    loop {
        match consumer.poll(Duration::from_secs(30)).unwrap() {
            Ok(message) => records.push((
                message.key().unwrap_or_default().to_vec(),
                message.payload().unwrap_or_default().to_vec(),
            )),
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => return records,
            Err(err) => panic!("reading {topic}: {err}"),
        }
    }
}

/// Writes `records` to `<prefix>.<suffix>` (created with one partition) in order.
async fn write_topic(topics: &TestTopics, suffix: &str, records: &[(Vec<u8>, Vec<u8>)]) {
    topics.create(suffix, 1).await.unwrap();
    append_topic(topics, suffix, records).await;
}

/// Appends `records` to `<prefix>.<suffix>` in order.
async fn append_topic(topics: &TestTopics, suffix: &str, records: &[(Vec<u8>, Vec<u8>)]) {
    let topic = topics.topic(suffix);
    let producer: FutureProducer = topics
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (key, value) in records {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(0)
                    .key(key)
                    .payload(value),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }
}

/// The roots as records of the roots topic.
fn root_records(roots: &[RootRecord]) -> Vec<(Vec<u8>, Vec<u8>)> {
    roots
        .iter()
        .map(|r| {
            (
                r.commit_lsn.to_string().into_bytes(),
                r.to_json().into_bytes(),
            )
        })
        .collect()
}

/// An empty shadow database of the test's own, and a session on it.
async fn shadow_database(stack: &Stack, test: &str) -> (TestDatabase, tokio_postgres::Client) {
    let shadow = TestDatabase::create(stack, test).await.unwrap();
    let sql = shadow.connect().await.unwrap();
    (shadow, sql)
}

/// `walproof validate` over `topics` into `shadow`; its log goes to the returned file.
fn validate(
    stack: &Stack,
    topics: &TestTopics,
    shadow: &TestDatabase,
    extra: &[&str],
) -> (Child, std::path::PathBuf) {
    let (host, port, user) = shadow.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", shadow.name());
    let log = std::env::temp_dir().join(format!(
        "{}-{}.log",
        shadow.name(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let state = std::env::temp_dir().join(format!("walproof-validator-{}", shadow.name()));
    let state = state.to_str().unwrap();
    let mut args = vec!["validate", "--shadow-url", &url, "--http-addr", "off"];
    args.extend_from_slice(&["--state-dir", state]);
    args.extend_from_slice(extra);
    let env = [
        ("WALPROOF_KAFKA_BROKERS", stack.kafka_brokers.clone()),
        ("WALPROOF_TOPIC_PREFIX", topics.prefix().to_owned()),
        ("WALPROOF_VALIDATOR_KEY", TEST_KEY.to_owned()),
    ];
    let child = walproof(&env, &args)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

/// The first divergence the validator recorded: (kind, commit LSN, detail).
async fn divergence(shadow: &tokio_postgres::Client) -> Option<(String, Option<String>, String)> {
    let rows = shadow
        .query(
            "SELECT kind, commit_lsn::text, detail FROM walproof_validator.divergences
             ORDER BY found_at LIMIT 1",
            &[],
        )
        .await
        .ok()?;
    rows.first().map(|r| (r.get(0), r.get(1), r.get(2)))
}

/// Waits for the validator's divergence, then checks its attestations: exactly the roots
/// before `from`, none at or after it. Returns the divergence and the validator's log.
async fn diverged(
    mut validator: Child,
    shadow: &tokio_postgres::Client,
    topics: &TestTopics,
    stack: &Stack,
    log: &std::path::Path,
    roots: &[RootRecord],
    from: Lsn,
) -> ((String, Option<String>, String), String) {
    wait_until("the validator to record a divergence", WAIT, || async {
        Ok(divergence(shadow).await.is_some())
    })
    .await
    .unwrap();
    let found = divergence(shadow).await.unwrap();
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    let before: Vec<Lsn> = roots
        .iter()
        .map(|r| r.commit_lsn)
        .filter(|lsn| *lsn < from)
        .collect();
    assert!(!before.is_empty());
    // The roots verified before the divergence are still signed; nothing from it on.
    wait_until("the roots before the divergence attested", WAIT, || async {
        let signed: Vec<Lsn> = read_attestations(&settings, Duration::from_secs(30))
            .await?
            .iter()
            .map(|(_, _, value)| SignedAttestation::from_json(value).unwrap().commit_lsn)
            .collect();
        assert!(
            before.starts_with(&signed),
            "attested {signed:?}, only the roots before {from} may be: {before:?}"
        );
        Ok(signed == before)
    })
    .await
    .unwrap();
    sigterm(&mut validator);
    (found, std::fs::read_to_string(log).unwrap())
}

/// The ledger records with the value of the first inserted row changed in the first
/// transaction after the snapshot that inserts one; `reseal` re-seals it and every record after
/// it, so the chain holds. Returns the records and the edited transaction's commit LSN.
fn edited(ledger: &[(Vec<u8>, Vec<u8>)], reseal: bool) -> (Records, Lsn) {
    let mut out = Vec::new();
    let mut edited_lsn = None;
    let mut prev: Option<Digest> = None;
    for (index, (key, value)) in ledger.iter().enumerate() {
        let sealed = SealedEntry::from_bytes(value).unwrap();
        let mut entry: LedgerEntry = sealed.decode_entry().unwrap();
        let mut changed = false;
        if edited_lsn.is_none() && index > 0 {
            if let EntryBody::Transaction(part) = &mut entry.body {
                for change in &mut part.changes {
                    if let Op::Insert { new, .. } = &mut change.op {
                        new.0[1] = Value::Text("mallory".into());
                        changed = true;
                        edited_lsn = Some(entry.commit_lsn);
                        break;
                    }
                }
            }
        }
        let resealed = match (changed, reseal, prev) {
            (true, false, _) => SealedEntry {
                entry: entry.encode(),
                ..sealed
            },
            (_, true, Some(prev)) if edited_lsn.is_some() => {
                SealedEntry::seal(prev, entry.encode())
            }
            _ => sealed,
        };
        prev = Some(resealed.hash);
        out.push((key.clone(), resealed.to_bytes()));
    }
    (out, edited_lsn.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_ledger_record_is_caught_at_its_transaction() {
    let made = make("tamper_ledger").await;
    for reseal in [false, true] {
        let copy = TestTopics::new(&made.stack, "tamper_ledger_copy");
        let (records, lsn) = edited(&made.ledger, reseal);
        write_topic(&copy, "ledger", &records).await;
        write_topic(&copy, "roots", &root_records(&made.roots)).await;
        let (shadow_db, shadow) = shadow_database(&made.stack, "tamper_ledger_shadow").await;
        let (validator, log) = validate(&made.stack, &copy, &shadow_db, &[]);
        let ((kind, at, detail), log) = diverged(
            validator,
            &shadow,
            &copy,
            &made.stack,
            &log,
            &made.roots,
            lsn,
        )
        .await;
        if reseal {
            // The chain holds; the root computed from the edited row is not the published one.
            assert_eq!(kind, "root", "{detail}");
            assert_eq!(at, Some(lsn.to_string()));
            assert!(
                detail.contains("the roots topic publishes root"),
                "{detail}"
            );
        } else {
            // The record's hash no longer matches its content: the chain breaks there.
            let offset = made
                .ledger
                .iter()
                .position(|(_, v)| {
                    SealedEntry::from_bytes(v)
                        .unwrap()
                        .decode_entry()
                        .unwrap()
                        .commit_lsn
                        == lsn
                })
                .unwrap();
            assert_eq!(kind, "ledger", "{detail}");
            assert!(
                detail.contains(&format!("offset {offset}")),
                "names the record's offset {offset}: {detail}"
            );
        }
        assert!(
            log.contains("divergence: this validator stops attesting"),
            "{log}"
        );
        // A restart keeps it stopped.
        let (mut again, log) = validate(&made.stack, &copy, &shadow_db, &[]);
        wait_until(
            "the restarted validator to report the recorded divergence",
            WAIT,
            || async {
                Ok(std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("the shadow database records a divergence"))
            },
        )
        .await
        .unwrap();
        sigterm(&mut again);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_root_is_caught_at_its_transaction() {
    let made = make("tamper_root").await;
    let copy = TestTopics::new(&made.stack, "tamper_root_copy");
    write_topic(&copy, "ledger", &made.ledger).await;
    // Root 4 forged; root 5 chained to it, so the topic itself still looks consistent.
    let mut roots = made.roots.clone();
    roots[4].root = Digest([0x66; 32]);
    roots[5].previous_root = roots[4].root;
    write_topic(&copy, "roots", &root_records(&roots)).await;
    let (shadow_db, shadow) = shadow_database(&made.stack, "tamper_root_shadow").await;
    let (validator, log) = validate(&made.stack, &copy, &shadow_db, &[]);
    let forged = roots[4].commit_lsn;
    let ((kind, at, detail), _) = diverged(
        validator,
        &shadow,
        &copy,
        &made.stack,
        &log,
        &made.roots,
        forged,
    )
    .await;
    assert_eq!(kind, "root", "{detail}");
    assert_eq!(at, Some(forged.to_string()));
    assert!(
        detail.contains(&format!("publishes root {}", Digest([0x66; 32])))
            && detail.contains(&format!("this validator computed {}", made.roots[4].root)),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_row_changed_behind_the_validators_back_is_caught_by_the_audit() {
    let made = make("tamper_shadow").await;
    let (shadow_db, shadow) = shadow_database(&made.stack, "tamper_shadow_shadow").await;
    let (validator, log) = validate(
        &made.stack,
        &made.topics,
        &shadow_db,
        &["--audit-interval-ms", "200"],
    );
    let settings = KafkaSettings::new(&made.stack.kafka_brokers, made.topics.prefix());
    let last = made.roots.last().unwrap().commit_lsn;
    wait_attested(&settings, last, "every root attested").await;
    assert_eq!(divergence(&shadow).await, None);
    let tampered = Instant::now();
    shadow
        .batch_execute("UPDATE accounts SET balance = 1000000 WHERE id = 7")
        .await
        .unwrap();
    // Every root was attested before; the audit finds the row within a few periods.
    let ((kind, at, detail), _) = diverged(
        validator,
        &shadow,
        &made.topics,
        &made.stack,
        &log,
        &made.roots,
        Lsn::new(u64::MAX),
    )
    .await;
    eprintln!(
        "the audit found the changed row {:?} after the change",
        tampered.elapsed()
    );
    assert_eq!(kind, "audit", "{detail}");
    assert_eq!(at, Some(last.to_string()));
    assert_eq!(
        detail,
        "public.accounts key (id)=(7): column balance holds '1000000.00' in the shadow database, which is not the value the stream gave it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiset_row_duplicated_or_changed_behind_the_validators_back_is_caught_by_the_audit() {
    // No key, REPLICA IDENTITY FULL: a multiset, with identical rows (g and g + 12 agree), and
    // values whose `::text` is not their text output (boolean, char(n), inet).
    let made = make_from(
        "tamper_multiset",
        "CREATE TABLE events (kind text, flag boolean, code char(4), addr inet, amount numeric);
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO events SELECT CASE WHEN g % 3 = 0 THEN 'tick' ELSE 'boot' END, g % 2 = 0,
                                   'ab', '10.0.0.1/24', g % 4
           FROM generate_series(1, 20) g;",
        |i| {
            format!(
                "INSERT INTO events VALUES ('new', true, 'x', '192.168.0.{i}', {i});
                 UPDATE events SET amount = amount + 10
                  WHERE ctid = (SELECT ctid FROM events WHERE kind = 'boot' AND amount = {i} % 4 LIMIT 1);
                 DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE kind = 'tick' LIMIT 1);"
            )
        },
    )
    .await;
    let last = made.roots.last().unwrap().commit_lsn;
    let shown = "public.events row (kind, flag, code, addr, amount)";
    for (tamper, audit_rows, expected) in [
        // A duplicate of a row the stream inserted once.
        (
            "INSERT INTO events SELECT * FROM events WHERE kind = 'new' AND amount = 3",
            "10000",
            format!(
                "{shown}=(new, t, x   , 192.168.0.3, 3): the shadow database holds it 2 times, the stream gave it 1 time"
            ),
        ),
        // One row's value changed, found by a walk of four distinct rows per audit.
        (
            "UPDATE events SET amount = 1000000
              WHERE ctid = (SELECT ctid FROM events WHERE kind = 'new' AND amount = 5 LIMIT 1)",
            "4",
            format!(
                "{shown}=(new, t, x   , 192.168.0.5, 1000000) is in the shadow database (1 time) but not in the tree"
            ),
        ),
    ] {
        let copy = TestTopics::new(&made.stack, "tamper_multiset_copy");
        write_topic(&copy, "ledger", &made.ledger).await;
        write_topic(&copy, "roots", &root_records(&made.roots)).await;
        let (shadow_db, shadow) = shadow_database(&made.stack, "tamper_multiset_shadow").await;
        let (validator, log) = validate(
            &made.stack,
            &copy,
            &shadow_db,
            &["--audit-interval-ms", "200", "--audit-rows", audit_rows],
        );
        let settings = KafkaSettings::new(&made.stack.kafka_brokers, copy.prefix());
        wait_attested(&settings, last, "every root attested").await;
        // The audits so far found the shadow's multiset as the stream made it.
        assert_eq!(divergence(&shadow).await, None);
        let distinct: i64 = shadow
            .query_one(
                "SELECT count(*) FROM (SELECT DISTINCT kind, flag, code, addr::text, amount::text FROM events) d",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        shadow.batch_execute(tamper).await.unwrap();
        let tampered: String = shadow
            .query_one("SELECT clock_timestamp()::text", &[])
            .await
            .unwrap()
            .get(0);
        let ((kind, at, detail), log) = diverged(
            validator,
            &shadow,
            &copy,
            &made.stack,
            &log,
            &made.roots,
            Lsn::new(u64::MAX),
        )
        .await;
        // When the validator recorded it, by the database's clock: a few audit periods at most
        // (a pass over the table's distinct rows), not the test's generous wait.
        let found_after: f64 = shadow
            .query_one(
                "SELECT extract(epoch FROM min(found_at) - $1::text::timestamptz)::float8
                   FROM walproof_validator.divergences",
                &[&tampered],
            )
            .await
            .unwrap()
            .get(0);
        eprintln!(
            "the audit ({audit_rows} rows each, {distinct} distinct rows, every 200 ms) found the tampered multiset row {found_after:.3} s after the change"
        );
        assert!(found_after < 10.0, "found {found_after} s after the change");
        assert_eq!(kind, "audit", "{detail}");
        assert_eq!(at, Some(last.to_string()));
        assert_eq!(detail, expected, "{tamper}");
        assert!(
            log.contains("divergence: this validator stops attesting"),
            "{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_does_not_apply_to_the_shadow_is_a_replay_divergence() {
    let made = make("tamper_replay").await;
    // Each transaction after the snapshot is one record: inserts row 100 + i, updates row i.
    assert_eq!(made.ledger.len(), made.roots.len());
    for (case, expected) in [
        // Row 5 deleted behind the validator's back: transaction 5's update touches no row.
        (
            "DELETE FROM accounts WHERE id = 5",
            "update of public.accounts key (id)=(5) (change 1): touched 0 rows of the shadow database, the change says 1",
        ),
        // Row 105 inserted behind its back: transaction 5's insert conflicts with the key.
        (
            "INSERT INTO accounts VALUES (105, 'mallory', 0)",
            "insert of public.accounts (change 0): duplicate key value violates unique constraint",
        ),
    ] {
        let copy = TestTopics::new(&made.stack, "tamper_replay_copy");
        write_topic(&copy, "ledger", &made.ledger[..5]).await;
        write_topic(&copy, "roots", &root_records(&made.roots[..5])).await;
        let (shadow_db, shadow) = shadow_database(&made.stack, "tamper_replay_shadow").await;
        // No audit: the replay itself must find it.
        let (validator, log) = validate(
            &made.stack,
            &copy,
            &shadow_db,
            &["--audit-interval-ms", "0"],
        );
        let settings = KafkaSettings::new(&made.stack.kafka_brokers, copy.prefix());
        let fourth = made.roots[4].commit_lsn;
        wait_attested(&settings, fourth, "transactions 1 to 4 attested").await;
        shadow.batch_execute(case).await.unwrap();
        append_topic(&copy, "ledger", &made.ledger[5..]).await;
        append_topic(&copy, "roots", &root_records(&made.roots[5..])).await;
        let fifth = made.roots[5].commit_lsn;
        let ((kind, at, detail), _) = diverged(
            validator,
            &shadow,
            &copy,
            &made.stack,
            &log,
            &made.roots,
            fifth,
        )
        .await;
        assert_eq!(kind, "replay", "{detail}");
        assert_eq!(at, Some(fifth.to_string()));
        assert!(detail.starts_with(expected), "{case}: {detail}");
        // Rolled back whole: the shadow still stands at transaction 4.
        let progress: String = shadow
            .query_one(
                "SELECT commit_lsn::text FROM walproof_validator.progress",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(progress, fourth.to_string());
    }
}

/// Waits until an attestation of the root at `lsn` is on the topic.
async fn wait_attested(settings: &KafkaSettings, lsn: Lsn, what: &str) {
    wait_until(what, WAIT, || async {
        Ok(read_attestations(settings, Duration::from_secs(30))
            .await?
            .iter()
            .any(|(_, _, v)| SignedAttestation::from_json(v).unwrap().commit_lsn == lsn))
    })
    .await
    .unwrap();
}
