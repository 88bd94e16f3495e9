//! Schema changes in the stream. pgoutput carries no DDL, so `walproof setup` installs DDL
//! capture on the source: event triggers that, inside the DDL's own transaction, emit a
//! transactional logical message with prefix [`SCHEMA_CHANGE_PREFIX`] describing every
//! published table whose shape the command changed, and — where a consumer cannot derive the
//! new rows from what it holds — the table's post-DDL rows under [`ROWS_PREFIX`].
//!
//! In the ledger the schema change stays a [`crate::Op::Message`] with the JSON bytes exactly
//! as the source emitted them, at its position in the transaction. The decoder turns the rows
//! batches into a [`crate::Op::Truncate`] of the table followed by its rows as
//! [`crate::Op::Snapshot`] changes, so a consumer replaces the table's content with the
//! source's values (a volatile default such as `now()` included) and never recomputes them.
//!
//! Where the new rows follow from the old (DROP COLUMN, RENAME COLUMN or TABLE, ADD COLUMN
//! without a default, a replica identity change that keeps the key), no rows follow: a consumer
//! reshapes each row it
//! holds with [`TableChange::reshape`], which maps every new column to the old column it was
//! (`was`, by attribute number on the source, so a rename is not mistaken for drop + add).
//!
//! ```
//! use walproof_core::schema_change::{SchemaChange, TableChangeKind};
//!
//! let json = br#"{"publication": "walproof", "tag": "ALTER TABLE",
//!   "statement": "ALTER TABLE t RENAME COLUMN v TO label",
//!   "tables": [{"oid": 16390, "schema": "public", "name": "t", "change": "altered",
//!     "replica_identity": "d", "rows_follow": false, "columns": [
//!       {"name": "id", "type_oid": 23, "type_modifier": -1, "key": true, "was": 0},
//!       {"name": "label", "type_oid": 25, "type_modifier": -1, "key": false, "was": 1}]}]}"#;
//! let change = SchemaChange::parse(json)?;
//! let table = &change.tables[0];
//! assert_eq!(table.change, TableChangeKind::Altered);
//! assert_eq!(table.reshape(&["7", "seven"]), [Some("7"), Some("seven")]);
//! # Ok::<(), walproof_core::schema_change::SchemaChangeError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::change::{Column, Op, Relation, RelationId, ReplicaIdentity};
use crate::ledger::Transaction;

/// Prefix of the logical message that describes a schema change (version 1 of its JSON).
pub const SCHEMA_CHANGE_PREFIX: &str = "walproof.ddl.v1";

/// Prefix of the logical messages that carry a table's post-DDL rows (version 1).
pub const ROWS_PREFIX: &str = "walproof.rows.v1";

/// One DDL command's effect on the published tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    /// The publication whose tables these are (a database may serve several).
    pub publication: String,
    /// The command tag, e.g. `ALTER TABLE`.
    pub tag: String,
    /// The statement as the client sent it (`current_query()`), for people; it may hold
    /// several statements.
    pub statement: String,
    /// Each published table whose shape or membership changed, in OID order.
    pub tables: Vec<TableChange>,
}

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableChangeKind {
    /// A new table the publication carries (`CREATE TABLE` under `FOR ALL TABLES`).
    Created,
    /// Its columns, key, replica identity or name changed, or it was rewritten.
    Altered,
    /// An existing table added to the publication; its rows follow.
    Published,
    /// Removed from the publication; the table still exists.
    Unpublished,
    /// Dropped.
    Dropped,
}

/// One table's new shape (for `unpublished` and `dropped`: its last shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChange {
    /// The table's OID, the relation id changes refer to.
    pub oid: RelationId,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// What happened.
    pub change: TableChangeKind,
    /// `relreplident`: `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: String,
    /// The columns as pgoutput will describe them from now on, in attribute order.
    pub columns: Vec<ColumnChange>,
    /// Whether the table's rows follow in [`ROWS_PREFIX`] messages of the same transaction.
    pub rows_follow: bool,
}

/// One column of a [`TableChange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnChange {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier.
    pub type_modifier: i32,
    /// Part of the row key (design.md's rule, as for pgoutput's relations).
    pub key: bool,
    /// The position this column had in the table's previous shape; `None` for a new column.
    pub was: Option<u32>,
}

