//! A Responses API request as a Gemini `generateContent` request.
//!
//! Rules, in order:
//! 1. `instructions`, then the system and developer messages before the
//!    first other item, become the system instruction (text only). Later
//!    system and developer messages are user text.
//! 2. Items become turns: user messages and `function_call_output`s are
//!    user turns (the output as a `functionResponse` named after its call),
//!    assistant messages and `function_call`s model turns; consecutive turns
//!    of one role merge. Content parts: `input_text`/`output_text`/`refusal`
//!    as text, `input_image` (data URL, fetched http(s) URL, Gemini file
//!    URI) and `input_file` (`file_data` base64 or data URL, `file_url`) as
//!    inline data or file references; OpenAI file ids are refused.
//! 3. A `reasoning` item's `encrypted_content` is a thought signature: it
//!    goes back on the function call that follows it in the same model turn,
//!    else on the model part before it (a text answer's signature), else on
//!    the next model part. A signature Gemini did not issue here becomes
//!    [`SKIP_THOUGHT_SIGNATURE_VALIDATOR`]; a call with none gets the one
//!    remembered for its `call_id`. On Gemini 3 the first call of every
//!    model turn carries one (the placeholder when none is known).
//! 4. Function tools become declarations (parameters cleaned by
//!    `convert::schema`); any other tool type is refused, naming it.
//!    `tool_choice` becomes the function-calling mode. `parallel_tool_calls`
//!    is echoed only (Gemini has no switch).
//! 5. `temperature`, `top_p`, `max_output_tokens`, `text.format` (JSON mode
//!    or schema) and `reasoning.effort` (thinking, through
//!    `convert::thinking`) become the generation config.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::output::EchoedFields;
use super::{bad_request_at, ConvertError};
use crate::bodyshare::{member, BodyJson, BodyStr};
use crate::convert::location::At;
use crate::convert::media::{
    decode_data_url, file_data_part, gemini_file_reference, guess_mime_type_from_file_name,
    has_prefix_ignoring_ascii_case, inline_data_part, is_http_url, validated_base64,
};
use crate::convert::schema::{apply_json_output, clean_parameters, SchemaBudget};
use crate::convert::thinking::{parse_reasoning_effort, thinking_config};
use crate::convert::{
    add_skip_signature_to_unsigned_first_function_calls, safety_settings, MODEL_ROLE, SKIP_THOUGHT_SIGNATURE_VALIDATOR,
    USER_ROLE,
};
use crate::gemini::model::{is_gemini_3, ModelSpec};
use crate::gemini::types::{
    Blob, Content, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerationConfig, Part, Tool, ToolConfig,
};

/// `POST /v1/responses`. Unknown fields are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    #[serde(default)]
    /// Its long strings (images, files, texts) share the request body.
    pub input: Option<BodyJson>,
    #[serde(default)]
    pub instructions: Option<Value>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub reasoning: Option<Value>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub text: Option<Value>,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub include: Option<Value>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub background: Option<bool>,
}

impl ResponsesRequest {
    /// The input as a list of items: a string is one user message. Takes
    /// it out of the request (it is as large as the body).
    pub fn take_input_items(&mut self) -> Result<Vec<BodyJson>, ConvertError> {
        match self.input.take() {
            None | Some(BodyJson::Null) => Ok(Vec::new()),
            Some(BodyJson::String(text)) => Ok(vec![BodyJson::Object(vec![
                ("type".to_owned(), BodyJson::String("message".into())),
                ("role".to_owned(), BodyJson::String("user".into())),
                ("content".to_owned(), BodyJson::String(text)),
            ])]),
            Some(BodyJson::Array(items)) => Ok(items),
            Some(_) => Err(bad_request_at("input", "must be a string or an array of input items")),
        }
    }

