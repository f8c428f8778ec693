//! The key pool end to end: per-key upstream failures → key states, global
//! back-off, the Pacific-midnight reset (time injected), validation,
//! hedging, the swipe cache, in-flight de-duplication and per-IP limits.

use std::sync::Arc;
use std::time::Duration;

use hajimi::clock::ManualClock;
use hajimi::keys::penalty::CoolingReason;
use hajimi::keys::{KeyId, KeyState, ModelAvailability};
use serde_json::json;

use crate::helpers::*;

/// 2026-07-01 12:00 UTC (05:00 Pacific) and the next Pacific midnight.
const NOW: u64 = 1_782_907_200_000;
const MIDNIGHT: u64 = 1_782_975_600_000;

fn availability(app: &TestApp, key: u32, model: &str, now: u64) -> Option<ModelAvailability> {
    let view = app.app.pool.key_view(KeyId(key), now)?;
    view.models.into_iter().find(|m| m.model == model).map(|m| m.availability)
}

fn key_state(app: &TestApp, key: u32) -> KeyState {
    app.app.pool.key_view(KeyId(key), NOW).unwrap().state
}

#[actix_web::test]
async fn every_kind_of_key_failure_leads_to_its_state_and_clients_still_get_answers() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_app_with_clock(8, clock.clone(), |_| {}).await;
    let keys: Vec<String> = (0..8).map(test_key).collect();
    let script_keys = keys.clone();
    app.upstream.answer(move |seen, _| {
        let index = script_keys.iter().position(|k| Some(k) == seen.key.as_ref()).unwrap();
        match index {
            0 => Reply::error(429, "error-429-per-minute.json"),
            1 => Reply::error(429, "error-429-per-day.json"),
            2 => Reply::error(400, "error-400-api-key-invalid.json"),
            3 => Reply::error(403, "error-403-consumer-suspended.json"),
            4 => Reply::error(503, "error-503-overloaded.json"),
            5 => Reply::fixture("response-prompt-blocked.json"),
            _ => Reply::fixture("response-text.json"),
        }
    });
    for _ in 0..8 {
        let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let model = "gemini-2.5-flash";
    assert_eq!(
        availability(&app, 0, model, NOW),
        Some(ModelAvailability::Cooling { until_ms: NOW + 43_000, reason: CoolingReason::PerMinuteQuota })
    );
    assert_eq!(availability(&app, 1, model, NOW), Some(ModelAvailability::ExhaustedToday { until_ms: MIDNIGHT }));
    assert!(matches!(key_state(&app, 2), KeyState::Invalid { .. }));
    assert!(matches!(key_state(&app, 3), KeyState::Invalid { .. }));
    assert_eq!(
        availability(&app, 4, model, NOW),
        Some(ModelAvailability::Cooling { until_ms: NOW + 2_000, reason: CoolingReason::ServerError })
    );
    // An empty answer is not the key's fault.
    assert_eq!(key_state(&app, 5), KeyState::Active);
    assert!(app.app.pool.key_view(KeyId(5), NOW).unwrap().recent_errors.is_empty());
    for healthy in [6, 7] {
        assert_eq!(key_state(&app, healthy), KeyState::Active);
        assert!(app.app.pool.key_view(KeyId(healthy), NOW).unwrap().models[0].usage_today.successes > 0);
    }
    // Invalid keys are never called again; the cooling ones not before their time.
    let before = app.upstream.generation_calls().len();
    for _ in 0..6 {
        assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    }
    let later: Vec<_> = app.upstream.generation_calls().into_iter().skip(before).filter_map(|c| c.key).collect();
    for banned in [0, 1, 2, 3, 4] {
        assert!(!later.contains(&keys[banned]), "key {banned} was used while unavailable");
    }
}

