//! Postgres's ISO text output of dates, times, timestamps and intervals, parsed into the
//! numbers Debezium's temporal types carry, and Debezium's ISO-8601 strings for the zoned ones.
//!
//! Input follows the canonical session settings (DateStyle=ISO, TimeZone=UTC,
//! IntervalStyle=postgres): `2024-03-15`, `0044-03-15 BC`, `12:34:56.789`,
//! `12:34:56+05:30`, `2024-03-15 12:34:56.5+00`, `1 year 2 mons -3 days +04:05:06.7`.

const MICROS_PER_SECOND: i128 = 1_000_000;
const SECONDS_PER_DAY: i128 = 86_400;
const MICROS_PER_DAY: i128 = SECONDS_PER_DAY * MICROS_PER_SECOND;
/// Debezium's `MicroDuration` counts a month as 365.25 / 12 = 30.4375 days, which is a
/// whole number of seconds; walproof computes with it exactly.
const SECONDS_PER_MONTH: i128 = 2_629_800;

/// A date or timestamp: a finite value, or one of Postgres's infinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instant<T> {
    Finite(T),
    Infinity,
    NegativeInfinity,
}

fn special<T>(text: &str) -> Option<Instant<T>> {
    match text {
        "infinity" => Some(Instant::Infinity),
        "-infinity" => Some(Instant::NegativeInfinity),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is year 0).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (astronomical year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a number"));
    }
    text.parse()
        .map_err(|_| format!("{what} {text:?} is out of range"))
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
    let year: i64 = number(y, "year")?;
    let month: i64 = number(m, "month")?;
    let day: i64 = number(d, "day")?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year == 0 {
        return Err(format!("{text:?} is not a valid date"));
    }
    // Year n BC is astronomical year 1 - n.
    let year = if bc { 1 - year } else { year };
    Ok(days_from_civil(year, month, day))
}

/// A `date`: days since 1970-01-01.
pub(crate) fn parse_date(text: &str) -> Result<Instant<i64>, String> {
    if let Some(special) = special(text) {
        return Ok(special);
    }
    let (text, bc) = strip_era(text);
    parse_ymd(text, bc).map(Instant::Finite)
}

/// `HH:MM:SS[.ffffff]` to microseconds since midnight (`24:00:00` included).
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(h), Some(m), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not HH:MM:SS"));
    };
    let hours: i64 = number(h, "hour")?;
    let minutes: i64 = number(m, "minute")?;
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let seconds: i64 = number(whole, "second")?;
    if minutes > 59 || seconds > 60 || fraction.len() > 6 {
        return Err(format!("{text:?} is not a valid time"));
    }
    let micros: i64 = if fraction.is_empty() {
        0
    } else {
        number::<i64>(fraction, "fraction")? * 10_i64.pow(6 - fraction.len() as u32)
    };
    Ok(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros)
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
        let value: i64 = number(part, "offset")?;
        seconds += value * [3600, 60, 1][i];
    }
    Ok((time, sign * seconds))
}

