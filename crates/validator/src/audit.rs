//! The deep audit: rows of the shadow database, read back as text under the canonical settings,
//! hashed as the tree hashes them and compared with the tree this validator computed from the
//! stream. Replay checks that every change applies; the audit checks that what the shadow
//! holds is still what was applied — a row changed behind the validator's back shows here.
//!
//! Each audit reads up to `rows` rows, walking the tables in relation order, each from where
//! the last audit stopped, so every row is read once every `table rows / rows` audits; when it
//! starts a table it also compares the table's row count with the number of keys in the tree
//! (a row deleted or added behind its back).
//!
//! - A keyed table is walked in key order; each row's key finds the column hashes the tree
//!   holds, which the row's values must hash to.
//! - A table without a key (a multiset: REPLICA IDENTITY FULL, no primary key) is read grouped:
//!   each distinct row once — every column's text output, exactly as the stream carries it —
//!   with how many times the shadow holds it. The row's column hashes give its multiset key as
//!   the committer computes it, and the count the tree holds under that key must be the
//!   shadow's. The count at the table's start is of distinct rows (one key each), so together
//!   the two checks find a row added, removed, duplicated or changed. The walk goes in the
//!   order of the rows' text (byte order, NULL first) and resumes after the last row read; a
//!   row read counts once against `rows` however many times the shadow holds it. Such a table
//!   has no index to walk, so each audit that reads from it scans it whole (to group it), but
//!   reads back at most `rows` of its distinct rows.
//!
//! A table whose shape changed since the last audit (a DDL) is started over.

use std::fmt::Write as _;

use walproof_committer::CommitState;
use walproof_core::ident::{quote_ident, quote_literal};
use walproof_core::leaf::{column_hash, multiset_key, row_key};
use walproof_core::{Relation, RelationId};

use crate::error::Result;
use crate::replay::text_output;
use crate::schema::{ShadowTables, table_name};
use crate::shadow::Shadow;

/// Where the audit goes on from.
#[derive(Debug, Default, Clone)]
pub struct Audit {
    /// The table being walked and the last row read in it (`None`: from its start).
    cursor: Option<(RelationId, Option<Last>)>,
}

/// The last row an audit read in a table: the next audit goes on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Last {
    /// A keyed table's key values.
    Key(Vec<String>),
    /// A multiset's row: every column's text output, NULL as `None`.
    Row(Vec<Option<String>>),
}

impl Last {
    /// Whether the walk can go on after this row in `relation`'s current shape.
    fn fits(&self, relation: &Relation) -> bool {
        match self {
            Last::Key(values) => {
                relation.has_key()
                    && values.len() == relation.columns.iter().filter(|c| c.key).count()
            }
            Last::Row(values) => !relation.has_key() && values.len() == relation.columns.len(),
        }
    }
}