    /// The request's fields a response object echoes, with the API's
    /// defaults, serialized once for every event that carries the response.
    pub fn echoed_fields(&self) -> EchoedFields {
        #[derive(Serialize)]
        struct Echoed<'a> {
            instructions: Option<&'a Value>,
            max_output_tokens: Option<u32>,
            metadata: Or<'a, EmptyObject>,
            parallel_tool_calls: bool,
            previous_response_id: Option<&'a str>,
            reasoning: Reasoning<'a>,
            store: bool,
            temperature: f64,
            text: Or<'a, TextFormat>,
            tool_choice: Or<'a, &'static str>,
            tools: &'a [Value],
            top_p: f64,
            truncation: &'static str,
            user: Option<&'a str>,
        }
        /// What the client gave, or the API's default.
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Or<'a, T> {
            Given(&'a Value),
            Default(T),
        }
        #[derive(Serialize)]
        struct EmptyObject {}
        #[derive(Serialize)]
        struct Reasoning<'a> {
            effort: Option<&'a Value>,
            summary: Option<&'a Value>,
        }
        /// `{"format": {"type": "text"}}`.
        #[derive(Serialize)]
        struct TextFormat {
            format: FormatType,
        }
        #[derive(Serialize)]
        struct FormatType {
            #[serde(rename = "type")]
            kind: &'static str,
        }
        fn object_or<T>(given: Option<&Value>, default: T) -> Or<'_, T> {
            given.filter(|value| value.is_object()).map_or(Or::Default(default), Or::Given)
        }
        let reasoning = self.reasoning.as_ref().filter(|reasoning| reasoning.is_object());
        let echoed = Echoed {
            instructions: self.instructions.as_ref(),
            max_output_tokens: self.max_output_tokens,
            metadata: object_or(self.metadata.as_ref(), EmptyObject {}),
            parallel_tool_calls: self.parallel_tool_calls.unwrap_or(true),
            previous_response_id: self.previous_response_id.as_deref(),
            reasoning: Reasoning {
                effort: reasoning.and_then(|reasoning| reasoning.get("effort")),
                summary: reasoning.and_then(|reasoning| reasoning.get("summary")),
            },
            store: self.store.unwrap_or(true),
            temperature: self.temperature.unwrap_or(1.0),
            text: object_or(self.text.as_ref(), TextFormat { format: FormatType { kind: "text" } }),
            tool_choice: self.tool_choice.as_ref().map_or(Or::Default("auto"), Or::Given),
            tools: self.tools.as_deref().unwrap_or_default(),
            top_p: self.top_p.unwrap_or(1.0),
            truncation: "disabled",
            user: self.user.as_deref(),
        };
        // Serializing these types cannot fail.
        EchoedFields::of_object(serde_json::to_string(&echoed).unwrap_or_else(|_| "{}".to_owned()))
    }
}

/// Everything the conversion needs besides the request.
pub struct ConvertOptions<'a> {
    pub model: &'a ModelSpec,
    /// `ENABLE_THINKING`, `SHOW_THINKING`.
    pub enable_thinking: bool,
    pub show_thinking: bool,
    pub safety_threshold: &'a str,
    /// http(s) URL → its fetched bytes (see [`remote_media_urls`]).
    pub remote_media: &'a HashMap<String, Blob>,
    /// call_id → the thought signature remembered for that call.
    pub thought_signature_for: &'a dyn Fn(&str) -> Option<String>,
    /// Whether Gemini issued this signature here: others become the
    /// placeholder, never forwarded raw.
    pub known_signature: &'a dyn Fn(&str) -> bool,
}

/// One item of the conversation and where it came from (for errors).
pub struct Located<'a> {
    pub location: At<'static>,
    pub item: &'a BodyJson,
}

/// `history` (rebuilt from `previous_response_id`, errors located there)
/// followed by `input` (`input[i]`).
pub fn located_items<'a>(history: &'a [BodyJson], input: &'a [BodyJson]) -> Vec<Located<'a>> {
    let earlier = history.iter().map(|item| Located { location: At::named("previous_response_id"), item });
    let now = input.iter().enumerate().map(|(index, item)| Located { location: At::top("input", index), item });
    earlier.chain(now).collect()
}