/// A batch of one table's post-DDL rows: each value the type's text output under the
/// canonical settings, or `None` for NULL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsBatch {
    /// The publication.
    pub publication: String,
    /// The table's OID.
    pub oid: RelationId,
    /// Rows in the table's new column order.
    pub rows: Vec<Vec<Option<String>>>,
}

/// A schema-change or rows message that is not what DDL capture emits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {prefix} message: {reason}")]
pub struct SchemaChangeError {
    /// The message's prefix.
    pub prefix: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl SchemaChange {
    /// Parses a [`SCHEMA_CHANGE_PREFIX`] message's content.
    pub fn parse(content: &[u8]) -> Result<SchemaChange, SchemaChangeError> {
        let change: SchemaChange =
            serde_json::from_slice(content).map_err(|err| SchemaChangeError {
                prefix: SCHEMA_CHANGE_PREFIX,
                reason: err.to_string(),
            })?;
        if let Some(table) = change
            .tables
            .iter()
            .find(|t| ReplicaIdentity::from_code_text(&t.replica_identity).is_none())
        {
            return Err(SchemaChangeError {
                prefix: SCHEMA_CHANGE_PREFIX,
                reason: format!(
                    "table {}.{} has an unknown replica identity {:?}",
                    table.schema, table.name, table.replica_identity
                ),
            });
        }
        Ok(change)
    }
}

impl RowsBatch {
    /// Parses a [`ROWS_PREFIX`] message's content.
    pub fn parse(content: &[u8]) -> Result<RowsBatch, SchemaChangeError> {
        serde_json::from_slice(content).map_err(|err| SchemaChangeError {
            prefix: ROWS_PREFIX,
            reason: err.to_string(),
        })
    }
}

impl TableChange {
    /// The relation as changes after this one describe it.
    pub fn relation(&self) -> Relation {
        Relation {
            id: self.oid,
            schema: self.schema.clone(),
            name: self.name.clone(),
            // Checked when the message was parsed.
            replica_identity: ReplicaIdentity::from_code_text(&self.replica_identity)
                .unwrap_or(ReplicaIdentity::Default),
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    type_oid: c.type_oid,
                    type_modifier: c.type_modifier,
                    key: c.key,
                })
                .collect(),
        }
    }

    /// Whether the table leaves the set the publication carries.
    pub fn is_removed(&self) -> bool {
        matches!(
            self.change,
            TableChangeKind::Dropped | TableChangeKind::Unpublished
        )
    }

    /// A row of the previous shape in the new one: each column takes the value of the column
    /// it was, a new column is NULL (`None`). Only meaningful when no rows follow.
    pub fn reshape<T: Clone>(&self, old: &[T]) -> Vec<Option<T>> {
        self.columns
            .iter()
            .map(|c| c.was.and_then(|i| old.get(i as usize).cloned()))
            .collect()
    }
}

/// The schema changes a transaction carries, in order.
pub fn schema_changes(transaction: &Transaction) -> Result<Vec<SchemaChange>, SchemaChangeError> {
    transaction
        .changes
        .iter()
        .filter_map(|change| match &change.op {
            Op::Message { prefix, content } if prefix == SCHEMA_CHANGE_PREFIX => {
                Some(SchemaChange::parse(content))
            }
            _ => None,
        })
        .collect()
}

/// Each relation's shape as a transaction's changes go by. A whole [`Transaction`] describes
/// its relations in their latest shape, so a relation that a schema change inside the
/// transaction alters keeps the shape it had before the transaction until that change.
#[derive(Debug, Clone, Default)]
pub struct Shapes {
    current: BTreeMap<RelationId, Relation>,
    removed: Vec<RelationId>,
}

impl Shapes {
    /// The shapes of `relations`, outside any transaction (a consumer resuming from its own
    /// store).
    pub fn resume(relations: impl IntoIterator<Item = Relation>) -> Shapes {
        Shapes {
            current: relations.into_iter().map(|r| (r.id, r)).collect(),
            removed: Vec::new(),
        }
    }

