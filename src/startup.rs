//! Building and running the application. [`Application::build`] binds the
//! listener (port 0 in tests, so they run the real app on a free port) and
//! starts background jobs; [`configure_app`] is the one place routes,
//! shared state and per-worker clients are wired, used by `main` and tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};

use crate::config::Config;
use crate::gemini::client::{tls_config, ClientSettings, GeminiClient};
use crate::state::{AppState, Clock, WorkerClients};
use crate::validator::{validate_keys, ValidationScope};

/// Key sets up to this size are loaded before the server starts.
const SYNCHRONOUS_KEY_LOAD: usize = 5_000;

pub struct Application {
    port: u16,
    server: Server,
    pub state: web::Data<AppState>,
}

fn worker_clients(config: &Config, tls: Arc<rustls::ClientConfig>) -> WorkerClients {
    let gemini = GeminiClient::new(
        ClientSettings {
            base_url: config.gemini_base_url.clone(),
            request_timeout: config.upstream_timeout,
            connect_timeout: config.upstream_connect_timeout,
            max_response_bytes: 256 * 1024 * 1024,
            proxy: config.upstream_proxy.clone(),
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
    );
    WorkerClients { gemini, media }
}

impl Application {
    pub fn build(config: Config) -> std::io::Result<Application> {
        Application::build_with_clock(config, Arc::new(crate::state::SystemClock))
    }

    /// As [`Application::build`], with the time coming from `clock` (tests).
    pub fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> std::io::Result<Application> {
        let listener = TcpListener::bind((config.host, config.port))?;
        let port = listener.local_addr()?.port();
        prepare_storage_dir(&config)?;
        register_secrets(&config);
        let (state, keys) = AppState::with_clock(config, clock);
        let state = web::Data::new(state);
        let config = (*state.config()).clone();
        // A large key set is loaded while the server already answers, so
        // startup stays fast whatever the key count; chat waits for it.
        if keys.len() <= SYNCHRONOUS_KEY_LOAD {
            state.load_keys(keys);
        } else {
            let loading = state.clone();
            std::thread::spawn(move || {
                let count = keys.len();
                loading.load_keys(keys);
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
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            let config = server_state.config();
            let clients = web::Data::new(worker_clients(&config, tls.clone()));
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
        .shutdown_timeout(30)
        .listen(listener)?
        .run();
        Ok(Application { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Passwords and proxy credentials are masked wherever upstream text
/// might quote them (keys are masked by their pattern).
fn register_secrets(config: &Config) {
    crate::secret::register_secret(config.password.expose());
    crate::secret::register_secret(config.web_password.expose());
    if let Some(proxy) = &config.upstream_proxy {
        if let Some(password) = proxy.password() {
            crate::secret::register_secret(password);
        }
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
        std::io::Error::new(error.kind(), format!("cannot create STORAGE_DIR {}: {error}", dir.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)).map_err(|error| {
        std::io::Error::new(error.kind(), format!("STORAGE_DIR {} is not writable: {error}", dir.display()))
    })?;
    log::info!("storage directory: {}", dir.display());
    Ok(())
}

/// Routes, state and middleware, shared by `main` and the tests.
pub fn configure_app(cfg: &mut web::ServiceConfig, state: web::Data<AppState>, clients: web::Data<WorkerClients>) {
    cfg.app_data(state).app_data(clients).service(
        web::scope("")
            .wrap(middleware::from_fn(crate::telemetry::access_log))
            .configure(crate::routes::configure)
            .default_service(web::to(crate::routes::not_found)),
    );
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
                let clients = worker_clients(&config, tls.clone());
                state.wait_for_keys(Duration::from_secs(120)).await;
                if config.validate_keys_on_startup {
                    state.validation.request(ValidationScope::All);
                }
                let models = refresh_models_forever(&state, &clients, config.model_list_refresh_interval);
                let validation = validate_forever(&state, &clients, &config);
                futures_util::future::join(models, validation).await;
            };
            futures_util::future::join(huggingface, pool_jobs).await;
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
        tokio::time::sleep(wait).await;
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
