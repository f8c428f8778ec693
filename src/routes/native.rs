//! Gemini-native routes (§6) for Google's own clients (SillyTavern's
//! Google AI Studio source, the google-genai SDKs, Gemini CLI):
//! `GET /v1beta/models[/{name}]`, `POST /{v1beta|v1}/models/{model}:{action}`
//! and the same under `/gemini/{v1beta|v1}/`. Answers and errors are in
//! Google's shapes. Bodies are forwarded byte for byte — only the client's
//! key is swapped for a pool key, and a model-name suffix is applied — and
//! answers come back as the upstream sent them. The pool's rules apply as
//! on OpenAI routes: classified failures, retries, hedging, in-flight
//! sharing and the swipe cache for generation.

use std::rc::Rc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::auth::NativeAuthorized;
use crate::bodyshare::Rope;
use crate::cache::native_cache_key;
use crate::config::Config;
use crate::delivery::admission::{busy, check_rate_limit, read_body};
use crate::delivery::google::{error_event, whole_answer_stream, Framing, GoogleEvents};
use crate::delivery::relay::Relay;
use crate::delivery::shared::obtain_answer;
use crate::delivery::stream::{deliver_later, open_and_pump, PumpTiming};
use crate::delivery::{Mode, RequestNote};
use crate::error::{ApiError, GoogleError};
use crate::gemini::client::{ApiVersion, Service, Target};
use crate::gemini::model::{is_valid_model_name, ModelSpec};
use crate::gemini::native::{apply_suffix, split_call, suffix_changes_body, Action};
use crate::models::{is_model_allowed, native_page};
use crate::state::AppState;
use crate::state::WorkerClientCell;

fn not_found(what: &str) -> GoogleError {
    GoogleError(ApiError::RouteNotFound(what.to_owned()))
}

