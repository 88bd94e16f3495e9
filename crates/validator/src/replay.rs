//! A source transaction as the SQL statements that apply it to the shadow database.
//!
//! - Inserts and snapshot rows of one table in a row become one `COPY … FROM STDIN` in COPY's
//!   text format ([`COPY_MIN_ROWS`] rows or more) or one multi-row `INSERT` of quoted, untyped
//!   literals (fewer, where a COPY's extra round trips would cost more than it saves). Either
//!   way Postgres parses each value with its column's input function, so the shadow parses the
//!   very text the source printed.
//! - An update sets every column the change carries and leaves an unchanged TOASTed column as
//!   the shadow holds it. It finds its row by key: the old key when the source sent one (the key
//!   changed, or REPLICA IDENTITY FULL), else the new row's.
//! - Updates of one table with a one-column key in a row that keep their keys and leave the
//!   same columns unchanged ([`UPDATE_BY_TABLE_MIN_ROWS`] or more) go by COPY into a temporary
//!   table dropped at commit, then one `UPDATE … FROM` it by key: about three times faster in
//!   Postgres than a statement per row. A key updated twice starts a new batch, so each batch
//!   touches each row once, in the order of the changes.
//! - A table with no key (REPLICA IDENTITY FULL, a multiset) has no key to match: the row
//!   changed or deleted is one row (by `ctid`) whose every column's text output equals the old
//!   tuple's. `bool`, `char(n)`, `inet` and `cidr` cast to `text` differently from their text
//!   output, so those columns are compared through their output functions.
//! - Deletes of one table with a one-column key in a row become one `DELETE … WHERE key IN
//!   (…)`, which Postgres runs several times faster than a statement per row.
//! - A batched update's or delete's row count must equal its number of changes; when it does
//!   not, the statement's [`Keys`] find the key the shadow lacks (or the one deleted twice), so
//!   the divergence still names it.
//! - Each update and delete must touch exactly one row and each insert all of its rows: a
//!   statement that touches another number, or an insert that conflicts with the key index,
//!   is a divergence ([`Expect`]).
//! - A schema change is applied at its position ([`crate::schema`]).

use std::collections::HashSet;
use std::fmt::Write as _;

use walproof_core::ident::{TableName, push_literal, quote_ident, quote_literal};
use walproof_core::schema_change::{
    SCHEMA_CHANGE_PREFIX, SchemaChange, SchemaChangeError, Shapes, TableChange, TableChangeKind,
};
use walproof_core::{Change, Column, OldRow, Op, Relation, RelationId, Row, Transaction, Value};

use crate::schema::{self, SchemaError, ShadowTables, TypeNames};

/// Inserted rows in a row from which they go by `COPY` instead of a multi-row `INSERT`.
pub const COPY_MIN_ROWS: usize = 64;
/// About the most bytes of values in one `COPY` or multi-row `INSERT`.
const BATCH_BYTES: usize = 4 << 20;
/// Most keys in one batched `DELETE` or `UPDATE`.
const BATCH_KEYS: usize = 10_000;
/// Updates in a row from which they go by a temporary table: below, creating and dropping it
/// costs more than it saves (about 5 ms, some 200 single-row updates, measured).
pub const UPDATE_BY_TABLE_MIN_ROWS: usize = 256;

/// One statement of a replayed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The SQL; for a COPY, `COPY … FROM STDIN`.
    pub sql: String,
    /// A COPY's rows, in COPY's text format.
    pub copy: Option<String>,
    /// How many rows it must touch.
    pub expect: Expect,
    /// What it applies, for a divergence's message.
    pub subject: Subject,
    /// A batched update's or delete's keys, to name the one a row count that differs is about.
    pub keys: Option<Keys>,
}

impl Statement {
    /// A plain SQL statement.
    pub fn new(sql: String, expect: Expect, subject: Subject) -> Statement {
        Statement {
            sql,
            copy: None,
            expect,
            subject,
            keys: None,
        }
    }
}

/// The keys a batched `UPDATE` or `DELETE` touches, in the order of their changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// The key column, quoted: `(id)=(…)` in messages.
    pub column: String,
    /// Lists which of the keys the shadow holds, as their text output (one per row).
    pub probe: String,
    /// Each change's ordinal and key text.
    pub keys: Vec<(u32, String)>,
}

impl Keys {
    /// The keys of a batch of `table` by its one `column` of key, with the probe that lists
    /// which of those in `set` (SQL that can follow `IN`) the shadow holds.
    fn new<'k>(
        column: &Column,
        table: &TableName,
        set: &str,
        keys: impl Iterator<Item = (u32, &'k str)>,
    ) -> Keys {
        let name = quote_ident(&column.name);
        Keys {
            probe: format!(
                "SELECT {} FROM {table} WHERE {name} IN ({set})",
                text_output(&column.name, column.type_oid)
            ),
            column: name.into_owned(),
            keys: keys
                .map(|(ordinal, key)| (ordinal, key.to_owned()))
                .collect(),
        }
    }

    /// The first change that cannot touch one row when the shadow holds the keys `present`
    /// (before the statement): its key is not there, or an earlier delete took it. `None`
    /// when every change finds its row.
    pub fn first_missing(&self, present: &HashSet<String>) -> Option<(u32, &str)> {
        let mut deleted = HashSet::new();
        self.keys
            .iter()
            .find(|(_, key)| !present.contains(key) || !deleted.insert(key.as_str()))
            .map(|(ordinal, key)| (*ordinal, key.as_str()))
    }

    /// `(column)=(key)`, as a divergence names a row.
    pub fn describe(&self, key: &str) -> String {
        format!("({})=({key})", self.column)
    }
}

/// How many rows a statement must touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this many.
    Rows(u64),
    /// Any number (DDL, `TRUNCATE`).
    Any,
}

