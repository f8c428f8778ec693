//! The pool of AI Studio keys: which key serves the next upstream call, and
//! the health of every key. Pure: every call takes `now_ms` (Unix
//! milliseconds) from the caller and does no I/O, so the retry loop, the
//! validator and the tests drive it the same way (see `penalty.rs` for what
//! each failure does to a key).
//!
//! States: per key `active`, `invalid` (until re-validated or re-added) or
//! `disabled` (by the operator); per (key, model) `cooling` until a time
//! with a reason, or `exhausted_today` until the next Pacific midnight —
//! Google's quotas are per model, so a key out of quota for one model still
//! serves the others.
//!
//! Selection is round-robin over the keys available for the requested
//! model, O(1) amortized per pick however many keys there are: each model
//! has a ring of ready keys and a min-heap of keys waiting for a time; a
//! key moves between them at most once per state change, and keys that
//! turned invalid are dropped lazily when they come up. One short critical
//! section per call; callers get an owned [`Lease`] and never hold the lock
//! across an `.await`.

pub mod pacific;
pub mod penalty;
pub mod validation;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use parking_lot::Mutex;

use crate::fasthash::{hash_str, FastBuildHasher};
use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::keys::pacific::{next_pacific_midnight, pacific_day};
use crate::keys::penalty::{penalty_for, CoolingReason, Penalty};
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
    /// Many keys were rate-limited at once: Google is limiting this
    /// server's IP or project, so the whole pool pauses briefly.
    GlobalBackoff,
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
            UnavailableReason::AllInvalid => "Every Gemini API key is invalid or disabled / 所有 API 密钥均已失效或被禁用",
            UnavailableReason::AllExhaustedToday => {
                "Every Gemini API key has used up today's quota for this model (resets at midnight Pacific time) / 所有 API 密钥今日该模型额度已用尽"
            }
            UnavailableReason::AllCooling => {
                "Every Gemini API key is cooling down after rate limits; retry shortly / 所有 API 密钥正在冷却，请稍后重试"
            }
            UnavailableReason::GlobalBackoff => {
                "Google is rate-limiting this server (many keys were refused at once); retry shortly / 上游限流，请稍后重试"
            }
            UnavailableReason::AllTried => {
                "Every available Gemini API key failed for this request / 所有可用 API 密钥均请求失败"
            }
        }
    }
}

/// Daily limits: successful calls per key per model per Pacific day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyLimits {
    /// `API_KEY_DAILY_LIMIT`; 0 = unlimited.
    pub default_limit: u32,
    /// Per-model overrides (0 = unlimited for that model).
    pub per_model: HashMap<String, u32>,
    /// The original's behaviour: when every key is over its limit, use one
    /// anyway instead of refusing.
    pub allow_over_limit: bool,
}

impl DailyLimits {
    fn limit_for(&self, model: &str) -> u32 {
        self.per_model.get(model).copied().unwrap_or(self.default_limit)
    }
}

/// Usage of one key for one model during one Pacific day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyUsage {
    pub successes: u64,
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A failure remembered for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorNote {
    pub at_ms: u64,
    pub model: String,
    pub kind: FailureKind,
    pub status: u16,
}

/// Operator-visible state of a key as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Invalid { since_ms: u64, reason: String },
    Disabled,
    Removed,
}

/// State of a key for one model, as the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelAvailability {
    Ready,
    Cooling { until_ms: u64, reason: CoolingReason },
    ExhaustedToday { until_ms: u64 },
    OverDailyLimit { until_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelView {
    pub model: String,
    pub availability: ModelAvailability,
    pub usage_today: DailyUsage,
}

/// Read-only view of one key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub id: KeyId,
    pub masked: String,
    pub state: KeyState,
    pub models: Vec<ModelView>,
    pub recent_errors: Vec<ErrorNote>,
    pub last_used_ms: u64,
    pub last_validated_ms: u64,
}

/// Counts over the whole pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolSummary {
    pub total: usize,
    pub active: usize,
    pub invalid: usize,
    pub disabled: usize,
    /// Active keys cooling or exhausted for at least one model.
    pub limited_for_some_model: usize,
    pub global_backoff_until_ms: Option<u64>,
}

