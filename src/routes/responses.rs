//! The OpenAI Responses door: `POST /v1/responses` (non-stream, real and
//! fake streams), `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`
//! and `GET /v1/responses/{id}/input_items`. The handler authorizes,
//! admits, parses, rebuilds the conversation of `previous_response_id`
//! from the store, converts (`responses::request`), then hands over to
//! delivery like the chat door; answers are built by `responses::output`.
//!
//! Storage: with `store` (the API's default) and `RESPONSES_RETENTION_HOURS`
//! above 0, a completed response is kept with the input items of its turn,
//! bound to the client's scope (`auth::ClientScope`): another client, or
//! the same key from another address, gets 404. Reads run on blocking
//! threads (`web::block`); a response saved a moment ago is found in
//! `state.recent_responses` before the writer has stored it.

use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::auth::ClientAuthorized;
use crate::bodylimit::BodyReservation;
use crate::bodyshare::{parse_shared, BodyJson, Rope};
use crate::cache::{native_cache_key, CacheKey};
use crate::config::Config;
use crate::delivery::admission::{busy, check_rate_limit, read_body};
use crate::delivery::door::{
    admit_model, fetch_media, generation_relay, mode_for, upstream_body, Admitted, BODY_COPIES_WHILE_CONVERTING,
};
use crate::delivery::responses::{complete_answer, fake_stream, Keeper, ResponsesEvents};
use crate::delivery::shared::obtain_answer;
use crate::delivery::stream::{deliver_later, json_stream_headers, open_and_pump, sse_headers, PumpTiming};
use crate::delivery::{Door, Mode, RequestNote};
use crate::error::ApiError;
use crate::gemini::client::Service;
use crate::gemini::types::Answer;
use crate::keys::KeyId;
use crate::responses::output::{OutputBuilder, ResponseMeta};
use crate::responses::request::{located_items, remote_media_urls, to_gemini, ConvertOptions, ResponsesRequest};
use crate::responses::{is_response_id, response_id, ConvertError};
use crate::state::{AppState, WorkerClientCell, WorkerClients};
use crate::store::recent::Recent;
use crate::store::{scope_digest, StoredResponse};

/// Responses a `previous_response_id` chain may go back through.
const MAX_CHAIN: usize = 1_000;

/// A request converted and ready for the upstream.
struct Prepared {
    admitted: Admitted,
    body: Rope,
    meta: ResponseMeta,
    /// The client's scope digest, for the swipe-cache and in-flight key
    /// ([`Prepared::cache_key`], made when first asked for).
    scope: String,
    key: std::cell::OnceCell<CacheKey>,
    prefer: Option<KeyId>,
    keeper: Option<Keeper>,
    _body: BodyReservation,
}

impl Prepared {
    /// Swipe-cache and in-flight key: the upstream body, scoped to the
    /// client. A pass over the whole body: a real stream, which only looks
    /// it up, makes it only when the cache holds answers.
    fn cache_key(&self) -> CacheKey {
        *self.key.get_or_init(|| {
            native_cache_key(
                self.scope.as_bytes(),
                "responses",
                &self.admitted.spec.base,
                "generateContent",
                &self.body,
            )
        })
    }
}

