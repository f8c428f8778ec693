//! Streaming: real (§5.2) and fake (§5.3), keep-alives, `[DONE]`, and the
//! failure contract.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn real_streaming(config: &mut hajimi::config::Config) {
    config.fake_streaming = false;
}

fn chunks(answer: &Answer) -> Vec<Value> {
    answer.events().iter().filter(|e| *e != "[DONE]").map(|e| serde_json::from_str(e).unwrap()).collect()
}

#[actix_web::test]
async fn real_stream_converts_every_event_and_ends_with_done() {
    let app = spawn_app_with(1, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::ZERO));
    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let answer = app.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers.get("content-type").unwrap(), "text/event-stream; charset=utf-8");
    assert_eq!(answer.headers.get("cache-control").unwrap(), "no-cache");
    assert_eq!(answer.headers.get("x-accel-buffering").unwrap(), "no");
    assert_eq!(answer.events().last().unwrap(), "[DONE]");
    let chunks = chunks(&answer);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["model"], "gemini-2.5-flash");
    assert_eq!(answer.streamed_content(), "Hello! How can I help you today?");
    let finish: Vec<&Value> = chunks.iter().filter(|c| c["choices"][0]["finish_reason"].is_string()).collect();
    assert_eq!(finish.len(), 1);
    assert_eq!(finish[0]["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 13);
    let call = &app.upstream.generation_calls()[0];
    assert_eq!(call.action, "streamGenerateContent");
    assert_eq!(call.query, "alt=sse");
}

#[actix_web::test]
async fn real_stream_shows_reasoning_as_reasoning_content() {
    let app = spawn_app_with(1, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-thinking.sse", Duration::ZERO));
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    let reasoning: String = chunks(&answer)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str().map(str::to_owned))
        .collect();
    assert!(reasoning.contains("The user asks for a sum."), "{}", answer.body);
    assert_eq!(answer.streamed_content(), "2 + 2 = 4.");
}

#[actix_web::test]
async fn real_stream_sends_keepalive_comments_while_upstream_is_silent() {
    let app = spawn_app_with(1, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(250)));
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert!(answer.body.contains(": keep-alive\n\n"), "{}", answer.body);
    assert_eq!(answer.streamed_content(), "Hello! How can I help you today?");
    assert_eq!(answer.events().last().unwrap(), "[DONE]");
}

#[actix_web::test]
async fn a_stream_cut_after_two_events_ends_with_an_error_event_and_done() {
    let app = spawn_app_with(2, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-truncated.sse", Duration::ZERO));
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.streamed_content(), "Once upon a time, in a kingdom");
    let events = answer.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let error: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("cut off"), "{error}");
    // Never restarted from the start on another key.
    assert_eq!(app.upstream.generation_calls().len(), 1);
}

#[actix_web::test]
async fn real_stream_failures_before_the_first_byte_move_to_another_key() {
    let app = spawn_app_with(2, real_streaming).await;
    let bad_key = test_key(0);
    app.upstream.answer(move |seen, _| {
        if seen.key.as_deref() == Some(bad_key.as_str()) {
            Reply::error(500, "error-500-internal.json")
        } else {
            Reply::sse_fixture("stream-text.sse", Duration::ZERO)
        }
    });
    for _ in 0..2 {
        let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.streamed_content(), "Hello! How can I help you today?");
    }
}

#[actix_web::test]
async fn real_stream_empty_answer_is_retried_before_any_output() {
    let app = spawn_app_with(2, real_streaming).await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::sse_fixture("stream-empty-stop.sse", Duration::ZERO),
        _ => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
    });
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.streamed_content(), "Hello! How can I help you today?", "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 2);
    assert!(!answer.body.contains("\"error\""));
}

#[actix_web::test]
async fn real_stream_errors_before_headers_keep_their_http_status() {
    let app = spawn_app_with(1, real_streaming).await;
    app.upstream.answer(|_, _| Reply::error(400, "error-400-client-invalid-argument.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
}

#[actix_web::test]
async fn real_stream_tool_calls_have_indexes_and_finish_as_tool_calls() {
    let app = spawn_app_with(1, real_streaming).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-function-call.sse", Duration::ZERO));
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    let chunks = chunks(&answer);
    let call = chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned()).unwrap();
    assert_eq!(call[0]["index"], 0);
    assert_eq!(call[0]["function"]["name"], "get_weather");
    assert!(call[0]["id"].as_str().unwrap().starts_with("call_"));
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
}

#[actix_web::test]
async fn fake_stream_is_the_default_and_sends_empty_deltas_while_waiting() {
    let app = spawn_app_with(1, |_| {}).await;
    app.upstream
        .answer(|_, _| Reply::After(Duration::from_millis(300), Box::new(Reply::fixture("response-text.json"))));
    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let answer = app.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    let chunks = chunks(&answer);
    let waiting: Vec<&Value> = chunks.iter().take_while(|c| c["choices"][0]["delta"]["content"] == "").collect();
    assert!(!waiting.is_empty(), "{}", answer.body);
    for chunk in &waiting {
        assert!(chunk["choices"][0]["finish_reason"].is_null(), "keep-alive must not finish: {chunk}");
    }
    assert_eq!(answer.streamed_content(), "Hello! How can I help you today?");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 21);
    assert_eq!(answer.events().last().unwrap(), "[DONE]");
    assert_eq!(app.upstream.generation_calls()[0].action, "generateContent");
}

