//! HTTP routes. Each module owns its handlers; this file is the table.
//! Handlers stay thin: parse, authorize, call the pure modules and the
//! relay, shape the answer.

pub mod chat;
pub mod embeddings;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod native;
pub mod responses;

use actix_web::web;

use crate::error::{ApiError, GoogleError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Chat first: actix tries resources in order, and every pattern route
    // ahead of a request costs a regex match (about 2% of a non-stream
    // request's CPU when chat came after the Gemini-native patterns).
    cfg.route("/v1/chat/completions", web::post().to(chat::chat_completions))
        .route("/chat/completions", web::post().to(chat::chat_completions))
        .route("/aistudio/chat/completions", web::post().to(chat::chat_completions));
    // Anthropic Messages; its model list is `models::list_models`' (by the
    // `anthropic-version` header, or under `/anthropic/`).
    cfg.route("/v1/messages", web::post().to(messages::create_message))
        .route("/anthropic/v1/messages", web::post().to(messages::create_message))
        .route("/v1/messages/count_tokens", web::post().to(messages::count_tokens))
        .route("/anthropic/v1/messages/count_tokens", web::post().to(messages::count_tokens))
        .route("/anthropic/v1/models", web::get().to(models::list_models))
        .route("/anthropic/v1/models/{name}", web::get().to(models::retrieve_model));
    // OpenAI Responses (Codex CLI and the openai SDKs).
    cfg.route("/v1/responses", web::post().to(responses::create_response))
        .service(
            web::resource("/v1/responses/{id}")
                .route(web::get().to(responses::retrieve_response))
                .route(web::delete().to(responses::delete_response)),
        )
        .route("/v1/responses/{id}/input_items", web::get().to(responses::list_input_items));
    // Gemini-native (§6). A resource answers GET and POST alike: actix
    // picks the first resource whose path matches, whatever the method.
    cfg.route("/v1beta/models", web::get().to(native::list_models))
        .route("/gemini/{version}/models", web::get().to(native::list_models))
        .service(
            web::resource("/v1/models/{name}")
                .route(web::get().to(models::retrieve_model))
                .route(web::post().to(native::model_action)),
        )
        .service(
            web::resource(["/v1beta/models/{name}", "/gemini/{version}/models/{name}"])
                .route(web::get().to(native::get_model))
                .route(web::post().to(native::model_action)),
        )
        .route("/v1/embeddings", web::post().to(embeddings::embeddings));
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/v1/models", web::get().to(models::list_models))
        .route("/models", web::get().to(models::list_models))
        .route("/aistudio/models", web::get().to(models::list_models))
        // Vertex AI (§11), whatever ENABLE_VERTEX says.
        .route("/vertex/models", web::get().to(models::list_models))
        .route("/vertex/v1/models", web::get().to(models::list_models))
        .route("/vertex/chat/completions", web::post().to(chat::chat_completions))
        .route("/vertex/v1/chat/completions", web::post().to(chat::chat_completions));
}

/// Unknown routes: 404 in Google's envelope under the native prefixes,
/// in Anthropic's under `/anthropic/` or for Anthropic's clients, in
/// OpenAI's elsewhere.
pub async fn not_found(request: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    let error = ApiError::RouteNotFound("Unknown route / 路径不存在".to_owned());
    if ["/v1beta/", "/gemini/"].iter().any(|prefix| request.path().starts_with(prefix)) {
        GoogleError(error).error_response()
    } else if messages::speaks_anthropic(&request) {
        crate::anthropic::error::AnthropicError(error).error_response()
    } else {
        error.error_response()
    }
}
