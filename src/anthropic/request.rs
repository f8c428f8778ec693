//! An Anthropic Messages request → a Gemini `generateContent` request
//! (pure; remote media are fetched by the caller first, see
//! [`remote_media_urls`]).
//!
//! - `system` (a string or text blocks) → `systemInstruction`;
//! - `user` / `assistant` messages → `user` / `model` turns: text, images
//!   and documents (base64, fetched URLs, plain text), `tool_use` →
//!   `functionCall`, `tool_result` → `functionResponse` (named after the
//!   earlier `tool_use` with its id; images of a result follow it);
//! - `tools` → function declarations (schemas cleaned by
//!   `convert::schema`), `tool_choice` → the function-calling mode;
//! - `thinking`, `max_tokens`, `temperature`, `top_p`, `top_k`,
//!   `stop_sequences` → the generation config.
//!
//! Thought signatures travel back exactly: a `thinking` block's signature
//! belongs to the part after it (that is where [`super::response`] puts
//! it), a `tool_use` also finds its own by id. A signature Gemini did not
//! issue here (a conversation begun with Claude, `redacted_thinking`)
//! becomes Google's placeholder, never forwarded; Claude's thinking text
//! is dropped (Gemini's own thought text is not replayed either).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::bodyshare::BodyStr;
use crate::convert::location::At;
use crate::convert::media::{gemini_file_reference, inline_data_part, is_http_url, validated_base64};
use crate::convert::schema::{clean_parameters, SchemaBudget};
use crate::convert::thinking::{thinking_config, ThinkingRequest};
use crate::convert::{
    add_skip_signature_to_unsigned_first_function_calls, safety_settings, MODEL_ROLE, SKIP_THOUGHT_SIGNATURE_VALIDATOR,
    USER_ROLE,
};
use crate::gemini::model::{is_gemini_3, ModelSpec};
use crate::gemini::types::{
    Blob, Content, FunctionCall, FunctionCallingConfig, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerationConfig, Part, Tool, ToolConfig,
};

use super::types::{
    ContentBlock, MessageContent, MessagesRequest, Source, System, ThinkingParam, ToolChoice, ToolResultContent,
};

/// A request this door cannot convert: a 400 naming where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConvertError {
    pub message: String,
    pub param: String,
}

fn bad(param: impl std::fmt::Display, what: impl std::fmt::Display) -> ConvertError {
    let param = param.to_string();
    ConvertError { message: format!("{param}: {what}"), param }
}

/// What the conversion needs besides the request.
pub struct ConvertOptions<'a> {
    pub model: &'a ModelSpec,
    /// `ENABLE_THINKING`.
    pub enable_thinking: bool,
    /// `SHOW_THINKING`.
    pub show_thinking: bool,
    pub safety_threshold: &'a str,
    /// The http(s) media of [`remote_media_urls`], fetched.
    pub remote_media: &'a HashMap<String, Blob>,
    /// The signature remembered for a `tool_use` id this door gave out.
    pub signature_for_tool_use: &'a dyn Fn(&str) -> Option<String>,
    /// Whether Gemini issued a signature here (else it is not forwarded).
    pub known_signature: &'a dyn Fn(&str) -> bool,
}

/// Whether thought text is shown to this client as `thinking` blocks:
/// `SHOW_THINKING`, unless the request turned thinking off.
pub fn shows_thinking(request: &MessagesRequest, show_thinking: bool) -> bool {
    show_thinking && !matches!(request.thinking, Some(ThinkingParam::Disabled))
}

