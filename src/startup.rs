//! Building and running the application. [`Application::build`] binds the
//! listener (port 0 in tests, so they run the real app on a free port) and
//! starts background jobs; [`configure_app`] is the one place routes,
//! shared state and per-worker clients are wired, used by `main` and tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};

use crate::clock::Clock;
use crate::config::{Config, RawSettings};
use crate::gemini::client::tls_config;
use crate::keys::validation::ValidationScope;
use crate::state::{AppState, WorkerClients};
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::sqlite::SqliteStore;
use crate::store::writer::StoreWriter;
use crate::store::Change;
use crate::store::Store;
use crate::validator::validate_keys;

/// Key sets up to this size are loaded before the server starts.
const SYNCHRONOUS_KEY_LOAD: usize = 5_000;

pub struct Application {
    port: u16,
    server: Server,
    pub state: web::Data<AppState>,
}

impl Application {
    pub fn build(config: Config) -> std::io::Result<Application> {
        Application::build_with_clock(config, Arc::new(crate::clock::SystemClock))
    }

    /// As [`Application::build`], with the time coming from `clock` (tests).
    pub fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> std::io::Result<Application> {
        Application::build_with_sources(config, None, clock)
    }

    /// As [`Application::build`], remembering where each setting came from
    /// (`sources`, from `main`) for the Settings page.
    pub fn build_with_sources(
        config: Config,
        sources: Option<RawSettings>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Application> {
        let listener = TcpListener::bind((config.host, config.port))?;
        let port = listener.local_addr()?.port();
        prepare_storage_dir(&config)?;
        let shared = if config.redis_url.expose().is_empty() {
            None
        } else {
            let redis = RedisStore::open(config.redis_url.expose(), &config.redis_ca_file)
                .map_err(|error| std::io::Error::other(error.to_string()))?;
            Some(Arc::new(redis))
        };
        let store: Arc<dyn Store> = if let Some(shared) = &shared {
            shared.clone()
        } else if config.enable_storage {
            Arc::new(SqliteStore::open(&config.storage_dir).map_err(|error| std::io::Error::other(error.to_string()))?)
        } else {
            Arc::new(MemoryStore::new())
        };
        let snapshot = match (store.load(), &shared) {
            (Ok(snapshot), _) => snapshot,
            // A replica starts while Redis is away: from its own settings,
            // adopting the shared state once Redis answers (cluster::follow).
            (Err(error), Some(shared)) => {
                log::warn!(
                    target: "hajimi::cluster",
                    "shared state: Redis at {} cannot be read ({error}); starting from this replica's own settings",
                    shared.status().endpoint()
                );
                crate::store::Snapshot::default()
            }
            (Err(error), None) => return Err(std::io::Error::other(error.to_string())),
        };
        let mut base = config.to_raw(sources.as_ref());
        // The keys are in the pool; the lower layer need not hold them twice.
        base.set("GEMINI_API_KEYS", String::new(), base.source("GEMINI_API_KEYS"));
        let mut layers = crate::state::SettingsLayers { base, overrides: snapshot.setting_overrides.clone() };
        let config = match crate::settings::apply_stored(&mut layers) {
            Some(mut stored) => {
                stored.gemini_api_keys = config.gemini_api_keys;
                stored
            }
            None => config,
        };
        config.register_secrets();
        let writer = StoreWriter::start(store);
        let (mut state, keys) = AppState::with_store(config, clock, writer);
        if let Some(shared) = &shared {
            log::info!(target: "hajimi::cluster", "shared state in Redis at {} (replica {})", shared.status().endpoint(), shared.replica());
        }
        state.shared = shared;
        *state.settings.lock() = layers;
        restore_dashboard_state(&state, &snapshot);
        announce_keys(&state, &keys, &snapshot);
        announce_setup_code(&state);
        let state = web::Data::new(state);
        let config = (*state.config()).clone();
        crate::log_ring::global().set_capacity(config.log_ring_size);
        state.stats.restore(
            state.store.store().stats_since(state.now_ms() / 60_000 - crate::stats::MINUTES_KEPT).unwrap_or_default(),
            state.now_ms(),
        );
        // A large key set is loaded while the server already answers, so
        // startup stays fast whatever the key count; chat waits for it.
        if keys.len() + snapshot.added_keys.len() <= SYNCHRONOUS_KEY_LOAD {
            restore_keys(&state, keys, &snapshot);
        } else {
            let loading = state.clone();
            std::thread::spawn(move || {
                let count = keys.len() + snapshot.added_keys.len();
                restore_keys(&loading, keys, &snapshot);
                log::info!("{count} keys loaded");
            });
        }
        let tls = tls_config();
        start_background_jobs(state.clone(), config.clone(), tls.clone());

        let workers = if config.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.workers
        };
        let shutdown_timeout = config.shutdown_timeout.as_secs();
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            let clients = web::Data::new(crate::state::WorkerClientCell::new(&server_state, tls.clone()));
            App::new().configure(|cfg| configure_app(cfg, server_state.clone(), clients))
        })
        .workers(workers)
        .keep_alive(Duration::from_secs(75))
        // A client that hangs up ends its request (the handler is dropped),
        // so a non-stream answer it abandoned can go to the swipe cache.
        .h1_allow_half_closed(false)
        // Stream events are small writes; Nagle would hold each one until
        // the client's delayed ACK (~40 ms).
        .tcp_nodelay(true)
        .client_request_timeout(Duration::from_secs(60))
        // SIGTERM/SIGINT: stop accepting, let running answers (streams
        // included) finish for up to SHUTDOWN_TIMEOUT, then `main` saves state.
        .shutdown_timeout(shutdown_timeout)
        // Signals are handled in `run_until_stopped`, which first tells
        // endless answers (live log tails) to end.
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then stops gracefully: live log
    /// tails end at once, other answers get up to `SHUTDOWN_TIMEOUT`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        actix_web::rt::spawn(async move {
            if wait_for_stop_signal().await {
                log::info!("stopping: running answers may finish (SHUTDOWN_TIMEOUT)");
                state.stopping.send_replace(true);
                handle.stop(true).await;
            }
        });
        self.server.await
    }
}

