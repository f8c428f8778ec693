//! `POST /v1/chat/completions` (and `/chat/completions`,
//! `/aistudio/chat/completions`). The handler parses and converts the
//! request once, then branches on how the answer is delivered:
//! - non-stream: one JSON body with a real HTTP status;
//! - non-stream with keep-alive (§5.4, opt-in): `\n` while waiting, then the body;
//! - fake stream (§5.3, the default for `stream:true`): SSE headers at once,
//!   empty-delta chunks while non-streaming upstream calls run, then the answer;
//! - real stream (§5.2): upstream SSE converted event by event.
//!
//! After the first byte, errors become an SSE error event and the stream
//! still ends with `[DONE]`; it is never restarted from the start.
//!
//! Before any upstream call the swipe cache is asked (§8); non-stream
//! generations run as detached tasks shared by identical requests in flight
//! (unless `PUBLIC_MODE`), so a client that leaves never cancels a call
//! another client waits on, and an answer nobody collected goes to the
//! cache for the next swipe.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::auth::ClientAuthorized;
use crate::bodylimit::BodyReservation;
use crate::bodyshare::{parse_shared, Rope};
use crate::cache::CacheKey;
use crate::config::Config;
use crate::delivery::admission::{busy, check_rate_limit, read_body};
use crate::delivery::door::{
    admit_model, fetch_media, generation_relay, mode_for, upstream_body, Admitted, BODY_COPIES_WHILE_CONVERTING,
};
use crate::delivery::openai::{error_content_chunk, json_answer, sse_data, stream_error_end, OpenAiEvents, DONE};
use crate::delivery::relay::Relay;
use crate::delivery::shared::obtain_answer;
use crate::delivery::stream::{deliver_later, json_stream_headers, open_and_pump, sse_headers, PumpTiming};
use crate::delivery::{Door, Mode, RequestNote};
use crate::error::ApiError;
use crate::gemini::client::Service;
use crate::gemini::types::Answer;
use crate::keys::KeyId;
use crate::openai::cache_key::cache_key;
use crate::openai::request::{remote_media_urls, to_gemini, ConvertError, ConvertOptions};
use crate::openai::response::{completion_id, completion_to_chunks, keepalive_chunk, to_chat_completion, AnswerMeta};
use crate::openai::types::{ChatCompletion, ChatRequest};
use crate::secret::LogSafe;
use crate::state::{AppState, WorkerClients};

/// A request converted and ready for the upstream.
struct Prepared {
    /// The Gemini model and service that serve it.
    admitted: Admitted,
    body: Rope,
    meta: AnswerMeta,
    include_usage: bool,
    /// Swipe-cache and in-flight de-duplication key: the whole request,
    /// scoped to the client. A real stream only looks it up in the swipe
    /// cache (it shares nothing in flight and leaves nothing there), so it
    /// goes without while the cache is empty: hashing a long chat is a pass
    /// over all of it, for a lookup that cannot find anything.
    cache_key: Option<CacheKey>,
    /// The key that produced the request's thought signatures, if any.
    prefer: Option<KeyId>,
    /// The request body's share of `MAX_BODY_BYTES_IN_FLIGHT_MB`, held as
    /// long as the converted request is (retries and streams included).
    _body: BodyReservation,
}

