//! Postgres with logical replication, read through pgwire-replication.

use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use walproof_testkit::TestDatabase;
use walproof_testkit::stack::wait_until;

#[tokio::test]
async fn a_committed_insert_arrives_through_a_pgoutput_slot_and_the_ack_advances_the_slot() {
    let stack = super::stack();
    let db = TestDatabase::create(&stack, "pg_replication")
        .await
        .unwrap();
    let sql = db.connect().await.unwrap();
    let slot = db.slot_name("slot");
    // One statement per call: a multi-statement query is one transaction, and a slot cannot be
    // created in a transaction that has written.
    for statement in [
        "CREATE TABLE items (id int PRIMARY KEY, label text)".to_owned(),
        "CREATE PUBLICATION items_pub FOR TABLE items".to_owned(),
        format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
        "INSERT INTO items VALUES (1, 'walproof-was-here')".to_owned(),
    ] {
        sql.batch_execute(&statement).await.unwrap();
    }

    let (host, port, user) = db.host_port_user();
    let config = ReplicationConfig::new(host, user, "", db.name(), &slot, "items_pub")
        .with_port(port)
        .with_tls(TlsConfig::disabled())
        .with_status_interval(Duration::from_millis(200));
    let mut replication = ReplicationClient::connect(config).await.unwrap();

    // Begin, Relation + Insert as raw pgoutput bytes, Commit.
    let (mut begin_lsn, mut insert, mut commit) = (None, None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while commit.is_none() {
        let event = tokio::time::timeout_at(deadline, replication.recv())
            .await
            .expect("no committed transaction within 20 s")
            .unwrap()
            .expect("replication stream ended");
        match event {
            ReplicationEvent::Begin { final_lsn, .. } => begin_lsn = Some(final_lsn),
            ReplicationEvent::XLogData { data, .. } if data.first() == Some(&b'I') => {
                insert = Some(data)
            }
            ReplicationEvent::Commit { lsn, end_lsn, .. } => commit = Some((lsn, end_lsn)),
            _ => {}
        }
    }
    let (commit_lsn, end_lsn) = commit.unwrap();
    assert_eq!(
        begin_lsn,
        Some(commit_lsn),
        "Begin announces the commit LSN"
    );
    let insert = insert.expect("an Insert message");
    let text = String::from_utf8_lossy(&insert);
    assert!(
        text.contains("walproof-was-here"),
        "insert carries the value as text: {text:?}"
    );

    // Acknowledge: the slot's confirmed_flush_lsn must reach the transaction's end.
    replication.update_applied_lsn(end_lsn);
    let confirmed = || async {
        let row = sql
            .query_one(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?;
        let lsn: String = row.get(0);
        Ok(Lsn::parse(&lsn).map_err(|e| anyhow::anyhow!("{e}"))? >= end_lsn)
    };
    wait_until(
        "the slot to confirm the acknowledged LSN",
        Duration::from_secs(10),
        confirmed,
    )
    .await
    .unwrap();
    replication.shutdown().await.unwrap();
}
