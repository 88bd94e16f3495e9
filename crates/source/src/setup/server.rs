//! Server-wide prerequisites: version, `wal_level`, encoding, role, slot and WAL sender room.
//! Pure decisions over catalog facts.

use super::check::Check;
use super::ident::quote_ident;
use super::problem::{MIN_SERVER_VERSION_NUM, Problem};

pub(crate) fn check_version(version: &str, version_num: i32) -> Check {
    const SUBJECT: &str = "server version";
    if version_num >= MIN_SERVER_VERSION_NUM {
        Check::ok(SUBJECT, format!("PostgreSQL {version}"))
    } else {
        Check::refused(
            SUBJECT,
            Problem::ServerTooOld {
                version: version.to_owned(),
                version_num,
            },
        )
    }
}

pub(crate) fn check_wal_level(wal_level: &str) -> Check {
    const SUBJECT: &str = "wal_level";
    if wal_level == "logical" {
        Check::ok(SUBJECT, "logical")
    } else {
        Check::refused(
            SUBJECT,
            Problem::WalLevel {
                wal_level: wal_level.to_owned(),
            },
        )
    }
}

pub(crate) fn check_encoding(database: &str, encoding: &str) -> Check {
    const SUBJECT: &str = "database encoding";
    if encoding == "UTF8" {
        Check::ok(SUBJECT, "UTF8")
    } else {
        Check::refused(
            SUBJECT,
            Problem::Encoding {
                database: database.to_owned(),
                encoding: encoding.to_owned(),
            },
        )
    }
}

pub(crate) fn check_replication_role(role: &str, superuser: bool, replication: bool) -> Check {
    let subject = format!("role {}", quote_ident(role));
    match (superuser, replication) {
        (true, _) => Check::ok(subject, "superuser"),
        (false, true) => Check::ok(subject, "REPLICATION"),
        (false, false) => Check::refused(
            subject,
            Problem::NoReplicationPrivilege {
                role: role.to_owned(),
            },
        ),
    }
}

/// Room for our slot: needed only when it does not exist yet.
pub(crate) fn check_slot_room(
    slot: &str,
    slot_exists: bool,
    slots: &[String],
    max_replication_slots: i32,
) -> Check {
    const SUBJECT: &str = "max_replication_slots";
    let in_use = slots.len();
    if slot_exists {
        Check::ok(
            SUBJECT,
            format!("{in_use} of {max_replication_slots} in use, {slot} among them"),
        )
    } else if i64::try_from(in_use).is_ok_and(|n| n < i64::from(max_replication_slots)) {
        Check::ok(
            SUBJECT,
            format!("{in_use} of {max_replication_slots} in use, room for {slot}"),
        )
    } else {
        Check::refused(
            SUBJECT,
            Problem::NoSlotRoom {
                slot: slot.to_owned(),
                max_replication_slots,
                slots: slots.to_vec(),
            },
        )
    }
}

/// Room for the decoder's walsender, unless it is already streaming from our slot.
pub(crate) fn check_wal_sender_room(slot_active: bool, in_use: i64, max_wal_senders: i32) -> Check {
    const SUBJECT: &str = "max_wal_senders";
    if slot_active {
        Check::ok(
            SUBJECT,
            format!("{in_use} of {max_wal_senders} in use, the slot's consumer among them"),
        )
    } else if in_use < i64::from(max_wal_senders) {
        Check::ok(
            SUBJECT,
            format!("{in_use} of {max_wal_senders} in use, room for the decoder"),
        )
    } else {
        Check::refused(
            SUBJECT,
            Problem::NoWalSenderRoom {
                max_wal_senders,
                in_use,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::check::Verdict;
    use crate::setup::problem::Fix;

    fn refused(check: Check) -> Problem {
        match check.verdict {
            Verdict::Refused(problem) => problem,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn wal_level_logical_passes() {
        assert_eq!(
            check_wal_level("logical").verdict,
            Verdict::Ok("logical".into())
        );
    }

    #[test]
    fn wal_level_replica_is_refused_naming_the_setting_and_the_restart() {
        let problem = refused(check_wal_level("replica"));
        assert_eq!(
            problem,
            Problem::WalLevel {
                wal_level: "replica".into()
            }
        );
        assert!(
            problem.to_string().contains("wal_level is replica"),
            "{problem}"
        );
        assert_eq!(
            problem.fix(),
            Fix::Manual("run ALTER SYSTEM SET wal_level = logical; and restart Postgres".into())
        );
    }

    #[test]
    fn servers_older_than_14_are_refused() {
        assert!(matches!(
            check_version("15.4", 150_004).verdict,
            Verdict::Ok(_)
        ));
        assert!(matches!(
            check_version("14.0", 140_000).verdict,
            Verdict::Ok(_)
        ));
        let problem = refused(check_version("13.9", 130_009));
        assert!(problem.to_string().contains("PostgreSQL 13.9"), "{problem}");
        assert!(
            problem.to_string().contains("needs 14 or later"),
            "{problem}"
        );
    }

    #[test]
    fn a_database_not_encoded_utf8_is_refused() {
        assert!(matches!(
            check_encoding("shop", "UTF8").verdict,
            Verdict::Ok(_)
        ));
        let problem = refused(check_encoding("shop", "SQL_ASCII"));
        assert!(
            problem.to_string().contains("encoded SQL_ASCII"),
            "{problem}"
        );
    }

    #[test]
    fn a_role_needs_replication_or_superuser() {
        assert!(matches!(
            check_replication_role("admin", true, false).verdict,
            Verdict::Ok(_)
        ));
        assert!(matches!(
            check_replication_role("cdc", false, true).verdict,
            Verdict::Ok(_)
        ));
        let problem = refused(check_replication_role("App User", false, false));
        assert_eq!(
            problem.fix(),
            Fix::Sql("ALTER ROLE \"App User\" REPLICATION;".into())
        );
    }

    #[test]
    fn a_new_slot_needs_a_free_replication_slot_but_an_existing_one_does_not() {
        let full = vec!["a".to_owned(), "b".to_owned()];
        assert!(matches!(
            check_slot_room("ours", true, &full, 2).verdict,
            Verdict::Ok(_)
        ));
        assert!(matches!(
            check_slot_room("ours", false, &full, 3).verdict,
            Verdict::Ok(_)
        ));
        let problem = refused(check_slot_room("ours", false, &full, 2));
        assert!(problem.to_string().contains("(a, b)"), "{problem}");
        assert!(
            problem
                .fix()
                .to_string()
                .contains("max_replication_slots = 3"),
            "{}",
            problem.fix()
        );
    }

    #[test]
    fn the_decoder_needs_a_free_wal_sender_unless_it_already_streams() {
        assert!(matches!(
            check_wal_sender_room(false, 1, 2).verdict,
            Verdict::Ok(_)
        ));
        assert!(matches!(
            check_wal_sender_room(true, 2, 2).verdict,
            Verdict::Ok(_)
        ));
        let problem = refused(check_wal_sender_room(false, 2, 2));
        assert!(problem.fix().to_string().contains("max_wal_senders = 3"));
    }
}
