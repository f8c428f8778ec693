//! The Responses request conversion, table-driven: each case is a request
//! and what of the Gemini request it must give (or the error's parameter).

use super::*;
use crate::bodyshare::BodyJson;

const KNOWN: &str = "sig-issued-by-gemini";
const FOREIGN: &str = "gAAAAB-openai-encrypted";
const PNG: &str = "iVBORw0KGgo=";

struct Setup {
    model: &'static str,
    remembered: HashMap<String, String>,
    remote_media: HashMap<String, Blob>,
}

fn setup(model: &'static str) -> Setup {
    Setup { model, remembered: HashMap::new(), remote_media: HashMap::new() }
}

fn convert_with(setup: &Setup, history: &[Value], request: Value) -> Result<Value, ConvertError> {
    let request: ResponsesRequest = serde_json::from_value(request).expect("test request deserializes");
    let history: Vec<BodyJson> = history.iter().cloned().map(BodyJson::from).collect();
    convert_parsed(setup, &history, request).map(|converted| serde_json::to_value(converted).unwrap())
}

fn convert_parsed(
    setup: &Setup,
    history: &[BodyJson],
    mut request: ResponsesRequest,
) -> Result<GenerateContentRequest, ConvertError> {
    let input = request.take_input_items()?;
    let spec = ModelSpec::parse(setup.model, true);
    let lookup = |call_id: &str| setup.remembered.get(call_id).cloned();
    let options = ConvertOptions {
        model: &spec,
        enable_thinking: true,
        show_thinking: false,
        safety_threshold: "OFF",
        remote_media: &setup.remote_media,
        thought_signature_for: &lookup,
        known_signature: &|signature: &str| signature != FOREIGN && signature != SKIP_THOUGHT_SIGNATURE_VALIDATOR,
    };
    to_gemini(&request, &located_items(history, &input), &options)
}

fn convert(request: Value) -> Result<Value, ConvertError> {
    convert_with(&setup("gemini-2.5-flash"), &[], request)
}

fn param_of(result: Result<Value, ConvertError>) -> String {
    match result {
        Err(ConvertError::BadRequest { param, .. }) => param.unwrap_or_default(),
        Ok(converted) => panic!("expected an error, got {converted}"),
    }
}

#[test]
fn messages_instructions_and_content_parts() {
    let converted = convert(json!({
        "model": "m",
        "instructions": "Be terse.",
        "input": [
            {"role": "developer", "content": "Use tools."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Look:"},
                {"type": "input_image", "image_url": format!("data:image/png;base64,{PNG}")},
                {"type": "input_file", "filename": "a.pdf", "file_data": PNG}
            ]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "A picture."}]},
            {"role": "system", "content": "Later system text is user text."},
            {"role": "user", "content": "And?"}
        ]
    }))
    .unwrap();
    assert_eq!(converted["systemInstruction"]["parts"], json!([{"text": "Be terse."}, {"text": "Use tools."}]));
    assert_eq!(
        converted["contents"],
        json!([
            {"role": "user", "parts": [
                {"text": "Look:"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"inlineData": {"mimeType": "application/pdf", "data": PNG}}
            ]},
            {"role": "model", "parts": [{"text": "A picture."}]},
            {"role": "user", "parts": [{"text": "Later system text is user text."}, {"text": "And?"}]}
        ])
    );
    assert_eq!(converted["safetySettings"].as_array().unwrap().len(), crate::convert::SAFETY_CATEGORIES.len());
    // A plain string is one user message.
    let converted = convert(json!({"model": "m", "input": "Hi"})).unwrap();
    assert_eq!(converted["contents"], json!([{"role": "user", "parts": [{"text": "Hi"}]}]));
}

#[test]
fn remote_media_is_fetched_by_the_caller_and_listed_once() {
    let items = vec![BodyJson::from(json!({"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_image", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "input_file", "file_url": "https://example.com/b.pdf"},
        {"type": "input_image", "image_url": "gs://bucket/c.png"}
    ]}))];
    assert_eq!(remote_media_urls(&items), vec!["https://example.com/a.png", "https://example.com/b.pdf"]);
    let mut with_media = setup("gemini-2.5-flash");
    let blob = Blob { mime_type: "image/png".into(), data: PNG.into() };
    with_media.remote_media.insert("https://example.com/a.png".into(), blob);
    let request = json!({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_image", "image_url": "gs://bucket/c.png"}
    ]}]});
    let converted = convert_with(&with_media, &[], request).unwrap();
    assert_eq!(converted["contents"][0]["parts"][0]["inlineData"]["mimeType"], "image/png");
    assert_eq!(converted["contents"][0]["parts"][1]["fileData"]["fileUri"], "gs://bucket/c.png");
}

