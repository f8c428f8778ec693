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

use std::collections::{HashMap, HashSet};
use std::fmt::Display;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use rand::distr::Alphanumeric;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::gemini::model::{is_gemini_3, safety_threshold_for, thinking_budget_range, ModelSpec, ThinkingOverride};
use crate::gemini::types::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse,
    GenerateContentRequest, GenerationConfig, Part, SafetySetting, ThinkingConfig, Tool, ToolConfig,
};
use crate::openai::types::{ChatRequest, Message};

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

fn bad_request_with_param(location: &str, param: &str, detail: impl Display) -> ConvertError {
    ConvertError::BadRequest { message: format!("{location}: {detail}"), param: Some(param.to_string()) }
}

fn bad_request_at(location: &str, detail: impl Display) -> ConvertError {
    bad_request_with_param(location, location, detail)
}

const USER_ROLE: &str = "user";
const MODEL_ROLE: &str = "model";

/// Google's documented placeholder for a function call replayed without its
/// real thought signature (Gemini 3 rejects unsigned replayed calls).
const SKIP_THOUGHT_SIGNATURE_VALIDATOR: &str = "skip_thought_signature_validator";

const SAFETY_CATEGORIES: [&str; 5] = [
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

const GEMINI_FILES_API_HOST: &str = "generativelanguage.googleapis.com";

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

    let safety_threshold = safety_threshold_for(&opts.model.base, opts.safety_threshold);
    let safety_settings = SAFETY_CATEGORIES
        .iter()
        .map(|category| SafetySetting { category: (*category).to_string(), threshold: safety_threshold.clone() })
        .collect();

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
        let Some(Value::Array(content_parts)) = &message.content else {
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

fn image_url_of_content_part(content_part: &Value) -> Option<&str> {
    if content_part.get("type").and_then(Value::as_str) != Some("image_url") {
        return None;
    }
    match content_part.get("image_url")? {
        Value::String(url) => Some(url),
        Value::Object(image_url) => image_url.get("url").and_then(Value::as_str),
        _ => None,
    }
}

fn has_prefix_ignoring_ascii_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

fn is_http_url(url: &str) -> bool {
    has_prefix_ignoring_ascii_case(url, "http://") || has_prefix_ignoring_ascii_case(url, "https://")
}

fn message_location(message_index: usize) -> String {
    format!("messages[{message_index}]")
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
        let location = message_location(message_index);
        let parts = convert_message_content(message.content.as_ref(), &location, opts, false)?;
        let mut texts = Vec::with_capacity(parts.len());
        for part in parts {
            match part.text {
                Some(text) => texts.push(text),
                None => {
                    return Err(bad_request_with_param(
                        &location,
                        &format!("{location}.content"),
                        "a leading system message may only contain text",
                    ))
                }
            }
        }
        if !texts.is_empty() {
            instruction_parts.push(Part::text(texts.join("\n")));
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
        let location = message_location(message_index);
        let role = message.role.to_ascii_lowercase();
        match role.as_str() {
            "system" | "developer" | "user" => {
                let parts = convert_message_content(message.content.as_ref(), &location, opts, false)?;
                push_turn_merging_same_role(&mut turns, USER_ROLE, parts);
            }
            "assistant" => {
                let tool_calls = message.tool_calls.as_deref().unwrap_or_default();
                let mut parts =
                    convert_message_content(message.content.as_ref(), &location, opts, !tool_calls.is_empty())?;
                for (tool_call_index, tool_call) in tool_calls.iter().enumerate() {
                    let tool_call_location = format!("{location}.tool_calls[{tool_call_index}]");
                    let (tool_call_id, part) = convert_tool_call(tool_call, &tool_call_location, opts)?;
                    if let (Some(tool_call_id), Some(function_call)) = (tool_call_id, &part.function_call) {
                        function_name_by_tool_call_id.insert(tool_call_id, function_call.name.clone());
                    }
                    parts.push(part);
                }
                push_turn_merging_same_role(&mut turns, MODEL_ROLE, parts);
            }
            "tool" => {
                let part = convert_tool_result(message, &location, &function_name_by_tool_call_id)?;
                push_turn_merging_same_role(&mut turns, USER_ROLE, vec![part]);
            }
            _ => {
                return Err(bad_request_with_param(
                    &location,
                    &format!("{location}.role"),
                    format!("unknown role {:?}", message.role),
                ))
            }
        }
    }
    Ok(turns)
}

/// Appends the parts to the last turn when it has the same role, otherwise
/// starts a new turn; a message without parts adds nothing.
fn push_turn_merging_same_role(turns: &mut Vec<Content>, role: &str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last_turn) = turns.last_mut() {
        if last_turn.role.as_deref() == Some(role) {
            last_turn.parts.extend(parts);
            return;
        }
    }
    turns.push(Content { role: Some(role.to_string()), parts });
}

/// Rule 2: a message's content (a string, null, or an array of parts) as
/// Gemini parts. Empty texts are skipped. Null is accepted only when
/// `null_content_allowed` (an assistant message with tool calls).
fn convert_message_content(
    content: Option<&Value>,
    message_location: &str,
    opts: &ConvertOptions,
    null_content_allowed: bool,
) -> Result<Vec<Part>, ConvertError> {
    let content_location = format!("{message_location}.content");
    match content {
        None | Some(Value::Null) if null_content_allowed => Ok(Vec::new()),
        None | Some(Value::Null) => Err(bad_request_with_param(
            message_location,
            &content_location,
            "content is missing (only an assistant message with tool_calls may omit it)",
        )),
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![Part::text(text.as_str())]),
        Some(Value::Array(content_parts)) => {
            let mut parts = Vec::with_capacity(content_parts.len());
            for (part_index, content_part) in content_parts.iter().enumerate() {
                let part_location = format!("{content_location}[{part_index}]");
                if let Some(part) = convert_content_part(content_part, &part_location, opts)? {
                    parts.push(part);
                }
            }
            Ok(parts)
        }
        Some(_) => Err(bad_request_with_param(
            message_location,
            &content_location,
            "content must be a string, an array of content parts, or null",
        )),
    }
}

/// One OpenAI content part as a Gemini part; `None` for an empty text.
fn convert_content_part(
    content_part: &Value,
    part_location: &str,
    opts: &ConvertOptions,
) -> Result<Option<Part>, ConvertError> {
    let Some(content_part_object) = content_part.as_object() else {
        return Err(bad_request_at(part_location, "a content part must be an object with a \"type\""));
    };
    let Some(part_type) = content_part_object.get("type").and_then(Value::as_str) else {
        return Err(bad_request_at(part_location, "content part has no \"type\""));
    };
    match part_type {
        "text" => match content_part_object.get("text") {
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(Part::text(text.as_str()))),
            _ => Err(bad_request_at(part_location, "a text part needs a string \"text\"")),
        },
        "image_url" => {
            let url = match content_part_object.get("image_url") {
                Some(Value::String(url)) => Some(url.as_str()),
                Some(Value::Object(image_url)) => image_url.get("url").and_then(Value::as_str),
                _ => None,
            };
            let Some(url) = url else {
                return Err(bad_request_at(part_location, "an image_url part needs a string \"image_url.url\""));
            };
            convert_image_url(url, part_location, opts).map(Some)
        }
        "input_audio" => convert_input_audio(content_part_object, part_location).map(Some),
        "file" => convert_file_part(content_part_object, part_location).map(Some),
        other => Err(bad_request_at(part_location, format!("unknown content part type {other:?}"))),
    }
}

fn inline_data_part(mime_type: String, base64_data: String) -> Part {
    Part { inline_data: Some(Blob { mime_type, data: base64_data }), ..Part::default() }
}

fn file_data_part(file_data: FileData) -> Part {
    Part { file_data: Some(file_data), ..Part::default() }
}

fn convert_image_url(url: &str, part_location: &str, opts: &ConvertOptions) -> Result<Part, ConvertError> {
    if has_prefix_ignoring_ascii_case(url, "data:") {
        let (mime_type, base64_data) = decode_data_url(url, part_location)?;
        return Ok(inline_data_part(mime_type, base64_data));
    }
    if let Some(file_data) = gemini_file_reference(url) {
        return Ok(file_data_part(file_data));
    }
    if is_http_url(url) {
        return match opts.remote_media.get(url) {
            Some(blob) => Ok(Part { inline_data: Some(blob.clone()), ..Part::default() }),
            None => Err(bad_request_at(
                part_location,
                format!("could not fetch image {}", crate::media::url_for_messages(url)),
            )),
        };
    }
    Err(bad_request_at(part_location, "unsupported image URL; use a data:, http(s):// or gs:// URL"))
}

/// A `gs://` URL or a Gemini Files API URL, passed to Gemini by reference.
fn gemini_file_reference(url: &str) -> Option<FileData> {
    let is_reference = if has_prefix_ignoring_ascii_case(url, "gs://") {
        true
    } else {
        url::Url::parse(url).is_ok_and(|parsed_url| {
            parsed_url.scheme() == "https"
                && parsed_url.host_str() == Some(GEMINI_FILES_API_HOST)
                && parsed_url.path().contains("/files/")
        })
    };
    is_reference.then(|| FileData {
        mime_type: guess_mime_type_from_file_name(url).map(str::to_string),
        file_uri: url.to_string(),
    })
}

