//! The Anthropic Messages door (`/v1/messages`, `/anthropic/v1/messages`,
//! `count_tokens`, the model list in Anthropic's shape) over real sockets,
//! in front of the fake Gemini upstream: answers, Anthropic's event
//! sequence (real and fake streams), tools, thought signatures carried
//! back exactly (also against Gemini 3's check of replayed tool turns),
//! errors in Anthropic's envelope and statuses.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");
const CLAUDE_SIGNATURE: &str = "EqQBCkgIBhABGAIiQ-a-claude-signature";

fn real_streaming(config: &mut hajimi::config::Config) {
    config.fake_streaming = false;
}

async fn messages(app: &TestApp, body: &Value) -> Answer {
    app.post_with("/v1/messages", body, &[("x-api-key", PASSWORD), VERSION]).await
}

fn body(model: &str, stream: bool, messages: Value) -> Value {
    json!({"model": model, "max_tokens": 1024, "stream": stream, "messages": messages})
}

fn hello(stream: bool) -> Value {
    let mut body = body("gemini-2.5-flash", stream, json!([{"role": "user", "content": "Hello"}]));
    body["system"] = json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]);
    body
}

/// `(event, data)` of every SSE event, pings included.
fn sse_events(answer: &Answer) -> Vec<(String, Value)> {
    answer
        .body
        .split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap_or_else(|| panic!("not an SSE event: {event:?}"));
            let name = name.strip_prefix("event: ").unwrap_or_else(|| panic!("no event line: {event:?}"));
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name, "the event line names the data's type");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).filter(|name| *name != "ping").collect()
}

/// The message a stream adds up to, as Anthropic's SDKs accumulate it.
fn accumulate(events: &[(String, Value)]) -> Value {
    let mut message = Value::Null;
    let mut json_inputs: Vec<String> = Vec::new();
    for (name, data) in events {
        match name.as_str() {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                message["content"].as_array_mut().unwrap().push(data["content_block"].clone());
                json_inputs.push(String::new());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        block["text"] =
                            json!(format!("{}{}", block["text"].as_str().unwrap(), delta["text"].as_str().unwrap()))
                    }
                    "thinking_delta" => {
                        block["thinking"] = json!(format!(
                            "{}{}",
                            block["thinking"].as_str().unwrap(),
                            delta["thinking"].as_str().unwrap()
                        ))
                    }
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        json_inputs[index].push_str(delta["partial_json"].as_str().unwrap());
                        block["input"] = serde_json::from_str(&json_inputs[index]).unwrap();
                    }
                    other => panic!("unknown delta {other}"),
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["usage"]["output_tokens"] = data["usage"]["output_tokens"].clone();
                message["usage"]["input_tokens"] = data["usage"]["input_tokens"].clone();
            }
            _ => {}
        }
    }
    message
}

/// The whole answer as a single SSE event (a Gemini stream that sends
/// everything at once, e.g. parallel calls).
fn whole_answer_as_sse(name: &str) -> Reply {
    let value: Value = serde_json::from_str(&fixture(name)).unwrap();
    Reply::Sse { events: vec![format!("data: {value}\r\n\r\n")], delay: Duration::ZERO }
}

#[actix_web::test]
async fn a_message_echoes_the_clients_model_and_gemini_sees_the_aliased_one() {
    let app = spawn_app_with(2, |config| {
        config.model_aliases = vec![("claude-*".into(), "gemini-2.5-flash".into())];
    })
    .await;
    let mut request = hello(false);
    request["model"] = json!("claude-sonnet-4-5");
    request["metadata"] = json!({"user_id": "someone"});
    let answer = app
        .post_with("/v1/messages", &request, &[("x-api-key", PASSWORD), VERSION, ("anthropic-beta", "tools-2024")])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let message = answer.json();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello! How can I help you today?"}]));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 12);
    assert_eq!(message["usage"]["output_tokens"], 9);
    assert_eq!(message["usage"]["cache_read_input_tokens"], 0);
    let seen = &app.upstream.generation_calls()[0];
    assert_eq!((seen.model.as_str(), seen.action.as_str()), ("gemini-2.5-flash", "generateContent"));
    assert_eq!(seen.body["systemInstruction"]["parts"][0]["text"], "You are terse.");
    assert_eq!(seen.body["contents"], json!([{"role": "user", "parts": [{"text": "Hello"}]}]));
    // Under /anthropic too, with a bearer token.
    let answer = app.post("/anthropic/v1/messages", &hello(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["model"], "gemini-2.5-flash");
}

#[actix_web::test]
async fn a_real_stream_is_anthropics_event_sequence_with_pings_while_waiting() {
    let app = spawn_app_with(1, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(150)));
    let answer = messages(&app, &hello(true)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    let events = sse_events(&answer);
    assert!(events.iter().any(|(name, _)| name == "ping"), "{}", answer.body);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let message = accumulate(&events);
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello! How can I help you today?"}]));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        (message["usage"]["input_tokens"].as_u64(), message["usage"]["output_tokens"].as_u64()),
        (Some(4), Some(9))
    );
    assert_eq!(app.upstream.generation_calls()[0].action, "streamGenerateContent");
}

