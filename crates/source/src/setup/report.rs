//! The human report of a [`SetupPlan`]: every check, every table, the fixes, the SQL.

use std::fmt::Write as _;

use walproof_core::ReplicaIdentity;

use super::check::Verdict;
use super::ident::quote_ident;
use super::key::{TableKey, replica_identity_sql};
use super::plan::SetupPlan;
use super::problem::{Fix, Problem};

const INDENT: &str = "           ";

impl SetupPlan {
    /// The report `walproof setup` prints: each check and table with its verdict, then either
    /// "everything is in place", the SQL that runs (or would, in a dry run), or every fix to
    /// make first.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_report(&mut out);
        out
    }

    fn write_report(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "walproof setup: database {} (PostgreSQL {}), publication {}, slot {}{}",
            quote_ident(&self.database),
            self.server_version,
            quote_ident(&self.publication),
            self.slot,
            if self.dry_run { " (dry run)" } else { "" }
        )?;
        writeln!(out, "\nChecks")?;
        for check in &self.checks {
            match &check.verdict {
                Verdict::Ok(detail) => line(out, "ok", &check.subject, detail)?,
                Verdict::Create { detail, .. } => line(out, "create", &check.subject, detail)?,
                Verdict::Refused(problem) => refused(out, &check.subject, problem)?,
            }
        }
        if self.tables.is_empty() {
            writeln!(out, "\nTables: none yet")?;
        } else {
            writeln!(out, "\nTables ({})", self.tables.len())?;
        }
        for report in &self.tables {
            let partition = match &report.partition_of {
                Some(root) => format!(" (partition of {root})"),
                None => String::new(),
            };
            match &report.key {
                Ok(key) => line(
                    out,
                    "ok",
                    &format!("{}{partition}", report.table),
                    &describe_key(key, report.replica_identity),
                )?,
                // A table's problem names the table itself.
                Err(problem) => {
                    writeln!(out, "  {:<8} {problem}{partition}", "REFUSED")?;
                    writeln!(out, "{INDENT}fix: {}", problem.fix())?;
                }
            }
        }
        writeln!(out)?;

        let problems: Vec<&Problem> = self.problems().collect();
        let statements = self.statements();
        if !problems.is_empty() {
            writeln!(
                out,
                "Refused: {} problem{} to fix on the source first; nothing was changed.",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )?;
            let (sql, manual): (Vec<Fix>, Vec<Fix>) = problems
                .iter()
                .map(|problem| problem.fix())
                .partition(|fix| matches!(fix, Fix::Sql(_)));
            if !sql.is_empty() {
                writeln!(out, "Run this SQL on the source:")?;
                for fix in dedup(sql) {
                    writeln!(out, "  {fix}")?;
                }
            }
            if !manual.is_empty() {
                writeln!(out, "Also:")?;
                for fix in dedup(manual) {
                    writeln!(out, "  - {fix}")?;
                }
            }
            writeln!(out, "then run walproof setup again.")?;
            if !statements.is_empty() {
                writeln!(out, "Once nothing is refused, setup will run:")?;
                sql_block(out, &statements)?;
            }
        } else if statements.is_empty() {
            writeln!(out, "Everything is in place; nothing to do.")?;
        } else if self.dry_run {
            writeln!(out, "Dry run, nothing was changed. Setup would run:")?;
            sql_block(out, &statements)?;
        } else {
            writeln!(out, "Setup runs:")?;
            sql_block(out, &statements)?;
        }
        Ok(())
    }
}

fn line(out: &mut String, label: &str, subject: &str, detail: &str) -> std::fmt::Result {
    writeln!(out, "  {label:<8} {subject}: {detail}")
}

fn refused(out: &mut String, subject: &str, problem: &Problem) -> std::fmt::Result {
    writeln!(out, "  {:<8} {subject}: {problem}", "REFUSED")?;
    writeln!(out, "{INDENT}fix: {}", problem.fix())
}

