//! `walproof validate` as an operator runs it, beside `walproof decode` and `walproof commit`,
//! killed with SIGKILL at random points while a workload with DDL streams through, stopped
//! cleanly now and then (it writes its snapshot), and restarted each time: from its snapshot,
//! fresh or stale, once it has one. Afterwards the shadow database equals the source table by
//! table, and every root of the ledger was reproduced and signed exactly once.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Child, Stdio};
use std::time::Duration;

use walproof_core::Lsn;
use walproof_testkit::TestDatabase;
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::stack::wait_until;
use walproof_transport::KafkaSettings;
use walproof_transport::attestations::read_attestations;
use walproof_transport::ledger::LedgerReader;
use walproof_transport::roots::read_roots;
use walproof_validator::attestation::{Domain, SignedAttestation};

const KILLS: usize = 10;
/// Rounds that end in a clean stop (SIGTERM) instead of a kill.
const CLEAN_STOPS: [usize; 4] = [2, 5, 8, 11];
const WAIT: Duration = Duration::from_secs(120);

mod common;
use common::{restarts_logging, setup_and_decode, sigterm, source, walproof, xorshift};

/// anvil's first development key: public knowledge, for tests only.
pub(crate) const TEST_KEY: &str =
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Its address.
pub(crate) const TEST_ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// anvil's second development key, for a second validator.
const SECOND_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
/// Its address.
const SECOND_ADDRESS: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

const SCHEMA: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TABLE orders (
        id int PRIMARY KEY, status text, total numeric(12,2), at timestamptz, paid bool,
        code char(3), addr inet, doc jsonb, big text, tags text[], feeling mood, spare int);
    INSERT INTO orders
        SELECT g, 'new', g, '2024-01-01', g % 2 = 0, 'ab', ('10.0.0.' || g)::inet,
               jsonb_build_object('n', g),
               (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 200) i),
               ARRAY['a', NULL], 'ok'
        FROM generate_series(1, 100) g;
    CREATE TABLE lines (order_id int, sku text, flag bool, code char(4), tags text[]);
    ALTER TABLE lines REPLICA IDENTITY FULL;
    INSERT INTO lines SELECT g % 10, 'sku' || g, g % 3 = 0, 'x', NULL FROM generate_series(1, 30) g;";

/// The shadow database's URL, and a session on it.
async fn shadow_database(
    stack: &walproof_testkit::Stack,
    test: &str,
) -> (TestDatabase, String, tokio_postgres::Client) {
    let db = TestDatabase::create(stack, test).await.unwrap();
    let (host, port, user) = db.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    let sql = db.connect().await.unwrap();
    (db, url, sql)
}

/// The commit LSN the shadow database's progress row names, if it has one yet.
async fn shadow_progress(shadow: &tokio_postgres::Client) -> Option<Lsn> {
    let rows = shadow
        .query(
            "SELECT commit_lsn::text FROM walproof_validator.progress",
            &[],
        )
        .await
        .ok()?;
    rows.first().map(|r| r.get::<_, String>(0).parse().unwrap())
}

/// Fails the test, quoting it, as soon as the validator records a divergence.
async fn no_divergence(shadow: &tokio_postgres::Client) {
    let recorded: Vec<String> = shadow
        .query(
            "SELECT kind || ' at ' || coalesce(commit_lsn::text, '-') || ': ' || detail
             FROM walproof_validator.divergences",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    assert!(recorded.is_empty(), "the validator diverged: {recorded:?}");
}

/// The attestations `address` published, in offset order.
async fn attested(settings: &KafkaSettings, address: &str) -> Vec<SignedAttestation> {
    read_attestations(settings, Duration::from_secs(30))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, value)| SignedAttestation::from_json(&value).unwrap())
        .filter(|a| a.validator.to_checksum(None) == address)
        .collect()
}

