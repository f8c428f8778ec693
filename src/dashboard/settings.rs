//! The Settings page's catalogue and the save path (§2, §9). Every runtime
//! setting of §2 appears once, in a group, with a kind (how it is edited)
//! and whether it needs a restart. A save is atomic: the whole form is
//! validated through `Config::from_raw` on top of the lower layers, every
//! invalid field gets its own inline error, and only a fully valid form is
//! put in force (`AppState::replace_config`) and persisted as dashboard
//! overrides. Keys, the dashboard password and Vertex credentials have
//! pages of their own and are not here.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Config, ConfigError, RawSettings, Source};
use crate::state::AppState;
use crate::store::Change;

/// How a setting is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// Never shown; an empty field leaves it unchanged.
    Secret,
    Number,
    Text,
    List,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Secret => "secret",
            Kind::Number => "number",
            Kind::Text => "text",
            Kind::List => "list",
        }
    }
}

pub struct SettingSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub description: &'static str,
    pub restart_required: bool,
}

const fn live(name: &'static str, kind: Kind, description: &'static str) -> SettingSpec {
    SettingSpec { name, kind, description, restart_required: false }
}

const fn restart(name: &'static str, kind: Kind, description: &'static str) -> SettingSpec {
    SettingSpec { name, kind, description, restart_required: true }
}

use Kind::{Bool, List, Number, Secret, Text};

