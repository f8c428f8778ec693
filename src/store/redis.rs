//! The shared store (`REDIS_URL`): several replicas, one state (§10). It
//! implements [`Store`] like SQLite does, so everything durable reaches
//! Redis through the same [`super::writer::StoreWriter`] thread, and adds
//! what a single node does not need:
//!
//! - **A change feed.** Every batch's shared changes ([`Change::is_shared`]:
//!   operator actions, settings, a key found invalid or cooling, sessions)
//!   are published on [`CHANNEL`]. Each replica keeps its own local view
//!   (its key pool, settings, sessions) and applies what the others publish
//!   (`crate::cluster`), so picking a key never waits for Redis.
//! - **Additive counters.** A replica sends its usage as totals; here they
//!   become increments (`HINCRBY` of the difference from what this replica
//!   wrote before), so replicas add up instead of overwriting each other.
//!   Stats minutes are kept per replica and summed when read.
//! - **Riding out an outage.** When Redis cannot be reached, a batch is
//!   kept (bounded, [`MAX_PENDING_CHANGES`]) and written, then published,
//!   once it is back; meanwhile every replica serves from its own view and
//!   says so in `/ready`, the log and the dashboard ([`SharedStatus`]).
//!
//! - **Exact daily limits.** A replica about to use a key whose daily
//!   limit is enforced first holds a unit of it (`replicas::ReplicaLink::reserve`):
//!   a script grants units only while the shared count is under the limit,
//!   so N replicas together never use a key past it. Units come in blocks
//!   (1/64 of what is left, at most 16) so a replica seldom asks; a unit
//!   not used (the call failed) goes back to the replica's credit, and
//!   credit idle for `replicas::IDLE_CREDIT` goes back to Redis.
//!
//! The writer thread talks to Redis over a blocking connection with short
//! timeouts; the request path only ever waits for a reservation, over a
//! multiplexed async connection. The URL's credentials are
//! never logged: only [`SharedStatus::endpoint`] (scheme, host, port).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{
    Change, KeyAction, MinuteStats, RequestRecord, Snapshot, Store, StoreError, StoredCredential, StoredKeyHealth,
    StoredResponse, StoredUsage,
};

/// The pub/sub channel shared changes travel on.
pub const CHANNEL: &str = "hajimi:changes";
/// Changes kept while Redis is unreachable; the oldest go first beyond it.
pub const MAX_PENDING_CHANGES: usize = 100_000;
/// Request records kept in Redis (newest first).
const REQUESTS_KEPT: isize = 10_000;
/// Request records one batch (half a second) adds at most.
const REQUESTS_PER_BATCH: usize = 1_000;
/// Connect, read and write timeout of the writer's connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Stats minutes and usage days expire on their own after this long.
const STATS_TTL_SECONDS: i64 = 32 * 86_400;
const USAGE_TTL_SECONDS: i64 = 3 * 86_400;

const SETTINGS: &str = "hajimi:settings";
const ADDED_KEYS: &str = "hajimi:keys:added";
const KEY_ACTIONS: &str = "hajimi:keys:actions";
const KEY_HEALTH: &str = "hajimi:keys:health";
const MODEL_LIMITS: &str = "hajimi:limits";
const PASSWORD_HASH: &str = "hajimi:password";
const CREDENTIALS: &str = "hajimi:vertex:credentials";
const EXPRESS_KEYS: &str = "hajimi:vertex:express";
const SESSIONS: &str = "hajimi:sessions";
const REQUESTS: &str = "hajimi:requests";
/// Set once per Redis data set: when it is gone or changed, Redis lost
/// what it held (restarted without persistence, flushed, replaced).
const EPOCH: &str = "hajimi:epoch";

fn usage_hash(day: i64) -> String {
    format!("hajimi:usage:{day}")
}

fn stats_hash(minute: u64) -> String {
    format!("hajimi:stats:{minute}")
}

/// A stored response, under its client's scope digest: another client's
/// digest names another key, so it can neither read nor delete it.
fn response_key(scope: &str, id: &str) -> String {
    format!("hajimi:response:{scope}:{id}")
}

use crate::replicas::SEPARATOR;