/// What one audit did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audited {
    /// Rows compared with the tree (a multiset's distinct rows).
    pub rows: u64,
    /// What disagreed, if anything: the table, the key (a multiset: the row) and what differs.
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
        let mut tables: Vec<&Relation> = tables.iter().collect();
        tables.sort_by_key(|r| r.id);
        let mut audited = Audited::default();
        if tables.is_empty() {
            self.cursor = None;
            return Ok(audited);
        }
        let mut left = budget.max(1);
        // Each table at most once per audit, starting where the last one stopped.
        let start = match &self.cursor {
            Some((id, _)) => tables.iter().position(|r| r.id >= *id).unwrap_or(0),
            None => 0,
        };
        for step in 0..tables.len() {
            let relation = tables[(start + step) % tables.len()];
            let after = match self.cursor.take() {
                Some((id, after)) if id == relation.id => after.filter(|last| last.fits(relation)),
                _ => None,
            };
            if after.is_none() {
                if let Some(problem) = count(shadow, relation, state).await? {
                    audited.problem = Some(problem);
                    return Ok(audited);
                }
            }
            let (rows, last, problem) = match after {
                Some(Last::Row(after)) => {
                    check_multiset(shadow, relation, state, Some(&after), left).await?
                }
                None if !relation.has_key() => {
                    check_multiset(shadow, relation, state, None, left).await?
                }
                Some(Last::Key(after)) => {
                    check_rows(shadow, relation, state, Some(&after), left).await?
                }
                None => check_rows(shadow, relation, state, None, left).await?,
            };
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

/// Compares the table's rows (a multiset: its distinct rows) with the keys the tree holds.
async fn count(
    shadow: &Shadow,
    relation: &Relation,
    state: &CommitState,
) -> Result<Option<String>> {
    let table = table_name(relation);
    let (sql, what) = if relation.has_key() {
        (format!("SELECT count(*) FROM {table}"), "rows")
    } else {
        (distinct_rows_sql(relation), "distinct rows")
    };
    let rows = shadow.rows(&sql).await?;
    let held: usize = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let keys = state.table_keys(relation.id);
    Ok((held != keys).then(|| {
        format!("{table} has {held} {what} in the shadow database, the tree holds {keys}")
    }))
}

/// Checks up to `limit` rows after `after` in key order: (rows read, last key, problem).
async fn check_rows(
    shadow: &Shadow,
    relation: &Relation,
    state: &CommitState,
    after: Option<&[String]>,
    limit: usize,
) -> Result<(usize, Option<Last>, Option<String>)> {
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
        last = Some(Last::Key(key_values));
    }
    Ok((rows.len(), last, None))
}

/// Each column's text output, compared byte by byte: two rows are the same multiset row
/// exactly when these agree (so `1.0` and `1.00` are two rows, as they are two keys).
fn row_values(relation: &Relation) -> Vec<String> {
    relation
        .columns
        .iter()
        .map(|c| format!("({} COLLATE \"C\")", text_output(&c.name, c.type_oid)))
        .collect()
}

/// The number of distinct rows of a multiset.
fn distinct_rows_sql(relation: &Relation) -> String {
    let table = table_name(relation);
    let values = row_values(relation);
    // Without a GROUP BY (no columns) an empty table still gives a group: HAVING drops it.
    let group = if values.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", values.join(", "))
    };
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM {table}{group} HAVING count(*) > 0) AS distinct_rows"
    )
}

/// Up to `limit` distinct rows of a multiset after `after`, each its values then how many
/// times the table holds it. The order — and the cursor — is each column's (not NULL, text)
/// in turn: total, with NULL before every text, so a row comparison resumes the walk.
fn multiset_sql(relation: &Relation, after: Option<&[Option<String>]>, limit: usize) -> String {
    let table = table_name(relation);
    let values = row_values(relation);
    let order: Vec<String> = values
        .iter()
        .flat_map(|v| [format!("{v} IS NOT NULL"), format!("coalesce({v}, '')")])
        .collect();
    let mut sql = String::from("SELECT ");
    for value in &values {
        let _ = write!(sql, "{value}, ");
    }
    let _ = write!(sql, "count(*) FROM {table}");
    if let Some(after) = after.filter(|_| !order.is_empty()) {
        let bounds: Vec<String> = after
            .iter()
            .flat_map(|v| match v {
                Some(text) => ["true".to_owned(), quote_literal(text)],
                None => ["false".to_owned(), "''".to_owned()],
            })
            .collect();
        let _ = write!(
            sql,
            " WHERE ({}) > ({})",
            order.join(", "),
            bounds.join(", ")
        );
    }
    if !values.is_empty() {
        let positions: Vec<String> = (1..=values.len()).map(|i| i.to_string()).collect();
        let _ = write!(sql, " GROUP BY {}", positions.join(", "));
    }
    sql.push_str(" HAVING count(*) > 0");
    if !order.is_empty() {
        let _ = write!(sql, " ORDER BY {}", order.join(", "));
    }
    let _ = write!(sql, " LIMIT {limit}");
    sql
}