pub async fn chat_completions(
    auth: ClientAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<crate::state::WorkerClientCell>,
) -> Result<HttpResponse, ApiError> {
    let clients = clients.current(&state);
    let config = state.config();
    check_rate_limit(auth.address, &config, &state).await?;
    let (raw, mut reservation) = read_body(&request, payload, &config, &state).await?;
    // Parsing and converting briefly hold more copies of the body.
    reservation
        .grow(raw.len() * (BODY_COPIES_WHILE_CONVERTING - 1), config.max_body_bytes_in_flight)
        .map_err(|_| busy())?;
    // Long strings (images, large texts) stay in the body, not copied.
    let raw = raw.freeze();
    let chat: ChatRequest =
        parse_shared(&raw).map_err(|error| ApiError::bad_request(format!("Invalid request body: {error}")))?;
    drop(raw);
    let admitted = admit_model(request.path(), &chat.model, &config, &state)?;
    let stream = chat.stream;
    // The parsed request goes in and is dropped once converted: it is as
    // large as the body, and is not kept while the upstream body is made.
    let prepared = prepare(chat, admitted, &auth, reservation, &config, &state, &clients).await?;
    let mode = mode_for(stream, &config);
    let vertex = prepared.admitted.service != Service::Studio;
    let alias = prepared.admitted.alias.clone();
    if let Some(cached) = prepared.cache_key.and_then(|key| state.swipe_cache.take(key, state.now_ms())) {
        let mut response = serve_cached(&cached, &prepared, stream, &state);
        let model = prepared.meta.model.clone();
        response.extensions_mut().insert(RequestNote {
            door: Door::Chat,
            model,
            key: None,
            mode: Mode::Cache,
            vertex,
            alias,
        });
        return Ok(response);
    }
    let note = RequestNote { door: Door::Chat, model: prepared.meta.model.clone(), key: None, mode, vertex, alias };
    let prepared = Rc::new(prepared);
    let mut response = match mode {
        Mode::FakeStream => fake_stream(prepared, config, state, clients),
        Mode::Stream => {
            let as_message = config.error_as_assistant_message;
            let format = OpenAiEvents::new(prepared.meta.clone(), prepared.include_usage, as_message, state.clone());
            let timing = PumpTiming {
                keepalive_every: config.fake_streaming_interval,
                idle_timeout: config.stream_idle_timeout,
            };
            let relay = relay(&prepared, &config, &state, &clients);
            match open_and_pump(relay, prepared.body.clone(), format, sse_headers(), timing).await {
                Ok((mut response, key)) => {
                    response.extensions_mut().insert(RequestNote { key: Some(key), ..note.clone() });
                    return Ok(response);
                }
                Err(error) if as_message => {
                    let mut body = error_content_chunk(&error, &prepared.meta).to_vec();
                    body.extend_from_slice(DONE);
                    sse_headers().body(body)
                }
                Err(error) => return Err(error),
            }
        }
        Mode::Keepalive => keepalive_json(prepared, config, state, clients),
        _ => {
            let (completion, key) = obtain_completion(&prepared, &config, &state, &clients).await;
            let mut response = match completion {
                Ok(completion) => json_answer(&completion),
                Err(error) if config.error_as_assistant_message => {
                    HttpResponse::Ok().json(error_as_completion(&error, &prepared.meta))
                }
                Err(error) => return Err(error),
            };
            response.extensions_mut().insert(RequestNote { key, ..note.clone() });
            return Ok(response);
        }
    };
    response.extensions_mut().insert(note);
    Ok(response)
}

/// A cached answer (a swipe), served in the mode the client asked for,
/// with a fresh id.
fn serve_cached(answer: &Answer, prepared: &Prepared, stream: bool, state: &AppState) -> HttpResponse {
    let completion = completion_for(answer, &prepared.meta, state);
    if !stream {
        return json_answer(&completion);
    }
    let mut body = Vec::new();
    for chunk in completion_to_chunks(&completion, prepared.include_usage) {
        body.extend_from_slice(&sse_data(&chunk));
    }
    body.extend_from_slice(DONE);
    sse_headers().body(body)
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    chat: ChatRequest,
    admitted: Admitted,
    client: &ClientAuthorized,
    mut body_reservation: BodyReservation,
    config: &Config,
    state: &AppState,
    clients: &WorkerClients,
) -> Result<Prepared, ApiError> {
    if chat.messages.is_empty() {
        return Err(ApiError::BadRequest {
            message: "messages: must not be empty".into(),
            param: Some("messages".into()),
        });
    }
    let remote_media = fetch_media(&remote_media_urls(&chat), config, clients, &mut body_reservation).await?;
    let signature_lookup = |call_id: &str| state.signatures.lookup(call_id);
    let known_signature = |signature: &str| state.signatures.knows(signature);
    let options = ConvertOptions {
        model: &admitted.spec,
        random_string_length: config.random_string.then_some(config.random_string_length),
        search_prompt: (admitted.spec.search && !config.search_prompt.is_empty())
            .then_some(config.search_prompt.as_str()),
        enable_thinking: config.enable_thinking,
        show_thinking: config.show_thinking,
        safety_threshold: &config.safety_threshold,
        remote_media: &remote_media,
        thought_signature_for: &signature_lookup,
        known_signature: &known_signature,
    };
    let mut rng = rand::rng();
    let gemini_request = to_gemini(&chat, &options, &mut rng).map_err(|error| match error {
        ConvertError::BadRequest { message, param } => ApiError::BadRequest { message, param },
    })?;
    let include_usage = chat.stream_options.is_some_and(|options| options.include_usage);
    let looks_up_only = mode_for(chat.stream, config) == Mode::Stream;
    let cache_key =
        (!looks_up_only || !state.swipe_cache.is_empty()).then(|| cache_key(&chat, client.scope.as_bytes()));
    let model = chat.model;
    drop(remote_media);
    // Only the converted request is needed to make the upstream body: the
    // parsed one goes (the parsed request, the converted one and the body
    // are never all alive at once).
    drop(chat.messages);
    let prefer = crate::delivery::preferred_key(&gemini_request, &state.signatures);
    let body = upstream_body(&gemini_request, &body_reservation);
    drop(gemini_request);
    // From here on the request holds the upstream body only.
    body_reservation.shrink_to(body.len());
    let meta = AnswerMeta {
        id: completion_id(&mut rng),
        created: (state.now_ms() / 1000) as i64,
        model,
        show_thinking: config.show_thinking,
    };
    Ok(Prepared { admitted, body, meta, include_usage, cache_key, prefer, _body: body_reservation })
}

