//! Configuration, parsed in two phases. Phase one gathers raw string values
//! from the layers — built-in defaults, an optional TOML file, environment
//! variables (the original's names) — remembering where each came from.
//! Phase two validates them into the typed [`Config`]; a malformed value
//! stops startup with a message naming the variable and the bad value.
//! Dashboard overrides (a later layer) feed the same phase two.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::iprange::IpRange;
use crate::secret::{ApiKey, Secret};

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    CommandLine,
    /// Changed in the dashboard (persisted in the store).
    Dashboard,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "config file",
            Source::Env => "environment",
            Source::CommandLine => "command line",
            Source::Dashboard => "dashboard",
        })
    }
}

/// Why the configuration cannot be used. Every message is English and
/// Chinese in one line (`English / 中文`, see [`crate::messages`]).
#[derive(Debug)]
pub enum ConfigError {
    /// `reason` is `English / 中文` (the Settings page shows it beside the
    /// field; `messages::in_lang` picks one half). `value` is the value as
    /// given, `***` for a secret, and empty when it is empty.
    InvalidValue {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// A key of the config file that is neither a setting nor a variable of
    /// the original, with the setting it most likely meant.
    UnknownFileKey {
        key: String,
        path: PathBuf,
        suggestion: Option<&'static str>,
    },
    File {
        path: PathBuf,
        reason: String,
    },
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::messages::{halves, inline};
        match self {
            ConfigError::InvalidValue { name, value, reason } => {
                let (en, zh) = halves(reason);
                let (shown_en, shown_zh) = if value.is_empty() {
                    ("empty".to_owned(), "空".to_owned())
                } else {
                    (format!("{value:?}"), inline(&format!("{value:?}")))
                };
                write!(f, "invalid value for {name}: {shown_en} ({en}) / {name} 的值无效：{shown_zh}（{zh}）")
            }
            ConfigError::UnknownFileKey { key, path, suggestion } => {
                let path = path.display().to_string();
                let (hint_en, hint_zh) = match suggestion {
                    Some(meant) => (format!("did you mean {meant}?"), format!("是不是想写 {meant}？")),
                    None => (
                        "not a setting of hajimi or of the original; docs/en/settings.md lists them".to_owned(),
                        "既不是 hajimi 的设置，也不是原版的；完整列表见 docs/zh/settings.md".to_owned(),
                    ),
                };
                write!(
                    f,
                    "unknown setting {key:?} in {path} ({hint_en}) / 配置文件 {} 中有未知的设置 {}（{hint_zh}）",
                    inline(&path),
                    inline(&format!("{key:?}"))
                )
            }
            ConfigError::File { path, reason } => {
                let path = path.display().to_string();
                write!(
                    f,
                    "cannot read config file {path}: {reason} / 无法读取配置文件 {}：{}",
                    inline(&path),
                    inline(reason)
                )
            }
        }
    }
}

/// Variables of the original hajimi that this version does not use, with
/// why (English, Chinese). In the environment or the config file each is
/// accepted with a warning that names it, never an error: a configuration
/// made for the original starts as it is.
pub const ORIGINAL_UNUSED: &[(&str, &str, &str)] = &[
    (
        "INVALID_API_KEYS",
        "hajimi finds invalid keys itself and sets them aside until they validate again",
        "hajimi 会自己发现失效的 key，并把它们搁置到重新验证通过为止",
    ),
    ("FAKE_STREAMING_CHUNK_SIZE", "deprecated in the original", "原版里已废弃"),
    ("FAKE_STREAMING_DELAY_PER_CHUNK", "deprecated in the original", "原版里已废弃"),
    (
        "SHOW_API_ERROR_MESSAGE",
        "an empty answer is an error; ERROR_AS_ASSISTANT_MESSAGE decides how errors are delivered",
        "空回复按错误处理；错误怎样返回由 ERROR_AS_ASSISTANT_MESSAGE 决定",
    ),
    ("VERTEX_PROJECT_ID", "the project comes from the service account", "项目取自服务账号"),
    (
        "VERTEX_MODELS_CONFIG_URL",
        "set VERTEX_MODELS_URL instead (same JSON format)",
        "请改用 VERTEX_MODELS_URL（JSON 格式相同）",
    ),
];

/// The warning for a variable of the original this version does not use,
/// found in `place` (English, Chinese).
fn unused_original_warning(name: &str, why: (&str, &str), place: (&str, &str)) -> String {
    crate::messages::both(
        &format!(
            "{name} ({}) is a setting of the original hajimi that this version does not use ({}); it is ignored",
            place.0, why.0
        ),
        &crate::messages::inline(&format!(
            "{name}（{}）是原版 hajimi 的设置，本版本不使用（{}），已忽略",
            place.1, why.1
        )),
    )
}

/// The original's search prompt, kept for compatibility.
pub const DEFAULT_SEARCH_PROMPT: &str = "（使用搜索工具联网搜索，需要在content中结合搜索内容）";

/// Every setting: name (= environment variable) and built-in default.
/// Names in lower case are accepted as config-file keys.
pub const SETTINGS: &[(&str, &str)] = &[
    ("PASSWORD", "123"),
    ("WEB_PASSWORD", ""),
    ("GEMINI_API_KEYS", ""),
    ("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"),
    ("HOST", "0.0.0.0"),
    ("PORT", "7860"),
    ("FAKE_STREAMING", "true"),
    ("FAKE_STREAMING_INTERVAL", "1.0"),
    ("NONSTREAM_KEEPALIVE_ENABLED", "false"),
    ("NONSTREAM_KEEPALIVE_INTERVAL", "5.0"),
    ("CONCURRENT_REQUESTS", "1"),
    ("INCREASE_CONCURRENT_ON_FAILURE", "0"),
    ("MAX_CONCURRENT_REQUESTS", "3"),
    ("MAX_RETRY_NUM", "15"),
    ("MAX_EMPTY_RESPONSES", "5"),
    ("CACHE_EXPIRY_TIME", "21600"),
    ("MAX_CACHE_ENTRIES", "500"),
    ("CALCULATE_CACHE_ENTRIES", "6"),
    ("PRECISE_CACHE", "false"),
    ("API_KEY_DAILY_LIMIT", "100"),
    ("ALLOW_OVER_DAILY_LIMIT", "false"),
    ("MAX_REQUESTS_PER_MINUTE", "30"),
    ("MAX_REQUESTS_PER_DAY_PER_IP", "600"),
    ("RATE_LIMIT_SYNC_MS", "250"),
    ("RANDOM_STRING", "true"),
    ("RANDOM_STRING_LENGTH", "5"),
    ("SEARCH_MODE", "false"),
    ("SEARCH_PROMPT", DEFAULT_SEARCH_PROMPT),
    ("ENABLE_THINKING", "true"),
    ("SHOW_THINKING", "true"),
    ("SAFETY_THRESHOLD", "OFF"),
    ("EXTRA_MODELS", ""),
    // Model names agents send, as Gemini models: `pattern=target` pairs
    // (comma-separated, `*` matches anything, the first match wins).
    ("MODEL_ALIASES", ""),
    ("WHITELIST_MODELS", ""),
    ("BLOCKED_MODELS", ""),
    ("WHITELIST_USER_AGENT", ""),
    ("ALLOWED_ORIGINS", ""),
    ("PUBLIC_MODE", "false"),
    ("DASHBOARD_URL", ""),
    ("STORAGE_DIR", "./data"),
    ("ENABLE_STORAGE", "true"),
    ("ENABLE_VERTEX", "false"),
    ("ENABLE_VERTEX_EXPRESS", "false"),
    ("GOOGLE_CREDENTIALS_JSON", ""),
    ("VERTEX_EXPRESS_API_KEY", ""),
    ("VERTEX_BASE_URL", "https://aiplatform.googleapis.com"),
    ("VERTEX_LOCATION", "global"),
    ("VERTEX_MODELS_URL", ""),
    ("HUGGINGFACE", "false"),
    // Set by Hugging Face in every Space (`owner/name`).
    ("SPACE_ID", ""),
    ("HF_HUB_URL", "https://huggingface.co"),
    // Empty = `{HF_HUB_URL}/api/keys/jwt`.
    ("HF_JWT_KEYS_URL", ""),
    ("PROXY_URL", ""),
    ("HTTPS_PROXY", ""),
    ("ALL_PROXY", ""),
    ("HTTP_PROXY", ""),
    ("NO_PROXY", ""),
    // hajimi's own settings (not in the original).
    ("UPSTREAM_TIMEOUT", "600"),
    ("REQUEST_DEADLINE", "900"),
    ("UPSTREAM_CONNECT_TIMEOUT", "10"),
    ("STREAM_IDLE_TIMEOUT", "300"),
    ("MAX_REQUEST_BODY_MB", "64"),
    ("MAX_IMAGE_MB", "20"),
    ("IMAGE_FETCH_TIMEOUT", "15"),
    ("ALLOW_PRIVATE_IMAGE_URLS", "false"),
    ("MODEL_LIST_REFRESH_INTERVAL", "3600"),
    ("ERROR_AS_ASSISTANT_MESSAGE", "false"),
    ("THOUGHT_SIGNATURE_CACHE_SIZE", "10000"),
    ("WORKERS", "0"),
    ("MAX_WAIT_FOR_KEY", "5"),
    ("TRUSTED_PROXY_HEADER", ""),
    ("TRUSTED_PROXIES", ""),
    ("KEY_VALIDATION_CONCURRENCY", "8"),
    ("INVALID_KEY_RECHECK_INTERVAL", "21600"),
    ("VALIDATE_KEYS_ON_STARTUP", "true"),
    ("AUTH_FAILURES_PER_MINUTE", "5"),
    ("MAX_BODY_BYTES_IN_FLIGHT_MB", "256"),
    ("REQUEST_BODY_TIMEOUT", "60"),
    ("SHUTDOWN_TIMEOUT", "30"),
    ("LOG_RING_SIZE", "1000"),
    ("STATS_RETENTION_DAYS", "30"),
    ("REQUEST_LOG_RETENTION_DAYS", "7"),
    // Hours a stored response of /v1/responses is kept (0 = none is).
    ("RESPONSES_RETENTION_HOURS", "24"),
    // Empty = `/metrics` only with a dashboard session.
    ("METRICS_TOKEN", ""),
    // IANA time-zone name for every time the dashboard shows (the bundled
    // tz database; no system files needed).
    ("TZ", "UTC"),
    // Empty = the browser's language (Accept-Language, then the page's
    // switch); `en` or `zh` forces one.
    ("DASHBOARD_LANG", ""),
    // Origins that may show the dashboard in a frame (CSP frame-ancestors).
    // Empty = none, or https://huggingface.co with HUGGINGFACE=true.
    ("FRAME_ANCESTORS", ""),
    // Empty = one node: state in STORAGE_DIR. Set = replicas share it.
    ("REDIS_URL", ""),
    // PEM file of the CA that signed a rediss:// server's certificate
    // (empty = the bundled Mozilla roots).
    ("REDIS_CA_FILE", ""),
];

