//! The Settings page's catalogue (§2, §9): every runtime setting of §2
//! appears once, in a group, with a kind (how it is edited), whether it
//! needs a restart and its help in English and Chinese. Saving is
//! `crate::settings` (atomic: the whole form validated, every invalid field
//! with its own error, only a fully valid form put in force and persisted). Keys, the dashboard password and Vertex credentials have
//! pages of their own and are not here.

use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::BTreeSet;

use crate::config::RawSettings;
use crate::i18n::Lang;

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
    /// What it means, in English (also the settings reference,
    /// `docs/en/settings.md`).
    pub description: &'static str,
    /// The same in Chinese (from `docs/zh/settings.md`, shortened).
    pub description_zh: &'static str,
    pub restart_required: bool,
}

impl SettingSpec {
    /// The description in `lang`.
    pub fn description_in(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.description,
            Lang::Zh => self.description_zh,
        }
    }
}

const fn live(name: &'static str, kind: Kind, description: &'static str, description_zh: &'static str) -> SettingSpec {
    SettingSpec { name, kind, description, description_zh, restart_required: false }
}

const fn restart(
    name: &'static str,
    kind: Kind,
    description: &'static str,
    description_zh: &'static str,
) -> SettingSpec {
    SettingSpec { name, kind, description, description_zh, restart_required: true }
}

use Kind::{Bool, List, Number, Secret, Text};