/// Waits for SIGTERM or SIGINT; false when they cannot be listened for.
async fn wait_for_stop_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        log::warn!("cannot listen for SIGTERM/SIGINT: stop the server with SIGKILL");
        return false;
    };
    tokio::select! {
        _ = terminate.recv() => true,
        _ = interrupt.recv() => true,
    }
}

/// Creates `STORAGE_DIR` (owner-only) when storage is enabled, so a
/// misconfigured volume is reported at startup, not at the first write.
fn prepare_storage_dir(config: &Config) -> std::io::Result<()> {
    if !config.enable_storage {
        log::info!("ENABLE_STORAGE=false: nothing is written to disk");
        return Ok(());
    }
    let dir = &config.storage_dir;
    std::fs::create_dir_all(dir).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            crate::messages::both(
                &format!("cannot create STORAGE_DIR {}: {error}", dir.display()),
                &format!("无法创建 STORAGE_DIR {}：{error}", dir.display()),
            ),
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            crate::messages::both(
                &format!("STORAGE_DIR {} is not writable: {error}", dir.display()),
                &format!("STORAGE_DIR {} 不可写：{error}", dir.display()),
            ),
        )
    })?;
    log::info!("storage directory: {}", dir.display());
    Ok(())
}

/// Routes, state and middleware, shared by `main` and the tests.
pub fn configure_app(
    cfg: &mut web::ServiceConfig,
    state: web::Data<AppState>,
    clients: web::Data<crate::state::WorkerClientCell>,
) {
    let prefix = state.config().dashboard_prefix.clone();
    cfg.app_data(state).app_data(clients).service(
        web::scope("")
            .wrap(middleware::from_fn(around_every_request))
            .configure(crate::routes::configure)
            .configure(|cfg| crate::dashboard::configure(cfg, &prefix))
            .default_service(web::to(crate::routes::not_found)),
    );
}

/// What every request passes through, outermost first: the access log
/// (which also turns a handler's panic into a 500), CORS for the API, and
/// the dashboard's framing policy. One middleware, so a request pays one
/// boxed call through actix-web's middleware chain for the three instead
/// of one each.
async fn around_every_request(
    request: actix_web::dev::ServiceRequest,
    next: middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    crate::telemetry::access_log(request, |request| async move {
        let routed = |request| async move { next.call(request).await.map(|response| response.map_into_boxed_body()) };
        let response = crate::cors::cors(request, routed).await?;
        Ok(crate::dashboard::pages::allow_framing(response))
    })
    .await
}

