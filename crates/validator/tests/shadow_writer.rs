//! The shadow writer against the local stack's Postgres: transactions queued together are
//! applied in order, each with its progress row, small ones together, and nothing after one
//! that does not apply.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;

use walproof_core::{
    Change, Column, Digest, Lsn, Op, Relation, ReplicaIdentity, Row, Transaction, Value,
};
use walproof_testkit::{Stack, TestDatabase};
use walproof_validator::DivergenceKind;
use walproof_validator::ValidateError;
use walproof_validator::replay::Replay;
use walproof_validator::shadow::{Progress, Role, Shadow};
use walproof_validator::shadow_writer::{Applied, Outcome, ShadowWriter, SharedPlanner, lock};

fn accounts() -> Relation {
    Relation {
        id: 16500,
        schema: "public".into(),
        name: "accounts".into(),
        replica_identity: ReplicaIdentity::Default,
        columns: vec![Column {
            name: "id".into(),
            type_oid: 23,
            type_modifier: -1,
            key: true,
        }],
    }
}

/// Transaction `n`, inserting `ids`.
fn inserts(n: u8, ids: &[u32]) -> Arc<Transaction> {
    Arc::new(Transaction {
        commit_lsn: progress(n).commit_lsn,
        xid: u32::from(n),
        commit_time_us: 0,
        relations: BTreeMap::from([(accounts().id, accounts())]),
        changes: ids
            .iter()
            .enumerate()
            .map(|(i, id)| Change {
                ordinal: i as u32,
                op: Op::Insert {
                    relation: accounts().id,
                    new: Row(vec![Value::Text(id.to_string())]),
                },
            })
            .collect(),
    })
}

/// A writer on `db` whose planner knows the accounts table's types, and a session for checks.
async fn start(db: &TestDatabase) -> (ShadowWriter, Shadow) {
    let (host, port, user) = db.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    let checks = Shadow::connect(&url, Role::Checks).await.unwrap();
    let planner = SharedPlanner::default();
    let missing = Replay::missing_types(&inserts(1, &[1]), &lock(&planner).types).unwrap();
    let mut named = Default::default();
    checks.name_types(&mut named, &missing).await.unwrap();
    lock(&planner).types.merge(named);
    let writer = ShadowWriter::start(
        Shadow::connect(&url, Role::Writer).await.unwrap(),
        Arc::clone(&planner),
    );
    (writer, checks)
}

fn progress(n: u8) -> Progress {
    Progress {
        commit_lsn: Lsn::new(u64::from(n) << 8),
        ledger_offset: i64::from(n),
        ledger_hash: Digest([n; 32]),
        root: Digest([n + 100; 32]),
        attested: None,
    }
}