#[actix_web::test]
async fn a_fake_stream_pings_then_sends_the_whole_answer_as_events() {
    let app = spawn_app_with(1, |_| {}).await;
    app.upstream
        .answer(|_, _| Reply::After(Duration::from_millis(200), Box::new(Reply::fixture("response-thinking.json"))));
    let answer = messages(&app, &hello(true)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = sse_events(&answer);
    assert_eq!(events[0].0, "ping", "pings while the answer is prepared");
    let message = accumulate(&events);
    assert_eq!(message["content"][0]["type"], "thinking");
    assert_eq!(message["content"][0]["thinking"], "**Adding the numbers**\n\nTwo plus two is four.");
    assert_eq!(message["content"][1], json!({"type": "text", "text": "2 + 2 = 4."}));
    assert_eq!(names(&events).last(), Some(&"message_stop"));
    // Generated without streaming upstream.
    assert_eq!(app.upstream.generation_calls()[0].action, "generateContent");
}

#[actix_web::test]
async fn a_tool_use_round_trip_brings_the_signature_back_to_the_key_that_made_it() {
    let app = spawn_app_with(3, |_| {}).await;
    app.upstream.answer(|_, _| Reply::fixture("response-function-call.json"));
    let mut request =
        body("gemini-3-pro-preview", false, json!([{"role": "user", "content": "Weather and time in Paris?"}]));
    request["tools"] = json!([
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object",
         "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}
    ]);
    request["tool_choice"] = json!({"type": "auto"});
    let first = messages(&app, &request).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let message = first.json();
    assert_eq!(message["stop_reason"], "tool_use");
    let content = message["content"].as_array().unwrap().clone();
    assert_eq!(content[0], json!({"type": "thinking", "thinking": "", "signature": FIXTURE_SIGNATURES[0]}));
    let (weather, time) = (&content[1], &content[2]);
    assert_eq!((weather["type"].as_str(), weather["name"].as_str()), (Some("tool_use"), Some("get_weather")));
    assert_eq!(weather["input"], json!({"city": "Paris", "unit": "celsius"}));
    assert!(weather["id"].as_str().unwrap().starts_with("toolu_"));
    let seen = &app.upstream.generation_calls()[0];
    assert_eq!(seen.body["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(seen.body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
    let issuing_key = seen.key.clone();

    app.upstream.answer(|seen, _| {
        refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES).unwrap_or(Reply::fixture("response-text.json"))
    });
    let mut follow_up = request.clone();
    follow_up["messages"] = json!([
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": content},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": weather["id"], "content": "{\"temp\": 21}"},
            {"type": "tool_result", "tool_use_id": time["id"], "content": [{"type": "text", "text": "14:00"}]}
        ]}
    ]);
    let second = messages(&app, &follow_up).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.json()["stop_reason"], "end_turn");
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 2, "no call refused");
    let replayed = &calls[1];
    assert_eq!(replayed.key, issuing_key, "the follow-up goes first to the signature's key");
    let model_turn = &replayed.body["contents"][1]["parts"];
    assert_eq!(model_turn[0]["thoughtSignature"], FIXTURE_SIGNATURES[0]);
    assert!(model_turn[1].get("thoughtSignature").is_none());
    assert_eq!(
        replayed.body["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "14:00"}}}
        ])
    );
    // A client that drops thinking blocks: the signature is found by id.
    let mut without_thinking = follow_up.clone();
    without_thinking["messages"][1]["content"] = json!([weather, time]);
    let third = messages(&app, &without_thinking).await;
    assert_eq!(third.status, 200, "{}", third.body);
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 3, "no call refused");
    assert_eq!(calls[2].body["contents"][1]["parts"][0]["thoughtSignature"], FIXTURE_SIGNATURES[0]);
}

