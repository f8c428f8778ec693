//! The model lists clients see — OpenAI's (`GET /v1/models`) and Google's
//! (`GET /v1beta/models`) — and the allow/block rules enforced on every
//! route. The base list comes from the upstream (fetched page by page,
//! cached, refreshed in the background); until it has been fetched, or
//! when it cannot be, a bundled list is served, so the list is never empty
//! and chat never fails because of it.

use parking_lot::RwLock;
use serde_json::{json, Value};

use crate::config::Config;
use crate::gemini::client::{GeminiClient, UpstreamModel};
use crate::gemini::error::UpstreamFailure;
use crate::gemini::model::{supports_thinking, variant_names, ModelSpec};
use crate::keys::KeyPool;

/// Served when the upstream list is unknown.
pub const BUNDLED_MODELS: &[&str] = &[
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-flash-image",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-flash-latest",
    "gemini-flash-lite-latest",
    "gemma-3-27b-it",
];

/// Fixed `created` timestamp of listed models (Gemini gives none).
const MODEL_CREATED: i64 = 1_700_000_000;

/// Embedding models served while the upstream list is unknown.
pub const BUNDLED_EMBEDDING_MODELS: &[&str] = &["gemini-embedding-001", "text-embedding-004"];

/// The upstream list: chat-capable names, and every entry as Google sent it.
#[derive(Debug, Default)]
struct UpstreamList {
    chat_names: Vec<String>,
    entries: Vec<UpstreamModel>,
}

#[derive(Debug, Default)]
pub struct ModelCatalog {
    upstream: RwLock<Option<UpstreamList>>,
}

fn entry_name(entry: &UpstreamModel) -> &str {
    let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
    name.strip_prefix("models/").unwrap_or(name)
}

fn generates_content(entry: &UpstreamModel) -> bool {
    entry
        .get("supportedGenerationMethods")
        .and_then(Value::as_array)
        .is_some_and(|methods| methods.iter().any(|method| method == "generateContent"))
}

/// A Google-shaped entry for a model known only by name.
fn minimal_entry(name: &str, methods: &[&str]) -> Value {
    json!({"name": format!("models/{name}"), "displayName": name, "supportedGenerationMethods": methods})
}

impl ModelCatalog {
    /// Replaces the upstream list with `models` (entries without a name
    /// are dropped; an empty list changes nothing).
    pub fn set_upstream(&self, models: &[UpstreamModel]) {
        let entries: Vec<UpstreamModel> = models.iter().filter(|m| !entry_name(m).is_empty()).cloned().collect();
        let mut chat_names: Vec<String> =
            entries.iter().filter(|m| generates_content(m)).map(|m| entry_name(m).to_owned()).collect();
        chat_names.dedup();
        if !chat_names.is_empty() {
            *self.upstream.write() = Some(UpstreamList { chat_names, entries });
        }
    }

    pub fn has_upstream_list(&self) -> bool {
        self.upstream.read().is_some()
    }