/// A table's rows as canonical text, sorted, with the source's column list.
async fn table_rows(
    source: &tokio_postgres::Client,
    other: &tokio_postgres::Client,
    table: &str,
) -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
    let columns: String = source
        .query_one(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    let query = format!("SELECT {columns} FROM {table}");
    let mut sides = Vec::new();
    for client in [source, other] {
        let mut rows: Vec<Vec<Option<String>>> = client
            .simple_query(&query)
            .await
            .unwrap_or_else(|err| panic!("{query}: {err}"))
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        rows.sort();
        sides.push(rows);
    }
    let shadow = sides.pop().unwrap();
    (sides.pop().unwrap(), shadow)
}

/// Waits until the validator logging to `log` has caught up with the ledger, its `shadow`
/// recording no divergence meanwhile.
async fn caught_up(what: &str, shadow: &tokio_postgres::Client, log: &std::path::Path) {
    wait_until(what, WAIT, || async {
        no_divergence(shadow).await;
        Ok(std::fs::read_to_string(log)
            .unwrap()
            .contains("validator caught up with the ledger"))
    })
    .await
    .unwrap();
}

/// Waits until the validator logging to `log` has written a snapshot while running.
async fn snapshot_written(log: &std::path::Path) {
    wait_until("a snapshot written while running", WAIT, || async {
        Ok(std::fs::read_to_string(log)
            .unwrap()
            .contains("snapshot written"))
    })
    .await
    .unwrap();
}

/// A validator's own state directory (its snapshot), named after its shadow database.
pub(crate) fn state_dir(shadow_url: &str) -> String {
    let name = shadow_url.rsplit('/').next().unwrap();
    let dir = std::env::temp_dir().join(format!("walproof-validator-{name}"));
    dir.to_str().unwrap().to_owned()
}

/// `walproof validate` with the test key, its log in `log`.
pub(crate) fn validate(
    env: &[(&str, String)],
    shadow_url: &str,
    extra: &[&str],
    log: std::fs::File,
) -> Child {
    validate_with(env, shadow_url, TEST_KEY, extra, log)
}