/// Splits `data:<mime>[;params];base64,<data>` into the lower-cased MIME type
/// and the validated base64 data.
fn decode_data_url(url: &str, part_location: &str) -> Result<(String, String), ConvertError> {
    let malformed = || bad_request_at(part_location, "malformed data URL");
    let after_scheme = url.get("data:".len()..).ok_or_else(malformed)?;
    let (header, data) = after_scheme.split_once(',').ok_or_else(malformed)?;
    let mut header_pieces = header.split(';');
    let mime_type = header_pieces.next().unwrap_or_default().trim();
    let is_base64 = header_pieces.any(|piece| piece.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 || !mime_type.contains('/') {
        return Err(malformed());
    }
    let base64_data =
        validated_base64(data).ok_or_else(|| bad_request_at(part_location, "data URL content is not valid base64"))?;
    Ok((mime_type.to_ascii_lowercase(), base64_data))
}

/// The base64 text without whitespace, if it is non-empty and decodes
/// (standard or URL-safe alphabet, padding optional).
fn validated_base64(data: &str) -> Option<String> {
    let compact_data: String = data.chars().filter(|character| !character.is_ascii_whitespace()).collect();
    if compact_data.is_empty() {
        return None;
    }
    let lenient_config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard_engine = GeneralPurpose::new(&alphabet::STANDARD, lenient_config);
    let url_safe_engine = GeneralPurpose::new(&alphabet::URL_SAFE, lenient_config);
    let decodes = standard_engine.decode(compact_data.as_bytes()).is_ok()
        || url_safe_engine.decode(compact_data.as_bytes()).is_ok();
    decodes.then_some(compact_data)
}

/// `{"type":"input_audio","input_audio":{"data","format"}}` → inline
/// `audio/<format>` (a data URL in `data` supplies its own MIME type).
fn convert_input_audio(content_part_object: &Map<String, Value>, part_location: &str) -> Result<Part, ConvertError> {
    let input_audio = content_part_object.get("input_audio");
    let data = input_audio.and_then(|audio| audio.get("data")).and_then(Value::as_str);
    let Some(data) = data else {
        return Err(bad_request_at(part_location, "an input_audio part needs a string \"input_audio.data\""));
    };
    if has_prefix_ignoring_ascii_case(data, "data:") {
        let (mime_type, base64_data) = decode_data_url(data, part_location)?;
        return Ok(inline_data_part(mime_type, base64_data));
    }
    let format = input_audio
        .and_then(|audio| audio.get("format"))
        .and_then(Value::as_str)
        .filter(|format| !format.is_empty() && format.chars().all(|character| character.is_ascii_alphanumeric()));
    let Some(format) = format else {
        return Err(bad_request_at(
            part_location,
            "an input_audio part needs an \"input_audio.format\" such as \"wav\" or \"mp3\"",
        ));
    };
    let base64_data =
        validated_base64(data).ok_or_else(|| bad_request_at(part_location, "input_audio.data is not valid base64"))?;
    Ok(inline_data_part(format!("audio/{}", format.to_ascii_lowercase()), base64_data))
}

/// `{"type":"file","file":{"file_data","filename","file_id"}}` → inline data
/// (MIME from the data URL, else guessed from the file name), or a file
/// reference when only a Gemini file id / URI is given.
fn convert_file_part(content_part_object: &Map<String, Value>, part_location: &str) -> Result<Part, ConvertError> {
    let file = content_part_object.get("file");
    let field = |name: &str| file.and_then(|file| file.get(name)).and_then(Value::as_str);
    let file_name = field("filename");
    if let Some(file_data) = field("file_data") {
        if has_prefix_ignoring_ascii_case(file_data, "data:") {
            let (mime_type, base64_data) = decode_data_url(file_data, part_location)?;
            return Ok(inline_data_part(mime_type, base64_data));
        }
        let base64_data = validated_base64(file_data)
            .ok_or_else(|| bad_request_at(part_location, "file.file_data is not valid base64"))?;
        let mime_type = file_name.and_then(guess_mime_type_from_file_name).unwrap_or("application/octet-stream");
        return Ok(inline_data_part(mime_type.to_string(), base64_data));
    }
    if let Some(file_id) = field("file_id") {
        let file_uri = match file_id.strip_prefix("files/") {
            Some(gemini_file_name) => {
                format!("https://{GEMINI_FILES_API_HOST}/v1beta/files/{gemini_file_name}")
            }
            None => file_id.to_string(),
        };
        return match gemini_file_reference(&file_uri) {
            Some(mut file_data) => {
                if let Some(mime_type) = file_name.and_then(guess_mime_type_from_file_name) {
                    file_data.mime_type = Some(mime_type.to_string());
                }
                Ok(file_data_part(file_data))
            }
            None => Err(bad_request_at(
                part_location,
                "file.file_id must be a Gemini file (files/…, gs://…); send other files inline as file.file_data",
            )),
        };
    }
    Err(bad_request_at(part_location, "a file part needs \"file.file_data\" or \"file.file_id\""))
}

/// A MIME type Gemini understands, guessed from a file name's extension.
fn guess_mime_type_from_file_name(file_name: &str) -> Option<&'static str> {
    let last_path_segment = file_name.rsplit('/').next().unwrap_or(file_name);
    let (_, extension) = last_path_segment.rsplit_once('.')?;
    let mime_type = match extension.to_ascii_lowercase().as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "text/xml",
        "json" => "application/json",
        "rtf" => "text/rtf",
        "js" => "text/javascript",
        "py" => "text/x-python",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "aiff" => "audio/aiff",
        "m4a" => "audio/m4a",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "avi" => "video/avi",
        "webm" => "video/webm",
        "wmv" => "video/wmv",
        "flv" => "video/x-flv",
        "3gp" | "3gpp" => "video/3gpp",
        _ => return None,
    };
    Some(mime_type)
}

/// Rule 3: one assistant tool call as a `functionCall` part, with its
/// thought signature (from `extra_content.google.thought_signature`, else
/// remembered by the caller). Returns the call's id too.
fn convert_tool_call(
    tool_call: &Value,
    tool_call_location: &str,
    opts: &ConvertOptions,
) -> Result<(Option<String>, Part), ConvertError> {
    let Some(tool_call_object) = tool_call.as_object() else {
        return Err(bad_request_at(tool_call_location, "a tool call must be an object"));
    };
    let function_location = format!("{tool_call_location}.function");
    let Some(function) = tool_call_object.get("function").and_then(Value::as_object) else {
        return Err(bad_request_at(&function_location, "missing"));
    };
    let function_name = function.get("name").and_then(Value::as_str).filter(|name| !name.is_empty());
    let Some(function_name) = function_name else {
        return Err(bad_request_at(&format!("{function_location}.name"), "missing"));
    };
    let arguments_location = format!("{function_location}.arguments");
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(arguments_text)) if arguments_text.trim().is_empty() => json!({}),
        Some(Value::String(arguments_text)) => match serde_json::from_str::<Value>(arguments_text) {
            Ok(Value::Object(arguments)) => Value::Object(arguments),
            Ok(Value::Null) => json!({}),
            Ok(_) => {
                return Err(bad_request_at(&arguments_location, "not a JSON object"));
            }
            Err(_) => return Err(bad_request_at(&arguments_location, "not valid JSON")),
        },
        Some(Value::Object(arguments)) => Value::Object(arguments.clone()),
        Some(_) => return Err(bad_request_at(&arguments_location, "must be a JSON-encoded string")),
    };
    let tool_call_id = tool_call_object.get("id").and_then(Value::as_str).map(str::to_string);
    let thought_signature = tool_call_object
        .get("extra_content")
        .and_then(|extra_content| extra_content.get("google"))
        .and_then(|google| google.get("thought_signature"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| tool_call_id.as_deref().and_then(|id| (opts.thought_signature_for)(id)));
    // The OpenAI call id is not forwarded: Gemini matches calls and responses
    // by name and order, and AI Studio and Vertex differ on accepting ids.
    let part = Part {
        thought_signature,
        function_call: Some(FunctionCall { id: None, name: function_name.to_string(), args: arguments }),
        ..Part::default()
    };
    Ok((tool_call_id, part))
}

/// Gemini 3 rejects replayed model turns whose first function call carries
/// no thought signature; for those, Google documents a placeholder value.
fn add_skip_signature_to_unsigned_first_function_calls(turns: &mut [Content]) {
    for turn in turns.iter_mut().filter(|turn| turn.role.as_deref() == Some(MODEL_ROLE)) {
        let first_function_call_part = turn.parts.iter_mut().find(|part| part.function_call.is_some());
        if let Some(part) = first_function_call_part {
            if part.thought_signature.is_none() {
                part.thought_signature = Some(SKIP_THOUGHT_SIGNATURE_VALIDATOR.to_string());
            }
        }
    }
}