/// The http(s) image and document URLs the request names (first
/// appearance, no duplicates), to be fetched into
/// [`ConvertOptions::remote_media`]. Gemini file references are not listed.
pub fn remote_media_urls(request: &MessagesRequest) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    let mut note = |source: &Source| {
        if let Source::Url { url } = source {
            if is_http_url(url) && gemini_file_reference(url).is_none() && !urls.contains(url) {
                urls.push(url.clone());
            }
        }
    };
    fn visit(blocks: &[ContentBlock], note: &mut dyn FnMut(&Source)) {
        for block in blocks {
            match block {
                ContentBlock::Image { source } | ContentBlock::Document { source, .. } => note(source),
                ContentBlock::ToolResult { content: Some(ToolResultContent::Blocks(inner)), .. } => visit(inner, note),
                _ => {}
            }
        }
    }
    for message in &request.messages {
        if let MessageContent::Blocks(blocks) = &message.content {
            visit(blocks, &mut note);
        }
    }
    urls
}

/// The Gemini request for `request`.
pub fn to_gemini(request: &MessagesRequest, options: &ConvertOptions) -> Result<GenerateContentRequest, ConvertError> {
    if request.messages.is_empty() {
        return Err(bad("messages", "must not be empty"));
    }
    let system_instruction = system_instruction(request.system.as_ref())?;
    let mut contents = Vec::with_capacity(request.messages.len());
    let mut tool_names: HashMap<String, String> = HashMap::new();
    for (index, message) in request.messages.iter().enumerate() {
        let location = At::top("messages", index);
        let turn = match message.role.as_str() {
            "user" => user_turn(&message.content, &location, &tool_names, options)?,
            "assistant" => assistant_turn(&message.content, &location, &mut tool_names, options)?,
            other => {
                return Err(bad(
                    location.field("role"),
                    format!("unknown role \"{}\"; use user or assistant", crate::error::echo(other)),
                ))
            }
        };
        if !turn.parts.is_empty() {
            contents.push(turn);
        }
    }
    if contents.is_empty() {
        return Err(bad("messages", "no message has any content"));
    }
    if is_gemini_3(&options.model.base) {
        add_skip_signature_to_unsigned_first_function_calls(&mut contents);
    }
    let mut tools = Vec::new();
    let declarations = function_declarations(request)?;
    if !declarations.is_empty() {
        tools.push(Tool { function_declarations: Some(declarations), google_search: None });
    } else if options.model.search {
        tools.push(Tool { function_declarations: None, google_search: Some(json!({})) });
    }
    let tool_config = request.tool_choice.as_ref().map(tool_config);
    let generation_config = generation_config(request, options);
    Ok(GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        safety_settings: safety_settings(&options.model.base, options.safety_threshold),
        generation_config,
    })
}

/// The body of Gemini's `countTokens` for `request` on `model`: the whole
/// generation request (system, tools and all), as `generateContentRequest`.
pub fn count_tokens_body(model: &str, request: GenerateContentRequest) -> Value {
    let GenerateContentRequest { contents, system_instruction, tools, tool_config, .. } = request;
    let mut inner = json!({"model": format!("models/{model}"), "contents": contents});
    if let Some(system) = system_instruction {
        inner["systemInstruction"] = json!(system);
    }
    if !tools.is_empty() {
        inner["tools"] = json!(tools);
    }
    if let Some(tool_config) = tool_config {
        inner["toolConfig"] = json!(tool_config);
    }
    json!({ "generateContentRequest": inner })
}

fn system_instruction(system: Option<&System>) -> Result<Option<Content>, ConvertError> {
    let parts: Vec<Part> = match system {
        None => return Ok(None),
        Some(System::Text(text)) => vec![Part::text(text.clone())],
        Some(System::Blocks(blocks)) => {
            let mut parts = Vec::new();
            for (index, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text { text } => parts.push(Part::text(text.clone())),
                    other => {
                        return Err(bad(format!("system[{index}]"), format!("a {} block; use text", other.kind())))
                    }
                }
            }
            parts
        }
    };
    let parts: Vec<Part> =
        parts.into_iter().filter(|part| part.text.as_deref().is_some_and(|t| !t.is_empty())).collect();
    Ok((!parts.is_empty()).then_some(Content { role: None, parts }))
}

