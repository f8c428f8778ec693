//! Gemini stream events → Anthropic's stream: `message_start`, then per
//! block `content_block_start`, `content_block_delta` (`text_delta`,
//! `thinking_delta`, `signature_delta`, `input_json_delta`) and
//! `content_block_stop`, then `message_delta` (stop reason, usage) and
//! `message_stop`; `ping` while the upstream is silent; a failure ends the
//! stream with an `error` event. Blocks follow [`super::response::Blocks`],
//! the rule whole answers follow too.
//!
//! `message_start` goes out with the first block, so nothing but pings has
//! reached the client while another key may still be tried; its usage
//! has the prompt's tokens when Gemini has told them, and `message_delta`
//! repeats them with the output's.

use bytes::Bytes;

use crate::convert::stream::{EventFormat, StreamEnd};
use crate::error::ApiError;
use crate::gemini::types::GenerateContentResponse;

use super::error::error_body;
use super::response::{
    append_block_event, append_event, append_message_end, append_message_start, is_refusal, stop_reason, usage, Blocks,
    MessageMeta,
};
use super::types::{StopReason, Usage};

/// Called with (tool_use id, signature) for each signed call.
pub type Remember = Box<dyn Fn(&str, &str)>;

pub const PING: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";

/// One client's stream.
pub struct AnthropicEvents {
    meta: MessageMeta,
    remember: Remember,
    blocks: Blocks,
    started: bool,
    usage: Usage,
    finish_reason: Option<std::borrow::Cow<'static, str>>,
    /// The last event of an answer without content (a blocked prompt), kept
    /// in case every key answers so.
    empty_refusal: bool,
}

impl AnthropicEvents {
    pub fn new(meta: MessageMeta, remember: Remember) -> AnthropicEvents {
        let blocks = Blocks::new(meta.show_thinking);
        AnthropicEvents {
            meta,
            remember,
            blocks,
            started: false,
            usage: Usage::default(),
            finish_reason: None,
            empty_refusal: false,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            append_message_start(out, &self.meta, Usage { output_tokens: 0, ..self.usage });
        }
    }

    fn stop_reason(&self) -> StopReason {
        stop_reason(self.finish_reason.as_deref(), false, self.blocks.has_tool_use)
    }
}

/// The `error` event that ends a stream.
pub fn error_event(error: &ApiError) -> Bytes {
    let mut out = Vec::new();
    append_event(&mut out, &error_body(error));
    Bytes::from(out)
}

