//! The rolling log the dashboard's Log page shows (§9): the last N records
//! of hajimi's own logging at `info` or more severe, each tagged with a
//! source (studio, vertex, dashboard, keys, system), plus a broadcast
//! channel for the live tail. Every message is redacted of keys and
//! registered secrets ([`crate::secret::redact_keys`]), has its control
//! characters escaped (as [`crate::secret::LogSafe`] does) and is cut to
//! [`MAX_MESSAGE_CHARS`], so a record is safe to show on a page as text.
//!
//! [`RingLogger`] is the process's `log::Log`: it hands every record to
//! env_logger unchanged (stderr and journald see what they always saw) and
//! copies hajimi's records into the process-wide ring ([`global`]).
//! Memory is bounded: the ring holds at most its capacity (settable at
//! runtime), and a subscriber that falls behind loses the oldest records
//! instead of holding them.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::secret::{redact_keys, Escaper};

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

/// Redacts, escapes and cuts a message for the ring.
fn safe_message(message: &str) -> String {
    let mut escaped = String::new();
    let _ = std::fmt::Write::write_str(&mut Escaper::new(&mut escaped, usize::MAX), &redact_keys(message));
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
        let message = safe_message(message);
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

/// The process's logger: env_logger for stderr, plus a copy of hajimi's
/// `info`-or-more-severe records in a [`LogRing`].
pub struct RingLogger {
    inner: env_logger::Logger,
    ring: Arc<LogRing>,
}

impl RingLogger {
    pub fn new(inner: env_logger::Logger, ring: Arc<LogRing>) -> RingLogger {
        RingLogger { inner, ring }
    }

    /// The level filter of the env_logger inside (for `log::set_max_level`).
    pub fn filter(&self) -> log::LevelFilter {
        self.inner.filter()
    }
}

impl log::Log for RingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata) || belongs_in_ring(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        self.inner.log(record);
        if belongs_in_ring(record.metadata()) {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since_epoch| u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX));
            let message = match record.args().as_str() {
                Some(text) => std::borrow::Cow::Borrowed(text),
                None => std::borrow::Cow::Owned(record.args().to_string()),
            };
            self.ring.push(record.level(), record.target(), &message, now_ms);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;
    use log::Log;

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
        let logger = RingLogger::new(inner, Arc::clone(&ring));
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
