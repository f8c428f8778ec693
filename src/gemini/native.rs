//! Gemini-native requests (pure): which action a path names, and the one
//! change hajimi makes to a native body — what a model-name suffix asks for
//! (`-search` adds the Google Search tool; `-nothinking`, `-max`,
//! `-thinking-N` set the thinking config). Without a suffix the body is
//! forwarded byte for byte.

use serde_json::{json, Map, Value};

use crate::gemini::model::{is_gemini_3, thinking_budget_range, ModelSpec, ThinkingOverride};

/// The `models/{model}:{action}` actions served through the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "generateContent" => Action::GenerateContent,
            "streamGenerateContent" => Action::StreamGenerateContent,
            "countTokens" => Action::CountTokens,
            "embedContent" => Action::EmbedContent,
            "batchEmbedContents" => Action::BatchEmbedContents,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::GenerateContent => "generateContent",
            Action::StreamGenerateContent => "streamGenerateContent",
            Action::CountTokens => "countTokens",
            Action::EmbedContent => "embedContent",
            Action::BatchEmbedContents => "batchEmbedContents",
        }
    }

    /// The name the key pool keeps a call's health and limits under: the
    /// model, except for token counting, which has its own quota (its
    /// failures must not cool the model's generation).
    pub fn pool_model(self, model: std::rc::Rc<str>) -> std::rc::Rc<str> {
        match self {
            Action::CountTokens => std::rc::Rc::from(format!("{model}:countTokens")),
            _ => model,
        }
    }

    /// Whether the action generates (suffixes apply, answers are hedged,
    /// shared and cached).
    pub fn generates(self) -> bool {
        matches!(self, Action::GenerateContent | Action::StreamGenerateContent)
    }
}

/// `gemini-2.5-flash:generateContent` → (`gemini-2.5-flash`, `generateContent`).
pub fn split_call(segment: &str) -> Option<(&str, &str)> {
    let (model, action) = segment.rsplit_once(':')?;
    (!model.is_empty() && !action.is_empty()).then_some((model, action))
}

/// Whether the requested name carries a suffix that changes the body.
pub fn suffix_changes_body(spec: &ModelSpec) -> bool {
    spec.search || spec.thinking != ThinkingOverride::None
}

/// Applies the model-name suffix to a native `generateContent` body,
/// keeping every other field as sent. Errors name what is wrong with the
/// body.
pub fn apply_suffix(body: &[u8], spec: &ModelSpec) -> Result<Vec<u8>, String> {
    let mut request: Value = serde_json::from_slice(body).map_err(|error| format!("Invalid JSON payload: {error}"))?;
    let Some(fields) = request.as_object_mut() else {
        return Err("Invalid JSON payload: expected an object".to_owned());
    };
    if spec.search {
        add_search_tool(fields)?;
    }
    if let Some(thinking) = suffix_thinking(spec) {
        let config = object_field(fields, "generationConfig")?;
        let thinking_config = object_field(config, "thinkingConfig")?;
        thinking_config.remove("thinkingBudget");
        thinking_config.remove("thinkingLevel");
        thinking_config.extend(thinking);
    }
    serde_json::to_vec(&request).map_err(|error| error.to_string())
}

fn object_field<'a>(fields: &'a mut Map<String, Value>, name: &str) -> Result<&'a mut Map<String, Value>, String> {
    fields.entry(name).or_insert_with(|| json!({})).as_object_mut().ok_or_else(|| format!("{name}: expected an object"))
}

fn add_search_tool(fields: &mut Map<String, Value>) -> Result<(), String> {
    let tools = fields.entry("tools").or_insert_with(|| json!([]));
    let Some(tools) = tools.as_array_mut() else {
        return Err("tools: expected a list".to_owned());
    };
    let has_search = tools.iter().any(|tool| tool.get("googleSearch").is_some() || tool.get("google_search").is_some());
    if !has_search {
        tools.push(json!({"googleSearch": {}}));
    }
    Ok(())
}

