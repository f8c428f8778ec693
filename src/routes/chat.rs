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

use std::time::Duration;

use actix_web::http::header;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::ClientAuthorized;
use crate::bodylimit::BodyReservation;
use crate::cache::{cache_key, CacheKey};
use crate::config::Config;
use crate::error::ApiError;
use crate::gemini::client::OpenStream;
use crate::gemini::error::UpstreamFailure;
use crate::gemini::model::ModelSpec;
use crate::gemini::sse::SseDecoder;
use crate::gemini::types::GenerateContentResponse;
use crate::keys::KeyId;
use crate::media::{self, FetchLimits};
use crate::models::is_model_allowed;
use crate::openai::request::{remote_media_urls, to_gemini, ConvertError, ConvertOptions};
use crate::openai::response::{completion_id, completion_to_chunks, keepalive_chunk, to_chat_completion, AnswerMeta};
use crate::openai::stream::{StreamConverter, StreamEnd};
use crate::openai::types::{ChatCompletion, ChatRequest};
use crate::ratelimit::{Limited, RateLimits};
use crate::relay::{Attempts, Hedge, Relay, RetryBudget};
use crate::secret::LogSafe;
use crate::state::{AppState, SharedOutcome, WorkerClients};

const DONE: &[u8] = b"data: [DONE]\n\n";
const SSE_KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// What the access log records about a chat request besides the path.
#[derive(Debug, Clone)]
pub struct RequestNote {
    pub model: String,
    pub key: Option<KeyId>,
    pub mode: &'static str,
}

/// A request converted and ready for the upstream.
struct Prepared {
    spec: ModelSpec,
    body: Bytes,
    meta: AnswerMeta,
    include_usage: bool,
    /// Swipe-cache and in-flight de-duplication key: the whole request,
    /// scoped to the client.
    cache_key: CacheKey,
    /// The request body's share of `MAX_BODY_BYTES_IN_FLIGHT_MB`, held as
    /// long as the converted request is (retries and streams included).
    _body: BodyReservation,
}