/// Asserts that transaction `n` did not apply, as a replay divergence naming its second
/// insert's key, which an earlier transaction inserted.
fn duplicate_key(n: u8, outcome: Outcome) {
    assert_eq!(outcome.commit_lsn, progress(n).commit_lsn);
    let Applied::Diverged(divergence) = outcome.applied else {
        panic!("transaction {n} applied: {outcome:?}");
    };
    assert_eq!(divergence.kind, DivergenceKind::Replay);
    assert_eq!(divergence.commit_lsn, Some(progress(n).commit_lsn));
    assert!(
        divergence
            .detail
            .starts_with("insert of public.accounts (changes 0..=1): duplicate key"),
        "{divergence}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_transactions_apply_in_order_and_nothing_after_one_that_does_not_apply() {
    let stack = Stack::load().unwrap();
    let db = TestDatabase::create(&stack, "shadow_writer").await.unwrap();
    let (mut writer, checks) = start(&db).await;

    let committed = |n: u8, outcome: Outcome| {
        assert_eq!(outcome.commit_lsn, progress(n).commit_lsn);
        assert!(matches!(outcome.applied, Applied::Committed), "{outcome:?}");
    };
    // Alone in the queue, a transaction is committed without waiting for the next one.
    assert!(writer.send(inserts(1, &[1]), progress(1)).await);
    committed(1, writer.next().await.unwrap());
    // Queued together: the first inserts 2, the second inserts 2 again.
    assert!(writer.send(inserts(2, &[2]), progress(2)).await);
    assert!(writer.send(inserts(3, &[3, 2]), progress(3)).await);
    // Queued behind the one that will not apply; the writer may have stopped already.
    let _ = writer.send(inserts(4, &[4]), progress(4)).await;
    committed(2, writer.next().await.unwrap());
    duplicate_key(3, writer.next().await.unwrap());
    // Nothing more is reported, nor applied: the shadow holds transactions 1 and 2.
    assert!(matches!(
        writer.next().await,
        Err(ValidateError::WriterStopped)
    ));
    let shadow = checks;
    assert_eq!(shadow.progress().await.unwrap(), Some(progress(2)));
    let ids = shadow
        .rows("SELECT id FROM public.accounts ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        ids,
        [[Some("1".to_owned())], [Some("2".to_owned())]].map(Vec::from)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_cannot_be_planned_diverges_after_the_one_before_it_committed() {
    let stack = Stack::load().unwrap();
    let db = TestDatabase::create(&stack, "shadow_writer_plan")
        .await
        .unwrap();
    let (mut writer, checks) = start(&db).await;
    // The second names a relation it does not describe: it cannot be planned.
    let mut unplannable = (*inserts(2, &[2])).clone();
    unplannable.relations.clear();
    if let Op::Insert { relation, .. } = &mut unplannable.changes[0].op {
        *relation = 99;
    }
    assert!(writer.send(inserts(1, &[1]), progress(1)).await);
    assert!(writer.send(Arc::new(unplannable), progress(2)).await);
    let first = writer.next().await.unwrap();
    assert!(matches!(first.applied, Applied::Committed), "{first:?}");
    let second = writer.next().await.unwrap();
    let Applied::Diverged(divergence) = second.applied else {
        panic!("transaction 2 applied: {second:?}");
    };
    assert_eq!(divergence.kind, DivergenceKind::Replay);
    assert_eq!(
        divergence.detail,
        "change 0 refers to relation 99, which the stream never described"
    );
    assert_eq!(checks.progress().await.unwrap(), Some(progress(1)));
}

/// Small transactions queued together go to the shadow in one SQL transaction (the rows they
/// insert share an `xmin`); in a group where one does not apply, those before it are committed
/// and it is named, as when each goes alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_transactions_queued_together_share_a_sql_transaction_and_one_that_fails_is_named() {
    let stack = Stack::load().unwrap();
    let db = TestDatabase::create(&stack, "shadow_writer_group")
        .await
        .unwrap();
    let (mut writer, checks) = start(&db).await;
    let (host, port, user) = db.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    let blocker = Shadow::connect(&url, Role::Checks).await.unwrap();
    let committed = |n: u8, outcome: Outcome| {
        assert_eq!(outcome.commit_lsn, progress(n).commit_lsn, "{outcome:?}");
        assert!(matches!(outcome.applied, Applied::Committed), "{outcome:?}");
    };
    assert!(writer.send(inserts(1, &[1]), progress(1)).await);
    committed(1, writer.next().await.unwrap());

    // While another session holds the table, the writer waits on transaction 2 and the
    // others queue up behind it.
    let hold = "BEGIN; LOCK TABLE public.accounts IN ACCESS EXCLUSIVE MODE";
    blocker.rows(hold).await.unwrap();
    for n in 2..=20 {
        assert!(writer.send(inserts(n, &[u32::from(n)]), progress(n)).await);
    }
    blocker.rows("COMMIT").await.unwrap();
    for n in 2..=20 {
        committed(n, writer.next().await.unwrap());
    }
    assert_eq!(checks.progress().await.unwrap(), Some(progress(20)));
    let transactions = checks
        .rows("SELECT count(DISTINCT xmin::text) FROM public.accounts WHERE id BETWEEN 2 AND 20")
        .await
        .unwrap();
    let transactions: u32 = transactions[0][0].as_deref().unwrap().parse().unwrap();
    assert!(
        transactions <= 3,
        "19 small transactions queued together took {transactions} SQL transactions"
    );

    // The same with transaction 25 inserting key 5 again.
    blocker.rows(hold).await.unwrap();
    for n in 21..=30 {
        let ids = if n == 25 {
            vec![25, 5]
        } else {
            vec![u32::from(n)]
        };
        assert!(writer.send(inserts(n, &ids), progress(n)).await);
    }
    blocker.rows("COMMIT").await.unwrap();
    for n in 21..=24 {
        committed(n, writer.next().await.unwrap());
    }
    duplicate_key(25, writer.next().await.unwrap());
    assert!(matches!(
        writer.next().await,
        Err(ValidateError::WriterStopped)
    ));
    assert_eq!(checks.progress().await.unwrap(), Some(progress(24)));
    let ids = checks
        .rows("SELECT id FROM public.accounts ORDER BY id")
        .await
        .unwrap();
    let ids: Vec<u32> = ids
        .iter()
        .map(|row| row[0].as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=24).collect::<Vec<u32>>());
}
