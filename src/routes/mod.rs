//! HTTP routes. Each module owns its handlers; this file is the table.
//! Handlers stay thin: parse, authorize, call the pure modules and the
//! relay, shape the answer.

pub mod chat;
pub mod health;
pub mod models;

use actix_web::web;

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/v1/models", web::get().to(models::list_models))
        .route("/models", web::get().to(models::list_models))
        .route("/aistudio/models", web::get().to(models::list_models))
        .route("/v1/chat/completions", web::post().to(chat::chat_completions))
        .route("/chat/completions", web::post().to(chat::chat_completions))
        .route("/aistudio/chat/completions", web::post().to(chat::chat_completions));
}

/// Unknown routes: 404 in the OpenAI envelope.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound("Unknown route / 路径不存在".to_owned()))
}
