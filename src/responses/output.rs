//! Gemini's answer as the Responses API's output: items (`message`,
//! `function_call`, `reasoning`), the response object, and the typed stream
//! events (`event: <type>` + `data: <json>`, each with a `sequence_number`
//! from 0). One [`OutputBuilder`] serves every delivery: a real stream
//! pushes each upstream event as it comes; a non-stream answer or a fake
//! stream pushes the whole answer once (silent for a JSON body), so the
//! items are the same whichever way the client asked.
//!
//! Events, as OpenAI sends them: `response.created`, `response.in_progress`
//! ([`OutputBuilder::opening`]); per item `response.output_item.added`,
//! then for a message `response.content_part.added`,
//! `response.output_text.delta`…, `response.output_text.done`,
//! `response.content_part.done`; for a function call
//! `response.function_call_arguments.delta` and `.done`; for shown thoughts
//! `response.reasoning_summary_part.added`,
//! `response.reasoning_summary_text.delta`…, `.done`,
//! `response.reasoning_summary_part.done`; then `response.output_item.done`.
//! The end is `response.completed` (or `response.incomplete`: max tokens,
//! content filter) with the whole response and usage, or `response.failed`
//! ([`OutputBuilder::fail`]).
//!
//! Thought signatures: see the module doc of [`super`].

use rand::rngs::StdRng;
#[cfg(test)]
use serde::Serialize;

use super::random_id;
use crate::convert::stream::StreamEnd;
use crate::gemini::types::{GenerateContentResponse, Part, UsageMetadata};
use crate::jsonout::{self, WriteJson};

/// What the response object says besides its output.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseMeta {
    /// `resp_…`.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The model as the client named it.
    pub model: String,
    /// `SHOW_THINKING`: thoughts become reasoning summaries.
    pub show_thinking: bool,
    /// The request's fields a response echoes (`ResponsesRequest::echoed_fields`).
    pub echoed: EchoedFields,
}

/// The request's fields a response object echoes, serialized once as the
/// members of a JSON object (`"name":value,…`): every event that carries
/// the whole response splices them in. None is one the response writes
/// itself (`id`, `status`, `output`, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EchoedFields(String);

impl EchoedFields {
    /// The members of `object`, a serialized JSON object.
    pub fn of_object(mut object: String) -> EchoedFields {
        debug_assert!(object.starts_with('{') && object.ends_with('}'), "a JSON object");
        object.pop();
        object.remove(0);
        EchoedFields(object)
    }

    /// The members, `"name":value,…`.
    pub fn members(&self) -> &str {
        &self.0
    }
}

/// The item being streamed, if any.
#[derive(Debug)]
enum Open {
    Reasoning { id: String, index: usize, text: String, signature: Option<String> },
    Message { id: String, index: usize, text: String },
}

/// Builds one response: its items, and its events when not silent.
#[derive(Debug)]
pub struct OutputBuilder {
    meta: ResponseMeta,
    rng: StdRng,
    /// Events are not written (a JSON body): only the items are wanted.
    silent: bool,
    sequence: u64,
    items: Vec<Item>,
    open: Option<Open>,
    /// Signatures of the open message's text, for reasoning items after it.
    trailing_signatures: Vec<String>,
    usage: Option<UsageMetadata>,
    finish_reason: Option<std::borrow::Cow<'static, str>>,
    prompt_blocked: bool,
    /// Text or a function call went out (thoughts alone are no answer).
    emitted_answer: bool,
    /// Anything went out (from then on the answer is never restarted).
    emitted_any: bool,
}

/// Gemini finish reasons that mean a filter stopped the answer.
const FILTER_REASONS: [&str; 7] =
    ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"];

impl OutputBuilder {
    /// `rng` makes the item ids.
    pub fn new(meta: ResponseMeta, rng: StdRng) -> OutputBuilder {
        OutputBuilder {
            meta,
            rng,
            silent: false,
            sequence: 0,
            items: Vec::new(),
            open: None,
            trailing_signatures: Vec::new(),
            usage: None,
            finish_reason: None,
            prompt_blocked: false,
            emitted_answer: false,
            emitted_any: false,
        }
    }