/// The thinking fields a suffix asks for, in the model's terms: a level
/// for Gemini 3 (off → `low`, max → `high`), otherwise a budget clamped
/// into the model's range. `None` for no suffix or a model that does not
/// think.
fn suffix_thinking(spec: &ModelSpec) -> Option<Map<String, Value>> {
    let range = thinking_budget_range(&spec.base)?;
    let gemini_3 = is_gemini_3(&spec.base);
    let (name, value) = match spec.thinking {
        ThinkingOverride::None => return None,
        ThinkingOverride::Off if gemini_3 => ("thinkingLevel", json!("low")),
        ThinkingOverride::Max if gemini_3 => ("thinkingLevel", json!("high")),
        ThinkingOverride::Off => ("thinkingBudget", json!(range.smallest_allowed_budget())),
        ThinkingOverride::Max => ("thinkingBudget", json!(range.maximum_budget)),
        ThinkingOverride::Budget(budget) => ("thinkingBudget", json!(range.clamp_requested_budget(budget))),
    };
    Some(Map::from_iter([(name.to_owned(), value)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(model: &str, body: Value) -> Value {
        let spec = ModelSpec::parse(model, true);
        assert!(suffix_changes_body(&spec), "{model}");
        serde_json::from_slice(&apply_suffix(&serde_json::to_vec(&body).unwrap(), &spec).unwrap()).unwrap()
    }

    #[test]
    fn calls_split_at_the_last_colon() {
        assert_eq!(split_call("gemini-2.5-flash:generateContent"), Some(("gemini-2.5-flash", "generateContent")));
        assert_eq!(split_call("gemini-2.5-flash"), None);
        assert_eq!(split_call(":generateContent"), None);
        assert_eq!(Action::parse("streamGenerateContent"), Some(Action::StreamGenerateContent));
        assert_eq!(Action::parse("predict"), None);
    }

    #[test]
    fn suffixes_change_only_what_they_name() {
        let body = json!({"contents": [{"parts": [{"text": "hi"}]}], "futureField": {"x": 1},
                          "generationConfig": {"temperature": 0.3, "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 99}}});
        let off = applied("gemini-2.5-flash-nothinking", body.clone());
        assert_eq!(off["generationConfig"]["thinkingConfig"], json!({"includeThoughts": true, "thinkingBudget": 0}));
        assert_eq!(off["futureField"], json!({"x": 1}));
        assert_eq!(off["generationConfig"]["temperature"], 0.3);
        assert!(off.get("tools").is_none());

        let max = applied("gemini-2.5-pro-max", json!({"contents": []}));
        assert_eq!(max["generationConfig"]["thinkingConfig"]["thinkingBudget"], 32768);
        let level = applied("gemini-3-pro-preview-nothinking", body.clone());
        assert_eq!(
            level["generationConfig"]["thinkingConfig"],
            json!({"includeThoughts": true, "thinkingLevel": "low"})
        );
        let budget = applied("gemini-2.5-pro-thinking-5", json!({}));
        assert_eq!(budget["generationConfig"]["thinkingConfig"]["thinkingBudget"], 128);

        let search = applied("gemini-2.5-flash-search", json!({"tools": [{"functionDeclarations": []}]}));
        assert_eq!(search["tools"], json!([{"functionDeclarations": []}, {"googleSearch": {}}]));
        let again = applied("gemini-2.5-flash-search", json!({"tools": [{"googleSearch": {}}]}));
        assert_eq!(again["tools"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn bad_bodies_are_named() {
        let spec = ModelSpec::parse("gemini-2.5-flash-search", true);
        assert!(apply_suffix(b"[1]", &spec).unwrap_err().contains("expected an object"));
        assert!(apply_suffix(b"{\"tools\": 3}", &spec).unwrap_err().contains("tools"));
        assert!(apply_suffix(b"{", &spec).unwrap_err().contains("Invalid JSON"));
        assert!(!suffix_changes_body(&ModelSpec::parse("gemini-2.5-flash", true)));
    }
}
