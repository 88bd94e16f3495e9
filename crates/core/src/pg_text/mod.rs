//! Postgres's text output of values, parsed: dates, times, timestamps, intervals, arrays,
//! `numeric` and `money`; and what a column's type OID and typmod say about that text. The text is what Postgres writes under
//! [`CANONICAL_SESSION_SETTINGS`](crate::CANONICAL_SESSION_SETTINGS): DateStyle=ISO,
//! TimeZone=UTC, IntervalStyle=postgres, extra_float_digits=3, bytea_output=hex (and
//! lc_monetary=C for `money`). Pure functions; any text gives a value or an error naming it,
//! never a panic.

mod array;
mod interval;
mod numeric;
mod temporal;
mod types;

pub use array::{Element, parse_array};
pub use interval::{Interval, parse_interval_parts};
pub use numeric::{Decimal, Numeric, parse_money, parse_numeric};
pub use temporal::{
    MaybeInfinite, civil_from_days, parse_date, parse_time, parse_timestamp, parse_timestamptz,
    parse_timetz,
};
pub use types::{array_element, numeric_typmod};