fn user_turn(
    content: &MessageContent,
    location: &At<'_>,
    tool_names: &HashMap<String, String>,
    options: &ConvertOptions,
) -> Result<Content, ConvertError> {
    let blocks = match content {
        MessageContent::Text(text) => return Ok(turn(USER_ROLE, text_parts(text))),
        MessageContent::Blocks(blocks) => blocks,
    };
    // Function responses first: Gemini expects them right after the calls.
    let mut responses = Vec::new();
    let mut parts = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let location = location.item("content", index);
        match block {
            ContentBlock::ToolResult { tool_use_id, content, is_error } => {
                let Some(name) = tool_names.get(tool_use_id) else {
                    return Err(bad(
                        location.field("tool_use_id"),
                        format!("\"{}\" matches no earlier tool_use block", crate::error::echo(tool_use_id)),
                    ));
                };
                let (response, media) = tool_result(content.as_ref(), is_error.unwrap_or(false), &location, options)?;
                responses.push(Part {
                    function_response: Some(FunctionResponse { id: None, name: name.clone(), response }),
                    ..Part::default()
                });
                responses.extend(media);
            }
            // Thinking is the assistant's; a user turn carries none.
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {}
            ContentBlock::ToolUse { .. } => {
                return Err(bad(location, "tool_use blocks belong to assistant messages"));
            }
            other => parts.extend(media_or_text(other, &location, options)?),
        }
    }
    responses.extend(parts);
    Ok(turn(USER_ROLE, responses))
}

fn assistant_turn(
    content: &MessageContent,
    location: &At<'_>,
    tool_names: &mut HashMap<String, String>,
    options: &ConvertOptions,
) -> Result<Content, ConvertError> {
    let blocks = match content {
        MessageContent::Text(text) => return Ok(turn(MODEL_ROLE, text_parts(text))),
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut parts: Vec<Part> = Vec::new();
    // The signature a thinking block handed to the part after it.
    let mut pending: Option<String> = None;
    for (index, block) in blocks.iter().enumerate() {
        let location = location.item("content", index);
        match block {
            ContentBlock::Thinking { signature, .. } => {
                if let Some(signature) = signature.as_deref().filter(|signature| !signature.is_empty()) {
                    let forwarded = if (options.known_signature)(signature) {
                        signature.to_owned()
                    } else {
                        SKIP_THOUGHT_SIGNATURE_VALIDATOR.to_owned()
                    };
                    pending = Some(prefer_real(pending.take(), forwarded));
                }
            }
            ContentBlock::RedactedThinking { .. } => {
                pending = Some(prefer_real(pending.take(), SKIP_THOUGHT_SIGNATURE_VALIDATOR.to_owned()));
            }
            ContentBlock::ToolUse { id, name, input } => {
                if name.is_empty() {
                    return Err(bad(location.field("name"), "missing"));
                }
                let args = match input {
                    Value::Null => json!({}),
                    Value::Object(_) => input.clone(),
                    _ => return Err(bad(location.field("input"), "must be an object")),
                };
                let by_id = (options.signature_for_tool_use)(id);
                let signature = match pending.take() {
                    Some(real) if real != SKIP_THOUGHT_SIGNATURE_VALIDATOR => Some(real),
                    placeholder => by_id.or(placeholder),
                };
                tool_names.insert(id.clone(), name.clone());
                parts.push(Part {
                    thought_signature: signature,
                    function_call: Some(FunctionCall { id: None, name: name.clone(), args }),
                    ..Part::default()
                });
            }
            ContentBlock::ToolResult { .. } => {
                return Err(bad(location, "tool_result blocks belong to user messages"));
            }
            other => {
                for mut part in media_or_text(other, &location, options)? {
                    part.thought_signature = pending.take();
                    parts.push(part);
                }
            }
        }
    }
    // A signature after the last part (a streamed answer's closing one)
    // belongs to that part.
    if let Some(signature) = pending {
        if let Some(last) = parts.last_mut().filter(|part| part.thought_signature.is_none()) {
            last.thought_signature = Some(signature);
        }
    }
    Ok(turn(MODEL_ROLE, parts))
}

/// Of two signatures for one part, the one Gemini issued (not the placeholder).
fn prefer_real(held: Option<String>, new: String) -> String {
    match held {
        Some(held) if held != SKIP_THOUGHT_SIGNATURE_VALIDATOR => held,
        _ => new,
    }
}

fn turn(role: &'static str, parts: Vec<Part>) -> Content {
    Content { role: Some(Cow::Borrowed(role)), parts }
}

/// A text as parts: none when empty; a long text stays shared.
fn text_parts(text: &BodyStr) -> Vec<Part> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![Part::text(text.clone())]
    }
}