/// `GET /v1beta/models`, `/gemini/{version}/models`: Google's list,
/// paged by `pageSize` / `pageToken`.
pub async fn list_models(
    _auth: NativeAuthorized,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GoogleError> {
    model_page(&request, &state)
}

/// One page of Google's model list, as `pageSize` / `pageToken` ask
/// (the client is authorized already).
pub fn model_page(request: &HttpRequest, state: &AppState) -> Result<HttpResponse, GoogleError> {
    check_version(request)?;
    let mut page_size = None;
    let mut page_token = None;
    for (name, value) in url::form_urlencoded::parse(request.query_string().as_bytes()) {
        match name.as_ref() {
            "pageSize" => {
                page_size = Some(value.parse::<usize>().map_err(|_| {
                    GoogleError(ApiError::bad_request(format!("pageSize: expected a number, got {value:?}")))
                })?)
            }
            "pageToken" => page_token = Some(value.into_owned()),
            _ => {}
        }
    }
    let config = state.config();
    let page = native_page(state.catalog.native_models(&config), page_size, page_token.as_deref())
        .ok_or_else(|| GoogleError(ApiError::bad_request("pageToken: not a page token of this list")))?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1beta/models/{name}`, `/gemini/{version}/models/{name}`.
pub async fn get_model(
    _auth: NativeAuthorized,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GoogleError> {
    one_model(&request, &state)
}

/// Google's entry for the model `{name}` of the path (the client is
/// authorized already).
pub fn one_model(request: &HttpRequest, state: &AppState) -> Result<HttpResponse, GoogleError> {
    let version = check_version(request)?;
    let name = request.match_info().get("name").unwrap_or_default();
    match state.catalog.native_model(name, &state.config()) {
        Some(model) => Ok(HttpResponse::Ok().json(model)),
        None => Err(GoogleError(ApiError::ModelNotFound(format!(
            "models/{} is not found for API version {}",
            crate::error::echo(name.strip_prefix("models/").unwrap_or(name)),
            version.as_str()
        )))),
    }
}

/// The API version the path names: `/gemini/{version}/…`, `/v1beta/…`
/// or `/v1/…`.
fn check_version(request: &HttpRequest) -> Result<ApiVersion, GoogleError> {
    let version = match request.match_info().get("version") {
        Some(version) => version,
        None if request.path().starts_with("/v1/") => "v1",
        None => "v1beta",
    };
    ApiVersion::parse(version).ok_or_else(|| not_found("Unknown API version (use v1beta or v1) / 不支持的 API 版本"))
}

/// `POST /{version}/models/{model}:{action}` (and under `/gemini/`).
pub async fn model_action(
    auth: NativeAuthorized,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    clients: web::Data<WorkerClientCell>,
) -> Result<HttpResponse, GoogleError> {
    let version = check_version(&request)?;
    let call = request.match_info().get("name").unwrap_or_default().to_owned();
    let (requested, action) = split_call(&call).ok_or_else(|| not_found("Expected models/{model}:{action}"))?;
    let action = Action::parse(action).ok_or_else(|| {
        not_found(
            "Unsupported action; this gateway serves generateContent, streamGenerateContent, countTokens, \
             embedContent and batchEmbedContents / 不支持的操作",
        )
    })?;
    let config = state.config();
    check_rate_limit(auth.0.address, &config, &state).await?;
    let spec = ModelSpec::parse(requested, config.search_mode);
    if !is_valid_model_name(&spec.base) {
        return Err(GoogleError(ApiError::bad_request(format!(
            "model: invalid model name \"{}\"",
            crate::error::echo(requested)
        ))));
    }
    if !is_model_allowed(requested, Some(&spec.base), &config) {
        return Err(GoogleError(ApiError::ModelNotFound(format!(
            "models/{} is not available on this server / 模型不可用",
            crate::error::echo(requested)
        ))));
    }
    let (raw, mut reservation) = read_body(&request, payload, &config, &state).await?;
    let body = if action.generates() && suffix_changes_body(&spec) {
        // The parsed body and the changed one are held for a moment too.
        reservation.grow(raw.len() * 2, config.max_body_bytes_in_flight).map_err(|_| busy())?;
        Rope::from(apply_suffix(&raw, &spec).map_err(|message| GoogleError(ApiError::bad_request(message)))?)
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&raw)
            .map_err(|error| GoogleError(ApiError::bad_request(format!("Invalid JSON payload: {error}"))))?;
        Rope::from(raw.freeze())
    };
    reservation.shrink_to(body.len());
    let clients = clients.current(&state);
    let model: Rc<str> = Rc::from(spec.base.as_str());
    let target = Target { version, model: model.clone(), service: Service::Studio };
    let pool_model = action.pool_model(model);
    let mut relay = Relay::new(&config, &state, &clients.gemini, target, pool_model);
    relay.keep_empty_answer = true;
    let exchange = Exchange { relay, body, requested: requested.to_owned(), version, config, state };
    let (mut response, key, mode) = match action {
        Action::GenerateContent => exchange.generate(&auth).await?,
        Action::StreamGenerateContent => {
            let framing = match query_value(&request, "alt").as_deref() {
                Some("sse") => Framing::Sse,
                _ => Framing::JsonArray,
            };
            exchange.stream(&auth, framing).await?
        }
        other => {
            let (raw, key) = exchange.relay.call(other, exchange.body.clone()).await?;
            let mode = if other == Action::CountTokens { Mode::Count } else { Mode::Embed };
            (HttpResponse::Ok().content_type("application/json").body(raw), Some(key), mode)
        }
    };
    drop(reservation);
    response.extensions_mut().insert(RequestNote {
        door: crate::delivery::Door::Native,
        model: requested.to_owned(),
        key,
        mode,
        vertex: false,
        alias: None,
    });
    Ok(response)
}

fn query_value(request: &HttpRequest, wanted: &str) -> Option<String> {
    url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == wanted)
        .map(|(_, value)| value.into_owned())
}

/// One native generation request, ready for the upstream.
struct Exchange {
    relay: Relay,
    body: Rope,
    requested: String,
    version: ApiVersion,
    config: std::sync::Arc<Config>,
    state: web::Data<AppState>,
}

type Delivered = (HttpResponse, Option<crate::keys::KeyId>, Mode);

impl Exchange {
    /// Swipes of `generateContent` and `streamGenerateContent` share a key:
    /// a swipe may change the delivery mode.
    fn cache_key(&self, auth: &NativeAuthorized) -> crate::cache::CacheKey {
        native_cache_key(auth.0.scope.as_bytes(), self.version.as_str(), &self.requested, "generate", &self.body)
    }

    async fn generate(self, auth: &NativeAuthorized) -> Result<Delivered, GoogleError> {
        let key = self.cache_key(auth);
        if let Some(cached) = self.state.swipe_cache.take(key, self.state.now_ms()) {
            return Ok((json_answer(cached.raw.clone()), None, Mode::Cache));
        }
        let share = !self.config.public_mode;
        let (outcome, key_id) = obtain_answer(key, share, self.relay, self.body, &self.state).await;
        Ok((json_answer(outcome?.raw.clone()), key_id, Mode::Json))
    }

    async fn stream(self, auth: &NativeAuthorized, framing: Framing) -> Result<Delivered, GoogleError> {
        // A fake stream shares and caches by its key; a real one only looks
        // it up, so makes it only if the cache holds answers.
        let key = self.config.fake_streaming.then(|| self.cache_key(auth));
        let lookup = || key.unwrap_or_else(|| self.cache_key(auth));
        if let Some(cached) = self.state.swipe_cache.take_if_any(lookup, self.state.now_ms()) {
            return Ok((framing.headers().body(whole_answer_stream(framing, &cached.raw)), None, Mode::Cache));
        }
        if let Some(key) = key {
            // §5.3 for native clients: non-stream calls (hedged, shared,
            // retried) while keep-alives flow, then the answer as one event.
            let share = !self.config.public_mode;
            let interval = self.config.fake_streaming_interval;
            let (relay, body, state) = (self.relay, self.body, self.state);
            let work = async move { obtain_answer(key, share, relay, body, &state).await };
            let response =
                deliver_later(framing.headers(), work, framing.keepalive(), interval, move |(outcome, _)| {
                    vec![match outcome {
                        Ok(answer) => whole_answer_stream(framing, &answer.raw),
                        Err(error) => error_event(framing, 0, &error),
                    }]
                });
            return Ok((response, None, Mode::FakeStream));
        }
        let timing = PumpTiming {
            keepalive_every: self.config.fake_streaming_interval,
            idle_timeout: self.config.stream_idle_timeout,
        };
        let format = GoogleEvents::new(framing);
        let (response, key_id) = open_and_pump(self.relay, self.body, format, framing.headers(), timing).await?;
        Ok((response, Some(key_id), Mode::Stream))
    }
}

fn json_answer(raw: Bytes) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(raw)
}