/// AI Studio keys in service after a restart: (configured, added in the
/// dashboard and not configured), deleted ones left out.
fn studio_key_counts(configured: &[crate::secret::ApiKey], snapshot: &crate::store::Snapshot) -> (usize, usize) {
    let deleted: std::collections::HashSet<&str> = snapshot
        .key_actions
        .iter()
        .filter(|(_, action)| **action == crate::store::KeyAction::Deleted)
        .map(|(key, _)| key.as_str())
        .collect();
    let configured: std::collections::HashSet<&str> =
        configured.iter().map(|key| key.expose()).filter(|key| !deleted.contains(key)).collect();
    let added: std::collections::HashSet<crate::secret::ApiKey> = snapshot
        .added_keys
        .iter()
        .flat_map(|text| crate::secret::ApiKey::extract_all(text))
        .filter(|key| !deleted.contains(key.expose()) && !configured.contains(key.expose()))
        .collect();
    (configured.len(), added.len())
}

/// How many keys the server starts with (the store's included); with none
/// at all — no AI Studio key and no Vertex credential — a warning that
/// chat cannot answer until keys are added.
fn announce_keys(state: &AppState, configured: &[crate::secret::ApiKey], snapshot: &crate::store::Snapshot) {
    let (from_settings, added) = studio_key_counts(configured, snapshot);
    let total = from_settings + added;
    log::info!(
        "{total} AI Studio keys ({from_settings} from GEMINI_API_KEYS, {added} added in the dashboard) / \
         {total} 个 AI Studio key（GEMINI_API_KEYS 中 {from_settings} 个，控制台添加 {added} 个）"
    );
    let vertex = state.vertex.has(crate::gemini::client::Service::VertexExpress)
        || state.vertex.has(crate::gemini::client::Service::VertexAccount);
    if total == 0 && !vertex {
        log::warn!(
            "NO KEYS: no AI Studio key and no Vertex credential, so chat answers 503 until keys are added \
             (GEMINI_API_KEYS, or the dashboard's Keys page) / \
             没有任何 key：没有 AI Studio key，也没有 Vertex 凭据，添加 key 之前聊天请求都会返回 503\
             （设置 GEMINI_API_KEYS，或在控制台的 Keys 页添加）"
        );
    }
}

/// While no dashboard password is set (none stored, `WEB_PASSWORD` empty
/// or `123`): a new setup code for this start, printed once on stderr —
/// not through the log, so it is in no log ring, file or page — with a
/// warning in the log that says where to look.
fn announce_setup_code(state: &AppState) {
    let web_password = state.config().web_password.clone();
    if let Some(code) = state.dashboard.password.begin_setup(&web_password, &mut rand::rng()) {
        log::warn!(
            "{}",
            crate::messages::both(
                "no dashboard password is set (WEB_PASSWORD empty or 123): open the dashboard and enter the setup code printed on stderr at startup, then choose a password",
                "尚未设置面板密码（WEB_PASSWORD 为空或为 123）：打开控制台，输入启动时打印在 stderr 上的设置码，然后设置密码"
            )
        );
        eprintln!("dashboard setup code: {code}");
    }
}

/// Whether a stored change is about the AI Studio keys (restored with
/// them, possibly in the background for a large set).
fn is_key_change(change: &Change) -> bool {
    matches!(change, Change::AddKeys(_) | Change::SetKeyAction { .. } | Change::KeyHealth(_))
}

/// Everything the store holds but the keys and the settings (applied
/// before the state exists, `settings::apply_stored`): the dashboard
/// password, Vertex credentials, per-model limits, live sessions (shared
/// store) — through `operations::apply`, like a change from the dashboard
/// or another replica.
fn restore_dashboard_state(state: &AppState, snapshot: &crate::store::Snapshot) {
    let changes: Vec<Change> = snapshot
        .to_changes()
        .into_iter()
        .filter(|change| !is_key_change(change) && !matches!(change, Change::SetSetting { .. }))
        .collect();
    // (Synced below in any case: the settings' and STORAGE_DIR's
    // credentials count too.)
    let _ = crate::operations::apply(state, &changes);
    let (express, accounts) = state.sync_vertex();
    if express + accounts > 0 {
        log::info!(target: "hajimi::vertex", "Vertex: {express} Express key(s), {accounts} service account(s)");
    }
}

/// Keys from the configuration, then those added in the dashboard, the
/// operator's actions (deleted, disabled) and remembered health (through
/// `operations::apply`), and today's usage.
fn restore_keys(state: &AppState, configured: Vec<crate::secret::ApiKey>, snapshot: &crate::store::Snapshot) {
    state.pool.add(configured);
    let changes: Vec<Change> = snapshot.to_changes().into_iter().filter(is_key_change).collect();
    // (Key changes touch no Vertex credential.)
    let _ = crate::operations::apply(state, &changes);
    let now_ms = state.now_ms();
    for usage in &snapshot.usage {
        let Some(id) = state.pool.id_of(&crate::secret::ApiKey::new(usage.key.as_str())) else { continue };
        let daily = crate::keys::DailyUsage {
            successes: usage.successes,
            failures: usage.failures,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        };
        state.pool.restore_usage(id, &usage.model, usage.pacific_day, daily, now_ms);
    }
    state.keys_loaded.send_replace(true);
}

