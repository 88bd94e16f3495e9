//! A table's columns as Arrow types, and Postgres's canonical text of a value as an Arrow value.
//!
//! | Postgres | Arrow |
//! |---|---|
//! | `int2`, `int4`, `int8` (and `oid`) | `Int16`, `Int32`, `Int64` |
//! | `numeric(p, s)`, p ≤ 38, s ≥ 0 | `Decimal128(p, s)` |
//! | `numeric` without a precision | `Utf8` (its exact text) |
//! | `float4`, `float8` | `Float32`, `Float64` (NaN and ±Infinity included) |
//! | `bool` | `Boolean` |
//! | `bytea` | `Binary` |
//! | `date` | `Date32` |
//! | `time` | `Time64(µs)` |
//! | `timestamp` | `Timestamp(µs)` |
//! | `timestamptz` | `Timestamp(µs, "UTC")` |
//! | `interval` | `Struct { months: Int32, days: Int32, microseconds: Int64 }` |
//! | one-dimensional arrays of the above | `List` of the element's type |
//! | everything else (text, uuid, json, jsonb, inet, enums, …) | `Utf8` |
//!
//! A value its typed column cannot hold — a `NaN` numeric, an infinite date or timestamp, a
//! multi-dimensional array — is never dropped: the column holds NULL and the row's `_raw`
//! column holds the column's name and exact text ([`crate::rows`]).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, StringBuilder,
    StructArray, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use walproof_core::pg_text::{self, Element, MaybeInfinite};

/// The largest precision of a `Decimal128`.
const MAX_DECIMAL_PRECISION: u32 = 38;

