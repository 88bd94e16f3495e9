//! `walproof archive` as an operator runs it, into a local directory, killed with SIGKILL at
//! random points while a workload streams through `walproof decode` (DDL included, one of
//! which rewrites every row), and restarted each time.
//! Afterwards every change of the ledger is in exactly one Parquet file of the directory — read
//! back with the Parquet reader, every `*.parquet` file as a query engine's glob would — and
//! every file is in the index `walproof archive ls` reads.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use arrow::array::AsArray as _;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use walproof_archive::archiver::Index;
use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::stack::wait_until;
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::LedgerReader;

const KILLS: usize = 10;
const WAIT: Duration = Duration::from_secs(90);

mod common;
use common::{python, restarts_logging, setup_and_decode, sigterm, source, walproof, xorshift};

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            parquet_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

fn index(dir: &Path, prefix: &str) -> Option<Index> {
    let bytes = std::fs::read(dir.join(prefix).join("_walproof/index.json")).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Each table of the archive under `root` folded by DuckDB (`archive_duckdb.py`, `specs` as
/// `schema.table=key columns|-`): its rows, sorted.
fn fold_with_duckdb(root: &str, prefix: &str, specs: &[&str]) -> BTreeMap<String, Vec<Row>> {
    let folded = std::process::Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/archive_duckdb.py"
        ))
        .args([root, prefix])
        .args(specs)
        .output()
        .unwrap();
    assert!(
        folded.status.success(),
        "{}",
        String::from_utf8_lossy(&folded.stderr)
    );
    serde_json::from_slice(&folded.stdout).unwrap()
}

/// A row as text values, NULL as `None`.
type Row = Vec<Option<String>>;

