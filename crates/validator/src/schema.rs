//! The shadow database's tables: created from the shapes the stream describes (the initial
//! snapshot's relations bootstrap them) and altered at each schema change's position.
//!
//! A shadow table has the source's schema, name and columns, with each built-in type exactly
//! as the source declared it (`format_type` of its OID and modifier, asked of the shadow
//! server). A column of a type the source defined itself (an enum, a domain, a composite) is
//! `text` in the shadow: the stream carries its text output, and `text` gives that text back
//! unchanged, while the type's OID for the leaf hash comes from the stream. The key (primary
//! key, else replica identity index) is a unique index named `walproof_key_<source oid>`, so an
//! INSERT that conflicts is refused. Nothing else of the source is copied: no defaults (every
//! value comes from the stream), no checks, no foreign keys, no triggers.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use walproof_core::ident::{TableName, quote_ident};
use walproof_core::schema_change::TableChange;
use walproof_core::{Relation, RelationId};

/// The first OID Postgres gives to user-defined objects (`FirstNormalObjectId`).
pub const FIRST_USER_OID: u32 = 16384;

/// SQL type names of (type OID, modifier) pairs, as the shadow server spells them.
#[derive(Debug, Default, Clone)]
pub struct TypeNames {
    names: HashMap<(u32, i32), String>,
}

impl TypeNames {
    /// The pairs of `relations` whose names are not known yet (built-in types only: a
    /// user-defined type is `text` in the shadow).
    pub fn missing<'a>(
        &self,
        relations: impl IntoIterator<Item = &'a Relation>,
    ) -> Vec<(u32, i32)> {
        let wanted: BTreeSet<(u32, i32)> = relations
            .into_iter()
            .flat_map(|r| r.columns.iter())
            .map(|c| (c.type_oid, c.type_modifier))
            .filter(|(oid, _)| *oid < FIRST_USER_OID)
            .filter(|pair| !self.names.contains_key(pair))
            .collect();
        wanted.into_iter().collect()
    }

    /// Takes the names `other` holds.
    pub fn merge(&mut self, other: TypeNames) {
        self.names.extend(other.names);
    }

    /// Records the name of a pair.
    pub fn insert(&mut self, type_oid: u32, type_modifier: i32, name: String) {
        self.names.insert((type_oid, type_modifier), name);
    }

    /// The shadow's type for a column of the source.
    pub fn name(&self, type_oid: u32, type_modifier: i32) -> Result<&str, SchemaError> {
        if type_oid >= FIRST_USER_OID {
            return Ok("text");
        }
        self.names
            .get(&(type_oid, type_modifier))
            .map(String::as_str)
            .ok_or(SchemaError::UnknownType {
                type_oid,
                type_modifier,
            })
    }
}

/// A shape the shadow cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A built-in type whose name was not looked up (a bug: [`TypeNames::missing`] lists them).
    #[error("type OID {type_oid} (modifier {type_modifier}) has no name in the shadow database")]
    UnknownType {
        /// The type OID.
        type_oid: u32,
        /// The modifier.
        type_modifier: i32,
    },
}

/// The table's name in the shadow database (the source's).
pub fn table_name(relation: &Relation) -> TableName {
    TableName::new(&relation.schema, &relation.name)
}

fn key_index(relation: &Relation) -> String {
    format!("walproof_key_{}", relation.id)
}

fn key_columns(relation: &Relation) -> Vec<&str> {
    relation
        .columns
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name.as_str())
        .collect()
}

fn create_key_index(relation: &Relation) -> Option<String> {
    let keys = key_columns(relation);
    if keys.is_empty() {
        return None;
    }
    let columns: Vec<_> = keys.iter().map(|k| quote_ident(k)).collect();
    Some(format!(
        "CREATE UNIQUE INDEX {} ON {} ({})",
        key_index(relation),
        table_name(relation),
        columns.join(", ")
    ))
}

/// The statements that create `relation`'s table (its schema if need be, its key index).
pub fn create_table(relation: &Relation, types: &TypeNames) -> Result<Vec<String>, SchemaError> {
    let mut columns = String::new();
    for (i, column) in relation.columns.iter().enumerate() {
        if i > 0 {
            columns.push_str(", ");
        }
        let _ = write!(
            columns,
            "{} {}",
            quote_ident(&column.name),
            types.name(column.type_oid, column.type_modifier)?
        );
    }
    let mut statements = vec![
        format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(&relation.schema)
        ),
        format!("CREATE TABLE {} ({columns})", table_name(relation)),
    ];
    statements.extend(create_key_index(relation));
    Ok(statements)
}

