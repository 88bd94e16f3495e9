//! The ledger encoding round-trips, splits transactions into parts, and rejects garbage with a
//! typed error instead of panicking.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use walproof_core::{
    Change, Column, DecodeError, EntryBody, LedgerEntry, Lsn, OldRow, Op, PartSplitter, Relation,
    ReplicaIdentity, Row, SealedEntry, Transaction, Value,
};

fn users() -> Relation {
    let column = |name: &str, type_oid, key| Column {
        name: name.into(),
        type_oid,
        type_modifier: -1,
        key,
    };
    Relation {
        id: 16384,
        schema: "public".into(),
        name: "users".into(),
        replica_identity: ReplicaIdentity::Default,
        columns: vec![
            column("id", 23, true),
            column("name", 25, false),
            column("bio", 25, false),
        ],
    }
}

fn row(values: &[Option<&str>]) -> Row {
    Row(values
        .iter()
        .map(|v| v.map_or(Value::Null, Value::from))
        .collect())
}

/// A transaction that uses every kind of change and value.
fn sample_transaction() -> Transaction {
    let ops = vec![
        Op::Insert {
            relation: 16384,
            new: row(&[Some("1"), Some("ada"), None]),
        },
        Op::Update {
            relation: 16384,
            old: Some(OldRow::Key(row(&[Some("1"), None, None]))),
            new: Row(vec!["2".into(), "".into(), Value::Unchanged]),
        },
        Op::Update {
            relation: 16384,
            old: None,
            new: row(&[Some("2"), Some("x"), Some("y")]),
        },
        Op::Delete {
            relation: 16384,
            old: OldRow::Full(row(&[Some("2"), Some("x"), Some("y")])),
        },
        Op::Snapshot {
            relation: 16384,
            row: row(&[Some("3"), Some("é✓"), None]),
        },
        Op::Truncate {
            relations: vec![16384],
            cascade: true,
            restart_identity: false,
        },
        Op::Message {
            prefix: "walproof.ddl".into(),
            content: b"ALTER TABLE users ...".to_vec(),
        },
    ];
    Transaction {
        commit_lsn: "16/B374D848".parse().unwrap(),
        xid: 4711,
        commit_time_us: 1_763_700_000_123_456,
        relations: BTreeMap::from([(16384, users())]),
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

#[test]
fn every_change_kind_round_trips_through_the_encoding() {
    let tx = sample_transaction();
    let entries = tx.split(usize::MAX);
    assert_eq!(entries.len(), 1);
    let entry = LedgerEntry::decode(&entries[0].bytes).unwrap();
    assert_eq!(
        (entry.commit_lsn, entry.part, entry.last),
        (tx.commit_lsn, 0, true)
    );
    let EntryBody::Transaction(part) = &entry.body else {
        panic!("not a transaction part")
    };
    assert_eq!((part.xid, part.commit_time_us), (tx.xid, tx.commit_time_us));
    assert_eq!(part.relations, vec![users()]);
    assert_eq!(part.changes, tx.changes);
    assert_eq!(
        entry.encode(),
        entries[0].bytes,
        "decode and encode are inverse"
    );

    let abandon = LedgerEntry {
        commit_lsn: Lsn::new(42),
        part: 0,
        last: false,
        body: EntryBody::Abandon { parts_written: 3 },
    };
    assert_eq!(LedgerEntry::decode(&abandon.encode()).unwrap(), abandon);
}

#[test]
fn a_large_transaction_splits_into_consecutive_parts_that_rejoin() {
    let original = sample_transaction();
    let entries = original.split(60);
    assert!(
        entries.len() > 2,
        "expected several parts, got {}",
        entries.len()
    );
    let mut rejoined = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let decoded = LedgerEntry::decode(&entry.bytes).unwrap();
        assert_eq!(decoded.commit_lsn, original.commit_lsn);
        assert_eq!((decoded.part, entry.part), (i as u32, i as u32));
        assert_eq!(
            (decoded.last, entry.last),
            (i + 1 == entries.len(), i + 1 == entries.len())
        );
        let EntryBody::Transaction(part) = decoded.body else {
            panic!("not a transaction part")
        };
        // Parts with a row change carry their relation; the message-only part carries none.
        let needs_relation = part.changes.iter().any(|c| !c.op.relations().is_empty());
        assert_eq!(part.relations.len(), usize::from(needs_relation));
        rejoined.extend(part.changes);
    }
    assert_eq!(rejoined, original.changes);
}

#[test]
fn garbage_bytes_yield_typed_errors_never_panics() {
    // A deterministic stream of pseudo-random byte strings of every small length.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for len in 0..400 {
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if LedgerEntry::decode(&bytes).is_err() {
            errors += 1;
        }
        // An envelope must also carry a version and a matching hash: random bytes never do.
        assert!(SealedEntry::from_bytes(&bytes).is_err());
    }
    assert!(
        errors > 300,
        "random bytes should mostly be rejected, {errors} were"
    );

    // Every truncation of a valid entry decodes or fails cleanly.
    let valid = sample_transaction().split(usize::MAX).remove(0).bytes;
    for cut in 0..valid.len() {
        let _ = LedgerEntry::decode(&valid[..cut]);
    }
}

