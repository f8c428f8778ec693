//! Conversion of an OpenAI Chat Completions request into a Gemini
//! `generateContent` request: messages become turns (leading system messages
//! become the system instruction), content parts become Gemini parts, tool
//! calls and results become function calls and responses, sampling
//! parameters become the generation config, tools and `tool_choice` become
//! function declarations and the tool config, and hajimi's own switches
//! (thinking, search, random-string disguise, safety threshold) are applied.
//! The conversion is pure: remote images are fetched by the caller
//! beforehand (see [`remote_media_urls`]) and randomness comes from the
//! caller's RNG. Bad input gives a [`ConvertError`] naming its location.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;

use rand::distr::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};

use crate::bodyshare::{BodyJson, BodyStr};

use crate::convert::location::At;
use crate::convert::media::{
    gemini_file_reference, has_prefix_ignoring_ascii_case, is_http_url, GEMINI_FILES_API_HOST,
};
use crate::convert::{safety_settings, MODEL_ROLE, USER_ROLE};
use crate::gemini::model::{is_gemini_3, ModelSpec};
use crate::gemini::types::{
    Blob, Content, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig,
};
use crate::openai::types::{ChatRequest, Message};

mod content;
mod schema;
mod thinking;
mod tools;

use content::*;
use schema::*;
use thinking::*;
use tools::*;

/// Everything the conversion needs besides the request itself.
pub struct ConvertOptions<'a> {
    /// The requested model, already parsed.
    pub model: &'a ModelSpec,
    /// `Some(length)` when the random-string disguise is on.
    pub random_string_length: Option<usize>,
    /// `Some` when the model is a search model and the search prompt should
    /// be appended to the last user turn.
    pub search_prompt: Option<&'a str>,
    /// ENABLE_THINKING: when false no `thinkingConfig` is ever sent.
    pub enable_thinking: bool,
    /// SHOW_THINKING: ask Gemini to include thought summaries.
    pub show_thinking: bool,
    /// The configured safety threshold, e.g. `OFF`.
    pub safety_threshold: &'a str,
    /// http(s) image URL → its fetched bytes (base64) and MIME type, filled
    /// by the caller from [`remote_media_urls`].
    pub remote_media: &'a HashMap<String, Blob>,
    /// tool_call_id → the thought signature remembered for that call.
    pub thought_signature_for: &'a dyn Fn(&str) -> Option<String>,
    /// Whether Gemini issued this signature here (`signatures`): others
    /// are replaced by the documented placeholder, never forwarded raw.
    pub known_signature: &'a dyn Fn(&str) -> bool,
}

/// Why a request could not be converted. Always the client's fault (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("{message}")]
    BadRequest {
        /// English, starting with the location, e.g.
        /// `messages[3]: unknown role "bot"`.
        message: String,
        /// The offending request field, e.g. `messages[3].role`.
        param: Option<String>,
    },
}

fn bad_request_with_param(location: impl Display, param: impl Display, detail: impl Display) -> ConvertError {
    ConvertError::BadRequest { message: format!("{location}: {detail}"), param: Some(param.to_string()) }
}

fn bad_request_at(location: impl Display, detail: impl Display) -> ConvertError {
    let location = location.to_string();
    ConvertError::BadRequest { message: format!("{location}: {detail}"), param: Some(location) }
}

