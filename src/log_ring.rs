//! The rolling log the dashboard's Log page shows (§9): the last N records
//! of hajimi's own logging at `info` or more severe, each tagged with a
//! source (studio, vertex, dashboard, keys, system), plus a broadcast
//! channel for the live tail. Every message is redacted of keys and
//! registered secrets ([`crate::secret::redact_keys`]), has its control
//! characters escaped (as [`crate::secret::LogSafe`] does) and is cut to
//! [`MAX_MESSAGE_CHARS`], so a record is safe to show on a page as text.
//!
//! [`RingLogger`] is the process's `log::Log`: it writes every record
//! `RUST_LOG` lets through as one stderr line (written in batches:
//! [`crate::stderr_batch`]), in env_logger's default layout, redacted
//! like the ring's records, and copies hajimi's records into the
//! process-wide ring ([`global`]).
//! Memory is bounded: the ring holds at most its capacity (settable at
//! runtime), and a subscriber that falls behind loses the oldest records
//! instead of holding them.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::secret::{redact_keys, Escaper};
use crate::stderr_batch::StderrBatch;

pub const DEFAULT_CAPACITY: usize = 1000;
pub const MIN_CAPACITY: usize = 10;
pub const MAX_CAPACITY: usize = 100_000;
/// Records a live-tail subscriber may fall behind before it loses some.
pub const BROADCAST_CAPACITY: usize = 1024;
/// Longer messages are cut to this many characters, the last being `…`.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Every source, in the order the Log page offers them as filters.
pub const SOURCES: &[&str] = &["studio", "vertex", "dashboard", "keys", "system"];

/// Module prefixes (of `log` targets) and the source they belong to;
/// anything else is `system`.
const SOURCE_BY_TARGET_PREFIX: &[(&str, &str)] = &[
    ("hajimi::delivery", "studio"),
    ("hajimi::routes", "studio"),
    ("hajimi::gemini", "studio"),
    ("hajimi::openai", "studio"),
    ("hajimi::models", "studio"),
    ("hajimi::vertex", "vertex"),
    ("hajimi::dashboard", "dashboard"),
    ("hajimi::validator", "keys"),
    ("hajimi::keys", "keys"),
];

/// Whether `target` is the module `module` or one inside it
/// (`hajimi::keys::pool` is in `hajimi::keys`; `hajimi::keystore` is not).
fn target_is_in_module(target: &str, module: &str) -> bool {
    target.strip_prefix(module).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// The source a `log` target belongs to (one of [`SOURCES`]).
pub fn source_of(target: &str) -> &'static str {
    SOURCE_BY_TARGET_PREFIX
        .iter()
        .find(|(module, _)| target_is_in_module(target, module))
        .map_or("system", |(_, source)| source)
}

fn serialize_level<S: serde::Serializer>(level: &log::Level, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(level.as_str())
}

/// One record of the rolling log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogRecord {
    /// Increases by one per record pushed (from 1); lets a live tail skip
    /// what the page already shows. Not serialized.
    #[serde(skip)]
    pub seq: u64,
    pub time_ms: u64,
    /// Serialized as `ERROR`, `WARN`, `INFO`, …
    #[serde(serialize_with = "serialize_level")]
    pub level: log::Level,
    pub source: &'static str,
    /// Redacted, control characters escaped, at most [`MAX_MESSAGE_CHARS`].
    pub message: String,
}

struct Records {
    records: VecDeque<Arc<LogRecord>>,
    capacity: usize,
    next_seq: u64,
}

/// The bounded rolling log and its live-tail channel.
pub struct LogRing {
    records: Mutex<Records>,
    live: broadcast::Sender<Arc<LogRecord>>,
}

impl Default for LogRing {
    fn default() -> LogRing {
        LogRing::new(DEFAULT_CAPACITY)
    }
}