    /// Starts `transaction`; returns its schema changes, for [`Shapes::follow`] in order.
    pub fn begin(
        &mut self,
        transaction: &Transaction,
    ) -> Result<Vec<SchemaChange>, SchemaChangeError> {
        let changes = schema_changes(transaction)?;
        let altered: BTreeSet<RelationId> = changes
            .iter()
            .flat_map(|c| c.tables.iter().map(|t| t.oid))
            .collect();
        for (id, relation) in &transaction.relations {
            if !altered.contains(id) || !self.current.contains_key(id) {
                self.current.insert(*id, relation.clone());
            }
        }
        Ok(changes)
    }

    /// A relation's shape at this point of the transaction.
    pub fn get(&self, id: RelationId) -> Option<&Relation> {
        self.current.get(&id)
    }

    /// Follows one schema change; returns each table's shape before it (if known). A removed
    /// table stays described until [`Shapes::end`], for the truncate that follows it.
    pub fn follow(&mut self, change: &SchemaChange) -> Vec<Option<Relation>> {
        change
            .tables
            .iter()
            .map(|table| {
                if table.is_removed() {
                    self.removed.push(table.oid);
                    self.current.get(&table.oid).cloned()
                } else {
                    self.current.insert(table.oid, table.relation())
                }
            })
            .collect()
    }

    /// Ends the transaction: removed tables are forgotten.
    pub fn end(&mut self) {
        for id in self.removed.drain(..) {
            self.current.remove(&id);
        }
    }

    /// Every relation in its current shape, by OID.
    pub fn relations(&self) -> impl Iterator<Item = &Relation> {
        self.current.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[(&str, Option<u32>)]) -> TableChange {
        TableChange {
            oid: 1,
            schema: "public".into(),
            name: "t".into(),
            change: TableChangeKind::Altered,
            replica_identity: "d".into(),
            columns: columns
                .iter()
                .map(|(name, was)| ColumnChange {
                    name: (*name).into(),
                    type_oid: 25,
                    type_modifier: -1,
                    key: *name == "id",
                    was: *was,
                })
                .collect(),
            rows_follow: false,
        }
    }

    #[test]
    fn reshape_follows_drops_renames_and_new_columns() {
        // Was (id, a, b, c): b dropped, c renamed to z, n added.
        let change = table(&[("id", Some(0)), ("a", Some(1)), ("z", Some(3)), ("n", None)]);
        assert_eq!(
            change.reshape(&["1", "x", "y", "w"]),
            [Some("1"), Some("x"), Some("w"), None]
        );
    }

    #[test]
    fn relation_carries_names_types_keys_and_identity() {
        let mut change = table(&[("id", Some(0)), ("v", None)]);
        change.replica_identity = "f".into();
        let relation = change.relation();
        assert_eq!(relation.replica_identity, ReplicaIdentity::Full);
        assert_eq!(
            relation
                .columns
                .iter()
                .map(|c| (c.name.as_str(), c.key))
                .collect::<Vec<_>>(),
            [("id", true), ("v", false)]
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_prefix() {
        let err = SchemaChange::parse(b"{\"tables\": 3}").unwrap_err();
        assert_eq!(err.prefix, SCHEMA_CHANGE_PREFIX);
        assert!(err.to_string().contains("walproof.ddl.v1"), "{err}");
        // An unknown replica identity is refused, naming the table, not taken as DEFAULT.
        let mut odd = table(&[("id", Some(0))]);
        odd.replica_identity = "z".into();
        let change = SchemaChange {
            publication: "p".into(),
            tag: "ALTER TABLE".into(),
            statement: String::new(),
            tables: vec![odd],
        };
        let err = SchemaChange::parse(&serde_json::to_vec(&change).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("public.t has an unknown replica identity \"z\""),
            "{err}"
        );
        let err = RowsBatch::parse(b"\xff").unwrap_err();
        assert!(err.to_string().starts_with("malformed walproof.rows.v1"));
    }

    #[test]
    fn rows_keep_null_apart_from_text() {
        let batch =
            RowsBatch::parse(br#"{"publication":"p","oid":7,"rows":[["1",null,""]]}"#).unwrap();
        assert_eq!(
            batch.rows,
            [vec![Some("1".to_owned()), None, Some(String::new())]]
        );
    }
}