const RECENT_ERRORS_KEPT: usize = 5;
/// Model queues kept; beyond that the least recently used one is dropped
/// (model names come from clients, so their number must be bounded, and a
/// queue costs ~5 bytes per key). Only the index goes: key health and
/// usage per model live in `model_states` and are never lost this way.
const MAX_MODEL_QUEUES: usize = 32;
/// A "storm": this many distinct keys rate-limited within the window.
const STORM_WINDOW_MS: u64 = 5_000;
const STORM_MIN_KEYS: usize = 3;
const STORM_MAX_KEYS: usize = 20;
const GLOBAL_BACKOFF_INITIAL_MS: u64 = 5_000;
const GLOBAL_BACKOFF_MAX_MS: u64 = 60_000;

#[derive(Debug)]
struct KeyRecord {
    key: ApiKey,
    state: KeyState,
    /// Newest first; allocated on the first error only.
    recent_errors: Vec<ErrorNote>,
    last_used_ms: u64,
    last_validated_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    None,
    Ready,
    Waiting,
    OverLimit,
}

#[derive(Debug, Clone, Copy, Default)]
struct ModelKeyState {
    cooling_until_ms: u64,
    cooling_reason: Option<CoolingReason>,
    exhausted_until_ms: u64,
    day: i64,
    usage: DailyUsage,
    /// Listed in `PoolInner::changed_usage` since the last drain.
    usage_changed: bool,
}

impl ModelKeyState {
    fn blocked_until(&self, now_ms: u64) -> Option<u64> {
        let until = self.cooling_until_ms.max(self.exhausted_until_ms);
        (until > now_ms).then_some(until)
    }

    fn usage_on(&self, day: i64) -> DailyUsage {
        if self.day == day {
            self.usage
        } else {
            DailyUsage::default()
        }
    }

    fn usage_mut(&mut self, day: i64) -> &mut DailyUsage {
        if self.day != day {
            self.day = day;
            self.usage = DailyUsage::default();
        }
        &mut self.usage
    }
}

#[derive(Debug)]
struct ModelQueue {
    ready: VecDeque<KeyId>,
    waiting: BinaryHeap<Reverse<(u64, KeyId)>>,
    over_limit: VecDeque<KeyId>,
    membership: Vec<Membership>,
    last_used_tick: u64,
}

impl ModelQueue {
    fn new(keys: &[KeyRecord], tick: u64) -> ModelQueue {
        let mut queue = ModelQueue {
            ready: VecDeque::with_capacity(keys.len()),
            waiting: BinaryHeap::new(),
            over_limit: VecDeque::new(),
            membership: vec![Membership::None; keys.len()],
            last_used_tick: tick,
        };
        for (index, record) in keys.iter().enumerate() {
            if record.state == KeyState::Active {
                queue.enqueue_ready(KeyId(index as u32));
            }
        }
        queue
    }

    fn membership_of(&self, id: KeyId) -> Membership {
        self.membership.get(id.0 as usize).copied().unwrap_or(Membership::None)
    }

    fn set_membership(&mut self, id: KeyId, membership: Membership) {
        let index = id.0 as usize;
        if index >= self.membership.len() {
            self.membership.resize(index + 1, Membership::None);
        }
        self.membership[index] = membership;
    }

    /// Puts a key that is in no structure into the ready ring.
    fn enqueue_ready(&mut self, id: KeyId) {
        if self.membership_of(id) == Membership::None {
            self.ready.push_back(id);
            self.set_membership(id, Membership::Ready);
        }
    }

    fn wait_until(&mut self, id: KeyId, until_ms: u64) {
        self.waiting.push(Reverse((until_ms, id)));
        self.set_membership(id, Membership::Waiting);
    }

    /// Moves keys whose wait is over back to the ready ring.
    fn release_due(&mut self, now_ms: u64, states: Option<&ModelStates>) {
        while let Some(Reverse((until, id))) = self.waiting.peek().copied() {
            if until > now_ms {
                break;
            }
            self.waiting.pop();
            // The wait may have been extended since the key was parked.
            match states.and_then(|states| states.get(&id)).and_then(|state| state.blocked_until(now_ms)) {
                Some(later) => self.waiting.push(Reverse((later, id))),
                None => {
                    self.set_membership(id, Membership::None);
                    self.enqueue_ready(id);
                }
            }
        }
    }
}

