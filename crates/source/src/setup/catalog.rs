//! Reads what setup decides on from the source's catalog. Read-only; no decisions here.

use tokio_postgres::Client;
use walproof_core::ReplicaIdentity;

use super::error::{Result, SetupError};
use super::ident::TableName;
use super::key::{Index, KeyFacts};

/// Relations below this OID were created by initdb; Postgres never publishes them.
const FIRST_NORMAL_OBJECT_ID: u32 = 16_384;

/// The server's version and the database setup connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) version_num: i32,
    pub(crate) version: String,
    pub(crate) database: String,
}

/// Settings, the role and the replication resources in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) wal_level: String,
    pub(crate) max_replication_slots: i32,
    pub(crate) max_wal_senders: i32,
    pub(crate) encoding: String,
    pub(crate) role: String,
    pub(crate) superuser: bool,
    pub(crate) replication: bool,
    pub(crate) can_create_in_database: bool,
    /// Every replication slot on the server, by name.
    pub(crate) slots: Vec<String>,
    pub(crate) wal_senders_in_use: i64,
}

/// A replication slot with our slot's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) logical: bool,
    pub(crate) plugin: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) active: bool,
    pub(crate) lost: bool,
}

/// A publication with our publication's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publication {
    pub(crate) all_tables: bool,
    /// Whether it publishes each of `PUBLISH_ACTIONS`, in that order.
    pub(crate) actions: [bool; 4],
    pub(crate) via_root: bool,
    /// Tables it lists (`FOR TABLE`).
    pub(crate) members: Vec<Member>,
    /// Tables it publishes through `FOR TABLES IN SCHEMA`.
    pub(crate) schema_tables: Vec<TableName>,
}

/// A table a publication lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) table: TableName,
    pub(crate) column_list: bool,
    pub(crate) row_filter: bool,
}

/// A table name looked up in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) table: TableName,
    pub(crate) relation: Option<Relation>,
}

/// The relation a name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    pub(crate) oid: u32,
    /// `relkind`: `r` table, `p` partitioned table, `v` view, …
    pub(crate) kind: String,
    pub(crate) unlogged: bool,
    /// Whether the role owns it (or is a member of its owner).
    pub(crate) owned: bool,
}

/// A table whose changes are published, with what decides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) table: TableName,
    pub(crate) partition_of: Option<TableName>,
    pub(crate) key: KeyFacts,
}

fn catalog(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> SetupError {
    move |source| SetupError::Catalog { what, source }
}

pub(crate) async fn read_server(client: &Client) -> Result<Server> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int4, \
                    current_setting('server_version'), current_database()::text",
            &[],
        )
        .await
        .map_err(catalog("the server version"))?;
    Ok(Server {
        version_num: row.get(0),
        version: row.get(1),
        database: row.get(2),
    })
}

pub(crate) async fn read_settings(client: &Client) -> Result<Settings> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), \
                    current_setting('max_replication_slots')::int4, \
                    current_setting('max_wal_senders')::int4, \
                    pg_encoding_to_char(d.encoding)::text, \
                    r.rolname::text, r.rolsuper, r.rolreplication, \
                    has_database_privilege(d.oid, 'CREATE'), \
                    ARRAY(SELECT slot_name::text FROM pg_replication_slots ORDER BY 1), \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender') \
             FROM pg_database d, pg_roles r \
             WHERE d.datname = current_database() AND r.rolname = current_user",
            &[],
        )
        .await
        .map_err(catalog("settings, role and slots"))?;
    Ok(Settings {
        wal_level: row.get(0),
        max_replication_slots: row.get(1),
        max_wal_senders: row.get(2),
        encoding: row.get(3),
        role: row.get(4),
        superuser: row.get(5),
        replication: row.get(6),
        can_create_in_database: row.get(7),
        slots: row.get(8),
        wal_senders_in_use: row.get(9),
    })
}

pub(crate) async fn read_slot(client: &Client, slot: &str) -> Result<Option<Slot>> {
    let row = client
        .query_opt(
            "SELECT slot_type = 'logical', plugin::text, database::text, active, \
                    coalesce(wal_status = 'lost', false) \
             FROM pg_replication_slots WHERE slot_name = $1::text",
            &[&slot],
        )
        .await
        .map_err(catalog("the replication slot"))?;
    Ok(row.map(|row| Slot {
        logical: row.get(0),
        plugin: row.get(1),
        database: row.get(2),
        active: row.get(3),
        lost: row.get(4),
    }))
}

/// Whether DDL capture for the publication is installed and enabled, at the current version.
pub(crate) async fn read_ddl_capture(client: &Client, publication: &str) -> Result<bool> {
    let names = super::ddl_capture::DdlCaptureNames::for_publication(publication);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE evtenabled <> 'D'), \
                    bool_or(evtname = $3 AND obj_description(oid, 'pg_event_trigger') = $4) \
             FROM pg_event_trigger WHERE evtname IN ($1, $2, $3)",
            &[
                &names.start_trigger,
                &names.rewrite_trigger,
                &names.end_trigger,
                &super::ddl_capture::version_comment(publication),
            ],
        )
        .await
        .map_err(catalog("the event triggers"))?;
    Ok(row.get::<_, i64>(0) == 3 && row.get::<_, Option<bool>>(1) == Some(true))
}