pub const GROUPS: &[(&str, &[SettingSpec])] = &[
    (
        "API access",
        &[
            live(
                "PASSWORD",
                Secret,
                "The key API clients must send. Not the dashboard password.",
                "API 客户端必须携带的密钥（酒馆里填的 API 密钥）。不是面板密码。",
            ),
            live(
                "METRICS_TOKEN",
                Secret,
                "Bearer token for GET /metrics (empty = only with a dashboard session).",
                "GET /metrics 的 Bearer 令牌（留空 = 只能在登录面板后访问）。",
            ),
            live(
                "AUTH_FAILURES_PER_MINUTE",
                Number,
                "Wrong keys an address may send per minute before it is locked out.",
                "同一地址每分钟最多可发送多少次错误密钥，超过即被暂时封锁。",
            ),
            live(
                "MAX_REQUESTS_PER_MINUTE",
                Number,
                "Requests per client address per minute (0 = unlimited).",
                "每个客户端地址每分钟的请求数上限（0 = 不限）。",
            ),
            live(
                "MAX_REQUESTS_PER_DAY_PER_IP",
                Number,
                "Requests per client address per day (0 = unlimited).",
                "每个客户端地址每天的请求数上限（0 = 不限）。",
            ),
            live(
                "RATE_LIMIT_SYNC_MS",
                Number,
                "With REDIS_URL: milliseconds between exchanges of per-address counts between replicas (0 = ask Redis on every request: exact, slower). Between exchanges the others' requests are not seen yet: at most replicas × interval × rate over the limit.",
                "配置 REDIS_URL 时：各副本之间交换每地址计数的间隔毫秒数（0 = 每个请求都询问 Redis：精确但更慢）。两次交换之间看不到其他副本的请求：最多超出 副本数 × 间隔 × 速率。",
            ),
            live(
                "WHITELIST_USER_AGENT",
                List,
                "Only clients whose User-Agent contains one of these.",
                "只放行 User-Agent 中包含其中任一项的客户端。",
            ),
            live(
                "ALLOWED_ORIGINS",
                List,
                "Browser origins (https://chat.example) that may call the API routes from a web page; * = any. Empty = none.",
                "允许从网页调用 API 路由的浏览器来源（如 https://chat.example），* 表示任意；留空表示不允许。",
            ),
            live(
                "PUBLIC_MODE",
                Bool,
                "Do not share identical requests in flight.",
                "不合并正在进行中的相同请求。",
            ),
            live(
                "TRUSTED_PROXY_HEADER",
                Text,
                "Header carrying the client address behind a reverse proxy.",
                "反向代理后面用来携带客户端地址的请求头。",
            ),
            live(
                "TRUSTED_PROXIES",
                List,
                "Proxies (addresses or CIDR ranges) allowed to set that header.",
                "允许设置该请求头的代理（IP 地址或 CIDR 网段）。",
            ),
        ],
    ),
    (
        "Streaming and retries",
        &[
            live(
                "FAKE_STREAMING",
                Bool,
                "Answer stream requests with keep-alive chunks while a normal call runs.",
                "流式请求改为普通调用，等待期间发送保活块（假流式）。",
            ),
            live(
                "FAKE_STREAMING_INTERVAL",
                Number,
                "Seconds between keep-alive chunks.",
                "保活块之间的间隔（秒）。",
            ),
            live(
                "NONSTREAM_KEEPALIVE_ENABLED",
                Bool,
                "Send newlines while a non-stream answer is pending.",
                "非流式回答等待期间持续发送换行符。",
            ),
            live(
                "NONSTREAM_KEEPALIVE_INTERVAL",
                Number,
                "Seconds between those newlines.",
                "这些换行符之间的间隔（秒）。",
            ),
            live(
                "MAX_RETRY_NUM",
                Number,
                "Upstream attempts per request.",
                "每个请求最多尝试上游几次。",
            ),
            live(
                "MAX_EMPTY_RESPONSES",
                Number,
                "Empty answers tolerated per request.",
                "每个请求最多容忍几次空回复。",
            ),
            live(
                "CONCURRENT_REQUESTS",
                Number,
                "Parallel upstream calls per round.",
                "每一轮同时发出的上游调用数。",
            ),
            live(
                "INCREASE_CONCURRENT_ON_FAILURE",
                Number,
                "Calls added to the next round after a failed one.",
                "一轮失败后，下一轮增加的调用数。",
            ),
            live(
                "MAX_CONCURRENT_REQUESTS",
                Number,
                "Most parallel calls in a round.",
                "一轮最多同时发出的调用数。",
            ),
            live(
                "MAX_WAIT_FOR_KEY",
                Number,
                "Seconds a request may wait for a cooling key.",
                "请求最多等待冷却中的密钥多少秒。",
            ),
            live(
                "ERROR_AS_ASSISTANT_MESSAGE",
                Bool,
                "Deliver errors as an assistant message with HTTP 200.",
                "把错误作为一条 AI 回复返回（HTTP 200）。",
            ),
        ],
    ),
    (
        "Key pool",
        &[
            live(
                "API_KEY_DAILY_LIMIT",
                Number,
                "Successful calls per key per model per Pacific day (0 = unlimited).",
                "每个密钥每个模型每个太平洋时间日的成功调用次数上限（0 = 不限）。",
            ),
            live(
                "ALLOW_OVER_DAILY_LIMIT",
                Bool,
                "Use a key over its limit when no other key is left.",
                "没有别的密钥可用时，仍使用已超出上限的密钥。",
            ),
            live(
                "VALIDATE_KEYS_ON_STARTUP",
                Bool,
                "Check every key in the background at startup.",
                "启动时在后台检查所有密钥。",
            ),
            live(
                "KEY_VALIDATION_CONCURRENCY",
                Number,
                "Keys checked at the same time.",
                "同时检查的密钥数。",
            ),
            live(
                "INVALID_KEY_RECHECK_INTERVAL",
                Number,
                "Seconds between re-checks of invalid keys.",
                "重新检查失效密钥的间隔（秒）。",
            ),
        ],
    ),
    (
        "Swipe cache",
        &[
            live(
                "CACHE_EXPIRY_TIME",
                Number,
                "Seconds a spare answer is kept.",
                "备用回答保留多少秒。",
            ),
            live(
                "MAX_CACHE_ENTRIES",
                Number,
                "Spare answers kept at most.",
                "最多保留多少条备用回答。",
            ),
            live(
                "CALCULATE_CACHE_ENTRIES",
                Number,
                "Accepted for compatibility; the key covers the whole request.",
                "仅为兼容而保留；缓存键始终覆盖整个请求。",
            ),
            live(
                "PRECISE_CACHE",
                Bool,
                "Accepted for compatibility; the key covers the whole request.",
                "仅为兼容而保留；缓存键始终覆盖整个请求。",
            ),
        ],
    ),
    (
        "Models and features",
        &[
            live(
                "RANDOM_STRING",
                Bool,
                "Add SillyTavern's disguise strings to the history.",
                "在对话历史中加入给酒馆用的伪装随机字符串。",
            ),
            live(
                "RANDOM_STRING_LENGTH",
                Number,
                "Length of those strings.",
                "这些字符串的长度。",
            ),
            live(
                "SEARCH_MODE",
                Bool,
                "Offer -search models (Google Search grounding).",
                "提供 -search 模型（Google 搜索增强）。",
            ),
            live(
                "SEARCH_PROMPT",
                Text,
                "Instruction added to -search requests.",
                "加到 -search 请求里的提示语。",
            ),
            live(
                "ENABLE_THINKING",
                Bool,
                "Send thinking settings to models that think.",
                "向支持思考的模型发送思考设置。",
            ),
            live(
                "SHOW_THINKING",
                Bool,
                "Return thoughts as reasoning_content.",
                "把思考过程作为 reasoning_content 返回。",
            ),
            live(
                "SAFETY_THRESHOLD",
                Text,
                "OFF, BLOCK_NONE, BLOCK_ONLY_HIGH, BLOCK_MEDIUM_AND_ABOVE or BLOCK_LOW_AND_ABOVE.",
                "OFF、BLOCK_NONE、BLOCK_ONLY_HIGH、BLOCK_MEDIUM_AND_ABOVE 或 BLOCK_LOW_AND_ABOVE。",
            ),
            live(
                "EXTRA_MODELS",
                List,
                "Models added to the list.",
                "额外加入模型列表的模型。",
            ),
            live(
                "MODEL_ALIASES",
                List,
                "Model names agents send, as Gemini models: claude-*=gemini-2.5-pro, gpt-*=gemini-2.5-flash (first match wins).",
                "把智能体发送的模型名映射为 Gemini 模型：claude-*=gemini-2.5-pro、gpt-*=gemini-2.5-flash（先匹配者生效）。",
            ),
            live(
                "WHITELIST_MODELS",
                List,
                "Only these models (empty = all).",
                "只提供这些模型（留空 = 全部）。",
            ),
            live(
                "BLOCKED_MODELS",
                List,
                "Models removed from the list and refused.",
                "从列表中移除并拒绝请求的模型。",
            ),
            live(
                "MODEL_LIST_REFRESH_INTERVAL",
                Number,
                "Seconds between model-list refreshes.",
                "刷新模型列表的间隔（秒）。",
            ),
            live(
                "THOUGHT_SIGNATURE_CACHE_SIZE",
                Number,
                "Tool-call thought signatures remembered.",
                "记住多少个工具调用的思考签名（thought signature）。",
            ),
        ],
    ),
    (
        "Upstream",
        &[
            live(
                "GEMINI_BASE_URL",
                Text,
                "Where AI Studio calls go (Google, or a relay).",
                "AI Studio 调用发往的地址（Google 官方或中转）。",
            ),
            live(
                "PROXY_URL",
                Secret,
                "http:// or socks5:// proxy for the calls to Google.",
                "访问 Google 时使用的 http:// 或 socks5:// 代理。",
            ),
            live(
                "NO_PROXY",
                List,
                "Hosts reached without the proxy.",
                "不走代理、直接访问的主机。",
            ),
            live(
                "UPSTREAM_TIMEOUT",
                Number,
                "Seconds for a non-streaming upstream call.",
                "非流式上游调用的超时（秒）。",
            ),
            live(
                "REQUEST_DEADLINE",
                Number,
                "Seconds all attempts of one request may take together.",
                "一个请求所有尝试加起来最多用多少秒。",
            ),
            live(
                "UPSTREAM_CONNECT_TIMEOUT",
                Number,
                "Seconds to connect upstream.",
                "连接上游的超时（秒）。",
            ),
            live(
                "STREAM_IDLE_TIMEOUT",
                Number,
                "Seconds a real stream may stay silent.",
                "真流式允许上游沉默的最长时间（秒）。",
            ),
            live(
                "MAX_REQUEST_BODY_MB",
                Number,
                "Largest request body.",
                "单个请求体的大小上限。",
            ),
            live(
                "MAX_BODY_BYTES_IN_FLIGHT_MB",
                Number,
                "Memory all request bodies may take at once.",
                "所有请求体同时占用内存的上限。",
            ),
            live(
                "REQUEST_BODY_TIMEOUT",
                Number,
                "Seconds a client may take to send its body.",
                "客户端发送请求体的时限（秒）。",
            ),
            live(
                "MAX_IMAGE_MB",
                Number,
                "Largest image fetched from a URL.",
                "从 URL 下载图片的大小上限。",
            ),
            live(
                "IMAGE_FETCH_TIMEOUT",
                Number,
                "Seconds to fetch an image.",
                "下载图片的超时（秒）。",
            ),
            live(
                "ALLOW_PRIVATE_IMAGE_URLS",
                Bool,
                "Let image URLs reach private addresses.",
                "允许图片 URL 指向内网地址。",
            ),
        ],
    ),
    (
        "Vertex",
        &[
            live(
                "VERTEX_BASE_URL",
                Text,
                "Vertex AI endpoint.",
                "Vertex AI 的接口地址。",
            ),
            live(
                "VERTEX_LOCATION",
                Text,
                "Vertex AI location (global, us-central1, …).",
                "Vertex AI 的区域（global、us-central1 等）。",
            ),
            live(
                "VERTEX_MODELS_URL",
                Text,
                "Optional URL of a Vertex model list ({\"vertex_models\": […], \"vertex_express_models\": […]}), fetched hourly.",
                "可选：Vertex 模型列表的 URL（{\"vertex_models\": […], \"vertex_express_models\": […]}），每小时读取一次。",
            ),
        ],
    ),
    (
        "Dashboard and storage",
        &[
            live(
                "TZ",
                Text,
                "Time zone of every time shown here (an IANA name such as Asia/Shanghai).",
                "面板上所有时间所用的时区（IANA 名称，如 Asia/Shanghai）。",
            ),
            live(
                "DASHBOARD_LANG",
                Text,
                "en or zh for every visitor; empty = each browser's language and its switch.",
                "对所有访问者固定使用 en 或 zh；留空 = 按浏览器语言，页面上可切换。",
            ),
            live(
                "FRAME_ANCESTORS",
                List,
                "Origins that may show the dashboard in a frame (https://huggingface.co for a Space). Empty = none (Hugging Face's in HF mode).",
                "允许在框架（iframe）中显示面板的来源（Space 页面为 https://huggingface.co）。留空 = 不允许（HF 模式下为 Hugging Face）。",
            ),
            live(
                "LOG_RING_SIZE",
                Number,
                "Log records the Log page keeps.",
                "日志页保留的日志条数。",
            ),
            live(
                "STATS_RETENTION_DAYS",
                Number,
                "Days of per-minute statistics kept on disk.",
                "按分钟统计的数据在磁盘上保留的天数。",
            ),
            live(
                "REQUEST_LOG_RETENTION_DAYS",
                Number,
                "Days of request records kept on disk.",
                "请求记录在磁盘上保留的天数。",
            ),
            live(
                "RESPONSES_RETENTION_HOURS",
                Number,
                "Hours a response of /v1/responses (store: true) is kept for previous_response_id and GET. 0 = none is stored.",
                "/v1/responses 的响应（store: true）为 previous_response_id 和 GET 保留的小时数。0 = 不保存。",
            ),
            restart(
                "DASHBOARD_URL",
                Text,
                "Serve the dashboard under /<name>/ instead of /.",
                "把面板放在 /<name>/ 下，而不是 /。",
            ),
            restart(
                "STORAGE_DIR",
                Text,
                "Where the database lives.",
                "数据库所在目录。",
            ),
            restart(
                "ENABLE_STORAGE",
                Bool,
                "Keep state on disk.",
                "把状态保存到磁盘。",
            ),
        ],
    ),
    (
        "Server",
        &[
            restart(
                "HOST",
                Text,
                "Listen address.",
                "监听地址。",
            ),
            restart(
                "PORT",
                Number,
                "Listen port.",
                "监听端口。",
            ),
            restart(
                "SHUTDOWN_TIMEOUT",
                Number,
                "Seconds running answers may take to finish after SIGTERM.",
                "收到 SIGTERM 后，留给进行中回答完成的时间（秒）。",
            ),
            restart(
                "WORKERS",
                Number,
                "Worker threads (0 = one per core).",
                "工作线程数（0 = 每个 CPU 核一个）。",
            ),
            restart(
                "HUGGINGFACE",
                Bool,
                "Hugging Face private-Space mode.",
                "Hugging Face 私有 Space 模式。",
            ),
            restart(
                "SPACE_ID",
                Text,
                "The Space (owner/name), set by Hugging Face.",
                "所在的 Space（owner/name），由 Hugging Face 自动设置。",
            ),
            restart(
                "HF_HUB_URL",
                Text,
                "Hugging Face Hub API base.",
                "Hugging Face Hub API 地址。",
            ),
            restart(
                "HF_JWT_KEYS_URL",
                Text,
                "Where Hugging Face publishes its token key.",
                "Hugging Face 发布其令牌签名公钥的地址。",
            ),
        ],
    ),
];

