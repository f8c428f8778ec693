//! Non-streaming chat: conversion on the wire, retries across keys, empty
//! answers, and what never gets retried.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn non_stream_answer_is_an_openai_completion() {
    let app = spawn_app().await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers.get("content-type").unwrap(), "application/json");
    let body = answer.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gemini-2.5-flash");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello! How can I help you today?");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 12);
    assert_eq!(body["usage"]["completion_tokens"], 9);
    assert_eq!(body["usage"]["total_tokens"], 21);

    let sent = &app.upstream.generation_calls()[0];
    assert_eq!(sent.model, "gemini-2.5-flash");
    assert_eq!(sent.action, "generateContent");
    assert_eq!(sent.body["systemInstruction"]["parts"][0]["text"], "You are terse.");
    assert_eq!(sent.body["contents"][0]["role"], "user");
    assert_eq!(sent.body["contents"][0]["parts"][0]["text"], "Hello");
    assert_eq!(sent.body["safetySettings"].as_array().unwrap().len(), 5);

    let again = app.post("/v1/chat/completions", &chat_body(false)).await.json();
    assert_ne!(again["id"], body["id"], "ids must be unique");
}

#[actix_web::test]
async fn requested_model_name_is_echoed_and_suffixes_are_stripped_upstream() {
    let app = spawn_app().await;
    let mut body = chat_body(false);
    body["model"] = json!("gemini-2.5-flash-nothinking");
    let answer = app.post("/v1/chat/completions", &body).await.json();
    assert_eq!(answer["model"], "gemini-2.5-flash-nothinking");
    let sent = &app.upstream.generation_calls()[0];
    assert_eq!(sent.model, "gemini-2.5-flash");
    assert_eq!(sent.body["generationConfig"]["thinkingConfig"]["thinkingBudget"], 0);
}

#[actix_web::test]
async fn thinking_and_tool_calls_come_back_in_openai_shape() {
    let app = spawn_app().await;
    app.upstream.answer(|_, _| Reply::fixture("response-thinking.json"));
    let body = app.post("/v1/chat/completions", &chat_body(false)).await.json();
    assert_eq!(body["choices"][0]["message"]["content"], "2 + 2 = 4.");
    assert!(body["choices"][0]["message"]["reasoning_content"].as_str().unwrap().contains("Adding the numbers"));
    assert_eq!(body["usage"]["completion_tokens_details"]["reasoning_tokens"], 200);

    app.upstream.answer(|_, _| Reply::fixture("response-function-call.json"));
    let body = app.post("/v1/chat/completions", &chat_body(false)).await.json();
    let calls = body["choices"][0]["message"]["tool_calls"].as_array().unwrap().clone();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let signature = calls[0]["extra_content"]["google"]["thought_signature"].as_str().unwrap().to_owned();

    // The client sends the call back without the signature: it is restored.
    let call_id = calls[0]["id"].as_str().unwrap().to_owned();
    let follow_up = json!({
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": call_id, "content": "{\"temp\": 21}"}
        ]
    });
    app.upstream.answer(|_, _| Reply::fixture("response-text.json"));
    let answer = app.post("/v1/chat/completions", &follow_up).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let sent = app.upstream.generation_calls().last().unwrap().body.clone();
    assert_eq!(sent["contents"][1]["parts"][0]["thoughtSignature"], signature.as_str());
    assert_eq!(sent["contents"][2]["parts"][0]["functionResponse"]["name"], "get_weather");
    assert_eq!(sent["contents"][2]["parts"][0]["functionResponse"]["response"]["temp"], 21);
}

#[actix_web::test]
async fn a_failing_key_is_retried_on_another() {
    for (status, fixture_name) in [
        (500, "error-500-internal.json"),
        (429, "error-429-per-minute.json"),
        (429, "error-429-per-day.json"),
        (400, "error-400-api-key-invalid.json"),
        (403, "error-403-consumer-suspended.json"),
        (503, "error-503-overloaded.json"),
    ] {
        let app = spawn_app_with(2, |_| {}).await;
        let bad_key = test_key(0);
        app.upstream.answer(move |seen, _| {
            if seen.key.as_deref() == Some(bad_key.as_str()) {
                Reply::error(status, fixture_name)
            } else {
                Reply::fixture("response-text.json")
            }
        });
        for _ in 0..2 {
            let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
            assert_eq!(answer.status, 200, "{fixture_name}: {}", answer.body);
            assert_eq!(answer.json()["choices"][0]["message"]["content"], "Hello! How can I help you today?");
        }
        let keys: std::collections::HashSet<_> =
            app.upstream.generation_calls().into_iter().filter_map(|call| call.key).collect();
        assert_eq!(keys.len(), 2, "{fixture_name}: both keys tried");
    }
}