impl ModelKeyState {
    fn availability(&self, now_ms: u64, day: i64, limit: u32) -> ModelAvailability {
        let state = self;
        if state.exhausted_until_ms > now_ms {
            return ModelAvailability::ExhaustedToday { until_ms: state.exhausted_until_ms };
        }
        if state.cooling_until_ms > now_ms {
            return ModelAvailability::Cooling {
                until_ms: state.cooling_until_ms,
                reason: state.cooling_reason.unwrap_or(CoolingReason::RateLimited),
            };
        }
        if limit > 0 && state.usage_on(day).successes >= u64::from(limit) {
            let until_ms = next_pacific_midnight((now_ms / 1000) as i64) as u64 * 1000;
            return ModelAvailability::OverDailyLimit { until_ms };
        }
        ModelAvailability::Ready
    }
}

/// Health and usage of keys for one model. Kept apart from the model's
/// queue: a queue is only an index and may be dropped and rebuilt, this
/// state must never be lost.
type ModelStates = HashMap<KeyId, ModelKeyState, FastBuildHasher>;

#[derive(Debug, Default)]
struct PoolInner {
    keys: Vec<KeyRecord>,
    /// Hash of the key → its id. A (never seen) 64-bit collision falls
    /// back to a scan, so lookups stay exact.
    index: HashMap<u64, KeyId, FastBuildHasher>,
    active_count: usize,
    models: HashMap<String, ModelQueue>,
    model_states: HashMap<String, ModelStates>,
    tick: u64,
    limits: DailyLimits,
    current_day: i64,
    recent_rate_limits: VecDeque<(u64, KeyId)>,
    global_backoff_until_ms: u64,
    global_backoff_ms: u64,
    /// (model, key) pairs whose usage changed since the last
    /// `take_changed_usage` (persisted by a background job); each pair at
    /// most once (`ModelKeyState::usage_changed`).
    changed_usage: Vec<(String, KeyId)>,
}

/// The state of `id` for `model` in `states`, made if it has none.
fn model_key_state<'a>(states: &'a mut HashMap<String, ModelStates>, model: &str, id: KeyId) -> &'a mut ModelKeyState {
    if !states.contains_key(model) {
        states.insert(model.to_owned(), ModelStates::default());
    }
    states.get_mut(model).expect("inserted above").entry(id).or_default()
}

fn key_hash(key: &ApiKey) -> u64 {
    hash_str(key.expose())
}

impl PoolInner {
    fn find(&self, key: &ApiKey, hash: u64) -> Option<KeyId> {
        let id = *self.index.get(&hash)?;
        if self.keys[id.0 as usize].key == *key {
            return Some(id);
        }
        self.keys.iter().position(|record| record.key == *key).map(|index| KeyId(index as u32))
    }

    fn record(&self, id: KeyId) -> Option<&KeyRecord> {
        self.keys.get(id.0 as usize)
    }

    fn set_state(&mut self, id: KeyId, state: KeyState) {
        let Some(record) = self.keys.get_mut(id.0 as usize) else { return };
        let was_active = record.state == KeyState::Active;
        let is_active = state == KeyState::Active;
        record.state = state;
        match (was_active, is_active) {
            (false, true) => {
                self.active_count += 1;
                for queue in self.models.values_mut() {
                    queue.enqueue_ready(id);
                }
            }
            (true, false) => self.active_count -= 1,
            _ => {}
        }
    }

    fn roll_day(&mut self, now_ms: u64) {
        let today = pacific_day((now_ms / 1000) as i64);
        if today != self.current_day {
            self.current_day = today;
            // Yesterday's counters are gone; keep only states still in force.
            for states in self.model_states.values_mut() {
                states.retain(|_, state| state.blocked_until(now_ms).is_some());
            }
            self.model_states.retain(|_, states| !states.is_empty());
            for queue in self.models.values_mut() {
                while let Some(id) = queue.over_limit.pop_front() {
                    queue.set_membership(id, Membership::None);
                    queue.enqueue_ready(id);
                }
            }
        }
    }

    /// Makes `model`'s queue if it has none (dropping the least recently
    /// used one past `MAX_MODEL_QUEUES`). Returns the tick to stamp it with.
    fn ensure_queue(&mut self, model: &str) -> u64 {
        self.tick += 1;
        let tick = self.tick;
        if !self.models.contains_key(model) {
            if self.models.len() >= MAX_MODEL_QUEUES {
                if let Some(oldest) =
                    self.models.iter().min_by_key(|(_, queue)| queue.last_used_tick).map(|(name, _)| name.clone())
                {
                    self.models.remove(&oldest);
                }
            }
            self.models.insert(model.to_owned(), ModelQueue::new(&self.keys, tick));
        }
        tick
    }

