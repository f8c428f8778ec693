//! A static stand-in for Gemini used by `scripts/bench.sh`: answers
//! `:generateContent` with a fixed JSON body and `:streamGenerateContent`
//! with a fixed SSE body (events `STREAM_EVENT_GAP_MS` apart, default 0),
//! and `GET /v1beta/models` with a small list. Listens on `PORT`
//! (default 9100) on 127.0.0.1.
//!
//! With `STAMPED_EVENTS=N` a stream is N events whose text is the time
//! (Unix microseconds) the event was written, for `stream_latency`; with
//! no gap they are written back to back, which measures what one event
//! costs a proxy (long answers).
//!
//! With `PER_KEY_RPM=R` it behaves like Google's free tier: each key may
//! make R generation calls per clock minute; beyond that it answers 429
//! with a `QuotaFailure` naming a per-minute quota and a `RetryInfo` delay
//! until the next minute. It prints the number of 429s it sent on exit
//! (Ctrl-C / SIGTERM).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;

const ANSWER: &str = include_str!("../tests/it/fixtures/gemini/response-text.json");
const STREAM: &str = include_str!("../tests/it/fixtures/gemini/stream-text.sse");
const MODELS: &str = include_str!("../tests/it/fixtures/gemini/models-page-2.json");

/// Per-key call counts in the current minute, and 429s sent.
#[derive(Default)]
struct Quota {
    per_key_rpm: u64,
    minute_counts: Mutex<(u64, HashMap<String, u64>)>,
    refused: AtomicU64,
}

impl Quota {
    /// `Some(seconds until the next minute)` when the key is over its quota.
    fn refuse(&self, key: &str) -> Option<u64> {
        if self.per_key_rpm == 0 {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let minute = now / 60;
        let mut guard = self.minute_counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.0 != minute {
            *guard = (minute, HashMap::new());
        }
        let count = guard.1.entry(key.to_owned()).or_default();
        *count += 1;
        (*count > self.per_key_rpm).then(|| 60 - now % 60)
    }
}

fn quota_error(retry_seconds: u64) -> String {
    format!(
        r#"{{"error":{{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}}]}},{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{retry_seconds}s"}}]}}}}"#
    )
}

/// Number of time-stamped events per stream (0: the recorded fixture).
#[derive(Clone, Copy)]
struct Stamped(usize);

async fn answer(
    request: HttpRequest,
    // Read (and ignored): a request body left unread makes actix close the
    // connection, and every call would pay for a new one. Read whole, up
    // to 128 MiB, as Google does, so `hostile-bodies.sh` sees the send.
    _body: Bytes,
    gap: web::Data<Duration>,
    quota: web::Data<Arc<Quota>>,
    stamped: web::Data<Stamped>,
) -> HttpResponse {
    let path = request.path();
    if path.contains(":") {
        let key = request.headers().get("x-goog-api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
        if let Some(retry_seconds) = quota.refuse(key) {
            quota.refused.fetch_add(1, Ordering::Relaxed);
            return HttpResponse::TooManyRequests().content_type("application/json").body(quota_error(retry_seconds));
        }
    }
    if path.ends_with(":streamGenerateContent") && stamped.0 > 0 {
        let (count, gap) = (stamped.0, **gap);
        let body = futures_util::stream::unfold(0usize, move |index| async move {
            if index == count {
                return None;
            }
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            let now_us = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros();
            let finish = if index + 1 == count { r#","finishReason":"STOP""# } else { "" };
            let event = format!(
                "data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{now_us} \"}}],\"role\":\"model\"}},\"index\":0{finish}}}]}}\r\n\r\n"
            );
            Some((Ok::<_, actix_web::Error>(Bytes::from(event)), index + 1))
        });
        HttpResponse::Ok().content_type("text/event-stream").streaming(body)
    } else if path.ends_with(":streamGenerateContent") {
        let events: Vec<Bytes> =
            STREAM.split_inclusive("\r\n\r\n").map(|e| Bytes::copy_from_slice(e.as_bytes())).collect();
        let gap = **gap;
        let body = futures_util::stream::unfold(events.into_iter(), move |mut events| async move {
            let event = events.next()?;
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            Some((Ok::<_, actix_web::Error>(event), events))
        });
        HttpResponse::Ok().content_type("text/event-stream").streaming(body)
    } else if path.ends_with(":generateContent") {
        HttpResponse::Ok().content_type("application/json").body(ANSWER)
    } else if path == "/v1beta/models" {
        HttpResponse::Ok().content_type("application/json").body(MODELS)
    } else {
        HttpResponse::NotFound().finish()
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(9100);
    let gap_ms: u64 = std::env::var("STREAM_EVENT_GAP_MS").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let workers: usize = std::env::var("WORKERS").ok().and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_key_rpm: u64 = std::env::var("PER_KEY_RPM").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let stamped = Stamped(std::env::var("STAMPED_EVENTS").ok().and_then(|p| p.parse().ok()).unwrap_or(0));
    let quota = Arc::new(Quota { per_key_rpm, ..Quota::default() });
    let shared = quota.clone();
    let result = actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(Duration::from_millis(gap_ms)))
                .app_data(web::Data::new(shared.clone()))
                .app_data(web::Data::new(stamped))
                .app_data(web::PayloadConfig::new(128 * 1024 * 1024))
                .default_service(web::to(answer))
        })
        .workers(workers)
        .tcp_nodelay(true)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    });
    println!("static upstream: {} calls refused with 429", quota.refused.load(Ordering::Relaxed));
    result
}
