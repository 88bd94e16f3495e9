//! How each published table's changes are keyed in the tree, or why they cannot be.
//!
//! design.md, "Commitments": the key is the primary key, else the REPLICA IDENTITY USING INDEX
//! columns; a table with neither but REPLICA IDENTITY FULL is a multiset; anything else is
//! refused. The key must also be what updates and deletes actually carry, which is what the
//! replica identity decides.

use std::fmt;

use walproof_core::ReplicaIdentity;

use super::ident::TableName;
use super::problem::{Problem, Unkeyable, columns_list};

/// How a table's rows are keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKey {
    /// By the primary key.
    PrimaryKey {
        /// Its columns, in attribute order (the order pgoutput marks them in).
        columns: Vec<String>,
    },
    /// By the unique index named in REPLICA IDENTITY USING INDEX; the table has no primary key.
    ReplicaIdentityIndex {
        /// The index.
        index: String,
        /// Its columns, in attribute order.
        columns: Vec<String>,
    },
    /// No key: REPLICA IDENTITY FULL, rows committed as a multiset.
    Multiset,
}

impl fmt::Display for TableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableKey::PrimaryKey { columns } => {
                write!(f, "primary key ({})", columns_list(columns))
            }
            TableKey::ReplicaIdentityIndex { index, columns } => write!(
                f,
                "replica identity index {} ({})",
                super::ident::quote_ident(index),
                columns_list(columns)
            ),
            TableKey::Multiset => f.write_str("multiset (no key; REPLICA IDENTITY FULL)"),
        }
    }
}

/// One table whose changes the publication would carry, as setup found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table. For a partitioned table this is each leaf partition: without
    /// `publish_via_partition_root`, changes are published under the partition's own name.
    pub table: TableName,
    /// The partitioned table this is a partition of (its root).
    pub partition_of: Option<TableName>,
    /// Its REPLICA IDENTITY; `None` when the table was not found.
    pub replica_identity: Option<ReplicaIdentity>,
    /// How its rows are keyed, or what stops walproof from publishing it.
    pub key: Result<TableKey, Problem>,
}

/// An index as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) name: String,
    /// Key columns (not INCLUDE columns) in attribute order.
    pub(crate) columns: Vec<String>,
}

/// What decides a table's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyFacts {
    pub(crate) replica_identity: ReplicaIdentity,
    pub(crate) primary_key: Option<Index>,
    /// The index marked `indisreplident`, if any.
    pub(crate) identity_index: Option<Index>,
}

/// The key of `table`'s changes, or why there is none.
pub(crate) fn decide_key(table: &TableName, facts: &KeyFacts) -> Result<TableKey, Problem> {
    let unkeyable = |reason| Problem::Unkeyable {
        table: table.clone(),
        reason,
    };
    let primary_key = || TableKey::PrimaryKey {
        columns: facts
            .primary_key
            .as_ref()
            .map(|pk| pk.columns.clone())
            .unwrap_or_default(),
    };
    match (
        facts.replica_identity,
        &facts.primary_key,
        &facts.identity_index,
    ) {
        (ReplicaIdentity::Default | ReplicaIdentity::Full, Some(_), _) => Ok(primary_key()),
        (ReplicaIdentity::Full, None, _) => Ok(TableKey::Multiset),
        (ReplicaIdentity::Default, None, _) => Err(unkeyable(Unkeyable::NoKey)),
        (ReplicaIdentity::Nothing, pk, _) => Err(unkeyable(Unkeyable::Nothing {
            primary_key: pk.as_ref().map(|pk| pk.columns.clone()),
        })),
        (ReplicaIdentity::Index, pk, None) => Err(unkeyable(Unkeyable::IdentityIndexMissing {
            has_primary_key: pk.is_some(),
        })),
        (ReplicaIdentity::Index, Some(pk), Some(index)) if pk.name == index.name => {
            Ok(primary_key())
        }
        (ReplicaIdentity::Index, Some(pk), Some(index)) => {
            // The key would be the primary key, but deletes would carry only the identity
            // index's columns: the committer could not find the leaf to remove.
            Err(unkeyable(Unkeyable::IdentityIndexNotPrimaryKey {
                index: index.name.clone(),
                columns: index.columns.clone(),
                primary_key: pk.columns.clone(),
            }))
        }
        (ReplicaIdentity::Index, None, Some(index)) => Ok(TableKey::ReplicaIdentityIndex {
            index: index.name.clone(),
            columns: index.columns.clone(),
        }),
    }
}