/// Escapes and cuts an already redacted message for the ring.
fn escaped_and_cut(redacted: &str) -> String {
    let mut escaped = String::with_capacity(redacted.len());
    let _ = std::fmt::Write::write_str(&mut Escaper::new(&mut escaped, usize::MAX), redacted);
    // Characters are at most 4 bytes: a short text needs no counting.
    if escaped.len() <= MAX_MESSAGE_CHARS || escaped.chars().count() <= MAX_MESSAGE_CHARS {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

impl LogRing {
    /// A ring holding at most `capacity` records (clamped to
    /// [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> LogRing {
        let capacity = capacity.clamp(MIN_CAPACITY, MAX_CAPACITY);
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        LogRing {
            records: Mutex::new(Records {
                records: VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY)),
                capacity,
                next_seq: 1,
            }),
            live,
        }
    }

    /// Changes how many records are kept (clamped to
    /// [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]); shrinking drops the oldest.
    /// Returns the capacity now in force.
    pub fn set_capacity(&self, capacity: usize) -> usize {
        let capacity = capacity.clamp(MIN_CAPACITY, MAX_CAPACITY);
        let mut records = self.records.lock();
        records.capacity = capacity;
        let excess = records.records.len().saturating_sub(capacity);
        records.records.drain(..excess);
        records.records.shrink_to(capacity);
        capacity
    }

    pub fn capacity(&self) -> usize {
        self.records.lock().capacity
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        self.records.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a record (made safe, see the module doc), dropping the oldest
    /// when full, and sends it to the live-tail subscribers.
    pub fn push(&self, level: log::Level, target: &str, message: &str, time_ms: u64) {
        self.push_redacted(level, target, &redact_keys(message), time_ms);
    }

    /// [`LogRing::push`] for a message already through [`redact_keys`].
    fn push_redacted(&self, level: log::Level, target: &str, redacted: &str, time_ms: u64) {
        let message = escaped_and_cut(redacted);
        let source = source_of(target);
        let mut records = self.records.lock();
        let record = Arc::new(LogRecord { seq: records.next_seq, time_ms, level, source, message });
        records.next_seq += 1;
        if records.records.len() >= records.capacity {
            records.records.pop_front();
        }
        records.records.push_back(Arc::clone(&record));
        // Sent under the lock, so subscribers see records in `seq` order.
        // No subscriber is not an error.
        let _ = self.live.send(record);
    }

    /// The records held, oldest first, at `min_level` or more severe
    /// (`Warn` gives warnings and errors) and of `source` (`None` or an
    /// empty string: every source).
    pub fn records(&self, min_level: Option<log::Level>, source: Option<&str>) -> Vec<LogRecord> {
        let source = source.filter(|source| !source.is_empty());
        let records = self.records.lock();
        records
            .records
            .iter()
            .filter(|record| min_level.is_none_or(|min_level| record.level <= min_level))
            .filter(|record| source.is_none_or(|source| record.source == source))
            .map(|record| LogRecord::clone(record))
            .collect()
    }

    /// Every record pushed from now on (for the live tail). A receiver that
    /// falls more than [`BROADCAST_CAPACITY`] records behind gets
    /// `RecvError::Lagged` and continues with the newer ones.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.live.subscribe()
    }
}

/// The process-wide ring [`RingLogger`] writes to and the dashboard reads.
/// Several apps started in one process (tests) share it.
pub fn global() -> &'static Arc<LogRing> {
    static GLOBAL: OnceLock<Arc<LogRing>> = OnceLock::new();
    GLOBAL.get_or_init(|| Arc::new(LogRing::default()))
}

/// Whether a record belongs in the ring: hajimi's own, at `info` or more
/// severe.
fn belongs_in_ring(metadata: &log::Metadata<'_>) -> bool {
    metadata.level() <= log::Level::Info && target_is_in_module(metadata.target(), "hajimi")
}

/// Longest message one stderr line carries (characters).
pub const MAX_LINE_CHARS: usize = 4000;

/// Where stderr lines go.
pub enum Sink {
    /// The process's stderr, in batches ([`crate::stderr_batch`]):
    /// warnings and errors at once, other lines within a few milliseconds.
    Stderr,
    /// Through `eprint!`, which a test harness captures.
    TestCapture,
    /// Kept, for this module's tests to read.
    #[cfg(test)]
    Collect(Arc<Mutex<Vec<String>>>),
}

/// The process's logger: one stderr line per record `RUST_LOG` lets
/// through (env_logger's filter), plus a copy of hajimi's
/// `info`-or-more-severe records in a [`LogRing`]. A record's message is
/// formatted once, in a per-thread buffer, and redacted once
/// ([`redact_keys`]), for both.
pub struct RingLogger {
    filter: env_logger::Logger,
    ring: Arc<LogRing>,
    sink: Sink,
}