fn sql_block(out: &mut String, statements: &[&str]) -> std::fmt::Result {
    statements
        .iter()
        .try_for_each(|statement| writeln!(out, "  {statement}"))
}

fn describe_key(key: &TableKey, identity: Option<ReplicaIdentity>) -> String {
    match (key, identity) {
        (TableKey::PrimaryKey { .. }, Some(identity)) => {
            format!("{key}, REPLICA IDENTITY {}", replica_identity_sql(identity))
        }
        _ => key.to_string(),
    }
}

/// Several problems can share a fix (one publication, several tables to replace).
fn dedup(fixes: Vec<Fix>) -> Vec<Fix> {
    let mut unique = Vec::with_capacity(fixes.len());
    for fix in fixes {
        if !unique.contains(&fix) {
            unique.push(fix);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::check::Check;
    use crate::setup::ident::TableName;
    use crate::setup::key::TableReport;
    use crate::setup::problem::Unkeyable;

    fn plan(checks: Vec<Check>, tables: Vec<TableReport>, dry_run: bool) -> SetupPlan {
        SetupPlan {
            database: "shop".into(),
            server_version: "15.4".into(),
            publication: "walproof".into(),
            slot: "walproof".into(),
            dry_run,
            checks,
            tables,
        }
    }

    fn keyed(name: &str) -> TableReport {
        TableReport {
            table: TableName::new("public", name),
            partition_of: None,
            replica_identity: Some(ReplicaIdentity::Default),
            key: Ok(TableKey::PrimaryKey {
                columns: vec!["id".into()],
            }),
        }
    }

    #[test]
    fn a_plan_with_nothing_to_do_says_everything_is_in_place() {
        let report = plan(
            vec![Check::ok("wal_level", "logical")],
            vec![keyed("a")],
            false,
        )
        .render();
        assert!(report.contains("  ok       wal_level: logical"), "{report}");
        assert!(
            report.contains("  ok       public.a: primary key (id), REPLICA IDENTITY DEFAULT"),
            "{report}"
        );
        assert!(
            report.ends_with("Everything is in place; nothing to do.\n"),
            "{report}"
        );
    }

    #[test]
    fn a_dry_run_prints_the_sql_it_would_run() {
        let checks = vec![Check::create(
            "slot walproof",
            "logical",
            "SELECT 1;".into(),
        )];
        let report = plan(checks, vec![], true).render();
        assert!(
            report.contains("Dry run, nothing was changed. Setup would run:\n  SELECT 1;\n"),
            "{report}"
        );
    }

    #[test]
    fn a_refused_plan_lists_every_fix_and_what_would_run_after() {
        let checks = vec![
            Check::refused(
                "wal_level",
                Problem::WalLevel {
                    wal_level: "replica".into(),
                },
            ),
            Check::create("slot walproof", "logical", "SELECT 1;".into()),
        ];
        let unkeyable = TableReport {
            table: TableName::new("public", "log"),
            partition_of: Some(TableName::new("public", "all logs")),
            replica_identity: Some(ReplicaIdentity::Default),
            key: Err(Problem::Unkeyable {
                table: TableName::new("public", "log"),
                reason: Unkeyable::NoKey,
            }),
        };
        let report = plan(checks, vec![keyed("a"), unkeyable], false).render();
        assert!(report.contains("Refused: 2 problems"), "{report}");
        assert!(
            report.contains(
                "Run this SQL on the source:\n  ALTER TABLE public.log REPLICA IDENTITY FULL;\n"
            ),
            "{report}"
        );
        assert!(
            report.contains("  - run ALTER SYSTEM SET wal_level = logical;"),
            "{report}"
        );
        assert!(
            report.contains(
                "REFUSED  public.log has no primary key and REPLICA IDENTITY DEFAULT: its \
                 updates and deletes would carry no old row to key them by (or add a primary \
                 key) (partition of public.\"all logs\")\n"
            ),
            "{report}"
        );
        assert!(
            report.contains("Once nothing is refused, setup will run:\n  SELECT 1;\n"),
            "{report}"
        );
    }
}
