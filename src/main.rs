//! The `hajimi` binary: parse arguments, load configuration, run.
//! Also answers to the name `uvicorn` (the Hugging Face Space Dockerfile of
//! the original runs `uvicorn app.main:app --host … --port …`).

use std::path::PathBuf;

use hajimi::config::{Config, Source};
use hajimi::startup::Application;

const USAGE: &str = "\
hajimi — OpenAI-compatible gateway to Google Gemini over a pool of API keys

USAGE: hajimi [--config FILE] [--host ADDRESS] [--port PORT]

  --config FILE   TOML file with settings (keys are the environment variable
                  names, any case); also HAJIMI_CONFIG. Environment wins.
  --host ADDRESS  listen address (default 0.0.0.0; also HOST)
  --port PORT     listen port (default 7860; also PORT)
  -h, --help      this text
  -V, --version   version
";

struct Arguments {
    config_file: Option<PathBuf>,
    host: Option<String>,
    port: Option<String>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut arguments =
        Arguments { config_file: std::env::var_os("HAJIMI_CONFIG").map(PathBuf::from), host: None, port: None };
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
            // uvicorn compatibility: `app.main:app` and flags hajimi does not need.
            app if app.contains(':') && !app.starts_with('-') => {}
            "--workers" | "--log-level" | "--proxy-headers" | "--forwarded-allow-ips" => {}
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(arguments)
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
        .and_then(|raw| Config::from_raw(&raw));
    let config = match loaded {
        Ok(config) => config,
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
        let application = match Application::build(config) {
            Ok(application) => application,
            Err(error) => {
                eprintln!("hajimi: {error}");
                std::process::exit(1);
            }
        };
        log::info!("listening on port {}", application.port());
        application.run_until_stopped().await
    })
}
