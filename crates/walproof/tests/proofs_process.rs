//! `walproof prove` and `walproof verify` as a user runs them: a row's proof from the ledger
//! of a real decode, checked offline against the root `walproof roots` prints — present with
//! its values, absent, at an earlier LSN, and refused when tampered with or given wrong values.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Output, Stdio};
use std::time::Duration;

use walproof_testkit::database::{current_wal_lsn, wait_slot_confirmed};
use walproof_testkit::stack::wait_until;
use walproof_transport::KafkaSettings;
use walproof_transport::ledger::LedgerReader;

mod common;
use common::{sigterm, source, walproof};

fn run(env: &[(&str, String)], args: &[&str]) -> Output {
    walproof(env, args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_proof_verifies_offline_and_a_tampered_one_does_not() {
    let (stack, db, topics, sql, env) = source(
        "proofs",
        "CREATE TABLE accounts (id int PRIMARY KEY, name text, note text);
         INSERT INTO accounts SELECT g, 'acct ' || g, NULL FROM generate_series(1, 100) g;
         CREATE TABLE events (kind text, n int);
         ALTER TABLE events REPLICA IDENTITY FULL;
         INSERT INTO events VALUES ('tick', 1), ('tick', 1), ('tock', NULL);",
    )
    .await;
    let slot = env[1].1.clone();
    stdout(&run(&env, &["setup"]));
    let mut decoder = walproof(&env, &["decode", "--metrics-addr", "off", "--no-debezium"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // After the snapshot: one update and one delete.
    let settings = KafkaSettings::new(&stack.kafka_brokers, topics.prefix());
    wait_until(
        "the snapshot in the ledger",
        Duration::from_secs(60),
        || async {
            let ledger = LedgerReader::from_start(&settings)?
                .read_to_end(Duration::from_secs(10))
                .await?;
            Ok(!ledger.transactions.is_empty())
        },
    )
    .await
    .unwrap();
    sql.batch_execute("UPDATE accounts SET note = 'vip' WHERE id = 7")
        .await
        .unwrap();
    sql.batch_execute("DELETE FROM accounts WHERE id = 8")
        .await
        .unwrap();
    sql.batch_execute("INSERT INTO events VALUES ('tick', 1)")
        .await
        .unwrap();
    let target = current_wal_lsn(&sql).await.unwrap();
    wait_slot_confirmed(&sql, &slot, target, Duration::from_secs(60))
        .await
        .unwrap();
    sigterm(&mut decoder);

    let roots = stdout(&run(&env, &["roots"]));
    let roots: Vec<Vec<String>> = roots
        .lines()
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect();
    let (latest_lsn, latest) = (&roots.last().unwrap()[0], &roots.last().unwrap()[1]);
    let dir = std::env::temp_dir().join(db.name());
    std::fs::create_dir_all(&dir).unwrap();
    let save = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };

    // Present, with its values.
    let proof = stdout(&run(
        &env,
        &["prove", "--table", "public.accounts", "--key", "7"],
    ));
    let file = save("seven.json", &proof);
    let values = r#"{"id": "7", "name": "acct 7", "note": "vip"}"#;
    let ok = stdout(&run(
        &[],
        &["verify", "--root", latest, "--values", values, &file],
    ));
    assert!(ok.contains("exists"), "{ok}");
    let wrong = run(
        &[],
        &[
            "verify",
            "--root",
            latest,
            "--values",
            r#"{"note": null}"#,
            &file,
        ],
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("column note does not hold NULL"));

    // Absent (deleted).
    let proof = stdout(&run(
        &env,
        &["prove", "--table", "public.accounts", "--key", "8"],
    ));
    let ok = stdout(&run(
        &[],
        &["verify", "--root", latest, &save("eight.json", &proof)],
    ));
    assert!(ok.contains("does not exist"), "{ok}");

    // A row of a table without a key (a multiset), by its values: three identical rows.
    let tick = r#"{"kind": "tick", "n": "1"}"#;
    let proof = stdout(&run(
        &env,
        &["prove", "--table", "public.events", "--values", tick],
    ));
    let ok = stdout(&run(
        &[],
        &["verify", "--root", latest, &save("tick.json", &proof)],
    ));
    assert!(ok.contains("exists 3 times"), "{ok}");
    let proof = stdout(&run(
        &env,
        &[
            "prove",
            "--table",
            "public.events",
            "--values",
            r#"{"kind": "tock", "n": "1"}"#,
        ],
    ));
    let file = save("tock-1.json", &proof);
    let ok = stdout(&run(&[], &["verify", "--root", latest, &file]));
    assert!(ok.contains("does not exist"), "{ok}");
    // Its absence, for the values asked about, in the table's column order.
    let tock = r#"{"kind": "tock", "n": "1"}"#;
    let ok = stdout(&run(
        &[],
        &[
            "verify",
            "--root",
            latest,
            "--values",
            tock,
            "--columns",
            "kind,n",
            &file,
        ],
    ));
    assert!(ok.contains("does not exist"), "{ok}");
    let unordered = run(&[], &["verify", "--root", latest, "--values", tock, &file]);
    assert!(
        !unordered.status.success()
            && String::from_utf8_lossy(&unordered.stderr).contains("--columns kind,n"),
        "{}",
        String::from_utf8_lossy(&unordered.stderr)
    );
    let present = run(
        &[],
        &[
            "verify",
            "--root",
            latest,
            "--values",
            tick,
            "--columns",
            "kind,n",
            &file,
        ],
    );
    assert!(!present.status.success(), "tick 1 exists");
    let keyed = run(&env, &["prove", "--table", "public.events", "--key", "1"]);
    assert!(
        String::from_utf8_lossy(&keyed.stderr).contains("proved by their values"),
        "{}",
        String::from_utf8_lossy(&keyed.stderr)
    );

    // At an earlier LSN (the snapshot's): the row before the update, under that root.
    let (first_lsn, first) = (&roots[0][0], &roots[0][1]);
    assert_ne!(first_lsn, latest_lsn);
    let proof = stdout(&run(
        &env,
        &[
            "prove",
            "--table",
            "public.accounts",
            "--key",
            "8",
            "--at",
            first_lsn,
        ],
    ));
    let file = save("eight-then.json", &proof);
    let values = r#"{"id": "8", "name": "acct 8", "note": null}"#;
    let ok = stdout(&run(
        &[],
        &["verify", "--root", first, "--values", values, &file],
    ));
    assert!(ok.contains("exists"), "{ok}");
    // … which does not hold under the latest root.
    assert!(
        !run(&[], &["verify", "--root", latest, &file])
            .status
            .success()
    );

    // Tampered: one hex digit of a node changed.
    let proof = std::fs::read_to_string(dir.join("seven.json")).unwrap();
    let at = proof.find("\"nodes\":[\"").unwrap() + 20;
    let mut tampered = proof.into_bytes();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let file = save("tampered.json", &String::from_utf8(tampered).unwrap());
    let refused = run(&[], &["verify", "--root", latest, &file]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("the proof does not hold"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The same proofs from the running committer's HTTP API, the earlier one from its store.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = dir.join("committer").display().to_string();
    let addr = format!("127.0.0.1:{port}");
    let mut committer = walproof(
        &env,
        &["commit", "--state-dir", &state, "--proof-addr", &addr],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    wait_until(
        "the committer's latest root",
        Duration::from_secs(60),
        || async {
            let (status, body) = get(port, "/roots/latest");
            Ok(status.contains("200")
                && body.contains(latest_lsn.as_str())
                && body.contains(latest.as_str()))
        },
    )
    .await
    .unwrap();
    let (status, proof) = get(port, "/proof?table=public.accounts&key=7");
    assert!(status.contains("200"), "{status} {proof}");
    let values = r#"{"id": "7", "name": "acct 7", "note": "vip"}"#;
    let file = save("seven-http.json", &proof);
    let ok = stdout(&run(
        &[],
        &["verify", "--root", latest, "--values", values, &file],
    ));
    assert!(ok.contains("exists"), "{ok}");
    let target = format!("/proof?table=public.accounts&key=8&at={first_lsn}&compact=true");
    let (status, proof) = get(port, &target);
    assert!(
        status.contains("200") && proof.contains("\"compact\""),
        "{status} {proof}"
    );
    let values = r#"{"id": "8", "name": "acct 8", "note": null}"#;
    let file = save("eight-then-http.json", &proof);
    let ok = stdout(&run(
        &[],
        &["verify", "--root", first, "--values", values, &file],
    ));
    assert!(ok.contains("exists"), "{ok}");
    // A multiset row from the HTTP API: values= is the JSON object, URL-encoded.
    let (status, proof) = get(
        port,
        "/proof?table=public.events&values=%7B%22kind%22%3A%22tock%22%2C%22n%22%3Anull%7D",
    );
    assert!(status.contains("200"), "{status} {proof}");
    let ok = stdout(&run(
        &[],
        &["verify", "--root", latest, &save("tock-http.json", &proof)],
    ));
    assert!(ok.contains("exists 1 time "), "{ok}");
    let (status, body) = get(
        port,
        "/proof?table=public.events&values=%7B%22kind%22%3A1%7D",
    );
    assert!(
        status.contains("400") && body.contains("column kind must be text or null"),
        "{status} {body}"
    );
    let (status, body) = get(port, "/proof?table=public.nope&key=1");
    assert!(
        status.contains("404") && body.contains("no table public.nope"),
        "{status} {body}"
    );
    let (status, body) = get(port, "/proof?key=1");
    assert!(
        status.contains("400") && body.contains("table=<schema.table>"),
        "{status} {body}"
    );
    sigterm(&mut committer);

    // Restarted with a retention of one root: the store is pruned, the earlier LSN's proof is
    // refused naming the horizon, the latest still verifies.
    let mut committer = walproof(
        &env,
        &[
            "commit",
            "--state-dir",
            &state,
            "--proof-addr",
            &addr,
            "--retain-roots",
            "1",
            "--compact-at-bytes",
            "1",
        ],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let target = format!("/proof?table=public.accounts&key=8&at={first_lsn}");
    wait_until("the store pruned", Duration::from_secs(60), || async {
        let (status, body) = get(port, &target);
        Ok(status.contains("404")
            && body.contains("pruned")
            && body.contains(&format!("kept from {latest_lsn}")))
    })
    .await
    .unwrap();
    let (status, proof) = get(port, "/proof?table=public.accounts&key=7");
    assert!(status.contains("200"), "{status} {proof}");
    let values = r#"{"id": "7", "name": "acct 7", "note": "vip"}"#;
    let file = save("seven-pruned.json", &proof);
    let ok = stdout(&run(
        &[],
        &["verify", "--root", latest, "--values", values, &file],
    ));
    assert!(ok.contains("exists"), "{ok}");
    sigterm(&mut committer);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET target` on the local port: the status line and the body.
fn get(port: u16, target: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (String::new(), String::new());
    };
    write!(stream, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}
