//! Ledger entries: the units of `<prefix>.ledger`, and their versioned binary encoding.
//!
//! The encoding is the Protobuf schema `proto/walproof/ledger/v1/ledger.proto`; [`wire`] holds
//! the types generated from it. Decoding validates everything the schema cannot express (every
//! oneof present, every referenced relation described, rows as wide as their relation) and
//! returns a [`DecodeError`] naming what is wrong; it never panics on any input.

use std::collections::BTreeMap;

use prost::Message as _;

use crate::change::{Change, Column, OldRow, Op, Relation, RelationId, ReplicaIdentity, Row};
use crate::lsn::Lsn;
use crate::value::Value;

/// Types generated from `ledger.proto` (package `walproof.ledger.v1`).
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/walproof.ledger.v1.rs"));
}

/// The schema version this crate writes and reads (`Envelope.version`).
pub const LEDGER_VERSION: u32 = 1;

/// A committed source transaction, whole, as the decoder assembles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Commit LSN: the transaction's identity and its place in ledger order.
    pub commit_lsn: Lsn,
    /// Source transaction id.
    pub xid: u32,
    /// Commit time at the source, microseconds since the Unix epoch (UTC).
    pub commit_time_us: i64,
    /// Every relation the changes refer to.
    pub relations: BTreeMap<RelationId, Relation>,
    /// Changes in order; `changes[i].ordinal == i`.
    pub changes: Vec<Change>,
}

impl Transaction {
    /// Splits the transaction into its encoded ledger entries; see [`PartSplitter`].
    pub fn split(&self, max_entry_bytes: usize) -> Vec<EncodedEntry> {
        let mut splitter = PartSplitter::new(
            self.commit_lsn,
            self.xid,
            self.commit_time_us,
            self.relations.values(),
            max_entry_bytes,
        );
        let mut entries: Vec<EncodedEntry> = self
            .changes
            .iter()
            .filter_map(|change| splitter.push(change.clone()))
            .collect();
        entries.push(splitter.finish());
        entries
    }
}

/// An encoded `walproof.ledger.v1.Entry` with its identity, ready to be sealed into the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEntry {
    /// Commit LSN of the source transaction.
    pub commit_lsn: Lsn,
    /// 0-based part number.
    pub part: u32,
    /// Whether this is the transaction's final part.
    pub last: bool,
    /// The encoded entry.
    pub bytes: Vec<u8>,
    /// How many changes it carries.
    pub changes: usize,
}

/// Cuts a transaction's changes, as they stream in, into consecutive ledger entries
/// (`part` 0..=k, only the final one marked `last`) of at most `max_entry_bytes` of encoded
/// changes each; a single change larger than that gets an entry of its own. Each entry carries
/// the relations its changes refer to, so it can be read on its own.
///
/// Holds at most one entry's worth of changes: a transaction of any size streams through it in
/// bounded memory.
#[derive(Debug)]
pub struct PartSplitter {
    commit_lsn: Lsn,
    xid: u32,
    commit_time_us: i64,
    max_entry_bytes: usize,
    relations: BTreeMap<RelationId, wire::Relation>,
    next_part: u32,
    pending: Vec<wire::Change>,
    pending_bytes: usize,
}

