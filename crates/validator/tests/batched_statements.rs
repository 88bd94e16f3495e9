//! Batched statements against the local stack's Postgres: inserted and updated rows by COPY
//! keep every value's exact text (and an update's unchanged columns keep theirs), and a batched
//! update, delete or COPY that does not apply still names the change, table and key in its
//! divergence, with nothing of its transaction left behind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use walproof_core::{
    Change, Column, Digest, Lsn, OldRow, Op, Relation, ReplicaIdentity, Row, Transaction, Value,
};
use walproof_testkit::{Stack, TestDatabase};
use walproof_validator::replay::{COPY_MIN_ROWS, Replay, Statement, UPDATE_BY_TABLE_MIN_ROWS};
use walproof_validator::schema::TypeNames;
use walproof_validator::shadow::{Progress, Role, Shadow, Staged};

fn accounts() -> Relation {
    let column = |name: &str, type_oid, key| Column {
        name: name.into(),
        type_oid,
        type_modifier: -1,
        key,
    };
    Relation {
        id: 16400,
        schema: "public".into(),
        name: "accounts".into(),
        replica_identity: ReplicaIdentity::Default,
        columns: vec![
            column("id", 20, true),
            column("note", 25, false),
            column("balance", 1700, false),
        ],
    }
}

fn row(id: u64, note: Option<&str>) -> Row {
    Row(vec![
        Value::Text(id.to_string()),
        note.map_or(Value::Null, |n| Value::Text(n.into())),
        Value::Text(format!("{id}.50")),
    ])
}

fn transaction(n: u64, ops: Vec<Op>) -> Transaction {
    Transaction {
        commit_lsn: Lsn::new(n << 8),
        xid: n as u32,
        commit_time_us: 0,
        relations: BTreeMap::from([(accounts().id, accounts())]),
        changes: ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Change {
                ordinal: i as u32,
                op,
            })
            .collect(),
    }
}

fn insert(id: u64, note: Option<&str>) -> Op {
    Op::Insert {
        relation: accounts().id,
        new: row(id, note),
    }
}

fn delete(id: u64) -> Op {
    let key = Row(vec![Value::Text(id.to_string()), Value::Null, Value::Null]);
    Op::Delete {
        relation: accounts().id,
        old: OldRow::Key(key),
    }
}

fn progress(n: u64) -> Progress {
    Progress {
        commit_lsn: Lsn::new(n << 8),
        ledger_offset: n as i64,
        ledger_hash: Digest([n as u8; 32]),
        root: Digest([n as u8 + 100; 32]),
        attested: None,
    }
}

/// Stages and commits `statements`, or returns the divergence's message.
async fn apply(shadow: &Shadow, statements: &[Statement], n: u64) -> Result<(), String> {
    match shadow.stage(statements, &progress(n), false).await.unwrap() {
        Staged::Open => {
            shadow.commit().await.unwrap();
            Ok(())
        }
        Staged::Diverged(divergence) => Err(divergence.detail),
    }
}

async fn ids(shadow: &Shadow) -> Vec<u64> {
    shadow
        .rows("SELECT id FROM public.accounts ORDER BY id")
        .await
        .unwrap()
        .into_iter()
        .map(|row| row[0].as_deref().unwrap().parse().unwrap())
        .collect()
}