/// What a statement applies: the change (or the first of a batch), its table and its row key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The ordinal of the change in its transaction (the first one of a batch).
    pub ordinal: u32,
    /// How many changes the statement applies.
    pub changes: u32,
    /// What the statement does: `insert`, `update`, `delete`, `truncate`, `schema change`.
    pub action: &'static str,
    /// The table.
    pub table: String,
    /// The row's key as `(col, …)=(value, …)`, where one row is meant.
    pub key: Option<String>,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.action, self.table)?;
        if let Some(key) = &self.key {
            write!(f, " key {key}")?;
        }
        if self.changes > 1 {
            write!(
                f,
                " (changes {}..={})",
                self.ordinal,
                self.ordinal + self.changes - 1
            )
        } else {
            write!(f, " (change {})", self.ordinal)
        }
    }
}

/// A change the replay cannot turn into SQL. Each names the change and its table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A change refers to a relation the transaction does not describe.
    #[error("change {ordinal} refers to relation {relation}, which the stream never described")]
    UnknownRelation {
        /// The change.
        ordinal: u32,
        /// The relation OID.
        relation: RelationId,
    },
    /// A row with another number of values than its table has columns.
    #[error("change {ordinal} of {table} has {got} values for {expected} columns")]
    Width {
        /// The change.
        ordinal: u32,
        /// The table.
        table: String,
        /// Columns of the table.
        expected: usize,
        /// Values in the row.
        got: usize,
    },
    /// An unchanged-TOAST marker where a value is needed (an inserted row, a key).
    #[error("change {ordinal} of {table} has no value for column {column} (an unchanged marker)")]
    Unchanged {
        /// The change.
        ordinal: u32,
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// An update or delete of a table without a key that does not carry the whole old row.
    #[error(
        "change {ordinal} of {table} ({action}) has no whole old row, and the table has no key to find the row by"
    )]
    NoOldRow {
        /// The change.
        ordinal: u32,
        /// The table.
        table: String,
        /// `update` or `delete`.
        action: &'static str,
    },
    /// A relation whose shape changed without a schema change in the stream.
    #[error(
        "{table} changed shape at change {ordinal} without a schema change in the stream: the shadow cannot follow"
    )]
    ShapeWithoutSchemaChange {
        /// The change.
        ordinal: u32,
        /// The table.
        table: String,
    },
    /// A malformed schema change message.
    #[error(transparent)]
    SchemaChange(#[from] SchemaChangeError),
    /// A shape the shadow cannot take.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Turns transactions into statements, following each table's shape through the stream and
/// the shadow database's tables through the statements.
#[derive(Debug, Default, Clone)]
pub struct Replay {
    shapes: Shapes,
    shadow: ShadowTables,
}

/// The statements of one transaction being built.
struct Plan<'t> {
    statements: Vec<Statement>,
    /// Relations checked to have their current shape in the shadow in this transaction.
    resolved: HashSet<RelationId>,
    batch: Option<Batch<'t>>,
    /// Temporary tables created so far (each batched update's has its own name).
    temporaries: usize,
    /// Build no SQL (a replay that only follows shapes).
    follow_only: bool,
}

/// Changes of one table in a row, gathered into one statement.
struct Batch<'t> {
    /// The table, in the shape the shadow holds it.
    relation: Relation,
    /// The first change's ordinal.
    first: u32,
    /// About the bytes of the values gathered.
    bytes: usize,
    rows: Rows<'t>,
}

/// What a [`Batch`] gathers.
enum Rows<'t> {
    /// Inserted (or snapshot) rows.
    Inserted(Vec<&'t Row>),
    /// Deleted rows (of a one-column key): each change's ordinal, key and old row.
    Deleted(Vec<(u32, &'t str, &'t OldRow)>),
    /// Updated rows that keep their (one-column) key: which columns the changes carry (the
    /// same for all), and each change's ordinal, key and new row.
    Updated {
        carried: Vec<bool>,
        rows: Vec<(u32, &'t str, &'t Row)>,
        keys: HashSet<&'t str>,
    },
}

impl Replay {
    /// A replay resuming where an earlier one stood, between two transactions: the stream's
    /// `shapes`, and the tables the shadow holds, each in its shape.
    pub fn resume(
        shapes: impl IntoIterator<Item = Relation>,
        shadow: impl IntoIterator<Item = Relation>,
    ) -> Replay {
        let mut tables = ShadowTables::default();
        for relation in shadow {
            tables.insert(relation);
        }
        Replay {
            shapes: Shapes::resume(shapes),
            shadow: tables,
        }
    }

    /// The shadow's tables, each in its current shape.
    pub fn shadow(&self) -> &ShadowTables {
        &self.shadow
    }

    /// The column types a plan of `transaction` may need that `types` does not name yet: its
    /// relations' and those of every shape its schema changes bring (built only when it has
    /// some).
    pub fn missing_types(
        transaction: &Transaction,
        types: &TypeNames,
    ) -> Result<Vec<(u32, i32)>, SchemaChangeError> {
        let mut missing = types.missing(transaction.relations.values());
        for change in walproof_core::schema_change::schema_changes(transaction)? {
            let shapes: Vec<Relation> = change.tables.iter().map(TableChange::relation).collect();
            missing.extend(types.missing(&shapes));
        }
        missing.sort_unstable();
        missing.dedup();
        Ok(missing)
    }

    /// The statements that apply `transaction`, in order. The replay's view of the shadow
    /// moves on as if they were applied.
    pub fn plan(
        &mut self,
        transaction: &Transaction,
        types: &TypeNames,
    ) -> Result<Vec<Statement>, ReplayError> {
        self.walk(transaction, types, false)
    }

    /// Follows `transaction` as [`Replay::plan`] does without building its SQL: for a
    /// transaction the shadow database already holds.
    pub fn follow(
        &mut self,
        transaction: &Transaction,
        types: &TypeNames,
    ) -> Result<(), ReplayError> {
        self.walk(transaction, types, true).map(|_| ())
    }