    /// A builder that writes no events (a JSON body).
    pub fn silent(meta: ResponseMeta, rng: StdRng) -> OutputBuilder {
        OutputBuilder { silent: true, ..OutputBuilder::new(meta, rng) }
    }

    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }

    /// A fresh builder for another key's attempt, the event numbering
    /// going on (none of this attempt's output reached the client).
    pub fn restarted(self) -> OutputBuilder {
        let sequence = self.sequence;
        let silent = self.silent;
        OutputBuilder { sequence, silent, ..OutputBuilder::new(self.meta, self.rng) }
    }

    /// Whether any item went out.
    pub fn has_output(&self) -> bool {
        self.emitted_any
    }

    /// (prompt, completion) tokens, thoughts counted as completion.
    pub fn usage(&self) -> (u64, u64) {
        let usage = self.usage.unwrap_or_default();
        (usage.prompt_token_count, usage.candidates_token_count.saturating_add(usage.thoughts_token_count))
    }

    /// `response.created` and `response.in_progress`.
    pub fn opening(&mut self, out: &mut Vec<u8>) {
        // The same object twice: serialized once.
        let response = self.response_json("in_progress", None, None);
        self.emit_response(out, "response.created", &response);
        self.emit_response(out, "response.in_progress", &response);
    }

    /// One upstream event (or a whole answer). Only the first candidate is
    /// used (the Responses API has no `n`). `remember(call_id, signature)`
    /// is told each function call's thought signature.
    pub fn push(&mut self, event: &GenerateContentResponse, remember: &mut dyn FnMut(&str, &str), out: &mut Vec<u8>) {
        if let Some(usage) = event.usage_metadata {
            self.usage = Some(usage);
        }
        if event.prompt_feedback.as_ref().is_some_and(|feedback| feedback.block_reason.is_some()) {
            self.prompt_blocked = true;
        }
        let Some(candidate) = event.candidates.first() else { return };
        for part in candidate.content.iter().flat_map(|content| &content.parts) {
            self.push_part(part, remember, out);
        }
        if let Some(reason) = &candidate.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
    }

    fn push_part(&mut self, part: &Part, remember: &mut dyn FnMut(&str, &str), out: &mut Vec<u8>) {
        let signature = part.thought_signature.clone().filter(|signature| !signature.is_empty());
        let text = part.text.as_deref().filter(|text| !text.is_empty());
        if let Some(function_call) = &part.function_call {
            let mut loose_signature = signature.clone();
            if let Some(Open::Reasoning { signature: slot @ None, .. }) = &mut self.open {
                *slot = loose_signature.take();
            }
            self.close_open(out);
            if let Some(signature) = loose_signature {
                self.signature_item(signature, out);
            }
            let call_id = random_id("call_", &mut self.rng);
            if let Some(signature) = &signature {
                remember(&call_id, signature);
            }
            let arguments = if function_call.args.is_null() { "{}".to_owned() } else { function_call.args.to_string() };
            self.function_call_item(call_id, &function_call.name, arguments, out);
            self.emitted_answer = true;
            self.emitted_any = true;
        } else if part.thought == Some(true) {
            match text {
                Some(text) if self.meta.show_thinking => {
                    let new_step =
                        matches!(&self.open, Some(Open::Reasoning { signature: Some(_), .. })) && signature.is_some();
                    if matches!(self.open, Some(Open::Message { .. })) || new_step {
                        self.close_open(out);
                    }
                    self.thought_text(text, out);
                    if let (Some(signature), Some(Open::Reasoning { signature: slot, .. })) =
                        (signature, &mut self.open)
                    {
                        *slot = Some(signature);
                    }
                    self.emitted_any = true;
                }
                _ => {
                    if let Some(signature) = signature {
                        self.loose_signature(signature, out);
                    }
                }
            }
        } else if part.text.is_some() {
            if let Some(text) = text {
                self.message_text(text, out);
                self.emitted_answer = true;
                self.emitted_any = true;
            }
            if let Some(signature) = signature {
                if matches!(self.open, Some(Open::Message { .. })) {
                    self.trailing_signatures.push(signature);
                } else {
                    self.loose_signature(signature, out);
                }
            }
        } else if let Some(signature) = signature {
            self.loose_signature(signature, out);
        }
    }

    /// A signature on a part with nothing shown: on the open reasoning
    /// item if it has none, else on a reasoning item of its own.
    fn loose_signature(&mut self, signature: String, out: &mut Vec<u8>) {
        if let Some(Open::Reasoning { signature: slot @ None, .. }) = &mut self.open {
            *slot = Some(signature);
            return;
        }
        self.close_open(out);
        self.signature_item(signature, out);
    }

    fn thought_text(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close_open(out);
            let id = random_id("rs_", &mut self.rng);
            let index = self.items.len();
            let item = Item::Reasoning { id: id.clone(), summary: String::new(), encrypted_content: None };
            self.emit(out, "response.output_item.added", &ItemEvent { output_index: index, item: &item });
            let part = SummaryText::of("");
            let body = SummaryPartEvent { item_id: &id, output_index: index, summary_index: 0, part };
            self.emit(out, "response.reasoning_summary_part.added", &body);
            self.open = Some(Open::Reasoning { id, index, text: String::new(), signature: None });
        }
        let Some(Open::Reasoning { id, index, text: so_far, .. }) = &mut self.open else { return };
        so_far.push_str(text);
        let body = SummaryDelta { item_id: id, output_index: *index, summary_index: 0, delta: text };
        emit_body(&mut self.sequence, self.silent, out, "response.reasoning_summary_text.delta", &body);
    }

    fn message_text(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close_open(out);
            let id = random_id("msg_", &mut self.rng);
            let index = self.items.len();
            let item = Item::message(id.clone(), IN_PROGRESS, None);
            self.emit(out, "response.output_item.added", &ItemEvent { output_index: index, item: &item });
            let body = PartEvent { item_id: &id, output_index: index, content_index: 0, part: OutputText::of("") };
            self.emit(out, "response.content_part.added", &body);
            self.open = Some(Open::Message { id, index, text: String::new() });
        }
        let Some(Open::Message { id, index, text: so_far }) = &mut self.open else { return };
        so_far.push_str(text);
        let body = TextDelta { item_id: id, output_index: *index, content_index: 0, delta: text, logprobs: [] };
        emit_body(&mut self.sequence, self.silent, out, "response.output_text.delta", &body);
    }

    /// A reasoning item that carries only a signature, added and done.
    fn signature_item(&mut self, signature: String, out: &mut Vec<u8>) {
        let id = random_id("rs_", &mut self.rng);
        let index = self.items.len();
        let item = Item::Reasoning { id, summary: String::new(), encrypted_content: Some(signature) };
        self.emit(out, "response.output_item.added", &ItemEvent { output_index: index, item: &item });
        self.emit(out, "response.output_item.done", &ItemEvent { output_index: index, item: &item });
        self.items.push(item);
        self.emitted_any = true;
    }

    fn function_call_item(&mut self, call_id: String, name: &str, arguments: String, out: &mut Vec<u8>) {
        let id = random_id("fc_", &mut self.rng);
        let index = self.items.len();
        let mut item = Item::FunctionCall {
            id: id.clone(),
            status: IN_PROGRESS,
            call_id,
            name: name.to_owned(),
            arguments: String::new(),
        };
        self.emit(out, "response.output_item.added", &ItemEvent { output_index: index, item: &item });
        let body = ArgumentsDelta { item_id: &id, output_index: index, delta: &arguments };
        self.emit(out, "response.function_call_arguments.delta", &body);
        let body = ArgumentsDone { item_id: &id, output_index: index, name, arguments: &arguments };
        self.emit(out, "response.function_call_arguments.done", &body);
        if let Item::FunctionCall { status, arguments: whole, .. } = &mut item {
            *status = COMPLETED;
            *whole = arguments;
        }
        self.emit(out, "response.output_item.done", &ItemEvent { output_index: index, item: &item });
        self.items.push(item);
    }

    /// Closes the open item (and puts the signatures of a message's text
    /// on reasoning items right after it).
    fn close_open(&mut self, out: &mut Vec<u8>) {
        match self.open.take() {
            None => {}
            Some(Open::Message { id, index, text }) => {
                let body = TextDone { item_id: &id, output_index: index, content_index: 0, text: &text, logprobs: [] };
                self.emit(out, "response.output_text.done", &body);
                let body =
                    PartEvent { item_id: &id, output_index: index, content_index: 0, part: OutputText::of(&text) };
                self.emit(out, "response.content_part.done", &body);
                let item = Item::message(id, COMPLETED, Some(text));
                self.emit(out, "response.output_item.done", &ItemEvent { output_index: index, item: &item });
                self.items.push(item);
                for signature in std::mem::take(&mut self.trailing_signatures) {
                    self.signature_item(signature, out);
                }
            }
            Some(Open::Reasoning { id, index, text, signature }) => {
                let body = SummaryTextDone { item_id: &id, output_index: index, summary_index: 0, text: &text };
                self.emit(out, "response.reasoning_summary_text.done", &body);
                let part = SummaryText::of(&text);
                let body = SummaryPartEvent { item_id: &id, output_index: index, summary_index: 0, part };
                self.emit(out, "response.reasoning_summary_part.done", &body);
                let item = Item::Reasoning { id, summary: text, encrypted_content: signature };
                self.emit(out, "response.output_item.done", &ItemEvent { output_index: index, item: &item });
                self.items.push(item);
            }
        }
    }

    /// The upstream answer ended: the last events and the whole response
    /// (as JSON), or why the answer cannot be closed. `whole`: the answer came in one
    /// piece (a missing finish reason then means it stopped normally).
    pub fn finish(&mut self, whole: bool, out: &mut Vec<u8>) -> Result<String, StreamEnd> {
        if self.finish_reason.is_none() && !whole {
            return Err(if self.emitted_any { StreamEnd::Truncated } else { StreamEnd::Empty });
        }
        if !self.emitted_answer {
            return Err(StreamEnd::Empty);
        }
        self.close_open(out);
        let reason = self.finish_reason.as_deref().unwrap_or("STOP");
        let (status, incomplete, event) = if reason == "MAX_TOKENS" {
            ("incomplete", Some("max_output_tokens"), "response.incomplete")
        } else if FILTER_REASONS.contains(&reason) || self.prompt_blocked {
            ("incomplete", Some("content_filter"), "response.incomplete")
        } else {
            ("completed", None, "response.completed")
        };
        let response = self.response_json(status, incomplete, None);
        self.emit_response(out, event, &response);
        Ok(response)
    }

    /// The answer failed after the stream began: `response.failed`, with
    /// the items finished so far.
    pub fn fail(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        let response = self.response_json("failed", None, Some(ErrorBody { code, message }));
        self.emit_response(out, "response.failed", &response);
    }

    /// The response object: hajimi's fields (its items serialized in
    /// place, not copied), then the request's echoed ones spliced in.
    fn response_json(
        &self,
        status: &'static str,
        incomplete: Option<&'static str>,
        error: Option<ErrorBody>,
    ) -> String {
        let meta = &self.meta;
        let usage = if status == IN_PROGRESS { None } else { self.usage.as_ref().map(Usage::of) };
        let core = ResponseCore {
            id: &meta.id,
            object: "response",
            created_at: meta.created_at,
            status,
            error,
            incomplete_details: incomplete.map(|reason| Incomplete { reason }),
            model: &meta.model,
            output: &self.items,
            usage,
        };
        let mut json = Vec::with_capacity(512);
        core.write_json(&mut json);
        if !meta.echoed.members().is_empty() {
            json.pop();
            json.push(b',');
            json.extend_from_slice(meta.echoed.members().as_bytes());
            json.push(b'}');
        }
        // Written from `&str`s and JSON punctuation only.
        String::from_utf8(json).unwrap_or_default()
    }

    /// Writes one event: `event: <kind>`, then `body` (a JSON object) with
    /// its `sequence_number` and `type` appended, written straight into
    /// `out` (no tree is built for the envelope).
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, body: &impl WriteJson) {
        emit_body(&mut self.sequence, self.silent, out, kind, body);
    }

    /// `{"response": <json>, …}` for a response already serialized.
    fn emit_response(&mut self, out: &mut Vec<u8>, kind: &str, response: &str) {
        let sequence = self.sequence;
        self.sequence += 1;
        if self.silent {
            return;
        }
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        let start = out.len();
        out.extend_from_slice(b"{\"response\":");
        out.extend_from_slice(response.as_bytes());
        out.push(b'}');
        close_event(out, start, sequence, kind);
    }
}