#[actix_web::test]
async fn a_storm_of_bare_429s_backs_off_globally_without_condemning_the_pool() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_app_with_clock(6, clock.clone(), |config| config.max_wait_for_key = Duration::ZERO).await;
    app.upstream.answer(|_, _| Reply::error(429, "error-429-bare.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.body.contains("rate-limiting this server"), "{}", answer.body);
    assert_eq!(answer.headers.get("retry-after").unwrap(), "5");
    assert_eq!(app.upstream.generation_calls().len(), 3, "the storm is recognised after 3 keys");
    assert!(app.app.pool.summary(NOW).global_backoff_until_ms.is_some());
    // No key was condemned: after the pause all six serve again.
    clock.advance(5_000);
    app.upstream.answer(|_, _| Reply::fixture("response-text.json"));
    for _ in 0..6 {
        assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    }
    let used: std::collections::HashSet<_> =
        app.upstream.generation_calls().into_iter().skip(3).filter_map(|c| c.key).collect();
    assert_eq!(used.len(), 6);
}

#[actix_web::test]
async fn exhausted_keys_come_back_at_pacific_midnight() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_app_with_clock(2, clock.clone(), |_| {}).await;
    app.upstream.answer(|_, _| Reply::error(429, "error-429-per-day.json"));
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains("used up today's quota"), "{}", answer.body);
    let retry_after: u64 = answer.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, (MIDNIGHT - NOW) / 1000);
    assert_eq!(app.upstream.generation_calls().len(), 2, "exhausted keys are not called again");

    app.upstream.answer(|_, _| Reply::fixture("response-text.json"));
    clock.set(MIDNIGHT - 1);
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 429);
    clock.set(MIDNIGHT);
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
}

#[actix_web::test]
async fn the_daily_limit_is_enforced_per_model() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_app_with_clock(1, clock.clone(), |config| config.api_key_daily_limit = 2).await;
    for _ in 0..2 {
        assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    }
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    let mut other = chat_body(false);
    other["model"] = json!("gemini-2.5-pro");
    assert_eq!(app.post("/v1/chat/completions", &other).await.status, 200);
    clock.set(MIDNIGHT);
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
}

#[actix_web::test]
async fn validation_marks_only_definitely_invalid_keys_and_never_delays_startup() {
    let app = spawn_app_with(4, |config| config.validate_keys_on_startup = true).await;
    // The list calls in flight answer slowly; the app serves meanwhile.
    let keys: Vec<String> = (0..4).map(test_key).collect();
    app.upstream.answer_model_list(move |seen| {
        if seen.query.contains("pageSize=1000") {
            return None;
        }
        let index = keys.iter().position(|k| Some(k) == seen.key.as_ref())?;
        let reply = match index {
            0 => Reply::error(400, "error-400-api-key-invalid.json"),
            1 => Reply::error(429, "error-429-bare.json"),
            2 => Reply::error(503, "error-503-overloaded.json"),
            _ => return None,
        };
        Some(Reply::After(Duration::from_millis(200), Box::new(reply)))
    });
    assert_eq!(app.get_with("/health", &[]).await.status, 200);
    app.app.validation.request(hajimi::keys::validation::ValidationScope::All);
    for _ in 0..200 {
        let progress = app.app.validation.progress();
        if !progress.running
            && progress.done == 4
            && app.upstream.seen().iter().filter(|s| s.query == "pageSize=1").count() >= 8
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(key_state(&app, 0), KeyState::Invalid { .. }));
    for undecided_or_fine in [1, 2, 3] {
        assert_eq!(key_state(&app, undecided_or_fine), KeyState::Active, "key {undecided_or_fine}");
    }
    // The checks used the free list call with the key in the header.
    let checks: Vec<_> = app.upstream.seen().into_iter().filter(|s| s.query == "pageSize=1").collect();
    assert!(checks.iter().all(|c| c.key.is_some()));
}

#[actix_web::test]
async fn hedged_requests_feed_the_swipe_cache_which_serves_each_answer_once() {
    hedged_requests_feed_the_swipe_cache(true).await;
}

#[actix_web::test]
async fn a_real_stream_swipe_is_served_from_the_swipe_cache_too() {
    // A real stream computes its key only when the cache holds answers.
    hedged_requests_feed_the_swipe_cache(false).await;
}

/// A hedged request leaves its spare answer in the swipe cache; the swipe
/// (streamed, fake or real) takes it without an upstream call.
async fn hedged_requests_feed_the_swipe_cache(fake_streaming: bool) {
    let app = spawn_app_with(2, |config| {
        config.concurrent_requests = 2;
        config.fake_streaming = fake_streaming;
    })
    .await;
    let fast_key = test_key(0);
    app.upstream.answer(move |seen, _| {
        if seen.key.as_deref() == Some(fast_key.as_str()) {
            Reply::Json(200, fixture("response-text.json"))
        } else {
            let slower = fixture("response-text.json").replace("Hello! How can I help you today?", "A second answer.");
            Reply::After(Duration::from_millis(200), Box::new(Reply::Json(200, slower)))
        }
    });
    let first = app.post("/v1/chat/completions", &chat_body(false)).await.json();
    assert_eq!(first["choices"][0]["message"]["content"], "Hello! How can I help you today?");
    app.wait_for_cached_answers(1).await;
    assert_eq!(app.upstream.generation_calls().len(), 2, "two calls in parallel");
    // The swipe: answered from the cache, streamed as asked, no upstream call.
    let swipe = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(swipe.streamed_content(), "A second answer.", "{}", swipe.body);
    assert_eq!(swipe.events().last().unwrap(), "[DONE]");
    assert_eq!(app.upstream.generation_calls().len(), 2);
    // Served once: the next identical request goes upstream again.
    let again = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(again.status, 200);
    assert!(app.upstream.generation_calls().len() > 2);
}

