//! Per-client-IP request limits (`MAX_REQUESTS_PER_MINUTE`,
//! `MAX_REQUESTS_PER_DAY_PER_IP`) with bounded memory, plus [`client_ip`],
//! which finds the client address behind a trusted reverse proxy. Pure: no
//! I/O and no clock; every call takes `now_ms` (Unix milliseconds) from the
//! caller, so tests drive time directly.
//!
//! Each client has two sliding windows: the last 60 s in 1 s buckets and a
//! rolling 24 h (not a calendar day) in 1 h buckets. A bucket keeps its count
//! and the time of its newest request and stays in the window until that
//! newest request is older than the window, so a limit is never exceeded
//! within any true 60 s / 24 h span; older requests sharing a bucket are held
//! at most one bucket (1 s / 1 h) longer than exact. `retry_after_ms` is when
//! enough buckets have left the window for one more request, so it is exact
//! for that granularity. Only allowed requests are counted: hammering while
//! limited neither extends the wait nor grows memory. IPv4-mapped IPv6
//! addresses count as IPv4; other IPv6 clients are keyed by their /64 prefix,
//! since one household or server usually owns a whole /64.
//!
//! Memory is bounded: at most `max_tracked_clients` clients are tracked
//! (the least recently seen is evicted to admit a new one) and each holds at
//! most 61 + 25 buckets. Clients live in an intrusive LRU list, so a check is
//! O(1); idle clients (no counted request in the last 24 h) are pruned from
//! its cold end a few per check, never by a full scan.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use parking_lot::Mutex;

use crate::iprange::IpRange;

/// Limits applied to one client. `0` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_minute: u32,
    pub per_day: u32,
}

/// Which limit rejected a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    PerMinute,
    PerDay,
}

/// A rejected request: the limit that was hit and how long until one more
/// request would be allowed (the longer wait when both limits are hit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    pub limit: Limited,
    pub retry_after_ms: u64,
}

impl Rejection {
    /// The wait in whole seconds, rounded up, for a `Retry-After` header.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after_ms.div_ceil(1000).max(1)
    }
}

const MINUTE_WINDOW: WindowShape = WindowShape { length_ms: 60_000, bucket_ms: 1_000 };
const DAY_WINDOW: WindowShape = WindowShape { length_ms: 24 * 60 * 60 * 1_000, bucket_ms: 60 * 60 * 1_000 };

/// At most this many idle clients are pruned per `check`, so no single
/// request pays for a long quiet period.
const IDLE_CLIENTS_PRUNED_PER_CHECK: usize = 8;

const NO_SLOT: usize = usize::MAX;

#[derive(Clone, Copy)]
struct WindowShape {
    length_ms: u64,
    bucket_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: u64,
    count: u32,
    newest_request_ms: u64,
}

/// Counted requests within one window, oldest bucket first.
#[derive(Debug, Default)]
struct SlidingWindow {
    buckets: VecDeque<Bucket>,
    total: u64,
}

impl SlidingWindow {
    fn forget_expired(&mut self, shape: WindowShape, now_ms: u64) {
        while let Some(oldest) = self.buckets.front() {
            if oldest.newest_request_ms.saturating_add(shape.length_ms) > now_ms {
                break;
            }
            self.total = self.total.saturating_sub(u64::from(oldest.count));
            self.buckets.pop_front();
        }
    }

    /// How long until one more request fits under `limit`, or `None` if it
    /// fits now. Expects `forget_expired` to have run at `now_ms`.
    fn wait_for_room(&self, shape: WindowShape, limit: u32, now_ms: u64) -> Option<u64> {
        if limit == 0 || self.total < u64::from(limit) {
            return None;
        }
        let requests_to_free = self.total - u64::from(limit) + 1;
        let mut freed = 0u64;
        for bucket in &self.buckets {
            freed += u64::from(bucket.count);
            if freed >= requests_to_free {
                let leaves_at_ms = bucket.newest_request_ms.saturating_add(shape.length_ms);
                return Some(leaves_at_ms.saturating_sub(now_ms).max(1));
            }
        }
        // Unreachable while `total` matches the buckets; wait a full window.
        Some(shape.length_ms)
    }

