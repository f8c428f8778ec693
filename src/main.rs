//! The `hajimi` binary: parse arguments, load configuration, run; or, as
//! `hajimi import-settings PATH`, copy the original's `settings.json` into
//! the store and exit.
//! Also answers to the name `uvicorn` (the Hugging Face Space Dockerfile of
//! the original runs `uvicorn app.main:app --host … --port …`).

use std::path::{Path, PathBuf};

/// Static (musl) builds: mimalloc, as fast as glibc's allocator under load.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas eagerly on Linux, which costs ~11 MB of
/// idle RSS; committing on demand keeps a static build under the idle
/// memory target at no measurable cost in throughput.
#[cfg(target_env = "musl")]
fn tune_allocator() {
    // `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e`.
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: mimalloc is linked in (it is the global allocator); setting an
    // option is a plain store, valid at any time.
    unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

#[cfg(not(target_env = "musl"))]
fn tune_allocator() {}

use hajimi::config::{Config, Source};
use hajimi::startup::Application;
use hajimi::store::import::import_original_settings;
use hajimi::store::sqlite::SqliteStore;
use hajimi::store::Store;

const USAGE: &str = "\
hajimi — OpenAI-compatible gateway to Google Gemini over a pool of API keys

USAGE: hajimi [--config FILE] [--host ADDRESS] [--port PORT]
       hajimi [--config FILE] import-settings PATH
       hajimi healthcheck [--port PORT]
       hajimi [--config FILE] migrate-to-redis

  --config FILE   TOML file with settings (keys are the environment variable
                  names, any case); also HAJIMI_CONFIG. Environment wins.
  --host ADDRESS  listen address (default 0.0.0.0; also HOST)
  --port PORT     listen port (default 7860; also PORT)
  import-settings PATH
                  copy the original hajimi's settings.json (settings, AI Studio
                  and Express keys) into the store in STORAGE_DIR, print what
                  was imported and what was skipped, and exit
  migrate-to-redis
                  copy a single node's state (the database in STORAGE_DIR:
                  settings, keys added and what was done to them, key health,
                  limits, the dashboard password, Vertex credentials) into
                  the shared state at REDIS_URL, print how much, and exit;
                  run it once, before the first replica starts
  healthcheck     ask the local server (HOST, PORT) for GET /health; exit 0
                  when it answers 200 within 3 s, 1 otherwise (for container
                  health checks: no shell or curl needed)
  -h, --help      this text
  -V, --version   version
";