    /// The state of `id` for `model`, made if it has none.
    fn state_mut(&mut self, model: &str, id: KeyId) -> &mut ModelKeyState {
        model_key_state(&mut self.model_states, model, id)
    }

    /// The state of `id` for `model`, its usage about to change: noted for
    /// the next `take_changed_usage`, each pair at most once between drains
    /// (no allocation on the hot path after the first change).
    fn usage_to_change(&mut self, model: &str, id: KeyId) -> &mut ModelKeyState {
        let state = model_key_state(&mut self.model_states, model, id);
        if !state.usage_changed {
            state.usage_changed = true;
            self.changed_usage.push((model.to_owned(), id));
        }
        state
    }

    fn lease(&mut self, id: KeyId, now_ms: u64) -> Lease {
        let record = &mut self.keys[id.0 as usize];
        record.last_used_ms = now_ms;
        Lease { id, key: record.key.clone() }
    }

    fn pick(&mut self, model: &str, now_ms: u64, exclude: &[KeyId]) -> Result<Lease, Unavailable> {
        self.roll_day(now_ms);
        if self.keys.is_empty() {
            return Err(Unavailable { reason: UnavailableReason::NoKeys, retry_at_ms: None });
        }
        if self.active_count == 0 {
            return Err(Unavailable { reason: UnavailableReason::AllInvalid, retry_at_ms: None });
        }
        if self.global_backoff_until_ms > now_ms {
            return Err(Unavailable {
                reason: UnavailableReason::GlobalBackoff,
                retry_at_ms: Some(self.global_backoff_until_ms),
            });
        }
        let day = self.current_day;
        let limit = u64::from(self.limits.limit_for(model));
        let allow_over_limit = self.limits.allow_over_limit;
        let midnight_ms = pacific::next_pacific_midnight_cached((now_ms / 1000) as i64) as u64 * 1000;
        let tick = self.ensure_queue(model);
        // Disjoint field borrows: the queue is mutated while key states are read.
        let keys = &self.keys;
        let states = self.model_states.get(model);
        let queue = self.models.get_mut(model).expect("made by ensure_queue()");
        queue.last_used_tick = tick;
        queue.release_due(now_ms, states);
        let mut chosen = None;
        let mut skipped_as_tried = 0;
        let mut budget = queue.ready.len();
        while budget > 0 {
            budget -= 1;
            let Some(id) = queue.ready.pop_front() else { break };
            if keys.get(id.0 as usize).map(|record| &record.state) != Some(&KeyState::Active) {
                queue.set_membership(id, Membership::None);
                continue;
            }
            let state = states.and_then(|states| states.get(&id)).copied().unwrap_or_default();
            if let Some(until) = state.blocked_until(now_ms) {
                queue.wait_until(id, until);
                continue;
            }
            if limit > 0 && state.usage_on(day).successes >= limit {
                if allow_over_limit {
                    queue.over_limit.push_back(id);
                    queue.set_membership(id, Membership::OverLimit);
                } else {
                    queue.wait_until(id, midnight_ms);
                }
                continue;
            }
            queue.ready.push_back(id);
            if exclude.contains(&id) {
                skipped_as_tried += 1;
                continue;
            }
            chosen = Some(id);
            break;
        }
        if chosen.is_none() && allow_over_limit {
            for _ in 0..queue.over_limit.len() {
                let Some(id) = queue.over_limit.pop_front() else { break };
                if keys.get(id.0 as usize).map(|record| &record.state) != Some(&KeyState::Active) {
                    queue.set_membership(id, Membership::None);
                    continue;
                }
                queue.over_limit.push_back(id);
                let blocked = states.and_then(|states| states.get(&id)).and_then(|state| state.blocked_until(now_ms));
                if blocked.is_some() {
                    continue; // Over its limit and cooling too: not even the fallback.
                }
                if exclude.contains(&id) {
                    skipped_as_tried += 1;
                    continue;
                }
                chosen = Some(id);
                break;
            }
        }
        let earliest = queue.waiting.peek().map(|Reverse((until, id))| (*until, *id));
        let exhausted_first = earliest.is_some_and(|(until, id)| {
            states.and_then(|states| states.get(&id)).is_some_and(|state| state.exhausted_until_ms >= until)
                || until >= midnight_ms
        });
        if let Some(id) = chosen {
            return Ok(self.lease(id, now_ms));
        }
        let reason = if skipped_as_tried > 0 {
            UnavailableReason::AllTried
        } else if earliest.is_none() {
            UnavailableReason::AllInvalid
        } else if exhausted_first {
            UnavailableReason::AllExhaustedToday
        } else {
            UnavailableReason::AllCooling
        };
        Err(Unavailable { reason, retry_at_ms: earliest.map(|(until, _)| until) })
    }