/// Converts the request whose conversation is `items` (see [`located_items`]).
pub fn to_gemini(
    request: &ResponsesRequest,
    items: &[Located<'_>],
    options: &ConvertOptions,
) -> Result<GenerateContentRequest, ConvertError> {
    let mut conversation = Conversation::default();
    match &request.instructions {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if text.is_empty() => {}
        Some(Value::String(text)) => conversation.system.push(Part::text(text.as_str())),
        Some(_) => return Err(bad_request_at("instructions", "must be a string")),
    }
    for (index, located) in items.iter().enumerate() {
        let next_type =
            items[index + 1..].iter().map(|next| item_type(next.item)).find(|kind| *kind != Some("reasoning"));
        conversation.add_item(located, next_type.flatten(), options)?;
    }
    let mut turns = conversation.turns;
    if turns.is_empty() {
        return Err(bad_request_at("input", "no user or assistant message"));
    }
    if is_gemini_3(&options.model.base) {
        add_skip_signature_to_unsigned_first_function_calls(&mut turns);
    }

    let (declarations, allowed) = convert_tools(request.tools.as_deref(), request.tool_choice.as_ref())?;
    let tool_config = allowed.tool_config;
    let declarations: Vec<FunctionDeclaration> = match &allowed.only {
        Some(names) => declarations.into_iter().filter(|declaration| names.contains(&declaration.name)).collect(),
        None => declarations,
    };
    let mut tools = Vec::new();
    let has_function_tools = !declarations.is_empty();
    if has_function_tools {
        tools.push(Tool { function_declarations: Some(declarations), google_search: None });
    } else if options.model.search {
        tools.push(Tool { function_declarations: None, google_search: Some(json!({})) });
    }

    let mut generation_config = GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        max_output_tokens: request.max_output_tokens,
        ..GenerationConfig::default()
    };
    apply_text_format(request.text.as_ref(), &mut generation_config)?;
    generation_config.thinking_config = thinking_config(
        options.model,
        requested_thinking(request.reasoning.as_ref())?,
        options.enable_thinking,
        options.show_thinking,
    );
    let generation_config = (generation_config != GenerationConfig::default()).then_some(generation_config);
    let system_instruction =
        (!conversation.system.is_empty()).then_some(Content { role: None, parts: conversation.system });
    Ok(GenerateContentRequest {
        contents: turns,
        system_instruction,
        tools,
        tool_config,
        safety_settings: safety_settings(&options.model.base, options.safety_threshold),
        generation_config,
    })
}

/// The http(s) URLs of images and files the items name, in order, without
/// duplicates: the caller fetches them into [`ConvertOptions::remote_media`].
pub fn remote_media_urls<'a>(items: impl IntoIterator<Item = &'a BodyJson>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut urls = Vec::new();
    for item in items {
        let Some(BodyJson::Array(parts)) = item.get("content") else { continue };
        for part in parts {
            let url = match part.get("type").and_then(BodyJson::as_str) {
                Some("input_image") => image_url(part).map(BodyStr::as_str),
                Some("input_file") => part.get("file_url").and_then(BodyJson::as_str),
                _ => None,
            };
            if let Some(url) = url {
                if is_http_url(url) && gemini_file_reference(url).is_none() && seen.insert(url.to_owned()) {
                    urls.push(url.to_owned());
                }
            }
        }
    }
    urls
}

fn image_url(part: &BodyJson) -> Option<&BodyStr> {
    match part.get("image_url")? {
        BodyJson::String(url) => Some(url),
        BodyJson::Object(object) => member(object, "url").and_then(BodyJson::as_body_str),
        _ => None,
    }
}

/// An item's type; a typeless item with a role is a message.
fn item_type(item: &BodyJson) -> Option<&str> {
    match item.get("type").and_then(BodyJson::as_str) {
        Some(kind) => Some(kind),
        None if item.get("role").is_some() => Some("message"),
        None => None,
    }
}

#[derive(Default)]
struct Conversation {
    system: Vec<Part>,
    turns: Vec<Content>,
    /// call_id → function name, for the outputs that answer them.
    call_names: HashMap<String, String>,
    /// A signature waiting for the next model part of this model turn.
    pending_signature: Option<String>,
}

