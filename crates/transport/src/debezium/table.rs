//! One published table as Debezium sees it: its topic, its columns' encodings and schemas,
//! its key, and its rows as `before` / `after` structs.

use walproof_core::{Lsn, Relation, Row, Value};

use super::error::{DebeziumError, Result};
use super::json::Json;
use super::value::ColumnType;

/// Where in the transaction an encoding happens, for error reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    pub(crate) commit_lsn: Lsn,
    pub(crate) ordinal: u32,
}

/// A relation prepared for encoding.
#[derive(Debug)]
pub(crate) struct Table {
    /// `<prefix>.<schema>.<table>`, with characters Kafka does not allow replaced by `_`.
    pub(crate) topic: String,
    /// `<schema>.<table>`: Debezium's data collection name, as in `data_collections`.
    pub(crate) data_collection: String,
    pub(crate) schema: String,
    pub(crate) name: String,
    /// Connect schema name prefix: `<prefix>.<schema>.<table>`.
    schema_name: String,
    columns: Vec<(String, ColumnType, bool)>,
    type_oids: Vec<u32>,
    /// Positions of the key columns, in attribute order.
    key: Vec<usize>,
}

/// A row as a Debezium `before` / `after` struct, with what the struct alone cannot say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedRow {
    /// The struct: every column, in attribute order.
    pub(crate) payload: Json,
    /// Columns whose value is an unchanged TOASTed value the source did not send; they are
    /// `null` in the struct.
    pub(crate) unchanged: Vec<String>,
    /// Columns whose value the Debezium type cannot carry (numeric NaN, an infinite date…):
    /// `null` in the struct, their Postgres text output here.
    pub(crate) text: Vec<(String, Json)>,
}