/// The statement that drops `relation`'s table.
pub fn drop_table(relation: &Relation) -> String {
    format!("DROP TABLE {}", table_name(relation))
}

/// The statements that turn the table of shape `old` into `change`'s new shape, where the new
/// rows follow from the old ones (no rows follow in the stream): the table moved or renamed,
/// columns dropped, renamed (through temporary names, so two columns may swap names), added,
/// retyped; the key index rebuilt when the key columns changed.
pub fn alter_table(
    old: &Relation,
    change: &TableChange,
    types: &TypeNames,
) -> Result<Vec<String>, SchemaError> {
    let new = change.relation();
    let mut statements = Vec::new();
    let mut table = table_name(old);
    if new.schema != old.schema {
        statements.push(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(&new.schema)
        ));
        statements.push(format!(
            "ALTER TABLE {table} SET SCHEMA {}",
            quote_ident(&new.schema)
        ));
        table = TableName::new(&new.schema, &old.name);
    }
    if new.name != old.name {
        statements.push(format!(
            "ALTER TABLE {table} RENAME TO {}",
            quote_ident(&new.name)
        ));
    }
    let table = table_name(&new);
    let kept: BTreeSet<usize> = change
        .columns
        .iter()
        .filter_map(|c| c.was.map(|w| w as usize))
        .collect();
    for (i, column) in old.columns.iter().enumerate() {
        if !kept.contains(&i) {
            statements.push(format!(
                "ALTER TABLE {table} DROP COLUMN {}",
                quote_ident(&column.name)
            ));
        }
    }
    let renamed: Vec<(usize, &str)> = change
        .columns
        .iter()
        .filter_map(|c| {
            let was = c.was? as usize;
            let old_column = old.columns.get(was)?;
            (old_column.name != c.name).then_some((was, c.name.as_str()))
        })
        .collect();
    for (was, _) in &renamed {
        statements.push(format!(
            "ALTER TABLE {table} RENAME COLUMN {} TO __walproof_renaming_{was}",
            quote_ident(&old.columns[*was].name)
        ));
    }
    for (was, name) in &renamed {
        statements.push(format!(
            "ALTER TABLE {table} RENAME COLUMN __walproof_renaming_{was} TO {}",
            quote_ident(name)
        ));
    }
    for column in &change.columns {
        let type_name = types.name(column.type_oid, column.type_modifier)?;
        match column.was.and_then(|w| old.columns.get(w as usize)) {
            None => statements.push(format!(
                "ALTER TABLE {table} ADD COLUMN {} {type_name}",
                quote_ident(&column.name)
            )),
            Some(was)
                if (was.type_oid, was.type_modifier) != (column.type_oid, column.type_modifier) =>
            {
                let name = quote_ident(&column.name);
                statements.push(format!(
                    "ALTER TABLE {table} ALTER COLUMN {name} TYPE {type_name} USING {name}::text::{type_name}"
                ));
            }
            Some(_) => {}
        }
    }
    let old_keys: Vec<Option<&str>> = old
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key)
        .map(|(i, _)| {
            change
                .columns
                .iter()
                .find(|c| c.was == Some(i as u32))
                .map(|c| c.name.as_str())
        })
        .collect();
    let new_keys: Vec<Option<&str>> = key_columns(&new).into_iter().map(Some).collect();
    if old_keys != new_keys {
        statements.push(format!(
            "DROP INDEX IF EXISTS {}.{}",
            quote_ident(&new.schema),
            key_index(&new)
        ));
        statements.extend(create_key_index(&new));
    }
    Ok(statements)
}

/// The tables the shadow database holds, by source relation OID, each in the shape it has.
#[derive(Debug, Default, Clone)]
pub struct ShadowTables {
    tables: HashMap<RelationId, Relation>,
}

impl ShadowTables {
    /// The shape of a table the shadow holds.
    pub fn get(&self, id: RelationId) -> Option<&Relation> {
        self.tables.get(&id)
    }

    /// Records that the shadow holds `relation` in that shape.
    pub fn insert(&mut self, relation: Relation) {
        self.tables.insert(relation.id, relation);
    }

    /// Records that the shadow no longer holds the table.
    pub fn remove(&mut self, id: RelationId) -> Option<Relation> {
        self.tables.remove(&id)
    }

    /// Every table, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Relation> {
        self.tables.values()
    }
}

#[cfg(test)]
mod tests {
    use walproof_core::schema_change::{ColumnChange, TableChangeKind};
    use walproof_core::{Column, ReplicaIdentity};

    use super::*;

    fn types() -> TypeNames {
        let mut types = TypeNames::default();
        types.insert(23, -1, "integer".into());
        types.insert(25, -1, "text".into());
        types.insert(1043, 20, "character varying(16)".into());
        types
    }

