//! DDL capture: the event triggers that put each DDL of a published table into the stream at
//! its exact position (`ddl_capture.sql`; the message format is
//! `walproof_core::schema_change`). Installed by setup, one set per publication, in schema
//! `walproof`; creating event triggers needs a superuser.

use walproof_core::CANONICAL_SESSION_SETTINGS;

use super::check::Check;
use super::ident::{quote_ident, quote_literal};
use super::problem::Problem;

/// The comment on the installed `ddl_command_end` trigger, which says which version is in
/// place: it names a hash of the install SQL, so any change to it reinstalls.
pub(crate) fn version_comment(publication: &str) -> String {
    format!(
        "walproof DDL capture v1 ({:016x}) for publication {publication}",
        fnv1a(include_str!("ddl_capture.sql").as_bytes())
    )
}

/// FNV-1a, 64 bits: stable across versions and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The names of one publication's functions (in schema `walproof`) and event triggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlCaptureNames {
    /// `ddl_command_start`: records the published tables' shapes.
    pub start_trigger: String,
    /// `table_rewrite`: records which tables the command rewrites.
    pub rewrite_trigger: String,
    /// `ddl_command_end`: emits the schema change (and rows).
    pub end_trigger: String,
}

impl DdlCaptureNames {
    /// The names for `publication`: readable when the publication's name is a plain short
    /// identifier, else with a hash of it (identifiers hold at most 63 bytes).
    pub fn for_publication(publication: &str) -> DdlCaptureNames {
        let plain = publication.len() <= 40
            && publication
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let suffix = if plain {
            publication.to_owned()
        } else {
            format!("{:016x}", fnv1a(publication.as_bytes()))
        };
        DdlCaptureNames {
            start_trigger: format!("walproof_ddl_start_{suffix}"),
            rewrite_trigger: format!("walproof_ddl_rewrite_{suffix}"),
            end_trigger: format!("walproof_ddl_end_{suffix}"),
        }
    }
}

/// The SQL that installs (or replaces) DDL capture for `publication`.
pub fn install_sql(publication: &str) -> String {
    let names = DdlCaptureNames::for_publication(publication);
    let settings: Vec<String> = CANONICAL_SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("SET {name} = {}", quote_literal(value)))
        .collect();
    // Functions are named like their triggers; a trigger name is a plain identifier.
    include_str!("ddl_capture.sql")
        .replace("__PUB_NAME__", &quote_ident(publication))
        .replace("__PUB__", &quote_literal(publication))
        .replace("__CANONICAL_SETTINGS__", &settings.join("\n"))
        .replace("__FN_START__", &names.start_trigger)
        .replace("__FN_REWRITE__", &names.rewrite_trigger)
        .replace("__FN_END__", &names.end_trigger)
        .replace("__TRG_START__", &names.start_trigger)
        .replace("__TRG_REWRITE__", &names.rewrite_trigger)
        .replace("__TRG_END__", &names.end_trigger)
        .replace(
            "__VERSION_COMMENT__",
            &quote_literal(&version_comment(publication)),
        )
}

/// Whether DDL capture for `publication` is in place, or how setup installs it.
pub(crate) fn check_ddl_capture(
    publication: &str,
    installed: bool,
    role: &str,
    superuser: bool,
) -> Check {
    let subject = format!("DDL capture for publication {}", quote_ident(publication));
    let names = DdlCaptureNames::for_publication(publication);
    if installed {
        Check::ok(
            subject,
            format!(
                "installed: event triggers {}, {}, {}",
                names.start_trigger, names.rewrite_trigger, names.end_trigger
            ),
        )
    } else if superuser {
        Check::create(
            subject,
            "event triggers that emit each DDL of a published table into the stream",
            install_sql(publication),
        )
    } else {
        Check::refused(
            subject,
            Problem::DdlCaptureNeedsSuperuser {
                role: role.to_owned(),
                publication: publication.to_owned(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable_for_plain_publications_and_hashed_otherwise() {
        let plain = DdlCaptureNames::for_publication("walproof");
        assert_eq!(plain.end_trigger, "walproof_ddl_end_walproof");
        let odd = DdlCaptureNames::for_publication("My Publication");
        assert_eq!(odd.end_trigger.len(), "walproof_ddl_end_".len() + 16);
        let long = DdlCaptureNames::for_publication(&"p".repeat(63));
        assert!(long.rewrite_trigger.len() <= 63);
        assert_ne!(
            DdlCaptureNames::for_publication("a b"),
            DdlCaptureNames::for_publication("a c")
        );
    }

    #[test]
    fn the_install_sql_has_every_placeholder_filled_and_the_canonical_settings() {
        let sql = install_sql("it's");
        assert!(!sql.contains("__"), "a placeholder is left");
        assert!(sql.contains("'it''s'"));
        assert!(sql.contains("SET TimeZone = 'UTC'"));
        assert!(sql.contains("CREATE EVENT TRIGGER walproof_ddl_end_"));
    }

    #[test]
    fn a_role_that_is_not_superuser_is_refused_with_the_fix() {
        let check = check_ddl_capture("walproof", false, "app", false);
        let problem = check.problem().expect("refused");
        assert!(
            problem.to_string().contains("needs a superuser"),
            "{problem}"
        );
        assert!(
            check_ddl_capture("walproof", true, "app", false)
                .problem()
                .is_none()
        );
    }
}