#[test]
fn mistakes_are_400s_naming_the_parameter() {
    let message = |content: Value| json!({"model": "m", "input": [{"role": "user", "content": content}]});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("input of another type", json!({"model": "m", "input": 3}), "input"),
        ("no message", json!({"model": "m", "input": []}), "input"),
        ("an unknown role", json!({"model": "m", "input": [{"role": "bot", "content": "x"}]}), "input[0].role"),
        ("an unknown item", json!({"model": "m", "input": [{"type": "computer_call"}]}), "input[0].type"),
        ("an item reference", json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}), "input[0]"),
        (
            "an OpenAI file id",
            message(json!([{"type": "input_file", "file_id": "file-1"}])),
            "input[0].content[0].file_id",
        ),
        ("a bad data URL", message(json!([{"type": "input_image", "image_url": "data:nope"}])), "input[0].content[0]"),
        ("an unknown part", message(json!([{"type": "input_audio"}])), "input[0].content[0]"),
        (
            "an output for no call",
            json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}),
            "input[0].call_id",
        ),
        (
            "arguments that are not an object",
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]}),
            "input[0].arguments",
        ),
        ("a built-in tool", json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]}), "tools[0].type"),
        ("a nameless function", json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}), "tools[0].name"),
        (
            "a tool_choice of a built-in",
            json!({"model": "m", "input": "x", "tool_choice": {"type": "web_search"}}),
            "tool_choice.type",
        ),
        ("an unknown effort", json!({"model": "m", "input": "x", "reasoning": {"effort": "huge"}}), "reasoning.effort"),
        (
            "an unknown format",
            json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}),
            "text.format.type",
        ),
        ("instructions not text", json!({"model": "m", "input": "x", "instructions": 5}), "instructions"),
    ];
    for (case, request, param) in cases {
        assert_eq!(param_of(convert(request)), param, "{case}");
    }
}

#[test]
fn tools_tool_choice_and_generation_settings() {
    let converted = convert(json!({
        "model": "m", "input": "x", "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 100,
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "r", "strict": true,
                 "schema": {"$schema": "x", "type": "object", "properties": {"a": {"type": "string"}}}}},
        "tools": [{"type": "function", "name": "f", "description": "does f", "strict": true,
                   "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "additionalProperties": false}}],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": false
    }))
    .unwrap();
    let declaration = &converted["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "f");
    assert_eq!(declaration["description"], "does f");
    assert_eq!(declaration["parameters"]["properties"]["q"]["type"], "string");
    assert_eq!(converted["toolConfig"]["functionCallingConfig"], json!({"mode": "ANY", "allowedFunctionNames": ["f"]}));
    let config = &converted["generationConfig"];
    assert_eq!(config["temperature"], 0.2);
    assert_eq!(config["topP"], 0.9);
    assert_eq!(config["maxOutputTokens"], 100);
    assert_eq!(config["responseMimeType"], "application/json");
    assert!(config["responseJsonSchema"].get("$schema").is_none());
    assert_eq!(config["thinkingConfig"]["thinkingBudget"], crate::convert::thinking::LOW_EFFORT_THINKING_BUDGET);

    let choices = [
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("none"), json!({"mode": "NONE"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]}),
            json!({"mode": "ANY", "allowedFunctionNames": ["f"]}),
        ),
    ];
    for (choice, expected) in choices {
        let converted = convert(json!({"model": "m", "input": "x", "tool_choice": choice})).unwrap();
        assert_eq!(converted["toolConfig"]["functionCallingConfig"], expected, "{choice}");
    }
    // allowed_tools in auto mode offers only those functions.
    let converted = convert(json!({"model": "m", "input": "x",
        "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}],
        "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "g"}]}}))
    .unwrap();
    assert_eq!(converted["tools"][0]["functionDeclarations"], json!([{"name": "g"}]));
    let converted = convert(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}})).unwrap();
    assert_eq!(converted["generationConfig"], json!({"responseMimeType": "application/json"}));
    // xhigh, Codex's highest, is high.
    let converted = convert_with(
        &setup("gemini-3-pro-preview"),
        &[],
        json!({"model": "m", "input": "x", "reasoning": {"effort": "xhigh"}}),
    )
    .unwrap();
    assert_eq!(converted["generationConfig"]["thinkingConfig"]["thinkingLevel"], "high");
}

fn call(call_id: &str, name: &str) -> Value {
    json!({"type": "function_call", "call_id": call_id, "name": name, "arguments": "{\"a\":1}", "id": "fc_1"})
}