struct Arguments {
    config_file: Option<PathBuf>,
    host: Option<String>,
    port: Option<String>,
    /// `import-settings PATH`: import instead of serving.
    import_settings: Option<PathBuf>,
    /// `healthcheck`: probe a running server instead of serving.
    healthcheck: bool,
    /// `migrate-to-redis`: copy the SQLite state into Redis instead.
    migrate_to_redis: bool,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut arguments = Arguments {
        config_file: std::env::var_os("HAJIMI_CONFIG").map(PathBuf::from),
        host: None,
        port: None,
        import_settings: None,
        healthcheck: false,
        migrate_to_redis: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(argument) = iter.next() {
        let (flag, inline_value) = match argument.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (argument.clone(), None),
        };
        let mut value =
            |name: &str| inline_value.clone().or_else(|| iter.next()).ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "-V" | "--version" => {
                println!("hajimi {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "--config" => arguments.config_file = Some(PathBuf::from(value("--config")?)),
            "--host" => arguments.host = Some(value("--host")?),
            "--port" => arguments.port = Some(value("--port")?),
            "import-settings" => arguments.import_settings = Some(PathBuf::from(value("import-settings")?)),
            "healthcheck" => arguments.healthcheck = true,
            "migrate-to-redis" => arguments.migrate_to_redis = true,
            // uvicorn compatibility: `app.main:app` and flags hajimi does not need.
            app if app.contains(':') && !app.starts_with('-') => {}
            // uvicorn flags hajimi does not need, with their values.
            "--workers" | "--log-level" | "--forwarded-allow-ips" | "--root-path" | "--timeout-keep-alive" => {
                value(&flag)?;
            }
            "--proxy-headers" | "--no-access-log" | "--reload" => {}
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(arguments)
}

/// The configuration as for serving (defaults, file, environment), for
/// the one-shot commands.
fn load_config(config_file: Option<&Path>) -> Result<Config, String> {
    hajimi::config::RawSettings::load(config_file, &|name| std::env::var(name).ok())
        .and_then(|raw| Config::from_raw(&raw))
        .map_err(|error| error.to_string())
}

/// `hajimi migrate-to-redis`: the SQLite store of `STORAGE_DIR` into the
/// shared state at `REDIS_URL` (configuration loaded as for serving).
/// Prints counts, never values. Returns the exit code: 0 done, 1 on error.
fn migrate_to_redis(config_file: Option<&Path>) -> i32 {
    let fail = |message: String| {
        eprintln!("hajimi migrate-to-redis: {message}");
        1
    };
    let config = match load_config(config_file) {
        Ok(config) => config,
        Err(message) => return fail(message),
    };
    hajimi::startup::register_secrets(&config);
    if config.redis_url.expose().is_empty() {
        return fail("REDIS_URL is not set: there is no shared state to copy into".to_owned());
    }
    let database = config.storage_dir.join(hajimi::store::sqlite::DATABASE_FILE_NAME);
    if !database.is_file() {
        return fail(format!(
            "{} does not exist: nothing to copy (STORAGE_DIR is {})",
            database.display(),
            config.storage_dir.display()
        ));
    }
    let snapshot = match SqliteStore::open(&config.storage_dir).and_then(|store| store.load()) {
        Ok(snapshot) => snapshot,
        Err(error) => return fail(error.to_string()),
    };
    let redis = match hajimi::store::redis::RedisStore::open(config.redis_url.expose(), &config.redis_ca_file) {
        Ok(redis) => redis,
        Err(error) => return fail(error.to_string()),
    };
    if let Err(error) = redis.write_now(&snapshot.to_changes()) {
        return fail(format!("{error} (Redis at {})", redis.status().endpoint()));
    }
    println!("Copied {} into the shared state at {}", database.display(), redis.status().endpoint());
    println!("  settings: {}", snapshot.setting_overrides.len());
    println!("  AI Studio keys added in the dashboard: {}", snapshot.added_keys.len());
    println!("  keys disabled or deleted: {}", snapshot.key_actions.len());
    println!("  key health rows: {}", snapshot.key_health.len());
    println!("  per-model limits: {}", snapshot.model_limits.len());
    println!(
        "  dashboard password: {}",
        if snapshot.password_hash.is_some() { "yes" } else { "no (WEB_PASSWORD applies)" }
    );
    println!("  Vertex credentials: {}, Express keys: {}", snapshot.credentials.len(), snapshot.express_keys.len());
    println!("Usage counters and statistics stay in the database. Start the replicas with REDIS_URL set.");
    0
}

/// `hajimi import-settings PATH`: the original's `settings.json` into the
/// SQLite store of `STORAGE_DIR` (configuration loaded as for serving), in
/// one transaction. Returns the exit code: 0 done, 1 on any error.
fn import_settings(settings_path: &Path, config_file: Option<&Path>) -> i32 {
    let fail = |message: String| {
        eprintln!("hajimi import-settings: {message}");
        1
    };
    let config = match load_config(config_file) {
        Ok(config) => config,
        Err(message) => return fail(message),
    };
    if !config.enable_storage {
        return fail("ENABLE_STORAGE is false, so nothing imported would be kept; set ENABLE_STORAGE=true".to_owned());
    }
    let json = match std::fs::read_to_string(settings_path) {
        Ok(json) => json,
        Err(error) => return fail(format!("cannot read {}: {error}", settings_path.display())),
    };
    let report = match import_original_settings(&json) {
        Ok(report) => report,
        Err(message) => return fail(format!("{}: {message}", settings_path.display())),
    };
    let store = match SqliteStore::open(&config.storage_dir) {
        Ok(store) => store,
        Err(error) => return fail(error.to_string()),
    };
    if let Err(error) = store.apply(&report.changes) {
        return fail(error.to_string());
    }
    println!("Imported {} into {}", settings_path.display(), store.database_path().display());
    let imported = if report.imported.is_empty() { "none".to_owned() } else { report.imported.join(", ") };
    println!("  imported ({}): {imported}", report.imported.len());
    println!("  AI Studio keys added: {}", report.added_key_count());
    println!("  Vertex Express keys added: {}", report.express_key_count());
    if !report.skipped.is_empty() {
        println!("  skipped ({}):", report.skipped.len());
        for (name, why) in &report.skipped {
            println!("    {name}: {why}");
        }
    }
    println!("Restart hajimi to use them. Imported settings override the environment and the config file;");
    println!("the dashboard's Settings page can revert each one.");
    0
}

/// `hajimi healthcheck`: GET /health on the local server (PORT from
/// `--port`, the environment, or 7860; HOST when it is one address, else
/// 127.0.0.1) over plain TCP; exit code 0 when it answers 200 within 3 s.
fn healthcheck(port: Option<&str>) -> i32 {
    use std::io::{Read, Write};
    let port = port.map(str::to_owned).or_else(|| std::env::var("PORT").ok()).unwrap_or_else(|| "7860".to_owned());
    let Ok(port) = port.trim().parse::<u16>() else {
        eprintln!("hajimi healthcheck: bad port {port:?}");
        return 1;
    };
    let timeout = std::time::Duration::from_secs(3);
    // The server's own address unless it listens on every interface.
    let host = std::env::var("HOST")
        .ok()
        .and_then(|host| host.trim().parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let address = std::net::SocketAddr::new(host, port);
    let answer = std::net::TcpStream::connect_timeout(&address, timeout).and_then(|mut stream| {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 64];
        let read = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..read]).into_owned())
    });
    match answer {
        Ok(head) if head.starts_with("HTTP/1.1 200") => 0,
        Ok(head) => {
            eprintln!("hajimi healthcheck: {}", head.lines().next().unwrap_or("no answer"));
            1
        }
        Err(error) => {
            eprintln!("hajimi healthcheck: {error}");
            1
        }
    }
}

