//! What a front door's stream format implements: Gemini stream events in,
//! the door's own events out ([`EventFormat`]); the delivery layer drives
//! it (re-opens before content, keep-alives, the error end) for every door.

use bytes::Bytes;

use crate::error::ApiError;
use crate::gemini::types::GenerateContentResponse;

/// Why a finished upstream stream cannot be closed normally.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StreamEnd {
    #[error("upstream stream ended without a finish reason")]
    Truncated,
    #[error("upstream stream produced no content")]
    Empty,
}

/// A client's wire format for a streamed answer. One value serves one
/// client response, across the keys tried for it.
pub trait EventFormat {
    /// Converts one upstream event (`payload` is its JSON text), appending
    /// what the client gets to `out` (possibly nothing yet).
    fn push(&mut self, event: &GenerateContentResponse, payload: &str, out: &mut Vec<u8>);
    /// The upstream stream ended: append the closing bytes, or say why the
    /// answer is not whole.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd>;
    /// Whether answer content has reached the client: from then on the
    /// answer is never restarted.
    fn has_output(&self) -> bool;
    /// (prompt, completion) tokens of the current attempt.
    fn usage(&self) -> (u64, u64);
    /// Forgets a failed attempt before the next key's stream (none of its
    /// content reached the client).
    fn restart(&mut self);
    /// The bytes that end the stream after a failure. `cut_off`: content
    /// had already been sent.
    fn error_end(&mut self, error: &ApiError, cut_off: bool) -> Bytes;
    /// Every attempt came back empty: append the last empty answer as the
    /// final word and return true, or return false for an error instead.
    fn give_up_empty(&mut self, out: &mut Vec<u8>) -> bool;
    /// Sent while the upstream is silent.
    fn keepalive(&self) -> Bytes;
    /// Sent as soon as the upstream answered 200, before its first event.
    fn opening(&mut self) -> Option<Bytes> {
        None
    }
}