/// A group's title (one of [`GROUPS`]) in `lang`.
pub fn group_title(title: &'static str, lang: Lang) -> &'static str {
    if lang == Lang::En {
        return title;
    }
    match title {
        "API access" => "API 访问",
        "Streaming and retries" => "流式与重试",
        "Key pool" => "密钥池",
        "Swipe cache" => "Swipe 缓存（重新生成）",
        "Models and features" => "模型与功能",
        "Upstream" => "上游",
        "Vertex" => "Vertex",
        "Dashboard and storage" => "面板与存储",
        "Server" => "服务器",
        other => other,
    }
}

pub fn spec(name: &str) -> Option<&'static SettingSpec> {
    GROUPS.iter().flat_map(|(_, specs)| specs.iter()).find(|spec| spec.name == name)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::settings::{apply_stored, decides_where_secrets_go, validate, SECRET_DESTINATIONS};

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
    fn every_setting_and_group_has_its_chinese() {
        let has_cjk = |text: &str| text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for (title, specs) in GROUPS {
            let zh = group_title(title, Lang::Zh);
            assert!(has_cjk(zh) || *title == "Vertex", "group {title} has no Chinese title");
            assert_eq!(group_title(title, Lang::En), *title);
            for spec in *specs {
                assert!(has_cjk(spec.description_zh), "{}: no Chinese description", spec.name);
                assert!(!has_cjk(spec.description), "{}: Chinese in the English description", spec.name);
                assert!(!spec.description_zh.contains(" / "), "{}: mixed languages", spec.name);
                assert_eq!(spec.description_in(Lang::Zh), spec.description_zh);
            }
        }
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
