//! Durable state behind one narrow interface (§10). Everything hajimi
//! keeps across restarts goes through [`Store`]: dashboard setting
//! overrides, keys added in the dashboard and operator actions on keys,
//! key health and daily usage, per-model daily limits, Vertex credentials
//! and Express keys, the dashboard password hash, per-minute stats and
//! request-log metadata. The embedded implementation is SQLite
//! ([`sqlite::SqliteStore`]); the shared one for several replicas
//! ([`redis::RedisStore`], `REDIS_URL`) implements the same trait. With `ENABLE_STORAGE=false`,
//! [`memory::MemoryStore`] keeps it all in memory for the process's life.
//!
//! Requests never wait for the disk: they hand [`Change`]s to the
//! [`writer::StoreWriter`], a background thread that applies them in
//! batches, one transaction each (a `kill -9` loses at most the last batch,
//! never the file's consistency).

pub mod import;
pub mod memory;
pub mod recent;
pub mod redis;
pub mod sqlite;
pub mod writer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the operator did to a key in the dashboard. Survives restarts,
/// even for keys that are also in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAction {
    Disabled,
    Deleted,
}

/// A key's health as last known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKeyHealth {
    pub key: String,
    /// `Some(reason)` when the key was found invalid.
    pub invalid_reason: Option<String>,
    pub last_validated_ms: u64,
}

/// One key's usage of one model on one Pacific day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUsage {
    pub key: String,
    pub model: String,
    /// Days since the Unix epoch in America/Los_Angeles (`keys::pacific`).
    pub pacific_day: i64,
    pub successes: u64,
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A Vertex service account as added in the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    pub client_email: String,
    pub project_id: String,
    /// The whole service-account JSON (holds the private key).
    pub json: String,
}

/// Counters of one wall-clock minute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteStats {
    /// Unix time in minutes.
    pub minute: u64,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub cache_hits: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Failures by classified kind (`FailureKind::as_str`, or `client` …).
    pub failures_by_kind: BTreeMap<String, u64>,
}

impl MinuteStats {
    /// Adds the counters of `addition` (its `minute` is not looked at).
    pub fn add(&mut self, addition: &MinuteStats) {
        self.requests += addition.requests;
        self.successes += addition.successes;
        self.failures += addition.failures;
        self.cache_hits += addition.cache_hits;
        self.prompt_tokens += addition.prompt_tokens;
        self.completion_tokens += addition.completion_tokens;
        for (kind, count) in &addition.failures_by_kind {
            self.add_failure_kind(kind, *count);
        }
    }

    /// Counts `count` failures of `kind`, keeping at most
    /// [`MAX_FAILURE_KINDS_PER_MINUTE`] distinct kinds (the rest go
    /// under [`OTHER_FAILURE_KIND`]).
    pub fn add_failure_kind(&mut self, kind: &str, count: u64) {
        if let Some(existing) = self.failures_by_kind.get_mut(kind) {
            *existing += count;
            return;
        }
        let kind = if self.failures_by_kind.len() < MAX_FAILURE_KINDS_PER_MINUTE { kind } else { OTHER_FAILURE_KIND };
        *self.failures_by_kind.entry(kind.to_owned()).or_insert(0) += count;
    }
}

/// Distinct failure kinds one minute keeps; further kinds are counted
/// under [`OTHER_FAILURE_KIND`].
pub const MAX_FAILURE_KINDS_PER_MINUTE: usize = 32;
pub const OTHER_FAILURE_KIND: &str = "other";

/// Metadata of one request (never its content, never a key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub at_ms: u64,
    pub method: String,
    pub route: String,
    pub model: String,
    /// `#id` of the key that served it, if any.
    pub key_id: Option<u32>,
    pub status: u16,
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub error_kind: Option<String>,
}