    fn relation(columns: &[(&str, u32, i32, bool)]) -> Relation {
        Relation {
            id: 16390,
            schema: "public".into(),
            name: "Orders".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: columns
                .iter()
                .map(|(name, type_oid, type_modifier, key)| Column {
                    name: (*name).into(),
                    type_oid: *type_oid,
                    type_modifier: *type_modifier,
                    key: *key,
                })
                .collect(),
        }
    }

    fn change(columns: &[(&str, u32, i32, bool, Option<u32>)]) -> TableChange {
        TableChange {
            oid: 16390,
            schema: "public".into(),
            name: "Orders".into(),
            change: TableChangeKind::Altered,
            replica_identity: "d".into(),
            columns: columns
                .iter()
                .map(|(name, type_oid, type_modifier, key, was)| ColumnChange {
                    name: (*name).into(),
                    type_oid: *type_oid,
                    type_modifier: *type_modifier,
                    key: *key,
                    was: *was,
                })
                .collect(),
            rows_follow: false,
        }
    }

    #[test]
    fn a_table_is_created_with_declared_types_text_for_user_types_and_its_key_index() {
        let rel = relation(&[
            ("id", 23, -1, true),
            ("label", 1043, 20, false),
            ("mood", 16500, -1, false),
        ]);
        assert_eq!(
            create_table(&rel, &types()).unwrap(),
            [
                "CREATE SCHEMA IF NOT EXISTS public",
                r#"CREATE TABLE public."Orders" (id integer, label character varying(16), mood text)"#,
                r#"CREATE UNIQUE INDEX walproof_key_16390 ON public."Orders" (id)"#,
            ]
        );
        assert_eq!(
            types().missing([&relation(&[
                ("n", 1700, -1, false),
                ("m", 16500, -1, false)
            ])]),
            [(1700, -1)]
        );
        assert_eq!(
            create_table(&relation(&[("n", 1700, -1, false)]), &types()).unwrap_err(),
            SchemaError::UnknownType {
                type_oid: 1700,
                type_modifier: -1
            }
        );
    }

    #[test]
    fn an_alter_drops_swaps_adds_retypes_and_rebuilds_a_changed_key() {
        // Was (id key, a, b, c); b dropped, a and c swap names, id widened to key (id, n),
        // c retyped, n added.
        let old = relation(&[
            ("id", 23, -1, true),
            ("a", 25, -1, false),
            ("b", 25, -1, false),
            ("c", 25, -1, false),
        ]);
        let new = change(&[
            ("id", 23, -1, true, Some(0)),
            ("c", 25, -1, false, Some(1)),
            ("a", 23, -1, false, Some(3)),
            ("n", 23, -1, true, None),
        ]);
        assert_eq!(
            alter_table(&old, &new, &types()).unwrap(),
            [
                r#"ALTER TABLE public."Orders" DROP COLUMN b"#,
                r#"ALTER TABLE public."Orders" RENAME COLUMN a TO __walproof_renaming_1"#,
                r#"ALTER TABLE public."Orders" RENAME COLUMN c TO __walproof_renaming_3"#,
                r#"ALTER TABLE public."Orders" RENAME COLUMN __walproof_renaming_1 TO c"#,
                r#"ALTER TABLE public."Orders" RENAME COLUMN __walproof_renaming_3 TO a"#,
                r#"ALTER TABLE public."Orders" ALTER COLUMN a TYPE integer USING a::text::integer"#,
                r#"ALTER TABLE public."Orders" ADD COLUMN n integer"#,
                "DROP INDEX IF EXISTS public.walproof_key_16390",
                r#"CREATE UNIQUE INDEX walproof_key_16390 ON public."Orders" (id, n)"#,
            ]
        );
    }

    #[test]
    fn a_moved_and_renamed_table_keeps_its_key_index() {
        let old = relation(&[("id", 23, -1, true)]);
        let mut new = change(&[("key", 23, -1, true, Some(0))]);
        new.schema = "archive".into();
        new.name = "orders_2024".into();
        assert_eq!(
            alter_table(&old, &new, &types()).unwrap(),
            [
                "CREATE SCHEMA IF NOT EXISTS archive",
                r#"ALTER TABLE public."Orders" SET SCHEMA archive"#,
                r#"ALTER TABLE archive."Orders" RENAME TO orders_2024"#,
                "ALTER TABLE archive.orders_2024 RENAME COLUMN id TO __walproof_renaming_0",
                "ALTER TABLE archive.orders_2024 RENAME COLUMN __walproof_renaming_0 TO key",
            ]
        );
    }
}