/// One message on [`CHANNEL`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Broadcast {
    /// The replica that made the changes (it ignores its own messages).
    pub from: String,
    pub changes: Vec<Change>,
}

/// Whether this replica follows the shared state, for `/ready`, the log
/// and the dashboard: up once `cluster::follow` is subscribed, caught up
/// and holds the connection reservations use (so a request never takes a
/// key past a shared limit because the replica had only just started);
/// down as soon as any call to Redis fails.
pub struct SharedStatus {
    endpoint: String,
    up: AtomicBool,
    /// Unix ms of the last change between reachable and not.
    since_ms: AtomicU64,
}

impl SharedStatus {
    /// `scheme://host:port` of the Redis in use: no user, no password.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    pub fn since_ms(&self) -> u64 {
        self.since_ms.load(Ordering::SeqCst)
    }

    /// Records reachability; logs each change once.
    pub fn set_up(&self, up: bool, reason: &str) {
        if self.up.swap(up, Ordering::SeqCst) == up {
            return;
        }
        self.since_ms.store(crate::clock::unix_ms(), Ordering::SeqCst);
        if up {
            log::info!(target: "hajimi::cluster", "shared state: Redis at {} is reachable; caught up", self.endpoint);
        } else {
            log::warn!(
                target: "hajimi::cluster",
                "shared state: Redis at {} is unreachable ({}); serving from this replica's own view until it returns",
                self.endpoint,
                crate::secret::LogSafe(reason)
            );
        }
    }
}

pub struct RedisStore {
    client: redis::Client,
    /// This process's name among the replicas (random per start).
    replica: String,
    connection: Mutex<Option<redis::Connection>>,
    /// Changes not yet written (Redis was unreachable), oldest first.
    pending: Mutex<VecDeque<Change>>,
    /// What this replica last wrote per (key, model, day): usage arrives
    /// as totals and is added to Redis as the difference.
    usage_written: Mutex<HashMap<(String, String, i64), StoredUsage>>,
    status: SharedStatus,
    /// The request path's half (`crate::replicas`): its connection, held
    /// while `cluster::follow` is subscribed, and its credit.
    link: crate::replicas::ReplicaLink,
    /// The data set this replica last saw (`EPOCH`).
    epoch: Mutex<Option<String>>,
}

/// The URL without credentials or path: `redis://host:port`.
pub fn describe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            format!("{}://{}:{}", parsed.scheme(), parsed.host_str().unwrap_or("?"), parsed.port().unwrap_or(6379))
        }
        Err(_) => "(an unreadable REDIS_URL)".to_owned(),
    }
}

fn io_error(error: &redis::RedisError) -> StoreError {
    StoreError::Io(format!("Redis: {}", crate::secret::LogSafe(&error.to_string())))
}