/// Converts an OpenAI chat request into a Gemini request. See the module
/// documentation; every rule is applied in the order written below.
pub fn to_gemini(
    req: &ChatRequest,
    opts: &ConvertOptions,
    rng: &mut impl Rng,
) -> Result<GenerateContentRequest, ConvertError> {
    let (system_instruction, first_history_index) = collect_leading_system_instruction(&req.messages, opts)?;
    let mut turns = convert_history(&req.messages, first_history_index, opts)?;
    if turns.is_empty() {
        return Err(bad_request_at("messages", "no user or assistant message"));
    }
    if is_gemini_3(&opts.model.base) {
        add_skip_signature_to_unsigned_first_function_calls(&mut turns);
    }
    if let Some(random_string_length) = opts.random_string_length {
        insert_random_disguise_strings(&mut turns, random_string_length, rng);
    }
    if let Some(search_prompt) = opts.search_prompt {
        append_search_prompt(&mut turns, search_prompt);
    }

    let function_declarations = convert_tools(req.tools.as_deref())?;
    let mut tools = Vec::new();
    let has_function_tools = !function_declarations.is_empty();
    if has_function_tools {
        tools.push(Tool { function_declarations: Some(function_declarations), google_search: None });
    }
    if opts.model.search {
        if has_function_tools {
            log::info!(
                "model {} asks for Google Search, but the request carries function tools; \
                 the search tool is left out",
                opts.model.requested
            );
        } else {
            tools.push(Tool { function_declarations: None, google_search: Some(json!({})) });
        }
    }

    let tool_config = convert_tool_choice(req.tool_choice.as_ref())?;
    let mut generation_config = convert_generation_parameters(req)?;
    generation_config.thinking_config = convert_thinking(req, opts)?;
    let generation_config = (generation_config != GenerationConfig::default()).then_some(generation_config);

    let safety_settings = safety_settings(&opts.model.base, opts.safety_threshold);

    Ok(GenerateContentRequest {
        contents: turns,
        system_instruction,
        tools,
        tool_config,
        safety_settings,
        generation_config,
    })
}

/// The http(s) image URLs of the request, in order of first appearance and
/// without duplicates, that the caller must fetch into
/// [`ConvertOptions::remote_media`] before calling [`to_gemini`]. Gemini
/// Files API URLs are not listed (they are passed by reference). Malformed
/// parts are skipped here; [`to_gemini`] reports them.
pub fn remote_media_urls(req: &ChatRequest) -> Vec<String> {
    let mut seen_urls = HashSet::new();
    let mut urls = Vec::new();
    for message in &req.messages {
        let Some(BodyJson::Array(content_parts)) = &message.content else {
            continue;
        };
        for content_part in content_parts {
            let Some(url) = image_url_of_content_part(content_part) else {
                continue;
            };
            if is_http_url(url) && gemini_file_reference(url).is_none() && seen_urls.insert(url.to_string()) {
                urls.push(url.to_string());
            }
        }
    }
    urls
}

fn image_url_of_content_part(content_part: &BodyJson) -> Option<&str> {
    if content_part.get("type").and_then(BodyJson::as_str) != Some("image_url") {
        return None;
    }
    match content_part.get("image_url")? {
        BodyJson::String(url) => Some(url),
        image_url @ BodyJson::Object(_) => image_url.get("url").and_then(BodyJson::as_str),
        _ => None,
    }
}

fn is_system_role(role: &str) -> bool {
    role.eq_ignore_ascii_case("system") || role.eq_ignore_ascii_case("developer")
}

/// Rule 1: the system and developer messages before the first other message
/// become the system instruction, one text part per message (the text parts
/// of an array content are joined with newlines). Returns the instruction
/// (absent when it has no text) and the index of the first history message.
fn collect_leading_system_instruction(
    messages: &[Message],
    opts: &ConvertOptions,
) -> Result<(Option<Content>, usize), ConvertError> {
    let mut instruction_parts = Vec::new();
    let mut first_history_index = messages.len();
    for (message_index, message) in messages.iter().enumerate() {
        if !is_system_role(&message.role) {
            first_history_index = message_index;
            break;
        }
        let location = At::top("messages", message_index);
        let parts = convert_message_content(message.content.as_ref(), location, opts, false)?;
        let mut texts = Vec::with_capacity(parts.len());
        for part in parts {
            match part.text {
                Some(text) => texts.push(text),
                None => {
                    return Err(bad_request_with_param(
                        location,
                        location.field("content"),
                        "a leading system message may only contain text",
                    ))
                }
            }
        }
        match texts.len() {
            0 => {}
            // One text is kept as it is (a long one may share the body).
            1 => instruction_parts.extend(texts.pop().map(Part::text)),
            _ => instruction_parts.push(Part::text(texts.iter().map(BodyStr::as_str).collect::<Vec<_>>().join("\n"))),
        }
    }
    let system_instruction =
        (!instruction_parts.is_empty()).then_some(Content { role: None, parts: instruction_parts });
    Ok((system_instruction, first_history_index))
}

