//! `<prefix>.transaction`: Debezium's BEGIN and END transaction metadata records.

use super::envelope::TransactionContext;
use super::json::{Json, converter_bytes};
use super::record::Record;

fn key_schema() -> Json {
    Json::object([
        ("type", Json::str("struct")),
        (
            "fields",
            Json::Array(vec![Json::object([
                ("type", Json::str("string")),
                ("optional", Json::Bool(false)),
                ("field", Json::str("id")),
            ])]),
        ),
        ("optional", Json::Bool(false)),
        (
            "name",
            Json::str("io.debezium.connector.common.TransactionMetadataKey"),
        ),
    ])
}

fn value_schema() -> Json {
    let primitive = |kind: &str, optional: bool, name: &str| {
        Json::object([
            ("type", Json::str(kind)),
            ("optional", Json::Bool(optional)),
            ("field", Json::str(name)),
        ])
    };
    let collection = Json::object([
        ("type", Json::str("struct")),
        (
            "fields",
            Json::Array(vec![
                primitive("string", false, "data_collection"),
                primitive("int64", false, "event_count"),
            ]),
        ),
        ("optional", Json::Bool(false)),
    ]);
    Json::object([
        ("type", Json::str("struct")),
        (
            "fields",
            Json::Array(vec![
                primitive("string", false, "status"),
                primitive("string", false, "id"),
                primitive("int64", true, "event_count"),
                Json::object([
                    ("type", Json::str("array")),
                    ("items", collection),
                    ("optional", Json::Bool(true)),
                    ("field", Json::str("data_collections")),
                ]),
                primitive("int64", false, "ts_ms"),
            ]),
        ),
        ("optional", Json::Bool(false)),
        (
            "name",
            Json::str("io.debezium.connector.common.TransactionMetadataValue"),
        ),
        ("version", Json::Int(1)),
    ])
}

/// The counts an END record reports.
#[derive(Debug, Default)]
pub(crate) struct EventCounts {
    /// Every data change event (tombstones are not events).
    pub(crate) total: u64,
    /// Events per data collection (`schema.table`), in order of first appearance.
    pub(crate) per_collection: Vec<(String, u64)>,
}

impl EventCounts {
    /// Counts one more event of `collection`; returns its (total, per-collection) order.
    pub(crate) fn count(&mut self, collection: &str) -> (u64, u64) {
        self.total += 1;
        let position = match self
            .per_collection
            .iter()
            .position(|(c, _)| c == collection)
        {
            Some(position) => position,
            None => {
                self.per_collection.push((collection.to_owned(), 0));
                self.per_collection.len() - 1
            }
        };
        self.per_collection[position].1 += 1;
        (self.total, self.per_collection[position].1)
    }
}

/// A BEGIN (`counts` = `None`) or END record. Both go to partition 0 of
/// `<prefix>.transaction`, so that topic reads in commit order.
pub(crate) fn metadata_record(cx: &TransactionContext<'_>, counts: Option<&EventCounts>) -> Record {
    let id = cx.id();
    let key = Json::object([("id", Json::Str(id.clone()))]);
    let (status, event_count, data_collections) = match counts {
        None => ("BEGIN", Json::Null, Json::Null),
        Some(counts) => (
            "END",
            Json::UInt(counts.total),
            Json::Array(
                counts
                    .per_collection
                    .iter()
                    .map(|(collection, count)| {
                        Json::object([
                            ("data_collection", Json::str(collection)),
                            ("event_count", Json::UInt(*count)),
                        ])
                    })
                    .collect(),
            ),
        ),
    };
    let value = Json::object([
        ("status", Json::str(status)),
        ("id", Json::Str(id)),
        ("event_count", event_count),
        ("data_collections", data_collections),
        ("ts_ms", Json::Int(cx.ts_ms())),
    ]);
    let schemas = cx.options.schemas;
    let key_schema = schemas.then(|| key_schema().to_bytes());
    let value_schema = schemas.then(|| value_schema().to_bytes());
    Record {
        topic: cx.options.transaction_topic(),
        partition: 0,
        key: Some(converter_bytes(key_schema.as_deref(), &key)),
        value: Some(converter_bytes(value_schema.as_deref(), &value)),
    }
}
