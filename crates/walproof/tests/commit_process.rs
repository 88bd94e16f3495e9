//! `walproof commit` as an operator runs it, with its store, killed with SIGKILL at random
//! points while a workload streams through `walproof decode`, and restarted each time. The
//! roots topic must hold one root per transaction — no LSN missing, none repeated — identical,
//! LSN for LSN, to the offline rebuild of `walproof roots`; restarts resume from the store.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Stdio;
use std::time::Duration;

use walproof_testkit::Stack;
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::stack::wait_until;
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::LedgerReader;
use walproof_transport::roots::read_roots;

const KILLS: usize = 10;
const WAIT: Duration = Duration::from_secs(90);

mod common;
use common::{restarts_logging, setup_and_decode, sigterm, source, walproof, xorshift};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_killed_at_random_points_publishes_every_root_once_as_the_rebuild_does() {
    let (stack, _db, topics, sql, env) = source(
        "commit_crash",
        "CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric);
         INSERT INTO orders SELECT g, 'new', g FROM generate_series(1, 100) g;
         CREATE TABLE lines (order_id int, sku text);
         ALTER TABLE lines REPLICA IDENTITY FULL;",
    )
    .await;
    let slot = env[1].1.clone();
    let mut decoder = setup_and_decode(&env);
    // The store, synced often so that kills land before and after syncs alike; each start's
    // log is kept to see where it resumed.
    let state_dir =
        std::env::temp_dir().join(format!("walproof-commit-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    let state = state_dir.join("committer").display().to_string();
    let mut starts = 0;
    let mut commit = || {
        starts += 1;
        let log = std::fs::File::create(state_dir.join(format!("start-{starts}.log"))).unwrap();
        walproof(
            &env,
            &["commit", "--state-dir", &state, "--sync-interval-ms", "40"],
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
    };
    std::fs::create_dir_all(&state_dir).unwrap();
    let mut committer = commit();

    // The workload, with the committer killed (SIGKILL) and restarted at random points.
    let mut random = xorshift(u64::from(std::process::id()));
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    let mut published_before = 0;
    for round in 0..KILLS {
        for i in 0..4 {
            let n = round * 4 + i;
            sql.batch_execute(&format!(
                "UPDATE orders SET status = 'paid', total = total + {n} WHERE id % 9 = {m};
                 DELETE FROM orders WHERE id = {n} + 1;
                 INSERT INTO orders VALUES ({n} + 1000, 'new', {n});
                 INSERT INTO lines VALUES ({n}, 'sku' || {m}), ({n}, 'sku' || {m});
                 DELETE FROM lines WHERE ctid IN (SELECT ctid FROM lines WHERE order_id = {n} LIMIT 1);",
                m = n % 9
            ))
            .await
            .unwrap();
        }
        // Killed only once it has published something of this round, at a random moment
        // after that (mid-publishing, often).
        wait_until("the committer to publish a root", WAIT, || async {
            let roots = read_roots(&settings, Duration::from_secs(30)).await?;
            Ok(roots.len() > published_before)
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(random(300))).await;
        committer.kill().unwrap();
        published_before = read_roots(&settings, Duration::from_secs(30))
            .await
            .unwrap()
            .len();
        committer.wait().unwrap();
        committer = commit();
    }
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &slot, target, WAIT)
        .await
        .unwrap();

    // Let the last committer catch up, then stop everything cleanly.
    let ledger = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(Duration::from_secs(30))
        .await
        .unwrap();
    let last = ledger.transactions.last().unwrap().commit_lsn;
    wait_until("the roots of every transaction", WAIT, || async {
        let roots = read_roots(&settings, Duration::from_secs(30)).await?;
        Ok(roots.last().is_some_and(|r| r.commit_lsn >= last))
    })
    .await
    .unwrap();
    sigterm(&mut committer);
    sigterm(&mut decoder);

    // read_roots refuses a repeated or out-of-order LSN and a broken chain of roots.
    let published = read_roots(&settings, Duration::from_secs(30))
        .await
        .unwrap();
    let rebuilt = walproof(&env, &["roots"]).output().unwrap();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let rebuilt: Vec<String> = String::from_utf8(rebuilt.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let published: Vec<String> = published
        .iter()
        .map(|r| format!("{} {} {}", r.commit_lsn, r.root, r.changes))
        .collect();
    assert_eq!(
        published.len(),
        ledger.transactions.len(),
        "one root per transaction"
    );
    assert_eq!(
        published, rebuilt,
        "the published roots are the offline rebuild's"
    );
    // Restarts resumed from the store, not from the ledger's start.
    let resumed = restarts_logging(&state_dir, KILLS, "kept=Some");
    assert!(
        resumed >= KILLS / 2,
        "only {resumed} restarts resumed from the store"
    );
    std::fs::remove_dir_all(&state_dir).unwrap();
}

#[test]
fn roots_of_a_prefix_without_a_ledger_is_an_error_naming_the_topic() {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let prefix = walproof_testkit::names::unique_name("noledger");
    let out = walproof(
        &[
            ("WALPROOF_KAFKA_BROKERS", stack.kafka_brokers.clone()),
            ("WALPROOF_TOPIC_PREFIX", prefix.clone()),
        ],
        &["roots"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("topic {prefix}.ledger does not exist")),
        "{stderr}"
    );
}

/// `[kafka.properties]` reaches the Kafka clients of every command, not only the decoder's, and
/// `[kafka.producer_properties]` / `[kafka.consumer_properties]` reach only producers / only
/// consumers: a property librdkafka does not know stops a command that has such a client with
/// an error naming it, once, and leaves a command without one running.
#[test]
fn every_command_applies_the_config_files_kafka_properties() {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let prefix = walproof_testkit::names::unique_name("kafkaprops");
    let dir = std::env::temp_dir().join(format!("walproof-kafka-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state_dir = dir.join("committer").display().to_string();
    let archive_dir = dir.join("archive").display().to_string();
    let commit = vec!["commit", "--state-dir", &state_dir, "--proof-addr", "off"];
    // `archive` has consumers only (it reads the ledger and writes files).
    let archive = vec!["archive", "--dir", &archive_dir];
    let roots = vec!["roots"];
    let cases = [
        ("properties", &commit, true),
        ("properties", &archive, true),
        ("properties", &roots, true),
        ("producer_properties", &commit, true),
        ("producer_properties", &archive, false),
        ("consumer_properties", &commit, true),
        ("consumer_properties", &archive, true),
    ];
    for (section, args, fails) in cases {
        let config = dir.join(format!("{section}.toml"));
        std::fs::write(
            &config,
            format!("[kafka.{section}]\n\"walproof.test.no.such.property\" = \"1\"\n"),
        )
        .unwrap();
        let mut child = walproof(
            &[
                ("WALPROOF_KAFKA_BROKERS", stack.kafka_brokers.clone()),
                ("WALPROOF_TOPIC_PREFIX", prefix.clone()),
                ("WALPROOF_CONFIG", config.display().to_string()),
            ],
            args,
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        // A command that ignored the property would run on: it gets 30 s to fail. One that
        // must not fail (an unknown property fails within a second) is stopped after 10 s.
        let wait = Duration::from_secs(if fails { 30 } else { 10 });
        let deadline = std::time::Instant::now() + wait;
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let stopped = child.try_wait().unwrap().is_some();
        if !stopped {
            child.kill().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let case = format!("[kafka.{section}] with {args:?}");
        if !fails {
            assert!(!stopped, "{case} stops: {stderr}");
            assert!(
                !stderr.contains("walproof.test.no.such.property"),
                "{case}: {stderr}"
            );
            continue;
        }
        assert!(
            stopped && !out.status.success(),
            "{case} runs on or succeeds: {stderr}"
        );
        assert_eq!(
            stderr.matches("No such configuration property").count(),
            1,
            "{case} names the property once: {stderr}"
        );
        assert!(
            stderr.contains("walproof.test.no.such.property"),
            "{case}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