    fn count_request(&mut self, shape: WindowShape, now_ms: u64) {
        let index = now_ms / shape.bucket_ms;
        self.total += 1;
        if let Some(newest) = self.buckets.back_mut() {
            // `>=` also absorbs a caller whose clock stepped backwards.
            if newest.index >= index {
                newest.count = newest.count.saturating_add(1);
                newest.newest_request_ms = newest.newest_request_ms.max(now_ms);
                return;
            }
        }
        self.buckets.push_back(Bucket { index, count: 1, newest_request_ms: now_ms });
    }
}

/// The identity a limit is kept under: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    V4(u32),
    V6Prefix64(u64),
}

impl ClientKey {
    pub(crate) fn of(address: IpAddr) -> ClientKey {
        match address.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6Prefix64((u128::from(v6) >> 64) as u64),
        }
    }

    /// The client's name in the shared store: its IPv4 address, or its
    /// IPv6 /64 prefix in hex.
    pub fn name(address: IpAddr) -> String {
        match ClientKey::of(address) {
            ClientKey::V4(v4) => std::net::Ipv4Addr::from(v4).to_string(),
            ClientKey::V6Prefix64(prefix) => format!("{prefix:016x}::/64"),
        }
    }
}

struct ClientRecord {
    key: ClientKey,
    minute: SlidingWindow,
    day: SlidingWindow,
    last_counted_ms: u64,
    warmer: usize,
    colder: usize,
}

impl ClientRecord {
    fn is_idle(&self, now_ms: u64) -> bool {
        self.last_counted_ms.saturating_add(DAY_WINDOW.length_ms) <= now_ms
    }
}

/// Client records in a slab, threaded on a doubly linked list from most
/// recently seen (`warmest`) to least recently seen (`coldest`).
struct ClientTable {
    slot_of_client: HashMap<ClientKey, usize>,
    slots: Vec<ClientRecord>,
    free_slots: Vec<usize>,
    warmest: usize,
    coldest: usize,
    max_tracked_clients: usize,
}

impl ClientTable {
    fn detach(&mut self, slot: usize) {
        let (warmer, colder) = (self.slots[slot].warmer, self.slots[slot].colder);
        if warmer == NO_SLOT {
            self.warmest = colder;
        } else {
            self.slots[warmer].colder = colder;
        }
        if colder == NO_SLOT {
            self.coldest = warmer;
        } else {
            self.slots[colder].warmer = warmer;
        }
        self.slots[slot].warmer = NO_SLOT;
        self.slots[slot].colder = NO_SLOT;
    }

    fn attach_warmest(&mut self, slot: usize) {
        self.slots[slot].warmer = NO_SLOT;
        self.slots[slot].colder = self.warmest;
        if self.warmest == NO_SLOT {
            self.coldest = slot;
        } else {
            self.slots[self.warmest].warmer = slot;
        }
        self.warmest = slot;
    }

    fn remove_coldest(&mut self) {
        let slot = self.coldest;
        if slot == NO_SLOT {
            return;
        }
        self.detach(slot);
        let key = self.slots[slot].key;
        self.slot_of_client.remove(&key);
        // Release the buckets now; the slot itself is reused.
        self.slots[slot].minute = SlidingWindow::default();
        self.slots[slot].day = SlidingWindow::default();
        self.free_slots.push(slot);
    }

    fn prune_idle(&mut self, now_ms: u64, at_most: usize) -> usize {
        let mut pruned = 0;
        while pruned < at_most && self.coldest != NO_SLOT && self.slots[self.coldest].is_idle(now_ms) {
            self.remove_coldest();
            pruned += 1;
        }
        pruned
    }

    /// The slot of `key`, made warmest; a new client may evict the coldest.
    fn touch(&mut self, key: ClientKey, now_ms: u64) -> usize {
        if let Some(&slot) = self.slot_of_client.get(&key) {
            self.detach(slot);
            self.attach_warmest(slot);
            return slot;
        }
        while self.slot_of_client.len() >= self.max_tracked_clients {
            self.remove_coldest();
        }
        let record = ClientRecord {
            key,
            minute: SlidingWindow::default(),
            day: SlidingWindow::default(),
            last_counted_ms: now_ms,
            warmer: NO_SLOT,
            colder: NO_SLOT,
        };
        let slot = match self.free_slots.pop() {
            Some(free) => {
                self.slots[free] = record;
                free
            }
            None => {
                self.slots.push(record);
                self.slots.len() - 1
            }
        };
        self.slot_of_client.insert(key, slot);
        self.attach_warmest(slot);
        slot
    }
}