impl PartSplitter {
    /// A splitter for the transaction committed at `commit_lsn`; `relations` must describe
    /// every relation its changes refer to (more can be added with
    /// [`PartSplitter::add_relation`]).
    pub fn new<'a>(
        commit_lsn: Lsn,
        xid: u32,
        commit_time_us: i64,
        relations: impl IntoIterator<Item = &'a Relation>,
        max_entry_bytes: usize,
    ) -> PartSplitter {
        PartSplitter {
            commit_lsn,
            xid,
            commit_time_us,
            max_entry_bytes,
            relations: relations
                .into_iter()
                .map(|r| (r.id, relation_to_wire(r)))
                .collect(),
            next_part: 0,
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// Describes a relation that changes pushed from now on refer to. When it redefines a
    /// relation that changes already waiting in the current entry use (a schema change inside
    /// the transaction), that entry is cut first and returned, so every entry describes its
    /// changes with the shape they were made under.
    pub fn add_relation(&mut self, relation: &Relation) -> Option<EncodedEntry> {
        let wire = relation_to_wire(relation);
        let redefined = self
            .relations
            .get(&relation.id)
            .is_some_and(|known| *known != wire);
        let emitted = (redefined && !self.pending.is_empty()).then(|| self.emit(false));
        self.relations.insert(relation.id, wire);
        emitted
    }

    /// Adds the next change; returns the previous entry when this change starts a new one.
    pub fn push(&mut self, change: Change) -> Option<EncodedEntry> {
        let change = change_into_wire(change);
        let bytes = change.encoded_len();
        let full = !self.pending.is_empty() && self.pending_bytes + bytes > self.max_entry_bytes;
        let emitted = full.then(|| self.emit(false));
        self.pending_bytes += bytes;
        self.pending.push(change);
        emitted
    }

    /// The final entry, marked `last` (it carries no changes only if the transaction had none).
    pub fn finish(mut self) -> EncodedEntry {
        self.emit(true)
    }

    fn emit(&mut self, last: bool) -> EncodedEntry {
        let changes = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut ids: Vec<RelationId> = changes
            .iter()
            .flat_map(|c| match &c.op {
                Some(wire::change::Op::Insert(i)) => vec![i.relation],
                Some(wire::change::Op::Update(u)) => vec![u.relation],
                Some(wire::change::Op::Delete(d)) => vec![d.relation],
                Some(wire::change::Op::Snapshot(s)) => vec![s.relation],
                Some(wire::change::Op::Truncate(t)) => t.relations.clone(),
                Some(wire::change::Op::Message(_)) | None => vec![],
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let count = changes.len();
        let entry = wire::Entry {
            commit_lsn: self.commit_lsn.as_u64(),
            part: self.next_part,
            last,
            body: Some(wire::entry::Body::Transaction(wire::TransactionPart {
                xid: self.xid,
                commit_time_us: self.commit_time_us,
                relations: ids
                    .iter()
                    .filter_map(|id| self.relations.get(id).cloned())
                    .collect(),
                changes,
            })),
        };
        let part = self.next_part;
        self.next_part += 1;
        EncodedEntry {
            commit_lsn: self.commit_lsn,
            part,
            last,
            bytes: entry.encode_to_vec(),
            changes: count,
        }
    }
}

/// One ledger entry; its identity is (`commit_lsn`, `part`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Commit LSN of the source transaction.
    pub commit_lsn: Lsn,
    /// 0-based part number within the transaction.
    pub part: u32,
    /// Whether this is the transaction's final part.
    pub last: bool,
    /// What the entry carries.
    pub body: EntryBody,
}

/// The content of a [`LedgerEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryBody {
    /// A whole transaction or a consecutive slice of it.
    Transaction(TransactionPart),
    /// Voids the earlier parts of the same commit LSN; the transaction follows again whole.
    Abandon {
        /// How many parts of the abandoned run reached the ledger.
        parts_written: u32,
    },
}

/// A transaction's changes, or a consecutive slice of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionPart {
    /// Source transaction id.
    pub xid: u32,
    /// Commit time at the source, microseconds since the Unix epoch (UTC).
    pub commit_time_us: i64,
    /// The relations `changes` refer to, in id order.
    pub relations: Vec<Relation>,
    /// The changes, ordinals ascending.
    pub changes: Vec<Change>,
}

