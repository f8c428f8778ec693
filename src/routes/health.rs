//! Liveness and readiness probes; open without authentication.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// `GET /health`: the process is up and serving.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started_at.elapsed().as_secs(),
    }))
}

/// `GET /ready`: ready to serve chat (keys loaded, at least one).
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if !*state.keys_loaded.borrow() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "loading keys"}))
    } else if state.pool.is_empty() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "no keys configured"}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    }
}
