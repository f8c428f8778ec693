//! What every front door's conversion shares below it (OpenAI Chat
//! Completions, Anthropic Messages, OpenAI Responses): content as Gemini
//! parts ([`media`]), JSON Schema cleaning ([`schema`]), thinking
//! budgets and levels ([`thinking`]), the safety settings, and thought
//! signatures. Pure: no I/O, no clock.

pub mod answer;
pub mod media;
pub mod schema;
pub mod stream;
pub mod thinking;

use crate::gemini::model::safety_threshold_for;
use crate::gemini::types::{Content, SafetySetting};

pub const USER_ROLE: &str = "user";
pub const MODEL_ROLE: &str = "model";

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
        .map(|category| SafetySetting { category: (*category).to_string(), threshold: threshold.clone() })
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