/// A response of the OpenAI Responses door kept for `previous_response_id`
/// and `GET /v1/responses/{id}` (`RESPONSES_RETENTION_HOURS`). The store
/// does not look inside `body`: it is the door's own JSON (the response
/// object and the input items of its turn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// `resp_…`.
    pub id: String,
    /// [`scope_digest`] of the client that made it: only that client may
    /// read, chain or delete it.
    pub scope: String,
    pub created_ms: u64,
    /// When it may be forgotten (Redis sets its TTL from it; SQLite and
    /// memory prune by `created_ms`).
    pub expires_ms: u64,
    pub body: String,
}

impl StoredResponse {
    /// Bytes it holds (for the bounds on what is kept).
    pub fn size(&self) -> usize {
        self.id.len() + self.scope.len() + self.body.len()
    }
}

/// SHA-256 of a client's scope bytes (`auth::ClientScope::as_bytes`), hex:
/// how a stored response names the client it belongs to.
pub fn scope_digest(scope: &[u8]) -> String {
    use sha2::Digest;
    crate::secret::hex(&sha2::Sha256::digest(scope))
}

/// Everything durable, read once at startup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Setting name (as in `config::SETTINGS`) → value.
    pub setting_overrides: BTreeMap<String, String>,
    /// Keys added in the dashboard, oldest first.
    pub added_keys: Vec<String>,
    pub key_actions: BTreeMap<String, KeyAction>,
    pub key_health: Vec<StoredKeyHealth>,
    /// Usage rows of the most recent Pacific day stored (older days are
    /// not returned).
    pub usage: Vec<StoredUsage>,
    pub model_limits: BTreeMap<String, u32>,
    /// PHC string (argon2id) of the dashboard password, once set there.
    pub password_hash: Option<String>,
    pub credentials: Vec<StoredCredential>,
    pub express_keys: Vec<String>,
    /// Live dashboard sessions (shared store only), as `SessionStarted`.
    pub sessions: Vec<Change>,
}

impl Snapshot {
    /// The snapshot as changes that rebuild it in another store (keys
    /// before the actions on them). Usage is left out: it counts, and
    /// counting it twice would not be harmless.
    pub fn to_changes(&self) -> Vec<Change> {
        let mut changes: Vec<Change> = self
            .setting_overrides
            .iter()
            .map(|(name, value)| Change::SetSetting { name: name.clone(), value: value.clone() })
            .collect();
        if !self.added_keys.is_empty() {
            changes.push(Change::AddKeys(self.added_keys.clone()));
        }
        changes.extend(
            self.key_actions
                .iter()
                .map(|(key, action)| Change::SetKeyAction { key: key.clone(), action: Some(*action) }),
        );
        changes.extend(self.key_health.iter().cloned().map(Change::KeyHealth));
        changes.extend(
            self.model_limits
                .iter()
                .map(|(model, limit)| Change::SetModelLimit { model: model.clone(), limit: Some(*limit) }),
        );
        changes.extend(self.password_hash.clone().map(Change::SetPasswordHash));
        changes.extend(self.credentials.iter().cloned().map(Change::AddCredential));
        changes.extend(self.express_keys.iter().cloned().map(Change::AddExpressKey));
        changes.extend(self.sessions.iter().cloned());
        changes
    }
}

