//! The conversion's tests, table- and fixture-driven.

use super::*;
use crate::convert::schema::{
    clean_parameters as convert_function_parameters, SchemaBudget, MAXIMUM_CLEANED_SCHEMA_BYTES,
};
use crate::convert::SAFETY_CATEGORIES;
use serde_json::Map;

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
    convert_parsed(settings, &chat_request).map(|request| serde_json::to_value(request).expect("request serializes"))
}

fn convert_parsed(settings: &Settings, chat_request: &ChatRequest) -> Result<GenerateContentRequest, ConvertError> {
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
        // Every test signature counts as Gemini's but the foreign one.
        known_signature: &|signature: &str| signature != FOREIGN_SIGNATURE,
    };
    let mut rng = StdRng::seed_from_u64(TEST_RNG_SEED);
    to_gemini(chat_request, &opts, &mut rng)
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
            "roles in any case",
            settings(),
            json!({"model": "m", "messages": [
                {"role": "System", "content": "S"},
                {"role": "USER", "content": "U"},
                {"role": "Assistant", "content": "A"}
            ]}),
            json!({
                "systemInstruction": {"parts": [{"text": "S"}]},
                "contents": [user_turn(json!([{"text": "U"}])), model_turn(json!([{"text": "A"}]))]
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
    let remote_image = Blob { mime_type: "image/webp".to_string(), data: "UklGRg==".into() };
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

/// A signature Gemini did not issue (a conversation begun elsewhere).
const FOREIGN_SIGNATURE: &str = "EqQBCkgIBhABGAIiQ-a-claude-signature";

#[test]
fn a_signature_gemini_did_not_issue_becomes_the_placeholder() {
    let mut history = tool_call_history();
    history["messages"][1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"] = json!(FOREIGN_SIGNATURE);
    let converted = convert(&settings(), history).unwrap();
    let sent = converted.to_string();
    assert!(!sent.contains(FOREIGN_SIGNATURE), "forwarded raw: {sent}");
    assert_eq!(converted["contents"][1]["parts"][1]["thoughtSignature"], json!("skip_thought_signature_validator"));
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
        check(case_name, settings(), request_with(fields), json!({ "generationConfig": expected_generation_config }));
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
            let size: usize = declarations.iter().map(|d| serde_json::to_string(&d.parameters).unwrap().len()).sum();
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
        ("nothing asked, showing thoughts", showing("gemini-2.5-flash"), json!({}), json!({"includeThoughts": true})),
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
        ("effort low", model("gemini-2.5-flash"), json!({"reasoning_effort": "low"}), json!({"thinkingBudget": 1024})),
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
            SAFETY_CATEGORIES.iter().map(|category| json!({"category": category, "threshold": threshold})).collect(),
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

/// Parsed from the wire, long texts and data-URL media reach the Gemini
/// request as slices of the body (a single system text too).
#[test]
fn long_texts_and_media_stay_in_the_body() {
    let long = "A".repeat(crate::bodyshare::SHARED_FROM_BYTES);
    let request: ChatRequest = crate::bodyshare::parse_shared_json(&json!({"model": "m", "messages": [
        {"role": "system", "content": long},
        {"role": "user", "content": [
            {"type": "text", "text": long},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{long}")}},
            {"type": "input_audio", "input_audio": {"data": long, "format": "wav"}},
            {"type": "file", "file": {"file_data": long, "filename": "a.pdf"}}
        ]},
        {"role": "assistant", "content": long}
    ]}));
    let converted = convert_parsed(&settings(), &request).unwrap();
    let system = converted.system_instruction.as_ref().unwrap();
    let parts: Vec<&Part> = system.parts.iter().chain(converted.contents.iter().flat_map(|turn| &turn.parts)).collect();
    assert_eq!(parts.len(), 6);
    assert!(parts.iter().all(|part| part.payload().is_some_and(|text| text.is_shared() && *text == long.as_str())));
}

#[test]
fn locations_are_written_out_as_the_request_reads() {
    let message = At::top("messages", 3);
    let content = message.field("content");
    assert_eq!(message.to_string(), "messages[3]");
    assert_eq!(content.index(1).to_string(), "messages[3].content[1]");
    assert_eq!(message.item("tool_calls", 0).field("function").to_string(), "messages[3].tool_calls[0].function");
    let tools = [json!({"type": "function", "function": {"description": "no name"}})];
    let ConvertError::BadRequest { message, param } = convert_tools(Some(&tools)).unwrap_err();
    assert_eq!(message, "tools[0].function.name: missing");
    assert_eq!(param.as_deref(), Some("tools[0].function.name"));
}