#[actix_web::test]
async fn fake_stream_errors_become_an_error_event_and_done() {
    let app = spawn_app_with(1, |_| {}).await;
    app.upstream.answer(|_, _| Reply::error(400, "error-400-context-too-long.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.status, 200);
    let events = answer.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let error: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("input token count"));
}

#[actix_web::test]
async fn an_error_inside_the_stream_is_retried_before_content_and_reported_after() {
    let first = r#"data: {"candidates":[{"content":{"parts":[{"text":"Once"}],"role":"model"},"index":0}]}"#;
    let error = r#"data: {"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    // Before any content: another key takes over, the client sees one clean answer.
    let app = spawn_app_with(2, real_streaming).await;
    app.upstream.answer(move |_, index| match index {
        0 => Reply::Sse { events: vec![format!("{error}\r\n\r\n")], delay: Duration::ZERO },
        _ => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
    });
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.streamed_content(), "Hello! How can I help you today?", "{}", answer.body);
    assert!(!answer.body.contains("\"error\""));

    // After content: the content stays, then an error event and [DONE].
    let app = spawn_app_with(2, real_streaming).await;
    app.upstream.answer(move |_, _| Reply::Sse {
        events: vec![format!("{first}\r\n\r\n"), format!("{error}\r\n\r\n")],
        delay: Duration::ZERO,
    });
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.streamed_content(), "Once");
    let events = answer.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(events[events.len() - 2].contains("\"error\""), "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 1, "never restarted");
    // The key that failed mid-stream was still penalised.
    let limited = app.app.pool.summary(app.app.now_ms()).limited_for_some_model;
    assert_eq!(limited, 1);
}

#[actix_rt::test]
async fn the_role_only_chunk_leaves_before_the_first_upstream_event() {
    let app = spawn_app_with(3, |config| config.fake_streaming = false).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(300)));
    let mut response = app.send_chat(true).await.unwrap();
    // The first body bytes: the role chunk alone, while the upstream's
    // first event is still 300 ms away.
    let first = futures_util::StreamExt::next(&mut response).await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    let event: serde_json::Value = serde_json::from_str(first.trim().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(event["choices"][0]["delta"], serde_json::json!({"role": "assistant", "content": ""}), "{first}");
    assert!(event["choices"][0]["finish_reason"].is_null());
    let rest = response.body().await.unwrap();
    let rest = String::from_utf8_lossy(&rest);
    let chunks: Vec<serde_json::Value> = rest
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    assert!(
        chunks.iter().all(|chunk| chunk["choices"][0]["delta"].get("role").is_none()),
        "the role is announced once"
    );
    assert!(rest.contains("data: [DONE]"));
}

/// An upstream whose whole stream arrives at once (one write: headers,
/// every event, the end), as a fast answer or a burst after a pause does.
async fn upstream_sending_all_at_once(events: &'static str) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    actix_web::rt::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            actix_web::rt::spawn(async move {
                while let Ok(true) = crate::faults::read_request(&mut stream).await {
                    let mut all = crate::faults::SSE_HEAD.to_vec();
                    for event in events.split_inclusive("\r\n\r\n") {
                        all.extend(crate::faults::chunk(event.as_bytes()));
                    }
                    all.extend_from_slice(b"0\r\n\r\n");
                    if stream.write_all(&all).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    base_url
}

#[actix_rt::test]
async fn events_the_upstream_sends_together_reach_the_client_together() {
    const EVENTS: &str = concat!(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"One\"}],\"role\":\"model\"}}]}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" two\"}],\"role\":\"model\"}}]}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" three\"}],\"role\":\"model\"}}]}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" four\"}],\"role\":\"model\"},",
        "\"finishReason\":\"STOP\"}]}\r\n\r\n",
    );
    let base_url = upstream_sending_all_at_once(EVENTS).await;
    let app = spawn_app_with(1, |config| {
        config.fake_streaming = false;
        config.gemini_base_url = base_url;
        config.validate_keys_on_startup = false;
    })
    .await;
    let mut response = app.send_chat(true).await.unwrap();
    assert_eq!(response.status(), 200);
    // The client's HTTP client yields each chunk of the chunked body apart.
    let mut pieces = Vec::new();
    while let Some(piece) = futures_util::StreamExt::next(&mut response).await {
        pieces.push(String::from_utf8(piece.unwrap().to_vec()).unwrap());
    }
    let answer = Answer { status: 200, headers: Default::default(), body: pieces.concat() };
    assert_eq!(answer.streamed_content(), "One two three four");
    assert_eq!(answer.events().last().unwrap(), "[DONE]");
    // The role chunk, the four events, the finish and [DONE] in one piece
    // (one more if the upstream's write reached hajimi in two reads): not
    // a piece per event.
    assert!(pieces.len() <= 2, "{} pieces: {pieces:#?}", pieces.len());
    assert!(pieces[0].contains("\"role\":\"assistant\""), "{}", pieces[0]);
    assert!(pieces.last().unwrap().ends_with("data: [DONE]\n\n"));
}