/// One durable change. Applying the same change twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    SetSetting {
        name: String,
        value: String,
    },
    RemoveSetting {
        name: String,
    },
    /// Keys added in the dashboard (also clears a `Deleted` action).
    AddKeys(Vec<String>),
    /// `None` clears the action.
    SetKeyAction {
        key: String,
        action: Option<KeyAction>,
    },
    KeyHealth(StoredKeyHealth),
    /// Replaces the row of (key, model, day).
    Usage(StoredUsage),
    /// `None` removes the per-model limit.
    SetModelLimit {
        model: String,
        limit: Option<u32>,
    },
    SetPasswordHash(String),
    AddCredential(StoredCredential),
    RemoveCredential {
        client_email: String,
    },
    AddExpressKey(String),
    RemoveExpressKey(String),
    /// Replaces the row of that minute.
    MinuteStats(MinuteStats),
    Request(RequestRecord),
    /// Drops stats and request records older than these.
    Prune {
        stats_before_minute: u64,
        requests_before_ms: u64,
    },
    /// Keeps a response of the Responses door (replaces one of the same id).
    /// Shared with the recent responses until the writer has stored it.
    SaveResponse(std::sync::Arc<StoredResponse>),
    /// Forgets a stored response, if it is `scope`'s.
    DeleteResponse {
        id: String,
        scope: String,
    },
    /// Forgets stored responses made before `before_ms`.
    PruneResponses {
        before_ms: u64,
    },
    // What follows is shared between replicas (REDIS_URL) and not kept by
    // a single node's store, which ignores it: the state lives in memory.
    /// A dashboard session began. `digest` is [`session_digest`] of its id:
    /// the id itself never leaves the replica that issued it.
    SessionStarted {
        digest: String,
        csrf: String,
        must_change_password: bool,
        at_ms: u64,
    },
    /// A session ended (logout).
    SessionEnded {
        digest: String,
    },
    /// The dashboard password changed in this session: it may leave the
    /// password page, and every other session ends.
    PasswordChangedIn {
        digest: String,
    },
    /// A key rests for one model until `until_ms` (rate limited, overloaded).
    KeyCooling {
        key: String,
        model: String,
        until_ms: u64,
    },
    /// A key has used up its daily quota of one model until `until_ms`.
    KeyExhausted {
        key: String,
        model: String,
        until_ms: u64,
    },
    /// Too many wrong passwords from `address`: refused until `until_ms`,
    /// on the dashboard (`dashboard`) or the API (`api`: client keys,
    /// metrics tokens).
    AddressLockedOut {
        throttle: String,
        address: String,
        until_ms: u64,
    },
}

impl Change {
    /// Whether other replicas must hear of this change at once (through
    /// the shared store's channel): what the operator did, and what one
    /// replica learned about a key. Counters, stats and request records
    /// are not broadcast.
    pub fn is_shared(&self) -> bool {
        !matches!(
            self,
            Change::Usage(_)
                | Change::MinuteStats(_)
                | Change::Request(_)
                | Change::Prune { .. }
                | Change::SaveResponse(_)
                | Change::DeleteResponse { .. }
                | Change::PruneResponses { .. }
        )
    }

    /// Whether the writer should write it at once rather than at the end
    /// of its batch window: shared changes, and stored responses, which a
    /// follow-up may ask another replica for a moment later.
    pub fn is_urgent(&self) -> bool {
        self.is_shared() || matches!(self, Change::SaveResponse(_) | Change::DeleteResponse { .. })
    }
}

/// SHA-256 of a session id, hex: how sessions are named outside the
/// replica that issued them.
pub fn session_digest(id: &str) -> String {
    use sha2::Digest;
    crate::secret::hex(&sha2::Sha256::digest(id.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Io(String),
    #[error("storage: the database is damaged or from a newer hajimi ({0})")]
    Incompatible(String),
}

/// The narrow interface every store implements. Implementations are
/// `Send + Sync`; calls may block on I/O, so request handlers never call
/// them directly: writes go through [`writer::StoreWriter`], reads happen
/// at startup and from dashboard pages (off the request hot path).
pub trait Store: Send + Sync + 'static {
    /// Everything durable (startup).
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies `changes` in order, in one transaction: all or nothing.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;
    /// Per-minute stats from `since_minute` on, oldest first.
    fn stats_since(&self, since_minute: u64) -> Result<Vec<MinuteStats>, StoreError>;
    /// The newest request records, newest first, at most `limit`.
    fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRecord>, StoreError>;
    /// The stored response `id`, when it belongs to `scope` (a
    /// [`scope_digest`]); another client's is `None`, as a missing one is.
    fn response(&self, id: &str, scope: &str) -> Result<Option<StoredResponse>, StoreError>;
}