pub const GROUPS: &[(&str, &[SettingSpec])] = &[
    (
        "API access",
        &[
            live("PASSWORD", Secret, "The key API clients must send. Not the dashboard password."),
            live("METRICS_TOKEN", Secret, "Bearer token for GET /metrics (empty = only with a dashboard session)."),
            live(
                "AUTH_FAILURES_PER_MINUTE",
                Number,
                "Wrong keys an address may send per minute before it is locked out.",
            ),
            live("MAX_REQUESTS_PER_MINUTE", Number, "Requests per client address per minute (0 = unlimited)."),
            live("MAX_REQUESTS_PER_DAY_PER_IP", Number, "Requests per client address per day (0 = unlimited)."),
            live("WHITELIST_USER_AGENT", List, "Only clients whose User-Agent contains one of these."),
            live(
                "ALLOWED_ORIGINS",
                List,
                "Browser origins (https://chat.example) that may call the API routes from a web page; * = any. Empty = none.",
            ),
            live("PUBLIC_MODE", Bool, "Do not share identical requests in flight."),
            live("TRUSTED_PROXY_HEADER", Text, "Header carrying the client address behind a reverse proxy."),
            live("TRUSTED_PROXIES", List, "Proxies (addresses or CIDR ranges) allowed to set that header."),
        ],
    ),
    (
        "Streaming and retries",
        &[
            live("FAKE_STREAMING", Bool, "Answer stream requests with keep-alive chunks while a normal call runs."),
            live("FAKE_STREAMING_INTERVAL", Number, "Seconds between keep-alive chunks."),
            live("NONSTREAM_KEEPALIVE_ENABLED", Bool, "Send newlines while a non-stream answer is pending."),
            live("NONSTREAM_KEEPALIVE_INTERVAL", Number, "Seconds between those newlines."),
            live("MAX_RETRY_NUM", Number, "Upstream attempts per request."),
            live("MAX_EMPTY_RESPONSES", Number, "Empty answers tolerated per request."),
            live("CONCURRENT_REQUESTS", Number, "Parallel upstream calls per round."),
            live("INCREASE_CONCURRENT_ON_FAILURE", Number, "Calls added to the next round after a failed one."),
            live("MAX_CONCURRENT_REQUESTS", Number, "Most parallel calls in a round."),
            live("MAX_WAIT_FOR_KEY", Number, "Seconds a request may wait for a cooling key."),
            live("ERROR_AS_ASSISTANT_MESSAGE", Bool, "Deliver errors as an assistant message with HTTP 200."),
        ],
    ),
    (
        "Key pool",
        &[
            live("API_KEY_DAILY_LIMIT", Number, "Successful calls per key per model per Pacific day (0 = unlimited)."),
            live("ALLOW_OVER_DAILY_LIMIT", Bool, "Use a key over its limit when no other key is left."),
            live("VALIDATE_KEYS_ON_STARTUP", Bool, "Check every key in the background at startup."),
            live("KEY_VALIDATION_CONCURRENCY", Number, "Keys checked at the same time."),
            live("INVALID_KEY_RECHECK_INTERVAL", Number, "Seconds between re-checks of invalid keys."),
        ],
    ),
    (
        "Swipe cache",
        &[
            live("CACHE_EXPIRY_TIME", Number, "Seconds a spare answer is kept."),
            live("MAX_CACHE_ENTRIES", Number, "Spare answers kept at most."),
            live("CALCULATE_CACHE_ENTRIES", Number, "Accepted for compatibility; the key covers the whole request."),
            live("PRECISE_CACHE", Bool, "Accepted for compatibility; the key covers the whole request."),
        ],
    ),
    (
        "Models and features",
        &[
            live("RANDOM_STRING", Bool, "Add SillyTavern's disguise strings to the history."),
            live("RANDOM_STRING_LENGTH", Number, "Length of those strings."),
            live("SEARCH_MODE", Bool, "Offer -search models (Google Search grounding)."),
            live("SEARCH_PROMPT", Text, "Instruction added to -search requests."),
            live("ENABLE_THINKING", Bool, "Send thinking settings to models that think."),
            live("SHOW_THINKING", Bool, "Return thoughts as reasoning_content."),
            live(
                "SAFETY_THRESHOLD",
                Text,
                "OFF, BLOCK_NONE, BLOCK_ONLY_HIGH, BLOCK_MEDIUM_AND_ABOVE or BLOCK_LOW_AND_ABOVE.",
            ),
            live("EXTRA_MODELS", List, "Models added to the list."),
            live("WHITELIST_MODELS", List, "Only these models (empty = all)."),
            live("BLOCKED_MODELS", List, "Models removed from the list and refused."),
            live("MODEL_LIST_REFRESH_INTERVAL", Number, "Seconds between model-list refreshes."),
            live("THOUGHT_SIGNATURE_CACHE_SIZE", Number, "Tool-call thought signatures remembered."),
        ],
    ),
    (
        "Upstream",
        &[
            live("GEMINI_BASE_URL", Text, "Where AI Studio calls go (Google, or a relay)."),
            live("PROXY_URL", Secret, "http:// or socks5:// proxy for the calls to Google."),
            live("NO_PROXY", List, "Hosts reached without the proxy."),
            live("UPSTREAM_TIMEOUT", Number, "Seconds for a non-streaming upstream call."),
            live("REQUEST_DEADLINE", Number, "Seconds all attempts of one request may take together."),
            live("UPSTREAM_CONNECT_TIMEOUT", Number, "Seconds to connect upstream."),
            live("STREAM_IDLE_TIMEOUT", Number, "Seconds a real stream may stay silent."),
            live("MAX_REQUEST_BODY_MB", Number, "Largest request body."),
            live("MAX_BODY_BYTES_IN_FLIGHT_MB", Number, "Memory all request bodies may take at once."),
            live("REQUEST_BODY_TIMEOUT", Number, "Seconds a client may take to send its body."),
            live("MAX_IMAGE_MB", Number, "Largest image fetched from a URL."),
            live("IMAGE_FETCH_TIMEOUT", Number, "Seconds to fetch an image."),
            live("ALLOW_PRIVATE_IMAGE_URLS", Bool, "Let image URLs reach private addresses."),
        ],
    ),
    (
        "Vertex",
        &[
            live("VERTEX_BASE_URL", Text, "Vertex AI endpoint."),
            live("VERTEX_LOCATION", Text, "Vertex AI location (global, us-central1, …)."),
            live("VERTEX_MODELS_URL", Text, "Optional URL of a Vertex model list ({\"vertex_models\": […], \"vertex_express_models\": […]}), fetched hourly."),
        ],
    ),
    (
        "Dashboard and storage",
        &[
            live("TZ", Text, "Time zone of every time shown here (an IANA name such as Asia/Shanghai)."),
            live("DASHBOARD_LANG", Text, "en or zh for every visitor; empty = each browser's language and its switch."),
            live(
                "FRAME_ANCESTORS",
                List,
                "Origins that may show the dashboard in a frame (https://huggingface.co for a Space). Empty = none (Hugging Face's in HF mode).",
            ),
            live("LOG_RING_SIZE", Number, "Log records the Log page keeps."),
            live("STATS_RETENTION_DAYS", Number, "Days of per-minute statistics kept on disk."),
            live("REQUEST_LOG_RETENTION_DAYS", Number, "Days of request records kept on disk."),
            restart("DASHBOARD_URL", Text, "Serve the dashboard under /<name>/ instead of /."),
            restart("STORAGE_DIR", Text, "Where the database lives."),
            restart("ENABLE_STORAGE", Bool, "Keep state on disk."),
        ],
    ),
    (
        "Server",
        &[
            restart("HOST", Text, "Listen address."),
            restart("PORT", Number, "Listen port."),
            restart("SHUTDOWN_TIMEOUT", Number, "Seconds running answers may take to finish after SIGTERM."),
            restart("WORKERS", Number, "Worker threads (0 = one per core)."),
            restart("HUGGINGFACE", Bool, "Hugging Face private-Space mode."),
            restart("SPACE_ID", Text, "The Space (owner/name), set by Hugging Face."),
            restart("HF_HUB_URL", Text, "Hugging Face Hub API base."),
            restart("HF_JWT_KEYS_URL", Text, "Where Hugging Face publishes its token key."),
        ],
    ),
];

