//! A Gemini answer → an Anthropic `Message` (pure; ids from the caller's
//! RNG, signatures handed to the caller's `remember`).
//!
//! Parts become blocks in order: thought text → a `thinking` block (only
//! when thoughts are shown), text → `text`, a `functionCall` → `tool_use`
//! with a fresh `toolu_…` id. Every thought signature reaches the client
//! on a `thinking` block placed right before the part it came on: the
//! thinking block just before it when there is one still unsigned, else
//! a `thinking` block of its own with empty text (for a call, only when
//! thoughts are shown: the call's signature is remembered by its
//! `tool_use` id in any case). The next turn brings it back in that
//! place, and [`super::request`] gives it to the same part again.
//!
//! [`Blocks`] is that rule as a state machine of block events, shared by
//! whole answers (collected into blocks) and streams (written as SSE).

use rand::distr::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};

use crate::gemini::types::{GenerateContentResponse, Part, UsageMetadata};
use crate::jsonout::{self, WriteJson};

use super::types::{Message, OutputBlock, StopReason, Usage};

/// What an answer is labelled with.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageMeta {
    /// `msg_…`.
    pub id: String,
    /// The model as the client named it.
    pub model: String,
    /// Thought text becomes `thinking` blocks.
    pub show_thinking: bool,
}

fn random_id(prefix: &str, rng: &mut impl Rng) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    id.extend((0..24).map(|_| char::from(rng.sample(Alphanumeric))));
    id
}

/// `msg_` and 24 random alphanumerics.
pub fn message_id(rng: &mut impl Rng) -> String {
    random_id("msg_", rng)
}

/// `toolu_` and 24 random alphanumerics: unique across answers, so it can
/// key the signature book (Gemini's own call ids are unique per answer).
pub fn tool_use_id(rng: &mut impl Rng) -> String {
    random_id("toolu_", rng)
}

/// Anthropic's usage from Gemini's: output counts thoughts too.
pub fn usage(meta: Option<&UsageMetadata>) -> Usage {
    let meta = meta.copied().unwrap_or_default();
    Usage {
        input_tokens: meta.prompt_token_count,
        output_tokens: meta.candidates_token_count.saturating_add(meta.thoughts_token_count),
        ..Usage::default()
    }
}

