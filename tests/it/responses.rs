//! The OpenAI Responses door (`/v1/responses`): answers, typed streams
//! (real and fake), tools and thought signatures across turns (against
//! Gemini 3's check of replayed tool turns), errors, and stored responses
//! scoped to their client.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const TEXT: &str = "Hello! How can I help you today?";

/// The `(type, data)` of every typed event of an SSE body.
fn typed_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut kind = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    kind = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = serde_json::from_str::<Value>(value).ok();
                }
            }
            Some((kind?, data?))
        })
        .collect()
}

/// Checks what every stream must be: `type` as announced, sequence
/// numbers 0, 1, 2…, opened by created/in_progress; returns the events.
fn checked_stream(answer: &Answer) -> Vec<(String, Value)> {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = typed_events(&answer.body);
    assert!(events.len() >= 3, "{}", answer.body);
    for (index, (kind, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], kind.as_str());
        assert_eq!(data["sequence_number"], index as u64, "{kind}");
    }
    assert_eq!(events[0].0, "response.created");
    assert_eq!(events[1].0, "response.in_progress");
    events
}

fn final_response(events: &[(String, Value)]) -> Value {
    let (kind, data) = events.last().expect("events");
    assert!(kind == "response.completed" || kind == "response.incomplete", "ends with {kind}");
    data["response"].clone()
}

fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(kind, _)| kind == "response.output_text.delta")
        .filter_map(|(_, data)| data["delta"].as_str())
        .collect()
}

fn request(model: &str, input: Value, stream: bool) -> Value {
    json!({"model": model, "input": input, "stream": stream, "instructions": "Be terse."})
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().unwrap().clone())
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn a_text_answer_is_a_response_object_with_usage() {
    let app = spawn_app_with(2, |_| {}).await;
    let answer = app.post("/v1/responses", &request("gemini-2.5-flash", json!("Hello"), false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let response = answer.json();
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], "gemini-2.5-flash");
    assert_eq!(response["instructions"], "Be terse.");
    assert_eq!(output_text(&response), TEXT);
    let message = &response["output"][0];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][0]["type"], "output_text");
    assert_eq!(
        response["usage"],
        json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 21})
    );
    let upstream = &app.upstream.generation_calls()[0];
    assert_eq!(upstream.action, "generateContent");
    assert_eq!(upstream.body["systemInstruction"]["parts"][0]["text"], "Be terse.");
    assert_eq!(upstream.body["contents"], json!([{"role": "user", "parts": [{"text": "Hello"}]}]));
}