/// Settings that decide where pool keys, Vertex tokens or the proxy's
/// credentials are sent, or whose word vouches for a Hugging Face caller:
/// changing one in the dashboard needs the dashboard password again (a
/// stolen session alone must not be able to send the keys elsewhere), and
/// is logged with the address.
pub const SECRET_DESTINATIONS: &[&str] = &[
    "GEMINI_BASE_URL",
    "VERTEX_BASE_URL",
    "VERTEX_LOCATION",
    "VERTEX_MODELS_URL",
    "PROXY_URL",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "HF_HUB_URL",
    "HF_JWT_KEYS_URL",
];

pub fn decides_where_secrets_go(name: &str) -> bool {
    SECRET_DESTINATIONS.contains(&name)
}

pub fn spec(name: &str) -> Option<&'static SettingSpec> {
    GROUPS.iter().flat_map(|(_, specs)| specs.iter()).find(|spec| spec.name == name)
}

/// Validation errors by setting name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// The overrides the submitted form amounts to: every field whose value
/// differs from what is in force now. Secret fields left empty are
/// unchanged; unchecked booleans arrive as "false" (hidden field).
pub fn changes_from_form(form: &[(String, String)], combined: &RawSettings) -> BTreeMap<&'static str, String> {
    let mut submitted: BTreeMap<&'static str, String> = BTreeMap::new();
    for (field, value) in form {
        let Some(spec) = spec(field) else { continue };
        match spec.kind {
            // The hidden "false" comes first, the checkbox's "true" after it.
            Kind::Bool => {
                let entry = submitted.entry(spec.name).or_default();
                if value == "true" || entry.is_empty() {
                    *entry = value.clone();
                }
            }
            Kind::Secret if value.is_empty() => {}
            _ => {
                submitted.insert(spec.name, value.trim().to_owned());
            }
        }
    }
    submitted.retain(|name, value| combined.get(name) != value.as_str());
    submitted
}

/// Validates `overrides` on top of the lower layers: the configuration they
/// give, or every field's error. Each invalid field is reverted to find
/// the next one, so all errors are reported at once.
pub fn validate(
    layers: &crate::state::SettingsLayers,
    overrides: &BTreeMap<String, String>,
    changed: &BTreeSet<&'static str>,
) -> Result<Config, FieldErrors> {
    let mut candidate = overrides.clone();
    let mut errors = FieldErrors::new();
    for _ in 0..=crate::config::SETTINGS.len() {
        match Config::from_raw(&layers.combined(&candidate)) {
            Ok(config) if errors.is_empty() => return Ok(config),
            Ok(_) => return Err(errors),
            Err(ConfigError::InvalidValue { name, reason, .. }) => {
                errors.insert(name, reason);
                if candidate.remove(name).is_none() || !changed.contains(name) {
                    // The lower layers themselves are invalid for this
                    // name: nothing more can be learned.
                    return Err(errors);
                }
            }
            Err(other) => {
                errors.insert("PASSWORD", other.to_string());
                return Err(errors);
            }
        }
    }
    Err(errors)
}