impl Conversation {
    fn add_item(
        &mut self,
        located: &Located,
        next_type: Option<&str>,
        options: &ConvertOptions,
    ) -> Result<(), ConvertError> {
        let location = &located.location;
        let item = located.item;
        if !item.is_object() {
            return Err(bad_request_at(location, "an input item must be an object"));
        }
        match item_type(item) {
            Some("message") => self.add_message(item, location, options),
            Some("function_call") => self.add_function_call(item, location, options),
            Some("function_call_output") => self.add_function_output(item, location, options),
            Some("reasoning") => {
                self.add_reasoning(item, next_type, options);
                Ok(())
            }
            Some("item_reference") => Err(bad_request_at(
                location,
                "item references are not supported; send the items themselves or use previous_response_id",
            )),
            Some(other) => Err(bad_request_at(
                location.field("type"),
                format!("item type {:?} is not supported by this gateway (Gemini)", crate::error::echo(other)),
            )),
            None => Err(bad_request_at(location, "an input item needs a \"type\"")),
        }
    }

    fn add_message(
        &mut self,
        item: &BodyJson,
        location: &At<'_>,
        options: &ConvertOptions,
    ) -> Result<(), ConvertError> {
        let role = item.get("role").and_then(BodyJson::as_str).unwrap_or_default();
        let content_location = location.field("content");
        let parts = content_parts(item.get("content"), &content_location, options)?;
        match role {
            "system" | "developer" if self.turns.is_empty() => {
                for part in parts {
                    if part.text.is_none() {
                        return Err(bad_request_at(content_location, "a leading system message may only hold text"));
                    }
                    self.system.push(part);
                }
                Ok(())
            }
            "system" | "developer" | "user" => {
                self.push_user_parts(parts);
                Ok(())
            }
            "assistant" => {
                for part in parts {
                    self.push_model_part(part);
                }
                Ok(())
            }
            other => {
                Err(bad_request_at(location.field("role"), format!("unknown role {:?}", crate::error::echo(other))))
            }
        }
    }

    fn add_function_call(
        &mut self,
        item: &BodyJson,
        location: &At<'_>,
        options: &ConvertOptions,
    ) -> Result<(), ConvertError> {
        let name = item.get("name").and_then(BodyJson::as_str).filter(|name| !name.is_empty());
        let Some(name) = name else {
            return Err(bad_request_at(location.field("name"), "missing"));
        };
        let arguments_location = location.field("arguments");
        let args = match item.get("arguments") {
            None | Some(BodyJson::Null) => json!({}),
            Some(BodyJson::String(text)) if text.trim().is_empty() => json!({}),
            Some(BodyJson::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(arguments)) => Value::Object(arguments),
                Ok(_) => return Err(bad_request_at(arguments_location, "not a JSON object")),
                Err(_) => return Err(bad_request_at(arguments_location, "not valid JSON")),
            },
            Some(arguments @ BodyJson::Object(_)) => arguments.to_value(),
            Some(_) => return Err(bad_request_at(arguments_location, "must be a JSON-encoded string")),
        };
        let call_id = item.get("call_id").and_then(BodyJson::as_str);
        if let Some(call_id) = call_id {
            self.call_names.insert(call_id.to_owned(), name.to_owned());
        }
        // A reasoning item's signature first; the one remembered for the
        // call when there is none, or only the placeholder.
        let remembered = call_id
            .and_then(|call_id| (options.thought_signature_for)(call_id))
            .filter(|signature| (options.known_signature)(signature));
        if remembered.is_some()
            && self.pending_signature.as_deref().is_none_or(|pending| pending == SKIP_THOUGHT_SIGNATURE_VALIDATOR)
        {
            self.pending_signature = remembered;
        }
        let part =
            Part { function_call: Some(FunctionCall { id: None, name: name.to_owned(), args }), ..Part::default() };
        self.push_model_part(part);
        Ok(())
    }

    fn add_function_output(
        &mut self,
        item: &BodyJson,
        location: &At<'_>,
        options: &ConvertOptions,
    ) -> Result<(), ConvertError> {
        let call_id = item.get("call_id").and_then(BodyJson::as_str).unwrap_or_default();
        let Some(name) = self.call_names.get(call_id).cloned() else {
            return Err(bad_request_at(
                location.field("call_id"),
                format!("{:?} matches no earlier function_call", crate::error::echo(call_id)),
            ));
        };
        let output_location = location.field("output");
        let mut extra_parts = Vec::new();
        let text = match item.get("output") {
            None | Some(BodyJson::Null) => String::new(),
            Some(BodyJson::String(text)) => text.as_str().to_owned(),
            Some(BodyJson::Array(_)) => {
                let parts = content_parts(item.get("output"), &output_location, options)?;
                let mut text = String::new();
                for part in parts {
                    match part.text {
                        Some(piece) => text.push_str(&piece),
                        None => extra_parts.push(part),
                    }
                }
                text
            }
            Some(_) => return Err(bad_request_at(output_location, "must be a string or an array of content parts")),
        };
        let response = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => Value::Object(object),
            _ => json!({ "content": text }),
        };
        let mut parts =
            vec![Part { function_response: Some(FunctionResponse { id: None, name, response }), ..Part::default() }];
        parts.extend(extra_parts);
        self.push_user_parts(parts);
        Ok(())
    }

    /// Rule 3: where a reasoning item's signature goes back.
    fn add_reasoning(&mut self, item: &BodyJson, next_type: Option<&str>, options: &ConvertOptions) {
        let Some(signature) = item.get("encrypted_content").and_then(BodyJson::as_str).filter(|s| !s.is_empty()) else {
            return;
        };
        let signature = if (options.known_signature)(signature) {
            signature.to_owned()
        } else {
            SKIP_THOUGHT_SIGNATURE_VALIDATOR.to_owned()
        };
        if next_type == Some("function_call") {
            self.pending_signature = Some(signature);
            return;
        }
        let last_model_part = match self.turns.last_mut() {
            Some(turn) if turn.role.as_deref() == Some(MODEL_ROLE) => turn.parts.last_mut(),
            _ => None,
        };
        match last_model_part {
            Some(part) if part.thought_signature.is_none() => part.thought_signature = Some(signature),
            Some(_) => {}
            None => self.pending_signature = Some(signature),
        }
    }

    fn push_model_part(&mut self, mut part: Part) {
        if let Some(signature) = self.pending_signature.take() {
            part.thought_signature.get_or_insert(signature);
        }
        push_merging(&mut self.turns, MODEL_ROLE, vec![part]);
    }

    fn push_user_parts(&mut self, parts: Vec<Part>) {
        // A signature with no model part after it in its turn has nowhere to go.
        self.pending_signature = None;
        push_merging(&mut self.turns, USER_ROLE, parts);
    }
}

