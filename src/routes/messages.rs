//! Anthropic's Messages API: `POST /v1/messages` (and under `/anthropic`)
//! and `POST /v1/messages/count_tokens`; the model list in Anthropic's
//! shape is `routes::models`'. Like the chat door, the handler parses and
//! converts once (`anthropic::request`), then delivery takes over:
//! - non-stream: one `Message` (a refusal is a message with
//!   `stop_reason: "refusal"`, not an error);
//! - non-stream with keep-alive (opt-in): `\n` while waiting, then the body;
//! - fake stream (the default for `stream: true`): `ping` events while the
//!   non-streaming calls run, then the whole answer as Anthropic's events;
//! - real stream: upstream events converted as they come
//!   (`anthropic::stream`).
//!
//! Errors are Anthropic's (`anthropic::error`), with real statuses until
//! the first byte; after it, an `error` event ends the stream. Thought
//! signatures: every `tool_use` id this door gives out is remembered with
//! its signature, and a follow-up goes first to the key that produced the
//! signatures it carries back.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::future::{ready, Ready};

use crate::anthropic::error::AnthropicError;
use crate::anthropic::request::{count_tokens_body, remote_media_urls, shows_thinking, to_gemini, ConvertOptions};
use crate::anthropic::response::{is_refusal, message_events, message_id, to_message, MessageMeta};
use crate::anthropic::stream::{error_event, AnthropicEvents, PING};
use crate::anthropic::types::{Message, MessagesRequest};
use crate::auth::{ClientAuthorized, ClientScope};
use crate::bodylimit::BodyReservation;
use crate::bodyshare::{parse_shared, Rope};
use crate::cache::{native_cache_key, CacheKey};
use crate::config::Config;
use crate::convert::answer::is_empty_answer;
use crate::delivery::admission::{busy, check_rate_limit, read_body};
use crate::delivery::door::{
    admit_model, fetch_media, generation_relay, mode_for, upstream_body, Admitted, BODY_COPIES_WHILE_CONVERTING,
};
use crate::delivery::relay::Relay;
use crate::delivery::shared::obtain_answer;
use crate::delivery::stream::{deliver_later, json_stream_headers, open_and_pump, sse_headers, PumpTiming};
use crate::delivery::{Door, Mode, RequestNote};
use crate::error::ApiError;
use crate::gemini::client::{ApiVersion, Service, Target};
use crate::gemini::native::Action;
use crate::gemini::types::Answer;
use crate::keys::KeyId;
use crate::secret::LogSafe;
use crate::state::{AppState, WorkerClientCell, WorkerClients};

/// [`ClientAuthorized`] for Anthropic's routes: the same checks (`x-api-key`
/// or `Authorization: Bearer`), refusals in Anthropic's envelope.
#[derive(Debug, Clone, Copy)]
pub struct MessagesAuthorized(pub ClientAuthorized);

impl FromRequest for MessagesAuthorized {
    type Error = AnthropicError;
    type Future = Ready<Result<MessagesAuthorized, AnthropicError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match request.app_data::<web::Data<AppState>>() {
            Some(state) => crate::auth::authorize(request, state, &state.config()),
            None => Err(ApiError::Internal),
        };
        ready(result.map(MessagesAuthorized).map_err(AnthropicError))
    }
}

/// Whether a request speaks Anthropic's API (its SDKs send
/// `anthropic-version` on every call), or comes under `/anthropic/`.
pub fn speaks_anthropic(request: &HttpRequest) -> bool {
    request.headers().contains_key("anthropic-version") || request.path().starts_with("/anthropic/")
}

/// A request converted and ready for the upstream.
struct Prepared {
    admitted: Admitted,
    body: Rope,
    meta: MessageMeta,
    /// The client's scope, for the swipe-cache and in-flight key
    /// ([`Prepared::cache_key`], made when first asked for).
    scope: ClientScope,
    key: std::cell::OnceCell<CacheKey>,
    /// The key that produced the thought signatures the request carries back.
    prefer: Option<KeyId>,
    _body: BodyReservation,
}

impl Prepared {
    /// Swipe-cache and in-flight key: the converted request, scoped to the
    /// client. A pass over the whole upstream body: a real stream, which
    /// only looks it up, makes it only when the cache holds answers.
    fn cache_key(&self) -> CacheKey {
        let shown = if self.meta.show_thinking { "messages+thinking" } else { "messages" };
        *self
            .key
            .get_or_init(|| native_cache_key(self.scope.as_bytes(), "anthropic", &self.meta.model, shown, &self.body))
    }
}

/// Reads, parses and admits a Messages request (shared by generation and
/// token counting).
async fn read_request(
    auth: &MessagesAuthorized,
    request: &HttpRequest,
    payload: web::Payload,
    config: &Config,
    state: &AppState,
) -> Result<(MessagesRequest, Admitted, BodyReservation), ApiError> {
    check_rate_limit(auth.0.address, config, state).await?;
    let (raw, mut reservation) = read_body(request, payload, config, state).await?;
    reservation
        .grow(raw.len() * (BODY_COPIES_WHILE_CONVERTING - 1), config.max_body_bytes_in_flight)
        .map_err(|_| busy())?;
    // Long strings (images) stay in the body, not copied.
    let raw = raw.freeze();
    let parsed: MessagesRequest =
        parse_shared(&raw).map_err(|error| ApiError::bad_request(format!("Invalid request body: {error}")))?;
    drop(raw);
    let admitted = admit_model(request.path(), &parsed.model, config, state)?;
    Ok((parsed, admitted, reservation))
}