#[actix_web::test]
async fn thinking_signatures_come_back_exactly_and_claudes_become_the_placeholder() {
    let app = spawn_app_with(2, |_| {}).await;
    app.upstream.answer(|_, _| Reply::fixture("response-thinking-signed.json"));
    let mut request = body("gemini-3-pro-preview", false, json!([{"role": "user", "content": "2+2?"}]));
    request["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let first = messages(&app, &request).await.json();
    let seen = &app.upstream.generation_calls()[0];
    assert_eq!(seen.body["generationConfig"]["thinkingConfig"]["includeThoughts"], true);
    assert_eq!(seen.body["generationConfig"]["maxOutputTokens"], 1024);
    let content = first["content"].as_array().unwrap().clone();
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "**Adding the numbers**\n\nTwo plus two is four.");
    assert_eq!(content[0]["signature"], FIXTURE_SIGNATURES[0]);
    assert_eq!(content[1], json!({"type": "text", "text": "2 + 2 = 4."}));

    app.upstream.answer(|seen, _| {
        refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES).unwrap_or(Reply::fixture("response-text.json"))
    });
    let mut follow_up = request.clone();
    follow_up["messages"] = json!([
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": content},
        {"role": "user", "content": "And 3+3?"}
    ]);
    assert_eq!(messages(&app, &follow_up).await.status, 200);
    let sent = &app.upstream.generation_calls()[1].body;
    assert_eq!(
        sent["contents"][1]["parts"],
        json!([{"text": "2 + 2 = 4.", "thoughtSignature": FIXTURE_SIGNATURES[0]}])
    );

    // A conversation begun with Claude: its thinking and signatures stay here.
    let mut from_claude = request.clone();
    from_claude["messages"] = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Claude's own reasoning", "signature": CLAUDE_SIGNATURE},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}}
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "sunny"}]}
    ]);
    let answer = messages(&app, &from_claude).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 3, "no call refused");
    let raw = String::from_utf8_lossy(&calls[2].raw);
    assert!(!raw.contains(CLAUDE_SIGNATURE) && !raw.contains("Claude's own reasoning") && !raw.contains("EmwKAhgB"));
    assert_eq!(calls[2].body["contents"][1]["parts"][0]["thoughtSignature"], "skip_thought_signature_validator");
}

/// A three-turn agent conversation (parallel calls, then one call, then
/// text) against Gemini 3's check of replayed tool turns, streamed or not:
/// every follow-up must pass at once.
async fn multi_turn_tool_conversation(stream: bool, real_stream: bool) {
    let app = spawn_app_with(3, |config| config.fake_streaming = !real_stream).await;
    app.upstream.answer(move |seen, index| {
        if let Some(refusal) = refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES) {
            return refusal;
        }
        match (seen.action.as_str(), index) {
            ("streamGenerateContent", 0) => whole_answer_as_sse("response-function-call.json"),
            ("streamGenerateContent", 1) => Reply::sse_fixture("stream-function-call.sse", Duration::ZERO),
            ("streamGenerateContent", _) => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
            (_, 0) => Reply::fixture("response-function-call.json"),
            (_, 1) => Reply::Json(200, sse_answer("stream-function-call.sse")),
            _ => Reply::fixture("response-text.json"),
        }
    });
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                       {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}]);
    let mut conversation = vec![json!({"role": "user", "content": "Plan my afternoon in Paris."})];
    for turn in 0..3 {
        let mut request = body("gemini-3-pro-preview", stream, json!(conversation));
        request["tools"] = tools.clone();
        let answer = messages(&app, &request).await;
        assert_eq!(answer.status, 200, "turn {turn}: {}", answer.body);
        let message = if stream { accumulate(&sse_events(&answer)) } else { answer.json() };
        let content = message["content"].as_array().unwrap().clone();
        let results: Vec<Value> = content
            .iter()
            .filter(|block| block["type"] == "tool_use")
            .map(|block| json!({"type": "tool_result", "tool_use_id": block["id"], "content": "done"}))
            .collect();
        match turn {
            0 => assert_eq!(results.len(), 2, "parallel calls: {message}"),
            1 => assert_eq!(results.len(), 1, "one call: {message}"),
            _ => {
                assert!(results.is_empty());
                assert_eq!(message["stop_reason"], "end_turn");
            }
        }
        if turn < 2 {
            assert_eq!(message["stop_reason"], "tool_use");
            assert!(content
                .iter()
                .any(|block| block["type"] == "thinking" && !block["signature"].as_str().unwrap().is_empty()));
        }
        conversation.push(json!({"role": "assistant", "content": content}));
        conversation.push(json!({"role": "user", "content": results}));
    }
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 3, "every follow-up passed Gemini 3's check at once");
    let last = &calls[2].body["contents"];
    assert_eq!(last[1]["parts"][0]["thoughtSignature"], FIXTURE_SIGNATURES[0]);
    assert_eq!(last[3]["parts"][0]["thoughtSignature"], FIXTURE_SIGNATURES[1]);
}

