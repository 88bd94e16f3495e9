//! Dates, times and timestamps in DateStyle=ISO with TimeZone=UTC: `2024-03-15`,
//! `0044-03-15 BC`, `12:34:56.789`, `12:34:56+05:30`, `2024-03-15 12:34:56.5+00`, `infinity`.

use std::str::FromStr;

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;

/// A date or timestamp: a finite value, or one of Postgres's infinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaybeInfinite<T> {
    /// A finite value.
    Finite(T),
    /// `infinity`: later than every finite value.
    Infinity,
    /// `-infinity`: earlier than every finite value.
    NegativeInfinity,
}

fn special<T>(text: &str) -> Option<MaybeInfinite<T>> {
    match text {
        "infinity" => Some(MaybeInfinite::Infinity),
        "-infinity" => Some(MaybeInfinite::NegativeInfinity),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is year 0).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 {
        i64::from(year) - 1
    } else {
        i64::from(year)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01; the year is
/// astronomical (1 BC is year 0, 2 BC is year -1).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // In i128: shifting the epoch to 0000-03-01 would overflow at the ends of i64.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    // A year is fewer than a day count, and month and day are small: the casts are exact.
    (year as i64, month as u32, day as u32)
}

/// Parses a run of ASCII digits; `what` names the field in the error.
pub(super) fn number<T: FromStr>(text: &str, what: &str) -> Result<T, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a number"));
    }
    text.parse()
        .map_err(|_| format!("{what} {text:?} is out of range"))
}

/// `H:MM:SS[.ffffff]`, with as many hour digits as there are, to microseconds.
pub(super) fn clock(text: &str) -> Result<i128, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(h), Some(m), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not HH:MM:SS"));
    };
    let hours: i64 = number(h, "hour")?;
    let minutes: i64 = number(m, "minute")?;
    let (whole, fraction) = match s.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (s, None),
    };
    let seconds: i64 = number(whole, "second")?;
    let micros: i64 = match fraction {
        None => 0,
        Some(fraction) if fraction.len() <= 6 => {
            number::<i64>(fraction, "fraction")? * 10_i64.pow(6 - fraction.len() as u32)
        }
        Some(_) => return Err(format!("{text:?} has more than 6 fractional digits")),
    };
    if minutes > 59 || seconds > 60 {
        return Err(format!("{text:?} is not a valid time"));
    }
    let seconds = (i128::from(hours) * 60 + i128::from(minutes)) * 60 + i128::from(seconds);
    Ok(seconds * MICROS_PER_SECOND + i128::from(micros))
}

/// Strips a trailing ` BC`, returning whether it was there.
fn strip_era(text: &str) -> (&str, bool) {
    match text.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (text, false),
    }
}

/// `YYYY-MM-DD` (year of 4 or more digits) to days since the epoch; `bc` flips the era.
fn parse_ymd(text: &str, bc: bool) -> Result<i64, String> {
    let mut parts = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not YYYY-MM-DD"));
    };
    let year: i32 = number(y, "year")?;
    let month: u32 = number(m, "month")?;
    let day: u32 = number(d, "day")?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year == 0 {
        return Err(format!("{text:?} is not a valid date"));
    }
    // Year n BC is astronomical year 1 - n.
    let year = if bc { 1 - year } else { year };
    Ok(days_from_civil(year, month, day))
}

/// Parses a `date`: days since 1970-01-01, proleptic Gregorian (`0044-03-15 BC` is -735160).
pub fn parse_date(text: &str) -> Result<MaybeInfinite<i64>, String> {
    if let Some(special) = special(text) {
        return Ok(special);
    }
    let (text, bc) = strip_era(text);
    parse_ymd(text, bc).map(MaybeInfinite::Finite)
}

/// Parses a `time` (`HH:MM:SS[.ffffff]`): microseconds since midnight, from 0 to
/// `24:00:00` inclusive, since Postgres allows the end of the day.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let micros = clock(text)?;
    if micros > MICROS_PER_DAY {
        return Err(format!("{text:?} is after 24:00:00"));
    }
    Ok(micros as i64)
}

/// Splits `±HH[:MM[:SS]]` off the end of a time, returning the time and the offset in seconds.
fn split_offset(text: &str) -> Result<(&str, i64), String> {
    let at = text
        .rfind(['+', '-'])
        .ok_or_else(|| format!("{text:?} has no UTC offset"))?;
    let (time, offset) = text.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut seconds = 0;
    for (i, part) in offset[1..].split(':').enumerate() {
        if i > 2 {
            return Err(format!("offset {offset:?} is not ±HH[:MM[:SS]]"));
        }
        let value: u8 = number(part, "offset")?;
        seconds += i64::from(value) * [3600, 60, 1][i];
    }
    Ok((time, sign * seconds))
}

/// Parses a `timetz` (`HH:MM:SS[.ffffff]±HH[:MM[:SS]]`): microseconds since midnight UTC,
/// wrapped into one day since a `timetz` has no date to carry the overflow.
pub fn parse_timetz(text: &str) -> Result<i64, String> {
    let (time, offset) = split_offset(text)?;
    let micros = i128::from(parse_time(time)?) - i128::from(offset) * MICROS_PER_SECOND;
    Ok(micros.rem_euclid(MICROS_PER_DAY) as i64)
}

fn date_time(text: &str, bc: bool) -> Result<i128, String> {
    let (date, time) = text
        .split_once(' ')
        .ok_or_else(|| format!("{text:?} is not 'date time'"))?;
    let days = parse_ymd(date, bc)?;
    Ok(i128::from(days) * MICROS_PER_DAY + i128::from(parse_time(time)?))
}

fn to_i64(micros: i128, text: &str) -> Result<i64, String> {
    i64::try_from(micros).map_err(|_| format!("{text:?} is out of the 64-bit microsecond range"))
}