/// Checks up to `limit` distinct rows of a multiset after `after`: (rows read, last row,
/// problem).
async fn check_multiset(
    shadow: &Shadow,
    relation: &Relation,
    state: &CommitState,
    after: Option<&[Option<String>]>,
    limit: usize,
) -> Result<(usize, Option<Last>, Option<String>)> {
    if after.is_some() && relation.columns.is_empty() {
        // A table without columns has one distinct row at most: it was read.
        return Ok((0, None, None));
    }
    let rows = shadow.rows(&multiset_sql(relation, after, limit)).await?;
    let problem = check_multiset_rows(relation, state, &rows);
    let last = rows.last().map(|row| {
        let mut values = row.clone();
        values.truncate(relation.columns.len());
        Last::Row(values)
    });
    Ok((rows.len(), last.filter(|_| problem.is_none()), problem))
}

/// Compares a multiset's rows as [`multiset_sql`] reads them with the counts the tree holds.
fn check_multiset_rows(
    relation: &Relation,
    state: &CommitState,
    rows: &[Vec<Option<String>>],
) -> Option<String> {
    let table = table_name(relation);
    let names: Vec<_> = relation
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    for row in rows {
        let (values, held) = row.split_at(relation.columns.len().min(row.len()));
        let held: u64 = held
            .first()
            .and_then(|n| n.as_deref())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let hashes: Vec<_> = relation
            .columns
            .iter()
            .zip(values)
            .map(|(column, value)| column_hash(column.type_oid, value.as_deref()))
            .collect();
        let key = multiset_key(&relation.schema, &relation.name, &hashes);
        let given = state.row_count(&key).unwrap_or(0);
        if given != held {
            let shown: Vec<&str> = values
                .iter()
                .map(|v| v.as_deref().unwrap_or("NULL"))
                .collect();
            let shown = format!("{table} row ({})=({})", names.join(", "), shown.join(", "));
            return Some(if given == 0 {
                format!(
                    "{shown} is in the shadow database ({}) but not in the tree",
                    times(held)
                )
            } else {
                format!(
                    "{shown}: the shadow database holds it {}, the stream gave it {}",
                    times(held),
                    times(given)
                )
            });
        }
    }
    None
}