/// Bytes that are not a valid ledger envelope or entry. Every variant names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not Protobuf of the expected message.
    #[error("{message} is not valid Protobuf: {source}")]
    Protobuf {
        /// Which message was being decoded.
        message: &'static str,
        /// What prost reported.
        source: prost::DecodeError,
    },
    /// The envelope declares a schema version this build does not know.
    #[error("unsupported ledger version {version} (this build reads version {LEDGER_VERSION})")]
    UnsupportedVersion {
        /// The declared version.
        version: u32,
    },
    /// A hash field is not 32 bytes long.
    #[error("{field} is {len} bytes long, expected 32")]
    HashLength {
        /// The field.
        field: &'static str,
        /// Its actual length.
        len: usize,
    },
    /// The envelope's hash is not SHA-256(prev_hash ‖ entry): the entry or a hash was edited.
    #[error("entry hash mismatch: envelope states {stated}, its content hashes to {computed}")]
    HashMismatch {
        /// The hash the envelope carries.
        stated: crate::Digest,
        /// The hash of the envelope's prev_hash and entry bytes.
        computed: crate::Digest,
    },
    /// A required field or oneof is absent.
    #[error("{field} is missing")]
    Missing {
        /// The field, as `Message.field`.
        field: &'static str,
    },
    /// An enum field holds a number the schema does not define.
    #[error("{field} holds unknown value {value}")]
    UnknownEnum {
        /// The field.
        field: &'static str,
        /// The number found.
        value: i32,
    },
    /// A change refers to a relation the entry does not describe.
    #[error("change {ordinal} refers to relation {relation}, which the entry does not describe")]
    UnknownRelation {
        /// The change's ordinal.
        ordinal: u32,
        /// The relation id it names.
        relation: RelationId,
    },
    /// A row has a different number of values than its relation has columns.
    #[error(
        "change {ordinal}: row has {got} values but relation {relation} has {expected} columns"
    )]
    RowWidth {
        /// The change's ordinal.
        ordinal: u32,
        /// The relation id.
        relation: RelationId,
        /// The relation's column count.
        expected: usize,
        /// The row's value count.
        got: usize,
    },
    /// An abandon marker that is not `part = 0, last = false`.
    #[error(
        "abandon marker for {commit_lsn} has part {part} and last={last}, expected part 0 and last=false"
    )]
    AbandonShape {
        /// Its commit LSN.
        commit_lsn: Lsn,
        /// Its part.
        part: u32,
        /// Its last flag.
        last: bool,
    },
}

impl LedgerEntry {
    /// Encodes the entry as a `walproof.ledger.v1.Entry`.
    pub fn encode(&self) -> Vec<u8> {
        entry_to_wire(self).encode_to_vec()
    }

    /// Decodes and validates a `walproof.ledger.v1.Entry`.
    pub fn decode(bytes: &[u8]) -> Result<LedgerEntry, DecodeError> {
        let wire = wire::Entry::decode(bytes).map_err(|source| DecodeError::Protobuf {
            message: "Entry",
            source,
        })?;
        entry_from_wire(wire)
    }
}

fn entry_to_wire(entry: &LedgerEntry) -> wire::Entry {
    let body = match &entry.body {
        EntryBody::Transaction(part) => wire::entry::Body::Transaction(wire::TransactionPart {
            xid: part.xid,
            commit_time_us: part.commit_time_us,
            relations: part.relations.iter().map(relation_to_wire).collect(),
            changes: part.changes.iter().cloned().map(change_into_wire).collect(),
        }),
        EntryBody::Abandon { parts_written } => wire::entry::Body::Abandon(wire::Abandon {
            parts_written: *parts_written,
        }),
    };
    wire::Entry {
        commit_lsn: entry.commit_lsn.as_u64(),
        part: entry.part,
        last: entry.last,
        body: Some(body),
    }
}

fn relation_to_wire(relation: &Relation) -> wire::Relation {
    let identity = match relation.replica_identity {
        ReplicaIdentity::Default => wire::ReplicaIdentity::Default,
        ReplicaIdentity::Nothing => wire::ReplicaIdentity::Nothing,
        ReplicaIdentity::Full => wire::ReplicaIdentity::Full,
        ReplicaIdentity::Index => wire::ReplicaIdentity::Index,
    };
    wire::Relation {
        id: relation.id,
        schema: relation.schema.clone(),
        name: relation.name.clone(),
        replica_identity: identity.into(),
        columns: relation
            .columns
            .iter()
            .map(|c| wire::Column {
                name: c.name.clone(),
                type_oid: c.type_oid,
                type_modifier: c.type_modifier,
                key: c.key,
            })
            .collect(),
    }
}

