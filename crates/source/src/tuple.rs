//! Converting pgoutput tuples into walproof rows with canonical values.

use walproof_core::{OldRow, Relation, Row, Value};

use crate::pgoutput::{OldTuple, TupleColumn, TupleData};

/// A tuple that does not fit its relation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TupleError {
    /// The tuple has a different number of columns than the relation.
    #[error("tuple of {schema}.{table} has {got} columns, the relation has {expected}")]
    Width {
        /// The relation's schema.
        schema: String,
        /// The relation's name.
        table: String,
        /// Columns of the relation.
        expected: usize,
        /// Columns of the tuple.
        got: usize,
    },
    /// A column came in binary format, which walproof never requests.
    #[error("column {column} of {schema}.{table} arrived in binary format; walproof reads text")]
    Binary {
        /// The relation's schema.
        schema: String,
        /// The relation's name.
        table: String,
        /// The column's name.
        column: String,
    },
}

/// Converts a new tuple. An unchanged TOASTed column takes the old tuple's value when the
/// source sent the whole old row (REPLICA IDENTITY FULL); otherwise it stays
/// [`Value::Unchanged`] — never a placeholder.
pub fn convert_tuple_to_row(
    tuple: &TupleData<'_>,
    relation: &Relation,
    old: Option<&OldTuple<'_>>,
) -> Result<Row, TupleError> {
    check_width(tuple, relation)?;
    let full_old = match old {
        Some(OldTuple::Full(old)) if old.columns.len() == tuple.columns.len() => Some(old),
        _ => None,
    };
    tuple
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| match column {
            TupleColumn::UnchangedToast => {
                let from_old = full_old.and_then(|old| old.columns.get(i));
                match from_old {
                    Some(TupleColumn::Text(text)) => Ok(Value::Text((*text).to_owned())),
                    Some(TupleColumn::Null) => Ok(Value::Null),
                    _ => Ok(Value::Unchanged),
                }
            }
            other => value(other, relation, i),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Row)
}

/// Converts an old tuple (`K` key columns only, or `O` the whole row).
pub fn convert_old_tuple(old: &OldTuple<'_>, relation: &Relation) -> Result<OldRow, TupleError> {
    let tuple = old.tuple();
    check_width(tuple, relation)?;
    let row = tuple
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| match column {
            TupleColumn::UnchangedToast => Ok(Value::Unchanged),
            other => value(other, relation, i),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Row)?;
    Ok(match old {
        OldTuple::Key(_) => OldRow::Key(row),
        OldTuple::Full(_) => OldRow::Full(row),
    })
}

fn value(column: &TupleColumn<'_>, relation: &Relation, i: usize) -> Result<Value, TupleError> {
    match column {
        TupleColumn::Null => Ok(Value::Null),
        TupleColumn::Text(text) => Ok(Value::Text((*text).to_owned())),
        TupleColumn::UnchangedToast => Ok(Value::Unchanged),
        TupleColumn::Binary(_) => Err(TupleError::Binary {
            schema: relation.schema.clone(),
            table: relation.name.clone(),
            column: relation
                .columns
                .get(i)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        }),
    }
}

fn check_width(tuple: &TupleData<'_>, relation: &Relation) -> Result<(), TupleError> {
    if tuple.columns.len() == relation.columns.len() {
        return Ok(());
    }
    Err(TupleError::Width {
        schema: relation.schema.clone(),
        table: relation.name.clone(),
        expected: relation.columns.len(),
        got: tuple.columns.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use walproof_core::{Column, ReplicaIdentity};

    fn relation() -> Relation {
        let column = |name: &str, key| Column {
            name: name.into(),
            type_oid: 25,
            type_modifier: -1,
            key,
        };
        Relation {
            id: 1,
            schema: "public".into(),
            name: "docs".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                column("id", true),
                column("body", false),
                column("note", false),
            ],
        }
    }

    fn tuple<'a>(columns: Vec<TupleColumn<'a>>) -> TupleData<'a> {
        TupleData { columns }
    }

    #[test]
    fn unchanged_toast_without_the_old_row_stays_an_explicit_marker() {
        let new = tuple(vec![
            TupleColumn::Text("1"),
            TupleColumn::UnchangedToast,
            TupleColumn::Null,
        ]);
        let row = convert_tuple_to_row(&new, &relation(), None).unwrap();
        assert_eq!(row, Row(vec!["1".into(), Value::Unchanged, Value::Null]));
        // A key-only old tuple does not carry the value either.
        let key = OldTuple::Key(tuple(vec![
            TupleColumn::Text("1"),
            TupleColumn::Null,
            TupleColumn::Null,
        ]));
        let row = convert_tuple_to_row(&new, &relation(), Some(&key)).unwrap();
        assert_eq!(row.0[1], Value::Unchanged);
    }

    #[test]
    fn unchanged_toast_under_replica_identity_full_is_filled_from_the_old_row() {
        let new = tuple(vec![
            TupleColumn::Text("1"),
            TupleColumn::UnchangedToast,
            TupleColumn::Text("n"),
        ]);
        let old = OldTuple::Full(tuple(vec![
            TupleColumn::Text("1"),
            TupleColumn::Text("a long body"),
            TupleColumn::Text("o"),
        ]));
        let row = convert_tuple_to_row(&new, &relation(), Some(&old)).unwrap();
        assert_eq!(row, Row(vec!["1".into(), "a long body".into(), "n".into()]));
        assert_eq!(
            convert_old_tuple(&old, &relation()).unwrap(),
            OldRow::Full(Row(vec!["1".into(), "a long body".into(), "o".into()]))
        );
    }

    #[test]
    fn a_tuple_of_the_wrong_width_or_in_binary_is_refused_by_name() {
        let narrow = tuple(vec![TupleColumn::Text("1")]);
        let err = convert_tuple_to_row(&narrow, &relation(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tuple of public.docs has 1 columns, the relation has 3"
        );
        let binary = tuple(vec![
            TupleColumn::Text("1"),
            TupleColumn::Binary(b"x"),
            TupleColumn::Null,
        ]);
        let err = convert_tuple_to_row(&binary, &relation(), None).unwrap_err();
        assert!(
            err.to_string().contains("column body of public.docs"),
            "{err}"
        );
    }
}
