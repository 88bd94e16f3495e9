//! The archived rows of one table (in one shape): its columns, typed ([`crate::columns`]), and
//! what each change was.
//!
//! | column | type | what |
//! |---|---|---|
//! | *the table's columns* | see [`crate::columns`] | the row after the change; for a delete, the old row (or its key) |
//! | `__lsn` | `Int64` | the transaction's commit LSN (`X/Y` is `X << 32 \| Y`) |
//! | `__ordinal` | `Int64` | the change's place in its transaction |
//! | `__op` | `Utf8` | `c` insert, `u` update, `d` delete, `r` snapshot row, `t` truncate (every column NULL) |
//! | `__xid` | `Int64` | the source transaction id |
//! | `__commit_ts` | `Timestamp(µs, UTC)` | the commit time at the source |
//! | `__unchanged` | `List<Utf8>` | columns an update left unchanged (TOASTed, not sent): NULL here, not NULL at the source |
//! | `__before` | `Struct` of the table's columns | an update's old row when the source sent one (the key changed, or REPLICA IDENTITY FULL) |
//! | `__raw` | `List<Struct{column, text}>` | values of the row their typed column cannot hold (a `NaN` numeric, an infinite date…), as text |
//! | `__before_raw` | the same | the same, of `__before` |
//!
//! Rows are in ledger order: by `__lsn`, then `__ordinal`.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, ListArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use walproof_core::{Lsn, Op, Relation, Row, Value};

use crate::columns::{ColumnBuilder, ColumnType};

/// The names of the change columns; a table column of one of these names cannot be archived.
/// (`__date` is the Hive partition key of the archive's layout.)
pub const CHANGE_COLUMNS: [&str; 10] = [
    "__lsn",
    "__ordinal",
    "__op",
    "__xid",
    "__commit_ts",
    "__unchanged",
    "__before",
    "__raw",
    "__before_raw",
    "__date",
];

/// What a change row belongs to.
#[derive(Debug, Clone, Copy)]
pub struct ChangeAt {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The change's ordinal.
    pub ordinal: u32,
    /// The source transaction id.
    pub xid: u32,
    /// The commit time, microseconds since the epoch.
    pub commit_time_us: i64,
}

/// A table whose rows cannot be archived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table {table}: column {column} has the name of a change column (__lsn, __op, …)")]
pub struct ReservedColumn {
    /// `schema.table`.
    pub table: String,
    /// The column.
    pub column: String,
}

/// The rows of one table shape, being built.
#[derive(Debug)]
pub struct TableRows {
    relation: Relation,
    types: Vec<ColumnType>,
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    before: Vec<ColumnBuilder>,
    before_valid: Vec<bool>,
    lsn: Int64Builder,
    ordinal: Int64Builder,
    op: StringBuilder,
    xid: Int64Builder,
    commit_ts: TimestampMicrosecondBuilder,
    unchanged: Strings,
    raw: RawTexts,
    before_raw: RawTexts,
    rows: usize,
    bytes: usize,
    first: Option<(Lsn, u32)>,
    last: Option<(Lsn, u32)>,
}

/// A `List<Utf8>` column being built.
#[derive(Debug)]
struct Strings {
    offsets: Vec<i32>,
    valid: Vec<bool>,
    values: StringBuilder,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            offsets: vec![0],
            valid: Vec::new(),
            values: StringBuilder::new(),
        }
    }

    fn push<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        let mut count = 0;
        for item in items {
            self.values.append_value(item);
            count += 1;
        }
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end + count);
        self.valid.push(count > 0);
    }

    fn finish(&mut self) -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(Field::new("element", DataType::Utf8, true)),
            OffsetBuffer::new(std::mem::replace(&mut self.offsets, vec![0]).into()),
            Arc::new(self.values.finish()),
            Some(NullBuffer::from(std::mem::take(&mut self.valid))),
        ))
    }
}

/// A `List<Struct{column, text}>` column being built.
#[derive(Debug)]
struct RawTexts {
    offsets: Vec<i32>,
    valid: Vec<bool>,
    columns: StringBuilder,
    texts: StringBuilder,
}

impl RawTexts {
    fn new() -> RawTexts {
        RawTexts {
            offsets: vec![0],
            valid: Vec::new(),
            columns: StringBuilder::new(),
            texts: StringBuilder::new(),
        }
    }

