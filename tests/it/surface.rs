//! Health, authentication on every route, the model list, and input errors.

use serde_json::json;

use crate::helpers::*;

const API_GETS: &[&str] = &["/v1/models", "/models", "/aistudio/models"];
const CHAT_POSTS: &[&str] = &["/v1/chat/completions", "/chat/completions", "/aistudio/chat/completions"];

#[actix_web::test]
async fn health_is_open() {
    let app = spawn_app().await;
    let answer = app.get_with("/health", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "ok");
}

#[actix_web::test]
async fn every_api_route_accepts_every_key_form_and_refuses_others() {
    let app = spawn_app().await;
    let bearer = format!("Bearer {PASSWORD}");
    let good: [Vec<(&str, &str)>; 2] = [vec![("authorization", &bearer)], vec![("x-goog-api-key", PASSWORD)]];
    let bad: [Vec<(&str, &str)>; 3] =
        [vec![], vec![("authorization", "Bearer nope")], vec![("x-goog-api-key", "nope")]];
    for path in API_GETS {
        for headers in &good {
            assert_eq!(app.get_with(path, headers).await.status, 200, "{path} {headers:?}");
        }
        assert_eq!(app.get_with(&format!("{path}?key={PASSWORD}"), &[]).await.status, 200, "{path} ?key");
        for headers in &bad {
            let answer = app.get_with(path, headers).await;
            assert_eq!(answer.status, 401, "{path} {headers:?}");
            assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
            assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
        }
    }
    for path in CHAT_POSTS {
        for headers in &good {
            let answer = app.post_with(path, &chat_body(false), headers).await;
            assert_eq!(answer.status, 200, "{path} {headers:?}: {}", answer.body);
        }
        let answer = app.post_with(&format!("{path}?key={PASSWORD}"), &chat_body(false), &[]).await;
        assert_eq!(answer.status, 200, "{path} ?key");
        for headers in &bad {
            let answer = app.post_with(path, &chat_body(false), headers).await;
            assert_eq!(answer.status, 401, "{path} {headers:?}");
        }
    }
    // Refused requests never reached the upstream: 3 routes × 3 good forms.
    assert_eq!(app.upstream.generation_calls().len(), 9);
}

#[actix_web::test]
async fn pool_keys_travel_in_the_header_only() {
    let app = spawn_app().await;
    app.post("/v1/chat/completions", &chat_body(false)).await;
    app.post("/v1/chat/completions", &chat_body(true)).await;
    let calls = app.upstream.seen();
    assert!(!calls.is_empty());
    for call in calls {
        let key = call.key.clone().expect("key header present");
        assert!(key.starts_with("AIzaTestKey"), "{key}");
        assert!(!call.query.contains("key="), "key in query: {}", call.query);
        assert!(!call.query.contains(&key));
    }
}

#[actix_web::test]
async fn model_list_comes_from_every_upstream_page() {
    let app = spawn_app_with(1, |config| config.search_mode = true).await;
    for _ in 0..100 {
        if app.app.catalog.has_upstream_list() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = app.get("/v1/models").await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"gemini-2.5-flash"), "{ids:?}");
    assert!(ids.contains(&"gemini-2.5-pro"), "second page missing: {ids:?}");
    assert!(ids.contains(&"gemini-2.5-pro-search"), "{ids:?}");
    assert!(!ids.contains(&"embedding-001"), "{ids:?}");
    assert_eq!(body["data"][0]["object"], "model");
    // The listing call used a pool key, in the header.
    let listing = app.upstream.seen().into_iter().find(|s| s.path == "/v1beta/models").unwrap();
    assert!(listing.key.is_some() && !listing.query.contains("key="));
}