    fn walk(
        &mut self,
        transaction: &Transaction,
        types: &TypeNames,
        follow_only: bool,
    ) -> Result<Vec<Statement>, ReplayError> {
        let mut schema_changes = self.shapes.begin(transaction)?.into_iter();
        let mut plan = Plan {
            statements: Vec::new(),
            resolved: HashSet::new(),
            batch: None,
            temporaries: 0,
            follow_only,
        };
        // Taken out of `self` so that `resolve` can read them while it changes the shadow.
        let mut shapes = std::mem::take(&mut self.shapes);
        for change in &transaction.changes {
            match &change.op {
                Op::Insert { relation, new } | Op::Snapshot { relation, row: new } => {
                    let relation = self.resolve(&shapes, &mut plan, *relation, change, types)?;
                    let relation = self.held(relation, change)?;
                    plan.push_row(relation, change.ordinal, new)?;
                }
                Op::Update { relation, old, new } => {
                    let relation = self.resolve(&shapes, &mut plan, *relation, change, types)?;
                    let relation = self.held(relation, change)?;
                    check_width(relation, change.ordinal, new)?;
                    if let Some(old) = old {
                        check_width(relation, change.ordinal, old.row())?;
                    }
                    if !plan.follow_only {
                        match kept_key(relation, old.as_ref(), new) {
                            Some(key) => plan.push_updated(relation, change.ordinal, key, new)?,
                            None => {
                                plan.flush()?;
                                plan.statements.push(update(
                                    relation,
                                    change.ordinal,
                                    old.as_ref(),
                                    new,
                                )?);
                            }
                        }
                    }
                }
                Op::Delete { relation, old } => {
                    let relation = self.resolve(&shapes, &mut plan, *relation, change, types)?;
                    let relation = self.held(relation, change)?;
                    check_width(relation, change.ordinal, old.row())?;
                    if !plan.follow_only {
                        match one_column_key(relation, old.row()) {
                            Some(key) => plan.push_deleted(relation, change.ordinal, key, old)?,
                            None => {
                                plan.flush()?;
                                plan.statements.push(delete(relation, change.ordinal, old)?);
                            }
                        }
                    }
                }
                Op::Truncate { relations, .. } => {
                    plan.flush()?;
                    let names: Vec<String> = relations
                        .iter()
                        .filter_map(|id| self.shadow.get(*id))
                        .map(|r| schema::table_name(r).to_string())
                        .collect();
                    if !names.is_empty() && !plan.follow_only {
                        plan.statements.push(Statement::new(
                            format!("TRUNCATE {}", names.join(", ")),
                            Expect::Any,
                            Subject {
                                ordinal: change.ordinal,
                                changes: 1,
                                action: "truncate",
                                table: names.join(", "),
                                key: None,
                            },
                        ));
                    }
                }
                Op::Message { prefix, .. } if prefix == SCHEMA_CHANGE_PREFIX => {
                    plan.flush()?;
                    // Parsed by `begin`, in the same order.
                    if let Some(schema_change) = schema_changes.next() {
                        shapes.follow(&schema_change);
                        self.apply_schema_change(&schema_change, change.ordinal, types, &mut plan)?;
                    }
                }
                Op::Message { .. } => {}
            }
        }
        plan.flush()?;
        shapes.end();
        self.shapes = shapes;
        Ok(plan.statements)
    }

    /// The shadow's table for `id`, created first if the shadow does not have it yet (the
    /// initial snapshot's relations bootstrap the shadow this way).
    fn resolve(
        &mut self,
        shapes: &Shapes,
        plan: &mut Plan<'_>,
        id: RelationId,
        change: &Change,
        types: &TypeNames,
    ) -> Result<RelationId, ReplayError> {
        let ordinal = change.ordinal;
        if !plan.resolved.contains(&id) {
            let shape = shapes.get(id).ok_or(ReplayError::UnknownRelation {
                ordinal,
                relation: id,
            })?;
            match self.shadow.get(id) {
                Some(held) if held == shape => {}
                Some(held) => {
                    return Err(ReplayError::ShapeWithoutSchemaChange {
                        ordinal,
                        table: schema::table_name(held).to_string(),
                    });
                }
                None => {
                    plan.flush()?;
                    if !plan.follow_only {
                        plan.ddl(
                            schema::create_table(shape, types)?,
                            ordinal,
                            shape,
                            "create table",
                        );
                    }
                    self.shadow.insert(shape.clone());
                }
            }
            plan.resolved.insert(id);
        }
        Ok(id)
    }

    /// The shape the shadow holds `id` in.
    fn held(&self, id: RelationId, change: &Change) -> Result<&Relation, ReplayError> {
        self.shadow.get(id).ok_or(ReplayError::UnknownRelation {
            ordinal: change.ordinal,
            relation: id,
        })
    }

    fn apply_schema_change(
        &mut self,
        schema_change: &SchemaChange,
        ordinal: u32,
        types: &TypeNames,
        plan: &mut Plan<'_>,
    ) -> Result<(), ReplayError> {
        for table in &schema_change.tables {
            plan.resolved.remove(&table.oid);
            let new = table.relation();
            let held = self.shadow.remove(table.oid);
            let mut statements = Vec::new();
            match (table.change, held) {
                (TableChangeKind::Dropped | TableChangeKind::Unpublished, held) => {
                    statements.extend(held.as_ref().map(schema::drop_table));
                }
                (TableChangeKind::Altered, Some(held)) if !table.rows_follow => {
                    statements.extend(schema::alter_table(&held, table, types)?);
                }
                (_, held) => {
                    statements.extend(held.as_ref().map(schema::drop_table));
                    statements.extend(schema::create_table(&new, types)?);
                }
            }
            if !plan.follow_only {
                plan.ddl(statements, ordinal, &new, "schema change");
            }
            if !table.is_removed() {
                self.shadow.insert(new);
            }
        }
        Ok(())
    }
}

impl<'t> Plan<'t> {
    fn ddl(
        &mut self,
        statements: Vec<String>,
        ordinal: u32,
        table: &Relation,
        action: &'static str,
    ) {
        let table = schema::table_name(table).to_string();
        self.statements.extend(statements.into_iter().map(|sql| {
            Statement::new(
                sql,
                Expect::Any,
                Subject {
                    ordinal,
                    changes: 1,
                    action,
                    table: table.clone(),
                    key: None,
                },
            )
        }));
    }

