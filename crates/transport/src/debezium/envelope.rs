//! The Debezium change-event envelope: `before`, `after`, `source`, `transaction`, `op`,
//! `ts_ms` — plus walproof's own `walproof` block, which Debezium consumers ignore.

use walproof_core::Lsn;

use super::json::{Json, converter_bytes};
use super::options::DebeziumOptions;
use super::table::{EncodedRow, Table, field_of};

/// `source.version`: walproof's version, marked as not a Debezium release.
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-walproof");

/// What every event of one transaction shares.
#[derive(Debug)]
pub(crate) struct TransactionContext<'a> {
    pub(crate) options: &'a DebeziumOptions,
    pub(crate) commit_lsn: Lsn,
    pub(crate) xid: u32,
    pub(crate) commit_time_us: i64,
}

impl TransactionContext<'_> {
    /// Debezium PostgreSQL's transaction id: `<xid>:<lsn>`; walproof uses the commit LSN, the
    /// transaction's identity, so BEGIN, END and every event agree.
    pub(crate) fn id(&self) -> String {
        format!("{}:{}", self.xid, self.commit_lsn.as_u64())
    }

    pub(crate) fn ts_ms(&self) -> i64 {
        self.commit_time_us.div_euclid(1000)
    }

    fn timestamps(&self) -> [(&'static str, Json); 3] {
        [
            ("ts_ms", Json::Int(self.ts_ms())),
            ("ts_us", Json::Int(self.commit_time_us)),
            ("ts_ns", Json::Int(self.commit_time_us.saturating_mul(1000))),
        ]
    }
}

/// One data change event.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    pub(crate) table: &'a Table,
    /// `c`, `u`, `d`, `r` or `t`.
    pub(crate) op: char,
    pub(crate) before: Option<EncodedRow>,
    pub(crate) after: Option<EncodedRow>,
    /// `source.snapshot`: `true` / `last` for snapshot rows, `false` otherwise.
    pub(crate) snapshot: &'static str,
    /// The ordinal of the change this event comes from.
    pub(crate) ordinal: u32,
    /// 1-based position among the transaction's events.
    pub(crate) total_order: u64,
    /// 1-based position among the transaction's events of this table.
    pub(crate) data_collection_order: u64,
}