/// REPLICA IDENTITY as SQL writes it.
pub(crate) fn replica_identity_sql(identity: ReplicaIdentity) -> &'static str {
    match identity {
        ReplicaIdentity::Default => "DEFAULT",
        ReplicaIdentity::Nothing => "NOTHING",
        ReplicaIdentity::Full => "FULL",
        ReplicaIdentity::Index => "USING INDEX",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str, columns: &[&str]) -> Option<Index> {
        Some(Index {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        })
    }

    fn decide(
        replica_identity: ReplicaIdentity,
        primary_key: Option<Index>,
        identity_index: Option<Index>,
    ) -> Result<TableKey, Problem> {
        decide_key(
            &TableName::new("public", "t"),
            &KeyFacts {
                replica_identity,
                primary_key,
                identity_index,
            },
        )
    }

    fn reason(result: Result<TableKey, Problem>) -> Unkeyable {
        match result {
            Err(Problem::Unkeyable { reason, .. }) => reason,
            other => panic!("expected an unkeyable table, got {other:?}"),
        }
    }

    #[test]
    fn a_primary_key_keys_the_table_under_default_or_full_identity() {
        for identity in [ReplicaIdentity::Default, ReplicaIdentity::Full] {
            assert_eq!(
                decide(identity, index("t_pkey", &["a", "b"]), None),
                Ok(TableKey::PrimaryKey {
                    columns: vec!["a".into(), "b".into()]
                })
            );
        }
    }

    #[test]
    fn a_replica_identity_index_keys_a_table_without_primary_key() {
        assert_eq!(
            decide(
                ReplicaIdentity::Index,
                None,
                index("t_email_key", &["email"])
            ),
            Ok(TableKey::ReplicaIdentityIndex {
                index: "t_email_key".into(),
                columns: vec!["email".into()]
            })
        );
    }

    #[test]
    fn replica_identity_using_the_primary_key_index_is_the_primary_key() {
        assert_eq!(
            decide(
                ReplicaIdentity::Index,
                index("t_pkey", &["id"]),
                index("t_pkey", &["id"])
            ),
            Ok(TableKey::PrimaryKey {
                columns: vec!["id".into()]
            })
        );
    }

    #[test]
    fn full_identity_without_primary_key_is_a_multiset() {
        assert_eq!(
            decide(ReplicaIdentity::Full, None, None),
            Ok(TableKey::Multiset)
        );
    }

    #[test]
    fn default_identity_without_primary_key_is_refused() {
        assert_eq!(
            reason(decide(ReplicaIdentity::Default, None, None)),
            Unkeyable::NoKey
        );
    }

    #[test]
    fn identity_nothing_is_refused_with_or_without_primary_key() {
        assert_eq!(
            reason(decide(ReplicaIdentity::Nothing, None, None)),
            Unkeyable::Nothing { primary_key: None }
        );
        assert_eq!(
            reason(decide(
                ReplicaIdentity::Nothing,
                index("t_pkey", &["id"]),
                None
            )),
            Unkeyable::Nothing {
                primary_key: Some(vec!["id".into()])
            }
        );
    }

    #[test]
    fn an_identity_index_other_than_the_primary_key_is_refused() {
        assert_eq!(
            reason(decide(
                ReplicaIdentity::Index,
                index("t_pkey", &["id"]),
                index("t_email_key", &["email"])
            )),
            Unkeyable::IdentityIndexNotPrimaryKey {
                index: "t_email_key".into(),
                columns: vec!["email".into()],
                primary_key: vec!["id".into()],
            }
        );
    }

    #[test]
    fn a_dropped_identity_index_is_refused() {
        assert_eq!(
            reason(decide(ReplicaIdentity::Index, None, None)),
            Unkeyable::IdentityIndexMissing {
                has_primary_key: false
            }
        );
    }
}
