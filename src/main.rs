//! The `hajimi` binary: parse arguments, load configuration, run; or, as
//! `hajimi import-settings PATH`, copy the original's `settings.json` into
//! the store and exit.
//! Also answers to the name `uvicorn` (the Hugging Face Space Dockerfile of
//! the original runs `uvicorn app.main:app --host … --port …`).

use std::path::{Path, PathBuf};

/// Every build: mimalloc. Measured against glibc's allocator in one run
/// (bench.sh --compare, builds taking turns): 1.10× non-stream chat,
/// 1.19× stream, 1.25× Messages and 1.14× Responses streams; a request
/// makes ~90 small allocations, and glibc's bins (unlink, consolidate)
/// took ~15% of a request's CPU. musl's allocator is slower still. Built
/// without transparent huge pages (the `no_thp` feature): with them,
/// idle RSS was 27 MB instead of 12. Entered by its plain functions where
/// they suffice (`hajimi::allocator`).
#[global_allocator]
static ALLOCATOR: hajimi::allocator::Allocator = hajimi::allocator::Allocator;

// mimalloc's C interface (the crate links it).
extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_collect(force: bool);
}

/// mimalloc commits its arenas eagerly on Linux, which costs ~11 MB of
/// idle RSS; committing on demand keeps the idle memory target at no
/// measurable cost in throughput.
///
/// Freed memory goes back to the system after mimalloc's purge delay, but
/// a delay only ends on some later allocator call: a server gone idle
/// after a burst of large bodies kept it (measured with hostile-bodies.sh,
/// 8 × 20 MB images at once: 182 MB afterwards). A thread asks for the
/// expired purges four times a second (18 MB afterwards), and startup's
/// scratch memory goes back once the server is built
/// ([`release_startup_memory`]). Purging at once instead (a purge delay
/// of 0) cost the whole speed-up of mimalloc.
fn tune_allocator() {
    // In mimalloc.h's `mi_option_e` (the same in mimalloc 2 and 3).
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    // SAFETY: mimalloc is linked in (it is the global allocator); setting an
    // option is a plain store, valid at any time.
    unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) };
    let purger = std::thread::Builder::new().name("purge-memory".into()).spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        // SAFETY: mimalloc's collection may run on any thread at any time;
        // not forced, it only purges what is due and this thread's heap.
        unsafe { mi_collect(false) };
    });
    if purger.is_err() {
        eprintln!("hajimi: no thread to return freed memory to the system; it is returned as the allocator runs");
    }
}

/// Returns what building the server freed (the configuration's text and
/// tree, the key list's parsing: ~8 MB with 100,000 keys) now: the main
/// thread that freed it then idles, and its pages would wait for its next
/// allocation (about a second).
fn release_startup_memory() {
    // SAFETY: a forced collection of the calling thread's heap, valid at
    // any time on any thread.
    unsafe { mi_collect(true) };
}

use hajimi::config::{Config, RawSettings, Source};
use hajimi::startup::Application;
use hajimi::store::import::plan_import;
use hajimi::store::sqlite::SqliteStore;
use hajimi::store::Store;

const USAGE: &str = "\
hajimi — OpenAI-compatible gateway to Google Gemini over a pool of API keys
hajimi — 基于 Gemini API key 池、兼容 OpenAI 接口的 Gemini 代理

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