/// Rule 4: a `tool` message as a `functionResponse` part. The function name
/// comes from the earlier assistant tool call with the same id, else from the
/// message's `name`.
fn convert_tool_result(
    message: &Message,
    message_location: &str,
    function_name_by_tool_call_id: &HashMap<String, String>,
) -> Result<Part, ConvertError> {
    let tool_call_id = message.tool_call_id.as_deref();
    let function_name = tool_call_id
        .and_then(|id| function_name_by_tool_call_id.get(id))
        .cloned()
        .or_else(|| message.name.clone().filter(|name| !name.is_empty()));
    let Some(function_name) = function_name else {
        let tool_call_id_param = format!("{message_location}.tool_call_id");
        return Err(match tool_call_id {
            Some(id) => bad_request_with_param(
                message_location,
                &tool_call_id_param,
                format!("tool_call_id {id:?} matches no earlier assistant tool call"),
            ),
            None => {
                bad_request_with_param(message_location, &tool_call_id_param, "a tool message needs a tool_call_id")
            }
        });
    };
    let result_text = tool_result_text(message.content.as_ref(), message_location)?;
    let response = match serde_json::from_str::<Value>(&result_text) {
        Ok(Value::Object(result_object)) => Value::Object(result_object),
        _ => json!({ "content": result_text }),
    };
    Ok(Part {
        function_response: Some(FunctionResponse { id: None, name: function_name, response }),
        ..Part::default()
    })
}

fn tool_result_text(content: Option<&Value>, message_location: &str) -> Result<String, ConvertError> {
    let content_location = format!("{message_location}.content");
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(content_parts)) => {
            let mut text = String::new();
            for (part_index, content_part) in content_parts.iter().enumerate() {
                let is_text_part = matches!(content_part.get("type").and_then(Value::as_str), None | Some("text"));
                match content_part.get("text").and_then(Value::as_str) {
                    Some(part_text) if is_text_part => text.push_str(part_text),
                    _ => {
                        return Err(bad_request_at(
                            &format!("{content_location}[{part_index}]"),
                            "a tool result may only contain text parts",
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(bad_request_with_param(
            message_location,
            &content_location,
            "content must be a string or an array of text parts",
        )),
    }
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
    Content { role: Some(USER_ROLE.to_string()), parts: vec![Part::text(text)] }
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

fn apply_response_format(
    response_format: Option<&Value>,
    generation_config: &mut GenerationConfig,
) -> Result<(), ConvertError> {
    let Some(response_format) = response_format.filter(|format| !format.is_null()) else {
        return Ok(());
    };
    let format_type = response_format.get("type").and_then(Value::as_str);
    match format_type {
        Some("text") => {}
        Some("json_object") => {
            generation_config.response_mime_type = Some("application/json".to_string());
        }
        Some("json_schema") => {
            generation_config.response_mime_type = Some("application/json".to_string());
            generation_config.response_json_schema = response_format
                .get("json_schema")
                .and_then(|json_schema| json_schema.get("schema"))
                .map(remove_unsupported_json_schema_keywords);
        }
        _ => {
            return Err(bad_request_with_param(
                "response_format",
                "response_format.type",
                "type must be \"text\", \"json_object\" or \"json_schema\"",
            ))
        }
    }
    Ok(())
}

/// Schema keywords whose values are maps from names to schemas (the names
/// are kept whatever they are).
const SCHEMA_MAP_KEYWORDS: [&str; 5] = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
/// Schema keywords whose values are data, not schemas.
const SCHEMA_DATA_KEYWORDS: [&str; 5] = ["enum", "const", "default", "examples", "example"];

/// Removes `$schema`, `$id` and `strict` from a JSON Schema, recursively,
/// without touching property names or literal data.
fn remove_unsupported_json_schema_keywords(schema: &Value) -> Value {
    match schema {
        Value::Object(schema_object) => {
            let mut cleaned_object = Map::new();
            for (keyword, value) in schema_object {
                if matches!(keyword.as_str(), "$schema" | "$id" | "strict") {
                    continue;
                }
                let cleaned_value = match value {
                    Value::Object(named_schemas) if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str()) => Value::Object(
                        named_schemas
                            .iter()
                            .map(|(name, child)| (name.clone(), remove_unsupported_json_schema_keywords(child)))
                            .collect(),
                    ),
                    _ if SCHEMA_DATA_KEYWORDS.contains(&keyword.as_str()) => value.clone(),
                    _ => remove_unsupported_json_schema_keywords(value),
                };
                cleaned_object.insert(keyword.clone(), cleaned_value);
            }
            Value::Object(cleaned_object)
        }
        Value::Array(items) => Value::Array(items.iter().map(remove_unsupported_json_schema_keywords).collect()),
        other => other.clone(),
    }
}

/// Rule 8: the request's function tools as Gemini function declarations.
fn convert_tools(tools: Option<&[Value]>) -> Result<Vec<FunctionDeclaration>, ConvertError> {
    let mut function_declarations = Vec::new();
    // One budget for all the tools of a request: many tools each expanding
    // `$ref`s must not add up to an unbounded amount of memory.
    let mut budget = SchemaBudget::default();
    for (tool_index, tool) in tools.unwrap_or_default().iter().enumerate() {
        let tool_location = format!("tools[{tool_index}]");
        let Some(tool_object) = tool.as_object() else {
            return Err(bad_request_at(&tool_location, "a tool must be an object"));
        };
        let tool_type = tool_object.get("type").and_then(Value::as_str);
        let is_function_tool = match tool_type {
            Some(tool_type) => tool_type == "function",
            None => tool_object.contains_key("function"),
        };
        if !is_function_tool {
            log::info!(
                "{tool_location}: tool type {:?} is not supported by Gemini and is ignored",
                tool_type.unwrap_or_default()
            );
            continue;
        }
        let function_location = format!("{tool_location}.function");
        let Some(function) = tool_object.get("function").and_then(Value::as_object) else {
            return Err(bad_request_at(&function_location, "missing"));
        };
        let function_name = function.get("name").and_then(Value::as_str).filter(|name| !name.is_empty());
        let Some(function_name) = function_name else {
            return Err(bad_request_at(&format!("{function_location}.name"), "missing"));
        };
        let description = function
            .get("description")
            .and_then(Value::as_str)
            .filter(|description| !description.is_empty())
            .map(str::to_string);
        let parameters =
            function.get("parameters").and_then(|parameters| convert_function_parameters(parameters, &mut budget));
        if budget.exhausted {
            return Err(bad_request_at(
                &format!("{function_location}.parameters"),
                "the tool schemas are too large once their $refs are expanded",
            ));
        }
        function_declarations.push(FunctionDeclaration { name: function_name.to_string(), description, parameters });
    }
    Ok(function_declarations)
}

/// A function's JSON Schema parameters cleaned for Gemini, or `None` when
/// the function takes no parameters (Gemini rejects an object schema with
/// empty `properties`).
fn convert_function_parameters(parameters: &Value, budget: &mut SchemaBudget) -> Option<Value> {
    if !parameters.is_object() {
        return None;
    }
    let mut cleaner = GeminiSchemaCleaner::new(parameters, budget);
    let cleaned_parameters = cleaner.clean(parameters, 0, 0);
    let has_properties = cleaned_parameters
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|properties| !properties.is_empty());
    let is_object_schema = matches!(cleaned_parameters.get("type").and_then(Value::as_str), None | Some("object"));
    if is_object_schema && !has_properties {
        return None;
    }
    Some(cleaned_parameters)
}

/// The keywords of Gemini's OpenAPI-subset `Schema`.
const GEMINI_SCHEMA_KEYWORDS: [&str; 22] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "propertyOrdering",
    "default",
    "example",
];

/// How many `$ref`s may be expanded inside one another (recursive schemas
/// are cut off there).
const MAXIMUM_REFERENCE_EXPANSION_DEPTH: usize = 6;
/// How deep schemas may nest at all.
const MAXIMUM_SCHEMA_NESTING_DEPTH: usize = 48;
/// How many schema nodes the tools of one request may expand to, and how
/// many bytes of keyword values, so that references to large definitions
/// cannot blow up memory.
const MAXIMUM_CLEANED_SCHEMA_NODES: usize = 50_000;
const MAXIMUM_CLEANED_SCHEMA_BYTES: usize = 4 * 1024 * 1024;

/// What is left of a request's schema-expansion allowance.
#[derive(Debug)]
struct SchemaBudget {
    nodes: usize,
    bytes: usize,
    exhausted: bool,
}

impl Default for SchemaBudget {
    fn default() -> Self {
        SchemaBudget { nodes: MAXIMUM_CLEANED_SCHEMA_NODES, bytes: MAXIMUM_CLEANED_SCHEMA_BYTES, exhausted: false }
    }
}

impl SchemaBudget {
    /// Takes one node of `size` bytes; false once the allowance is spent.
    fn take(&mut self, size: usize) -> bool {
        if self.exhausted || self.nodes == 0 || self.bytes < size {
            self.exhausted = true;
            return false;
        }
        self.nodes -= 1;
        self.bytes -= size;
        true
    }
}

/// Bytes a schema node holds itself (keywords and scalar values, not the
/// sub-schemas, which are counted as nodes of their own).
fn shallow_size(node: &Map<String, Value>) -> usize {
    fn scalar_size(value: &Value) -> usize {
        match value {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(scalar_size).sum(),
            Value::Object(_) => 0,
            _ => 8,
        }
    }
    node.iter().map(|(keyword, value)| keyword.len() + scalar_size(value)).sum()
}

/// Rewrites a JSON Schema into Gemini's OpenAPI subset: inlines local
/// `$ref`s (`#/$defs/X`, `#/definitions/X`), merges `allOf`, turns `oneOf`
/// into `anyOf`, type lists and null branches into `nullable`, `const` into
/// a one-value `enum`, and drops every keyword Gemini does not accept.
struct GeminiSchemaCleaner<'schema, 'budget> {
    definitions_by_reference: HashMap<String, &'schema Value>,
    budget: &'budget mut SchemaBudget,
}

/// Stands in for a schema that cannot be expanded (too deep, too large or an
/// unknown reference).
fn opaque_object_schema() -> Value {
    json!({ "type": "object" })
}

impl<'schema, 'budget> GeminiSchemaCleaner<'schema, 'budget> {
    fn new(root_schema: &'schema Value, budget: &'budget mut SchemaBudget) -> Self {
        let mut definitions_by_reference = HashMap::new();
        for definitions_keyword in ["$defs", "definitions"] {
            let Some(definitions) = root_schema.get(definitions_keyword).and_then(Value::as_object) else {
                continue;
            };
            for (definition_name, definition) in definitions {
                let escaped_name = definition_name.replace('~', "~0").replace('/', "~1");
                definitions_by_reference.insert(format!("#/{definitions_keyword}/{escaped_name}"), definition);
            }
        }
        GeminiSchemaCleaner { definitions_by_reference, budget }
    }

    /// The object a `$ref` points to, when it is a known local definition.
    fn resolve_reference(&self, reference: &str) -> Option<&'schema Map<String, Value>> {
        self.definitions_by_reference.get(reference).and_then(|definition| definition.as_object())
    }

    fn clean(&mut self, schema: &Value, reference_depth: usize, nesting_depth: usize) -> Value {
        let Some(schema_object) = schema.as_object() else {
            // Boolean schemas (`true`, `false`) and junk: accept anything.
            return json!({});
        };
        if nesting_depth > MAXIMUM_SCHEMA_NESTING_DEPTH || !self.budget.take(shallow_size(schema_object)) {
            return opaque_object_schema();
        }

        let mut node = schema_object.clone();
        let mut reference_depth = reference_depth;

        if let Some(reference) = node.remove("$ref") {
            let target = reference.as_str().and_then(|reference| self.resolve_reference(reference));
            match target {
                Some(target) if reference_depth < MAXIMUM_REFERENCE_EXPANSION_DEPTH => {
                    // Keywords next to the `$ref` (e.g. a description) win.
                    let mut combined = target.clone();
                    combined.extend(node);
                    return self.clean(&Value::Object(combined), reference_depth + 1, nesting_depth + 1);
                }
                _ => {
                    node.entry("type").or_insert_with(|| Value::String("object".to_string()));
                }
            }
        }

        if let Some(Value::Array(all_of)) = node.remove("allOf") {
            for sub_schema in &all_of {
                let mut sub_schema_object = sub_schema.as_object().cloned().unwrap_or_default();
                if let Some(reference) = sub_schema_object.remove("$ref") {
                    let target = reference.as_str().and_then(|reference| self.resolve_reference(reference));
                    if let Some(target) = target {
                        if reference_depth >= MAXIMUM_REFERENCE_EXPANSION_DEPTH {
                            continue;
                        }
                        reference_depth += 1;
                        let mut combined = target.clone();
                        combined.extend(sub_schema_object);
                        sub_schema_object = combined;
                    }
                }
                merge_all_of_member(&mut node, sub_schema_object);
            }
        }

        if !node.contains_key("anyOf") {
            if let Some(one_of) = node.remove("oneOf") {
                node.insert("anyOf".to_string(), one_of);
            }
        }

        let mut nullable = node.get("nullable").and_then(Value::as_bool) == Some(true);

        match node.get("type").cloned() {
            Some(Value::Array(type_names)) => {
                let non_null_type_names: Vec<Value> =
                    type_names.iter().filter(|type_name| type_name.as_str() != Some("null")).cloned().collect();
                nullable |= non_null_type_names.len() < type_names.len();
                node.remove("type");
                match non_null_type_names.as_slice() {
                    [] => {}
                    [single_type_name] => {
                        node.insert("type".to_string(), single_type_name.clone());
                    }
                    _ if !node.contains_key("anyOf") => {
                        let alternatives =
                            non_null_type_names.into_iter().map(|type_name| json!({ "type": type_name })).collect();
                        node.insert("anyOf".to_string(), Value::Array(alternatives));
                    }
                    _ => {}
                }
            }
            Some(Value::String(type_name)) if type_name == "null" => {
                node.remove("type");
                nullable = true;
            }
            Some(Value::String(_)) | None => {}
            Some(_) => {
                node.remove("type");
            }
        }

        if let Some(any_of) = node.remove("anyOf") {
            let mut alternatives = Vec::new();
            for alternative in any_of.as_array().map(Vec::as_slice).unwrap_or_default() {
                if alternative.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                    continue;
                }
                alternatives.push(self.clean(alternative, reference_depth, nesting_depth + 1));
            }
            let can_flatten = !node.contains_key("type") && !node.contains_key("properties");
            match alternatives.len() {
                0 => {}
                1 if can_flatten => {
                    if let Some(Value::Object(single_alternative)) = alternatives.pop() {
                        for (keyword, value) in single_alternative {
                            if keyword == "nullable" {
                                nullable |= value.as_bool() == Some(true);
                            } else {
                                node.entry(keyword).or_insert(value);
                            }
                        }
                    }
                }
                _ => {
                    node.insert("anyOf".to_string(), Value::Array(alternatives));
                }
            }
        }

        // A non-string `const` cannot be expressed and is dropped.
        if let Some(Value::String(constant_text)) = node.remove("const") {
            if !node.contains_key("enum") {
                node.insert("enum".to_string(), json!([constant_text]));
            }
            node.entry("type").or_insert_with(|| Value::String("string".to_string()));
        }

        if let Some(enum_values) = node.remove("enum") {
            let values = enum_values.as_array().map(Vec::as_slice).unwrap_or_default();
            nullable |= values.iter().any(Value::is_null);
            let non_null_values: Vec<&Value> = values.iter().filter(|value| !value.is_null()).collect();
            if !non_null_values.is_empty() && non_null_values.iter().all(|value| value.is_string()) {
                node.insert("enum".to_string(), Value::Array(non_null_values.into_iter().cloned().collect()));
            }
        }

        let type_name = node.get("type").and_then(Value::as_str).map(str::to_string);
        if let Some(format) = node.get("format").and_then(Value::as_str) {
            let format_is_supported = match type_name.as_deref() {
                Some("string") => matches!(format, "enum" | "date-time"),
                Some("number") | Some("integer") => {
                    matches!(format, "int32" | "int64" | "float" | "double")
                }
                _ => false,
            };
            if !format_is_supported {
                node.remove("format");
            }
        } else {
            node.remove("format");
        }

        match node.remove("properties") {
            Some(Value::Object(properties)) if !properties.is_empty() => {
                let mut cleaned_properties = Map::new();
                for (property_name, property_schema) in &properties {
                    let cleaned_property = self.clean(property_schema, reference_depth, nesting_depth + 1);
                    cleaned_properties.insert(property_name.clone(), cleaned_property);
                }
                node.insert("properties".to_string(), Value::Object(cleaned_properties));
                node.entry("type").or_insert_with(|| Value::String("object".to_string()));
            }
            _ => {}
        }

        match node.remove("items") {
            Some(items @ Value::Object(_)) => {
                let cleaned_items = self.clean(&items, reference_depth, nesting_depth + 1);
                node.insert("items".to_string(), cleaned_items);
                node.entry("type").or_insert_with(|| Value::String("array".to_string()));
            }
            Some(Value::Array(tuple_items)) => {
                if let Some(first_item) = tuple_items.first() {
                    let cleaned_items = self.clean(first_item, reference_depth, nesting_depth + 1);
                    node.insert("items".to_string(), cleaned_items);
                }
            }
            _ => {}
        }

        let property_names: HashSet<String> = node
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default();
        for names_keyword in ["required", "propertyOrdering"] {
            if let Some(names) = node.remove(names_keyword) {
                let known_names: Vec<Value> = names
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter(|name| name.as_str().is_some_and(|name| property_names.contains(name)))
                    .cloned()
                    .collect();
                if !known_names.is_empty() {
                    node.insert(names_keyword.to_string(), Value::Array(known_names));
                }
            }
        }

        node.remove("nullable");
        if nullable {
            node.insert("nullable".to_string(), Value::Bool(true));
        }
        node.retain(|keyword, _| GEMINI_SCHEMA_KEYWORDS.contains(&keyword.as_str()));
        Value::Object(node)
    }
}