fn output(call_id: &str, text: &str) -> Value {
    json!({"type": "function_call_output", "call_id": call_id, "output": text})
}

fn reasoning(signature: &str) -> Value {
    json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": signature})
}

/// Each model turn's parts' signatures.
type TurnSignatures = Vec<Vec<Option<String>>>;

/// The signatures of the model turns' parts, by turn.
fn signatures(converted: &Value) -> TurnSignatures {
    converted["contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|turn| turn["role"] == "model")
        .map(|turn| {
            turn["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|part| part["thoughtSignature"].as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn signatures_go_back_on_the_parts_they_came_from() {
    let user = json!({"role": "user", "content": "go"});
    let text = |words: &str| json!({"role": "assistant", "content": [{"type": "output_text", "text": words}]});
    let s = |signature: &str| Some(signature.to_owned());
    let skip = SKIP_THOUGHT_SIGNATURE_VALIDATOR;
    let cases: Vec<(&str, &str, Vec<Value>, TurnSignatures)> = vec![
        (
            "before parallel calls: on the first",
            "gemini-2.5-flash",
            vec![
                user.clone(),
                reasoning(KNOWN),
                call("c1", "f"),
                call("c2", "g"),
                output("c1", "1"),
                output("c2", "2"),
            ],
            vec![vec![s(KNOWN), None]],
        ),
        (
            "after a text answer: on its text",
            "gemini-2.5-flash",
            vec![user.clone(), text("Hi"), reasoning(KNOWN), user.clone()],
            vec![vec![s(KNOWN)]],
        ),
        (
            "text, then a signed call",
            "gemini-2.5-flash",
            vec![user.clone(), text("Checking"), reasoning(KNOWN), call("c1", "f"), output("c1", "1")],
            vec![vec![None, s(KNOWN)]],
        ),
        (
            "thoughts before text: on the text",
            "gemini-2.5-flash",
            vec![user.clone(), reasoning(KNOWN), text("Hi")],
            vec![vec![s(KNOWN)]],
        ),
        (
            "not Gemini's: the placeholder",
            "gemini-2.5-flash",
            vec![user.clone(), reasoning(FOREIGN), call("c1", "f"), output("c1", "1")],
            vec![vec![s(skip)]],
        ),
        (
            "no reasoning item: remembered by call id, else the placeholder on Gemini 3",
            "gemini-3-pro-preview",
            vec![user.clone(), call("remembered", "f"), output("remembered", "1"), call("c9", "g"), output("c9", "2")],
            vec![vec![s(KNOWN)], vec![s(skip)]],
        ),
        (
            "a foreign reasoning item, but the call's own is remembered",
            "gemini-3-pro-preview",
            vec![user.clone(), reasoning(FOREIGN), call("remembered", "f"), output("remembered", "1")],
            vec![vec![s(KNOWN)]],
        ),
        (
            "a reasoning item alone in its turn goes nowhere",
            "gemini-2.5-flash",
            vec![user.clone(), text("a"), user.clone(), reasoning(KNOWN), user.clone()],
            vec![vec![None]],
        ),
    ];
    for (case, model, items, expected) in cases {
        let mut with = setup(model);
        with.remembered.insert("remembered".into(), KNOWN.into());
        let converted = convert_with(&with, &[], json!({"model": "m", "input": items})).unwrap();
        assert_eq!(signatures(&converted), expected, "{case}");
        assert!(!converted.to_string().contains(FOREIGN), "{case}: never forwarded raw");
    }
}

#[test]
fn function_calls_and_outputs_become_calls_and_named_responses() {
    let converted = convert(json!({"model": "m", "input": [
        {"role": "user", "content": "go"},
        call("c1", "lookup"),
        {"type": "function_call_output", "call_id": "c1", "output": "{\"found\": true}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_text", "text": "see "}, {"type": "input_text", "text": "this"},
            {"type": "input_image", "image_url": format!("data:image/png;base64,{PNG}")}
        ]}
    ]}))
    .unwrap();
    assert_eq!(
        converted["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"a": 1}}}]})
    );
    assert_eq!(
        converted["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "lookup", "response": {"found": true}}},
            {"functionResponse": {"name": "lookup", "response": {"content": "see this"}}},
            {"inlineData": {"mimeType": "image/png", "data": PNG}}
        ])
    );
}

#[test]
fn history_comes_first_and_its_errors_name_previous_response_id() {
    let history = vec![json!({"role": "user", "content": "Earlier"}), call("c1", "f")];
    let converted =
        convert_with(&setup("gemini-2.5-flash"), &history, json!({"model": "m", "input": [output("c1", "x")]}))
            .unwrap();
    assert_eq!(converted["contents"][0]["parts"][0]["text"], "Earlier");
    assert_eq!(converted["contents"][2]["parts"][0]["functionResponse"]["name"], "f");
    let broken = vec![json!({"type": "mystery"})];
    let result = convert_with(&setup("gemini-2.5-flash"), &broken, json!({"model": "m", "input": "x"}));
    assert_eq!(param_of(result), "previous_response_id.type");
}

#[test]
fn a_search_model_gets_google_search_unless_it_has_function_tools() {
    let search = setup("gemini-2.5-flash-search");
    let converted = convert_with(&search, &[], json!({"model": "m", "input": "x"})).unwrap();
    assert_eq!(converted["tools"], json!([{"googleSearch": {}}]));
    let converted =
        convert_with(&search, &[], json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}]}))
            .unwrap();
    assert_eq!(converted["tools"], json!([{"functionDeclarations": [{"name": "f"}]}]));
}