fn push_merging(turns: &mut Vec<Content>, role: &'static str, parts: Vec<Part>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
        _ => turns.push(Content { role: Some(Cow::Borrowed(role)), parts }),
    }
}

/// A message's content (a string or an array of parts) as Gemini parts.
fn content_parts(
    content: Option<&BodyJson>,
    location: &At<'_>,
    options: &ConvertOptions,
) -> Result<Vec<Part>, ConvertError> {
    match content {
        None | Some(BodyJson::Null) => Ok(Vec::new()),
        Some(BodyJson::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(BodyJson::String(text)) => Ok(vec![Part::text(text.clone())]),
        Some(BodyJson::Array(parts)) => {
            let mut converted = Vec::with_capacity(parts.len());
            for (index, part) in parts.iter().enumerate() {
                if let Some(part) = content_part(part, &location.index(index), options)? {
                    converted.push(part);
                }
            }
            Ok(converted)
        }
        Some(_) => Err(bad_request_at(location, "must be a string or an array of content parts")),
    }
}

fn content_part(part: &BodyJson, location: &At<'_>, options: &ConvertOptions) -> Result<Option<Part>, ConvertError> {
    let kind = part.get("type").and_then(BodyJson::as_str);
    let text_of = |field: &str| match part.get(field) {
        Some(BodyJson::String(text)) if text.is_empty() => Ok(None),
        Some(BodyJson::String(text)) => Ok(Some(Part::text(text.clone()))),
        _ => Err(bad_request_at(location, format!("a {} part needs a string \"{field}\"", kind.unwrap_or_default()))),
    };
    match kind {
        Some("input_text" | "output_text" | "text" | "summary_text" | "reasoning_text") => text_of("text"),
        Some("refusal") => text_of("refusal"),
        Some("input_image") => {
            if let Some(url) = image_url(part) {
                return media_url_part(url, location, options).map(Some);
            }
            if part.get("file_id").is_some_and(|id| !id.is_null()) {
                return Err(unsupported_file_id(location));
            }
            Err(bad_request_at(location, "an input_image part needs an \"image_url\""))
        }
        Some("input_file") => file_part(part, location, options).map(Some),
        Some(other) => {
            Err(bad_request_at(location, format!("content part type {:?} is not supported", crate::error::echo(other))))
        }
        None => Err(bad_request_at(location, "a content part needs a \"type\"")),
    }
}

fn unsupported_file_id(location: &At<'_>) -> ConvertError {
    bad_request_at(
        location.field("file_id"),
        "OpenAI file ids are not supported by this gateway; send the file inline (a data: URL or base64 file_data) or as an https URL",
    )
}

/// A data URL, a fetched http(s) URL or a Gemini file reference.
fn media_url_part(url: &BodyStr, location: &At<'_>, options: &ConvertOptions) -> Result<Part, ConvertError> {
    if has_prefix_ignoring_ascii_case(url, "data:") {
        let (mime_type, data) = decode_data_url(url).map_err(|detail| bad_request_at(location, detail))?;
        return Ok(inline_data_part(mime_type, data));
    }
    if let Some(file_data) = gemini_file_reference(url) {
        return Ok(file_data_part(file_data));
    }
    if is_http_url(url) {
        return match options.remote_media.get(url.as_str()) {
            Some(blob) => Ok(Part { inline_data: Some(blob.clone()), ..Part::default() }),
            None => Err(bad_request_at(location, format!("could not fetch {}", crate::media::url_for_messages(url)))),
        };
    }
    Err(bad_request_at(location, "unsupported URL; use a data:, http(s):// or gs:// URL"))
}

/// `input_file`: `file_data` (a data URL, or base64 with the MIME type
/// guessed from `filename`, PDF when it says nothing), or `file_url`.
fn file_part(part: &BodyJson, location: &At<'_>, options: &ConvertOptions) -> Result<Part, ConvertError> {
    let field = |name: &str| part.get(name).and_then(BodyJson::as_body_str).filter(|value| !value.is_empty());
    if let Some(file_data) = field("file_data") {
        if has_prefix_ignoring_ascii_case(file_data, "data:") {
            let (mime_type, data) = decode_data_url(file_data).map_err(|detail| bad_request_at(location, detail))?;
            return Ok(inline_data_part(mime_type, data));
        }
        let data = validated_base64(file_data.clone())
            .ok_or_else(|| bad_request_at(location.field("file_data"), "not valid base64"))?;
        let file_name = field("filename").map(BodyStr::as_str);
        let mime_type = file_name.and_then(guess_mime_type_from_file_name).unwrap_or("application/pdf");
        return Ok(inline_data_part(mime_type.to_owned(), data));
    }
    if let Some(url) = field("file_url") {
        return media_url_part(url, location, options);
    }
    if field("file_id").is_some() {
        return Err(unsupported_file_id(location));
    }
    Err(bad_request_at(location, "an input_file part needs \"file_data\" or \"file_url\""))
}

/// What `tool_choice` makes of the function-calling mode, and the only
/// functions offered (`allowed_tools` in `auto` mode).
struct Choice {
    tool_config: Option<ToolConfig>,
    only: Option<HashSet<String>>,
}

/// Rule 4: function tools as declarations, and `tool_choice`.
fn convert_tools(
    tools: Option<&[Value]>,
    tool_choice: Option<&Value>,
) -> Result<(Vec<FunctionDeclaration>, Choice), ConvertError> {
    let mut declarations = Vec::new();
    // One budget for every schema of the request.
    let mut budget = SchemaBudget::default();
    for (index, tool) in tools.unwrap_or_default().iter().enumerate() {
        let location = At::top("tools", index);
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "function" {
            return Err(bad_request_at(
                location.field("type"),
                format!(
                    "tool type {:?} is not available through this gateway (Gemini): only function tools are",
                    crate::error::echo(kind)
                ),
            ));
        }
        let Some(name) = tool.get("name").and_then(Value::as_str).filter(|name| !name.is_empty()) else {
            return Err(bad_request_at(location.field("name"), "missing"));
        };
        let description =
            tool.get("description").and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_owned);
        let parameters = tool.get("parameters").and_then(|parameters| clean_parameters(parameters, &mut budget));
        if budget.exhausted {
            return Err(bad_request_at(
                location.field("parameters"),
                "the tool schemas are too large once their $refs are expanded",
            ));
        }
        declarations.push(FunctionDeclaration { name: name.to_owned(), description, parameters });
    }
    Ok((declarations, convert_tool_choice(tool_choice)?))
}