    fn push(&mut self, entries: &[(&str, &str)]) {
        for (column, text) in entries {
            self.columns.append_value(column);
            self.texts.append_value(text);
        }
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end + entries.len() as i32);
        self.valid.push(!entries.is_empty());
    }

    fn finish(&mut self) -> ArrayRef {
        let entries = StructArray::new(
            raw_fields(),
            vec![
                Arc::new(self.columns.finish()),
                Arc::new(self.texts.finish()),
            ],
            None,
        );
        Arc::new(ListArray::new(
            Arc::new(Field::new("element", DataType::Struct(raw_fields()), true)),
            OffsetBuffer::new(std::mem::replace(&mut self.offsets, vec![0]).into()),
            Arc::new(entries),
            Some(NullBuffer::from(std::mem::take(&mut self.valid))),
        ))
    }
}

fn raw_list_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "element",
        DataType::Struct(raw_fields()),
        true,
    )))
}

fn raw_fields() -> Fields {
    Fields::from(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ])
}

fn data_fields(relation: &Relation, types: &[ColumnType]) -> Fields {
    relation
        .columns
        .iter()
        .zip(types)
        .map(|(column, kind)| Field::new(&column.name, kind.data_type(), true))
        .collect()
}

/// The Arrow schema of `relation`'s archived rows.
fn schema_of(relation: &Relation, types: &[ColumnType]) -> Schema {
    let data = data_fields(relation, types);
    let mut fields: Vec<Field> = data.iter().map(|f| f.as_ref().clone()).collect();
    fields.extend([
        Field::new("__lsn", DataType::Int64, false),
        Field::new("__ordinal", DataType::Int64, false),
        Field::new("__op", DataType::Utf8, false),
        Field::new("__xid", DataType::Int64, false),
        Field::new(
            "__commit_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "__unchanged",
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
            true,
        ),
        Field::new("__before", DataType::Struct(data), true),
        Field::new("__raw", raw_list_type(), true),
        Field::new("__before_raw", raw_list_type(), true),
    ]);
    Schema::new(fields)
}

impl TableRows {
    /// Empty rows of `relation`'s current shape.
    pub fn new(relation: &Relation) -> Result<TableRows, ReservedColumn> {
        if let Some(column) = relation
            .columns
            .iter()
            .find(|c| CHANGE_COLUMNS.contains(&c.name.as_str()))
        {
            return Err(ReservedColumn {
                table: format!("{}.{}", relation.schema, relation.name),
                column: column.name.clone(),
            });
        }
        let types: Vec<ColumnType> = relation
            .columns
            .iter()
            .map(|c| ColumnType::of(c.type_oid, c.type_modifier))
            .collect();
        Ok(TableRows {
            relation: relation.clone(),
            schema: Arc::new(schema_of(relation, &types)),
            columns: types.iter().map(ColumnBuilder::new).collect(),
            before: types.iter().map(ColumnBuilder::new).collect(),
            types,
            before_valid: Vec::new(),
            lsn: Int64Builder::new(),
            ordinal: Int64Builder::new(),
            op: StringBuilder::new(),
            xid: Int64Builder::new(),
            commit_ts: TimestampMicrosecondBuilder::new(),
            unchanged: Strings::new(),
            raw: RawTexts::new(),
            before_raw: RawTexts::new(),
            rows: 0,
            bytes: 0,
            first: None,
            last: None,
        })
    }

    /// The table's shape.
    pub fn relation(&self) -> &Relation {
        &self.relation
    }

    /// The Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// About how many bytes the rows so far hold (their text, plus a little per value).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The first and last change held, `(commit LSN, ordinal)`.
    pub fn range(&self) -> Option<((Lsn, u32), (Lsn, u32))> {
        Some((self.first?, self.last?))
    }