/// The rows `query` gives on the source, each value as text, sorted as the fold sorts them.
async fn source_rows(sql: &tokio_postgres::Client, query: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = sql
        .query(query, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
        .collect();
    rows.sort_by_key(|r| {
        r.iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_killed_at_random_points_holds_every_change_exactly_once() {
    let (stack, _db, topics, sql, env) = source(
        "archive_crash",
        "CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric(12,2), at timestamptz);
         INSERT INTO orders SELECT g, 'new', g, '2024-01-01' FROM generate_series(1, 100) g;
         CREATE TABLE lines (order_id int, sku text, tags text[]);
         ALTER TABLE lines REPLICA IDENTITY FULL;",
    )
    .await;
    let slot = env[1].1.clone();
    let mut decoder = setup_and_decode(&env);
    let dir = std::env::temp_dir().join(format!("walproof-archive-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let archive_dir = dir.join("archive");
    let archive_arg = archive_dir.display().to_string();
    let mut starts = 0;
    let mut archive = || {
        starts += 1;
        let log = std::fs::File::create(dir.join(format!("start-{starts}.log"))).unwrap();
        walproof(
            &env,
            &[
                "archive",
                "--dir",
                &archive_arg,
                "--roll-interval-ms",
                "100",
            ],
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
    };
    let mut archiver = archive();
    let prefix = topics.prefix().to_owned();

    let mut random = xorshift(u64::from(std::process::id()));
    let mut rolled_before = 0;
    for round in 0..KILLS {
        for i in 0..4 {
            let n = round * 4 + i;
            sql.batch_execute(&format!(
                "UPDATE orders SET status = 'paid', total = total + {n} WHERE id % 9 = {m};
                 DELETE FROM orders WHERE id = {n} + 1;
                 INSERT INTO orders VALUES ({n} + 1000, 'new', {n}.5, now());
                 INSERT INTO lines VALUES ({n}, 'sku' || {m}, ARRAY['a', NULL]), ({n}, 'sku' || {m}, NULL);
                 DELETE FROM lines WHERE ctid IN (SELECT ctid FROM lines WHERE order_id = {n} LIMIT 1);",
                m = n % 9
            ))
            .await
            .unwrap();
        }
        if round == KILLS / 2 {
            // A column without a default, and one whose volatile default rewrites every row:
            // the decoder sends the table's rows again (a truncate, then each row).
            sql.batch_execute(
                "TRUNCATE lines; ALTER TABLE orders ADD COLUMN note text;
                 ALTER TABLE orders ADD COLUMN added timestamptz DEFAULT clock_timestamp();",
            )
            .await
            .unwrap();
        }
        // Killed once it has rolled something of this round, at a random moment after.
        wait_until("the archiver to roll", WAIT, || async {
            Ok(index(&archive_dir, &prefix).is_some_and(|i| i.files.len() > rolled_before))
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(random(300))).await;
        archiver.kill().unwrap();
        archiver.wait().unwrap();
        rolled_before = index(&archive_dir, &prefix).map_or(0, |i| i.files.len());
        archiver = archive();
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
    let last = ledger.transactions.last().unwrap().commit_lsn;
    wait_until("the archive through the last transaction", WAIT, || async {
        Ok(index(&archive_dir, &prefix)
            .and_then(|i| i.position)
            .is_some_and(|p| p.commit_lsn >= last))
    })
    .await
    .unwrap();
    sigterm(&mut archiver);
    sigterm(&mut decoder);

    // What the ledger holds: (table, commit LSN, ordinal) of every change, a truncate once per
    // table.
    let mut expected: BTreeMap<(String, i64, i64), usize> = BTreeMap::new();
    for transaction in &ledger.transactions {
        for change in &transaction.changes {
            for id in change.op.relations() {
                let rel = &transaction.relations[id];
                let key = (
                    format!("{}.{}", rel.schema, rel.name),
                    transaction.commit_lsn.as_u64() as i64,
                    i64::from(change.ordinal),
                );
                *expected.entry(key).or_default() += 1;
            }
        }
    }
    // What every Parquet file in the directory holds.
    let mut files = Vec::new();
    parquet_files(&archive_dir, &mut files);
    let mut archived: BTreeMap<(String, i64, i64), usize> = BTreeMap::new();
    for file in &files {
        let table = file
            .strip_prefix(archive_dir.join(&prefix))
            .unwrap()
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let bytes = bytes::Bytes::from(std::fs::read(file).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let lsns = batch
                .column_by_name("__lsn")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let ordinals = batch
                .column_by_name("__ordinal")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            for row in 0..batch.num_rows() {
                let key = (table.clone(), lsns.value(row), ordinals.value(row));
                *archived.entry(key).or_default() += 1;
            }
        }
    }
    let repeated: Vec<_> = archived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} changes archived more than once, e.g. {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(5)]
    );
    assert_eq!(
        archived.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every change of the ledger, and nothing else"
    );
    assert!(expected.keys().any(|(t, ..)| t == "public.lines"));

    // The index lists every file in the directory, and `archive ls` prints it.
    let index = index(&archive_dir, &prefix).unwrap();
    let mut listed: Vec<PathBuf> = index
        .files
        .iter()
        .map(|m| archive_dir.join(&m.object))
        .collect();
    listed.sort();
    files.sort();
    assert_eq!(listed, files, "no file outside the index");
    let ls = walproof(&env, &["archive", "ls", "--dir", &archive_arg])
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let ls = String::from_utf8(ls.stdout).unwrap();
    assert_eq!(ls.lines().count(), index.files.len() + 1, "{ls}");
    assert!(ls.contains(&format!("through {last}")), "{ls}");
    // DuckDB reads the archive, and each table folded from its changes equals the source.
    let folded = fold_with_duckdb(
        &archive_arg,
        &prefix,
        &["public.orders=id", "public.lines=-"],
    );
    for (table, query) in [
        (
            "public.orders",
            "SELECT id::text, status, total::text, at::text, note, added::text FROM orders",
        ),
        (
            "public.lines",
            "SELECT order_id::text, sku, tags::text FROM lines",
        ),
    ] {
        let source = source_rows(&sql, query).await;
        assert!(!source.is_empty() || table == "public.lines");
        assert_eq!(
            folded[table], source,
            "{table}: the archive read by DuckDB vs the source"
        );
    }

    // Restarts resumed from the index, not from the ledger's start.
    let resumed = restarts_logging(&dir, KILLS, "position=Some");
    assert!(
        resumed >= KILLS / 2,
        "only {resumed} restarts resumed from the index"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same archive in a Google Cloud Storage bucket (the emulator, through the official
/// client), sealed with a secret: every object there is sealed, opens with the secret into the
/// file its manifest's digest names, and `walproof archive ls` / `get` read the bucket with the
/// secret and are refused without it or with another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_into_a_gcs_bucket_sealed_reads_back_with_its_secret_only() {
    use walproof_archive::objects::Objects;
    use walproof_archive::seal::{Sealer, is_sealed};
    let (stack, _db, topics, sql, env) = source(
        "archive_gcs",
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(8,2));
         INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 50) g;",
    )
    .await;
    let slot = env[1].1.clone();
    let bucket = walproof_testkit::TestBucket::create(&stack, "archive_gcs")
        .await
        .unwrap();
    let mut decoder = setup_and_decode(&env);
    let secrets = std::env::temp_dir().join(format!("walproof-archive-gcs-{}", std::process::id()));
    std::fs::create_dir_all(&secrets).unwrap();
    let secret = secrets.join("secret");
    let other = secrets.join("other");
    std::fs::write(&secret, [0x5a; 32]).unwrap();
    std::fs::write(&other, [0x5b; 32]).unwrap();
    let key_file = secret.display().to_string();
    let place = [
        "--gcs-bucket",
        bucket.name(),
        "--gcs-endpoint",
        stack.gcs_endpoint.as_str(),
        "--key-file",
        &key_file,
    ];
    // The committer, ahead of the archiver, so manifests carry roots.
    let mut committer = walproof(&env, &["commit", "--in-memory", "--proof-addr", "off"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    wait_until("the snapshot's root", WAIT, || async {
        Ok(
            !walproof_transport::roots::read_roots(&settings, Duration::from_secs(30))
                .await?
                .is_empty(),
        )
    })
    .await
    .unwrap();
    let mut archiver = walproof(&env, &["archive", "--roll-interval-ms", "100"])
        .args(place)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    sql.batch_execute(
        "UPDATE items SET price = price * 2 WHERE id % 5 = 0;
         DELETE FROM items WHERE id > 45;",
    )
    .await
    .unwrap();
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
    let changes: usize = ledger.transactions.iter().map(|t| t.changes.len()).sum();
    let ls = || {
        let output = walproof(&env, &["archive", "ls"])
            .args(place)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    wait_until("the archive through the last transaction", WAIT, || async {
        Ok(ls().contains(&format!("through {last}")))
    })
    .await
    .unwrap();
    sigterm(&mut archiver);
    sigterm(&mut committer);
    sigterm(&mut decoder);

    let objects = Objects::gcs(bucket.name(), Some(&stack.gcs_endpoint))
        .await
        .unwrap();
    let sealer = Sealer::new(&[0x5a; 32]).unwrap();
    let open = |name: &str, bytes: Vec<u8>| {
        assert!(is_sealed(&bytes), "{name} is sealed in the bucket");
        sealer.open(name, &bytes).unwrap()
    };
    let index_name = format!("{}/_walproof/index.json", topics.prefix());
    let index: Index = serde_json::from_slice(&open(
        &index_name,
        objects.get(&index_name).await.unwrap().unwrap(),
    ))
    .unwrap();
    let mut rows = 0;
    for manifest in &index.files {
        let bytes = open(
            &manifest.object,
            objects.get(&manifest.object).await.unwrap().unwrap(),
        );
        use sha2::Digest as _;
        assert_eq!(
            manifest.sha256,
            Some(walproof_core::Digest(sha2::Sha256::digest(&bytes).into())),
            "{}",
            manifest.object
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        rows += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
        let beside_name = format!("{}.manifest.json", manifest.object);
        let beside = open(
            &beside_name,
            objects.get(&beside_name).await.unwrap().unwrap(),
        );
        assert_eq!(
            &serde_json::from_slice::<walproof_archive::file::Manifest>(&beside).unwrap(),
            manifest
        );
    }
    assert_eq!(rows, changes, "one row per change of the ledger");
    // A manifest's root is the committer's root at its last LSN.
    let published: BTreeMap<_, _> =
        walproof_transport::roots::read_roots(&settings, Duration::from_secs(30))
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.commit_lsn, r.root))
            .collect();
    let with_roots: Vec<_> = index.files.iter().filter(|m| m.root.is_some()).collect();
    assert!(
        !with_roots.is_empty(),
        "the snapshot's files carry its root"
    );
    for manifest in with_roots {
        assert_eq!(manifest.root.as_ref(), published.get(&manifest.last_lsn));
    }
    assert_eq!(ls().lines().count(), index.files.len() + 1);
    // DuckDB reads what the bucket holds: every file fetched and opened with `archive get`,
    // folded, equals the source table.
    let mirror = secrets.join("mirror");
    for manifest in &index.files {
        let out = mirror.join(&manifest.object);
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let out = out.display().to_string();
        let got = walproof(&env, &["archive", "get", &manifest.object, "--out", &out])
            .args(place)
            .output()
            .unwrap();
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
    }
    let mirror_arg = mirror.display().to_string();
    let folded = fold_with_duckdb(&mirror_arg, topics.prefix(), &["public.items=id"]);
    let source = source_rows(&sql, "SELECT id::text, name, price::text FROM items").await;
    assert_eq!(source.len(), 45);
    assert_eq!(
        folded["public.items"], source,
        "the bucket's archive read by DuckDB vs the source"
    );
    // `archive get` gives a file opened; without the secret, or with another, nothing opens.
    let first = &index.files[0];
    let got = walproof(&env, &["archive", "get", &first.object])
        .args(place)
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    use sha2::Digest as _;
    assert_eq!(
        first.sha256,
        Some(walproof_core::Digest(
            sha2::Sha256::digest(&got.stdout).into()
        ))
    );
    let without = walproof(&env, &["archive", "ls"])
        .args(&place[..4])
        .output()
        .unwrap();
    assert!(!without.status.success());
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(
        stderr.contains("sealed: give the archive's encryption secret"),
        "{stderr}"
    );
    let other_file = other.display().to_string();
    let wrong = walproof(&env, &["archive", "ls", "--key-file", &other_file])
        .args(&place[..4])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("does not open with this secret"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&secrets).unwrap();
}