/// Background jobs on a thread of their own with their own client: in
/// Hugging Face mode the Space privacy and HF key checks, the model list (fetched at startup — never blocking it — then every
/// `MODEL_LIST_REFRESH_INTERVAL`) and key validation (at startup if
/// enabled, on request, and invalid keys again every
/// `INVALID_KEY_RECHECK_INTERVAL`).
fn start_background_jobs(state: web::Data<AppState>, config: Config, tls: Arc<rustls::ClientConfig>) {
    let spawned = std::thread::Builder::new().name("background".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let huggingface = async {
                if config.huggingface {
                    let hub = awc::Client::builder()
                        .connector(awc::Connector::new().rustls_0_23(tls.clone()))
                        .timeout(Duration::from_secs(15))
                        .finish();
                    crate::huggingface::keep_checking(&state.huggingface, &hub, &config).await;
                }
            };
            let pool_jobs = async {
                let clients = crate::state::worker_clients(&config, tls.clone());
                state.wait_for_keys(Duration::from_secs(120)).await;
                if config.validate_keys_on_startup {
                    state.validation.request(ValidationScope::All);
                }
                let models = refresh_models_forever(&state, &clients, config.model_list_refresh_interval);
                let validation = validate_forever(&state, &clients, &config);
                let vertex = vertex_forever(&state, &clients);
                futures_util::future::join3(models, validation, vertex).await;
            };
            futures_util::future::join4(
                huggingface,
                pool_jobs,
                persist_forever(&state),
                crate::cluster::follow(&state),
            )
            .await;
        });
    });
    if let Err(error) = spawned {
        log::warn!("could not start the background jobs: {error}");
    }
}

async fn refresh_models_forever(state: &AppState, clients: &WorkerClients, interval: Duration) {
    loop {
        if !state.pool.is_empty() {
            match crate::models::refresh_from_upstream(&clients.gemini, &state.pool, &state.catalog).await {
                Ok(count) => log::info!("model list refreshed: {count} upstream models"),
                Err(failure) => {
                    log::warn!(
                        "model list refresh failed ({}); serving the cached or bundled list",
                        crate::secret::LogSafe(&failure.message)
                    )
                }
            }
        }
        let wait = if state.catalog.has_upstream_list() { interval } else { interval.min(Duration::from_secs(60)) };
        // Keys added or deleted in the dashboard ask for a refresh at once.
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.model_refresh.notified() => {}
        }
    }
}

/// How often Vertex tokens are checked for renewal (they are renewed
/// `vertex::token::REFRESH_MARGIN_MS` before they expire).
const VERTEX_TOKEN_CHECK: Duration = Duration::from_secs(30);
/// How often `VERTEX_MODELS_URL` is read.
const VERTEX_MODELS_REFRESH: Duration = Duration::from_secs(3600);

/// Keeps Vertex service-account tokens fresh and the Vertex model list
/// current (when `VERTEX_MODELS_URL` is set).
async fn vertex_forever(state: &AppState, clients: &WorkerClients) {
    let mut models_fetched_at: Option<std::time::Instant> = None;
    loop {
        // The first token of an account is granted by its first request;
        // from then on this keeps it fresh.
        tokio::time::sleep(VERTEX_TOKEN_CHECK).await;
        crate::vertex::refresh_due_tokens(&state.vertex, &clients.gemini, state.now_ms()).await;
        let url = state.config().vertex_models_url.clone();
        let due = models_fetched_at.is_none_or(|at| at.elapsed() >= VERTEX_MODELS_REFRESH);
        if !url.is_empty() && due {
            models_fetched_at = Some(std::time::Instant::now());
            let outcome = clients.gemini.fetch(&url).await.and_then(|body| state.vertex.models.set_fetched(&body));
            match outcome {
                Ok(count) => log::info!(target: "hajimi::vertex", "Vertex model list refreshed: {count} models"),
                Err(reason) => {
                    log::warn!(target: "hajimi::vertex", "Vertex model list not refreshed ({reason}); the bundled list stays")
                }
            }
        }
    }
}

/// How often counters are written to the store: a `kill -9` loses at most
/// this much of them.
const PERSIST_INTERVAL: Duration = Duration::from_secs(5);