    /// Adds the row of `op`, a change to this table (a truncate adds a row of NULLs); a row
    /// of another width than the table's is refused, saying so, and nothing is added.
    pub fn push(&mut self, at: ChangeAt, op: &Op) -> Result<(), String> {
        let (code, row, before) = match op {
            Op::Insert { new, .. } => ("c", Some(new), None),
            Op::Update { new, old, .. } => ("u", Some(new), old.as_ref().map(|old| old.row())),
            Op::Delete { old, .. } => ("d", Some(old.row()), None),
            Op::Snapshot { row, .. } => ("r", Some(row), None),
            Op::Truncate { .. } => ("t", None, None),
            Op::Message { .. } => return Ok(()),
        };
        let width = self.relation.columns.len();
        for tuple in [row, before].into_iter().flatten() {
            if tuple.0.len() != width {
                return Err(format!(
                    "a row of {} values for the {width} columns of {}.{}",
                    tuple.0.len(),
                    self.relation.schema,
                    self.relation.name
                ));
            }
        }
        let mut raw: Vec<(&str, &str)> = Vec::new();
        let mut before_raw: Vec<(&str, &str)> = Vec::new();
        let mut unchanged: Vec<&str> = Vec::new();
        match row {
            Some(row) => {
                Self::push_row(
                    &mut self.columns,
                    &self.types,
                    &self.relation,
                    row,
                    &mut raw,
                    &mut unchanged,
                    &mut self.bytes,
                );
            }
            None => self.columns.iter_mut().for_each(ColumnBuilder::append_null),
        }
        match before {
            Some(before) => {
                let mut ignored = Vec::new();
                Self::push_row(
                    &mut self.before,
                    &self.types,
                    &self.relation,
                    before,
                    &mut before_raw,
                    &mut ignored,
                    &mut self.bytes,
                );
                self.before_valid.push(true);
            }
            None => {
                self.before.iter_mut().for_each(ColumnBuilder::append_null);
                self.before_valid.push(false);
            }
        }
        self.lsn.append_value(at.commit_lsn.as_u64() as i64);
        self.ordinal.append_value(i64::from(at.ordinal));
        self.op.append_value(code);
        self.xid.append_value(i64::from(at.xid));
        self.commit_ts.append_value(at.commit_time_us);
        self.unchanged.push(unchanged);
        self.raw.push(&raw);
        self.before_raw.push(&before_raw);
        self.rows += 1;
        self.bytes += 64;
        self.first.get_or_insert((at.commit_lsn, at.ordinal));
        self.last = Some((at.commit_lsn, at.ordinal));
        Ok(())
    }

