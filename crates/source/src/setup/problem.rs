//! What stops setup: each problem carries the offending values and names its fix.

use std::fmt;

use super::ident::{TableName, quote_ident, quote_literal};

/// The actions walproof's publication must publish: the tree drifts from the source if any
/// insert, update, delete or truncate goes unseen.
pub const PUBLISH_ACTIONS: [&str; 4] = ["insert", "update", "delete", "truncate"];

/// The oldest source walproof accepts, as `server_version_num`: pgoutput carries TRUNCATE from
/// 11 and logical messages (which walproof's DDL capture puts into the stream) from 14.
/// walproof is tested against 15.
pub const MIN_SERVER_VERSION_NUM: i32 = 140_000;

/// Something the user must fix on the source before setup changes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The server is older than [`MIN_SERVER_VERSION_NUM`].
    ServerTooOld {
        /// `server_version`.
        version: String,
        /// `server_version_num`.
        version_num: i32,
    },
    /// `wal_level` is not `logical`.
    WalLevel {
        /// The current `wal_level`.
        wal_level: String,
    },
    /// The database is not UTF8-encoded.
    Encoding {
        /// The database.
        database: String,
        /// Its encoding.
        encoding: String,
    },
    /// The role can neither create a slot nor stream from one.
    NoReplicationPrivilege {
        /// The role setup connected as.
        role: String,
    },
    /// Every replication slot is taken and ours does not exist yet.
    NoSlotRoom {
        /// The slot setup would create.
        slot: String,
        /// `max_replication_slots`.
        max_replication_slots: i32,
        /// The slots that exist.
        slots: Vec<String>,
    },
    /// Every WAL sender is taken, so the decoder could not connect.
    NoWalSenderRoom {
        /// `max_wal_senders`.
        max_wal_senders: i32,
        /// WAL senders running.
        in_use: i64,
    },
    /// Only a superuser may create a publication `FOR ALL TABLES`.
    AllTablesNeedsSuperuser {
        /// The role setup connected as.
        role: String,
        /// The publication to create.
        publication: String,
    },
    /// Only a superuser may create the event triggers of DDL capture.
    DdlCaptureNeedsSuperuser {
        /// The role setup connected as.
        role: String,
        /// The publication whose DDL is to be captured.
        publication: String,
    },
    /// The role may not create a publication in the database.
    NoCreateOnDatabase {
        /// The role setup connected as.
        role: String,
        /// The database.
        database: String,
    },
    /// Only a table's owner may add it to a publication.
    NotTableOwner {
        /// The role setup connected as.
        role: String,
        /// The tables it does not own.
        tables: Vec<TableName>,
    },
    /// A physical slot has our slot's name.
    SlotNotLogical {
        /// The slot.
        slot: String,
    },
    /// The slot decodes with another output plugin.
    SlotPlugin {
        /// The slot.
        slot: String,
        /// Its plugin.
        plugin: String,
    },
    /// The slot belongs to another database.
    SlotInOtherDatabase {
        /// The slot.
        slot: String,
        /// The slot's database.
        database: String,
        /// The database setup connected to.
        expected: String,
    },
    /// The slot was invalidated: the WAL it needs is gone.
    SlotLost {
        /// The slot.
        slot: String,
    },
    /// The slot exists but the publication does not.
    SlotWithoutPublication {
        /// The slot.
        slot: String,
        /// The missing publication.
        publication: String,
    },
    /// All tables were asked for; the publication lists tables.
    PublicationNotAllTables {
        /// The publication.
        publication: String,
        /// Tables that exist but it does not publish.
        missing: Vec<TableName>,
    },
    /// Some tables were asked for; the publication is `FOR ALL TABLES`.
    PublicationIsAllTables {
        /// The publication.
        publication: String,
        /// The tables asked for.
        requested: Vec<TableName>,
    },
    /// The publication lists other tables than asked for.
    PublicationTables {
        /// The publication.
        publication: String,
        /// The tables asked for.
        requested: Vec<TableName>,
        /// Asked for, not published.
        missing: Vec<TableName>,
        /// Published, not asked for.
        unexpected: Vec<TableName>,
    },
    /// The publication leaves out some of [`PUBLISH_ACTIONS`].
    PublicationActions {
        /// The publication.
        publication: String,
        /// The actions it does not publish.
        missing: Vec<&'static str>,
    },
    /// The publication has `publish_via_partition_root = true`.
    PublicationViaRoot {
        /// The publication.
        publication: String,
    },
    /// The publication publishes only some columns of a table.
    PublicationColumnList {
        /// The publication.
        publication: String,
        /// The table.
        table: TableName,
    },
    /// The publication publishes only the rows of a table that match a filter.
    PublicationRowFilter {
        /// The publication.
        publication: String,
        /// The table.
        table: TableName,
    },
    /// A table asked for does not exist.
    TableNotFound {
        /// The table.
        table: TableName,
    },
    /// A relation asked for is not a table.
    NotATable {
        /// The relation.
        table: TableName,
        /// What it is instead, e.g. `view`.
        kind: &'static str,
    },
    /// A table asked for is unlogged, so its changes never reach the WAL.
    UnloggedTable {
        /// The table.
        table: TableName,
    },
    /// A table whose changes could not be keyed.
    Unkeyable {
        /// The table.
        table: TableName,
        /// Why.
        reason: Unkeyable,
    },
}

