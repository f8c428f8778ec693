//! Test harness: the real application on a free port, in front of a fake
//! Gemini upstream (a real HTTP server on another free port) that answers
//! with recorded fixtures according to a per-test script and records every
//! request it receives.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use hajimi::config::Config;
use hajimi::secret::{ApiKey, Secret};
use hajimi::startup::Application;
use parking_lot::Mutex;
use serde_json::Value;

pub const PASSWORD: &str = "test-password";

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/it/fixtures/gemini/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A syntactically valid AI Studio key, different for each `n`.
pub fn test_key(n: usize) -> String {
    format!("AIzaTestKey{n:0>28}")
}

/// One request the fake upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub key: Option<String>,
    pub model: String,
    pub action: String,
    pub body: Value,
    /// The body exactly as received.
    pub raw: Bytes,
    /// `Authorization` (Vertex service accounts).
    pub authorization: Option<String>,
    /// `Content-Length` as announced (`None`: chunked).
    pub content_length: Option<usize>,
}

/// What the fake upstream answers.
#[derive(Clone)]
pub enum Reply {
    Json(u16, String),
    /// SSE events (each already terminated), `delay` before each one.
    Sse {
        events: Vec<String>,
        delay: Duration,
    },
    /// Wait, then answer.
    After(Duration, Box<Reply>),
}

impl Reply {
    pub fn fixture(name: &str) -> Reply {
        Reply::Json(200, fixture(name))
    }

    pub fn error(status: u16, name: &str) -> Reply {
        Reply::Json(status, fixture(name))
    }

    /// A recorded `.sse` fixture, events sent `delay` apart.
    pub fn sse_fixture(name: &str, delay: Duration) -> Reply {
        let text = fixture(name);
        let events = text.split_inclusive("\r\n\r\n").map(str::to_owned).filter(|e| !e.trim().is_empty()).collect();
        Reply::Sse { events, delay }
    }
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;
type ListScript = dyn Fn(&Seen) -> Option<Reply> + Send + Sync;

#[derive(Clone)]
pub struct FakeUpstream {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<Arc<Script>>>,
    list_script: Arc<Mutex<Arc<ListScript>>>,
    token_script: Arc<Mutex<Arc<Script>>>,
}

impl FakeUpstream {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// Calls to `generateContent` / `streamGenerateContent` only.
    pub fn generation_calls(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.action.contains("enerateContent")).collect()
    }

    /// Sets how generation calls are answered: `script(request, index)`
    /// where index counts generation calls from 0.
    pub fn answer(&self, script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) {
        *self.script.lock() = Arc::new(script);
    }

    /// Sets how `POST /token` (OAuth grants) is answered: `script(request,
    /// grants before this one)`.
    pub fn answer_tokens(&self, script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) {
        *self.token_script.lock() = Arc::new(script);
    }

