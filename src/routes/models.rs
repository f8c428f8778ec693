//! `GET /v1/models` (and `/models`, `/aistudio/models`): the OpenAI-shaped
//! model list. Never empty: the bundled list stands in until the upstream
//! list is known. A stale list triggers a background refresh.

use actix_web::{web, HttpResponse};

use crate::auth::ClientAuthorized;
use crate::models::openai_model_list;
use crate::state::AppState;

pub async fn list_models(_auth: ClientAuthorized, state: web::Data<AppState>) -> HttpResponse {
    let config = state.config();
    HttpResponse::Ok().json(openai_model_list(&state.catalog.client_model_ids(&config)))
}