    /// The batch of `relation`'s changes that `joins` says the next change may join, a new
    /// one (after the last is flushed) when the last is of another table, may not be joined,
    /// or is full.
    fn batch(
        &mut self,
        relation: &Relation,
        ordinal: u32,
        joins: impl Fn(&Rows<'t>) -> bool,
        new: impl FnOnce() -> Rows<'t>,
    ) -> Result<&mut Batch<'t>, ReplayError> {
        let full = |b: &Batch<'t>| match &b.rows {
            Rows::Inserted(_) => b.bytes >= BATCH_BYTES,
            Rows::Deleted(keys) => b.bytes >= BATCH_BYTES || keys.len() >= BATCH_KEYS,
            Rows::Updated { rows, .. } => b.bytes >= BATCH_BYTES || rows.len() >= BATCH_KEYS,
        };
        if self
            .batch
            .as_ref()
            .is_some_and(|b| b.relation.id != relation.id || !joins(&b.rows) || full(b))
        {
            self.flush()?;
        }
        Ok(self.batch.get_or_insert_with(|| Batch {
            relation: relation.clone(),
            first: ordinal,
            bytes: 0,
            rows: new(),
        }))
    }

    fn push_row(
        &mut self,
        relation: &Relation,
        ordinal: u32,
        row: &'t Row,
    ) -> Result<(), ReplayError> {
        check_width(relation, ordinal, row)?;
        if self.follow_only {
            return Ok(());
        }
        if let Some(column) = relation
            .columns
            .iter()
            .zip(&row.0)
            .find_map(|(c, v)| matches!(v, Value::Unchanged).then_some(c))
        {
            return Err(ReplayError::Unchanged {
                ordinal,
                table: schema::table_name(relation).to_string(),
                column: column.name.clone(),
            });
        }
        let bytes = text_bytes(row, 3);
        let batch = self.batch(
            relation,
            ordinal,
            |rows| matches!(rows, Rows::Inserted(_)),
            || Rows::Inserted(Vec::new()),
        )?;
        batch.bytes += bytes;
        if let Rows::Inserted(rows) = &mut batch.rows {
            rows.push(row);
        }
        Ok(())
    }

    /// An update that keeps its one-column `key`; `new` has the relation's width.
    fn push_updated(
        &mut self,
        relation: &Relation,
        ordinal: u32,
        key: &'t str,
        new: &'t Row,
    ) -> Result<(), ReplayError> {
        let carries = |v: &Value| !matches!(v, Value::Unchanged);
        let bytes = text_bytes(new, 1);
        let batch = self.batch(
            relation,
            ordinal,
            |rows| match rows {
                Rows::Updated { carried, keys, .. } => {
                    carried.iter().zip(&new.0).all(|(c, v)| *c == carries(v)) && !keys.contains(key)
                }
                _ => false,
            },
            || Rows::Updated {
                carried: new.0.iter().map(carries).collect(),
                rows: Vec::new(),
                keys: HashSet::new(),
            },
        )?;
        batch.bytes += bytes;
        if let Rows::Updated { rows, keys, .. } = &mut batch.rows {
            rows.push((ordinal, key, new));
            keys.insert(key);
        }
        Ok(())
    }

    fn push_deleted(
        &mut self,
        relation: &Relation,
        ordinal: u32,
        key: &'t str,
        old: &'t OldRow,
    ) -> Result<(), ReplayError> {
        let batch = self.batch(
            relation,
            ordinal,
            |rows| matches!(rows, Rows::Deleted(_)),
            || Rows::Deleted(Vec::new()),
        )?;
        batch.bytes += key.len() + 4;
        if let Rows::Deleted(keys) = &mut batch.rows {
            keys.push((ordinal, key, old));
        }
        Ok(())
    }

    /// Turns the batch gathered so far into its statement.
    fn flush(&mut self) -> Result<(), ReplayError> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        let relation = &batch.relation;
        let table = schema::table_name(relation);
        let subject = |action, changes: usize, key| Subject {
            ordinal: batch.first,
            changes: changes as u32,
            action,
            table: table.to_string(),
            key,
        };
        let statement = match &batch.rows {
            Rows::Inserted(rows) if rows.len() >= COPY_MIN_ROWS => Statement {
                sql: format!("COPY {table} ({}) FROM STDIN", column_list(relation)),
                copy: Some(copy_text(
                    rows.iter().copied(),
                    &vec![true; relation.columns.len()],
                    batch.bytes,
                )),
                expect: Expect::Rows(rows.len() as u64),
                subject: subject("insert", rows.len(), None),
                keys: None,
            },
            Rows::Inserted(rows) => Statement::new(
                insert_values(&table, relation, rows, batch.bytes),
                Expect::Rows(rows.len() as u64),
                subject("insert", rows.len(), None),
            ),
            Rows::Updated { rows, .. } if rows.len() < UPDATE_BY_TABLE_MIN_ROWS => {
                for (ordinal, _, new) in rows {
                    // The key is kept: the new row finds the row.
                    self.statements.push(update(relation, *ordinal, None, new)?);
                }
                return Ok(());
            }
            Rows::Updated { carried, rows, .. } => {
                self.temporaries += 1;
                let temporary = format!("pg_temp.walproof_update_{}", self.temporaries);
                let names: Vec<_> = relation
                    .columns
                    .iter()
                    .zip(carried)
                    .filter(|(_, carried)| **carried)
                    .map(|(c, _)| quote_ident(&c.name))
                    .collect();
                let sets: Vec<String> = names.iter().map(|n| format!("{n} = u.{n}")).collect();
                let list = names.join(", ");
                let key = key_column(relation);
                let name = quote_ident(&key.name);
                let changes = rows.len();
                self.statements.push(Statement::new(
                    format!(
                        "CREATE TEMPORARY TABLE {temporary} ON COMMIT DROP AS \
                         SELECT {list} FROM {table} WITH NO DATA"
                    ),
                    Expect::Any,
                    subject("update", changes, None),
                ));
                self.statements.push(Statement {
                    sql: format!("COPY {temporary} ({list}) FROM STDIN"),
                    copy: Some(copy_text(
                        rows.iter().map(|(_, _, row)| *row),
                        carried,
                        batch.bytes,
                    )),
                    expect: Expect::Rows(changes as u64),
                    subject: subject("update", changes, None),
                    keys: None,
                });
                Statement {
                    sql: format!(
                        "UPDATE {table} AS t SET {} FROM {temporary} AS u WHERE t.{name} = u.{name}",
                        sets.join(", ")
                    ),
                    copy: None,
                    expect: Expect::Rows(changes as u64),
                    subject: subject("update", changes, None),
                    keys: Some(Keys::new(
                        key,
                        &table,
                        &format!("SELECT {name} FROM {temporary}"),
                        rows.iter().map(|(ordinal, key, _)| (*ordinal, *key)),
                    )),
                }
            }
            Rows::Deleted(keys) => {
                let column = key_column(relation);
                let name = quote_ident(&column.name);
                if let [(ordinal, _, old)] = keys[..] {
                    // One delete alone: by its key, as any other.
                    self.statements.push(delete(relation, ordinal, old)?);
                    return Ok(());
                }
                let mut list = String::with_capacity(batch.bytes);
                for (i, (_, key, _)) in keys.iter().enumerate() {
                    if i > 0 {
                        list.push_str(", ");
                    }
                    push_literal(&mut list, key);
                }
                Statement {
                    sql: format!("DELETE FROM {table} WHERE {name} IN ({list})"),
                    copy: None,
                    expect: Expect::Rows(keys.len() as u64),
                    subject: subject("delete", keys.len(), None),
                    keys: Some(Keys::new(
                        column,
                        &table,
                        &list,
                        keys.iter().map(|(ordinal, key, _)| (*ordinal, *key)),
                    )),
                }
            }
        };
        self.statements.push(statement);
        Ok(())
    }
}

