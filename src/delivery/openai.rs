//! The OpenAI Chat Completions stream format: Gemini events become
//! `chat.completion.chunk`s (see [`StreamConverter`]), the answer ends
//! with the finish chunk, the usage chunk when asked, and `data: [DONE]`;
//! a failure ends it with an OpenAI error event (or, opted in, an
//! assistant message carrying the error) and `[DONE]`.

use bytes::Bytes;
use serde::Serialize;

use crate::convert::stream::StreamEnd;
use crate::delivery::stream::EventFormat;
use crate::error::ApiError;
use crate::gemini::types::GenerateContentResponse;
use crate::jsonout::WriteJson;
use crate::openai::response::AnswerMeta;
use crate::openai::stream::StreamConverter;
use crate::state::AppState;

pub const DONE: &[u8] = b"data: [DONE]\n\n";
pub const SSE_KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// `data: <json>\n\n` appended to `out`.
pub fn append_sse(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    // Serializing our own types cannot fail.
    serde_json::to_writer(&mut *out, value).ok();
    out.extend_from_slice(b"\n\n");
}

/// A `200` whose body is `value`'s JSON, written by hand (`jsonout`).
pub fn json_answer(value: &impl WriteJson) -> actix_web::HttpResponse {
    let mut body = Vec::with_capacity(512);
    value.write_json(&mut body);
    const JSON: actix_web::http::header::HeaderValue =
        actix_web::http::header::HeaderValue::from_static("application/json");
    actix_web::HttpResponse::Ok().content_type(JSON).body(body)
}

pub fn sse_data(value: &impl Serialize) -> Bytes {
    let mut line = Vec::new();
    append_sse(&mut line, value);
    Bytes::from(line)
}

/// The chunk that carries an error as assistant content (opt-in, for
/// clients that only display message content).
pub fn error_content_chunk(error: &ApiError, meta: &AnswerMeta) -> Bytes {
    sse_data(&serde_json::json!({
        "id": meta.id, "object": "chat.completion.chunk", "created": meta.created, "model": meta.model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": format!("[hajimi] {error}")}, "finish_reason": "stop"}],
    }))
}

/// The error event (or, opted in, an assistant message) then `[DONE]`.
pub fn stream_error_end(error: &ApiError, meta: &AnswerMeta, as_message: bool) -> Bytes {
    let mut out =
        if as_message { error_content_chunk(error, meta).to_vec() } else { error.to_sse_event().into_bytes() };
    out.extend_from_slice(DONE);
    Bytes::from(out)
}

/// One OpenAI client's stream.
pub struct OpenAiEvents {
    meta: AnswerMeta,
    include_usage: bool,
    /// `ERROR_AS_ASSISTANT_MESSAGE`: failures before any content become an
    /// assistant message.
    error_as_message: bool,
    converter: StreamConverter,
    /// The role-only first chunk went out.
    role_announced: bool,
    /// Keeps the thought signatures of streamed function calls.
    state: actix_web::web::Data<AppState>,
}

impl OpenAiEvents {
    pub fn new(
        meta: AnswerMeta,
        include_usage: bool,
        error_as_message: bool,
        state: actix_web::web::Data<AppState>,
    ) -> Self {
        let converter = StreamConverter::new(&meta);
        OpenAiEvents { meta, include_usage, error_as_message, converter, role_announced: false, state }
    }
}

impl EventFormat for OpenAiEvents {
    fn push(&mut self, event: &GenerateContentResponse, _payload: &str, out: &mut Vec<u8>) {
        let mut rng = rand::rng();
        let signatures = &self.state.signatures;
        let mut remember = |id: &str, signature: &str| signatures.remember(id, signature);
        self.converter.push(event, &mut rng, &mut remember, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        self.converter.finish(self.include_usage, out)?;
        out.extend_from_slice(DONE);
        Ok(())
    }

    fn has_output(&self) -> bool {
        self.converter.has_output()
    }

    fn usage(&self) -> (u64, u64) {
        let usage = self.converter.usage().unwrap_or_default();
        (usage.prompt_tokens, usage.completion_tokens)
    }

    fn restart(&mut self) {
        self.converter = StreamConverter::new(&self.meta);
        if self.role_announced {
            self.converter.role_already_announced();
        }
    }

    fn error_end(&mut self, error: &ApiError, cut_off: bool) -> Bytes {
        stream_error_end(error, &self.meta, self.error_as_message && !cut_off)
    }

    fn give_up_empty(&mut self, _out: &mut Vec<u8>) -> bool {
        false
    }

    fn keepalive(&self) -> Bytes {
        Bytes::from_static(SSE_KEEPALIVE)
    }

    fn opening(&mut self) -> Option<Bytes> {
        self.role_announced = true;
        let mut out = Vec::with_capacity(256);
        self.converter.announce_role(&mut out);
        Some(Bytes::from(out))
    }
}
