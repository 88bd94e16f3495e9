//! Debezium's forms of temporal values: `MicroDuration` for intervals and ISO-8601 strings,
//! as Java prints them, for the zoned types. The text is parsed by
//! [`walproof_core::pg_text`].

use walproof_core::pg_text::{Interval, civil_from_days};

const MICROS_PER_SECOND: i128 = 1_000_000;
const SECONDS_PER_DAY: i128 = 86_400;
const MICROS_PER_DAY: i128 = SECONDS_PER_DAY * MICROS_PER_SECOND;
/// Debezium's `MicroDuration` counts a month as 365.25 / 12 = 30.4375 days, which is a
/// whole number of seconds; walproof computes with it exactly.
const SECONDS_PER_MONTH: i128 = 2_629_800;

/// An interval as Debezium's `MicroDuration`: months count 30.4375 days, days 24 hours.
/// `None` when the result does not fit 64 bits, as for Postgres 17's infinite intervals,
/// whose fields are all at their extremes.
pub(crate) fn micro_duration(interval: Interval) -> Option<i64> {
    let seconds = i128::from(interval.months) * SECONDS_PER_MONTH
        + i128::from(interval.days) * SECONDS_PER_DAY;
    i64::try_from(seconds * MICROS_PER_SECOND + i128::from(interval.micros)).ok()
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
    use walproof_core::pg_text::{MaybeInfinite, parse_interval_parts, parse_timestamptz};

    use super::*;

    fn duration(text: &str) -> Result<Option<i64>, String> {
        parse_interval_parts(text).map(micro_duration)
    }

    #[test]
    fn zoned_times_print_in_utc() {
        assert_eq!(format_zoned_time(25_496_789_000), "07:04:56.789Z");
        assert_eq!(format_zoned_time(0), "00:00:00Z");
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
            Ok(MaybeInfinite::Finite(micros)) => micros,
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
        assert_eq!(duration("3 days"), Ok(Some(3 * day)));
        assert_eq!(duration("1 mon"), Ok(Some(2_629_800_000_000)));
        assert_eq!(duration("1 year"), Ok(Some(12 * 2_629_800_000_000)));
        assert_eq!(
            duration("1 year 2 mons -3 days +04:05:06.7"),
            Ok(Some(14 * 2_629_800_000_000 - 3 * day + 14_706_700_000))
        );
        assert_eq!(duration("-1 days -00:00:01"), Ok(Some(-day - 1_000_000)));
        assert_eq!(duration("-00:00:00.5"), Ok(Some(-500_000)));
        assert_eq!(duration("00:00:00"), Ok(Some(0)));
        assert_eq!(duration("178000000 years"), Ok(None));
        assert_eq!(duration("infinity"), Ok(None));
        assert_eq!(duration("-infinity"), Ok(None));
        assert!(duration("3 fortnights").is_err());
    }
}