#[actix_web::test]
async fn a_failed_round_widens_the_next_one() {
    let app = spawn_app_with(3, |config| {
        config.concurrent_requests = 1;
        config.increase_concurrent_on_failure = 1;
        config.max_concurrent_requests = 2;
    })
    .await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::error(500, "error-500-internal.json"),
        _ => Reply::fixture("response-text.json"),
    });
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.upstream.generation_calls().len(), 3, "one call, then a round of two");
}

#[actix_web::test]
async fn identical_requests_in_flight_share_one_upstream_call_unless_public_mode() {
    for (public_mode, expected_calls) in [(false, 1), (true, 2)] {
        let app = spawn_app_with(2, |config| config.public_mode = public_mode).await;
        app.upstream
            .answer(|_, _| Reply::After(Duration::from_millis(300), Box::new(Reply::fixture("response-text.json"))));
        let body = chat_body(false);
        let (a, b) = tokio::join!(app.post("/v1/chat/completions", &body), app.post("/v1/chat/completions", &body));
        assert_eq!((a.status, b.status), (200, 200));
        assert_ne!(a.json()["id"], b.json()["id"], "each client gets its own completion id");
        assert_eq!(app.upstream.generation_calls().len(), expected_calls, "public_mode={public_mode}");
    }
}

#[actix_web::test]
async fn an_answer_whose_client_left_serves_the_next_swipe() {
    // Shared or not (PUBLIC_MODE), a generation outlives its client.
    for (stream, public_mode) in [(true, false), (false, false), (false, true)] {
        answer_of_a_client_that_left_is_kept(stream, public_mode).await;
    }
}

async fn answer_of_a_client_that_left_is_kept(stream: bool, public_mode: bool) {
    let app = spawn_app_with(1, |config| config.public_mode = public_mode).await;
    app.upstream
        .answer(|_, _| Reply::After(Duration::from_millis(400), Box::new(Reply::fixture("response-text.json"))));
    // The client waits (reading keep-alive chunks if streaming), then hangs up.
    let response = app.send_chat(stream);
    let gone = match tokio::time::timeout(Duration::from_millis(120), response).await {
        Err(_) => true,
        Ok(Ok(mut response)) => tokio::time::timeout(Duration::from_millis(120), response.body()).await.is_err(),
        Ok(Err(_)) => false,
    };
    assert!(gone, "the client gave up");
    app.wait_for_cached_answers(1).await;
    let swipe = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(swipe.json()["choices"][0]["message"]["content"], "Hello! How can I help you today?", "{public_mode}");
    assert_eq!(app.upstream.generation_calls().len(), 1, "the first call was not cancelled, nor repeated");
}

#[actix_web::test]
async fn per_ip_limits_answer_429_with_retry_after_and_honour_the_trusted_header() {
    let app = spawn_app_with(1, |config| {
        config.max_requests_per_minute = 2;
        config.trusted_proxy_header = "x-forwarded-for".into();
    })
    .await;
    let bearer = format!("Bearer {PASSWORD}");
    let from = |ip: &'static str| vec![("authorization", bearer.clone()), ("x-forwarded-for", ip.to_owned())];
    let send = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_with("/v1/chat/completions", &chat_body(false), &headers).await
        }
    };
    assert_eq!(send(from("203.0.113.7")).await.status, 200);
    assert_eq!(send(from("203.0.113.7")).await.status, 200);
    let limited = send(from("203.0.113.7")).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
    let retry_after: u64 = limited.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    // Another client behind the same proxy has its own budget.
    assert_eq!(send(from("198.51.100.1")).await.status, 200);
    // Requests refused for auth are not counted.
    let unauthenticated =
        app.post_with("/v1/chat/completions", &chat_body(false), &[("x-forwarded-for", "192.0.2.9")]).await;
    assert_eq!(unauthenticated.status, 401);
}