/// At startup: the configuration with the stored dashboard overrides on
/// top, or `None` when there are none. Overrides of names hajimi does not
/// know, or that no longer validate (an upgrade changed a rule), are
/// dropped from `layers` with a warning instead of stopping startup; an
/// environment value an override shadows is logged once.
pub fn apply_stored(layers: &mut crate::state::SettingsLayers) -> Option<Config> {
    layers.overrides.retain(|name, _| {
        let known = crate::config::SETTINGS.iter().any(|(known, _)| known == name) && name != "GEMINI_API_KEYS";
        if !known {
            log::warn!("a stored dashboard setting {} is unknown and ignored", crate::secret::LogSafe(name));
        }
        known
    });
    if layers.overrides.is_empty() {
        return None;
    }
    for (name, value) in &layers.overrides {
        if layers.base.source(name) == Source::Env && layers.base.get(name) != value {
            log::warn!("{name} from the environment is overridden by the value set in the dashboard");
        }
    }
    loop {
        match Config::from_raw(&layers.combined(&layers.overrides)) {
            Ok(config) => return Some(config),
            Err(ConfigError::InvalidValue { name, reason, .. }) if layers.overrides.contains_key(name) => {
                log::warn!("the dashboard value of {name} is ignored: {reason}");
                layers.overrides.remove(name);
            }
            Err(error) => {
                log::warn!("the dashboard settings are ignored: {error}");
                layers.overrides.clear();
                return None;
            }
        }
    }
}

/// Saves a set of changes (from the Settings or Vertex page): validated as
/// a whole, then put in force and persisted, or refused with every error.
pub fn save(state: &AppState, changes: BTreeMap<&'static str, String>) -> Result<Vec<&'static str>, FieldErrors> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut layers = state.settings.lock();
    let mut overrides = layers.overrides.clone();
    for (name, value) in &changes {
        overrides.insert((*name).to_owned(), value.clone());
    }
    let changed: BTreeSet<&'static str> = changes.keys().copied().collect();
    let config = validate(&layers, &overrides, &changed)?;
    layers.overrides = overrides;
    drop(layers);
    state.replace_config(config);
    state.store.send_all(
        changes
            .iter()
            .map(|(name, value)| Change::SetSetting { name: (*name).to_owned(), value: value.clone() })
            .collect(),
    );
    Ok(changed.into_iter().collect())
}

/// Puts in force the dashboard overrides another replica saved (shared
/// state): validated like a save here, but not written back. An override
/// set that does not validate on this replica is left out with a warning.
/// True when something changed.
pub fn adopt_shared(state: &AppState, overrides: std::collections::BTreeMap<String, String>) -> bool {
    let mut layers = state.settings.lock();
    if layers.overrides == overrides {
        return false;
    }
    let changed: BTreeSet<&'static str> = overrides
        .iter()
        .filter(|(name, value)| layers.overrides.get(*name) != Some(*value))
        .chain(layers.overrides.iter().filter(|(name, _)| !overrides.contains_key(*name)))
        .filter_map(|(name, _)| spec(name).map(|spec| spec.name))
        .collect();
    match validate(&layers, &overrides, &changed) {
        Ok(config) => {
            layers.overrides = overrides;
            drop(layers);
            state.replace_config(config);
            log::info!(target: "hajimi::cluster", "settings changed on another replica are in force: {}", changed.into_iter().collect::<Vec<_>>().join(", "));
            true
        }
        Err(errors) => {
            let names: Vec<String> = errors.into_keys().map(str::to_owned).collect();
            log::warn!(target: "hajimi::cluster", "settings saved on another replica do not validate here ({}); keeping this replica's", names.join(", "));
            false
        }
    }
}

