//! Column values: Postgres text output to the JSON form of Debezium's default converters
//! (`decimal.handling.mode=precise`, `time.precision.mode=adaptive`,
//! `binary.handling.mode=bytes`, `interval.handling.mode=numeric`), and the Kafka Connect
//! schema of each column. `crates/transport/DEBEZIUM.md` tabulates the mapping.

use base64::Engine as _;
use walproof_core::pg_text::{
    self, Element, MaybeInfinite, Numeric, parse_array, parse_date, parse_interval_parts,
    parse_money, parse_numeric, parse_time, parse_timestamp, parse_timestamptz, parse_timetz,
};

use super::json::Json;
use super::temporal::{format_zoned_time, format_zoned_timestamp, micro_duration};

/// How a column's values are encoded: one variant per Debezium logical type we produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Boolean,
    /// `bit(1)`, which Debezium carries as a boolean.
    Bit,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// `numeric(p, s)`: `org.apache.kafka.connect.data.Decimal`.
    Decimal {
        precision: u32,
        scale: u32,
    },
    /// `numeric` without a scale: `io.debezium.data.VariableScaleDecimal`.
    VariableDecimal,
    /// `money`: a decimal of scale 2.
    Money,
    /// A plain string: text types and every type without a Debezium logical type.
    Text,
    /// A string with a Debezium semantic name (`io.debezium.data.Uuid`, `…Json`, `…Xml`).
    Named(&'static str),
    /// `bytea`: bytes (base64 in JSON).
    Bytes,
    /// `bit(n)`, `varbit(n)`: `io.debezium.data.Bits`, little-endian bytes.
    Bits {
        length: u32,
    },
    Date,
    TimeMillis,
    TimeMicros,
    TimeTz,
    TimestampMillis,
    TimestampMicros,
    TimestampTz,
    Interval,
    Array(Box<ColumnType>),
}

impl ColumnType {
    /// The encoding of a column of `pg_type` `oid` with `atttypmod` `typmod`. Unknown OIDs
    /// (enums, domains, composites, extension types) are strings.
    pub(crate) fn of(oid: u32, typmod: i32) -> ColumnType {
        match oid {
            16 => ColumnType::Boolean,
            21 => ColumnType::Int16,
            23 => ColumnType::Int32,
            20 | 26 => ColumnType::Int64,
            700 => ColumnType::Float32,
            701 => ColumnType::Float64,
            1700 => numeric_type(typmod),
            790 => ColumnType::Money,
            17 => ColumnType::Bytes,
            2950 => ColumnType::Named("io.debezium.data.Uuid"),
            114 | 3802 => ColumnType::Named("io.debezium.data.Json"),
            142 => ColumnType::Named("io.debezium.data.Xml"),
            1560 if typmod == 1 => ColumnType::Bit,
            1560 | 1562 if typmod > 0 => ColumnType::Bits {
                length: typmod.unsigned_abs(),
            },
            1082 => ColumnType::Date,
            // Adaptive precision: up to milliseconds in an int32 / int64 of milliseconds.
            1083 if (0..=3).contains(&typmod) => ColumnType::TimeMillis,
            1083 => ColumnType::TimeMicros,
            1266 => ColumnType::TimeTz,
            1114 if (0..=3).contains(&typmod) => ColumnType::TimestampMillis,
            1114 => ColumnType::TimestampMicros,
            1184 => ColumnType::TimestampTz,
            1186 => ColumnType::Interval,
            _ => match pg_text::array_element(oid) {
                Some(element) => ColumnType::Array(Box::new(ColumnType::of(element, typmod))),
                None => ColumnType::Text,
            },
        }
    }