#[actix_web::test]
async fn a_real_stream_sends_typed_events_in_sequence_and_ends_completed() {
    let app = spawn_app_with(2, |config| config.fake_streaming = false).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(2)));
    let answer = app.post("/v1/responses", &request("gemini-2.5-flash", json!("Hello"), true)).await;
    assert!(answer.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    let events = checked_stream(&answer);
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    for expected in [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ] {
        assert!(kinds.contains(&expected), "{expected} missing: {kinds:?}");
    }
    let response = final_response(&events);
    assert_eq!(response["status"], "completed");
    assert!(!streamed_text(&events).is_empty());
    assert_eq!(output_text(&response), streamed_text(&events));
    assert!(response["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(app.upstream.generation_calls()[0].action, "streamGenerateContent");
}

#[actix_web::test]
async fn a_fake_stream_sends_the_opening_at_once_then_the_whole_answer() {
    let app = spawn_app_with(2, |_| {}).await;
    app.upstream
        .answer(|_, _| Reply::After(Duration::from_millis(200), Box::new(Reply::fixture("response-text.json"))));
    let answer = app.post("/v1/responses", &request("gemini-2.5-flash", json!("Hello"), true)).await;
    let events = checked_stream(&answer);
    assert!(answer.body.contains(": keep-alive\n\n"), "keep-alives while waiting: {}", answer.body);
    assert_eq!(streamed_text(&events), TEXT);
    assert_eq!(output_text(&final_response(&events)), TEXT);
    assert_eq!(app.upstream.generation_calls()[0].action, "generateContent");
}

/// The output items of a response as input items of the next turn, with a
/// function_call_output for each call.
fn with_outputs(output: &Value, results: &[&str]) -> Vec<Value> {
    let mut items: Vec<Value> = output.as_array().unwrap().clone();
    let calls: Vec<Value> = items.iter().filter(|item| item["type"] == "function_call").cloned().collect();
    assert_eq!(calls.len(), results.len(), "{output}");
    for (call, result) in calls.iter().zip(results) {
        items.push(json!({"type": "function_call_output", "call_id": call["call_id"], "output": result}));
    }
    items
}

const WEATHER_TOOLS: &str = r#"[
  {"type": "function", "name": "get_weather", "description": "Weather in a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false},
   "strict": true},
  {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}
]"#;

#[actix_web::test]
async fn a_tool_round_trip_carries_the_signature_back_with_full_input_and_with_previous_response_id() {
    let app = spawn_app_with(3, |_| {}).await;
    app.upstream.answer(|seen, index| {
        if index == 0 {
            return Reply::fixture("response-function-call.json");
        }
        refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES).unwrap_or(Reply::fixture("response-text.json"))
    });
    let tools: Value = serde_json::from_str(WEATHER_TOOLS).unwrap();
    let question = json!([{"role": "user", "content": "Weather and time in Paris?"}]);
    let mut first = request("gemini-3-pro-preview", question.clone(), false);
    first["tools"] = tools.clone();
    first["tool_choice"] = json!("auto");
    let response = app.post("/v1/responses", &first).await.json();
    let output = &response["output"];
    // The signature rides on a reasoning item before the calls it belongs to.
    assert_eq!(output[0]["type"], "reasoning", "{output}");
    assert_eq!(output[0]["encrypted_content"], FIXTURE_SIGNATURES[0]);
    assert_eq!(output[0]["summary"], json!([]));
    assert_eq!(output[1]["type"], "function_call");
    assert_eq!(output[1]["name"], "get_weather");
    assert_eq!(serde_json::from_str::<Value>(output[1]["arguments"].as_str().unwrap()).unwrap()["city"], "Paris");
    assert!(output[1]["id"].as_str().unwrap().starts_with("fc_"));
    assert!(output[1]["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(output[1]["status"], "completed");
    assert_eq!(output[2]["name"], "get_time");
    let first_upstream = &app.upstream.generation_calls()[0];
    assert_eq!(first_upstream.body["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(first_upstream.body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
    let issuing_key = first_upstream.key.clone();

    // Stateless: the whole conversation again.
    let mut input: Vec<Value> = question.as_array().unwrap().clone();
    input.extend(with_outputs(output, &["{\"temp\": 21}", "14:00"]));
    let mut follow_up = request("gemini-3-pro-preview", Value::Array(input), false);
    follow_up["tools"] = tools.clone();
    follow_up["store"] = json!(false);
    let answer = app.post("/v1/responses", &follow_up).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(output_text(&answer.json()), TEXT);
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 2, "no refused call, no retry");
    let replayed = &calls[1];
    assert_eq!(replayed.key, issuing_key, "the follow-up goes to the key that made the signature");
    let model_turn = &replayed.body["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(model_turn["parts"][0]["thoughtSignature"], FIXTURE_SIGNATURES[0]);
    assert_eq!(model_turn["parts"][0]["functionCall"]["name"], "get_weather");
    assert!(model_turn["parts"][1].get("thoughtSignature").is_none());
    let results = &replayed.body["contents"][2];
    assert_eq!(results["role"], "user");
    assert_eq!(results["parts"][0]["functionResponse"], json!({"name": "get_weather", "response": {"temp": 21}}));
    assert_eq!(results["parts"][1]["functionResponse"], json!({"name": "get_time", "response": {"content": "14:00"}}));

    // Stateful: only the tool outputs, after the stored response.
    let outputs: Vec<Value> = with_outputs(output, &["{\"temp\": 21}", "14:00"])
        .into_iter()
        .filter(|item| item["type"] == "function_call_output")
        .collect();
    let mut chained = request("gemini-3-pro-preview", Value::Array(outputs), false);
    chained["tools"] = tools;
    chained["previous_response_id"] = response["id"].clone();
    let answer = app.post("/v1/responses", &chained).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["previous_response_id"], response["id"]);
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 3, "no refused call");
    assert_eq!(calls[2].body["contents"], replayed.body["contents"], "the same conversation, rebuilt");
}

#[actix_web::test]
async fn a_reasoning_signature_goes_back_as_sent_and_a_foreign_one_becomes_the_placeholder() {
    let app = spawn_app_with(1, |_| {}).await;
    app.upstream.answer(|_, _| Reply::fixture("response-function-call.json"));
    let response = app.post("/v1/responses", &request("gemini-3-pro-preview", json!("Weather?"), false)).await.json();
    let call = response["output"][1].clone();
    let ours = json!({"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": FIXTURE_SIGNATURES[0]});
    // A conversation begun with OpenAI: its encrypted reasoning is not Gemini's.
    let foreign =
        json!({"type": "reasoning", "id": "rs_y", "summary": [], "encrypted_content": "gAAAAABo-openai-encrypted"});
    app.upstream.answer(|_, _| Reply::fixture("response-text.json"));
    for (reasoning, expected) in [(ours, FIXTURE_SIGNATURES[0]), (foreign, "skip_thought_signature_validator")] {
        let input = json!([
            {"role": "user", "content": "Weather?"},
            reasoning,
            {"type": "function_call", "call_id": "call_other", "name": call["name"], "arguments": call["arguments"]},
            {"type": "function_call_output", "call_id": "call_other", "output": "sunny"}
        ]);
        let answer = app.post("/v1/responses", &request("gemini-3-pro-preview", input, false)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let sent = app.upstream.generation_calls().last().unwrap().body.clone();
        assert_eq!(sent["contents"][1]["parts"][0]["thoughtSignature"], expected);
        assert!(!sent.to_string().contains("openai-encrypted"), "never forwarded raw");
    }
}

#[actix_web::test]
async fn shown_thoughts_are_reasoning_summaries_in_streams_and_not() {
    for fake_streaming in [true, false] {
        let app = spawn_app_with(1, |config| config.fake_streaming = fake_streaming).await;
        app.upstream.answer(move |_, _| {
            if fake_streaming {
                Reply::fixture("response-thinking.json")
            } else {
                Reply::sse_fixture("stream-thinking.sse", Duration::ZERO)
            }
        });
        let answer = app.post("/v1/responses", &request("gemini-2.5-pro", json!("2+2?"), true)).await;
        let events = checked_stream(&answer);
        let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
        for expected in [
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
        ] {
            assert!(kinds.contains(&expected), "{expected} missing: {kinds:?}");
        }
        let response = final_response(&events);
        assert_eq!(response["output"][0]["type"], "reasoning");
        assert!(!response["output"][0]["summary"][0]["text"].as_str().unwrap().is_empty());
        assert_eq!(output_text(&response), "2 + 2 = 4.");
        assert!(response["usage"]["output_tokens_details"]["reasoning_tokens"].as_u64().unwrap() > 0);
    }
}

/// Gemini 3 behind the fake: a tool turn whose signatures are not the
/// fixtures' (or missing) is refused, like Google does.
fn gemini_3(seen: &Seen, reply: Reply) -> Reply {
    refuse_unsigned_tool_turns(seen, &FIXTURE_SIGNATURES).unwrap_or(reply)
}

#[actix_web::test]
async fn multi_turn_tool_conversations_stream_and_not_are_never_refused() {
    for fake_streaming in [true, false] {
        for stream in [true, false] {
            let app = spawn_app_with(2, |config| config.fake_streaming = fake_streaming).await;
            // Turn 1: two parallel calls; turn 2: one more call; turn 3: text.
            app.upstream.answer(move |seen, index| {
                let streaming = seen.action == "streamGenerateContent";
                let reply = match (index, streaming) {
                    (0, false) => Reply::fixture("response-function-call.json"),
                    (0, true) | (1, true) => Reply::sse_fixture("stream-function-call.sse", Duration::ZERO),
                    (1, false) => Reply::fixture("response-function-call.json"),
                    (_, true) => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
                    (_, false) => Reply::fixture("response-text.json"),
                };
                gemini_3(seen, reply)
            });
            let mut input = vec![json!({"role": "user", "content": "Plan a trip"})];
            let tools: Value = serde_json::from_str(WEATHER_TOOLS).unwrap();
            for turn in 0..3 {
                let mut body = request("gemini-3-pro-preview", Value::Array(input.clone()), stream);
                body["tools"] = tools.clone();
                body["store"] = json!(false);
                let answer = app.post("/v1/responses", &body).await;
                let response = if stream {
                    final_response(&checked_stream(&answer))
                } else {
                    assert_eq!(answer.status, 200);
                    answer.json()
                };
                let output = response["output"].as_array().unwrap().clone();
                let calls = output.iter().filter(|item| item["type"] == "function_call").count();
                if turn == 2 {
                    assert_eq!(calls, 0);
                    assert!(!output_text(&response).is_empty());
                    break;
                }
                assert!(calls > 0, "turn {turn}: {response}");
                input.extend(with_outputs(&response["output"], &vec!["ok"; calls]));
            }
            let seen = app.upstream.generation_calls();
            assert_eq!(seen.len(), 3, "fake={fake_streaming} stream={stream}: no call refused");
        }
    }
}

#[actix_web::test]
async fn a_stream_cut_after_content_ends_with_response_failed() {
    let app = spawn_app_with(2, |config| config.fake_streaming = false).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-truncated.sse", Duration::ZERO));
    let answer = app.post("/v1/responses", &request("gemini-2.5-pro", json!("A story"), true)).await;
    let events = checked_stream(&answer);
    assert_eq!(streamed_text(&events), "Once upon a time, in a kingdom");
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "response.failed");
    assert_eq!(data["response"]["status"], "failed");
    assert_eq!(data["response"]["error"]["code"], "server_error");
    assert!(!data["response"]["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(app.upstream.generation_calls().len(), 1, "never restarted after content");
}

#[actix_web::test]
async fn a_stream_failing_before_content_is_retried_on_another_key() {
    let app = spawn_app_with(3, |config| config.fake_streaming = false).await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::error(503, "error-503-overloaded.json"),
        1 => Reply::sse_fixture("stream-empty-stop.sse", Duration::ZERO),
        _ => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
    });
    let answer = app.post("/v1/responses", &request("gemini-2.5-flash", json!("Hello"), true)).await;
    let events = checked_stream(&answer);
    assert_eq!(final_response(&events)["status"], "completed");
    let keys: Vec<Option<String>> = app.upstream.generation_calls().into_iter().map(|seen| seen.key).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys[0] != keys[1] && keys[1] != keys[2], "{keys:?}");
}

#[actix_web::test]
async fn client_mistakes_and_a_dry_pool_are_errors_in_openai_envelope() {
    let app = spawn_app_with(1, |_| {}).await;
    let bad =
        app.post_raw("/v1/responses", b"{not json".to_vec(), &[("authorization", &format!("Bearer {PASSWORD}"))]).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
    let wrong = app
        .post_with(
            "/v1/responses",
            &request("gemini-2.5-flash", json!("hi"), false),
            &[("authorization", "Bearer nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"]["code"], "invalid_api_key");
    for path in ["/v1/responses/resp_abc", "/v1/responses/resp_abc/input_items"] {
        assert_eq!(app.get_with(path, &[]).await.status, 401, "{path}");
    }
    let (status, _) = delete(&app, "/v1/responses/resp_abc", &[]).await;
    assert_eq!(status, 401);
    let mut searching = request("gemini-2.5-flash", json!("hi"), false);
    searching["tools"] = json!([{"type": "web_search"}]);
    let refused = app.post("/v1/responses", &searching).await;
    assert_eq!(refused.status, 400);
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("web_search"), "{}", refused.body);
    let file = json!([{"role": "user", "content": [{"type": "input_image", "file_id": "file-abc"}]}]);
    let refused = app.post("/v1/responses", &request("gemini-2.5-flash", file, false)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["param"], "input[0].content[0].file_id");
    assert!(app.upstream.generation_calls().is_empty(), "nothing reached Gemini");

    app.upstream.answer(|_, _| Reply::error(429, "error-429-per-minute.json"));
    let dry = app.post("/v1/responses", &request("gemini-2.5-flash", json!("hi"), false)).await;
    assert_eq!(dry.status, 429, "{}", dry.body);
    assert!(dry.json()["error"]["message"].is_string());
    let none = spawn_app_with(0, |_| {}).await;
    let answer = none.post("/v1/responses", &request("gemini-2.5-flash", json!("hi"), false)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
}

#[actix_web::test]
async fn model_aliases_serve_gpt_names_with_gemini_and_echo_the_client_name() {
    let app = spawn_app_with(1, |config| {
        config.model_aliases = vec![("gpt-*".to_owned(), "gemini-2.5-flash".to_owned())];
    })
    .await;
    let response = app.post("/v1/responses", &request("gpt-5-codex", json!("hi"), false)).await.json();
    assert_eq!(response["model"], "gpt-5-codex");
    assert_eq!(app.upstream.generation_calls()[0].model, "gemini-2.5-flash");
}

fn from(address: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {PASSWORD}")), ("x-forwarded-for", address.to_owned())]
}

fn headers<'a>(list: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    list.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

async fn delete(app: &TestApp, path: &str, with: &[(&'static str, String)]) -> (u16, String) {
    let mut request = app.client.delete(format!("{}{path}", app.address));
    for (name, value) in with {
        request = request.insert_header((*name, value.as_str()));
    }
    let mut response = request.send().await.unwrap();
    let body = response.body().await.unwrap();
    (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
}

#[actix_web::test]
async fn a_stored_response_is_its_clients_only_and_can_be_deleted() {
    let app = spawn_app_with(1, |config| {
        config.trusted_proxy_header = "x-forwarded-for".into();
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let (alice, bob) = (from("198.51.100.1"), from("198.51.100.2"));
    let body = request("gemini-2.5-flash", json!("Hello"), false);
    let created = app.post_with("/v1/responses", &body, &headers(&alice)).await.json();
    let path = format!("/v1/responses/{}", created["id"].as_str().unwrap());
    // Found at once (the writer may not have stored it yet), by Alice only.
    let got = app.get_with(&path, &headers(&alice)).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json(), created);
    let items = app.get_with(&format!("{path}/input_items"), &headers(&alice)).await.json();
    assert_eq!(items["data"][0]["content"], "Hello");
    let other = app.get_with(&path, &headers(&bob)).await;
    assert_eq!(other.status, 404);
    assert_eq!(other.json()["error"]["type"], "invalid_request_error");
    let mut chained = request("gemini-2.5-flash", json!("More"), false);
    chained["previous_response_id"] = created["id"].clone();
    let refused = app.post_with("/v1/responses", &chained, &headers(&bob)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["code"], "previous_response_not_found");
    assert_eq!(delete(&app, &path, &bob).await.0, 404);
    // Once written, still Alice's only.
    app.app.store.flush();
    assert_eq!(app.get_with(&path, &headers(&bob)).await.status, 404);
    assert_eq!(app.get_with(&path, &headers(&alice)).await.status, 200);
    let (status, deleted) = delete(&app, &path, &alice).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&deleted).unwrap(),
        json!({"id": created["id"], "object": "response", "deleted": true})
    );
    assert_eq!(app.get_with(&path, &headers(&alice)).await.status, 404);
    app.app.store.flush();
    assert_eq!(app.get_with(&path, &headers(&alice)).await.status, 404);
    assert_eq!(app.get("/v1/responses/not-an-id").await.status, 404);
}

#[actix_web::test]
async fn long_inputs_are_stored_as_sent_and_one_over_the_body_limit_is_answered_but_not_kept() {
    let app = spawn_app_with(1, |config| config.max_request_body_bytes = 1024 * 1024).await;
    // Long enough to stay a slice of the request body until it is kept.
    let long = format!("line one é {}", "abc ".repeat(75_000));
    let created = app.post("/v1/responses", &request("gemini-2.5-flash", json!(long), false)).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let path = format!("/v1/responses/{}", created.json()["id"].as_str().unwrap());
    for flushed in [false, true] {
        if flushed {
            app.app.store.flush();
        }
        let items = app.get(&format!("{path}/input_items")).await.json();
        assert_eq!(items["data"][0]["content"], json!(long), "flushed: {flushed}");
        assert_eq!(app.get(&path).await.json(), created.json());
    }
    // Within the body limit, but the input and the response together are not.
    let too_long = "x".repeat(1024 * 1024 - 400);
    let answered = app.post("/v1/responses", &request("gemini-2.5-flash", json!(too_long), false)).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let id = answered.json()["id"].as_str().unwrap().to_owned();
    app.app.store.flush();
    assert_eq!(app.get(&format!("/v1/responses/{id}")).await.status, 404, "not kept");
}

#[actix_web::test]
async fn nothing_is_stored_with_store_false_or_a_retention_of_zero() {
    for (retention, store) in [(0, true), (24, false)] {
        let app = spawn_app_with(1, |config| config.responses_retention_hours = retention).await;
        let mut body = request("gemini-2.5-flash", json!("Hello"), false);
        body["store"] = json!(store);
        let created = app.post("/v1/responses", &body).await.json();
        app.app.store.flush();
        let id = created["id"].as_str().unwrap();
        assert_eq!(app.get(&format!("/v1/responses/{id}")).await.status, 404);
        let mut chained = request("gemini-2.5-flash", json!("More"), false);
        chained["previous_response_id"] = json!(id);
        let refused = app.post("/v1/responses", &chained).await;
        assert_eq!(refused.status, 400);
        assert_eq!(refused.json()["error"]["code"], "previous_response_not_found");
    }
}

#[actix_web::test]
async fn a_stored_response_survives_a_restart_on_the_same_storage() {
    let dir = std::env::temp_dir().join(format!("hajimi-responses-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let configure = |dir: std::path::PathBuf| {
        move |config: &mut hajimi::config::Config| {
            config.enable_storage = true;
            config.storage_dir = dir;
        }
    };
    let created = {
        let app = spawn_app_with(1, configure(dir.clone())).await;
        let created = app.post("/v1/responses", &request("gemini-2.5-flash", json!("Hello"), false)).await.json();
        hajimi::startup::persist_before_exit(&app.app);
        created
    };
    let app = spawn_app_with(1, configure(dir.clone())).await;
    let got = app.get(&format!("/v1/responses/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.json(), created);
    let mut chained = request("gemini-2.5-flash", json!("More"), false);
    chained["previous_response_id"] = created["id"].clone();
    assert_eq!(app.post("/v1/responses", &chained).await.status, 200);
    let contents = &app.upstream.generation_calls()[0].body["contents"];
    assert_eq!(contents[0]["parts"][0]["text"], "Hello");
    assert_eq!(contents[1]["parts"][0]["text"], TEXT);
    assert_eq!(contents[2]["parts"][0]["text"], "More");
    let _ = std::fs::remove_dir_all(&dir);
}
