//! The `hajimi` binary: parse arguments, load configuration, run; or, as
//! `hajimi import-settings PATH`, copy the original's `settings.json` into
//! the store and exit.
//! Also answers to the name `uvicorn` (the Hugging Face Space Dockerfile of
//! the original runs `uvicorn app.main:app --host … --port …`).

use std::path::{Path, PathBuf};

use hajimi::config::{Config, Source};
use hajimi::startup::Application;
use hajimi::store::import::import_original_settings;
use hajimi::store::sqlite::SqliteStore;
use hajimi::store::Store;

const USAGE: &str = "\
hajimi — OpenAI-compatible gateway to Google Gemini over a pool of API keys

USAGE: hajimi [--config FILE] [--host ADDRESS] [--port PORT]
       hajimi [--config FILE] import-settings PATH

  --config FILE   TOML file with settings (keys are the environment variable
                  names, any case); also HAJIMI_CONFIG. Environment wins.
  --host ADDRESS  listen address (default 0.0.0.0; also HOST)
  --port PORT     listen port (default 7860; also PORT)
  import-settings PATH
                  copy the original hajimi's settings.json (settings, AI Studio
                  and Express keys) into the store in STORAGE_DIR, print what
                  was imported and what was skipped, and exit
  -h, --help      this text
  -V, --version   version
";

struct Arguments {
    config_file: Option<PathBuf>,
    host: Option<String>,
    port: Option<String>,
    /// `import-settings PATH`: import instead of serving.
    import_settings: Option<PathBuf>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut arguments = Arguments {
        config_file: std::env::var_os("HAJIMI_CONFIG").map(PathBuf::from),
        host: None,
        port: None,
        import_settings: None,
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
            // uvicorn compatibility: `app.main:app` and flags hajimi does not need.
            app if app.contains(':') && !app.starts_with('-') => {}
            "--workers" | "--log-level" | "--proxy-headers" | "--forwarded-allow-ips" => {}
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(arguments)
}

/// `hajimi import-settings PATH`: the original's `settings.json` into the
/// SQLite store of `STORAGE_DIR` (configuration loaded as for serving), in
/// one transaction. Returns the exit code: 0 done, 1 on any error.
fn import_settings(settings_path: &Path, config_file: Option<&Path>) -> i32 {
    let fail = |message: String| {
        eprintln!("hajimi import-settings: {message}");
        1
    };
    let config = match hajimi::config::RawSettings::load(config_file, &|name| std::env::var(name).ok())
        .and_then(|raw| Config::from_raw(&raw))
    {
        Ok(config) => config,
        Err(error) => return fail(error.to_string()),
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

fn main() -> std::io::Result<()> {
    hajimi::telemetry::init_logging();
    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Some(settings_path) = &arguments.import_settings {
        std::process::exit(import_settings(settings_path, arguments.config_file.as_deref()));
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