/// Why a table's changes could not be keyed (design.md, "Commitments").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unkeyable {
    /// No primary key, and REPLICA IDENTITY DEFAULT logs nothing without one.
    NoKey,
    /// REPLICA IDENTITY NOTHING.
    Nothing {
        /// The primary key's columns, if there is one.
        primary_key: Option<Vec<String>>,
    },
    /// REPLICA IDENTITY USING INDEX, but the index was dropped since.
    IdentityIndexMissing {
        /// Whether the table has a primary key.
        has_primary_key: bool,
    },
    /// The key is the primary key, but updates and deletes carry another index's columns.
    IdentityIndexNotPrimaryKey {
        /// The replica identity index.
        index: String,
        /// Its columns.
        columns: Vec<String>,
        /// The primary key's columns.
        primary_key: Vec<String>,
    },
}

/// What fixes a [`Problem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// SQL to run on the source, as it is.
    Sql(String),
    /// Something to do that is not (only) SQL.
    Manual(String),
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fix::Sql(text) | Fix::Manual(text) => f.write_str(text),
        }
    }
}

impl Problem {
    /// What fixes it.
    pub fn fix(&self) -> Fix {
        match self {
            Problem::ServerTooOld { .. } => Fix::Manual(
                "upgrade the source to PostgreSQL 15, the version walproof is tested against"
                    .into(),
            ),
            Problem::WalLevel { .. } => {
                Fix::Manual("run ALTER SYSTEM SET wal_level = logical; and restart Postgres".into())
            }
            Problem::Encoding { .. } => Fix::Manual(
                "a database's encoding cannot be changed: create one WITH ENCODING 'UTF8' and \
                 move the data into it (pg_dump | psql)"
                    .into(),
            ),
            Problem::NoReplicationPrivilege { role } => {
                Fix::Sql(format!("ALTER ROLE {} REPLICATION;", quote_ident(role)))
            }
            Problem::NoSlotRoom {
                max_replication_slots,
                ..
            } => Fix::Manual(format!(
                "run ALTER SYSTEM SET max_replication_slots = {}; and restart Postgres, or drop a \
                 slot nothing uses with SELECT pg_drop_replication_slot('<name>');",
                max_replication_slots + 1
            )),
            Problem::NoWalSenderRoom { in_use, .. } => Fix::Manual(format!(
                "run ALTER SYSTEM SET max_wal_senders = {}; and restart Postgres",
                in_use + 1
            )),
            Problem::AllTablesNeedsSuperuser { .. } => Fix::Manual(
                "run walproof setup as a superuser, or name the tables to publish".into(),
            ),
            Problem::DdlCaptureNeedsSuperuser { .. } => Fix::Manual(
                "run walproof setup once as a superuser: it installs the event triggers (schema \
                 walproof); later runs as this role find them in place"
                    .into(),
            ),
            Problem::NoCreateOnDatabase { role, database } => Fix::Sql(format!(
                "GRANT CREATE ON DATABASE {} TO {};",
                quote_ident(database),
                quote_ident(role)
            )),
            Problem::NotTableOwner { .. } => {
                Fix::Manual("run walproof setup as the tables' owner or a superuser".into())
            }
            Problem::SlotNotLogical { slot }
            | Problem::SlotPlugin { slot, .. }
            | Problem::SlotInOtherDatabase { slot, .. } => Fix::Manual(format!(
                "choose another slot name, or drop the slot if nothing uses it: {}",
                drop_slot(slot)
            )),
            Problem::SlotLost { slot } => Fix::Manual(format!(
                "{} then run walproof setup again (the decoder takes a new initial snapshot)",
                drop_slot(slot)
            )),
            Problem::SlotWithoutPublication { slot, .. } => Fix::Manual(format!(
                "{} then run walproof setup again (it creates the publication before the slot)",
                drop_slot(slot)
            )),
            Problem::PublicationNotAllTables { publication, .. } => Fix::Manual(format!(
                "replace it: BEGIN; DROP PUBLICATION {0}; {1} COMMIT; — or name the tables to \
                 publish",
                quote_ident(publication),
                create_publication(publication, None)
            )),
            Problem::PublicationIsAllTables {
                publication,
                requested,
            } => Fix::Manual(format!(
                "replace it: BEGIN; DROP PUBLICATION {0}; {1} COMMIT; — or publish all tables",
                quote_ident(publication),
                create_publication(publication, Some(requested))
            )),
            Problem::PublicationTables {
                publication,
                requested,
                missing,
                unexpected,
            } => Fix::Sql(if unexpected.is_empty() {
                format!(
                    "ALTER PUBLICATION {} ADD TABLE {};",
                    quote_ident(publication),
                    list(missing)
                )
            } else {
                format!(
                    "ALTER PUBLICATION {} SET TABLE {};",
                    quote_ident(publication),
                    list(requested)
                )
            }),
            Problem::PublicationActions { publication, .. } => Fix::Sql(format!(
                "ALTER PUBLICATION {} SET (publish = '{}');",
                quote_ident(publication),
                PUBLISH_ACTIONS.join(", ")
            )),
            Problem::PublicationViaRoot { publication } => Fix::Sql(format!(
                "ALTER PUBLICATION {} SET (publish_via_partition_root = false);",
                quote_ident(publication)
            )),
            Problem::PublicationColumnList { publication, table }
            | Problem::PublicationRowFilter { publication, table } => Fix::Sql(format!(
                "BEGIN; ALTER PUBLICATION {0} DROP TABLE {1}; ALTER PUBLICATION {0} ADD TABLE {1}; \
                 COMMIT;",
                quote_ident(publication),
                table
            )),
            Problem::TableNotFound { .. } => Fix::Manual(
                "correct the name: unquoted names fold to lower case, so write mixed-case names \
                 in double quotes, e.g. \"My Schema\".\"Odd Table\""
                    .into(),
            ),
            Problem::NotATable { .. } => {
                Fix::Manual("leave it out: only tables can be published".into())
            }
            Problem::UnloggedTable { table } => {
                Fix::Sql(format!("ALTER TABLE {table} SET LOGGED;"))
            }
            Problem::Unkeyable { table, reason } => {
                let identity = match reason {
                    Unkeyable::NoKey
                    | Unkeyable::Nothing { primary_key: None }
                    | Unkeyable::IdentityIndexMissing {
                        has_primary_key: false,
                    } => "FULL",
                    Unkeyable::Nothing {
                        primary_key: Some(_),
                    }
                    | Unkeyable::IdentityIndexMissing {
                        has_primary_key: true,
                    }
                    | Unkeyable::IdentityIndexNotPrimaryKey { .. } => "DEFAULT",
                };
                Fix::Sql(format!("ALTER TABLE {table} REPLICA IDENTITY {identity};"))
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::ServerTooOld {
                version,
                version_num,
            } => write!(
                f,
                "PostgreSQL {version} (server_version_num {version_num}) is too old: walproof \
                 needs {} or later (pgoutput carries logical messages, which DDL capture relies \
                 on, from 14)",
                MIN_SERVER_VERSION_NUM / 10_000
            ),
            Problem::WalLevel { wal_level } => write!(
                f,
                "wal_level is {wal_level}; logical decoding needs wal_level = logical"
            ),
            Problem::Encoding { database, encoding } => write!(
                f,
                "database {} is encoded {encoding}; walproof reads text values as UTF-8 and \
                 needs encoding UTF8",
                quote_ident(database)
            ),
            Problem::NoReplicationPrivilege { role } => write!(
                f,
                "role {} has neither REPLICATION nor superuser; creating the slot and streaming \
                 from it need one of them",
                quote_ident(role)
            ),
            Problem::NoSlotRoom {
                slot,
                max_replication_slots,
                slots,
            } => write!(
                f,
                "{} of max_replication_slots = {max_replication_slots} slots are in use ({}); \
                 slot {slot} needs one more",
                slots.len(),
                slots.join(", ")
            ),
            Problem::NoWalSenderRoom {
                max_wal_senders,
                in_use,
            } => write!(
                f,
                "{in_use} of max_wal_senders = {max_wal_senders} WAL senders are in use; the \
                 decoder's replication connection needs one more"
            ),
            Problem::AllTablesNeedsSuperuser { role, publication } => write!(
                f,
                "creating publication {} FOR ALL TABLES needs a superuser, and role {} is not one",
                quote_ident(publication),
                quote_ident(role)
            ),
            Problem::DdlCaptureNeedsSuperuser { role, publication } => write!(
                f,
                "DDL capture for publication {} is not installed, and installing its event \
                 triggers needs a superuser; role {} is not one",
                quote_ident(publication),
                quote_ident(role)
            ),
            Problem::NoCreateOnDatabase { role, database } => write!(
                f,
                "role {} may not create a publication in database {} (no CREATE privilege)",
                quote_ident(role),
                quote_ident(database)
            ),
            Problem::NotTableOwner { role, tables } => write!(
                f,
                "role {} does not own {}; only a table's owner or a superuser may publish it",
                quote_ident(role),
                list(tables)
            ),
            Problem::SlotNotLogical { slot } => {
                write!(f, "slot {slot} exists but is a physical slot")
            }
            Problem::SlotPlugin { slot, plugin } => write!(
                f,
                "slot {slot} exists with output plugin {plugin}; walproof decodes pgoutput"
            ),
            Problem::SlotInOtherDatabase {
                slot,
                database,
                expected,
            } => write!(
                f,
                "slot {slot} belongs to database {}, not {}",
                quote_ident(database),
                quote_ident(expected)
            ),
            Problem::SlotLost { slot } => write!(
                f,
                "slot {slot} was invalidated (wal_status = lost): the WAL it needs is gone"
            ),
            Problem::SlotWithoutPublication { slot, publication } => write!(
                f,
                "slot {slot} exists but publication {} does not; pgoutput looks the publication \
                 up as of each change it decodes, so the slot would fail on every change made \
                 before the publication existed",
                quote_ident(publication)
            ),
            Problem::PublicationNotAllTables {
                publication,
                missing,
            } => {
                write!(
                    f,
                    "publication {} lists tables, but all tables were asked for",
                    quote_ident(publication)
                )?;
                if missing.is_empty() {
                    f.write_str(" (it lists every table today, but not tables created later)")
                } else {
                    write!(f, "; it does not publish {}", list(missing))
                }
            }
            Problem::PublicationIsAllTables {
                publication,
                requested,
            } => write!(
                f,
                "publication {} is FOR ALL TABLES, but only {} were asked for",
                quote_ident(publication),
                list(requested)
            ),
            Problem::PublicationTables {
                publication,
                missing,
                unexpected,
                ..
            } => {
                write!(
                    f,
                    "publication {} publishes other tables than asked for:",
                    quote_ident(publication)
                )?;
                if !missing.is_empty() {
                    write!(f, " it does not publish {}", list(missing))?;
                }
                if !missing.is_empty() && !unexpected.is_empty() {
                    f.write_str(";")?;
                }
                if !unexpected.is_empty() {
                    write!(f, " it also publishes {}", list(unexpected))?;
                }
                Ok(())
            }
            Problem::PublicationActions {
                publication,
                missing,
            } => write!(
                f,
                "publication {} does not publish {}; walproof must see every insert, update, \
                 delete and truncate or its tree drifts from the source",
                quote_ident(publication),
                missing.join(", ")
            ),
            Problem::PublicationViaRoot { publication } => write!(
                f,
                "publication {} has publish_via_partition_root = true, under which a TRUNCATE of \
                 a single partition is not replicated: walproof would keep rows the source no \
                 longer has",
                quote_ident(publication)
            ),
            Problem::PublicationColumnList { publication, table } => write!(
                f,
                "publication {} publishes only some columns of {table}; walproof commits whole \
                 rows",
                quote_ident(publication)
            ),
            Problem::PublicationRowFilter { publication, table } => write!(
                f,
                "publication {} publishes only the rows of {table} that match a WHERE filter; \
                 walproof commits every row",
                quote_ident(publication)
            ),
            Problem::TableNotFound { table } => write!(f, "table {table} does not exist"),
            Problem::NotATable { table, kind } => write!(f, "{table} is a {kind}, not a table"),
            Problem::UnloggedTable { table } => write!(
                f,
                "{table} is UNLOGGED: its changes never reach the WAL, so no slot sees them"
            ),
            Problem::Unkeyable { table, reason } => match reason {
                Unkeyable::NoKey => write!(
                    f,
                    "{table} has no primary key and REPLICA IDENTITY DEFAULT: its updates and \
                     deletes would carry no old row to key them by (or add a primary key)"
                ),
                Unkeyable::Nothing { primary_key: None } => write!(
                    f,
                    "{table} has no primary key and REPLICA IDENTITY NOTHING: its updates and \
                     deletes would carry no old row to key them by (or add a primary key)"
                ),
                Unkeyable::Nothing {
                    primary_key: Some(columns),
                } => write!(
                    f,
                    "{table} has primary key ({}) but REPLICA IDENTITY NOTHING: its updates and \
                     deletes would carry no key",
                    columns_list(columns)
                ),
                Unkeyable::IdentityIndexMissing { .. } => write!(
                    f,
                    "{table} has REPLICA IDENTITY USING INDEX, but that index no longer exists: \
                     its updates and deletes would carry no key"
                ),
                Unkeyable::IdentityIndexNotPrimaryKey {
                    index,
                    columns,
                    primary_key,
                } => write!(
                    f,
                    "{table} is keyed by its primary key ({}), but REPLICA IDENTITY USING INDEX \
                     {} makes its updates and deletes carry ({}) instead",
                    columns_list(primary_key),
                    quote_ident(index),
                    columns_list(columns)
                ),
            },
        }
    }
}

/// `CREATE PUBLICATION` for all tables (`None`) or the given ones, publishing every action.
pub(crate) fn create_publication(publication: &str, tables: Option<&[TableName]>) -> String {
    let target = match tables {
        None => "ALL TABLES".to_owned(),
        Some(tables) => format!("TABLE {}", list(tables)),
    };
    format!(
        "CREATE PUBLICATION {} FOR {target} WITH (publish = '{}');",
        quote_ident(publication),
        PUBLISH_ACTIONS.join(", ")
    )
}

fn drop_slot(slot: &str) -> String {
    format!("SELECT pg_drop_replication_slot({});", quote_literal(slot))
}

/// `a, b, c` of table names, quoted as SQL needs.
pub(crate) fn list(tables: &[TableName]) -> String {
    tables
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a, b` of column names, quoted as SQL needs.
pub(crate) fn columns_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|column| quote_ident(column))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: &str, name: &str) -> TableName {
        TableName::new(schema, name)
    }

    #[test]
    fn a_table_without_any_key_is_fixed_with_replica_identity_full() {
        let problem = Problem::Unkeyable {
            table: table("My Schema", "Odd Table"),
            reason: Unkeyable::NoKey,
        };
        assert_eq!(
            problem.fix(),
            Fix::Sql(r#"ALTER TABLE "My Schema"."Odd Table" REPLICA IDENTITY FULL;"#.into())
        );
        assert!(problem.to_string().contains("no primary key"), "{problem}");
    }

    #[test]
    fn a_primary_key_with_replica_identity_nothing_is_fixed_with_default() {
        let problem = Problem::Unkeyable {
            table: table("public", "t"),
            reason: Unkeyable::Nothing {
                primary_key: Some(vec!["id".into()]),
            },
        };
        assert_eq!(
            problem.fix(),
            Fix::Sql("ALTER TABLE public.t REPLICA IDENTITY DEFAULT;".into())
        );
        assert!(
            problem.to_string().contains("primary key (id)"),
            "{problem}"
        );
    }

    #[test]
    fn a_publication_missing_tables_is_fixed_by_adding_only_those() {
        let problem = Problem::PublicationTables {
            publication: "pub".into(),
            requested: vec![table("public", "a"), table("public", "B")],
            missing: vec![table("public", "B")],
            unexpected: vec![],
        };
        assert_eq!(
            problem.fix(),
            Fix::Sql(r#"ALTER PUBLICATION pub ADD TABLE public."B";"#.into())
        );
        assert!(
            problem
                .to_string()
                .contains(r#"does not publish public."B""#)
        );
    }

    #[test]
    fn a_publication_with_extra_tables_is_fixed_by_setting_the_whole_list() {
        let problem = Problem::PublicationTables {
            publication: "Pub".into(),
            requested: vec![table("public", "a")],
            missing: vec![],
            unexpected: vec![table("public", "z")],
        };
        assert_eq!(
            problem.fix(),
            Fix::Sql(r#"ALTER PUBLICATION "Pub" SET TABLE public.a;"#.into())
        );
        assert!(problem.to_string().contains("also publishes public.z"));
    }

    #[test]
    fn create_publication_publishes_every_action() {
        assert_eq!(
            create_publication("walproof", None),
            "CREATE PUBLICATION walproof FOR ALL TABLES \
             WITH (publish = 'insert, update, delete, truncate');"
        );
        assert_eq!(
            create_publication(
                "w",
                Some(&[table("s", "a"), table("My Schema", "Odd Table")])
            ),
            "CREATE PUBLICATION w FOR TABLE s.a, \"My Schema\".\"Odd Table\" \
             WITH (publish = 'insert, update, delete, truncate');"
        );
    }
}
