//! `walproof setup` against the local stack's Postgres: each test in its own database, its slot
//! dropped with it.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio_postgres::Client;
use walproof_source::setup::{
    self, Fix, Problem, SetupError, SetupOptions, SetupPlan, TableKey, TableName, Unkeyable,
    Verdict,
};
use walproof_testkit::{Stack, TestDatabase};

/// Creating a slot waits for transactions running anywhere on the server; never hang on one.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);

async fn database(test: &str) -> anyhow::Result<(TestDatabase, Client)> {
    let stack = Stack::load()?;
    let db = TestDatabase::create(&stack, test).await?;
    let client = db.connect().await?;
    Ok((db, client))
}

fn options(db: &TestDatabase, tables: Option<&[&str]>) -> anyhow::Result<SetupOptions> {
    Ok(SetupOptions {
        publication: "walproof".into(),
        slot: db.slot_name("setup"),
        tables: tables
            .map(|tables| tables.iter().map(|t| t.parse()).collect::<Result<_, _>>())
            .transpose()?,
        dry_run: false,
    })
}

async fn apply(client: &Client, plan: &SetupPlan) -> Result<(), SetupError> {
    match tokio::time::timeout(APPLY_TIMEOUT, setup::apply(client, plan)).await {
        Ok(result) => result,
        Err(_) => panic!("setup did not finish within {APPLY_TIMEOUT:?}"),
    }
}

fn table(schema: &str, name: &str) -> TableName {
    TableName::new(schema, name)
}

fn key_of<'a>(
    plan: &'a SetupPlan,
    table: &TableName,
) -> anyhow::Result<&'a Result<TableKey, Problem>> {
    plan.tables
        .iter()
        .find(|report| &report.table == table)
        .map(|report| &report.key)
        .with_context(|| format!("{table} not reported:\n{}", plan.render()))
}

async fn publication_exists(client: &Client, name: &str) -> anyhow::Result<bool> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM pg_publication WHERE pubname = $1::text",
            &[&name],
        )
        .await?
        .get::<_, i64>(0)
        == 1)
}