#[actix_web::test]
async fn a_large_key_set_loads_in_the_background_and_chat_waits_for_it() {
    let app = spawn_app_with(6_000, |_| {}).await;
    // Whether or not the load has finished yet, chat gets an answer.
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.app.pool.len(), 6_000);
    assert_eq!(app.get_with("/ready", &[]).await.status, 200);
}

#[actix_web::test]
async fn hedging_wider_than_the_pool_uses_each_key_once_and_keeps_its_bookkeeping() {
    // Two keys, three calls per round: a round holds each key once.
    let app = spawn_app_with(2, |config| {
        config.concurrent_requests = 3;
        config.max_concurrent_requests = 3;
    })
    .await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::fixture("response-text.json"),
        _ => Reply::After(Duration::from_millis(200), Box::new(Reply::fixture("response-text.json"))),
    });
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    app.wait_for_cached_answers(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let calls = app.upstream.generation_calls();
    assert_eq!(calls.len(), 2, "one call per key");
    assert_ne!(calls[0].key, calls[1].key);
    let background = app.app.background_calls.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(background, 0, "every background slot given back");
    assert_eq!(app.app.swipe_cache.len(), 1, "the late answer was kept");
}

#[actix_web::test]
async fn a_403_for_a_file_the_client_named_costs_no_key() {
    let app = spawn_app_with(2, |_| {}).await;
    let denied = r#"{"error":{"code":403,"message":"You do not have permission to access the File abc or it may not exist.","status":"PERMISSION_DENIED"}}"#;
    app.upstream.answer(move |_, _| Reply::Json(403, denied.to_owned()));
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarise"},
        {"type": "file", "file": {"file_id": "files/abc"}}
    ]}]});
    let answer = app.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 1, "not retried");
    assert_eq!(key_state(&app, 0), KeyState::Active);
    assert_eq!(key_state(&app, 1), KeyState::Active);
}

#[actix_web::test]
async fn real_stream_swipes_at_the_native_messages_and_responses_doors_come_from_the_swipe_cache() {
    // (path of the answer, path of the swipe, body, stream body, headers)
    let native = "/v1beta/models/gemini-2.5-flash";
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]});
    let messages =
        json!({"model": "gemini-2.5-flash", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]});
    let responses = json!({"model": "gemini-2.5-flash", "input": "Hello", "store": false});
    let streamed = |body: &serde_json::Value| {
        let mut body = body.clone();
        body["stream"] = json!(true);
        body
    };
    let doors = [
        (
            format!("{native}:generateContent"),
            format!("{native}:streamGenerateContent?alt=sse"),
            gemini.clone(),
            gemini,
            vec![("x-goog-api-key", PASSWORD)],
        ),
        (
            "/v1/messages".to_owned(),
            "/v1/messages".to_owned(),
            messages.clone(),
            streamed(&messages),
            vec![("x-api-key", PASSWORD), ("anthropic-version", "2023-06-01")],
        ),
        ("/v1/responses".to_owned(), "/v1/responses".to_owned(), responses.clone(), streamed(&responses), vec![]),
    ];
    for (path, swipe_path, body, stream_body, mut headers) in doors {
        let bearer = format!("Bearer {PASSWORD}");
        headers.push(("authorization", &bearer));
        let app = spawn_app_with(2, |config| {
            config.concurrent_requests = 2;
            config.fake_streaming = false;
        })
        .await;
        app.upstream.answer(|_, index| {
            Reply::After(Duration::from_millis(20 * (index as u64 + 1)), Box::new(Reply::fixture("response-text.json")))
        });
        let first = app.post_with(&path, &body, &headers).await;
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        app.wait_for_cached_answers(1).await;
        assert_eq!(app.app.swipe_cache.len(), 1, "{path}: the spare answer is kept");
        let calls = app.upstream.generation_calls().len();
        let swipe = app.post_with(&swipe_path, &stream_body, &headers).await;
        assert_eq!(swipe.status, 200, "{swipe_path}: {}", swipe.body);
        assert!(swipe.body.contains("How can I help you today?"), "{swipe_path}: {}", swipe.body);
        assert_eq!(app.upstream.generation_calls().len(), calls, "{swipe_path}: the swipe came from the cache");
        assert_eq!(app.app.swipe_cache.len(), 0, "{swipe_path}: served once");
    }
}
