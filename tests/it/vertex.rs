//! Vertex AI against the fake upstream, which plays Vertex and Google's
//! OAuth token endpoint too: the JWT-bearer grant (claims checked against
//! the test credential's public key), token reuse and renewal, Express keys
//! in the header only, failover between credentials, routing by path,
//! setting and model prefix, a deployment without any AI Studio key.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::helpers::*;

const EXPRESS_KEY: &str = "AQ.Ab8RN6express-test-key-0123456789";
const PROJECT_PATH: &str = "/v1/projects/hajimi-test/locations/global/publishers/google/models/gemini-2.5-flash";
const EXPRESS_PATH: &str = "/v1/publishers/google/models/gemini-2.5-flash";

fn vertex_fixture(name: &str) -> String {
    let path = format!("{}/tests/it/fixtures/vertex/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The test service account, its tokens granted by the fake upstream;
/// `n` changes the client email (another account, same key).
fn account(token_base: &str, n: usize) -> Value {
    let mut account: Value = serde_json::from_str(&vertex_fixture("service-account.json")).unwrap();
    account["token_uri"] = json!(format!("{token_base}/token"));
    if n > 0 {
        account["client_email"] = json!(format!("hajimi-test-{n}@hajimi-test.iam.gserviceaccount.com"));
    }
    account
}

/// A Vertex-only app (no AI Studio key) with `accounts` service accounts
/// and, if `express`, an Express key.
async fn vertex_app(accounts: usize, express: bool, clock: Arc<dyn hajimi::clock::Clock>) -> TestApp {
    spawn_app_with_clock(0, clock, |config| {
        let base = config.gemini_base_url.clone();
        let list: Vec<Value> = (0..accounts).map(|n| account(&base, n)).collect();
        config.google_credentials_json =
            hajimi::secret::Secret::new(if accounts == 0 { String::new() } else { json!(list).to_string() });
        if express {
            config.vertex_express_api_key = hajimi::secret::Secret::new(EXPRESS_KEY);
        }
        config.vertex_base_url = base;
        config.enable_vertex = true;
        config.enable_vertex_express = express;
        config.validate_keys_on_startup = false;
    })
    .await
}

fn system_clock() -> Arc<dyn hajimi::clock::Clock> {
    Arc::new(hajimi::clock::SystemClock)
}

/// The claims of a grant the token endpoint received, verified against the
/// test credential's public key.
fn verified_claims(grant: &Seen, token_uri: &str) -> Value {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&grant.raw).into_owned().collect();
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let assertion = &form["assertion"];
    let header = decode_header(assertion).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some("0123456789abcdef0123456789abcdef01234567"));
    let key = DecodingKey::from_rsa_pem(vertex_fixture("service-account.pub.pem").as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[token_uri]);
    validation.validate_exp = false;
    decode::<Value>(assertion, &key, &validation)
        .expect("the assertion verifies with the credential's public key")
        .claims
}

#[actix_rt::test]
async fn a_vertex_only_deployment_serves_chat_with_a_verified_grant_and_reuses_the_token() {
    let clock = Arc::new(hajimi::clock::ManualClock::new(1_767_225_600_000));
    let app = vertex_app(1, false, clock.clone()).await;
    assert!(app.app.pool.is_empty(), "no AI Studio key at all");
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["choices"][0]["message"]["content"], "Hello! How can I help you today?");

    let grants = app.upstream.token_grants();
    assert_eq!(grants.len(), 1);
    let claims = verified_claims(&grants[0], &format!("{}/token", app.upstream.base_url));
    assert_eq!(claims["iss"], "hajimi-test@hajimi-test.iam.gserviceaccount.com");
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(iat, 1_767_225_600, "iat is the app's clock");
    assert_eq!(claims["exp"].as_u64().unwrap() - iat, 3600);

    let call = app.upstream.generation_calls().pop().unwrap();
    assert_eq!(call.path, format!("{PROJECT_PATH}:generateContent"));
    assert_eq!(call.authorization.as_deref(), Some("Bearer ya29.fake-1"));
    assert!(call.key.is_none(), "no API key next to a bearer token");
    assert_eq!(call.body["contents"][0]["parts"][0]["text"], "Hello", "the same conversion as AI Studio");

    // The token is reused while fresh, renewed shortly before it expires.
    let mut second = chat_body(false);
    second["messages"][1]["content"] = json!("Hello again");
    assert_eq!(app.post("/v1/chat/completions", &second).await.status, 200);
    assert_eq!(app.upstream.token_grants().len(), 1, "reused");
    clock.advance(56 * 60 * 1000);
    second["messages"][1]["content"] = json!("Later");
    assert_eq!(app.post("/v1/chat/completions", &second).await.status, 200);
    assert_eq!(app.upstream.token_grants().len(), 2, "renewed within five minutes of expiry");
    let call = app.upstream.generation_calls().pop().unwrap();
    assert_eq!(call.authorization.as_deref(), Some("Bearer ya29.fake-2"));

    let logged = hajimi::log_ring::global().records(None, Some("vertex"));
    assert!(logged.iter().any(|record| record.message.contains("/v1/chat/completions 200")), "filed under vertex");
    assert!(logged.iter().all(|record| !record.message.contains("ya29.")), "no token in the log");
}

