//! A model of the source's tables, built by replaying the ledger, to compare with the source.
//!
//! Keys follow design.md: the key columns of the relation, else (REPLICA IDENTITY FULL without
//! a key) the whole row as a multiset. An unchanged TOAST marker resolves from the model's own
//! row, as every consumer must resolve it.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use walproof_core::schema_change::{SCHEMA_CHANGE_PREFIX, Shapes, TableChange};
use walproof_core::{Op, Relation, Row, Transaction, Value};

/// One table's rows: key → (row, multiplicity).
pub type TableRows = BTreeMap<Vec<Option<String>>, (Vec<Option<String>>, u64)>;

/// Tables by `schema.table`.
#[derive(Debug, Default)]
pub struct Model {
    /// The tables.
    pub tables: BTreeMap<String, TableRows>,
    /// Each relation's latest shape (not compared).
    shapes: Shapes,
}

/// Models are equal when their tables with rows are.
impl PartialEq for Model {
    fn eq(&self, other: &Model) -> bool {
        let filled = |model: &Model| {
            model
                .tables
                .iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(name, rows)| (name.clone(), rows.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        filled(self) == filled(other)
    }
}

impl Eq for Model {}

fn name(relation: &Relation) -> String {
    format!("{}.{}", relation.schema, relation.name)
}

fn key_of(relation: &Relation, row: &[Option<String>]) -> Vec<Option<String>> {
    if relation.has_key() {
        relation
            .columns
            .iter()
            .zip(row)
            .filter(|(c, _)| c.key)
            .map(|(_, v)| v.clone())
            .collect()
    } else {
        row.to_vec()
    }
}

impl Model {
    /// Replays whole transactions in ledger order; also returns the relations they describe,
    /// each in its latest shape (what [`Model::from_source`] needs to read the same tables).
    pub fn replay(transactions: &[Transaction]) -> anyhow::Result<(Model, Vec<Relation>)> {
        let mut model = Model::default();
        for transaction in transactions {
            model.apply(transaction)?;
        }
        let relations = model.shapes.relations().cloned().collect();
        Ok((model, relations))
    }

    /// Applies one whole transaction. A change is read with the shape its relation had at
    /// that point: a transaction's relations are the latest shapes, so a relation that a
    /// schema change in this transaction alters keeps its earlier shape until that change.
    pub fn apply(&mut self, transaction: &Transaction) -> anyhow::Result<()> {
        let mut shapes = std::mem::take(&mut self.shapes);
        let schema_changes = shapes.begin(transaction)?;
        let mut schema_changes = schema_changes.into_iter();
        for change in &transaction.changes {
            let relation = |id: &u32| {
                shapes.get(*id).cloned().with_context(|| {
                    format!(
                        "relation {id} of change {} of transaction {} not described",
                        change.ordinal, transaction.commit_lsn
                    )
                })
            };
            match &change.op {
                Op::Insert { relation: id, new }
                | Op::Snapshot {
                    relation: id,
                    row: new,
                } => {
                    let rel = relation(id)?;
                    let row = self.resolve(&rel, new, None)?;
                    self.put(&rel, row);
                }
                Op::Update {
                    relation: id,
                    old,
                    new,
                } => {
                    let rel = relation(id)?;
                    let old_key = match old {
                        Some(old) => Some(key_of(&rel, &plain(old.row())?)),
                        None => None,
                    };
                    let previous_key = old_key.clone().unwrap_or_else(|| {
                        key_of(
                            &rel,
                            &new.0
                                .iter()
                                .map(|v| v.as_text().map(str::to_owned))
                                .collect::<Vec<_>>(),
                        )
                    });
                    let row = self.resolve(&rel, new, Some(&previous_key))?;
                    self.take(&rel, &previous_key)?;
                    self.put(&rel, row);
                }
                Op::Delete { relation: id, old } => {
                    let rel = relation(id)?;
                    let key = key_of(&rel, &plain(old.row())?);
                    self.take(&rel, &key)?;
                }
                Op::Truncate { relations, .. } => {
                    for id in relations {
                        self.tables.remove(&name(&relation(id)?));
                    }
                }
                Op::Message { prefix, .. } if prefix == SCHEMA_CHANGE_PREFIX => {
                    let schema_change = schema_changes.next().context("schema changes")?;
                    let before = shapes.follow(&schema_change);
                    for (table, before) in schema_change.tables.iter().zip(before) {
                        self.follow(before.as_ref(), table);
                    }
                }
                Op::Message { .. } => {}
            }
        }
        shapes.end();
        self.shapes = shapes;
        Ok(())
    }

    /// Carries a table's rows through a schema change that sends none: each row reshaped
    /// (dropped, renamed and new columns), re-keyed, under the table's new name.
    fn follow(&mut self, before: Option<&Relation>, table: &TableChange) {
        let Some(rows) = before.and_then(|before| self.tables.remove(&name(before))) else {
            return;
        };
        if table.rows_follow || table.is_removed() {
            return; // a truncate and the rows (if any) follow
        }
        let relation = table.relation();
        for (row, count) in rows.into_values() {
            let row: Vec<Option<String>> = table
                .reshape(&row)
                .into_iter()
                .map(Option::flatten)
                .collect();
            for _ in 0..count {
                self.put(&relation, row.clone());
            }
        }
    }

    /// What differs from `other`, one line per row that only one side holds (by key), for a
    /// failure message that names the rows instead of printing both models.
    pub fn differences(&self, other: &Model) -> Vec<String> {
        let mut lines = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.tables.keys().chain(other.tables.keys()).collect();
        let empty = TableRows::new();
        for name in names {
            let ours = self.tables.get(name).unwrap_or(&empty);
            let theirs = other.tables.get(name).unwrap_or(&empty);
            for (key, row) in ours {
                if theirs.get(key) != Some(row) {
                    lines.push(format!("{name}: left {row:?}, right {:?}", theirs.get(key)));
                }
            }
            for (key, row) in theirs {
                if !ours.contains_key(key) {
                    lines.push(format!("{name}: right only {row:?}"));
                }
            }
        }
        lines
    }

    /// Values with unchanged markers resolved from the row at `previous_key`.
    fn resolve(
        &self,
        rel: &Relation,
        row: &Row,
        previous_key: Option<&Vec<Option<String>>>,
    ) -> anyhow::Result<Vec<Option<String>>> {
        let previous =
            previous_key.and_then(|key| self.tables.get(&name(rel)).and_then(|t| t.get(key)));
        row.0
            .iter()
            .enumerate()
            .map(|(i, value)| match value {
                Value::Text(text) => Ok(Some(text.clone())),
                Value::Null => Ok(None),
                Value::Unchanged => previous
                    .and_then(|(row, _)| row.get(i).cloned())
                    .with_context(|| {
                        format!("unchanged column {i} of {} has no earlier value", name(rel))
                    }),
            })
            .collect()
    }

    fn put(&mut self, rel: &Relation, row: Vec<Option<String>>) {
        let key = key_of(rel, &row);
        let table = self.tables.entry(name(rel)).or_default();
        if rel.has_key() {
            table.insert(key, (row, 1));
        } else {
            table.entry(key).or_insert((row, 0)).1 += 1;
        }
    }

    fn take(&mut self, rel: &Relation, key: &Vec<Option<String>>) -> anyhow::Result<()> {
        let table = self.tables.entry(name(rel)).or_default();
        let Some((_, count)) = table.get_mut(key) else {
            bail!("{}: no row with key {key:?} to update or delete", name(rel));
        };
        *count -= 1;
        if *count == 0 {
            table.remove(key);
        }
        Ok(())
    }

    /// Reads the same tables from the source into a model, keyed like the ledger's relations.
    /// Values are each column's text output (a text-format query), which is what pgoutput
    /// sends; a `::text` cast would differ for bool, inet and char(n). The session must be
    /// under the canonical settings.
    pub async fn from_source(
        client: &tokio_postgres::Client,
        relations: &[Relation],
    ) -> anyhow::Result<Model> {
        let mut model = Model::default();
        for rel in relations {
            let columns: Vec<String> = rel.columns.iter().map(|c| quote(&c.name)).collect();
            let sql = format!(
                "SELECT {} FROM {}.{}",
                columns.join(", "),
                quote(&rel.schema),
                quote(&rel.name)
            );
            for message in client
                .simple_query(&sql)
                .await
                .with_context(|| sql.clone())?
            {
                if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                    let values = (0..rel.columns.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect();
                    model.put(rel, values);
                }
            }
        }
        model.tables.retain(|_, rows| !rows.is_empty());
        Ok(model)
    }
}

fn plain(row: &Row) -> anyhow::Result<Vec<Option<String>>> {
    row.0
        .iter()
        .map(|v| match v {
            Value::Text(t) => Ok(Some(t.clone())),
            Value::Null => Ok(None),
            Value::Unchanged => bail!("an old row with an unchanged marker"),
        })
        .collect()
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