/// Merges one `allOf` member into the schema: `properties` are united,
/// `required` lists concatenated, other keywords added when absent.
fn merge_all_of_member(node: &mut Map<String, Value>, member: Map<String, Value>) {
    for (keyword, value) in member {
        match (keyword.as_str(), node.get_mut(&keyword), value) {
            ("properties", Some(Value::Object(properties)), Value::Object(member_properties)) => {
                for (property_name, property_schema) in member_properties {
                    properties.entry(property_name).or_insert(property_schema);
                }
            }
            ("required", Some(Value::Array(required)), Value::Array(member_required)) => {
                for name in member_required {
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                node.insert(keyword, value);
            }
        }
    }
}

/// Rule 8, `tool_choice`: none → NONE, auto → AUTO, required → ANY, a named
/// function → ANY restricted to it.
fn convert_tool_choice(tool_choice: Option<&Value>) -> Result<Option<ToolConfig>, ConvertError> {
    let function_calling_config = |mode: &str, allowed_function_names: Option<Vec<String>>| {
        Some(ToolConfig {
            function_calling_config: FunctionCallingConfig { mode: mode.to_string(), allowed_function_names },
        })
    };
    match tool_choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(choice)) => match choice.as_str() {
            "none" => Ok(function_calling_config("NONE", None)),
            "auto" => Ok(function_calling_config("AUTO", None)),
            "required" => Ok(function_calling_config("ANY", None)),
            other => Err(bad_request_at(
                "tool_choice",
                format!("unknown value {other:?}; use \"none\", \"auto\", \"required\" or a function"),
            )),
        },
        Some(Value::Object(choice)) => {
            let function_name = choice
                .get("function")
                .and_then(|function| function.get("name"))
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty());
            match (choice.get("type").and_then(Value::as_str), function_name) {
                (Some("function"), Some(function_name)) => {
                    Ok(function_calling_config("ANY", Some(vec![function_name.to_string()])))
                }
                _ => Err(bad_request_with_param(
                    "tool_choice",
                    "tool_choice.function.name",
                    "must be {\"type\":\"function\",\"function\":{\"name\":…}}",
                )),
            }
        }
        Some(_) => Err(bad_request_at("tool_choice", "must be a string or a function choice object")),
    }
}

