//! Change records: what happened to which row of which relation, in transaction order.

use crate::value::Value;

/// The source's relation OID; changes refer to their relation by it.
pub type RelationId = u32;

/// A published table as the source described it when the change was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The source's relation OID.
    pub id: RelationId,
    /// Schema (namespace) name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// How the source identifies old rows of this table.
    pub replica_identity: ReplicaIdentity,
    /// Columns in attribute order.
    pub columns: Vec<Column>,
}

impl Relation {
    /// Whether any column is part of the row key (primary key or replica identity index).
    pub fn has_key(&self) -> bool {
        self.columns.iter().any(|column| column.key)
    }
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// `pg_type` OID.
    pub type_oid: u32,
    /// `atttypmod`, -1 when none.
    pub type_modifier: i32,
    /// Part of the row key: the primary key, else the replica identity index.
    pub key: bool,
}

/// `REPLICA IDENTITY` of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// The primary key.
    Default,
    /// No old row is logged.
    Nothing,
    /// The whole old row is logged.
    Full,
    /// A unique index's columns are logged.
    Index,
}

impl ReplicaIdentity {
    /// From Postgres's code (`pg_class.relreplident`, pgoutput's Relation message): `d`, `n`,
    /// `f` or `i`.
    pub fn from_code(code: u8) -> Option<ReplicaIdentity> {
        match code {
            b'd' => Some(ReplicaIdentity::Default),
            b'n' => Some(ReplicaIdentity::Nothing),
            b'f' => Some(ReplicaIdentity::Full),
            b'i' => Some(ReplicaIdentity::Index),
            _ => None,
        }
    }

    /// From the code as text (`relreplident` read over SQL, or JSON).
    pub fn from_code_text(code: &str) -> Option<ReplicaIdentity> {
        match code.as_bytes() {
            [code] => ReplicaIdentity::from_code(*code),
            _ => None,
        }
    }

    /// Postgres's code for it.
    pub fn code(self) -> u8 {
        match self {
            ReplicaIdentity::Default => b'd',
            ReplicaIdentity::Nothing => b'n',
            ReplicaIdentity::Full => b'f',
            ReplicaIdentity::Index => b'i',
        }
    }
}

/// A tuple in attribute order of its relation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row(pub Vec<Value>);

/// The old tuple the source sent with an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldRow {
    /// Only the key columns carry data; the other positions are NULL placeholders.
    Key(Row),
    /// The whole old row (REPLICA IDENTITY FULL).
    Full(Row),
}

impl OldRow {
    /// The tuple, whichever kind it is.
    pub fn row(&self) -> &Row {
        match self {
            OldRow::Key(row) | OldRow::Full(row) => row,
        }
    }
}

/// One change of a source transaction. Its identity is (commit LSN, `ordinal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position within its transaction, from 0.
    pub ordinal: u32,
    /// What happened.
    pub op: Op,
}

/// What a [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new row.
    Insert {
        /// The row's relation.
        relation: RelationId,
        /// The inserted row.
        new: Row,
    },
    /// A changed row.
    Update {
        /// The row's relation.
        relation: RelationId,
        /// The old tuple, when the key changed or the table has REPLICA IDENTITY FULL.
        old: Option<OldRow>,
        /// The new row; may hold [`Value::Unchanged`] markers.
        new: Row,
    },
    /// A removed row.
    Delete {
        /// The row's relation.
        relation: RelationId,
        /// The key (or, with REPLICA IDENTITY FULL, the whole row) of the removed row.
        old: OldRow,
    },
    /// A row of the initial snapshot.
    Snapshot {
        /// The row's relation.
        relation: RelationId,
        /// The row as the snapshot saw it.
        row: Row,
    },
    /// Every row of these relations was removed.
    Truncate {
        /// The truncated relations.
        relations: Vec<RelationId>,
        /// `TRUNCATE … CASCADE`.
        cascade: bool,
        /// `TRUNCATE … RESTART IDENTITY`.
        restart_identity: bool,
    },
    /// A transactional logical message, e.g. DDL captured on the source.
    Message {
        /// The message's prefix (walproof's DDL capture uses its own).
        prefix: String,
        /// The message's bytes.
        content: Vec<u8>,
    },
}

impl Op {
    /// The Debezium `op` code: `c`, `u`, `d`, `r`, `t`, or `m` for a message.
    pub fn code(&self) -> char {
        match self {
            Op::Insert { .. } => 'c',
            Op::Update { .. } => 'u',
            Op::Delete { .. } => 'd',
            Op::Snapshot { .. } => 'r',
            Op::Truncate { .. } => 't',
            Op::Message { .. } => 'm',
        }
    }

    /// The relations this change touches.
    pub fn relations(&self) -> &[RelationId] {
        match self {
            Op::Insert { relation, .. }
            | Op::Update { relation, .. }
            | Op::Delete { relation, .. }
            | Op::Snapshot { relation, .. } => std::slice::from_ref(relation),
            Op::Truncate { relations, .. } => relations,
            Op::Message { .. } => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_replica_identity_codes_parse() {
        assert_eq!(
            ReplicaIdentity::from_code_text("d"),
            Some(ReplicaIdentity::Default)
        );
        assert_eq!(
            ReplicaIdentity::from_code_text("n"),
            Some(ReplicaIdentity::Nothing)
        );
        assert_eq!(
            ReplicaIdentity::from_code_text("f"),
            Some(ReplicaIdentity::Full)
        );
        assert_eq!(
            ReplicaIdentity::from_code_text("i"),
            Some(ReplicaIdentity::Index)
        );
        assert_eq!(ReplicaIdentity::from_code_text("x"), None);
        assert_eq!(ReplicaIdentity::from_code_text("dd"), None);
        for identity in [
            ReplicaIdentity::Default,
            ReplicaIdentity::Nothing,
            ReplicaIdentity::Full,
            ReplicaIdentity::Index,
        ] {
            assert_eq!(ReplicaIdentity::from_code(identity.code()), Some(identity));
        }
    }
}