/// A database of the test's own, the writer's and the checks' sessions on it, and the names
/// of the accounts table's types.
async fn shadow_database(name: &str) -> (TestDatabase, Shadow, Shadow, TypeNames) {
    let stack = Stack::load().unwrap();
    let db = TestDatabase::create(&stack, name).await.unwrap();
    let (host, port, user) = db.host_port_user();
    let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
    let shadow = Shadow::connect(&url, Role::Writer).await.unwrap();
    let checks = Shadow::connect(&url, Role::Checks).await.unwrap();
    let mut types = TypeNames::default();
    let first = transaction(1, vec![insert(1, None)]);
    let missing = Replay::missing_types(&first, &types).unwrap();
    checks.name_types(&mut types, &missing).await.unwrap();
    (db, shadow, checks, types)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_inserts_and_deletes_apply_exactly_and_name_the_key_they_fail_on() {
    let (_db, shadow, checks, types) = shadow_database("batched_statements").await;
    let mut replay = Replay::default();

    // 1. A hundred rows in a row go by COPY; the notes hold what COPY's text format escapes.
    let awkward = [
        "tab\there",
        "line\nbreak",
        "carriage\rreturn",
        r"back\slash \N \. \t",
        "it's \"quoted\"",
        "ünïcödé ✓",
        "",
    ];
    let notes: Vec<Option<String>> = (0..100u64)
        .map(|i| match i % 9 {
            7 => None,
            8 => Some(format!("plain {i}")),
            k => Some(awkward[k as usize].to_owned()),
        })
        .collect();
    let rows: Vec<Op> = (0..100u64)
        .map(|i| insert(i + 1, notes[i as usize].as_deref()))
        .collect();
    let statements = replay.plan(&transaction(1, rows), &types).unwrap();
    const { assert!(100 >= COPY_MIN_ROWS) };
    assert!(statements.len() >= 2, "{statements:?}");
    assert!(
        statements
            .last()
            .is_some_and(|s| s.copy.is_some() && s.sql.starts_with("COPY public.accounts")),
        "{statements:?}"
    );
    apply(&shadow, &statements, 1).await.unwrap();
    let held = checks
        .rows("SELECT id::text AS i, note, balance::text FROM public.accounts ORDER BY id")
        .await
        .unwrap();
    let expected: Vec<Vec<Option<String>>> = (0..100u64)
        .map(|i| {
            vec![
                Some((i + 1).to_string()),
                notes[i as usize].clone(),
                Some(format!("{}.50", i + 1)),
            ]
        })
        .collect();
    assert_eq!(held, expected);

    // 2. A few rows go by one multi-row INSERT, with the same text.
    let statements = replay
        .plan(
            &transaction(2, vec![insert(101, Some(awkward[3])), insert(102, None)]),
            &types,
        )
        .unwrap();
    assert!(
        statements.iter().all(|s| s.copy.is_none()),
        "{statements:?}"
    );
    apply(&shadow, &statements, 2).await.unwrap();
    let note = checks
        .rows("SELECT note FROM public.accounts WHERE id = 101")
        .await
        .unwrap();
    assert_eq!(note, vec![vec![Some(awkward[3].to_owned())]]);

    // 3. Deletes in a row go by one statement.
    let statements = replay
        .plan(&transaction(3, (1..=10).map(delete).collect()), &types)
        .unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    apply(&shadow, &statements, 3).await.unwrap();
    assert_eq!(ids(&shadow).await, (11..=102).collect::<Vec<_>>());

    // 4. A row deleted behind the validator's back: the batched delete names its key and
    //    change, and the whole transaction (its insert too) is rolled back.
    checks
        .rows("DELETE FROM public.accounts WHERE id = 17")
        .await
        .unwrap();
    let mut ops = vec![insert(500, None)];
    ops.extend((11..=30).map(delete));
    let statements = replay.plan(&transaction(4, ops), &types).unwrap();
    let message = apply(&shadow, &statements, 4).await.unwrap_err();
    assert_eq!(
        message,
        "delete of public.accounts key (id)=(17) (change 7): touched 0 rows of the shadow database, the change says 1"
    );
    let mut left: Vec<u64> = (11..=102).collect();
    left.retain(|id| *id != 17);
    assert_eq!(ids(&shadow).await, left);
    assert_eq!(checks.progress().await.unwrap(), Some(progress(3)));

    // 5. A key deleted twice in one batch: the second delete is the one that finds no row.
    let statements = replay
        .plan(
            &transaction(5, [40, 41, 42, 41, 43].map(delete).to_vec()),
            &types,
        )
        .unwrap();
    let message = apply(&shadow, &statements, 5).await.unwrap_err();
    assert_eq!(
        message,
        "delete of public.accounts key (id)=(41) (change 3): touched 0 rows of the shadow database, the change says 1"
    );
    assert_eq!(ids(&shadow).await, left);

    // 6. A COPY whose rows conflict with the key: the database's message names the key.
    let rows: Vec<Op> = (0..100u64).map(|i| insert(50 + i, None)).collect();
    let statements = replay.plan(&transaction(6, rows), &types).unwrap();
    let message = apply(&shadow, &statements, 6).await.unwrap_err();
    assert!(
        message.starts_with("insert of public.accounts (changes 0..=99): duplicate key value")
            && message.contains("Key (id)=(50) already exists"),
        "{message}"
    );
    assert_eq!(ids(&shadow).await, left);
    assert_eq!(checks.progress().await.unwrap(), Some(progress(3)));
}

fn update(id: u64, note: Value, balance: &str) -> Op {
    Op::Update {
        relation: accounts().id,
        old: None,
        new: Row(vec![
            Value::Text(id.to_string()),
            note,
            Value::Text(balance.into()),
        ]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_updates_keep_unchanged_columns_apply_in_order_and_name_the_key_they_fail_on() {
    let (_db, shadow, checks, types) = shadow_database("batched_updates").await;
    let rows: Vec<Op> = (1..=900u64)
        .map(|id| insert(id, Some(&format!("first {id}"))))
        .collect();
    let first = transaction(1, rows);
    let mut replay = Replay::default();
    apply(&shadow, &replay.plan(&first, &types).unwrap(), 1)
        .await
        .unwrap();

    // 1. Updates carrying every column, with key 7 updated twice (the second starts a new
    //    batch), then 300 leaving the note unchanged (TOAST), then key 5 updated again
    //    alone: three batches by temporary table, then one update by key.
    let note = |id: u64| format!("tab\t{id}\nline \\N \\. it's ✓");
    let carried = |id: u64| update(id, Value::Text(note(id)), &format!("{id}.25"));
    let mut ops: Vec<Op> = (1..=300u64).map(carried).collect();
    ops.push(update(7, Value::Text("seven again".into()), "7.50"));
    ops.extend((301..=600u64).map(carried));
    ops.extend((601..=900u64).map(|id| update(id, Value::Unchanged, &format!("{id}.75"))));
    ops.push(update(5, Value::Null, "5.99"));
    const { assert!(300 >= UPDATE_BY_TABLE_MIN_ROWS) };
    let statements = replay.plan(&transaction(2, ops), &types).unwrap();
    let temporaries = statements
        .iter()
        .filter(|s| s.sql.starts_with("CREATE TEMPORARY TABLE"))
        .count();
    assert_eq!(temporaries, 3, "{statements:?}");
    assert!(
        statements
            .last()
            .is_some_and(|s| s.sql.starts_with("UPDATE public.accounts SET")),
        "{statements:?}"
    );
    apply(&shadow, &statements, 2).await.unwrap();
    let held = checks
        .rows("SELECT id::text AS i, note, balance::text FROM public.accounts ORDER BY id")
        .await
        .unwrap();
    let expected: Vec<Vec<Option<String>>> = (1..=900u64)
        .map(|id| {
            let (note, balance) = match id {
                5 => (None, "5.99".to_owned()),
                7 => (Some("seven again".to_owned()), "7.50".to_owned()),
                1..=600 => (Some(note(id)), format!("{id}.25")),
                _ => (Some(format!("first {id}")), format!("{id}.75")),
            };
            vec![Some(id.to_string()), note, Some(balance)]
        })
        .collect();
    assert_eq!(held, expected);

    // 2. A row deleted behind the validator's back: the batched update names its key and
    //    change, and nothing of the transaction stays.
    checks
        .rows("DELETE FROM public.accounts WHERE id = 250")
        .await
        .unwrap();
    let ops: Vec<Op> = (1..=300u64)
        .map(|id| update(id, Value::Text("later".into()), "1.00"))
        .collect();
    let statements = replay.plan(&transaction(3, ops), &types).unwrap();
    let message = apply(&shadow, &statements, 3).await.unwrap_err();
    assert_eq!(
        message,
        "update of public.accounts key (id)=(250) (change 249): touched 0 rows of the shadow database, the change says 1"
    );
    let later = checks
        .rows("SELECT count(*) FROM public.accounts WHERE note = 'later'")
        .await
        .unwrap();
    assert_eq!(later, vec![vec![Some("0".to_owned())]]);
    assert_eq!(checks.progress().await.unwrap(), Some(progress(2)));
}