/// [`OutputBuilder::emit`], for a body that borrows from the builder.
fn emit_body(sequence: &mut u64, silent: bool, out: &mut Vec<u8>, kind: &str, body: &impl WriteJson) {
    let number = *sequence;
    *sequence += 1;
    if silent {
        return;
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let start = out.len();
    body.write_json(out);
    close_event(out, start, number, kind);
}

/// Replaces the closing brace of the object written from `start` by the
/// event's `sequence_number` and `type`, and ends the event.
fn close_event(out: &mut Vec<u8>, start: usize, sequence: u64, kind: &str) {
    debug_assert!(out.len() > start + 1 && out.last() == Some(&b'}'), "an event body is a JSON object");
    out.pop();
    if out.len() > start + 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"sequence_number\":");
    jsonout::uint(out, sequence);
    out.extend_from_slice(b",\"type\":");
    jsonout::string(out, kind);
    out.extend_from_slice(b"}\n\n");
}

/// The response object's own fields (the echoed ones follow).
#[cfg_attr(test, derive(Serialize))]
struct ResponseCore<'a> {
    id: &'a str,
    object: &'static str,
    created_at: i64,
    status: &'static str,
    error: Option<ErrorBody<'a>>,
    incomplete_details: Option<Incomplete>,
    model: &'a str,
    output: &'a [Item],
    usage: Option<Usage>,
}

