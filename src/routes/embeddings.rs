//! `POST /v1/embeddings` (§6): OpenAI's embeddings through the pool. The
//! texts go upstream as `batchEmbedContents` calls of at most 100, each
//! retried on other keys like any call; the vectors come back in the
//! client's order, as floats or base64.

use std::rc::Rc;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::ClientAuthorized;
use crate::bodyshare::Rope;
use crate::delivery::admission::{check_rate_limit, read_body};
use crate::delivery::relay::Relay;
use crate::delivery::RequestNote;
use crate::error::ApiError;
use crate::gemini::client::Target;
use crate::gemini::model::is_valid_model_name;
use crate::models::is_model_allowed;
use crate::openai::embeddings::{batch_body, to_job, to_openai, vectors_of, EmbeddingRequest, MAX_BATCH};
use crate::state::AppState;
use crate::state::WorkerClientCell;

pub async fn embeddings(
    auth: ClientAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClientCell>,
) -> Result<HttpResponse, ApiError> {
    let config = state.config();
    check_rate_limit(auth.address, &config, &state).await?;
    let (raw, _reservation) = read_body(&request, payload, &config, &state).await?;
    let parsed: EmbeddingRequest = serde_json::from_slice(&raw)
        .map_err(|error| ApiError::bad_request(format!("Invalid request body: {error}")))?;
    let requested = parsed.model.clone();
    let job = to_job(parsed).map_err(|(message, param)| ApiError::BadRequest { message, param: Some(param.into()) })?;
    if !is_valid_model_name(&job.model) {
        return Err(ApiError::BadRequest {
            message: format!("model: invalid model name \"{}\"", crate::error::echo(&requested)),
            param: Some("model".into()),
        });
    }
    if !is_model_allowed(&requested, Some(&job.model), &config) {
        return Err(ApiError::ModelNotFound(format!(
            "The model {} is not available on this server / 模型不可用",
            crate::error::echo(&requested)
        )));
    }
    let clients = clients.current(&state);
    let model: Rc<str> = Rc::from(job.model.as_str());
    let target = Target::studio(model.clone());
    let relay = Relay::new(&config, &state, &clients.gemini, target, model);
    let mut vectors = Vec::with_capacity(job.texts.len());
    let mut last_key = None;
    for texts in job.texts.chunks(MAX_BATCH) {
        let body = Rope::from(
            serde_json::to_vec(&batch_body(&job.model, texts, job.dimensions)).map_err(|_| ApiError::Internal)?,
        );
        let (answer, key) = relay.call(crate::gemini::native::Action::BatchEmbedContents, body).await?;
        let batch = vectors_of(&answer, texts.len()).map_err(|message| {
            log::warn!(
                "embeddings answer unusable model={} key={key}: {}",
                crate::secret::LogSafe(&job.model),
                crate::secret::LogSafe(&message)
            );
            ApiError::UpstreamFailed { status: actix_web::http::StatusCode::BAD_GATEWAY, message }
        })?;
        vectors.extend(batch);
        last_key = Some(key);
    }
    let mut response = HttpResponse::Ok().json(to_openai(&requested, &vectors, job.base64));
    response.extensions_mut().insert(RequestNote {
        door: crate::delivery::Door::Embeddings,
        model: requested,
        key: last_key,
        mode: crate::delivery::Mode::Embed,
        vertex: false,
        alias: None,
    });
    Ok(response)
}