/// What the client asked of thinking, in priority order of its sources.
enum ThinkingRequest {
    Off,
    Max,
    Budget(i64),
    Effort(ReasoningEffort),
}

enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

const LOW_EFFORT_THINKING_BUDGET: i64 = 1024;
const MEDIUM_EFFORT_THINKING_BUDGET: i64 = 8192;

fn parse_reasoning_effort(reasoning_effort: &str) -> Result<ThinkingRequest, ConvertError> {
    let thinking_request = match reasoning_effort.to_ascii_lowercase().as_str() {
        "none" => ThinkingRequest::Off,
        "minimal" => ThinkingRequest::Effort(ReasoningEffort::Minimal),
        "low" => ThinkingRequest::Effort(ReasoningEffort::Low),
        "medium" => ThinkingRequest::Effort(ReasoningEffort::Medium),
        "high" => ThinkingRequest::Effort(ReasoningEffort::High),
        other => {
            return Err(bad_request_at(
                "reasoning_effort",
                format!("unknown value {other:?}; use minimal, low, medium or high"),
            ))
        }
    };
    Ok(thinking_request)
}

/// Rule 9: the thinking config, from (in priority) the model suffix, the
/// request's `thinking_budget`, `enable_thinking: false`, then
/// `reasoning_effort` (`none` counts as off). Gemini 3 gets a
/// `thinkingLevel` for off/max/effort and a clamped budget for explicit
/// budgets; other models get a budget clamped into their range.
fn convert_thinking(req: &ChatRequest, opts: &ConvertOptions) -> Result<Option<ThinkingConfig>, ConvertError> {
    if !opts.enable_thinking {
        return Ok(None);
    }
    let base = opts.model.base.as_str();
    let Some(budget_range) = thinking_budget_range(base) else {
        return Ok(None);
    };
    let thinking_request = match opts.model.thinking {
        ThinkingOverride::Off => Some(ThinkingRequest::Off),
        ThinkingOverride::Max => Some(ThinkingRequest::Max),
        ThinkingOverride::Budget(budget) => Some(ThinkingRequest::Budget(budget)),
        ThinkingOverride::None => match (req.thinking_budget, req.enable_thinking, req.reasoning_effort.as_deref()) {
            (Some(budget), _, _) => Some(ThinkingRequest::Budget(budget)),
            (None, Some(false), _) => Some(ThinkingRequest::Off),
            (None, _, Some(reasoning_effort)) => Some(parse_reasoning_effort(reasoning_effort)?),
            (None, _, None) => None,
        },
    };

    let gemini_3 = is_gemini_3(base);
    let level =
        |level_name: &str| ThinkingConfig { thinking_level: Some(level_name.to_string()), ..ThinkingConfig::default() };
    let budget =
        |thinking_budget: i64| ThinkingConfig { thinking_budget: Some(thinking_budget), ..ThinkingConfig::default() };
    let mut thinking_config = match thinking_request {
        None => ThinkingConfig::default(),
        Some(ThinkingRequest::Budget(requested_budget)) => {
            budget(budget_range.clamp_requested_budget(requested_budget))
        }
        Some(ThinkingRequest::Off | ThinkingRequest::Effort(ReasoningEffort::Minimal)) if gemini_3 => level("low"),
        Some(ThinkingRequest::Effort(ReasoningEffort::Low)) if gemini_3 => level("low"),
        Some(ThinkingRequest::Max | ThinkingRequest::Effort(ReasoningEffort::Medium | ReasoningEffort::High))
            if gemini_3 =>
        {
            level("high")
        }
        Some(ThinkingRequest::Off | ThinkingRequest::Effort(ReasoningEffort::Minimal)) => {
            budget(budget_range.smallest_allowed_budget())
        }
        Some(ThinkingRequest::Effort(ReasoningEffort::Low)) => {
            budget(budget_range.clamp_requested_budget(LOW_EFFORT_THINKING_BUDGET))
        }
        Some(ThinkingRequest::Effort(ReasoningEffort::Medium)) => {
            budget(budget_range.clamp_requested_budget(MEDIUM_EFFORT_THINKING_BUDGET))
        }
        Some(ThinkingRequest::Max | ThinkingRequest::Effort(ReasoningEffort::High)) => {
            budget(budget_range.maximum_budget)
        }
    };
    let thinking_turned_off = thinking_config.thinking_budget == Some(0);
    if opts.show_thinking && !thinking_turned_off {
        thinking_config.include_thoughts = Some(true);
    }
    Ok((thinking_config != ThinkingConfig::default()).then_some(thinking_config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const TEST_RNG_SEED: u64 = 7;
    const PNG_BASE64: &str = "iVBORw0KGgo=";

    struct Settings {
        model: &'static str,
        search_mode: bool,
        random_string_length: Option<usize>,
        search_prompt: Option<&'static str>,
        enable_thinking: bool,
        show_thinking: bool,
        safety_threshold: &'static str,
        remote_media: HashMap<String, Blob>,
        remembered_signatures: HashMap<String, String>,
    }

    fn settings() -> Settings {
        Settings {
            model: "gemini-2.5-flash",
            search_mode: true,
            random_string_length: None,
            search_prompt: None,
            enable_thinking: true,
            show_thinking: false,
            safety_threshold: "OFF",
            remote_media: HashMap::new(),
            remembered_signatures: HashMap::new(),
        }
    }

    fn model(model: &'static str) -> Settings {
        Settings { model, ..settings() }
    }

    fn convert(settings: &Settings, request: Value) -> Result<Value, ConvertError> {
        let chat_request: ChatRequest = serde_json::from_value(request).expect("test request must deserialize");
        let model_spec = ModelSpec::parse(settings.model, settings.search_mode);
        let remembered_signature = |tool_call_id: &str| settings.remembered_signatures.get(tool_call_id).cloned();
        let opts = ConvertOptions {
            model: &model_spec,
            random_string_length: settings.random_string_length,
            search_prompt: settings.search_prompt,
            enable_thinking: settings.enable_thinking,
            show_thinking: settings.show_thinking,
            safety_threshold: settings.safety_threshold,
            remote_media: &settings.remote_media,
            thought_signature_for: &remembered_signature,
        };
        let mut rng = StdRng::seed_from_u64(TEST_RNG_SEED);
        to_gemini(&chat_request, &opts, &mut rng)
            .map(|request| serde_json::to_value(request).expect("request serializes"))
    }

    /// Converts and compares the top-level fields named in `expected`
    /// exactly; an expected `null` means the field must be absent.
    fn check(case_name: &str, settings: Settings, request: Value, expected: Value) {
        let actual = match convert(&settings, request) {
            Ok(actual) => actual,
            Err(error) => panic!("{case_name}: unexpected error {error:?}"),
        };
        let expected_fields = expected.as_object().expect("expected is an object");
        for (field, expected_value) in expected_fields {
            assert_eq!(
                actual.get(field).unwrap_or(&Value::Null),
                expected_value,
                "{case_name}: field {field}\nwhole request: {actual:#}"
            );
        }
    }

    fn check_error(case_name: &str, settings: Settings, request: Value, expected_message: &str, expected_param: &str) {
        let expected =
            ConvertError::BadRequest { message: expected_message.to_string(), param: Some(expected_param.to_string()) };
        match convert(&settings, request) {
            Ok(actual) => panic!("{case_name}: expected an error, got {actual:#}"),
            Err(error) => assert_eq!(error, expected, "{case_name}"),
        }
    }

    fn user_turn(parts: Value) -> Value {
        json!({ "role": "user", "parts": parts })
    }

    fn model_turn(parts: Value) -> Value {
        json!({ "role": "model", "parts": parts })
    }

    #[test]
    fn rule_1_roles_system_instruction_and_merging() {
        let cases = vec![
            (
                "leading system and developer become the system instruction",
                settings(),
                json!({"model": "m", "messages": [
                    {"role": "system", "content": "S1"},
                    {"role": "developer", "content": [{"type": "text", "text": "D1"}, {"type": "text", "text": "D2"}]},
                    {"role": "user", "content": "U1"},
                    {"role": "assistant", "content": "A1"},
                    {"role": "system", "content": "mid system"},
                    {"role": "user", "content": "U2"}
                ]}),
                json!({
                    "systemInstruction": {"parts": [{"text": "S1"}, {"text": "D1\nD2"}]},
                    "contents": [
                        user_turn(json!([{"text": "U1"}])),
                        model_turn(json!([{"text": "A1"}])),
                        user_turn(json!([{"text": "mid system"}, {"text": "U2"}]))
                    ]
                }),
            ),
            (
                "empty turns are dropped and their neighbours merge",
                settings(),
                json!({"model": "m", "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": ""},
                    {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "b"}]},
                    {"role": "assistant", "content": "c"},
                    {"role": "assistant", "content": "d"}
                ]}),
                json!({
                    "systemInstruction": null,
                    "contents": [
                        user_turn(json!([{"text": "a"}, {"text": "b"}])),
                        model_turn(json!([{"text": "c"}, {"text": "d"}]))
                    ]
                }),
            ),
        ];
        for (case_name, settings, request, expected) in cases {
            check(case_name, settings, request, expected);
        }
    }

    #[test]
    fn rule_1_errors() {
        check_error(
            "unknown role",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "bot", "content": "d"}
            ]}),
            "messages[3]: unknown role \"bot\"",
            "messages[3].role",
        );
        check_error(
            "only system messages",
            settings(),
            json!({"model": "m", "messages": [{"role": "system", "content": "S"}]}),
            "messages: no user or assistant message",
            "messages",
        );
        check_error(
            "only empty messages",
            settings(),
            json!({"model": "m", "messages": [{"role": "user", "content": ""}]}),
            "messages: no user or assistant message",
            "messages",
        );
        check_error(
            "null user content",
            settings(),
            json!({"model": "m", "messages": [{"role": "user", "content": null}]}),
            "messages[0]: content is missing (only an assistant message with tool_calls may omit it)",
            "messages[0].content",
        );
        check_error(
            "image in a leading system message",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "system", "content": [{"type": "image_url", "image_url": format!("data:image/png;base64,{PNG_BASE64}")}]},
                {"role": "user", "content": "u"}
            ]}),
            "messages[0]: a leading system message may only contain text",
            "messages[0].content",
        );
    }

    #[test]
    fn rule_2_content_parts() {
        let remote_image = Blob { mime_type: "image/webp".to_string(), data: "UklGRg==".to_string() };
        let with_remote_image = Settings {
            remote_media: HashMap::from([("https://example.com/cat.webp".to_string(), remote_image)]),
            ..settings()
        };
        let cases = vec![(
            "every supported part type",
            with_remote_image,
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "text", "text": ""},
                {"type": "image_url", "image_url": {"url": format!("data:image/PNG;base64,{PNG_BASE64}"), "detail": "high"}},
                {"type": "image_url", "image_url": "data:image/jpeg;base64,/9j/4AAQ\nSkZJRg=="},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                {"type": "image_url", "image_url": {"url": "gs://bucket/photo.jpg"}},
                {"type": "image_url", "image_url": {"url": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "x.bin"}},
                {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "report.PDF"}},
                {"type": "file", "file": {"file_data": "AAAA", "filename": "blob.xyz"}},
                {"type": "file", "file": {"file_id": "files/def456", "filename": "notes.txt"}}
            ]}]}),
            json!({"contents": [user_turn(json!([
                {"text": "look"},
                {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/photo.jpg"}},
                {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                {"inlineData": {"mimeType": "application/octet-stream", "data": "AAAA"}},
                {"fileData": {"mimeType": "text/plain", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/def456"}}
            ]))]}),
        )];
        for (case_name, settings, request, expected) in cases {
            check(case_name, settings, request, expected);
        }
    }

    #[test]
    fn rule_2_content_errors() {
        let request_with_part = |part: Value| {
            json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yes"},
                {"role": "user", "content": [{"type": "text", "text": "see"}, part]}
            ]})
        };
        let cases = vec![
            (
                "data URL without base64 marker",
                json!({"type": "image_url", "image_url": {"url": "data:image/png,abc"}}),
                "messages[2].content[1]: malformed data URL",
            ),
            (
                "data URL without MIME type",
                json!({"type": "image_url", "image_url": {"url": "data:;base64,AAAA"}}),
                "messages[2].content[1]: malformed data URL",
            ),
            (
                "bad base64 in a data URL",
                json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@###"}}),
                "messages[2].content[1]: data URL content is not valid base64",
            ),
            (
                "remote image the caller did not fetch",
                json!({"type": "image_url", "image_url": {"url": "https://example.com/missing.png"}}),
                "messages[2].content[1]: could not fetch image https://example.com/missing.png",
            ),
            (
                "remote image with a signed query: the query never reaches the message",
                json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png?token=secret"}}),
                "messages[2].content[1]: could not fetch image https://example.com/a.png",
            ),
            (
                "unsupported image scheme",
                json!({"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}),
                "messages[2].content[1]: unsupported image URL; use a data:, http(s):// or gs:// URL",
            ),
            (
                "unknown part type",
                json!({"type": "video_url", "video_url": "x"}),
                "messages[2].content[1]: unknown content part type \"video_url\"",
            ),
            (
                "audio with bad base64",
                json!({"type": "input_audio", "input_audio": {"data": "!!", "format": "mp3"}}),
                "messages[2].content[1]: input_audio.data is not valid base64",
            ),
            (
                "file with an OpenAI file id",
                json!({"type": "file", "file": {"file_id": "file-abc"}}),
                "messages[2].content[1]: file.file_id must be a Gemini file (files/…, gs://…); send other files inline as file.file_data",
            ),
        ];
        for (case_name, part, expected_message) in cases {
            check_error(case_name, settings(), request_with_part(part), expected_message, "messages[2].content[1]");
        }
    }

    fn tool_call_history() -> Value {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                 "extra_content": {"google": {"thought_signature": "sig-from-client"}}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}, {"type": "text", "text": " UTC"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_3", "type": "function", "function": {"name": "get_news", "arguments": "{}"}},
                {"id": "call_4", "type": "function", "function": {"name": "get_news", "arguments": "{\"page\":2}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_3", "content": "[1, 2]"},
            {"role": "tool", "tool_call_id": "unknown_id", "name": "get_news", "content": ""}
        ]})
    }

    #[test]
    fn rules_3_and_4_tool_calls_and_results() {
        let expected_contents = |third_call_signature: Value| {
            let mut first_news_call = json!({"functionCall": {"name": "get_news", "args": {}}});
            if !third_call_signature.is_null() {
                first_news_call["thoughtSignature"] = third_call_signature;
            }
            json!([
                user_turn(json!([{"text": "weather?"}])),
                model_turn(json!([
                    {"text": "Checking."},
                    {"thoughtSignature": "sig-from-client", "functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"thoughtSignature": "sig-remembered", "functionCall": {"name": "get_time", "args": {}}}
                ])),
                user_turn(json!([
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": "noon UTC"}}}
                ])),
                model_turn(json!([
                    first_news_call,
                    {"functionCall": {"name": "get_news", "args": {"page": 2}}}
                ])),
                user_turn(json!([
                    {"functionResponse": {"name": "get_news", "response": {"content": "[1, 2]"}}},
                    {"functionResponse": {"name": "get_news", "response": {"content": ""}}}
                ]))
            ])
        };
        let remembered = || HashMap::from([("call_2".to_string(), "sig-remembered".to_string())]);
        let cases = vec![
            (
                "Gemini 2.5: no placeholder signature",
                Settings { remembered_signatures: remembered(), ..settings() },
                json!({"contents": expected_contents(Value::Null)}),
            ),
            (
                "Gemini 3: placeholder only on the first unsigned call of a turn",
                Settings { remembered_signatures: remembered(), ..model("gemini-3-pro-preview") },
                json!({"contents": expected_contents(json!("skip_thought_signature_validator"))}),
            ),
        ];
        for (case_name, settings, expected) in cases {
            check(case_name, settings, tool_call_history(), expected);
        }
    }

    #[test]
    fn rules_3_and_4_errors() {
        check_error(
            "unparseable tool arguments",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}
            ]}),
            "messages[3].tool_calls[0].function.arguments: not valid JSON",
            "messages[3].tool_calls[0].function.arguments",
        );
        check_error(
            "tool arguments that are not an object",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}
            ]}),
            "messages[1].tool_calls[0].function.arguments: not a JSON object",
            "messages[1].tool_calls[0].function.arguments",
        );
        check_error(
            "tool call without a name",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"arguments": "{}"}}]}
            ]}),
            "messages[1].tool_calls[0].function.name: missing",
            "messages[1].tool_calls[0].function.name",
        );
        check_error(
            "tool result with an unknown id and no name",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "y", "content": "r"}
            ]}),
            "messages[2]: tool_call_id \"y\" matches no earlier assistant tool call",
            "messages[2].tool_call_id",
        );
    }

    #[test]
    fn tool_result_without_id_or_name() {
        check_error(
            "tool result without id or name",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"},
                {"role": "tool", "content": "r"}
            ]}),
            "messages[1]: a tool message needs a tool_call_id",
            "messages[1].tool_call_id",
        );
    }

    fn random_strings(length: usize) -> (String, String) {
        let mut rng = StdRng::seed_from_u64(TEST_RNG_SEED);
        let first = random_alphanumeric_string(length, &mut rng);
        let second = random_alphanumeric_string(length, &mut rng);
        (first, second)
    }

    #[test]
    fn rule_5_random_string_disguise() {
        let (first, second) = random_strings(6);
        assert_eq!(first.len(), 6);
        assert!(first.chars().all(|character| character.is_ascii_alphanumeric()));
        assert_ne!(first, second);
        let disguised = |model: &'static str| Settings { random_string_length: Some(6), ..self::model(model) };
        let cases = vec![
            (
                "user, model, user",
                json!([{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]),
                json!([
                    user_turn(json!([{"text": "u1"}, {"text": first}])),
                    model_turn(json!([{"text": "a1"}])),
                    user_turn(json!([{"text": second}, {"text": "u2"}]))
                ]),
            ),
            (
                "a single turn is left alone",
                json!([{"role": "user", "content": "u1"}]),
                json!([user_turn(json!([{"text": "u1"}]))]),
            ),
            (
                "model first",
                json!([{"role": "assistant", "content": "a1"}, {"role": "user", "content": "u1"}]),
                json!([
                    model_turn(json!([{"text": "a1"}])),
                    user_turn(json!([{"text": second}, {"text": first}, {"text": "u1"}]))
                ]),
            ),
            (
                "ending with a model turn",
                json!([{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}]),
                json!([
                    user_turn(json!([{"text": "u1"}, {"text": first}, {"text": second}])),
                    model_turn(json!([{"text": "a1"}]))
                ]),
            ),
            (
                "text never precedes function responses",
                json!([
                    {"role": "user", "content": "u1"},
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c", "content": "ok"}
                ]),
                json!([
                    user_turn(json!([{"text": "u1"}, {"text": first}])),
                    model_turn(json!([{"functionCall": {"name": "f", "args": {}}}])),
                    user_turn(
                        json!([{"functionResponse": {"name": "f", "response": {"content": "ok"}}}, {"text": second}])
                    )
                ]),
            ),
        ];
        for (case_name, messages, expected_contents) in cases {
            check(
                case_name,
                disguised("gemini-2.5-flash"),
                json!({"model": "m", "messages": messages}),
                json!({"contents": expected_contents}),
            );
        }
    }

    #[test]
    fn rule_6_search() {
        let function_tool = json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}});
        let cases = vec![
            (
                "search model gets the search tool and the prompt",
                Settings { search_prompt: Some("(search the web)"), ..model("gemini-2.5-flash-search") },
                json!({"model": "m", "messages": [{"role": "user", "content": "news?"}]}),
                json!({
                    "tools": [{"googleSearch": {}}],
                    "contents": [user_turn(json!([{"text": "news?"}, {"text": "(search the web)"}]))]
                }),
            ),
            (
                "prompt after a final model turn is its own user turn",
                Settings { search_prompt: Some("(search)"), ..model("gemini-2.5-flash-search") },
                json!({"model": "m", "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}),
                json!({"contents": [
                    user_turn(json!([{"text": "u"}])),
                    model_turn(json!([{"text": "a"}])),
                    user_turn(json!([{"text": "(search)"}]))
                ]}),
            ),
            (
                "function tools push the search tool out",
                model("gemini-2.5-flash-search"),
                json!({"model": "m", "messages": [{"role": "user", "content": "u"}], "tools": [function_tool]}),
                json!({"tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}]}),
            ),
            (
                "no search suffix, no search tool",
                model("gemini-2.5-flash"),
                json!({"model": "m", "messages": [{"role": "user", "content": "u"}]}),
                json!({"tools": null}),
            ),
        ];
        for (case_name, settings, request, expected) in cases {
            check(case_name, settings, request, expected);
        }
    }

    fn request_with(fields: Value) -> Value {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "u"}]});
        if let (Some(request_object), Some(field_object)) = (request.as_object_mut(), fields.as_object()) {
            request_object.extend(field_object.clone());
        }
        request
    }

    #[test]
    fn rule_7_generation_parameters() {
        let cases = vec![
            ("nothing given", json!({}), Value::Null),
            (
                "every parameter",
                json!({"temperature": 0.5, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "max_completion_tokens": 200,
                       "stop": ["END", "STOP"], "n": 2, "seed": 42, "presence_penalty": 0.1, "frequency_penalty": 0.2}),
                json!({"temperature": 0.5, "topP": 0.9, "topK": 40, "maxOutputTokens": 200, "stopSequences": ["END", "STOP"],
                       "candidateCount": 2, "seed": 42, "presencePenalty": 0.1, "frequencyPenalty": 0.2}),
            ),
            (
                "max_tokens and a single stop string",
                json!({"max_tokens": 100, "stop": "END"}),
                json!({"maxOutputTokens": 100, "stopSequences": ["END"]}),
            ),
            ("text response format", json!({"response_format": {"type": "text"}}), Value::Null),
            (
                "json object response format",
                json!({"response_format": {"type": "json_object"}}),
                json!({"responseMimeType": "application/json"}),
            ),
            (
                "json schema response format",
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": {
                    "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "type": "object", "strict": true,
                    "properties": {"strict": {"type": "boolean", "$id": "y"}}, "required": ["strict"]
                }}}}),
                json!({"responseMimeType": "application/json", "responseJsonSchema": {
                    "type": "object", "properties": {"strict": {"type": "boolean"}}, "required": ["strict"]
                }}),
            ),
        ];
        for (case_name, fields, expected_generation_config) in cases {
            check(
                case_name,
                settings(),
                request_with(fields),
                json!({ "generationConfig": expected_generation_config }),
            );
        }
        check_error(
            "stop of the wrong type",
            settings(),
            request_with(json!({"stop": 5})),
            "stop: must be a string or a list of strings",
            "stop",
        );
        check_error(
            "stop list with a number",
            settings(),
            request_with(json!({"stop": ["a", 1]})),
            "stop: must be a string or a list of strings",
            "stop",
        );
        check_error(
            "unknown response format",
            settings(),
            request_with(json!({"response_format": {"type": "xml"}})),
            "response_format: type must be \"text\", \"json_object\" or \"json_schema\"",
            "response_format.type",
        );
    }

    #[test]
    fn rule_8_function_declarations() {
        let cases = vec![
            (
                "schema cleaning",
                json!({"type": "function", "function": {"name": "search", "description": "Search things", "strict": true, "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "additionalProperties": false,
                    "$defs": {
                        "Kind": {"type": "string", "enum": ["a", "b"], "description": "kind"},
                        "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}, "label": {"type": "string"}}}
                    },
                    "definitions": {"Old": {"type": "integer", "format": "int32"}},
                    "properties": {
                        "type": {"type": ["string", "null"], "format": "email", "description": "a property called type"},
                        "when": {"type": "string", "format": "date-time"},
                        "kind": {"$ref": "#/$defs/Kind"},
                        "old": {"$ref": "#/definitions/Old", "description": "overrides"},
                        "mode": {"const": "fast"},
                        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": true},
                        "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "choice": {"oneOf": [{"type": "string"}, {"type": "number", "exclusiveMinimum": 0}]},
                        "tree": {"$ref": "#/$defs/Node"},
                        "missing": {"$ref": "#/$defs/Nope"},
                        "merged": {"allOf": [{"$ref": "#/$defs/Node"}, {"properties": {"extra": {"type": "boolean"}}, "required": ["extra", "ghost"]}]}
                    },
                    "required": ["when", "ghost"]
                }}}),
                Some(json!({"name": "search", "description": "Search things", "parameters": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "nullable": true, "description": "a property called type"},
                        "when": {"type": "string", "format": "date-time"},
                        "kind": {"type": "string", "enum": ["a", "b"], "description": "kind"},
                        "old": {"type": "integer", "format": "int32", "description": "overrides"},
                        "mode": {"type": "string", "enum": ["fast"]},
                        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                        "either": {"type": "string", "nullable": true},
                        "choice": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                        "tree": nested_tree(6),
                        "missing": {"type": "object"},
                        "merged": {"type": "object", "properties": {
                            "child": nested_tree(5),
                            "label": {"type": "string"},
                            "extra": {"type": "boolean"}
                        }, "required": ["extra"]}
                    },
                    "required": ["when"]
                }})),
            ),
            ("no parameters", json!({"type": "function", "function": {"name": "ping"}}), Some(json!({"name": "ping"}))),
            (
                "empty object parameters",
                json!({"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}),
                Some(json!({"name": "ping"})),
            ),
            ("non-function tools are ignored", json!({"type": "code_interpreter"}), None),
        ];
        for (case_name, tool, expected_declaration) in cases {
            let expected_tools = match expected_declaration {
                Some(declaration) => json!([{ "functionDeclarations": [declaration] }]),
                None => Value::Null,
            };
            check(case_name, settings(), request_with(json!({ "tools": [tool] })), json!({ "tools": expected_tools }));
        }
        check_error(
            "function without a name",
            settings(),
            request_with(
                json!({"tools": [{"type": "function", "function": {"name": "ok"}}, {"type": "function", "function": {"description": "d"}}]}),
            ),
            "tools[1].function.name: missing",
            "tools[1].function.name",
        );
    }

    #[test]
    fn rule_8_schema_expansion_is_bounded() {
        let mut definitions = Map::new();
        for level in 0..8 {
            let properties: Map<String, Value> = (0..10)
                .map(|index| (format!("p{index}"), json!({ "$ref": format!("#/$defs/Level{}", level + 1) })))
                .collect();
            definitions.insert(format!("Level{level}"), json!({"type": "object", "properties": properties}));
        }
        let parameters =
            json!({"$defs": definitions, "type": "object", "properties": {"root": {"$ref": "#/$defs/Level0"}}});
        let cleaned = convert_function_parameters(&parameters, &mut SchemaBudget::default()).unwrap_or_default();
        let cleaned_size = cleaned.to_string().len();
        assert!(cleaned_size > 1000 && cleaned_size < 2_000_000, "cleaned size {cleaned_size}");
    }

    #[test]
    fn refs_to_large_definitions_cannot_amplify_memory() {
        let mut properties = Map::new();
        for index in 0..6 {
            properties.insert(format!("p{index}"), json!({"$ref": "#/$defs/A"}));
        }
        let parameters = json!({
            "$defs": {"A": {"type": "object", "description": "x".repeat(10_000), "properties": properties}},
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/A"}}
        });
        let tools: Vec<Value> = (0..50)
            .map(|n| json!({"type": "function", "function": {"name": format!("f{n}"), "parameters": parameters}}))
            .collect();
        match convert_tools(Some(&tools)) {
            Err(ConvertError::BadRequest { message, .. }) => assert!(message.contains("too large"), "{message}"),
            Ok(declarations) => {
                let size: usize =
                    declarations.iter().map(|d| serde_json::to_string(&d.parameters).unwrap().len()).sum();
                assert!(size <= MAXIMUM_CLEANED_SCHEMA_BYTES * 2, "expanded to {size} bytes");
            }
        }
    }

    /// The recursive `Node` definition expanded `depth` more times before
    /// the cut-off stands in for it.
    fn nested_tree(depth: usize) -> Value {
        if depth == 0 {
            return json!({"type": "object"});
        }
        json!({"type": "object", "properties": {"child": nested_tree(depth - 1), "label": {"type": "string"}}})
    }

    #[test]
    fn rule_8_tool_choice() {
        let cases = vec![
            ("absent", Value::Null, Value::Null),
            ("none", json!("none"), json!({"functionCallingConfig": {"mode": "NONE"}})),
            ("auto", json!("auto"), json!({"functionCallingConfig": {"mode": "AUTO"}})),
            ("required", json!("required"), json!({"functionCallingConfig": {"mode": "ANY"}})),
            (
                "named function",
                json!({"type": "function", "function": {"name": "f"}}),
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}),
            ),
        ];
        for (case_name, tool_choice, expected_tool_config) in cases {
            check(
                case_name,
                settings(),
                request_with(json!({ "tool_choice": tool_choice })),
                json!({ "toolConfig": expected_tool_config }),
            );
        }
        check_error(
            "unknown tool choice",
            settings(),
            request_with(json!({"tool_choice": "sometimes"})),
            "tool_choice: unknown value \"sometimes\"; use \"none\", \"auto\", \"required\" or a function",
            "tool_choice",
        );
    }

    #[test]
    fn rule_9_thinking() {
        let showing = |model_name: &'static str| Settings { show_thinking: true, ..model(model_name) };
        let cases = vec![
            (
                "thinking disabled in config",
                Settings { enable_thinking: false, ..model("gemini-2.5-pro-max") },
                json!({"reasoning_effort": "high"}),
                Value::Null,
            ),
            ("model without thinking", model("gemini-2.0-flash"), json!({"thinking_budget": 100}), Value::Null),
            ("nothing asked", model("gemini-2.5-flash"), json!({}), Value::Null),
            (
                "nothing asked, showing thoughts",
                showing("gemini-2.5-flash"),
                json!({}),
                json!({"includeThoughts": true}),
            ),
            ("-nothinking on flash", showing("gemini-2.5-flash-nothinking"), json!({}), json!({"thinkingBudget": 0})),
            (
                "-nothinking on pro",
                showing("gemini-2.5-pro-nothinking"),
                json!({}),
                json!({"thinkingBudget": 128, "includeThoughts": true}),
            ),
            ("-max on pro", model("gemini-2.5-pro-max"), json!({}), json!({"thinkingBudget": 32768})),
            ("-max on flash-lite", model("gemini-2.5-flash-lite-max"), json!({}), json!({"thinkingBudget": 24576})),
            (
                "suffix beats request",
                model("gemini-2.5-flash-thinking-99999"),
                json!({"thinking_budget": 5}),
                json!({"thinkingBudget": 24576}),
            ),
            (
                "suffix budget on flash-lite",
                model("gemini-2.5-flash-lite-thinking-100"),
                json!({}),
                json!({"thinkingBudget": 512}),
            ),
            (
                "request budget",
                model("gemini-2.5-flash"),
                json!({"thinking_budget": 2000, "reasoning_effort": "high"}),
                json!({"thinkingBudget": 2000}),
            ),
            ("dynamic budget", model("gemini-2.5-pro"), json!({"thinking_budget": -1}), json!({"thinkingBudget": -1})),
            (
                "enable_thinking false",
                model("gemini-2.5-flash"),
                json!({"enable_thinking": false, "reasoning_effort": "high"}),
                json!({"thinkingBudget": 0}),
            ),
            (
                "effort minimal on flash",
                model("gemini-2.5-flash"),
                json!({"reasoning_effort": "minimal"}),
                json!({"thinkingBudget": 0}),
            ),
            (
                "effort minimal on pro",
                model("gemini-2.5-pro"),
                json!({"reasoning_effort": "minimal"}),
                json!({"thinkingBudget": 128}),
            ),
            (
                "effort low",
                model("gemini-2.5-flash"),
                json!({"reasoning_effort": "low"}),
                json!({"thinkingBudget": 1024}),
            ),
            (
                "effort medium",
                showing("gemini-2.5-flash"),
                json!({"reasoning_effort": "medium"}),
                json!({"thinkingBudget": 8192, "includeThoughts": true}),
            ),
            (
                "effort high on pro",
                model("gemini-2.5-pro"),
                json!({"reasoning_effort": "high"}),
                json!({"thinkingBudget": 32768}),
            ),
            (
                "Gemini 3 -nothinking",
                showing("gemini-3-pro-preview-nothinking"),
                json!({}),
                json!({"thinkingLevel": "low", "includeThoughts": true}),
            ),
            ("Gemini 3 -max", model("gemini-3-pro-preview-max"), json!({}), json!({"thinkingLevel": "high"})),
            (
                "Gemini 3 effort minimal",
                model("gemini-3-pro-preview"),
                json!({"reasoning_effort": "minimal"}),
                json!({"thinkingLevel": "low"}),
            ),
            (
                "Gemini 3 effort medium",
                model("gemini-3-pro-preview"),
                json!({"reasoning_effort": "medium"}),
                json!({"thinkingLevel": "high"}),
            ),
            (
                "Gemini 3 explicit budget",
                model("gemini-3-pro-preview"),
                json!({"thinking_budget": 50}),
                json!({"thinkingBudget": 128}),
            ),
        ];
        for (case_name, settings, fields, expected_thinking_config) in cases {
            let expected_generation_config = if expected_thinking_config.is_null() {
                Value::Null
            } else {
                json!({ "thinkingConfig": expected_thinking_config })
            };
            check(case_name, settings, request_with(fields), json!({ "generationConfig": expected_generation_config }));
        }
        check_error(
            "unknown reasoning effort",
            model("gemini-2.5-flash"),
            request_with(json!({"reasoning_effort": "extreme"})),
            "reasoning_effort: unknown value \"extreme\"; use minimal, low, medium or high",
            "reasoning_effort",
        );
    }

    #[test]
    fn rule_10_safety_settings() {
        let all_categories = |threshold: &str| {
            Value::Array(
                SAFETY_CATEGORIES
                    .iter()
                    .map(|category| json!({"category": category, "threshold": threshold}))
                    .collect(),
            )
        };
        let cases = vec![
            ("modern model keeps OFF", model("gemini-2.5-flash"), all_categories("OFF")),
            ("old model gets BLOCK_NONE", model("gemini-1.5-flash"), all_categories("BLOCK_NONE")),
            (
                "other thresholds pass through",
                Settings { safety_threshold: "BLOCK_ONLY_HIGH", ..model("gemma-3-27b-it") },
                all_categories("BLOCK_ONLY_HIGH"),
            ),
        ];
        for (case_name, settings, expected_safety_settings) in cases {
            check(case_name, settings, request_with(json!({})), json!({ "safetySettings": expected_safety_settings }));
        }
        assert_eq!(
            json!(SAFETY_CATEGORIES),
            json!([
                "HARM_CATEGORY_HARASSMENT",
                "HARM_CATEGORY_HATE_SPEECH",
                "HARM_CATEGORY_SEXUALLY_EXPLICIT",
                "HARM_CATEGORY_DANGEROUS_CONTENT",
                "HARM_CATEGORY_CIVIC_INTEGRITY"
            ])
        );
    }

    #[test]
    fn remote_media_urls_are_listed_once_in_order() {
        let request: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
                {"type": "image_url", "image_url": "http://example.com/a.png"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG_BASE64}")}},
                {"type": "image_url", "image_url": {"url": "https://generativelanguage.googleapis.com/v1beta/files/x"}},
                {"type": "text", "text": "https://example.com/not-an-image.png"}
            ]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
                {"type": "image_url", "image_url": {"url": "gs://bucket/c.png"}},
                {"type": "image_url"}
            ]}
        ]}))
        .expect("test request must deserialize");
        assert_eq!(
            remote_media_urls(&request),
            vec!["https://example.com/b.png".to_string(), "http://example.com/a.png".to_string()]
        );
    }
}
