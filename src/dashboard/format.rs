//! How the dashboard writes numbers, times and durations: times in the
//! configured zone (`TZ`) with the zone named, phrases in the page's
//! language. Pure: callers pass the time.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::text::{fill, Text};

/// Writes values for one page: its language and time zone.
#[derive(Clone, Copy)]
pub struct Format<'a> {
    pub t: &'static Text,
    pub zone: &'a TimeZone,
}

/// `1,234,567`.
pub fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl Format<'_> {
    /// `2026-11-27 16:40:05 UTC`, `2026-11-28 00:40:05 CST` — in the
    /// page's zone, named by its abbreviation (or offset).
    pub fn time(&self, unix_ms: u64) -> String {
        if unix_ms == 0 {
            return self.t.never.to_owned();
        }
        let Ok(instant) = Timestamp::from_millisecond(i64::try_from(unix_ms).unwrap_or(i64::MAX)) else {
            return self.t.never.to_owned();
        };
        instant.to_zoned(self.zone.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    /// `in 3 min 20 s`, `in 2 h 5 min`.
    pub fn until(&self, until_ms: u64, now_ms: u64) -> String {
        let seconds = until_ms.saturating_sub(now_ms).div_ceil(1000);
        match seconds {
            0..=59 => fill(self.t.in_seconds, &[("s", &seconds)]),
            60..=3599 => fill(self.t.in_minutes, &[("m", &(seconds / 60)), ("s", &(seconds % 60))]),
            _ => fill(self.t.in_hours, &[("h", &(seconds / 3600)), ("m", &(seconds % 3600 / 60))]),
        }
    }

    /// `42 s`, `5 min`, `3 h 2 min`, `2 d 4 h`.
    pub fn duration(&self, seconds: u64) -> String {
        match seconds {
            0..=59 => fill(self.t.duration_seconds, &[("s", &seconds)]),
            60..=3599 => fill(self.t.duration_minutes, &[("m", &(seconds / 60))]),
            3600..=86_399 => fill(self.t.duration_hours, &[("h", &(seconds / 3600)), ("m", &(seconds % 3600 / 60))]),
            _ => fill(self.t.duration_days, &[("d", &(seconds / 86_400)), ("h", &(seconds % 86_400 / 3600))]),
        }
    }

    /// "Times in Asia/Shanghai" (the page says which zone its times are in).
    pub fn zone_note(&self, zone_name: &str) -> String {
        fill(self.t.times_in_zone, &[("zone", &zone_name)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::text::{EN, ZH};

    #[test]
    fn times_are_shown_in_the_zone_with_its_name() {
        let utc = TimeZone::UTC;
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        let new_york = TimeZone::get("America/New_York").unwrap();
        let english = Format { t: &EN, zone: &utc };
        let cases = [
            (0, "never"),
            (1_000, "1970-01-01 00:00:01 UTC"),
            (951_782_400_000, "2000-02-29 00:00:00 UTC"),
            (1_795_796_405_000, "2026-11-27 16:20:05 UTC"),
        ];
        for (ms, expected) in cases {
            assert_eq!(english.time(ms), expected);
        }
        assert_eq!(Format { t: &ZH, zone: &shanghai }.time(1_795_796_405_000), "2026-11-28 00:20:05 CST");
        assert_eq!(Format { t: &ZH, zone: &shanghai }.time(0), "从未");
        // Daylight saving: EDT in July, EST in January.
        let july = Format { t: &EN, zone: &new_york }.time(1_783_000_000_000);
        let january = Format { t: &EN, zone: &new_york }.time(1_768_000_000_000);
        assert!(july.ends_with("EDT") && january.ends_with("EST"), "{july} {january}");
        assert_eq!(english.until(61_000, 0), "in 1 min 1 s");
        assert_eq!(Format { t: &ZH, zone: &utc }.until(61_000, 0), "1 分 1 秒后");
        assert_eq!(english.duration(7_260), "2 h 1 min");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(12), "12");
    }
}