/// Drops a dashboard override: the setting returns to its file, env or
/// default value.
pub fn revert(state: &AppState, name: &str) -> Result<&'static str, String> {
    let spec = spec(name).ok_or("unknown setting")?;
    let mut layers = state.settings.lock();
    let mut overrides = layers.overrides.clone();
    if overrides.remove(spec.name).is_none() {
        return Err(format!("{} has no dashboard value", spec.name));
    }
    let config = validate(&layers, &overrides, &BTreeSet::new()).map_err(|errors| {
        errors.into_iter().map(|(name, reason)| format!("{name}: {reason}")).collect::<Vec<_>>().join("; ")
    })?;
    layers.overrides = overrides;
    drop(layers);
    state.replace_config(config);
    state.store.send(Change::RemoveSetting { name: spec.name.to_owned() });
    Ok(spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_guarded_settings_are_on_the_page_or_known() {
        for name in SECRET_DESTINATIONS {
            assert!(crate::config::SETTINGS.iter().any(|(known, _)| known == name), "{name}");
        }
        for name in ["GEMINI_BASE_URL", "VERTEX_BASE_URL", "VERTEX_LOCATION", "VERTEX_MODELS_URL", "PROXY_URL"] {
            assert!(spec(name).is_some() && decides_where_secrets_go(name), "{name}");
        }
        assert!(!decides_where_secrets_go("MAX_RETRY_NUM"));
    }

    #[test]
    fn stored_overrides_apply_and_the_ones_that_no_longer_validate_are_dropped() {
        let base = Config::for_tests().to_raw(None);
        let stored: BTreeMap<String, String> = [
            ("MAX_RETRY_NUM", "4"),
            ("WEB_PASSWORD", "imported-web-pass"),
            ("PORT", "not a port"),
            ("NO_SUCH_SETTING", "1"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let mut layers = crate::state::SettingsLayers { base, overrides: stored };
        let config = apply_stored(&mut layers).unwrap();
        assert_eq!(config.max_retry_num, 4);
        assert!(config.web_password.matches("imported-web-pass"), "settings without a page still apply");
        assert_eq!(layers.overrides.keys().map(String::as_str).collect::<Vec<_>>(), ["MAX_RETRY_NUM", "WEB_PASSWORD"]);
        // A later save builds on exactly these overrides.
        let saved = validate(&layers, &layers.overrides, &BTreeSet::new()).unwrap();
        assert!(saved.web_password.matches("imported-web-pass"));
    }

    #[test]
    fn every_setting_appears_once_and_exists() {
        let mut seen = BTreeSet::new();
        for (_, specs) in GROUPS {
            for spec in *specs {
                assert!(seen.insert(spec.name), "{} twice", spec.name);
                assert!(crate::config::SETTINGS.iter().any(|(name, _)| *name == spec.name), "{}", spec.name);
            }
        }
        // Everything else has its own page or is not editable.
        let elsewhere = [
            "WEB_PASSWORD",
            "GEMINI_API_KEYS",
            "ENABLE_VERTEX",
            "ENABLE_VERTEX_EXPRESS",
            "GOOGLE_CREDENTIALS_JSON",
            "VERTEX_EXPRESS_API_KEY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "HTTP_PROXY",
            // Where the settings themselves are kept: not editable there.
            "REDIS_URL",
            "REDIS_CA_FILE",
        ];
        for (name, _) in crate::config::SETTINGS {
            assert!(seen.contains(name) || elsewhere.contains(name), "{name} is on no page");
        }
    }

    #[test]
    fn the_form_becomes_changes_and_errors_are_all_reported() {
        let config = Config::for_tests();
        let layers = crate::state::SettingsLayers { base: config.to_raw(None), overrides: BTreeMap::new() };
        let combined = layers.combined(&layers.overrides);
        let form: Vec<(String, String)> = [
            ("MAX_RETRY_NUM", "7"),
            ("PASSWORD", ""),
            ("FAKE_STREAMING", "false"),
            ("FAKE_STREAMING", "true"),
            ("SEARCH_MODE", "false"),
            ("PORT", "x"),
            ("MAX_EMPTY_RESPONSES", "0"),
            ("NOT_A_SETTING", "1"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let changes = changes_from_form(&form, &combined);
        let names: Vec<&str> = changes.keys().copied().collect();
        assert_eq!(
            names,
            ["MAX_EMPTY_RESPONSES", "MAX_RETRY_NUM", "PORT"],
            "unchanged and secret-empty fields drop out"
        );
        let overrides: BTreeMap<String, String> = changes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let changed: BTreeSet<&'static str> = changes.keys().copied().collect();
        let errors = validate(&layers, &overrides, &changed).unwrap_err();
        assert_eq!(errors.keys().copied().collect::<Vec<_>>(), ["MAX_EMPTY_RESPONSES", "PORT"]);
        let good: BTreeMap<String, String> = [("MAX_RETRY_NUM".to_owned(), "7".to_owned())].into();
        let config = validate(&layers, &good, &["MAX_RETRY_NUM"].into()).unwrap();
        assert_eq!(config.max_retry_num, 7);
    }
}
