//! Logging setup and the per-request access log (§13): one `info` line per
//! request with method, path without the query string (it may carry a
//! key), status, latency and — for chat — model and key id. The same
//! middleware turns a panic inside a handler into a 500 answer, so one bad
//! request never takes a worker down.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::Error;
use futures_util::FutureExt;

use crate::error::ApiError;
use crate::routes::chat::RequestNote;

pub fn init_logging() {
    let env = env_logger::Env::default().filter_or("RUST_LOG", "info");
    let _ = env_logger::Builder::from_env(env).format_timestamp_millis().try_init();
}

pub async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    // No clone of the request may be held here: routing needs it unique.
    let outcome = AssertUnwindSafe(next.call(request)).catch_unwind().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            match response.response().extensions().get::<RequestNote>() {
                Some(note) => log::info!(
                    "{method} {path} {status} {latency_ms:.1}ms model={} mode={} key={}",
                    note.model,
                    note.mode,
                    note.key.map(|k| k.to_string()).unwrap_or_else(|| "-".into())
                ),
                None => log::info!("{method} {path} {status} {latency_ms:.1}ms"),
            }
            Ok(response.map_into_boxed_body())
        }
        Ok(Err(error)) => {
            let status = error.as_response_error().status_code().as_u16();
            log::info!("{method} {path} {status} {latency_ms:.1}ms");
            Err(error)
        }
        Err(_panic) => {
            log::error!("{method} {path} 500 {latency_ms:.1}ms: the handler panicked");
            Err(ApiError::Internal.into())
        }
    }
}
