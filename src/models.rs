//! The model list clients see (`GET /v1/models`) and the allow/block rules
//! enforced on chat. The base list comes from the upstream (fetched page by
//! page, cached, refreshed in the background); until it has been fetched,
//! or when it cannot be, a bundled list is served, so the list is never
//! empty and chat never fails because of it.

use parking_lot::RwLock;

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

#[derive(Debug, Default)]
pub struct ModelCatalog {
    upstream: RwLock<Option<Vec<String>>>,
}

impl ModelCatalog {
    /// Replaces the upstream list with the chat-capable models of `models`.
    pub fn set_upstream(&self, models: &[UpstreamModel]) {
        let mut names: Vec<String> = models
            .iter()
            .filter(|m| m.supported_generation_methods.iter().any(|method| method == "generateContent"))
            .map(|m| m.name.strip_prefix("models/").unwrap_or(&m.name).to_owned())
            .collect();
        names.dedup();
        if !names.is_empty() {
            *self.upstream.write() = Some(names);
        }
    }

    pub fn has_upstream_list(&self) -> bool {
        self.upstream.read().is_some()
    }

    /// Base models: the upstream's if known, else the bundled list.
    pub fn base_models(&self) -> Vec<String> {
        match &*self.upstream.read() {
            Some(names) => names.clone(),
            None => BUNDLED_MODELS.iter().map(|s| s.to_string()).collect(),
        }
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

/// `{object:"list", data:[…]}` as OpenAI's `GET /v1/models`.
pub fn openai_model_list(ids: &[String]) -> serde_json::Value {
    let data: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": MODEL_CREATED, "owned_by": "google"}))
        .collect();
    serde_json::json!({"object": "list", "data": data})
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
        UpstreamModel {
            name: format!("models/{name}"),
            supported_generation_methods: methods.iter().map(|s| s.to_string()).collect(),
            ..UpstreamModel::default()
        }
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

        config.whitelist_models = vec!["gemini-2.5-pro".into()];
        assert!(is_model_allowed("gemini-2.5-pro-search", Some("gemini-2.5-pro"), &config));
        assert!(!is_model_allowed("gemini-2.5-flash", Some("gemini-2.5-flash"), &config));
    }
}