/// The single event of an `.sse` fixture as a whole JSON answer.
fn sse_answer(name: &str) -> String {
    fixture(name).trim().strip_prefix("data: ").unwrap().to_owned()
}

#[actix_web::test]
async fn multi_turn_tool_conversations_pass_gemini_3s_check_without_streaming() {
    multi_turn_tool_conversation(false, false).await;
}

#[actix_web::test]
async fn multi_turn_tool_conversations_pass_gemini_3s_check_in_real_streams() {
    multi_turn_tool_conversation(true, true).await;
}

#[actix_web::test]
async fn multi_turn_tool_conversations_pass_gemini_3s_check_in_fake_streams() {
    multi_turn_tool_conversation(true, false).await;
}

#[actix_web::test]
async fn errors_wear_anthropics_envelope_and_statuses() {
    let app = spawn_app_with(1, |config| config.max_request_body_bytes = 64 * 1024).await;
    let error_of = |answer: &Answer| {
        let body = answer.json();
        assert_eq!(body["type"], "error", "{body}");
        body["error"]["type"].as_str().unwrap().to_owned()
    };
    let bad_json = app.post_raw("/v1/messages", b"{not json".to_vec(), &[("x-api-key", PASSWORD), VERSION]).await;
    assert_eq!((bad_json.status, error_of(&bad_json).as_str()), (400, "invalid_request_error"));
    let no_messages = messages(&app, &body("gemini-2.5-flash", false, json!([]))).await;
    assert_eq!((no_messages.status, error_of(&no_messages).as_str()), (400, "invalid_request_error"));
    assert!(no_messages.json()["error"]["message"].as_str().unwrap().contains("messages"));
    let bad_model = messages(&app, &body("no such model!", false, json!([{"role": "user", "content": "x"}]))).await;
    assert_eq!(bad_model.status, 400);
    let too_large =
        messages(&app, &body("gemini-2.5-flash", false, json!([{"role": "user", "content": "x".repeat(100_000)}])))
            .await;
    assert_eq!((too_large.status, error_of(&too_large).as_str()), (413, "request_too_large"));
    let wrong_key = app.post_with("/v1/messages", &hello(false), &[("x-api-key", "wrong"), VERSION]).await;
    assert_eq!((wrong_key.status, error_of(&wrong_key).as_str()), (401, "authentication_error"));
    let no_key = app.post_with("/v1/messages/count_tokens", &hello(false), &[VERSION]).await;
    assert_eq!((no_key.status, error_of(&no_key).as_str()), (401, "authentication_error"));
    let unknown = app.post_with("/anthropic/v1/nothing", &hello(false), &[("x-api-key", PASSWORD)]).await;
    assert_eq!((unknown.status, error_of(&unknown).as_str()), (404, "not_found_error"));
    // Google refuses the request: its 400, in Anthropic's words.
    app.upstream.answer(|_, _| Reply::error(400, "error-400-context-too-long.json"));
    let rejected = messages(&app, &hello(false)).await;
    assert_eq!((rejected.status, error_of(&rejected).as_str()), (400, "invalid_request_error"));
}

