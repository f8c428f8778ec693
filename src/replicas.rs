//! What the request path asks of the other replicas (`REDIS_URL`), apart
//! from the durable store (`store::redis`): a unit of a key's daily limit
//! (held from this replica's credit, else reserved in Redis in blocks when
//! the budget allows, unused units given back), the per-address count
//! across replicas, and the rolling log merged from every replica. Each
//! call is bounded ([`RESERVE_TIMEOUT`]); when Redis does not answer in
//! time, the replica's own view decides. `cluster::follow` holds the
//! connection while it follows the shared state.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// Field separator inside hash field names (never in a key or model name).
pub const SEPARATOR: char = '\u{1f}';

/// Units of a daily limit held by this replica and unused for this long
/// return to the shared count.
pub const IDLE_CREDIT: Duration = Duration::from_secs(2);
/// Longest wait for a reservation before the local view decides.
pub const RESERVE_TIMEOUT: Duration = Duration::from_millis(500);

/// Grants up to a block of units of one (key, model, day) limit while the
/// shared count is under it: KEYS[1] the day's hash, ARGV[1] the field,
/// ARGV[2] the limit. Returns the units granted (0 = the limit is reached).
const RESERVE_SCRIPT: &str = r#"
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local free = tonumber(ARGV[2]) - used
if free <= 0 then return 0 end
local units = math.max(1, math.min(16, math.floor(free / 8)))
redis.call('HINCRBY', KEYS[1], ARGV[1], units)
redis.call('EXPIRE', KEYS[1], 259200)
return units
"#;

/// Per-address limits shared by the replicas: KEYS[1..6] the six 10-second
/// buckets of the last minute (oldest first, current last), KEYS[7..30] the
/// 24 hourly buckets of the last day (oldest first, current last); ARGV
/// the per-minute limit, the per-day limit (0 = none), the current bucket
/// starts (ms) of each kind. Counts the request and returns {0, 0}, or
/// refuses it uncounted with {1 (minute) or 2 (day), ms to wait}.
const ADDRESS_LIMIT_SCRIPT: &str = r#"
local function window(first, last, limit, start, width)
  local total, oldest = 0, nil
  for i = first, last do
    local n = tonumber(redis.call('GET', KEYS[i]) or '0')
    if n > 0 and oldest == nil then oldest = i - first end
    total = total + n
  end
  if limit > 0 and total >= limit then
    local count = last - first + 1
    return start - (count - 1 - oldest) * width + count * width
  end
  return nil
end
local now = tonumber(ARGV[5])
local minute = window(1, 6, tonumber(ARGV[1]), tonumber(ARGV[3]), 10000)
if minute then return {1, minute - now} end
local day = window(7, 30, tonumber(ARGV[2]), tonumber(ARGV[4]), 3600000)
if day then return {2, day - now} end
redis.call('INCR', KEYS[6]); redis.call('PEXPIRE', KEYS[6], 70000)
redis.call('INCR', KEYS[30]); redis.call('PEXPIRE', KEYS[30], 90000000)
return {0, 0}
"#;

fn quota_hash(day: i64) -> String {
    format!("hajimi:quota:{day}")
}

/// What asking for a unit of a daily limit gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A unit is held for this call.
    Granted,
    /// The key has reached its limit for the model today, across replicas.
    Denied,
    /// Redis did not answer: the local view decides.
    Unknown,
}

/// Units of one (key, model, day) limit held by this replica.
struct Credit {
    units: u32,
    touched: std::time::Instant,
}

/// A rolling-log record as shared between replicas (already redacted by
/// the log ring).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedLogRecord {
    pub replica: String,
    pub seq: u64,
    pub time_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, …
    pub level: String,
    pub source: String,
    pub message: String,
}

/// The rolling log of every replica, newest first.
const LOG: &str = "hajimi:log";

/// Width of the shared per-minute buckets, and how many make a minute.
const MINUTE_BUCKET_MS: u64 = 10_000;
const MINUTE_BUCKETS: u64 = 6;
/// Width of the shared per-day buckets, and how many make a day.
const DAY_BUCKET_MS: u64 = 3_600_000;
const DAY_BUCKETS: u64 = 24;
/// Most addresses one exchange carries (the rest wait for the next).
const MAX_ADDRESSES_PER_EXCHANGE: usize = 2_000;
/// Most addresses whose shared counts are remembered.
const MAX_KNOWN_ADDRESSES: usize = 20_000;
/// Shared counts of an address not seen for this long are forgotten.
const KNOWN_ADDRESS_TTL_MS: u64 = 120_000;

