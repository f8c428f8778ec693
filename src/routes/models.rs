//! `GET /v1/models` (and `/models`, `/aistudio/models`): the OpenAI-shaped
//! model list; `GET /v1/models/{id}`: one model. Never empty: the bundled list stands in until the upstream
//! list is known. A stale list triggers a background refresh.
//!
//! Google's SDKs pointed at the server's root use the same paths (their
//! default API version with a base URL is `v1`): a request that
//! authenticates the Google way (`x-goog-api-key`, `?key=`) or carries
//! `x-goog-api-client` gets Google's shapes instead (§6).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::auth::ClientAuthorized;
use crate::models::openai_model_list;
use crate::state::AppState;

/// Whether the request comes from a Google client (Google's shapes wanted).
pub fn speaks_google(request: &HttpRequest) -> bool {
    let headers = request.headers();
    headers.contains_key("x-goog-api-key")
        || headers.contains_key("x-goog-api-client")
        || url::form_urlencoded::parse(request.query_string().as_bytes()).any(|(name, _)| name == "key")
}

pub async fn list_models(
    _auth: ClientAuthorized,
    request: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
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
    _auth: ClientAuthorized,
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, crate::error::ApiError> {
    if speaks_google(&request) {
        return Ok(crate::routes::native::one_model(&request, &state).unwrap_or_else(|error| error.error_response()));
    }
    let id = path.into_inner();
    let config = state.config();
    let listed =
        state.catalog.client_model_ids(&config).contains(&id) || state.catalog.native_model(&id, &config).is_some();
    if !listed {
        return Err(crate::error::ApiError::ModelNotFound(format!(
            "The model {} does not exist / 模型不存在",
            crate::error::echo(&id)
        )));
    }
    Ok(HttpResponse::Ok().json(crate::models::openai_model(&id)))
}