/// A text, image or document block as Gemini parts.
fn media_or_text(block: &ContentBlock, location: &At<'_>, options: &ConvertOptions) -> Result<Vec<Part>, ConvertError> {
    match block {
        ContentBlock::Text { text } => Ok(text_parts(text)),
        ContentBlock::Image { source } => Ok(vec![source_part(source, &location.field("source"), options)?]),
        ContentBlock::Document { source, title } => {
            let source_location = location.field("source");
            let mut parts = Vec::new();
            if let Some(title) = title.as_deref().filter(|title| !title.is_empty()) {
                parts.push(Part::text(format!("Document: {title}")));
            }
            match source {
                Source::Text { data, .. } => parts.extend(text_parts(data)),
                Source::Content { content } => match content {
                    MessageContent::Text(text) => parts.extend(text_parts(text)),
                    MessageContent::Blocks(blocks) => {
                        for (index, inner) in blocks.iter().enumerate() {
                            let inner_location = source_location.item("content", index);
                            match inner {
                                ContentBlock::Text { .. } | ContentBlock::Image { .. } => {
                                    parts.extend(media_or_text(inner, &inner_location, options)?)
                                }
                                other => {
                                    return Err(bad(inner_location, format!("a {} block in a document", other.kind())))
                                }
                            }
                        }
                    }
                },
                other => parts.push(source_part(other, &source_location, options)?),
            }
            Ok(parts)
        }
        ContentBlock::Other => Err(bad(location, "this block type is not supported by this gateway")),
        other => Err(bad(location, format!("a {} block is not allowed here", other.kind()))),
    }
}

/// Bytes by value (base64) or by URL (fetched by the caller, or a Gemini
/// file reference).
fn source_part(source: &Source, location: &At<'_>, options: &ConvertOptions) -> Result<Part, ConvertError> {
    match source {
        Source::Base64 { media_type, data } => {
            let data = validated_base64(data.clone()).ok_or_else(|| bad(location.field("data"), "not valid base64"))?;
            if !media_type.contains('/') {
                return Err(bad(location.field("media_type"), "not a MIME type"));
            }
            Ok(inline_data_part(media_type.to_ascii_lowercase(), data))
        }
        Source::Url { url } => {
            if let Some(reference) = gemini_file_reference(url) {
                return Ok(crate::convert::media::file_data_part(reference));
            }
            match options.remote_media.get(url) {
                Some(blob) => Ok(inline_data_part(blob.mime_type.clone(), blob.data.clone())),
                None => Err(bad(location.field("url"), "not an http(s) URL this gateway can fetch")),
            }
        }
        Source::Text { data, .. } => Ok(Part::text(data.clone())),
        Source::Content { .. } => Err(bad(location, "content sources are for documents")),
        Source::Other => {
            Err(bad(location, "this source type is not supported (Anthropic's Files API does not carry over)"))
        }
    }
}