impl EventFormat for AnthropicEvents {
    fn push(&mut self, event: &GenerateContentResponse, _payload: &str, out: &mut Vec<u8>) {
        if let Some(meta) = &event.usage_metadata {
            self.usage = usage(Some(meta));
        }
        if is_refusal(event) {
            self.empty_refusal = true;
        }
        let Some(candidate) = event.candidates.first() else { return };
        if let Some(reason) = &candidate.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        let parts = candidate.content.as_ref().map(|content| content.parts.as_slice()).unwrap_or_default();
        let mut rng = rand::rng();
        let mut events = Vec::new();
        let remember = &self.remember;
        let mut remember = |id: &str, signature: &str| remember(id, signature);
        for part in parts {
            self.blocks.push_part(part, &mut rng, &mut remember, &mut |event| events.push(event));
        }
        if !events.is_empty() {
            self.ensure_started(out);
        }
        for event in &events {
            append_block_event(out, event);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        if !self.blocks.started_any() {
            return Err(StreamEnd::Empty);
        }
        if self.finish_reason.is_none() {
            return Err(StreamEnd::Truncated);
        }
        let mut events = Vec::new();
        self.blocks.close(&mut |event| events.push(event));
        for event in &events {
            append_block_event(out, event);
        }
        append_message_end(out, self.stop_reason(), self.usage);
        Ok(())
    }

    fn has_output(&self) -> bool {
        self.blocks.started_any()
    }

    fn usage(&self) -> (u64, u64) {
        (self.usage.input_tokens, self.usage.output_tokens)
    }

    fn restart(&mut self) {
        self.blocks = Blocks::new(self.meta.show_thinking);
        self.started = false;
        self.usage = Usage::default();
        self.finish_reason = None;
        self.empty_refusal = false;
    }

    fn error_end(&mut self, error: &ApiError, _cut_off: bool) -> Bytes {
        error_event(error)
    }

    /// A refusal (a blocked prompt, a safety stop) is Gemini's answer, told
    /// as `stop_reason: "refusal"`; any other empty answer is an error.
    fn give_up_empty(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.empty_refusal {
            return false;
        }
        self.ensure_started(out);
        append_message_end(out, StopReason::Refusal, self.usage);
        true
    }

    fn keepalive(&self) -> Bytes {
        Bytes::from_static(PING)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use serde_json::{json, Value};

    use super::*;

    const SIGNATURE: &str = "CiIBVKhc7oDPpCaXyJKKssjqr4g3JNOSgJ/M2V+1THC1icsWCmwBVKhc7pBABjFjQ0zjcNOD5wDWVVh1UAjpbuO8";

    type Remembered = Rc<RefCell<Vec<(String, String)>>>;

    fn events_for(show_thinking: bool) -> (AnthropicEvents, Remembered) {
        let remembered: Remembered = Rc::default();
        let sink = remembered.clone();
        let meta = MessageMeta { id: "msg_1".into(), model: "claude-x".into(), show_thinking };
        let remember = Box::new(move |id: &str, signature: &str| sink.borrow_mut().push((id.into(), signature.into())));
        (AnthropicEvents::new(meta, remember), remembered)
    }

    fn payloads(fixture: &str) -> Vec<String> {
        fixture.split("\r\n\r\n").filter_map(|event| event.trim().strip_prefix("data: ")).map(str::to_owned).collect()
    }

    /// Feeds every event of `fixture` (whole: the SSE decoder is tested on
    /// its own) and returns the client's events.
    fn run(format: &mut AnthropicEvents, fixture: &str) -> (Vec<(String, Value)>, Result<(), StreamEnd>) {
        let mut out = Vec::new();
        for payload in payloads(fixture) {
            let event: GenerateContentResponse = serde_json::from_str(&payload).unwrap();
            format.push(&event, &payload, &mut out);
        }
        let end = format.finish(&mut out);
        (parse(&out), end)
    }

    fn parse(out: &[u8]) -> Vec<(String, Value)> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name.strip_prefix("event: ").unwrap());
                (name.strip_prefix("event: ").unwrap().to_owned(), data)
            })
            .collect()
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn text_streams_as_one_block() {
        let (mut format, _) = events_for(true);
        let (events, end) = run(&mut format, include_str!("../../tests/it/fixtures/gemini/stream-text.sse"));
        assert_eq!(end, Ok(()));
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 4);
        assert_eq!(events[0].1["message"]["model"], "claude-x");
        let text: String = events.iter().filter_map(|(_, data)| data["delta"]["text"].as_str()).collect();
        assert_eq!(text, "Hello! How can I help you today?");
        assert_eq!(events[6].1["delta"]["stop_reason"], "end_turn");
        assert_eq!(events[6].1["usage"]["output_tokens"], 9);
        assert_eq!(format.usage(), (4, 9));
    }

    #[test]
    fn thinking_streams_and_the_closing_signature_follows_the_text() {
        let (mut format, _) = events_for(true);
        let fixture = include_str!("../../tests/it/fixtures/gemini/stream-thinking-signed.sse");
        let (events, end) = run(&mut format, fixture);
        assert_eq!(end, Ok(()));
        assert_eq!(events[1].1["content_block"], json!({"type": "thinking", "thinking": "", "signature": ""}));
        assert_eq!(
            events[2].1["delta"],
            json!({"type": "thinking_delta", "thinking": "**Considering the question**\n\n"})
        );
        assert_eq!(events[3].1, json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(events[4].1["content_block"], json!({"type": "text", "text": ""}));
        // The signature came after the text: a thinking block of its own after it.
        let signature =
            events.iter().find(|(_, data)| data["delta"]["type"] == "signature_delta").expect("signature_delta");
        assert_eq!(signature.1["delta"]["signature"], SIGNATURE);
        assert_eq!(signature.1["index"], 2);
        // Without thoughts shown: text only.
        let (mut hidden, _) = events_for(false);
        let (events, _) = run(&mut hidden, fixture);
        assert!(events.iter().all(|(_, data)| data["content_block"]["type"] != "thinking"));
    }

    #[test]
    fn a_signed_call_streams_its_signature_and_is_remembered() {
        let (mut format, remembered) = events_for(true);
        let (events, end) = run(&mut format, include_str!("../../tests/it/fixtures/gemini/stream-function-call.sse"));
        assert_eq!(end, Ok(()));
        assert_eq!(
            events[2].1["delta"],
            json!({"type": "signature_delta", "signature": "CiIBVKhc7oDPpCaXyJKKssjqr4g3"})
        );
        let tool_use = &events[4].1["content_block"];
        assert_eq!((tool_use["type"].as_str(), tool_use["name"].as_str()), (Some("tool_use"), Some("get_weather")));
        let json: Value = serde_json::from_str(events[5].1["delta"]["partial_json"].as_str().unwrap()).unwrap();
        assert_eq!(json, json!({"city": "Paris"}));
        let stop = events.iter().find(|(name, _)| name == "message_delta").unwrap();
        assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
        let id = tool_use["id"].as_str().unwrap().to_owned();
        assert_eq!(*remembered.borrow(), [(id, "CiIBVKhc7oDPpCaXyJKKssjqr4g3".to_owned())]);
    }

    #[test]
    fn a_cut_stream_ends_with_an_error_event_and_nothing_is_sent_before_content() {
        let (mut format, _) = events_for(true);
        let (events, end) = run(&mut format, include_str!("../../tests/it/fixtures/gemini/stream-truncated.sse"));
        assert_eq!(end, Err(StreamEnd::Truncated));
        assert!(format.has_output());
        assert!(!names(&events).contains(&"message_stop"));
        let error =
            ApiError::UpstreamFailed { status: actix_web::http::StatusCode::BAD_GATEWAY, message: "cut".into() };
        let tail = parse(&format.error_end(&error, true));
        assert_eq!(
            tail,
            [("error".to_owned(), json!({"type": "error", "error": {"type": "api_error", "message": "cut"}}))]
        );
        // Before any content: nothing at all, so another key can be tried.
        let (mut empty, _) = events_for(true);
        let (events, end) = run(&mut empty, include_str!("../../tests/it/fixtures/gemini/stream-empty-stop.sse"));
        assert_eq!((events.len(), end), (0, Err(StreamEnd::Empty)));
        assert!(!empty.has_output());
        assert!(!empty.give_up_empty(&mut Vec::new()), "an empty answer is an error");
        assert_eq!(parse(&empty.keepalive()), [("ping".to_owned(), json!({"type": "ping"}))]);
    }

    #[test]
    fn a_blocked_prompt_given_up_is_a_refusal() {
        let (mut format, _) = events_for(true);
        let blocked =
            r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":3}}"#;
        let mut out = Vec::new();
        format.push(&serde_json::from_str(blocked).unwrap(), blocked, &mut out);
        assert_eq!(format.finish(&mut out), Err(StreamEnd::Empty));
        assert!(format.give_up_empty(&mut out));
        let events = parse(&out);
        assert_eq!(names(&events), ["message_start", "message_delta", "message_stop"]);
        assert_eq!(events[1].1["delta"]["stop_reason"], "refusal");
        // A restart forgets the attempt.
        format.restart();
        assert!(!format.give_up_empty(&mut Vec::new()));
    }
}