pub async fn create_response(
    auth: ClientAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClientCell>,
) -> Result<HttpResponse, ApiError> {
    let clients = clients.current(&state);
    let config = state.config();
    check_rate_limit(auth.address, &config, &state).await?;
    let (raw, mut reservation) = read_body(&request, payload, &config, &state).await?;
    reservation
        .grow(raw.len() * (BODY_COPIES_WHILE_CONVERTING - 1), config.max_body_bytes_in_flight)
        .map_err(|_| busy())?;
    let raw = raw.freeze();
    let mut parsed: ResponsesRequest =
        parse_shared(&raw).map_err(|error| ApiError::bad_request(format!("Invalid request body: {error}")))?;
    drop(raw);
    if parsed.background == Some(true) {
        return Err(ApiError::BadRequest {
            message: "background: background responses are not supported by this gateway".into(),
            param: Some("background".into()),
        });
    }
    let admitted = admit_model(request.path(), &parsed.model, &config, &state)?;
    let input = parsed.take_input_items().map_err(convert_error)?;
    let scope = scope_digest(auth.scope.as_bytes());
    let history = match parsed.previous_response_id.clone() {
        None => Conversation::default(),
        Some(previous) => match conversation_before(&previous, &scope, &config, &state).await? {
            Some(history) => history,
            None => return Ok(previous_not_found(&previous)),
        },
    };
    reservation.grow(history.bytes, config.max_body_bytes_in_flight).map_err(|_| busy())?;
    let stream = parsed.stream.unwrap_or(false);
    let prepared = prepare(&parsed, input, history, admitted, scope, reservation, &config, &state, &clients).await?;
    drop(parsed);
    let mode = mode_for(stream, &config);
    let note = RequestNote {
        door: Door::Responses,
        model: prepared.meta.model.clone(),
        key: None,
        mode,
        vertex: prepared.admitted.service != Service::Studio,
        alias: prepared.admitted.alias.clone(),
    };
    if let Some(cached) = state.swipe_cache.take_if_any(|| prepared.cache_key(), state.now_ms()) {
        let mut response = serve_cached(&cached, &prepared, stream, &state)?;
        response.extensions_mut().insert(RequestNote { mode: Mode::Cache, ..note });
        return Ok(response);
    }
    let prepared = Rc::new(prepared);
    let mut response = match mode {
        Mode::Stream => {
            let builder = OutputBuilder::new(prepared.meta.clone(), seeded_rng());
            let format = ResponsesEvents::new(builder, state.clone(), prepared.keeper.clone());
            let timing = PumpTiming {
                keepalive_every: config.fake_streaming_interval,
                idle_timeout: config.stream_idle_timeout,
            };
            let relay = generation_relay(&prepared.admitted, prepared.prefer, &config, &state, &clients);
            let (mut response, key) =
                open_and_pump(relay, prepared.body.clone(), format, sse_headers(), timing).await?;
            response.extensions_mut().insert(RequestNote { key: Some(key), ..note });
            return Ok(response);
        }
        Mode::FakeStream => {
            let builder = OutputBuilder::new(prepared.meta.clone(), seeded_rng());
            let work = {
                let (prepared, config, state, clients) =
                    (prepared.clone(), config.clone(), state.clone(), clients.clone());
                async move { obtain(&prepared, &config, &state, &clients).await }
            };
            fake_stream(builder, work, config.fake_streaming_interval, state.clone(), prepared.keeper.clone())
        }
        Mode::Keepalive => {
            let work = {
                let (prepared, config, state, clients) =
                    (prepared.clone(), config.clone(), state.clone(), clients.clone());
                async move {
                    let (outcome, _key) = obtain(&prepared, &config, &state, &clients).await;
                    outcome.and_then(|answer| respond_whole(&answer, &prepared, &state))
                }
            };
            let interval = config.nonstream_keepalive_interval;
            deliver_later(json_stream_headers(), work, Bytes::from_static(b"\n"), interval, |result| {
                let body = match result {
                    Ok(response) => response.into_bytes(),
                    Err(error) => error.body().to_string().into_bytes(),
                };
                vec![Bytes::from(body)]
            })
        }
        _ => {
            let (outcome, key) = obtain(&prepared, &config, &state, &clients).await;
            let answer = outcome?;
            let response = respond_whole(&answer, &prepared, &state)?;
            let mut response = json_body(response);
            response.extensions_mut().insert(RequestNote { key, ..note });
            return Ok(response);
        }
    };
    response.extensions_mut().insert(note);
    Ok(response)
}

fn seeded_rng() -> rand::rngs::StdRng {
    rand::SeedableRng::from_rng(&mut rand::rng())
}

fn convert_error(error: ConvertError) -> ApiError {
    match error {
        ConvertError::BadRequest { message, param } => ApiError::BadRequest { message, param },
    }
}

/// OpenAI's answer for an unknown `previous_response_id` (400, with its code).
fn previous_not_found(id: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"error": {
        "message": format!("Previous response with id '{}' not found.", crate::error::echo(id)),
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }}))
}

fn not_found(id: &str) -> ApiError {
    ApiError::RouteNotFound(format!("Response with id '{}' not found.", crate::error::echo(id)))
}

/// The items of the conversation before this turn, and the signatures its
/// stored outputs carry (issued by Gemini to this client: trusted).
#[derive(Default)]
struct Conversation {
    items: Vec<BodyJson>,
    signatures: HashSet<String>,
    bytes: usize,
}

