//! Stateful conversion of Gemini `streamGenerateContent` events into OpenAI
//! `chat.completion.chunk`s (spec §5.2). The caller decodes the upstream SSE
//! (see [`crate::gemini::sse`]), parses each event, and pushes it here; every
//! push appends the chunks to flush at once, as SSE `data:` events. At
//! upstream EOF, [`finish`] appends the closing chunks or says why the stream
//! is unusable (truncated or empty), so the caller can retry on another key
//! while [`has_output`] is still false, or end the client's stream with an
//! error event otherwise.
//!
//! A chunk is written straight into the caller's buffer: the part every
//! chunk of the answer shares (`{"id":…,"object":…,"created":…,"model":…,
//! "choices":[`) is rendered once per answer, then each chunk adds its one
//! choice, whose text is borrowed from the upstream event (no chunk value,
//! no copy of the id, model or text per chunk). The bytes are those
//! serde_json writes for a [`ChatChunk`].
//!
//! Finish chunks are deferred to [`finish`]: an event carrying
//! `finishReason` only has its content converted, and the reason is
//! remembered. This keeps an empty answer (`finishReason: STOP` with empty
//! text) from ever producing a chunk, and the finish chunk still reaches the
//! client right before the usage chunk and `[DONE]`.
//!
//! [`finish`]: StreamConverter::finish
//! [`has_output`]: StreamConverter::has_output

use std::borrow::Cow;

use rand::Rng;

use crate::gemini::types::{Candidate, GenerateContentResponse, UsageMetadata};
use crate::jsonout::WriteJson;
use crate::openai::response::{
    finish_reason, tool_call_from_function_call, usage, AnswerMeta, ASSISTANT_ROLE, CHUNK_OBJECT,
};
#[cfg(doc)]
use crate::openai::types::ChatChunk;
use crate::openai::types::{ChunkChoice, Delta, Usage};

pub use crate::convert::stream::StreamEnd;

/// What has been sent so far for one choice (one Gemini candidate).
#[derive(Debug)]
struct ChoiceProgress {
    choice_index: u32,
    role_sent: bool,
    tool_calls_sent: u32,
    /// Latest Gemini `finishReason` seen for this candidate.
    gemini_finish_reason: Option<Cow<'static, str>>,
    finish_chunk_sent: bool,
}

impl ChoiceProgress {
    fn new(choice_index: u32) -> Self {
        ChoiceProgress {
            choice_index,
            role_sent: false,
            tool_calls_sent: 0,
            gemini_finish_reason: None,
            finish_chunk_sent: false,
        }
    }
}