/// The slot's plugin, or `None` when there is no such slot.
async fn slot_plugin(client: &Client, slot: &str) -> anyhow::Result<Option<String>> {
    Ok(client
        .query_opt(
            "SELECT plugin::text FROM pg_replication_slots WHERE slot_name = $1::text",
            &[&slot],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Runs every SQL fix the plan names, as a user would paste them.
async fn run_fixes(client: &Client, plan: &SetupPlan) -> anyhow::Result<()> {
    for problem in plan.problems() {
        match problem.fix() {
            Fix::Sql(sql) => client
                .batch_execute(&sql)
                .await
                .with_context(|| format!("running the fix {sql}"))?,
            Fix::Manual(text) => bail!("{problem} needs a manual fix: {text}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_fresh_database_is_prepared_and_a_second_run_changes_nothing() -> anyhow::Result<()> {
    let (db, client) = database("setup fresh").await?;
    client
        .batch_execute(
            "CREATE TABLE orders (region text, id bigint, note text, PRIMARY KEY (id, region));
             CREATE TABLE users (id bigint NOT NULL, email text NOT NULL UNIQUE, name text);
             ALTER TABLE users REPLICA IDENTITY USING INDEX users_email_key;
             CREATE TABLE events (payload jsonb);
             ALTER TABLE events REPLICA IDENTITY FULL;
             CREATE TABLE metrics (id int PRIMARY KEY, v float8) PARTITION BY RANGE (id);
             CREATE TABLE metrics_low PARTITION OF metrics FOR VALUES FROM (0) TO (100);
             CREATE UNLOGGED TABLE scratch (x int);",
        )
        .await?;
    let options = options(&db, None)?;

    let first = setup::plan(&client, &options).await?;
    assert!(!first.is_refused(), "{}", first.render());
    assert_eq!(
        first.statements(),
        [
            "CREATE PUBLICATION walproof FOR ALL TABLES \
             WITH (publish = 'insert, update, delete, truncate');"
                .to_owned(),
            setup::ddl_capture_sql("walproof"),
            format!(
                "SELECT pg_create_logical_replication_slot('{}', 'pgoutput');",
                options.slot
            ),
        ]
    );
    assert_eq!(
        key_of(&first, &table("public", "orders"))?,
        &Ok(TableKey::PrimaryKey {
            columns: vec!["region".into(), "id".into()]
        }),
        "key columns come in attribute order"
    );
    assert_eq!(
        key_of(&first, &table("public", "users"))?,
        &Ok(TableKey::ReplicaIdentityIndex {
            index: "users_email_key".into(),
            columns: vec!["email".into()]
        })
    );
    assert_eq!(
        key_of(&first, &table("public", "events"))?,
        &Ok(TableKey::Multiset)
    );
    let partition = first
        .tables
        .iter()
        .find(|report| report.table == table("public", "metrics_low"))
        .context("partition not reported")?;
    assert_eq!(partition.partition_of, Some(table("public", "metrics")));
    assert!(matches!(partition.key, Ok(TableKey::PrimaryKey { .. })));
    let names: Vec<String> = first.tables.iter().map(|r| r.table.to_string()).collect();
    assert_eq!(
        names,
        [
            "public.events",
            "public.metrics_low",
            "public.orders",
            "public.users"
        ],
        "leaf tables only; unlogged tables are never published"
    );

    apply(&client, &first).await?;
    assert!(publication_exists(&client, "walproof").await?);
    assert!(setup::ddl_capture_installed(&client, "walproof").await?);
    assert_eq!(
        slot_plugin(&client, &options.slot).await?.as_deref(),
        Some("pgoutput")
    );

    let second = setup::plan(&client, &options).await?;
    assert!(second.is_ready(), "{}", second.render());
    assert!(second.statements().is_empty());
    assert!(
        second
            .render()
            .ends_with("Everything is in place; nothing to do.\n"),
        "{}",
        second.render()
    );
    assert_eq!(second.tables, first.tables);
    apply(&client, &second).await?;
    Ok(())
}

#[tokio::test]
async fn a_dry_run_prints_the_sql_and_leaves_the_database_untouched() -> anyhow::Result<()> {
    let (db, client) = database("setup dry run").await?;
    client
        .batch_execute("CREATE TABLE orders (id bigint PRIMARY KEY)")
        .await?;
    let options = SetupOptions {
        dry_run: true,
        ..options(&db, Some(&["orders"]))?
    };

    let plan = setup::plan(&client, &options).await?;
    apply(&client, &plan).await?;

    let report = plan.render();
    assert!(
        report.contains(
            "Dry run, nothing was changed. Setup would run:\n  CREATE PUBLICATION walproof \
             FOR TABLE public.orders WITH (publish = 'insert, update, delete, truncate');\n  \
             -- walproof DDL capture, version 1"
        ),
        "{report}"
    );
    let comment = report
        .find("COMMENT ON EVENT TRIGGER walproof_ddl_end_walproof IS 'walproof DDL capture v1 (")
        .expect("the version comment");
    assert!(
        report[comment..]
            .contains("for publication walproof';\n\n  SELECT pg_create_logical_replication_slot("),
        "{report}"
    );
    assert!(!publication_exists(&client, "walproof").await?);
    assert!(!setup::ddl_capture_installed(&client, "walproof").await?);
    assert_eq!(slot_plugin(&client, &options.slot).await?, None);
    Ok(())
}

#[tokio::test]
async fn an_unkeyable_table_is_refused_with_its_alter_table_and_every_table_is_still_reported()
-> anyhow::Result<()> {
    let (db, client) = database("setup unkeyable").await?;
    client
        .batch_execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY);
             CREATE TABLE audit_log (at timestamptz, line text);
             CREATE TABLE sessions (id bigint PRIMARY KEY);
             ALTER TABLE sessions REPLICA IDENTITY NOTHING;
             CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
             ALTER TABLE accounts REPLICA IDENTITY USING INDEX accounts_email_key;
             CREATE TABLE contacts (email text NOT NULL);
             CREATE UNIQUE INDEX contacts_email ON contacts (email);
             ALTER TABLE contacts REPLICA IDENTITY USING INDEX contacts_email;
             DROP INDEX contacts_email;",
        )
        .await?;
    let options = options(&db, None)?;

    let plan = setup::plan(&client, &options).await?;
    assert!(plan.is_refused());
    assert!(matches!(
        key_of(&plan, &table("public", "orders"))?,
        Ok(TableKey::PrimaryKey { .. })
    ));
    assert!(matches!(
        key_of(&plan, &table("public", "audit_log"))?,
        Err(Problem::Unkeyable {
            reason: Unkeyable::NoKey,
            ..
        })
    ));
    let report = plan.render();
    assert!(
        report.contains("fix: ALTER TABLE public.audit_log REPLICA IDENTITY FULL;"),
        "{report}"
    );
    assert!(
        report.contains("fix: ALTER TABLE public.sessions REPLICA IDENTITY DEFAULT;"),
        "{report}"
    );
    assert!(
        report.contains("fix: ALTER TABLE public.accounts REPLICA IDENTITY DEFAULT;"),
        "{report}"
    );
    assert!(
        report.contains("fix: ALTER TABLE public.contacts REPLICA IDENTITY FULL;"),
        "{report}"
    );

    let refusal = match apply(&client, &plan).await {
        Err(SetupError::Refused { problems }) => problems,
        other => bail!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refusal.len(), 4, "{refusal:?}");
    let message = SetupError::Refused { problems: refusal }.to_string();
    assert!(
        message.contains("ALTER TABLE public.audit_log REPLICA IDENTITY FULL;"),
        "{message}"
    );
    assert!(
        !publication_exists(&client, "walproof").await?,
        "nothing is created"
    );
    assert_eq!(slot_plugin(&client, &options.slot).await?, None);

    run_fixes(&client, &plan).await?;
    let fixed = setup::plan(&client, &options).await?;
    assert!(!fixed.is_refused(), "{}", fixed.render());
    assert_eq!(
        key_of(&fixed, &table("public", "audit_log"))?,
        &Ok(TableKey::Multiset)
    );
    assert!(matches!(
        key_of(&fixed, &table("public", "accounts"))?,
        Ok(TableKey::PrimaryKey { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn quoted_identifiers_round_trip_into_sql() -> anyhow::Result<()> {
    let (db, client) = database("setup quoted").await?;
    client
        .batch_execute(
            r#"CREATE SCHEMA "My Schema";
               CREATE TABLE "My Schema"."Odd Table" ("Id Col" int PRIMARY KEY, "select" text);
               CREATE TABLE "My Schema"."No ""Key"" Here" (v text);"#,
        )
        .await?;
    let options = SetupOptions {
        publication: "My Pub".into(),
        ..options(
            &db,
            Some(&[
                r#""My Schema"."Odd Table""#,
                r#""My Schema"."No ""Key"" Here""#,
            ]),
        )?
    };

    let plan = setup::plan(&client, &options).await?;
    assert_eq!(
        key_of(&plan, &table("My Schema", "Odd Table"))?,
        &Ok(TableKey::PrimaryKey {
            columns: vec!["Id Col".into()]
        })
    );
    let unkeyable = key_of(&plan, &table("My Schema", "No \"Key\" Here"))?;
    let fix = match unkeyable {
        Err(problem) => problem.fix(),
        Ok(key) => bail!("expected a refusal, got {key:?}"),
    };
    assert_eq!(
        fix,
        Fix::Sql(r#"ALTER TABLE "My Schema"."No ""Key"" Here" REPLICA IDENTITY FULL;"#.into())
    );
    assert!(
        plan.render().contains(r#"primary key ("Id Col")"#),
        "{}",
        plan.render()
    );

    run_fixes(&client, &plan).await?;
    let plan = setup::plan(&client, &options).await?;
    assert_eq!(
        plan.statements()[0],
        r#"CREATE PUBLICATION "My Pub" FOR TABLE "My Schema"."Odd Table", "My Schema"."No ""Key"" Here" WITH (publish = 'insert, update, delete, truncate');"#
    );
    apply(&client, &plan).await?;
    let published: Vec<(String, String)> = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = 'My Pub' ORDER BY 2",
            &[],
        )
        .await?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(
        published,
        [
            ("My Schema".to_owned(), "No \"Key\" Here".to_owned()),
            ("My Schema".to_owned(), "Odd Table".to_owned()),
        ]
    );
    let again = setup::plan(&client, &options).await?;
    assert!(again.is_ready(), "{}", again.render());
    Ok(())
}

#[tokio::test]
async fn an_existing_publication_with_other_tables_is_reported_with_the_fix_and_left_alone()
-> anyhow::Result<()> {
    let (db, client) = database("setup publication mismatch").await?;
    client
        .batch_execute(
            "CREATE TABLE a (id int PRIMARY KEY);
             CREATE TABLE b (id int PRIMARY KEY);
             CREATE TABLE z (id int PRIMARY KEY);
             CREATE PUBLICATION walproof FOR TABLE a, z WITH (publish = 'insert, update');",
        )
        .await?;
    let options = options(&db, Some(&["a", "b"]))?;

    let plan = setup::plan(&client, &options).await?;
    let problems: Vec<&Problem> = plan.problems().collect();
    assert_eq!(
        problems,
        [
            &Problem::PublicationTables {
                publication: "walproof".into(),
                requested: vec![table("public", "a"), table("public", "b")],
                missing: vec![table("public", "b")],
                unexpected: vec![table("public", "z")],
            },
            &Problem::PublicationActions {
                publication: "walproof".into(),
                missing: vec!["delete", "truncate"],
            },
        ]
    );
    let report = plan.render();
    assert!(
        report.contains("it does not publish public.b; it also publishes public.z"),
        "{report}"
    );
    assert!(
        report.contains("ALTER PUBLICATION walproof SET TABLE public.a, public.b;"),
        "{report}"
    );
    assert!(matches!(
        apply(&client, &plan).await,
        Err(SetupError::Refused { .. })
    ));
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'walproof' \
             ORDER BY 1",
            &[],
        )
        .await?
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        tables,
        ["a", "z"],
        "setup never alters a publication itself"
    );

    run_fixes(&client, &plan).await?;
    let fixed = setup::plan(&client, &options).await?;
    assert!(!fixed.is_refused(), "{}", fixed.render());
    assert_eq!(
        fixed.statements().len(),
        2,
        "only DDL capture and the slot are left to create"
    );
    Ok(())
}

#[tokio::test]
async fn an_existing_slot_with_another_plugin_is_refused() -> anyhow::Result<()> {
    let (db, client) = database("setup slot plugin").await?;
    let options = options(&db, None)?;
    client
        .execute(
            "SELECT pg_create_logical_replication_slot($1::text, 'test_decoding')",
            &[&options.slot],
        )
        .await?;

    let plan = setup::plan(&client, &options).await?;
    let slot_check = plan
        .checks
        .iter()
        .find(|check| check.subject == format!("slot {}", options.slot))
        .context("no slot check")?;
    assert_eq!(
        slot_check.verdict,
        Verdict::Refused(Problem::SlotPlugin {
            slot: options.slot.clone(),
            plugin: "test_decoding".into()
        })
    );
    assert!(
        plan.render().contains(&format!(
            "SELECT pg_drop_replication_slot('{}');",
            options.slot
        )),
        "{}",
        plan.render()
    );
    assert!(matches!(
        apply(&client, &plan).await,
        Err(SetupError::Refused { .. })
    ));
    assert!(!publication_exists(&client, "walproof").await?);
    assert_eq!(
        slot_plugin(&client, &options.slot).await?.as_deref(),
        Some("test_decoding")
    );
    Ok(())
}

#[tokio::test]
async fn a_slot_created_before_its_publication_is_refused() -> anyhow::Result<()> {
    let (db, client) = database("setup slot first").await?;
    let options = options(&db, None)?;
    client
        .execute(
            "SELECT pg_create_logical_replication_slot($1::text, 'pgoutput')",
            &[&options.slot],
        )
        .await?;

    let plan = setup::plan(&client, &options).await?;
    assert!(
        plan.problems().any(|problem| matches!(
            problem,
            Problem::SlotWithoutPublication { slot, .. } if slot == &options.slot
        )),
        "{}",
        plan.render()
    );
    Ok(())
}

#[tokio::test]
async fn listed_tables_that_are_missing_views_or_unlogged_are_refused_by_name() -> anyhow::Result<()>
{
    let (db, client) = database("setup bad tables").await?;
    client
        .batch_execute(
            "CREATE TABLE orders (id int PRIMARY KEY);
             CREATE VIEW recent AS SELECT * FROM orders;
             CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);",
        )
        .await?;
    let options = options(
        &db,
        Some(&["orders", "recent", "scratch", "Orders", "nope.x"]),
    )?;

    let plan = setup::plan(&client, &options).await?;
    assert!(matches!(
        key_of(&plan, &table("public", "recent"))?,
        Err(Problem::NotATable { kind: "view", .. })
    ));
    assert!(matches!(
        key_of(&plan, &table("public", "scratch"))?,
        Err(Problem::UnloggedTable { .. })
    ));
    assert!(matches!(
        key_of(&plan, &table("nope", "x"))?,
        Err(Problem::TableNotFound { .. })
    ));
    assert_eq!(
        plan.tables.len(),
        4,
        "`Orders` folds to orders, reported once:\n{}",
        plan.render()
    );
    assert!(
        plan.render()
            .contains("ALTER TABLE public.scratch SET LOGGED;")
    );
    Ok(())
}

#[tokio::test]
async fn identifier_quoting_matches_the_servers_quote_ident() -> anyhow::Result<()> {
    let (_db, client) = database("setup quote ident").await?;
    let mut idents: Vec<String> = client
        .query("SELECT word FROM pg_get_keywords()", &[])
        .await?
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    idents.extend(
        [
            "orders",
            "Orders",
            "odd table",
            "_x1",
            "1x",
            "a\"b",
            "é",
            "a$b",
            "ÀB",
            "it's",
            r"back\slash",
        ]
        .map(String::from),
    );
    for ident in idents {
        let server: String = client
            .query_one("SELECT quote_ident($1)", &[&ident])
            .await?
            .get(0);
        assert_eq!(setup::quote_ident(&ident), server, "{ident:?}");
        let literal: String = client
            .query_one("SELECT quote_literal($1)", &[&ident])
            .await?
            .get(0);
        assert_eq!(setup::quote_literal(&ident), literal, "{ident:?}");
    }
    Ok(())
}