#[cfg_attr(test, derive(Serialize))]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

#[cfg_attr(test, derive(Serialize))]
struct Incomplete {
    reason: &'static str,
}

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// One output item, as the response object and the events carry it.
#[derive(Debug)]
#[cfg_attr(test, derive(Serialize), serde(tag = "type", rename_all = "snake_case"))]
enum Item {
    Message {
        id: String,
        status: &'static str,
        role: &'static str,
        /// One `output_text` part once the text is whole; none before.
        #[cfg_attr(test, serde(serialize_with = "output_texts"))]
        content: Option<String>,
    },
    FunctionCall {
        id: String,
        status: &'static str,
        call_id: String,
        name: String,
        arguments: String,
    },
    Reasoning {
        id: String,
        /// One `summary_text` when not empty.
        #[cfg_attr(test, serde(serialize_with = "summary_texts"))]
        summary: String,
        encrypted_content: Option<String>,
    },
}

impl Item {
    fn message(id: String, status: &'static str, text: Option<String>) -> Item {
        Item::Message { id, status, role: "assistant", content: text }
    }
}

#[cfg(test)]
fn output_texts<S: serde::Serializer>(text: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(text.as_deref().map(OutputText::of))
}

#[cfg(test)]
fn summary_texts<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(Some(text).filter(|text| !text.is_empty()).map(SummaryText::of))
}