/// Looks up the stored response `id` of `scope`: a save or delete noted a
/// moment ago first, then the store (blocking: call it off the async
/// threads). Expired responses are not found.
fn find_stored(state: &AppState, id: &str, scope: &str, retention_ms: u64) -> Result<Option<StoredResponse>, ApiError> {
    let now_ms = state.now_ms();
    let found = match state.recent_responses.get(id, scope, now_ms) {
        Some(Recent::Saved(stored)) => Some(Arc::unwrap_or_clone(stored)),
        Some(Recent::Deleted) => None,
        None => state.store.store().response(id, scope).map_err(|error| {
            log::error!("reading a stored response failed: {error}");
            ApiError::Internal
        })?,
    };
    Ok(found.filter(|stored| stored.created_ms.saturating_add(retention_ms) > now_ms))
}

/// The stored response `id` of `scope`, read off the async threads.
async fn lookup(state: &web::Data<AppState>, id: &str, scope: &str) -> Result<Option<StoredResponse>, ApiError> {
    if !is_response_id(id) {
        return Ok(None);
    }
    let retention_ms = retention_ms(&state.config());
    let (state, id, scope) = (state.clone(), id.to_owned(), scope.to_owned());
    web::block(move || find_stored(&state, &id, &scope, retention_ms)).await.map_err(|_| ApiError::Internal)?
}

fn retention_ms(config: &Config) -> u64 {
    u64::from(config.responses_retention_hours) * 3_600_000
}

