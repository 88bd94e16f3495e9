//! pgoutput against a real walsender: every common type's value, as walproof's parser reads it
//! from the stream, is the same text a normal session outputs under the canonical settings, and
//! unchanged TOASTed values arrive as markers (or, under REPLICA IDENTITY FULL, in the old tuple).
//!
//! Needs the local stack (`bash deploy/stack.sh up`); each test has its own database and slots.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use pgwire_replication::{ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use tokio_postgres::{Client, SimpleQueryMessage};
use walproof_source::pgoutput::{Message, OldTuple, TupleColumn, TupleData, parse_message};
use walproof_source::session::{canonical_set_statements, canonical_startup_options};
use walproof_testkit::{Stack, TestDatabase};

mod common;
use common::every_type::{EVERY_TYPE_ROWS, EVERY_TYPE_SCHEMA};

/// Prefix of the transactional logical message that marks the end of a test's workload.
const DONE_PREFIX: &str = "walproof.test.done";
/// How long a stream may take to deliver everything up to the done marker.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);
const PUBLICATION: &str = "walproof_test_pub";

/// Session settings as unlike the canonical ones as possible.
const CONTRARY_SETTINGS: &str = "SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'; \
     SET extra_float_digits = 0; SET bytea_output = 'escape'; \
     SET IntervalStyle = 'sql_standard';";

/// Columns whose `::text` cast is not their output function: `text(boolean)` gives
/// `true`/`false`, `text(inet)` always appends the netmask, `text(character)` trims padding.
const CAST_DIFFERS: [&str; 3] = ["c_bool", "c_char", "c_inet"];

#[tokio::test]
async fn every_common_type_streams_as_the_text_a_session_outputs_under_canonical_settings()
-> anyhow::Result<()> {
    let source = EveryType::stream("every_common_type_streams_as_text").await?;
    let client = source.db.connect().await?;
    let select = "SELECT * FROM every_type ORDER BY id";

    // Under contrary settings a normal session disagrees with the stream…
    client.batch_execute(CONTRARY_SETTINGS).await?;
    let contrary = text_rows(&client, select).await?;
    let differing = source.mismatches(&contrary);
    let differing_columns: BTreeSet<&str> = differing.iter().map(|m| m.column.as_str()).collect();
    for column in [
        "c_float8",
        "c_bytea",
        "c_date",
        "c_timestamp",
        "c_timestamptz",
        "c_interval",
        "c_tstzrange",
        "c_pair",
    ] {
        ensure!(
            differing_columns.contains(column),
            "{column} should differ under contrary settings; differing: {differing_columns:?}"
        );
    }

    // …and the canonical settings are what make every value of every row agree.
    client.batch_execute(&canonical_set_statements()).await?;
    let canonical = text_rows(&client, select).await?;
    let mismatches = source.mismatches(&canonical);
    ensure!(
        mismatches.is_empty(),
        "streamed text differs from the session's text output:\n{}",
        Mismatch::list(&mismatches)
    );
    ensure!(
        canonical.len() == 5,
        "expected 5 rows, read {}",
        canonical.len()
    );
    Ok(())
}

#[tokio::test]
async fn casting_to_text_matches_the_stream_except_for_bool_char_and_inet() -> anyhow::Result<()> {
    let source = EveryType::stream("casting_to_text_matches_the_stream").await?;
    let client = source.db.connect().await?;
    client.batch_execute(&canonical_set_statements()).await?;
    let casts: Vec<String> = source
        .columns
        .iter()
        .map(|column| format!("{column}::text AS {column}"))
        .collect();
    let select = format!("SELECT {} FROM every_type ORDER BY id", casts.join(", "));
    let cast = text_rows(&client, &select).await?;

    let mismatches = source.mismatches(&cast);
    let columns: BTreeSet<&str> = mismatches.iter().map(|m| m.column.as_str()).collect();
    ensure!(
        columns == BTreeSet::from(CAST_DIFFERS),
        "col::text differs from the stream in {columns:?}, expected exactly {CAST_DIFFERS:?}:\n{}",
        Mismatch::list(&mismatches)
    );
    let row_3 = |column: &str| {
        mismatches
            .iter()
            .find(|m| m.id == 3 && m.column == column)
            .map(|m| (m.streamed.as_deref(), m.selected.as_deref()))
    };
    ensure!(row_3("c_bool") == Some((Some("f"), Some("false"))));
    ensure!(row_3("c_char") == Some((Some("      "), Some(""))));
    ensure!(row_3("c_inet") == Some((Some("::1"), Some("::1/128"))));
    Ok(())
}

