//! Application state. [`AppState`] is `Send + Sync`, lives for the whole
//! process and is shared by all workers behind `web::Data`.
//! [`WorkerClients`] holds the per-worker HTTP clients (awc clients are
//! `!Send`): one set per worker, built in the `HttpServer::new` closure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::cache::{CacheKey, SwipeCache};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::ApiError;
use crate::keys::KeyPool;
use crate::models::ModelCatalog;
use crate::ratelimit::RateLimiter;

/// The HTTP clients of one worker.
#[derive(Clone)]
pub struct WorkerClients {
    pub gemini: crate::gemini::client::GeminiClient,
    /// For fetching images clients reference by URL; follows no redirects
    /// (a redirect could lead to a private address).
    pub media: awc::Client,
}

/// The HTTP clients of one worker, rebuilt when the configuration they
/// were built from is replaced (the dashboard changed the base URL, a
/// timeout or the proxy).
pub struct WorkerClientCell {
    tls: Arc<rustls::ClientConfig>,
    current: std::cell::RefCell<(u64, actix_web::web::Data<WorkerClients>)>,
}

impl WorkerClientCell {
    pub fn new(state: &AppState, tls: Arc<rustls::ClientConfig>) -> WorkerClientCell {
        let generation = state.config_generation.load(std::sync::atomic::Ordering::SeqCst);
        let clients = actix_web::web::Data::new(worker_clients(&state.config(), tls.clone()));
        WorkerClientCell { tls, current: std::cell::RefCell::new((generation, clients)) }
    }

    /// The clients for the configuration in force now.
    pub fn current(&self, state: &AppState) -> actix_web::web::Data<WorkerClients> {
        let generation = state.config_generation.load(std::sync::atomic::Ordering::SeqCst);
        let mut current = self.current.borrow_mut();
        if current.0 != generation {
            *current = (generation, actix_web::web::Data::new(worker_clients(&state.config(), self.tls.clone())));
        }
        current.1.clone()
    }
}

/// Builds one worker's clients from `config`.
pub fn worker_clients(config: &Config, tls: Arc<rustls::ClientConfig>) -> WorkerClients {
    let gemini = crate::gemini::client::GeminiClient::new(
        crate::gemini::client::ClientSettings {
            base_url: config.gemini_base_url.clone(),
            request_timeout: config.upstream_timeout,
            connect_timeout: config.upstream_connect_timeout,
            max_response_bytes: 256 * 1024 * 1024,
            proxy: config.upstream_proxy.clone(),
            vertex_base_url: config.vertex_base_url.clone(),
            vertex_location: config.vertex_location.clone(),
        },
        tls.clone(),
    );
    let media = crate::media::image_client(
        tls,
        &crate::media::FetchLimits {
            max_bytes: config.max_image_bytes,
            timeout: config.image_fetch_timeout,
            allow_private: config.allow_private_image_urls,
        },
        config.upstream_proxy.as_ref(),
    );
    WorkerClients { gemini, media }
}