MAIN SETTINGS (environment variables, or keys of the --config file):
  PASSWORD                 the key API clients send (default 123: set it)
  WEB_PASSWORD             dashboard password (empty: a setup code is printed
                           at startup); never the same as PASSWORD
  GEMINI_API_KEYS          AI Studio keys (AIza…), any separators; more in
                           GEMINI_API_KEYS_1, _2 … or on the dashboard's Keys page
  HUGGINGFACE              true in a private Hugging Face Space
  STORAGE_DIR              where state is kept (default ./data);
                           ENABLE_STORAGE=false keeps it in memory only
  ENABLE_VERTEX            true: /v1/* goes to Vertex AI
  GOOGLE_CREDENTIALS_JSON  Vertex service-account JSON (or base64 of it)
  VERTEX_EXPRESS_API_KEY   Vertex Express keys, comma-separated
  PROXY_URL                proxy for the calls to Google (or HTTPS_PROXY)
  REDIS_URL                state shared by several replicas (empty: one node)
  TZ                       time zone of the dashboard (default UTC)
  DASHBOARD_LANG           dashboard language: en, zh (default: the browser's)
  DASHBOARD_URL            serve the dashboard under /NAME/ instead of /
  RUST_LOG                 log filter (default info)

Every setting: docs/en/settings.md (docs/zh/settings.md 中文)
";

/// A mistake on the command line, in one line (English / 中文).
fn argument_error(en: &str, zh: &str) -> String {
    format!("hajimi: {en} (hajimi --help lists them) / {zh}（hajimi --help 列出所有参数）")
}

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
        let mut value = |name: &str| {
            inline_value
                .clone()
                .or_else(|| iter.next())
                .ok_or_else(|| argument_error(&format!("{name} needs a value"), &format!("{name} 需要一个值")))
        };
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
            other => {
                return Err(argument_error(&format!("unknown argument {other:?}"), &format!("未知参数 {other:?}")))
            }
        }
    }
    Ok(arguments)
}

/// The configuration as for serving (defaults, file, environment), for
/// the one-shot commands, with the layers it came from; the load's
/// warnings are logged.
fn load_config(config_file: Option<&Path>) -> Result<(Config, RawSettings), String> {
    let raw = RawSettings::load(config_file, &|name| std::env::var(name).ok()).map_err(|error| error.to_string())?;
    log_load_warnings(&raw);
    let config = Config::from_raw(&raw).map_err(|error| error.to_string())?;
    Ok((config, raw))
}

/// What loading the settings found worth a warning (variables of the
/// original this version does not use).
fn log_load_warnings(raw: &RawSettings) {
    for warning in raw.warnings() {
        log::warn!("{warning}");
    }
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
        Ok((config, _)) => config,
        Err(message) => return fail(message),
    };
    config.register_secrets();
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
/// one transaction: the values that are valid and differ from those in
/// force (defaults, config file, environment, dashboard values already
/// stored), and the keys not yet configured. Returns the exit code: 0
/// done, 1 on any error.
fn import_settings(settings_path: &Path, config_file: Option<&Path>) -> i32 {
    let fail = |message: String| {
        eprintln!("hajimi import-settings: {message}");
        1
    };
    let (config, raw) = match load_config(config_file) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    config.register_secrets();
    if !config.enable_storage {
        return fail(
            "ENABLE_STORAGE is false, so nothing imported would be kept; set ENABLE_STORAGE=true / \
             ENABLE_STORAGE 为 false，导入的内容不会被保存；请设置 ENABLE_STORAGE=true"
                .to_owned(),
        );
    }
    let shown = settings_path.display().to_string();
    let json = match std::fs::read_to_string(settings_path) {
        Ok(json) => json,
        Err(error) => return fail(format!("cannot read {shown}: {error} / 无法读取 {shown}：{error}")),
    };
    let store = match SqliteStore::open(&config.storage_dir) {
        Ok(store) => store,
        Err(error) => return fail(error.to_string()),
    };
    let stored = match store.load() {
        Ok(snapshot) => snapshot.setting_overrides,
        Err(error) => return fail(error.to_string()),
    };
    // In force at the next start: the dashboard values already stored (those
    // that still validate, as at startup) over defaults, file and environment.
    let mut layers = hajimi::state::SettingsLayers { base: raw, overrides: stored };
    hajimi::settings::apply_stored(&mut layers);
    let in_force = layers.combined(&layers.overrides);
    let plan = match plan_import(&json, &shown, &in_force) {
        Ok(plan) => plan,
        Err(message) => return fail(message),
    };
    if let Err(error) = store.apply(&plan.changes) {
        return fail(error.to_string());
    }
    println!("Imported {shown} into {}", store.database_path().display());
    for line in plan.report_lines() {
        println!("  {line}");
    }
    if plan.changes.is_empty() {
        println!("Nothing was written: the file holds nothing that is not already in force.");
        println!("没有写入任何内容：文件里的值都已生效。");
    } else {
        println!("Restart hajimi to use them. Imported settings override the environment and the config file;");
        println!("the dashboard's Settings page can revert each one.");
        println!("重启 hajimi 后生效。导入的设置优先于环境变量和配置文件；可在控制台的 Settings 页逐项恢复。");
    }
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
        exit(import_settings(settings_path, arguments.config_file.as_deref()));
    }
    if arguments.migrate_to_redis {
        exit(migrate_to_redis(arguments.config_file.as_deref()));
    }
    let loaded = RawSettings::load(arguments.config_file.as_deref(), &|name| std::env::var(name).ok())
        .map(|mut raw| {
            if let Some(host) = arguments.host {
                raw.set("HOST", host, Source::CommandLine);
            }
            if let Some(port) = arguments.port {
                raw.set("PORT", port, Source::CommandLine);
            }
            // Said before a bad value stops startup: a configuration made
            // for the original may hold both.
            log_load_warnings(&raw);
            raw
        })
        .and_then(|raw| Config::from_raw(&raw).map(|config| (config, raw)));
    let (config, sources) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            hajimi::telemetry::flush_logs();
            eprintln!("hajimi: {error}");
            exit(2);
        }
    };
    let malformed_keys = hajimi::secret::ApiKey::count_malformed(sources.get("GEMINI_API_KEYS"));
    if malformed_keys > 0 {
        log::warn!(
            "GEMINI_API_KEYS holds {malformed_keys} string(s) that start like a key but are not one \
             (AIza + 35 letters, digits, - or _); they were skipped / \
             GEMINI_API_KEYS 里有 {malformed_keys} 个看起来像 key 但不是 key 的字符串\
             （AIza 加 35 个字母、数字、- 或 _），已跳过"
        );
    }
    if config.password.matches("123") {
        log::warn!(
            "PASSWORD is the default \"123\": anyone can use this proxy. Set PASSWORD. / \
             PASSWORD 是默认的 \"123\"：任何人都能使用这个代理。请设置 PASSWORD。"
        );
    }
    if !config.trusted_proxy_header.is_empty() && config.trusted_proxies.is_empty() && !config.huggingface {
        log::warn!(
            "TRUSTED_PROXY_HEADER is set but TRUSTED_PROXIES is empty: any client can choose its own address. \
             List your proxy's address in TRUSTED_PROXIES. / \
             设置了 TRUSTED_PROXY_HEADER 但 TRUSTED_PROXIES 为空：任何客户端都能自己指定地址。\
             请在 TRUSTED_PROXIES 里填上你的反向代理的地址。"
        );
    }
    if let Some(proxy) = &config.upstream_proxy {
        log::info!("calls to Google go through the proxy {proxy}");
    }
    // The key count follows once the store is read (keys added in the
    // dashboard count too).
    log::info!("hajimi {} starting on {}:{}", env!("CARGO_PKG_VERSION"), config.host, config.port);
    actix_web::rt::System::new().block_on(async move {
        let clock = std::sync::Arc::new(hajimi::clock::SystemClock);
        let application = match Application::build_with_sources(config, Some(sources), clock) {
            Ok(application) => application,
            Err(error) => {
                hajimi::telemetry::flush_logs();
                eprintln!("hajimi: cannot start: {error} / 无法启动：{error}");
                exit(1);
            }
        };
        release_startup_memory();
        log::info!("listening on port {}", application.port());
        let state = application.state.clone();
        let served = application.run_until_stopped().await;
        // Stopped (SIGTERM/SIGINT): the last seconds of counters go to disk.
        hajimi::startup::persist_before_exit(&state);
        log::info!("stopped; state saved");
        hajimi::telemetry::flush_logs();
        served
    })
}

/// Exits with `code` once the log lines still waiting for their batch
/// are written.
fn exit(code: i32) -> ! {
    hajimi::telemetry::flush_logs();
    std::process::exit(code)
}