#[test]
fn echoed_fields_have_the_apis_defaults() {
    let request: ResponsesRequest = serde_json::from_value(json!({"model": "m", "unknown_field": 1})).unwrap();
    let echoed: Value = serde_json::from_str(&format!("{{{}}}", request.echoed_fields().members())).unwrap();
    assert_eq!(echoed["parallel_tool_calls"], true);
    assert_eq!(echoed["store"], true);
    assert_eq!(echoed["tool_choice"], "auto");
    assert_eq!(echoed["tools"], json!([]));
    assert_eq!(echoed["text"], json!({"format": {"type": "text"}}));
    assert_eq!(echoed["reasoning"], json!({"effort": null, "summary": null}));
    assert_eq!(echoed["metadata"], json!({}));
    assert_eq!(echoed["instructions"], Value::Null);
    assert_eq!(echoed["temperature"], 1.0);
    // Never one of the fields the response writes itself.
    for own in ["id", "object", "created_at", "status", "error", "incomplete_details", "model", "output", "usage"] {
        assert!(echoed.get(own).is_none(), "{own}");
    }
}

#[test]
fn echoed_fields_carry_what_the_client_gave() {
    let request: ResponsesRequest = serde_json::from_value(json!({
        "model": "m", "instructions": "Be brief.", "metadata": {"a": "b"}, "tool_choice": "required",
        "tools": [{"type": "function", "name": "f"}], "text": {"format": {"type": "json_object"}},
        "reasoning": {"effort": "high"}, "store": false, "temperature": 0.5, "top_p": 0.9,
        "max_output_tokens": 100, "user": "u", "previous_response_id": "resp_x", "parallel_tool_calls": false,
    }))
    .unwrap();
    let echoed: Value = serde_json::from_str(&format!("{{{}}}", request.echoed_fields().members())).unwrap();
    assert_eq!(
        echoed,
        json!({
            "instructions": "Be brief.", "max_output_tokens": 100, "metadata": {"a": "b"},
            "parallel_tool_calls": false, "previous_response_id": "resp_x",
            "reasoning": {"effort": "high", "summary": null}, "store": false, "temperature": 0.5,
            "text": {"format": {"type": "json_object"}}, "tool_choice": "required",
            "tools": [{"type": "function", "name": "f"}], "top_p": 0.9, "truncation": "disabled", "user": "u",
        })
    );
}

#[test]
fn response_ids_are_checked_before_any_lookup() {
    let mut rng = rand::rng();
    let id = super::super::response_id(&mut rng);
    assert!(super::super::is_response_id(&id), "{id}");
    for bad in ["", "resp_", "resp_a/b", "msg_abc", &format!("resp_{}", "a".repeat(65))] {
        assert!(!super::super::is_response_id(bad), "{bad}");
    }
}

/// Parsed from the wire, long texts, data-URL images and base64 files
/// reach the Gemini request as slices of the body.
#[test]
fn long_texts_and_media_stay_in_the_body() {
    let long = "A".repeat(crate::bodyshare::SHARED_FROM_BYTES);
    let request: ResponsesRequest = crate::bodyshare::parse_shared_json(&json!({"model": "m", "input": [
        {"role": "user", "content": [
            {"type": "input_text", "text": long},
            {"type": "input_image", "image_url": format!("data:image/png;base64,{long}")},
            {"type": "input_file", "file_data": long, "filename": "a.pdf"}
        ]}
    ]}));
    let converted = convert_parsed(&setup("gemini-2.5-flash"), &[], request).unwrap();
    let parts = &converted.contents[0].parts;
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|part| part.payload().is_some_and(|text| text.is_shared() && *text == long.as_str())));
}