fn main() -> std::io::Result<()> {
    tune_allocator();
    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if arguments.healthcheck {
        std::process::exit(healthcheck(arguments.port.as_deref()));
    }
    hajimi::telemetry::init_logging();
    if let Some(settings_path) = &arguments.import_settings {
        std::process::exit(import_settings(settings_path, arguments.config_file.as_deref()));
    }
    if arguments.migrate_to_redis {
        std::process::exit(migrate_to_redis(arguments.config_file.as_deref()));
    }
    let loaded = hajimi::config::RawSettings::load(arguments.config_file.as_deref(), &|name| std::env::var(name).ok())
        .map(|mut raw| {
            if let Some(host) = arguments.host {
                raw.set("HOST", host, Source::CommandLine);
            }
            if let Some(port) = arguments.port {
                raw.set("PORT", port, Source::CommandLine);
            }
            raw
        })
        .and_then(|raw| Config::from_raw(&raw).map(|config| (config, raw)));
    let (config, sources) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("hajimi: {error}");
            std::process::exit(2);
        }
    };
    let malformed_keys = hajimi::secret::ApiKey::count_malformed(sources.get("GEMINI_API_KEYS"));
    if malformed_keys > 0 {
        log::warn!(
            "GEMINI_API_KEYS holds {malformed_keys} string(s) that start like a key but are not one \
             (AIza + 35 letters, digits, - or _); they were skipped"
        );
    }
    if config.password.matches("123") {
        log::warn!("PASSWORD is the default \"123\": anyone can use this proxy. Set PASSWORD.");
    }
    if !config.trusted_proxy_header.is_empty() && config.trusted_proxies.is_empty() && !config.huggingface {
        log::warn!(
            "TRUSTED_PROXY_HEADER is set but TRUSTED_PROXIES is empty: any client can choose its own address. \
             List your proxy's address in TRUSTED_PROXIES."
        );
    }
    if let Some(proxy) = &config.upstream_proxy {
        log::info!("calls to Google go through the proxy {proxy}");
    }
    log::info!(
        "hajimi {} starting on {}:{} with {} AI Studio keys",
        env!("CARGO_PKG_VERSION"),
        config.host,
        config.port,
        config.gemini_api_keys.len()
    );
    actix_web::rt::System::new().block_on(async move {
        let clock = std::sync::Arc::new(hajimi::state::SystemClock);
        let application = match Application::build_with_sources(config, Some(sources), clock) {
            Ok(application) => application,
            Err(error) => {
                eprintln!("hajimi: {error}");
                std::process::exit(1);
            }
        };
        log::info!("listening on port {}", application.port());
        let state = application.state.clone();
        let served = application.run_until_stopped().await;
        // Stopped (SIGTERM/SIGINT): the last seconds of counters go to disk.
        hajimi::startup::persist_before_exit(&state);
        log::info!("stopped; state saved");
        served
    })
}
