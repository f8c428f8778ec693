//! The pool of AI Studio keys: which key serves the next upstream call, and
//! what each key's health is. Pure: every call takes `now` (Unix
//! milliseconds) from the caller and does no I/O, so the retry loop, the
//! validator and tests drive it the same way.
//!
//! Health is tracked per key (invalid, disabled) and per (key, model)
//! (cooling down until a time, exhausted until the next Pacific midnight),
//! because Google's quotas are per model. Locks are short and never held
//! across an `.await`: callers get an owned [`Lease`].

pub mod pacific;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::secret::ApiKey;

/// Stable identifier of a key within the pool (its position when added).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A key handed out for one upstream call.
#[derive(Debug, Clone)]
pub struct Lease {
    pub id: KeyId,
    pub key: ApiKey,
}

/// Why no key could be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnavailableReason {
    NoKeys,
    AllInvalid,
    AllExhaustedToday,
    AllCooling,
    /// Every usable key was already tried for this request.
    AllTried,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: UnavailableReason,
    /// Earliest time (Unix ms) at which some key becomes usable again.
    pub retry_at_ms: Option<u64>,
}

impl Unavailable {
    /// A message for the client, in English and Chinese like the original.
    pub fn message(&self) -> &'static str {
        match self.reason {
            UnavailableReason::NoKeys => "No Gemini API key is configured / 未配置任何 Gemini API 密钥",
            UnavailableReason::AllInvalid => "Every Gemini API key is invalid / 所有 API 密钥均已失效",
            UnavailableReason::AllExhaustedToday => {
                "Every Gemini API key has used up today's quota for this model / 所有 API 密钥今日额度已用尽"
            }
            UnavailableReason::AllCooling => {
                "Every Gemini API key is cooling down after rate limits; retry shortly / 所有 API 密钥正在冷却，请稍后重试"
            }
            UnavailableReason::AllTried => {
                "Every available Gemini API key failed for this request / 所有可用 API 密钥均请求失败"
            }
        }
    }
}

/// Cooldowns applied when Google gives no delay.
pub const DEFAULT_QUOTA_COOLDOWN_MS: u64 = 60_000;
pub const DEFAULT_RATE_LIMIT_COOLDOWN_MS: u64 = 30_000;
pub const SERVER_ERROR_COOLDOWN_MS: u64 = 2_000;

#[derive(Debug, Clone, Default)]
struct ModelHealth {
    cooling_until_ms: u64,
    cooling_reason: Option<FailureKind>,
    exhausted_until_ms: u64,
    successes_today: u64,
    failures_today: u64,
    day: i64,
}

#[derive(Debug, Default)]
struct KeyHealth {
    invalid: bool,
    disabled: bool,
    last_error: Option<String>,
    per_model: HashMap<String, ModelHealth>,
}

#[derive(Debug)]
struct KeyRecord {
    id: KeyId,
    key: ApiKey,
    health: Mutex<KeyHealth>,
}

/// Availability of one key for one model at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Availability {
    Ready,
    Invalid,
    Exhausted(u64),
    Cooling(u64),
}

impl KeyHealth {
    fn availability(&self, model: &str, now_ms: u64) -> Availability {
        if self.invalid || self.disabled {
            return Availability::Invalid;
        }
        match self.per_model.get(model) {
            Some(health) if health.exhausted_until_ms > now_ms => Availability::Exhausted(health.exhausted_until_ms),
            Some(health) if health.cooling_until_ms > now_ms => Availability::Cooling(health.cooling_until_ms),
            _ => Availability::Ready,
        }
    }

    fn model_mut(&mut self, model: &str, now_ms: u64) -> &mut ModelHealth {
        let today = pacific::pacific_day((now_ms / 1000) as i64);
        let health = self.per_model.entry(model.to_owned()).or_default();
        if health.day != today {
            health.day = today;
            health.successes_today = 0;
            health.failures_today = 0;
        }
        health
    }
}

/// Read-only view of one key for dashboards and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySnapshot {
    pub id: KeyId,
    pub masked: String,
    pub invalid: bool,
    pub disabled: bool,
    pub last_error: Option<String>,
    /// (model, cooling until ms, exhausted until ms, successes today, failures today)
    pub models: Vec<(String, u64, u64, u64, u64)>,
}

#[derive(Debug, Default)]
pub struct KeyPool {
    keys: RwLock<Vec<Arc<KeyRecord>>>,
    cursor: AtomicUsize,
}