impl Event<'_> {
    /// The record value's bytes; `schema` is the table's serialised envelope schema when
    /// schemas are on.
    pub(crate) fn value_bytes(
        &self,
        cx: &TransactionContext<'_>,
        schema: Option<&[u8]>,
    ) -> Vec<u8> {
        converter_bytes(schema, &self.payload(cx))
    }

    fn payload(&self, cx: &TransactionContext<'_>) -> Json {
        let row = |row: &Option<EncodedRow>| row.as_ref().map_or(Json::Null, |r| r.payload.clone());
        let [ts_ms, ts_us, ts_ns] = cx.timestamps();
        let lsn = cx.commit_lsn.as_u64();
        let source = Json::object([
            ("version", Json::str(VERSION)),
            ("connector", Json::str("postgresql")),
            ("name", Json::str(&cx.options.server_name)),
            ts_ms.clone(),
            ("snapshot", Json::str(self.snapshot)),
            ("db", Json::str(&cx.options.database)),
            ("sequence", Json::Str(format!(r#"["{lsn}","{lsn}"]"#))),
            ts_us.clone(),
            ts_ns.clone(),
            ("schema", Json::str(&self.table.schema)),
            ("table", Json::str(&self.table.name)),
            ("txId", Json::Int(i64::from(cx.xid))),
            ("lsn", Json::UInt(lsn)),
            ("xmin", Json::Null),
        ]);
        let transaction = Json::object([
            ("id", Json::Str(cx.id())),
            ("total_order", Json::UInt(self.total_order)),
            (
                "data_collection_order",
                Json::UInt(self.data_collection_order),
            ),
        ]);
        let names = |row: &Option<EncodedRow>| {
            Json::Array(
                row.iter()
                    .flat_map(|r| r.unchanged.iter().map(Json::str))
                    .collect(),
            )
        };
        let texts = |row: &Option<EncodedRow>| {
            Json::Object(row.iter().flat_map(|r| r.text.iter().cloned()).collect())
        };
        let walproof = Json::object([
            ("commit_lsn", Json::Str(cx.commit_lsn.to_string())),
            ("ordinal", Json::Int(i64::from(self.ordinal))),
            (
                "unchanged",
                Json::object([
                    ("before", names(&self.before)),
                    ("after", names(&self.after)),
                ]),
            ),
            (
                "text",
                Json::object([
                    ("before", texts(&self.before)),
                    ("after", texts(&self.after)),
                ]),
            ),
        ]);
        Json::object([
            ("before", row(&self.before)),
            ("after", row(&self.after)),
            ("source", source),
            ("transaction", transaction),
            ("op", Json::Str(self.op.to_string())),
            ts_ms,
            ts_us,
            ts_ns,
            ("walproof", walproof),
        ])
    }
}

fn primitive(kind: &str, optional: bool, name: &str) -> Json {
    Json::object([
        ("type", Json::str(kind)),
        ("optional", Json::Bool(optional)),
        ("field", Json::str(name)),
    ])
}

fn strukt<const N: usize>(fields: [Json; N], optional: bool, name: &str, field_name: &str) -> Json {
    Json::object([
        ("type", Json::str("struct")),
        ("fields", Json::Array(fields.into())),
        ("optional", Json::Bool(optional)),
        ("name", Json::str(name)),
        ("version", Json::Int(1)),
        ("field", Json::str(field_name)),
    ])
}

/// The envelope's Connect schema: `<prefix>.<schema>.<table>.Envelope`.
pub(crate) fn envelope_schema(table: &Table) -> Json {
    let snapshot = Json::object([
        ("type", Json::str("string")),
        ("optional", Json::Bool(true)),
        ("name", Json::str("io.debezium.data.Enum")),
        ("version", Json::Int(1)),
        (
            "parameters",
            Json::object([("allowed", Json::str("true,last,false,incremental"))]),
        ),
        ("default", Json::str("false")),
        ("field", Json::str("snapshot")),
    ]);
    let source = strukt(
        [
            primitive("string", false, "version"),
            primitive("string", false, "connector"),
            primitive("string", false, "name"),
            primitive("int64", false, "ts_ms"),
            snapshot,
            primitive("string", false, "db"),
            primitive("string", true, "sequence"),
            primitive("int64", true, "ts_us"),
            primitive("int64", true, "ts_ns"),
            primitive("string", false, "schema"),
            primitive("string", false, "table"),
            primitive("int64", true, "txId"),
            primitive("int64", true, "lsn"),
            primitive("int64", true, "xmin"),
        ],
        false,
        "io.debezium.connector.postgresql.Source",
        "source",
    );
    let transaction = strukt(
        [
            primitive("string", false, "id"),
            primitive("int64", false, "total_order"),
            primitive("int64", false, "data_collection_order"),
        ],
        true,
        "event.block",
        "transaction",
    );
    let names = |name: &str| {
        Json::object([
            ("type", Json::str("array")),
            (
                "items",
                Json::object([
                    ("type", Json::str("string")),
                    ("optional", Json::Bool(false)),
                ]),
            ),
            ("optional", Json::Bool(false)),
            ("field", Json::str(name)),
        ])
    };
    let texts = |name: &str| {
        Json::object([
            ("type", Json::str("map")),
            (
                "keys",
                Json::object([
                    ("type", Json::str("string")),
                    ("optional", Json::Bool(false)),
                ]),
            ),
            (
                "values",
                Json::object([
                    ("type", Json::str("string")),
                    ("optional", Json::Bool(false)),
                ]),
            ),
            ("optional", Json::Bool(false)),
            ("field", Json::str(name)),
        ])
    };
    let walproof = strukt(
        [
            primitive("string", false, "commit_lsn"),
            primitive("int64", false, "ordinal"),
            strukt(
                [names("before"), names("after")],
                false,
                "io.walproof.debezium.Unchanged",
                "unchanged",
            ),
            strukt(
                [texts("before"), texts("after")],
                false,
                "io.walproof.debezium.Text",
                "text",
            ),
        ],
        true,
        "io.walproof.debezium.Change",
        "walproof",
    );
    Json::object([
        ("type", Json::str("struct")),
        (
            "fields",
            Json::Array(vec![
                field_of(table.row_schema(), "before"),
                field_of(table.row_schema(), "after"),
                source,
                transaction,
                primitive("string", false, "op"),
                primitive("int64", true, "ts_ms"),
                primitive("int64", true, "ts_us"),
                primitive("int64", true, "ts_ns"),
                walproof,
            ]),
        ),
        ("optional", Json::Bool(false)),
        ("name", Json::Str(table.envelope_schema_name())),
        ("version", Json::Int(1)),
    ])
}
