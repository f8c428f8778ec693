//! A static stand-in for Gemini used by `scripts/bench.sh`: answers
//! `:generateContent` with a fixed JSON body and `:streamGenerateContent`
//! with a fixed SSE body (events `STREAM_EVENT_GAP_MS` apart, default 0),
//! and `GET /v1beta/models` with a small list. Listens on `PORT`
//! (default 9100) on 127.0.0.1.

use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;

const ANSWER: &str = include_str!("../tests/it/fixtures/gemini/response-text.json");
const STREAM: &str = include_str!("../tests/it/fixtures/gemini/stream-text.sse");
const MODELS: &str = include_str!("../tests/it/fixtures/gemini/models-page-2.json");

async fn answer(request: HttpRequest, gap: web::Data<Duration>) -> HttpResponse {
    let path = request.path();
    if path.ends_with(":streamGenerateContent") {
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
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new().app_data(web::Data::new(Duration::from_millis(gap_ms))).default_service(web::to(answer))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