#[test]
fn decode_errors_name_what_is_wrong() {
    let err = LedgerEntry::decode(&[0xff, 0xff, 0xff]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Protobuf {
                message: "Entry",
                ..
            }
        ),
        "{err}"
    );

    // An entry without a body.
    let err = LedgerEntry::decode(&[0x08, 0x01]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Missing {
            field: "Entry.body"
        }
    );
    assert_eq!(err.to_string(), "Entry.body is missing");

    // A change referring to a relation the entry does not describe.
    let mut tx = sample_transaction();
    tx.relations.clear();
    let err = LedgerEntry::decode(&tx.split(usize::MAX)[0].bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownRelation {
            ordinal: 0,
            relation: 16384
        }
    );

    // A row narrower than its relation.
    let mut tx = sample_transaction();
    tx.changes.truncate(1);
    tx.changes[0].op = Op::Insert {
        relation: 16384,
        new: row(&[Some("1")]),
    };
    let err = LedgerEntry::decode(&tx.split(usize::MAX)[0].bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError::RowWidth {
            ordinal: 0,
            relation: 16384,
            expected: 3,
            got: 1
        }
    );
    assert!(
        err.to_string()
            .contains("row has 1 values but relation 16384 has 3 columns")
    );
}

#[test]
fn a_relation_redefined_inside_a_transaction_cuts_the_entry_so_each_shape_decodes() {
    let v1 = users();
    let mut v2 = users();
    v2.columns.push(Column {
        name: "age".into(),
        type_oid: 23,
        type_modifier: -1,
        key: false,
    });
    let lsn: Lsn = "1/0".parse().unwrap();
    let mut splitter = PartSplitter::new(lsn, 1, 0, [&v1], usize::MAX);
    let insert = |ordinal, values: &[Option<&str>]| Change {
        ordinal,
        op: Op::Insert {
            relation: 16384,
            new: row(values),
        },
    };
    assert_eq!(
        splitter.push(insert(0, &[Some("1"), Some("a"), None])),
        None
    );
    assert_eq!(
        splitter.add_relation(&v1),
        None,
        "the same shape again changes nothing"
    );
    let first = splitter
        .add_relation(&v2)
        .expect("the old shape's entry is cut");
    assert_eq!(
        splitter.push(insert(1, &[Some("2"), Some("b"), None, Some("42")])),
        None
    );
    let second = splitter.finish();

    let first = LedgerEntry::decode(&first.bytes).unwrap();
    let second = LedgerEntry::decode(&second.bytes).unwrap();
    assert_eq!(
        (first.part, first.last, second.part, second.last),
        (0, false, 1, true)
    );
    let relations = |entry: &LedgerEntry| match &entry.body {
        EntryBody::Transaction(part) => part.relations.clone(),
        EntryBody::Abandon { .. } => vec![],
    };
    assert_eq!(relations(&first), vec![v1]);
    assert_eq!(relations(&second), vec![v2]);
}
