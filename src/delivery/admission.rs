//! What a request must pass before any upstream work: the per-IP limits
//! (§2) and reading its body within `MAX_REQUEST_BODY_MB` (413),
//! `REQUEST_BODY_TIMEOUT` (408) and the shared `MAX_BODY_BYTES_IN_FLIGHT_MB`
//! (503 with `Retry-After`).

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::bodylimit::BodyReservation;
use crate::config::Config;
use crate::error::ApiError;
use crate::ratelimit::{Limited, RateLimits};
use crate::state::AppState;

/// How long a client refused for lack of body budget should wait.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The error for a request that does not fit the body budget.
pub fn busy() -> ApiError {
    ApiError::Busy { retry_after: BUSY_RETRY_AFTER }
}

/// Per-IP limits (§2); rejected requests are not counted. With shared
/// state (`REDIS_URL`) the replicas count together: this replica's own
/// count refuses first, then the shared count decides — as exchanged in
/// the background every `RATE_LIMIT_SYNC_MS` (no round trip), or with 0
/// asked of Redis for each request; while Redis does not answer, the
/// replica's own count alone.
pub async fn check_rate_limit(client: IpAddr, config: &Config, state: &AppState) -> Result<(), ApiError> {
    let limits = RateLimits { per_minute: config.max_requests_per_minute, per_day: config.max_requests_per_day_per_ip };
    if limits.per_minute == 0 && limits.per_day == 0 {
        return Ok(());
    }
    let now_ms = state.now_ms();
    state
        .rate_limiter
        .check(client, limits, now_ms)
        .map_err(|rejection| rate_limited(rejection.limit, rejection.retry_after_ms))?;
    let Some(shared) = &state.shared else { return Ok(()) };
    let name = crate::ratelimit::ClientKey::name(client);
    if !config.rate_limit_sync.is_zero() {
        // Counts exchanged in the background: no round trip here.
        return match shared.link().count_address_locally(&name, limits.per_minute, limits.per_day, now_ms) {
            Some((per_day, wait_ms)) => {
                Err(rate_limited(if per_day { Limited::PerDay } else { Limited::PerMinute }, wait_ms))
            }
            None => Ok(()),
        };
    }
    match shared.link().count_address(&name, limits.per_minute, limits.per_day, now_ms).await {
        Ok(Some((per_day, wait_ms))) => {
            Err(rate_limited(if per_day { Limited::PerDay } else { Limited::PerMinute }, wait_ms))
        }
        Ok(None) | Err(()) => Ok(()),
    }
}

fn rate_limited(limit: Limited, retry_after_ms: u64) -> ApiError {
    let message = match limit {
        Limited::PerMinute => "Too many requests from this address this minute / 请求过于频繁，请稍后再试",
        Limited::PerDay => "Daily request limit for this address reached / 今日请求次数已达上限",
    };
    ApiError::RateLimited { message: message.to_owned(), retry_after: Duration::from_millis(retry_after_ms) }
}

/// Reads the body: at most `MAX_REQUEST_BODY_MB` (413; a larger
/// `Content-Length` is refused before reading), within
/// `REQUEST_BODY_TIMEOUT` (408), and only while all bodies held fit in
/// `MAX_BODY_BYTES_IN_FLIGHT_MB` (503 with Retry-After). The reservation
/// must live as long as the body (or what it becomes) is held.
pub async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    config: &Config,
    state: &AppState,
) -> Result<(web::BytesMut, BodyReservation), ApiError> {
    read_body_within(request, payload, config.max_request_body_bytes, config, state).await
}

/// [`read_body`] with a limit of its own (the dashboard's forms), under
/// the same deadline and shared budget.
pub async fn read_body_within(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    config: &Config,
    state: &AppState,
) -> Result<(web::BytesMut, BodyReservation), ApiError> {
    let too_large = || ApiError::PayloadTooLarge { limit_mb: limit.div_ceil(1024 * 1024) };
    let mut reservation = state.body_budget.reserve();
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(announced) = announced {
        if announced > limit {
            return Err(too_large());
        }
        reservation.grow(announced, config.max_body_bytes_in_flight).map_err(|_| busy())?;
    }
    let read = async {
        let mut body = web::BytesMut::with_capacity(announced.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("Could not read the request body"))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            let beyond_reserved = (body.len() + chunk.len()).saturating_sub(reservation.bytes());
            if beyond_reserved > 0 {
                reservation.grow(beyond_reserved, config.max_body_bytes_in_flight).map_err(|_| busy())?;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(config.request_body_timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout { limit_seconds: config.request_body_timeout.as_secs() })??;
    Ok((body, reservation))
}