/// Gemini's finish reason (or a prompt block) as a stop reason. Gemini
/// says `STOP` for a stop sequence as for a natural end, so
/// `stop_sequence` is never told apart.
pub fn stop_reason(finish_reason: Option<&str>, prompt_blocked: bool, has_tool_use: bool) -> StopReason {
    if prompt_blocked {
        return StopReason::Refusal;
    }
    match finish_reason {
        Some("MAX_TOKENS") => StopReason::MaxTokens,
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "LANGUAGE") => {
            StopReason::Refusal
        }
        _ if has_tool_use => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// Whether Gemini refused (a blocked prompt, a safety stop): delivered as
/// `stop_reason: "refusal"` rather than as an error.
pub fn is_refusal(response: &GenerateContentResponse) -> bool {
    let blocked = response.prompt_feedback.as_ref().is_some_and(|feedback| feedback.block_reason.is_some());
    let first = response.candidates.first();
    blocked || stop_reason(first.and_then(|c| c.finish_reason.as_deref()), false, false) == StopReason::Refusal
}

/// A content-block event (before framing).
#[derive(Debug, Clone, PartialEq)]
pub enum BlockEvent {
    /// A new block at `index`; a `tool_use` carries its whole input.
    Start {
        index: usize,
        block: OutputBlock,
    },
    Delta {
        index: usize,
        delta: Delta,
    },
    Stop {
        index: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    TextDelta { text: String },
    ThinkingDelta { thinking: String },
    SignatureDelta { signature: String },
    InputJsonDelta { partial_json: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking { signed: bool },
}

/// Gemini parts in, block events out (see the module doc).
#[derive(Debug)]
pub struct Blocks {
    show_thinking: bool,
    open: Option<(usize, Open)>,
    next_index: usize,
    pub has_tool_use: bool,
}

impl Blocks {
    pub fn new(show_thinking: bool) -> Blocks {
        Blocks { show_thinking, open: None, next_index: 0, has_tool_use: false }
    }

    /// Whether any block was started.
    pub fn started_any(&self) -> bool {
        self.next_index > 0
    }

    fn start(&mut self, block: OutputBlock, open: Option<Open>, emit: &mut dyn FnMut(BlockEvent)) -> usize {
        self.close(emit);
        let index = self.next_index;
        self.next_index += 1;
        emit(BlockEvent::Start { index, block });
        match open {
            Some(open) => self.open = Some((index, open)),
            None => emit(BlockEvent::Stop { index }),
        }
        index
    }

    /// Ends the open block, if any.
    pub fn close(&mut self, emit: &mut dyn FnMut(BlockEvent)) {
        if let Some((index, _)) = self.open.take() {
            emit(BlockEvent::Stop { index });
        }
    }

    /// Hands `signature` to the client right before the next block: on
    /// the open, unsigned thinking block, or on one of its own.
    fn sign(&mut self, signature: &str, emit: &mut dyn FnMut(BlockEvent)) {
        let delta = Delta::SignatureDelta { signature: signature.to_owned() };
        if let Some((index, Open::Thinking { signed: false })) = self.open {
            emit(BlockEvent::Delta { index, delta });
            self.open = Some((index, Open::Thinking { signed: true }));
            return;
        }
        let empty = OutputBlock::Thinking { thinking: String::new(), signature: String::new() };
        let index = self.start(empty, Some(Open::Thinking { signed: true }), emit);
        emit(BlockEvent::Delta { index, delta });
        self.close(emit);
    }

    pub fn push_part(
        &mut self,
        part: &Part,
        rng: &mut impl Rng,
        remember: &mut dyn FnMut(&str, &str),
        emit: &mut dyn FnMut(BlockEvent),
    ) {
        let signature = part.thought_signature.as_deref().filter(|signature| !signature.is_empty());
        if let Some(call) = &part.function_call {
            let id = tool_use_id(rng);
            if let Some(signature) = signature {
                remember(&id, signature);
                if self.show_thinking {
                    self.sign(signature, emit);
                }
            }
            let input = if call.args.is_null() { json!({}) } else { call.args.clone() };
            self.has_tool_use = true;
            self.start(OutputBlock::ToolUse { id, name: call.name.clone(), input }, None, emit);
            return;
        }
        let Some(text) = &part.text else { return };
        if part.thought == Some(true) {
            if !self.show_thinking {
                return;
            }
            if text.is_empty() {
                if let Some(signature) = signature {
                    self.sign(signature, emit);
                }
                return;
            }
            let index = match self.open {
                Some((index, Open::Thinking { signed: false })) => index,
                _ => {
                    let empty = OutputBlock::Thinking { thinking: String::new(), signature: String::new() };
                    self.start(empty, Some(Open::Thinking { signed: false }), emit)
                }
            };
            emit(BlockEvent::Delta { index, delta: Delta::ThinkingDelta { thinking: text.as_str().to_owned() } });
            if let Some(signature) = signature {
                self.sign(signature, emit);
            }
            return;
        }
        if let Some(signature) = signature {
            if self.show_thinking {
                self.sign(signature, emit);
            }
        }
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some((index, Open::Text)) => index,
            _ => self.start(OutputBlock::Text { text: String::new() }, Some(Open::Text), emit),
        };
        emit(BlockEvent::Delta { index, delta: Delta::TextDelta { text: text.as_str().to_owned() } });
    }
}

/// Applies a block event to whole blocks (what a client's accumulator does).
fn apply(blocks: &mut Vec<OutputBlock>, event: BlockEvent) {
    match event {
        BlockEvent::Start { block, .. } => blocks.push(block),
        BlockEvent::Delta { index, delta } => match (blocks.get_mut(index), delta) {
            (Some(OutputBlock::Text { text }), Delta::TextDelta { text: more }) => text.push_str(&more),
            (Some(OutputBlock::Thinking { thinking, .. }), Delta::ThinkingDelta { thinking: more }) => {
                thinking.push_str(&more)
            }
            (Some(OutputBlock::Thinking { signature, .. }), Delta::SignatureDelta { signature: new }) => {
                *signature = new
            }
            _ => {}
        },
        BlockEvent::Stop { .. } => {}
    }
}

/// The `Message` for a whole Gemini answer (its first candidate).
pub fn to_message(
    response: &GenerateContentResponse,
    meta: &MessageMeta,
    rng: &mut impl Rng,
    remember: &mut dyn FnMut(&str, &str),
) -> Message {
    let mut content = Vec::new();
    let mut blocks = Blocks::new(meta.show_thinking);
    let candidate = response.candidates.first();
    let parts = candidate.and_then(|candidate| candidate.content.as_ref()).map(|content| content.parts.as_slice());
    {
        let mut emit = |event| apply(&mut content, event);
        for part in parts.unwrap_or_default() {
            blocks.push_part(part, rng, remember, &mut emit);
        }
        blocks.close(&mut emit);
    }
    let prompt_blocked = response.prompt_feedback.as_ref().is_some_and(|feedback| feedback.block_reason.is_some());
    let finish_reason = candidate.and_then(|candidate| candidate.finish_reason.as_deref());
    Message {
        id: meta.id.clone(),
        kind: "message",
        role: "assistant",
        model: meta.model.clone(),
        content,
        stop_reason: Some(stop_reason(finish_reason, prompt_blocked, blocks.has_tool_use)),
        stop_sequence: None,
        usage: usage(response.usage_metadata.as_ref()),
    }
}

/// `event: <type>\ndata: <json>\n\n`, the event's type being its `type`.
pub fn append_event(out: &mut Vec<u8>, event: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event["type"].as_str().unwrap_or("error").as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, event).ok();
    out.extend_from_slice(b"\n\n");
}

/// Opens an event: `event: <kind>\ndata: {"type":"<kind>"`. The caller
/// writes the body's other members, then [`EVENT_END`]. Written by hand
/// (`jsonout`), byte for byte as serde_json wrote these events (tested
/// against it), without its key escaping and flattening.
fn open_typed(out: &mut Vec<u8>, kind: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"type\":");
    jsonout::string(out, kind);
}