/// An `output_text` content part.
#[cfg_attr(test, derive(Serialize))]
struct OutputText<'a> {
    #[cfg_attr(test, serde(rename = "type"))]
    kind: &'static str,
    text: &'a str,
    #[cfg_attr(not(test), allow(dead_code))] // written as a literal
    annotations: [u8; 0],
    #[cfg_attr(not(test), allow(dead_code))] // written as a literal
    logprobs: [u8; 0],
}

impl OutputText<'_> {
    fn of(text: &str) -> OutputText<'_> {
        OutputText { kind: "output_text", text, annotations: [], logprobs: [] }
    }
}

/// A `summary_text` part of a reasoning item.
#[cfg_attr(test, derive(Serialize))]
struct SummaryText<'a> {
    #[cfg_attr(test, serde(rename = "type"))]
    kind: &'static str,
    text: &'a str,
}

impl SummaryText<'_> {
    fn of(text: &str) -> SummaryText<'_> {
        SummaryText { kind: "summary_text", text }
    }
}

/// `response.output_item.added` and `.done`.
#[cfg_attr(test, derive(Serialize))]
struct ItemEvent<'a> {
    output_index: usize,
    item: &'a Item,
}

/// `response.content_part.added` and `.done`.
#[cfg_attr(test, derive(Serialize))]
struct PartEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: u8,
    part: OutputText<'a>,
}