impl RedisStore {
    /// A store on `url` (`redis://` or `rediss://`). Does not connect yet:
    /// a replica starts even while Redis is down.
    /// `ca_file` (PEM), when not empty, is the only CA a `rediss://`
    /// server's certificate is verified against (a private CA); else the
    /// bundled Mozilla roots.
    pub fn open(url: &str, ca_file: &str) -> Result<RedisStore, StoreError> {
        // rediss:// goes through rustls, which needs a process-wide crypto
        // provider; the upstream client's is the same (ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let not_a_url = || {
            StoreError::Io("REDIS_URL is not a Redis URL (redis://[user:password@]host:port[/db] or rediss://…)".into())
        };
        let client = if ca_file.is_empty() {
            redis::Client::open(url).map_err(|_| not_a_url())?
        } else {
            let root_cert = std::fs::read(ca_file)
                .map_err(|error| StoreError::Io(format!("REDIS_CA_FILE {ca_file} cannot be read ({error})")))?;
            let certificates = redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) };
            redis::Client::build_with_tls(url, certificates).map_err(|error| match error.kind() {
                redis::ErrorKind::InvalidClientConfig if url.starts_with("redis") => {
                    StoreError::Io(format!("REDIS_CA_FILE {ca_file} holds no usable CA certificate (PEM)"))
                }
                _ => not_a_url(),
            })?
        };
        let replica = crate::secret::random_token(&mut rand::rng())[..12].to_owned();
        Ok(RedisStore {
            client,
            link: crate::replicas::ReplicaLink::new(replica.clone()),
            replica,
            connection: Mutex::new(None),
            pending: Mutex::new(VecDeque::new()),
            usage_written: Mutex::new(HashMap::new()),
            status: SharedStatus {
                endpoint: describe_url(url),
                up: AtomicBool::new(false),
                since_ms: AtomicU64::new(crate::clock::unix_ms()),
            },
            epoch: Mutex::new(None),
        })
    }

    /// Whether Redis holds a data set this replica has not seen: new, or
    /// emptied since (it restarted without persistence, was flushed or
    /// replaced). Then the caller writes its own view back before adopting
    /// the shared state, so nothing is lost with it. The first data set a
    /// replica sees counts as new only when Redis is empty.
    pub fn data_set_is_new(&self) -> Result<bool, StoreError> {
        let candidate = crate::secret::random_token(&mut rand::rng())[..16].to_owned();
        let (created, current): (bool, String) = self.with_connection(|connection| {
            let created: bool = redis::cmd("SETNX").arg(EPOCH).arg(&candidate).query(connection)?;
            let current: String = redis::cmd("GET").arg(EPOCH).query(connection)?;
            Ok((created, current))
        })?;
        let mut seen = self.epoch.lock();
        let new = created || seen.as_ref().is_some_and(|seen| *seen != current);
        *seen = Some(current);
        Ok(new)
    }

    /// What the request path asks of the other replicas.
    pub fn link(&self) -> &crate::replicas::ReplicaLink {
        &self.link
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn status(&self) -> &SharedStatus {
        &self.status
    }

    /// Changes waiting for Redis to return.
    pub fn pending_count(&self) -> usize {
        self.pending.lock().len()
    }

    /// Runs `work` on the connection (made on first use, remade after an
    /// error); an error drops the connection and marks Redis unreachable.
    fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.connection.lock();
        if slot.is_none() {
            let connection = self.client.get_connection_with_timeout(IO_TIMEOUT).and_then(|connection| {
                connection.set_read_timeout(Some(IO_TIMEOUT))?;
                connection.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(connection)
            });
            match connection {
                Ok(connection) => *slot = Some(connection),
                Err(error) => {
                    self.status.set_up(false, &error.to_string());
                    return Err(io_error(&error));
                }
            }
        }
        let connection = slot.as_mut().expect("connected above");
        match work(connection) {
            Ok(value) => Ok(value),
            Err(error) => {
                *slot = None;
                self.status.set_up(false, &error.to_string());
                Err(io_error(&error))
            }
        }
    }

    /// Whether Redis answers now.
    pub fn ping(&self) -> bool {
        self.with_connection(|connection| redis::cmd("PING").query::<String>(connection)).is_ok()
    }

    /// Writes (and publishes) `changes` now, from outside the writer
    /// thread (re-seeding a Redis that lost its data).
    pub fn write_now(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.write(changes)
    }

    /// Writes (and publishes) what was kept while Redis was unreachable.
    /// True when nothing is left waiting.
    pub fn write_pending(&self) -> bool {
        let waiting: Vec<Change> = self.pending.lock().drain(..).collect();
        if waiting.is_empty() {
            return true;
        }
        let count = waiting.len();
        match self.write(&waiting) {
            Ok(()) => {
                log::info!(target: "hajimi::cluster", "shared state: {count} changes made while Redis was away are written");
                true
            }
            Err(_) => {
                self.keep(waiting);
                false
            }
        }
    }

    /// Keeps `changes` for later, dropping the oldest counters (then the
    /// oldest of anything) beyond the bound.
    /// Request records are not kept: they are a sample for the request
    /// log, and under load they would crowd out what matters (an outage at
    /// 20,000 requests/s would fill the bound in five seconds). Nor are
    /// stored responses: each may be megabytes, and a follow-up that does
    /// not find one gets a clear 400.
    fn keep(&self, changes: Vec<Change>) {
        let mut pending = self.pending.lock();
        pending.extend(
            changes.into_iter().filter(|change| !matches!(change, Change::Request(_) | Change::SaveResponse(_))),
        );
        let excess = pending.len().saturating_sub(MAX_PENDING_CHANGES);
        if excess > 0 {
            // Counters first: the shared changes (operator actions) last.
            let mut dropped = 0;
            pending.retain(|change| {
                let drop = dropped < excess && !change.is_shared();
                dropped += usize::from(drop);
                !drop
            });
            let rest = pending.len().saturating_sub(MAX_PENDING_CHANGES);
            pending.drain(..rest);
            log::warn!(target: "hajimi::cluster", "shared state: {excess} changes dropped while Redis is away (more than {MAX_PENDING_CHANGES} waiting)");
        }
    }

    /// One atomic pipeline for the batch, then one message with its shared
    /// changes.
    fn write(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        // Usage rows as written by this batch: they become this replica's
        // baseline only once the batch is in.
        let mut usage_now: HashMap<(String, String, i64), StoredUsage> = HashMap::new();
        // Request records go in one LPUSH and one LTRIM per batch, at most
        // the newest REQUESTS_PER_BATCH of it (under load a batch holds
        // thousands; a sample of the newest is what the log is for).
        let mut requests: Vec<&RequestRecord> = Vec::new();
        for change in changes {
            match change {
                Change::Request(record) => requests.push(record),
                _ => self.add_to_pipe(&mut pipe, change, &mut usage_now),
            }
        }
        if !requests.is_empty() {
            let newest = requests.len().saturating_sub(REQUESTS_PER_BATCH);
            let encoded: Vec<String> =
                requests[newest..].iter().map(|record| serde_json::to_string(record).unwrap_or_default()).collect();
            pipe.lpush(REQUESTS, encoded).ignore();
            pipe.ltrim(REQUESTS, 0, REQUESTS_KEPT - 1).ignore();
        }
        let shared: Vec<Change> = changes.iter().filter(|change| change.is_shared()).cloned().collect();
        let message = (!shared.is_empty())
            .then(|| serde_json::to_string(&Broadcast { from: self.replica.clone(), changes: shared }))
            .transpose()
            .map_err(|error| StoreError::Io(format!("cannot encode shared changes: {error}")))?;
        self.with_connection(|connection| {
            pipe.query::<()>(connection)?;
            if let Some(message) = &message {
                redis::cmd("PUBLISH").arg(CHANNEL).arg(message).query::<i64>(connection)?;
            }
            Ok(())
        })?;
        self.usage_written.lock().extend(usage_now);
        Ok(())
    }

    fn add_to_pipe(
        &self,
        pipe: &mut redis::Pipeline,
        change: &Change,
        usage_now: &mut HashMap<(String, String, i64), StoredUsage>,
    ) {
        match change {
            Change::SetSetting { name, value } => {
                pipe.hset(SETTINGS, name, value).ignore();
            }
            Change::RemoveSetting { name } => {
                pipe.hdel(SETTINGS, name).ignore();
            }
            Change::AddKeys(keys) => {
                // Oldest first: the score is the time it was added; NX keeps
                // the first time of a key added twice.
                let now = crate::clock::unix_ms() as f64;
                for (index, key) in keys.iter().enumerate() {
                    pipe.cmd("ZADD").arg(ADDED_KEYS).arg("NX").arg(now + index as f64 / 1e6).arg(key).ignore();
                    pipe.hdel(KEY_ACTIONS, key).ignore();
                }
            }
            Change::SetKeyAction { key, action: Some(action) } => {
                let action = match action {
                    KeyAction::Disabled => "disabled",
                    KeyAction::Deleted => "deleted",
                };
                pipe.hset(KEY_ACTIONS, key, action).ignore();
            }
            Change::SetKeyAction { key, action: None } => {
                pipe.hdel(KEY_ACTIONS, key).ignore();
            }
            Change::KeyHealth(health) => {
                let json = serde_json::to_string(health).unwrap_or_default();
                pipe.hset(KEY_HEALTH, &health.key, json).ignore();
            }
            Change::Usage(usage) => self.add_usage(pipe, usage, usage_now),
            Change::SetModelLimit { model, limit: Some(limit) } => {
                pipe.hset(MODEL_LIMITS, model, limit).ignore();
            }
            Change::SetModelLimit { model, limit: None } => {
                pipe.hdel(MODEL_LIMITS, model).ignore();
            }
            Change::SetPasswordHash(hash) => {
                pipe.set(PASSWORD_HASH, hash).ignore();
            }
            Change::AddCredential(credential) => {
                let json = serde_json::to_string(credential).unwrap_or_default();
                pipe.hset(CREDENTIALS, &credential.client_email, json).ignore();
            }
            Change::RemoveCredential { client_email } => {
                pipe.hdel(CREDENTIALS, client_email).ignore();
            }
            Change::AddExpressKey(key) => {
                pipe.sadd(EXPRESS_KEYS, key).ignore();
            }
            Change::RemoveExpressKey(key) => {
                pipe.srem(EXPRESS_KEYS, key).ignore();
            }
            Change::MinuteStats(stats) => {
                let hash = stats_hash(stats.minute);
                pipe.hset(&hash, &self.replica, serde_json::to_string(stats).unwrap_or_default()).ignore();
                pipe.expire(&hash, STATS_TTL_SECONDS).ignore();
            }
            // Gathered by `write`, one push per batch.
            Change::Request(_) => {}
            // Stats minutes expire on their own; request records are
            // bounded by count.
            Change::Prune { .. } => {}
            Change::SessionStarted { digest, .. } => {
                pipe.hset(SESSIONS, digest, serde_json::to_string(change).unwrap_or_default()).ignore();
            }
            Change::SessionEnded { digest } => {
                pipe.hdel(SESSIONS, digest).ignore();
            }
            Change::PasswordChangedIn { .. } => {
                // Every session ends; the one that changed the password is
                // written again by the SessionStarted sent right after.
                pipe.del(SESSIONS).ignore();
            }
            // Transient: they only travel on the channel.
            Change::KeyCooling { .. } | Change::KeyExhausted { .. } | Change::AddressLockedOut { .. } => {}
            Change::SaveResponse(response) => {
                let ttl_ms = response.expires_ms.saturating_sub(crate::clock::unix_ms());
                if ttl_ms > 0 {
                    let json = serde_json::to_string(response).unwrap_or_default();
                    pipe.cmd("SET")
                        .arg(response_key(&response.scope, &response.id))
                        .arg(json)
                        .arg("PX")
                        .arg(ttl_ms)
                        .ignore();
                }
            }
            Change::DeleteResponse { id, scope } => {
                pipe.del(response_key(scope, id)).ignore();
            }
            // Stored responses expire on their own (their TTL).
            Change::PruneResponses { .. } => {}
        }
    }

    /// Adds this replica's usage since its last write of the same row.
    fn add_usage(
        &self,
        pipe: &mut redis::Pipeline,
        usage: &StoredUsage,
        usage_now: &mut HashMap<(String, String, i64), StoredUsage>,
    ) {
        let row = (usage.key.clone(), usage.model.clone(), usage.pacific_day);
        let before = usage_now.get(&row).cloned().or_else(|| self.usage_written.lock().get(&row).cloned());
        let increase = |now: u64, then: Option<u64>| match then {
            Some(then) if now >= then => now - then,
            // A row that went down was reset (a new day): all of it is new.
            _ => now,
        };
        let hash = usage_hash(usage.pacific_day);
        let fields = [
            ("successes", usage.successes, before.as_ref().map(|b| b.successes)),
            ("failures", usage.failures, before.as_ref().map(|b| b.failures)),
            ("prompt_tokens", usage.prompt_tokens, before.as_ref().map(|b| b.prompt_tokens)),
            ("completion_tokens", usage.completion_tokens, before.as_ref().map(|b| b.completion_tokens)),
        ];
        for (name, now, then) in fields {
            let delta = increase(now, then);
            if delta > 0 {
                let field = format!("{}{SEPARATOR}{}{SEPARATOR}{name}", usage.key, usage.model);
                pipe.hincr(&hash, field, delta).ignore();
            }
        }
        pipe.expire(&hash, USAGE_TTL_SECONDS).ignore();
        usage_now.insert(row, usage.clone());
    }

    fn read_snapshot(&self, connection: &mut redis::Connection) -> redis::RedisResult<Snapshot> {
        let mut snapshot = Snapshot::default();
        let settings: BTreeMap<String, String> = redis::cmd("HGETALL").arg(SETTINGS).query(connection)?;
        snapshot.setting_overrides = settings;
        snapshot.added_keys = redis::cmd("ZRANGE").arg(ADDED_KEYS).arg(0).arg(-1).query(connection)?;
        let actions: BTreeMap<String, String> = redis::cmd("HGETALL").arg(KEY_ACTIONS).query(connection)?;
        snapshot.key_actions = actions
            .into_iter()
            .filter_map(|(key, action)| match action.as_str() {
                "disabled" => Some((key, KeyAction::Disabled)),
                "deleted" => Some((key, KeyAction::Deleted)),
                _ => None,
            })
            .collect();
        let health: HashMap<String, String> = redis::cmd("HGETALL").arg(KEY_HEALTH).query(connection)?;
        snapshot.key_health =
            health.values().filter_map(|json| serde_json::from_str::<StoredKeyHealth>(json).ok()).collect();
        let limits: BTreeMap<String, u32> = redis::cmd("HGETALL").arg(MODEL_LIMITS).query(connection)?;
        snapshot.model_limits = limits;
        snapshot.password_hash = redis::cmd("GET").arg(PASSWORD_HASH).query(connection)?;
        let credentials: BTreeMap<String, String> = redis::cmd("HGETALL").arg(CREDENTIALS).query(connection)?;
        snapshot.credentials =
            credentials.values().filter_map(|json| serde_json::from_str::<StoredCredential>(json).ok()).collect();
        let mut express: Vec<String> = redis::cmd("SMEMBERS").arg(EXPRESS_KEYS).query(connection)?;
        express.sort();
        snapshot.express_keys = express;
        let now_ms = crate::clock::unix_ms();
        let sessions: HashMap<String, String> = redis::cmd("HGETALL").arg(SESSIONS).query(connection)?;
        snapshot.sessions = sessions
            .values()
            .filter_map(|json| serde_json::from_str::<Change>(json).ok())
            // (Sessions too old to be alive are refused where they are
            // applied: `Sessions::insert_shared`.)
            .filter(|change| matches!(change, Change::SessionStarted { .. }))
            .collect();
        let today = crate::keys::pacific::pacific_day((now_ms / 1000) as i64);
        let usage: HashMap<String, u64> = redis::cmd("HGETALL").arg(usage_hash(today)).query(connection)?;
        snapshot.usage = usage_rows(today, &usage);
        let mut written = self.usage_written.lock();
        for row in &snapshot.usage {
            written.insert((row.key.clone(), row.model.clone(), row.pacific_day), row.clone());
        }
        Ok(snapshot)
    }
}

