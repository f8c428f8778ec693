//! What every generating front door (Chat Completions, Anthropic Messages,
//! OpenAI Responses) does around its pure conversion, once: the model the
//! request is served with ([`admit_model`]: `MODEL_ALIASES`, the Vertex
//! routing, the model lists), the remote media it names ([`fetch_media`],
//! through the SSRF-guarded fetcher and within the body budget), how the
//! answer is delivered ([`mode_for`]) and the relay that delivers it
//! ([`generation_relay`]). Errors are [`ApiError`]s; each door renders them
//! in its own envelope.

use std::collections::HashMap;
use std::rc::Rc;

use crate::bodylimit::BodyReservation;
use crate::bodyshare::Rope;
use crate::config::Config;
use crate::error::ApiError;
use crate::gemini::client::{ApiVersion, Service, Target};
use crate::gemini::model::{is_valid_model_name, ModelSpec};
use crate::gemini::types::{Blob, GenerateContentRequest};
use crate::keys::KeyId;
use crate::media::{self, FetchLimits};
use crate::models::is_model_allowed;
use crate::state::{AppState, WorkerClients};

use super::admission::busy;
use super::relay::Relay;
use super::{served_model, Alias, Mode};

/// Copies of the body alive at once while a request is converted, at
/// most: the parsed request, the converted one and the serialized
/// upstream body. Long unescaped strings are shared instead (see
/// `bodyshare`), so an image or a long plain text costs about one copy;
/// escaped texts still cost the three (and a stored Responses turn keeps
/// its input as text besides).
pub const BODY_COPIES_WHILE_CONVERTING: usize = 3;

/// The converted request as the upstream body: a [`Rope`] of what is
/// written here and the strings still shared with the client's body.
/// The written part goes into a buffer sized from the body it came from
/// (`reservation`: what the request holds of
/// `MAX_BODY_BYTES_IN_FLIGHT_MB`, [`BODY_COPIES_WHILE_CONVERTING`] times
/// its body and fetched media). Grown by doubling instead, a large body's
/// buffer would be reallocated and copied on the way, its old and new
/// buffers alive together.
pub fn upstream_body(request: &GenerateContentRequest, reservation: &BodyReservation) -> Rope {
    // Media fetched as bytes go up as base64 (4/3 of their size); an
    // unused part of the capacity is never touched, so never resident.
    let expected = reservation.bytes() / BODY_COPIES_WHILE_CONVERTING * 3 / 2 + 4096;
    // Strings shared with the client's body are not copied into it.
    request.to_rope(expected)
}

/// The Gemini model a request is served with, and where.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub spec: ModelSpec,
    /// AI Studio, Vertex Express or Vertex with a service account.
    pub service: Service,
    /// The `MODEL_ALIASES` pair that chose the model, if any.
    pub alias: Option<Alias>,
}

/// Resolves the client's model name (`requested`, on `path`) to the Gemini
/// model and service that serve it, or the client's error: a name Gemini
/// cannot have (400) or one the operator's lists refuse (404).
pub fn admit_model(path: &str, requested: &str, config: &Config, state: &AppState) -> Result<Admitted, ApiError> {
    let (served, alias) = served_model(requested, config);
    let (service, model_name) = crate::vertex::route(path, served, config, &state.vertex, state.now_ms());
    let spec = ModelSpec::parse(model_name, config.search_mode);
    if !is_valid_model_name(&spec.base) {
        return Err(ApiError::BadRequest {
            message: format!("model: invalid model name \"{}\"", crate::error::echo(requested)),
            param: Some("model".into()),
        });
    }
    if !is_model_allowed(requested, Some(&spec.base), config) {
        return Err(ApiError::ModelNotFound(format!(
            "The model {} is not available on this server / 模型不可用",
            crate::error::echo(requested)
        )));
    }
    Ok(Admitted { spec, service, alias })
}

/// The remote images and files a request names, fetched (at most
/// `MAX_IMAGE_BYTES` each, within `IMAGE_FETCH_TIMEOUT`, never a private
/// address unless allowed) and counted in the request's body budget.
pub async fn fetch_media(
    urls: &[String],
    config: &Config,
    clients: &WorkerClients,
    reservation: &mut BodyReservation,
) -> Result<HashMap<String, Blob>, ApiError> {
    if urls.is_empty() {
        return Ok(HashMap::new());
    }
    let limits = FetchLimits {
        max_bytes: config.max_image_bytes,
        timeout: config.image_fetch_timeout,
        allow_private: config.allow_private_image_urls,
    };
    let fetched = media::fetch_all(&clients.media, urls, &limits, config.max_request_body_bytes)
        .await
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    // Fetched media become part of the upstream body: they count too.
    let fetched_bytes: usize = fetched.values().map(|blob| blob.data.len()).sum();
    reservation
        .grow(fetched_bytes * BODY_COPIES_WHILE_CONVERTING, config.max_body_bytes_in_flight)
        .map_err(|_| busy())?;
    Ok(fetched)
}

/// How a generation is delivered: a real stream, a fake one (§5.3), a
/// JSON body with keep-alive newlines (§5.4) or a plain JSON body.
pub fn mode_for(stream: bool, config: &Config) -> Mode {
    match (stream, config.fake_streaming, config.nonstream_keepalive_enabled) {
        (true, true, _) => Mode::FakeStream,
        (true, false, _) => Mode::Stream,
        (false, _, true) => Mode::Keepalive,
        (false, _, false) => Mode::Json,
    }
}

/// The relay for a converted generation request: `generateContent` on
/// `admitted`'s model and service, the first attempt on `prefer` (the key
/// that produced the thought signatures the request carries back), and
/// the placeholder retry when Google refuses those signatures.
pub fn generation_relay(
    admitted: &Admitted,
    prefer: Option<KeyId>,
    config: &Config,
    state: &actix_web::web::Data<AppState>,
    clients: &WorkerClients,
) -> Relay {
    let model: Rc<str> = Rc::from(admitted.spec.base.as_str());
    let target = Target { version: ApiVersion::V1Beta, model: model.clone(), service: admitted.service };
    let mut relay = Relay::new(config, state, &clients.gemini, target, model);
    relay.prefer = prefer;
    relay.signature_fallback = true;
    relay
}