/// `response.output_text.done`.
#[cfg_attr(test, derive(Serialize))]
struct TextDone<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: u8,
    text: &'a str,
    #[cfg_attr(not(test), allow(dead_code))] // written as a literal
    logprobs: [u8; 0],
}

/// `response.reasoning_summary_part.added` and `.done`.
#[cfg_attr(test, derive(Serialize))]
struct SummaryPartEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: u8,
    part: SummaryText<'a>,
}

/// `response.reasoning_summary_text.done`.
#[cfg_attr(test, derive(Serialize))]
struct SummaryTextDone<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: u8,
    text: &'a str,
}

/// `response.function_call_arguments.delta`.
#[cfg_attr(test, derive(Serialize))]
struct ArgumentsDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

/// `response.function_call_arguments.done`.
#[cfg_attr(test, derive(Serialize))]
struct ArgumentsDone<'a> {
    item_id: &'a str,
    output_index: usize,
    name: &'a str,
    arguments: &'a str,
}

/// `response.output_text.delta`'s body (the most frequent event).
#[cfg_attr(test, derive(Serialize))]
struct TextDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: u8,
    delta: &'a str,
    #[cfg_attr(not(test), allow(dead_code))] // written as a literal
    logprobs: [u8; 0],
}

/// `response.reasoning_summary_text.delta`'s body.
#[cfg_attr(test, derive(Serialize))]
struct SummaryDelta<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: u8,
    delta: &'a str,
}

impl WriteJson for TextDelta<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let index = (CONTENT_INDEX, self.content_index);
        write_text_event(out, self.item_id, self.output_index, index, (DELTA, self.delta), WITH_LOGPROBS);
    }
}

impl WriteJson for SummaryDelta<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let index = (SUMMARY_INDEX, self.summary_index);
        write_text_event(out, self.item_id, self.output_index, index, (DELTA, self.delta), b"}");
    }
}

/// The keys of a part's index, in a message (`content`) or a reasoning
/// item (`summary`), and of an event's text.
const CONTENT_INDEX: &[u8] = b",\"content_index\":";
const SUMMARY_INDEX: &[u8] = b",\"summary_index\":";
const DELTA: &[u8] = b",\"delta\":";
const TEXT: &[u8] = b",\"text\":";
/// The end of a message's text events.
const WITH_LOGPROBS: &[u8] = b",\"logprobs\":[]}";

/// `{"item_id":…,"output_index":…,<index key>:<index>`: the start of an
/// event on one part of an item (`index`: its key and value).
fn part_event_start(out: &mut Vec<u8>, item_id: &str, output_index: usize, index: (&[u8], u8)) {
    item_event_start(out, item_id, output_index);
    out.extend_from_slice(index.0);
    jsonout::uint(out, u64::from(index.1));
}

