//! A committed transaction's changes as Debezium change events, tombstones and BEGIN/END.

use std::collections::BTreeMap;

use walproof_core::{Change, Lsn, Op, Relation, RelationId, Row, Transaction};

use super::envelope::{Event, TransactionContext, envelope_schema};
use super::error::{DebeziumError, Result};
use super::json::{Json, converter_bytes};
use super::options::DebeziumOptions;
use super::partition::partition_for;
use super::record::{Record, TransactionRecords};
use super::table::{EncodedRow, Site, Table};
use super::transaction::{EventCounts, metadata_record};

/// Encodes one whole committed transaction as the Kafka records Debezium's PostgreSQL
/// connector would write for it: BEGIN, one change event per row change (with a tombstone
/// after each delete of a keyed row when `options.tombstones`), END.
///
/// - Insert → `c`; snapshot row → `r` (`source.snapshot` `"true"`, `"last"` on the
///   transaction's final snapshot row); delete → `d`; truncate → one `t` per table, with a
///   null key; logical messages (walproof's DDL capture) produce nothing.
/// - Update → `u`, or, when the key changed, `d` for the old key (plus its tombstone) and `c`
///   for the new one, as Debezium does.
/// - Pure and deterministic: the same transaction and options always give the same bytes,
///   so a re-emission after a decoder restart repeats records exactly. Delivery is
///   at-least-once; a consumer drops a repeat by `(source.lsn, transaction.total_order)`.
///
/// Fails only on input the decoder never produces (an undescribed relation, a row of the
/// wrong width, a value that is not its type's text output), naming the offending value.
///
/// ```
/// use std::collections::BTreeMap;
/// use walproof_core::{Change, Column, Lsn, Op, Relation, ReplicaIdentity, Row, Transaction};
/// use walproof_transport::debezium::{DebeziumOptions, encode_transaction};
///
/// let column = |name: &str, type_oid, key| Column {
///     name: name.into(), type_oid, type_modifier: -1, key,
/// };
/// let users = Relation {
///     id: 16384,
///     schema: "public".into(),
///     name: "users".into(),
///     replica_identity: ReplicaIdentity::Default,
///     columns: vec![column("id", 23, true), column("name", 25, false)],
/// };
/// let tx = Transaction {
///     commit_lsn: Lsn::new(0x16_B374_D848),
///     xid: 4711,
///     commit_time_us: 1_763_700_000_123_456,
///     relations: BTreeMap::from([(16384, users)]),
///     changes: vec![Change {
///         ordinal: 0,
///         op: Op::Insert { relation: 16384, new: Row(vec!["1".into(), "ada".into()]) },
///     }],
/// };
/// let options = DebeziumOptions { schemas: false, ..DebeziumOptions::new("walproof", "appdb") };
/// let records = encode_transaction(&tx, &options)?;
///
/// let insert = &records.changes[0];
/// assert_eq!(insert.topic, "walproof.public.users");
/// assert_eq!(insert.key.as_deref(), Some(&br#"{"id":1}"#[..]));
/// let value: serde_json::Value = serde_json::from_slice(insert.value.as_deref().unwrap())?;
/// assert_eq!(value["op"], "c");
/// assert_eq!(value["after"]["name"], "ada");
/// assert_eq!(value["source"]["lsn"], 0x16_B374_D848_u64);
/// assert_eq!(records.end.topic, "walproof.transaction");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_transaction(
    tx: &Transaction,
    options: &DebeziumOptions,
) -> Result<TransactionRecords> {
    let mut encoder = TransactionEncoder::new(tx.commit_lsn, tx.xid, tx.commit_time_us, options)?;
    encoder.add_relations(tx.relations.values());
    let begin = encoder.begin();
    let changes = encoder.encode_changes(&tx.changes, true)?;
    Ok(TransactionRecords {
        begin,
        end: encoder.end(),
        changes,
    })
}

/// Encodes one transaction's events as its ledger entries arrive, one entry at a time, so a
/// transaction of any size is published in bounded memory: [`TransactionEncoder::begin`] with
/// the first entry, [`TransactionEncoder::encode_changes`] per entry, and
/// [`TransactionEncoder::end`] after the last. The records are those of
/// [`encode_transaction`] on the whole transaction, byte for byte.
pub struct TransactionEncoder<'o> {
    cx: TransactionContext<'o>,
    tables: BTreeMap<RelationId, Prepared>,
    counts: EventCounts,
}

