//! Reading the source into a [`SetupPlan`], and applying it.

use tokio_postgres::Client;

use super::catalog;
use super::check::{Check, Verdict};
use super::ddl_capture;
use super::error::{Result, SetupError};
use super::ident::TableName;
use super::key::{TableReport, decide_key};
use super::problem::{MIN_SERVER_VERSION_NUM, Problem};
use super::publication::{self, Privileges, Scope};
use super::server;
use super::slot;

/// What `walproof setup` was asked to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOptions {
    /// The publication's name.
    pub publication: String,
    /// The logical replication slot's name: lower-case letters, digits and `_`.
    pub slot: String,
    /// The tables to publish; `None` publishes all tables, those created later included.
    pub tables: Option<Vec<TableName>>,
    /// Report and print the SQL, but let [`apply`] run nothing.
    pub dry_run: bool,
}

impl Default for SetupOptions {
    /// Publication and slot `walproof`, all tables, not a dry run.
    fn default() -> SetupOptions {
        SetupOptions {
            publication: "walproof".to_owned(),
            slot: "walproof".to_owned(),
            tables: None,
            dry_run: false,
        }
    }
}

/// What setup found on the source and what it would do: read by [`plan`], run by [`apply`],
/// shown by [`SetupPlan::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    /// The database setup connected to.
    pub database: String,
    /// The server's `server_version`.
    pub server_version: String,
    /// The publication's name.
    pub publication: String,
    /// The slot's name.
    pub slot: String,
    /// Whether [`apply`] runs nothing.
    pub dry_run: bool,
    /// Server, publication and slot checks, in the order their statements run.
    pub checks: Vec<Check>,
    /// Every table whose changes the publication carries, or that was asked for, by name. A
    /// partitioned table appears as its leaf partitions (none while it has no partitions).
    pub tables: Vec<TableReport>,
}

impl SetupPlan {
    /// Every problem the user must fix, checks first, then tables.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.checks.iter().filter_map(Check::problem).chain(
            self.tables
                .iter()
                .filter_map(|report| report.key.as_ref().err()),
        )
    }

    /// Whether anything must be fixed first; [`apply`] then refuses and changes nothing.
    pub fn is_refused(&self) -> bool {
        self.problems().next().is_some()
    }

    /// The SQL [`apply`] runs, in order: the publication before the slot.
    pub fn statements(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter_map(|check| match &check.verdict {
                Verdict::Create { statement, .. } => Some(statement.as_str()),
                Verdict::Ok(_) | Verdict::Refused(_) => None,
            })
            .collect()
    }

    /// Whether everything is in place: nothing to fix, nothing to run.
    pub fn is_ready(&self) -> bool {
        !self.is_refused() && self.statements().is_empty()
    }
}