pub async fn chat_completions(
    auth: ClientAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<crate::startup::WorkerClientCell>,
) -> Result<HttpResponse, ApiError> {
    let clients = clients.current(&state);
    let config = state.config();
    check_rate_limit(auth.address, &config, &state)?;
    let (raw, mut reservation) = read_body(&request, payload, &config, &state).await?;
    // Parsing and converting briefly hold more copies of the body.
    reservation
        .grow(raw.len() * (BODY_COPIES_WHILE_CONVERTING - 1), config.max_body_bytes_in_flight)
        .map_err(|_| ApiError::Busy { retry_after: BUSY_RETRY_AFTER })?;
    let chat: ChatRequest = serde_json::from_slice(&raw)
        .map_err(|error| ApiError::bad_request(format!("Invalid request body: {error}")))?;
    drop(raw);
    let prepared = prepare(&chat, &auth, reservation, &config, &state, &clients).await?;
    // The converted request is all that is needed from here on: the parsed
    // one (as large as the body) is not kept through the generation.
    let stream = chat.stream;
    drop(chat);
    let mode = match (stream, config.fake_streaming, config.nonstream_keepalive_enabled) {
        (true, true, _) => "fake_stream",
        (true, false, _) => "stream",
        (false, _, true) => "keepalive",
        (false, _, false) => "json",
    };
    if let Some(cached) = state.swipe_cache.take(prepared.cache_key, state.now_ms()) {
        let mut response = serve_cached(cached, &prepared, stream);
        response.extensions_mut().insert(RequestNote { model: prepared.meta.model.clone(), key: None, mode: "cache" });
        return Ok(response);
    }
    let note = RequestNote { model: prepared.meta.model.clone(), key: None, mode };
    let prepared = Rc::new(prepared);
    let mut response = match mode {
        "fake_stream" => fake_stream(prepared, config, state, clients),
        "stream" => {
            let as_message = config.error_as_assistant_message;
            match real_stream(prepared.clone(), config, state, clients).await {
                Ok((mut response, key)) => {
                    response.extensions_mut().insert(RequestNote { key: Some(key), ..note.clone() });
                    return Ok(response);
                }
                Err(error) if as_message => error_as_stream(&error, &prepared.meta),
                Err(error) => return Err(error),
            }
        }
        "keepalive" => keepalive_json(prepared, config, state, clients),
        _ => {
            let (completion, key) = obtain_completion(&prepared, &config, &state, &clients).await;
            let mut response = match completion {
                Ok(completion) => HttpResponse::Ok().json(completion),
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

/// Per-IP limits (§2); rejected requests are not counted.
fn check_rate_limit(client: IpAddr, config: &Config, state: &AppState) -> Result<(), ApiError> {
    let limits = RateLimits { per_minute: config.max_requests_per_minute, per_day: config.max_requests_per_day_per_ip };
    if limits.per_minute == 0 && limits.per_day == 0 {
        return Ok(());
    }
    state.rate_limiter.check(client, limits, state.now_ms()).map_err(|rejection| {
        let message = match rejection.limit {
            Limited::PerMinute => "Too many requests from this address this minute / 请求过于频繁，请稍后再试",
            Limited::PerDay => "Daily request limit for this address reached / 今日请求次数已达上限",
        };
        ApiError::RateLimited {
            message: message.to_owned(),
            retry_after: Duration::from_millis(rejection.retry_after_ms),
        }
    })
}

/// A cached answer (a swipe), served in the mode the client asked for,
/// with a fresh id.
fn serve_cached(mut completion: ChatCompletion, prepared: &Prepared, stream: bool) -> HttpResponse {
    completion.id = prepared.meta.id.clone();
    completion.created = prepared.meta.created;
    completion.model = prepared.meta.model.clone();
    if !stream {
        return HttpResponse::Ok().json(completion);
    }
    let mut body = Vec::new();
    for chunk in completion_to_chunks(&completion, prepared.include_usage) {
        body.extend_from_slice(&sse_data(&chunk));
    }
    body.extend_from_slice(DONE);
    sse_headers().body(body)
}

/// How long a client refused for lack of body budget should wait.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(2);
/// Copies of the body alive at once while a request is converted: the
/// parsed request, the converted one and the serialized upstream body.
const BODY_COPIES_WHILE_CONVERTING: usize = 3;

/// Reads the body: at most `MAX_REQUEST_BODY_MB` (413; a larger
/// `Content-Length` is refused before reading), within
/// `REQUEST_BODY_TIMEOUT` (408), and only while all bodies held fit in
/// `MAX_BODY_BYTES_IN_FLIGHT_MB` (503 with Retry-After).
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    config: &Config,
    state: &AppState,
) -> Result<(web::BytesMut, BodyReservation), ApiError> {
    let limit = config.max_request_body_bytes;
    let too_large = || ApiError::PayloadTooLarge { limit_mb: limit / (1024 * 1024) };
    let busy = |_| ApiError::Busy { retry_after: BUSY_RETRY_AFTER };
    let mut reservation = state.body_budget.reserve();
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(announced) = announced {
        if announced > limit {
            return Err(too_large());
        }
        reservation.grow(announced, config.max_body_bytes_in_flight).map_err(busy)?;
    }
    let read = async {
        let mut body = web::BytesMut::with_capacity(announced.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("Could not read the request body"))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            let beyond_reserved = (body.len() + chunk.len()).saturating_sub(reservation.bytes());
            if beyond_reserved > 0 {
                reservation.grow(beyond_reserved, config.max_body_bytes_in_flight).map_err(busy)?;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(config.request_body_timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout { limit_seconds: config.request_body_timeout.as_secs() })??;
    Ok((body, reservation))
}

/// Upstream model names are path segments: only these characters.
fn is_valid_model_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

async fn prepare(
    chat: &ChatRequest,
    client: &ClientAuthorized,
    mut body_reservation: BodyReservation,
    config: &Config,
    state: &AppState,
    clients: &WorkerClients,
) -> Result<Prepared, ApiError> {
    let spec = ModelSpec::parse(&chat.model, config.search_mode);
    if !is_valid_model_name(&spec.base) {
        return Err(ApiError::BadRequest {
            message: format!("model: invalid model name {:?}", chat.model),
            param: Some("model".into()),
        });
    }
    if !is_model_allowed(&chat.model, Some(&spec.base), config) {
        return Err(ApiError::ModelNotFound(format!(
            "The model {} is not available on this server / 模型不可用",
            chat.model
        )));
    }
    if chat.messages.is_empty() {
        return Err(ApiError::BadRequest {
            message: "messages: must not be empty".into(),
            param: Some("messages".into()),
        });
    }
    let urls = remote_media_urls(chat);
    let remote_media = if urls.is_empty() {
        Default::default()
    } else {
        let limits = FetchLimits {
            max_bytes: config.max_image_bytes,
            timeout: config.image_fetch_timeout,
            allow_private: config.allow_private_image_urls,
        };
        let fetched = media::fetch_all(&clients.media, &urls, &limits, config.max_request_body_bytes)
            .await
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        // Fetched images become part of the upstream body: they count too.
        let fetched_bytes: usize = fetched.values().map(|blob| blob.data.len()).sum();
        body_reservation
            .grow(fetched_bytes * BODY_COPIES_WHILE_CONVERTING, config.max_body_bytes_in_flight)
            .map_err(|_| ApiError::Busy { retry_after: BUSY_RETRY_AFTER })?;
        fetched
    };
    let signature_lookup = |call_id: &str| state.signatures.lookup(call_id);
    let options = ConvertOptions {
        model: &spec,
        random_string_length: config.random_string.then_some(config.random_string_length),
        search_prompt: (spec.search && !config.search_prompt.is_empty()).then_some(config.search_prompt.as_str()),
        enable_thinking: config.enable_thinking,
        show_thinking: config.show_thinking,
        safety_threshold: &config.safety_threshold,
        remote_media: &remote_media,
        thought_signature_for: &signature_lookup,
    };
    let mut rng = rand::rng();
    let gemini_request = to_gemini(chat, &options, &mut rng).map_err(|error| match error {
        ConvertError::BadRequest { message, param } => ApiError::BadRequest { message, param },
    })?;
    let body = Bytes::from(serde_json::to_vec(&gemini_request).map_err(|_| ApiError::Internal)?);
    drop(gemini_request);
    // From here on the request holds the upstream body only.
    body_reservation.shrink_to(body.len());
    let meta = AnswerMeta {
        id: completion_id(&mut rng),
        created: (state.now_ms() / 1000) as i64,
        model: chat.model.clone(),
        show_thinking: config.show_thinking,
    };
    let include_usage = chat.stream_options.is_some_and(|options| options.include_usage);
    let cache_key = cache_key(chat, client.scope.as_bytes());
    Ok(Prepared { spec, body, meta, include_usage, cache_key, _body: body_reservation })
}

fn relay(prepared: &Prepared, config: &Config, state: &web::Data<AppState>, clients: &WorkerClients) -> Relay {
    Relay {
        state: state.clone(),
        client: clients.gemini.clone(),
        budget: RetryBudget { max_attempts: config.max_retry_num, max_empty_answers: config.max_empty_responses },
        hedge: Hedge {
            initial: config.concurrent_requests,
            increase: config.increase_concurrent_on_failure,
            max: config.max_concurrent_requests,
        },
        max_wait_for_key: config.max_wait_for_key,
        model: Rc::from(prepared.spec.base.as_str()),
    }
}

/// Converts an upstream answer for this client (its own id, model name).
fn completion_for(answer: &GenerateContentResponse, meta: &AnswerMeta, state: &AppState) -> ChatCompletion {
    let mut rng = rand::rng();
    let mut remember = |id: &str, signature: &str| state.signatures.remember(id, signature);
    to_chat_completion(answer, meta, &mut rng, &mut remember)
}

/// The non-streaming answer for `prepared`: joins an identical generation
/// already in flight, or starts one as a detached task.
async fn obtain_completion(
    prepared: &Prepared,
    config: &Config,
    state: &web::Data<AppState>,
    clients: &WorkerClients,
) -> (Result<ChatCompletion, ApiError>, Option<KeyId>) {
    let mut receiver = {
        let mut inflight = state.inflight.lock();
        match inflight.get(&prepared.cache_key) {
            Some(receiver) if !config.public_mode => receiver.clone(),
            _ => {
                let (sender, receiver) = tokio::sync::watch::channel(None);
                if !config.public_mode {
                    inflight.insert(prepared.cache_key, receiver.clone());
                }
                spawn_generation(prepared, config, state, clients, sender);
                receiver
            }
        }
    };
    let outcome = match receiver.wait_for(Option::is_some).await {
        Ok(value) => value.clone().unwrap_or(Err(ApiError::Internal)),
        Err(_) => Err(ApiError::Internal),
    };
    match outcome {
        Ok((answer, key)) => (Ok(completion_for(&answer, &prepared.meta, state)), Some(key)),
        Err(error) => (Err(error), None),
    }
}

/// Runs the retry loop in its own task, so no client leaving cancels it.
/// Hedged extras and answers nobody collected go to the swipe cache.
fn spawn_generation(
    prepared: &Prepared,
    config: &Config,
    state: &web::Data<AppState>,
    clients: &WorkerClients,
    sender: tokio::sync::watch::Sender<Option<SharedOutcome>>,
) {
    let relay = relay(prepared, config, state, clients);
    let body = prepared.body.clone();
    let key = prepared.cache_key;
    let meta = prepared.meta.clone();
    let state = state.clone();
    let sink_state = state.clone();
    let sink_meta = meta.clone();
    let extras: crate::relay::ExtraAnswerSink = Rc::new(move |answer: GenerateContentResponse| {
        let completion = completion_for(&answer, &sink_meta, &sink_state);
        sink_state.swipe_cache.put(key, completion, sink_state.now_ms());
    });
    let mut guard = GenerationGuard { state: state.clone(), key: prepared.cache_key, sender: Some(sender) };
    actix_web::rt::spawn(async move {
        let result = relay.generate(body, Some(extras)).await;
        let outcome: SharedOutcome = result.map(|(answer, key_id)| (Arc::new(answer), key_id));
        guard.forget_inflight();
        let Some(sender) = guard.sender.take() else { return };
        if sender.receiver_count() == 0 {
            if let Ok((answer, _)) = &outcome {
                log::info!("answer finished after its client left; kept for the next swipe");
                state.swipe_cache.put(key, completion_for(answer, &meta, &state), state.now_ms());
            }
        }
        sender.send_replace(Some(outcome));
    });
}

/// Owned by a generation task: however the task ends (even by a panic),
/// the in-flight entry goes and every waiter gets an outcome.
struct GenerationGuard {
    state: web::Data<AppState>,
    key: CacheKey,
    sender: Option<tokio::sync::watch::Sender<Option<SharedOutcome>>>,
}

impl GenerationGuard {
    fn forget_inflight(&self) {
        let Some(sender) = &self.sender else { return };
        let mut inflight = self.state.inflight.lock();
        if inflight.get(&self.key).is_some_and(|receiver| receiver.same_channel(&sender.subscribe())) {
            inflight.remove(&self.key);
        }
    }
}

impl Drop for GenerationGuard {
    fn drop(&mut self) {
        self.forget_inflight();
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(Err(ApiError::Internal)));
        }
    }
}

/// An error delivered as an assistant message (opt-in, for clients that
/// only display message content).
fn error_as_completion(error: &ApiError, meta: &AnswerMeta) -> serde_json::Value {
    serde_json::json!({
        "id": meta.id, "object": "chat.completion", "created": meta.created, "model": meta.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("[hajimi] {error}")}, "finish_reason": "stop"}],
    })
}