fn convert_tool_choice(tool_choice: Option<&Value>) -> Result<Choice, ConvertError> {
    let mode = |mode: &str, names: Option<Vec<String>>| {
        Some(ToolConfig {
            function_calling_config: FunctionCallingConfig { mode: mode.to_owned(), allowed_function_names: names },
        })
    };
    let plain = |tool_config| Ok(Choice { tool_config, only: None });
    match tool_choice {
        None | Some(Value::Null) => plain(None),
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => plain(mode("AUTO", None)),
            "none" => plain(mode("NONE", None)),
            "required" => plain(mode("ANY", None)),
            other => Err(bad_request_at(
                "tool_choice",
                format!("unknown value {:?}; use \"auto\", \"none\", \"required\" or a function", crate::error::echo(other)),
            )),
        },
        Some(Value::Object(choice)) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => match choice.get("name").and_then(Value::as_str).filter(|name| !name.is_empty()) {
                Some(name) => plain(mode("ANY", Some(vec![name.to_owned()]))),
                None => Err(bad_request_at("tool_choice.name", "missing")),
            },
            Some("allowed_tools") => {
                let names: Vec<String> = choice
                    .get("tools")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|tool| tool.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                match choice.get("mode").and_then(Value::as_str) {
                    Some("required") => plain(mode("ANY", Some(names))),
                    Some("auto") | None => {
                        Ok(Choice { tool_config: mode("AUTO", None), only: Some(names.into_iter().collect()) })
                    }
                    Some(other) => Err(bad_request_at(
                        "tool_choice.mode",
                        format!("unknown value {:?}; use \"auto\" or \"required\"", crate::error::echo(other)),
                    )),
                }
            }
            other => Err(bad_request_at(
                "tool_choice.type",
                format!(
                    "{:?} is not available through this gateway (Gemini): choose \"auto\", \"none\", \"required\" or a function",
                    crate::error::echo(other.unwrap_or_default())
                ),
            )),
        },
        Some(_) => Err(bad_request_at("tool_choice", "must be a string or an object")),
    }
}