/// Phase one: every setting as a string plus its source.
#[derive(Debug, Clone)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Source)>,
    /// What the load found worth a warning (`English / 中文`).
    warnings: Vec<String>,
}

impl RawSettings {
    /// Defaults, then the file (if any), then the environment as read by
    /// `env` (injected so tests need not touch the process environment).
    pub fn load(file: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<RawSettings, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, Source)> =
            SETTINGS.iter().map(|(name, default)| (*name, (default.to_string(), Source::Default))).collect();
        let mut warnings = Vec::new();
        if let Some(path) = file {
            let shown = path.display().to_string();
            for (key, value) in read_config_file(path)? {
                if let Some(name) = SETTINGS.iter().map(|(name, _)| *name).find(|name| name.eq_ignore_ascii_case(&key))
                {
                    values.insert(name, (value, Source::File));
                } else if let Some((name, en, zh)) =
                    ORIGINAL_UNUSED.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(&key))
                {
                    let place = (format!("in {shown}"), format!("配置文件 {shown}"));
                    warnings.push(unused_original_warning(name, (en, zh), (&place.0, &place.1)));
                } else {
                    let suggestion = crate::messages::nearest(&key, SETTINGS.iter().map(|(name, _)| *name));
                    return Err(ConfigError::UnknownFileKey { key, path: path.to_owned(), suggestion });
                }
            }
        }
        for (name, en, zh) in ORIGINAL_UNUSED {
            if env(name).is_some() {
                warnings.push(unused_original_warning(name, (en, zh), ("environment", "环境变量")));
            }
        }
        for (name, _) in SETTINGS {
            // Proxy variables are also commonly set in lower case.
            let value =
                env(name).or_else(|| name.ends_with("PROXY").then(|| env(&name.to_ascii_lowercase())).flatten());
            if let Some(value) = value {
                values.insert(name, (value, Source::Env));
            }
        }
        // GEMINI_API_KEYS_1 … _N, read until the first missing one.
        let mut extra_keys = String::new();
        for index in 1.. {
            match env(&format!("GEMINI_API_KEYS_{index}")) {
                Some(more) => {
                    extra_keys.push(',');
                    extra_keys.push_str(&more);
                }
                None => break,
            }
        }
        if !extra_keys.is_empty() {
            let entry = values.entry("GEMINI_API_KEYS").or_insert((String::new(), Source::Env));
            entry.0.push_str(&extra_keys);
            entry.1 = Source::Env;
        }
        Ok(RawSettings { values, warnings })
    }

    /// Warnings for the log (`English / 中文`): variables of the original
    /// this version does not use, in the environment or the config file.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn set(&mut self, name: &'static str, value: String, source: Source) {
        self.values.insert(name, (value, source));
    }

    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map(|(value, _)| value.as_str()).unwrap_or("")
    }

    pub fn source(&self, name: &str) -> Source {
        self.values.get(name).map(|(_, source)| *source).unwrap_or(Source::Default)
    }
}