    /// Requests to the token endpoint.
    pub fn token_grants(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == "/token").collect()
    }

    /// Sets how `GET /v1beta/models` is answered (`None`: the recorded pages).
    pub fn answer_model_list(&self, script: impl Fn(&Seen) -> Option<Reply> + Send + Sync + 'static) {
        *self.list_script.lock() = Arc::new(script);
    }

    pub async fn start() -> FakeUpstream {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let default_script: Arc<Script> = Arc::new(|_, _| Reply::fixture("response-text.json"));
        let script = Arc::new(Mutex::new(default_script));
        let default_list: Arc<ListScript> = Arc::new(|_| None);
        let list_script = Arc::new(Mutex::new(default_list));
        let default_tokens: Arc<Script> = Arc::new(|_, grants| token_reply(grants + 1));
        let token_script = Arc::new(Mutex::new(default_tokens));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = (seen.clone(), script.clone(), list_script.clone(), token_script.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(256 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        FakeUpstream { base_url, seen, script, list_script, token_script }
    }
}

type UpstreamState =
    (Arc<Mutex<Vec<Seen>>>, Arc<Mutex<Arc<Script>>>, Arc<Mutex<Arc<ListScript>>>, Arc<Mutex<Arc<Script>>>);

/// The token endpoint's default answer: token `ya29.fake-<n>` for the n-th grant.
pub fn token_reply(grant: usize) -> Reply {
    Reply::Json(200, format!(r#"{{"access_token":"ya29.fake-{grant}","expires_in":3599,"token_type":"Bearer"}}"#))
}

async fn handle(request: HttpRequest, body: Bytes, state: web::Data<UpstreamState>) -> HttpResponse {
    let path = request.path().to_owned();
    // `/v1beta/models/m:action`, and Vertex's `…/publishers/google/models/m:action`.
    let tail = path.rsplit('/').next().filter(|last| path.contains("/models/") && last.contains(':')).unwrap_or("");
    let (model, action) = tail.split_once(':').map(|(m, a)| (m.to_owned(), a.to_owned())).unwrap_or_default();
    let seen = Seen {
        path: path.clone(),
        query: request.query_string().to_owned(),
        key: request.headers().get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
        model,
        action,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.clone(),
        authorization: request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
        content_length: request
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()),
    };
    let index = {
        let mut all = state.0.lock();
        let index = all.iter().filter(|s| s.action.contains("enerateContent")).count();
        all.push(seen.clone());
        index
    };
    if path == "/v1beta/models" {
        let list_script = state.2.lock().clone();
        if let Some(reply) = list_script(&seen) {
            return render(reply).await;
        }
        return match request.query_string().contains("pageToken") {
            false => HttpResponse::Ok().content_type("application/json").body(fixture("models-page-1.json")),
            true => HttpResponse::Ok().content_type("application/json").body(fixture("models-page-2.json")),
        };
    }
    if path == "/token" {
        // Google's OAuth token endpoint: a new token per grant.
        let token_script = state.3.lock().clone();
        // (This request is already recorded.)
        let grants = state.0.lock().iter().filter(|s| s.path == "/token").count() - 1;
        return render(token_script(&seen, grants)).await;
    }
    if path == "/image.png" {
        return HttpResponse::Ok().content_type("image/png").body(&b"\x89PNG\r\n\x1a\nfake-image-bytes"[..]);
    }
    if path == "/not-an-image" {
        return HttpResponse::Ok().content_type("image/png").body("<html>");
    }
    let script = state.1.lock().clone();
    render(script(&seen, index)).await
}

async fn render(reply: Reply) -> HttpResponse {
    let mut reply = reply;
    loop {
        match reply {
            Reply::After(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
            }
            Reply::Json(status, body) => {
                return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                    .content_type("application/json")
                    .body(body)
            }
            Reply::Sse { events, delay } => {
                let stream = futures_util::stream::unfold(events.into_iter(), move |mut events| async move {
                    let event = events.next()?;
                    tokio::time::sleep(delay).await;
                    Some((Ok::<_, actix_web::Error>(Bytes::from(event)), events))
                });
                return HttpResponse::Ok().content_type("text/event-stream").streaming(stream);
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub upstream: FakeUpstream,
    pub client: awc::Client,
    pub app: actix_web::web::Data<hajimi::state::AppState>,
}

/// The app with `keys` keys, configured by `adjust` on top of test defaults
/// (no disk, real streaming off as by default, fast keep-alives).
pub async fn spawn_app_with(keys: usize, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with_clock(keys, Arc::new(hajimi::clock::SystemClock), adjust).await
}

/// As `spawn_app_with`, with the app's time coming from `clock`.
pub async fn spawn_app_with_clock(
    keys: usize,
    clock: Arc<dyn hajimi::clock::Clock>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let upstream = FakeUpstream::start().await;
    spawn_app_on(upstream, keys, clock, adjust).await
}

/// As `spawn_app_with_clock`, in front of an upstream already running
/// (several apps sharing one upstream: replicas).
pub async fn spawn_app_on(
    upstream: FakeUpstream,
    keys: usize,
    clock: Arc<dyn hajimi::clock::Clock>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    hajimi::telemetry::init_logging_for_tests();
    let mut config = Config::for_tests();
    config.password = Secret::new(PASSWORD);
    config.web_password = Secret::new(PASSWORD);
    config.gemini_base_url = upstream.base_url.clone();
    config.gemini_api_keys = (0..keys).map(|n| ApiKey::new(test_key(n))).collect();
    config.random_string = false;
    config.fake_streaming_interval = Duration::from_millis(50);
    config.nonstream_keepalive_interval = Duration::from_millis(50);
    config.max_requests_per_minute = 0;
    config.max_requests_per_day_per_ip = 0;
    adjust(&mut config);
    let application = Application::build_with_clock(config, clock).expect("app builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let app = application.state.clone();
    actix_web::rt::spawn(application.run_until_stopped());
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    TestApp { address, upstream, client, app }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(3, |_| {}).await
}

pub struct Answer {
    pub status: u16,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `data:` payloads of an SSE body, in order (`[DONE]` included).
    pub fn events(&self) -> Vec<String> {
        self.body.split("\n\n").filter_map(|event| event.strip_prefix("data: ")).map(str::to_owned).collect()
    }

    /// Concatenated `delta.content` of all chunks.
    pub fn streamed_content(&self) -> String {
        self.events()
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
            .collect()
    }
}

impl TestApp {
    /// A chat request (`chat_body(stream)`) sent with the password, its
    /// response not read yet: for tests that read a body piece by piece,
    /// give up early or hang up.
    pub fn send_chat(&self, stream: bool) -> awc::SendClientRequest {
        self.client
            .post(format!("{}/v1/chat/completions", self.address))
            .insert_header(("authorization", format!("Bearer {PASSWORD}")))
            .send_json(&chat_body(stream))
    }

    /// Waits (at most 2 s) until the swipe cache holds `count` answers: a
    /// hedged call's spare answer arrives after the answer served.
    pub async fn wait_for_cached_answers(&self, count: usize) {
        for _ in 0..100 {
            if self.app.swipe_cache.len() == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_with(path, body, &[("authorization", &format!("Bearer {PASSWORD}"))]).await
    }

    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        self.post_raw(path, serde_json::to_vec(body).unwrap(), headers).await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.address)).content_type("application/json");
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send_body(body).await.expect("request sent");
        let bytes = response.body().limit(64 * 1024 * 1024).await.expect("body read");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.address));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send().await.expect("request sent");
        let bytes = response.body().limit(64 * 1024 * 1024).await.expect("body read");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[("authorization", &format!("Bearer {PASSWORD}"))]).await
    }
}

pub fn chat_body(stream: bool) -> Value {
    serde_json::json!({
        "model": "gemini-2.5-flash",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello"}
        ]
    })
}

