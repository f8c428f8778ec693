//! Throttling of failed authentication, per client address (an IPv4
//! address or an IPv6 /64, as for the request limits). A client may get
//! the key wrong a few times a minute (`AUTH_FAILURES_PER_MINUTE`); one
//! failure more locks the address out, first for
//! [`FIRST_LOCKOUT_MS`], then twice as long after every further failure
//! (at most [`MAX_LOCKOUT_MS`]). While locked, every request from the
//! address is refused before its key is looked at, so a lockout cannot be
//! used to test keys. A success clears the address's record; a record
//! with no failure for a day is forgotten.
//!
//! The same mechanism guards every secret a client can guess — the API
//! password, the dashboard password (and setup code), the metrics token —
//! each with a table of its own ([`Throttles`], by [`Guarded`]), so a
//! success with one secret never clears failures with another.
//!
//! Two ways to check a secret through it:
//! - [`FailureThrottle::check_secret`] for a comparison that runs at once
//!   (constant-time equality: nothing can slip in between the check of the
//!   lockout and the count of the failure on this thread);
//! - [`FailureThrottle::reserve`] before a check that takes time (argon2,
//!   off the worker): the attempt is counted *before* the check, as a
//!   failure until a success clears it, so however many attempts arrive at
//!   once, at most `allowed_per_minute` of them are ever checked.
//!
//! Pure: callers pass `now_ms`.
//! Memory is bounded: at most `max_tracked_clients` records; beyond it the
//! oldest record is dropped (an attacker with that many addresses can
//! spread out anyway).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use parking_lot::Mutex;

use crate::ratelimit::ClientKey;

/// The failure window.
const WINDOW_MS: u64 = 60_000;
/// First lockout; doubles with every failure after it.
pub const FIRST_LOCKOUT_MS: u64 = 30_000;
pub const MAX_LOCKOUT_MS: u64 = 60 * 60_000;
/// A record with no failure for this long is forgotten.
const FORGET_AFTER_MS: u64 = 24 * 60 * 60_000;

#[derive(Debug, Clone, Copy, Default)]
struct FailureRecord {
    /// Failures counted in the current window, and when it began.
    failures_in_window: u32,
    window_started_ms: u64,
    /// Lockouts so far (their length doubles each time).
    lockouts: u32,
    locked_until_ms: u64,
    last_failure_ms: u64,
    /// Position in `order`, to tell a live entry from a stale one.
    generation: u64,
}

struct Records {
    by_client: HashMap<ClientKey, FailureRecord>,
    /// Clients by first sight, oldest first; entries whose generation no
    /// longer matches are stale and skipped.
    order: VecDeque<(ClientKey, u64)>,
    next_generation: u64,
}

impl Records {
    /// A fresh record for a client not tracked yet.
    fn start(&mut self, key: ClientKey, now_ms: u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.order.push_back((key, generation));
        self.by_client.insert(key, FailureRecord { window_started_ms: now_ms, generation, ..Default::default() });
    }
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedOut {
    pub retry_after_ms: u64,
}

/// The secret an attempt is against; each has its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// The API `PASSWORD` (client keys).
    Api,
    /// The dashboard password, and the setup code before one is set.
    Dashboard,
    /// `METRICS_TOKEN`.
    Metrics,
}

impl Guarded {
    /// The name other replicas know the table by (`AddressLockedOut`).
    pub fn as_str(self) -> &'static str {
        match self {
            Guarded::Api => "api",
            Guarded::Dashboard => "dashboard",
            Guarded::Metrics => "metrics",
        }
    }

    pub fn parse(name: &str) -> Option<Guarded> {
        [Guarded::Api, Guarded::Dashboard, Guarded::Metrics].into_iter().find(|guarded| guarded.as_str() == name)
    }
}

/// What a throttled check of a secret found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Wrong,
    /// Not checked (or checked and one too many): refused for this long.
    /// `began` when this attempt started the lockout (other replicas are
    /// told once).
    LockedOut {
        retry_after_ms: u64,
        began: bool,
    },
}

/// One failure table per guarded secret.
pub struct Throttles {
    api: FailureThrottle,
    dashboard: FailureThrottle,
    metrics: FailureThrottle,
}

impl Throttles {
    pub fn new(max_tracked_clients: usize) -> Throttles {
        Throttles {
            api: FailureThrottle::new(max_tracked_clients),
            dashboard: FailureThrottle::new(max_tracked_clients),
            metrics: FailureThrottle::new(max_tracked_clients),
        }
    }

