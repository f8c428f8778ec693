//! `GET /v1/models` (and `/models`, `/aistudio/models`): the OpenAI-shaped
//! model list; `GET /v1/models/{id}`: one model. Never empty: the bundled list stands in until the upstream
//! list is known. A stale list triggers a background refresh.

use actix_web::{web, HttpResponse};

use crate::auth::ClientAuthorized;
use crate::models::openai_model_list;
use crate::state::AppState;

pub async fn list_models(_auth: ClientAuthorized, state: web::Data<AppState>) -> HttpResponse {
    let config = state.config();
    HttpResponse::Ok().json(openai_model_list(&state.catalog.client_model_ids(&config)))
}

/// `GET /v1/models/{id}`: one model as OpenAI's SDKs retrieve it.
pub async fn retrieve_model(
    _auth: ClientAuthorized,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, crate::error::ApiError> {
    let id = path.into_inner();
    let config = state.config();
    let listed =
        state.catalog.client_model_ids(&config).contains(&id) || state.catalog.native_model(&id, &config).is_some();
    if !listed {
        return Err(crate::error::ApiError::ModelNotFound(format!("The model {id} does not exist / 模型不存在")));
    }
    Ok(HttpResponse::Ok().json(crate::models::openai_model(&id)))
}
