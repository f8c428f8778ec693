//! Tool calls and results (rules 3, 4 and 8): assistant tool calls as
//! `functionCall` parts with their thought signatures, `tool` messages as
//! `functionResponse` parts, function tools as declarations, `tool_choice`
//! as the tool config.

use super::*;
pub(super) use crate::convert::add_skip_signature_to_unsigned_first_function_calls;

/// Rule 3: one assistant tool call as a `functionCall` part, with its
/// thought signature (from `extra_content.google.thought_signature`, else
/// remembered by the caller). Returns the call's id too.
pub(super) fn convert_tool_call(
    tool_call: &Value,
    tool_call_location: At<'_>,
    opts: &ConvertOptions,
) -> Result<(Option<String>, Part), ConvertError> {
    let Some(tool_call_object) = tool_call.as_object() else {
        return Err(bad_request_at(tool_call_location, "a tool call must be an object"));
    };
    let function_location = tool_call_location.field("function");
    let Some(function) = tool_call_object.get("function").and_then(Value::as_object) else {
        return Err(bad_request_at(function_location, "missing"));
    };
    let function_name = function.get("name").and_then(Value::as_str).filter(|name| !name.is_empty());
    let Some(function_name) = function_name else {
        return Err(bad_request_at(function_location.field("name"), "missing"));
    };
    let arguments_location = function_location.field("arguments");
    let arguments = match function.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(arguments_text)) if arguments_text.trim().is_empty() => json!({}),
        Some(Value::String(arguments_text)) => match serde_json::from_str::<Value>(arguments_text) {
            Ok(Value::Object(arguments)) => Value::Object(arguments),
            Ok(Value::Null) => json!({}),
            Ok(_) => {
                return Err(bad_request_at(arguments_location, "not a JSON object"));
            }
            Err(_) => return Err(bad_request_at(arguments_location, "not valid JSON")),
        },
        Some(Value::Object(arguments)) => Value::Object(arguments.clone()),
        Some(_) => return Err(bad_request_at(arguments_location, "must be a JSON-encoded string")),
    };
    let tool_call_id = tool_call_object.get("id").and_then(Value::as_str).map(str::to_string);
    let thought_signature = tool_call_object
        .get("extra_content")
        .and_then(|extra_content| extra_content.get("google"))
        .and_then(|google| google.get("thought_signature"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| tool_call_id.as_deref().and_then(|id| (opts.thought_signature_for)(id)))
        // Not Gemini's (another model's, or stale): the placeholder instead.
        .map(|signature| {
            if (opts.known_signature)(&signature) {
                signature
            } else {
                crate::convert::SKIP_THOUGHT_SIGNATURE_VALIDATOR.to_owned()
            }
        });
    // The OpenAI call id is not forwarded: Gemini matches calls and responses
    // by name and order, and AI Studio and Vertex differ on accepting ids.
    let part = Part {
        thought_signature,
        function_call: Some(FunctionCall { id: None, name: function_name.to_string(), args: arguments }),
        ..Part::default()
    };
    Ok((tool_call_id, part))
}

/// Rule 4: a `tool` message as a `functionResponse` part. The function name
/// comes from the earlier assistant tool call with the same id, else from the
/// message's `name`.
pub(super) fn convert_tool_result(
    message: &Message,
    message_location: At<'_>,
    function_name_by_tool_call_id: &HashMap<String, String>,
) -> Result<Part, ConvertError> {
    let tool_call_id = message.tool_call_id.as_deref();
    let function_name = tool_call_id
        .and_then(|id| function_name_by_tool_call_id.get(id))
        .cloned()
        .or_else(|| message.name.clone().filter(|name| !name.is_empty()));
    let Some(function_name) = function_name else {
        let tool_call_id_param = message_location.field("tool_call_id");
        return Err(match tool_call_id {
            Some(id) => bad_request_with_param(
                message_location,
                tool_call_id_param,
                format!("tool_call_id {id:?} matches no earlier assistant tool call"),
            ),
            None => bad_request_with_param(message_location, tool_call_id_param, "a tool message needs a tool_call_id"),
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

pub(super) fn tool_result_text(content: Option<&BodyJson>, message_location: At<'_>) -> Result<String, ConvertError> {
    let content_location = message_location.field("content");
    match content {
        None | Some(BodyJson::Null) => Ok(String::new()),
        Some(BodyJson::String(text)) => Ok(text.as_str().to_owned()),
        Some(BodyJson::Array(content_parts)) => {
            let mut text = String::new();
            for (part_index, content_part) in content_parts.iter().enumerate() {
                let is_text_part = matches!(content_part.get("type").and_then(BodyJson::as_str), None | Some("text"));
                match content_part.get("text").and_then(BodyJson::as_str) {
                    Some(part_text) if is_text_part => text.push_str(part_text),
                    _ => {
                        return Err(bad_request_at(
                            content_location.index(part_index),
                            "a tool result may only contain text parts",
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(bad_request_with_param(
            message_location,
            content_location,
            "content must be a string or an array of text parts",
        )),
    }
}

/// Rule 8: the request's function tools as Gemini function declarations.
pub(super) fn convert_tools(tools: Option<&[Value]>) -> Result<Vec<FunctionDeclaration>, ConvertError> {
    let mut function_declarations = Vec::new();
    // One budget for all the tools of a request: many tools each expanding
    // `$ref`s must not add up to an unbounded amount of memory.
    let mut budget = crate::convert::schema::SchemaBudget::default();
    for (tool_index, tool) in tools.unwrap_or_default().iter().enumerate() {
        let tool_location = At::top("tools", tool_index);
        let Some(tool_object) = tool.as_object() else {
            return Err(bad_request_at(tool_location, "a tool must be an object"));
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
        let function_location = tool_location.field("function");
        let Some(function) = tool_object.get("function").and_then(Value::as_object) else {
            return Err(bad_request_at(function_location, "missing"));
        };
        let function_name = function.get("name").and_then(Value::as_str).filter(|name| !name.is_empty());
        let Some(function_name) = function_name else {
            return Err(bad_request_at(function_location.field("name"), "missing"));
        };
        let description = function
            .get("description")
            .and_then(Value::as_str)
            .filter(|description| !description.is_empty())
            .map(str::to_string);
        let parameters = function
            .get("parameters")
            .and_then(|parameters| crate::convert::schema::clean_parameters(parameters, &mut budget));
        if budget.exhausted {
            return Err(bad_request_at(
                function_location.field("parameters"),
                "the tool schemas are too large once their $refs are expanded",
            ));
        }
        function_declarations.push(FunctionDeclaration { name: function_name.to_string(), description, parameters });
    }
    Ok(function_declarations)
}

/// Rule 8, `tool_choice`: none → NONE, auto → AUTO, required → ANY, a named
/// function → ANY restricted to it.
pub(super) fn convert_tool_choice(tool_choice: Option<&Value>) -> Result<Option<ToolConfig>, ConvertError> {
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