    /// Base models: the upstream's if known, else the bundled list.
    pub fn base_models(&self) -> Vec<String> {
        match &*self.upstream.read() {
            Some(list) => list.chat_names.clone(),
            None => BUNDLED_MODELS.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Whether `requested` names a model of the lists clients see: its base
    /// name (route prefix `[PAY]`/`[EXPRESS]` and suffixes taken off) is a
    /// listed or embedding model, or it is one of `EXTRA_MODELS`. Metrics
    /// label only such names, so clients cannot take the labels.
    pub fn knows(&self, requested: &str, config: &Config) -> bool {
        if config.extra_models.iter().any(|extra| extra == requested) {
            return true;
        }
        let unprefixed = ["[EXPRESS]", "[PAY]"]
            .iter()
            .find_map(|prefix| requested.strip_prefix(prefix))
            .map_or(requested, str::trim_start);
        let base = ModelSpec::base_of(unprefixed, config.search_mode);
        match &*self.upstream.read() {
            Some(list) => list.entries.iter().any(|entry| entry_name(entry) == base),
            None => BUNDLED_MODELS.iter().chain(BUNDLED_EMBEDDING_MODELS).any(|known| *known == base),
        }
    }

    /// Google's model list for native clients: every chat model the OpenAI
    /// list has (variants and `EXTRA_MODELS` included, as copies of their
    /// base model's entry under their own name), then the upstream's other
    /// models (embeddings…), all filtered by the white and black lists.
    pub fn native_models(&self, config: &Config) -> Vec<Value> {
        let upstream = self.upstream.read();
        let entry_of = |base: &str| {
            upstream.as_ref().and_then(|list| list.entries.iter().find(|entry| entry_name(entry) == base)).cloned()
        };
        let mut models = Vec::new();
        for id in self.client_model_ids(config) {
            let base = ModelSpec::parse(&id, config.search_mode).base;
            let entry = match entry_of(&base) {
                Some(mut entry) => {
                    if id != base {
                        let display = entry.get("displayName").and_then(Value::as_str).unwrap_or(&base).to_owned();
                        let suffix = &id[base.len().min(id.len())..];
                        entry.insert(
                            "displayName".into(),
                            Value::from(format!("{display} ({})", suffix.trim_start_matches('-'))),
                        );
                    }
                    entry.insert("name".into(), Value::from(format!("models/{id}")));
                    Value::Object(entry)
                }
                None => minimal_entry(&id, &["generateContent", "countTokens"]),
            };
            models.push(entry);
        }
        match &*upstream {
            Some(list) => models.extend(
                list.entries
                    .iter()
                    .filter(|entry| !generates_content(entry) && is_model_allowed(entry_name(entry), None, config))
                    .map(|entry| Value::Object(entry.clone())),
            ),
            None => models.extend(
                BUNDLED_EMBEDDING_MODELS
                    .iter()
                    .filter(|name| is_model_allowed(name, None, config))
                    .map(|name| minimal_entry(name, &["embedContent", "batchEmbedContents"])),
            ),
        }
        models
    }

    /// One model of [`native_models`](Self::native_models) by name (with or
    /// without `models/`).
    pub fn native_model(&self, name: &str, config: &Config) -> Option<Value> {
        let wanted = format!("models/{}", name.strip_prefix("models/").unwrap_or(name));
        self.native_models(config).into_iter().find(|entry| entry.get("name").and_then(Value::as_str) == Some(&wanted))
    }

    /// The ids `GET /v1/models` lists: base models, their `-search` (when
    /// search mode is on) and thinking variants, `EXTRA_MODELS`, filtered by
    /// the white and black lists.
    pub fn client_model_ids(&self, config: &Config) -> Vec<String> {
        let mut ids = Vec::new();
        for base in self.base_models() {
            ids.push(base.clone());
            if config.search_mode && base.starts_with("gemini") {
                ids.push(format!("{base}-search"));
            }
            if supports_thinking(&base) {
                ids.extend(variant_names(&base));
            }
        }
        ids.extend(config.extra_models.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| {
            let base = ModelSpec::parse(id, config.search_mode).base;
            seen.insert(id.clone()) && is_model_allowed(id, Some(&base), config)
        });
        ids
    }
}

/// The Gemini model a requested name stands for under `MODEL_ALIASES`
/// (`claude-*=gemini-2.5-pro`: `*` matches any run of characters, the
/// first matching pair wins), or `None` when no pair matches. Matching is
/// case-insensitive; the target is used as written.
pub fn resolve_alias<'a>(requested: &str, aliases: &'a [(String, String)]) -> Option<&'a (String, String)> {
    aliases.iter().find(|(pattern, _)| wildcard_match(pattern, requested))
}

/// `*` matches any run (also empty); everything else literally, ASCII
/// case aside.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a requested model passes `WHITELIST_MODELS` / `BLOCKED_MODELS`.
/// Both the requested id and its base name (without suffixes) are checked,
/// so blocking `gemini-2.5-pro` also blocks `gemini-2.5-pro-search`.
pub fn is_model_allowed(requested: &str, base: Option<&str>, config: &Config) -> bool {
    let names = [Some(requested), base];
    let listed = |list: &[String]| names.iter().flatten().any(|name| list.iter().any(|entry| entry == name));
    if listed(&config.blocked_models) {
        return false;
    }
    config.whitelist_models.is_empty() || listed(&config.whitelist_models)
}

/// One model as OpenAI's `GET /v1/models/{id}` shows it.
pub fn openai_model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODEL_CREATED, "owned_by": "google"})
}

/// `{object:"list", data:[…]}` as OpenAI's `GET /v1/models`.
pub fn openai_model_list(ids: &[String]) -> Value {
    let data: Vec<Value> = ids.iter().map(|id| openai_model(id)).collect();
    json!({"object": "list", "data": data})
}

/// Most models one page of Google's list holds (Google's own cap).
pub const MAX_PAGE_SIZE: usize = 1000;

/// One page of Google's `GET /v1beta/models`: `pageSize` models from the
/// offset in `pageToken`. Without `pageSize` every model fits one page
/// (up to the cap): clients that never page — SillyTavern reads only the
/// first page — still see the whole list. `None` for a token this server
/// did not make.
pub fn native_page(models: Vec<Value>, page_size: Option<usize>, page_token: Option<&str>) -> Option<Value> {
    let size = page_size.filter(|size| *size > 0).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE);
    let start = match page_token.filter(|token| !token.is_empty()) {
        Some(token) => token.parse::<usize>().ok().filter(|offset| *offset <= models.len())?,
        None => 0,
    };
    let end = (start + size).min(models.len());
    let total = models.len();
    let page: Vec<Value> = models.into_iter().skip(start).take(end - start).collect();
    let mut body = json!({"models": page});
    if end < total {
        body["nextPageToken"] = Value::from(end.to_string());
    }
    Some(body)
}