/// A `tool_result` as a `functionResponse` body (Gemini's `output` or
/// `error`; a JSON object result as it is) and the media parts that follow.
fn tool_result(
    content: Option<&ToolResultContent>,
    is_error: bool,
    location: &At<'_>,
    options: &ConvertOptions,
) -> Result<(Value, Vec<Part>), ConvertError> {
    let mut text = String::new();
    let mut media = Vec::new();
    match content {
        None => {}
        Some(ToolResultContent::Text(result)) => text.push_str(result),
        Some(ToolResultContent::Blocks(blocks)) => {
            for (index, block) in blocks.iter().enumerate() {
                let block_location = location.item("content", index);
                match block {
                    ContentBlock::Text { text: piece } => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(piece);
                    }
                    ContentBlock::Image { .. } | ContentBlock::Document { .. } => {
                        media.extend(media_or_text(block, &block_location, options)?)
                    }
                    other => return Err(bad(block_location, format!("a {} block in a tool result", other.kind()))),
                }
            }
        }
    }
    let value = match serde_json::from_str::<Value>(&text) {
        Ok(parsed @ (Value::Object(_) | Value::Array(_))) => parsed,
        _ => Value::String(text),
    };
    let response = match value {
        value if is_error => json!({ "error": value }),
        Value::Object(object) => Value::Object(object),
        value => json!({ "output": value }),
    };
    Ok((response, media))
}

fn function_declarations(request: &MessagesRequest) -> Result<Vec<FunctionDeclaration>, ConvertError> {
    let Some(tools) = &request.tools else { return Ok(Vec::new()) };
    let mut budget = SchemaBudget::default();
    let mut declarations = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        let location = At::top("tools", index);
        match tool.kind.as_deref() {
            None | Some("custom") => {}
            Some(other) => {
                return Err(bad(
                    location.field("type"),
                    format!(
                        "Anthropic's server tool \"{}\" is not available through this gateway; \
                         only client tools (name, description, input_schema) are",
                        crate::error::echo(other)
                    ),
                ))
            }
        }
        if tool.name.is_empty() {
            return Err(bad(location.field("name"), "missing"));
        }
        let parameters = match &tool.input_schema {
            Some(schema) => clean_parameters(schema, &mut budget),
            None => None,
        };
        if budget.exhausted {
            return Err(bad(location.field("input_schema"), "the tools' schemas are too large"));
        }
        declarations.push(FunctionDeclaration {
            name: tool.name.clone(),
            description: tool.description.clone().filter(|description| !description.is_empty()),
            parameters,
        });
    }
    Ok(declarations)
}

fn tool_config(choice: &ToolChoice) -> ToolConfig {
    let (mode, allowed) = match choice {
        ToolChoice::Auto => ("AUTO", None),
        ToolChoice::Any => ("ANY", None),
        ToolChoice::Tool { name } => ("ANY", Some(vec![name.clone()])),
        ToolChoice::None => ("NONE", None),
    };
    ToolConfig {
        function_calling_config: FunctionCallingConfig { mode: mode.to_owned(), allowed_function_names: allowed },
    }
}

