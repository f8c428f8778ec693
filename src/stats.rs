//! Request statistics for the dashboard's Overview page (§9): requests,
//! successes, failures by kind, cache hits and tokens, counted per
//! wall-clock minute over the last 24 hours, plus the gauge of requests in
//! flight. Every client request is recorded once with its [`Outcome`];
//! the three outcomes partition the requests (`requests = successes +
//! failures + cache_hits`).
//!
//! Memory is bounded: a ring of [`MINUTES_KEPT`] buckets indexed by the
//! Unix minute modulo the ring's length, so a minute's bucket is reused a
//! day later; the distinct failure kinds of one minute are capped too.
//! Finished minutes are handed to the store ([`Stats::take_finished_minutes`])
//! and loaded back at startup ([`Stats::restore`]), so the charts survive a
//! restart. Pure: callers pass `now_ms` (Unix milliseconds); no I/O.
//! `Send + Sync`: one instance is shared by all workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::store::MinuteStats;

/// Minutes kept in memory: 24 hours.
pub const MINUTES_KEPT: u64 = 24 * 60;
const MS_PER_MINUTE: u64 = 60_000;
/// Distinct failure kinds counted separately within one minute (the
/// classified kinds are far fewer; the cap only guards against a caller
/// passing free text); further kinds count as [`OTHER_FAILURE_KIND`].
pub use crate::store::{MAX_FAILURE_KINDS_PER_MINUTE, OTHER_FAILURE_KIND};

/// How one client request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from the upstream.
    Success,
    /// Answered from the swipe cache (no upstream call).
    CacheHit,
    /// Failed; the kind as classified (`FailureKind::as_str`, or `client` …).
    Failure(String),
}

/// One minute's counters and whether they changed since they were last
/// handed out for persisting.
#[derive(Debug, Clone)]
struct MinuteBucket {
    stats: MinuteStats,
    changed_since_taken: bool,
}

/// Request counters per minute over the last 24 hours, and the gauge of
/// requests in flight.
pub struct Stats {
    /// `MINUTES_KEPT` slots; slot `minute % MINUTES_KEPT` holds that minute
    /// when its `stats.minute` matches, else an older (stale) minute.
    buckets: Mutex<Vec<Option<MinuteBucket>>>,
    active_requests: Arc<AtomicUsize>,
}

/// Counts one request as in flight while it lives (see
/// [`Stats::track_active`]). Owns its share of the gauge, so it can move
/// into a streaming body that outlives the handler.
#[must_use = "the request counts as active only while the guard lives"]
pub struct ActiveRequest {
    active_requests: Arc<AtomicUsize>,
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.active_requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Points of an SVG `<polyline>` and the largest value they were scaled to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartPoints {
    /// `"x,y x,y …"`, numbers only (safe to put in an attribute as is).
    pub points: String,
    pub max: u64,
}

fn minute_of(now_ms: u64) -> u64 {
    now_ms / MS_PER_MINUTE
}

fn slot_of(minute: u64) -> usize {
    // The remainder is below MINUTES_KEPT, so it fits any usize.
    (minute % MINUTES_KEPT) as usize
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats { buckets: Mutex::new(vec![None; MINUTES_KEPT as usize]), active_requests: Arc::new(AtomicUsize::new(0)) }
    }

    /// Counts one client request in the minute of `now_ms`.
    pub fn record(&self, outcome: Outcome, prompt_tokens: u64, completion_tokens: u64, now_ms: u64) {
        self.update(now_ms, |stats| {
            stats.requests += 1;
            match outcome {
                Outcome::Success => stats.successes += 1,
                Outcome::CacheHit => stats.cache_hits += 1,
                Outcome::Failure(kind) => {
                    stats.failures += 1;
                    stats.add_failure_kind(&kind, 1);
                }
            }
            stats.prompt_tokens += prompt_tokens;
            stats.completion_tokens += completion_tokens;
        });
    }

    /// Adds tokens an upstream call used (counted where the call
    /// succeeds, which for streams is after the request was logged).
    pub fn add_tokens(&self, prompt_tokens: u64, completion_tokens: u64, now_ms: u64) {
        if prompt_tokens == 0 && completion_tokens == 0 {
            return;
        }
        self.update(now_ms, |stats| {
            stats.prompt_tokens += prompt_tokens;
            stats.completion_tokens += completion_tokens;
        });
    }