pub struct AppState {
    config: RwLock<Arc<Config>>,
    pub clock: Arc<dyn Clock>,
    /// Becomes true once the configured keys are in the pool.
    pub keys_loaded: tokio::sync::watch::Sender<bool>,
    /// Upstream calls still running after their client was answered
    /// (hedged extras finishing into the swipe cache); bounded.
    pub background_calls: std::sync::atomic::AtomicUsize,
    pub pool: KeyPool,
    pub catalog: ModelCatalog,
    pub signatures: crate::signatures::SignatureBook,
    /// Spare answers for swipes, OpenAI and native requests alike.
    pub swipe_cache: SwipeCache<Arc<crate::gemini::types::Answer>>,
    /// Non-stream generations in flight, by cache key, for de-duplication.
    pub inflight: Mutex<HashMap<CacheKey, InflightAnswer>>,
    pub rate_limiter: RateLimiter,
    /// Wrong secrets per address, one table per secret (§3.1, §3.2
    /// throttling): API password, dashboard password, metrics token.
    pub throttles: crate::throttle::Throttles,
    /// `x-ip-token` verification in Hugging Face mode.
    pub huggingface: crate::huggingface::HuggingFaceAuth,
    /// Request-body bytes held by all requests.
    pub body_budget: crate::bodylimit::BodyBudget,
    pub validation: crate::keys::validation::ValidationControl,
    pub started_at: Instant,
    /// Durable state: writes go through the background writer.
    pub store: crate::store::writer::StoreWriter,
    /// Responses of `/v1/responses` saved or deleted a moment ago, until the
    /// writer has put them in the store (`store::recent`).
    pub recent_responses: crate::store::recent::RecentResponses,
    /// The layers settings are built from: everything below the dashboard
    /// (defaults, file, env) and the dashboard's overrides.
    pub settings: Mutex<SettingsLayers>,
    /// Bumped whenever the configuration is replaced, so per-worker clients
    /// built from the old one are rebuilt.
    pub config_generation: std::sync::atomic::AtomicU64,
    /// Asks the background job for a model-list refresh (keys changed).
    pub model_refresh: tokio::sync::Notify,
    pub stats: crate::stats::Stats,
    /// `/metrics`: counters and histograms; gauges computed at scrape time.
    pub metrics: crate::metrics::Metrics,
    pub dashboard: crate::operator::DashboardState,
    /// Vertex credentials, their pools and tokens, the Vertex model list.
    pub vertex: crate::vertex::VertexState,
    /// The state shared with other replicas (`REDIS_URL`), when set; the
    /// same store the writer writes to.
    pub shared: Option<Arc<crate::store::redis::RedisStore>>,
    /// Set when the server begins to stop (SIGTERM/SIGINT): endless
    /// answers (the Log page's live tail) end at once.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// Settings below the dashboard, and the dashboard's overrides on top.
pub struct SettingsLayers {
    pub base: crate::config::RawSettings,
    pub overrides: std::collections::BTreeMap<String, String>,
}

impl SettingsLayers {
    /// The raw settings with the overrides applied.
    pub fn combined(&self, overrides: &std::collections::BTreeMap<String, String>) -> crate::config::RawSettings {
        let mut raw = self.base.clone();
        for (name, value) in overrides {
            if let Some((known, _)) = crate::config::SETTINGS.iter().find(|(known, _)| known == name) {
                raw.set(known, value.clone(), crate::config::Source::Dashboard);
            }
        }
        raw
    }
}

/// The outcome of one shared generation: the upstream answer or the error.
pub type SharedOutcome = Result<(Arc<crate::gemini::types::Answer>, crate::keys::KeyId), ApiError>;

/// Subscription to a generation in flight (`None` until it finishes).
#[derive(Clone)]
pub struct InflightAnswer {
    pub receiver: tokio::sync::watch::Receiver<Option<SharedOutcome>>,
    /// Clients waiting for it now; when none is left, no new attempt is
    /// started after a failure (calls already running may still finish into
    /// the swipe cache).
    pub waiters: Arc<std::sync::atomic::AtomicUsize>,
}

/// Clients tracked by the per-IP rate limiter at most.
const MAX_RATE_LIMITED_CLIENTS: usize = 100_000;

impl AppState {
    /// State with the configured keys loaded (tests and tools; the server
    /// loads large key sets in the background, see `startup`).
    pub fn new(config: Config) -> AppState {
        let (state, keys) = AppState::with_clock(config, Arc::new(SystemClock));
        state.load_keys(keys);
        state
    }

    /// The pool takes the configured keys out of `config`, so 100,000 keys
    /// are held once, not once per configuration snapshot. The caller loads
    /// them with [`AppState::load_keys`].
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> (AppState, Vec<crate::secret::ApiKey>) {
        let memory = crate::store::writer::StoreWriter::start(Arc::new(crate::store::memory::MemoryStore::new()));
        AppState::with_store(config, clock, memory)
    }

    /// As [`AppState::with_clock`], writing through `store`.
    pub fn with_store(
        mut config: Config,
        clock: Arc<dyn Clock>,
        store: crate::store::writer::StoreWriter,
    ) -> (AppState, Vec<crate::secret::ApiKey>) {
        let keys = std::mem::take(&mut config.gemini_api_keys);
        let pool = KeyPool::default();
        pool.set_daily_limits(crate::keys::DailyLimits {
            default_limit: config.api_key_daily_limit,
            per_model: Default::default(),
            allow_over_limit: config.allow_over_daily_limit,
        });
        let state = AppState {
            clock,
            keys_loaded: tokio::sync::watch::Sender::new(false),
            background_calls: Default::default(),
            pool,
            catalog: ModelCatalog::default(),
            signatures: crate::signatures::SignatureBook::new(config.thought_signature_cache_size),
            swipe_cache: SwipeCache::new(config.max_cache_entries, config.cache_expiry.as_millis() as u64),
            inflight: Mutex::default(),
            rate_limiter: RateLimiter::new(MAX_RATE_LIMITED_CLIENTS),
            throttles: crate::throttle::Throttles::new(MAX_RATE_LIMITED_CLIENTS),
            huggingface: crate::huggingface::HuggingFaceAuth::new(config.huggingface),
            body_budget: Default::default(),
            validation: Default::default(),
            settings: Mutex::new(SettingsLayers { base: config.to_raw(None), overrides: Default::default() }),
            config: RwLock::new(Arc::new(config)),
            started_at: Instant::now(),
            store,
            recent_responses: Default::default(),
            config_generation: Default::default(),
            model_refresh: tokio::sync::Notify::new(),
            stats: crate::stats::Stats::new(),
            metrics: crate::metrics::Metrics::new(),
            dashboard: Default::default(),
            vertex: Default::default(),
            shared: None,
            stopping: tokio::sync::watch::Sender::new(false),
        };
        (state, keys)
    }