fn relay(prepared: &Prepared, config: &Config, state: &web::Data<AppState>, clients: &WorkerClients) -> Relay {
    generation_relay(&prepared.admitted, prepared.prefer, config, state, clients)
}

/// Converts an upstream answer for this client (its own id, model name).
fn completion_for(answer: &Answer, meta: &AnswerMeta, state: &AppState) -> ChatCompletion {
    let mut rng = rand::rng();
    let mut remember = |id: &str, signature: &str| state.signatures.remember(id, signature);
    to_chat_completion(&answer.parsed, meta, &mut rng, &mut remember)
}

/// The non-streaming answer for `prepared`, shared with identical requests
/// in flight (unless `PUBLIC_MODE`).
async fn obtain_completion(
    prepared: &Prepared,
    config: &Config,
    state: &web::Data<AppState>,
    clients: &WorkerClients,
) -> (Result<ChatCompletion, ApiError>, Option<KeyId>) {
    let Some(cache_key) = prepared.cache_key else {
        // Only a real stream goes without (see `Prepared`); it never comes here.
        return (Err(ApiError::Internal), None);
    };
    let relay = relay(prepared, config, state, clients);
    let (outcome, key) = obtain_answer(cache_key, !config.public_mode, relay, prepared.body.clone(), state).await;
    (outcome.map(|answer| completion_for(&answer, &prepared.meta, state)), key)
}

/// An error delivered as an assistant message (opt-in, for clients that
/// only display message content).
fn error_as_completion(error: &ApiError, meta: &AnswerMeta) -> serde_json::Value {
    serde_json::json!({
        "id": meta.id, "object": "chat.completion", "created": meta.created, "model": meta.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("[hajimi] {error}")}, "finish_reason": "stop"}],
    })
}

/// The access log line is written when the headers go out; answers that
/// come later (fake stream, keep-alive) get a line of their own with the
/// key that served them.
fn log_delivery(model: &str, mode: Mode, key: Option<KeyId>, result: &Result<ChatCompletion, ApiError>) {
    let key = key.map(|key| key.to_string()).unwrap_or_else(|| "-".into());
    match result {
        Ok(_) => log::info!("answer delivered model={} mode={mode} key={key}", LogSafe(model)),
        Err(error) => {
            log::info!("error delivered model={} mode={mode}: {}", LogSafe(model), LogSafe(&error.to_string()))
        }
    }
}

/// §5.3: headers now, empty-delta chunks every interval while the
/// non-streaming calls run, then the whole answer as chunks.
fn fake_stream(
    prepared: Rc<Prepared>,
    config: Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> HttpResponse {
    let keepalive = sse_data(&keepalive_chunk(&prepared.meta.id, prepared.meta.created, &prepared.meta.model));
    let interval = config.fake_streaming_interval;
    let work = {
        let prepared = prepared.clone();
        let config = config.clone();
        async move { obtain_completion(&prepared, &config, &state, &clients).await }
    };
    deliver_later(sse_headers(), work, keepalive, interval, move |(result, key)| {
        log_delivery(&prepared.meta.model, Mode::FakeStream, key, &result);
        match result {
            Ok(completion) => {
                let mut pieces: Vec<Bytes> =
                    completion_to_chunks(&completion, prepared.include_usage).iter().map(sse_data).collect();
                pieces.push(Bytes::from_static(DONE));
                pieces
            }
            Err(error) => {
                log::warn!(
                    "fake stream failed model={}: {}",
                    LogSafe(&prepared.meta.model),
                    LogSafe(&error.to_string())
                );
                vec![stream_error_end(&error, &prepared.meta, config.error_as_assistant_message)]
            }
        }
    })
}

/// §5.4: status 200 at once, `\n` every interval, then the JSON body (an
/// OpenAI error object on failure).
fn keepalive_json(
    prepared: Rc<Prepared>,
    config: Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> HttpResponse {
    let interval = config.nonstream_keepalive_interval;
    let work = {
        let prepared = prepared.clone();
        let config = config.clone();
        async move { obtain_completion(&prepared, &config, &state, &clients).await }
    };
    deliver_later(json_stream_headers(), work, Bytes::from_static(b"\n"), interval, move |(result, key)| {
        log_delivery(&prepared.meta.model, Mode::Keepalive, key, &result);
        let body = match result {
            Ok(completion) => serde_json::to_vec(&completion).unwrap_or_default(),
            Err(error) if config.error_as_assistant_message => {
                serde_json::to_vec(&error_as_completion(&error, &prepared.meta)).unwrap_or_default()
            }
            Err(error) => error.body().to_string().into_bytes(),
        };
        vec![Bytes::from(body)]
    })
}