/// Kafka topic names allow `[a-zA-Z0-9._-]`; Debezium replaces anything else with `_`.
pub(crate) fn topic_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Table {
    pub(crate) fn new(relation: &Relation, topic_prefix: &str) -> Table {
        let schema_name = format!("{topic_prefix}.{}.{}", relation.schema, relation.name);
        Table {
            topic: topic_name(&schema_name),
            data_collection: format!("{}.{}", relation.schema, relation.name),
            schema: relation.schema.clone(),
            name: relation.name.clone(),
            schema_name,
            columns: relation
                .columns
                .iter()
                .map(|c| {
                    let column_type = ColumnType::of(c.type_oid, c.type_modifier);
                    (c.name.clone(), column_type, c.key)
                })
                .collect(),
            type_oids: relation.columns.iter().map(|c| c.type_oid).collect(),
            key: relation
                .columns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.key.then_some(i))
                .collect(),
        }
    }

    /// Whether the table has key columns; without, its events have a null key.
    pub(crate) fn has_key(&self) -> bool {
        !self.key.is_empty()
    }

    fn check_width(&self, row: &Row, at: Site) -> Result<()> {
        if row.0.len() == self.columns.len() {
            Ok(())
        } else {
            Err(DebeziumError::RowWidth {
                commit_lsn: at.commit_lsn,
                ordinal: at.ordinal,
                table: self.data_collection.clone(),
                expected: self.columns.len(),
                got: row.0.len(),
            })
        }
    }

    /// One value as JSON: `Ok(None)` when its type cannot carry it.
    fn encode_value(&self, position: usize, text: &str, at: Site) -> Result<Option<Json>> {
        let (column, column_type, _) = &self.columns[position];
        column_type
            .encode(text)
            .map_err(|reason| DebeziumError::InvalidValue {
                commit_lsn: at.commit_lsn,
                ordinal: at.ordinal,
                table: self.data_collection.clone(),
                column: column.clone(),
                type_oid: self.type_oids[position],
                value: text.to_owned(),
                reason,
            })
    }

    /// A row as a `before` / `after` struct.
    pub(crate) fn encode_row(&self, row: &Row, at: Site) -> Result<EncodedRow> {
        self.check_width(row, at)?;
        let mut fields = Vec::with_capacity(row.0.len());
        let mut unchanged = Vec::new();
        let mut text = Vec::new();
        for (position, value) in row.0.iter().enumerate() {
            let name = &self.columns[position].0;
            let json = match value {
                Value::Null => Json::Null,
                Value::Unchanged => {
                    unchanged.push(name.clone());
                    Json::Null
                }
                Value::Text(value) => match self.encode_value(position, value, at)? {
                    Some(json) => json,
                    None => {
                        text.push((name.clone(), Json::str(value)));
                        Json::Null
                    }
                },
            };
            fields.push((name.clone(), json));
        }
        Ok(EncodedRow {
            payload: Json::Object(fields),
            unchanged,
            text,
        })
    }

    /// The key struct of a row, or `None` for a table without key columns. A key column
    /// that is an unchanged marker in `row` is taken from `fallback` (the old tuple).
    pub(crate) fn key(&self, row: &Row, fallback: Option<&Row>, at: Site) -> Result<Option<Json>> {
        if !self.has_key() {
            return Ok(None);
        }
        self.check_width(row, at)?;
        let mut fields = Vec::with_capacity(self.key.len());
        for &position in &self.key {
            let name = &self.columns[position].0;
            let mut value = &row.0[position];
            if *value == Value::Unchanged {
                value = fallback
                    .and_then(|old| old.0.get(position))
                    .filter(|old| **old != Value::Unchanged)
                    .ok_or_else(|| DebeziumError::KeyUnavailable {
                        commit_lsn: at.commit_lsn,
                        ordinal: at.ordinal,
                        table: self.data_collection.clone(),
                        column: name.clone(),
                    })?;
            }
            let json = match value {
                Value::Text(text) => self.encode_value(position, text, at)?.unwrap_or(Json::Null),
                Value::Null | Value::Unchanged => Json::Null,
            };
            fields.push((name.clone(), json));
        }
        Ok(Some(Json::Object(fields)))
    }

    /// Whether an update moved the row to another key: some key column of `new` carries a
    /// value other than `old`'s (an unchanged marker in `new` keeps the old value).
    pub(crate) fn key_changed(&self, old: &Row, new: &Row) -> bool {
        self.key.iter().any(|&position| {
            let new = new.0.get(position);
            new != Some(&Value::Unchanged) && new != old.0.get(position)
        })
    }

    /// The Connect schema of `before` / `after`: `<prefix>.<schema>.<table>.Value`. Key
    /// columns are required (a key is NOT NULL); other columns are optional, since the
    /// relation does not say which are NOT NULL.
    pub(crate) fn row_schema(&self) -> Json {
        let fields = self
            .columns
            .iter()
            .map(|(name, column_type, key)| field(column_type.schema(!key), name))
            .collect();
        Json::object([
            ("type", Json::str("struct")),
            ("fields", Json::Array(fields)),
            ("optional", Json::Bool(true)),
            ("name", Json::Str(format!("{}.Value", self.schema_name))),
        ])
    }

    /// The Connect schema of the key: `<prefix>.<schema>.<table>.Key`.
    pub(crate) fn key_schema(&self) -> Json {
        let fields = self
            .key
            .iter()
            .map(|&position| {
                let (name, column_type, _) = &self.columns[position];
                field(column_type.schema(false), name)
            })
            .collect();
        Json::object([
            ("type", Json::str("struct")),
            ("fields", Json::Array(fields)),
            ("optional", Json::Bool(false)),
            ("name", Json::Str(format!("{}.Key", self.schema_name))),
        ])
    }

    /// The envelope's Connect schema name: `<prefix>.<schema>.<table>.Envelope`.
    pub(crate) fn envelope_schema_name(&self) -> String {
        format!("{}.Envelope", self.schema_name)
    }
}

/// A struct field's schema: the type's schema followed by `"field": name`.
pub(crate) fn field(mut schema: Vec<(String, Json)>, name: &str) -> Json {
    schema.push(("field".to_owned(), Json::str(name)));
    Json::Object(schema)
}

/// A struct field's schema from a complete schema object.
pub(crate) fn field_of(schema: Json, name: &str) -> Json {
    match schema {
        Json::Object(fields) => field(fields, name),
        other => other,
    }
}
