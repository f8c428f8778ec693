//! Google resets the free-tier daily quotas at midnight America/Los_Angeles.
//! This computes that instant from a Unix time without a time-zone database:
//! Pacific time is UTC−8, or UTC−7 under US daylight saving (second Sunday
//! of March 02:00 to first Sunday of November 02:00, local time).

const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Civil year of a day count.
fn year_of_days(days: i64) -> i64 {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    year_of_era + era * 400 + i64::from(month <= 2)
}

/// Day count of the `nth` Sunday (1-based) of a month.
fn nth_sunday(year: i64, month: i64, nth: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    // 1970-01-01 was a Thursday (weekday 4, Sunday = 0).
    let weekday = (first + 4).rem_euclid(7);
    first + (7 - weekday) % 7 + 7 * (nth - 1)
}

/// Offset of Pacific time from UTC at `unix_seconds`, in seconds.
fn pacific_offset_seconds(unix_seconds: i64) -> i64 {
    let year = year_of_days(unix_seconds.div_euclid(SECONDS_PER_DAY));
    // 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
    let dst_start = nth_sunday(year, 3, 2) * SECONDS_PER_DAY + 10 * 3600;
    let dst_end = nth_sunday(year, 11, 1) * SECONDS_PER_DAY + 9 * 3600;
    if (dst_start..dst_end).contains(&unix_seconds) {
        -7 * 3600
    } else {
        -8 * 3600
    }
}

/// The first Pacific midnight strictly after `unix_seconds`.
pub fn next_pacific_midnight(unix_seconds: i64) -> i64 {
    let local = unix_seconds + pacific_offset_seconds(unix_seconds);
    let next_local_midnight = (local.div_euclid(SECONDS_PER_DAY) + 1) * SECONDS_PER_DAY;
    // The offset at the target may differ (DST changes at 02:00, after
    // midnight, so the offset in force at midnight is the one before it).
    let guess = next_local_midnight - pacific_offset_seconds(unix_seconds);
    next_local_midnight - pacific_offset_seconds(guess - 1)
}

/// The Pacific calendar day (days since epoch) of `unix_seconds`; counters
/// keyed by it reset at Pacific midnight.
pub fn pacific_day(unix_seconds: i64) -> i64 {
    (unix_seconds + pacific_offset_seconds(unix_seconds)).div_euclid(SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> i64 {
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60
    }

    #[test]
    fn next_midnight_in_winter_summer_and_across_changes() {
        let cases = [
            // (now UTC, next Pacific midnight in UTC)
            (utc(2026, 1, 15, 12, 0), utc(2026, 1, 16, 8, 0)),
            (utc(2026, 1, 16, 7, 59), utc(2026, 1, 16, 8, 0)),
            (utc(2026, 1, 16, 8, 0), utc(2026, 1, 17, 8, 0)),
            (utc(2026, 7, 1, 12, 0), utc(2026, 7, 2, 7, 0)),
            // DST starts 2026-03-08: midnight of the 8th is still PST.
            (utc(2026, 3, 7, 20, 0), utc(2026, 3, 8, 8, 0)),
            (utc(2026, 3, 8, 12, 0), utc(2026, 3, 9, 7, 0)),
            // DST ends 2026-11-01: midnight of the 1st is still PDT.
            (utc(2026, 10, 31, 20, 0), utc(2026, 11, 1, 7, 0)),
            (utc(2026, 11, 1, 12, 0), utc(2026, 11, 2, 8, 0)),
            (utc(2024, 2, 29, 9, 0), utc(2024, 3, 1, 8, 0)),
        ];
        for (now, expected) in cases {
            assert_eq!(next_pacific_midnight(now), expected, "now={now}");
        }
    }

    #[test]
    fn pacific_day_changes_at_pacific_midnight() {
        let before = utc(2026, 7, 2, 6, 59);
        let after = utc(2026, 7, 2, 7, 0);
        assert_eq!(pacific_day(after), pacific_day(before) + 1);
    }
}
