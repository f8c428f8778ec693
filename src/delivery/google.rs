//! Google's own stream format, for Gemini-native clients: each upstream
//! event is forwarded as the upstream sent it (unknown fields and all),
//! either as SSE (`alt=sse`: `data: <json>` + blank line) or as one JSON
//! array delivered element by element (no `alt`). A failure after content
//! ends the stream with Google's error object (`{"error":{"code",…}}`,
//! which Google's SDKs raise as an error); keep-alives are blank lines
//! (SSE) or whitespace (JSON), the only fillers Google's SDKs skip.
//!
//! Events without any content (usage-only, a prompt block) are held back
//! until content comes, so an empty answer can still be retried on another
//! key; when every key came back empty, the last empty answer is delivered
//! as it is — a native client reads `promptFeedback` itself.

use bytes::Bytes;

use crate::convert::stream::StreamEnd;
use crate::delivery::stream::EventFormat;
use crate::error::ApiError;
use crate::gemini::types::GenerateContentResponse;

/// How a native stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `?alt=sse`.
    Sse,
    /// Without `alt`: `[` event `,` event … `]`.
    JsonArray,
}

impl Framing {
    pub fn headers(self) -> actix_web::HttpResponseBuilder {
        match self {
            Framing::Sse => crate::delivery::stream::sse_headers(),
            Framing::JsonArray => crate::delivery::stream::json_stream_headers(),
        }
    }

    pub fn keepalive(self) -> Bytes {
        match self {
            Framing::Sse => Bytes::from_static(b"\r\n"),
            Framing::JsonArray => Bytes::from_static(b"\n"),
        }
    }
}

/// Content-less events held back at most (they are small; a stream of
/// nothing but such events is delivered once this is reached).
const MAX_HELD_EVENTS: usize = 16;

/// One native client's stream.
#[derive(Debug)]
pub struct GoogleEvents {
    framing: Framing,
    /// Elements of the JSON array already written (SSE: events written).
    written: usize,
    /// Content-less events of the current attempt not yet written.
    held: Vec<String>,
    sent_content: bool,
    saw_finish_reason: bool,
    usage: (u64, u64),
}

impl GoogleEvents {
    pub fn new(framing: Framing) -> GoogleEvents {
        GoogleEvents {
            framing,
            written: 0,
            held: Vec::new(),
            sent_content: false,
            saw_finish_reason: false,
            usage: (0, 0),
        }
    }

    fn write_event(&mut self, payload: &str, out: &mut Vec<u8>) {
        write_event(self.framing, self.written, payload, out);
        self.written += 1;
    }

    fn flush_held(&mut self, out: &mut Vec<u8>) {
        for payload in std::mem::take(&mut self.held) {
            self.write_event(&payload, out);
        }
    }

    fn close(&self, out: &mut Vec<u8>) {
        if self.framing == Framing::JsonArray {
            if self.written == 0 {
                out.push(b'[');
            }
            out.extend_from_slice(b"\n]");
        }
    }
}