fn sse_data(value: &impl Serialize) -> Bytes {
    let mut line = Vec::new();
    append_sse(&mut line, value);
    Bytes::from(line)
}

fn sse_headers() -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((header::CONTENT_TYPE, "text/event-stream; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"));
    builder
}

fn sse_response(receiver: mpsc::Receiver<Bytes>) -> HttpResponse {
    sse_headers().streaming(channel_body(receiver))
}

fn channel_body(
    receiver: mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> + 'static {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (Ok(bytes), receiver))
    })
}

/// A whole SSE answer carrying an error as assistant content (opt-in).
fn error_as_stream(error: &ApiError, meta: &AnswerMeta) -> HttpResponse {
    let mut body = error_content_chunk(error, meta).to_vec();
    body.extend_from_slice(DONE);
    sse_headers().body(body)
}

fn error_content_chunk(error: &ApiError, meta: &AnswerMeta) -> Bytes {
    sse_data(&serde_json::json!({
        "id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": meta.model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": format!("[hajimi] {error}")}, "finish_reason": "stop"}],
    }))
}

/// The error event (or, opted in, an assistant message) then `[DONE]`.
async fn send_stream_error(sender: &mpsc::Sender<Bytes>, error: &ApiError, meta: &AnswerMeta, as_message: bool) {
    let event = if as_message { error_content_chunk(error, meta) } else { Bytes::from(error.to_sse_event()) };
    let _ = sender.send(event).await;
    let _ = sender.send(Bytes::from_static(DONE)).await;
}