/// `text.format`: plain text, JSON mode or a JSON schema.
fn apply_text_format(text: Option<&Value>, generation_config: &mut GenerationConfig) -> Result<(), ConvertError> {
    let Some(format) = text.and_then(|text| text.get("format")).filter(|format| !format.is_null()) else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => apply_json_output(generation_config, None),
        Some("json_schema") => match format.get("schema") {
            Some(schema) if schema.is_object() => apply_json_output(generation_config, Some(schema)),
            _ => return Err(bad_request_at("text.format.schema", "a json_schema format needs a \"schema\" object")),
        },
        _ => {
            return Err(bad_request_at("text.format.type", "must be \"text\", \"json_object\" or \"json_schema\""));
        }
    }
    Ok(())
}

/// `reasoning.effort` as a thinking request (`xhigh` counts as `high`).
fn requested_thinking(
    reasoning: Option<&Value>,
) -> Result<Option<crate::convert::thinking::ThinkingRequest>, ConvertError> {
    let Some(effort) = reasoning.and_then(|reasoning| reasoning.get("effort")).filter(|effort| !effort.is_null())
    else {
        return Ok(None);
    };
    let Some(effort) = effort.as_str() else {
        return Err(bad_request_at("reasoning.effort", "must be a string"));
    };
    let effort = if effort.eq_ignore_ascii_case("xhigh") { "high" } else { effort };
    parse_reasoning_effort(effort).map(Some).map_err(|detail| bad_request_at("reasoning.effort", detail))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
