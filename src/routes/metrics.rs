//! `GET /metrics` (§13): a live dashboard session (no CSRF: a GET that
//! changes nothing), or `Authorization: Bearer <METRICS_TOKEN>` when that
//! setting is not empty, compared in constant time; wrong tokens count
//! against the address (their own table). Anything else gets a 401 and no
//! metrics. The collector is `crate::metrics`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;
use crate::throttle::{Guarded, Verdict};

/// The metrics text, the gauges read from `state` now.
pub fn render(state: &AppState) -> String {
    state.metrics.render(&crate::metrics::Now {
        now_ms: state.now_ms(),
        studio: &state.pool,
        vertex_express: &state.vertex.express,
        vertex_accounts: &state.vertex.accounts,
        swipe_cache_entries: state.swipe_cache.len(),
        active_requests: state.stats.active_requests(),
    })
}

/// Who may read the metrics.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    Allowed,
    Refused,
    LockedOut { retry_after_s: u64 },
}

/// A live dashboard session that is not waiting for a password change.
fn has_dashboard_session(request: &HttpRequest, state: &AppState) -> bool {
    request
        .cookie(crate::operator::session::SESSION_COOKIE)
        .and_then(|cookie| state.dashboard.sessions.get(cookie.value(), state.now_ms()))
        .is_some_and(|info| !info.must_change_password)
}

/// The token of `Authorization: Bearer <token>`, if that is the header.
fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn access(request: &HttpRequest, state: &AppState) -> Access {
    if has_dashboard_session(request, state) {
        return Access::Allowed;
    }
    let config = state.config();
    let expected = &config.metrics_token;
    let Some(given) = bearer_token(request) else { return Access::Refused };
    if expected.expose().is_empty() {
        return Access::Refused;
    }
    let address = crate::auth::client_address(request, &config);
    let throttle = state.throttles.of(Guarded::Metrics);
    // Constant time (`subtle`); only the length can leak.
    match throttle.check_secret(address, config.auth_failures_per_minute, state.now_ms(), || expected.matches(given)) {
        Verdict::Accepted => Access::Allowed,
        Verdict::Wrong => Access::Refused,
        Verdict::LockedOut { retry_after_ms, began } => {
            if began {
                log::warn!("too many wrong metrics tokens from {address}: refused for {} s", retry_after_ms / 1000);
                crate::cluster::share_lockout(state, Guarded::Metrics, address, retry_after_ms);
            }
            Access::LockedOut { retry_after_s: retry_after_ms.div_ceil(1000) }
        }
    }
}

/// Whether the caller may read internals (`/metrics`, and where Redis is
/// in `/ready`): a dashboard session or the metrics token.
pub fn may_read_internals(request: &HttpRequest, state: &AppState) -> bool {
    access(request, state) == Access::Allowed
}

fn error_body(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "message": message, "type": "invalid_request_error", "code": code } })
}

/// `GET /metrics`.
pub async fn metrics(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match access(&request, &state) {
        Access::Allowed => HttpResponse::Ok()
            .content_type(CONTENT_TYPE)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(render(&state)),
        Access::Refused => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"hajimi metrics\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(error_body(
                "Metrics need a dashboard session or the METRICS_TOKEN bearer token / 需要登录或提供 METRICS_TOKEN",
                "unauthorized",
            )),
        Access::LockedOut { retry_after_s } => HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, retry_after_s.max(1).to_string()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(error_body("Too many failed attempts; try again later / 错误次数过多，请稍后再试", "rate_limited")),
    }
}