    /// The Kafka Connect schema of this type, as JsonConverter writes it (without `field`).
    pub(crate) fn schema(&self, optional: bool) -> Vec<(String, Json)> {
        let logical = |kind: &str, name: &str| {
            vec![
                ("type".to_owned(), Json::str(kind)),
                ("optional".to_owned(), Json::Bool(optional)),
                ("name".to_owned(), Json::str(name)),
                ("version".to_owned(), Json::Int(1)),
            ]
        };
        let with_parameters = |mut schema: Vec<(String, Json)>, parameters: Vec<(&str, String)>| {
            let parameters = parameters
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Json::Str(v)))
                .collect();
            schema.push(("parameters".to_owned(), Json::Object(parameters)));
            schema
        };
        let primitive = |kind: &str| {
            vec![
                ("type".to_owned(), Json::str(kind)),
                ("optional".to_owned(), Json::Bool(optional)),
            ]
        };
        match self {
            ColumnType::Boolean | ColumnType::Bit => primitive("boolean"),
            ColumnType::Int16 => primitive("int16"),
            ColumnType::Int32 => primitive("int32"),
            ColumnType::Int64 => primitive("int64"),
            ColumnType::Float32 => primitive("float"),
            ColumnType::Float64 => primitive("double"),
            ColumnType::Text => primitive("string"),
            ColumnType::Bytes => primitive("bytes"),
            ColumnType::Named(name) => logical("string", name),
            ColumnType::Decimal { precision, scale } => with_parameters(
                logical("bytes", "org.apache.kafka.connect.data.Decimal"),
                vec![
                    ("scale", scale.to_string()),
                    ("connect.decimal.precision", precision.to_string()),
                ],
            ),
            ColumnType::Money => with_parameters(
                logical("bytes", "org.apache.kafka.connect.data.Decimal"),
                vec![("scale", "2".to_owned())],
            ),
            ColumnType::VariableDecimal => vec![
                ("type".to_owned(), Json::str("struct")),
                (
                    "fields".to_owned(),
                    Json::Array(vec![
                        Json::object([
                            ("type", Json::str("int32")),
                            ("optional", Json::Bool(false)),
                            ("field", Json::str("scale")),
                        ]),
                        Json::object([
                            ("type", Json::str("bytes")),
                            ("optional", Json::Bool(false)),
                            ("field", Json::str("value")),
                        ]),
                    ]),
                ),
                ("optional".to_owned(), Json::Bool(optional)),
                (
                    "name".to_owned(),
                    Json::str("io.debezium.data.VariableScaleDecimal"),
                ),
                ("version".to_owned(), Json::Int(1)),
                ("doc".to_owned(), Json::str("Variable scaled decimal")),
            ],
            ColumnType::Bits { length } => with_parameters(
                logical("bytes", "io.debezium.data.Bits"),
                vec![("length", length.to_string())],
            ),
            ColumnType::Date => logical("int32", "io.debezium.time.Date"),
            ColumnType::TimeMillis => logical("int32", "io.debezium.time.Time"),
            ColumnType::TimeMicros => logical("int64", "io.debezium.time.MicroTime"),
            ColumnType::TimeTz => logical("string", "io.debezium.time.ZonedTime"),
            ColumnType::TimestampMillis => logical("int64", "io.debezium.time.Timestamp"),
            ColumnType::TimestampMicros => logical("int64", "io.debezium.time.MicroTimestamp"),
            ColumnType::TimestampTz => logical("string", "io.debezium.time.ZonedTimestamp"),
            ColumnType::Interval => logical("int64", "io.debezium.time.MicroDuration"),
            ColumnType::Array(element) => vec![
                ("type".to_owned(), Json::str("array")),
                ("items".to_owned(), Json::Object(element.schema(true))),
                ("optional".to_owned(), Json::Bool(optional)),
            ],
        }
    }

    /// The JSON form of one non-NULL value's text output. `Ok(None)`: the value is valid but
    /// this type's Debezium form cannot carry it (numeric NaN, an infinite date, an interval
    /// beyond 64 bits of microseconds). `Err`: the text is not a value of this type.
    pub(crate) fn encode(&self, text: &str) -> Result<Option<Json>, String> {
        let int = |value: Result<i64, _>| value.map(|v| Some(Json::Int(v)));
        match self {
            ColumnType::Boolean => match text {
                "t" | "true" => Ok(Some(Json::Bool(true))),
                "f" | "false" => Ok(Some(Json::Bool(false))),
                _ => Err("not t or f".to_owned()),
            },
            ColumnType::Bit => match text {
                "1" => Ok(Some(Json::Bool(true))),
                "0" => Ok(Some(Json::Bool(false))),
                _ => Err("not 0 or 1".to_owned()),
            },
            ColumnType::Int16 => int(text
                .parse::<i16>()
                .map(i64::from)
                .map_err(|e| e.to_string())),
            ColumnType::Int32 => int(text
                .parse::<i32>()
                .map(i64::from)
                .map_err(|e| e.to_string())),
            ColumnType::Int64 => int(text.parse::<i64>().map_err(|e| e.to_string())),
            ColumnType::Float32 | ColumnType::Float64 => encode_float(text).map(Some),
            ColumnType::Decimal { scale, .. } => match parse_numeric(text)? {
                Numeric::Special => Ok(None),
                Numeric::Finite(decimal) => {
                    let decimal = decimal
                        .rescale(*scale)
                        .ok_or_else(|| format!("more than {scale} digits after the point"))?;
                    Ok(Some(base64(&decimal.unscaled_bytes())))
                }
            },
            ColumnType::VariableDecimal => match parse_numeric(text)? {
                Numeric::Special => Ok(None),
                Numeric::Finite(decimal) => Ok(Some(Json::object([
                    ("scale", Json::Int(i64::from(decimal.scale()))),
                    ("value", base64(&decimal.unscaled_bytes())),
                ]))),
            },
            ColumnType::Money => {
                let decimal = parse_money(text)?
                    .rescale(2)
                    .ok_or("more than 2 digits after the point")?;
                Ok(Some(base64(&decimal.unscaled_bytes())))
            }
            ColumnType::Text | ColumnType::Named(_) => Ok(Some(Json::str(text))),
            ColumnType::Bytes => {
                let hex_digits = text.strip_prefix("\\x").ok_or("no \\x prefix")?;
                let bytes = hex::decode(hex_digits).map_err(|e| e.to_string())?;
                Ok(Some(base64(&bytes)))
            }
            ColumnType::Bits { length } => encode_bits(text, *length).map(Some),
            ColumnType::Date => match parse_date(text)? {
                // Postgres's date range (4713 BC to 5874897 AD) fits an int32 of days;
                // should it not, the value is carried as text.
                MaybeInfinite::Finite(days) => Ok(i32::try_from(days)
                    .ok()
                    .map(|days| Json::Int(i64::from(days)))),
                MaybeInfinite::Infinity | MaybeInfinite::NegativeInfinity => Ok(None),
            },
            ColumnType::TimeMillis => Ok(Some(Json::Int(parse_time(text)? / 1000))),
            ColumnType::TimeMicros => Ok(Some(Json::Int(parse_time(text)?))),
            ColumnType::TimeTz => Ok(Some(Json::Str(format_zoned_time(parse_timetz(text)?)))),
            ColumnType::TimestampMillis | ColumnType::TimestampMicros => {
                match parse_timestamp(text)? {
                    MaybeInfinite::Finite(micros) if *self == ColumnType::TimestampMillis => {
                        Ok(Some(Json::Int(micros.div_euclid(1000))))
                    }
                    MaybeInfinite::Finite(micros) => Ok(Some(Json::Int(micros))),
                    MaybeInfinite::Infinity | MaybeInfinite::NegativeInfinity => Ok(None),
                }
            }
            ColumnType::TimestampTz => Ok(Some(match parse_timestamptz(text)? {
                MaybeInfinite::Finite(micros) => Json::Str(format_zoned_timestamp(micros)),
                MaybeInfinite::Infinity => Json::str("infinity"),
                MaybeInfinite::NegativeInfinity => Json::str("-infinity"),
            })),
            ColumnType::Interval => Ok(micro_duration(parse_interval_parts(text)?).map(Json::Int)),
            ColumnType::Array(element) => encode_elements(element, parse_array(text)?),
        }
    }
}