/// How a column is archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// `bool`.
    Boolean,
    /// `int2`.
    Int16,
    /// `int4`.
    Int32,
    /// `int8`, `oid`.
    Int64,
    /// `float4`.
    Float32,
    /// `float8`.
    Float64,
    /// `numeric(precision, scale)`.
    Decimal {
        /// Digits in all.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// `bytea`.
    Binary,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`, in UTC.
    TimestampTz,
    /// `interval`: months, days and microseconds, as Postgres keeps them.
    Interval,
    /// A one-dimensional array.
    List(Box<ColumnType>),
    /// Anything else, as its canonical text.
    Text,
}

impl ColumnType {
    /// The archived type of a column of `pg_type` `oid` with `atttypmod` `typmod`.
    pub fn of(oid: u32, typmod: i32) -> ColumnType {
        match oid {
            16 => ColumnType::Boolean,
            21 => ColumnType::Int16,
            23 => ColumnType::Int32,
            20 | 26 => ColumnType::Int64,
            700 => ColumnType::Float32,
            701 => ColumnType::Float64,
            // Postgres 15+ also allows a negative scale or one above the precision, which
            // Decimal128 does not: those stay text.
            1700 => match pg_text::numeric_typmod(typmod) {
                Some((precision, scale))
                    if (1..=MAX_DECIMAL_PRECISION).contains(&precision)
                        && (0..=precision as i32).contains(&scale) =>
                {
                    ColumnType::Decimal {
                        precision: precision as u8,
                        scale: scale as i8,
                    }
                }
                _ => ColumnType::Text,
            },
            17 => ColumnType::Binary,
            1082 => ColumnType::Date,
            1083 => ColumnType::Time,
            1114 => ColumnType::Timestamp,
            1184 => ColumnType::TimestampTz,
            1186 => ColumnType::Interval,
            _ => match pg_text::array_element(oid) {
                Some(element) => ColumnType::List(Box::new(ColumnType::of(element, typmod))),
                None => ColumnType::Text,
            },
        }
    }

    /// The Arrow type.
    pub fn data_type(&self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int16 => DataType::Int16,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColumnType::Binary => DataType::Binary,
            ColumnType::Date => DataType::Date32,
            ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnType::Interval => DataType::Struct(interval_fields()),
            ColumnType::List(element) => {
                DataType::List(Arc::new(Field::new("element", element.data_type(), true)))
            }
            ColumnType::Text => DataType::Utf8,
        }
    }

    /// The value of `text` in this type, `None` when the type cannot hold it.
    fn parse<'a>(&self, text: &'a str) -> Option<Scalar<'a>> {
        Some(match self {
            ColumnType::Boolean => match text {
                "t" => Scalar::Boolean(true),
                "f" => Scalar::Boolean(false),
                _ => return None,
            },
            ColumnType::Int16 => Scalar::Int16(text.parse().ok()?),
            ColumnType::Int32 => Scalar::Int32(text.parse().ok()?),
            ColumnType::Int64 => Scalar::Int64(text.parse().ok()?),
            ColumnType::Float32 => Scalar::Float32(text.parse().ok()?),
            ColumnType::Float64 => Scalar::Float64(text.parse().ok()?),
            ColumnType::Decimal { precision, scale } => {
                Scalar::Decimal(scaled_decimal(text, *precision, *scale)?)
            }
            ColumnType::Binary => Scalar::Binary(hex_bytea(text)?),
            ColumnType::Date => match pg_text::parse_date(text).ok()? {
                MaybeInfinite::Finite(days) => Scalar::Int32(i32::try_from(days).ok()?),
                _ => return None,
            },
            // `24:00:00` is a Postgres time but not an Arrow one (below a day): raw.
            ColumnType::Time => match pg_text::parse_time(text).ok()? {
                micros if micros < 86_400_000_000 => Scalar::Int64(micros),
                _ => return None,
            },
            ColumnType::Timestamp => match pg_text::parse_timestamp(text).ok()? {
                MaybeInfinite::Finite(micros) => Scalar::Int64(micros),
                _ => return None,
            },
            ColumnType::TimestampTz => match pg_text::parse_timestamptz(text).ok()? {
                MaybeInfinite::Finite(micros) => Scalar::Int64(micros),
                _ => return None,
            },
            ColumnType::Interval => match pg_text::parse_interval_parts(text).ok()? {
                // Postgres 17's ±infinity, like infinite dates: raw.
                infinite
                    if infinite == pg_text::Interval::INFINITY
                        || infinite == pg_text::Interval::NEGATIVE_INFINITY =>
                {
                    return None;
                }
                interval => Scalar::Interval(interval.months, interval.days, interval.micros),
            },
            ColumnType::List(element) => {
                // Explicit lower bounds (`[0:1]={…}`) have no place in a list: raw.
                if text.starts_with('[') {
                    return None;
                }
                let elements = pg_text::parse_array(text).ok()?;
                let mut values = Vec::with_capacity(elements.len());
                for element_text in elements {
                    values.push(match element_text {
                        Element::Null => None,
                        Element::Text(text) => Some(element.parse(&text)?.into_owned()),
                        Element::Array(_) => return None,
                    });
                }
                Scalar::List(values)
            }
            ColumnType::Text => Scalar::Text(std::borrow::Cow::Borrowed(text)),
        })
    }
}

fn interval_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("microseconds", DataType::Int64, false),
    ])
}

/// A value parsed for its column.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Boolean(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Decimal(i128),
    Binary(Vec<u8>),
    Interval(i32, i32, i64),
    List(Vec<Option<Scalar<'static>>>),
    Text(std::borrow::Cow<'a, str>),
}

impl Scalar<'_> {
    fn into_owned(self) -> Scalar<'static> {
        match self {
            Scalar::Boolean(v) => Scalar::Boolean(v),
            Scalar::Int16(v) => Scalar::Int16(v),
            Scalar::Int32(v) => Scalar::Int32(v),
            Scalar::Int64(v) => Scalar::Int64(v),
            Scalar::Float32(v) => Scalar::Float32(v),
            Scalar::Float64(v) => Scalar::Float64(v),
            Scalar::Decimal(v) => Scalar::Decimal(v),
            Scalar::Binary(v) => Scalar::Binary(v),
            Scalar::Interval(m, d, u) => Scalar::Interval(m, d, u),
            Scalar::List(v) => Scalar::List(v),
            Scalar::Text(v) => Scalar::Text(std::borrow::Cow::Owned(v.into_owned())),
        }
    }
}

/// `numeric(precision, scale)` text as the unscaled integer of a `Decimal128`: Postgres prints
/// such a column with exactly `scale` digits after the point (fewer are padded here). `None`
/// for `NaN`, ±Infinity or more digits than the precision.
fn scaled_decimal(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    if whole.is_empty()
        || fraction.len() > scale
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() + scale > usize::from(precision) {
        return None;
    }
    let mut value: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        value = value * 10 + i128::from(b - b'0');
    }
    for _ in fraction.len()..scale {
        value *= 10;
    }
    Some(if negative { -value } else { value })
}

/// `bytea` in hex output (`\x0a1b`).
fn hex_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    hex.chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Builds an interval column: months, days, microseconds.
#[derive(Debug, Default)]
pub(crate) struct IntervalBuilder {
    months: Int32Builder,
    days: Int32Builder,
    micros: Int64Builder,
    /// Which rows are not NULL.
    valid: Vec<bool>,
}

/// Builds one column of one type.
#[derive(Debug)]
pub(crate) enum ColumnBuilder {
    /// `Boolean`.
    Boolean(BooleanBuilder),
    /// `Int16`.
    Int16(Int16Builder),
    /// `Int32`.
    Int32(Int32Builder),
    /// `Int64`.
    Int64(Int64Builder),
    /// `Float32`.
    Float32(Float32Builder),
    /// `Float64`.
    Float64(Float64Builder),
    /// `Decimal128`.
    Decimal(Decimal128Builder, u8, i8),
    /// `Binary`.
    Binary(BinaryBuilder),
    /// `Date32`.
    Date(Date32Builder),
    /// `Time64(µs)`.
    Time(Time64MicrosecondBuilder),
    /// `Timestamp(µs)`, with a zone or without.
    Timestamp(TimestampMicrosecondBuilder, bool),
    /// The interval struct.
    Interval(Box<IntervalBuilder>),
    /// A list.
    List {
        /// The element type.
        element: ColumnType,
        /// Where each list ends in `values`.
        offsets: Vec<i32>,
        /// Which rows are not NULL.
        valid: Vec<bool>,
        /// The elements.
        values: Box<ColumnBuilder>,
    },
    /// `Utf8`.
    Text(StringBuilder),
}

impl ColumnBuilder {
    /// An empty builder for `column`.
    pub(crate) fn new(column: &ColumnType) -> ColumnBuilder {
        match column {
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
            ColumnType::Int16 => ColumnBuilder::Int16(Int16Builder::new()),
            ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            ColumnType::Float32 => ColumnBuilder::Float32(Float32Builder::new()),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::new()),
            ColumnType::Decimal { precision, scale } => {
                ColumnBuilder::Decimal(Decimal128Builder::new(), *precision, *scale)
            }
            ColumnType::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::new()),
            ColumnType::Time => ColumnBuilder::Time(Time64MicrosecondBuilder::new()),
            ColumnType::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new(), false)
            }
            ColumnType::TimestampTz => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new(), true)
            }
            ColumnType::Interval => ColumnBuilder::Interval(Box::default()),
            ColumnType::List(element) => ColumnBuilder::List {
                element: (**element).clone(),
                offsets: vec![0],
                valid: Vec::new(),
                values: Box::new(ColumnBuilder::new(element)),
            },
            ColumnType::Text => ColumnBuilder::Text(StringBuilder::new()),
        }
    }

    /// Appends `text` (`None`: NULL) parsed for `column`; `false` when the type cannot hold it
    /// (NULL is appended then, and the caller keeps the text).
    pub(crate) fn append(&mut self, column: &ColumnType, text: Option<&str>) -> bool {
        let Some(text) = text else {
            self.append_null();
            return true;
        };
        match column.parse(text) {
            Some(value) => {
                self.append_scalar(value);
                true
            }
            None => {
                self.append_null();
                false
            }
        }
    }

    /// Appends NULL.
    pub(crate) fn append_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b, ..) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Interval(b) => {
                b.months.append_value(0);
                b.days.append_value(0);
                b.micros.append_value(0);
                b.valid.push(false);
            }
            ColumnBuilder::List { offsets, valid, .. } => {
                let end = offsets.last().copied().unwrap_or(0);
                offsets.push(end);
                valid.push(false);
            }
            ColumnBuilder::Text(b) => b.append_null(),
        }
    }

    fn append_scalar(&mut self, value: Scalar<'_>) {
        match (self, value) {
            (ColumnBuilder::Boolean(b), Scalar::Boolean(v)) => b.append_value(v),
            (ColumnBuilder::Int16(b), Scalar::Int16(v)) => b.append_value(v),
            (ColumnBuilder::Int32(b), Scalar::Int32(v)) => b.append_value(v),
            (ColumnBuilder::Date(b), Scalar::Int32(v)) => b.append_value(v),
            (ColumnBuilder::Int64(b), Scalar::Int64(v)) => b.append_value(v),
            (ColumnBuilder::Time(b), Scalar::Int64(v)) => b.append_value(v),
            (ColumnBuilder::Timestamp(b, _), Scalar::Int64(v)) => b.append_value(v),
            (ColumnBuilder::Float32(b), Scalar::Float32(v)) => b.append_value(v),
            (ColumnBuilder::Float64(b), Scalar::Float64(v)) => b.append_value(v),
            (ColumnBuilder::Decimal(b, ..), Scalar::Decimal(v)) => b.append_value(v),
            (ColumnBuilder::Binary(b), Scalar::Binary(v)) => b.append_value(v),
            (ColumnBuilder::Interval(b), Scalar::Interval(m, d, u)) => {
                b.months.append_value(m);
                b.days.append_value(d);
                b.micros.append_value(u);
                b.valid.push(true);
            }
            (
                ColumnBuilder::List {
                    offsets,
                    valid,
                    values,
                    ..
                },
                Scalar::List(items),
            ) => {
                let count = items.len();
                for item in items {
                    match item {
                        Some(item) => values.append_scalar(item),
                        None => values.append_null(),
                    }
                }
                let end = offsets.last().copied().unwrap_or(0);
                offsets.push(end + i32::try_from(count).unwrap_or(i32::MAX));
                valid.push(true);
            }
            (ColumnBuilder::Text(b), Scalar::Text(v)) => b.append_value(v),
            (builder, value) => {
                // `parse` gives each type its own scalar: a mismatch is a bug here.
                debug_assert!(false, "{value:?} does not fit {builder:?}");
                builder.append_null();
            }
        }
    }

    /// The column built so far (the builder starts again empty).
    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*precision, *scale)
                    .expect("precision and scale checked when the column type was chosen"),
            ),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Time(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, zoned) => {
                let array = b.finish();
                Arc::new(if *zoned {
                    array.with_timezone("UTC")
                } else {
                    array
                })
            }
            ColumnBuilder::Interval(b) => {
                let nulls = NullBuffer::from(std::mem::take(&mut b.valid));
                Arc::new(StructArray::new(
                    interval_fields(),
                    vec![
                        Arc::new(b.months.finish()),
                        Arc::new(b.days.finish()),
                        Arc::new(b.micros.finish()),
                    ],
                    Some(nulls),
                ))
            }
            ColumnBuilder::List {
                element,
                offsets,
                valid,
                values,
            } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                let values = values.finish();
                Arc::new(ListArray::new(
                    Arc::new(Field::new("element", element.data_type(), true)),
                    offsets,
                    values,
                    Some(nulls),
                ))
            }
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array as _, AsArray as _, Decimal128Array};
    use arrow::datatypes::{Date32Type, Float64Type, Int32Type, Int64Type};

    fn build(column: &ColumnType, texts: &[Option<&str>]) -> (ArrayRef, Vec<bool>) {
        let mut builder = ColumnBuilder::new(column);
        let held = texts.iter().map(|t| builder.append(column, *t)).collect();
        let array = builder.finish();
        assert_eq!(array.data_type(), &column.data_type());
        (array, held)
    }

    #[test]
    fn types_follow_the_oid_and_the_numeric_typmod() {
        assert_eq!(ColumnType::of(23, -1), ColumnType::Int32);
        // numeric(10,2): typmod = (10 << 16 | 2) + 4.
        assert_eq!(
            ColumnType::of(1700, (10 << 16 | 2) + 4),
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(ColumnType::of(1700, -1), ColumnType::Text);
        assert_eq!(ColumnType::of(1700, (39 << 16) + 4), ColumnType::Text);
        // numeric(3, 5) and numeric(5, -2) (Postgres 15+): no Decimal128 holds them.
        assert_eq!(ColumnType::of(1700, (3 << 16 | 5) + 4), ColumnType::Text);
        assert_eq!(
            ColumnType::of(1700, (5 << 16 | 0x7fe) + 4),
            ColumnType::Text
        );
        assert_eq!(
            ColumnType::of(1007, -1),
            ColumnType::List(Box::new(ColumnType::Int32))
        );
        assert_eq!(ColumnType::of(2950, -1), ColumnType::Text, "uuid");
        assert_eq!(ColumnType::of(3802, -1), ColumnType::Text, "jsonb");
        assert_eq!(ColumnType::of(99_999, -1), ColumnType::Text, "unknown");
    }

    #[test]
    fn numbers_keep_their_exact_value_and_what_does_not_fit_is_refused() {
        let decimal = ColumnType::Decimal {
            precision: 6,
            scale: 2,
        };
        let (array, held) = build(
            &decimal,
            &[
                Some("1234.50"),
                Some("-0.07"),
                Some("NaN"),
                None,
                Some("12345.00"),
            ],
        );
        assert_eq!(held, [true, true, false, true, false]);
        let array: &Decimal128Array = array.as_primitive();
        assert_eq!(array.value(0), 123_450);
        assert_eq!(array.value(1), -7);
        assert!(array.is_null(2) && array.is_null(3) && array.is_null(4));

        let (array, held) = build(
            &ColumnType::Float64,
            &[
                Some("NaN"),
                Some("Infinity"),
                Some("-Infinity"),
                Some("-0"),
                Some("1e-310"),
            ],
        );
        assert!(held.iter().all(|h| *h));
        let array = array.as_primitive::<Float64Type>();
        assert!(array.value(0).is_nan());
        assert_eq!(array.value(1), f64::INFINITY);
        assert_eq!(array.value(2), f64::NEG_INFINITY);
        assert!(array.value(3) == 0.0 && array.value(3).is_sign_negative());

        let (_, held) = build(
            &ColumnType::Int32,
            &[Some("2147483647"), Some("2147483648")],
        );
        assert_eq!(held, [true, false]);
    }

    #[test]
    fn dates_times_and_intervals_become_arrow_temporals() {
        let (array, held) = build(
            &ColumnType::Date,
            &[Some("1970-01-02"), Some("0044-03-15 BC"), Some("infinity")],
        );
        assert_eq!(held, [true, true, false]);
        let array = array.as_primitive::<Date32Type>();
        assert_eq!(array.value(0), 1);
        assert!(array.value(1) < -700_000);

        let (array, held) = build(
            &ColumnType::TimestampTz,
            &[Some("1970-01-01 00:00:01.5+00"), Some("-infinity")],
        );
        assert_eq!(held, [true, false]);
        assert_eq!(
            array.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            array
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(0),
            1_500_000
        );

        let (_, held) = build(
            &ColumnType::Time,
            &[Some("23:59:59.999999"), Some("24:00:00")],
        );
        assert_eq!(held, [true, false], "24:00:00 is no Arrow time");

        let (array, held) = build(
            &ColumnType::Interval,
            &[Some("1 year 2 mons -3 days +04:05:06.5"), None],
        );
        assert_eq!(held, [true, true]);
        let (_, held) = build(
            &ColumnType::Interval,
            &[Some("infinity"), Some("-infinity")],
        );
        assert_eq!(held, [false, false]);
        let array = array.as_struct();
        assert_eq!(array.column(0).as_primitive::<Int32Type>().value(0), 14);
        assert_eq!(array.column(1).as_primitive::<Int32Type>().value(0), -3);
        assert_eq!(
            array.column(2).as_primitive::<Int64Type>().value(0),
            (4 * 3600 + 5 * 60 + 6) * 1_000_000 + 500_000
        );
        assert!(array.is_null(1));
    }

    #[test]
    fn arrays_become_lists_with_null_elements_and_bytea_becomes_binary() {
        let list = ColumnType::List(Box::new(ColumnType::Int32));
        let (array, held) = build(
            &list,
            &[
                Some("{1,NULL,3}"),
                Some("{}"),
                None,
                Some("{{1,2},{3,4}}"),
                Some("{x}"),
                Some("[0:1]={1,2}"),
            ],
        );
        assert_eq!(held, [true, true, true, false, false, false]);
        let array = array.as_list::<i32>();
        assert_eq!(array.value_length(0), 3);
        assert!(array.value(0).is_null(1));
        assert_eq!(array.value(0).as_primitive::<Int32Type>().value(2), 3);
        assert_eq!(array.value_length(1), 0);
        assert!(array.is_null(2) && array.is_null(3) && array.is_null(4));

        let (array, held) = build(&ColumnType::Binary, &[Some("\\x00ff10"), Some("\\xzz")]);
        assert_eq!(held, [true, false]);
        assert_eq!(array.as_binary::<i32>().value(0), [0x00, 0xff, 0x10]);
    }
}