// Conversions to the wire types take their input by value: the decoder's hot path moves every
// value's text into the encoding instead of copying it.

fn row_into_wire(row: Row) -> wire::Row {
    let values = row
        .0
        .into_iter()
        .map(|value| wire::Value {
            kind: Some(match value {
                Value::Text(text) => wire::value::Kind::Text(text),
                Value::Null => wire::value::Kind::Null(wire::Null {}),
                Value::Unchanged => wire::value::Kind::Unchanged(wire::Unchanged {}),
            }),
        })
        .collect();
    wire::Row { values }
}

fn old_row_into_wire(old: OldRow) -> wire::OldRow {
    let (key_only, row) = match old {
        OldRow::Key(row) => (true, row),
        OldRow::Full(row) => (false, row),
    };
    wire::OldRow {
        key_only,
        row: Some(row_into_wire(row)),
    }
}

fn change_into_wire(change: Change) -> wire::Change {
    use wire::change::Op as W;
    let op = match change.op {
        Op::Insert { relation, new } => W::Insert(wire::Insert {
            relation,
            new: Some(row_into_wire(new)),
        }),
        Op::Update { relation, old, new } => W::Update(wire::Update {
            relation,
            old: old.map(old_row_into_wire),
            new: Some(row_into_wire(new)),
        }),
        Op::Delete { relation, old } => W::Delete(wire::Delete {
            relation,
            old: Some(old_row_into_wire(old)),
        }),
        Op::Snapshot { relation, row } => W::Snapshot(wire::SnapshotRow {
            relation,
            row: Some(row_into_wire(row)),
        }),
        Op::Truncate {
            relations,
            cascade,
            restart_identity,
        } => W::Truncate(wire::Truncate {
            relations,
            cascade,
            restart_identity,
        }),
        Op::Message { prefix, content } => W::Message(wire::LogicalMessage { prefix, content }),
    };
    wire::Change {
        ordinal: change.ordinal,
        op: Some(op),
    }
}

fn entry_from_wire(entry: wire::Entry) -> Result<LedgerEntry, DecodeError> {
    let commit_lsn = Lsn::new(entry.commit_lsn);
    let body = match entry.body.ok_or(DecodeError::Missing {
        field: "Entry.body",
    })? {
        wire::entry::Body::Abandon(abandon) => {
            if entry.part != 0 || entry.last {
                return Err(DecodeError::AbandonShape {
                    commit_lsn,
                    part: entry.part,
                    last: entry.last,
                });
            }
            EntryBody::Abandon {
                parts_written: abandon.parts_written,
            }
        }
        wire::entry::Body::Transaction(part) => {
            let relations = part
                .relations
                .into_iter()
                .map(relation_from_wire)
                .collect::<Result<Vec<_>, _>>()?;
            let widths: BTreeMap<RelationId, usize> =
                relations.iter().map(|r| (r.id, r.columns.len())).collect();
            let changes = part
                .changes
                .into_iter()
                .map(|change| change_from_wire(change, &widths))
                .collect::<Result<Vec<_>, _>>()?;
            EntryBody::Transaction(TransactionPart {
                xid: part.xid,
                commit_time_us: part.commit_time_us,
                relations,
                changes,
            })
        }
    };
    Ok(LedgerEntry {
        commit_lsn,
        part: entry.part,
        last: entry.last,
        body,
    })
}

