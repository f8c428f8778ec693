//! Google resets the free-tier daily quotas at midnight America/Los_Angeles.
//! The instant comes from the time-zone database bundled into the binary
//! (`jiff`; the static build has no `/usr/share/zoneinfo`), so daylight
//! saving follows the rules in force, not a hand-written copy of them.

use std::sync::LazyLock;

use jiff::tz::TimeZone;
use jiff::Timestamp;

const SECONDS_PER_DAY: i64 = 86_400;

static PACIFIC: LazyLock<TimeZone> =
    LazyLock::new(|| TimeZone::get("America/Los_Angeles").expect("the bundled tz database has America/Los_Angeles"));

/// The Pacific wall-clock time at `unix_seconds` (clamped to what jiff
/// represents: years −9999..=9999).
fn pacific(unix_seconds: i64) -> jiff::Zoned {
    let clamped = unix_seconds.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(clamped).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned(PACIFIC.clone())
}

/// The first Pacific midnight strictly after `unix_seconds`.
pub fn next_pacific_midnight(unix_seconds: i64) -> i64 {
    let now = pacific(unix_seconds);
    let midnight = now.date().tomorrow().and_then(|day| day.to_zoned(PACIFIC.clone()));
    match midnight {
        Ok(midnight) => midnight.timestamp().as_second(),
        // Only at the end of representable time.
        Err(_) => unix_seconds.saturating_add(SECONDS_PER_DAY),
    }
}

/// The Pacific calendar day (days since epoch) of `unix_seconds`; counters
/// keyed by it reset at Pacific midnight. Asked on the request path: the
/// current day's bounds are remembered per thread, so most calls compare
/// two numbers.
pub fn pacific_day(unix_seconds: i64) -> i64 {
    pacific_day_and_end(unix_seconds).0
}

/// [`next_pacific_midnight`] for the request path: from the same per-thread
/// memory of the current day as [`pacific_day`].
pub fn next_pacific_midnight_cached(unix_seconds: i64) -> i64 {
    pacific_day_and_end(unix_seconds).1
}

/// The Pacific day of `unix_seconds` and the first second of the next.
fn pacific_day_and_end(unix_seconds: i64) -> (i64, i64) {
    thread_local! {
        /// (first second, first second of the next day, day) last seen.
        static TODAY: std::cell::Cell<(i64, i64, i64)> = const { std::cell::Cell::new((1, 0, 0)) };
    }
    TODAY.with(|today| {
        let (start, end, day) = today.get();
        if (start..end).contains(&unix_seconds) {
            return (day, end);
        }
        let local = pacific(unix_seconds);
        let day = unix_seconds.saturating_add(i64::from(local.offset().seconds())).div_euclid(SECONDS_PER_DAY);
        let start = local.start_of_day().map_or(unix_seconds, |start| start.timestamp().as_second());
        let end = next_pacific_midnight(unix_seconds);
        today.set((start, end, day));
        (day, end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(year: i16, month: i8, day: i8, hour: i8, minute: i8) -> i64 {
        jiff::civil::date(year, month, day)
            .at(hour, minute, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second()
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
            // The remembered day agrees, asked twice (the second from memory).
            assert_eq!(next_pacific_midnight_cached(now), expected, "now={now}");
            assert_eq!(next_pacific_midnight_cached(now), expected, "now={now}");
        }
    }

    #[test]
    fn pacific_day_changes_at_pacific_midnight() {
        let before = utc(2026, 7, 2, 6, 59);
        let after = utc(2026, 7, 2, 7, 0);
        assert_eq!(pacific_day(after), pacific_day(before) + 1);
        // In winter the day changes an hour later (UTC−8).
        assert_eq!(pacific_day(utc(2026, 1, 2, 8, 0)), pacific_day(utc(2026, 1, 2, 7, 59)) + 1);
        // The day count is the local date's days since 1970-01-01.
        assert_eq!(pacific_day(utc(1970, 1, 2, 8, 0)), 1);
        // Extremes do not panic.
        let _ = (next_pacific_midnight(i64::MAX), pacific_day(i64::MIN));
    }

    #[test]
    fn the_remembered_day_is_the_day_across_the_year() {
        let direct = |t: i64| {
            let local = pacific(t);
            (t + i64::from(local.offset().seconds())).div_euclid(SECONDS_PER_DAY)
        };
        let mut t = utc(2026, 1, 1, 0, 0);
        while t < utc(2027, 1, 1, 0, 0) {
            assert_eq!(pacific_day(t), direct(t), "at {t}");
            t += 17 * 60 + 13;
        }
        // Backwards too.
        assert_eq!(pacific_day(utc(2025, 6, 1, 0, 0)), direct(utc(2025, 6, 1, 0, 0)));
    }
}
