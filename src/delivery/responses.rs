//! The OpenAI Responses stream format and what the door's deliveries share:
//! [`ResponsesEvents`] turns Gemini events into the typed events of
//! `responses::output` (opening with `response.created` and
//! `response.in_progress`, ending with `response.completed`, or
//! `response.failed` after a failure — never a silent end), keep-alives
//! are SSE comments; [`fake_stream`] sends the opening at once, keep-alives
//! while the non-streaming calls run, then the whole answer's events.
//! Each function call's thought signature is remembered by its call id
//! (`signatures`), and a completed response is kept when the client asked
//! for it ([`Keeper`]).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use bytes::Bytes;

use crate::bodyshare::BodyJson;
use crate::convert::stream::StreamEnd;
use crate::delivery::outbox::produced_body;
use crate::delivery::stream::{sse_headers, with_keepalive, EventFormat};
use crate::error::ApiError;
use crate::gemini::types::{Answer, GenerateContentResponse};
use crate::keys::KeyId;
use crate::responses::output::OutputBuilder;
use crate::secret::LogSafe;
use crate::state::AppState;
use crate::store::{Change, StoredResponse};

pub const SSE_KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// What it takes to keep a completed response (`store` and
/// `RESPONSES_RETENTION_HOURS` allowing).
#[derive(Debug, Clone)]
pub struct Keeper {
    /// `store::scope_digest` of the client.
    pub scope: String,
    /// The input items of this turn: their long strings stay slices of
    /// the request body (already held by the upstream body) until the
    /// response is kept, instead of a JSON copy held all along.
    pub input: Rc<Vec<BodyJson>>,
    /// The stored form's bound (the request body limit): larger is not kept.
    pub max_bytes: usize,
    pub retention_ms: u64,
}

impl Keeper {
    /// Keeps the response `id` (`response_json`: the response object) with
    /// this turn's input: noted in `state.recent_responses` at once and
    /// sent to the store writer. A response too large to keep is logged,
    /// and the answer still goes out.
    pub fn keep(&self, id: &str, response_json: &str, state: &AppState) {
        let mut body = Vec::with_capacity(response_json.len() + 32);
        body.extend_from_slice(b"{\"input\":");
        if serde_json::to_writer(&mut body, &*self.input).is_err() {
            return;
        }
        body.extend_from_slice(b",\"response\":");
        body.extend_from_slice(response_json.as_bytes());
        body.push(b'}');
        let size = body.len();
        if size > self.max_bytes {
            log::warn!(
                "response {} not stored: {size} bytes is more than the {} byte limit",
                LogSafe(id),
                self.max_bytes
            );
            return;
        }
        // Written from a `&str` and `serde_json`'s output: UTF-8.
        let Ok(body) = String::from_utf8(body) else { return };
        let now_ms = state.now_ms();
        let stored = StoredResponse {
            id: id.to_owned(),
            scope: self.scope.clone(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(self.retention_ms),
            body,
        };
        let stored = Arc::new(stored);
        // One copy, shared by the recent responses and the store's writer.
        state.recent_responses.saved(stored.clone(), now_ms);
        state.store.send(Change::SaveResponse(stored));
    }
}

/// The `error.code` of a failed response (the codes OpenAI uses there).
pub fn failure_code(error: &ApiError) -> &'static str {
    match error {
        ApiError::RateLimited { .. } | ApiError::NoKeyAvailable { .. } => "rate_limit_exceeded",
        ApiError::BadRequest { .. } | ApiError::UpstreamRejected { .. } => "invalid_prompt",
        _ => "server_error",
    }
}

/// One Responses client's stream.
pub struct ResponsesEvents {
    /// Always `Some` between calls (taken to restart).
    builder: Option<OutputBuilder>,
    state: web::Data<AppState>,
    keeper: Option<Keeper>,
}

impl ResponsesEvents {
    pub fn new(builder: OutputBuilder, state: web::Data<AppState>, keeper: Option<Keeper>) -> ResponsesEvents {
        ResponsesEvents { builder: Some(builder), state, keeper }
    }

    fn builder(&mut self) -> &mut OutputBuilder {
        self.builder.as_mut().expect("the builder is put back after a restart")
    }
}