/// The Gemini request for `parsed` (remote media fetched first).
async fn convert(
    parsed: &MessagesRequest,
    admitted: &Admitted,
    reservation: &mut BodyReservation,
    config: &Config,
    state: &AppState,
    clients: &WorkerClients,
) -> Result<crate::gemini::types::GenerateContentRequest, ApiError> {
    let remote_media = fetch_media(&remote_media_urls(parsed), config, clients, reservation).await?;
    let signature_for_tool_use = |id: &str| state.signatures.lookup(id);
    let known_signature = |signature: &str| state.signatures.knows(signature);
    let options = ConvertOptions {
        model: &admitted.spec,
        enable_thinking: config.enable_thinking,
        show_thinking: config.show_thinking,
        safety_threshold: &config.safety_threshold,
        remote_media: &remote_media,
        signature_for_tool_use: &signature_for_tool_use,
        known_signature: &known_signature,
    };
    to_gemini(parsed, &options)
        .map_err(|error| ApiError::BadRequest { message: error.message, param: Some(error.param) })
}

/// `POST /v1/messages`.
pub async fn create_message(
    auth: MessagesAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClientCell>,
) -> Result<HttpResponse, AnthropicError> {
    let clients = clients.current(&state);
    let config = state.config();
    let (parsed, admitted, mut reservation) = read_request(&auth, &request, payload, &config, &state).await?;
    let gemini_request = convert(&parsed, &admitted, &mut reservation, &config, &state, &clients).await?;
    let meta = MessageMeta {
        id: message_id(&mut rand::rng()),
        model: parsed.model.clone(),
        show_thinking: shows_thinking(&parsed, config.show_thinking),
    };
    let stream = parsed.stream;
    // Converted, the parsed request (as large as the body) goes before the
    // upstream body is made: never all three copies at once.
    drop(parsed);
    let prefer = crate::delivery::preferred_key(&gemini_request, &state.signatures);
    let body = upstream_body(&gemini_request, &reservation);
    drop(gemini_request);
    reservation.shrink_to(body.len());
    let prepared = Rc::new(Prepared {
        admitted,
        body,
        meta,
        scope: auth.0.scope,
        key: Default::default(),
        prefer,
        _body: reservation,
    });
    let mode = mode_for(stream, &config);
    let note = RequestNote {
        door: Door::Messages,
        model: prepared.meta.model.clone(),
        key: None,
        mode,
        vertex: prepared.admitted.service != Service::Studio,
        alias: prepared.admitted.alias.clone(),
    };
    if let Some(cached) = state.swipe_cache.take_if_any(|| prepared.cache_key(), state.now_ms()) {
        let message = message_for(&cached, &prepared.meta, &state);
        let mut response = match stream {
            true => sse_headers().body(message_events(&message)),
            false => HttpResponse::Ok().json(message),
        };
        response.extensions_mut().insert(RequestNote { mode: Mode::Cache, ..note });
        return Ok(response);
    }
    let mut response = match mode {
        Mode::FakeStream => fake_stream(prepared, config, state, clients),
        Mode::Keepalive => keepalive_json(prepared, config, state, clients),
        Mode::Stream => {
            let remember_in = state.clone();
            let remember = Box::new(move |id: &str, signature: &str| remember_in.signatures.remember(id, signature));
            let format = AnthropicEvents::new(prepared.meta.clone(), remember);
            let timing = PumpTiming {
                keepalive_every: config.fake_streaming_interval,
                idle_timeout: config.stream_idle_timeout,
            };
            let relay = relay(&prepared, &config, &state, &clients);
            let (mut response, key) =
                open_and_pump(relay, prepared.body.clone(), format, sse_headers(), timing).await?;
            response.extensions_mut().insert(RequestNote { key: Some(key), ..note });
            return Ok(response);
        }
        _ => {
            let (message, key) = obtain_message(&prepared, &config, &state, &clients).await;
            let mut response = HttpResponse::Ok().json(message?);
            response.extensions_mut().insert(RequestNote { key, ..note });
            return Ok(response);
        }
    };
    response.extensions_mut().insert(note);
    Ok(response)
}

fn relay(prepared: &Prepared, config: &Config, state: &web::Data<AppState>, clients: &WorkerClients) -> Relay {
    let mut relay = generation_relay(&prepared.admitted, prepared.prefer, config, state, clients);
    // A refusal is an answer (`stop_reason: "refusal"`) once every retry
    // came back refused.
    relay.keep_empty_answer = true;
    relay
}

/// Converts an upstream answer for this client (its own ids; signed calls
/// remembered by their `tool_use` id).
fn message_for(answer: &Answer, meta: &MessageMeta, state: &AppState) -> Message {
    let mut remember = |id: &str, signature: &str| state.signatures.remember(id, signature);
    to_message(&answer.parsed, meta, &mut rand::rng(), &mut remember)
}

