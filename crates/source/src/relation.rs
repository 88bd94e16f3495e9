//! The relations the stream has described, with the key walproof commits them under.

use std::collections::HashMap;

use walproof_core::{Column, Relation, RelationId, ReplicaIdentity};

use crate::pgoutput::RelationMessage;

/// Relations by OID, as the latest Relation message described them.
#[derive(Debug, Default)]
pub struct RelationCache {
    relations: HashMap<RelationId, Relation>,
}

/// Whether the key of a relation must come from the catalog: pgoutput flags every column as
/// part of the identity under REPLICA IDENTITY FULL, which says nothing about the primary key.
pub fn needs_primary_key_lookup(message: &RelationMessage<'_>) -> bool {
    message.replica_identity == ReplicaIdentity::Full
}

impl RelationCache {
    /// Records a relation's shape. The key columns are design.md's: the primary key, else the
    /// replica identity index; `primary_key` (column names from the catalog) is used for
    /// REPLICA IDENTITY FULL tables, where a table without one is a multiset (no key column).
    pub fn learn(&mut self, message: &RelationMessage<'_>, primary_key: &[String]) -> &Relation {
        let full = message.replica_identity == ReplicaIdentity::Full;
        let columns = message
            .columns
            .iter()
            .map(|column| Column {
                name: column.name.to_owned(),
                type_oid: column.type_oid,
                type_modifier: column.type_modifier,
                key: if full {
                    primary_key.iter().any(|k| k == column.name)
                } else {
                    column.key
                },
            })
            .collect();
        let relation = Relation {
            id: message.id,
            schema: message.namespace.to_owned(),
            name: message.name.to_owned(),
            replica_identity: message.replica_identity,
            columns,
        };
        self.relations.insert(message.id, relation);
        &self.relations[&message.id]
    }

    /// Records a relation's shape as DDL capture described it (the shape pgoutput will send).
    pub fn insert(&mut self, relation: Relation) {
        self.relations.insert(relation.id, relation);
    }

    /// The relation with this OID, if the stream has described it.
    pub fn get(&self, id: RelationId) -> Option<&Relation> {
        self.relations.get(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::RelationColumn;

    fn message(identity: ReplicaIdentity, key_flags: [bool; 2]) -> RelationMessage<'static> {
        let column = |name, key| RelationColumn {
            key,
            name,
            type_oid: 23,
            type_modifier: -1,
        };
        RelationMessage {
            id: 42,
            namespace: "public",
            name: "t",
            replica_identity: identity,
            columns: vec![column("id", key_flags[0]), column("v", key_flags[1])],
        }
    }

    fn keys(relation: &Relation) -> Vec<bool> {
        relation.columns.iter().map(|c| c.key).collect()
    }

    #[test]
    fn default_and_index_identities_key_by_the_flagged_columns() {
        let mut cache = RelationCache::default();
        let m = message(ReplicaIdentity::Default, [true, false]);
        assert!(!needs_primary_key_lookup(&m));
        assert_eq!(keys(cache.learn(&m, &[])), [true, false]);
        let m = message(ReplicaIdentity::Index, [false, true]);
        assert_eq!(keys(cache.learn(&m, &[])), [false, true]);
    }

    #[test]
    fn full_identity_keys_by_the_primary_key_or_is_a_multiset() {
        let mut cache = RelationCache::default();
        let m = message(ReplicaIdentity::Full, [true, true]);
        assert!(needs_primary_key_lookup(&m));
        assert_eq!(keys(cache.learn(&m, &["id".to_owned()])), [true, false]);
        assert!(
            !cache.learn(&m, &[]).has_key(),
            "no primary key: a multiset"
        );
        assert_eq!(cache.get(42).map(|r| r.name.as_str()), Some("t"));
    }
}
