//! The logical replication slot: created if missing, else verified to be ours to use.

use super::catalog::Slot;
use super::check::Check;
use super::ident::{MAX_IDENTIFIER_BYTES, quote_literal};
use super::problem::Problem;

/// The output plugin walproof decodes.
pub const PLUGIN: &str = "pgoutput";

/// Postgres accepts lower-case letters, digits and `_`, up to 63 bytes.
pub(crate) fn validate_slot_name(slot: &str) -> Result<(), &'static str> {
    if slot.is_empty() {
        Err("empty")
    } else if slot.len() > MAX_IDENTIFIER_BYTES {
        Err("longer than 63 bytes")
    } else if !slot
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Err("slot names hold only lower-case letters, digits and `_`")
    } else {
        Ok(())
    }
}

pub(crate) fn create_slot(slot: &str) -> String {
    format!(
        "SELECT pg_create_logical_replication_slot({}, {});",
        quote_literal(slot),
        quote_literal(PLUGIN)
    )
}

/// Whether the slot named `slot` can be used (or created) in `database`.
///
/// A slot is not created without its publication: pgoutput looks the publication up as of
/// each change it decodes, so the publication must be older than every change the slot will
/// ever decode.
pub(crate) fn check_slot(
    slot: &str,
    database: &str,
    found: Option<&Slot>,
    publication: &str,
    publication_exists: bool,
) -> Check {
    let subject = format!("slot {slot}");
    let Some(found) = found else {
        return Check::create(
            subject,
            format!("logical, plugin {PLUGIN}"),
            create_slot(slot),
        );
    };
    let slot = slot.to_owned();
    let problem = if !found.logical {
        Problem::SlotNotLogical { slot }
    } else if found.database.as_deref() != Some(database) {
        Problem::SlotInOtherDatabase {
            slot,
            database: found.database.clone().unwrap_or_default(),
            expected: database.to_owned(),
        }
    } else if found.plugin.as_deref() != Some(PLUGIN) {
        Problem::SlotPlugin {
            slot,
            plugin: found.plugin.clone().unwrap_or_default(),
        }
    } else if found.lost {
        Problem::SlotLost { slot }
    } else if !publication_exists {
        Problem::SlotWithoutPublication {
            slot,
            publication: publication.to_owned(),
        }
    } else {
        let active = if found.active { ", active" } else { "" };
        return Check::ok(subject, format!("exists: logical, plugin {PLUGIN}{active}"));
    };
    Check::refused(subject, problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::check::Verdict;

    fn slot(plugin: &str, database: &str) -> Slot {
        Slot {
            logical: true,
            plugin: Some(plugin.into()),
            database: Some(database.into()),
            active: false,
            lost: false,
        }
    }

    fn problem(check: Check) -> Problem {
        match check.verdict {
            Verdict::Refused(problem) => problem,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_slot_is_created_with_pgoutput() {
        assert_eq!(
            check_slot("wp", "shop", None, "pub", false).verdict,
            Verdict::Create {
                detail: "logical, plugin pgoutput".into(),
                statement: "SELECT pg_create_logical_replication_slot('wp', 'pgoutput');".into()
            }
        );
    }

    #[test]
    fn an_existing_pgoutput_slot_in_this_database_is_in_place() {
        assert!(matches!(
            check_slot("wp", "shop", Some(&slot("pgoutput", "shop")), "pub", true).verdict,
            Verdict::Ok(_)
        ));
    }

    #[test]
    fn a_slot_with_another_plugin_is_refused() {
        assert_eq!(
            problem(check_slot(
                "wp",
                "shop",
                Some(&slot("test_decoding", "shop")),
                "p",
                true
            )),
            Problem::SlotPlugin {
                slot: "wp".into(),
                plugin: "test_decoding".into()
            }
        );
    }

    #[test]
    fn a_slot_in_another_database_is_refused() {
        assert_eq!(
            problem(check_slot(
                "wp",
                "shop",
                Some(&slot("pgoutput", "crm")),
                "p",
                true
            )),
            Problem::SlotInOtherDatabase {
                slot: "wp".into(),
                database: "crm".into(),
                expected: "shop".into()
            }
        );
    }

    #[test]
    fn a_physical_or_lost_slot_is_refused() {
        let physical = Slot {
            logical: false,
            plugin: None,
            database: None,
            ..slot("", "")
        };
        assert_eq!(
            problem(check_slot("wp", "shop", Some(&physical), "p", true)),
            Problem::SlotNotLogical { slot: "wp".into() }
        );
        let lost = Slot {
            lost: true,
            ..slot("pgoutput", "shop")
        };
        assert_eq!(
            problem(check_slot("wp", "shop", Some(&lost), "p", true)),
            Problem::SlotLost { slot: "wp".into() }
        );
    }

    #[test]
    fn a_slot_older_than_its_publication_is_refused_with_the_drop_that_fixes_it() {
        let problem = problem(check_slot(
            "wp",
            "shop",
            Some(&slot("pgoutput", "shop")),
            "pub",
            false,
        ));
        assert!(
            problem
                .fix()
                .to_string()
                .starts_with("SELECT pg_drop_replication_slot('wp');"),
            "{}",
            problem.fix()
        );
    }

    #[test]
    fn slot_names_follow_postgres_rules() {
        assert_eq!(validate_slot_name("walproof_1"), Ok(()));
        assert!(validate_slot_name("").is_err());
        assert!(validate_slot_name("Walproof").is_err());
        assert!(validate_slot_name("wal-proof").is_err());
        assert!(validate_slot_name(&"a".repeat(64)).is_err());
    }
}