/// Parses a `timestamp` (without time zone): microseconds since 1970-01-01 00:00:00.
pub fn parse_timestamp(text: &str) -> Result<MaybeInfinite<i64>, String> {
    if let Some(special) = special(text) {
        return Ok(special);
    }
    let (local, bc) = strip_era(text);
    to_i64(date_time(local, bc)?, text).map(MaybeInfinite::Finite)
}

/// Parses a `timestamptz`: microseconds since 1970-01-01 00:00:00 UTC, whatever offset the
/// text carries.
pub fn parse_timestamptz(text: &str) -> Result<MaybeInfinite<i64>, String> {
    if let Some(special) = special(text) {
        return Ok(special);
    }
    let (zoned, bc) = strip_era(text);
    let (local, offset) = split_offset(zoned)?;
    let micros = date_time(local, bc)? - i128::from(offset) * MICROS_PER_SECOND;
    to_i64(micros, text).map(MaybeInfinite::Finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_epoch_including_bc_dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(MaybeInfinite::Finite(0)));
        assert_eq!(parse_date("2024-03-15"), Ok(MaybeInfinite::Finite(19797)));
        assert_eq!(parse_date("1969-12-31"), Ok(MaybeInfinite::Finite(-1)));
        // 1 BC is astronomical year 0, a leap year: 1 AD starts 366 days after it.
        assert_eq!(
            parse_date("0001-01-01 BC"),
            Ok(MaybeInfinite::Finite(days_from_civil(0, 1, 1)))
        );
        assert_eq!(days_from_civil(1, 1, 1) - days_from_civil(0, 1, 1), 366);
        assert_eq!(
            parse_date("0044-03-15 BC"),
            Ok(MaybeInfinite::Finite(-735_160))
        );
        assert_eq!(
            parse_date("10000-01-01"),
            Ok(MaybeInfinite::Finite(2_932_897))
        );
        assert_eq!(parse_date("infinity"), Ok(MaybeInfinite::Infinity));
        assert_eq!(parse_date("-infinity"), Ok(MaybeInfinite::NegativeInfinity));
        assert!(parse_date("2024-13-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn civil_and_day_counts_round_trip() {
        for days in [-800_000, -719_468, -1, 0, 1, 19_797, 2_932_897] {
            let (y, m, d) = civil_from_days(days);
            let year = i32::try_from(y).expect("a small year");
            assert_eq!(days_from_civil(year, m, d), days);
        }
        assert_eq!(civil_from_days(-719_529), (-1, 12, 31));
        // The ends of the range do not overflow.
        assert!(civil_from_days(i64::MAX).0 > 0);
        assert!(civil_from_days(i64::MIN).0 < 0);
    }

    #[test]
    fn times_count_microseconds_since_midnight() {
        assert_eq!(parse_time("00:00:00"), Ok(0));
        assert_eq!(parse_time("12:34:56.789"), Ok(45_296_789_000));
        assert_eq!(parse_time("00:00:00.000001"), Ok(1));
        assert_eq!(parse_time("24:00:00"), Ok(86_400_000_000));
        assert!(parse_time("24:00:00.000001").is_err());
        assert!(parse_time("12:34").is_err());
        assert!(parse_time("12:34:56.").is_err());
        assert!(parse_time("12:34:56.1234567").is_err());
        assert!(parse_time("99999999999999999999:00:00").is_err());
    }

    #[test]
    fn times_with_zone_are_normalised_to_utc() {
        assert_eq!(parse_timetz("12:34:56.789+05:30"), Ok(25_496_789_000));
        assert_eq!(parse_timetz("01:00:00+02"), Ok(82_800_000_000));
        assert_eq!(parse_timetz("23:00:00-01"), Ok(0));
        assert_eq!(parse_timetz("00:00:00+05:30:15"), Ok(66_585_000_000));
        assert!(parse_timetz("00:00:00+99999999999999:00").is_err());
    }

    #[test]
    fn timestamps_count_microseconds_from_the_epoch() {
        assert_eq!(
            parse_timestamp("2024-03-15 12:34:56.5"),
            Ok(MaybeInfinite::Finite(1_710_506_096_500_000))
        );
        assert_eq!(
            parse_timestamp("0044-03-15 12:00:00 BC"),
            Ok(MaybeInfinite::Finite(
                -735_160 * 86_400_000_000 + 43_200_000_000
            ))
        );
        assert_eq!(parse_timestamp("infinity"), Ok(MaybeInfinite::Infinity));
        assert_eq!(
            parse_timestamptz("2024-03-15 12:34:56.5+00"),
            Ok(MaybeInfinite::Finite(1_710_506_096_500_000))
        );
        assert_eq!(
            parse_timestamptz("2024-03-15 14:34:56.5+02"),
            Ok(MaybeInfinite::Finite(1_710_506_096_500_000))
        );
        assert_eq!(
            parse_timestamptz("0044-03-15 10:00:00.5+00 BC"),
            parse_timestamp("0044-03-15 10:00:00.5 BC")
        );
        assert_eq!(
            parse_timestamptz("-infinity"),
            Ok(MaybeInfinite::NegativeInfinity)
        );
    }

    #[test]
    fn dates_and_timestamps_beyond_range_are_errors_not_panics() {
        assert!(parse_date("9000000000000000000-01-01").is_err());
        assert!(parse_timestamp("2147483647-01-01 00:00:00").is_err());
        assert!(parse_timestamptz("2147483647-01-01 00:00:00+00 BC").is_err());
        for bad in ["", " ", "2024-03-15 ", "2024-03-15 12:00:00+", "+", "-"] {
            assert!(parse_timestamptz(bad).is_err(), "{bad:?}");
        }
    }
}