    pub fn of(&self, guarded: Guarded) -> &FailureThrottle {
        match guarded {
            Guarded::Api => &self.api,
            Guarded::Dashboard => &self.dashboard,
            Guarded::Metrics => &self.metrics,
        }
    }
}

pub struct FailureThrottle {
    max_tracked_clients: usize,
    records: Mutex<Records>,
    /// Records held; lets the common case (nobody failing) skip the lock.
    tracked: std::sync::atomic::AtomicUsize,
}

impl FailureThrottle {
    pub fn new(max_tracked_clients: usize) -> FailureThrottle {
        FailureThrottle {
            max_tracked_clients: max_tracked_clients.max(1),
            records: Mutex::new(Records { by_client: HashMap::new(), order: VecDeque::new(), next_generation: 0 }),
            tracked: Default::default(),
        }
    }

    /// Whether `client` may try now.
    pub fn check(&self, client: IpAddr, now_ms: u64) -> Result<(), LockedOut> {
        if self.tracked.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return Ok(());
        }
        let records = self.records.lock();
        match records.by_client.get(&ClientKey::of(client)) {
            Some(record) if record.locked_until_ms > now_ms => {
                Err(LockedOut { retry_after_ms: record.locked_until_ms - now_ms })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure; returns the lockout it starts, if any.
    pub fn record_failure(&self, client: IpAddr, allowed_per_minute: u32, now_ms: u64) -> Option<LockedOut> {
        let key = ClientKey::of(client);
        let mut records = self.records.lock();
        let records = &mut *records;
        if !records.by_client.contains_key(&key) {
            while records.by_client.len() >= self.max_tracked_clients {
                let Some((oldest, generation)) = records.order.pop_front() else { break };
                if records.by_client.get(&oldest).is_some_and(|record| record.generation == generation) {
                    records.by_client.remove(&oldest);
                }
            }
            records.start(key, now_ms);
            // Successes leave stale entries behind; drop them now and then.
            if records.order.len() > 2 * records.by_client.len() + 64 {
                let by_client = &records.by_client;
                records.order.retain(|(client, generation)| {
                    by_client.get(client).is_some_and(|record| record.generation == *generation)
                });
            }
        }
        self.tracked.store(records.by_client.len(), std::sync::atomic::Ordering::Release);
        let record = records.by_client.get_mut(&key).expect("inserted above");
        if record.last_failure_ms.saturating_add(FORGET_AFTER_MS) <= now_ms && record.last_failure_ms != 0 {
            *record = FailureRecord { window_started_ms: now_ms, generation: record.generation, ..Default::default() };
        }
        record.last_failure_ms = now_ms;
        if now_ms.saturating_sub(record.window_started_ms) >= WINDOW_MS {
            record.window_started_ms = now_ms;
            record.failures_in_window = 0;
        }
        record.failures_in_window = record.failures_in_window.saturating_add(1);
        // After a first lockout, every failure locks again (longer); before
        // it, only going over the per-minute allowance does.
        if record.lockouts == 0 && record.failures_in_window <= allowed_per_minute {
            return None;
        }
        let lockout_ms = FIRST_LOCKOUT_MS.saturating_mul(1u64 << record.lockouts.min(20)).min(MAX_LOCKOUT_MS);
        record.lockouts = record.lockouts.saturating_add(1);
        record.locked_until_ms = now_ms + lockout_ms;
        Some(LockedOut { retry_after_ms: lockout_ms })
    }

    /// Checks a secret that compares at once (`matches`, constant time):
    /// refused unchecked while the address is locked out; a wrong secret
    /// counts (one too many locks the address out); a right one clears the
    /// record.
    pub fn check_secret(
        &self,
        client: IpAddr,
        allowed_per_minute: u32,
        now_ms: u64,
        matches: impl FnOnce() -> bool,
    ) -> Verdict {
        if let Err(locked) = self.check(client, now_ms) {
            return Verdict::LockedOut { retry_after_ms: locked.retry_after_ms, began: false };
        }
        if matches() {
            self.record_success(client);
            return Verdict::Accepted;
        }
        match self.record_failure(client, allowed_per_minute, now_ms) {
            Some(locked) => Verdict::LockedOut { retry_after_ms: locked.retry_after_ms, began: true },
            None => Verdict::Wrong,
        }
    }

    /// Reserves one attempt before a check that takes time: counted now as
    /// a failure (a success clears it with [`FailureThrottle::record_success`]).
    /// `Err` while the address is locked out, or when this attempt would be
    /// one more than `allowed_per_minute` (it starts the lockout and is not
    /// to be checked).
    pub fn reserve(&self, client: IpAddr, allowed_per_minute: u32, now_ms: u64) -> Result<(), Verdict> {
        if let Err(locked) = self.check(client, now_ms) {
            return Err(Verdict::LockedOut { retry_after_ms: locked.retry_after_ms, began: false });
        }
        match self.record_failure(client, allowed_per_minute, now_ms) {
            Some(locked) => Err(Verdict::LockedOut { retry_after_ms: locked.retry_after_ms, began: true }),
            None => Ok(()),
        }
    }

    /// Another replica locked `client` out until `until_ms` (shared state):
    /// it is refused here too, and its next failure locks it longer.
    pub fn lock_out(&self, client: IpAddr, until_ms: u64, now_ms: u64) {
        if until_ms <= now_ms {
            return;
        }
        let key = ClientKey::of(client);
        let mut records = self.records.lock();
        let records = &mut *records;
        if !records.by_client.contains_key(&key) {
            if records.by_client.len() >= self.max_tracked_clients {
                return;
            }
            records.start(key, now_ms);
            self.tracked.store(records.by_client.len(), std::sync::atomic::Ordering::Release);
        }
        let record = records.by_client.get_mut(&key).expect("inserted above");
        record.locked_until_ms = record.locked_until_ms.max(until_ms);
        record.lockouts = record.lockouts.max(1);
        record.last_failure_ms = now_ms;
    }

    /// A success: the client starts afresh.
    pub fn record_success(&self, client: IpAddr) {
        if self.tracked.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return;
        }
        let key = ClientKey::of(client);
        let mut records = self.records.lock();
        // The stale entry left in `order` is skipped when it comes up.
        records.by_client.remove(&key);
        self.tracked.store(records.by_client.len(), std::sync::atomic::Ordering::Release);
    }

    /// Clients with a record (for tests and the dashboard).
    pub fn tracked_clients(&self) -> usize {
        self.records.lock().by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_few_failures_are_free_then_lockouts_double() {
        let throttle = FailureThrottle::new(100);
        let client = ip("203.0.113.9");
        for attempt in 0..5 {
            assert_eq!(throttle.check(client, T0 + attempt), Ok(()));
            assert_eq!(throttle.record_failure(client, 5, T0 + attempt), None, "failure {attempt}");
        }
        let first = throttle.record_failure(client, 5, T0 + 10).expect("sixth failure locks");
        assert_eq!(first.retry_after_ms, FIRST_LOCKOUT_MS);
        assert_eq!(throttle.check(client, T0 + 20), Err(LockedOut { retry_after_ms: FIRST_LOCKOUT_MS - 10 }));
        // Other clients are not affected.
        assert_eq!(throttle.check(ip("203.0.113.10"), T0 + 20), Ok(()));
        // After the lockout one more failure locks again, twice as long.
        let after = T0 + 10 + FIRST_LOCKOUT_MS;
        assert_eq!(throttle.check(client, after), Ok(()));
        assert_eq!(throttle.record_failure(client, 5, after).unwrap().retry_after_ms, 2 * FIRST_LOCKOUT_MS);
        let later = after + 2 * FIRST_LOCKOUT_MS;
        assert_eq!(throttle.record_failure(client, 5, later).unwrap().retry_after_ms, 4 * FIRST_LOCKOUT_MS);
        // Capped.
        let mut now = later;
        for _ in 0..30 {
            now += MAX_LOCKOUT_MS;
            assert!(throttle.record_failure(client, 5, now).unwrap().retry_after_ms <= MAX_LOCKOUT_MS);
        }
    }

    #[test]
    fn success_clears_and_a_quiet_day_forgets() {
        let throttle = FailureThrottle::new(100);
        let client = ip("2001:db8::1");
        for attempt in 0..6 {
            throttle.record_failure(client, 5, T0 + attempt);
        }
        assert!(throttle.check(client, T0 + 10).is_err());
        // The same /64 is the same client.
        assert!(throttle.check(ip("2001:db8::2"), T0 + 10).is_err());
        throttle.record_success(client);
        assert_eq!(throttle.check(client, T0 + 10), Ok(()));
        assert_eq!(throttle.tracked_clients(), 0);

        for attempt in 0..6 {
            throttle.record_failure(client, 5, T0 + attempt);
        }
        let next_day = T0 + FORGET_AFTER_MS + 10;
        assert_eq!(throttle.record_failure(client, 5, next_day), None, "a day later the slate is clean");
    }

    #[test]
    fn failures_spread_over_minutes_stay_free() {
        let throttle = FailureThrottle::new(100);
        let client = ip("198.51.100.1");
        for minute in 0..20 {
            for second in 0..5 {
                let now = T0 + minute * WINDOW_MS + second * 1000;
                assert_eq!(throttle.record_failure(client, 5, now), None, "minute {minute}");
            }
        }
    }

    #[test]
    fn memory_is_bounded() {
        let throttle = FailureThrottle::new(1000);
        for n in 0..10_000u32 {
            throttle.record_failure(IpAddr::from(n.to_be_bytes()), 5, T0);
        }
        assert_eq!(throttle.tracked_clients(), 1000);
        // Success removals leave stale order entries; still bounded.
        for n in 0..10_000u32 {
            let client = IpAddr::from((n + 20_000).to_be_bytes());
            throttle.record_failure(client, 5, T0);
            throttle.record_success(client);
        }
        assert!(throttle.records.lock().order.len() <= 2 * 1000 + 64 + 1);
    }

    #[test]
    fn reserved_attempts_are_counted_before_they_are_checked() {
        // Forty attempts arrive together, none of them finished: only the
        // allowance is let through to be checked, the rest are refused.
        let throttle = FailureThrottle::new(100);
        let client = ip("203.0.113.40");
        let let_through = (0..40).filter(|n| throttle.reserve(client, 5, T0 + n).is_ok()).count();
        assert_eq!(let_through, 5);
        // The right secret a moment later is refused too (no check at all).
        assert!(matches!(throttle.reserve(client, 5, T0 + 45), Err(Verdict::LockedOut { began: false, .. })));
        // A success clears the reservations of an address.
        let other = ip("203.0.113.41");
        for n in 0..4 {
            throttle.reserve(other, 5, T0 + n).unwrap();
        }
        throttle.record_success(other);
        for n in 0..5 {
            assert!(throttle.reserve(other, 5, T0 + 10 + n).is_ok());
        }
    }

    #[test]
    fn secrets_checked_at_once_lock_out_after_the_allowance() {
        let throttle = FailureThrottle::new(100);
        let client = ip("203.0.113.50");
        for n in 0..5 {
            assert_eq!(throttle.check_secret(client, 5, T0 + n, || false), Verdict::Wrong);
        }
        assert!(matches!(throttle.check_secret(client, 5, T0 + 6, || false), Verdict::LockedOut { began: true, .. }));
        let mut compared = false;
        let verdict = throttle.check_secret(client, 5, T0 + 7, || {
            compared = true;
            true
        });
        assert!(matches!(verdict, Verdict::LockedOut { began: false, .. }));
        assert!(!compared, "a locked-out address's secret is not even compared");
    }

    #[test]
    fn each_secret_has_its_own_table() {
        // A good metrics token must not clear wrong API passwords.
        let throttles = Throttles::new(100);
        let client = ip("203.0.113.60");
        for n in 0..4 {
            throttles.of(Guarded::Api).check_secret(client, 5, T0 + n, || false);
        }
        throttles.of(Guarded::Metrics).check_secret(client, 5, T0 + 5, || true);
        assert_eq!(throttles.of(Guarded::Api).check_secret(client, 5, T0 + 6, || false), Verdict::Wrong);
        assert!(matches!(
            throttles.of(Guarded::Api).check_secret(client, 5, T0 + 7, || false),
            Verdict::LockedOut { .. }
        ));
        assert_eq!(Guarded::parse("metrics"), Some(Guarded::Metrics));
        assert_eq!(Guarded::parse("nonsense"), None);
    }

    #[test]
    fn a_lockout_from_another_replica_refuses_and_the_next_failure_locks_longer() {
        let throttle = FailureThrottle::new(10);
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        throttle.lock_out(client, T0 + 30_000, T0);
        assert_eq!(throttle.check(client, T0 + 1).unwrap_err().retry_after_ms, 29_999);
        assert!(throttle.check(client, T0 + 30_000).is_ok(), "over when it says");
        // Already locked out once: the next failure locks at once.
        assert!(throttle.record_failure(client, 5, T0 + 31_000).is_some());
        // A lockout in the past changes nothing.
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        throttle.lock_out(other, T0, T0 + 5);
        assert!(throttle.check(other, T0 + 5).is_ok());
    }
}