#[actix_web::test]
async fn bundled_models_when_the_upstream_list_is_unknown() {
    let app = spawn_app_with(0, |_| {}).await;
    let body = app.get("/v1/models").await.json();
    assert!(!body["data"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn blocked_and_unlisted_models_are_refused_on_chat() {
    let app = spawn_app_with(1, |config| {
        config.blocked_models = vec!["gemini-2.5-pro".into()];
    })
    .await;
    let mut body = chat_body(false);
    body["model"] = json!("gemini-2.5-pro-nothinking");
    let answer = app.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "model_not_found");
    assert!(app.upstream.generation_calls().is_empty());
}

#[actix_web::test]
async fn bad_input_is_a_400_naming_the_problem_and_reaches_no_upstream() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "Invalid request body"),
        (br#"{"model":"gemini-2.5-flash"}"#.to_vec(), "messages"),
        (br#"{"model":"gemini-2.5-flash","messages":[]}"#.to_vec(), "messages"),
        (
            serde_json::to_vec(&json!({"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"},{"role":"bot","content":"x"}]})).unwrap(),
            "messages[1]",
        ),
        (
            serde_json::to_vec(&json!({"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64"}}]}]})).unwrap(),
            "messages[0]",
        ),
        (
            serde_json::to_vec(&json!({"model":"../../x","messages":[{"role":"user","content":"hi"}]})).unwrap(),
            "model",
        ),
    ];
    for (body, needle) in cases {
        let answer = app
            .post_raw("/v1/chat/completions", body.clone(), &[("authorization", &format!("Bearer {PASSWORD}"))])
            .await;
        assert_eq!(answer.status, 400, "{}: {}", String::from_utf8_lossy(&body), answer.body);
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{message:?} should mention {needle}");
        assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    }
    assert!(app.upstream.generation_calls().is_empty());
}

#[actix_web::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app_with(1, |config| config.max_request_body_bytes = 1024).await;
    let mut body = chat_body(false);
    body["messages"][1]["content"] = json!("x".repeat(4096));
    let answer = app.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "request_too_large");
}

#[actix_web::test]
async fn unknown_routes_are_404_json() {
    let app = spawn_app().await;
    let answer = app.get("/v1/nothing-here").await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]["message"].is_string());
}

#[actix_web::test]
async fn remote_images_are_fetched_and_inlined_but_private_hosts_are_refused() {
    let image_message = |url: String| {
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": url}}
        ]}]})
    };
    let app = spawn_app_with(1, |config| config.allow_private_image_urls = true).await;
    let url = format!("{}/image.png?sig=abc", app.upstream.base_url);
    let answer = app.post("/v1/chat/completions", &image_message(url)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let sent = &app.upstream.generation_calls()[0].body;
    let inline = &sent["contents"][0]["parts"][1]["inlineData"];
    assert_eq!(inline["mimeType"], "image/png");
    assert!(inline["data"].as_str().unwrap().len() > 10);

    let answer =
        app.post("/v1/chat/completions", &image_message(format!("{}/not-an-image", app.upstream.base_url))).await;
    assert_eq!(answer.status, 400, "{}", answer.body);

    let guarded = spawn_app_with(1, |_| {}).await;
    let url = format!("{}/image.png?sig=abc", guarded.upstream.base_url);
    let answer = guarded.post("/v1/chat/completions", &image_message(url)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("private"), "{message}");
    assert!(!message.contains("sig=abc"), "query string leaked: {message}");
    assert!(guarded.upstream.generation_calls().is_empty());
}

#[actix_web::test]
async fn storage_dir_is_created_private_or_startup_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::temp_dir().join(format!("hajimi-storage-{}", std::process::id()));
    let mut config = hajimi::config::Config::for_tests();
    config.enable_storage = true;
    config.storage_dir = base.join("data");
    let application = hajimi::startup::Application::build(config.clone()).expect("builds");
    let mode = std::fs::metadata(base.join("data")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    drop(application);

    std::fs::write(base.join("a-file"), b"x").unwrap();
    config.storage_dir = base.join("a-file").join("data");
    let error = hajimi::startup::Application::build(config).err().expect("cannot create a dir under a file");
    assert!(error.to_string().contains("STORAGE_DIR"), "{error}");
    std::fs::remove_dir_all(&base).unwrap();
}

#[actix_web::test]
async fn with_no_key_at_all_chat_says_so_with_503_not_a_rate_limit() {
    let app = spawn_app_with(0, |_| {}).await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "no_keys_configured");
    assert!(answer.json()["error"]["message"].as_str().unwrap().contains("No Gemini API key is configured"));
    assert!(answer.headers.get("retry-after").is_none(), "nothing to wait for");
    let native = app.post("/v1beta/models/gemini-2.5-flash:generateContent", &json!({"contents": []})).await;
    assert_eq!((native.status, native.json()["error"]["status"].as_str()), (503, Some("UNAVAILABLE")));
}