#[actix_web::test]
async fn a_cooling_pool_is_a_429_with_retry_after_and_a_dry_one_a_529() {
    let app = spawn_app_with(1, |config| config.max_wait_for_key = Duration::ZERO).await;
    app.upstream.answer(|_, _| Reply::error(429, "error-429-per-minute.json"));
    for _ in 0..2 {
        let answer = messages(&app, &hello(false)).await;
        assert_eq!(answer.status, 429, "{}", answer.body);
        assert_eq!(answer.json()["error"]["type"], "rate_limit_error");
        assert!(answer.headers.get("retry-after").is_some());
    }
    // No key at all.
    let empty = spawn_app_with(0, |_| {}).await;
    for stream in [false, true] {
        let answer = messages(&empty, &hello(stream)).await;
        if stream {
            // Fake streaming answered 200 at once: the error is the stream's event.
            let events = sse_events(&answer);
            assert_eq!(events.last().unwrap().1["error"]["type"], "overloaded_error", "{}", answer.body);
        } else {
            assert_eq!(answer.status, 529, "{}", answer.body);
            assert_eq!(answer.json()["error"]["type"], "overloaded_error");
        }
    }
    // Every key refused as invalid: a dry pool, streamed or not.
    let invalid = spawn_app_with(1, real_streaming).await;
    invalid.upstream.answer(|_, _| Reply::error(400, "error-400-api-key-invalid.json"));
    for stream in [false, true] {
        let answer = messages(&invalid, &hello(stream)).await;
        assert_eq!(answer.status, 529, "{}", answer.body);
        assert_eq!(answer.json()["error"]["type"], "overloaded_error");
    }
    assert_eq!(invalid.upstream.generation_calls().len(), 1, "an invalid key is not called again");
}