    fn update(&self, now_ms: u64, change: impl FnOnce(&mut MinuteStats)) {
        let minute = minute_of(now_ms);
        let mut buckets = self.buckets.lock();
        let slot = &mut buckets[slot_of(minute)];
        match slot {
            Some(bucket) if bucket.stats.minute == minute => {}
            // A day or more older than what the slot holds (a clock set
            // back): nowhere to count it without losing newer counts.
            Some(bucket) if bucket.stats.minute > minute => return,
            // Empty, or the same minute of an earlier day: start afresh.
            _ => {
                *slot = Some(MinuteBucket {
                    stats: MinuteStats { minute, ..MinuteStats::default() },
                    changed_since_taken: false,
                })
            }
        }
        let Some(bucket) = slot else { return };
        change(&mut bucket.stats);
        bucket.changed_since_taken = true;
    }

    /// Sums over the last `last_minutes` minutes, the current one included
    /// (at most [`MINUTES_KEPT`]); `minute` is the window's first minute.
    /// `last_minutes = 0` gives zeros with `minute` = the current minute.
    pub fn totals(&self, last_minutes: u64, now_ms: u64) -> MinuteStats {
        let current_minute = minute_of(now_ms);
        let window = last_minutes.min(MINUTES_KEPT);
        let first_minute = current_minute.saturating_sub(window.saturating_sub(1));
        let mut total = MinuteStats { minute: first_minute, ..MinuteStats::default() };
        if window == 0 {
            total.minute = current_minute;
            return total;
        }
        let buckets = self.buckets.lock();
        for minute in first_minute..=current_minute {
            if let Some(bucket) = &buckets[slot_of(minute)] {
                if bucket.stats.minute == minute {
                    total.add(&bucket.stats);
                }
            }
        }
        total
    }

    /// One entry per minute for the last `minutes` minutes (at most
    /// [`MINUTES_KEPT`]), oldest first, ending with the current minute;
    /// minutes without requests are all-zero entries.
    pub fn series(&self, minutes: usize, now_ms: u64) -> Vec<MinuteStats> {
        let current_minute = minute_of(now_ms);
        let window = (minutes as u64).min(MINUTES_KEPT).min(current_minute + 1);
        let first_minute = current_minute + 1 - window;
        let buckets = self.buckets.lock();
        (first_minute..first_minute + window)
            .map(|minute| match &buckets[slot_of(minute)] {
                Some(bucket) if bucket.stats.minute == minute => bucket.stats.clone(),
                _ => MinuteStats { minute, ..MinuteStats::default() },
            })
            .collect()
    }

    /// The minutes before the current one that changed since the last
    /// call, oldest first, for persisting. Each is returned once, and again
    /// only if it changes again (a late request counted into it). Call it
    /// at least once a day: a minute not taken within 24 hours is
    /// overwritten by the same minute of the next day.
    pub fn take_finished_minutes(&self, now_ms: u64) -> Vec<MinuteStats> {
        let current_minute = minute_of(now_ms);
        let mut buckets = self.buckets.lock();
        let mut finished: Vec<MinuteStats> = buckets
            .iter_mut()
            .flatten()
            .filter(|bucket| bucket.changed_since_taken && bucket.stats.minute < current_minute)
            .map(|bucket| {
                bucket.changed_since_taken = false;
                bucket.stats.clone()
            })
            .collect();
        finished.sort_by_key(|stats| stats.minute);
        finished
    }

    /// Loads persisted minutes (startup). Minutes older than 24 hours, or
    /// later than the current one (a clock set back), are ignored. A minute
    /// that was already counted in this process (a restart within the
    /// minute) is added to, and will be handed out for persisting again.
    pub fn restore(&self, history: Vec<MinuteStats>, now_ms: u64) {
        let current_minute = minute_of(now_ms);
        let oldest_kept_minute = (current_minute + 1).saturating_sub(MINUTES_KEPT);
        let mut buckets = self.buckets.lock();
        for persisted in history {
            if persisted.minute < oldest_kept_minute || persisted.minute > current_minute {
                continue;
            }
            let slot = &mut buckets[slot_of(persisted.minute)];
            match slot {
                Some(bucket) if bucket.stats.minute == persisted.minute => {
                    bucket.stats.add(&persisted);
                    bucket.changed_since_taken = true;
                }
                _ => *slot = Some(MinuteBucket { stats: persisted, changed_since_taken: false }),
            }
        }
    }