#[actix_rt::test]
async fn real_streams_and_the_vertex_routes() {
    let app = spawn_app_with(1, |config| {
        let base = config.gemini_base_url.clone();
        config.google_credentials_json = hajimi::secret::Secret::new(account(&base, 0).to_string());
        config.vertex_base_url = base;
        config.fake_streaming = false;
    })
    .await;
    app.upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(2)));
    // ENABLE_VERTEX is off: /v1 is AI Studio, /vertex is Vertex.
    let studio = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(studio.status, 200);
    assert!(app.upstream.generation_calls().pop().unwrap().path.starts_with("/v1beta/models/"));
    let vertex = app.post("/vertex/chat/completions", &chat_body(true)).await;
    assert_eq!(vertex.status, 200, "{}", vertex.body);
    assert!(vertex.streamed_content().contains("Hello"), "{}", vertex.body);
    let call = app.upstream.generation_calls().pop().unwrap();
    assert_eq!(
        (call.path.as_str(), call.query.as_str()),
        (format!("{PROJECT_PATH}:streamGenerateContent").as_str(), "alt=sse")
    );

    let models = app.get("/vertex/models").await.json();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"gemini-2.5-pro") && ids.contains(&"gemini-2.5-pro-nothinking"), "{ids:?}");
    assert_eq!(app.get("/vertex/v1/models").await.status, 200);
}

#[actix_rt::test]
async fn express_keys_travel_in_the_header_only_and_come_first() {
    let app = vertex_app(1, true, system_clock()).await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let call = app.upstream.generation_calls().pop().unwrap();
    assert_eq!(call.path, format!("{EXPRESS_PATH}:generateContent"));
    assert_eq!(call.key.as_deref(), Some(EXPRESS_KEY), "in x-goog-api-key");
    assert!(!call.query.contains(EXPRESS_KEY) && call.authorization.is_none());
    assert!(app.upstream.token_grants().is_empty(), "Express needs no token");

    // The original's prefixes force the route.
    let mut body = chat_body(false);
    body["model"] = json!("[PAY]gemini-2.5-flash");
    let paid = app.post("/v1/chat/completions", &body).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.json()["model"], "[PAY]gemini-2.5-flash", "the client's name comes back");
    assert_eq!(app.upstream.generation_calls().pop().unwrap().path, format!("{PROJECT_PATH}:generateContent"));
    body["model"] = json!("[EXPRESS] gemini-2.5-flash");
    assert_eq!(app.post("/aistudio/chat/completions", &body).await.status, 200);
    assert_eq!(app.upstream.generation_calls().pop().unwrap().path, format!("{EXPRESS_PATH}:generateContent"));
}