#[tokio::test]
async fn without_canonical_startup_options_the_database_defaults_leak_into_streamed_values()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let db = TestDatabase::create(&stack, "database_defaults_leak").await?;
    let setup = db.connect().await?;
    // The walsender, like any new session of this database, starts from these defaults.
    for setting in CONTRARY_SETTINGS
        .split(';')
        .filter(|s| !s.trim().is_empty())
    {
        let setting = setting.trim().trim_start_matches("SET ");
        setup
            .batch_execute(&format!("ALTER DATABASE {} SET {setting}", db.name()))
            .await?;
    }
    setup
        .batch_execute(
            "CREATE TABLE moments (id int4 PRIMARY KEY, at timestamptz, day date, \
             ratio float8, raw bytea, span interval)",
        )
        .await?;
    let plain_slot = db.slot_name("plain");
    let canonical_slot = db.slot_name("canonical");
    create_publication_and_slots(&setup, "moments", &[&plain_slot, &canonical_slot]).await?;
    setup
        .batch_execute(
            "INSERT INTO moments VALUES (1, '2024-03-17 13:45:07+00', '2024-03-17', \
             0.30000000000000004, '\\x00ff', '-1 day +02:00:00')",
        )
        .await?;
    emit_done(&setup).await?;

    let plain = stream_until_done(&db, &plain_slot, None).await?;
    let canonical =
        stream_until_done(&db, &canonical_slot, Some(canonical_startup_options())).await?;
    let plain = inserted_rows(&plain.frames)?.rows;
    let canonical = inserted_rows(&canonical.frames)?.rows;

    let expected_plain = [
        "1",
        "17/03/2024 19:15:07 IST",
        "17/03/2024",
        "0.3",
        "\\000\\377",
        "+0-0 -1 +2:00:00",
    ];
    let expected_canonical = [
        "1",
        "2024-03-17 13:45:07+00",
        "2024-03-17",
        "0.30000000000000004",
        "\\x00ff",
        "-1 days +02:00:00",
    ];
    let texts = |rows: &BTreeMap<i64, Vec<Option<String>>>| -> Vec<String> {
        rows.get(&1)
            .into_iter()
            .flatten()
            .map(|value| value.clone().unwrap_or_default())
            .collect()
    };
    ensure!(
        texts(&plain) == expected_plain,
        "stream without startup options: {:?}",
        texts(&plain)
    );
    ensure!(
        texts(&canonical) == expected_canonical,
        "stream with canonical startup options: {:?}",
        texts(&canonical)
    );

    // A fresh session starts from the same database defaults and outputs what the plain
    // stream carried: the walsender simply followed them.
    let fresh = db.connect().await?;
    let fresh_rows = text_rows(&fresh, "SELECT * FROM moments").await?;
    ensure!(
        fresh_rows.first() == plain.get(&1),
        "fresh session {fresh_rows:?} vs plain stream {plain:?}"
    );
    Ok(())
}

#[tokio::test]
async fn update_of_toasted_row_under_default_replica_identity_marks_the_toast_column_unchanged()
-> anyhow::Result<()> {
    let toasted = ToastedUpdate::run("toast_default_identity", false).await?;
    let (old, new) = toasted.update()?;
    ensure!(
        old.is_none(),
        "no old tuple expected when the key did not change: {old:?}"
    );
    ensure!(
        new.columns
            == [
                TupleColumn::Text("1"),
                TupleColumn::UnchangedToast,
                TupleColumn::Text("2"),
            ],
        "new tuple: {:?}",
        summarize(&new)
    );
    Ok(())
}