    fn note_rate_limit(&mut self, id: KeyId, now_ms: u64) -> bool {
        self.recent_rate_limits.push_back((now_ms, id));
        while self.recent_rate_limits.front().is_some_and(|(at, _)| at + STORM_WINDOW_MS < now_ms) {
            self.recent_rate_limits.pop_front();
        }
        let mut distinct: Vec<KeyId> = self.recent_rate_limits.iter().map(|(_, id)| *id).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let threshold = (self.active_count / 2).clamp(STORM_MIN_KEYS, STORM_MAX_KEYS);
        if distinct.len() < threshold {
            return false;
        }
        // A storm: pause everything briefly, and do not hold the refusals
        // against the keys (it was the IP or project, not them).
        self.global_backoff_ms = if self.global_backoff_ms == 0 {
            GLOBAL_BACKOFF_INITIAL_MS
        } else {
            (self.global_backoff_ms * 2).min(GLOBAL_BACKOFF_MAX_MS)
        };
        self.global_backoff_until_ms = now_ms + self.global_backoff_ms;
        for states in self.model_states.values_mut() {
            for id in &distinct {
                if let Some(state) = states.get_mut(id) {
                    if state.cooling_reason == Some(CoolingReason::RateLimited) {
                        state.cooling_until_ms = 0;
                        state.cooling_reason = None;
                    }
                }
            }
        }
        self.recent_rate_limits.clear();
        true
    }
}

#[derive(Debug, Default)]
pub struct KeyPool {
    inner: Mutex<PoolInner>,
}

/// What happened to a key after a reported failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    pub penalty: Penalty,
    /// This failure tipped the pool into a global back-off.
    pub started_global_backoff: bool,
}

impl KeyPool {
    pub fn new(keys: impl IntoIterator<Item = ApiKey>) -> KeyPool {
        let pool = KeyPool::default();
        pool.add(keys);
        pool
    }

    /// Adds keys; keys already present are reactivated if they were invalid
    /// or removed (a re-added key gets a fresh chance) but stay disabled if
    /// the operator disabled them. Returns the number of keys new to the pool.
    pub fn add(&self, keys: impl IntoIterator<Item = ApiKey>) -> usize {
        let mut inner = self.inner.lock();
        let keys = keys.into_iter();
        let expected = keys.size_hint().0;
        inner.keys.reserve(expected);
        inner.index.reserve(expected);
        let mut added = 0;
        for key in keys {
            let hash = key_hash(&key);
            if let Some(id) = inner.find(&key, hash) {
                if matches!(inner.keys[id.0 as usize].state, KeyState::Invalid { .. } | KeyState::Removed) {
                    inner.set_state(id, KeyState::Active);
                }
                continue;
            }
            let id = KeyId(inner.keys.len() as u32);
            inner.index.entry(hash).or_insert(id);
            inner.keys.push(KeyRecord {
                key,
                state: KeyState::Removed,
                recent_errors: Vec::new(),
                last_used_ms: 0,
                last_validated_ms: 0,
            });
            inner.set_state(id, KeyState::Active);
            added += 1;
        }
        added
    }

    /// Number of keys ever added (ids are `0..len`), removed ones included.
    /// Keys ever added, removed ones included (ids are never reused).
    pub fn len(&self) -> usize {
        self.inner.lock().keys.len()
    }