/// Fetches the whole upstream list (every page) with some pool key and
/// stores it. Errors leave the previous list (or the bundled one) in place.
pub async fn refresh_from_upstream(
    client: &GeminiClient,
    pool: &KeyPool,
    catalog: &ModelCatalog,
) -> Result<usize, UpstreamFailure> {
    let lease = pool.any_active_key().ok_or_else(|| UpstreamFailure::network("no active key to list models with"))?;
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..50 {
        let page = client.list_models(&lease.key, token.as_deref()).await?;
        all.extend(page.models);
        match page.next_page_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    catalog.set_upstream(&all);
    Ok(all.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, methods: &[&str]) -> UpstreamModel {
        let entry =
            json!({"name": format!("models/{name}"), "supportedGenerationMethods": methods, "inputTokenLimit": 7});
        entry.as_object().unwrap().clone()
    }

    #[test]
    fn bundled_list_until_upstream_is_known_then_filters_and_variants() {
        let catalog = ModelCatalog::default();
        let mut config = Config::for_tests();
        assert!(catalog.client_model_ids(&config).contains(&"gemini-2.5-flash".to_owned()));

        catalog.set_upstream(&[
            model("gemini-2.5-pro", &["generateContent"]),
            model("embedding-001", &["embedContent"]),
            model("gemini-2.0-flash", &["generateContent"]),
        ]);
        config.search_mode = true;
        config.extra_models = vec!["my-tuned-model".into()];
        config.blocked_models = vec!["gemini-2.0-flash".into()];
        let ids = catalog.client_model_ids(&config);
        assert!(ids.contains(&"gemini-2.5-pro".to_owned()));
        assert!(ids.contains(&"gemini-2.5-pro-search".to_owned()));
        assert!(ids.contains(&"gemini-2.5-pro-nothinking".to_owned()));
        assert!(ids.contains(&"gemini-2.5-pro-max".to_owned()));
        assert!(ids.contains(&"my-tuned-model".to_owned()));
        assert!(!ids.iter().any(|id| id.starts_with("embedding")));
        assert!(!ids.iter().any(|id| id.starts_with("gemini-2.0-flash")), "{ids:?}");

        // Google's shape: variants are copies of their base entry.
        let native = catalog.native_models(&config);
        let names: Vec<&str> = native.iter().filter_map(|m| m["name"].as_str()).collect();
        assert!(names.contains(&"models/gemini-2.5-pro-search"), "{names:?}");
        assert!(names.contains(&"models/embedding-001"), "non-chat models are listed too");
        assert!(names.contains(&"models/my-tuned-model"));
        assert!(!names.iter().any(|name| name.contains("2.0-flash")));
        let variant = catalog.native_model("gemini-2.5-pro-max", &config).unwrap();
        assert_eq!(variant["inputTokenLimit"], 7);
        assert_eq!(variant["displayName"], "gemini-2.5-pro (max)");
        assert!(catalog.native_model("models/gemini-2.5-pro", &config).is_some());
        assert!(catalog.native_model("gemini-2.0-flash", &config).is_none());

        config.whitelist_models = vec!["gemini-2.5-pro".into()];
        assert!(is_model_allowed("gemini-2.5-pro-search", Some("gemini-2.5-pro"), &config));
        assert!(!is_model_allowed("gemini-2.5-flash", Some("gemini-2.5-flash"), &config));
    }

    #[test]
    fn native_pages_walk_the_whole_list() {
        let models: Vec<Value> = (0..5).map(|n| json!({"name": format!("models/m{n}")})).collect();
        let everything = native_page(models.clone(), None, None).unwrap();
        assert_eq!(everything["models"].as_array().unwrap().len(), 5);
        assert!(everything.get("nextPageToken").is_none());
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let page = native_page(models.clone(), Some(2), token.as_deref()).unwrap();
            seen.extend(page["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()));
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["models/m0", "models/m1", "models/m2", "models/m3", "models/m4"]);
        assert!(native_page(models.clone(), Some(2), Some("x")).is_none());
        assert!(native_page(models, Some(2), Some("99")).is_none());
    }

    #[test]
    fn aliases_match_with_wildcards_and_the_first_wins() {
        let aliases: Vec<(String, String)> = [
            ("claude-*-haiku*", "gemini-2.5-flash"),
            ("claude-*", "gemini-2.5-pro"),
            ("gpt-*", "gemini-2.5-flash"),
            ("o3", "gemini-2.5-pro"),
        ]
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
        let cases = [
            ("claude-3-5-haiku-20241022", Some("gemini-2.5-flash")),
            ("claude-sonnet-4-5", Some("gemini-2.5-pro")),
            ("Claude-Opus-4", Some("gemini-2.5-pro")),
            ("gpt-5-codex", Some("gemini-2.5-flash")),
            ("o3", Some("gemini-2.5-pro")),
            ("o3-mini", None),
            ("gemini-2.5-flash", None),
        ];
        for (requested, expected) in cases {
            let target = resolve_alias(requested, &aliases).map(|(_, target)| target.as_str());
            assert_eq!(target, expected, "{requested}");
        }
        assert!(wildcard_match("*", "anything") && wildcard_match("a*b*c", "aXbYc") && !wildcard_match("a*b", "ba"));
    }
}