/// The shared buckets of one address as of the last exchange: counts of
/// every replica, this one's included.
#[derive(Debug, Clone, Default)]
struct KnownAddress {
    /// `(bucket index, count)` of the minute's buckets, then the day's.
    minute: Vec<(u64, u64)>,
    day: Vec<(u64, u64)>,
    /// Counted here since the exchange that read these buckets.
    counted_since: u64,
    /// When a request from it was last checked here.
    seen_ms: u64,
}

/// Per-address counts across replicas without a round trip per request
/// (`RATE_LIMIT_SYNC_MS` > 0): a request is checked against the shared
/// buckets as last read plus what this replica counted since, and counted
/// here; every interval, [`ReplicaLink::exchange_address_counts`] adds this
/// replica's counts to Redis and reads every active address's buckets back.
/// The overshoot is bounded: at most what the other replicas admit between
/// two exchanges (replicas × interval × their rate).
#[derive(Debug, Default)]
struct AddressCounts {
    /// Requests counted here and not yet added to Redis, by address.
    pending: HashMap<String, u64>,
    known: HashMap<String, KnownAddress>,
}

/// Sum of the buckets in the window that ends with `current`.
fn window_total(buckets: &[(u64, u64)], current: u64, count: u64) -> u64 {
    buckets.iter().filter(|(index, _)| *index + count > current && *index <= current).map(|(_, n)| n).sum()
}

/// When one more request fits under `limit` in a window of `count`
/// buckets of `width` ms ending with `current` (counting `extra` requests
/// of the current bucket on top), or `None` when it fits now.
fn window_wait(
    buckets: &[(u64, u64)],
    extra: u64,
    current: u64,
    count: u64,
    width: u64,
    limit: u32,
    now_ms: u64,
) -> Option<u64> {
    let total = window_total(buckets, current, count) + extra;
    if limit == 0 || total < u64::from(limit) {
        return None;
    }
    // The oldest bucket holding requests leaves the window first.
    let oldest = buckets
        .iter()
        .filter(|(index, n)| *n > 0 && *index + count > current)
        .map(|(index, _)| *index)
        .min()
        .unwrap_or(current);
    Some(((oldest + count) * width).saturating_sub(now_ms).max(1))
}

/// The request path's link to the other replicas.
pub struct ReplicaLink {
    /// This process's name among the replicas (random per start).
    replica: String,
    /// Held while `cluster::follow` is subscribed.
    connection: RwLock<Option<redis::aio::MultiplexedConnection>>,
    /// Daily-limit units reserved and not yet used, by (key, model, day).
    credits: Mutex<HashMap<(String, String, i64), Credit>>,
    /// Per-address counts exchanged in the background.
    addresses: Mutex<AddressCounts>,
}