/// The non-streaming answer, shared with identical requests in flight
/// (unless `PUBLIC_MODE`). An empty answer that is not a refusal is an error.
async fn obtain_message(
    prepared: &Prepared,
    config: &Config,
    state: &web::Data<AppState>,
    clients: &WorkerClients,
) -> (Result<Message, AnthropicError>, Option<KeyId>) {
    let relay = relay(prepared, config, state, clients);
    let (outcome, key) =
        obtain_answer(prepared.cache_key(), !config.public_mode, relay, prepared.body.clone(), state).await;
    let message = outcome.and_then(|answer| {
        if is_empty_answer(&answer.parsed) && !is_refusal(&answer.parsed) {
            return Err(ApiError::UpstreamFailed {
                status: actix_web::http::StatusCode::BAD_GATEWAY,
                message: "Gemini returned an empty answer / 空响应".to_owned(),
            });
        }
        Ok(message_for(&answer, &prepared.meta, state))
    });
    (message.map_err(AnthropicError), key)
}

/// The access log line went out with the headers; a later answer gets a
/// line of its own with the key that served it.
fn log_delivery(model: &str, mode: Mode, key: Option<KeyId>, result: &Result<Message, AnthropicError>) {
    let key = key.map(|key| key.to_string()).unwrap_or_else(|| "-".into());
    match result {
        Ok(_) => log::info!("answer delivered model={} mode={mode} key={key}", LogSafe(model)),
        Err(error) => {
            log::info!("error delivered model={} mode={mode}: {}", LogSafe(model), LogSafe(&error.to_string()))
        }
    }
}

/// Headers now, `ping` events while the non-streaming calls run, then the
/// whole answer as Anthropic's events (or an `error` event).
fn fake_stream(
    prepared: Rc<Prepared>,
    config: Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> HttpResponse {
    let interval = config.fake_streaming_interval;
    let work = {
        let prepared = prepared.clone();
        async move { obtain_message(&prepared, &config, &state, &clients).await }
    };
    deliver_later(sse_headers(), work, Bytes::from_static(PING), interval, move |(result, key)| {
        log_delivery(&prepared.meta.model, Mode::FakeStream, key, &result);
        vec![match result {
            Ok(message) => Bytes::from(message_events(&message)),
            Err(AnthropicError(error)) => error_event(&error),
        }]
    })
}

/// Status 200 at once, `\n` while waiting, then the `Message` (or
/// Anthropic's error object).
fn keepalive_json(
    prepared: Rc<Prepared>,
    config: Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> HttpResponse {
    let interval = config.nonstream_keepalive_interval;
    let work = {
        let prepared = prepared.clone();
        async move { obtain_message(&prepared, &config, &state, &clients).await }
    };
    deliver_later(json_stream_headers(), work, Bytes::from_static(b"\n"), interval, move |(result, key)| {
        log_delivery(&prepared.meta.model, Mode::Keepalive, key, &result);
        let body = match result {
            Ok(message) => serde_json::to_vec(&message).unwrap_or_default(),
            Err(AnthropicError(error)) => crate::anthropic::error::error_body(&error).to_string().into_bytes(),
        };
        vec![Bytes::from(body)]
    })
}

/// `POST /v1/messages/count_tokens`: Gemini's `countTokens` on the
/// converted request, as `{"input_tokens": N}`.
pub async fn count_tokens(
    auth: MessagesAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClientCell>,
) -> Result<HttpResponse, AnthropicError> {
    let clients = clients.current(&state);
    let config = state.config();
    let (parsed, admitted, mut reservation) = read_request(&auth, &request, payload, &config, &state).await?;
    let gemini_request = convert(&parsed, &admitted, &mut reservation, &config, &state, &clients).await?;
    let model: Rc<str> = Rc::from(admitted.spec.base.as_str());
    let body = count_tokens_body(&model, gemini_request);
    let body = Rope::from(serde_json::to_vec(&body).map_err(|_| ApiError::Internal)?);
    reservation.shrink_to(body.len());
    let target = Target { version: ApiVersion::V1Beta, model: model.clone(), service: admitted.service };
    let relay = Relay::new(&config, &state, &clients.gemini, target, Action::CountTokens.pool_model(model));
    let (raw, key) = relay.call(Action::CountTokens, body).await?;
    drop(reservation);
    let counted: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| ApiError::UpstreamFailed {
        status: actix_web::http::StatusCode::BAD_GATEWAY,
        message: "Gemini's token count could not be read / 上游响应无法解析".to_owned(),
    })?;
    let input_tokens = counted["totalTokens"].as_u64().unwrap_or(0);
    let mut response = HttpResponse::Ok().json(serde_json::json!({ "input_tokens": input_tokens }));
    response.extensions_mut().insert(RequestNote {
        door: Door::Messages,
        model: parsed.model.clone(),
        key: Some(key),
        mode: Mode::Count,
        vertex: admitted.service != Service::Studio,
        alias: admitted.alias.clone(),
    });
    Ok(response)
}
