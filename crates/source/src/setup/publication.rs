//! The publication: created if missing, else verified. An existing publication that differs
//! from what was asked is reported with the statement that fixes it, never altered: it may
//! serve other subscribers, and changing what a running slot publishes is the user's call.
//!
//! Partitioned tables are published the Postgres default way, without
//! `publish_via_partition_root`: each change arrives under its leaf partition's name, and
//! TRUNCATE of a single partition reaches the stream (under `publish_via_partition_root` it is
//! silently not replicated, and the tree would keep rows the source no longer has). A
//! publication with it on is refused.

use std::collections::BTreeSet;

use super::catalog::Publication;
use super::check::Check;
use super::ident::{MAX_IDENTIFIER_BYTES, TableName, quote_ident};
use super::problem::{PUBLISH_ACTIONS, Problem, create_publication};

/// Which tables were asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// All tables (`FOR ALL TABLES`); these exist today.
    All(&'a [TableName]),
    /// These tables, found and publishable.
    Listed(&'a [TableName]),
}

/// What the role may do, for creating the publication.
#[derive(Debug, Clone)]
pub(crate) struct Privileges<'a> {
    pub(crate) role: &'a str,
    pub(crate) database: &'a str,
    pub(crate) superuser: bool,
    pub(crate) can_create_in_database: bool,
    /// Tables asked for that the role does not own.
    pub(crate) not_owned: Vec<TableName>,
}

/// Any name Postgres keeps as given: not empty, not truncated.
pub(crate) fn validate_publication_name(publication: &str) -> Result<(), &'static str> {
    if publication.is_empty() {
        Err("empty")
    } else if publication.len() > MAX_IDENTIFIER_BYTES {
        Err("longer than 63 bytes")
    } else {
        Ok(())
    }
}

pub(crate) fn check_publication(
    publication: &str,
    scope: Scope<'_>,
    found: Option<&Publication>,
    privileges: &Privileges<'_>,
) -> Vec<Check> {
    let subject = format!("publication {}", quote_ident(publication));
    let Some(found) = found else {
        return create(publication, subject, scope, privileges);
    };
    let mut problems = Vec::new();
    let defined: BTreeSet<&TableName> = found
        .members
        .iter()
        .map(|member| &member.table)
        .chain(&found.schema_tables)
        .collect();
    match (scope, found.all_tables) {
        (Scope::All(_), true) => {}
        (Scope::All(tables), false) => problems.push(Problem::PublicationNotAllTables {
            publication: publication.to_owned(),
            missing: tables
                .iter()
                .filter(|table| !defined.contains(table))
                .cloned()
                .collect(),
        }),
        (Scope::Listed(tables), true) => problems.push(Problem::PublicationIsAllTables {
            publication: publication.to_owned(),
            requested: tables.to_vec(),
        }),
        (Scope::Listed(tables), false) => {
            let requested: BTreeSet<&TableName> = tables.iter().collect();
            let missing: Vec<TableName> =
                requested.difference(&defined).map(|&t| t.clone()).collect();
            let unexpected: Vec<TableName> =
                defined.difference(&requested).map(|&t| t.clone()).collect();
            if !missing.is_empty() || !unexpected.is_empty() {
                problems.push(Problem::PublicationTables {
                    publication: publication.to_owned(),
                    requested: tables.to_vec(),
                    missing,
                    unexpected,
                });
            }
        }
    }
    let missing_actions: Vec<&'static str> = PUBLISH_ACTIONS
        .iter()
        .zip(found.actions)
        .filter(|(_, published)| !published)
        .map(|(&action, _)| action)
        .collect();
    if !missing_actions.is_empty() {
        problems.push(Problem::PublicationActions {
            publication: publication.to_owned(),
            missing: missing_actions,
        });
    }
    if found.via_root {
        problems.push(Problem::PublicationViaRoot {
            publication: publication.to_owned(),
        });
    }
    for member in &found.members {
        if member.column_list {
            problems.push(Problem::PublicationColumnList {
                publication: publication.to_owned(),
                table: member.table.clone(),
            });
        }
        if member.row_filter {
            problems.push(Problem::PublicationRowFilter {
                publication: publication.to_owned(),
                table: member.table.clone(),
            });
        }
    }
    if problems.is_empty() {
        let target = match scope {
            Scope::All(_) => "FOR ALL TABLES".to_owned(),
            Scope::Listed(tables) => for_tables(tables),
        };
        return vec![Check::ok(
            subject,
            format!("exists: {target}, publish '{}'", PUBLISH_ACTIONS.join(", ")),
        )];
    }
    problems
        .into_iter()
        .map(|problem| Check::refused(subject.clone(), problem))
        .collect()
}