fn numeric_type(typmod: i32) -> ColumnType {
    match pg_text::numeric_typmod(typmod) {
        Some((precision, scale)) => match u32::try_from(scale) {
            Ok(scale) => ColumnType::Decimal { precision, scale },
            // A negative scale has no Connect Decimal form that Debezium reads back.
            Err(_) => ColumnType::VariableDecimal,
        },
        None => ColumnType::VariableDecimal,
    }
}

fn base64(bytes: &[u8]) -> Json {
    Json::Str(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Floats as numbers; NaN and the infinities as the strings Kafka Connect's JsonConverter
/// (Jackson) writes for them, since JSON numbers cannot carry them.
fn encode_float(text: &str) -> Result<Json, String> {
    match text {
        "NaN" | "Infinity" | "-Infinity" => Ok(Json::str(text)),
        _ => {
            let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
            if value.is_finite() {
                Ok(Json::Float(value))
            } else {
                Err("not a finite number".to_owned())
            }
        }
    }
}

/// A bit string as Debezium's `Bits`: the rightmost bit is bit 0 of byte 0, padded to
/// `ceil(length / 8)` bytes.
fn encode_bits(text: &str, length: u32) -> Result<Json, String> {
    let bits = text.as_bytes();
    if bits.len() > length as usize || bits.iter().any(|b| !matches!(b, b'0' | b'1')) {
        return Err(format!("not a bit string of at most {length} bits"));
    }
    let mut bytes = vec![0_u8; length.div_ceil(8) as usize];
    for (position, bit) in bits.iter().rev().enumerate() {
        if *bit == b'1' {
            bytes[position / 8] |= 1 << (position % 8);
        }
    }
    Ok(base64(&bytes))
}

fn encode_elements(element: &ColumnType, items: Vec<Element>) -> Result<Option<Json>, String> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let value = match item {
            Element::Null => Some(Json::Null),
            Element::Text(text) => element.encode(&text)?,
            Element::Array(items) => encode_elements(element, items)?,
        };
        // One element Debezium cannot carry makes the whole array verbatim text.
        let Some(value) = value else {
            return Ok(None);
        };
        out.push(value);
    }
    Ok(Some(Json::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(oid: u32, typmod: i32, text: &str) -> String {
        match ColumnType::of(oid, typmod).encode(text) {
            Ok(Some(json)) => String::from_utf8(json.to_bytes()).expect("UTF-8"),
            Ok(None) => "<not representable>".to_owned(),
            Err(reason) => format!("<error: {reason}>"),
        }
    }

    fn numeric_typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | (scale & 0x7ff)) + 4
    }

    #[test]
    fn integers_and_booleans_are_json_numbers_and_booleans() {
        assert_eq!(encode(21, -1, "-32768"), "-32768");
        assert_eq!(encode(23, -1, "2147483647"), "2147483647");
        assert_eq!(
            encode(20, -1, "-9223372036854775808"),
            "-9223372036854775808"
        );
        assert_eq!(encode(26, -1, "4294967295"), "4294967295");
        assert_eq!(encode(16, -1, "t"), "true");
        assert_eq!(encode(16, -1, "f"), "false");
        assert!(encode(21, -1, "40000").starts_with("<error"));
    }

    #[test]
    fn floats_carry_nan_and_infinities_as_strings() {
        assert_eq!(encode(701, -1, "1.5"), "1.5");
        assert_eq!(encode(700, -1, "1.1"), "1.1");
        assert_eq!(encode(701, -1, "1e+20"), "1e+20");
        assert_eq!(encode(701, -1, "-1.00000002e-05"), "-0.0000100000002");
        assert_eq!(encode(700, -1, "NaN"), r#""NaN""#);
        assert_eq!(encode(701, -1, "Infinity"), r#""Infinity""#);
        assert_eq!(encode(701, -1, "-Infinity"), r#""-Infinity""#);
    }

    #[test]
    fn numeric_with_a_scale_is_a_connect_decimal_of_that_scale() {
        let typmod = numeric_typmod(10, 4);
        assert_eq!(
            ColumnType::of(1700, typmod),
            ColumnType::Decimal {
                precision: 10,
                scale: 4
            }
        );
        // -0.0010 at scale 4 is unscaled -10 = 0xF6.
        assert_eq!(encode(1700, typmod, "-0.0010"), r#""9g==""#);
        assert_eq!(encode(1700, typmod, "NaN"), "<not representable>");
        assert_eq!(encode(1700, typmod, "Infinity"), "<not representable>");
    }

    #[test]
    fn numeric_without_a_scale_is_a_variable_scale_decimal() {
        assert_eq!(encode(1700, -1, "123"), r#"{"scale":0,"value":"ew=="}"#);
        assert_eq!(encode(1700, -1, "1.50"), r#"{"scale":2,"value":"AJY="}"#);
        assert_eq!(encode(1700, -1, "NaN"), "<not representable>");
        assert_eq!(
            ColumnType::of(1700, numeric_typmod(3, -2)),
            ColumnType::VariableDecimal
        );
    }

    #[test]
    fn money_is_a_decimal_of_scale_two() {
        // 123456 = 0x01E240
        assert_eq!(encode(790, -1, "$1,234.56"), r#""AeJA""#);
        assert_eq!(encode(790, -1, "-$0.01"), r#""/w==""#);
    }

    #[test]
    fn bytea_hex_output_becomes_base64() {
        assert_eq!(encode(17, -1, "\\x"), r#""""#);
        assert_eq!(encode(17, -1, "\\xdeadbeef"), r#""3q2+7w==""#);
        assert!(encode(17, -1, "deadbeef").starts_with("<error"));
    }

    #[test]
    fn strings_and_semantic_strings_pass_through() {
        assert_eq!(encode(25, -1, "é \"x\""), r#""é \"x\"""#);
        assert_eq!(encode(1042, 9, "ab   "), r#""ab   ""#);
        assert_eq!(encode(3802, -1, r#"{"a": 1}"#), r#""{\"a\": 1}""#);
        assert_eq!(
            encode(2950, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            r#""a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11""#
        );
        assert_eq!(encode(869, -1, "10.0.0.1/8"), r#""10.0.0.1/8""#);
        // An enum, domain or extension type: only its OID is known.
        assert_eq!(encode(16_500, -1, "happy"), r#""happy""#);
    }

    #[test]
    fn bits_are_booleans_or_little_endian_bytes() {
        assert_eq!(encode(1560, 1, "1"), "true");
        // 101 = 5; 9 bits need 2 bytes.
        assert_eq!(encode(1560, 9, "000000101"), r#""BQA=""#);
        assert_eq!(encode(1562, 16, "100000000"), r#""AAE=""#);
        assert_eq!(encode(1562, -1, "10110"), r#""10110""#);
    }

    #[test]
    fn dates_are_days_and_times_follow_adaptive_precision() {
        assert_eq!(encode(1082, -1, "2024-03-15"), "19797");
        assert_eq!(encode(1082, -1, "0044-03-15 BC"), "-735160");
        assert_eq!(encode(1082, -1, "infinity"), "<not representable>");
        assert_eq!(encode(1082, -1, "5874897-12-31"), "2145042905");
        assert_eq!(encode(1083, -1, "12:34:56.789012"), "45296789012");
        assert_eq!(encode(1083, 3, "12:34:56.789"), "45296789");
        assert_eq!(encode(1266, -1, "12:34:56.789+05:30"), r#""07:04:56.789Z""#);
        assert_eq!(
            encode(1114, -1, "2024-03-15 12:34:56.5"),
            "1710506096500000"
        );
        assert_eq!(encode(1114, 3, "2024-03-15 12:34:56.5"), "1710506096500");
        assert_eq!(encode(1114, 3, "1969-12-31 23:59:59.999"), "-1");
        assert_eq!(encode(1114, -1, "-infinity"), "<not representable>");
        assert_eq!(
            encode(1184, -1, "2024-03-15 12:34:56.5+00"),
            r#""2024-03-15T12:34:56.5Z""#
        );
        assert_eq!(encode(1184, -1, "infinity"), r#""infinity""#);
    }

    #[test]
    fn intervals_are_microseconds_and_may_be_negative() {
        assert_eq!(encode(1186, -1, "-1 days -00:00:01"), "-86401000000");
        assert_eq!(encode(1186, -1, "1 mon"), "2629800000000");
    }

    #[test]
    fn arrays_map_their_elements_and_keep_nulls_and_dimensions() {
        assert_eq!(encode(1007, -1, "{{1,NULL},{3,4}}"), "[[1,null],[3,4]]");
        assert_eq!(
            encode(1009, -1, r#"{"a b","NULL",NULL,"q\"x\\y",""}"#),
            r#"["a b","NULL",null,"q\"x\\y",""]"#
        );
        assert_eq!(encode(1007, -1, "{}"), "[]");
        assert_eq!(encode(1007, -1, "[0:1]={1,2}"), "[1,2]");
        assert_eq!(
            encode(1185, -1, r#"{{"2024-01-01 00:00:00+00"}}"#),
            r#"[["2024-01-01T00:00:00Z"]]"#
        );
        assert_eq!(encode(1022, -1, "{1.5,NaN}"), r#"[1.5,"NaN"]"#);
        assert_eq!(encode(1001, -1, r#"{"\\x0102"}"#), r#"["AQI="]"#);
        assert_eq!(encode(1231, -1, "{1,NaN}"), "<not representable>");
        // box[] uses ';' as its delimiter: kept as text.
        assert_eq!(encode(1020, -1, "{(1,1),(0,0)}"), r#""{(1,1),(0,0)}""#);
    }

    #[test]
    fn text_that_is_not_of_its_type_is_an_error_not_a_panic() {
        for (oid, text) in [
            (16, "yes"),
            (23, "1.5"),
            (701, "abc"),
            (1700, "1e5"),
            (1082, "2024-02-30x"),
            (1186, "1 fortnight"),
            (1007, "{1,"),
            (1007, "{a}"),
        ] {
            assert!(
                encode(oid, -1, text).starts_with("<error"),
                "{oid} {text:?}"
            );
        }
    }
}