impl RingLogger {
    /// `filter` decides which records reach stderr (its own format and
    /// writer are not used).
    pub fn new(filter: env_logger::Logger, ring: Arc<LogRing>, sink: Sink) -> RingLogger {
        RingLogger { filter, ring, sink }
    }

    /// The level filter of the env_logger inside (for `log::set_max_level`).
    pub fn filter(&self) -> log::LevelFilter {
        self.filter.filter()
    }
}

/// Per-thread buffers for formatting records: no allocation per line.
struct Scratch {
    message: String,
    line: String,
    /// Seconds since the epoch and their `YYYY-MM-DDTHH:MM:SS`, reused
    /// for every line within the same second.
    second: Option<(u64, String)>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new(Scratch { message: String::new(), line: String::new(), second: None }) };
}

/// Buffers that grew past this (a huge message) are let go after use.
const KEPT_SCRATCH_BYTES: usize = 64 * 1024;

impl log::Log for RingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.enabled(metadata) || belongs_in_ring(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        let to_stderr = self.filter.matches(record);
        let to_ring = belongs_in_ring(record.metadata());
        if !to_stderr && !to_ring {
            return;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since_epoch| u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX));
        let emit = |scratch: &mut Scratch| {
            let Scratch { message, line, second } = scratch;
            let message: &str = match record.args().as_str() {
                Some(text) => text,
                None => {
                    message.clear();
                    let _ = std::fmt::Write::write_fmt(message, *record.args());
                    message
                }
            };
            let redacted = redact_keys(message);
            if to_stderr {
                line.clear();
                format_line(line, second, now_ms, record.level(), record.target(), &redacted);
                match &self.sink {
                    Sink::Stderr => {
                        StderrBatch::stderr().push(line.as_bytes(), record.level() <= log::Level::Warn);
                    }
                    Sink::TestCapture => eprint!("{line}"),
                    #[cfg(test)]
                    Sink::Collect(lines) => lines.lock().push(line.clone()),
                }
            }
            if to_ring {
                self.ring.push_redacted(record.level(), record.target(), &redacted, now_ms);
            }
        };
        // A message whose formatting logs (re-entry) gets buffers of its own.
        let done = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                emit(&mut scratch);
                if scratch.message.capacity() > KEPT_SCRATCH_BYTES {
                    scratch.message = String::new();
                }
                true
            }
            Err(_) => false,
        });
        if !done {
            emit(&mut Scratch { message: String::new(), line: String::new(), second: None });
        }
    }

    fn flush(&self) {
        if matches!(self.sink, Sink::Stderr) {
            StderrBatch::stderr().flush();
        }
    }
}