impl std::fmt::Debug for TransactionEncoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionEncoder")
            .field("commit_lsn", &self.cx.commit_lsn)
            .field("events", &self.counts.total)
            .finish_non_exhaustive()
    }
}

impl<'o> TransactionEncoder<'o> {
    /// An encoder for the transaction committed at `commit_lsn`.
    pub fn new(
        commit_lsn: Lsn,
        xid: u32,
        commit_time_us: i64,
        options: &'o DebeziumOptions,
    ) -> Result<TransactionEncoder<'o>> {
        options.validate()?;
        Ok(TransactionEncoder {
            cx: TransactionContext {
                options,
                commit_lsn,
                xid,
                commit_time_us,
            },
            tables: BTreeMap::new(),
            counts: EventCounts::default(),
        })
    }

    /// Describes the relations the next changes refer to (a redefinition replaces the shape;
    /// a shape already described — every part of a transaction repeats its relations — is not
    /// prepared again).
    pub fn add_relations<'r>(&mut self, relations: impl IntoIterator<Item = &'r Relation>) {
        let prefix = &self.cx.options.topic_prefix;
        for relation in relations {
            let known = self
                .tables
                .get(&relation.id)
                .is_some_and(|prepared| prepared.relation == *relation);
            if !known {
                let prepared = Prepared::new(relation, prefix, self.cx.options);
                self.tables.insert(relation.id, prepared);
            }
        }
    }

    /// The BEGIN record.
    pub fn begin(&self) -> Record {
        metadata_record(&self.cx, None)
    }

    /// The END record, with the counts of every event encoded.
    pub fn end(&self) -> Record {
        metadata_record(&self.cx, Some(&self.counts))
    }

    /// The events of the next consecutive changes; `last` when they end the transaction (the
    /// final snapshot row is then marked `"last"`).
    pub fn encode_changes(&mut self, changes: &[Change], last: bool) -> Result<Vec<Record>> {
        let commit_lsn = self.cx.commit_lsn;
        let last_snapshot = if last {
            changes
                .iter()
                .rposition(|change| matches!(change.op, Op::Snapshot { .. }))
        } else {
            None
        };
        let tables = &self.tables;
        let mut emitter = Emitter {
            cx: &self.cx,
            counts: &mut self.counts,
            records: Vec::with_capacity(changes.len()),
        };
        for (index, change) in changes.iter().enumerate() {
            let at = Site {
                commit_lsn,
                ordinal: change.ordinal,
            };
            let table = |relation: &RelationId| {
                tables.get(relation).ok_or(DebeziumError::UnknownRelation {
                    commit_lsn,
                    ordinal: change.ordinal,
                    relation: *relation,
                })
            };
            match &change.op {
                Op::Insert { relation, new } => {
                    let t = table(relation)?;
                    let key = t.table.key(new, None, at)?;
                    let after = t.table.encode_row(new, at)?;
                    emitter.event(t, 'c', None, Some(after), key, "false", at);
                }
                Op::Snapshot { relation, row } => {
                    let t = table(relation)?;
                    let key = t.table.key(row, None, at)?;
                    let after = t.table.encode_row(row, at)?;
                    let snapshot = if Some(index) == last_snapshot {
                        "last"
                    } else {
                        "true"
                    };
                    emitter.event(t, 'r', None, Some(after), key, snapshot, at);
                }
                Op::Update { relation, old, new } => {
                    let t = table(relation)?;
                    let old = old.as_ref().map(|old| old.row());
                    match old {
                        Some(old) if t.table.has_key() && t.table.key_changed(old, new) => {
                            emitter.delete(t, old, at)?;
                            let key = t.table.key(new, Some(old), at)?;
                            let after = t.table.encode_row(new, at)?;
                            emitter.event(t, 'c', None, Some(after), key, "false", at);
                        }
                        _ => {
                            let key = t.table.key(new, old, at)?;
                            let before = old.map(|old| t.table.encode_row(old, at)).transpose()?;
                            let after = t.table.encode_row(new, at)?;
                            emitter.event(t, 'u', before, Some(after), key, "false", at);
                        }
                    }
                }
                Op::Delete { relation, old } => {
                    emitter.delete(table(relation)?, old.row(), at)?;
                }
                Op::Truncate { relations, .. } => {
                    for relation in relations {
                        emitter.event(table(relation)?, 't', None, None, None, "false", at);
                    }
                }
                // walproof's DDL capture travels as logical messages; Debezium emits messages only
                // when asked to, on their own topic, and nothing here needs them.
                Op::Message { .. } => {}
            }
        }
        Ok(emitter.records)
    }
}