/// The conversation `previous` ends (its turns' inputs and outputs, oldest
/// first, through its own `previous_response_id`s), or `None` when any of
/// them is not found for this client. Bounded by [`MAX_CHAIN`] responses
/// and the request body limit.
async fn conversation_before(
    previous: &str,
    scope: &str,
    config: &Config,
    state: &web::Data<AppState>,
) -> Result<Option<Conversation>, ApiError> {
    if !is_response_id(previous) {
        return Ok(None);
    }
    let (state, first, scope) = (state.clone(), previous.to_owned(), scope.to_owned());
    let (retention_ms, limit) = (retention_ms(config), config.max_request_body_bytes);
    web::block(move || {
        let mut turns = Vec::new();
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(id) = next.take() {
            if turns.len() >= MAX_CHAIN || !is_response_id(&id) {
                return Ok(None);
            }
            let Some(stored) = find_stored(&state, &id, &scope, retention_ms)? else { return Ok(None) };
            bytes += stored.body.len();
            if bytes > limit {
                return Err(ApiError::BadRequest {
                    message: "previous_response_id: the conversation is larger than the request body limit".into(),
                    param: Some("previous_response_id".into()),
                });
            }
            let mut body: Value = serde_json::from_str(&stored.body).map_err(|_| ApiError::Internal)?;
            next = body["response"]["previous_response_id"].as_str().map(str::to_owned);
            turns.push((body["input"].take(), body["response"]["output"].take()));
        }
        let mut conversation = Conversation { bytes, ..Conversation::default() };
        for (input, output) in turns.into_iter().rev() {
            let output = match output {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            for item in &output {
                if let Some(signature) = item.get("encrypted_content").and_then(Value::as_str) {
                    conversation.signatures.insert(signature.to_owned());
                }
            }
            if let Value::Array(items) = input {
                conversation.items.extend(items.into_iter().map(BodyJson::from));
            }
            conversation.items.extend(output.into_iter().map(BodyJson::from));
        }
        Ok(Some(conversation))
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    request: &ResponsesRequest,
    input: Vec<BodyJson>,
    history: Conversation,
    admitted: Admitted,
    scope: String,
    mut reservation: BodyReservation,
    config: &Config,
    state: &AppState,
    clients: &WorkerClients,
) -> Result<Prepared, ApiError> {
    let urls = remote_media_urls(history.items.iter().chain(&input));
    let remote_media = fetch_media(&urls, config, clients, &mut reservation).await?;
    let signature_lookup = |call_id: &str| state.signatures.lookup(call_id);
    let known_signature = |signature: &str| history.signatures.contains(signature) || state.signatures.knows(signature);
    let options = ConvertOptions {
        model: &admitted.spec,
        enable_thinking: config.enable_thinking,
        show_thinking: config.show_thinking,
        safety_threshold: &config.safety_threshold,
        remote_media: &remote_media,
        thought_signature_for: &signature_lookup,
        known_signature: &known_signature,
    };
    let items = located_items(&history.items, &input);
    let gemini_request = to_gemini(request, &items, &options).map_err(convert_error)?;
    drop(items);
    drop(history);
    let retention_ms = retention_ms(config);
    let keeper = if request.store != Some(false) && retention_ms > 0 {
        let input = Rc::new(input);
        Some(Keeper { scope: scope.clone(), input, max_bytes: config.max_request_body_bytes, retention_ms })
    } else {
        // This turn's input goes before the upstream body is made.
        drop(input);
        None
    };
    let prefer = crate::delivery::preferred_key(&gemini_request, &state.signatures);
    let body = upstream_body(&gemini_request, &reservation);
    drop(gemini_request);
    // From here on the request holds the upstream body and, when it is to
    // be kept, what this turn's input has of its own (its long strings
    // are slices of the body the upstream body shares).
    let input_held = keeper.as_ref().map_or(0, |keeper| keeper.input.iter().map(BodyJson::owned_len).sum());
    reservation.shrink_to(body.len() + input_held);
    let mut rng = rand::rng();
    let meta = ResponseMeta {
        id: response_id(&mut rng),
        created_at: (state.now_ms() / 1000) as i64,
        model: request.model.clone(),
        show_thinking: config.show_thinking,
        echoed: request.echoed_fields(),
    };
    Ok(Prepared { admitted, body, meta, scope, key: Default::default(), prefer, keeper, _body: reservation })
}

/// The non-streaming answer, shared with identical requests in flight
/// (unless `PUBLIC_MODE`).
async fn obtain(
    prepared: &Prepared,
    config: &Config,
    state: &web::Data<AppState>,
    clients: &WorkerClients,
) -> (Result<Arc<Answer>, ApiError>, Option<KeyId>) {
    let relay = generation_relay(&prepared.admitted, prepared.prefer, config, state, clients);
    obtain_answer(prepared.cache_key(), !config.public_mode, relay, prepared.body.clone(), state).await
}

/// A 200 with a JSON body already serialized.
fn json_body(json: String) -> HttpResponse {
    HttpResponse::Ok().content_type(actix_web::http::header::ContentType::json()).body(json)
}

/// A whole answer as the response object's JSON (kept when asked).
fn respond_whole(answer: &Answer, prepared: &Prepared, state: &AppState) -> Result<String, ApiError> {
    let mut builder = OutputBuilder::silent(prepared.meta.clone(), seeded_rng());
    complete_answer(&mut builder, answer, state, prepared.keeper.as_ref(), &mut Vec::new())
}

/// A spare answer from the swipe cache, in the mode asked.
fn serve_cached(
    answer: &Answer,
    prepared: &Prepared,
    stream: bool,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    if !stream {
        return Ok(json_body(respond_whole(answer, prepared, state)?));
    }
    let mut builder = OutputBuilder::new(prepared.meta.clone(), seeded_rng());
    let mut out = Vec::new();
    builder.opening(&mut out);
    complete_answer(&mut builder, answer, state, prepared.keeper.as_ref(), &mut out)?;
    Ok(sse_headers().body(out))
}

/// `GET /v1/responses/{id}`: the stored response, for its own client only.
pub async fn retrieve_response(
    auth: ClientAuthorized,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let scope = scope_digest(auth.scope.as_bytes());
    let stored = lookup(&state, &id, &scope).await?.ok_or_else(|| not_found(&id))?;
    let mut body: Value = serde_json::from_str(&stored.body).map_err(|_| ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(body["response"].take()))
}

/// `GET /v1/responses/{id}/input_items`: the input items of that turn, as
/// a list (oldest first; no paging: one turn's items, bounded by the body
/// limit).
pub async fn list_input_items(
    auth: ClientAuthorized,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let scope = scope_digest(auth.scope.as_bytes());
    let stored = lookup(&state, &id, &scope).await?.ok_or_else(|| not_found(&id))?;
    let body: Value = serde_json::from_str(&stored.body).map_err(|_| ApiError::Internal)?;
    let data = body["input"].as_array().cloned().unwrap_or_default();
    let first = data.first().and_then(|item| item.get("id")).cloned().unwrap_or(Value::Null);
    let last = data.last().and_then(|item| item.get("id")).cloned().unwrap_or(Value::Null);
    Ok(HttpResponse::Ok().json(json!({
        "object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false,
    })))
}

/// `DELETE /v1/responses/{id}`: forgets it (its own client only).
pub async fn delete_response(
    auth: ClientAuthorized,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let scope = scope_digest(auth.scope.as_bytes());
    if lookup(&state, &id, &scope).await?.is_none() {
        return Err(not_found(&id));
    }
    state.recent_responses.deleted(&id, &scope, state.now_ms());
    state.store.send(crate::store::Change::DeleteResponse { id: id.clone(), scope });
    Ok(HttpResponse::Ok().json(json!({"id": id, "object": "response", "deleted": true})))
}
