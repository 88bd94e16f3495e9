//! The shadow writer against the local stack's Postgres: transactions queued together are
//! applied in order, each with its progress row, and nothing after one that does not apply.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use walproof_core::{Digest, Lsn};
use walproof_testkit::{Stack, TestDatabase};
use walproof_validator::DivergenceKind;
use walproof_validator::ValidateError;
use walproof_validator::replay::{Expect, Statement, Subject};
use walproof_validator::shadow::{Progress, Role, Shadow};
use walproof_validator::shadow_writer::{Applied, Outcome, ShadowWriter};

fn insert(id: u32) -> Statement {
    Statement::new(
        format!("INSERT INTO public.accounts (id) VALUES ('{id}')"),
        Expect::Rows(1),
        Subject {
            ordinal: 0,
            changes: 1,
            action: "insert",
            table: "public.accounts".into(),
            key: Some(format!("(id)=({id})")),
        },
    )
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_transactions_apply_in_order_and_nothing_after_one_that_does_not_apply() {
    let stack = Stack::load().unwrap();
    let db = TestDatabase::create(&stack, "shadow_writer").await.unwrap();
    let (host, port, user) = db.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    let mut writer = ShadowWriter::start(Shadow::connect(&url, Role::Writer).await.unwrap());

    let create = Statement::new(
        "CREATE TABLE public.accounts (id int PRIMARY KEY)".into(),
        Expect::Any,
        Subject {
            ordinal: 0,
            changes: 1,
            action: "create table",
            table: "public.accounts".into(),
            key: None,
        },
    );
    let committed = |n: u8, outcome: Outcome| {
        assert_eq!(outcome.commit_lsn, progress(n).commit_lsn);
        assert!(matches!(outcome.applied, Applied::Committed), "{outcome:?}");
    };
    // Alone in the queue, a transaction is committed without waiting for the next one.
    assert!(writer.send(vec![create, insert(1)], progress(1)).await);
    committed(1, writer.next().await.unwrap());
    // Queued together: the first inserts 2, the second inserts 2 again.
    assert!(writer.send(vec![insert(2)], progress(2)).await);
    assert!(writer.send(vec![insert(3), insert(2)], progress(3)).await);
    // Queued behind the one that will not apply; the writer may have stopped already.
    let _ = writer.send(vec![insert(4)], progress(4)).await;
    committed(2, writer.next().await.unwrap());
    let outcome = writer.next().await.unwrap();
    assert_eq!(outcome.commit_lsn, progress(3).commit_lsn);
    let Applied::Diverged(divergence) = outcome.applied else {
        panic!("transaction 3 applied: {outcome:?}");
    };
    assert_eq!(divergence.kind, DivergenceKind::Replay);
    assert_eq!(divergence.commit_lsn, Some(progress(3).commit_lsn));
    assert!(
        divergence
            .detail
            .starts_with("insert of public.accounts key (id)=(2) (change 0): duplicate key"),
        "{divergence}"
    );
    // Nothing more is reported, nor applied: the shadow holds transactions 1 and 2.
    assert!(matches!(
        writer.next().await,
        Err(ValidateError::WriterStopped)
    ));
    let shadow = Shadow::connect(&url, Role::Checks).await.unwrap();
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