/// `walproof validate` with `key`.
fn validate_with(
    env: &[(&str, String)],
    shadow_url: &str,
    key: &str,
    extra: &[&str],
    log: std::fs::File,
) -> Child {
    let state = state_dir(shadow_url);
    let mut args = vec!["validate", "--shadow-url", shadow_url, "--http-addr", "off"];
    args.extend_from_slice(&["--state-dir", &state]);
    args.extend_from_slice(extra);
    walproof(env, &args)
        .env("WALPROOF_VALIDATOR_KEY", key)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_killed_at_random_points_reproduces_and_signs_every_root_once() {
    let (stack, _db, topics, sql, env) = source("validate_crash", SCHEMA).await;
    let (_shadow_db, shadow_url, shadow) = shadow_database(&stack, "validate_crash_shadow").await;
    let _ = std::fs::remove_dir_all(state_dir(&shadow_url));
    let slot = env[1].1.clone();
    let mut decoder = setup_and_decode(&env);
    let mut committer = walproof(&env, &["commit", "--in-memory", "--proof-addr", "off"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("walproof-validate-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut starts = 0;
    let mut start = || {
        starts += 1;
        let log = std::fs::File::create(dir.join(format!("start-{starts}.log"))).unwrap();
        validate(&env, &shadow_url, &["--audit-interval-ms", "200"], log)
    };
    let mut validator = start();
    // A second validator with its own shadow database and key, writing a snapshot every
    // half second while it runs; killed midway (it resumes from a snapshot and replays the
    // rest of the load) and at the end.
    let (_second_db, second_url, second_shadow) =
        shadow_database(&stack, "validate_crash_second_shadow").await;
    let _ = std::fs::remove_dir_all(state_dir(&second_url));
    let start_second = |log: &str| {
        validate_with(
            &env,
            &second_url,
            SECOND_KEY,
            &["--snapshot-interval-ms", "500"],
            std::fs::File::create(dir.join(log)).unwrap(),
        )
    };
    let mut second = start_second("second.log");

    let mut random = xorshift(u64::from(std::process::id()));
    let mut applied_before = None;
    let rounds = KILLS + CLEAN_STOPS.len();
    for round in 0..rounds {
        for i in 0..4 {
            let n = round * 4 + i;
            sql.batch_execute(&format!(
                "UPDATE orders SET status = 'paid', total = total + {n}, paid = NOT paid,
                     feeling = 'happy' WHERE id % 9 = {m};
                 UPDATE orders SET id = id + 10000 WHERE id = {n} + 40;
                 DELETE FROM orders WHERE id = {n} + 1;
                 INSERT INTO orders (id, status, total, at, paid, code, addr, doc, tags, feeling)
                     VALUES ({n} + 1000, E'it''s \\\\ new', {n}.5, now(), NULL, 'z', '::1', '[1, {{}}]',
                             ARRAY['{{}}', 'a b'], 'sad');
                 INSERT INTO lines VALUES ({n}, 'sku' || {m}, true, 'ab', ARRAY['a', NULL]),
                                          ({n}, 'sku' || {m}, true, 'ab', ARRAY['a', NULL]);
                 DELETE FROM lines WHERE ctid IN (SELECT ctid FROM lines WHERE order_id = {n} LIMIT 1);
                 UPDATE lines SET flag = false WHERE ctid IN
                     (SELECT ctid FROM lines WHERE order_id = {m} LIMIT 1);",
                m = n % 9
            ))
            .await
            .unwrap();
        }
        match round {
            2 => sql
                .batch_execute(
                    "ALTER TABLE orders ADD COLUMN note text;
                     ALTER TABLE orders RENAME COLUMN note TO memo;
                     UPDATE orders SET memo = 'renamed' WHERE id % 5 = 0;",
                )
                .await
                .unwrap(),
            4 => sql
                .batch_execute(
                    // A volatile default rewrites every row: they follow in the stream.
                    "ALTER TABLE orders ADD COLUMN added timestamptz DEFAULT clock_timestamp();
                     CREATE TABLE extra (k text PRIMARY KEY, v int);
                     INSERT INTO extra VALUES ('a', 1), ('b', 2);",
                )
                .await
                .unwrap(),
            6 => sql
                .batch_execute(
                    "ALTER TABLE orders DROP COLUMN spare;
                     UPDATE extra SET v = v + 1; DELETE FROM extra WHERE k = 'a';
                     TRUNCATE lines;
                     INSERT INTO lines VALUES (1, 'after truncate', false, 'q', NULL);",
                )
                .await
                .unwrap(),
            _ => {}
        }
        // Killed once it has applied something of this round, at a random moment after.
        wait_until("the validator to apply a transaction", WAIT, || async {
            no_divergence(&shadow).await;
            Ok(shadow_progress(&shadow)
                .await
                .is_some_and(|lsn| Some(lsn) > applied_before))
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(random(300))).await;
        if CLEAN_STOPS.contains(&round) {
            sigterm(&mut validator);
        } else {
            validator.kill().unwrap();
            validator.wait().unwrap();
        }
        applied_before = shadow_progress(&shadow).await;
        validator = start();
        if round == rounds / 2 {
            snapshot_written(&dir.join("second.log")).await;
            second.kill().unwrap();
            second.wait().unwrap();
            second = start_second("second-2.log");
        }
    }
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &slot, target, WAIT)
        .await
        .unwrap();
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    let ledger = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(Duration::from_secs(30))
        .await
        .unwrap();
    let lsns: Vec<Lsn> = ledger.transactions.iter().map(|t| t.commit_lsn).collect();
    let last = *lsns.last().unwrap();
    wait_until("the validator to attest the last root", WAIT, || async {
        no_divergence(&shadow).await;
        no_divergence(&second_shadow).await;
        Ok(attested(&settings, TEST_ADDRESS)
            .await
            .iter()
            .any(|a| a.commit_lsn == last)
            && attested(&settings, SECOND_ADDRESS)
                .await
                .iter()
                .any(|a| a.commit_lsn == last))
    })
    .await
    .unwrap();
    sigterm(&mut validator);
    // The second validator, killed again after the load, resumes from a snapshot it wrote
    // while running. Both its restarts resumed from one: the first, midway, then replayed
    // the rest of the load (each root signed once, checked below).
    snapshot_written(&dir.join("second-2.log")).await;
    second.kill().unwrap();
    second.wait().unwrap();
    second = start_second("second-3.log");
    caught_up(
        "the second validator to catch up from its snapshot",
        &second_shadow,
        &dir.join("second-3.log"),
    )
    .await;
    sigterm(&mut second);
    for restart in ["second-2.log", "second-3.log"] {
        let resumed = std::fs::read_to_string(dir.join(restart)).unwrap();
        assert!(
            resumed.contains("resuming from its snapshot"),
            "{restart}: {resumed}"
        );
    }

    // A damaged snapshot is set aside: the ledger is read from its first record, and the
    // validator catches up with no divergence and nothing signed twice (checked below).
    let snapshot = std::path::Path::new(&state_dir(&shadow_url)).join("snapshot");
    let nodes = std::fs::read_dir(&snapshot)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_str().unwrap().contains("nodes."))
        .expect("the last clean stop wrote a snapshot");
    let mut bytes = std::fs::read(&nodes).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&nodes, bytes).unwrap();
    let damaged = rounds + 2;
    validator = start();
    let log = dir.join(format!("start-{damaged}.log"));
    caught_up(
        "the validator to catch up after its snapshot was damaged",
        &shadow,
        &log,
    )
    .await;
    sigterm(&mut validator);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("the snapshot is set aside")
            && log.contains("reading the ledger from its first record"),
        "{log}"
    );
    sigterm(&mut committer);
    sigterm(&mut decoder);

    // The shadow equals the source, table by table, as canonical text.
    let canonical = walproof_core::value::canonical_set_statements();
    sql.batch_execute(&canonical).await.unwrap();
    shadow.batch_execute(&canonical).await.unwrap();
    second_shadow.batch_execute(&canonical).await.unwrap();
    for table in ["orders", "lines", "extra"] {
        let (source_rows, shadow_rows) = table_rows(&sql, &shadow, table).await;
        assert!(!source_rows.is_empty(), "{table} has rows");
        assert_eq!(shadow_rows, source_rows, "{table}: shadow vs source");
        let (_, second_rows) = table_rows(&sql, &second_shadow, table).await;
        assert_eq!(second_rows, source_rows, "{table}: second shadow vs source");
    }

    // Every root reproduced and signed exactly once by each validator, each signature valid
    // for the domain.
    let roots = read_roots(&settings, Duration::from_secs(30))
        .await
        .unwrap();
    let domain = Domain::new(31337, alloy::primitives::Address::ZERO);
    for address in [TEST_ADDRESS, SECOND_ADDRESS] {
        let attestations = attested(&settings, address).await;
        let signed: Vec<Lsn> = attestations.iter().map(|a| a.commit_lsn).collect();
        assert_eq!(
            signed, lsns,
            "one attestation per transaction by {address}, in order"
        );
        for (attestation, root) in attestations.iter().zip(&roots) {
            assert_eq!(
                attestation.verify(&domain).unwrap().to_checksum(None),
                address
            );
            assert_eq!(
                (
                    attestation.commit_lsn,
                    attestation.root,
                    attestation.ledger_hash
                ),
                (root.commit_lsn, root.root, root.ledger_hash)
            );
        }
    }
    no_divergence(&shadow).await;
    let resumed = restarts_logging(&dir, rounds, "resumes after its last transaction");
    assert!(
        resumed >= rounds / 2,
        "only {resumed} restarts resumed from the shadow's progress"
    );
    // Each clean stop wrote a snapshot; every start after the first one resumed from a
    // snapshot, the last written (after a kill, one older than the shadow).
    for round in CLEAN_STOPS {
        let stopped =
            std::fs::read_to_string(dir.join(format!("start-{}.log", round + 1))).unwrap();
        assert!(
            stopped.contains("snapshot written"),
            "round {round}: {stopped}"
        );
    }
    let from_snapshot = restarts_logging(&dir, rounds, "resuming from its snapshot");
    assert_eq!(
        from_snapshot,
        rounds - CLEAN_STOPS[0],
        "starts that resumed from a snapshot"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = std::fs::remove_dir_all(state_dir(&shadow_url));
    let _ = std::fs::remove_dir_all(state_dir(&second_url));
}