/// About the bytes `row`'s values take as SQL or COPY text, with `around` bytes of quotes and
/// separators each.
fn text_bytes(row: &Row, around: usize) -> usize {
    row.0
        .iter()
        .map(|v| v.as_text().map_or(2, str::len) + around)
        .sum()
}

/// The table's columns, quoted, in order: `a, "B", c`.
fn column_list(relation: &Relation) -> String {
    let columns: Vec<_> = relation
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    columns.join(", ")
}

/// One multi-row `INSERT` of `rows` (no unchanged markers), values as untyped literals.
fn insert_values(table: &TableName, relation: &Relation, rows: &[&Row], bytes: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", column_list(relation));
    sql.reserve(bytes + rows.len() * 4);
    for (n, row) in rows.iter().enumerate() {
        sql.push_str(if n > 0 { ", (" } else { "(" });
        for (i, value) in row.0.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            match value {
                Value::Text(text) => push_literal(&mut sql, text),
                Value::Null | Value::Unchanged => sql.push_str("NULL"),
            }
        }
        sql.push(')');
    }
    sql
}

/// The `columns` of `rows` (no unchanged markers among them) in COPY's text format:
/// tab-separated, `\N` for NULL, and backslash, tab, newline and carriage return escaped.
fn copy_text<'r>(rows: impl Iterator<Item = &'r Row>, columns: &[bool], bytes: usize) -> String {
    let mut data = String::with_capacity(bytes);
    for row in rows {
        let values = row.0.iter().zip(columns).filter(|(_, copied)| **copied);
        for (i, (value, _)) in values.enumerate() {
            if i > 0 {
                data.push('\t');
            }
            match value {
                Value::Text(text) => {
                    let mut rest = text.as_str();
                    while let Some(at) = rest.find(['\\', '\t', '\n', '\r']) {
                        data.push_str(&rest[..at]);
                        data.push_str(match rest.as_bytes()[at] {
                            b'\\' => "\\\\",
                            b'\t' => "\\t",
                            b'\n' => "\\n",
                            _ => "\\r",
                        });
                        rest = &rest[at + 1..];
                    }
                    data.push_str(rest);
                }
                Value::Null | Value::Unchanged => data.push_str("\\N"),
            }
        }
        data.push('\n');
    }
    data
}

/// The one key column of a relation whose changes were batched by it.
fn key_column(relation: &Relation) -> &Column {
    relation
        .columns
        .iter()
        .find(|c| c.key)
        .expect("a one-column key")
}

/// The key of an update that keeps it, when `relation`'s key is one column: such updates
/// go by a temporary table.
fn kept_key<'r>(relation: &Relation, old: Option<&'r OldRow>, new: &'r Row) -> Option<&'r str> {
    let key = one_column_key(relation, new)?;
    match old {
        None => Some(key),
        Some(old) => (one_column_key(relation, old.row())? == key).then_some(key),
    }
}

/// The key of `row` when `relation`'s key is one column and `row` holds its text: such
/// deletes go by `DELETE … WHERE key IN (…)`.
fn one_column_key<'r>(relation: &Relation, row: &'r Row) -> Option<&'r str> {
    let mut keys = relation.columns.iter().zip(&row.0).filter(|(c, _)| c.key);
    match (keys.next(), keys.next()) {
        (Some((_, Value::Text(text))), None) => Some(text),
        _ => None,
    }
}

fn check_width(relation: &Relation, ordinal: u32, row: &Row) -> Result<(), ReplayError> {
    if row.0.len() == relation.columns.len() {
        Ok(())
    } else {
        Err(ReplayError::Width {
            ordinal,
            table: schema::table_name(relation).to_string(),
            expected: relation.columns.len(),
            got: row.0.len(),
        })
    }
}

/// `column`'s text output as SQL: what the source printed for it.
pub(crate) fn text_output(name: &str, type_oid: u32) -> String {
    let name = quote_ident(name);
    match type_oid {
        16 => format!("pg_catalog.boolout({name})::text"),
        650 => format!("pg_catalog.cidr_out({name})::text"),
        869 => format!("pg_catalog.inet_out({name})::text"),
        1042 => format!("pg_catalog.bpcharout({name})::text"),
        _ => format!("{name}::text"),
    }
}

/// Where a statement finds its one row, and that row's key for messages.
struct Target {
    condition: String,
    key: String,
}