/// Appends one event in `framing`; `index` counts the events before it.
pub fn write_event(framing: Framing, index: usize, payload: &str, out: &mut Vec<u8>) {
    match framing {
        Framing::Sse => {
            // A multi-line payload keeps one `data:` line per line.
            for line in payload.split('\n') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line.trim_end_matches('\r').as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
        Framing::JsonArray => {
            out.extend_from_slice(if index == 0 { b"[" } else { b"\n,\r\n" });
            out.extend_from_slice(payload.as_bytes());
        }
    }
}

/// A whole answer as a native stream of one event (fake streaming). Line
/// breaks of a pretty-printed body are whitespace outside strings (inside
/// strings JSON escapes them), so they become spaces and the event stays
/// on one `data:` line.
pub fn whole_answer_stream(framing: Framing, raw: &[u8]) -> Bytes {
    let flat: String = String::from_utf8_lossy(raw).replace(['\r', '\n'], " ");
    let mut out = Vec::with_capacity(flat.len() + 16);
    write_event(framing, 0, flat.trim(), &mut out);
    if framing == Framing::JsonArray {
        out.extend_from_slice(b"\n]");
    }
    Bytes::from(out)
}

/// A failure as the last event of a native stream.
pub fn error_event(framing: Framing, written: usize, error: &ApiError) -> Bytes {
    let mut out = Vec::new();
    write_event(framing, written, &error.google_body().to_string(), &mut out);
    if framing == Framing::JsonArray {
        out.extend_from_slice(b"\n]");
    }
    Bytes::from(out)
}

/// Whether an event carries anything of an answer: a part with text
/// (thoughts included: native clients show them live), a function call,
/// inline data, code…
fn has_content(event: &GenerateContentResponse) -> bool {
    event
        .candidates
        .iter()
        .filter_map(|candidate| candidate.content.as_ref())
        .any(|content| content.parts.iter().any(|part| part.text.as_deref().is_none_or(|text| !text.is_empty())))
}

impl EventFormat for GoogleEvents {
    fn push(&mut self, event: &GenerateContentResponse, payload: &str, out: &mut Vec<u8>) {
        if let Some(usage) = &event.usage_metadata {
            self.usage =
                (usage.prompt_token_count, usage.candidates_token_count.saturating_add(usage.thoughts_token_count));
        }
        if event.candidates.iter().any(|candidate| candidate.finish_reason.is_some()) {
            self.saw_finish_reason = true;
        }
        if !self.sent_content && !has_content(event) && self.held.len() < MAX_HELD_EVENTS {
            self.held.push(payload.to_owned());
            return;
        }
        self.flush_held(out);
        self.write_event(payload, out);
        self.sent_content = true;
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        if !self.sent_content {
            return Err(StreamEnd::Empty);
        }
        if !self.saw_finish_reason {
            return Err(StreamEnd::Truncated);
        }
        self.close(out);
        Ok(())
    }

    fn has_output(&self) -> bool {
        self.sent_content
    }

    fn usage(&self) -> (u64, u64) {
        self.usage
    }

    fn restart(&mut self) {
        self.held.clear();
        self.saw_finish_reason = false;
        self.usage = (0, 0);
    }

    fn error_end(&mut self, error: &ApiError, _cut_off: bool) -> Bytes {
        error_event(self.framing, self.written, error)
    }

    fn give_up_empty(&mut self, out: &mut Vec<u8>) -> bool {
        if self.held.is_empty() {
            return false;
        }
        self.flush_held(out);
        self.close(out);
        true
    }

    fn keepalive(&self) -> Bytes {
        self.framing.keepalive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> GenerateContentResponse {
        serde_json::from_str(json).unwrap()
    }

    const TEXT: &str = r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"extra":1}"#;
    const END: &str = r#"{"candidates":[{"content":{"parts":[{"text":"!"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}"#;
    const BLOCKED: &str =
        r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":3}}"#;

    fn run(framing: Framing, events: &[&str]) -> (String, Result<(), StreamEnd>, GoogleEvents) {
        let mut format = GoogleEvents::new(framing);
        let mut out = Vec::new();
        for payload in events {
            format.push(&event(payload), payload, &mut out);
        }
        let end = format.finish(&mut out);
        (String::from_utf8(out).unwrap(), end, format)
    }

    #[test]
    fn sse_events_are_forwarded_verbatim() {
        let (out, end, format) = run(Framing::Sse, &[TEXT, END]);
        assert_eq!(end, Ok(()));
        assert_eq!(out, format!("data: {TEXT}\r\n\r\ndata: {END}\r\n\r\n"));
        assert_eq!(format.usage(), (3, 2));
    }

    #[test]
    fn json_array_is_valid_json_with_every_field() {
        let (out, end, _) = run(Framing::JsonArray, &[TEXT, END]);
        assert_eq!(end, Ok(()));
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 2);
        assert_eq!(parsed[0]["extra"], 1);
    }

    #[test]
    fn content_less_events_wait_and_an_empty_answer_can_be_given_up() {
        let (out, end, mut format) = run(Framing::JsonArray, &[BLOCKED]);
        assert_eq!((out.as_str(), end), ("", Err(StreamEnd::Empty)));
        assert!(!format.has_output());
        let mut out = Vec::new();
        assert!(format.give_up_empty(&mut out));
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed[0]["promptFeedback"]["blockReason"], "PROHIBITED_CONTENT");
    }

    #[test]
    fn a_cut_stream_ends_with_googles_error_object() {
        let (out, end, mut format) = run(Framing::Sse, &[TEXT]);
        assert_eq!(end, Err(StreamEnd::Truncated));
        assert!(format.has_output());
        let error =
            ApiError::UpstreamFailed { status: actix_web::http::StatusCode::BAD_GATEWAY, message: "cut".into() };
        let tail = String::from_utf8(format.error_end(&error, true).to_vec()).unwrap();
        assert!(out.starts_with("data: "));
        assert_eq!(tail, "data: {\"error\":{\"code\":502,\"message\":\"cut\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n");
        // In a JSON array, the error is the last element.
        let (mut out, _, mut format) = run(Framing::JsonArray, &[TEXT]);
        out.push_str(std::str::from_utf8(&format.error_end(&error, true)).unwrap());
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed[1]["error"]["code"], 502);
    }

    #[test]
    fn a_whole_answer_becomes_one_event() {
        let raw = b"{\n  \"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\\nb\"}]}}]\n}\n";
        let sse = whole_answer_stream(Framing::Sse, raw);
        let text = std::str::from_utf8(&sse).unwrap();
        assert_eq!(text.matches("data: ").count(), 1);
        let payload = text.strip_prefix("data: ").unwrap().trim_end();
        let parsed: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(parsed["candidates"][0]["content"]["parts"][0]["text"], "a\nb");
        let array = whole_answer_stream(Framing::JsonArray, raw);
        let parsed: serde_json::Value = serde_json::from_slice(&array).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 1);
    }
}
