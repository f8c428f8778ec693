//! What every front door's conversion shares below it (OpenAI Chat
//! Completions, Anthropic Messages, OpenAI Responses): content as Gemini
//! parts ([`media`]), JSON Schema cleaning ([`schema`]), thinking
//! budgets and levels ([`thinking`]), the safety settings, and thought
//! signatures. Pure: no I/O, no clock.

pub mod answer;
pub mod location;
pub mod media;
pub mod schema;
pub mod stream;
pub mod thinking;

use crate::gemini::model::safety_threshold_for;
use crate::gemini::types::{Content, SafetySetting};

pub use crate::gemini::types::{MODEL_ROLE, USER_ROLE};

/// Google's documented placeholder for a function call replayed without its
/// real thought signature (Gemini 3 rejects unsigned replayed calls).
pub const SKIP_THOUGHT_SIGNATURE_VALIDATOR: &str = "skip_thought_signature_validator";

pub const SAFETY_CATEGORIES: [&str; 5] = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

/// Every category at the configured threshold (`SAFETY_THRESHOLD`, as the
/// model accepts it).
pub fn safety_settings(base_model: &str, configured_threshold: &str) -> Vec<SafetySetting> {
    let threshold = safety_threshold_for(base_model, configured_threshold);
    SAFETY_CATEGORIES
        .iter()
        .map(|category| SafetySetting { category: std::borrow::Cow::Borrowed(category), threshold: threshold.clone() })
        .collect()
}

/// Gemini 3 rejects replayed model turns whose first function call carries
/// no thought signature; for those, Google documents a placeholder value.
pub fn add_skip_signature_to_unsigned_first_function_calls(turns: &mut [Content]) {
    for turn in turns.iter_mut().filter(|turn| turn.role.as_deref() == Some(MODEL_ROLE)) {
        let first_function_call_part = turn.parts.iter_mut().find(|part| part.function_call.is_some());
        if let Some(part) = first_function_call_part {
            if part.thought_signature.is_none() {
                part.thought_signature = Some(SKIP_THOUGHT_SIGNATURE_VALIDATOR.to_string());
            }
        }
    }
}

/// Whether a refusal from Google is about thought signatures (a replayed
/// turn without one, or with one it does not accept: another model's, a
/// corrupted one, one from another project).
pub fn is_signature_refusal(status: u16, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    status == 400 && (message.contains("thought_signature") || message.contains("thought signature"))
}

/// A `generateContent` body with every thought signature of the replayed
/// model turns replaced by [`SKIP_THOUGHT_SIGNATURE_VALIDATOR`] (and one
/// added to each turn's first function call without any): what a follow-up
/// is retried with once Google refused its signatures. Fields this server
/// does not model are kept as they are. `None` when the body has no model
/// turn to change (a retry would be refused again).
pub fn with_skip_signatures(body: &[u8]) -> Option<Vec<u8>> {
    let mut request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    let contents = request.get_mut("contents")?.as_array_mut()?;
    for turn in contents.iter_mut().filter(|turn| turn["role"] == MODEL_ROLE) {
        let Some(parts) = turn.get_mut("parts").and_then(serde_json::Value::as_array_mut) else { continue };
        let mut first_call_seen = false;
        for part in parts.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            let first_call = part.contains_key("functionCall") && !std::mem::replace(&mut first_call_seen, true);
            let signed = part.get("thoughtSignature").and_then(serde_json::Value::as_str);
            if (signed.is_some() || first_call) && signed != Some(SKIP_THOUGHT_SIGNATURE_VALIDATOR) {
                part.insert("thoughtSignature".into(), SKIP_THOUGHT_SIGNATURE_VALIDATOR.into());
                changed = true;
            }
        }
    }
    changed.then(|| serde_json::to_vec(&request).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_signatures_become_the_sentinel_and_nothing_else_changes() {
        let body = json!({
            "contents": [
                {"role": "user", "parts": [{"text": "hi", "thoughtSignature": "user-side"}]},
                {"role": "model", "parts": [
                    {"text": "thinking", "thought": true, "thoughtSignature": "real-but-refused"},
                    {"functionCall": {"name": "a", "args": {}}},
                    {"functionCall": {"name": "b", "args": {}}}
                ]},
                {"role": "model", "parts": [{"functionCall": {"name": "c", "args": {}}, "thoughtSignature": "foreign"}]}
            ],
            "unknownField": {"kept": true}
        });
        let out: serde_json::Value =
            serde_json::from_slice(&with_skip_signatures(&serde_json::to_vec(&body).unwrap()).unwrap()).unwrap();
        let sentinel = SKIP_THOUGHT_SIGNATURE_VALIDATOR;
        assert_eq!(out["contents"][0]["parts"][0]["thoughtSignature"], "user-side");
        assert_eq!(out["contents"][1]["parts"][0]["thoughtSignature"], sentinel);
        assert_eq!(out["contents"][1]["parts"][1]["thoughtSignature"], sentinel);
        // Only the first call of a parallel set carries one.
        assert!(out["contents"][1]["parts"][2].get("thoughtSignature").is_none());
        assert_eq!(out["contents"][2]["parts"][0]["thoughtSignature"], sentinel);
        assert_eq!(out["unknownField"], json!({"kept": true}));
        // Already the sentinel everywhere, or no model turn: nothing to retry with.
        assert!(with_skip_signatures(&serde_json::to_vec(&out).unwrap()).is_none());
        assert!(with_skip_signatures(br#"{"contents":[{"role":"user","parts":[{"text":"x"}]}]}"#).is_none());
        assert!(with_skip_signatures(b"not json").is_none());
    }

    #[test]
    fn signature_refusals_are_told_from_other_client_errors() {
        assert!(is_signature_refusal(400, "Function call is missing a thought_signature in functionCall parts."));
        assert!(is_signature_refusal(400, "Corrupted thought signature."));
        assert!(!is_signature_refusal(400, "Invalid JSON payload received."));
        assert!(!is_signature_refusal(429, "thought_signature"));
    }
}