/// By the key columns' values in `row` (the old key or the new row).
fn by_key(relation: &Relation, ordinal: u32, row: &Row) -> Result<Target, ReplayError> {
    let mut condition = String::new();
    let (mut names, mut values) = (Vec::new(), Vec::new());
    for (column, value) in relation.columns.iter().zip(&row.0).filter(|(c, _)| c.key) {
        if !condition.is_empty() {
            condition.push_str(" AND ");
        }
        let name = quote_ident(&column.name);
        match value {
            Value::Text(text) => {
                let _ = write!(condition, "{name} = {}", quote_literal(text));
                values.push(text.clone());
            }
            Value::Null => {
                let _ = write!(condition, "{name} IS NULL");
                values.push("NULL".into());
            }
            Value::Unchanged => {
                return Err(ReplayError::Unchanged {
                    ordinal,
                    table: schema::table_name(relation).to_string(),
                    column: column.name.clone(),
                });
            }
        }
        names.push(name.into_owned());
    }
    Ok(Target {
        condition,
        key: format!("({})=({})", names.join(", "), values.join(", ")),
    })
}

/// One row (by `ctid`) of a table without a key whose every column's text is `row`'s.
fn by_value(relation: &Relation, ordinal: u32, row: &Row) -> Result<Target, ReplayError> {
    let mut condition = String::new();
    for (column, value) in relation.columns.iter().zip(&row.0) {
        if !condition.is_empty() {
            condition.push_str(" AND ");
        }
        match value {
            Value::Text(text) => {
                let _ = write!(
                    condition,
                    "{} = {}",
                    text_output(&column.name, column.type_oid),
                    quote_literal(text)
                );
            }
            Value::Null => {
                let _ = write!(condition, "{} IS NULL", quote_ident(&column.name));
            }
            Value::Unchanged => {
                return Err(ReplayError::Unchanged {
                    ordinal,
                    table: schema::table_name(relation).to_string(),
                    column: column.name.clone(),
                });
            }
        }
    }
    let table = schema::table_name(relation);
    let shown: Vec<&str> = row
        .0
        .iter()
        .map(|v| v.as_text().unwrap_or("NULL"))
        .collect();
    Ok(Target {
        condition: format!(
            "ctid = (SELECT ctid FROM {table} WHERE {} LIMIT 1)",
            if condition.is_empty() {
                "true"
            } else {
                &condition
            }
        ),
        key: format!("(row)=({})", shown.join(", ")),
    })
}

fn target(
    relation: &Relation,
    ordinal: u32,
    old: Option<&OldRow>,
    new: Option<&Row>,
    action: &'static str,
) -> Result<Target, ReplayError> {
    if relation.has_key() {
        match (old, new) {
            (Some(old), _) => by_key(relation, ordinal, old.row()),
            (None, Some(new)) => by_key(relation, ordinal, new),
            (None, None) => Err(ReplayError::NoOldRow {
                ordinal,
                table: schema::table_name(relation).to_string(),
                action,
            }),
        }
    } else {
        match old {
            Some(OldRow::Full(old)) => by_value(relation, ordinal, old),
            _ => Err(ReplayError::NoOldRow {
                ordinal,
                table: schema::table_name(relation).to_string(),
                action,
            }),
        }
    }
}

fn update(
    relation: &Relation,
    ordinal: u32,
    old: Option<&OldRow>,
    new: &Row,
) -> Result<Statement, ReplayError> {
    check_width(relation, ordinal, new)?;
    if let Some(old) = old {
        check_width(relation, ordinal, old.row())?;
    }
    let target = target(relation, ordinal, old, Some(new), "update")?;
    let mut sets = String::new();
    for (column, value) in relation.columns.iter().zip(&new.0) {
        let value = match value {
            Value::Unchanged => continue,
            Value::Null => "NULL".to_owned(),
            Value::Text(text) => quote_literal(text),
        };
        if !sets.is_empty() {
            sets.push_str(", ");
        }
        let _ = write!(sets, "{} = {value}", quote_ident(&column.name));
    }
    let table: TableName = schema::table_name(relation);
    Ok(Statement::new(
        format!("UPDATE {table} SET {sets} WHERE {}", target.condition),
        Expect::Rows(1),
        Subject {
            ordinal,
            changes: 1,
            action: "update",
            table: table.to_string(),
            key: Some(target.key),
        },
    ))
}