#[actix_web::test]
async fn client_errors_are_not_retried_and_keep_their_status() {
    let app = spawn_app_with(3, |_| {}).await;
    app.upstream.answer(|_, _| Reply::error(400, "error-400-context-too-long.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("input token count"));
    assert_eq!(app.upstream.generation_calls().len(), 1);
    // The key was not blamed: the next request uses keys normally.
    app.upstream.answer(|_, _| Reply::fixture("response-text.json"));
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
}

#[actix_web::test]
async fn upstream_failures_after_all_retries_are_5xx_without_internals() {
    let app = spawn_app_with(2, |config| config.max_retry_num = 3).await;
    app.upstream.answer(|_, _| Reply::error(503, "error-503-overloaded.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 3);
    assert!(!answer.body.contains("127.0.0.1"), "{}", answer.body);
    assert!(!answer.body.contains("AIza"), "{}", answer.body);
}

#[actix_web::test]
async fn every_key_invalid_is_reported_and_later_requests_fail_fast() {
    let app = spawn_app_with(2, |_| {}).await;
    app.upstream.answer(|_, _| Reply::error(400, "error-400-api-key-invalid.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert!(answer.status == 429 || answer.status == 502, "{}: {}", answer.status, answer.body);
    assert!(answer.body.contains("invalid"), "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 2);
    let again = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert!(again.body.contains("invalid"), "{}", again.body);
    assert_eq!(app.upstream.generation_calls().len(), 2, "invalid keys are not called again");
}

#[actix_web::test]
async fn all_keys_cooling_is_429_with_retry_after() {
    let app = spawn_app_with(2, |_| {}).await;
    app.upstream.answer(|_, _| Reply::error(429, "error-429-per-minute.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    let retry_after: u64 = answer.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((40..=43).contains(&retry_after), "{retry_after}");
}

#[actix_web::test]
async fn empty_answers_are_retried_then_reported() {
    let app = spawn_app_with(3, |_| {}).await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::fixture("response-prompt-blocked.json"),
        1 => Reply::fixture("response-finish-safety.json"),
        _ => Reply::fixture("response-text.json"),
    });
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 3);

    let app = spawn_app_with(3, |config| config.max_empty_responses = 2).await;
    app.upstream.answer(|_, _| Reply::fixture("response-prompt-blocked.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("empty"), "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 2);
}

#[actix_web::test]
async fn non_stream_keepalive_sends_newlines_then_the_body() {
    let app = spawn_app_with(1, |config| config.nonstream_keepalive_enabled = true).await;
    app.upstream
        .answer(|_, _| Reply::After(Duration::from_millis(300), Box::new(Reply::fixture("response-text.json"))));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers.get("content-type").unwrap(), "application/json; charset=utf-8");
    assert_eq!(answer.headers.get("cache-control").unwrap(), "no-cache");
    assert!(answer.body.starts_with('\n'), "{:?}", answer.body);
    let parsed: serde_json::Value = serde_json::from_str(answer.body.trim()).unwrap();
    assert_eq!(parsed["choices"][0]["message"]["content"], "Hello! How can I help you today?");
}

#[actix_web::test]
async fn error_as_assistant_message_is_opt_in() {
    let app = spawn_app_with(1, |config| config.error_as_assistant_message = true).await;
    app.upstream.answer(|_, _| Reply::error(400, "error-400-context-too-long.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.json()["choices"][0]["message"]["content"].as_str().unwrap().contains("input token count"));
    for fake_streaming in [true, false] {
        let app = spawn_app_with(1, |config| {
            config.error_as_assistant_message = true;
            config.fake_streaming = fake_streaming;
        })
        .await;
        app.upstream.answer(|_, _| Reply::error(400, "error-400-context-too-long.json"));
        let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
        assert_eq!(answer.status, 200);
        assert!(answer.streamed_content().contains("input token count"), "{}", answer.body);
        assert_eq!(answer.events().last().unwrap(), "[DONE]");
    }
}

#[actix_web::test]
async fn a_refused_signature_is_retried_once_with_the_placeholder_on_the_same_key() {
    let app = spawn_app_with(3, |_| {}).await;
    app.upstream.answer(|_, _| Reply::fixture("response-function-call.json"));
    let body = app.post("/v1/chat/completions", &chat_body(false)).await.json();
    let calls = body["choices"][0]["message"]["tool_calls"].as_array().unwrap().clone();
    let issuing_key = app.upstream.generation_calls()[0].key.clone();
    let follow_up = json!({
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "Weather in Paris and London?"},
            {"role": "assistant", "content": null, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "{\"temp\": 18}"}
        ]
    });
    // The signature's key went to another project: Gemini refuses it now.
    app.upstream
        .answer(|seen, _| refuse_unsigned_tool_turns(seen, &[]).unwrap_or(Reply::fixture("response-text.json")));
    let answer = app.post("/v1/chat/completions", &follow_up).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let calls = app.upstream.generation_calls();
    let (refused, retried) = (&calls[1], &calls[2]);
    assert_eq!(calls.len(), 3, "one retry, no more");
    // The follow-up went first to the key that produced the signature.
    assert_eq!(refused.key, issuing_key);
    assert_eq!(retried.key, issuing_key);
    assert_eq!(refused.body["contents"][1]["parts"][0]["thoughtSignature"], FIXTURE_SIGNATURES[0]);
    assert_eq!(retried.body["contents"][1]["parts"][0]["thoughtSignature"], "skip_thought_signature_validator");
    assert!(retried.body["contents"][1]["parts"][1].get("thoughtSignature").is_none());

    // Refused even with the placeholder: Google's 400 reaches the client,
    // after exactly one retry, and no key is blamed.
    app.upstream.answer(|_, _| Reply::error(400, "error-400-missing-thought-signature.json"));
    let answer = app.post("/v1/chat/completions", &follow_up).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("thought_signature"), "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 5);
    app.upstream.answer(|_, _| Reply::fixture("response-text.json"));
    for _ in 0..3 {
        assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    }
}

/// Large images and texts go upstream exactly as the client sent them,
/// whether they were shared with the client's body (long, unescaped) or
/// copied (escaped, or base64 with line breaks), on every attempt, on
/// every generating door, streamed or not.
#[actix_web::test]
async fn large_media_and_texts_reach_google_as_sent_on_every_attempt() {
    use base64::Engine;
    let bytes: Vec<u8> = (0..300_000u32).map(|n| (n * 7 % 251) as u8).collect();
    let image = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let wrapped: String =
        image.as_bytes().chunks(76).map(|line| std::str::from_utf8(line).unwrap()).collect::<Vec<_>>().join("\n");
    let text = "word ".repeat(40_000);
    let escaped_text = "line\n\"quoted\"\t".repeat(10_000);
    let app = spawn_app_with(2, |_| {}).await;
    // Each request's first attempt fails: its body is sent again.
    app.upstream.answer(|_, index| match index % 2 {
        0 => Reply::error(503, "error-503-overloaded.json"),
        _ => Reply::fixture("response-text.json"),
    });
    let chat = json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "system", "content": text},
        {"role": "user", "content": [
            {"type": "text", "text": escaped_text},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image}")}},
            {"type": "file", "file": {"file_data": wrapped, "filename": "a.pdf"}},
            {"type": "input_audio", "input_audio": {"data": image, "format": "wav"}}
        ]}
    ]});
    let messages = json!({"model": "gemini-2.5-flash", "max_tokens": 100, "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
            {"type": "text", "text": text}
        ]}
    ]});
    let responses = json!({"model": "gemini-2.5-flash", "store": false, "input": [
        {"role": "user", "content": [
            {"type": "input_image", "image_url": format!("data:image/png;base64,{image}")},
            {"type": "input_file", "file_data": wrapped, "filename": "a.pdf"},
            {"type": "input_text", "text": text}
        ]}
    ]});
    for (path, body) in
        [("/v1/chat/completions", chat.clone()), ("/v1/messages", messages), ("/v1/responses", responses)]
    {
        let before = app.upstream.generation_calls().len();
        let answer = app.post(path, &body).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let calls = app.upstream.generation_calls();
        let calls = &calls[before..];
        assert!(calls.len() >= 2, "{path}: retried on the other key");
        for call in calls {
            assert_eq!(call.raw, calls[0].raw, "{path}: every attempt sends the same bytes");
            assert_eq!(call.content_length, Some(call.raw.len()), "{path}: a length, not chunks");
            let parts = call.body["contents"][0]["parts"].as_array().unwrap();
            let inline: Vec<&str> = parts.iter().filter_map(|part| part["inlineData"]["data"].as_str()).collect();
            assert!(inline.iter().all(|data| *data == image), "{path}: base64 as sent (line breaks dropped)");
            let texts: Vec<&str> = parts.iter().filter_map(|part| part["text"].as_str()).collect();
            if path == "/v1/chat/completions" {
                assert_eq!(inline.len(), 3, "{path}");
                assert_eq!(texts, [escaped_text.as_str()], "{path}");
                assert_eq!(call.body["systemInstruction"]["parts"][0]["text"], text, "{path}");
            } else {
                let images = if path == "/v1/messages" { 1 } else { 2 };
                assert_eq!((inline.len(), texts), (images, vec![text.as_str()]), "{path}");
            }
        }
    }
    // Streamed, the same bytes go up as for the JSON answer.
    let before = app.upstream.generation_calls().len();
    let mut streamed = chat;
    streamed["stream"] = json!(true);
    let answer = app.post("/v1/chat/completions", &streamed).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), before + 2, "retried before the first event");
    assert_eq!((&calls[before].raw, &calls[before + 1].raw), (&calls[0].raw, &calls[0].raw));
}
