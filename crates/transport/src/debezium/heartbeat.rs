//! Heartbeats on `__debezium-heartbeat.<prefix>`: a record every interval, so consumers and
//! monitoring see the connector alive while the source is idle, as Debezium's
//! `heartbeat.interval.ms` does.

use super::json::{Json, converter_bytes};
use super::options::DebeziumOptions;
use super::record::Record;

/// `__debezium-heartbeat.<prefix>`.
pub fn heartbeat_topic(options: &DebeziumOptions) -> String {
    format!("__debezium-heartbeat.{}", options.topic_prefix)
}

/// One heartbeat: key `{"serverName": …}`, value `{"ts_ms": …}`, as Debezium writes them.
pub fn heartbeat_record(options: &DebeziumOptions, ts_ms: i64) -> Record {
    let field = |kind: &str, name: &str| {
        Json::object([
            ("type", Json::str(kind)),
            ("optional", Json::Bool(false)),
            ("field", Json::str(name)),
        ])
    };
    let schema = |name: &str, field: Json| {
        Json::object([
            ("type", Json::str("struct")),
            ("fields", Json::Array(vec![field])),
            ("optional", Json::Bool(false)),
            ("name", Json::str(name)),
        ])
        .to_bytes()
    };
    let key = Json::object([("serverName", Json::str(options.server_name.clone()))]);
    let value = Json::object([("ts_ms", Json::Int(ts_ms))]);
    let (key_schema, value_schema) = if options.schemas {
        (
            Some(schema(
                "io.debezium.connector.common.ServerNameKey",
                field("string", "serverName"),
            )),
            Some(schema(
                "io.debezium.connector.common.Heartbeat",
                field("int64", "ts_ms"),
            )),
        )
    } else {
        (None, None)
    };
    Record {
        topic: heartbeat_topic(options),
        partition: 0,
        key: Some(converter_bytes(key_schema.as_deref(), &key)),
        value: Some(converter_bytes(value_schema.as_deref(), &value)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn a_heartbeat_names_the_server_and_the_time() {
        let options = DebeziumOptions {
            schemas: false,
            ..DebeziumOptions::new("shop", "appdb")
        };
        let record = heartbeat_record(&options, 1_763_700_000_123);
        assert_eq!(record.topic, "__debezium-heartbeat.shop");
        assert_eq!(
            record.key.as_deref(),
            Some(&br#"{"serverName":"shop"}"#[..])
        );
        assert_eq!(
            record.value.as_deref(),
            Some(&br#"{"ts_ms":1763700000123}"#[..])
        );
        let with_schemas = heartbeat_record(&DebeziumOptions::new("shop", "appdb"), 1);
        let value: serde_json::Value =
            serde_json::from_slice(with_schemas.value.as_deref().unwrap()).unwrap();
        assert_eq!(value["payload"]["ts_ms"], 1);
        assert_eq!(
            value["schema"]["name"],
            "io.debezium.connector.common.Heartbeat"
        );
    }
}