fn delete(relation: &Relation, ordinal: u32, old: &OldRow) -> Result<Statement, ReplayError> {
    check_width(relation, ordinal, old.row())?;
    let target = target(relation, ordinal, Some(old), None, "delete")?;
    let table = schema::table_name(relation);
    Ok(Statement::new(
        format!("DELETE FROM {table} WHERE {}", target.condition),
        Expect::Rows(1),
        Subject {
            ordinal,
            changes: 1,
            action: "delete",
            table: table.to_string(),
            key: Some(target.key),
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use walproof_core::schema_change::ColumnChange;
    use walproof_core::{Column, Lsn, ReplicaIdentity};

    use super::*;

    fn types() -> TypeNames {
        let mut types = TypeNames::default();
        types.insert(23, -1, "integer".into());
        types.insert(25, -1, "text".into());
        types.insert(16, -1, "boolean".into());
        types.insert(1042, 7, "character(3)".into());
        types
    }

    fn relation(
        id: RelationId,
        name: &str,
        identity: ReplicaIdentity,
        columns: &[(&str, u32, bool)],
    ) -> Relation {
        Relation {
            id,
            schema: "public".into(),
            name: name.into(),
            replica_identity: identity,
            columns: columns
                .iter()
                .map(|(name, type_oid, key)| Column {
                    name: (*name).into(),
                    type_oid: *type_oid,
                    type_modifier: if *type_oid == 1042 { 7 } else { -1 },
                    key: *key,
                })
                .collect(),
        }
    }

    fn row(values: &[Option<&str>]) -> Row {
        Row(values
            .iter()
            .map(|v| match v {
                Some("<unchanged>") => Value::Unchanged,
                Some(text) => Value::Text((*text).into()),
                None => Value::Null,
            })
            .collect())
    }

    fn transaction(relations: &[Relation], ops: Vec<Op>) -> Transaction {
        Transaction {
            commit_lsn: Lsn::new(0x100),
            xid: 7,
            commit_time_us: 0,
            relations: relations
                .iter()
                .map(|r| (r.id, r.clone()))
                .collect::<BTreeMap<_, _>>(),
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

    fn sql(statements: &[Statement]) -> Vec<(&str, Expect)> {
        statements
            .iter()
            .map(|s| (s.sql.as_str(), s.expect))
            .collect()
    }

    fn orders() -> Relation {
        relation(
            1,
            "orders",
            ReplicaIdentity::Default,
            &[("id", 23, true), ("note", 25, false), ("paid", 16, false)],
        )
    }

    #[test]
    fn inserts_batch_updates_skip_unchanged_columns_and_rows_are_found_by_their_old_key() {
        let orders = orders();
        let tx = transaction(
            std::slice::from_ref(&orders),
            vec![
                Op::Snapshot {
                    relation: 1,
                    row: row(&[Some("1"), Some("it's"), Some("t")]),
                },
                Op::Insert {
                    relation: 1,
                    new: row(&[Some("2"), None, Some("f")]),
                },
                Op::Update {
                    relation: 1,
                    old: None,
                    new: row(&[Some("2"), Some("<unchanged>"), Some("t")]),
                },
                Op::Update {
                    relation: 1,
                    old: Some(OldRow::Key(row(&[Some("2"), None, None]))),
                    new: row(&[Some("3"), Some(r"back\slash"), Some("t")]),
                },
                Op::Delete {
                    relation: 1,
                    old: OldRow::Key(row(&[Some("1"), None, None])),
                },
                Op::Truncate {
                    relations: vec![1, 99],
                    cascade: false,
                    restart_identity: false,
                },
            ],
        );
        let mut replay = Replay::default();
        let statements = replay.plan(&tx, &types()).unwrap();
        assert_eq!(
            sql(&statements),
            [
                ("CREATE SCHEMA IF NOT EXISTS public", Expect::Any),
                (
                    "CREATE TABLE public.orders (id integer, note text, paid boolean)",
                    Expect::Any
                ),
                (
                    "CREATE UNIQUE INDEX walproof_key_1 ON public.orders (id)",
                    Expect::Any
                ),
                (
                    "INSERT INTO public.orders (id, note, paid) VALUES ('1', 'it''s', 't'), ('2', NULL, 'f')",
                    Expect::Rows(2)
                ),
                (
                    "UPDATE public.orders SET id = '2', paid = 't' WHERE id = '2'",
                    Expect::Rows(1)
                ),
                (
                    r"UPDATE public.orders SET id = '3', note = E'back\\slash', paid = 't' WHERE id = '2'",
                    Expect::Rows(1)
                ),
                ("DELETE FROM public.orders WHERE id = '1'", Expect::Rows(1)),
                ("TRUNCATE public.orders", Expect::Any),
            ]
        );
        assert_eq!(
            statements[3].subject.to_string(),
            "insert of public.orders (changes 0..=1)"
        );
        assert_eq!(
            statements[5].subject.to_string(),
            "update of public.orders key (id)=(2) (change 3)"
        );
        // The next transaction finds the table made.
        let tx = transaction(
            &[orders],
            vec![Op::Insert {
                relation: 1,
                new: row(&[Some("9"), None, None]),
            }],
        );
        assert_eq!(sql(&replay.plan(&tx, &types()).unwrap()).len(), 1);
    }

    #[test]
    fn many_inserts_go_by_copy_and_deletes_in_a_row_by_one_statement_with_their_keys() {
        let orders = orders();
        let insert = |id: usize, note: Option<&str>| Op::Insert {
            relation: 1,
            new: row(&[Some(&id.to_string()), note, Some("t")]),
        };
        let delete = |id: &str| Op::Delete {
            relation: 1,
            old: OldRow::Key(row(&[Some(id), None, None])),
        };
        let mut ops: Vec<Op> = (0..COPY_MIN_ROWS)
            .map(|i| insert(i, Some("plain")))
            .collect();
        ops[0] = insert(0, Some("tab\tline\nreturn\rback\\slash"));
        ops[1] = insert(1, None);
        ops.extend(["7", "8", "it's"].map(delete));
        ops.push(insert(100, Some("after")));
        ops.push(delete("9"));
        let tx = transaction(std::slice::from_ref(&orders), ops);
        let statements = Replay::default().plan(&tx, &types()).unwrap();
        assert_eq!(statements.len(), 7, "{statements:?}");
        let n = COPY_MIN_ROWS;

        let copy = &statements[3];
        assert_eq!(copy.sql, "COPY public.orders (id, note, paid) FROM STDIN");
        assert_eq!(copy.expect, Expect::Rows(n as u64));
        let data = copy.copy.as_deref().unwrap();
        assert!(
            data.starts_with("0\ttab\\tline\\nreturn\\rback\\\\slash\tt\n1\t\\N\tt\n2\tplain\tt\n"),
            "{data}"
        );
        assert_eq!(data.lines().count(), n);
        assert_eq!(
            copy.subject.to_string(),
            format!("insert of public.orders (changes 0..={})", n - 1)
        );

        let deletes = &statements[4];
        assert_eq!(
            deletes.sql,
            "DELETE FROM public.orders WHERE id IN ('7', '8', 'it''s')"
        );
        assert_eq!(deletes.expect, Expect::Rows(3));
        let keys = deletes.keys.as_ref().unwrap();
        assert_eq!(
            keys.probe,
            "SELECT id::text FROM public.orders WHERE id IN ('7', '8', 'it''s')"
        );
        let at = |k: usize| (n + k) as u32;
        assert_eq!(
            keys.keys,
            vec![
                (at(0), "7".into()),
                (at(1), "8".into()),
                (at(2), "it's".into())
            ]
        );
        let present = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(keys.first_missing(&present(&["7", "8", "it's"])), None);
        assert_eq!(
            keys.first_missing(&present(&["7", "it's"])),
            Some((at(1), "8"))
        );
        assert_eq!(keys.describe("8"), "(id)=(8)");

        // Fewer rows than a COPY is worth: a multi-row INSERT; one delete: by its key alone.
        assert_eq!(
            sql(&statements[5..]),
            vec![
                (
                    "INSERT INTO public.orders (id, note, paid) VALUES ('100', 'after', 't')",
                    Expect::Rows(1)
                ),
                ("DELETE FROM public.orders WHERE id = '9'", Expect::Rows(1)),
            ]
        );
        assert_eq!(
            statements[6].subject.to_string(),
            format!("delete of public.orders key (id)=(9) (change {})", n + 4)
        );
        assert!(statements[6].keys.is_none());

        // A key deleted twice in one statement: the second delete is the one without a row.
        let twice = transaction(
            std::slice::from_ref(&orders),
            ["1", "2", "1"].map(delete).to_vec(),
        );
        let statements = Replay::default().plan(&twice, &types()).unwrap();
        let keys = statements.last().unwrap().keys.as_ref().unwrap();
        assert_eq!(keys.first_missing(&present(&["1", "2"])), Some((2, "1")));
    }

    #[test]
    fn a_table_without_key_finds_one_row_by_every_columns_text_output() {
        let log = relation(
            2,
            "log",
            ReplicaIdentity::Full,
            &[
                ("flag", 16, false),
                ("code", 1042, false),
                ("note", 25, false),
            ],
        );
        let old = OldRow::Full(row(&[Some("t"), Some("ab "), None]));
        let tx = transaction(
            &[log],
            vec![
                Op::Update {
                    relation: 2,
                    old: Some(old.clone()),
                    new: row(&[Some("f"), Some("ab "), Some("x")]),
                },
                Op::Delete { relation: 2, old },
            ],
        );
        let statements = Replay::default().plan(&tx, &types()).unwrap();
        let matching = "ctid = (SELECT ctid FROM public.log WHERE pg_catalog.boolout(flag)::text = 't' AND pg_catalog.bpcharout(code)::text = 'ab ' AND note IS NULL LIMIT 1)";
        assert_eq!(
            sql(&statements)[2..],
            [
                (format!("UPDATE public.log SET flag = 'f', code = 'ab ', note = 'x' WHERE {matching}").as_str(), Expect::Rows(1)),
                (format!("DELETE FROM public.log WHERE {matching}").as_str(), Expect::Rows(1)),
            ]
        );
        assert_eq!(
            statements[3].subject.key.as_deref(),
            Some("(row)=(t, ab , NULL)")
        );
    }

    #[test]
    fn a_schema_change_is_applied_at_its_position_and_what_cannot_be_replayed_is_named() {
        let orders = orders();
        let change = SchemaChange {
            publication: "p".into(),
            tag: "ALTER TABLE".into(),
            statement: "ALTER TABLE orders RENAME note TO memo".into(),
            tables: vec![TableChange {
                oid: 1,
                schema: "public".into(),
                name: "orders".into(),
                change: TableChangeKind::Altered,
                replica_identity: "d".into(),
                columns: ["id", "memo", "paid"]
                    .iter()
                    .zip(&orders.columns)
                    .enumerate()
                    .map(|(i, (name, c))| ColumnChange {
                        name: (*name).into(),
                        type_oid: c.type_oid,
                        type_modifier: -1,
                        key: c.key,
                        was: Some(i as u32),
                    })
                    .collect(),
                rows_follow: false,
            }],
        };
        let mut renamed = orders.clone();
        renamed.columns[1].name = "memo".into();
        let tx = transaction(
            &[renamed],
            vec![
                Op::Insert {
                    relation: 1,
                    new: row(&[Some("1"), Some("a"), None]),
                },
                Op::Message {
                    prefix: SCHEMA_CHANGE_PREFIX.into(),
                    content: serde_json::to_vec(&change).unwrap(),
                },
                Op::Insert {
                    relation: 1,
                    new: row(&[Some("2"), Some("b"), None]),
                },
            ],
        );
        // The table is known from an earlier transaction, as the snapshot makes it known.
        let mut replay = Replay::default();
        let earlier = transaction(
            std::slice::from_ref(&orders),
            vec![Op::Delete {
                relation: 1,
                old: OldRow::Key(row(&[Some("0"), None, None])),
            }],
        );
        assert_eq!(replay.plan(&earlier, &types()).unwrap().len(), 4);
        let statements = replay.plan(&tx, &types()).unwrap();
        let statements: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            statements,
            [
                "INSERT INTO public.orders (id, note, paid) VALUES ('1', 'a', NULL)",
                "ALTER TABLE public.orders RENAME COLUMN note TO __walproof_renaming_1",
                "ALTER TABLE public.orders RENAME COLUMN __walproof_renaming_1 TO memo",
                "INSERT INTO public.orders (id, memo, paid) VALUES ('2', 'b', NULL)",
            ]
        );

        let bad = |op: Op| {
            Replay::default()
                .plan(
                    &transaction(std::slice::from_ref(&orders), vec![op]),
                    &types(),
                )
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(Op::Insert {
                relation: 1,
                new: row(&[Some("1"), Some("<unchanged>"), None])
            }),
            "change 0 of public.orders has no value for column note (an unchanged marker)"
        );
        assert_eq!(
            bad(Op::Insert {
                relation: 1,
                new: row(&[Some("1")])
            }),
            "change 0 of public.orders has 1 values for 3 columns"
        );
        assert_eq!(
            bad(Op::Insert {
                relation: 5,
                new: row(&[Some("1")])
            }),
            "change 0 refers to relation 5, which the stream never described"
        );
        // A shape that changes with no schema change in the stream.
        let mut replay = Replay::default();
        replay
            .plan(
                &transaction(
                    std::slice::from_ref(&orders),
                    vec![Op::Insert {
                        relation: 1,
                        new: row(&[Some("1"), None, None]),
                    }],
                ),
                &types(),
            )
            .unwrap();
        let mut wider = orders;
        wider.columns.push(Column {
            name: "extra".into(),
            type_oid: 23,
            type_modifier: -1,
            key: false,
        });
        let err = replay
            .plan(
                &transaction(
                    &[wider],
                    vec![Op::Insert {
                        relation: 1,
                        new: row(&[Some("1"), None, None, None]),
                    }],
                ),
                &types(),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("public.orders changed shape at change 0 without a schema change"),
            "{err}"
        );
    }
}