    /// Keys in service now (not invalid, disabled or removed); O(1).
    pub fn active_count(&self) -> usize {
        self.inner.lock().active_count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The daily limit that refuses a key for `model` once reached: `None`
    /// when unlimited or when over-limit use is allowed.
    pub fn enforced_limit(&self, model: &str) -> Option<u64> {
        let inner = self.inner.lock();
        let limit = inner.limits.limit_for(model);
        (limit > 0 && !inner.limits.allow_over_limit).then_some(u64::from(limit))
    }

    pub fn set_daily_limits(&self, limits: DailyLimits) {
        self.inner.lock().limits = limits;
    }

    /// The next key, round-robin, that can serve `model` now and is not in
    /// `exclude` (keys already tried for this request).
    pub fn pick(&self, model: &str, now_ms: u64, exclude: &[KeyId]) -> Result<Lease, Unavailable> {
        self.inner.lock().pick(model, now_ms, exclude)
    }

    /// `preferred` itself when it can serve `model` now (active, not
    /// resting for the model, under its daily limit, no pool-wide pause):
    /// a follow-up whose thought signature this key produced goes back to
    /// it. `None` sends the caller to [`KeyPool::pick`].
    pub fn pick_preferred(&self, model: &str, now_ms: u64, preferred: KeyId) -> Option<Lease> {
        let mut inner = self.inner.lock();
        inner.roll_day(now_ms);
        if inner.global_backoff_until_ms > now_ms {
            return None;
        }
        let record = inner.keys.get(preferred.0 as usize)?;
        if record.state != KeyState::Active {
            return None;
        }
        let key = record.key.clone();
        let state =
            inner.model_states.get(model).and_then(|states| states.get(&preferred)).copied().unwrap_or_default();
        if state.blocked_until(now_ms).is_some() {
            return None;
        }
        let limit = u64::from(inner.limits.limit_for(model));
        if limit > 0 && state.usage_on(inner.current_day).successes >= limit && !inner.limits.allow_over_limit {
            return None;
        }
        Some(Lease { id: preferred, key })
    }

    /// Some active key, for calls that belong to no model (the model
    /// list), found without touching any model's queue.
    pub fn any_active_key(&self) -> Option<Lease> {
        let inner = self.inner.lock();
        let count = inner.keys.len();
        if count == 0 {
            return None;
        }
        let start = inner.tick as usize % count;
        (0..count).map(|offset| (start + offset) % count).find_map(|index| {
            let record = &inner.keys[index];
            (record.state == KeyState::Active).then(|| Lease { id: KeyId(index as u32), key: record.key.clone() })
        })
    }

    /// Records a successful call and the tokens it used.
    pub fn report_success(&self, id: KeyId, model: &str, prompt_tokens: u64, completion_tokens: u64, now_ms: u64) {
        let mut inner = self.inner.lock();
        inner.roll_day(now_ms);
        let day = inner.current_day;
        inner.global_backoff_ms = 0;
        let state = inner.usage_to_change(model, id);
        state.cooling_until_ms = 0;
        state.cooling_reason = None;
        let usage = state.usage_mut(day);
        usage.successes += 1;
        usage.prompt_tokens = usage.prompt_tokens.saturating_add(prompt_tokens);
        usage.completion_tokens = usage.completion_tokens.saturating_add(completion_tokens);
    }

    /// Applies the consequence of a classified failure to the key (see
    /// `penalty.rs`) and watches for rate-limit storms.
    pub fn report_failure(&self, id: KeyId, model: &str, failure: &UpstreamFailure, now_ms: u64) -> FailureOutcome {
        let penalty = penalty_for(failure, now_ms);
        let mut inner = self.inner.lock();
        if inner.record(id).is_none() {
            return FailureOutcome { penalty: Penalty::None, started_global_backoff: false };
        }
        inner.roll_day(now_ms);
        let day = inner.current_day;
        if penalty != Penalty::None {
            let record = &mut inner.keys[id.0 as usize];
            let note = ErrorNote { at_ms: now_ms, model: model.to_owned(), kind: failure.kind, status: failure.status };
            record.recent_errors.insert(0, note);
            record.recent_errors.truncate(RECENT_ERRORS_KEPT);
        }
        match penalty {
            Penalty::None => {}
            Penalty::Invalid => inner.set_state(
                id,
                KeyState::Invalid {
                    since_ms: now_ms,
                    reason: format!("{} (HTTP {})", failure.message, failure.status),
                },
            ),
            Penalty::Cooling { until_ms, reason } => {
                let state = inner.usage_to_change(model, id);
                state.cooling_until_ms = state.cooling_until_ms.max(until_ms);
                state.cooling_reason = Some(reason);
                state.usage_mut(day).failures += 1;
            }
            Penalty::ExhaustedToday { until_ms } => {
                let state = inner.usage_to_change(model, id);
                state.exhausted_until_ms = until_ms;
                state.usage_mut(day).failures += 1;
            }
        }
        // Only bare 429s count towards a storm: a 429 naming a per-key quota
        // is that key's own limit.
        let storm = failure.kind == FailureKind::RateLimited && inner.note_rate_limit(id, now_ms);
        FailureOutcome { penalty, started_global_backoff: storm }
    }

    /// Validation found the key working.
    pub fn mark_valid(&self, id: KeyId, now_ms: u64) {
        let mut inner = self.inner.lock();
        let Some(record) = inner.keys.get_mut(id.0 as usize) else { return };
        record.last_validated_ms = now_ms;
        if matches!(record.state, KeyState::Invalid { .. }) {
            inner.set_state(id, KeyState::Active);
        }
    }

    /// Validation got a definite "invalid key" answer.
    pub fn mark_invalid(&self, id: KeyId, reason: &str, now_ms: u64) {
        let mut inner = self.inner.lock();
        let Some(record) = inner.keys.get_mut(id.0 as usize) else { return };
        record.last_validated_ms = now_ms;
        if record.state == KeyState::Active {
            inner.set_state(id, KeyState::Invalid { since_ms: now_ms, reason: reason.to_owned() });
        }
    }

    /// Validation could not decide (rate limit, network): only note the time.
    pub fn mark_checked(&self, id: KeyId, now_ms: u64) {
        if let Some(record) = self.inner.lock().keys.get_mut(id.0 as usize) {
            record.last_validated_ms = now_ms;
        }
    }

    /// Operator actions.
    pub fn set_disabled(&self, id: KeyId, disabled: bool) {
        let mut inner = self.inner.lock();
        match (inner.record(id).map(|record| record.state.clone()), disabled) {
            (Some(KeyState::Active | KeyState::Invalid { .. }), true) => inner.set_state(id, KeyState::Disabled),
            (Some(KeyState::Disabled), false) => inner.set_state(id, KeyState::Active),
            _ => {}
        }
    }

    /// Another replica found the key resting for `model` until `until_ms`:
    /// cooling (rate limited, overloaded) or, with `exhausted`, its daily
    /// quota used up.
    pub fn rest_until(&self, id: KeyId, model: &str, until_ms: u64, exhausted: bool, now_ms: u64) {
        let mut inner = self.inner.lock();
        if inner.record(id).is_none() || until_ms <= now_ms {
            return;
        }
        let state = inner.state_mut(model, id);
        if exhausted {
            state.exhausted_until_ms = state.exhausted_until_ms.max(until_ms);
        } else {
            state.cooling_until_ms = state.cooling_until_ms.max(until_ms);
            state.cooling_reason.get_or_insert(CoolingReason::RateLimited);
        }
    }

    pub fn remove(&self, id: KeyId) {
        self.inner.lock().set_state(id, KeyState::Removed);
    }

    /// Keys to validate: every key not removed or disabled, or only the
    /// invalid ones (the slow re-check).
    pub fn keys_to_validate(&self, only_invalid: bool) -> Vec<Lease> {
        let inner = self.inner.lock();
        inner
            .keys
            .iter()
            .enumerate()
            .filter(|(_, record)| match &record.state {
                KeyState::Invalid { .. } => true,
                KeyState::Active => !only_invalid,
                KeyState::Disabled | KeyState::Removed => false,
            })
            .map(|(index, record)| Lease { id: KeyId(index as u32), key: record.key.clone() })
            .collect()
    }

    /// The id of `key`, if it is in the pool (removed keys included).
    pub fn id_of(&self, key: &ApiKey) -> Option<KeyId> {
        let inner = self.inner.lock();
        inner.find(key, key_hash(key))
    }

    /// The key itself, for the two places that need it: persistence and
    /// the password-protected export.
    pub fn key_of(&self, id: KeyId) -> Option<ApiKey> {
        self.inner.lock().record(id).map(|record| record.key.clone())
    }

    /// Usage rows changed since the last call: (key, model, Pacific day,
    /// usage). For persistence.
    pub fn take_changed_usage(&self) -> Vec<(ApiKey, String, i64, DailyUsage)> {
        let mut inner = self.inner.lock();
        let changed = std::mem::take(&mut inner.changed_usage);
        let day = inner.current_day;
        changed
            .into_iter()
            .filter_map(|(model, id)| {
                let state = inner.model_states.get_mut(&model)?.get_mut(&id)?;
                state.usage_changed = false;
                let state = *state;
                let key = inner.record(id)?.key.clone();
                Some((key, model, day, state.usage_on(day)))
            })
            .collect()
    }

    /// Puts back usage persisted earlier today (at startup). Rows of
    /// another day are ignored.
    pub fn restore_usage(&self, id: KeyId, model: &str, pacific_day_of_row: i64, usage: DailyUsage, now_ms: u64) {
        let mut inner = self.inner.lock();
        inner.roll_day(now_ms);
        if pacific_day_of_row != inner.current_day || inner.record(id).is_none() {
            return;
        }
        let day = inner.current_day;
        *inner.state_mut(model, id).usage_mut(day) = usage;
    }

    /// Sets an invalid state remembered from before a restart.
    pub fn restore_invalid(&self, id: KeyId, reason: &str, since_ms: u64) {
        let mut inner = self.inner.lock();
        if inner.record(id).is_some_and(|record| record.state == KeyState::Active) {
            inner.set_state(id, KeyState::Invalid { since_ms, reason: reason.to_owned() });
        }
    }

    /// Ids (in order) of the keys whose state passes `filter`, for paging
    /// and search without building a view of every key.
    pub fn find_ids(&self, mut filter: impl FnMut(KeyId, &str, &KeyState, bool) -> bool, now_ms: u64) -> Vec<KeyId> {
        let inner = self.inner.lock();
        let limited: HashSet<KeyId> = inner
            .model_states
            .values()
            .flat_map(|states| states.iter().filter(|(_, state)| state.blocked_until(now_ms).is_some()))
            .map(|(id, _)| *id)
            .collect();
        inner
            .keys
            .iter()
            .enumerate()
            .filter(|(_, record)| record.state != KeyState::Removed)
            .filter_map(|(index, record)| {
                let id = KeyId(index as u32);
                let masked_tail = record.key.expose().get(record.key.expose().len().saturating_sub(4)..).unwrap_or("");
                filter(id, masked_tail, &record.state, limited.contains(&id)).then_some(id)
            })
            .collect()
    }

    /// Per-model daily limits and the default (for the dashboard).
    pub fn daily_limits(&self) -> DailyLimits {
        self.inner.lock().limits.clone()
    }

    pub fn summary(&self, now_ms: u64) -> PoolSummary {
        let inner = self.inner.lock();
        let mut summary = PoolSummary {
            total: inner.keys.iter().filter(|record| record.state != KeyState::Removed).count(),
            active: inner.active_count,
            global_backoff_until_ms: (inner.global_backoff_until_ms > now_ms).then_some(inner.global_backoff_until_ms),
            ..PoolSummary::default()
        };
        for record in &inner.keys {
            match record.state {
                KeyState::Invalid { .. } => summary.invalid += 1,
                KeyState::Disabled => summary.disabled += 1,
                _ => {}
            }
        }
        let mut limited: Vec<KeyId> = inner
            .model_states
            .values()
            .flat_map(|states| states.iter().filter(|(_, state)| state.blocked_until(now_ms).is_some()))
            .map(|(id, _)| *id)
            .filter(|id| inner.keys[id.0 as usize].state == KeyState::Active)
            .collect();
        limited.sort_unstable();
        limited.dedup();
        summary.limited_for_some_model = limited.len();
        summary
    }

    /// Views of keys `offset..offset + limit` (for a paged table).
    pub fn key_views(&self, offset: usize, limit: usize, now_ms: u64) -> Vec<KeyView> {
        let inner = self.inner.lock();
        let day = pacific_day((now_ms / 1000) as i64);
        inner
            .keys
            .iter()
            .enumerate()
            .skip(offset)
            .take(limit)
            .map(|(index, record)| {
                let id = KeyId(index as u32);
                let mut models: Vec<ModelView> = inner
                    .model_states
                    .iter()
                    .filter_map(|(model, states)| Some((model, states.get(&id)?)))
                    .map(|(model, state)| ModelView {
                        model: model.clone(),
                        availability: state.availability(now_ms, day, inner.limits.limit_for(model)),
                        usage_today: state.usage_on(day),
                    })
                    .collect();
                models.sort_by(|a, b| a.model.cmp(&b.model));
                KeyView {
                    id,
                    masked: record.key.masked(),
                    state: record.state.clone(),
                    models,
                    recent_errors: record.recent_errors.clone(),
                    last_used_ms: record.last_used_ms,
                    last_validated_ms: record.last_validated_ms,
                }
            })
            .collect()
    }

    pub fn key_view(&self, id: KeyId, now_ms: u64) -> Option<KeyView> {
        self.key_views(id.0 as usize, 1, now_ms).into_iter().next()
    }
}

#[cfg(test)]
mod tests;