impl ReplicaLink {
    pub fn new(replica: String) -> ReplicaLink {
        ReplicaLink {
            replica,
            connection: RwLock::new(None),
            credits: Mutex::new(HashMap::new()),
            addresses: Mutex::new(AddressCounts::default()),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connection.read().is_some()
    }

    /// The connection the request path uses (`None` while Redis is away).
    pub fn set_connection(&self, connection: Option<redis::aio::MultiplexedConnection>) {
        *self.connection.write() = connection;
    }

    /// Holds one unit of `key`'s daily `limit` for `model` on Pacific
    /// `day`: from this replica's credit when it has some, else from Redis.
    pub async fn reserve(&self, key: &str, model: &str, day: i64, limit: u64) -> Reservation {
        let slot = (key.to_owned(), model.to_owned(), day);
        if let Some(credit) = self.credits.lock().get_mut(&slot) {
            if credit.units > 0 {
                credit.units -= 1;
                credit.touched = std::time::Instant::now();
                return Reservation::Granted;
            }
        }
        let Some(mut connection) = self.connection.read().clone() else { return Reservation::Unknown };
        let field = format!("{key}{SEPARATOR}{model}");
        let mut eval = redis::cmd("EVAL");
        eval.arg(RESERVE_SCRIPT).arg(1).arg(quota_hash(day)).arg(field).arg(limit);
        let granted = tokio::time::timeout(RESERVE_TIMEOUT, eval.query_async::<u32>(&mut connection)).await;
        match granted {
            Ok(Ok(0)) => Reservation::Denied,
            Ok(Ok(units)) => {
                let mut credits = self.credits.lock();
                let credit =
                    credits.entry(slot).or_insert_with(|| Credit { units: 0, touched: std::time::Instant::now() });
                credit.units += units - 1;
                credit.touched = std::time::Instant::now();
                Reservation::Granted
            }
            Ok(Err(error)) => {
                log::warn!(target: "hajimi::cluster", "shared state: a daily-limit reservation failed ({}); this replica's count decides", crate::secret::LogSafe(&error.to_string()));
                Reservation::Unknown
            }
            Err(_) => Reservation::Unknown,
        }
    }

    /// Counts a request from `client` (`ClientKey::name`) against the
    /// per-address limits across replicas. `Ok(None)` = allowed and
    /// counted; `Ok(Some((per_day, wait_ms)))` = refused; `Err(())` = Redis
    /// did not answer (the replica's own count decides).
    pub async fn count_address(
        &self,
        client: &str,
        per_minute: u32,
        per_day: u32,
        now_ms: u64,
    ) -> Result<Option<(bool, u64)>, ()> {
        let Some(mut connection) = self.connection.read().clone() else { return Err(()) };
        let second_bucket = now_ms / 10_000;
        let hour_bucket = now_ms / 3_600_000;
        let mut eval = redis::cmd("EVAL");
        eval.arg(ADDRESS_LIMIT_SCRIPT).arg(30);
        for bucket in (second_bucket - 5)..=second_bucket {
            eval.arg(format!("hajimi:ip:{client}:s:{bucket}"));
        }
        for bucket in (hour_bucket - 23)..=hour_bucket {
            eval.arg(format!("hajimi:ip:{client}:h:{bucket}"));
        }
        eval.arg(per_minute).arg(per_day).arg(second_bucket * 10_000).arg(hour_bucket * 3_600_000).arg(now_ms);
        match tokio::time::timeout(RESERVE_TIMEOUT, eval.query_async::<(u8, i64)>(&mut connection)).await {
            Ok(Ok((0, _))) => Ok(None),
            Ok(Ok((kind, wait_ms))) => Ok(Some((kind == 2, wait_ms.max(1) as u64))),
            _ => Err(()),
        }
    }

    /// [`count_address`](Self::count_address) without a round trip: checks
    /// `client` against the shared counts as last exchanged plus what this
    /// replica counted since, and counts it here (see [`AddressCounts`]).
    /// `Some((per_day, wait_ms))` = refused, uncounted.
    pub fn count_address_locally(
        &self,
        client: &str,
        per_minute: u32,
        per_day: u32,
        now_ms: u64,
    ) -> Option<(bool, u64)> {
        let (minute_now, day_now) = (now_ms / MINUTE_BUCKET_MS, now_ms / DAY_BUCKET_MS);
        let mut addresses = self.addresses.lock();
        let AddressCounts { pending, known } = &mut *addresses;
        if let Some(address) = known.get_mut(client) {
            address.seen_ms = now_ms;
            let extra = address.counted_since;
            let minute =
                window_wait(&address.minute, extra, minute_now, MINUTE_BUCKETS, MINUTE_BUCKET_MS, per_minute, now_ms);
            if let Some(wait) = minute {
                return Some((false, wait));
            }
            if let Some(wait) = window_wait(&address.day, extra, day_now, DAY_BUCKETS, DAY_BUCKET_MS, per_day, now_ms) {
                return Some((true, wait));
            }
            address.counted_since += 1;
        } else if known.len() < MAX_KNOWN_ADDRESSES {
            // Unknown until the next exchange reads its shared buckets.
            known.insert(
                client.to_owned(),
                KnownAddress { counted_since: 1, seen_ms: now_ms, ..KnownAddress::default() },
            );
        }
        *pending.entry(client.to_owned()).or_default() += 1;
        None
    }

    /// One exchange of per-address counts: adds what this replica counted
    /// since the last one to the shared buckets and reads back the buckets
    /// of every address active here. While Redis does not answer, the
    /// counts wait for the next exchange (nothing is lost).
    pub async fn exchange_address_counts(&self, now_ms: u64) {
        let (minute_now, day_now) = (now_ms / MINUTE_BUCKET_MS, now_ms / DAY_BUCKET_MS);
        let (counted, active): (Vec<(String, u64)>, Vec<String>) = {
            let mut addresses = self.addresses.lock();
            let AddressCounts { pending, known } = &mut *addresses;
            known.retain(|_, address| address.seen_ms + KNOWN_ADDRESS_TTL_MS > now_ms);
            let names: Vec<String> = pending.keys().take(MAX_ADDRESSES_PER_EXCHANGE).cloned().collect();
            let counted = names.iter().filter_map(|name| pending.remove_entry(name)).collect();
            let active = known.keys().take(MAX_ADDRESSES_PER_EXCHANGE).cloned().collect();
            (counted, active)
        };
        let give_back = |counted: Vec<(String, u64)>| {
            let mut addresses = self.addresses.lock();
            for (name, count) in counted {
                *addresses.pending.entry(name).or_default() += count;
            }
        };
        if counted.is_empty() && active.is_empty() {
            return;
        }
        let Some(mut connection) = self.connection.read().clone() else { return give_back(counted) };
        let mut pipe = redis::pipe();
        for (client, count) in &counted {
            let minute_key = format!("hajimi:ip:{client}:s:{minute_now}");
            let day_key = format!("hajimi:ip:{client}:h:{day_now}");
            pipe.incr(&minute_key, *count).ignore().pexpire(&minute_key, 70_000).ignore();
            pipe.incr(&day_key, *count).ignore().pexpire(&day_key, 90_000_000).ignore();
        }
        for client in &active {
            let mut keys: Vec<String> =
                ((minute_now + 1 - MINUTE_BUCKETS)..=minute_now).map(|b| format!("hajimi:ip:{client}:s:{b}")).collect();
            keys.extend(((day_now + 1 - DAY_BUCKETS)..=day_now).map(|b| format!("hajimi:ip:{client}:h:{b}")));
            pipe.cmd("MGET").arg(keys);
        }
        let read =
            tokio::time::timeout(RESERVE_TIMEOUT, pipe.query_async::<Vec<Vec<Option<u64>>>>(&mut connection)).await;
        let Ok(Ok(buckets)) = read else { return give_back(counted) };
        let mut addresses = self.addresses.lock();
        let AddressCounts { pending, known } = &mut *addresses;
        for (client, counts) in active.iter().zip(buckets) {
            let Some(address) = known.get_mut(client) else { continue };
            let minute_first = minute_now + 1 - MINUTE_BUCKETS;
            let day_first = day_now + 1 - DAY_BUCKETS;
            address.minute = (0..MINUTE_BUCKETS)
                .map(|i| (minute_first + i, counts.get(i as usize).copied().flatten().unwrap_or(0)))
                .collect();
            address.day = (0..DAY_BUCKETS)
                .map(|i| (day_first + i, counts.get((MINUTE_BUCKETS + i) as usize).copied().flatten().unwrap_or(0)))
                .collect();
            // What was counted after this exchange took its share.
            address.counted_since = pending.get(client).copied().unwrap_or(0);
        }
    }

    /// Adds this replica's newest log records to the shared rolling log,
    /// which keeps the newest `capacity`. Best effort: while Redis is away
    /// they stay in this replica's own log only.
    pub async fn push_log(&self, records: &[std::sync::Arc<crate::log_ring::LogRecord>], capacity: usize) {
        let Some(mut connection) = self.connection.read().clone() else { return };
        if records.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for record in records {
            let shared = SharedLogRecord {
                replica: self.replica.clone(),
                seq: record.seq,
                time_ms: record.time_ms,
                level: record.level.as_str().to_owned(),
                source: record.source.to_owned(),
                message: record.message.clone(),
            };
            pipe.lpush(LOG, serde_json::to_string(&shared).unwrap_or_default()).ignore();
        }
        pipe.ltrim(LOG, 0, capacity.max(1) as isize - 1).ignore();
        let _ = tokio::time::timeout(RESERVE_TIMEOUT, pipe.query_async::<()>(&mut connection)).await;
    }

    /// The shared rolling log, oldest first; `None` while Redis is away.
    pub async fn merged_log(&self, capacity: usize) -> Option<Vec<SharedLogRecord>> {
        let mut connection = self.connection.read().clone()?;
        let mut range = redis::cmd("LRANGE");
        range.arg(LOG).arg(0).arg(capacity.max(1) as isize - 1);
        let records: Vec<String> =
            tokio::time::timeout(RESERVE_TIMEOUT, range.query_async(&mut connection)).await.ok()?.ok()?;
        let mut records: Vec<SharedLogRecord> =
            records.iter().filter_map(|json| serde_json::from_str(json).ok()).collect();
        records.sort_by_key(|record| record.time_ms);
        Some(records)
    }

    /// A reserved unit the call did not use: kept as credit for the next.
    pub fn give_back(&self, key: &str, model: &str, day: i64) {
        let mut credits = self.credits.lock();
        let credit = credits
            .entry((key.to_owned(), model.to_owned(), day))
            .or_insert_with(|| Credit { units: 0, touched: std::time::Instant::now() });
        credit.units += 1;
        credit.touched = std::time::Instant::now();
    }

    /// Returns credit idle for [`IDLE_CREDIT`] (or all of it, with
    /// `everything`) to the shared count, so other replicas may use it.
    pub async fn return_idle_credit(&self, everything: bool) {
        let idle: Vec<((String, String, i64), u32)> = {
            let mut credits = self.credits.lock();
            let idle_keys: Vec<(String, String, i64)> = credits
                .iter()
                .filter(|(_, credit)| everything || credit.touched.elapsed() >= IDLE_CREDIT)
                .map(|(slot, _)| slot.clone())
                .collect();
            idle_keys
                .into_iter()
                .filter_map(|slot| credits.remove(&slot).map(|credit| (slot, credit.units)))
                .filter(|(_, units)| *units > 0)
                .collect()
        };
        if idle.is_empty() {
            return;
        }
        let Some(mut connection) = self.connection.read().clone() else {
            self.keep_credit(idle);
            return;
        };
        let mut pipe = redis::pipe();
        for ((key, model, day), units) in &idle {
            pipe.hincr(quota_hash(*day), format!("{key}{SEPARATOR}{model}"), -i64::from(*units)).ignore();
        }
        let returned = tokio::time::timeout(RESERVE_TIMEOUT, pipe.query_async::<()>(&mut connection)).await;
        if !matches!(returned, Ok(Ok(()))) {
            self.keep_credit(idle);
        }
    }

    fn keep_credit(&self, credit: Vec<((String, String, i64), u32)>) {
        let mut credits = self.credits.lock();
        for (slot, units) in credit {
            credits.entry(slot).or_insert_with(|| Credit { units: 0, touched: std::time::Instant::now() }).units +=
                units;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_by_the_shared_count_plus_what_was_counted_since() {
        let link = ReplicaLink::new("r1".into());
        let now = 1_000_000_000u64;
        // First sight: allowed locally until the exchange reads its buckets.
        assert_eq!(link.count_address_locally("198.51.100.7", 3, 0, now), None);
        {
            let mut addresses = link.addresses.lock();
            let known = addresses.known.get_mut("198.51.100.7").unwrap();
            // The other replicas had counted 1 in this minute's bucket.
            let bucket = now / MINUTE_BUCKET_MS;
            known.minute = vec![(bucket - 2, 1), (bucket, 1)];
            known.counted_since = 0;
        }
        assert_eq!(link.count_address_locally("198.51.100.7", 3, 0, now), None);
        let (per_day, wait_ms) = link.count_address_locally("198.51.100.7", 3, 0, now).unwrap();
        assert!(!per_day);
        // The older bucket leaves the window first.
        let leaves = (now / MINUTE_BUCKET_MS - 2 + MINUTE_BUCKETS) * MINUTE_BUCKET_MS;
        assert_eq!(wait_ms, leaves - now);
        // Refused requests are not counted, and pending holds the counted two.
        assert_eq!(link.addresses.lock().pending.get("198.51.100.7"), Some(&2));
        // A bucket that left the window no longer counts.
        assert_eq!(window_total(&[(10, 5), (15, 1)], 15, 6), 6);
        assert_eq!(window_total(&[(9, 5), (15, 1)], 15, 6), 1);
    }
}
