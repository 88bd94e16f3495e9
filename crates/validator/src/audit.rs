//! The deep audit: rows of the shadow database, read back as text under the canonical settings,
//! hashed as the tree hashes them and compared with the tree this validator computed from the
//! stream. Replay checks that every change applies; the audit checks that what the shadow
//! holds is still what was applied — a row changed behind the validator's back shows here.
//!
//! Each audit reads up to `rows` rows, walking the keyed tables in key order from where the last
//! audit stopped, so every row is read once every `table rows / rows` audits; when it starts
//! a table it also compares the table's row count with the number of keys in the tree (a row
//! deleted or added behind its back). Tables without a key (multisets) are not audited.

use std::fmt::Write as _;

use walproof_committer::CommitState;
use walproof_core::ident::{quote_ident, quote_literal};
use walproof_core::leaf::{column_hash, row_key};
use walproof_core::{Relation, RelationId};

use crate::error::Result;
use crate::schema::{ShadowTables, table_name};
use crate::shadow::Shadow;

/// Where the audit goes on from.
#[derive(Debug, Default, Clone)]
pub struct Audit {
    /// The table being walked and the last key read in it (`None`: from its start).
    cursor: Option<(RelationId, Option<Vec<String>>)>,
}

/// What one audit did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audited {
    /// Rows compared with the tree.
    pub rows: u64,
    /// What disagreed, if anything: the table, the key and the column.
    pub problem: Option<String>,
}

impl Audit {
    /// Reads up to `budget` rows of the shadow and compares them with `state`.
    pub async fn run(
        &mut self,
        shadow: &Shadow,
        tables: &ShadowTables,
        state: &CommitState,
        budget: usize,
    ) -> Result<Audited> {
        let mut keyed: Vec<&Relation> = tables.iter().filter(|r| r.has_key()).collect();
        keyed.sort_by_key(|r| r.id);
        let mut audited = Audited::default();
        if keyed.is_empty() {
            return Ok(audited);
        }
        let mut left = budget.max(1);
        // Each table at most once per audit, starting where the last one stopped.
        let start = match &self.cursor {
            Some((id, _)) => keyed.iter().position(|r| r.id >= *id).unwrap_or(0),
            None => 0,
        };
        for step in 0..keyed.len() {
            let relation = keyed[(start + step) % keyed.len()];
            let after = match self.cursor.take() {
                Some((id, after)) if id == relation.id => after,
                _ => None,
            };
            if after.is_none() {
                if let Some(problem) = count(shadow, relation, state).await? {
                    audited.problem = Some(problem);
                    return Ok(audited);
                }
            }
            let (rows, last, problem) =
                check_rows(shadow, relation, state, after.as_deref(), left).await?;
            audited.rows += rows as u64;
            if problem.is_some() {
                audited.problem = problem;
                return Ok(audited);
            }
            left -= rows.min(left);
            if rows > 0 && left == 0 {
                self.cursor = Some((relation.id, last));
                return Ok(audited);
            }
        }
        self.cursor = None;
        Ok(audited)
    }
}

async fn count(
    shadow: &Shadow,
    relation: &Relation,
    state: &CommitState,
) -> Result<Option<String>> {
    let table = table_name(relation);
    let rows = shadow
        .rows(&format!("SELECT count(*) FROM {table}"))
        .await?;
    let held: usize = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let keys = state.table_keys(relation.id);
    Ok((held != keys)
        .then(|| format!("{table} has {held} rows in the shadow database, the tree holds {keys}")))
}

/// Checks up to `limit` rows after `after` in key order: (rows read, last key, problem).
async fn check_rows(
    shadow: &Shadow,
    relation: &Relation,
    state: &CommitState,
    after: Option<&[String]>,
    limit: usize,
) -> Result<(usize, Option<Vec<String>>, Option<String>)> {
    let table = table_name(relation);
    let columns: Vec<_> = relation
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    let keys: Vec<_> = relation
        .columns
        .iter()
        .filter(|c| c.key)
        .map(|c| quote_ident(&c.name))
        .collect();
    let mut sql = format!("SELECT {} FROM {table}", columns.join(", "));
    if let Some(after) = after {
        let values: Vec<String> = after.iter().map(|v| quote_literal(v)).collect();
        let _ = write!(
            sql,
            " WHERE ({}) > ({})",
            keys.join(", "),
            values.join(", ")
        );
    }
    let _ = write!(sql, " ORDER BY {} LIMIT {limit}", keys.join(", "));
    let rows = shadow.rows(&sql).await?;
    let mut last = None;
    for row in &rows {
        let key_values: Vec<String> = relation
            .columns
            .iter()
            .zip(row)
            .filter(|(c, _)| c.key)
            .map(|(_, v)| v.clone().unwrap_or_default())
            .collect();
        let key = row_key(
            &relation.schema,
            &relation.name,
            key_values.iter().map(String::as_str),
        );
        let shown = format!(
            "{table} key ({})=({})",
            keys.join(", "),
            key_values.join(", ")
        );
        let Some(held) = state.column_hashes(&key) else {
            return Ok((
                rows.len(),
                None,
                Some(format!(
                    "{shown} is in the shadow database but not in the tree"
                )),
            ));
        };
        for ((column, value), held) in relation.columns.iter().zip(row).zip(held) {
            if column_hash(column.type_oid, value.as_deref()) != *held {
                return Ok((
                    rows.len(),
                    None,
                    Some(format!(
                        "{shown}: column {} holds {} in the shadow database, which is not the value the stream gave it",
                        column.name,
                        value.as_deref().map_or("NULL".to_owned(), quote_literal)
                    )),
                ));
            }
        }
        last = Some(key_values);
    }
    Ok((rows.len(), last, None))
}