impl EventFormat for ResponsesEvents {
    fn push(&mut self, event: &GenerateContentResponse, _payload: &str, out: &mut Vec<u8>) {
        let state = self.state.clone();
        let mut remember = |call_id: &str, signature: &str| state.signatures.remember(call_id, signature);
        self.builder().push(event, &mut remember, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let response = self.builder().finish(false, out)?;
        if let (Some(keeper), Some(builder)) = (&self.keeper, &self.builder) {
            keeper.keep(&builder.meta().id, &response, &self.state);
        }
        Ok(())
    }

    fn has_output(&self) -> bool {
        self.builder.as_ref().is_some_and(OutputBuilder::has_output)
    }

    fn usage(&self) -> (u64, u64) {
        self.builder.as_ref().map(OutputBuilder::usage).unwrap_or_default()
    }

    fn restart(&mut self) {
        self.builder = self.builder.take().map(OutputBuilder::restarted);
    }

    fn error_end(&mut self, error: &ApiError, _cut_off: bool) -> Bytes {
        let mut out = Vec::new();
        self.builder().fail(failure_code(error), &error.to_string(), &mut out);
        Bytes::from(out)
    }

    fn give_up_empty(&mut self, _out: &mut Vec<u8>) -> bool {
        false
    }

    fn keepalive(&self) -> Bytes {
        Bytes::from_static(SSE_KEEPALIVE)
    }

    fn opening(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        self.builder().opening(&mut out);
        Some(Bytes::from(out))
    }
}

/// The whole answer's items through `builder`: the response object as
/// JSON (kept by `keeper`), or the failure's events when it cannot be closed. The
/// events go to `out` (a silent builder writes none).
pub fn complete_answer(
    builder: &mut OutputBuilder,
    answer: &Answer,
    state: &AppState,
    keeper: Option<&Keeper>,
    out: &mut Vec<u8>,
) -> Result<String, ApiError> {
    let mut remember = |call_id: &str, signature: &str| state.signatures.remember(call_id, signature);
    builder.push(&answer.parsed, &mut remember, out);
    match builder.finish(true, out) {
        Ok(response) => {
            if let Some(keeper) = keeper {
                keeper.keep(&builder.meta().id, &response, state);
            }
            Ok(response)
        }
        Err(_) => Err(ApiError::UpstreamFailed {
            status: actix_web::http::StatusCode::BAD_GATEWAY,
            message: "Gemini returned an empty answer / 上游返回了空回答".to_owned(),
        }),
    }
}

/// Fake streaming (§5.3) for the Responses door: SSE headers and the
/// opening events at once, `: keep-alive` every `interval` while `work`
/// obtains the whole answer, then its events (or `response.failed`).
pub fn fake_stream(
    mut builder: OutputBuilder,
    work: impl std::future::Future<Output = (Result<Arc<Answer>, ApiError>, Option<KeyId>)> + 'static,
    interval: Duration,
    state: web::Data<AppState>,
    keeper: Option<Keeper>,
) -> HttpResponse {
    sse_headers().streaming(produced_body(move |outbox| async move {
        let mut opening = Vec::new();
        builder.opening(&mut opening);
        outbox.send(Bytes::from(opening)).await;
        let keepalive = Bytes::from_static(SSE_KEEPALIVE);
        let (outcome, key) = with_keepalive(work, &outbox, keepalive, interval).await;
        let model = builder.meta().model.clone();
        let mut out = Vec::new();
        let result =
            outcome.and_then(|answer| complete_answer(&mut builder, &answer, &state, keeper.as_ref(), &mut out));
        let key = key.map(|key| key.to_string()).unwrap_or_else(|| "-".into());
        match result {
            Ok(_) => log::info!("answer delivered model={} mode=fake_stream key={key}", LogSafe(&model)),
            Err(error) => {
                log::warn!("fake stream failed model={}: {}", LogSafe(&model), LogSafe(&error.to_string()));
                out.clear();
                builder.fail(failure_code(&error), &error.to_string(), &mut out);
            }
        }
        outbox.send(Bytes::from(out)).await;
    }))
}
