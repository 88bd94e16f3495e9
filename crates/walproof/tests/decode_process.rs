//! The `walproof` binary as an operator runs it: `setup`, then `decode` killed with SIGKILL at
//! random points under a running workload and restarted, then stopped with SIGTERM. The ledger,
//! read as consumers read it, must hold every source transaction exactly once, in order, with
//! the chain verifying across all restarts, and replay to the source's tables.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use walproof_core::{Relation, Value};
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::model::Model;
use walproof_testkit::topics::TestTopics;
use walproof_testkit::{Stack, TestDatabase};
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::LedgerReader;

const BIN: &str = env!("CARGO_BIN_EXE_walproof");
const KILLS: usize = 12;

struct Source {
    url: String,
    slot: String,
    brokers: String,
    prefix: String,
    log_dir: std::path::PathBuf,
}

impl Source {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("WALPROOF_SOURCE_URL", &self.url)
            .env("WALPROOF_SLOT", &self.slot)
            .env("WALPROOF_PUBLICATION", "crash_pub")
            .env("WALPROOF_KAFKA_BROKERS", &self.brokers)
            .env("WALPROOF_TOPIC_PREFIX", &self.prefix)
            .env("RUST_LOG", "info");
        command
    }

    fn decode(&self, run: usize, metrics_addr: &str, snapshot_mode: &str) -> Child {
        let log = std::fs::File::create(self.log_dir.join(format!("decode-{run}.log"))).unwrap();
        self.command(&[
            "decode",
            "--snapshot-mode",
            snapshot_mode,
            "--max-entry-bytes",
            "2048",
            // Small producer batches: a big transaction spans several, so a kill can leave a
            // partial run in the ledger for the next start to abandon.
            "--batch-bytes",
            "8192",
            "--spill-threshold-bytes",
            "65536",
            "--status-interval-ms",
            "100",
            "--metrics-addr",
            metrics_addr,
            "--spill-dir",
            self.log_dir.join("spill").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
    }
}

/// A private database with `schema`, a topic prefix, a session, and the `walproof` settings
/// pointing at them.
async fn prepared(
    test: &str,
    schema: &str,
) -> (TestDatabase, TestTopics, tokio_postgres::Client, Source) {
    let stack = Stack::load().unwrap_or_else(|err| panic!("{err:#}"));
    let db = TestDatabase::create(&stack, test).await.unwrap();
    let sql = db.connect().await.unwrap();
    sql.batch_execute(schema).await.unwrap();
    let topics = TestTopics::new(&stack, test);
    let (host, port, user) = db.host_port_user();
    let log_dir = std::env::temp_dir().join(format!("walproof-crash-{}", db.name()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let source = Source {
        url: format!("postgres://{user}@{host}:{port}/{}", db.name()),
        slot: db.slot_name("slot"),
        brokers: stack.kafka_brokers.clone(),
        prefix: topics.prefix().to_owned(),
        log_dir,
    };
    (db, topics, sql, source)
}

/// Stops the workload when the test ends, however it ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// A free loopback port for the metrics endpoint.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn scrape(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_killed_at_random_points_still_writes_every_transaction_once_in_order() {
    let (db, _topics, sql, source) = prepared(
        "crash",
        "CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric, note text);
         CREATE TABLE lines (order_id int, sku text, qty int);
         ALTER TABLE lines REPLICA IDENTITY FULL;",
    )
    .await;

    // walproof setup: a dry run changes nothing, the real run prepares the source, and a second
    // run finds everything in place.
    let dry = source.command(&["setup", "--dry-run"]).output().unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("CREATE PUBLICATION crash_pub"));
    let setup = source.command(&["setup"]).output().unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stdout)
    );
    let again = source.command(&["setup"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // A workload that runs until told to stop (also if this test fails), recording the xid of
    // every commit.
    let running = Arc::new(AtomicBool::new(true));
    let _stop_workload = StopOnDrop(running.clone());
    let workload = {
        let running = running.clone();
        let mut client = db.connect().await.unwrap();
        tokio::spawn(async move {
            let mut xids = BTreeSet::new();
            let mut n: u64 = 0;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let id = n % 400;
                // Every transaction touches a published table, so none is empty.
                let body = match n % 9 {
                    0 => format!(
                        "INSERT INTO lines SELECT {id}, 'bulk-' || g, g FROM generate_series(1, 1000) g"
                    ),
                    1 | 2 => format!(
                        "INSERT INTO orders VALUES ({id}, 'new', {n}, repeat('n', {})) \
                         ON CONFLICT (id) DO UPDATE SET status = 'again', total = orders.total + 1",
                        n % 50
                    ),
                    3 => format!(
                        "UPDATE orders SET status = 'paid', total = total * 2 WHERE id % 13 = {}",
                        id % 13
                    ),
                    4 => format!("DELETE FROM orders WHERE id % 17 = {}", id % 17),
                    5 => format!("INSERT INTO lines VALUES ({id}, 'sku-{n}', {})", n % 7),
                    6 => format!("DELETE FROM lines WHERE order_id = {id}"),
                    7 => format!("UPDATE orders SET id = id + 100000 WHERE id = {id}"),
                    _ => format!("INSERT INTO lines VALUES ({id}, 'dup', 1), ({id}, 'dup', 1)"),
                };
                // The marker row makes every transaction touch a published table (never empty).
                let committed = async {
                    let tx = client.transaction().await?;
                    tx.batch_execute(&body).await?;
                    tx.execute("INSERT INTO lines VALUES (-1, 'tx', 0)", &[])
                        .await?;
                    let xid: i64 = tx
                        .query_one("SELECT txid_current() & 4294967295", &[])
                        .await?
                        .get(0);
                    tx.commit().await?;
                    Ok::<_, tokio_postgres::Error>(xid as u32)
                };
                // A statement that fails (a key collision) rolls its transaction back: not committed.
                if let Ok(xid) = committed.await {
                    xids.insert(xid);
                }
            }
            xids
        })
    };

    // Kill the decoder with SIGKILL at random points, restarting it each time.
    let mut seed: u64 = 0x0DEC_0DE5_1234_5678;
    for run in 0..KILLS {
        // The workload runs from before the first start: no snapshot, the stream from the slot.
        let mut child = source.decode(run, "off", "never");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(300 + seed % 1500)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "decoder run {run} exited early; see {}",
            source.log_dir.display()
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    running.store(false, Ordering::Relaxed);
    let committed = workload.await.unwrap();
    assert!(
        committed.len() > 100,
        "the workload committed {} transactions",
        committed.len()
    );

    // A last run catches up and is stopped with SIGTERM.
    let metrics_addr = free_address();
    let mut last = source.decode(KILLS, &metrics_addr, "never");
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &source.slot, target, Duration::from_secs(120))
        .await
        .unwrap();
    let metrics = scrape(&metrics_addr);
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        metrics.contains("walproof_decoder_changes_total"),
        "{metrics}"
    );
    let terminated = Command::new("kill")
        .args(["-TERM", &last.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = last.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM stops cleanly with exit 0; see {}",
        source.log_dir.display()
    );

    // The ledger as consumers read it: chain verified, whole transactions, abandoned runs voided.
    let settings = KafkaSettings::new(&source.brokers, &source.prefix);
    let contents = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(Duration::from_secs(30))
        .await
        .unwrap();
    let ledger_xids: Vec<u32> = contents.transactions.iter().map(|t| t.xid).collect();
    let unique: BTreeSet<u32> = ledger_xids.iter().copied().collect();
    assert_eq!(unique.len(), ledger_xids.len(), "no transaction twice");
    assert!(
        contents
            .transactions
            .windows(2)
            .all(|w| w[0].commit_lsn < w[1].commit_lsn),
        "in commit order"
    );
    assert_eq!(
        unique, committed,
        "exactly the committed source transactions, none missing"
    );

    let (model, relations) = Model::replay(&contents.transactions).unwrap();
    assert_eq!(
        model,
        Model::from_source(&sql, &relations).await.unwrap(),
        "the ledger replays to the source"
    );
    let marker_rows = contents
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .filter(|c| matches!(&c.op, walproof_core::Op::Insert { new, .. } if new.0.first() == Some(&Value::from("-1"))))
        .count();
    assert_eq!(
        marker_rows,
        committed.len(),
        "one marker row per transaction"
    );
    eprintln!(
        "crash test: {} transactions, {} records, {} abandoned runs over {KILLS} kills",
        contents.transactions.len(),
        contents.records,
        contents.abandoned.len()
    );
    let _ = std::fs::remove_dir_all(&source.log_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_killed_during_the_initial_snapshot_neither_loses_nor_duplicates_rows() {
    let (_db, _topics, sql, source) = prepared(
        "crash_snapshot",
        "CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric, note text);
         CREATE TABLE lines (order_id int, sku text, qty int);
         ALTER TABLE lines REPLICA IDENTITY FULL;
         INSERT INTO orders SELECT g, 'old', g * 1.5, md5(g::text) FROM generate_series(1, 300000) g;
         INSERT INTO lines SELECT g % 1000, 'sku', 1 FROM generate_series(1, 20000) g;",
    )
    .await;
    let setup = source.command(&["setup"]).output().unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stdout)
    );

    // SIGKILL while the snapshot is being copied, three times.
    let mut killed_mid_snapshot = 0;
    for (run, wait_ms) in [700u64, 1300, 2100].into_iter().enumerate() {
        let mut child = source.decode(run, "off", "initial_only");
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_snapshot += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
    }
    assert!(
        killed_mid_snapshot > 0,
        "at least one kill landed during the snapshot"
    );
    // A last run writes the snapshot whole and stops by itself.
    let status = source.decode(3, "off", "initial_only").wait().unwrap();
    assert!(status.success(), "see {}", source.log_dir.display());

    let settings = KafkaSettings::new(&source.brokers, &source.prefix);
    let contents = LedgerReader::from_start(&settings)
        .unwrap()
        .read_to_end(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(contents.transactions.len(), 1, "one whole snapshot");
    assert_eq!(
        contents.transactions[0].changes.len(),
        320_000,
        "every row once"
    );
    let mut model = Model::default();
    model.apply(&contents.transactions[0]).unwrap();
    let relations: Vec<Relation> = contents.transactions[0]
        .relations
        .values()
        .cloned()
        .collect();
    assert_eq!(model, Model::from_source(&sql, &relations).await.unwrap());
    eprintln!(
        "snapshot crash test: {killed_mid_snapshot} kills during the snapshot, {} abandoned runs, {} records",
        contents.abandoned.len(),
        contents.records
    );
    let _ = std::fs::remove_dir_all(&source.log_dir);
}
