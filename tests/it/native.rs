//! Gemini-native routes and `/v1/embeddings` against the fake upstream:
//! every route form and action, bodies forwarded untouched, Google's
//! shapes for answers and errors, the pool's rules, both stream framings.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const GOOGLE_KEY: (&str, &str) = ("x-goog-api-key", PASSWORD);

fn native_body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {"temperature": 0.4},
        "someFutureField": {"nested": [1, 2, 3]}
    })
}

fn native_bytes() -> Vec<u8> {
    // Odd spacing and key order: forwarded as sent, not re-serialized.
    br#"{"someFutureField": {"nested": [1,2,3]},   "contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}"#
        .to_vec()
}

/// The `data:` events of a native SSE body (lines end in `\r\n`).
fn native_events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|payload| serde_json::from_str(payload).unwrap_or_else(|e| panic!("{e}: {payload}")))
        .collect()
}

async fn stream_app(fake_streaming: bool) -> TestApp {
    spawn_app_with(3, |config| config.fake_streaming = fake_streaming).await
}

#[actix_rt::test]
async fn model_lists_in_googles_shape_paged_on_every_route() {
    let app = spawn_app().await;
    // Let the background refresh load the recorded upstream list.
    for _ in 0..100 {
        if app.app.catalog.has_upstream_list() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for path in ["/v1beta/models", "/gemini/v1beta/models", "/gemini/v1/models"] {
        let answer = app.get_with(path, &[GOOGLE_KEY]).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let list = answer.json();
        let names: Vec<&str> = list["models"].as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
        assert!(names.contains(&"models/gemini-2.5-flash"), "{path}: {names:?}");
        assert!(names.contains(&"models/gemini-2.5-flash-nothinking"), "variants are listed: {names:?}");
        assert!(names.contains(&"models/embedding-001"), "embedding models are listed: {names:?}");
        assert!(list.get("nextPageToken").is_none(), "no page size: the whole list at once");
    }
    // Paging as Google's SDKs do it.
    let mut token = String::new();
    let mut paged = Vec::new();
    for _ in 0..100 {
        let answer = app.get_with(&format!("/v1beta/models?pageSize=2&pageToken={token}"), &[GOOGLE_KEY]).await;
        let page = answer.json();
        assert!(page["models"].as_array().unwrap().len() <= 2);
        paged.extend(page["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()));
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    let whole = app.get_with("/v1beta/models", &[GOOGLE_KEY]).await.json();
    assert_eq!(paged.len(), whole["models"].as_array().unwrap().len());
    let bad = app.get_with("/v1beta/models?pageToken=nonsense", &[GOOGLE_KEY]).await;
    assert_eq!((bad.status, bad.json()["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));

    // One model, Google's entry with its real fields.
    let model = app.get_with("/v1beta/models/gemini-2.5-flash", &[GOOGLE_KEY]).await;
    assert_eq!(model.status, 200);
    assert_eq!(model.json()["inputTokenLimit"], 1048576);
    let missing = app.get_with("/gemini/v1beta/models/gemini-9.9-ultra", &[GOOGLE_KEY]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["status"], "NOT_FOUND");
    assert_eq!(missing.json()["error"]["code"], 404);

    // /v1/models stays OpenAI's.
    let openai = app.get("/v1/models").await.json();
    assert_eq!(openai["object"], "list");
    let one = app.get("/v1/models/gemini-2.5-flash").await;
    assert_eq!((one.status, one.json()["object"].as_str()), (200, Some("model")));
    assert_eq!(app.get("/v1/models/nope").await.json()["error"]["code"], "model_not_found");
}

#[actix_rt::test]
async fn generate_content_on_every_route_form_forwards_the_body_untouched() {
    let app = spawn_app().await;
    let routes = [
        ("/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("/v1/models/gemini-2.5-flash:generateContent", "/v1/models/gemini-2.5-flash:generateContent"),
        ("/gemini/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("/gemini/v1/models/gemini-2.5-flash:generateContent", "/v1/models/gemini-2.5-flash:generateContent"),
    ];
    for (index, (route, upstream_path)) in routes.iter().enumerate() {
        // A different body each time, so nothing is shared or cached.
        let mut body = native_bytes();
        body.extend_from_slice(" ".repeat(index).as_bytes());
        let answer = app.post_raw(route, body.clone(), &[GOOGLE_KEY]).await;
        assert_eq!(answer.status, 200, "{route}: {}", answer.body);
        assert_eq!(answer.body, fixture("response-text.json"), "the upstream's answer, byte for byte");
        let seen = app.upstream.generation_calls().pop().unwrap();
        assert_eq!(seen.path, *upstream_path);
        assert_eq!(seen.raw.as_ref(), body.as_slice(), "{route}: body forwarded byte for byte");
        assert!(seen.key.as_deref().is_some_and(|key| key.starts_with("AIzaTestKey")), "a pool key upstream");
        assert!(seen.query.is_empty(), "nothing of the client's query goes upstream: {}", seen.query);
    }
}

#[actix_rt::test]
async fn the_three_auth_forms_and_googles_error_shape() {
    let app = spawn_app().await;
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let bearer = format!("Bearer {PASSWORD}");
    let accepted: [(String, Vec<(&str, &str)>); 3] = [
        (path.to_owned(), vec![GOOGLE_KEY]),
        (format!("{path}?key={PASSWORD}"), vec![]),
        (path.to_owned(), vec![("authorization", bearer.as_str())]),
    ];
    for (index, (route, headers)) in accepted.iter().enumerate() {
        let mut body = native_bytes();
        body.extend_from_slice(" ".repeat(index).as_bytes());
        let answer = app.post_raw(route, body, headers).await;
        assert_eq!(answer.status, 200, "{route} {headers:?}: {}", answer.body);
    }
    // The client's password never goes upstream.
    assert!(app
        .upstream
        .seen()
        .iter()
        .all(|seen| seen.key.as_deref() != Some(PASSWORD) && !seen.query.contains(PASSWORD)));

    for (route, headers) in [
        (path.to_owned(), vec![]),
        (format!("{path}?key=wrong"), vec![]),
        (path.to_owned(), vec![("x-goog-api-key", "wrong")]),
    ] {
        let answer = app.post_raw(&route, native_bytes(), &headers).await;
        assert_eq!(answer.status, 401, "{route}");
        let error = answer.json();
        assert_eq!(error["error"]["code"], 401);
        assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
        assert!(error["error"]["message"].is_string());
    }
    let listing = app.get_with("/v1beta/models", &[]).await;
    assert_eq!((listing.status, listing.json()["error"]["status"].as_str()), (401, Some("UNAUTHENTICATED")));
    // A query-string key is never logged.
    let logged = hajimi::log_ring::global().records(None, None);
    assert!(logged.iter().all(|record| !record.message.contains("key=wrong") && !record.message.contains(PASSWORD)));

    // Unknown native routes and actions: Google's 404.
    let unknown = app.post_raw("/v1beta/models/gemini-2.5-flash:predict", native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!((unknown.status, unknown.json()["error"]["status"].as_str()), (404, Some("NOT_FOUND")));
    let elsewhere = app.get_with("/v1beta/tunedModels", &[GOOGLE_KEY]).await;
    assert_eq!((elsewhere.status, elsewhere.json()["error"]["code"].as_u64()), (404, Some(404)));
    let bad_json = app.post_raw(path, b"{not json".to_vec(), &[GOOGLE_KEY]).await;
    assert_eq!((bad_json.status, bad_json.json()["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
}

#[actix_rt::test]
async fn a_429_on_one_key_is_retried_on_another_and_client_errors_are_not() {
    let app = spawn_app().await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::error(429, "error-429-per-minute.json"),
        _ => Reply::fixture("response-text.json"),
    });
    let answer = app.post_raw("/v1beta/models/gemini-2.5-flash:generateContent", native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].key, calls[1].key, "the second attempt used another key");

    // Google's 400 for the request itself: the real status, Google's shape, no retry.
    app.upstream.answer(|_, _| Reply::error(400, "error-400-client-invalid-argument.json"));
    let before = app.upstream.generation_calls().len();
    let mut body = native_bytes();
    body.push(b' ');
    let answer = app.post_raw("/v1beta/models/gemini-2.5-flash:generateContent", body, &[GOOGLE_KEY]).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(app.upstream.generation_calls().len(), before + 1);
}

#[actix_rt::test]
async fn model_suffixes_and_lists_apply_to_native_requests() {
    let app = spawn_app_with(2, |config| config.blocked_models = vec!["gemini-2.0-flash".into()]).await;
    let body = serde_json::to_vec(&native_body()).unwrap();
    let answer = app.post_raw("/v1beta/models/gemini-2.5-flash-nothinking:generateContent", body, &[GOOGLE_KEY]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = app.upstream.generation_calls().pop().unwrap();
    assert_eq!(seen.model, "gemini-2.5-flash");
    assert_eq!(seen.body["generationConfig"]["thinkingConfig"]["thinkingBudget"], 0);
    assert_eq!(seen.body["generationConfig"]["temperature"], 0.4);
    assert_eq!(seen.body["someFutureField"], json!({"nested": [1, 2, 3]}), "unknown fields survive a suffix");

    let blocked = app.post_raw("/v1beta/models/gemini-2.0-flash:generateContent", native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!((blocked.status, blocked.json()["error"]["status"].as_str()), (404, Some("NOT_FOUND")));
}

#[actix_rt::test]
async fn real_streams_in_both_framings_forward_every_event() {
    let app = stream_app(false).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(5)));
    let upstream_events: Vec<Value> = fixture("stream-text.sse")
        .split("\r\n\r\n")
        .filter_map(|event| event.trim().strip_prefix("data: "))
        .map(|payload| serde_json::from_str(payload).unwrap())
        .collect();

    let sse = app
        .post_raw("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", native_bytes(), &[GOOGLE_KEY])
        .await;
    assert_eq!(sse.status, 200);
    assert!(sse.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(native_events(&sse.body), upstream_events, "every upstream event, unchanged");
    assert!(!sse.body.contains("[DONE]"));
    let seen = app.upstream.generation_calls().pop().unwrap();
    assert_eq!((seen.action.as_str(), seen.query.as_str()), ("streamGenerateContent", "alt=sse"));

    let mut body = native_bytes();
    body.push(b' ');
    let array = app.post_raw("/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, &[GOOGLE_KEY]).await;
    assert_eq!(array.status, 200);
    assert!(array.headers.get("content-type").unwrap().to_str().unwrap().starts_with("application/json"));
    let parsed: Value = serde_json::from_str(&array.body).unwrap_or_else(|e| panic!("{e}: {}", array.body));
    assert_eq!(parsed.as_array().unwrap(), &upstream_events);
}

#[actix_rt::test]
async fn fake_streaming_serves_native_streams_as_one_event_after_keepalives() {
    let app = stream_app(true).await;
    app.upstream
        .answer(|_, _| Reply::After(Duration::from_millis(180), Box::new(Reply::fixture("response-text.json"))));
    let sse = app
        .post_raw("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", native_bytes(), &[GOOGLE_KEY])
        .await;
    assert_eq!(sse.status, 200);
    assert!(sse.body.starts_with("\r\n"), "blank-line keep-alives while waiting: {:?}", &sse.body[..20]);
    let events = native_events(&sse.body);
    assert_eq!(events.len(), 1, "{}", sse.body);
    let answer: Value = serde_json::from_str(&fixture("response-text.json")).unwrap();
    assert_eq!(events[0], answer);
    let seen = app.upstream.generation_calls().pop().unwrap();
    assert_eq!(seen.action, "generateContent", "fake streaming calls the non-stream action");
}

#[actix_rt::test]
async fn a_failure_mid_stream_ends_with_googles_error_and_before_it_keeps_the_real_status() {
    let app = stream_app(false).await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-truncated.sse", Duration::from_millis(2)));
    let cut = app
        .post_raw("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", native_bytes(), &[GOOGLE_KEY])
        .await;
    assert_eq!(cut.status, 200);
    let last = native_events(&cut.body).pop().unwrap();
    assert_eq!(last["error"]["code"], 502, "{}", cut.body);
    assert_eq!(last["error"]["status"], "UNAVAILABLE");
    assert_eq!(last.as_object().unwrap().keys().next().map(String::as_str), Some("error"));

    // In a JSON array the error is the last element and the array closes.
    let mut body = native_bytes();
    body.push(b' ');
    let array = app.post_raw("/v1beta/models/gemini-2.5-flash:streamGenerateContent", body, &[GOOGLE_KEY]).await;
    let parsed: Value = serde_json::from_str(&array.body).unwrap_or_else(|e| panic!("{e}: {}", array.body));
    assert_eq!(parsed.as_array().unwrap().last().unwrap()["error"]["code"], 502);

    // Every key refused before any byte: the real status in Google's shape.
    app.upstream.answer(|_, _| Reply::error(429, "error-429-per-day.json"));
    let refused = app
        .post_raw("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", b"{}".to_vec(), &[GOOGLE_KEY])
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(refused.headers.get("retry-after").is_some());
}

#[actix_rt::test]
async fn an_empty_stream_is_retried_before_any_byte() {
    let app = stream_app(false).await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::sse_fixture("stream-empty-stop.sse", Duration::ZERO),
        _ => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
    });
    let answer = app
        .post_raw("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", native_bytes(), &[GOOGLE_KEY])
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(app.upstream.generation_calls().len(), 2);
    assert!(native_events(&answer.body).iter().all(|event| event.get("error").is_none()), "{}", answer.body);
    assert!(answer.body.contains("Hello"), "{}", answer.body);
}

#[actix_rt::test]
async fn count_tokens_and_embeddings_pass_through_the_pool() {
    let app = spawn_app().await;
    app.upstream.answer(|seen, _| match seen.action.as_str() {
        "countTokens" => Reply::fixture("count-tokens.json"),
        "embedContent" => Reply::fixture("embed-content.json"),
        "batchEmbedContents" => Reply::fixture("batch-embed.json"),
        other => panic!("unexpected action {other}"),
    });
    let count = app.post_raw("/v1beta/models/gemini-2.5-flash:countTokens", native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!((count.status, count.body.as_str()), (200, fixture("count-tokens.json").as_str()));
    let embed = app
        .post_raw(
            "/v1beta/models/gemini-embedding-001:embedContent",
            b"{\"content\":{\"parts\":[{\"text\":\"a\"}]}}".to_vec(),
            &[GOOGLE_KEY],
        )
        .await;
    assert_eq!((embed.status, embed.body.as_str()), (200, fixture("embed-content.json").as_str()));
    let batch_body = br#"{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]}}]}"#;
    let batch = app
        .post_raw("/gemini/v1beta/models/gemini-embedding-001:batchEmbedContents", batch_body.to_vec(), &[GOOGLE_KEY])
        .await;
    assert_eq!((batch.status, batch.body.as_str()), (200, fixture("batch-embed.json").as_str()));
    let seen = app.upstream.seen();
    let actions: Vec<&str> = seen.iter().filter(|s| !s.action.is_empty()).map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["countTokens", "embedContent", "batchEmbedContents"]);
    assert_eq!(seen.iter().find(|s| s.action == "batchEmbedContents").unwrap().raw.as_ref(), batch_body);
    // Token counting is booked apart from generation.
    let models: Vec<String> = app
        .app
        .pool
        .key_views(0, 10, app.app.now_ms())
        .into_iter()
        .flat_map(|view| view.models.into_iter().map(|m| m.model))
        .collect();
    assert!(models.iter().any(|model| model == "gemini-2.5-flash:countTokens"), "{models:?}");
}

#[actix_rt::test]
async fn openai_embeddings_in_both_encodings_batched_upstream() {
    let app = spawn_app().await;
    app.upstream.answer(|seen, _| {
        let count = seen.body["requests"].as_array().map_or(0, Vec::len);
        let embeddings: Vec<Value> = (0..count).map(|n| json!({"values": [n as f32 * 0.5, -1.0]})).collect();
        Reply::Json(200, json!({"embeddings": embeddings}).to_string())
    });
    let answer = app
        .post("/v1/embeddings", &json!({"model": "text-embedding-3-small", "input": "hello", "dimensions": 2}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(body["data"][0]["embedding"], json!([0.0, -1.0]));
    let seen = app.upstream.seen().into_iter().rfind(|s| s.action == "batchEmbedContents").unwrap();
    assert_eq!(seen.model, "gemini-embedding-001", "OpenAI's model names map to Gemini's default");
    assert_eq!(seen.body["requests"][0]["outputDimensionality"], 2);
    assert_eq!(seen.body["requests"][0]["content"]["parts"][0]["text"], "hello");

    // 150 texts: two upstream batches, answered in the client's order, base64.
    let texts: Vec<String> = (0..150).map(|n| format!("text {n}")).collect();
    let before = app.upstream.seen().len();
    let answer = app
        .post("/v1/embeddings", &json!({"model": "gemini-embedding-001", "input": texts, "encoding_format": "base64"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let data = answer.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 150);
    let batches: Vec<usize> =
        app.upstream.seen()[before..].iter().map(|s| s.body["requests"].as_array().unwrap().len()).collect();
    assert_eq!(batches, [100, 50]);
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data[101]["embedding"].as_str().unwrap()).unwrap();
    let first = f32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert_eq!((data[101]["index"].as_u64(), first), (Some(101), 0.5), "the second batch's second vector");

    let tokens = app.post("/v1/embeddings", &json!({"model": "gemini-embedding-001", "input": [[1, 2, 3]]})).await;
    assert_eq!((tokens.status, tokens.json()["error"]["param"].as_str()), (400, Some("input")));
}

#[actix_rt::test]
async fn hedged_native_generations_feed_the_swipe_cache() {
    let app = spawn_app_with(3, |config| config.concurrent_requests = 2).await;
    app.upstream.answer(|_, index| {
        Reply::After(Duration::from_millis(20 * (index as u64 + 1)), Box::new(Reply::fixture("response-text.json")))
    });
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let first = app.post_raw(path, native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!(first.status, 200);
    app.wait_for_cached_answers(1).await;
    assert_eq!(app.app.swipe_cache.len(), 1, "the spare answer is kept");
    let calls = app.upstream.generation_calls().len();
    let swipe = app.post_raw(path, native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!((swipe.status, swipe.body.as_str()), (200, fixture("response-text.json").as_str()));
    assert_eq!(app.upstream.generation_calls().len(), calls, "the swipe came from the cache");
}

/// The requests SillyTavern's "Google AI Studio" source sends to a reverse
/// proxy (recorded in `fixtures/sillytavern/`): the model list (first page
/// only, key in the query), then a streaming generation with a system
/// instruction and safety settings — in both stream modes.
#[actix_rt::test]
async fn sillytavern_google_ai_studio_replay() {
    let path = format!("{}/tests/it/fixtures/sillytavern/google-ai-studio.json", env!("CARGO_MANIFEST_DIR"));
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap().replace("${PASSWORD}", PASSWORD)).unwrap();
    let url = |request: &Value| {
        let query: Vec<String> = request["query"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={}", value.as_str().unwrap()))
            .collect();
        format!("{}?{}", request["path"].as_str().unwrap(), query.join("&"))
    };
    let headers = |request: &Value| -> Vec<(String, String)> {
        request["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.as_str() != "connection")
            .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
            .collect()
    };
    for fake_streaming in [true, false] {
        let app = stream_app(fake_streaming).await;
        app.upstream.answer(|seen, _| match seen.action.as_str() {
            "streamGenerateContent" => Reply::sse_fixture("stream-text.sse", Duration::from_millis(2)),
            _ => Reply::fixture("response-text.json"),
        });
        let list_request = &recorded["model_list"];
        let list_headers = headers(list_request);
        let list_headers: Vec<(&str, &str)> = list_headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let list = app.get_with(&url(list_request), &list_headers).await;
        assert_eq!(list.status, 200, "{}", list.body);
        // SillyTavern keeps the models that can generateContent, from the first page only.
        let usable: Vec<String> = list.json()["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["supportedGenerationMethods"].as_array().unwrap().iter().any(|x| x == "generateContent"))
            .map(|m| m["name"].as_str().unwrap().trim_start_matches("models/").to_owned())
            .collect();
        assert!(usable.contains(&"gemini-2.5-flash".to_owned()), "{usable:?}");
        assert!(usable.contains(&"gemini-2.5-flash-search".to_owned()) || !app.app.config().search_mode);

        for name in ["stream_generate", "generate"] {
            let request = &recorded[name];
            let body = serde_json::to_vec(&request["body"]).unwrap();
            let request_headers = headers(request);
            let request_headers: Vec<(&str, &str)> =
                request_headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let answer = app.post_raw(&url(request), body.clone(), &request_headers).await;
            assert_eq!(answer.status, 200, "{name}: {}", answer.body);
            let text: String = if name == "generate" {
                answer.json()["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().to_owned()
            } else {
                native_events(&answer.body)
                    .iter()
                    .filter_map(|event| {
                        event["candidates"][0]["content"]["parts"][0]["text"].as_str().map(str::to_owned)
                    })
                    .collect()
            };
            assert!(!text.is_empty(), "{name} (fake streaming {fake_streaming}): {}", answer.body);
            let seen = app.upstream.generation_calls().pop().unwrap();
            assert_eq!(seen.raw.as_ref(), body.as_slice(), "{name}: SillyTavern's body reaches Google untouched");
            assert_eq!(seen.body["safetySettings"][4]["category"], "HARM_CATEGORY_CIVIC_INTEGRITY");
            assert!(!seen.query.contains(PASSWORD));
        }
    }
}

#[actix_rt::test]
async fn empty_answers_are_retried_then_the_last_one_is_delivered_as_google_sent_it() {
    let app = spawn_app_with(3, |config| config.max_empty_responses = 2).await;
    app.upstream.answer(|_, _| Reply::fixture("response-prompt-blocked.json"));
    let answer = app.post_raw("/v1beta/models/gemini-2.5-flash:generateContent", native_bytes(), &[GOOGLE_KEY]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, fixture("response-prompt-blocked.json"), "the client reads promptFeedback itself");
    assert_eq!(app.upstream.generation_calls().len(), 2, "one retry on another key first");
}

#[actix_web::test]
async fn the_root_model_list_answers_google_clients_in_googles_shape() {
    let app = spawn_app_with(1, |_| {}).await;
    for path in ["/v1/models", "/models"] {
        for headers in [
            vec![("x-goog-api-key", PASSWORD)],
            vec![("authorization", &*format!("Bearer {PASSWORD}")), ("x-goog-api-client", "google-genai-sdk/1.0")],
        ] {
            let answer = app.get_with(path, &headers).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            let models = answer.json()["models"].as_array().cloned().unwrap_or_default();
            assert!(models.iter().any(|m| m["name"] == "models/gemini-2.5-flash"), "{path}: {}", answer.body);
        }
        let keyed = app.get_with(&format!("{path}?key={PASSWORD}"), &[]).await;
        assert!(keyed.json()["models"].is_array(), "{path}?key=");
        // OpenAI's clients still get OpenAI's list.
        let openai = app.get(path).await;
        assert_eq!(openai.json()["object"], "list", "{path}");
    }
    let one = app.get_with("/v1/models/gemini-2.5-flash", &[("x-goog-api-key", PASSWORD)]).await;
    assert_eq!(one.json()["name"], "models/gemini-2.5-flash", "{}", one.body);
    let missing = app.get_with("/v1/models/not-a-model", &[("x-goog-api-key", PASSWORD)]).await;
    assert_eq!((missing.status, missing.json()["error"]["status"].as_str()), (404, Some("NOT_FOUND")));
}