pub(crate) async fn read_publication(
    client: &Client,
    server: &Server,
    publication: &str,
) -> Result<Option<Publication>> {
    let Some(row) = client
        .query_opt(
            "SELECT oid, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot \
             FROM pg_publication WHERE pubname = $1::text",
            &[&publication],
        )
        .await
        .map_err(catalog("the publication"))?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    // Column lists, row filters and schema publications came with PostgreSQL 15.
    let pg15 = server.version_num >= 150_000;
    let (column_list, row_filter) = if pg15 {
        ("pr.prattrs IS NOT NULL", "pr.prqual IS NOT NULL")
    } else {
        ("false", "false")
    };
    let members = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, {column_list}, {row_filter} \
                 FROM pg_publication_rel pr \
                 JOIN pg_class c ON c.oid = pr.prrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE pr.prpubid = $1"
            ),
            &[&oid],
        )
        .await
        .map_err(catalog("the publication's tables"))?
        .into_iter()
        .map(|row| Member {
            table: TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
            column_list: row.get(2),
            row_filter: row.get(3),
        })
        .collect();
    let schema_tables = if pg15 {
        client
            .query(
                "SELECT n.nspname::text, c.relname::text \
                 FROM pg_publication_namespace pn \
                 JOIN pg_namespace n ON n.oid = pn.pnnspid \
                 JOIN pg_class c ON c.relnamespace = n.oid \
                 WHERE pn.pnpubid = $1 AND c.relkind IN ('r', 'p') \
                   AND c.relpersistence = 'p' AND NOT c.relispartition",
                &[&oid],
            )
            .await
            .map_err(catalog("the publication's schemas"))?
            .into_iter()
            .map(|row| TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Some(Publication {
        all_tables: row.get(1),
        actions: [row.get(2), row.get(3), row.get(4), row.get(5)],
        via_root: row.get(6),
        members,
        schema_tables,
    }))
}

/// Every table `FOR ALL TABLES` publishes, partitioned tables as themselves (not their
/// partitions): what Postgres's `is_publishable_class` admits.
pub(crate) async fn all_tables(client: &Client) -> Result<Vec<(TableName, u32)>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, c.oid \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' \
               AND NOT c.relispartition AND c.oid >= $1",
            &[&FIRST_NORMAL_OBJECT_ID],
        )
        .await
        .map_err(catalog("the tables"))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
                row.get(2),
            )
        })
        .collect())
}

/// Looks up each name, in order.
pub(crate) async fn resolve(client: &Client, tables: &[TableName]) -> Result<Vec<Resolved>> {
    let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let rows = client
        .query(
            "SELECT c.oid, c.relkind::text, c.relpersistence = 'u', \
                    pg_has_role(c.relowner, 'USAGE') \
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(schema, name, ord) \
             LEFT JOIN pg_namespace n ON n.nspname = w.schema \
             LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name \
             ORDER BY w.ord",
            &[&schemas, &names],
        )
        .await
        .map_err(catalog("the tables asked for"))?;
    Ok(tables
        .iter()
        .zip(rows)
        .map(|(table, row)| Resolved {
            table: table.clone(),
            relation: row.get::<_, Option<u32>>(0).map(|oid| Relation {
                oid,
                kind: row.get(1),
                unlogged: row.get(2),
                owned: row.get(3),
            }),
        })
        .collect())
}

/// The tables whose changes are published when `tables` are: each table itself, each
/// partitioned table as its leaf partitions (the `relkind = 'r'` filter drops the partitioned
/// tables themselves) (pgoutput publishes changes under the leaf's name
/// unless `publish_via_partition_root`). Sorted by name.
pub(crate) async fn published_tables(client: &Client, tables: &[u32]) -> Result<Vec<Table>> {
    const KEY_COLUMNS: &str = "ARRAY(SELECT a.attname::text FROM pg_attribute a \
         WHERE a.attrelid = i.indrelid \
           AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) \
         ORDER BY a.attnum)";
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, c.relreplident::text, \
                        rn.nspname::text, r.relname::text, \
                        pk.name, pk.columns, ri.name, ri.columns \
                 FROM (SELECT DISTINCT t.relid \
                       FROM unnest($1::oid[]) AS w(oid), LATERAL ( \
                           SELECT w.oid::regclass AS relid \
                           UNION SELECT p.relid FROM pg_partition_tree(w.oid) AS p \
                           WHERE p.isleaf) AS t) AS l \
                 JOIN pg_class c ON c.oid = l.relid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_class r ON c.relispartition AND r.oid = pg_partition_root(c.oid) \
                 LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace \
                 LEFT JOIN LATERAL ( \
                     SELECT ic.relname::text AS name, {KEY_COLUMNS} AS columns \
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                     WHERE i.indrelid = c.oid AND i.indisprimary) AS pk ON true \
                 LEFT JOIN LATERAL ( \
                     SELECT ic.relname::text AS name, {KEY_COLUMNS} AS columns \
                     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
                     WHERE i.indrelid = c.oid AND i.indisreplident) AS ri ON true \
                 WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
            ),
            &[&tables],
        )
        .await
        .map_err(catalog("keys and replica identities"))?;
    let index = |name: Option<String>, columns: Option<Vec<String>>| {
        name.map(|name| Index {
            name,
            columns: columns.unwrap_or_default(),
        })
    };
    let mut published = rows
        .into_iter()
        .map(|row| {
            let table = TableName::new(row.get::<_, String>(0), row.get::<_, String>(1));
            let relreplident: String = row.get(2);
            let replica_identity =
                ReplicaIdentity::from_code_text(&relreplident).ok_or_else(|| {
                    SetupError::UnknownCatalogValue {
                        what: "pg_class.relreplident",
                        value: relreplident.clone(),
                    }
                })?;
            let partition_of = match (
                row.get::<_, Option<String>>(3),
                row.get::<_, Option<String>>(4),
            ) {
                (Some(schema), Some(name)) => Some(TableName::new(schema, name)),
                _ => None,
            };
            Ok(Table {
                table,
                partition_of,
                key: KeyFacts {
                    replica_identity,
                    primary_key: index(row.get(5), row.get(6)),
                    identity_index: index(row.get(7), row.get(8)),
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    published.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(published)
}