/// The access log line is written when the headers go out; answers that
/// come later (fake stream, keep-alive) get a line of their own with the
/// key that served them.
fn log_delivery(model: &str, mode: &str, key: Option<KeyId>, result: &Result<ChatCompletion, ApiError>) {
    let key = key.map(|key| key.to_string()).unwrap_or_else(|| "-".into());
    match result {
        Ok(_) => log::info!("answer delivered model={model} mode={mode} key={key}"),
        Err(error) => log::info!("error delivered model={model} mode={mode}: {}", LogSafe(&error.to_string())),
    }
}

/// Awaits `work`, sending `keepalive` every `interval` meanwhile. `None`
/// when the client has left.
async fn with_keepalive<T>(
    work: impl std::future::Future<Output = T>,
    sender: &mpsc::Sender<Bytes>,
    keepalive: Bytes,
    interval: Duration,
) -> Option<T> {
    tokio::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            outcome = &mut work => return Some(outcome),
            _ = ticker.tick() => sender.send(keepalive.clone()).await.ok()?,
            _ = sender.closed() => return None,
        }
    }
}

/// §5.3: headers now, empty-delta chunks every interval while the
/// non-streaming calls run, then the whole answer as chunks.
fn fake_stream(
    prepared: Rc<Prepared>,
    config: std::sync::Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> HttpResponse {
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(async move {
        let keepalive = sse_data(&keepalive_chunk(&prepared.meta.id, prepared.meta.created, &prepared.meta.model));
        let work = obtain_completion(&prepared, &config, &state, &clients);
        let Some((result, key)) = with_keepalive(work, &sender, keepalive, config.fake_streaming_interval).await else {
            return; // The client left; the detached generation goes on into the cache.
        };
        log_delivery(&prepared.meta.model, "fake_stream", key, &result);
        match result {
            Ok(completion) => {
                for chunk in completion_to_chunks(&completion, prepared.include_usage) {
                    if sender.send(sse_data(&chunk)).await.is_err() {
                        return;
                    }
                }
                let _ = sender.send(Bytes::from_static(DONE)).await;
            }
            Err(error) => {
                log::warn!("fake stream failed model={}: {}", prepared.meta.model, LogSafe(&error.to_string()));
                send_stream_error(&sender, &error, &prepared.meta, config.error_as_assistant_message).await;
            }
        }
    });
    sse_response(receiver)
}

/// §5.4: status 200 at once, `\n` every interval, then the JSON body (an
/// OpenAI error object on failure).
fn keepalive_json(
    prepared: Rc<Prepared>,
    config: std::sync::Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> HttpResponse {
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(async move {
        let work = obtain_completion(&prepared, &config, &state, &clients);
        let newline = Bytes::from_static(b"\n");
        let Some((result, key)) = with_keepalive(work, &sender, newline, config.nonstream_keepalive_interval).await
        else {
            return;
        };
        log_delivery(&prepared.meta.model, "keepalive", key, &result);
        let body = match result {
            Ok(completion) => serde_json::to_vec(&completion).unwrap_or_default(),
            Err(error) if config.error_as_assistant_message => {
                serde_json::to_vec(&error_as_completion(&error, &prepared.meta)).unwrap_or_default()
            }
            Err(error) => error.body().to_string().into_bytes(),
        };
        let _ = sender.send(Bytes::from(body)).await;
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(channel_body(receiver))
}

/// §5.2: open the upstream stream (retrying other keys while nothing has
/// been sent, so failures keep their real HTTP status), then convert and
/// forward each event as it arrives.
async fn real_stream(
    prepared: Rc<Prepared>,
    config: std::sync::Arc<Config>,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClients>,
) -> Result<(HttpResponse, KeyId), ApiError> {
    let mut attempts = Attempts::default();
    let relay = relay(&prepared, &config, &state, &clients);
    let (upstream, key) = relay.open_stream(&prepared.body, &mut attempts).await?;
    let (sender, receiver) = mpsc::channel::<Bytes>(32);
    actix_web::rt::spawn(async move {
        pump_stream(&prepared, &config, &state, relay, upstream, key, attempts, &sender).await;
    });
    Ok((sse_response(receiver), key))
}

/// How one upstream stream ended, when it did not end well.
enum StreamProblem {
    Failed(UpstreamFailure),
    Empty,
    ClientGone,
}

#[allow(clippy::too_many_arguments)]
async fn pump_stream(
    prepared: &Prepared,
    config: &Config,
    state: &AppState,
    relay: Relay,
    mut upstream: OpenStream,
    mut key: KeyId,
    mut attempts: Attempts,
    sender: &mpsc::Sender<Bytes>,
) {
    loop {
        let mut converter = StreamConverter::new(prepared.meta.clone());
        let problem = match forward_events(prepared, config, state, &mut upstream, &mut converter, sender).await {
            Ok(()) => {
                let usage = converter.usage().unwrap_or_default();
                relay.stream_succeeded(key, usage.prompt_tokens, usage.completion_tokens);
                let _ = sender.send(Bytes::from_static(DONE)).await;
                return;
            }
            Err(StreamProblem::ClientGone) => {
                log::info!("client left during the stream model={} key={key}", prepared.meta.model);
                if converter.has_output() {
                    // The quota was used all the same.
                    let usage = converter.usage().unwrap_or_default();
                    relay.stream_succeeded(key, usage.prompt_tokens, usage.completion_tokens);
                }
                return;
            }
            Err(problem) => problem,
        };
        if converter.has_output() {
            // Part of the answer is out: never restart it, never end silently.
            let reason = match &problem {
                StreamProblem::Failed(failure) => failure.message.clone(),
                _ => "the stream ended early".to_owned(),
            };
            log::warn!("stream truncated model={} key={key}: {}", prepared.meta.model, LogSafe(&reason));
            if let StreamProblem::Failed(failure) = problem {
                // The key still answers for what happened (a 429 mid-stream cools it).
                let _ = relay.after_stream_failure(&mut attempts, key, failure);
            }
            let error = ApiError::UpstreamFailed {
                status: actix_web::http::StatusCode::BAD_GATEWAY,
                message: "The Gemini stream was cut off before the answer finished / 上游流式响应中断".to_owned(),
            };
            send_stream_error(sender, &error, &prepared.meta, false).await;
            return;
        }
        // Nothing sent yet but keep-alives: another key may do better.
        let retry = match problem {
            StreamProblem::Empty => relay.after_empty(&mut attempts, key),
            StreamProblem::Failed(failure) => relay.after_stream_failure(&mut attempts, key, failure),
            StreamProblem::ClientGone => return,
        };
        let reopened = match retry {
            Ok(()) => relay.open_stream(&prepared.body, &mut attempts).await,
            Err(error) => Err(error),
        };
        match reopened {
            Ok((next_upstream, next_key)) => {
                upstream = next_upstream;
                key = next_key;
            }
            Err(error) => {
                send_stream_error(sender, &error, &prepared.meta, config.error_as_assistant_message).await;
                return;
            }
        }
    }
}

/// Reads one upstream stream to its end, forwarding converted chunks and
/// sending `: keep-alive` while the upstream is silent.
async fn forward_events(
    prepared: &Prepared,
    config: &Config,
    state: &AppState,
    upstream: &mut OpenStream,
    converter: &mut StreamConverter,
    sender: &mpsc::Sender<Bytes>,
) -> Result<(), StreamProblem> {
    let mut decoder = SseDecoder::default();
    let mut silent_for = Duration::ZERO;
    let interval = config.fake_streaming_interval;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(interval, upstream.next()) => next,
            _ = sender.closed() => return Err(StreamProblem::ClientGone),
        };
        let payloads = match next {
            Err(_elapsed) => {
                silent_for += interval;
                if silent_for >= config.stream_idle_timeout {
                    return Err(StreamProblem::Failed(UpstreamFailure::network("the upstream stream went silent")));
                }
                if sender.send(Bytes::from_static(SSE_KEEPALIVE)).await.is_err() {
                    return Err(StreamProblem::ClientGone);
                }
                continue;
            }
            Ok(Some(Ok(bytes))) => {
                silent_for = Duration::ZERO;
                let payloads = decoder.feed(&bytes);
                if decoder.is_oversized() {
                    return Err(StreamProblem::Failed(UpstreamFailure::network("oversized upstream stream event")));
                }
                payloads
            }
            Ok(Some(Err(error))) => {
                return Err(StreamProblem::Failed(UpstreamFailure::network(&format!("stream read failed: {error}"))))
            }
            Ok(None) => {
                let mut out = Vec::new();
                let converted = match decoder.finish() {
                    Some(last) => convert_payload(&last, state, converter, &mut out),
                    None => Ok(()),
                };
                let finished = converted.and_then(|()| match converter.finish(prepared.include_usage) {
                    Ok(chunks) => {
                        chunks.iter().for_each(|chunk| append_sse(&mut out, chunk));
                        Ok(())
                    }
                    Err(StreamEnd::Empty) => Err(StreamProblem::Empty),
                    Err(StreamEnd::Truncated) => Err(StreamProblem::Failed(UpstreamFailure::network(
                        "the upstream stream ended without a finish reason",
                    ))),
                });
                send_batch(sender, out).await?;
                return finished;
            }
        };
        // Everything one upstream read produced goes out as one write.
        let mut out = Vec::new();
        let converted = payloads.iter().try_for_each(|payload| convert_payload(payload, state, converter, &mut out));
        send_batch(sender, out).await?;
        converted?;
    }
}

async fn send_batch(sender: &mpsc::Sender<Bytes>, out: Vec<u8>) -> Result<(), StreamProblem> {
    if out.is_empty() {
        return Ok(());
    }
    sender.send(Bytes::from(out)).await.map_err(|_| StreamProblem::ClientGone)
}

fn append_sse(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    // Serializing our own types cannot fail.
    serde_json::to_writer(&mut *out, value).ok();
    out.extend_from_slice(b"\n\n");
}

/// Converts one upstream event, appending the OpenAI chunks to `out`.
fn convert_payload(
    payload: &str,
    state: &AppState,
    converter: &mut StreamConverter,
    out: &mut Vec<u8>,
) -> Result<(), StreamProblem> {
    let event: GenerateContentResponse = serde_json::from_str(payload)
        .map_err(|_| StreamProblem::Failed(UpstreamFailure::network("unparseable upstream stream event")))?;
    let looks_empty = event.candidates.is_empty() && event.prompt_feedback.is_none();
    if looks_empty && payload.contains("\"error\"") {
        // An error object sent inside the stream.
        let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
        if let Some(error) = value.get("error") {
            let status = error.get("code").and_then(serde_json::Value::as_u64).unwrap_or(500) as u16;
            return Err(StreamProblem::Failed(UpstreamFailure::classify(status, payload.as_bytes())));
        }
    }
    let mut rng = rand::rng();
    let mut remember = |id: &str, signature: &str| state.signatures.remember(id, signature);
    for chunk in converter.push(&event, &mut rng, &mut remember) {
        append_sse(out, &chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_safe_path_segments() {
        for (name, valid) in [
            ("gemini-2.5-pro", true),
            ("gemini-2.5-flash-preview-05-20", true),
            ("", false),
            ("../admin", false),
            ("a/b", false),
            ("x?key=1", false),
        ] {
            assert_eq!(is_valid_model_name(name), valid, "{name}");
        }
    }
}
