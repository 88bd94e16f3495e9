//! JSON values that keep their fields in the order they were built, and their writer.
//!
//! Every encoding of the same transaction must be byte-identical (a consumer may compare a
//! re-emitted event with the one it holds), so field order cannot depend on which `serde_json`
//! features the build graph happens to enable.

use std::fmt::Write as _;

/// A JSON value whose objects keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// Always finite: non-finite floats are carried as strings before they get here.
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(name, value)` pairs, in that order.
    pub(crate) fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Object(
            fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    }

    /// A string value.
    pub(crate) fn str(text: impl Into<String>) -> Json {
        Json::Str(text.into())
    }

    /// The compact JSON text.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        self.write(&mut out);
        out.into_bytes()
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            Json::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(number) => {
                    let _ = write!(out, "{number}");
                }
                None => out.push_str("null"),
            },
            Json::Str(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(name, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// The bytes Kafka Connect's JsonConverter writes for `payload`: with `schemas.enable`,
/// `{"schema":…,"payload":…}` (the schema given already serialised, as it is the same for
/// every record of a table); without, the payload alone.
pub(crate) fn converter_bytes(schema: Option<&[u8]>, payload: &Json) -> Vec<u8> {
    let mut out = String::new();
    match schema {
        Some(schema) => {
            out.push_str(r#"{"schema":"#);
            let mut bytes = std::mem::take(&mut out).into_bytes();
            bytes.extend_from_slice(schema);
            bytes.extend_from_slice(br#","payload":"#);
            payload.write(&mut out);
            bytes.extend_from_slice(out.as_bytes());
            bytes.push(b'}');
            bytes
        }
        None => {
            payload.write(&mut out);
            out.into_bytes()
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_field_order() {
        let json = Json::object([("z", Json::Int(1)), ("a", Json::Null)]);
        assert_eq!(json.to_bytes(), br#"{"z":1,"a":null}"#);
    }

    #[test]
    fn strings_are_escaped_and_parse_back() {
        let text = "q\"u\\o\nte\u{1}é✓";
        let bytes = Json::str(text).to_bytes();
        let parsed: String = serde_json::from_slice(&bytes).expect("valid JSON");
        assert_eq!(parsed, text);
    }

    #[test]
    fn converter_bytes_wrap_the_payload_only_when_schemas_are_on() {
        let payload = Json::object([("id", Json::Int(1))]);
        assert_eq!(converter_bytes(None, &payload), br#"{"id":1}"#);
        assert_eq!(
            converter_bytes(Some(br#"{"type":"struct"}"#), &payload),
            br#"{"schema":{"type":"struct"},"payload":{"id":1}}"#
        );
    }

    #[test]
    fn floats_print_the_shortest_round_trip_form() {
        assert_eq!(Json::Float(1.1).to_bytes(), b"1.1");
        assert_eq!(Json::Float(1e20).to_bytes(), b"1e+20");
    }
}
