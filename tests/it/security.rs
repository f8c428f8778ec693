//! The security boundary, attacked over real sockets: Hugging Face token
//! auth that trusts only Hugging Face, throttled guessing, keys masked in
//! every upstream text, a swipe cache that keeps clients apart, and bounded
//! request bodies.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::helpers::{chat_body, fixture, spawn_app_with, test_key, Reply, TestApp, PASSWORD};

/// The fake Hub's signing key and its public half (as the Hub publishes it).
const HUB_SIGNING_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGbrDpJRH5fOIhH3larvpcNUSf774cJR15EpXM1Dk7HS\n-----END PRIVATE KEY-----\n";
const HUB_PUBLIC_X: &str = "X2kJ5Usyp5x1_EDdpVFF1Umd26ZuekExdeE3yYGYTLA";
const ATTACKER_SIGNING_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOHPu2bBbXPuQbk9R8/r5vq8hh9OYQqx1u0hXacSL4X0\n-----END PRIVATE KEY-----\n";

fn sign(pem: &str, claims: serde_json::Value) -> String {
    let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
}

fn in_ten_minutes() -> u64 {
    hajimi::clock::unix_ms() / 1000 + 600
}

/// A fake Hugging Face Hub: the JWT key endpoint, and the Space lookup
/// answering `space_status` (404 = private to anonymous callers).
fn start_fake_hub(space_status: u16) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        App::new()
            .route(
                "/api/keys/jwt",
                web::get().to(|| async {
                    HttpResponse::Ok().json(json!([{"crv": "Ed25519", "x": HUB_PUBLIC_X, "kty": "OKP"}]))
                }),
            )
            .route(
                "/api/spaces/{owner}/{name}",
                web::get().to(move || async move {
                    match space_status {
                        200 => HttpResponse::Ok().json(json!({"id": "owner/space", "private": false})),
                        status => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                            .json(json!({"error": "Repository not found"})),
                    }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    base
}

async fn spawn_huggingface_app(space_status: u16) -> TestApp {
    let hub = start_fake_hub(space_status);
    spawn_app_with(1, move |config| {
        config.huggingface = true;
        config.space_id = "owner/space".into();
        config.hf_jwt_keys_url = format!("{hub}/api/keys/jwt");
        config.hf_hub_url = hub;
    })
    .await
}

/// Waits until `/ready` reports token auth settled (on or off).
async fn token_auth_state(app: &TestApp) -> String {
    for _ in 0..200 {
        let ready = app.get_with("/ready", &[]).await.json();
        let state = ready["huggingface_token_auth"].as_str().unwrap_or_default().to_owned();
        if !state.contains("checking") {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("token auth never settled");
}

#[actix_web::test]
async fn on_a_private_space_only_tokens_signed_by_hugging_face_get_in() {
    let app = spawn_huggingface_app(404).await;
    assert_eq!(token_auth_state(&app).await, "on");
    let with_token = |token: String| {
        let app = &app;
        async move { app.get_with("/v1/models", &[("x-ip-token", token.as_str())]).await.status }
    };
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    // Signed by the Hub, unexpired: in without PASSWORD.
    assert_eq!(with_token(sign(HUB_SIGNING_KEY, json!({"ip": "1.2.3.4", "exp": in_ten_minutes()}))).await, 200);
    // HF said the caller's token is bad: 403.
    let refused = sign(HUB_SIGNING_KEY, json!({"error": "InvalidAccessToken", "exp": in_ten_minutes()}));
    assert_eq!(with_token(refused).await, 403);
    // Hand-made payloads, foreign signatures and expired tokens: 401.
    assert_eq!(with_token(format!("{}.e30.", encode(r#"{"alg":"EdDSA"}"#))).await, 401);
    assert_eq!(with_token("x.e30.y".to_owned()).await, 401);
    assert_eq!(with_token(sign(ATTACKER_SIGNING_KEY, json!({"exp": in_ten_minutes()}))).await, 401);
    assert_eq!(with_token(sign(HUB_SIGNING_KEY, json!({"exp": 1_000_000}))).await, 401);
    // PASSWORD keeps working.
    assert_eq!(app.get("/v1/models").await.status, 200);
}

#[actix_web::test]
async fn on_a_public_space_token_auth_stays_off_and_says_why() {
    let app = spawn_huggingface_app(200).await;
    let state = token_auth_state(&app).await;
    assert!(state.starts_with("off") && state.contains("public"), "{state}");
    let signed = sign(HUB_SIGNING_KEY, json!({"exp": in_ten_minutes()}));
    assert_eq!(app.get_with("/v1/models", &[("x-ip-token", signed.as_str())]).await.status, 401);
    assert_eq!(app.get("/v1/models").await.status, 200);
}

#[actix_web::test]
async fn without_a_reachable_hub_token_auth_fails_closed() {
    let app = spawn_app_with(1, |config| {
        config.huggingface = true;
        config.space_id = "owner/space".into();
        // Nothing listens here.
        config.hf_hub_url = "http://127.0.0.1:9".into();
        config.hf_jwt_keys_url = "http://127.0.0.1:9/api/keys/jwt".into();
    })
    .await;
    let state = token_auth_state(&app).await;
    assert!(state.starts_with("off") && state.contains("private"), "{state}");
    let signed = sign(HUB_SIGNING_KEY, json!({"exp": in_ten_minutes()}));
    assert_eq!(app.get_with("/v1/models", &[("x-ip-token", signed.as_str())]).await.status, 401);
}

#[actix_web::test]
async fn guessing_the_password_is_throttled_with_growing_back_off() {
    let app = spawn_app_with(1, |config| config.auth_failures_per_minute = 5).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for attempt in 0..300 {
        let answer = app.get_with("/v1/models", &[("authorization", &format!("Bearer guess-{attempt}"))]).await;
        if answer.status == 429 && retry_after.is_none() {
            retry_after = answer.headers.get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            assert_eq!(answer.json()["error"]["code"], "rate_limit_exceeded");
        }
        statuses.push(answer.status);
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|status| *status == 429), "all later guesses refused");
    assert!(retry_after.unwrap() >= 30);
    // Even the right password is refused while locked out.
    assert_eq!(app.get("/v1/models").await.status, 429);
}

#[actix_web::test]
async fn keys_quoted_by_the_upstream_are_masked_even_when_run_into_other_text() {
    let app = spawn_app_with(1, |_| {}).await;
    let key = test_key(0);
    let quoted = format!("Request contains an invalid argument: relay credential {key}-x (also {key}_v2).");
    // Google's client-error shape (error-400-client-invalid-argument.json)
    // with a message quoting the pool's key.
    let body = json!({"error": {"code": 400, "message": quoted, "status": "INVALID_ARGUMENT"}}).to_string();
    app.upstream.answer(move |_, _| Reply::Json(400, body.clone()));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(!answer.body.contains(&key[4..]), "{}", answer.body);
    assert!(answer.body.contains("-x") && answer.body.contains("AIza…"), "{}", answer.body);
}

/// Alice's answer came from her private system prompt; Bob, elsewhere,
/// repeats her last six messages (and then her whole request).
#[actix_web::test]
async fn the_swipe_cache_never_serves_one_clients_answer_to_another() {
    let app = spawn_app_with(2, |config| {
        config.concurrent_requests = 2;
        config.trusted_proxy_header = "x-forwarded-for".into();
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let fast_key = test_key(0);
    app.upstream.answer(move |seen, _| {
        let persona = seen.body["systemInstruction"]["parts"][0]["text"].as_str().unwrap_or("").to_owned();
        let text = if seen.key.as_deref() == Some(fast_key.as_str()) { "first" } else { "spare" };
        let answer =
            fixture("response-text.json").replace("Hello! How can I help you today?", &format!("{text} for {persona}"));
        let delay = if text == "first" { 0 } else { 150 };
        Reply::After(Duration::from_millis(delay), Box::new(Reply::Json(200, answer)))
    });
    let turns: Vec<serde_json::Value> = (0..6)
        .map(|turn| json!({"role": if turn % 2 == 0 {"user"} else {"assistant"}, "content": format!("turn {turn}")}))
        .collect();
    let request = |persona: &str| {
        let mut messages = vec![json!({"role": "system", "content": persona})];
        messages.extend(turns.iter().cloned());
        json!({"model": "gemini-2.5-flash", "messages": messages})
    };
    let bearer = format!("Bearer {PASSWORD}");
    let send = |body: serde_json::Value, address: &'static str| {
        let app = &app;
        let bearer = bearer.clone();
        async move {
            app.post_with("/v1/chat/completions", &body, &[("authorization", &bearer), ("x-forwarded-for", address)])
                .await
        }
    };
    let alice = send(request("Alice's private persona"), "198.51.100.1").await;
    assert_eq!(alice.json()["choices"][0]["message"]["content"], "first for Alice's private persona");
    app.wait_for_cached_answers(1).await;
    assert_eq!(app.app.swipe_cache.len(), 1, "Alice's spare answer is cached");
    let calls = app.upstream.generation_calls().len();
    // Bob: same last six messages, his own system prompt.
    let bob = send(request("Bob's persona"), "198.51.100.2").await.json();
    assert!(!bob["choices"][0]["message"]["content"].as_str().unwrap().contains("Alice"), "{bob}");
    // Bob sending Alice's whole request from his address: still not hers.
    let bob_copy = send(request("Alice's private persona"), "198.51.100.2").await.json();
    assert_eq!(bob_copy["choices"][0]["message"]["content"], "first for Alice's private persona");
    assert!(
        app.upstream.generation_calls().len() >= calls + 2,
        "Bob's requests went upstream: {} then {}",
        calls,
        app.upstream.generation_calls().len()
    );
    // Bob's hedged spares land in his own entries (under load they may
    // reach the upstream late: wait, so they are not counted as Alice's).
    for _ in 0..200 {
        if app.app.swipe_cache.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.app.swipe_cache.len(), 3, "Alice's spare, and Bob's two");
    // Alice's swipe is served from her cache entry.
    let calls = app.upstream.generation_calls().len();
    let swipe = send(request("Alice's private persona"), "198.51.100.1").await.json();
    assert_eq!(swipe["choices"][0]["message"]["content"], "spare for Alice's private persona");
    assert_eq!(app.upstream.generation_calls().len(), calls);
}

#[actix_web::test]
async fn request_bodies_in_flight_are_capped_with_503_and_retry_after() {
    let app = spawn_app_with(1, |config| config.max_body_bytes_in_flight = 64 * 1024).await;
    let mut big = chat_body(false);
    big["messages"][1]["content"] = json!("x".repeat(100 * 1024));
    let refused =
        app.post_with("/v1/chat/completions", &big, &[("authorization", &format!("Bearer {PASSWORD}"))]).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "server_busy");
    assert!(refused.headers.get("retry-after").is_some());
    // Nothing stays reserved: a normal request still fits.
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    assert_eq!(app.app.body_budget.in_flight(), 0);
}

#[actix_web::test]
async fn a_body_still_arriving_holds_its_share_of_the_cap_until_it_is_gone() {
    let app = spawn_app_with(1, |config| config.max_body_bytes_in_flight = 256 * 1024).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    // A client announces 200 KB and sends ten bytes of it.
    let mut slow = std::net::TcpStream::connect(&address).unwrap();
    write!(
        slow,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PASSWORD}\r\n\
         Content-Type: application/json\r\nContent-Length: 204800\r\n\r\n{{\"model\":"
    )
    .unwrap();
    let mut body = chat_body(false);
    body["messages"][1]["content"] = json!("y".repeat(60 * 1024));
    let mut refused = None;
    for _ in 0..100 {
        let answer = app.post("/v1/chat/completions", &body).await;
        if answer.status == 503 {
            refused = Some(answer);
            break;
        }
        // The slow request may not have been read yet.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a 60 KB body (×3 while converting) does not fit next to 200 KB held");
    assert!(refused.headers.get("retry-after").is_some());
    // The slow client leaves: its share comes back.
    drop(slow);
    for _ in 0..100 {
        if app.app.body_budget.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.post("/v1/chat/completions", &body).await.status, 200);
    assert_eq!(app.app.body_budget.in_flight(), 0);
}

#[actix_web::test]
async fn a_body_trickled_byte_by_byte_times_out_with_408() {
    let app = spawn_app_with(1, |config| config.request_body_timeout = Duration::from_millis(800)).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let outcome = actix_web::rt::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        write!(
            socket,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PASSWORD}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        .unwrap();
        // One byte every 100 ms would take 100 s.
        let mut answer = Vec::new();
        socket.set_nonblocking(false).unwrap();
        for _ in 0..60 {
            if socket.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            socket.set_nonblocking(true).unwrap();
            let mut buffer = [0u8; 4096];
            if let Ok(read) = socket.read(&mut buffer) {
                answer.extend_from_slice(&buffer[..read]);
            }
            socket.set_nonblocking(false).unwrap();
            if !answer.is_empty() {
                break;
            }
        }
        (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
    })
    .await
    .unwrap();
    let (answer, elapsed) = outcome;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
