//! Liveness and readiness probes; open without authentication.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::huggingface::TokenAuthState;
use crate::state::AppState;

/// `GET /health`: the process is up and serving.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started_at.elapsed().as_secs(),
    }))
}

/// `GET /ready`: ready to serve chat (keys loaded, at least one). In
/// Hugging Face mode it also says whether `x-ip-token` auth is on, and if
/// not, why (a public Space, no `SPACE_ID`, no verified HF key…). With
/// `REDIS_URL` it says whether the shared state is reachable: a replica
/// whose Redis is away still serves (from its own view), so stays 200.
/// Where Redis is (host and port) is said only to a dashboard session or
/// the metrics token: anonymous callers learn connected or unreachable.
pub async fn ready(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (mut response, mut body) = if !*state.keys_loaded.borrow() {
        (HttpResponse::ServiceUnavailable(), json!({"status": "loading keys"}))
    } else if state.pool.is_empty() {
        (HttpResponse::ServiceUnavailable(), json!({"status": "no keys configured"}))
    } else {
        (HttpResponse::Ok(), json!({"status": "ready"}))
    };
    let token_auth = state.huggingface.state();
    if token_auth != TokenAuthState::Disabled {
        body["huggingface_token_auth"] = json!(token_auth.describe());
    }
    if let Some((up, endpoint)) = crate::cluster::status(&state) {
        body["shared_state"] = json!({ "redis": if up { "connected" } else { "unreachable" } });
        if crate::routes::metrics::may_read_internals(&request, &state) {
            body["shared_state"]["endpoint"] = json!(endpoint);
        }
    }
    response.json(body)
}