#[tokio::test]
async fn update_of_toasted_row_under_replica_identity_full_carries_the_value_in_the_old_tuple()
-> anyhow::Result<()> {
    let toasted = ToastedUpdate::run("toast_full_identity", true).await?;
    let (old, new) = toasted.update()?;
    let Some(OldTuple::Full(old)) = old else {
        bail!("expected a full old tuple ('O'), got {old:?}");
    };
    ensure!(
        old.columns
            == [
                TupleColumn::Text("1"),
                TupleColumn::Text(&toasted.body),
                TupleColumn::Text("1"),
            ],
        "old tuple: {:?}",
        summarize(&old)
    );
    // The new tuple still leaves the TOASTed value out: the old tuple is where it is.
    ensure!(
        new.columns
            == [
                TupleColumn::Text("1"),
                TupleColumn::UnchangedToast,
                TupleColumn::Text("2"),
            ],
        "new tuple: {:?}",
        summarize(&new)
    );
    Ok(())
}

/// The `every_type` table streamed into a fresh slot with the canonical startup options.
struct EveryType {
    db: TestDatabase,
    /// Column names from the stream's Relation message, in attribute order.
    columns: Vec<String>,
    /// Inserted rows by id, NULL as `None`.
    rows: BTreeMap<i64, Vec<Option<String>>>,
}

impl EveryType {
    async fn stream(test: &str) -> anyhow::Result<EveryType> {
        let stack = Stack::load()?;
        let db = TestDatabase::create(&stack, test).await?;
        let setup = db.connect().await?;
        setup.batch_execute(EVERY_TYPE_SCHEMA).await?;
        let slot = db.slot_name("types");
        create_publication_and_slots(&setup, "every_type", &[&slot]).await?;
        setup.batch_execute(EVERY_TYPE_ROWS).await?;
        emit_done(&setup).await?;

        let stream = stream_until_done(&db, &slot, Some(canonical_startup_options())).await?;
        // The enum, the domain and the composite are not built in: pgoutput describes each by
        // OID, but names a domain by its base type (pg_catalog's namespace is sent empty).
        let types: BTreeSet<(u32, &str, &str)> = stream
            .frames
            .iter()
            .filter_map(|frame| match parse_message(frame) {
                Ok(Message::Type {
                    id,
                    namespace,
                    name,
                }) => Some((id, namespace, name)),
                _ => None,
            })
            .collect();
        for (sql_name, namespace, sent_name) in [
            ("mood", "public", "mood"),
            ("positive_int", "", "int4"),
            ("pair", "public", "pair"),
        ] {
            let oid: u32 = setup
                .query_one("SELECT $1::text::regtype::oid", &[&sql_name])
                .await?
                .get(0);
            ensure!(
                types.contains(&(oid, namespace, sent_name)),
                "no Type message ({oid}, {namespace:?}, {sent_name:?}) for {sql_name}: {types:?}"
            );
        }
        let inserted = inserted_rows(&stream.frames)?;
        ensure!(
            inserted.rows.len() == 5,
            "expected 5 inserts: {:?}",
            inserted.rows.keys()
        );
        Ok(EveryType {
            db,
            columns: inserted.columns,
            rows: inserted.rows,
        })
    }

    /// Every value where `selected` (rows in id order, id first) differs from the stream.
    fn mismatches(&self, selected: &[Vec<Option<String>>]) -> Vec<Mismatch> {
        let mut mismatches = Vec::new();
        for row in selected {
            let id = row
                .first()
                .cloned()
                .flatten()
                .and_then(|id| id.parse::<i64>().ok())
                .unwrap_or(-1);
            let streamed = self.rows.get(&id).cloned().unwrap_or_default();
            let width = row.len().max(streamed.len());
            for index in 0..width {
                let streamed = streamed.get(index).cloned().flatten();
                let selected = row.get(index).cloned().flatten();
                if streamed != selected {
                    mismatches.push(Mismatch {
                        id,
                        column: self.columns.get(index).cloned().unwrap_or_default(),
                        streamed,
                        selected,
                    });
                }
            }
        }
        mismatches
    }
}