/// A `timetz`: microseconds since midnight UTC (wrapped into one day) — Debezium's
/// `ZonedTime` normalises to UTC too.
pub(crate) fn parse_timetz(text: &str) -> Result<i64, String> {
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

fn to_i64(micros: i128) -> Result<i64, String> {
    i64::try_from(micros).map_err(|_| "out of the 64-bit microsecond range".to_owned())
}

/// A `timestamp` (without time zone): microseconds since 1970-01-01 00:00:00.
pub(crate) fn parse_timestamp(text: &str) -> Result<Instant<i64>, String> {
    if let Some(special) = special(text) {
        return Ok(special);
    }
    let (text, bc) = strip_era(text);
    to_i64(date_time(text, bc)?).map(Instant::Finite)
}

/// A `timestamptz`: microseconds since the epoch, UTC.
pub(crate) fn parse_timestamptz(text: &str) -> Result<Instant<i64>, String> {
    if let Some(special) = special(text) {
        return Ok(special);
    }
    let (text, bc) = strip_era(text);
    let (local, offset) = split_offset(text)?;
    let micros = date_time(local, bc)? - i128::from(offset) * MICROS_PER_SECOND;
    to_i64(micros).map(Instant::Finite)
}

/// An `interval` in IntervalStyle=postgres, as Debezium's `MicroDuration`: months count
/// 30.4375 days, days 24 hours. `None` when the result does not fit 64 bits.
pub(crate) fn parse_interval(text: &str) -> Result<Option<i64>, String> {
    let mut total: i128 = 0;
    let mut tokens = text.split(' ').filter(|t| !t.is_empty());
    while let Some(token) = tokens.next() {
        if token.contains(':') {
            let (sign, time) = match token.as_bytes()[0] {
                b'-' => (-1, &token[1..]),
                b'+' => (1, &token[1..]),
                _ => (1, token),
            };
            total += sign * i128::from(parse_time(time)?);
            continue;
        }
        let (sign, digits) = match token.as_bytes()[0] {
            b'-' => (-1, &token[1..]),
            b'+' => (1, &token[1..]),
            _ => (1, token),
        };
        let amount = sign * number::<i128>(digits, "interval field")?;
        let unit = tokens
            .next()
            .ok_or_else(|| format!("{text:?}: {token} has no unit"))?;
        let seconds = match unit {
            "year" | "years" => 12 * SECONDS_PER_MONTH,
            "mon" | "mons" => SECONDS_PER_MONTH,
            "day" | "days" => SECONDS_PER_DAY,
            other => return Err(format!("{text:?}: unknown interval unit {other:?}")),
        };
        total += amount * seconds * MICROS_PER_SECOND;
    }
    Ok(i64::try_from(total).ok())
}

/// Debezium's ISO-8601 form of a UTC instant (`ZonedTimestamp`): `2024-03-15T12:34:56.5Z`;
/// the fraction has as many digits as it needs (none when zero), years beyond 9999 get a
/// `+`, years before 1 AD are astronomical (`0000` is 1 BC, `-0001` is 2 BC), as Java prints.
pub(crate) fn format_zoned_timestamp(micros: i64) -> String {
    let micros = i128::from(micros);
    let days = micros.div_euclid(MICROS_PER_DAY) as i64;
    let of_day = micros.rem_euclid(MICROS_PER_DAY) as i64;
    let (year, month, day) = civil_from_days(days);
    let year = if year > 9999 {
        format!("+{year}")
    } else if year < 0 {
        format!("-{:04}", -year)
    } else {
        format!("{year:04}")
    };
    format!("{year}-{month:02}-{day:02}T{}Z", format_time_of_day(of_day))
}

/// Debezium's `ZonedTime` form of a UTC time of day: `12:34:56.789Z`.
pub(crate) fn format_zoned_time(micros: i64) -> String {
    format!("{}Z", format_time_of_day(micros))
}

fn format_time_of_day(micros: i64) -> String {
    let seconds = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_days_from_the_epoch_including_bc_dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(Instant::Finite(0)));
        assert_eq!(parse_date("2024-03-15"), Ok(Instant::Finite(19797)));
        assert_eq!(parse_date("1969-12-31"), Ok(Instant::Finite(-1)));
        // 1 BC is astronomical year 0, a leap year: 0000-03-01 minus 0001-03-01 is 366 days.
        let bc1 =
            parse_date("0001-03-01 BC").map(|d| d == Instant::Finite(days_from_civil(0, 3, 1)));
        assert_eq!(bc1, Ok(true));
        assert_eq!(parse_date("0044-03-15 BC"), Ok(Instant::Finite(-735_160)));
        assert_eq!(parse_date("10000-01-01"), Ok(Instant::Finite(2_932_897)));
        assert_eq!(parse_date("infinity"), Ok(Instant::Infinity));
        assert_eq!(parse_date("-infinity"), Ok(Instant::NegativeInfinity));
        assert!(parse_date("2024-13-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn civil_and_day_counts_round_trip() {
        for days in [-800_000, -719_468, -1, 0, 1, 19_797, 2_932_897] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn times_count_microseconds_since_midnight() {
        assert_eq!(parse_time("00:00:00"), Ok(0));
        assert_eq!(parse_time("12:34:56.789"), Ok(45_296_789_000));
        assert_eq!(parse_time("00:00:00.000001"), Ok(1));
        assert_eq!(parse_time("24:00:00"), Ok(86_400_000_000));
        assert!(parse_time("12:34").is_err());
        assert!(parse_time("12:34:56.1234567").is_err());
    }

    #[test]
    fn times_with_zone_are_normalised_to_utc() {
        assert_eq!(parse_timetz("12:34:56.789+05:30"), Ok(25_496_789_000));
        assert_eq!(parse_timetz("01:00:00+02"), Ok(82_800_000_000));
        assert_eq!(parse_timetz("23:00:00-01"), Ok(0));
        assert_eq!(format_zoned_time(25_496_789_000), "07:04:56.789Z");
    }

    #[test]
    fn timestamps_count_microseconds_from_the_epoch() {
        assert_eq!(
            parse_timestamp("2024-03-15 12:34:56.5"),
            Ok(Instant::Finite(1_710_506_096_500_000))
        );
        assert_eq!(
            parse_timestamp("0044-03-15 12:00:00 BC"),
            Ok(Instant::Finite(-735_160 * 86_400_000_000 + 43_200_000_000))
        );
        assert_eq!(parse_timestamp("infinity"), Ok(Instant::Infinity));
        assert_eq!(
            parse_timestamptz("2024-03-15 12:34:56.5+00"),
            Ok(Instant::Finite(1_710_506_096_500_000))
        );
        assert_eq!(
            parse_timestamptz("2024-03-15 14:34:56.5+02"),
            Ok(Instant::Finite(1_710_506_096_500_000))
        );
        assert_eq!(
            parse_timestamptz("0044-03-15 10:00:00.5+00 BC"),
            parse_timestamp("0044-03-15 10:00:00.5 BC")
        );
    }

    #[test]
    fn zoned_timestamps_print_as_java_prints_them() {
        assert_eq!(
            format_zoned_timestamp(1_710_506_096_500_000),
            "2024-03-15T12:34:56.5Z"
        );
        assert_eq!(format_zoned_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_zoned_timestamp(-1), "1969-12-31T23:59:59.999999Z");
        let bc = match parse_timestamptz("0044-03-15 10:00:00+00 BC") {
            Ok(Instant::Finite(micros)) => micros,
            other => panic!("{other:?}"),
        };
        assert_eq!(format_zoned_timestamp(bc), "-0043-03-15T10:00:00Z");
        assert_eq!(
            format_zoned_timestamp(253_402_300_800_000_000),
            "+10000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn intervals_use_debeziums_thirty_point_four_three_seven_five_day_months() {
        let day = 86_400_000_000_i64;
        assert_eq!(parse_interval("3 days"), Ok(Some(3 * day)));
        assert_eq!(parse_interval("1 mon"), Ok(Some(2_629_800_000_000)));
        assert_eq!(parse_interval("1 year"), Ok(Some(12 * 2_629_800_000_000)));
        assert_eq!(
            parse_interval("1 year 2 mons -3 days +04:05:06.7"),
            Ok(Some(14 * 2_629_800_000_000 - 3 * day + 14_706_700_000))
        );
        assert_eq!(
            parse_interval("-1 days -00:00:01"),
            Ok(Some(-day - 1_000_000))
        );
        assert_eq!(parse_interval("-00:00:00.5"), Ok(Some(-500_000)));
        assert_eq!(parse_interval("00:00:00"), Ok(Some(0)));
        assert_eq!(parse_interval("178000000 years"), Ok(None));
        assert!(parse_interval("3 fortnights").is_err());
    }
}