fn read_config_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let file_error = |reason: String| ConfigError::File { path: path.to_owned(), reason };
    let loaded = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml).required(true))
        .build()
        .map_err(|e| file_error(e.to_string()))?;
    let table: BTreeMap<String, config::Value> = loaded.try_deserialize().map_err(|e| file_error(e.to_string()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value.kind {
                config::ValueKind::Array(items) => items
                    .into_iter()
                    .map(|item| item.into_string().map_err(|e| file_error(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                _ => value.into_string().map_err(|e| file_error(format!("{key}: {e}")))?,
            };
            Ok((key, text))
        })
        .collect()
}

/// Phase two: the validated configuration the application runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub password: Secret,
    /// The dashboard password from `WEB_PASSWORD`; empty when none is set
    /// (or it is the well-known `123`). Never derived from `PASSWORD`: the
    /// API password does not open the dashboard.
    pub web_password: Secret,
    pub gemini_api_keys: Vec<ApiKey>,
    pub gemini_base_url: String,
    pub host: IpAddr,
    pub port: u16,
    pub fake_streaming: bool,
    pub fake_streaming_interval: Duration,
    pub nonstream_keepalive_enabled: bool,
    pub nonstream_keepalive_interval: Duration,
    pub concurrent_requests: u32,
    pub increase_concurrent_on_failure: u32,
    pub max_concurrent_requests: u32,
    pub max_retry_num: u32,
    pub max_empty_responses: u32,
    pub api_key_daily_limit: u32,
    /// The original's behaviour: use a key over its daily limit when none
    /// is under it.
    pub allow_over_daily_limit: bool,
    pub random_string: bool,
    pub random_string_length: usize,
    pub search_mode: bool,
    pub search_prompt: String,
    pub enable_thinking: bool,
    pub show_thinking: bool,
    pub safety_threshold: String,
    pub extra_models: Vec<String>,
    /// `MODEL_ALIASES`: (pattern, target) in order.
    pub model_aliases: Vec<(String, String)>,
    pub whitelist_models: Vec<String>,
    pub blocked_models: Vec<String>,
    pub whitelist_user_agent: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub public_mode: bool,
    pub storage_dir: PathBuf,
    pub enable_storage: bool,
    /// Path prefix of the dashboard: `""` (served at `/`) or `/name`.
    pub dashboard_prefix: String,
    pub enable_vertex: bool,
    pub enable_vertex_express: bool,
    pub vertex_base_url: String,
    pub vertex_location: String,
    /// Where an up-to-date Vertex model list may be fetched (optional).
    pub vertex_models_url: String,
    /// Service-account JSON from the environment (one or several objects,
    /// or base64 of them); used by the Vertex client.
    pub google_credentials_json: Secret,
    /// `VERTEX_EXPRESS_API_KEY`, a comma list.
    pub vertex_express_api_key: Secret,
    /// Records the dashboard's rolling log keeps.
    pub log_ring_size: usize,
    pub stats_retention_days: u32,
    pub request_log_retention_days: u32,
    /// `RESPONSES_RETENTION_HOURS`: how long `/v1/responses` keeps a
    /// response (`store: true`) for `previous_response_id` and `GET`; 0 =
    /// nothing is stored.
    pub responses_retention_hours: u32,
    /// Bearer token for `GET /metrics` (empty = dashboard session only).
    pub metrics_token: Secret,
    /// `redis://` or `rediss://` URL of the state shared by replicas
    /// (empty = a single node).
    pub redis_url: Secret,
    /// CA (PEM) to verify a `rediss://` server with, instead of the bundled
    /// roots (empty = the bundled roots).
    pub redis_ca_file: String,
    pub huggingface: bool,
    /// The Space this runs in (`SPACE_ID`, set by Hugging Face); its
    /// privacy decides whether `x-ip-token` auth may be used.
    pub space_id: String,
    pub hf_hub_url: String,
    /// Where Hugging Face publishes the public key that signs `x-ip-token`.
    pub hf_jwt_keys_url: String,
    /// Proxy for the calls to Google (`PROXY_URL`, else `HTTPS_PROXY`,
    /// `ALL_PROXY`, `HTTP_PROXY`), with `NO_PROXY`.
    pub upstream_proxy: Option<crate::proxy::ProxyConfig>,
    pub upstream_timeout: Duration,
    /// All attempts of one client request together; past it the client
    /// gets the last real failure (or 504).
    pub request_deadline: Duration,
    pub upstream_connect_timeout: Duration,
    pub stream_idle_timeout: Duration,
    pub max_request_body_bytes: usize,
    pub max_image_bytes: usize,
    pub image_fetch_timeout: Duration,
    pub allow_private_image_urls: bool,
    pub model_list_refresh_interval: Duration,
    pub error_as_assistant_message: bool,
    pub thought_signature_cache_size: usize,
    /// 0 = one per core.
    pub workers: usize,
    pub cache_expiry: Duration,
    pub max_cache_entries: usize,
    pub calculate_cache_entries: usize,
    pub precise_cache: bool,
    pub max_requests_per_minute: u32,
    pub max_requests_per_day_per_ip: u32,
    /// `RATE_LIMIT_SYNC_MS`: with `REDIS_URL`, how often replicas exchange
    /// per-address counts (0 = ask Redis on every request: exact, slower).
    pub rate_limit_sync: Duration,
    /// Header carrying the client address when behind a proxy (lower
    /// case), e.g. `x-forwarded-for`; empty = use the peer address. With
    /// `HUGGINGFACE=true` it defaults to `x-forwarded-for`.
    pub trusted_proxy_header: String,
    /// Peers allowed to set that header (empty = any peer); addresses or
    /// CIDR ranges.
    pub trusted_proxies: Vec<IpRange>,
    /// Longest a request waits for a cooling key (or a global back-off)
    /// before answering 429; 0 = never wait.
    pub max_wait_for_key: Duration,
    pub key_validation_concurrency: usize,
    pub invalid_key_recheck_interval: Duration,
    pub validate_keys_on_startup: bool,
    /// Wrong client keys tolerated per address and minute before that
    /// address is refused with 429 (growing back-off).
    pub auth_failures_per_minute: u32,
    /// Request-body bytes held by all requests at once; beyond, 503.
    pub max_body_bytes_in_flight: usize,
    /// Longest a client may take to send its request body; beyond, 408.
    pub request_body_timeout: Duration,
    /// On SIGTERM/SIGINT: how long answers still running may take to
    /// finish before the server stops anyway.
    pub shutdown_timeout: Duration,
    /// The time zone times are shown in, and its name as configured.
    pub time_zone: jiff::tz::TimeZone,
    pub time_zone_name: String,
    /// `DASHBOARD_LANG`: a language every page is shown in, or `None` for
    /// each browser's own.
    pub dashboard_lang: Option<crate::i18n::Lang>,
    /// Origins allowed to frame the dashboard (`FRAME_ANCESTORS`, or
    /// Hugging Face's in HF mode); empty = none may.
    pub frame_ancestors: Vec<String>,
}

/// Hugging Face shows a Space's app in a frame on this origin.
pub const HUGGING_FACE_ORIGIN: &str = "https://huggingface.co";

/// `TZ`: an IANA name (`Asia/Shanghai`), or a POSIX rule (`CST-8`) as a
/// system may set it; empty = UTC.
fn parse_time_zone(text: &str) -> Option<jiff::tz::TimeZone> {
    let text = text.trim().trim_start_matches(':');
    if text.is_empty() || text.eq_ignore_ascii_case("utc") {
        return Some(jiff::tz::TimeZone::UTC);
    }
    jiff::tz::TimeZone::get(text).ok().or_else(|| jiff::tz::TimeZone::posix(text).ok())
}

/// One `FRAME_ANCESTORS` entry: an `http(s)://host[:port]` origin (a `*.`
/// host wildcard allowed, as CSP allows), or `'self'`. Nothing that could
/// end the CSP directive (`;`, quotes, spaces) gets through.
fn is_frame_ancestor(origin: &str) -> bool {
    if origin == "'self'" {
        return true;
    }
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    let host = rest.trim_start_matches("*.");
    !host.is_empty() && host.len() <= 253 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// The thresholds `SAFETY_THRESHOLD` accepts (Google's `HarmBlockThreshold`).
pub const SAFETY_THRESHOLDS: &[&str] = &[
    "OFF",
    "BLOCK_NONE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_LOW_AND_ABOVE",
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
];

impl Config {
    /// Passwords and proxy credentials are masked wherever upstream text
    /// might quote them (keys are masked by their pattern).
    pub fn register_secrets(&self) {
        crate::secret::register_secret(self.password.expose());
        crate::secret::register_secret(self.web_password.expose());
        crate::secret::register_secret(self.metrics_token.expose());
        crate::secret::register_secret(self.redis_url.expose());
        if let Ok(url) = url::Url::parse(self.redis_url.expose()) {
            crate::secret::register_secret(url.password().unwrap_or(""));
        }
        if let Some(proxy) = &self.upstream_proxy {
            if let Some(password) = proxy.password() {
                crate::secret::register_secret(password);
            }
        }
        for key in self.vertex_express_api_key.expose().split([',', '\n', ' ']).filter(|key| key.trim().len() >= 8) {
            crate::secret::register_secret(key.trim());
        }
    }

    pub fn from_raw(raw: &RawSettings) -> Result<Config, ConfigError> {
        let v = Validator { raw };
        if v.text("PASSWORD").is_empty() {
            // An unset `${PASSWORD}` in a compose file arrives as "": it
            // must not leave the API open.
            return Err(v.invalid(
                "PASSWORD",
                "a non-empty password (leave PASSWORD unset for the default)",
                "非空的密码（想用默认密码就不要设置 PASSWORD）",
            ));
        }
        let password = Secret::new(v.text("PASSWORD"));
        // The original's default: anyone could guess it, so it counts as
        // no password (the first-run setup code applies).
        let web_password = match v.text("WEB_PASSWORD") {
            "" | "123" => Secret::new(""),
            other => Secret::new(other),
        };
        let safety_threshold = v.text("SAFETY_THRESHOLD").to_ascii_uppercase();
        if !SAFETY_THRESHOLDS.contains(&safety_threshold.as_str()) {
            let listed = SAFETY_THRESHOLDS.join(", ");
            return Err(v.invalid("SAFETY_THRESHOLD", &format!("one of {listed}"), &format!("以下之一：{listed}")));
        }
        let gemini_base_url = v.url("GEMINI_BASE_URL")?;
        let huggingface = v.boolean("HUGGINGFACE")?;
        let hf_hub_url = v.url("HF_HUB_URL")?;
        let hf_jwt_keys_url = match v.text("HF_JWT_KEYS_URL") {
            "" => format!("{hf_hub_url}/api/keys/jwt"),
            _ => v.url("HF_JWT_KEYS_URL")?,
        };
        Ok(Config {
            password,
            web_password,
            gemini_api_keys: ApiKey::extract_all(raw.get("GEMINI_API_KEYS")),
            gemini_base_url,
            host: v.parse("HOST", "an IP address such as 0.0.0.0 or ::", " IP 地址，例如 0.0.0.0 或 ::")?,
            port: v.parse("PORT", "a port number from 0 to 65535", " 0 到 65535 之间的端口号")?,
            fake_streaming: v.boolean("FAKE_STREAMING")?,
            fake_streaming_interval: v.seconds("FAKE_STREAMING_INTERVAL")?,
            nonstream_keepalive_enabled: v.boolean("NONSTREAM_KEEPALIVE_ENABLED")?,
            nonstream_keepalive_interval: v.seconds("NONSTREAM_KEEPALIVE_INTERVAL")?,
            concurrent_requests: v.positive("CONCURRENT_REQUESTS")?,
            increase_concurrent_on_failure: v.whole("INCREASE_CONCURRENT_ON_FAILURE")?,
            max_concurrent_requests: v.positive("MAX_CONCURRENT_REQUESTS")?,
            max_retry_num: v.positive("MAX_RETRY_NUM")?,
            max_empty_responses: v.positive("MAX_EMPTY_RESPONSES")?,
            api_key_daily_limit: v.whole("API_KEY_DAILY_LIMIT")?,
            allow_over_daily_limit: v.boolean("ALLOW_OVER_DAILY_LIMIT")?,
            random_string: v.boolean("RANDOM_STRING")?,
            random_string_length: v.whole("RANDOM_STRING_LENGTH")?,
            search_mode: v.boolean("SEARCH_MODE")?,
            search_prompt: v.text("SEARCH_PROMPT").to_owned(),
            enable_thinking: v.boolean("ENABLE_THINKING")?,
            show_thinking: v.boolean("SHOW_THINKING")?,
            safety_threshold,
            extra_models: v.list("EXTRA_MODELS"),
            model_aliases: v
                .list("MODEL_ALIASES")
                .iter()
                .map(|pair| {
                    let (pattern, target) = pair.split_once('=').map(|(p, t)| (p.trim(), t.trim())).unwrap_or(("", ""));
                    let target_ok = !target.is_empty() && !target.contains('*');
                    if pattern.is_empty() || !target_ok {
                        return Err(v.invalid(
                            "MODEL_ALIASES",
                            "pattern=model pairs such as claude-*=gemini-2.5-pro",
                            "“模式=模型”对，如 claude-*=gemini-2.5-pro",
                        ));
                    }
                    Ok((pattern.to_owned(), target.to_owned()))
                })
                .collect::<Result<_, _>>()?,
            whitelist_models: v.list("WHITELIST_MODELS"),
            blocked_models: v.list("BLOCKED_MODELS"),
            whitelist_user_agent: v.list("WHITELIST_USER_AGENT").into_iter().map(|s| s.to_lowercase()).collect(),
            allowed_origins: v.list("ALLOWED_ORIGINS"),
            public_mode: v.boolean("PUBLIC_MODE")?,
            storage_dir: PathBuf::from(v.text("STORAGE_DIR")),
            enable_storage: v.boolean("ENABLE_STORAGE")?,
            dashboard_prefix: {
                let name = v.text("DASHBOARD_URL").trim_matches('/');
                let valid = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                let reserved = [
                    "v1", "v1beta", "gemini", "vertex", "models", "health", "ready", "aistudio", "chat", "assets",
                    "metrics",
                ];
                if !valid || reserved.contains(&name) {
                    return Err(v.invalid(
                        "DASHBOARD_URL",
                        "a path name (letters, digits, - _ .) not used by the API",
                        "路径名（字母、数字、- _ .），且不是 API 用到的路径",
                    ));
                }
                if name.is_empty() {
                    String::new()
                } else {
                    format!("/{name}")
                }
            },
            enable_vertex: v.boolean("ENABLE_VERTEX")?,
            enable_vertex_express: v.boolean("ENABLE_VERTEX_EXPRESS")?,
            vertex_base_url: v.url("VERTEX_BASE_URL")?,
            vertex_location: {
                // It becomes part of a host name (`{location}-aiplatform…`).
                let location = v.text("VERTEX_LOCATION").trim();
                let valid = !location.is_empty()
                    && location.len() <= 64
                    && location.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    return Err(v.invalid(
                        "VERTEX_LOCATION",
                        "a region name such as global or us-central1 ([a-z0-9-])",
                        "区域名，例如 global 或 us-central1（[a-z0-9-]）",
                    ));
                }
                location.to_owned()
            },
            vertex_models_url: v.text("VERTEX_MODELS_URL").trim().to_owned(),
            google_credentials_json: Secret::new(v.text("GOOGLE_CREDENTIALS_JSON")),
            vertex_express_api_key: Secret::new(v.text("VERTEX_EXPRESS_API_KEY")),
            log_ring_size: v.positive("LOG_RING_SIZE")?,
            stats_retention_days: v.positive("STATS_RETENTION_DAYS")?,
            request_log_retention_days: v.positive("REQUEST_LOG_RETENTION_DAYS")?,
            responses_retention_hours: v.whole("RESPONSES_RETENTION_HOURS")?,
            metrics_token: Secret::new(v.text("METRICS_TOKEN")),
            redis_url: Secret::new(v.text("REDIS_URL")),
            redis_ca_file: v.text("REDIS_CA_FILE").to_owned(),
            huggingface,
            space_id: v.text("SPACE_ID").to_owned(),
            hf_hub_url,
            hf_jwt_keys_url,
            upstream_proxy: v.proxy()?,
            upstream_timeout: v.seconds("UPSTREAM_TIMEOUT")?,
            request_deadline: v.seconds("REQUEST_DEADLINE")?,
            upstream_connect_timeout: v.seconds("UPSTREAM_CONNECT_TIMEOUT")?,
            stream_idle_timeout: v.seconds("STREAM_IDLE_TIMEOUT")?,
            max_request_body_bytes: v.positive::<usize>("MAX_REQUEST_BODY_MB")? * 1024 * 1024,
            max_image_bytes: v.positive::<usize>("MAX_IMAGE_MB")? * 1024 * 1024,
            image_fetch_timeout: v.seconds("IMAGE_FETCH_TIMEOUT")?,
            allow_private_image_urls: v.boolean("ALLOW_PRIVATE_IMAGE_URLS")?,
            model_list_refresh_interval: v.seconds("MODEL_LIST_REFRESH_INTERVAL")?,
            error_as_assistant_message: v.boolean("ERROR_AS_ASSISTANT_MESSAGE")?,
            thought_signature_cache_size: v.positive("THOUGHT_SIGNATURE_CACHE_SIZE")?,
            workers: v.whole("WORKERS")?,
            cache_expiry: v.seconds("CACHE_EXPIRY_TIME")?,
            max_cache_entries: v.whole("MAX_CACHE_ENTRIES")?,
            calculate_cache_entries: v.whole("CALCULATE_CACHE_ENTRIES")?,
            precise_cache: v.boolean("PRECISE_CACHE")?,
            max_requests_per_minute: v.whole("MAX_REQUESTS_PER_MINUTE")?,
            max_requests_per_day_per_ip: v.whole("MAX_REQUESTS_PER_DAY_PER_IP")?,
            rate_limit_sync: Duration::from_millis(v.whole("RATE_LIMIT_SYNC_MS")?),
            trusted_proxy_header: match v.text("TRUSTED_PROXY_HEADER").to_ascii_lowercase() {
                header if header.is_empty() && huggingface => "x-forwarded-for".to_owned(),
                header => header,
            },
            trusted_proxies: v
                .list("TRUSTED_PROXIES")
                .iter()
                .map(|item| {
                    item.parse().map_err(|_| {
                        v.invalid(
                            "TRUSTED_PROXIES",
                            "a list of IP addresses or CIDR ranges",
                            " IP 地址或 CIDR 网段的列表",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            max_wait_for_key: {
                let (en, zh) = ("a number of seconds (0 = never wait)", "秒数（0 = 不等待）");
                let seconds: f64 = v.parse("MAX_WAIT_FOR_KEY", en, zh)?;
                // NaN would make `from_secs_f64` panic.
                if seconds.is_nan() {
                    return Err(v.invalid("MAX_WAIT_FOR_KEY", en, zh));
                }
                Duration::from_secs_f64(seconds.clamp(0.0, 600.0))
            },
            key_validation_concurrency: v.positive("KEY_VALIDATION_CONCURRENCY")?,
            invalid_key_recheck_interval: v.seconds("INVALID_KEY_RECHECK_INTERVAL")?,
            validate_keys_on_startup: v.boolean("VALIDATE_KEYS_ON_STARTUP")?,
            auth_failures_per_minute: v.positive("AUTH_FAILURES_PER_MINUTE")?,
            max_body_bytes_in_flight: v.body_bytes_in_flight()?,
            request_body_timeout: v.seconds("REQUEST_BODY_TIMEOUT")?,
            shutdown_timeout: v.seconds("SHUTDOWN_TIMEOUT")?,
            time_zone: parse_time_zone(v.text("TZ")).ok_or_else(|| {
                v.invalid(
                    "TZ",
                    "an IANA time-zone name such as Asia/Shanghai or UTC",
                    " IANA 时区名，例如 Asia/Shanghai 或 UTC",
                )
            })?,
            time_zone_name: match v.text("TZ").trim().trim_start_matches(':') {
                "" => "UTC".to_owned(),
                name => name.to_owned(),
            },
            dashboard_lang: match v.text("DASHBOARD_LANG").trim() {
                "" | "auto" => None,
                code => Some(
                    crate::i18n::Lang::parse(code)
                        .ok_or_else(|| v.invalid("DASHBOARD_LANG", "en, zh or empty", " en、zh 或留空"))?,
                ),
            },
            frame_ancestors: {
                let listed = v.list("FRAME_ANCESTORS");
                if let Some(bad) = listed.iter().find(|origin| !is_frame_ancestor(origin)) {
                    return Err(ConfigError::InvalidValue {
                        name: "FRAME_ANCESTORS",
                        value: bad.clone(),
                        reason: crate::messages::both(
                            "expected origins such as https://huggingface.co (or 'self')",
                            "应为来源地址，例如 https://huggingface.co（或 'self'）",
                        ),
                    });
                }
                if listed.is_empty() && huggingface {
                    vec![HUGGING_FACE_ORIGIN.to_owned()]
                } else {
                    listed
                }
            },
        })
    }

    /// Every setting as text, as `from_raw` would read it back: the
    /// inverse of phase two (keys excepted: they live in the pool). The
    /// dashboard layers its overrides on this, so a configuration made in
    /// code (tests) survives a save of other settings unchanged.
    pub fn to_raw(&self, sources: Option<&RawSettings>) -> RawSettings {
        let seconds = |duration: &Duration| duration.as_secs_f64().to_string();
        let list = |items: &[String]| items.join(",");
        let proxy_url = self.upstream_proxy.as_ref().map(|proxy| proxy.configured_url().to_owned()).unwrap_or_default();
        let no_proxy = self.upstream_proxy.as_ref().map(|proxy| proxy.no_proxy.join(",")).unwrap_or_default();
        let mut values: BTreeMap<&'static str, (String, Source)> = BTreeMap::new();
        for (name, _) in SETTINGS {
            let text = match *name {
                "PASSWORD" => self.password.expose().to_owned(),
                "WEB_PASSWORD" => self.web_password.expose().to_owned(),
                "GEMINI_API_KEYS" => String::new(),
                "GEMINI_BASE_URL" => self.gemini_base_url.clone(),
                "HOST" => self.host.to_string(),
                "PORT" => self.port.to_string(),
                "FAKE_STREAMING" => self.fake_streaming.to_string(),
                "FAKE_STREAMING_INTERVAL" => seconds(&self.fake_streaming_interval),
                "NONSTREAM_KEEPALIVE_ENABLED" => self.nonstream_keepalive_enabled.to_string(),
                "NONSTREAM_KEEPALIVE_INTERVAL" => seconds(&self.nonstream_keepalive_interval),
                "CONCURRENT_REQUESTS" => self.concurrent_requests.to_string(),
                "INCREASE_CONCURRENT_ON_FAILURE" => self.increase_concurrent_on_failure.to_string(),
                "MAX_CONCURRENT_REQUESTS" => self.max_concurrent_requests.to_string(),
                "MAX_RETRY_NUM" => self.max_retry_num.to_string(),
                "MAX_EMPTY_RESPONSES" => self.max_empty_responses.to_string(),
                "CACHE_EXPIRY_TIME" => seconds(&self.cache_expiry),
                "MAX_CACHE_ENTRIES" => self.max_cache_entries.to_string(),
                "CALCULATE_CACHE_ENTRIES" => self.calculate_cache_entries.to_string(),
                "PRECISE_CACHE" => self.precise_cache.to_string(),
                "API_KEY_DAILY_LIMIT" => self.api_key_daily_limit.to_string(),
                "ALLOW_OVER_DAILY_LIMIT" => self.allow_over_daily_limit.to_string(),
                "MAX_REQUESTS_PER_MINUTE" => self.max_requests_per_minute.to_string(),
                "MAX_REQUESTS_PER_DAY_PER_IP" => self.max_requests_per_day_per_ip.to_string(),
                "RATE_LIMIT_SYNC_MS" => self.rate_limit_sync.as_millis().to_string(),
                "RANDOM_STRING" => self.random_string.to_string(),
                "RANDOM_STRING_LENGTH" => self.random_string_length.to_string(),
                "SEARCH_MODE" => self.search_mode.to_string(),
                "SEARCH_PROMPT" => self.search_prompt.clone(),
                "ENABLE_THINKING" => self.enable_thinking.to_string(),
                "SHOW_THINKING" => self.show_thinking.to_string(),
                "SAFETY_THRESHOLD" => self.safety_threshold.clone(),
                "EXTRA_MODELS" => list(&self.extra_models),
                "MODEL_ALIASES" => self
                    .model_aliases
                    .iter()
                    .map(|(pattern, target)| format!("{pattern}={target}"))
                    .collect::<Vec<_>>()
                    .join(","),
                "WHITELIST_MODELS" => list(&self.whitelist_models),
                "BLOCKED_MODELS" => list(&self.blocked_models),
                "WHITELIST_USER_AGENT" => list(&self.whitelist_user_agent),
                "ALLOWED_ORIGINS" => list(&self.allowed_origins),
                "PUBLIC_MODE" => self.public_mode.to_string(),
                "DASHBOARD_URL" => self.dashboard_prefix.trim_start_matches('/').to_owned(),
                "STORAGE_DIR" => self.storage_dir.display().to_string(),
                "ENABLE_STORAGE" => self.enable_storage.to_string(),
                "ENABLE_VERTEX" => self.enable_vertex.to_string(),
                "ENABLE_VERTEX_EXPRESS" => self.enable_vertex_express.to_string(),
                "GOOGLE_CREDENTIALS_JSON" => self.google_credentials_json.expose().to_owned(),
                "VERTEX_EXPRESS_API_KEY" => self.vertex_express_api_key.expose().to_owned(),
                "VERTEX_BASE_URL" => self.vertex_base_url.clone(),
                "VERTEX_LOCATION" => self.vertex_location.clone(),
                "VERTEX_MODELS_URL" => self.vertex_models_url.clone(),
                "HUGGINGFACE" => self.huggingface.to_string(),
                "SPACE_ID" => self.space_id.clone(),
                "HF_HUB_URL" => self.hf_hub_url.clone(),
                // Derived values are written back as what derives them
                // (empty), so a later change of HF_HUB_URL or HUGGINGFACE
                // is not shadowed by a copy of the old result.
                "HF_JWT_KEYS_URL" if self.hf_jwt_keys_url == format!("{}/api/keys/jwt", self.hf_hub_url) => {
                    String::new()
                }
                "HF_JWT_KEYS_URL" => self.hf_jwt_keys_url.clone(),
                "PROXY_URL" => proxy_url.clone(),
                "HTTPS_PROXY" | "ALL_PROXY" | "HTTP_PROXY" => String::new(),
                "NO_PROXY" => no_proxy.clone(),
                "UPSTREAM_TIMEOUT" => seconds(&self.upstream_timeout),
                "REQUEST_DEADLINE" => seconds(&self.request_deadline),
                "UPSTREAM_CONNECT_TIMEOUT" => seconds(&self.upstream_connect_timeout),
                "STREAM_IDLE_TIMEOUT" => seconds(&self.stream_idle_timeout),
                "MAX_REQUEST_BODY_MB" => (self.max_request_body_bytes / (1024 * 1024)).to_string(),
                "MAX_IMAGE_MB" => (self.max_image_bytes / (1024 * 1024)).to_string(),
                "IMAGE_FETCH_TIMEOUT" => seconds(&self.image_fetch_timeout),
                "ALLOW_PRIVATE_IMAGE_URLS" => self.allow_private_image_urls.to_string(),
                "MODEL_LIST_REFRESH_INTERVAL" => seconds(&self.model_list_refresh_interval),
                "ERROR_AS_ASSISTANT_MESSAGE" => self.error_as_assistant_message.to_string(),
                "THOUGHT_SIGNATURE_CACHE_SIZE" => self.thought_signature_cache_size.to_string(),
                "WORKERS" => self.workers.to_string(),
                "MAX_WAIT_FOR_KEY" => seconds(&self.max_wait_for_key),
                "TRUSTED_PROXY_HEADER" if self.huggingface && self.trusted_proxy_header == "x-forwarded-for" => {
                    String::new()
                }
                "TRUSTED_PROXY_HEADER" => self.trusted_proxy_header.clone(),
                "TRUSTED_PROXIES" => self.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                "KEY_VALIDATION_CONCURRENCY" => self.key_validation_concurrency.to_string(),
                "INVALID_KEY_RECHECK_INTERVAL" => seconds(&self.invalid_key_recheck_interval),
                "VALIDATE_KEYS_ON_STARTUP" => self.validate_keys_on_startup.to_string(),
                "AUTH_FAILURES_PER_MINUTE" => self.auth_failures_per_minute.to_string(),
                "MAX_BODY_BYTES_IN_FLIGHT_MB" => (self.max_body_bytes_in_flight / (1024 * 1024)).to_string(),
                "REQUEST_BODY_TIMEOUT" => seconds(&self.request_body_timeout),
                "SHUTDOWN_TIMEOUT" => seconds(&self.shutdown_timeout),
                "TZ" => self.time_zone_name.clone(),
                "DASHBOARD_LANG" => self.dashboard_lang.map(|lang| lang.code().to_owned()).unwrap_or_default(),
                // Derived from HUGGINGFACE: written back as what derives it.
                "FRAME_ANCESTORS" if self.huggingface && self.frame_ancestors == [HUGGING_FACE_ORIGIN] => String::new(),
                "FRAME_ANCESTORS" => list(&self.frame_ancestors),
                "LOG_RING_SIZE" => self.log_ring_size.to_string(),
                "STATS_RETENTION_DAYS" => self.stats_retention_days.to_string(),
                "REQUEST_LOG_RETENTION_DAYS" => self.request_log_retention_days.to_string(),
                "RESPONSES_RETENTION_HOURS" => self.responses_retention_hours.to_string(),
                "METRICS_TOKEN" => self.metrics_token.expose().to_owned(),
                "REDIS_URL" => self.redis_url.expose().to_owned(),
                "REDIS_CA_FILE" => self.redis_ca_file.clone(),
                other => sources.map(|raw| raw.get(other).to_owned()).unwrap_or_default(),
            };
            let source = sources.map(|raw| raw.source(name)).unwrap_or(Source::Default);
            values.insert(name, (text, source));
        }
        RawSettings { values, warnings: Vec::new() }
    }

    /// Loads defaults, `file` and the process environment.
    pub fn load(file: Option<&Path>) -> Result<(Config, RawSettings), ConfigError> {
        let raw = RawSettings::load(file, &|name| std::env::var(name).ok())?;
        Ok((Config::from_raw(&raw)?, raw))
    }

    /// Settings suitable for tests: no keys, nothing written to disk.
    pub fn for_tests() -> Config {
        let raw = RawSettings::load(None, &|name| match name {
            "ENABLE_STORAGE" => Some("false".into()),
            "HOST" => Some("127.0.0.1".into()),
            "PORT" => Some("0".into()),
            "WORKERS" => Some("1".into()),
            "VALIDATE_KEYS_ON_STARTUP" => Some("false".into()),
            _ => None,
        })
        .expect("defaults load");
        Config::from_raw(&raw).expect("defaults are valid")
    }
}

struct Validator<'a> {
    raw: &'a RawSettings,
}

/// Values never shown in an error (a password, a token, a URL that may
/// hold credentials).
fn is_secret(name: &str) -> bool {
    ["PASSWORD", "CREDENTIALS", "TOKEN", "API_KEY"].iter().any(|part| name.contains(part))
        || name.ends_with("_PROXY")
        || name == "PROXY_URL"
        || name == "REDIS_URL"
}

/// Where a layer stands: a value from a higher layer was set later and
/// more deliberately than one below it.
fn layer(source: Source) -> u8 {
    match source {
        Source::Default => 0,
        Source::File => 1,
        Source::Env => 2,
        Source::CommandLine => 3,
        Source::Dashboard => 4,
    }
}

impl Validator<'_> {
    fn text(&self, name: &'static str) -> &str {
        self.raw.get(name).trim()
    }

    /// `name` is not `expected` (English, Chinese: "a port number", "端口号").
    fn invalid(&self, name: &'static str, en: &str, zh: &str) -> ConfigError {
        self.invalid_because(name, &format!("expected {en}"), &format!("应为{zh}"))
    }

    /// `name` is wrong for the reason given (English, Chinese).
    fn invalid_because(&self, name: &'static str, en: &str, zh: &str) -> ConfigError {
        let given = self.raw.get(name);
        let value = if given.trim().is_empty() {
            String::new()
        } else if is_secret(name) {
            "***".to_owned()
        } else {
            given.to_owned()
        };
        ConfigError::InvalidValue { name, value, reason: crate::messages::both(en, &crate::messages::inline(zh)) }
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str, en: &str, zh: &str) -> Result<T, ConfigError> {
        self.text(name).parse().map_err(|_| self.invalid(name, en, zh))
    }

    /// A whole number of 0 or more.
    fn whole<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ConfigError> {
        self.parse(name, "a whole number (0 or more)", " 0 或更大的整数")
    }

    fn positive<T: std::str::FromStr + PartialOrd + Default>(&self, name: &'static str) -> Result<T, ConfigError> {
        let (en, zh) = ("a whole number above 0", "大于 0 的整数");
        let value: T = self.parse(name, en, zh)?;
        if value > T::default() {
            Ok(value)
        } else {
            Err(self.invalid(name, en, zh))
        }
    }

    fn boolean(&self, name: &'static str) -> Result<bool, ConfigError> {
        parse_bool(self.text(name))
            .ok_or_else(|| self.invalid(name, "true/false/1/0/yes/no", " true/false/1/0/yes/no 之一"))
    }

    fn seconds(&self, name: &'static str) -> Result<Duration, ConfigError> {
        let (en, zh) = ("a number of seconds above 0", "大于 0 的秒数");
        let seconds: f64 = self.parse(name, en, zh)?;
        if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 {
            Ok(Duration::from_secs_f64(seconds))
        } else {
            Err(self.invalid(name, en, zh))
        }
    }

    fn list(&self, name: &'static str) -> Vec<String> {
        self.text(name)
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn proxy(&self) -> Result<Option<crate::proxy::ProxyConfig>, ConfigError> {
        let Some(name) = ["PROXY_URL", "HTTPS_PROXY", "ALL_PROXY", "HTTP_PROXY"]
            .into_iter()
            .find(|name| !self.text(name).is_empty())
        else {
            return Ok(None);
        };
        crate::proxy::ProxyConfig::parse(self.text(name), self.text("NO_PROXY")).map(Some).map_err(|reason| {
            self.invalid(
                name,
                &format!("an http:// or socks5:// proxy URL ({reason})"),
                &format!(" http:// 或 socks5:// 代理地址（{reason}）"),
            )
        })
    }

    fn url(&self, name: &'static str) -> Result<String, ConfigError> {
        let text = self.text(name).trim_end_matches('/');
        match url::Url::parse(text) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(text.to_owned()),
            _ => Err(self.invalid(name, "an http(s) URL", " http(s) 网址")),
        }
    }

    /// `MAX_BODY_BYTES_IN_FLIGHT_MB` in bytes: at least three times
    /// `MAX_REQUEST_BODY_MB` (a body briefly takes three times its size
    /// while converted). When the two disagree, the one set in the higher
    /// layer is blamed: raising the body limit alone names the body limit.
    fn body_bytes_in_flight(&self) -> Result<usize, ConfigError> {
        let in_flight: usize = self.positive("MAX_BODY_BYTES_IN_FLIGHT_MB")?;
        let body: usize = self.positive("MAX_REQUEST_BODY_MB")?;
        let needed = body.saturating_mul(3);
        if in_flight >= needed {
            return Ok(in_flight.saturating_mul(1024 * 1024));
        }
        if layer(self.raw.source("MAX_REQUEST_BODY_MB")) > layer(self.raw.source("MAX_BODY_BYTES_IN_FLIGHT_MB")) {
            let most = in_flight / 3;
            Err(self.invalid_because(
                "MAX_REQUEST_BODY_MB",
                &format!(
                    "at most a third of MAX_BODY_BYTES_IN_FLIGHT_MB ({in_flight}), so {most}; \
                     or raise MAX_BODY_BYTES_IN_FLIGHT_MB to {needed} or more"
                ),
                &format!(
                    "最多为 MAX_BODY_BYTES_IN_FLIGHT_MB（{in_flight}）的三分之一，即 {most}；\
                     或者把 MAX_BODY_BYTES_IN_FLIGHT_MB 调到 {needed} 或更大"
                ),
            ))
        } else {
            Err(self.invalid_because(
                "MAX_BODY_BYTES_IN_FLIGHT_MB",
                &format!("expected at least 3 × MAX_REQUEST_BODY_MB ({body}), so {needed} or more"),
                &format!("应不小于 MAX_REQUEST_BODY_MB（{body}）的 3 倍，即 {needed} 或更大"),
            ))
        }
    }
}

/// `true/false/1/0/yes/no/on/off`, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let raw = RawSettings::load(None, &|name| env.get(name).cloned())?;
        Config::from_raw(&raw)
    }

    #[test]
    fn defaults_are_the_originals() {
        let config = load(&[]).unwrap();
        assert!(config.password.matches("123"));
        assert_eq!(config.web_password.expose(), "", "no dashboard password: the setup code applies");
        assert_eq!(config.port, 7860);
        assert!(config.fake_streaming);
        assert!(!config.nonstream_keepalive_enabled);
        assert_eq!(config.max_retry_num, 15);
        assert_eq!(config.safety_threshold, "OFF");
        assert!(config.gemini_api_keys.is_empty());
    }

    #[test]
    fn booleans_accept_every_spelling() {
        for (text, expected) in [("TRUE", true), ("yes", true), ("1", true), ("No", false), ("0", false)] {
            let config = load(&[("SEARCH_MODE", text)]).unwrap();
            assert_eq!(config.search_mode, expected, "{text}");
        }
    }

    #[test]
    fn malformed_values_name_the_variable_and_value() {
        let cases = [
            ("PORT", "seventy", "PORT"),
            ("FAKE_STREAMING", "maybe", "FAKE_STREAMING"),
            ("MAX_RETRY_NUM", "0", "MAX_RETRY_NUM"),
            ("GEMINI_BASE_URL", "ftp://x", "GEMINI_BASE_URL"),
            ("SAFETY_THRESHOLD", "LOW", "SAFETY_THRESHOLD"),
            ("MAX_BODY_BYTES_IN_FLIGHT_MB", "100", "MAX_BODY_BYTES_IN_FLIGHT_MB"),
        ];
        for (name, value, expected) in cases {
            let message = load(&[(name, value)]).unwrap_err().to_string();
            assert!(message.contains(expected) && message.contains(value), "{message}");
        }
    }

    #[test]
    fn to_raw_is_the_inverse_of_from_raw() {
        let config = load(&[
            ("PASSWORD", "s3cret-pass"),
            ("MAX_RETRY_NUM", "7"),
            ("FAKE_STREAMING_INTERVAL", "0.25"),
            ("EXTRA_MODELS", "a, b"),
            ("TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PROXY_URL", "http://u%40x:p+w@proxy:3128"),
            ("NO_PROXY", "localhost,.internal"),
            ("DASHBOARD_URL", "/admin/"),
            ("MAX_WAIT_FOR_KEY", "0"),
        ])
        .unwrap();
        let again = Config::from_raw(&config.to_raw(None)).unwrap();
        assert_eq!(format!("{again:?}"), format!("{config:?}"));
        assert_eq!(again.upstream_proxy.unwrap().configured_url(), "http://u%40x:p+w@proxy:3128");
        assert_eq!(again.dashboard_prefix, "/admin");
        for name in ["v1", "health", "metrics", "bad/name", "a b"] {
            assert!(load(&[("DASHBOARD_URL", name)]).is_err(), "{name}");
        }
    }

    #[test]
    fn an_empty_or_blank_password_stops_startup() {
        for value in ["", "   ", "\t\n"] {
            let message = load(&[("PASSWORD", value)]).unwrap_err().to_string();
            assert!(message.contains("PASSWORD"), "{message}");
        }
    }

    #[test]
    fn the_dashboard_password_is_never_derived_from_the_api_password() {
        // Empty or the well-known default: none (the setup code applies).
        for web_password in ["", "123"] {
            let config = load(&[("PASSWORD", "s3cret"), ("WEB_PASSWORD", web_password)]).unwrap();
            assert_eq!(config.web_password.expose(), "", "{web_password:?}");
            // Nothing derived goes into the layer the dashboard stores on.
            assert_eq!(config.to_raw(None).get("WEB_PASSWORD"), "");
        }
        let config = load(&[("PASSWORD", "s3cret"), ("WEB_PASSWORD", "dash-board-pass")]).unwrap();
        assert!(config.web_password.matches("dash-board-pass"));
        // Other derived values are written back as what derives them.
        let hugging = load(&[("HUGGINGFACE", "true"), ("HF_HUB_URL", "https://hub.example")]).unwrap();
        let raw = hugging.to_raw(None);
        assert_eq!((raw.get("TRUSTED_PROXY_HEADER"), raw.get("HF_JWT_KEYS_URL")), ("", ""));
        let mut raw = raw;
        raw.set("HUGGINGFACE", "false".into(), Source::Dashboard);
        assert_eq!(Config::from_raw(&raw).unwrap().trusted_proxy_header, "", "HF's header goes with HF mode");
    }

    #[test]
    fn time_zone_language_and_frame_ancestors() {
        let config = load(&[]).unwrap();
        assert_eq!(
            (config.time_zone_name.as_str(), config.dashboard_lang, config.frame_ancestors.len()),
            ("UTC", None, 0)
        );
        let config = load(&[("TZ", "Asia/Shanghai"), ("DASHBOARD_LANG", "zh")]).unwrap();
        assert_eq!(config.time_zone.iana_name(), Some("Asia/Shanghai"));
        assert_eq!(config.dashboard_lang, Some(crate::i18n::Lang::Zh));
        // A POSIX rule as some systems set TZ; a leading ':' as glibc allows.
        assert!(load(&[("TZ", "CST-8")]).is_ok());
        assert!(load(&[("TZ", ":America/New_York")]).is_ok());
        for (name, value) in [("TZ", "Mars/Olympus"), ("DASHBOARD_LANG", "fr")] {
            let message = load(&[(name, value)]).unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
        }
        // Hugging Face frames its Spaces; written back as derived (empty).
        let hf = load(&[("HUGGINGFACE", "true")]).unwrap();
        assert_eq!(hf.frame_ancestors, [HUGGING_FACE_ORIGIN]);
        assert_eq!(hf.to_raw(None).get("FRAME_ANCESTORS"), "");
        let listed = load(&[("FRAME_ANCESTORS", "https://a.example, https://*.b.example:8443 'self'")]).unwrap();
        assert_eq!(listed.frame_ancestors.len(), 3);
        for bad in ["https://a.example;script-src *", "javascript:x", "https://", "a.example", "https://a b"] {
            assert!(load(&[("FRAME_ANCESTORS", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let config = load(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 2001:db8::/32")]).unwrap();
        let shown: Vec<String> = config.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        assert!(load(&[("TRUSTED_PROXIES", "10.0.0.0/40")]).is_err());
    }

    #[test]
    fn keys_come_from_all_numbered_lists_until_a_gap() {
        let a = "AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let b = "AIzaSyB-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let c = "AIzaSyC-ccccccccccccccccccccccccccccccc";
        let config =
            load(&[("GEMINI_API_KEYS", a), ("GEMINI_API_KEYS_1", &format!("{b}\n{a}")), ("GEMINI_API_KEYS_3", c)])
                .unwrap();
        let keys: Vec<&str> = config.gemini_api_keys.iter().map(|k| k.expose()).collect();
        assert_eq!(keys, vec![a, b]);
    }

    #[test]
    fn proxy_variables_in_order_of_preference_and_never_echoed() {
        let config = load(&[("https_proxy", "http://a:1"), ("ALL_PROXY", "socks5://b:2")]).unwrap();
        assert_eq!(config.upstream_proxy.unwrap().to_string(), "http://a:1");
        let config = load(&[("PROXY_URL", "socks5h://c:3"), ("HTTPS_PROXY", "http://a:1")]).unwrap();
        assert_eq!(config.upstream_proxy.unwrap().to_string(), "socks5://c:3");
        assert!(load(&[]).unwrap().upstream_proxy.is_none());
        let message = load(&[("HTTPS_PROXY", "ftp://user:secret@x")]).unwrap_err().to_string();
        assert!(message.contains("HTTPS_PROXY") && !message.contains("secret"), "{message}");
    }

    #[test]
    fn config_file_layers_under_env_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("hajimi-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hajimi.toml");
        std::fs::write(&path, "port = 8000\nsearch_mode = true\nextra_models = [\"a\", \"b\"]\n").unwrap();
        let env = |name: &str| (name == "PORT").then(|| "9000".to_owned());
        let raw = RawSettings::load(Some(&path), &env).unwrap();
        let config = Config::from_raw(&raw).unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(raw.source("PORT"), Source::Env);
        assert!(config.search_mode);
        assert_eq!(raw.source("SEARCH_MODE"), Source::File);
        assert_eq!(config.extra_models, vec!["a", "b"]);

        std::fs::write(&path, "prot = 8000\n").unwrap();
        let error = RawSettings::load(Some(&path), &|_| None).unwrap_err();
        assert!(error.to_string().contains("prot"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_are_in_english_and_chinese_and_show_empty_values_as_empty() {
        let message = load(&[("PORT", "seventy")]).unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid value for PORT: \"seventy\" (expected a port number from 0 to 65535) / \
             PORT 的值无效：\"seventy\"（应为 0 到 65535 之间的端口号）"
        );
        // The reason alone (shown beside the field) is in both languages too.
        let Err(ConfigError::InvalidValue { name, reason, .. }) = load(&[("MAX_RETRY_NUM", "0")]) else {
            panic!("MAX_RETRY_NUM=0 is refused")
        };
        assert_eq!((name, reason.as_str()), ("MAX_RETRY_NUM", "expected a whole number above 0 / 应为大于 0 的整数"));
        // Empty is "empty" / "空", even for a secret; a secret is never shown.
        let message = load(&[("PASSWORD", "")]).unwrap_err().to_string();
        assert!(message.starts_with("invalid value for PASSWORD: empty ("), "{message}");
        assert!(message.contains("PASSWORD 的值无效：空（"), "{message}");
        assert!(!message.contains("***"), "{message}");
        let message = load(&[("HTTPS_PROXY", "gopher://user:hunter2@x")]).unwrap_err().to_string();
        assert!(message.contains("\"***\"") && !message.contains("hunter2"), "{message}");
        // Every rule's reason has a Chinese half.
        for (name, value) in [
            ("HOST", "localhost"),
            ("FAKE_STREAMING", "maybe"),
            ("FAKE_STREAMING_INTERVAL", "-1"),
            ("API_KEY_DAILY_LIMIT", "-5"),
            ("SAFETY_THRESHOLD", "LOW"),
            ("GEMINI_BASE_URL", "ftp://x"),
            ("DASHBOARD_URL", "v1"),
            ("VERTEX_LOCATION", "Europe"),
            ("TRUSTED_PROXIES", "nowhere"),
            ("MAX_WAIT_FOR_KEY", "soon"),
            ("TZ", "Mars/Olympus"),
            ("DASHBOARD_LANG", "fr"),
            ("FRAME_ANCESTORS", "javascript:x"),
        ] {
            let Err(ConfigError::InvalidValue { reason, .. }) = load(&[(name, value)]) else {
                panic!("{name}={value} is refused")
            };
            let (en, zh) = crate::messages::halves(&reason);
            assert!(en.starts_with("expected ") && zh.starts_with("应为"), "{name}: {reason}");
        }
    }

    #[test]
    fn not_a_number_waits_for_no_key_and_panics_nothing() {
        let message = load(&[("MAX_WAIT_FOR_KEY", "NaN")]).unwrap_err().to_string();
        assert!(message.contains("MAX_WAIT_FOR_KEY"), "{message}");
    }

    #[test]
    fn the_body_limits_blame_the_one_the_user_set() {
        // Only the body limit raised: it is the one named, with the other.
        let Err(ConfigError::InvalidValue { name, value, reason }) = load(&[("MAX_REQUEST_BODY_MB", "200")]) else {
            panic!("200 MB bodies do not fit in 256 MB")
        };
        assert_eq!((name, value.as_str()), ("MAX_REQUEST_BODY_MB", "200"));
        assert!(reason.contains("MAX_BODY_BYTES_IN_FLIGHT_MB (256), so 85") && reason.contains("600"), "{reason}");
        // Only the budget lowered, or both set: the budget is named.
        for env in [
            &[("MAX_BODY_BYTES_IN_FLIGHT_MB", "100")][..],
            &[("MAX_REQUEST_BODY_MB", "200"), ("MAX_BODY_BYTES_IN_FLIGHT_MB", "300")][..],
        ] {
            let Err(ConfigError::InvalidValue { name, reason, .. }) = load(env) else { panic!("{env:?}") };
            assert_eq!(name, "MAX_BODY_BYTES_IN_FLIGHT_MB", "{env:?}");
            assert!(reason.contains("3 × MAX_REQUEST_BODY_MB"), "{reason}");
        }
        // Set in the dashboard over a budget from the environment: the body.
        let mut raw =
            RawSettings::load(None, &|name| (name == "MAX_BODY_BYTES_IN_FLIGHT_MB").then(|| "256".into())).unwrap();
        raw.set("MAX_REQUEST_BODY_MB", "100".into(), Source::Dashboard);
        let Err(ConfigError::InvalidValue { name, .. }) = Config::from_raw(&raw) else { panic!("300 > 256") };
        assert_eq!(name, "MAX_REQUEST_BODY_MB");
        assert!(load(&[("MAX_REQUEST_BODY_MB", "85")]).is_ok());
    }

    #[test]
    fn the_config_file_names_itself_and_suggests_the_setting_meant() {
        let dir = std::env::temp_dir().join(format!("hajimi-config-typo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "pasword = \"x\"\n").unwrap();
        let message = RawSettings::load(Some(&path), &|_| None).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "unknown setting \"pasword\" in {0} (did you mean PASSWORD?) / \
                 配置文件 {0} 中有未知的设置 \"pasword\"（是不是想写 PASSWORD？）",
                path.display()
            )
        );
        std::fs::write(&path, "colour = \"x\"\n").unwrap();
        let message = RawSettings::load(Some(&path), &|_| None).unwrap_err().to_string();
        assert!(message.contains("\"colour\"") && !message.contains("did you mean"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn variables_of_the_original_hajimi_does_not_use_warn_alike_in_the_file_and_the_environment() {
        let dir = std::env::temp_dir().join(format!("hajimi-config-original-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "invalid_api_keys = \"AIzaOld\"\nport = 8000\n").unwrap();
        let raw = RawSettings::load(Some(&path), &|name| (name == "FAKE_STREAMING_CHUNK_SIZE").then(|| "10".into()))
            .expect("accepted, not an error");
        assert_eq!(Config::from_raw(&raw).unwrap().port, 8000, "the rest of the file applies");
        let warnings = raw.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with(&format!("INVALID_API_KEYS (in {}) is a setting of the original", path.display()))
        );
        assert!(warnings[0].contains("原版 hajimi 的设置") && warnings[0].contains("已忽略"), "{}", warnings[0]);
        assert!(warnings[1].starts_with("FAKE_STREAMING_CHUNK_SIZE (environment) is a setting of the original"));
        assert!(!warnings.concat().contains("AIzaOld"), "values are not quoted");
        assert!(RawSettings::load(None, &|_| None).unwrap().warnings().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