/// The real `hajimi` binary as a child process in front of `upstream` on a
/// free loopback port, with test defaults and `extra` settings on top (a
/// clean environment otherwise). Returns the command, ready to spawn, and
/// the port.
pub fn hajimi_process(upstream: &FakeUpstream, extra: &[(&str, &str)]) -> (std::process::Command, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hajimi"));
    command
        .env_clear()
        .env("PASSWORD", PASSWORD)
        .env("GEMINI_API_KEYS", test_key(1))
        .env("GEMINI_BASE_URL", &upstream.base_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("VALIDATE_KEYS_ON_STARTUP", "false");
    for (name, value) in extra {
        command.env(name, value);
    }
    (command, port)
}

/// The signatures the recorded fixtures carry (what this fake "issued").
pub const FIXTURE_SIGNATURES: [&str; 2] = [
    "CiIBVKhc7oDPpCaXyJKKssjqr4g3JNOSgJ/M2V+1THC1icsWCmwBVKhc7pBABjFjQ0zjcNOD5wDWVVh1UAjpbuO8",
    "CiIBVKhc7oDPpCaXyJKKssjqr4g3",
];

/// Gemini 3's check of replayed model turns: the first function call of
/// each must carry a thought signature, and every signature must be one
/// `accepted` (or Google's `skip_thought_signature_validator`). Returns
/// the 400 Gemini answers otherwise: "missing" or "corrupted".
pub fn refuse_unsigned_tool_turns(seen: &Seen, accepted: &[&str]) -> Option<Reply> {
    let contents = seen.body["contents"].as_array()?;
    for turn in contents.iter().filter(|turn| turn["role"] == "model") {
        let parts = turn["parts"].as_array().map(Vec::as_slice).unwrap_or_default();
        let first_call = parts.iter().find(|part| part.get("functionCall").is_some());
        if first_call.is_some_and(|part| part.get("thoughtSignature").is_none()) {
            return Some(Reply::error(400, "error-400-missing-thought-signature.json"));
        }
        for signature in parts.iter().filter_map(|part| part["thoughtSignature"].as_str()) {
            if signature != "skip_thought_signature_validator" && !accepted.contains(&signature) {
                return Some(Reply::error(400, "error-400-corrupted-thought-signature.json"));
            }
        }
    }
    None
}