/// One value on which a session and the stream disagree.
#[derive(Debug)]
struct Mismatch {
    id: i64,
    column: String,
    streamed: Option<String>,
    selected: Option<String>,
}

impl Mismatch {
    fn list(mismatches: &[Mismatch]) -> String {
        mismatches
            .iter()
            .map(|m| {
                format!(
                    "  row {} {}: streamed {:?}, selected {:?}",
                    m.id, m.column, m.streamed, m.selected
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A row with a ~100 kB TOASTed text updated in another column, streamed with the canonical
/// startup options.
struct ToastedUpdate {
    _db: TestDatabase,
    body: String,
    frames: Vec<Bytes>,
}

impl ToastedUpdate {
    async fn run(test: &str, replica_identity_full: bool) -> anyhow::Result<ToastedUpdate> {
        let stack = Stack::load()?;
        let db = TestDatabase::create(&stack, test).await?;
        let setup = db.connect().await?;
        setup
            .batch_execute("CREATE TABLE docs (id int4 PRIMARY KEY, body text, version int4)")
            .await?;
        if replica_identity_full {
            setup
                .batch_execute("ALTER TABLE docs REPLICA IDENTITY FULL")
                .await?;
        }
        // md5 hex of random numbers barely compresses: the value stays far above the TOAST
        // threshold and is stored out of line.
        setup
            .batch_execute(
                "INSERT INTO docs SELECT 1, string_agg(md5(random()::text), ''), 1 \
                 FROM generate_series(1, 3200)",
            )
            .await?;
        let toast_chunks = setup
            .query_one(
                "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'docs'::regclass",
                &[],
            )
            .await?
            .get::<_, String>(0);
        let chunks: i64 = setup
            .query_one(&format!("SELECT count(*) FROM {toast_chunks}"), &[])
            .await?
            .get(0);
        ensure!(chunks > 0, "the body was not stored out of line");
        let body: String = setup
            .query_one("SELECT body FROM docs WHERE id = 1", &[])
            .await?
            .get(0);

        let slot = db.slot_name("toast");
        create_publication_and_slots(&setup, "docs", &[&slot]).await?;
        setup
            .batch_execute("UPDATE docs SET version = 2 WHERE id = 1")
            .await?;
        emit_done(&setup).await?;
        let stream = stream_until_done(&db, &slot, Some(canonical_startup_options())).await?;
        Ok(ToastedUpdate {
            _db: db,
            body,
            frames: stream.frames,
        })
    }

    /// The one Update in the stream: its old and new tuples.
    fn update(&self) -> anyhow::Result<(Option<OldTuple<'_>>, TupleData<'_>)> {
        let mut updates = Vec::new();
        for frame in &self.frames {
            if let Message::Update { old, new, .. } = parse_message(frame)? {
                updates.push((old, new));
            }
        }
        ensure!(
            updates.len() == 1,
            "expected one Update, got {}",
            updates.len()
        );
        updates.pop().context("one update")
    }
}

/// Column values with long texts shortened, for failure messages.
fn summarize(tuple: &TupleData<'_>) -> Vec<String> {
    tuple
        .columns
        .iter()
        .map(|column| match column {
            TupleColumn::Text(text) if text.len() > 40 => {
                format!(
                    "Text({} bytes: {}…)",
                    text.len(),
                    text.get(..20).unwrap_or(text)
                )
            }
            other => format!("{other:?}"),
        })
        .collect()
}

/// Creates the publication for `table`, then each slot in a statement of its own: a slot
/// cannot be created in a transaction that has written.
async fn create_publication_and_slots(
    client: &Client,
    table: &str,
    slots: &[&str],
) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "CREATE PUBLICATION {PUBLICATION} FOR TABLE {table}"
        ))
        .await?;
    for slot in slots {
        client
            .batch_execute(&format!(
                "SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"
            ))
            .await
            .with_context(|| format!("creating slot {slot}"))?;
    }
    Ok(())
}

/// Marks the end of the workload: streams read until this message.
async fn emit_done(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "SELECT pg_logical_emit_message(true, '{DONE_PREFIX}', '')"
        ))
        .await?;
    Ok(())
}