fn for_tables(tables: &[TableName]) -> String {
    match tables {
        [table] => format!("FOR TABLE {table}"),
        _ => format!("FOR TABLE, {} tables", tables.len()),
    }
}

fn create(
    publication: &str,
    subject: String,
    scope: Scope<'_>,
    privileges: &Privileges<'_>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let statement = match scope {
        Scope::All(_) => {
            if !privileges.superuser {
                checks.push(Check::refused(
                    subject.clone(),
                    Problem::AllTablesNeedsSuperuser {
                        role: privileges.role.to_owned(),
                        publication: publication.to_owned(),
                    },
                ));
            }
            Some((
                "FOR ALL TABLES".to_owned(),
                create_publication(publication, None),
            ))
        }
        // Nothing publishable was named: the table reports say why, and there is nothing to
        // create until that is fixed.
        Scope::Listed([]) => None,
        Scope::Listed(tables) => Some((
            for_tables(tables),
            create_publication(publication, Some(tables)),
        )),
    };
    if !privileges.superuser && !privileges.can_create_in_database {
        checks.push(Check::refused(
            subject.clone(),
            Problem::NoCreateOnDatabase {
                role: privileges.role.to_owned(),
                database: privileges.database.to_owned(),
            },
        ));
    }
    if !privileges.superuser && !privileges.not_owned.is_empty() {
        checks.push(Check::refused(
            subject.clone(),
            Problem::NotTableOwner {
                role: privileges.role.to_owned(),
                tables: privileges.not_owned.clone(),
            },
        ));
    }
    if let Some((detail, statement)) = statement {
        checks.insert(0, Check::create(subject, detail, statement));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::catalog::Member;
    use crate::setup::check::Verdict;

    fn t(name: &str) -> TableName {
        TableName::new("public", name)
    }

    fn superuser() -> Privileges<'static> {
        Privileges {
            role: "postgres",
            database: "shop",
            superuser: true,
            can_create_in_database: true,
            not_owned: vec![],
        }
    }

    fn listing(tables: &[TableName]) -> Publication {
        Publication {
            all_tables: false,
            actions: [true; 4],
            via_root: false,
            members: tables
                .iter()
                .map(|table| Member {
                    table: table.clone(),
                    column_list: false,
                    row_filter: false,
                })
                .collect(),
            schema_tables: vec![],
        }
    }

    fn problems(checks: Vec<Check>) -> Vec<Problem> {
        checks
            .into_iter()
            .filter_map(|check| match check.verdict {
                Verdict::Refused(problem) => Some(problem),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_missing_publication_is_created_for_all_tables() {
        let checks = check_publication("walproof", Scope::All(&[t("a")]), None, &superuser());
        assert_eq!(checks.len(), 1);
        assert_eq!(
            checks[0].verdict,
            Verdict::Create {
                detail: "FOR ALL TABLES".into(),
                statement: create_publication("walproof", None)
            }
        );
    }

    #[test]
    fn a_missing_publication_is_created_for_the_listed_tables() {
        let tables = [t("a"), TableName::new("My Schema", "Odd Table")];
        let checks = check_publication("w", Scope::Listed(&tables), None, &superuser());
        match &checks[0].verdict {
            Verdict::Create { statement, .. } => assert!(
                statement.contains(r#"FOR TABLE public.a, "My Schema"."Odd Table""#),
                "{statement}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn creating_needs_superuser_for_all_tables_and_ownership_for_listed_ones() {
        let role = Privileges {
            superuser: false,
            can_create_in_database: false,
            not_owned: vec![t("b")],
            role: "app",
            ..superuser()
        };
        let all = problems(check_publication("w", Scope::All(&[]), None, &role));
        assert!(matches!(all[0], Problem::AllTablesNeedsSuperuser { .. }));
        assert!(matches!(all[1], Problem::NoCreateOnDatabase { .. }));
        let listed = problems(check_publication(
            "w",
            Scope::Listed(&[t("b")]),
            None,
            &role,
        ));
        assert!(
            matches!(listed[1], Problem::NotTableOwner { .. }),
            "{listed:?}"
        );
    }

    #[test]
    fn a_publication_listing_the_same_tables_is_in_place() {
        let tables = [t("a"), t("b")];
        let checks = check_publication(
            "w",
            Scope::Listed(&tables),
            Some(&listing(&[t("b"), t("a")])),
            &superuser(),
        );
        assert!(
            matches!(
                checks[..],
                [Check {
                    verdict: Verdict::Ok(_),
                    ..
                }]
            ),
            "{checks:?}"
        );
    }

    #[test]
    fn a_publication_listing_other_tables_names_each_difference() {
        let problems = problems(check_publication(
            "w",
            Scope::Listed(&[t("a"), t("b")]),
            Some(&listing(&[t("a"), t("z")])),
            &superuser(),
        ));
        assert_eq!(
            problems,
            vec![Problem::PublicationTables {
                publication: "w".into(),
                requested: vec![t("a"), t("b")],
                missing: vec![t("b")],
                unexpected: vec![t("z")],
            }]
        );
    }

    #[test]
    fn asking_for_all_tables_of_a_listing_publication_names_the_tables_it_lacks() {
        let problems = problems(check_publication(
            "w",
            Scope::All(&[t("a"), t("b")]),
            Some(&listing(&[t("a")])),
            &superuser(),
        ));
        assert_eq!(
            problems,
            vec![Problem::PublicationNotAllTables {
                publication: "w".into(),
                missing: vec![t("b")]
            }]
        );
    }

    #[test]
    fn asking_for_some_tables_of_an_all_tables_publication_is_refused() {
        let all = Publication {
            all_tables: true,
            ..listing(&[])
        };
        let problems = problems(check_publication(
            "w",
            Scope::Listed(&[t("a")]),
            Some(&all),
            &superuser(),
        ));
        assert!(matches!(
            problems[..],
            [Problem::PublicationIsAllTables { .. }]
        ));
    }

    #[test]
    fn missing_actions_via_root_column_lists_and_row_filters_are_each_refused() {
        let mut publication = listing(&[t("a")]);
        publication.actions = [true, true, true, false];
        publication.via_root = true;
        publication.members[0].column_list = true;
        publication.members[0].row_filter = true;
        let problems = problems(check_publication(
            "w",
            Scope::Listed(&[t("a")]),
            Some(&publication),
            &superuser(),
        ));
        assert_eq!(
            problems,
            vec![
                Problem::PublicationActions {
                    publication: "w".into(),
                    missing: vec!["truncate"]
                },
                Problem::PublicationViaRoot {
                    publication: "w".into()
                },
                Problem::PublicationColumnList {
                    publication: "w".into(),
                    table: t("a")
                },
                Problem::PublicationRowFilter {
                    publication: "w".into(),
                    table: t("a")
                },
            ]
        );
        assert_eq!(
            problems[0].fix().to_string(),
            "ALTER PUBLICATION w SET (publish = 'insert, update, delete, truncate');"
        );
    }
}
