//! The Vertex model list: bundled, optionally refreshed from
//! `VERTEX_MODELS_URL` (`{"vertex_models": […], "vertex_express_models":
//! […]}`, the format the original's Vertex list used), plus hajimi's
//! `-search` / `-nothinking` / `-max` variants. Models only Express serves
//! are listed only while an Express key is configured.

use parking_lot::RwLock;
use serde::Deserialize;

use crate::gemini::model::{supports_thinking, variant_names};

/// Served to service accounts (publisher models under a project).
pub const BUNDLED_VERTEX_MODELS: &[&str] = &[
    "gemini-3-pro-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-flash-image",
    "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite-001",
];

/// Served to Express keys.
pub const BUNDLED_EXPRESS_MODELS: &[&str] = &[
    "gemini-3-pro-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash-001",
    "gemini-2.0-flash-lite-001",
];

/// The two lists as the optional URL serves them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ModelLists {
    #[serde(default)]
    pub vertex_models: Vec<String>,
    #[serde(default)]
    pub vertex_express_models: Vec<String>,
}

impl ModelLists {
    fn bundled() -> ModelLists {
        ModelLists {
            vertex_models: BUNDLED_VERTEX_MODELS.iter().map(|s| s.to_string()).collect(),
            vertex_express_models: BUNDLED_EXPRESS_MODELS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The current lists (bundled until a fetch succeeds).
#[derive(Debug, Default)]
pub struct VertexModels {
    fetched: RwLock<Option<ModelLists>>,
}

impl VertexModels {
    pub fn lists(&self) -> ModelLists {
        self.fetched.read().clone().unwrap_or_else(ModelLists::bundled)
    }

    /// Replaces the lists with a fetched body; an unreadable or empty one
    /// changes nothing.
    pub fn set_fetched(&self, body: &[u8]) -> Result<usize, String> {
        let lists: ModelLists = serde_json::from_slice(body).map_err(|error| format!("not a model list: {error}"))?;
        let count = lists.vertex_models.len() + lists.vertex_express_models.len();
        if count == 0 {
            return Err("the list is empty".to_owned());
        }
        *self.fetched.write() = Some(lists);
        Ok(count)
    }

    /// Base model ids clients may ask Vertex for: the service accounts'
    /// models when accounts are configured, the Express models when Express
    /// keys are.
    pub fn base_ids(&self, has_accounts: bool, has_express: bool) -> Vec<String> {
        let lists = self.lists();
        let mut ids = Vec::new();
        if has_accounts {
            ids.extend(lists.vertex_models.iter().cloned());
        }
        if has_express {
            ids.extend(lists.vertex_express_models.iter().cloned());
        }
        if !has_accounts && !has_express {
            // Nothing configured yet: show what Vertex would serve.
            ids.extend(lists.vertex_models.iter().cloned());
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        ids
    }

    /// `base_ids` with the variants (`-search` when search mode is on, the
    /// thinking variants where the model thinks).
    pub fn client_ids(&self, has_accounts: bool, has_express: bool, search_mode: bool) -> Vec<String> {
        let mut ids = Vec::new();
        for base in self.base_ids(has_accounts, has_express) {
            ids.push(base.clone());
            if search_mode && base.starts_with("gemini") {
                ids.push(format!("{base}-search"));
            }
            if supports_thinking(&base) {
                ids.extend(variant_names(&base));
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn express_only_models_need_an_express_key() {
        let models = VertexModels::default();
        models
            .set_fetched(br#"{"vertex_models": ["gemini-2.5-pro"], "vertex_express_models": ["gemini-2.5-pro", "gemini-exp-1"]}"#)
            .unwrap();
        assert_eq!(models.base_ids(true, false), ["gemini-2.5-pro"]);
        assert_eq!(models.base_ids(true, true), ["gemini-2.5-pro", "gemini-exp-1"]);
        assert_eq!(models.base_ids(false, true), ["gemini-2.5-pro", "gemini-exp-1"]);
        let ids = models.client_ids(true, false, true);
        assert!(ids.contains(&"gemini-2.5-pro-search".to_owned()));
        assert!(ids.contains(&"gemini-2.5-pro-max".to_owned()));
        assert!(models.set_fetched(b"{}").is_err());
        assert!(models.set_fetched(b"<html>").is_err());
        assert_eq!(models.base_ids(true, true).len(), 2, "a bad fetch keeps the last good list");
    }

    #[test]
    fn bundled_until_fetched() {
        let models = VertexModels::default();
        assert!(models.base_ids(true, false).contains(&"gemini-2.5-flash".to_owned()));
    }
}