/// Rules 1–4: converts the history from `first_history_index` on into turns,
/// merging consecutive turns of the same role and dropping empty ones.
fn convert_history(
    messages: &[Message],
    first_history_index: usize,
    opts: &ConvertOptions,
) -> Result<Vec<Content>, ConvertError> {
    let mut turns: Vec<Content> = Vec::new();
    let mut function_name_by_tool_call_id: HashMap<String, String> = HashMap::new();
    for (message_index, message) in messages.iter().enumerate().skip(first_history_index) {
        let location = At::top("messages", message_index);
        // Any case, compared in place (no lowercased copy per message).
        let role = ["system", "developer", "user", "assistant", "tool"]
            .into_iter()
            .find(|known| message.role.eq_ignore_ascii_case(known))
            .unwrap_or_default();
        match role {
            "system" | "developer" | "user" => {
                let parts = convert_message_content(message.content.as_ref(), location, opts, false)?;
                push_turn_merging_same_role(&mut turns, USER_ROLE, parts);
            }
            "assistant" => {
                let tool_calls = message.tool_calls.as_deref().unwrap_or_default();
                let mut parts =
                    convert_message_content(message.content.as_ref(), location, opts, !tool_calls.is_empty())?;
                for (tool_call_index, tool_call) in tool_calls.iter().enumerate() {
                    let tool_call_location = location.item("tool_calls", tool_call_index);
                    let (tool_call_id, part) = convert_tool_call(tool_call, tool_call_location, opts)?;
                    if let (Some(tool_call_id), Some(function_call)) = (tool_call_id, &part.function_call) {
                        function_name_by_tool_call_id.insert(tool_call_id, function_call.name.clone());
                    }
                    parts.push(part);
                }
                push_turn_merging_same_role(&mut turns, MODEL_ROLE, parts);
            }
            "tool" => {
                let part = convert_tool_result(message, location, &function_name_by_tool_call_id)?;
                push_turn_merging_same_role(&mut turns, USER_ROLE, vec![part]);
            }
            _ => {
                return Err(bad_request_with_param(
                    location,
                    location.field("role"),
                    format!("unknown role {:?}", message.role),
                ))
            }
        }
    }
    Ok(turns)
}

/// Appends the parts to the last turn when it has the same role, otherwise
/// starts a new turn; a message without parts adds nothing.
fn push_turn_merging_same_role(turns: &mut Vec<Content>, role: &'static str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last_turn) = turns.last_mut() {
        if last_turn.role.as_deref() == Some(role) {
            last_turn.parts.extend(parts);
            return;
        }
    }
    turns.push(Content { role: Some(Cow::Borrowed(role)), parts });
}

fn random_alphanumeric_string(length: usize, rng: &mut impl Rng) -> String {
    (0..length).map(|_| char::from(rng.sample(Alphanumeric))).collect()
}

enum TextPlacement {
    StartOfTurn,
    EndOfTurn,
}

/// Adds a text part to a user turn. Text never goes before function
/// responses: in a turn that holds any, it is appended after them.
fn add_text_to_user_turn(turn: &mut Content, text: String, placement: TextPlacement) {
    let holds_function_responses = turn.parts.iter().any(|part| part.function_response.is_some());
    match placement {
        TextPlacement::StartOfTurn if !holds_function_responses => {
            turn.parts.insert(0, Part::text(text));
        }
        _ => turn.parts.push(Part::text(text)),
    }
}

fn is_user_turn(turn: Option<&Content>) -> bool {
    turn.is_some_and(|turn| turn.role.as_deref() == Some(USER_ROLE))
}