    /// Requests in flight now.
    pub fn active_requests(&self) -> usize {
        self.active_requests.load(Ordering::Acquire)
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn track_active(&self) -> ActiveRequest {
        self.active_requests.fetch_add(1, Ordering::AcqRel);
        ActiveRequest { active_requests: Arc::clone(&self.active_requests) }
    }
}

/// Formats a chart coordinate with at most two decimals and no trailing
/// zeros (`12`, `12.5`, `33.33`).
fn format_coordinate(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Scales `values` into an SVG polyline of `width` × `height`: x evenly
/// spaced from 0 to `width`, y = `height` − value / max × `height` (the
/// largest value touches the top). All zeros give a flat line at the
/// bottom; one value gives a flat line across the whole width; none gives
/// no points.
pub fn chart_points(values: &[u64], width: u32, height: u32) -> ChartPoints {
    let max = values.iter().copied().max().unwrap_or(0);
    let width = f64::from(width);
    let height = f64::from(height);
    let y_of = |value: u64| if max == 0 { height } else { height - value as f64 / max as f64 * height };
    let points: Vec<(f64, f64)> = match values {
        [] => Vec::new(),
        [only] => vec![(0.0, y_of(*only)), (width, y_of(*only))],
        _ => {
            let step = width / (values.len() - 1) as f64;
            values.iter().enumerate().map(|(index, value)| (index as f64 * step, y_of(*value))).collect()
        }
    };
    let points = points
        .iter()
        .map(|(x, y)| format!("{},{}", format_coordinate(*x), format_coordinate(*y)))
        .collect::<Vec<_>>()
        .join(" ");
    ChartPoints { points, max }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-09 23:59:00 UTC, a minute boundary just before midnight.
    const T0: u64 = 1_710_028_740_000;
    const MINUTE: u64 = MS_PER_MINUTE;

    fn failure(kind: &str) -> Outcome {
        Outcome::Failure(kind.to_owned())
    }

    fn kinds(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
        pairs.iter().map(|(kind, count)| (kind.to_string(), *count)).collect()
    }

    #[test]
    fn each_outcome_counts_its_request_and_tokens() {
        let cases: &[(&[Outcome], MinuteStats)] = &[
            (&[], MinuteStats { minute: T0 / MINUTE, ..Default::default() }),
            (
                &[Outcome::Success],
                MinuteStats {
                    minute: T0 / MINUTE,
                    requests: 1,
                    successes: 1,
                    prompt_tokens: 10,
                    completion_tokens: 20,
                    ..Default::default()
                },
            ),
            (
                &[Outcome::Success, Outcome::CacheHit, failure("rate_limited"), failure("rate_limited")],
                MinuteStats {
                    minute: T0 / MINUTE,
                    requests: 4,
                    successes: 1,
                    failures: 2,
                    cache_hits: 1,
                    prompt_tokens: 40,
                    completion_tokens: 80,
                    failures_by_kind: kinds(&[("rate_limited", 2)]),
                },
            ),
            (
                &[failure("key_invalid"), failure("server_error"), failure("key_invalid")],
                MinuteStats {
                    minute: T0 / MINUTE,
                    requests: 3,
                    failures: 3,
                    prompt_tokens: 30,
                    completion_tokens: 60,
                    failures_by_kind: kinds(&[("key_invalid", 2), ("server_error", 1)]),
                    ..Default::default()
                },
            ),
        ];
        for (outcomes, expected) in cases {
            let stats = Stats::new();
            for (index, outcome) in outcomes.iter().enumerate() {
                stats.record(outcome.clone(), 10, 20, T0 + index as u64 * 1000);
            }
            assert_eq!(&stats.totals(1, T0 + 59_999), expected, "{outcomes:?}");
        }
    }

    #[test]
    fn distinct_failure_kinds_per_minute_are_capped() {
        let stats = Stats::new();
        for index in 0..MAX_FAILURE_KINDS_PER_MINUTE + 5 {
            stats.record(failure(&format!("kind_{index}")), 0, 0, T0);
        }
        stats.record(failure("kind_0"), 0, 0, T0);
        let totals = stats.totals(1, T0);
        assert_eq!(totals.failures, MAX_FAILURE_KINDS_PER_MINUTE as u64 + 6);
        assert_eq!(totals.failures_by_kind.len(), MAX_FAILURE_KINDS_PER_MINUTE + 1);
        assert_eq!(totals.failures_by_kind[OTHER_FAILURE_KIND], 5);
        assert_eq!(totals.failures_by_kind["kind_0"], 2);
    }

    #[test]
    fn totals_sum_the_window_that_ends_now() {
        let stats = Stats::new();
        // One success 0, 1, 59, 60, 1439 and 1440 minutes ago.
        let now = T0 + 2000 * MINUTE + 30_000;
        // Oldest first: 1440 minutes ago shares its slot with now.
        for minutes_ago in [1440, 1439, 60, 59, 1, 0] {
            stats.record(Outcome::Success, 1, 0, now - minutes_ago * MINUTE);
        }
        let cases: &[(u64, u64)] = &[(0, 0), (1, 1), (2, 2), (59, 2), (60, 3), (61, 4), (1440, 5), (100_000, 5)];
        for (last_minutes, expected_requests) in cases {
            let totals = stats.totals(*last_minutes, now);
            assert_eq!(totals.requests, *expected_requests, "last {last_minutes} minutes");
            assert_eq!(totals.prompt_tokens, *expected_requests, "last {last_minutes} minutes");
            let expected_first_minute = match *last_minutes {
                0 => now / MINUTE,
                n => now / MINUTE + 1 - n.min(MINUTES_KEPT),
            };
            assert_eq!(totals.minute, expected_first_minute, "last {last_minutes} minutes");
        }
        let day = stats.totals(MINUTES_KEPT, now);
        assert!(day.failures_by_kind.is_empty());
    }

    #[test]
    fn series_has_one_entry_per_minute_with_gaps_as_zeros() {
        let stats = Stats::new();
        let now = T0 + 10 * MINUTE + 5_000;
        stats.record(Outcome::Success, 0, 0, now);
        stats.record(Outcome::Success, 0, 0, now - 2 * MINUTE);
        stats.record(Outcome::CacheHit, 0, 0, now - 2 * MINUTE);
        stats.record(failure("server_error"), 0, 0, now - 4 * MINUTE);
        let cases: &[(usize, Vec<u64>)] =
            &[(0, vec![]), (1, vec![1]), (3, vec![2, 0, 1]), (5, vec![1, 0, 2, 0, 1]), (7, vec![0, 0, 1, 0, 2, 0, 1])];
        for (minutes, expected_requests) in cases {
            let series = stats.series(*minutes, now);
            let requests: Vec<u64> = series.iter().map(|entry| entry.requests).collect();
            assert_eq!(&requests, expected_requests, "{minutes} minutes");
            let expected_minutes: Vec<u64> =
                (0..*minutes as u64).map(|i| now / MINUTE + 1 - *minutes as u64 + i).collect();
            let got_minutes: Vec<u64> = series.iter().map(|entry| entry.minute).collect();
            assert_eq!(got_minutes, expected_minutes, "{minutes} minutes");
        }
        assert_eq!(stats.series(100_000, now).len(), MINUTES_KEPT as usize);
    }

    #[test]
    fn minutes_roll_off_after_24_hours_across_midnight() {
        let stats = Stats::new();
        // 23:59 and 00:00 (the next UTC day).
        stats.record(Outcome::Success, 5, 0, T0);
        stats.record(Outcome::Success, 7, 0, T0 + MINUTE);
        let cases: &[(u64, u64, u64)] = &[
            // (now, requests in 24 h, prompt tokens in 24 h)
            (T0 + MINUTE, 2, 12),
            (T0 + (MINUTES_KEPT - 1) * MINUTE, 2, 12),
            // 24 h after 23:59 that minute is gone; 00:00 is still there.
            (T0 + MINUTES_KEPT * MINUTE, 1, 7),
            (T0 + (MINUTES_KEPT + 1) * MINUTE, 0, 0),
            (T0 + 10 * MINUTES_KEPT * MINUTE, 0, 0),
        ];
        for (now, requests, prompt_tokens) in cases {
            let totals = stats.totals(MINUTES_KEPT, *now);
            assert_eq!((totals.requests, totals.prompt_tokens), (*requests, *prompt_tokens), "now {now}");
        }
        // The same slot a day later starts afresh instead of adding up.
        stats.record(Outcome::Success, 100, 0, T0 + MINUTES_KEPT * MINUTE);
        let totals = stats.totals(1, T0 + MINUTES_KEPT * MINUTE);
        assert_eq!((totals.requests, totals.prompt_tokens), (1, 100));
        let series = stats.series(MINUTES_KEPT as usize, T0 + MINUTES_KEPT * MINUTE);
        assert_eq!(series.iter().map(|entry| entry.requests).sum::<u64>(), 2);
        // A request stamped a day before what its slot holds is dropped.
        stats.record(Outcome::Success, 1000, 0, T0);
        let totals = stats.totals(1, T0 + MINUTES_KEPT * MINUTE);
        assert_eq!((totals.requests, totals.prompt_tokens), (1, 100));
    }

    #[test]
    fn finished_minutes_are_taken_once_unless_they_change_again() {
        let stats = Stats::new();
        stats.record(Outcome::Success, 0, 0, T0);
        stats.record(Outcome::Success, 0, 0, T0 + MINUTE);
        stats.record(Outcome::Success, 0, 0, T0 + 2 * MINUTE);
        let minutes_of = |taken: Vec<MinuteStats>| taken.iter().map(|entry| entry.minute).collect::<Vec<_>>();
        let m0 = T0 / MINUTE;
        // (now, minutes expected, optional request recorded before the take)
        let steps: &[(u64, Option<u64>, Vec<u64>)] = &[
            // The current minute is not finished.
            (T0 + 2 * MINUTE, None, vec![m0, m0 + 1]),
            (T0 + 2 * MINUTE + 1, None, vec![]),
            (T0 + 3 * MINUTE, None, vec![m0 + 2]),
            (T0 + 3 * MINUTE, None, vec![]),
            // A late request into a finished minute hands it out again.
            (T0 + 4 * MINUTE, Some(T0 + MINUTE + 1), vec![m0 + 1]),
            (T0 + 5 * MINUTE, None, vec![]),
        ];
        for (now, late_request_at, expected) in steps {
            if let Some(at) = late_request_at {
                stats.record(Outcome::Success, 0, 0, *at);
            }
            assert_eq!(minutes_of(stats.take_finished_minutes(*now)), *expected, "now {now}");
        }
        let retaken = stats.series(5, T0 + 4 * MINUTE);
        assert_eq!(retaken[1].requests, 2, "the late request was counted");
    }

    #[test]
    fn restore_loads_the_last_day_and_merges_with_live_counts() {
        let now = T0 + 3 * MINUTES_KEPT * MINUTE;
        let current = now / MINUTE;
        let persisted = |minute: u64, requests: u64| MinuteStats {
            minute,
            requests,
            failures: requests,
            failures_by_kind: kinds(&[("quota_per_minute", requests)]),
            ..Default::default()
        };
        let stats = Stats::new();
        // Live traffic in the current minute before the restore.
        stats.record(failure("quota_per_minute"), 0, 0, now);
        stats.restore(
            vec![
                persisted(current - MINUTES_KEPT, 1000), // older than 24 h
                persisted(current - (MINUTES_KEPT - 1), 1),
                persisted(current - 60, 10),
                persisted(current, 100),
                persisted(current + 1, 10_000), // in the future
            ],
            now,
        );
        let cases: &[(u64, u64)] = &[(1, 101), (60, 101), (61, 111), (MINUTES_KEPT, 112)];
        for (last_minutes, expected) in cases {
            let totals = stats.totals(*last_minutes, now);
            assert_eq!(totals.requests, *expected, "last {last_minutes} minutes");
            assert_eq!(totals.failures_by_kind, kinds(&[("quota_per_minute", *expected)]));
        }
        // Restored minutes are already stored; only the merged one is handed out again.
        let taken = stats.take_finished_minutes(now + MINUTE);
        assert_eq!(taken.iter().map(|entry| (entry.minute, entry.requests)).collect::<Vec<_>>(), vec![(current, 101)]);
    }

    #[test]
    fn active_requests_follow_the_guards() {
        let stats = Stats::new();
        assert_eq!(stats.active_requests(), 0);
        let first = stats.track_active();
        let second = stats.track_active();
        assert_eq!(stats.active_requests(), 2);
        drop(first);
        assert_eq!(stats.active_requests(), 1);
        // A guard may outlive the borrow it came from (a streaming body).
        let moved = std::thread::spawn(move || drop(second));
        moved.join().unwrap();
        assert_eq!(stats.active_requests(), 0);
    }

    #[test]
    fn stats_are_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Stats>();
        assert_send_sync::<ActiveRequest>();
        let stats = Arc::new(Stats::new());
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        stats.record(Outcome::Success, 1, 1, T0);
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(stats.totals(1, T0).requests, 1000);
    }

    #[test]
    fn chart_points_scale_values_into_the_box() {
        let cases: &[(&[u64], u32, u32, &str, u64)] = &[
            (&[], 100, 50, "", 0),
            (&[7], 100, 50, "0,0 100,0", 7),
            (&[0], 100, 50, "0,50 100,50", 0),
            (&[0, 0, 0], 100, 50, "0,50 50,50 100,50", 0),
            (&[0, 5, 10], 100, 50, "0,50 50,25 100,0", 10),
            (&[1, 2, 3, 4], 90, 30, "0,22.5 30,15 60,7.5 90,0", 4),
            (&[3, 1, 0], 100, 100, "0,0 50,66.67 100,100", 3),
        ];
        for (values, width, height, expected_points, expected_max) in cases {
            let chart = chart_points(values, *width, *height);
            assert_eq!(chart, ChartPoints { points: expected_points.to_string(), max: *expected_max }, "{values:?}");
        }
    }
}