impl KeyPool {
    pub fn new(keys: impl IntoIterator<Item = ApiKey>) -> KeyPool {
        let pool = KeyPool::default();
        pool.add(keys);
        pool
    }

    /// Adds keys not already present; returns how many were new.
    pub fn add(&self, keys: impl IntoIterator<Item = ApiKey>) -> usize {
        let mut records = self.keys.write();
        let mut added = 0;
        for key in keys {
            if records.iter().any(|record| record.key == key) {
                continue;
            }
            let id = KeyId(records.len() as u32);
            records.push(Arc::new(KeyRecord { id, key, health: Mutex::default() }));
            added += 1;
        }
        added
    }

    pub fn len(&self) -> usize {
        self.keys.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next key, round-robin, that can serve `model` now and is not in
    /// `exclude` (keys already tried for this request).
    pub fn pick(&self, model: &str, now_ms: u64, exclude: &[KeyId]) -> Result<Lease, Unavailable> {
        let records = self.keys.read();
        let count = records.len();
        if count == 0 {
            return Err(Unavailable { reason: UnavailableReason::NoKeys, retry_at_ms: None });
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % count;
        let (mut invalid, mut exhausted, mut cooling, mut tried) = (0, 0, 0, 0);
        let mut earliest: Option<u64> = None;
        for offset in 0..count {
            let record = &records[(start + offset) % count];
            let availability = record.health.lock().availability(model, now_ms);
            match availability {
                Availability::Ready if exclude.contains(&record.id) => tried += 1,
                Availability::Ready => {
                    self.cursor.store(start + offset + 1, Ordering::Relaxed);
                    return Ok(Lease { id: record.id, key: record.key.clone() });
                }
                Availability::Invalid => invalid += 1,
                Availability::Exhausted(until) => {
                    exhausted += 1;
                    earliest = Some(earliest.map_or(until, |e: u64| e.min(until)));
                }
                Availability::Cooling(until) => {
                    cooling += 1;
                    earliest = Some(earliest.map_or(until, |e: u64| e.min(until)));
                }
            }
        }
        let reason = if tried > 0 {
            UnavailableReason::AllTried
        } else if invalid == count {
            UnavailableReason::AllInvalid
        } else if cooling > 0 {
            UnavailableReason::AllCooling
        } else if exhausted > 0 {
            UnavailableReason::AllExhaustedToday
        } else {
            UnavailableReason::AllInvalid
        };
        Err(Unavailable { reason, retry_at_ms: earliest })
    }

    fn record(&self, id: KeyId) -> Option<Arc<KeyRecord>> {
        self.keys.read().get(id.0 as usize).cloned()
    }

    pub fn report_success(&self, id: KeyId, model: &str, now_ms: u64) {
        if let Some(record) = self.record(id) {
            let mut health = record.health.lock();
            let model_health = health.model_mut(model, now_ms);
            model_health.successes_today += 1;
            model_health.cooling_until_ms = 0;
            model_health.cooling_reason = None;
        }
    }

    /// Applies the consequence of a classified failure to the key.
    /// Client errors and unsupported locations are not the key's fault and
    /// change nothing.
    pub fn report_failure(&self, id: KeyId, model: &str, failure: &UpstreamFailure, now_ms: u64) {
        let Some(record) = self.record(id) else { return };
        let mut health = record.health.lock();
        let delay_ms = failure.retry_after.map(|d| d.as_millis() as u64);
        match failure.kind {
            FailureKind::ClientError | FailureKind::LocationUnsupported | FailureKind::ModelNotFound => return,
            FailureKind::KeyInvalid => health.invalid = true,
            FailureKind::QuotaPerDay => {
                let midnight_ms = pacific::next_pacific_midnight((now_ms / 1000) as i64) as u64 * 1000;
                health.model_mut(model, now_ms).exhausted_until_ms = midnight_ms;
            }
            kind @ (FailureKind::QuotaPerMinute | FailureKind::RateLimited | FailureKind::ServerError) => {
                let cooldown = match kind {
                    FailureKind::QuotaPerMinute => delay_ms.unwrap_or(DEFAULT_QUOTA_COOLDOWN_MS),
                    FailureKind::RateLimited => delay_ms.unwrap_or(DEFAULT_RATE_LIMIT_COOLDOWN_MS),
                    _ => SERVER_ERROR_COOLDOWN_MS,
                };
                let model_health = health.model_mut(model, now_ms);
                model_health.cooling_until_ms = now_ms + cooldown;
                model_health.cooling_reason = Some(kind);
            }
        }
        health.model_mut(model, now_ms).failures_today += 1;
        health.last_error = Some(format!("{} (HTTP {})", failure.kind.as_str(), failure.status));
    }

    pub fn snapshot(&self) -> Vec<KeySnapshot> {
        self.keys
            .read()
            .iter()
            .map(|record| {
                let health = record.health.lock();
                let mut models: Vec<_> = health
                    .per_model
                    .iter()
                    .map(|(model, h)| {
                        (model.clone(), h.cooling_until_ms, h.exhausted_until_ms, h.successes_today, h.failures_today)
                    })
                    .collect();
                models.sort();
                KeySnapshot {
                    id: record.id,
                    masked: record.key.masked(),
                    invalid: health.invalid,
                    disabled: health.disabled,
                    last_error: health.last_error.clone(),
                    models,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(n: u8) -> ApiKey {
        ApiKey::new(format!("AIza{}", (n as char).to_string().repeat(35)))
    }

    fn pool(n: u8) -> KeyPool {
        KeyPool::new((b'a'..b'a' + n).map(key))
    }

    fn failure(kind: FailureKind, retry_after_secs: Option<u64>) -> UpstreamFailure {
        UpstreamFailure {
            status: 429,
            kind,
            retry_after: retry_after_secs.map(Duration::from_secs),
            message: String::new(),
        }
    }

    const NOW: u64 = 1_780_000_000_000;

    #[test]
    fn round_robin_spreads_picks_over_all_keys() {
        let pool = pool(3);
        let ids: Vec<u32> = (0..6).map(|_| pool.pick("m", NOW, &[]).unwrap().id.0).collect();
        assert_eq!(ids, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn excluded_keys_are_skipped_and_reported_as_tried() {
        let pool = pool(2);
        let lease = pool.pick("m", NOW, &[KeyId(0)]).unwrap();
        assert_eq!(lease.id, KeyId(1));
        let error = pool.pick("m", NOW, &[KeyId(0), KeyId(1)]).unwrap_err();
        assert_eq!(error.reason, UnavailableReason::AllTried);
    }

    #[test]
    fn failures_change_state_per_model_and_expire() {
        let pool = pool(1);
        pool.report_failure(KeyId(0), "flash", &failure(FailureKind::QuotaPerMinute, Some(43)), NOW);
        let error = pool.pick("flash", NOW + 1000, &[]).unwrap_err();
        assert_eq!(error.reason, UnavailableReason::AllCooling);
        assert_eq!(error.retry_at_ms, Some(NOW + 43_000));
        // Another model on the same key is unaffected.
        assert!(pool.pick("pro", NOW + 1000, &[]).is_ok());
        // The cooldown ends.
        assert!(pool.pick("flash", NOW + 43_000, &[]).is_ok());
    }

    #[test]
    fn daily_quota_lasts_until_pacific_midnight() {
        let pool = pool(1);
        pool.report_failure(KeyId(0), "pro", &failure(FailureKind::QuotaPerDay, Some(17)), NOW);
        let midnight = pacific::next_pacific_midnight((NOW / 1000) as i64) as u64 * 1000;
        let error = pool.pick("pro", midnight - 1, &[]).unwrap_err();
        assert_eq!(error.reason, UnavailableReason::AllExhaustedToday);
        assert_eq!(error.retry_at_ms, Some(midnight));
        assert!(pool.pick("pro", midnight, &[]).is_ok());
    }

    #[test]
    fn invalid_keys_stay_out_and_client_errors_change_nothing() {
        let pool = pool(2);
        pool.report_failure(KeyId(0), "m", &failure(FailureKind::ClientError, None), NOW);
        assert_eq!(pool.snapshot()[0].last_error, None);
        pool.report_failure(KeyId(0), "m", &failure(FailureKind::KeyInvalid, None), NOW);
        for _ in 0..4 {
            assert_eq!(pool.pick("m", NOW, &[]).unwrap().id, KeyId(1));
        }
        pool.report_failure(KeyId(1), "m", &failure(FailureKind::KeyInvalid, None), NOW);
        assert_eq!(pool.pick("m", NOW, &[]).unwrap_err().reason, UnavailableReason::AllInvalid);
    }

    #[test]
    fn empty_pool_says_so_and_duplicates_are_not_added() {
        let pool = KeyPool::default();
        assert_eq!(pool.pick("m", NOW, &[]).unwrap_err().reason, UnavailableReason::NoKeys);
        assert_eq!(pool.add([key(b'a'), key(b'a'), key(b'b')]), 2);
        assert_eq!(pool.len(), 2);
    }
}