#[actix_rt::test]
async fn failover_between_credentials_on_429_and_403_and_refused_grants() {
    let app = vertex_app(3, false, system_clock()).await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::error(429, "error-429-per-minute.json"),
        1 => Reply::error(403, "error-403-service-disabled.json"),
        _ => Reply::fixture("response-text.json"),
    });
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let tokens: Vec<Option<String>> =
        app.upstream.generation_calls().into_iter().map(|call| call.authorization).collect();
    assert_eq!(tokens.len(), 3);
    assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2] && tokens[0] != tokens[2], "three accounts: {tokens:?}");
    let summary = app.app.vertex.accounts.summary(app.app.now_ms());
    assert_eq!(summary.invalid, 1, "the 403 SERVICE_DISABLED account is out");

    // An account whose grant is refused is skipped; the others serve.
    let fresh = vertex_app(2, false, system_clock()).await;
    fresh.upstream.answer_tokens(|seen, grants| {
        let _ = seen;
        if grants == 0 {
            Reply::Json(400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into())
        } else {
            token_reply(grants + 1)
        }
    });
    let answer = fresh.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(fresh.upstream.generation_calls().len(), 1, "the refused account never reached Vertex");
    assert_eq!(fresh.app.vertex.accounts.summary(fresh.app.now_ms()).invalid, 1);
}

#[actix_rt::test]
async fn bad_credentials_are_named_and_never_echoed() {
    let app = spawn_app_with(1, |config| {
        let mut broken: Value = serde_json::from_str(&vertex_fixture("service-account.json")).unwrap();
        broken.as_object_mut().unwrap().remove("project_id");
        config.google_credentials_json = hajimi::secret::Secret::new(broken.to_string());
    })
    .await;
    let problems = app.app.vertex.problems.read().clone();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("project_id"), "{problems:?}");
    assert!(!problems[0].contains("PRIVATE KEY"));
    assert!(app.app.vertex.accounts.is_empty());
    let logged = hajimi::log_ring::global().records(None, None);
    assert!(logged.iter().all(|record| !record.message.contains("BEGIN PRIVATE KEY")));
}

#[actix_rt::test]
async fn key_files_in_the_storage_directory_count_and_tokens_are_renewed_in_the_background() {
    let dir = std::env::temp_dir().join(format!("hajimi-vertex-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("credentials")).unwrap();
    let clock = Arc::new(hajimi::clock::ManualClock::new(1_767_225_600_000));
    let upstream_holder: Arc<parking_lot::Mutex<String>> = Arc::default();
    let app = spawn_app_with_clock(0, clock.clone(), {
        let dir = dir.clone();
        let holder = upstream_holder.clone();
        move |config| {
            let base = config.gemini_base_url.clone();
            std::fs::write(dir.join("credentials/a.json"), account(&base, 0).to_string()).unwrap();
            // The same account again, and a broken file: counted once, reported.
            std::fs::write(dir.join("credentials/b.json"), account(&base, 0).to_string()).unwrap();
            std::fs::write(dir.join("credentials/broken.json"), "{\"type\": \"service_account\"").unwrap();
            config.storage_dir = dir.clone();
            config.vertex_base_url = base.clone();
            config.enable_vertex = true;
            *holder.lock() = base;
        }
    })
    .await;
    assert_eq!(app.app.vertex.accounts.len(), 1);
    let problems = app.app.vertex.problems.read().clone();
    assert!(problems.iter().any(|problem| problem.starts_with("broken.json")), "{problems:?}");

    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.upstream.token_grants().len(), 1);

    // What the background job does every half minute, run once by hand.
    let config = app.app.config();
    let client = hajimi::gemini::client::GeminiClient::new(
        hajimi::gemini::client::ClientSettings {
            base_url: config.gemini_base_url.clone(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 1024 * 1024,
            proxy: None,
            vertex_base_url: upstream_holder.lock().clone(),
            vertex_location: "global".into(),
        },
        hajimi::gemini::client::tls_config(),
    );
    hajimi::vertex::refresh_due_tokens(&app.app.vertex, &client, app.app.now_ms()).await;
    assert_eq!(app.upstream.token_grants().len(), 1, "a fresh token is left alone");
    clock.advance(56 * 60 * 1000);
    hajimi::vertex::refresh_due_tokens(&app.app.vertex, &client, app.app.now_ms()).await;
    assert_eq!(app.upstream.token_grants().len(), 2, "renewed before it expires, without a request");
    let mut later = chat_body(false);
    later["messages"][1]["content"] = json!("later");
    assert_eq!(app.post("/v1/chat/completions", &later).await.status, 200);
    assert_eq!(app.upstream.token_grants().len(), 2, "the request found a fresh token");
    let _ = std::fs::remove_dir_all(&dir);
}