/// Writes changed usage counters and finished stats minutes every few
/// seconds, and prunes old stats, request records and stored responses
/// hourly.
async fn persist_forever(state: &AppState) {
    let mut last_prune_ms = 0u64;
    loop {
        tokio::time::sleep(PERSIST_INTERVAL).await;
        persist_counters(state);
        let now_ms = state.now_ms();
        if now_ms.saturating_sub(last_prune_ms) >= 3_600_000 {
            last_prune_ms = now_ms;
            let config = state.config();
            let day_ms = 86_400_000u64;
            state.store.send(crate::store::Change::Prune {
                stats_before_minute: now_ms.saturating_sub(u64::from(config.stats_retention_days) * day_ms) / 60_000,
                requests_before_ms: now_ms.saturating_sub(u64::from(config.request_log_retention_days) * day_ms),
            });
            state.store.send(crate::store::Change::PruneResponses {
                before_ms: now_ms.saturating_sub(u64::from(config.responses_retention_hours) * 3_600_000),
            });
        }
    }
}

/// At shutdown: everything, the current (unfinished) minute included, and
/// waits until it is written.
pub fn persist_before_exit(state: &AppState) {
    persist_counters(state);
    let current_minute_too = state.stats.take_finished_minutes(state.now_ms() + 60_000);
    state.store.send_all(current_minute_too.into_iter().map(crate::store::Change::MinuteStats).collect());
    state.store.flush();
}

/// Hands changed usage rows and finished stats minutes to the writer.
pub fn persist_counters(state: &AppState) {
    let mut changes: Vec<crate::store::Change> = state
        .pool
        .take_changed_usage()
        .into_iter()
        .map(|(key, model, day, usage)| {
            crate::store::Change::Usage(crate::store::StoredUsage {
                key: key.expose().to_owned(),
                model,
                pacific_day: day,
                successes: usage.successes,
                failures: usage.failures,
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            })
        })
        .collect();
    changes
        .extend(state.stats.take_finished_minutes(state.now_ms()).into_iter().map(crate::store::Change::MinuteStats));
    if !changes.is_empty() {
        state.store.send_all(changes);
    }
}

async fn validate_forever(state: &AppState, clients: &WorkerClients, config: &Config) {
    loop {
        let scope = tokio::select! {
            scope = state.validation.next_request() => scope,
            _ = tokio::time::sleep(config.invalid_key_recheck_interval) => ValidationScope::OnlyInvalid,
        };
        validate_keys(&clients.gemini, state, scope, config.key_validation_concurrency).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ApiKey;
    use crate::store::{KeyAction, Snapshot};

    fn key(letter: char) -> String {
        format!("AIzaSy{}", letter.to_string().repeat(33))
    }

    #[test]
    fn keys_added_in_the_dashboard_count_once_and_deleted_ones_not_at_all() {
        let configured = vec![ApiKey::new(key('a').as_str()), ApiKey::new(key('b').as_str())];
        let mut snapshot = Snapshot {
            // `a` again, `c` twice, `d` deleted.
            added_keys: vec![format!("{}\n{}", key('a'), key('c')), key('c'), key('d')],
            ..Snapshot::default()
        };
        snapshot.key_actions.insert(key('d'), KeyAction::Deleted);
        snapshot.key_actions.insert(key('b'), KeyAction::Deleted);
        snapshot.key_actions.insert(key('a'), KeyAction::Disabled);
        assert_eq!(studio_key_counts(&configured, &snapshot), (1, 1));
        assert_eq!(studio_key_counts(&[], &Snapshot::default()), (0, 0));
    }

    /// The one middleware still turns a handler's panic into a 500, for
    /// many requests at once, and the worker goes on serving.
    #[actix_web::test]
    async fn a_panicking_handler_answers_500_through_the_middleware_and_the_worker_serves_on() {
        use actix_web::{test, App};
        let app = test::init_service(
            App::new()
                .wrap(middleware::from_fn(around_every_request))
                .route("/boom", web::get().to(|| async { panic!("a bug in a handler") as &'static str }))
                .route("/fine", web::get().to(|| async { "fine" })),
        )
        .await;
        let status = |answer: Result<actix_web::dev::ServiceResponse, actix_web::Error>| match answer {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        let answers = futures_util::future::join_all(
            (0..64).map(|_| actix_web::dev::Service::call(&app, test::TestRequest::get().uri("/boom").to_request())),
        )
        .await;
        assert!(answers.into_iter().all(|answer| status(answer) == actix_web::http::StatusCode::INTERNAL_SERVER_ERROR));
        let fine = test::call_service(&app, test::TestRequest::get().uri("/fine").to_request()).await;
        assert_eq!(fine.status(), actix_web::http::StatusCode::OK);
    }
}