/// One stderr line, as env_logger writes one by default
/// (`[2026-03-10T00:59:00.123Z INFO  target] message`), with the message
/// escaped and cut like [`crate::secret::LogSafe`] text: whatever a
/// message quotes, it stays one line of bounded length.
fn format_line(
    line: &mut String,
    second: &mut Option<(u64, String)>,
    now_ms: u64,
    level: log::Level,
    target: &str,
    message: &str,
) {
    use std::fmt::Write;
    let seconds = now_ms / 1000;
    if second.as_ref().is_none_or(|(cached, _)| *cached != seconds) {
        *second = Some((seconds, utc_second(seconds)));
    }
    let stamp = second.as_ref().map_or("", |(_, text)| text.as_str());
    let _ = write!(line, "[{stamp}.{:03}Z {level:<5} {target}] ", now_ms % 1000);
    let mut escaper = Escaper::new(&mut *line, MAX_LINE_CHARS);
    let _ = escaper.write_str(message).and_then(|()| escaper.finish());
    line.push('\n');
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a Unix time in seconds.
fn utc_second(seconds: u64) -> String {
    // Days to a civil date: Howard Hinnant's `civil_from_days`.
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let in_day = seconds % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", in_day / 3600, in_day / 60 % 60, in_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;
    use log::Log;

    #[test]
    fn a_record_is_one_bounded_line_whatever_it_quotes() {
        let (mut line, mut second) = (String::new(), None);
        let model = "[PAY]\r\nFORGED record";
        let message = format!("answer delivered model={model}");
        format_line(&mut line, &mut second, 1_710_028_740_123, Level::Info, "hajimi", &message);
        assert_eq!(line, "[2024-03-09T23:59:00.123Z INFO  hajimi] answer delivered model=[PAY]\\r\\nFORGED record\n");
        line.clear();
        format_line(&mut line, &mut second, 1_710_028_740_999, Level::Warn, "hajimi", &"x".repeat(100_000));
        assert!(line.starts_with("[2024-03-09T23:59:00.999Z WARN  hajimi] xxx"), "{}", &line[..60]);
        assert!(line.len() < MAX_LINE_CHARS + 64 && line.ends_with("…\n"));
    }

    #[test]
    fn keys_and_secrets_are_masked_on_stderr_as_in_the_ring() {
        let secret = "stderr-line-secret-7f3a";
        crate::secret::register_secret(secret);
        let ring = Arc::new(LogRing::new(MIN_CAPACITY));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let filter = env_logger::Builder::new().parse_filters("info").build();
        let logger = RingLogger::new(filter, Arc::clone(&ring), Sink::Collect(Arc::clone(&lines)));
        let (key, multiline) = (KEY, "a\nb");
        let args = format_args!("upstream said {key} with {secret} then {multiline}");
        logger.log(&log::Record::builder().level(Level::Warn).target("hajimi::gemini").args(args).build());
        // A record outside the ring's targets is still masked on stderr.
        let args = format_args!("from a library: {key}");
        logger.log(&log::Record::builder().level(Level::Warn).target("awc::client").args(args).build());
        let lines = lines.lock();
        assert_eq!(lines.len(), 2);
        let masked = crate::secret::ApiKey::new(KEY).masked();
        assert!(
            lines[0].ends_with(&format!("WARN  hajimi::gemini] upstream said {masked} with *** then a\\nb\n")),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with(&format!("WARN  awc::client] from a library: {masked}\n")), "{}", lines[1]);
        assert!(!lines.iter().any(|line| line.contains(KEY) || line.contains(secret)));
        assert_eq!(messages(&ring.records(None, None)), [format!("upstream said {masked} with *** then a\\nb")]);
    }

    #[test]
    fn line_times_are_utc_dates_as_env_logger_wrote_them() {
        assert_eq!(utc_second(0), "1970-01-01T00:00:00");
        assert_eq!(utc_second(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(utc_second(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(utc_second(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(utc_second(4_102_444_800), "2100-01-01T00:00:00");
        // The same second is formatted once and reused.
        let (mut line, mut second) = (String::new(), None);
        format_line(&mut line, &mut second, 86_400_500, Level::Error, "t", "m");
        assert_eq!(second.as_ref().map(|(s, _)| *s), Some(86_400));
        assert_eq!(line, "[1970-01-02T00:00:00.500Z ERROR t] m\n");
    }

    #[test]
    fn a_message_that_logs_while_it_is_formatted_is_written_all_the_same() {
        /// Logs through the same logger while it is formatted.
        struct Noisy<'a>(&'a RingLogger);
        impl std::fmt::Display for Noisy<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let inner = format_args!("inner record");
                self.0.log(&log::Record::builder().level(Level::Info).target("hajimi::keys").args(inner).build());
                f.write_str("outer")
            }
        }
        let ring = Arc::new(LogRing::new(MIN_CAPACITY));
        let filter = env_logger::Builder::new().parse_filters("info").build();
        let logger = RingLogger::new(filter, Arc::clone(&ring), Sink::TestCapture);
        let noisy = Noisy(&logger);
        logger.log(
            &log::Record::builder().level(Level::Info).target("hajimi::keys").args(format_args!("{noisy}")).build(),
        );
        assert_eq!(messages(&ring.records(None, None)), ["inner record", "outer"]);
    }

    const KEY: &str = "AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const T0: u64 = 1_710_028_740_000;

    fn messages(records: &[LogRecord]) -> Vec<String> {
        records.iter().map(|record| record.message.clone()).collect()
    }

    #[test]
    fn targets_are_classified_into_sources() {
        let cases = [
            ("hajimi::delivery::relay", "studio"),
            ("hajimi::delivery::stream", "studio"),
            ("hajimi::routes::chat", "studio"),
            ("hajimi::gemini::error", "studio"),
            ("hajimi::openai::convert", "studio"),
            ("hajimi::models", "studio"),
            ("hajimi::vertex::express", "vertex"),
            ("hajimi::dashboard::keys", "dashboard"),
            ("hajimi::validator", "keys"),
            ("hajimi::keys::pool", "keys"),
            ("hajimi::keystore", "system"),
            ("hajimi::deliveryman", "system"),
            ("hajimi::startup", "system"),
            ("hajimi", "system"),
            ("actix_server::worker", "system"),
            ("", "system"),
        ];
        for (target, expected) in cases {
            assert_eq!(source_of(target), expected, "{target}");
            assert!(SOURCES.contains(&expected));
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_records_and_resizes_at_runtime() {
        let ring = LogRing::new(3);
        assert_eq!(ring.capacity(), MIN_CAPACITY, "clamped up");
        for index in 0..15 {
            ring.push(Level::Info, "hajimi::delivery::relay", &format!("m{index}"), T0 + index);
        }
        let all = ring.records(None, None);
        assert_eq!(messages(&all), (5..15).map(|index| format!("m{index}")).collect::<Vec<_>>());
        assert_eq!(all.iter().map(|record| record.seq).collect::<Vec<_>>(), (6..=15).collect::<Vec<u64>>());
        assert_eq!(all[0].time_ms, T0 + 5);

        let cases: &[(usize, usize, usize)] = &[
            // (asked, capacity in force, records held after 20 more pushes)
            (12, 12, 12),
            (0, MIN_CAPACITY, MIN_CAPACITY),
            (1_000_000, MAX_CAPACITY, 20 + MIN_CAPACITY),
            (DEFAULT_CAPACITY, DEFAULT_CAPACITY, 40 + MIN_CAPACITY),
        ];
        for (asked, in_force, held_after) in cases {
            assert_eq!(ring.set_capacity(*asked), *in_force);
            assert_eq!(ring.capacity(), *in_force);
            assert!(ring.len() <= *in_force, "shrinking drops the oldest");
            for index in 0..20 {
                ring.push(Level::Warn, "hajimi", &format!("n{index}"), T0);
            }
            assert_eq!(ring.len(), *held_after, "capacity {asked}");
            assert_eq!(ring.records(None, None).last().unwrap().message, "n19");
        }
        assert_eq!(LogRing::default().capacity(), DEFAULT_CAPACITY);
    }

    #[test]
    fn records_filter_by_level_and_source() {
        let ring = LogRing::new(100);
        ring.push(Level::Error, "hajimi::vertex", "vertex error", T0);
        ring.push(Level::Warn, "hajimi::keys::pool", "keys warn", T0);
        ring.push(Level::Info, "hajimi::delivery::relay", "studio info", T0);
        ring.push(Level::Debug, "hajimi::delivery::relay", "studio debug", T0);
        ring.push(Level::Info, "hajimi::dashboard", "dashboard info", T0);
        let cases: &[(Option<Level>, Option<&str>, &[&str])] = &[
            (None, None, &["vertex error", "keys warn", "studio info", "studio debug", "dashboard info"]),
            (None, Some(""), &["vertex error", "keys warn", "studio info", "studio debug", "dashboard info"]),
            (Some(Level::Error), None, &["vertex error"]),
            (Some(Level::Warn), None, &["vertex error", "keys warn"]),
            (Some(Level::Info), None, &["vertex error", "keys warn", "studio info", "dashboard info"]),
            (None, Some("studio"), &["studio info", "studio debug"]),
            (Some(Level::Info), Some("studio"), &["studio info"]),
            (Some(Level::Warn), Some("studio"), &[]),
            (None, Some("keys"), &["keys warn"]),
            (None, Some("system"), &[]),
            (None, Some("nonsense"), &[]),
        ];
        for (min_level, source, expected) in cases {
            assert_eq!(messages(&ring.records(*min_level, *source)), *expected, "{min_level:?} {source:?}");
        }
    }

    #[test]
    fn messages_are_redacted_escaped_and_cut() {
        let long = "x".repeat(MAX_MESSAGE_CHARS + 10);
        let long_wide = "中".repeat(MAX_MESSAGE_CHARS + 1);
        let exactly_max = "y".repeat(MAX_MESSAGE_CHARS);
        let cut = |text: &str| format!("{}…", text.chars().take(MAX_MESSAGE_CHARS - 1).collect::<String>());
        let cases: Vec<(String, String)> = vec![
            (format!("key {KEY} was rejected"), "key AIza…aaaa was rejected".to_owned()),
            ("forged\nINFO admin logged in\r".to_owned(), "forged\\nINFO admin logged in\\r".to_owned()),
            ("\u{1b}[31mred\u{202e}".to_owned(), "\\u{1b}[31mred\\u{202e}".to_owned()),
            (long.clone(), cut(&long)),
            (long_wide.clone(), cut(&long_wide)),
            (exactly_max.clone(), exactly_max.clone()),
            (format!("{}{KEY}", "z".repeat(MAX_MESSAGE_CHARS)), cut(&"z".repeat(MAX_MESSAGE_CHARS))),
        ];
        let ring = LogRing::new(100);
        for (input, expected) in &cases {
            ring.push(Level::Warn, "hajimi::relay", input, T0);
            let stored = ring.records(None, None).pop().unwrap().message;
            assert_eq!(&stored, expected);
            assert!(stored.chars().count() <= MAX_MESSAGE_CHARS);
            assert!(!stored.contains("aaaaaaaaaaaa"));
        }
    }

    #[test]
    fn records_serialize_with_level_as_text() {
        let record =
            LogRecord { seq: 7, time_ms: T0, level: Level::Warn, source: "keys", message: "a \"quoted\" word".into() };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"time_ms": T0, "level": "WARN", "source": "keys", "message": "a \"quoted\" word"})
        );
    }

    #[actix_rt::test]
    async fn subscribers_receive_records_pushed_after_they_subscribe() {
        let ring = LogRing::new(100);
        ring.push(Level::Info, "hajimi::relay", "before", T0);
        let mut first = ring.subscribe();
        let mut second = ring.subscribe();
        ring.push(Level::Warn, "hajimi::vertex", &format!("after {KEY}"), T0 + 1);
        ring.push(Level::Error, "hajimi", "last", T0 + 2);
        for receiver in [&mut first, &mut second] {
            let record = receiver.recv().await.unwrap();
            assert_eq!((record.seq, record.level, record.source), (2, Level::Warn, "vertex"));
            assert_eq!(record.message, "after AIza…aaaa");
            assert_eq!(receiver.recv().await.unwrap().message, "last");
            assert!(receiver.try_recv().is_err(), "nothing else");
        }
        // Pushing without subscribers is fine.
        drop((first, second));
        ring.push(Level::Info, "hajimi", "unheard", T0 + 3);
        assert_eq!(ring.len(), 4);
    }

    #[test]
    fn the_logger_copies_hajimis_info_and_more_severe_records() {
        let inner = env_logger::Builder::new().filter_level(log::LevelFilter::Off).build();
        let ring = Arc::new(LogRing::new(100));
        let logger = RingLogger::new(inner, Arc::clone(&ring), Sink::TestCapture);
        assert_eq!(logger.filter(), log::LevelFilter::Off);
        let cases: &[(Level, &str, bool)] = &[
            (Level::Error, "hajimi::relay", true),
            (Level::Warn, "hajimi::keys::pool", true),
            (Level::Info, "hajimi::dashboard", true),
            (Level::Info, "hajimi", true),
            (Level::Debug, "hajimi::relay", false),
            (Level::Trace, "hajimi::relay", false),
            (Level::Info, "actix_server::worker", false),
            (Level::Error, "hajimi_other", false),
        ];
        for (level, target, kept) in cases {
            let before = ring.len();
            let metadata = log::Metadata::builder().level(*level).target(target).build();
            assert_eq!(logger.enabled(&metadata), *kept, "{level} {target}");
            logger.log(
                &log::Record::builder()
                    .level(*level)
                    .target(target)
                    .args(format_args!("{level} from {target}"))
                    .build(),
            );
            assert_eq!(ring.len() - before, usize::from(*kept), "{level} {target}");
        }
        let last = ring.records(None, None).pop().unwrap();
        assert_eq!((last.level, last.source, last.message.as_str()), (Level::Info, "system", "INFO from hajimi"));
        assert!(last.time_ms > T0);
        logger.flush();
    }

    #[test]
    fn the_global_ring_is_one_per_process() {
        assert!(Arc::ptr_eq(global(), global()));
        assert!(global().capacity() >= MIN_CAPACITY);
    }
}