/// Per-client request counters; share one behind an `Arc`.
pub struct RateLimiter {
    table: Mutex<ClientTable>,
}

impl RateLimiter {
    /// A limiter tracking at most `max_tracked_clients` clients (at least 1).
    pub fn new(max_tracked_clients: usize) -> RateLimiter {
        RateLimiter {
            table: Mutex::new(ClientTable {
                slot_of_client: HashMap::new(),
                slots: Vec::new(),
                free_slots: Vec::new(),
                warmest: NO_SLOT,
                coldest: NO_SLOT,
                max_tracked_clients: max_tracked_clients.max(1),
            }),
        }
    }

    /// Counts the request if allowed; a rejected request is not counted.
    /// With both limits 0 nothing is tracked.
    pub fn check(&self, client: IpAddr, limits: RateLimits, now_ms: u64) -> Result<(), Rejection> {
        let mut table = self.table.lock();
        table.prune_idle(now_ms, IDLE_CLIENTS_PRUNED_PER_CHECK);
        if limits.per_minute == 0 && limits.per_day == 0 {
            return Ok(());
        }
        let slot = table.touch(ClientKey::of(client), now_ms);
        let record = &mut table.slots[slot];
        record.minute.forget_expired(MINUTE_WINDOW, now_ms);
        record.day.forget_expired(DAY_WINDOW, now_ms);

        let minute_wait = record.minute.wait_for_room(MINUTE_WINDOW, limits.per_minute, now_ms);
        let day_wait = record.day.wait_for_room(DAY_WINDOW, limits.per_day, now_ms);
        let rejection = match (minute_wait, day_wait) {
            (None, None) => None,
            (Some(minute), None) => Some(Rejection { limit: Limited::PerMinute, retry_after_ms: minute }),
            (None, Some(day)) => Some(Rejection { limit: Limited::PerDay, retry_after_ms: day }),
            (Some(minute), Some(day)) if minute > day => {
                Some(Rejection { limit: Limited::PerMinute, retry_after_ms: minute })
            }
            (Some(_), Some(day)) => Some(Rejection { limit: Limited::PerDay, retry_after_ms: day }),
        };
        if let Some(rejection) = rejection {
            return Err(rejection);
        }
        record.minute.count_request(MINUTE_WINDOW, now_ms);
        record.day.count_request(DAY_WINDOW, now_ms);
        record.last_counted_ms = record.last_counted_ms.max(now_ms);
        Ok(())
    }

    /// Drops every idle client (no counted request in the last 24 h) and
    /// returns how many. Optional: `check` already prunes a few per call;
    /// this is for a periodic housekeeping task.
    pub fn prune_idle(&self, now_ms: u64) -> usize {
        self.table.lock().prune_idle(now_ms, usize::MAX)
    }

    /// How many clients currently hold counters.
    pub fn tracked_clients(&self) -> usize {
        self.table.lock().slot_of_client.len()
    }
}

/// The client address: when `header_value` is given (the configured
/// trusted-proxy header, e.g. `x-forwarded-for`, `x-real-ip`,
/// `cf-connecting-ip`) and the direct peer is a trusted proxy (in
/// `trusted_proxies`, or any peer when that list is empty), the address in
/// the header; otherwise the peer. `trusted_proxies` holds addresses or CIDR
/// ranges. For `x-forwarded-for`
/// (`header_is_forwarded_for`) it is the right-most entry that is not itself
/// a trusted proxy; entries left of it are client-supplied and never read.
/// Entries may carry a port (`1.2.3.4:80`, `[::1]:80`). A malformed value
/// (or a chain of nothing but trusted proxies) falls back to the peer.
pub fn client_ip(
    peer: IpAddr,
    header_value: Option<&str>,
    header_is_forwarded_for: bool,
    trusted_proxies: &[IpRange],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted_proxy = |address: IpAddr| trusted_proxies.iter().any(|proxy| proxy.contains(address));
    let peer_is_trusted = trusted_proxies.is_empty() || is_trusted_proxy(peer);
    let Some(header_value) = header_value else {
        return peer;
    };
    if !peer_is_trusted {
        return peer;
    }
    if !header_is_forwarded_for {
        return parse_forwarded_address(header_value).unwrap_or(peer);
    }
    for entry in header_value.rsplit(',') {
        let Some(address) = parse_forwarded_address(entry) else {
            return peer;
        };
        if !is_trusted_proxy(address) {
            return address;
        }
    }
    peer
}