/// Reads the source's catalog through `client` and decides what setup must do. Writes nothing.
///
/// Every table is reported even when some are refused, so the user can fix them all at once.
/// Errors are invalid options and failed catalog reads; what the user must fix on the source
/// is in the plan ([`SetupPlan::problems`]), not an error.
///
/// ```no_run
/// # async fn setup(client: &tokio_postgres::Client) -> walproof_source::setup::Result<()> {
/// use walproof_source::setup::{self, SetupOptions};
///
/// let options = SetupOptions {
///     tables: Some(vec!["public.orders".parse()?, r#""My Schema"."Odd Table""#.parse()?]),
///     ..SetupOptions::default()
/// };
/// let plan = setup::plan(client, &options).await?;
/// print!("{}", plan.render());
/// // Refused (every problem with its fix) unless nothing must be fixed; a dry run runs nothing.
/// setup::apply(client, &plan).await?;
/// # Ok(())
/// # }
/// ```
pub async fn plan(client: &Client, options: &SetupOptions) -> Result<SetupPlan> {
    slot::validate_slot_name(&options.slot).map_err(|reason| SetupError::InvalidSlotName {
        slot: options.slot.clone(),
        reason,
    })?;
    publication::validate_publication_name(&options.publication).map_err(|reason| {
        SetupError::InvalidPublicationName {
            publication: options.publication.clone(),
            reason,
        }
    })?;
    if options.tables.as_ref().is_some_and(Vec::is_empty) {
        return Err(SetupError::NoTables);
    }

    let server = catalog::read_server(client).await?;
    let mut plan = SetupPlan {
        database: server.database.clone(),
        server_version: server.version.clone(),
        publication: options.publication.clone(),
        slot: options.slot.clone(),
        dry_run: options.dry_run,
        checks: vec![server::check_version(&server.version, server.version_num)],
        tables: Vec::new(),
    };
    if server.version_num < MIN_SERVER_VERSION_NUM {
        // The catalog reads below rely on newer catalogs; the version is the first fix anyway.
        return Ok(plan);
    }
    let settings = catalog::read_settings(client).await?;
    let found_slot = catalog::read_slot(client, &options.slot).await?;
    let found_publication =
        catalog::read_publication(client, &server, &options.publication).await?;

    let mut not_owned = Vec::new();
    let (scope_tables, oids) = match &options.tables {
        None => catalog::all_tables(client).await?.into_iter().unzip(),
        Some(requested) => {
            let mut unique: Vec<TableName> = Vec::with_capacity(requested.len());
            for table in requested {
                if !unique.contains(table) {
                    unique.push(table.clone());
                }
            }
            let mut publishable = (Vec::new(), Vec::new());
            for resolved in catalog::resolve(client, &unique).await? {
                let table = resolved.table;
                let problem = match resolved.relation {
                    None => Problem::TableNotFound {
                        table: table.clone(),
                    },
                    Some(relation) if !matches!(relation.kind.as_str(), "r" | "p") => {
                        Problem::NotATable {
                            table: table.clone(),
                            kind: relation_kind(&relation.kind),
                        }
                    }
                    Some(relation) if relation.unlogged => Problem::UnloggedTable {
                        table: table.clone(),
                    },
                    Some(relation) => {
                        if !relation.owned {
                            not_owned.push(table.clone());
                        }
                        publishable.0.push(table);
                        publishable.1.push(relation.oid);
                        continue;
                    }
                };
                plan.tables.push(TableReport {
                    table,
                    partition_of: None,
                    replica_identity: None,
                    key: Err(problem),
                });
            }
            publishable
        }
    };
    for table in catalog::published_tables(client, &oids).await? {
        plan.tables.push(TableReport {
            key: decide_key(&table.table, &table.key),
            replica_identity: Some(table.key.replica_identity),
            partition_of: table.partition_of,
            table: table.table,
        });
    }
    plan.tables.sort_by(|a, b| a.table.cmp(&b.table));

    let scope = match options.tables {
        None => Scope::All(&scope_tables),
        Some(_) => Scope::Listed(&scope_tables),
    };
    let privileges = Privileges {
        role: &settings.role,
        database: &server.database,
        superuser: settings.superuser,
        can_create_in_database: settings.can_create_in_database,
        not_owned,
    };
    plan.checks.extend([
        server::check_wal_level(&settings.wal_level),
        server::check_encoding(&server.database, &settings.encoding),
        server::check_replication_role(&settings.role, settings.superuser, settings.replication),
        server::check_slot_room(
            &options.slot,
            found_slot.is_some(),
            &settings.slots,
            settings.max_replication_slots,
        ),
        server::check_wal_sender_room(
            found_slot.as_ref().is_some_and(|slot| slot.active),
            settings.wal_senders_in_use,
            settings.max_wal_senders,
        ),
    ]);
    plan.checks.extend(publication::check_publication(
        &options.publication,
        scope,
        found_publication.as_ref(),
        &privileges,
    ));
    // Before the slot: a DDL must never reach the slot's stream uncaptured.
    plan.checks.push(ddl_capture::check_ddl_capture(
        &options.publication,
        catalog::read_ddl_capture(client, &options.publication).await?,
        &settings.role,
        settings.superuser,
    ));
    plan.checks.push(slot::check_slot(
        &options.slot,
        &server.database,
        found_slot.as_ref(),
        &options.publication,
        found_publication.is_some(),
    ));
    Ok(plan)
}

/// Runs the plan's statements through `client`, one at a time, each in its own transaction
/// (a slot cannot be created in a transaction that has written). Nothing runs when the plan is
/// refused ([`SetupError::Refused`], carrying every problem) or a dry run.
///
/// `client` must not be inside a transaction. If the source changed since [`plan`] (someone
/// else created the slot meanwhile), a statement fails with [`SetupError::Statement`]; run
/// setup again, it continues from what is in place.
pub async fn apply(client: &Client, plan: &SetupPlan) -> Result<()> {
    let problems: Vec<Problem> = plan.problems().cloned().collect();
    if !problems.is_empty() {
        return Err(SetupError::Refused { problems });
    }
    if plan.dry_run {
        return Ok(());
    }
    for statement in plan.statements() {
        tracing::info!(statement, "walproof setup: running");
        client
            .batch_execute(statement)
            .await
            .map_err(|source| SetupError::Statement {
                statement: statement.to_owned(),
                source,
            })?;
    }
    Ok(())
}

/// A `relkind` in words.
fn relation_kind(relkind: &str) -> &'static str {
    match relkind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        "S" => "sequence",
        "i" | "I" => "index",
        "c" => "composite type",
        "t" => "TOAST table",
        _ => "relation",
    }
}