/// Closes the body opened by [`open_typed`] and ends the event.
const EVENT_END: &[u8] = b"}\n\n";

/// `message_start`, with no content yet.
pub fn append_message_start(out: &mut Vec<u8>, meta: &MessageMeta, usage: Usage) {
    open_typed(out, "message_start");
    out.extend_from_slice(b",\"message\":{\"id\":");
    jsonout::string(out, &meta.id);
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    jsonout::string(out, &meta.model);
    out.extend_from_slice(b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    usage.write_json(out);
    out.push(b'}');
    out.extend_from_slice(EVENT_END);
}

/// `message_delta` (the stop reason and the final usage), then `message_stop`.
pub fn append_message_end(out: &mut Vec<u8>, stop_reason: StopReason, usage: Usage) {
    open_typed(out, "message_delta");
    out.extend_from_slice(b",\"delta\":{\"stop_reason\":");
    jsonout::string(out, stop_reason.as_str());
    out.extend_from_slice(b",\"stop_sequence\":null},\"usage\":");
    usage.write_json(out);
    out.extend_from_slice(EVENT_END);
    out.extend_from_slice(MESSAGE_STOP);
}

const MESSAGE_STOP: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// One block event as SSE; a `tool_use` starts with an empty input and
/// gets it whole as one `input_json_delta`.
pub fn append_block_event(out: &mut Vec<u8>, event: &BlockEvent) {
    match event {
        BlockEvent::Start { index, block: OutputBlock::ToolUse { id, name, input } } => {
            open_block_event(out, "content_block_start", *index);
            out.extend_from_slice(b",\"content_block\":{\"type\":\"tool_use\",\"id\":");
            jsonout::string(out, id);
            out.extend_from_slice(b",\"name\":");
            jsonout::string(out, name);
            out.extend_from_slice(b",\"input\":{}}");
            out.extend_from_slice(EVENT_END);
            let delta = Delta::InputJsonDelta { partial_json: input.to_string() };
            append_block_delta(out, *index, &delta);
        }
        BlockEvent::Start { index, block } => {
            open_block_event(out, "content_block_start", *index);
            out.extend_from_slice(b",\"content_block\":");
            block.write_json(out);
            out.extend_from_slice(EVENT_END);
        }
        BlockEvent::Delta { index, delta } => append_block_delta(out, *index, delta),
        BlockEvent::Stop { index } => {
            open_block_event(out, "content_block_stop", *index);
            out.extend_from_slice(EVENT_END);
        }
    }
}

/// `event: <kind>\ndata: {"type":"<kind>","index":<index>`.
fn open_block_event(out: &mut Vec<u8>, kind: &str, index: usize) {
    open_typed(out, kind);
    out.extend_from_slice(b",\"index\":");
    jsonout::uint(out, index as u64);
}

fn append_block_delta(out: &mut Vec<u8>, index: usize, delta: &Delta) {
    open_block_event(out, "content_block_delta", index);
    out.extend_from_slice(b",\"delta\":");
    delta.write_json(out);
    out.extend_from_slice(EVENT_END);
}

impl WriteJson for Delta {
    fn write_json(&self, out: &mut Vec<u8>) {
        let (kind, key, text): (&[u8], &[u8], &str) = match self {
            Delta::TextDelta { text } => (b"text_delta", b"text", text),
            Delta::ThinkingDelta { thinking } => (b"thinking_delta", b"thinking", thinking),
            Delta::SignatureDelta { signature } => (b"signature_delta", b"signature", signature),
            Delta::InputJsonDelta { partial_json } => (b"input_json_delta", b"partial_json", partial_json),
        };
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        jsonout::string(out, text);
        out.push(b'}');
    }
}

/// A whole message as its stream of events (fake streaming, swipes).
pub fn message_events(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    let meta = MessageMeta { id: message.id.clone(), model: message.model.clone(), show_thinking: true };
    let start_usage = Usage { output_tokens: 0, ..message.usage };
    append_message_start(&mut out, &meta, start_usage);
    for (index, block) in message.content.iter().enumerate() {
        let start = match block {
            OutputBlock::Text { .. } => OutputBlock::Text { text: String::new() },
            OutputBlock::Thinking { .. } => OutputBlock::Thinking { thinking: String::new(), signature: String::new() },
            tool_use => tool_use.clone(),
        };
        append_block_event(&mut out, &BlockEvent::Start { index, block: start });
        let deltas = match block {
            OutputBlock::Text { text } => vec![Delta::TextDelta { text: text.clone() }],
            OutputBlock::Thinking { thinking, signature } => {
                let mut deltas = Vec::new();
                if !thinking.is_empty() {
                    deltas.push(Delta::ThinkingDelta { thinking: thinking.clone() });
                }
                if !signature.is_empty() {
                    deltas.push(Delta::SignatureDelta { signature: signature.clone() });
                }
                deltas
            }
            OutputBlock::ToolUse { .. } => Vec::new(),
        };
        for delta in deltas {
            append_block_event(&mut out, &BlockEvent::Delta { index, delta });
        }
        append_block_event(&mut out, &BlockEvent::Stop { index });
    }
    append_message_end(&mut out, message.stop_reason.unwrap_or(StopReason::EndTurn), message.usage);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const SIGNATURE: &str = "CiIBVKhc7oDPpCaXyJKKssjqr4g3JNOSgJ/M2V+1THC1icsWCmwBVKhc7pBABjFjQ0zjcNOD5wDWVVh1UAjpbuO8";

    fn answer(fixture: &str) -> GenerateContentResponse {
        serde_json::from_str(fixture).unwrap()
    }

    fn convert(fixture: &str, show_thinking: bool) -> (Message, Vec<(String, String)>) {
        let meta = MessageMeta { id: "msg_1".into(), model: "claude-sonnet-4-5".into(), show_thinking };
        let mut remembered = Vec::new();
        let mut remember = |id: &str, signature: &str| remembered.push((id.to_owned(), signature.to_owned()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let message = to_message(&answer(fixture), &meta, &mut rng, &mut remember);
        (message, remembered)
    }

    #[test]
    fn a_text_answer() {
        let (message, _) = convert(include_str!("../../tests/it/fixtures/gemini/response-text.json"), true);
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(
            json,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                   "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
                   "stop_reason": "end_turn", "stop_sequence": null,
                   "usage": {"input_tokens": 12, "output_tokens": 9,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
        );
    }

    #[test]
    fn thoughts_become_thinking_blocks_and_the_signature_reaches_the_client() {
        let (message, _) = convert(include_str!("../../tests/it/fixtures/gemini/response-thinking.json"), true);
        assert_eq!(
            message.content,
            [
                OutputBlock::Thinking {
                    thinking: "**Adding the numbers**\n\nTwo plus two is four.".into(),
                    signature: String::new()
                },
                OutputBlock::Text { text: "2 + 2 = 4.".into() },
            ]
        );
        assert_eq!(message.usage.output_tokens, 207, "thoughts count as output");
        let (hidden, _) = convert(include_str!("../../tests/it/fixtures/gemini/response-thinking.json"), false);
        assert_eq!(hidden.content, [OutputBlock::Text { text: "2 + 2 = 4.".into() }]);
        // Gemini 3 signs the text: the thinking block before it carries it.
        let (signed, _) = convert(include_str!("../../tests/it/fixtures/gemini/response-thinking-signed.json"), true);
        assert!(matches!(&signed.content[0], OutputBlock::Thinking { signature, .. } if signature == SIGNATURE));
        assert_eq!(signed.content[1], OutputBlock::Text { text: "2 + 2 = 4.".into() });
        // Without thoughts shown, a text signature still gets a block of its own.
        let text_only =
            r#"{"candidates":[{"content":{"parts":[{"text":"Hi","thoughtSignature":"S1"}]},"finishReason":"STOP"}]}"#;
        let (message, _) = convert(text_only, true);
        assert_eq!(
            message.content,
            [
                OutputBlock::Thinking { thinking: String::new(), signature: "S1".into() },
                OutputBlock::Text { text: "Hi".into() }
            ]
        );
    }

    #[test]
    fn parallel_calls_become_tool_use_blocks_and_the_first_signature_is_kept_twice() {
        let fixture = include_str!("../../tests/it/fixtures/gemini/response-function-call.json");
        let (message, remembered) = convert(fixture, true);
        assert_eq!(message.stop_reason, Some(StopReason::ToolUse));
        let [OutputBlock::Thinking { thinking, signature }, OutputBlock::ToolUse { id: first, name, input }, OutputBlock::ToolUse { id: second, .. }] =
            message.content.as_slice()
        else {
            panic!("{:?}", message.content)
        };
        assert_eq!((thinking.as_str(), signature.as_str()), ("", SIGNATURE));
        assert_eq!((name.as_str(), input), ("get_weather", &json!({"city": "Paris", "unit": "celsius"})));
        assert!(first.starts_with("toolu_") && first.len() == 30 && first != second);
        // Remembered by id for the first call only.
        assert_eq!(remembered, [(first.clone(), SIGNATURE.to_owned())]);
        // Thoughts not shown: by id only.
        let (message, remembered) = convert(fixture, false);
        assert!(matches!(message.content[0], OutputBlock::ToolUse { .. }));
        assert_eq!(remembered.len(), 1);
    }

    #[test]
    fn stop_reasons() {
        let stop = |fixture: &str| convert(fixture, true).0.stop_reason.unwrap();
        assert_eq!(
            stop(include_str!("../../tests/it/fixtures/gemini/response-max-tokens.json")),
            StopReason::MaxTokens
        );
        assert_eq!(
            stop(include_str!("../../tests/it/fixtures/gemini/response-finish-safety.json")),
            StopReason::Refusal
        );
        let blocked = include_str!("../../tests/it/fixtures/gemini/response-prompt-blocked.json");
        assert_eq!(stop(blocked), StopReason::Refusal);
        assert!(convert(blocked, true).0.content.is_empty());
        assert!(is_refusal(&answer(blocked)));
        assert!(!is_refusal(&answer(include_str!("../../tests/it/fixtures/gemini/response-text.json"))));
    }

    #[test]
    fn a_message_replays_as_the_event_sequence() {
        let (message, _) = convert(include_str!("../../tests/it/fixtures/gemini/response-function-call.json"), true);
        let text = String::from_utf8(message_events(&message)).unwrap();
        let events: Vec<(&str, Value)> = text
            .split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                (
                    name.strip_prefix("event: ").unwrap(),
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = events.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for (name, data) in &events {
            assert_eq!(data["type"], *name);
        }
        assert_eq!(events[2].1["delta"], json!({"type": "signature_delta", "signature": SIGNATURE}));
        assert_eq!(events[4].1["content_block"]["input"], json!({}));
        let partial = events[5].1["delta"]["partial_json"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(partial).unwrap(), json!({"city": "Paris", "unit": "celsius"}));
        assert_eq!(events[10].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[10].1["usage"]["output_tokens"], 90);
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 60);
    }

    /// The events as serde_json wrote them before they were written by
    /// hand: what `append_*` must still write, byte for byte.
    mod serde_written {
        use super::super::*;

        fn typed(out: &mut Vec<u8>, kind: &str, body: &impl Serialize) {
            #[derive(Serialize)]
            struct Typed<'a, B> {
                #[serde(rename = "type")]
                kind: &'a str,
                #[serde(flatten)]
                body: B,
            }
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            serde_json::to_writer(&mut *out, &Typed { kind, body }).unwrap();
            out.extend_from_slice(b"\n\n");
        }

        pub fn message_start(out: &mut Vec<u8>, meta: &MessageMeta, usage: Usage) {
            #[derive(Serialize)]
            struct Start<'a> {
                message: StartMessage<'a>,
            }
            #[derive(Serialize)]
            struct StartMessage<'a> {
                id: &'a str,
                #[serde(rename = "type")]
                kind: &'static str,
                role: &'static str,
                model: &'a str,
                content: [u8; 0],
                stop_reason: Option<StopReason>,
                stop_sequence: Option<&'static str>,
                usage: Usage,
            }
            let message = StartMessage {
                id: &meta.id,
                kind: "message",
                role: "assistant",
                model: &meta.model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage,
            };
            typed(out, "message_start", &Start { message });
        }

        pub fn message_end(out: &mut Vec<u8>, stop_reason: StopReason, usage: Usage) {
            #[derive(Serialize)]
            struct MessageDelta {
                delta: StopDelta,
                usage: Usage,
            }
            #[derive(Serialize)]
            struct StopDelta {
                stop_reason: StopReason,
                stop_sequence: Option<&'static str>,
            }
            typed(out, "message_delta", &MessageDelta { delta: StopDelta { stop_reason, stop_sequence: None }, usage });
            out.extend_from_slice(MESSAGE_STOP);
        }

        pub fn block_event(out: &mut Vec<u8>, event: &BlockEvent) {
            #[derive(Serialize)]
            struct Start<B> {
                index: usize,
                content_block: B,
            }
            #[derive(Serialize)]
            struct ToolUseStart<'a> {
                #[serde(rename = "type")]
                kind: &'static str,
                id: &'a str,
                name: &'a str,
                input: Empty,
            }
            #[derive(Serialize)]
            struct Empty {}
            #[derive(Serialize)]
            struct BlockDelta<'a> {
                index: usize,
                delta: &'a Delta,
            }
            #[derive(Serialize)]
            struct Stop {
                index: usize,
            }
            match event {
                BlockEvent::Start { index, block: OutputBlock::ToolUse { id, name, input } } => {
                    let content_block = ToolUseStart { kind: "tool_use", id, name, input: Empty {} };
                    typed(out, "content_block_start", &Start { index: *index, content_block });
                    let delta = Delta::InputJsonDelta { partial_json: input.to_string() };
                    typed(out, "content_block_delta", &BlockDelta { index: *index, delta: &delta });
                }
                BlockEvent::Start { index, block } => {
                    typed(out, "content_block_start", &Start { index: *index, content_block: block })
                }
                BlockEvent::Delta { index, delta } => {
                    typed(out, "content_block_delta", &BlockDelta { index: *index, delta })
                }
                BlockEvent::Stop { index } => typed(out, "content_block_stop", &Stop { index: *index }),
            }
        }
    }

    #[test]
    fn events_are_written_by_hand_as_serde_json_wrote_them() {
        for text in ["", "Hello", "line\nand \"quote\" \\ 你好 \u{1}\u{7f}\u{202e}"] {
            let meta = MessageMeta { id: format!("msg_{text}"), model: text.to_owned(), show_thinking: true };
            let usage = Usage {
                input_tokens: 3,
                output_tokens: u64::MAX,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 7,
            };
            let (mut by_hand, mut serde) = (Vec::new(), Vec::new());
            append_message_start(&mut by_hand, &meta, usage);
            serde_written::message_start(&mut serde, &meta, usage);
            for stop_reason in [
                StopReason::EndTurn,
                StopReason::MaxTokens,
                StopReason::StopSequence,
                StopReason::ToolUse,
                StopReason::Refusal,
            ] {
                append_message_end(&mut by_hand, stop_reason, usage);
                serde_written::message_end(&mut serde, stop_reason, usage);
            }
            let blocks = [
                OutputBlock::Text { text: text.to_owned() },
                OutputBlock::Thinking { thinking: text.to_owned(), signature: format!("sig{text}") },
                OutputBlock::ToolUse {
                    id: format!("toolu_{text}"),
                    name: text.to_owned(),
                    input: json!({"q": text, "n": [1, 2.5, null, true], "o": {}}),
                },
            ];
            let deltas = [
                Delta::TextDelta { text: text.to_owned() },
                Delta::ThinkingDelta { thinking: text.to_owned() },
                Delta::SignatureDelta { signature: text.to_owned() },
                Delta::InputJsonDelta { partial_json: format!("{{\"q\":{text:?}}}") },
            ];
            for (index, block) in blocks.into_iter().enumerate() {
                let index = index * 1000;
                let events = [BlockEvent::Start { index, block }, BlockEvent::Stop { index }];
                for event in events.iter().chain(&deltas.clone().map(|delta| BlockEvent::Delta { index, delta })) {
                    append_block_event(&mut by_hand, event);
                    serde_written::block_event(&mut serde, event);
                }
            }
            assert_eq!(String::from_utf8(by_hand).unwrap(), String::from_utf8(serde).unwrap());
        }
    }
}