/// The body of an event on a part's text (a delta, or the whole text when
/// done): the part, the text (`text`: its key and value), then `end`.
fn write_text_event(
    out: &mut Vec<u8>,
    item_id: &str,
    output_index: usize,
    index: (&[u8], u8),
    text: (&[u8], &str),
    end: &[u8],
) {
    part_event_start(out, item_id, output_index, index);
    out.extend_from_slice(text.0);
    jsonout::string(out, text.1);
    out.extend_from_slice(end);
}

/// The body of a part's `added` or `done` event: the part, then the part.
fn write_part_event(out: &mut Vec<u8>, item_id: &str, output_index: usize, index: (&[u8], u8), part: &impl WriteJson) {
    part_event_start(out, item_id, output_index, index);
    out.extend_from_slice(b",\"part\":");
    part.write_json(out);
    out.push(b'}');
}

/// The Responses API's usage: output tokens include thoughts.
#[cfg_attr(test, derive(Serialize))]
struct Usage {
    input_tokens: u64,
    input_tokens_details: CachedTokens,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

#[cfg_attr(test, derive(Serialize))]
struct CachedTokens {
    cached_tokens: u64,
}

#[cfg_attr(test, derive(Serialize))]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

impl Usage {
    fn of(usage: &UsageMetadata) -> Usage {
        let output_tokens = usage.candidates_token_count.saturating_add(usage.thoughts_token_count);
        let total_tokens = if usage.total_token_count != 0 {
            usage.total_token_count
        } else {
            usage.prompt_token_count.saturating_add(output_tokens)
        };
        Usage {
            input_tokens: usage.prompt_token_count,
            input_tokens_details: CachedTokens { cached_tokens: 0 },
            output_tokens,
            output_tokens_details: ReasoningTokens { reasoning_tokens: usage.thoughts_token_count },
            total_tokens,
        }
    }
}

/// `{"item_id":…,"output_index":…` (the start of most events' bodies).
fn item_event_start(out: &mut Vec<u8>, item_id: &str, output_index: usize) {
    out.extend_from_slice(b"{\"item_id\":");
    jsonout::string(out, item_id);
    out.extend_from_slice(b",\"output_index\":");
    jsonout::uint(out, output_index as u64);
}

impl WriteJson for ResponseCore<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        jsonout::string(out, self.id);
        out.extend_from_slice(b",\"object\":");
        jsonout::string(out, self.object);
        out.extend_from_slice(b",\"created_at\":");
        jsonout::int(out, self.created_at);
        out.extend_from_slice(b",\"status\":");
        jsonout::string(out, self.status);
        out.extend_from_slice(b",\"error\":");
        jsonout::optional(out, self.error.as_ref());
        out.extend_from_slice(b",\"incomplete_details\":");
        jsonout::optional(out, self.incomplete_details.as_ref());
        out.extend_from_slice(b",\"model\":");
        jsonout::string(out, self.model);
        out.extend_from_slice(b",\"output\":");
        jsonout::array(out, self.output, |out, item| item.write_json(out));
        out.extend_from_slice(b",\"usage\":");
        jsonout::optional(out, self.usage.as_ref());
        out.push(b'}');
    }
}

impl WriteJson for ErrorBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"code\":");
        jsonout::string(out, self.code);
        out.extend_from_slice(b",\"message\":");
        jsonout::string(out, self.message);
        out.push(b'}');
    }
}

impl WriteJson for Incomplete {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"reason\":");
        jsonout::string(out, self.reason);
        out.push(b'}');
    }
}