fn generation_config(request: &MessagesRequest, options: &ConvertOptions) -> Option<GenerationConfig> {
    let requested = match request.thinking {
        Some(ThinkingParam::Enabled { budget_tokens: Some(budget) }) => Some(ThinkingRequest::Budget(budget)),
        Some(ThinkingParam::Enabled { budget_tokens: None }) => None,
        Some(ThinkingParam::Disabled) => Some(ThinkingRequest::Off),
        Some(ThinkingParam::Other) | None => None,
    };
    let config = GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        max_output_tokens: request.max_tokens,
        stop_sequences: request.stop_sequences.clone().filter(|stops| !stops.is_empty()),
        thinking_config: thinking_config(
            options.model,
            requested,
            options.enable_thinking,
            shows_thinking(request, options.show_thinking),
        ),
        ..GenerationConfig::default()
    };
    (config != GenerationConfig::default()).then_some(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GEMINI_SIGNATURE: &str = "CiIBVKhc7oDPpCaXyJKKssjqr4g3";
    const CLAUDE_SIGNATURE: &str = "EqQBCkgIBhABGAIiQ-a-claude-signature";

    fn convert_with(body: Value, model: &str, remembered: &[(&str, &str)]) -> Result<Value, ConvertError> {
        let request: MessagesRequest = serde_json::from_value(body).unwrap();
        convert_parsed(&request, model, remembered).map(|converted| serde_json::to_value(converted).unwrap())
    }

    fn convert_parsed(
        request: &MessagesRequest,
        model: &str,
        remembered: &[(&str, &str)],
    ) -> Result<GenerateContentRequest, ConvertError> {
        let spec = ModelSpec::parse(model, false);
        let mut remote_media = HashMap::new();
        remote_media.insert(
            "https://example.com/cat.png".to_owned(),
            Blob { mime_type: "image/png".into(), data: "iVBORw0K".into() },
        );
        let remembered: HashMap<String, String> =
            remembered.iter().map(|(id, signature)| (id.to_string(), signature.to_string())).collect();
        let lookup = |id: &str| remembered.get(id).cloned();
        let known = |signature: &str| signature == GEMINI_SIGNATURE;
        let options = ConvertOptions {
            model: &spec,
            enable_thinking: true,
            show_thinking: true,
            safety_threshold: "OFF",
            remote_media: &remote_media,
            signature_for_tool_use: &lookup,
            known_signature: &known,
        };
        to_gemini(request, &options)
    }

    fn convert(body: Value) -> Value {
        convert_with(body, "gemini-2.5-flash", &[]).unwrap()
    }

    /// Parsed from the wire, a long text and a base64 image reach the
    /// Gemini request as slices of the body, as a string or in blocks.
    #[test]
    fn long_texts_and_images_stay_in_the_body() {
        let long = "a".repeat(crate::bodyshare::SHARED_FROM_BYTES);
        let request: MessagesRequest =
            crate::bodyshare::parse_shared_json(&json!({"model": "m", "max_tokens": 10, "messages": [
                {"role": "user", "content": long},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [
                    {"type": "text", "text": long},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": long}}
                ]}
            ]}));
        let converted = convert_parsed(&request, "gemini-2.5-flash", &[]).unwrap();
        let parts: Vec<&Part> =
            [&converted.contents[0], &converted.contents[2]].iter().flat_map(|turn| &turn.parts).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|part| part.payload().is_some_and(|text| text.is_shared() && *text == long.as_str())));
    }

    fn error(body: Value) -> String {
        convert_with(body, "gemini-2.5-flash", &[]).unwrap_err().message
    }

    #[test]
    fn system_messages_and_generation_parameters() {
        let out = convert(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 1024, "temperature": 0.3, "top_p": 0.9, "top_k": 40,
            "stop_sequences": ["END"], "metadata": {"user_id": "u"}, "unknown_field": true,
            "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Answer in French."}],
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
                {"role": "user", "content": [{"type": "text", "text": "Again", "cache_control": {"type": "ephemeral"}}]}
            ]
        }));
        assert_eq!(out["systemInstruction"], json!({"parts": [{"text": "Be terse."}, {"text": "Answer in French."}]}));
        assert_eq!(
            out["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Hello"}]},
                {"role": "model", "parts": [{"text": "Bonjour"}]},
                {"role": "user", "parts": [{"text": "Again"}]}
            ])
        );
        let config = &out["generationConfig"];
        assert_eq!(config["maxOutputTokens"], 1024);
        assert_eq!((config["temperature"].as_f64(), config["topP"].as_f64()), (Some(0.3), Some(0.9)));
        assert_eq!((config["topK"].as_u64(), &config["stopSequences"]), (Some(40), &json!(["END"])));
        assert_eq!(out["safetySettings"].as_array().unwrap().len(), 5);
        // A plain string system prompt too.
        let out = convert(json!({"model": "m", "system": "Short.", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(out["systemInstruction"]["parts"][0]["text"], "Short.");
    }

    #[test]
    fn images_and_documents() {
        let out = convert(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/PNG", "data": "iVBO Rw0K"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
            {"type": "document", "title": "Notes", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inner"}]}},
            {"type": "text", "text": "Describe."}
        ]}]}));
        assert_eq!(
            out["contents"][0]["parts"],
            json!([
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
                {"text": "Document: Notes"}, {"text": "plain words"},
                {"text": "inner"},
                {"text": "Describe."}
            ])
        );
        let request: MessagesRequest =
            serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "tool_result", "tool_use_id": "t", "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]},
                {"type": "image", "source": {"type": "url", "url": "gs://bucket/cat.png"}}
            ]}]}))
            .unwrap();
        assert_eq!(remote_media_urls(&request), ["https://example.com/cat.png", "https://example.com/a.pdf"]);
        assert!(error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!!"}}]}]}))
        .starts_with("messages[0].content[0].source.data"));
        assert!(error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]}))
        .contains("Files API"));
        assert!(error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "search_result", "source": "x", "title": "t", "content": []}]}]}))
        .starts_with("messages[0].content[0]"));
    }

    #[test]
    fn tools_choice_and_results() {
        let out = convert(json!({
            "model": "m",
            "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {
                "type": "object", "$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false,
                "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "ping", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "ping", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "Here you go"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "{\"temp\": 21}"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                     "content": [{"type": "text", "text": "timeout"}]}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_3", "name": "ping", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_3", "content": [
                    {"type": "text", "text": "pong"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}]}]}
            ]
        }));
        let declarations = &out["tools"][0]["functionDeclarations"];
        assert_eq!(declarations[0]["name"], "get_weather");
        assert!(declarations[0]["parameters"].get("$schema").is_none());
        assert!(declarations[0]["parameters"].get("additionalProperties").is_none());
        assert!(declarations[1].get("parameters").is_none(), "no parameters: none sent");
        assert_eq!(
            out["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );
        assert_eq!(
            out["contents"][1]["parts"],
            json!([
                {"text": "Let me look."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "ping", "args": {}}}
            ])
        );
        // Function responses first, named after their calls.
        assert_eq!(
            out["contents"][2]["parts"],
            json!([
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "ping", "response": {"error": "timeout"}}},
                {"text": "Here you go"}
            ])
        );
        assert_eq!(
            out["contents"][4]["parts"],
            json!([
                {"functionResponse": {"name": "ping", "response": {"output": "pong"}}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}
            ])
        );
        for (choice, mode) in [("auto", "AUTO"), ("any", "ANY"), ("none", "NONE")] {
            let out = convert(json!({"model": "m", "tool_choice": {"type": choice},
                                     "messages": [{"role": "user", "content": "x"}]}));
            assert_eq!(out["toolConfig"]["functionCallingConfig"]["mode"], mode);
        }
        assert!(error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_nowhere", "content": "x"}]}]}))
        .contains("matches no earlier tool_use"));
        assert!(error(json!({"model": "m", "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                             "messages": [{"role": "user", "content": "x"}]}))
        .starts_with("tools[0].type"));
    }

    #[test]
    fn thinking_follows_the_request_and_the_model() {
        let body = |thinking: Value| json!({"model": "m", "max_tokens": 9000, "thinking": thinking, "messages": [{"role": "user", "content": "x"}]});
        let out = convert(body(json!({"type": "enabled", "budget_tokens": 4096})));
        assert_eq!(out["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 4096, "includeThoughts": true}));
        // Disabled: the smallest budget, and no thoughts shown.
        let out = convert(body(json!({"type": "disabled"})));
        assert_eq!(out["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 0}));
        let out = convert_with(body(json!({"type": "enabled", "budget_tokens": 100000})), "gemini-3-pro-preview", &[])
            .unwrap();
        assert!(out["generationConfig"]["thinkingConfig"]["thinkingBudget"].as_i64().unwrap() <= 32768);
    }

    #[test]
    fn signatures_come_back_exactly_and_foreign_ones_become_the_placeholder() {
        let skip = SKIP_THOUGHT_SIGNATURE_VALIDATOR;
        // Ours: the thinking block's signature goes to the part after it;
        // a tool_use finds its own by id; the thought text is not replayed.
        let out = convert_with(
            json!({"model": "m", "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Gemini's summary", "signature": GEMINI_SIGNATURE},
                    {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "toolu_b", "name": "g", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": "1"},
                    {"type": "tool_result", "tool_use_id": "toolu_b", "content": "2"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_c", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_c", "content": "3"}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "", "signature": GEMINI_SIGNATURE},
                    {"type": "text", "text": "Done."}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Streamed."},
                    {"type": "thinking", "thinking": "", "signature": GEMINI_SIGNATURE}]}
            ]}),
            "gemini-3-pro-preview",
            &[("toolu_c", GEMINI_SIGNATURE)],
        )
        .unwrap();
        let contents = &out["contents"];
        assert_eq!(contents[1]["parts"][0]["thoughtSignature"], GEMINI_SIGNATURE);
        assert!(contents[1]["parts"][0].get("text").is_none());
        assert!(contents[1]["parts"][1].get("thoughtSignature").is_none(), "parallel calls: the first only");
        assert_eq!(contents[3]["parts"][0]["thoughtSignature"], GEMINI_SIGNATURE, "by tool_use id");
        assert_eq!(contents[5]["parts"], json!([{"text": "Done.", "thoughtSignature": GEMINI_SIGNATURE}]));
        assert_eq!(contents[6]["parts"], json!([{"text": "Streamed.", "thoughtSignature": GEMINI_SIGNATURE}]));
        // Claude's: its text dropped, its signature never forwarded.
        let out = convert_with(
            json!({"model": "m", "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Claude's private thoughts", "signature": CLAUDE_SIGNATURE},
                    {"type": "redacted_thinking", "data": "EmwKAhgB"},
                    {"type": "tool_use", "id": "toolu_01Claude", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Claude", "content": "1"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_02Claude", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_02Claude", "content": "2"}]}
            ]}),
            "gemini-3-pro-preview",
            &[],
        )
        .unwrap();
        let text = out.to_string();
        assert!(!text.contains(CLAUDE_SIGNATURE) && !text.contains("private thoughts") && !text.contains("EmwKAhgB"));
        assert_eq!(
            out["contents"][1]["parts"],
            json!([{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": skip}])
        );
        // Gemini 3 refuses an unsigned replayed call: the placeholder.
        assert_eq!(out["contents"][3]["parts"][0]["thoughtSignature"], skip);
    }

    #[test]
    fn bad_requests_name_the_place() {
        assert_eq!(error(json!({"model": "m", "messages": []})), "messages: must not be empty");
        assert!(error(json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}))
            .starts_with("messages[0].role"));
        assert!(error(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}))
        .starts_with("messages[0].content[0]"));
        assert!(error(json!({"model": "m", "messages": [{"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}]}))
        .starts_with("messages[0].content[0].input"));
    }

    #[test]
    fn count_tokens_sends_the_whole_request() {
        let converted = convert(json!({"model": "m", "system": "S", "tools": [{"name": "f", "input_schema":
            {"type": "object", "properties": {"a": {"type": "string"}}}}],
            "messages": [{"role": "user", "content": "x"}]}));
        let request: GenerateContentRequest = serde_json::from_value(converted).unwrap();
        let body = count_tokens_body("gemini-2.5-flash", request);
        let inner = &body["generateContentRequest"];
        assert_eq!(inner["model"], "models/gemini-2.5-flash");
        assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "S");
        assert_eq!(inner["tools"][0]["functionDeclarations"][0]["name"], "f");
        assert!(inner.get("safetySettings").is_none());
    }
}