/// Converts one upstream stream; create one per answer.
#[derive(Debug)]
pub struct StreamConverter {
    show_thinking: bool,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`: the
    /// start every chunk of this answer shares.
    chunk_start: Vec<u8>,
    /// In order of first appearance; answers have very few candidates.
    choices: Vec<ChoiceProgress>,
    latest_usage_metadata: Option<UsageMetadata>,
    /// Content, reasoning or a tool call has been emitted.
    emitted_any_delta: bool,
    /// Content or a tool call has been emitted (reasoning alone is not an
    /// answer, spec §5.2).
    emitted_answer: bool,
    saw_finish_reason: bool,
}

impl StreamConverter {
    pub fn new(meta: &AnswerMeta) -> Self {
        use std::io::Write;
        let mut chunk_start = Vec::with_capacity(96 + meta.id.len() + meta.model.len());
        chunk_start.extend_from_slice(b"data: {\"id\":");
        // Writing into a Vec cannot fail.
        serde_json::to_writer(&mut chunk_start, &meta.id).ok();
        write!(chunk_start, ",\"object\":\"{CHUNK_OBJECT}\",\"created\":{},\"model\":", meta.created).ok();
        serde_json::to_writer(&mut chunk_start, &meta.model).ok();
        chunk_start.extend_from_slice(b",\"choices\":[");
        StreamConverter {
            show_thinking: meta.show_thinking,
            chunk_start,
            choices: Vec::new(),
            latest_usage_metadata: None,
            emitted_any_delta: false,
            emitted_answer: false,
            saw_finish_reason: false,
        }
    }

    /// Converts one upstream event into zero or more chunks appended to
    /// `out`: one chunk per non-empty text part (`content`, or
    /// `reasoning_content` for thoughts when `show_thinking`) and per
    /// function call. The first chunk of each choice carries the role.
    /// Never writes an empty delta.
    pub fn push(
        &mut self,
        event: &GenerateContentResponse,
        rng: &mut impl Rng,
        remember_signature: &mut dyn FnMut(&str, &str),
        out: &mut Vec<u8>,
    ) {
        if let Some(usage_metadata) = event.usage_metadata {
            self.latest_usage_metadata = Some(usage_metadata);
        }
        for candidate in &event.candidates {
            self.push_candidate(candidate, rng, remember_signature, out);
        }
    }

    fn push_candidate(
        &mut self,
        candidate: &Candidate,
        rng: &mut impl Rng,
        remember_signature: &mut dyn FnMut(&str, &str),
        out: &mut Vec<u8>,
    ) {
        let progress_position = self.progress_position(candidate.index);
        let parts = candidate.content.iter().flat_map(|content| &content.parts);
        for part in parts {
            let progress = &mut self.choices[progress_position];
            let mut delta = Delta::default();
            let tool_call;
            if let Some(function_call) = &part.function_call {
                tool_call = tool_call_from_function_call(
                    function_call,
                    part.thought_signature.as_deref(),
                    progress.tool_calls_sent,
                    rng,
                    remember_signature,
                );
                progress.tool_calls_sent = progress.tool_calls_sent.saturating_add(1);
                delta.tool_calls = Some(Cow::Borrowed(std::slice::from_ref(&tool_call)));
                self.emitted_answer = true;
            } else if let Some(text) = part.text.as_ref().filter(|text| !text.is_empty()) {
                if part.thought == Some(true) {
                    if !self.show_thinking {
                        continue;
                    }
                    delta.reasoning_content = Some(Cow::Borrowed(text.as_str()));
                } else {
                    delta.content = Some(Cow::Borrowed(text.as_str()));
                    self.emitted_answer = true;
                }
            } else {
                // Empty text, or a part kind OpenAI has no delta for.
                continue;
            }
            if !progress.role_sent {
                delta.role = Some(ASSISTANT_ROLE);
                progress.role_sent = true;
            }
            let choice_index = progress.choice_index;
            self.emitted_any_delta = true;
            self.write_chunk(out, choice_index, delta, None);
        }
        if let Some(gemini_reason) = &candidate.finish_reason {
            self.choices[progress_position].gemini_finish_reason = Some(gemini_reason.clone());
            self.saw_finish_reason = true;
        }
    }

    /// The role-only first chunk (`delta: {role: "assistant", content: ""}`
    /// for choice 0), sent as soon as the upstream answered 200 and before
    /// its first event (§5.2): clients that throttle rendering drop an
    /// update that arrives with the headers. Later chunks of choice 0 no
    /// longer carry the role.
    pub fn announce_role(&mut self, out: &mut Vec<u8>) {
        self.role_already_announced();
        let delta = Delta { role: Some(ASSISTANT_ROLE), content: Some(Cow::Borrowed("")), ..Delta::default() };
        self.write_chunk(out, 0, delta, None);
    }

    /// Choice 0's role went out already (with an earlier attempt's
    /// [`announce_role`](Self::announce_role)).
    pub fn role_already_announced(&mut self) {
        let position = self.progress_position(0);
        self.choices[position].role_sent = true;
    }

    fn progress_position(&mut self, choice_index: u32) -> usize {
        match self.choices.iter().position(|progress| progress.choice_index == choice_index) {
            Some(position) => position,
            None => {
                self.choices.push(ChoiceProgress::new(choice_index));
                self.choices.len() - 1
            }
        }
    }

    /// `data: ` and a chunk of one choice, then the blank line.
    fn write_chunk(&self, out: &mut Vec<u8>, index: u32, delta: Delta<'_>, finish_reason: Option<&str>) {
        out.extend_from_slice(&self.chunk_start);
        let choice = ChunkChoice { index, delta, finish_reason: finish_reason.map(Cow::Borrowed) };
        choice.write_json(out);
        out.extend_from_slice(b"]}\n\n");
    }

    /// `data: ` and the trailing `choices: []` chunk carrying usage.
    fn write_usage_chunk(&self, out: &mut Vec<u8>, usage: &Usage) {
        out.extend_from_slice(&self.chunk_start);
        out.extend_from_slice(b"],\"usage\":");
        usage.write_json(out);
        out.extend_from_slice(b"}\n\n");
    }

    /// Whether any content, reasoning or tool call has been produced so far
    /// (before that, the caller may still retry on another key).
    pub fn has_output(&self) -> bool {
        self.emitted_any_delta
    }

    /// At upstream EOF: the closing chunks, appended to `out` — a finish chunk (empty delta,
    /// mapped reason; `stop` for a candidate that never got one) per choice
    /// that has not had one, then the usage chunk when `include_usage` and
    /// usage is known.
    ///
    /// Errors: [`StreamEnd::Empty`] when nothing at all was produced and no
    /// finish reason came (nothing to retry from, e.g. a prompt block), or
    /// when the stream finished without any content or tool call (thoughts
    /// alone do not count); [`StreamEnd::Truncated`] when something was
    /// produced but no event carried `finishReason`.
    pub fn finish(&mut self, include_usage: bool, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        if !self.saw_finish_reason {
            return Err(if self.emitted_any_delta { StreamEnd::Truncated } else { StreamEnd::Empty });
        }
        if !self.emitted_answer {
            return Err(StreamEnd::Empty);
        }
        for position in 0..self.choices.len() {
            let progress = &mut self.choices[position];
            if progress.finish_chunk_sent {
                continue;
            }
            progress.finish_chunk_sent = true;
            let gemini_reason = progress.gemini_finish_reason.as_deref().unwrap_or("STOP");
            let mapped_reason = finish_reason(Some(gemini_reason), progress.tool_calls_sent > 0);
            // A choice that produced nothing still announces the role.
            let delta = Delta { role: (!progress.role_sent).then_some(ASSISTANT_ROLE), ..Delta::default() };
            progress.role_sent = true;
            let choice_index = progress.choice_index;
            self.write_chunk(out, choice_index, delta, mapped_reason);
        }
        if let (true, Some(usage)) = (include_usage, self.usage()) {
            self.write_usage_chunk(out, &usage);
        }
        Ok(())
    }

    /// Latest `usageMetadata` seen, converted.
    pub fn usage(&self) -> Option<Usage> {
        self.latest_usage_metadata.as_ref().map(usage)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::{json, Value};

    use super::*;
    use crate::gemini::sse::SseDecoder;

    struct StreamOutcome {
        /// Chunks from `push` then `finish`, as JSON with tool-call ids
        /// replaced by `"<call id>"`.
        chunks: Vec<Value>,
        end: Result<(), StreamEnd>,
        has_output: bool,
        remembered_signatures: Vec<(String, String)>,
        usage: Option<Usage>,
    }

    fn run_stream(sse_text: &str, show_thinking: bool, include_usage: bool) -> StreamOutcome {
        let mut decoder = SseDecoder::default();
        let mut payloads = decoder.feed(sse_text.as_bytes());
        payloads.extend(decoder.finish());
        let mut converter = StreamConverter::new(&AnswerMeta {
            id: "chatcmpl-s".to_string(),
            created: 42,
            model: "gemini-test".to_string(),
            show_thinking,
        });
        let mut rng = StdRng::seed_from_u64(3);
        let mut remembered_signatures = Vec::new();
        let mut out = Vec::new();
        for payload in payloads {
            let event: GenerateContentResponse = serde_json::from_str(&payload).expect("fixture event parses");
            converter.push(
                &event,
                &mut rng,
                &mut |call_id, signature| remembered_signatures.push((call_id.to_string(), signature.to_string())),
                &mut out,
            );
        }
        let end = converter.finish(include_usage, &mut out);
        let mut call_ids = Vec::new();
        let chunks = sse_events(&out)
            .iter()
            .map(|event| {
                let mut chunk_json: Value = serde_json::from_str(event).expect("a chunk is JSON");
                normalize_tool_call_ids(&mut chunk_json, &mut call_ids);
                chunk_json
            })
            .collect();
        for (call_id, _) in &remembered_signatures {
            assert!(call_ids.contains(call_id), "remembered unknown id {call_id}");
        }
        StreamOutcome {
            chunks,
            end,
            has_output: converter.has_output(),
            remembered_signatures,
            usage: converter.usage(),
        }
    }

    /// The `data:` payloads of written events, checking their framing.
    fn sse_events(out: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(out).expect("UTF-8");
        assert!(text.is_empty() || text.ends_with("\n\n"), "{text}");
        text.split_terminator("\n\n")
            .map(|event| event.strip_prefix("data: ").unwrap_or_else(|| panic!("{event}")).to_owned())
            .collect()
    }

    #[test]
    fn written_chunks_are_the_bytes_serde_writes_for_a_chat_chunk() {
        use crate::openai::response::{single_choice_chunk, usage_chunk};
        // Text that needs escaping everywhere it can be.
        let meta = AnswerMeta {
            id: "chatcmpl-\"x\"".to_owned(),
            created: 1_700_000_000,
            model: "gemini \\ \u{7} 模型".to_owned(),
            show_thinking: true,
        };
        let mut converter = StreamConverter::new(&meta);
        let event: GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"parts": [{"text": "say \"hi\"\n\t😀"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
        }))
        .unwrap();
        let mut out = Vec::new();
        converter.announce_role(&mut out);
        converter.push(&event, &mut StdRng::seed_from_u64(1), &mut |_, _| {}, &mut out);
        converter.finish(true, &mut out).unwrap();
        let owned = |delta: Delta, reason: Option<&str>| {
            let chunk = single_choice_chunk(&meta.id, meta.created, &meta.model, 0, delta, reason);
            serde_json::to_string(&chunk).unwrap()
        };
        let expected = [
            owned(Delta { role: Some(ASSISTANT_ROLE), content: Some("".into()), ..Delta::default() }, None),
            owned(Delta { content: Some("say \"hi\"\n\t😀".into()), ..Delta::default() }, None),
            owned(Delta::default(), Some("stop")),
            serde_json::to_string(&usage_chunk(&meta.id, meta.created, &meta.model, converter.usage().unwrap()))
                .unwrap(),
        ];
        assert_eq!(sse_events(&out), expected);
    }

    fn normalize_tool_call_ids(chunk_json: &mut Value, call_ids: &mut Vec<String>) {
        let Some(choices) = chunk_json.get_mut("choices").and_then(Value::as_array_mut) else {
            return;
        };
        for choice in choices {
            let calls =
                choice.get_mut("delta").and_then(|delta| delta.get_mut("tool_calls")).and_then(Value::as_array_mut);
            for call in calls.into_iter().flatten() {
                let id = call["id"].as_str().expect("tool call id").to_string();
                assert!(id.starts_with("call_") && id.len() == 29, "{id}");
                assert!(!call_ids.contains(&id), "duplicate tool call id {id}");
                call["id"] = json!("<call id>");
                call_ids.push(id);
            }
        }
    }

    fn chunk(delta: Value, finish_reason: Value) -> Value {
        json!({
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 42,
            "model": "gemini-test",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
        })
    }

    fn usage_chunk_json(prompt: u64, completion: u64, total: u64, reasoning: u64) -> Value {
        json!({
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 42,
            "model": "gemini-test",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": total,
                "completion_tokens_details": { "reasoning_tokens": reasoning },
            },
        })
    }

    /// Runs `sse_text` and checks the chunks and how the stream ended.
    fn check(
        sse_text: &str,
        show_thinking: bool,
        include_usage: bool,
        expected_chunks: Vec<Value>,
        expected_end: Result<(), StreamEnd>,
    ) -> StreamOutcome {
        let outcome = run_stream(sse_text, show_thinking, include_usage);
        assert_eq!(outcome.chunks, expected_chunks);
        assert_eq!(outcome.end, expected_end);
        outcome
    }

    const TEXT: &str = include_str!("../../tests/it/fixtures/gemini/stream-text.sse");
    const THINKING: &str = include_str!("../../tests/it/fixtures/gemini/stream-thinking.sse");
    const FUNCTION_CALL: &str = include_str!("../../tests/it/fixtures/gemini/stream-function-call.sse");
    const TRUNCATED: &str = include_str!("../../tests/it/fixtures/gemini/stream-truncated.sse");
    const EMPTY_STOP: &str = include_str!("../../tests/it/fixtures/gemini/stream-empty-stop.sse");

    #[test]
    fn text_stream_with_and_without_usage() {
        let deltas = vec![
            chunk(json!({ "role": "assistant", "content": "Hello" }), Value::Null),
            chunk(json!({ "content": "! How can I" }), Value::Null),
            chunk(json!({ "content": " help you today?" }), Value::Null),
            chunk(json!({}), json!("stop")),
        ];
        let outcome = check(TEXT, false, false, deltas.clone(), Ok(()));
        assert!(outcome.has_output);
        let mut with_usage = deltas;
        with_usage.push(usage_chunk_json(4, 9, 13, 0));
        check(TEXT, false, true, with_usage, Ok(()));
    }

    #[test]
    fn thinking_stream_shown_and_hidden() {
        check(
            THINKING,
            true,
            true,
            vec![
                chunk(
                    json!({ "role": "assistant", "reasoning_content": "**Considering the question**\n\n" }),
                    Value::Null,
                ),
                chunk(json!({ "reasoning_content": "The user asks for a sum." }), Value::Null),
                chunk(json!({ "content": "2 + 2 = 4." }), Value::Null),
                chunk(json!({}), json!("stop")),
                usage_chunk_json(8, 107, 115, 100),
            ],
            Ok(()),
        );
        check(
            THINKING,
            false,
            false,
            vec![
                chunk(json!({ "role": "assistant", "content": "2 + 2 = 4." }), Value::Null),
                chunk(json!({}), json!("stop")),
            ],
            Ok(()),
        );
    }

    #[test]
    fn function_call_stream() {
        let signature = "CiIBVKhc7oDPpCaXyJKKssjqr4g3";
        let outcome = check(
            FUNCTION_CALL,
            false,
            true,
            vec![
                chunk(
                    json!({
                        "role": "assistant",
                        "tool_calls": [{
                            "index": 0,
                            "id": "<call id>",
                            "type": "function",
                            "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" },
                            "extra_content": { "google": { "thought_signature": signature } },
                        }],
                    }),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
                usage_chunk_json(50, 10, 60, 0),
            ],
            Ok(()),
        );
        assert_eq!(outcome.remembered_signatures.len(), 1);
        assert_eq!(outcome.remembered_signatures[0].1, signature);
    }

    #[test]
    fn truncated_stream_is_reported_after_its_content() {
        let outcome = check(
            TRUNCATED,
            false,
            true,
            vec![
                chunk(json!({ "role": "assistant", "content": "Once upon a time" }), Value::Null),
                chunk(json!({ "content": ", in a kingdom" }), Value::Null),
            ],
            Err(StreamEnd::Truncated),
        );
        assert!(outcome.has_output);
        assert_eq!(outcome.usage, None);
    }

    #[test]
    fn empty_stop_stream_is_empty_without_output() {
        let outcome = check(EMPTY_STOP, false, true, vec![], Err(StreamEnd::Empty));
        assert!(!outcome.has_output);
        assert_eq!(outcome.usage.map(|usage| usage.prompt_tokens), Some(300));
    }

    #[test]
    fn edge_streams() {
        let events = |events: &[Value]| -> String { events.iter().map(|event| format!("data: {event}\n\n")).collect() };
        // A prompt block: no candidates, no finish reason.
        check(
            &events(&[json!({ "promptFeedback": { "blockReason": "PROHIBITED_CONTENT" } })]),
            false,
            true,
            vec![],
            Err(StreamEnd::Empty),
        );
        // Nothing at all.
        check("", false, true, vec![], Err(StreamEnd::Empty));
        // Thoughts only, then STOP: reasoning went out but there is no answer.
        let thoughts_only = events(&[json!({ "candidates": [{
            "content": { "parts": [{ "text": "hmm", "thought": true }] },
            "finishReason": "STOP",
        }] })]);
        let outcome = check(
            &thoughts_only,
            true,
            false,
            vec![chunk(json!({ "role": "assistant", "reasoning_content": "hmm" }), Value::Null)],
            Err(StreamEnd::Empty),
        );
        assert!(outcome.has_output);
        let outcome = check(&thoughts_only, false, false, vec![], Err(StreamEnd::Empty));
        assert!(!outcome.has_output);
        // Finish reason in a content-less last event, then usage in a
        // candidate-less one; MAX_TOKENS maps to length; text then a call in
        // one event keeps the per-choice call index.
        check(
            &events(&[
                json!({ "candidates": [{ "content": { "parts": [
                    { "text": "a" },
                    { "functionCall": { "name": "f" } },
                    { "functionCall": { "name": "g", "args": { "x": 1 } } },
                ] } }] }),
                json!({ "candidates": [{ "finishReason": "MAX_TOKENS" }] }),
                json!({ "usageMetadata": { "promptTokenCount": 1, "candidatesTokenCount": 2 } }),
            ]),
            false,
            true,
            vec![
                chunk(json!({ "role": "assistant", "content": "a" }), Value::Null),
                chunk(
                    json!({ "tool_calls": [{ "index": 0, "id": "<call id>", "type": "function",
                        "function": { "name": "f", "arguments": "{}" } }] }),
                    Value::Null,
                ),
                chunk(
                    json!({ "tool_calls": [{ "index": 1, "id": "<call id>", "type": "function",
                        "function": { "name": "g", "arguments": "{\"x\":1}" } }] }),
                    Value::Null,
                ),
                chunk(json!({}), json!("length")),
                usage_chunk_json(1, 2, 3, 0),
            ],
            Ok(()),
        );
    }

    #[test]
    fn two_candidates_keep_separate_roles_and_finish_reasons() {
        let sse_text = format!(
            "data: {}\n\ndata: {}\n\n",
            json!({ "candidates": [
                { "content": { "parts": [{ "text": "a" }] }, "index": 0 },
                { "content": { "parts": [{ "text": "b" }] }, "index": 1 },
            ] }),
            json!({ "candidates": [
                { "content": { "parts": [{ "text": "c" }] }, "finishReason": "STOP", "index": 0 },
                { "finishReason": "SAFETY", "index": 1 },
            ] }),
        );
        let outcome = run_stream(&sse_text, false, false);
        assert_eq!(outcome.end, Ok(()));
        let summary: Vec<(u64, Value, Value)> = outcome
            .chunks
            .iter()
            .map(|chunk| {
                let choice = &chunk["choices"][0];
                (choice["index"].as_u64().expect("index"), choice["delta"].clone(), choice["finish_reason"].clone())
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, json!({ "role": "assistant", "content": "a" }), Value::Null),
                (1, json!({ "role": "assistant", "content": "b" }), Value::Null),
                (0, json!({ "content": "c" }), Value::Null),
                (0, json!({}), json!("stop")),
                (1, json!({}), json!("content_filter")),
            ]
        );
    }
}