impl WriteJson for Item {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Item::Message { id, status, role, content } => {
                out.extend_from_slice(b"{\"type\":\"message\",\"id\":");
                jsonout::string(out, id);
                out.extend_from_slice(b",\"status\":");
                jsonout::string(out, status);
                out.extend_from_slice(b",\"role\":");
                jsonout::string(out, role);
                out.extend_from_slice(b",\"content\":[");
                if let Some(text) = content {
                    OutputText::of(text).write_json(out);
                }
                out.extend_from_slice(b"]}");
            }
            Item::FunctionCall { id, status, call_id, name, arguments } => {
                out.extend_from_slice(b"{\"type\":\"function_call\",\"id\":");
                jsonout::string(out, id);
                out.extend_from_slice(b",\"status\":");
                jsonout::string(out, status);
                out.extend_from_slice(b",\"call_id\":");
                jsonout::string(out, call_id);
                out.extend_from_slice(b",\"name\":");
                jsonout::string(out, name);
                out.extend_from_slice(b",\"arguments\":");
                jsonout::string(out, arguments);
                out.push(b'}');
            }
            Item::Reasoning { id, summary, encrypted_content } => {
                out.extend_from_slice(b"{\"type\":\"reasoning\",\"id\":");
                jsonout::string(out, id);
                out.extend_from_slice(b",\"summary\":[");
                if !summary.is_empty() {
                    SummaryText::of(summary).write_json(out);
                }
                out.extend_from_slice(b"],\"encrypted_content\":");
                jsonout::optional(out, encrypted_content.as_deref());
                out.push(b'}');
            }
        }
    }
}

impl WriteJson for OutputText<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":");
        jsonout::string(out, self.kind);
        out.extend_from_slice(b",\"text\":");
        jsonout::string(out, self.text);
        out.extend_from_slice(b",\"annotations\":[],\"logprobs\":[]}");
    }
}

impl WriteJson for SummaryText<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":");
        jsonout::string(out, self.kind);
        out.extend_from_slice(b",\"text\":");
        jsonout::string(out, self.text);
        out.push(b'}');
    }
}

impl WriteJson for ItemEvent<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"output_index\":");
        jsonout::uint(out, self.output_index as u64);
        out.extend_from_slice(b",\"item\":");
        self.item.write_json(out);
        out.push(b'}');
    }
}

impl WriteJson for PartEvent<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_part_event(out, self.item_id, self.output_index, (CONTENT_INDEX, self.content_index), &self.part);
    }
}

impl WriteJson for TextDone<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let index = (CONTENT_INDEX, self.content_index);
        write_text_event(out, self.item_id, self.output_index, index, (TEXT, self.text), WITH_LOGPROBS);
    }
}

impl WriteJson for SummaryPartEvent<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_part_event(out, self.item_id, self.output_index, (SUMMARY_INDEX, self.summary_index), &self.part);
    }
}

impl WriteJson for SummaryTextDone<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let index = (SUMMARY_INDEX, self.summary_index);
        write_text_event(out, self.item_id, self.output_index, index, (TEXT, self.text), b"}");
    }
}

impl WriteJson for ArgumentsDelta<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        item_event_start(out, self.item_id, self.output_index);
        out.extend_from_slice(b",\"delta\":");
        jsonout::string(out, self.delta);
        out.push(b'}');
    }
}

impl WriteJson for ArgumentsDone<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        item_event_start(out, self.item_id, self.output_index);
        out.extend_from_slice(b",\"name\":");
        jsonout::string(out, self.name);
        out.extend_from_slice(b",\"arguments\":");
        jsonout::string(out, self.arguments);
        out.push(b'}');
    }
}

impl WriteJson for Usage {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"input_tokens\":");
        jsonout::uint(out, self.input_tokens);
        out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
        jsonout::uint(out, self.input_tokens_details.cached_tokens);
        out.extend_from_slice(b"},\"output_tokens\":");
        jsonout::uint(out, self.output_tokens);
        out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
        jsonout::uint(out, self.output_tokens_details.reasoning_tokens);
        out.extend_from_slice(b"},\"total_tokens\":");
        jsonout::uint(out, self.total_tokens);
        out.push(b'}');
    }
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
