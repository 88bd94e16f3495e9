//! Intervals in IntervalStyle=postgres: `1 year 2 mons -3 days +04:05:06.7`, `-00:00:01`,
//! `178000000 years`, `infinity`.

use super::temporal::{clock, number};

/// An `interval` as Postgres stores it: months, days and microseconds, each with its own sign
/// and never folded into one another, since a month has no fixed number of days (nor a day,
/// across a daylight-saving change, a fixed number of hours).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Interval {
    /// Months, a year counting 12.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds: the `HH:MM:SS.ffffff` part.
    pub micros: i64,
}

impl Interval {
    /// `infinity` (Postgres 17 and later), which Postgres stores as every field at its maximum.
    pub const INFINITY: Interval = Interval {
        months: i32::MAX,
        days: i32::MAX,
        micros: i64::MAX,
    };

    /// `-infinity` (Postgres 17 and later), which Postgres stores as every field at its minimum.
    pub const NEGATIVE_INFINITY: Interval = Interval {
        months: i32::MIN,
        days: i32::MIN,
        micros: i64::MIN,
    };
}

/// The fields of an interval's text, in the order Postgres writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Years,
    Months,
    Days,
    Time,
}

/// Parses an `interval` into the fields Postgres stores. The text is Postgres's output:
/// `[±N year[s]] [±N mon[s]] [±N day[s]] [±]H:MM:SS[.ffffff]`, each part at most once and in
/// that order, or `infinity` / `-infinity`. A field beyond its stored range is an error.
pub fn parse_interval_parts(text: &str) -> Result<Interval, String> {
    match text {
        "infinity" => return Ok(Interval::INFINITY),
        "-infinity" => return Ok(Interval::NEGATIVE_INFINITY),
        _ => {}
    }
    let invalid = |why: String| format!("interval {text:?}: {why}");
    // In i128, where no sum of i64 amounts overflows; the ranges are checked at the end.
    let (mut months, mut days, mut micros) = (0_i128, 0_i128, 0_i128);
    let mut last = None;
    let mut tokens = text.split(' ');
    while let Some(token) = tokens.next() {
        let (negative, magnitude) = match token.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, token.strip_prefix('+').unwrap_or(token)),
        };
        let (field, amount) = if magnitude.contains(':') {
            (Field::Time, clock(magnitude).map_err(invalid)?)
        } else {
            let amount: i64 = number(magnitude, "field").map_err(invalid)?;
            let field = match tokens.next() {
                Some("year" | "years") => Field::Years,
                Some("mon" | "mons") => Field::Months,
                Some("day" | "days") => Field::Days,
                Some(unit) => return Err(invalid(format!("unknown unit {unit:?}"))),
                None => return Err(invalid(format!("{token} has no unit"))),
            };
            (field, i128::from(amount))
        };
        if last >= Some(field) {
            return Err(invalid(format!("{token} is out of place")));
        }
        last = Some(field);
        let amount = if negative { -amount } else { amount };
        match field {
            Field::Years => months += 12 * amount,
            Field::Months => months += amount,
            Field::Days => days = amount,
            Field::Time => micros = amount,
        }
    }
    let out_of_range = |what: &str| invalid(format!("{what} out of range"));
    Ok(Interval {
        months: i32::try_from(months).map_err(|_| out_of_range("months"))?,
        days: i32::try_from(days).map_err(|_| out_of_range("days"))?,
        micros: i64::try_from(micros).map_err(|_| out_of_range("time"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(months: i32, days: i32, micros: i64) -> Result<Interval, String> {
        Ok(Interval {
            months,
            days,
            micros,
        })
    }

    #[test]
    fn each_unit_lands_in_its_own_field() {
        assert_eq!(parse_interval_parts("00:00:00"), interval(0, 0, 0));
        assert_eq!(parse_interval_parts("1 year"), interval(12, 0, 0));
        assert_eq!(parse_interval_parts("2 years 1 mon"), interval(25, 0, 0));
        assert_eq!(
            parse_interval_parts("-1 years -2 mons"),
            interval(-14, 0, 0)
        );
        assert_eq!(parse_interval_parts("3 days"), interval(0, 3, 0));
        assert_eq!(parse_interval_parts("1 day"), interval(0, 1, 0));
        assert_eq!(
            parse_interval_parts("178000000 years"),
            interval(2_136_000_000, 0, 0)
        );
    }

    #[test]
    fn signs_are_per_field_and_not_folded() {
        assert_eq!(
            parse_interval_parts("1 year 2 mons -3 days +04:05:06.7"),
            interval(14, -3, 14_706_700_000)
        );
        assert_eq!(
            parse_interval_parts("-1 days +00:00:01"),
            interval(0, -1, 1_000_000)
        );
        // 30 days stay days and 24 hours stay time: Postgres folds neither.
        assert_eq!(
            parse_interval_parts("1 mon 30 days 24:00:00"),
            interval(1, 30, 86_400_000_000)
        );
    }

    #[test]
    fn the_time_part_may_be_negative_fractional_and_past_a_day() {
        assert_eq!(
            parse_interval_parts("-00:00:01"),
            interval(0, 0, -1_000_000)
        );
        assert_eq!(
            parse_interval_parts("-00:00:00.5"),
            interval(0, 0, -500_000)
        );
        assert_eq!(parse_interval_parts("00:00:00.000001"), interval(0, 0, 1));
        assert_eq!(
            parse_interval_parts("-1 days -00:00:01"),
            interval(0, -1, -1_000_000)
        );
        assert_eq!(
            parse_interval_parts("100:30:00"),
            interval(0, 0, 361_800_000_000)
        );
    }

    #[test]
    fn the_largest_and_smallest_intervals_fill_every_field() {
        assert_eq!(
            parse_interval_parts("178956970 years 7 mons 2147483647 days 2562047788:00:54.775807"),
            interval(i32::MAX, i32::MAX, i64::MAX)
        );
        assert_eq!(
            parse_interval_parts(
                "-178956970 years -8 mons -2147483648 days -2562047788:00:54.775808"
            ),
            interval(i32::MIN, i32::MIN, i64::MIN)
        );
        assert_eq!(parse_interval_parts("infinity"), Ok(Interval::INFINITY));
        assert_eq!(
            parse_interval_parts("-infinity"),
            Ok(Interval::NEGATIVE_INFINITY)
        );
    }

    #[test]
    fn fields_beyond_their_range_are_errors_naming_the_text() {
        for text in [
            "178956970 years 8 mons",
            "2147483648 days",
            "-2147483649 days",
            "2562047788:00:54.775808",
            "99999999999999999999 years",
        ] {
            match parse_interval_parts(text) {
                Err(reason) => assert!(reason.contains(&format!("{text:?}")), "{reason}"),
                Ok(parts) => panic!("{text:?} parsed as {parts:?}"),
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            " ",
            "-",
            "+",
            "3",
            "3 fortnights",
            "year 3",
            "1 day 1 year",
            "1 day 2 days",
            "00:00:01 1 day",
            "1 day  00:00:01",
            "--00:00:01",
            "+-1 days",
            "00:60:00",
            "00:00:00.1234567",
            "00:00:00.",
            "1:2",
            "é days",
            "Infinity",
        ] {
            match parse_interval_parts(text) {
                Err(reason) => assert!(reason.contains(&format!("{text:?}")), "{reason}"),
                Ok(parts) => panic!("{text:?} parsed as {parts:?}"),
            }
        }
    }
}
