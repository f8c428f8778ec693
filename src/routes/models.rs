//! `GET /v1/models` (and `/models`, `/aistudio/models`): the OpenAI-shaped
//! model list; `GET /v1/models/{id}`: one model. Never empty: the bundled list stands in until the upstream
//! list is known. A stale list triggers a background refresh.
//!
//! Google's SDKs pointed at the server's root use the same paths (their
//! default API version with a base URL is `v1`): a request that
//! authenticates the Google way (`x-goog-api-key`, `?key=`) or carries
//! `x-goog-api-client` gets Google's shapes instead (§6), and one that
//! carries `anthropic-version` (Anthropic's SDKs) or comes under
//! `/anthropic/` gets Anthropic's (`anthropic::models`).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::anthropic::error::AnthropicError;
use crate::anthropic::models::model_page;
use crate::auth::ClientAuthorized;
use crate::error::ApiError;
use crate::models::openai_model_list;
use crate::routes::messages::speaks_anthropic;
use crate::state::AppState;

/// Whether the request comes from a Google client (Google's shapes wanted).
pub fn speaks_google(request: &HttpRequest) -> bool {
    let headers = request.headers();
    headers.contains_key("x-goog-api-key")
        || headers.contains_key("x-goog-api-client")
        || url::form_urlencoded::parse(request.query_string().as_bytes()).any(|(name, _)| name == "key")
}

/// The OpenAI list, Google's for Google's SDKs, Anthropic's for
/// Anthropic's (`anthropic-version`, or under `/anthropic/`; refusals in
/// Anthropic's envelope too).
pub async fn list_models(
    auth: Result<ClientAuthorized, ApiError>,
    request: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    if speaks_anthropic(&request) {
        if let Err(error) = auth {
            return AnthropicError(error).error_response();
        }
        let config = state.config();
        let ids = model_ids(request.path(), &config, &state);
        let query = |wanted: &str| {
            url::form_urlencoded::parse(request.query_string().as_bytes())
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.into_owned())
        };
        let limit = query("limit").and_then(|limit| limit.parse().ok());
        let page = model_page(&ids, limit, query("after_id").as_deref(), query("before_id").as_deref());
        return HttpResponse::Ok().json(page);
    }
    if let Err(error) = auth {
        return error.error_response();
    }
    if speaks_google(&request) {
        return crate::routes::native::model_page(&request, &state).unwrap_or_else(|error| error.error_response());
    }
    let config = state.config();
    HttpResponse::Ok().json(openai_model_list(&model_ids(request.path(), &config, &state)))
}

/// The ids served on `path`: Vertex's (§11) on `/vertex/…` and, while
/// `ENABLE_VERTEX` is on, `/v1/…`; AI Studio's elsewhere.
fn model_ids(path: &str, config: &crate::config::Config, state: &AppState) -> Vec<String> {
    if !crate::vertex::lists_vertex_models(path, config) {
        return state.catalog.client_model_ids(config);
    }
    let vertex = &state.vertex;
    let has_accounts = vertex.has(crate::gemini::client::Service::VertexAccount);
    let has_express = config.enable_vertex_express && vertex.has(crate::gemini::client::Service::VertexExpress);
    let mut ids = vertex.models.client_ids(has_accounts, has_express, config.search_mode);
    ids.extend(config.extra_models.iter().cloned());
    ids.retain(|id| {
        let base = crate::gemini::model::ModelSpec::parse(id, config.search_mode).base;
        crate::models::is_model_allowed(id, Some(&base), config)
    });
    ids
}

/// `GET /v1/models/{id}`: one model as OpenAI's SDKs retrieve it.
pub async fn retrieve_model(
    auth: Result<ClientAuthorized, ApiError>,
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let anthropic = speaks_anthropic(&request);
    let result = auth.and_then(|_| retrieve(&request, path.into_inner(), anthropic, &state));
    match result {
        Ok(response) => response,
        Err(error) if anthropic => AnthropicError(error).error_response(),
        Err(error) => error.error_response(),
    }
}

fn retrieve(request: &HttpRequest, id: String, anthropic: bool, state: &AppState) -> Result<HttpResponse, ApiError> {
    if !anthropic && speaks_google(request) {
        return Ok(crate::routes::native::one_model(request, state).unwrap_or_else(|error| error.error_response()));
    }
    let config = state.config();
    let listed =
        state.catalog.client_model_ids(&config).contains(&id) || state.catalog.native_model(&id, &config).is_some();
    if !listed {
        return Err(ApiError::ModelNotFound(format!(
            "The model {} does not exist / 模型不存在",
            crate::error::echo(&id)
        )));
    }
    if anthropic {
        return Ok(HttpResponse::Ok().json(crate::anthropic::models::model(&id)));
    }
    Ok(HttpResponse::Ok().json(crate::models::openai_model(&id)))
}