fn times(n: u64) -> String {
    if n == 1 {
        "1 time".to_owned()
    } else {
        format!("{n} times")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use std::collections::BTreeMap;

    use walproof_core::{Change, Column, Lsn, Op, ReplicaIdentity, Row, Transaction, Value};
    use walproof_testkit::{Stack, TestDatabase};

    use super::*;
    use crate::shadow::Role;

    fn relation(id: RelationId, name: &str, columns: &[(&str, u32, bool)]) -> Relation {
        Relation {
            id,
            schema: "public".into(),
            name: name.into(),
            replica_identity: if columns.iter().any(|c| c.2) {
                ReplicaIdentity::Default
            } else {
                ReplicaIdentity::Full
            },
            columns: columns
                .iter()
                .map(|(name, type_oid, key)| Column {
                    name: (*name).into(),
                    type_oid: *type_oid,
                    type_modifier: -1,
                    key: *key,
                })
                .collect(),
        }
    }

    fn accounts() -> Relation {
        relation(1, "accounts", &[("id", 23, true), ("name", 25, false)])
    }

    /// A multiset whose text output differs from `::text` (bool, char(n), inet) or from
    /// equality (numeric: `1.0` and `1.00` are equal, and two rows).
    fn events() -> Relation {
        relation(
            2,
            "events",
            &[
                ("kind", 25, false),
                ("flag", 16, false),
                ("code", 1042, false),
                ("addr", 869, false),
                ("amount", 1700, false),
                ("Note", 25, false),
            ],
        )
    }

    /// The rows of both tables, as the stream carries them.
    const ACCOUNTS: [[Option<&str>; 2]; 2] = [[Some("1"), Some("a")], [Some("2"), None]];
    const EVENTS: [[Option<&str>; 6]; 8] = [
        [
            Some("boot"),
            Some("t"),
            Some("ab  "),
            Some("10.0.0.1/24"),
            Some("1.0"),
            None,
        ],
        [
            Some("boot"),
            Some("t"),
            Some("ab  "),
            Some("10.0.0.1/24"),
            Some("1.0"),
            None,
        ],
        [
            Some("boot"),
            Some("t"),
            Some("ab  "),
            Some("10.0.0.1/24"),
            Some("1.0"),
            None,
        ],
        [
            Some("boot"),
            Some("t"),
            Some("ab  "),
            Some("10.0.0.1/24"),
            Some("1.00"),
            None,
        ],
        [
            Some("tick"),
            Some("f"),
            Some("ab  "),
            Some("10.0.0.1"),
            Some("2"),
            Some("x"),
        ],
        [Some("tick"), None, None, None, None, None],
        [
            Some("Tick"),
            Some("t"),
            Some("a   "),
            Some("::1"),
            Some("3"),
            Some("it's"),
        ],
        [
            None,
            Some("f"),
            Some("b\\  "),
            Some("10.0.0.0/8"),
            Some("-1.50"),
            Some(""),
        ],
    ];
    /// Distinct rows of `EVENTS`.
    const EVENT_KEYS: usize = 6;

    fn row(values: &[Option<&str>]) -> Row {
        Row(values
            .iter()
            .map(|v| v.map_or(Value::Null, |t| Value::Text(t.into())))
            .collect())
    }

    fn state() -> CommitState {
        let (a, e) = (accounts(), events());
        let inserts = ACCOUNTS
            .iter()
            .map(|values| (&a, &values[..]))
            .chain(EVENTS.iter().map(|values| (&e, &values[..])));
        let transaction = Transaction {
            commit_lsn: Lsn::new(1),
            xid: 1,
            commit_time_us: 0,
            relations: [(a.id, a.clone()), (e.id, e.clone())]
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            changes: inserts
                .enumerate()
                .map(|(i, (rel, values))| Change {
                    ordinal: i as u32,
                    op: Op::Insert {
                        relation: rel.id,
                        new: row(values),
                    },
                })
                .collect(),
        };
        let mut state = CommitState::default();
        state.apply(&transaction).unwrap();
        state
    }

    fn sql_literal(value: Option<&str>) -> String {
        value.map_or("NULL".to_owned(), quote_literal)
    }

    #[test]
    fn a_multiset_is_read_grouped_by_text_output_in_a_total_order() {
        let log = relation(
            3,
            "log",
            &[
                ("flag", 16, false),
                ("code", 1042, false),
                ("note", 25, false),
            ],
        );
        let flag = "(pg_catalog.boolout(flag)::text COLLATE \"C\")";
        let code = "(pg_catalog.bpcharout(code)::text COLLATE \"C\")";
        let note = "(note::text COLLATE \"C\")";
        let order = format!(
            "{flag} IS NOT NULL, coalesce({flag}, ''), {code} IS NOT NULL, coalesce({code}, ''), {note} IS NOT NULL, coalesce({note}, '')"
        );
        assert_eq!(
            multiset_sql(&log, None, 10),
            format!(
                "SELECT {flag}, {code}, {note}, count(*) FROM public.log GROUP BY 1, 2, 3 HAVING count(*) > 0 ORDER BY {order} LIMIT 10"
            )
        );
        assert_eq!(
            multiset_sql(
                &log,
                Some(&[Some("t".into()), None, Some("it's".into())]),
                5
            ),
            format!(
                "SELECT {flag}, {code}, {note}, count(*) FROM public.log WHERE ({order}) > (true, 't', false, '', true, 'it''s') GROUP BY 1, 2, 3 HAVING count(*) > 0 ORDER BY {order} LIMIT 5"
            )
        );
        assert_eq!(
            distinct_rows_sql(&log),
            format!(
                "SELECT count(*) FROM (SELECT 1 FROM public.log GROUP BY {flag}, {code}, {note} HAVING count(*) > 0) AS distinct_rows"
            )
        );
    }

    #[test]
    fn a_multiset_row_is_compared_with_the_count_the_tree_holds_for_its_key() {
        let (state, e) = (state(), events());
        let read = |values: &[Option<&str>; 6], n: u64| {
            let mut row: Vec<Option<String>> =
                values.iter().map(|v| v.map(str::to_owned)).collect();
            row.push(Some(n.to_string()));
            row
        };
        let shown = "public.events row (kind, flag, code, addr, amount, \"Note\")";
        assert_eq!(
            check_multiset_rows(&e, &state, &[read(&EVENTS[0], 3), read(&EVENTS[3], 1)]),
            None
        );
        assert_eq!(
            check_multiset_rows(&e, &state, &[read(&EVENTS[3], 1), read(&EVENTS[0], 2)]),
            Some(format!(
                "{shown}=(boot, t, ab  , 10.0.0.1/24, 1.0, NULL): the shadow database holds it 2 times, the stream gave it 3 times"
            ))
        );
        let mut changed = EVENTS[4];
        changed[5] = Some("mallory");
        assert_eq!(
            check_multiset_rows(&e, &state, &[read(&changed, 1)]),
            Some(format!(
                "{shown}=(tick, f, ab  , 10.0.0.1, 2, mallory) is in the shadow database (1 time) but not in the tree"
            ))
        );
        // The row is its text: NULL is not the empty string, nor the text "NULL".
        let mut empty = EVENTS[5];
        empty[5] = Some("");
        assert!(check_multiset_rows(&e, &state, &[read(&empty, 1)]).is_some());
    }

    #[test]
    fn a_cursor_goes_on_only_in_the_shape_it_was_read_in() {
        let (a, e) = (accounts(), events());
        assert!(Last::Key(vec!["1".into()]).fits(&a));
        assert!(!Last::Key(vec!["1".into(), "2".into()]).fits(&a));
        assert!(!Last::Key(vec!["1".into()]).fits(&e));
        assert!(Last::Row(vec![None; 6]).fits(&e));
        assert!(!Last::Row(vec![None; 5]).fits(&e));
        assert!(!Last::Row(vec![None; 2]).fits(&a));
    }

    /// Audits with `budget` until one finds a problem, at most `audits` of them.
    async fn audit_until_found(
        shadow: &Shadow,
        tables: &ShadowTables,
        state: &CommitState,
        budget: usize,
        audits: usize,
    ) -> Option<String> {
        let mut audit = Audit::default();
        for _ in 0..audits {
            let audited = audit.run(shadow, tables, state, budget).await.unwrap();
            if audited.problem.is_some() {
                return audited.problem;
            }
        }
        None
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_audit_walks_keyed_tables_and_multisets_and_finds_what_changed_behind_its_back() {
        let stack = Stack::load().unwrap();
        let db = TestDatabase::create(&stack, "validator_audit")
            .await
            .unwrap();
        let sql = db.connect().await.unwrap();
        let mut setup = String::from(
            "CREATE TABLE accounts (id int PRIMARY KEY, name text);
             CREATE TABLE events (kind text, flag boolean, code char(4), addr inet, amount numeric, \"Note\" text);",
        );
        for [id, name] in ACCOUNTS {
            let _ = write!(
                setup,
                "INSERT INTO accounts VALUES ({}, {});",
                sql_literal(id),
                sql_literal(name)
            );
        }
        for values in EVENTS {
            let values: Vec<String> = values.iter().map(|v| sql_literal(*v)).collect();
            let _ = write!(setup, "INSERT INTO events VALUES ({});", values.join(", "));
        }
        sql.batch_execute(&setup).await.unwrap();
        let (host, port, user) = db.host_port_user();
        let url = format!("postgres://{user}@{host}:{port}/{}", db.name());
        let shadow = Shadow::connect(&url, Role::Checks).await.unwrap();
        let mut tables = ShadowTables::default();
        tables.insert(accounts());
        tables.insert(events());
        let state = state();
        assert_eq!(state.table_keys(2), EVENT_KEYS);

        // Everything at once, then two rows per audit: the same rows, without a problem.
        let all = ACCOUNTS.len() + EVENT_KEYS;
        let mut audit = Audit::default();
        let audited = audit.run(&shadow, &tables, &state, 100).await.unwrap();
        assert_eq!(
            audited,
            Audited {
                rows: all as u64,
                problem: None
            }
        );
        assert!(audit.cursor.is_none());
        let mut audit = Audit::default();
        for _ in 0..all / 2 {
            let audited = audit.run(&shadow, &tables, &state, 2).await.unwrap();
            assert_eq!(
                audited,
                Audited {
                    rows: 2,
                    problem: None
                }
            );
        }
        // The walk ended on the last multiset row in its order (NULL first, then bytes).
        assert_eq!(
            audit.cursor,
            Some((
                2,
                Some(Last::Row(
                    EVENTS[4].iter().map(|v| v.map(str::to_owned)).collect()
                ))
            ))
        );

        let shown = "public.events row (kind, flag, code, addr, amount, \"Note\")";
        let one = "ctid = (SELECT ctid FROM events WHERE";
        for (tamper, undo, expected) in [
            (
                "INSERT INTO events SELECT * FROM events WHERE kind = 'tick' AND flag = false"
                    .to_owned(),
                format!("DELETE FROM events WHERE {one} kind = 'tick' AND flag = false LIMIT 1)"),
                format!(
                    "{shown}=(tick, f, ab  , 10.0.0.1, 2, x): the shadow database holds it 2 times, the stream gave it 1 time"
                ),
            ),
            (
                format!("DELETE FROM events WHERE {one} amount::text = '1.0' LIMIT 1)"),
                "INSERT INTO events VALUES ('boot', true, 'ab', '10.0.0.1/24', 1.0, NULL)".to_owned(),
                format!(
                    "{shown}=(boot, t, ab  , 10.0.0.1/24, 1.0, NULL): the shadow database holds it 2 times, the stream gave it 3 times"
                ),
            ),
            (
                "UPDATE events SET amount = 1.00 WHERE amount::text = '1.0'".into(),
                "UPDATE events SET amount = 1.0 WHERE ctid IN (SELECT ctid FROM events WHERE amount::text = '1.00' LIMIT 3)".to_owned(),
                "public.events has 5 distinct rows in the shadow database, the tree holds 6".into(),
            ),
            (
                "UPDATE events SET \"Note\" = 'mallory' WHERE kind = 'tick' AND flag IS NULL"
                    .into(),
                "UPDATE events SET \"Note\" = NULL WHERE kind = 'tick' AND flag IS NULL".into(),
                format!(
                    "{shown}=(tick, NULL, NULL, NULL, NULL, mallory) is in the shadow database (1 time) but not in the tree"
                ),
            ),
            (
                "UPDATE accounts SET name = 'mallory' WHERE id = 2".into(),
                "UPDATE accounts SET name = NULL WHERE id = 2".into(),
                "public.accounts key (id)=(2): column name holds 'mallory' in the shadow database, which is not the value the stream gave it".into(),
            ),
        ] {
            sql.batch_execute(&tamper).await.unwrap();
            // Found by a walk of two rows per audit, within one pass over every table.
            let found = audit_until_found(&shadow, &tables, &state, 2, all / 2 + 1).await;
            assert_eq!(found.as_deref(), Some(expected.as_str()), "{tamper}");
            sql.batch_execute(&undo).await.unwrap();
            assert_eq!(
                audit_until_found(&shadow, &tables, &state, 100, 1).await,
                None,
                "{undo}"
            );
        }
    }
}