    fn push_row<'a>(
        builders: &mut [ColumnBuilder],
        types: &[ColumnType],
        relation: &'a Relation,
        row: &'a Row,
        raw: &mut Vec<(&'a str, &'a str)>,
        unchanged: &mut Vec<&'a str>,
        bytes: &mut usize,
    ) {
        for (at, builder) in builders.iter_mut().enumerate() {
            let name = relation.columns[at].name.as_str();
            match row.0.get(at) {
                Some(Value::Text(text)) => {
                    *bytes += text.len() + 8;
                    if !builder.append(&types[at], Some(text)) {
                        raw.push((name, text));
                    }
                }
                Some(Value::Unchanged) => {
                    builder.append_null();
                    unchanged.push(name);
                }
                Some(Value::Null) | None => builder.append_null(),
            }
        }
    }

    /// The rows so far as one batch; starts again empty.
    pub fn finish(&mut self) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> =
            self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        let before: Vec<ArrayRef> = self.before.iter_mut().map(ColumnBuilder::finish).collect();
        arrays.push(Arc::new(self.lsn.finish()));
        arrays.push(Arc::new(self.ordinal.finish()));
        arrays.push(Arc::new(self.op.finish()));
        arrays.push(Arc::new(self.xid.finish()));
        arrays.push(Arc::new(self.commit_ts.finish().with_timezone("UTC")));
        arrays.push(self.unchanged.finish());
        arrays.push(Arc::new(StructArray::new(
            data_fields(&self.relation, &self.types),
            before,
            Some(NullBuffer::from(std::mem::take(&mut self.before_valid))),
        )));
        arrays.push(self.raw.finish());
        arrays.push(self.before_raw.finish());
        self.rows = 0;
        self.bytes = 0;
        self.first = None;
        self.last = None;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .expect("every column is built with one value per row, in the schema's types")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array as _, AsArray as _};
    use arrow::datatypes::Int64Type;
    use walproof_core::{Column, OldRow, ReplicaIdentity};

    fn accounts() -> Relation {
        let column = |name: &str, type_oid: u32, key: bool| Column {
            name: name.into(),
            type_oid,
            type_modifier: -1,
            key,
        };
        Relation {
            id: 1,
            schema: "public".into(),
            name: "accounts".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                column("id", 23, true),
                column("born", 1082, false),
                column("note", 25, false),
            ],
        }
    }

    fn row(values: &[Value]) -> Row {
        Row(values.to_vec())
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn each_change_is_one_row_with_what_it_was_and_nothing_is_lost() {
        let mut rows = TableRows::new(&accounts()).unwrap();
        let at = |lsn: u64, ordinal: u32| ChangeAt {
            commit_lsn: Lsn::new(lsn),
            ordinal,
            xid: 7,
            commit_time_us: 1_000_000,
        };
        rows.push(
            at(10, 0),
            &Op::Insert {
                relation: 1,
                new: row(&[text("1"), text("2000-01-01"), text("hi")]),
            },
        )
        .unwrap();
        rows.push(
            at(10, 1),
            &Op::Update {
                relation: 1,
                old: Some(OldRow::Full(row(&[
                    text("1"),
                    text("-infinity"),
                    text("hi"),
                ]))),
                new: row(&[text("2"), text("infinity"), Value::Unchanged]),
            },
        )
        .unwrap();
        rows.push(
            at(11, 0),
            &Op::Delete {
                relation: 1,
                old: OldRow::Key(row(&[text("2"), Value::Null, Value::Null])),
            },
        )
        .unwrap();
        rows.push(
            at(12, 3),
            &Op::Truncate {
                relations: vec![1],
                cascade: false,
                restart_identity: false,
            },
        )
        .unwrap();
        assert_eq!(rows.range(), Some(((Lsn::new(10), 0), (Lsn::new(12), 3))));
        let batch = rows.finish();
        assert_eq!(batch.num_rows(), 4);
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let ops = column("__op");
        let ops: Vec<_> = ops.as_string::<i32>().iter().flatten().collect();
        assert_eq!(ops, ["c", "u", "d", "t"]);
        let ids = column("id");
        let ids = ids.as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!((ids.value(0), ids.value(1), ids.value(2)), (1, 2, 2));
        assert!(ids.is_null(3), "a truncate's row is all NULL");
        let lsns = column("__lsn");
        assert_eq!(lsns.as_primitive::<Int64Type>().value(2), 11);
        // The update: its old key in __before, the unchanged note named, the infinite date in
        // __raw (and NULL in its column).
        let before = column("__before");
        let before = before.as_struct();
        assert!(before.is_valid(1) && before.is_null(0));
        assert_eq!(
            before
                .column(0)
                .as_primitive::<arrow::datatypes::Int32Type>()
                .value(1),
            1
        );
        let unchanged = column("__unchanged");
        let unchanged = unchanged.as_list::<i32>();
        assert!(unchanged.is_null(0));
        assert_eq!(unchanged.value(1).as_string::<i32>().value(0), "note");
        assert!(column("note").is_null(1));
        assert!(column("born").is_null(1));
        let raw = column("__raw");
        let raw = raw.as_list::<i32>();
        let entry = raw.value(1);
        let entry = entry.as_struct();
        assert_eq!(entry.column(0).as_string::<i32>().value(0), "born");
        assert_eq!(entry.column(1).as_string::<i32>().value(0), "infinity");
        assert!(raw.is_null(0));
        assert_eq!(
            entry.len(),
            1,
            "the old row's raw value is not the new row's"
        );
        let before_raw = column("__before_raw");
        let before_raw = before_raw.as_list::<i32>();
        let entry = before_raw.value(1);
        let entry = entry.as_struct();
        assert_eq!(entry.column(0).as_string::<i32>().value(0), "born");
        assert_eq!(entry.column(1).as_string::<i32>().value(0), "-infinity");
        assert!(before_raw.is_null(0));
        // It starts again empty.
        assert_eq!(rows.rows(), 0);
        assert_eq!(rows.finish().num_rows(), 0);
    }

    #[test]
    fn a_column_named_like_a_change_column_is_refused_naming_it() {
        let mut relation = accounts();
        relation.columns[2].name = "__op".into();
        let err = TableRows::new(&relation).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table public.accounts: column __op has the name of a change column (__lsn, __op, …)"
        );
    }
}