/// Usage rows from the fields of one day's hash.
fn usage_rows(day: i64, fields: &HashMap<String, u64>) -> Vec<StoredUsage> {
    let mut rows: BTreeMap<(String, String), StoredUsage> = BTreeMap::new();
    for (field, value) in fields {
        let mut parts = field.split(SEPARATOR);
        let (Some(key), Some(model), Some(name)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let row = rows.entry((key.to_owned(), model.to_owned())).or_insert_with(|| StoredUsage {
            key: key.to_owned(),
            model: model.to_owned(),
            pacific_day: day,
            successes: 0,
            failures: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        match name {
            "successes" => row.successes = *value,
            "failures" => row.failures = *value,
            "prompt_tokens" => row.prompt_tokens = *value,
            "completion_tokens" => row.completion_tokens = *value,
            _ => {}
        }
    }
    rows.into_values().collect()
}

impl Store for RedisStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_connection(|connection| self.read_snapshot(connection))
    }

    /// Writes the batch, or keeps it for when Redis returns (never an
    /// error: the writer would drop the batch after one retry).
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if !self.pending.lock().is_empty() && !self.write_pending() {
            self.keep(changes.to_vec());
            return Ok(());
        }
        if self.write(changes).is_err() {
            self.keep(changes.to_vec());
        }
        Ok(())
    }

    fn stats_since(&self, since_minute: u64) -> Result<Vec<MinuteStats>, StoreError> {
        let now_minute = crate::clock::unix_ms() / 60_000;
        let minutes: Vec<u64> = (since_minute..=now_minute).collect();
        let replies: Vec<HashMap<String, String>> = self.with_connection(|connection| {
            let mut pipe = redis::pipe();
            for minute in &minutes {
                pipe.cmd("HGETALL").arg(stats_hash(*minute));
            }
            pipe.query(connection)
        })?;
        Ok(minutes
            .iter()
            .zip(replies)
            .filter(|(_, per_replica)| !per_replica.is_empty())
            .map(|(minute, per_replica)| {
                let mut total = MinuteStats { minute: *minute, ..MinuteStats::default() };
                for json in per_replica.values() {
                    if let Ok(stats) = serde_json::from_str::<MinuteStats>(json) {
                        total.add(&stats);
                    }
                }
                total
            })
            .collect())
    }

    fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRecord>, StoreError> {
        let last = limit.min(REQUESTS_KEPT as usize) as isize - 1;
        if last < 0 {
            return Ok(Vec::new());
        }
        let records: Vec<String> =
            self.with_connection(|connection| redis::cmd("LRANGE").arg(REQUESTS).arg(0).arg(last).query(connection))?;
        Ok(records.iter().filter_map(|json| serde_json::from_str(json).ok()).collect())
    }

    fn response(&self, id: &str, scope: &str) -> Result<Option<StoredResponse>, StoreError> {
        let json: Option<String> =
            self.with_connection(|connection| redis::cmd("GET").arg(response_key(scope, id)).query(connection))?;
        Ok(json
            .and_then(|json| serde_json::from_str::<StoredResponse>(&json).ok())
            .filter(|response| response.id == id && response.scope == scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_described_url_has_no_credentials() {
        assert_eq!(describe_url("redis://user:s3cret@cache.internal:6380/2"), "redis://cache.internal:6380");
        assert_eq!(describe_url("rediss://:s3cret@example.com"), "rediss://example.com:6379");
        assert!(!describe_url("not a url s3cret").contains("s3cret"));
    }

    #[test]
    fn usage_fields_become_rows() {
        let fields: HashMap<String, u64> = [
            (format!("k1{SEPARATOR}m{SEPARATOR}successes"), 3),
            (format!("k1{SEPARATOR}m{SEPARATOR}prompt_tokens"), 30),
            (format!("k2{SEPARATOR}m{SEPARATOR}failures"), 1),
            ("garbage".to_owned(), 9),
        ]
        .into_iter()
        .collect();
        let rows = usage_rows(7, &fields);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].successes, rows[0].prompt_tokens, rows[0].pacific_day), (3, 30, 7));
        assert_eq!(rows[1].failures, 1);
    }

    #[test]
    fn while_redis_is_away_operator_changes_outlast_counters_and_request_records_are_not_kept() {
        // Nothing listens on port 1: every write fails at once.
        let store = RedisStore::open("redis://127.0.0.1:1/0", "").expect("a valid URL");
        let setting = Change::SetSetting { name: "MAX_RETRY_NUM".into(), value: "7".into() };
        store.apply(&[setting.clone(), Change::Request(RequestRecord::default())]).unwrap();
        assert_eq!(store.pending_count(), 1, "the request record is not kept");
        let minutes: Vec<Change> = (0..MAX_PENDING_CHANGES as u64 + 10)
            .map(|minute| Change::MinuteStats(MinuteStats { minute, ..MinuteStats::default() }))
            .collect();
        store.apply(&minutes).unwrap();
        assert_eq!(store.pending_count(), MAX_PENDING_CHANGES);
        assert_eq!(store.pending.lock().front(), Some(&setting), "the oldest counters went first");
        assert!(!store.status().is_up());
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let Err(error) = RedisStore::open("http://:s3cret@host", "") else { panic!("accepted") };
        assert!(!error.to_string().contains("s3cret"));
    }
}