fn relation_from_wire(relation: wire::Relation) -> Result<Relation, DecodeError> {
    let replica_identity = match wire::ReplicaIdentity::try_from(relation.replica_identity) {
        Ok(wire::ReplicaIdentity::Default) => ReplicaIdentity::Default,
        Ok(wire::ReplicaIdentity::Nothing) => ReplicaIdentity::Nothing,
        Ok(wire::ReplicaIdentity::Full) => ReplicaIdentity::Full,
        Ok(wire::ReplicaIdentity::Index) => ReplicaIdentity::Index,
        Ok(wire::ReplicaIdentity::Unspecified) | Err(_) => {
            return Err(DecodeError::UnknownEnum {
                field: "Relation.replica_identity",
                value: relation.replica_identity,
            });
        }
    };
    Ok(Relation {
        id: relation.id,
        schema: relation.schema,
        name: relation.name,
        replica_identity,
        columns: relation
            .columns
            .into_iter()
            .map(|c| Column {
                name: c.name,
                type_oid: c.type_oid,
                type_modifier: c.type_modifier,
                key: c.key,
            })
            .collect(),
    })
}

/// Checks a row against its relation while converting it.
struct RowContext<'a> {
    ordinal: u32,
    widths: &'a BTreeMap<RelationId, usize>,
}

impl RowContext<'_> {
    fn width(&self, relation: RelationId) -> Result<usize, DecodeError> {
        self.widths
            .get(&relation)
            .copied()
            .ok_or(DecodeError::UnknownRelation {
                ordinal: self.ordinal,
                relation,
            })
    }

    fn row(
        &self,
        relation: RelationId,
        row: Option<wire::Row>,
        field: &'static str,
    ) -> Result<Row, DecodeError> {
        let expected = self.width(relation)?;
        let row = row.ok_or(DecodeError::Missing { field })?;
        if row.values.len() != expected {
            return Err(DecodeError::RowWidth {
                ordinal: self.ordinal,
                relation,
                expected,
                got: row.values.len(),
            });
        }
        let values = row
            .values
            .into_iter()
            .map(|value| match value.kind {
                Some(wire::value::Kind::Text(text)) => Ok(Value::Text(text)),
                Some(wire::value::Kind::Null(_)) => Ok(Value::Null),
                Some(wire::value::Kind::Unchanged(_)) => Ok(Value::Unchanged),
                None => Err(DecodeError::Missing {
                    field: "Value.kind",
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Row(values))
    }

    fn old_row(
        &self,
        relation: RelationId,
        old: Option<wire::OldRow>,
        field: &'static str,
    ) -> Result<OldRow, DecodeError> {
        let old = old.ok_or(DecodeError::Missing { field })?;
        let row = self.row(relation, old.row, "OldRow.row")?;
        Ok(if old.key_only {
            OldRow::Key(row)
        } else {
            OldRow::Full(row)
        })
    }
}

fn change_from_wire(
    change: wire::Change,
    widths: &BTreeMap<RelationId, usize>,
) -> Result<Change, DecodeError> {
    use wire::change::Op as W;
    let ordinal = change.ordinal;
    let cx = RowContext { ordinal, widths };
    let op = match change
        .op
        .ok_or(DecodeError::Missing { field: "Change.op" })?
    {
        W::Insert(i) => Op::Insert {
            relation: i.relation,
            new: cx.row(i.relation, i.new, "Insert.new")?,
        },
        W::Update(u) => Op::Update {
            relation: u.relation,
            old: match u.old {
                Some(old) => Some(cx.old_row(u.relation, Some(old), "Update.old")?),
                None => None,
            },
            new: cx.row(u.relation, u.new, "Update.new")?,
        },
        W::Delete(d) => Op::Delete {
            relation: d.relation,
            old: cx.old_row(d.relation, d.old, "Delete.old")?,
        },
        W::Snapshot(s) => Op::Snapshot {
            relation: s.relation,
            row: cx.row(s.relation, s.row, "SnapshotRow.row")?,
        },
        W::Truncate(t) => {
            for relation in &t.relations {
                cx.width(*relation)?;
            }
            Op::Truncate {
                relations: t.relations,
                cascade: t.cascade,
                restart_identity: t.restart_identity,
            }
        }
        W::Message(m) => Op::Message {
            prefix: m.prefix,
            content: m.content,
        },
    };
    Ok(Change { ordinal, op })
}