fn user_turn_with_text(text: String) -> Content {
    Content { role: Some(Cow::Borrowed(USER_ROLE)), parts: vec![Part::text(text)] }
}

/// Rule 5, the random-string disguise. Two random alphanumeric strings of
/// `length` characters are added as user text, one "after the first turn"
/// and one "before the last turn"; nothing is added when there are fewer
/// than two turns. Placement keeps roles alternating:
/// - after the first turn: appended to the first turn if it is a user turn,
///   else put at the start of the second turn (a user turn, since turns
///   alternate), else (defensively) inserted as a user turn of its own;
/// - before the last turn: put at the start of the last turn if it is a user
///   turn, else appended to the turn before it if that is a user turn, else
///   inserted as a user turn of its own.
///
/// Text is never put before function responses (see
/// [`add_text_to_user_turn`]).
fn insert_random_disguise_strings(turns: &mut Vec<Content>, length: usize, rng: &mut impl Rng) {
    if length == 0 || turns.len() < 2 {
        return;
    }
    let string_after_first_turn = random_alphanumeric_string(length, rng);
    let string_before_last_turn = random_alphanumeric_string(length, rng);

    if is_user_turn(turns.first()) {
        add_text_to_user_turn(&mut turns[0], string_after_first_turn, TextPlacement::EndOfTurn);
    } else if is_user_turn(turns.get(1)) {
        add_text_to_user_turn(&mut turns[1], string_after_first_turn, TextPlacement::StartOfTurn);
    } else {
        turns.insert(1, user_turn_with_text(string_after_first_turn));
    }

    let last_index = turns.len() - 1;
    if is_user_turn(turns.get(last_index)) {
        add_text_to_user_turn(&mut turns[last_index], string_before_last_turn, TextPlacement::StartOfTurn);
    } else if last_index > 0 && is_user_turn(turns.get(last_index - 1)) {
        add_text_to_user_turn(&mut turns[last_index - 1], string_before_last_turn, TextPlacement::EndOfTurn);
    } else {
        turns.insert(last_index, user_turn_with_text(string_before_last_turn));
    }
}

/// Rule 6: the search prompt goes at the end of the final user turn, or in a
/// new user turn when the history ends with a model turn.
fn append_search_prompt(turns: &mut Vec<Content>, search_prompt: &str) {
    if search_prompt.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last_turn) if last_turn.role.as_deref() == Some(USER_ROLE) => {
            last_turn.parts.push(Part::text(search_prompt));
        }
        _ => turns.push(user_turn_with_text(search_prompt.to_string())),
    }
}

/// Rule 7: the sampling parameters, each only when the client gave it.
fn convert_generation_parameters(req: &ChatRequest) -> Result<GenerationConfig, ConvertError> {
    let mut generation_config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences: convert_stop(req.stop.as_ref())?,
        candidate_count: req.n,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        ..GenerationConfig::default()
    };
    apply_response_format(req.response_format.as_ref(), &mut generation_config)?;
    Ok(generation_config)
}

fn convert_stop(stop: Option<&Value>) -> Result<Option<Vec<String>>, ConvertError> {
    let not_strings = || bad_request_at("stop", "must be a string or a list of strings");
    match stop {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(stop_sequence)) if stop_sequence.is_empty() => Ok(None),
        Some(Value::String(stop_sequence)) => Ok(Some(vec![stop_sequence.clone()])),
        Some(Value::Array(stop_values)) => {
            let mut stop_sequences = Vec::with_capacity(stop_values.len());
            for stop_value in stop_values {
                let stop_sequence = stop_value.as_str().ok_or_else(not_strings)?;
                if !stop_sequence.is_empty() {
                    stop_sequences.push(stop_sequence.to_string());
                }
            }
            Ok((!stop_sequences.is_empty()).then_some(stop_sequences))
        }
        Some(_) => Err(not_strings()),
    }
}

#[cfg(test)]
mod tests;