/// One address from a proxy header: `1.2.3.4`, `::1`, `1.2.3.4:80` or
/// `[::1]:80`, surrounded by optional whitespace.
fn parse_forwarded_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Ok(socket_address) = text.parse::<SocketAddr>() {
        return Some(socket_address.ip().to_canonical());
    }
    let bracketed = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))?;
    bracketed.parse::<IpAddr>().ok().map(|address| address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const T0: u64 = 1_700_000_000_000;
    const MINUTE_MS: u64 = 60_000;
    const HOUR_MS: u64 = 60 * MINUTE_MS;
    const DAY_MS: u64 = 24 * HOUR_MS;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn limits(per_minute: u32, per_day: u32) -> RateLimits {
        RateLimits { per_minute, per_day }
    }

    #[test]
    fn thirty_per_minute_then_rejected_until_the_first_leaves_the_window() {
        let limiter = RateLimiter::new(100);
        let client = ip("203.0.113.7");
        for request in 0..30u64 {
            assert_eq!(limiter.check(client, limits(30, 0), T0 + request * 1_000), Ok(()), "request {request}");
        }
        let now = T0 + 30_000;
        let rejection = limiter.check(client, limits(30, 0), now).expect_err("31st request");
        assert_eq!(rejection.limit, Limited::PerMinute);
        assert_eq!(rejection.retry_after_ms, T0 + MINUTE_MS - now);
        assert_eq!(rejection.retry_after_seconds(), 30);
        // Just before the first request leaves: still rejected.
        assert!(limiter.check(client, limits(30, 0), T0 + MINUTE_MS - 1).is_err());
        // Once it leaves, exactly one more fits.
        assert_eq!(limiter.check(client, limits(30, 0), T0 + MINUTE_MS), Ok(()));
        let again = limiter.check(client, limits(30, 0), T0 + MINUTE_MS).expect_err("window full again");
        assert_eq!(again.retry_after_ms, 1_000);
    }

    #[test]
    fn requests_within_one_bucket_leave_with_its_newest() {
        let limiter = RateLimiter::new(100);
        let client = ip("203.0.113.7");
        for offset in [0u64, 100, 900] {
            assert_eq!(limiter.check(client, limits(3, 0), T0 + offset), Ok(()));
        }
        let rejection = limiter.check(client, limits(3, 0), T0 + 10_000).expect_err("limited");
        assert_eq!(rejection.retry_after_ms, 900 + MINUTE_MS - 10_000);
    }

    #[test]
    fn rejected_requests_are_not_counted() {
        let limiter = RateLimiter::new(100);
        let client = ip("198.51.100.1");
        for _ in 0..5 {
            assert_eq!(limiter.check(client, limits(5, 0), T0), Ok(()));
        }
        for hammer in 0..1_000u64 {
            let rejection = limiter.check(client, limits(5, 0), T0 + hammer * 50).expect_err("hammering");
            assert_eq!(rejection.retry_after_ms, MINUTE_MS - hammer * 50);
        }
        for _ in 0..5 {
            assert_eq!(limiter.check(client, limits(5, 0), T0 + MINUTE_MS), Ok(()));
        }
    }

    #[test]
    fn per_day_limit_is_independent_of_per_minute() {
        let limiter = RateLimiter::new(100);
        let client = ip("192.0.2.55");
        let day_limits = limits(30, 40);
        // 20 requests now, 20 more ten minutes later: neither minute is full.
        for _ in 0..20 {
            assert_eq!(limiter.check(client, day_limits, T0), Ok(()));
        }
        for _ in 0..20 {
            assert_eq!(limiter.check(client, day_limits, T0 + 10 * MINUTE_MS), Ok(()));
        }
        let now = T0 + 2 * HOUR_MS;
        let rejection = limiter.check(client, day_limits, now).expect_err("day full");
        assert_eq!(rejection.limit, Limited::PerDay);
        // T0 is 13 min into an hour, so both bursts share one hourly bucket, newest at T0 + 10 min.
        assert_eq!(rejection.retry_after_ms, T0 + 10 * MINUTE_MS + DAY_MS - now);
        assert_eq!(limiter.check(client, day_limits, T0 + 10 * MINUTE_MS + DAY_MS), Ok(()));
    }

    #[test]
    fn when_both_limits_are_hit_the_longer_wait_is_reported() {
        let limiter = RateLimiter::new(100);
        let client = ip("192.0.2.56");
        for _ in 0..3 {
            assert_eq!(limiter.check(client, limits(3, 3), T0), Ok(()));
        }
        let rejection = limiter.check(client, limits(3, 3), T0 + 1).expect_err("both full");
        assert_eq!(rejection, Rejection { limit: Limited::PerDay, retry_after_ms: DAY_MS - 1 });
    }

    #[test]
    fn zero_means_unlimited() {
        let table: [(RateLimits, &str); 3] = [
            (limits(0, 0), "both unlimited"),
            (limits(0, 5_000), "minute unlimited"),
            (limits(5_000, 0), "day unlimited"),
        ];
        for (case_limits, case) in table {
            let limiter = RateLimiter::new(100);
            for request in 0..2_000u64 {
                assert_eq!(limiter.check(ip("10.0.0.1"), case_limits, T0 + request), Ok(()), "{case}");
            }
        }
        let untracked = RateLimiter::new(100);
        assert_eq!(untracked.check(ip("10.0.0.1"), limits(0, 0), T0), Ok(()));
        assert_eq!(untracked.tracked_clients(), 0);
    }

    #[test]
    fn clients_are_keyed_by_ipv4_address_or_ipv6_slash_64() {
        // (first client, second client, share a bucket)
        let table = [
            ("192.0.2.1", "192.0.2.2", false),
            ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true),
            ("2001:db8:1:2::1", "2001:db8:1:3::1", false),
            ("::ffff:192.0.2.1", "192.0.2.1", true),
            ("::ffff:192.0.2.1", "192.0.2.2", false),
        ];
        for (first, second, shared) in table {
            let limiter = RateLimiter::new(100);
            assert_eq!(limiter.check(ip(first), limits(1, 0), T0), Ok(()));
            assert_eq!(limiter.check(ip(second), limits(1, 0), T0).is_err(), shared, "{first} vs {second}");
        }
    }

    #[test]
    fn tracked_clients_are_bounded_with_least_recently_seen_evicted() {
        let limiter = RateLimiter::new(100);
        let regular = ip("198.51.100.200");
        for index in 0..10_000u32 {
            let sprayed = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index));
            assert_eq!(limiter.check(sprayed, limits(30, 600), T0 + u64::from(index)), Ok(()));
            // A client seen all along is never the coldest, so keeps its counts.
            if index == 0 {
                assert_eq!(limiter.check(regular, limits(1, 0), T0), Ok(()));
            } else {
                assert!(limiter.check(regular, limits(1, 0), T0 + u64::from(index)).is_err());
            }
            assert!(limiter.tracked_clients() <= 100);
        }
        assert_eq!(limiter.tracked_clients(), 100);
        let table = limiter.table.lock();
        assert!(table.slots.len() <= 100, "slab grew to {}", table.slots.len());
    }

    #[test]
    fn idle_clients_are_pruned_after_a_day() {
        let limiter = RateLimiter::new(1_000);
        for index in 0..5u128 {
            let client = IpAddr::V6(Ipv6Addr::from((0x2001_0db8_0000_0000u128 + index) << 64));
            assert_eq!(limiter.check(client, limits(30, 600), T0), Ok(()));
        }
        assert_eq!(limiter.check(ip("192.0.2.9"), limits(30, 600), T0 + HOUR_MS), Ok(()));
        assert_eq!(limiter.tracked_clients(), 6);
        assert_eq!(limiter.prune_idle(T0 + DAY_MS - 1), 0);
        // A single check a day later prunes the idle ones, but not the one seen an hour after them.
        assert_eq!(limiter.check(ip("192.0.2.10"), limits(30, 600), T0 + DAY_MS), Ok(()));
        assert_eq!(limiter.tracked_clients(), 2);
        assert_eq!(limiter.prune_idle(T0 + HOUR_MS + DAY_MS), 1);
        assert_eq!(limiter.prune_idle(T0 + 2 * DAY_MS), 1);
        assert_eq!(limiter.tracked_clients(), 0);
    }

    #[test]
    fn a_clock_stepping_backwards_does_not_panic_or_lose_counts() {
        let limiter = RateLimiter::new(10);
        let client = ip("192.0.2.77");
        assert_eq!(limiter.check(client, limits(2, 0), T0 + 5_000), Ok(()));
        assert_eq!(limiter.check(client, limits(2, 0), T0), Ok(()));
        assert!(limiter.check(client, limits(2, 0), T0).is_err());
        assert_eq!(limiter.check(ip("192.0.2.78"), limits(2, 0), 0), Ok(()));
    }

    #[test]
    fn client_ip_honours_only_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let stranger = ip("203.0.113.50");
        let range = |text: &str| text.parse::<IpRange>().unwrap();
        let trusted = [range("10.0.0.1"), range("10.0.0.2")];
        let trusted_range = [range("10.0.0.0/24")];
        // (peer, header value, is x-forwarded-for, trusted proxies, expected)
        type Case<'a> = (IpAddr, Option<&'a str>, bool, &'a [IpRange], &'a str);
        let table: [Case; 19] = [
            (stranger, None, false, &trusted, "203.0.113.50"),
            (proxy, None, true, &trusted, "10.0.0.1"),
            (proxy, Some("198.51.100.4"), false, &trusted, "198.51.100.4"),
            (proxy, Some(" 2001:db8::4 "), false, &trusted, "2001:db8::4"),
            (stranger, Some("198.51.100.4"), false, &trusted, "203.0.113.50"),
            (stranger, Some("198.51.100.4"), false, &[], "198.51.100.4"),
            (proxy, Some("198.51.100.4, 10.0.0.2"), true, &trusted, "198.51.100.4"),
            (proxy, Some("1.1.1.1, 198.51.100.4, 10.0.0.2"), true, &trusted, "198.51.100.4"),
            (proxy, Some("garbage, 198.51.100.4"), true, &trusted, "198.51.100.4"),
            (proxy, Some("198.51.100.4, 10.0.0.2"), true, &[], "10.0.0.2"),
            (proxy, Some("198.51.100.4:5555"), true, &trusted, "198.51.100.4"),
            (proxy, Some("[2001:db8::4]:443"), true, &trusted, "2001:db8::4"),
            (proxy, Some("198.51.100.4, unknown"), true, &trusted, "10.0.0.1"),
            (proxy, Some(""), true, &trusted, "10.0.0.1"),
            (proxy, Some("not an address"), false, &trusted, "10.0.0.1"),
            (proxy, Some("10.0.0.2, 10.0.0.1"), true, &trusted, "10.0.0.1"),
            // Ranges: every proxy hop inside the range is walked past.
            (proxy, Some("6.6.6.6, 198.51.100.4, 10.0.0.9, 10.0.0.200"), true, &trusted_range, "198.51.100.4"),
            (stranger, Some("198.51.100.4"), true, &trusted_range, "203.0.113.50"),
            (ip("10.0.1.1"), Some("198.51.100.4"), true, &trusted_range, "10.0.1.1"),
        ];
        for (peer, header_value, is_forwarded_for, trusted_proxies, expected) in table {
            assert_eq!(
                client_ip(peer, header_value, is_forwarded_for, trusted_proxies),
                ip(expected),
                "peer {peer}, header {header_value:?}"
            );
        }
    }

    #[test]
    fn client_ip_treats_ipv4_mapped_peers_as_ipv4() {
        let mapped_peer = ip("::ffff:10.0.0.1");
        let trusted = ["10.0.0.1".parse().unwrap()];
        assert_eq!(client_ip(mapped_peer, Some("198.51.100.4"), false, &trusted), ip("198.51.100.4"));
        assert_eq!(client_ip(mapped_peer, None, false, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn rate_limiter_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateLimiter>();
    }
}