    /// Puts the configured keys into the pool and says so to whoever waits
    /// (requests that arrive during a large load wait instead of failing).
    pub fn load_keys(&self, keys: Vec<crate::secret::ApiKey>) {
        self.pool.add(keys);
        self.keys_loaded.send_replace(true);
    }

    /// Puts the Vertex pools in line with the settings, the credentials
    /// directory and the dashboard's credentials.
    /// Reads credential files and parses keys: not on an async worker
    /// thread (see `operations::sync_vertex_off_thread`); no lock is held
    /// while it reads.
    pub fn sync_vertex(&self) -> (usize, usize) {
        let config = self.config();
        let (express_keys, stored) = {
            let dashboard = self.dashboard.vertex.read();
            let stored: Vec<String> = dashboard.credentials.iter().map(|credential| credential.json.clone()).collect();
            (dashboard.express_keys.clone(), stored)
        };
        let sources = crate::vertex::CredentialSources { express_keys: &express_keys, stored_accounts: &stored };
        self.vertex.sync(&config, &sources)
    }

    /// Waits (at most `limit`) until the configured keys are in the pool.
    pub async fn wait_for_keys(&self, limit: std::time::Duration) {
        let mut loaded = self.keys_loaded.subscribe();
        let _ = tokio::time::timeout(limit, loaded.wait_for(|loaded| *loaded)).await;
    }

    /// A snapshot of the current configuration; cheap (an `Arc` clone) and
    /// safe to keep across `.await`.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Puts a new configuration in force everywhere it is read: requests
    /// read `config()` each time; the pool's limits, the swipe cache's
    /// bounds and the log's size are set here; per-worker clients notice
    /// the new generation and rebuild.
    pub fn replace_config(&self, mut config: Config) -> Applied {
        config.gemini_api_keys = Vec::new();
        config.register_secrets();
        let mut limits = self.pool.daily_limits();
        limits.default_limit = config.api_key_daily_limit;
        limits.allow_over_limit = config.allow_over_daily_limit;
        self.pool.set_daily_limits(limits);
        self.swipe_cache.set_limits(config.max_cache_entries, config.cache_expiry.as_millis() as u64);
        crate::log_ring::global().set_capacity(config.log_ring_size);
        let web_password_changed = self.config.read().web_password.expose() != config.web_password.expose();
        if web_password_changed && self.dashboard.password.hash.read().is_none() {
            // The password sessions were opened with is no longer the one
            // in force: they end, like after a change on the Password page.
            self.dashboard.sessions.remove_all();
        }
        let vertex_changed = {
            let old = self.config.read();
            old.google_credentials_json.expose() != config.google_credentials_json.expose()
                || old.vertex_express_api_key.expose() != config.vertex_express_api_key.expose()
        };
        *self.config.write() = Arc::new(config);
        self.config_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Applied { vertex_changed }
    }

    /// Writes the key's current health to the store.
    pub fn persist_key_health(&self, id: crate::keys::KeyId) {
        let now_ms = self.now_ms();
        let (Some(key), Some(view)) = (self.pool.key_of(id), self.pool.key_view(id, now_ms)) else { return };
        let invalid_reason = match view.state {
            crate::keys::KeyState::Invalid { reason, .. } => Some(reason),
            _ => None,
        };
        self.store.send(crate::store::Change::KeyHealth(crate::store::StoredKeyHealth {
            key: key.expose().to_owned(),
            invalid_reason,
            last_validated_ms: view.last_validated_ms,
        }));
    }
}

/// What applying changes left to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "Vertex credentials that changed must be synced (sync_vertex_off_thread)"]
pub struct Applied {
    /// Vertex credentials or Express keys came or went: the Vertex pools
    /// must be synced ([`AppState::sync_vertex`] reads credential files and
    /// parses keys — not on an async worker thread).
    pub vertex_changed: bool,
}

impl Applied {
    /// Both left to do.
    pub fn and(self, other: Applied) -> Applied {
        Applied { vertex_changed: self.vertex_changed || other.vertex_changed }
    }

    /// Does what is left to do: syncs the Vertex pools on a blocking
    /// thread, awaited, when they changed.
    pub async fn finish(self, state: &actix_web::web::Data<AppState>) {
        if self.vertex_changed {
            sync_vertex_off_thread(state).await;
        }
    }
}

/// [`AppState::sync_vertex`] on a blocking thread, awaited.
pub async fn sync_vertex_off_thread(state: &actix_web::web::Data<AppState>) {
    let state = state.clone();
    let _ = actix_web::web::block(move || state.sync_vertex()).await;
}