/// A table with its Connect schemas serialised once per transaction (when schemas are on).
struct Prepared {
    /// The shape it was prepared from.
    relation: Relation,
    table: Table,
    key_schema: Option<Vec<u8>>,
    envelope_schema: Option<Vec<u8>>,
}

impl Prepared {
    fn new(relation: &Relation, prefix: &str, options: &DebeziumOptions) -> Prepared {
        let table = Table::new(relation, prefix);
        let (key_schema, envelope_schema) = if options.schemas {
            (
                Some(table.key_schema().to_bytes()),
                Some(envelope_schema(&table).to_bytes()),
            )
        } else {
            (None, None)
        };
        Prepared {
            relation: relation.clone(),
            table,
            key_schema,
            envelope_schema,
        }
    }
}

struct Emitter<'a> {
    cx: &'a TransactionContext<'a>,
    counts: &'a mut EventCounts,
    records: Vec<Record>,
}

impl Emitter<'_> {
    #[allow(clippy::too_many_arguments)] // one event's parts, each distinct
    fn event(
        &mut self,
        t: &Prepared,
        op: char,
        before: Option<EncodedRow>,
        after: Option<EncodedRow>,
        key: Option<Json>,
        snapshot: &'static str,
        at: Site,
    ) -> Option<Vec<u8>> {
        let (total_order, data_collection_order) = self.counts.count(&t.table.data_collection);
        let event = Event {
            table: &t.table,
            op,
            before,
            after,
            snapshot,
            ordinal: at.ordinal,
            total_order,
            data_collection_order,
        };
        let key = key.map(|key| converter_bytes(t.key_schema.as_deref(), &key));
        self.records.push(Record {
            topic: t.table.topic.clone(),
            partition: partition_for(key.as_deref(), self.cx.options.partitions),
            value: Some(event.value_bytes(self.cx, t.envelope_schema.as_deref())),
            key: key.clone(),
        });
        key
    }

    /// A `d` event for `old`, then its tombstone when the table is keyed and tombstones are
    /// on (a tombstone without a key would delete nothing under compaction).
    fn delete(&mut self, t: &Prepared, old: &Row, at: Site) -> Result<()> {
        let key = t.table.key(old, None, at)?;
        let before = t.table.encode_row(old, at)?;
        let key = self.event(t, 'd', Some(before), None, key, "false", at);
        if let Some(key) = key.filter(|_| self.cx.options.tombstones) {
            self.records.push(Record {
                topic: t.table.topic.clone(),
                partition: partition_for(Some(&key), self.cx.options.partitions),
                key: Some(key),
                value: None,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use serde_json::{Value as J, json};
    use walproof_core::{Change, Column, Lsn, OldRow, Relation, ReplicaIdentity, Value};

    use super::*;

    const USERS: RelationId = 16384;
    const LOG: RelationId = 16390;
    const COMMIT_LSN: u64 = 0x16_B374_D848;

    fn column(name: &str, type_oid: u32, key: bool) -> Column {
        Column {
            name: name.into(),
            type_oid,
            type_modifier: -1,
            key,
        }
    }

    fn users() -> Relation {
        Relation {
            id: USERS,
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

    /// A table without key columns (REPLICA IDENTITY FULL, committed as a multiset).
    fn log() -> Relation {
        Relation {
            id: LOG,
            schema: "audit".into(),
            name: "log".into(),
            replica_identity: ReplicaIdentity::Full,
            columns: vec![column("line", 25, false)],
        }
    }

    fn row(values: &[Option<&str>]) -> Row {
        Row(values
            .iter()
            .map(|v| v.map_or(Value::Null, Value::from))
            .collect())
    }

    fn transaction(ops: Vec<Op>) -> Transaction {
        Transaction {
            commit_lsn: Lsn::new(COMMIT_LSN),
            xid: 4711,
            commit_time_us: 1_763_700_000_123_456,
            relations: BTreeMap::from([(USERS, users()), (LOG, log())]),
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

    fn options() -> DebeziumOptions {
        DebeziumOptions {
            schemas: false,
            ..DebeziumOptions::new("walproof", "appdb")
        }
    }

    fn insert(id: &str, name: &str) -> Op {
        Op::Insert {
            relation: USERS,
            new: row(&[Some(id), Some(name), None]),
        }
    }

    fn parse(bytes: &Option<Vec<u8>>) -> J {
        bytes
            .as_ref()
            .map_or(J::Null, |b| serde_json::from_slice(b).unwrap())
    }

    fn encode(ops: Vec<Op>, options: &DebeziumOptions) -> TransactionRecords {
        encode_transaction(&transaction(ops), options).unwrap()
    }

    #[test]
    fn an_insert_is_a_create_event_with_the_full_envelope() {
        let records = encode(vec![insert("1", "ada")], &options());
        assert_eq!(records.changes.len(), 1);
        let record = &records.changes[0];
        assert_eq!(record.topic, "walproof.public.users");
        assert_eq!(parse(&record.key), json!({"id": 1}));
        let value = parse(&record.value);
        assert_eq!(
            value,
            json!({
                "before": null,
                "after": {"id": 1, "name": "ada", "bio": null},
                "source": {
                    "version": VERSION_FOR_TESTS,
                    "connector": "postgresql",
                    "name": "walproof",
                    "ts_ms": 1_763_700_000_123_i64,
                    "snapshot": "false",
                    "db": "appdb",
                    "sequence": format!(r#"["{COMMIT_LSN}","{COMMIT_LSN}"]"#),
                    "ts_us": 1_763_700_000_123_456_i64,
                    "ts_ns": 1_763_700_000_123_456_000_i64,
                    "schema": "public",
                    "table": "users",
                    "txId": 4711,
                    "lsn": COMMIT_LSN,
                    "xmin": null,
                },
                "transaction": {
                    "id": format!("4711:{COMMIT_LSN}"),
                    "total_order": 1,
                    "data_collection_order": 1,
                },
                "op": "c",
                "ts_ms": 1_763_700_000_123_i64,
                "ts_us": 1_763_700_000_123_456_i64,
                "ts_ns": 1_763_700_000_123_456_000_i64,
                "walproof": {
                    "commit_lsn": "16/B374D848",
                    "ordinal": 0,
                    "unchanged": {"before": [], "after": []},
                    "text": {"before": {}, "after": {}},
                },
            })
        );
    }

    const VERSION_FOR_TESTS: &str = super::super::envelope::VERSION;

    #[test]
    fn an_update_under_default_identity_has_no_before_and_lists_unchanged_toast_columns() {
        let records = encode(
            vec![Op::Update {
                relation: USERS,
                old: None,
                new: Row(vec!["1".into(), "ada".into(), Value::Unchanged]),
            }],
            &options(),
        );
        let value = parse(&records.changes[0].value);
        assert_eq!(value["op"], "u");
        assert_eq!(value["before"], J::Null);
        assert_eq!(value["after"], json!({"id": 1, "name": "ada", "bio": null}));
        assert_eq!(value["walproof"]["unchanged"]["after"], json!(["bio"]));
        let text = String::from_utf8(records.changes[0].value.clone().unwrap()).unwrap();
        assert!(!text.contains("__debezium_unavailable_value"));
    }

    #[test]
    fn an_update_under_full_identity_carries_the_whole_old_row_as_before() {
        let records = encode(
            vec![Op::Update {
                relation: USERS,
                old: Some(OldRow::Full(row(&[Some("1"), Some("ada"), Some("x")]))),
                new: row(&[Some("1"), Some("ada l."), Some("x")]),
            }],
            &options(),
        );
        assert_eq!(records.changes.len(), 1);
        let value = parse(&records.changes[0].value);
        assert_eq!(value["op"], "u");
        assert_eq!(value["before"], json!({"id": 1, "name": "ada", "bio": "x"}));
    }

    #[test]
    fn a_delete_under_default_identity_has_only_the_key_in_before_and_a_tombstone_after_it() {
        let records = encode(
            vec![Op::Delete {
                relation: USERS,
                old: OldRow::Key(row(&[Some("7"), None, None])),
            }],
            &options(),
        );
        assert_eq!(records.changes.len(), 2);
        let (delete, tombstone) = (&records.changes[0], &records.changes[1]);
        let value = parse(&delete.value);
        assert_eq!(value["op"], "d");
        assert_eq!(value["before"], json!({"id": 7, "name": null, "bio": null}));
        assert_eq!(value["after"], J::Null);
        assert_eq!(tombstone.value, None);
        assert_eq!(tombstone.key, delete.key);
        assert_eq!(tombstone.topic, delete.topic);
        assert_eq!(tombstone.partition, delete.partition);
    }

    #[test]
    fn tombstones_can_be_turned_off() {
        let options = DebeziumOptions {
            tombstones: false,
            ..options()
        };
        let records = encode(
            vec![Op::Delete {
                relation: USERS,
                old: OldRow::Key(row(&[Some("7"), None, None])),
            }],
            &options,
        );
        assert_eq!(records.changes.len(), 1);
        assert!(records.changes[0].value.is_some());
    }

    #[test]
    fn a_primary_key_change_is_a_delete_of_the_old_key_a_tombstone_and_a_create() {
        let records = encode(
            vec![Op::Update {
                relation: USERS,
                old: Some(OldRow::Key(row(&[Some("1"), None, None]))),
                new: Row(vec!["2".into(), "ada".into(), Value::Unchanged]),
            }],
            &options(),
        );
        let ops: Vec<J> = records
            .changes
            .iter()
            .map(|r| parse(&r.value).get("op").cloned().unwrap_or(J::Null))
            .collect();
        assert_eq!(ops, [json!("d"), J::Null, json!("c")]);
        assert_eq!(parse(&records.changes[0].key), json!({"id": 1}));
        assert_eq!(parse(&records.changes[1].key), json!({"id": 1}));
        assert_eq!(parse(&records.changes[2].key), json!({"id": 2}));
        let create = parse(&records.changes[2].value);
        assert_eq!(create["before"], J::Null);
        assert_eq!(create["walproof"]["unchanged"]["after"], json!(["bio"]));
        assert_eq!(create["transaction"]["total_order"], 2);
        assert_eq!(parse(&records.end.value)["event_count"], 2);
    }

    #[test]
    fn a_table_without_key_columns_has_null_keys_and_no_tombstones() {
        let records = encode(
            vec![
                Op::Insert {
                    relation: LOG,
                    new: row(&[Some("hello")]),
                },
                Op::Delete {
                    relation: LOG,
                    old: OldRow::Full(row(&[Some("hello")])),
                },
            ],
            &DebeziumOptions {
                partitions: 8,
                ..options()
            },
        );
        assert_eq!(records.changes.len(), 2);
        for record in &records.changes {
            assert_eq!(record.topic, "walproof.audit.log");
            assert_eq!(record.key, None);
            assert_eq!(record.partition, 0);
        }
        assert_eq!(
            parse(&records.changes[1].value)["before"],
            json!({"line": "hello"})
        );
    }

    #[test]
    fn a_truncate_is_one_event_per_table_with_a_null_key() {
        let records = encode(
            vec![Op::Truncate {
                relations: vec![USERS, LOG],
                cascade: false,
                restart_identity: false,
            }],
            &options(),
        );
        assert_eq!(records.changes.len(), 2);
        let topics: Vec<&str> = records.changes.iter().map(|r| r.topic.as_str()).collect();
        assert_eq!(topics, ["walproof.public.users", "walproof.audit.log"]);
        for record in &records.changes {
            assert_eq!(record.key, None);
            let value = parse(&record.value);
            assert_eq!(value["op"], "t");
            assert_eq!(value["before"], J::Null);
            assert_eq!(value["after"], J::Null);
        }
    }

    #[test]
    fn logical_messages_produce_no_events() {
        let records = encode(
            vec![Op::Message {
                prefix: "walproof.ddl".into(),
                content: b"ALTER TABLE users ADD COLUMN x int".to_vec(),
            }],
            &options(),
        );
        assert!(records.changes.is_empty());
        assert_eq!(parse(&records.end.value)["event_count"], 0);
    }

    #[test]
    fn snapshot_rows_are_reads_and_the_last_one_is_marked_last() {
        let snapshot = |id: &str| Op::Snapshot {
            relation: USERS,
            row: row(&[Some(id), Some("x"), None]),
        };
        let records = encode(
            vec![snapshot("1"), snapshot("2"), snapshot("3")],
            &options(),
        );
        let marks: Vec<J> = records
            .changes
            .iter()
            .map(|r| parse(&r.value)["source"]["snapshot"].clone())
            .collect();
        assert_eq!(marks, [json!("true"), json!("true"), json!("last")]);
        assert!(records.changes.iter().all(|r| parse(&r.value)["op"] == "r"));
    }

    #[test]
    fn begin_and_end_records_carry_the_id_and_the_event_counts_per_table() {
        let records = encode(
            vec![
                insert("1", "a"),
                Op::Insert {
                    relation: LOG,
                    new: row(&[Some("x")]),
                },
                insert("2", "b"),
                Op::Delete {
                    relation: USERS,
                    old: OldRow::Key(row(&[Some("1"), None, None])),
                },
            ],
            &options(),
        );
        let id = format!("4711:{COMMIT_LSN}");
        for record in [&records.begin, &records.end] {
            assert_eq!(record.topic, "walproof.transaction");
            assert_eq!(record.partition, 0);
            assert_eq!(parse(&record.key), json!({"id": id}));
        }
        assert_eq!(
            parse(&records.begin.value),
            json!({"status": "BEGIN", "id": id, "event_count": null,
                   "data_collections": null, "ts_ms": 1_763_700_000_123_i64})
        );
        assert_eq!(
            parse(&records.end.value),
            json!({"status": "END", "id": id, "event_count": 4,
                   "data_collections": [
                       {"data_collection": "public.users", "event_count": 3},
                       {"data_collection": "audit.log", "event_count": 1},
                   ],
                   "ts_ms": 1_763_700_000_123_i64})
        );
        let orders: Vec<(J, J)> = records
            .changes
            .iter()
            .filter(|r| r.value.is_some())
            .map(|r| {
                let t = parse(&r.value)["transaction"].clone();
                (t["total_order"].clone(), t["data_collection_order"].clone())
            })
            .collect();
        assert_eq!(
            orders,
            [
                (json!(1), json!(1)),
                (json!(2), json!(1)),
                (json!(3), json!(2)),
                (json!(4), json!(3)),
            ]
        );
        // 4 events and 1 tombstone.
        assert_eq!(records.changes.len(), 5);
    }

    #[test]
    fn encoding_the_same_transaction_twice_gives_identical_bytes() {
        let ops = || {
            vec![
                insert("1", "a"),
                Op::Update {
                    relation: USERS,
                    old: Some(OldRow::Key(row(&[Some("1"), None, None]))),
                    new: row(&[Some("2"), Some("b"), None]),
                },
                Op::Truncate {
                    relations: vec![LOG],
                    cascade: false,
                    restart_identity: false,
                },
            ]
        };
        for schemas in [false, true] {
            let options = DebeziumOptions {
                schemas,
                partitions: 6,
                ..options()
            };
            assert_eq!(encode(ops(), &options), encode(ops(), &options));
        }
    }

    #[test]
    fn keyed_records_are_partitioned_by_their_key_bytes() {
        let options = DebeziumOptions {
            partitions: 6,
            ..options()
        };
        let records = encode(
            (0..50).map(|i| insert(&i.to_string(), "x")).collect(),
            &options,
        );
        for record in &records.changes {
            let key = record.key.as_deref();
            assert_eq!(record.partition, partition_for(key, 6));
            assert!((0..6).contains(&record.partition));
        }
        let distinct: std::collections::BTreeSet<i32> =
            records.changes.iter().map(|r| r.partition).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn with_schemas_on_keys_and_values_carry_their_connect_schema() {
        let options = DebeziumOptions::new("walproof", "appdb");
        let records = encode(vec![insert("1", "ada")], &options);
        let key = parse(&records.changes[0].key);
        assert_eq!(key["payload"], json!({"id": 1}));
        assert_eq!(
            key["schema"],
            json!({"type": "struct", "fields": [{"type": "int32", "optional": false, "field": "id"}],
                   "optional": false, "name": "walproof.public.users.Key"})
        );
        let value = parse(&records.changes[0].value);
        assert_eq!(value["payload"]["after"]["name"], "ada");
        let schema = &value["schema"];
        assert_eq!(schema["name"], "walproof.public.users.Envelope");
        let fields: Vec<&str> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "before",
                "after",
                "source",
                "transaction",
                "op",
                "ts_ms",
                "ts_us",
                "ts_ns",
                "walproof"
            ]
        );
        assert_eq!(schema["fields"][1]["name"], "walproof.public.users.Value");
        assert_eq!(
            schema["fields"][1]["fields"][1],
            json!({"type": "string", "optional": true, "field": "name"})
        );
        // Every payload field is described by the schema.
        let payload_fields: Vec<&String> = value["payload"].as_object().unwrap().keys().collect();
        assert_eq!(payload_fields.len(), fields.len());
        let begin = parse(&records.begin.value);
        assert_eq!(
            begin["schema"]["name"],
            "io.debezium.connector.common.TransactionMetadataValue"
        );
        assert_eq!(begin["payload"]["status"], "BEGIN");
    }

    #[test]
    fn values_a_debezium_type_cannot_carry_are_null_with_their_text_alongside() {
        let mut tx = transaction(vec![Op::Insert {
            relation: 16400,
            new: row(&[Some("1"), Some("NaN"), Some("infinity")]),
        }]);
        tx.relations.insert(
            16400,
            Relation {
                id: 16400,
                schema: "public".into(),
                name: "prices".into(),
                replica_identity: ReplicaIdentity::Default,
                columns: vec![
                    column("id", 23, true),
                    column("amount", 1700, false),
                    column("valid_until", 1082, false),
                ],
            },
        );
        let records = encode_transaction(&tx, &options()).unwrap();
        let value = parse(&records.changes[0].value);
        assert_eq!(
            value["after"],
            json!({"id": 1, "amount": null, "valid_until": null})
        );
        assert_eq!(
            value["walproof"]["text"]["after"],
            json!({"amount": "NaN", "valid_until": "infinity"})
        );
    }

    #[test]
    fn invalid_input_is_a_typed_error_naming_what_is_wrong() {
        let bad_value = transaction(vec![insert("one", "a")]);
        match encode_transaction(&bad_value, &options()) {
            Err(DebeziumError::InvalidValue {
                table,
                column,
                type_oid,
                value,
                ordinal,
                ..
            }) => {
                assert_eq!((table.as_str(), column.as_str()), ("public.users", "id"));
                assert_eq!((type_oid, value.as_str(), ordinal), (23, "one", 0));
            }
            other => panic!("{other:?}"),
        }
        let unknown = transaction(vec![Op::Insert {
            relation: 1,
            new: row(&[]),
        }]);
        assert!(matches!(
            encode_transaction(&unknown, &options()),
            Err(DebeziumError::UnknownRelation { relation: 1, .. })
        ));
        let narrow = transaction(vec![Op::Insert {
            relation: USERS,
            new: row(&[Some("1")]),
        }]);
        assert!(matches!(
            encode_transaction(&narrow, &options()),
            Err(DebeziumError::RowWidth {
                expected: 3,
                got: 1,
                ..
            })
        ));
        let no_partitions = DebeziumOptions {
            partitions: 0,
            ..options()
        };
        assert!(matches!(
            encode_transaction(&transaction(vec![]), &no_partitions),
            Err(DebeziumError::InvalidOptions { .. })
        ));
    }

    #[test]
    fn topic_names_replace_characters_kafka_does_not_allow() {
        let mut tx = transaction(vec![Op::Insert {
            relation: 16401,
            new: row(&[Some("x")]),
        }]);
        tx.relations.insert(
            16401,
            Relation {
                id: 16401,
                schema: "Sales Data".into(),
                name: "größe".into(),
                replica_identity: ReplicaIdentity::Full,
                columns: vec![column("v", 25, false)],
            },
        );
        let records = encode_transaction(&tx, &options()).unwrap();
        assert_eq!(records.changes[0].topic, "walproof.Sales_Data.gr__e");
        assert_eq!(parse(&records.changes[0].value)["source"]["table"], "größe");
    }
}