#[actix_web::test]
async fn a_stream_cut_after_content_ends_with_an_error_event() {
    let app = spawn_app_with(2, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-truncated.sse", Duration::ZERO));
    let answer = messages(&app, &hello(true)).await;
    assert_eq!(answer.status, 200);
    let events = sse_events(&answer);
    let message = accumulate(&events);
    assert_eq!(message["content"][0]["text"], "Once upon a time, in a kingdom");
    let (last, error) = events.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(error["error"]["type"], "api_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("cut off"), "{error}");
    assert!(!names(&events).contains(&"message_stop"));
    assert_eq!(app.upstream.generation_calls().len(), 1, "never restarted on another key");
}

#[actix_web::test]
async fn a_stream_failing_before_content_moves_to_another_key() {
    let app = spawn_app_with(2, real_streaming).await;
    let bad_key = test_key(0);
    app.upstream.answer(move |seen, index| match (seen.key.as_deref() == Some(bad_key.as_str()), index) {
        (true, _) => Reply::error(500, "error-500-internal.json"),
        (false, 0) => Reply::sse_fixture("stream-empty-stop.sse", Duration::ZERO),
        (false, _) => Reply::sse_fixture("stream-thinking.sse", Duration::ZERO),
    });
    for _ in 0..2 {
        let answer = messages(&app, &hello(true)).await;
        assert_eq!(answer.status, 200);
        let events = sse_events(&answer);
        assert_eq!(names(&events).iter().filter(|name| **name == "message_start").count(), 1, "{}", answer.body);
        let message = accumulate(&events);
        assert_eq!(message["content"][0]["thinking"], "**Considering the question**\n\nThe user asks for a sum.");
        assert_eq!(message["content"][1]["text"], "2 + 2 = 4.");
        assert_eq!(names(&events).last(), Some(&"message_stop"));
    }
}

#[actix_web::test]
async fn a_blocked_prompt_is_a_refusal() {
    let app = spawn_app_with(1, |_| {}).await;
    app.upstream.answer(|_, _| Reply::fixture("response-prompt-blocked.json"));
    let answer = messages(&app, &hello(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["stop_reason"], "refusal");
    assert_eq!(answer.json()["content"], json!([]));
    app.upstream.answer(|_, _| Reply::fixture("response-max-tokens.json"));
    assert_eq!(messages(&app, &hello(false)).await.json()["stop_reason"], "max_tokens");
}

#[actix_web::test]
async fn count_tokens_asks_gemini_for_the_whole_request() {
    let app = spawn_app_with(1, |config| {
        config.model_aliases = vec![("claude-*".into(), "gemini-2.5-flash".into())];
    })
    .await;
    app.upstream.answer(|_, _| Reply::fixture("count-tokens.json"));
    let mut request = hello(false);
    request["model"] = json!("claude-haiku-4-5");
    request.as_object_mut().unwrap().remove("max_tokens");
    request["tools"] =
        json!([{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}]);
    let answer =
        app.post_with("/anthropic/v1/messages/count_tokens", &request, &[("x-api-key", PASSWORD), VERSION]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json(), json!({"input_tokens": 31}));
    let seen = app.upstream.seen().into_iter().find(|seen| seen.action == "countTokens").unwrap();
    assert_eq!(seen.model, "gemini-2.5-flash");
    let inner = &seen.body["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-2.5-flash");
    assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "You are terse.");
    assert_eq!(inner["tools"][0]["functionDeclarations"][0]["name"], "f");
}

#[actix_web::test]
async fn the_model_list_speaks_anthropic_to_anthropics_clients() {
    let app = spawn_app_with(1, |_| {}).await;
    // Let the background refresh load the upstream list first: a model of
    // the bundled list may be gone from the list that replaces it.
    for _ in 0..100 {
        if app.app.catalog.has_upstream_list() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = app.get_with("/v1/models?limit=2", &[("x-api-key", PASSWORD), VERSION]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let page = answer.json();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["type"], "model");
    assert!(data[0]["display_name"].is_string() && data[0]["created_at"].is_string());
    assert_eq!(page["first_id"], data[0]["id"]);
    assert_eq!(page["last_id"], data[1]["id"]);
    assert_eq!(page["has_more"], true);
    let after = format!("/anthropic/v1/models?limit=1000&after_id={}", page["last_id"].as_str().unwrap());
    let rest = app.get_with(&after, &[("x-api-key", PASSWORD)]).await.json();
    assert_eq!(rest["has_more"], false);
    assert!(!rest["data"].as_array().unwrap().is_empty());
    let one = app
        .get_with(&format!("/v1/models/{}", data[0]["id"].as_str().unwrap()), &[("x-api-key", PASSWORD), VERSION])
        .await;
    assert_eq!(one.json()["type"], "model");
    let missing = app.get_with("/anthropic/v1/models/nothing-here", &[("x-api-key", PASSWORD)]).await;
    assert_eq!((missing.status, missing.json()["error"]["type"].as_str()), (404, Some("not_found_error")));
    let refused = app.get_with("/v1/models", &[("x-api-key", "wrong"), VERSION]).await;
    assert_eq!((refused.status, refused.json()["error"]["type"].as_str()), (401, Some("authentication_error")));
    // Other clients still get OpenAI's list.
    assert_eq!(app.get("/v1/models").await.json()["object"], "list");
}

#[actix_web::test]
async fn image_urls_are_fetched_and_sent_inline() {
    let app = spawn_app_with(1, |config| config.allow_private_image_urls = true).await;
    let url = format!("{}/image.png", app.upstream.base_url);
    let request = body(
        "gemini-2.5-flash",
        false,
        json!([{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": url}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "text", "text": "What is this?"}
        ]}]),
    );
    let answer = messages(&app, &request).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let parts = &app.upstream.generation_calls()[0].body["contents"][0]["parts"];
    assert_eq!(parts[0]["inlineData"]["mimeType"], "image/png");
    assert_eq!(parts[1]["inlineData"], json!({"mimeType": "image/jpeg", "data": "/9j/4AAQ"}));
    // An address the gateway may not fetch: a 400 naming it, no upstream call.
    let refused = spawn_app_with(1, |_| {}).await;
    let answer = messages(&refused, &request).await;
    assert_eq!((answer.status, answer.json()["error"]["type"].as_str()), (400, Some("invalid_request_error")));
    assert!(refused.upstream.generation_calls().is_empty());
}