/// What a stream delivered before the done marker.
struct Streamed {
    /// The XLogData payloads, in stream order.
    frames: Vec<Bytes>,
}

/// Streams `slot` from its start until the done marker, collecting the XLogData payloads.
///
/// pgwire-replication turns Begin, Commit and logical messages into events of their own and
/// passes only the other pgoutput messages through as XLogData; this checks that it does.
async fn stream_until_done(
    db: &TestDatabase,
    slot: &str,
    options: Option<String>,
) -> anyhow::Result<Streamed> {
    let (host, port, user) = db.host_port_user();
    let mut config = ReplicationConfig::new(host, user, "", db.name(), slot, PUBLICATION)
        .with_port(port)
        .with_tls(TlsConfig::disabled());
    if let Some(options) = options {
        config = config.with_options(options);
    }
    let mut client = ReplicationClient::connect(config)
        .await
        .with_context(|| format!("starting replication from slot {slot}"))?;
    let mut frames = Vec::new();
    let (mut begins, mut commits) = (0, 0);
    let received = tokio::time::timeout(STREAM_TIMEOUT, async {
        loop {
            match client.recv().await? {
                Some(ReplicationEvent::XLogData { data, .. }) => {
                    if let Some(tag @ (b'B' | b'C' | b'M')) = data.first() {
                        bail!("XLogData carried a {:?} message", char::from(*tag));
                    }
                    frames.push(data);
                }
                Some(ReplicationEvent::Begin { .. }) => begins += 1,
                Some(ReplicationEvent::Commit { .. }) => commits += 1,
                Some(ReplicationEvent::Message { prefix, .. }) if prefix == DONE_PREFIX => {
                    return Ok(());
                }
                Some(_) => {}
                None => bail!("the stream ended before the done marker"),
            }
        }
    })
    .await;
    match received {
        Ok(result) => result?,
        Err(_) => bail!(
            "no done marker within {STREAM_TIMEOUT:?} from slot {slot} \
             ({} frames, {begins} begins, {commits} commits)",
            frames.len()
        ),
    }
    ensure!(
        begins >= 2,
        "expected Begin events of the workload and the marker: {begins}"
    );
    client.shutdown().await.context("stopping replication")?;
    Ok(Streamed { frames })
}

/// Inserted rows of a stream with one published table.
struct InsertedRows {
    columns: Vec<String>,
    rows: BTreeMap<i64, Vec<Option<String>>>,
}

/// Parses every frame and collects the inserted rows by their first column (the id).
fn inserted_rows(frames: &[Bytes]) -> anyhow::Result<InsertedRows> {
    let mut columns = Vec::new();
    let mut rows = BTreeMap::new();
    for frame in frames {
        match parse_message(frame)? {
            Message::Relation(relation) => {
                columns = relation
                    .columns
                    .iter()
                    .map(|column| column.name.to_owned())
                    .collect();
            }
            Message::Insert { new, .. } => {
                let values = new
                    .columns
                    .iter()
                    .map(|column| match column {
                        TupleColumn::Null => Ok(None),
                        TupleColumn::Text(text) => Ok(Some((*text).to_owned())),
                        other => Err(anyhow::anyhow!("an insert carried {other:?}")),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let id = values
                    .first()
                    .cloned()
                    .flatten()
                    .context("an insert without an id")?
                    .parse::<i64>()?;
                rows.insert(id, values);
            }
            _ => {}
        }
    }
    Ok(InsertedRows { columns, rows })
}

/// Runs `sql` with the simple query protocol, which returns each column's text output.
async fn text_rows(client: &Client, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|index| row.get(index).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}
