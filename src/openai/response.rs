//! Conversion of a complete Gemini `GenerateContentResponse` into an OpenAI
//! `ChatCompletion` (spec §5.1), plus the pieces the streaming converter
//! shares with it (ids, finish-reason mapping, usage, tool calls) and the
//! replay of a finished completion as stream chunks, used by fake streaming
//! and by the swipe cache. Everything here is pure: ids come from the RNG the
//! caller passes, timestamps from the caller's [`AnswerMeta`], and thought
//! signatures are handed to the caller's `remember_signature` callback.
//!
//! Tool-call ids are always generated here (`call_` + 24 random
//! alphanumerics), even when Gemini sends its own `functionCall.id`: Gemini's
//! ids are only unique within one answer, while ours key the server-side
//! thought-signature cache across all answers.

use rand::distr::Alphanumeric;
use rand::Rng;
use serde_json::json;
use std::borrow::Cow;

use crate::gemini::types::{Candidate, FunctionCall, GenerateContentResponse, UsageMetadata};
use crate::openai::types::{
    AssistantMessage, ChatChunk, ChatCompletion, Choice, ChunkChoice, CompletionTokensDetails, Delta, FunctionCallOut,
    ToolCall, Usage,
};

/// What the answer is labelled with, chosen by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerMeta {
    /// `chatcmpl-…`, usually from [`completion_id`].
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The model name the client requested (with any suffix it used).
    pub model: String,
    /// Return thought text as `reasoning_content` instead of dropping it.
    pub show_thinking: bool,
}

pub const COMPLETION_OBJECT: &str = "chat.completion";
pub const CHUNK_OBJECT: &str = "chat.completion.chunk";
pub const ASSISTANT_ROLE: &str = "assistant";

const COMPLETION_ID_PREFIX: &str = "chatcmpl-";
const COMPLETION_ID_RANDOM_LENGTH: usize = 29;
const TOOL_CALL_ID_PREFIX: &str = "call_";
const TOOL_CALL_ID_RANDOM_LENGTH: usize = 24;

fn prefixed_random_alphanumerics(prefix: &str, random_length: usize, rng: &mut impl Rng) -> String {
    let mut id = String::with_capacity(prefix.len() + random_length);
    id.push_str(prefix);
    for _ in 0..random_length {
        id.push(char::from(rng.sample(Alphanumeric)));
    }
    id
}

/// `chatcmpl-` followed by 29 random alphanumerics.
pub fn completion_id(rng: &mut impl Rng) -> String {
    prefixed_random_alphanumerics(COMPLETION_ID_PREFIX, COMPLETION_ID_RANDOM_LENGTH, rng)
}

/// `call_` followed by 24 random alphanumerics.
pub fn tool_call_id(rng: &mut impl Rng) -> String {
    prefixed_random_alphanumerics(TOOL_CALL_ID_PREFIX, TOOL_CALL_ID_RANDOM_LENGTH, rng)
}

pub use crate::convert::answer::is_empty_answer;

/// Maps a Gemini `finishReason` to OpenAI's. `None` stays `None` (no finish
/// yet; the non-stream converter treats an absent reason as `STOP`). `STOP`
/// becomes `tool_calls` when the choice has tool calls; blocking reasons
/// become `content_filter`; `MALFORMED_FUNCTION_CALL` and unknown reasons
/// become `stop`.
pub fn finish_reason(gemini_reason: Option<&str>, has_tool_calls: bool) -> Option<&'static str> {
    let openai_reason = match gemini_reason? {
        "STOP" if has_tool_calls => "tool_calls",
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" | "LANGUAGE" => {
            "content_filter"
        }
        _ => "stop",
    };
    Some(openai_reason)
}

/// OpenAI usage from Gemini's: completion tokens include thoughts, and the
/// total falls back to the sum when Gemini reports none.
pub fn usage(meta: &UsageMetadata) -> Usage {
    let completion_tokens = meta.candidates_token_count.saturating_add(meta.thoughts_token_count);
    let total_tokens = if meta.total_token_count != 0 {
        meta.total_token_count
    } else {
        meta.prompt_token_count.saturating_add(completion_tokens)
    };
    Usage {
        prompt_tokens: meta.prompt_token_count,
        completion_tokens,
        total_tokens,
        completion_tokens_details: CompletionTokensDetails { reasoning_tokens: meta.thoughts_token_count },
    }
}

/// Builds the OpenAI tool call for one Gemini `functionCall` part, with a
/// fresh id; when the part carries a thought signature it goes into
/// `extra_content.google.thought_signature` and to `remember_signature(id,
/// signature)`.
pub(crate) fn tool_call_from_function_call(
    function_call: &FunctionCall,
    thought_signature: Option<&str>,
    position_in_choice: u32,
    rng: &mut impl Rng,
    remember_signature: &mut dyn FnMut(&str, &str),
) -> ToolCall {
    let call_id = tool_call_id(rng);
    let arguments = if function_call.args.is_null() { "{}".to_string() } else { function_call.args.to_string() };
    let extra_content = thought_signature.map(|signature| {
        remember_signature(&call_id, signature);
        json!({ "google": { "thought_signature": signature } })
    });
    ToolCall {
        index: position_in_choice,
        id: call_id,
        kind: "function",
        function: FunctionCallOut { name: function_call.name.clone(), arguments },
        extra_content,
    }
}

fn candidate_to_choice(
    candidate: &Candidate,
    show_thinking: bool,
    rng: &mut impl Rng,
    remember_signature: &mut dyn FnMut(&str, &str),
) -> Choice {
    let mut answer_text = String::new();
    let mut reasoning_text = String::new();
    let mut tool_calls = Vec::new();
    let parts = candidate.content.iter().flat_map(|content| &content.parts);
    for part in parts {
        if let Some(function_call) = &part.function_call {
            let position_in_choice = u32::try_from(tool_calls.len()).unwrap_or(u32::MAX);
            tool_calls.push(tool_call_from_function_call(
                function_call,
                part.thought_signature.as_deref(),
                position_in_choice,
                rng,
                remember_signature,
            ));
        } else if let Some(text) = &part.text {
            if part.thought == Some(true) {
                reasoning_text.push_str(text);
            } else {
                answer_text.push_str(text);
            }
        }
    }
    let has_tool_calls = !tool_calls.is_empty();
    let content = if answer_text.is_empty() && has_tool_calls { None } else { Some(answer_text) };
    let reasoning_content = (show_thinking && !reasoning_text.is_empty()).then_some(reasoning_text);
    let gemini_reason = candidate.finish_reason.as_deref().unwrap_or("STOP");
    Choice {
        index: candidate.index,
        message: AssistantMessage {
            role: ASSISTANT_ROLE,
            content,
            reasoning_content,
            tool_calls: has_tool_calls.then_some(tool_calls),
        },
        finish_reason: finish_reason(Some(gemini_reason), has_tool_calls),
    }
}

/// Converts a non-streamed Gemini answer (spec §5.1). One choice per
/// candidate; a prompt block (no candidates) gives one empty choice with
/// `content_filter`, which callers treat as an empty answer anyway.
pub fn to_chat_completion(
    resp: &GenerateContentResponse,
    meta: &AnswerMeta,
    rng: &mut impl Rng,
    remember_signature: &mut dyn FnMut(&str, &str),
) -> ChatCompletion {
    let mut choices: Vec<Choice> = resp
        .candidates
        .iter()
        .map(|candidate| candidate_to_choice(candidate, meta.show_thinking, rng, remember_signature))
        .collect();
    if choices.is_empty() {
        choices.push(Choice {
            index: 0,
            message: AssistantMessage {
                role: ASSISTANT_ROLE,
                content: Some(String::new()),
                reasoning_content: None,
                tool_calls: None,
            },
            finish_reason: Some("content_filter"),
        });
    }
    ChatCompletion {
        id: meta.id.clone(),
        object: COMPLETION_OBJECT,
        created: meta.created,
        model: meta.model.clone(),
        choices,
        usage: resp.usage_metadata.as_ref().map(usage),
    }
}

/// A chunk with one choice, labelled like the answer.
pub(crate) fn single_choice_chunk<'a>(
    meta_id: &'a str,
    created: i64,
    model: &'a str,
    choice_index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
) -> ChatChunk<'a> {
    ChatChunk {
        id: Cow::Borrowed(meta_id),
        object: CHUNK_OBJECT,
        created,
        model: Cow::Borrowed(model),
        choices: vec![ChunkChoice { index: choice_index, delta, finish_reason: finish_reason.map(Cow::Borrowed) }],
        usage: None,
    }
}

/// The trailing `choices: []` chunk carrying usage.
pub(crate) fn usage_chunk<'a>(meta_id: &'a str, created: i64, model: &'a str, usage: Usage) -> ChatChunk<'a> {
    ChatChunk {
        id: Cow::Borrowed(meta_id),
        object: CHUNK_OBJECT,
        created,
        model: Cow::Borrowed(model),
        choices: Vec::new(),
        usage: Some(usage),
    }
}

/// Replays a finished completion as stream chunks (fake streaming, swipe
/// cache), borrowing its texts. Per choice: the reasoning (with the role)
/// if any, the content (with the role if not yet sent; skipped when empty
/// and the role is already out), all tool calls in one delta, then the
/// finish chunk with an empty delta. Finally the usage chunk when
/// `include_usage` and known.
pub fn completion_to_chunks(completion: &ChatCompletion, include_usage: bool) -> Vec<ChatChunk<'_>> {
    let chunk = |choice_index: u32, delta, finish_reason| {
        single_choice_chunk(&completion.id, completion.created, &completion.model, choice_index, delta, finish_reason)
    };
    let mut chunks = Vec::new();
    for choice in &completion.choices {
        let message = &choice.message;
        let mut role_sent = false;
        if let Some(reasoning) = message.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
            let delta = Delta {
                role: Some(ASSISTANT_ROLE),
                reasoning_content: Some(Cow::Borrowed(reasoning)),
                ..Delta::default()
            };
            chunks.push(chunk(choice.index, delta, None));
            role_sent = true;
        }
        let content_is_empty = message.content.as_deref().is_none_or(str::is_empty);
        if !role_sent || !content_is_empty {
            let delta = Delta {
                role: (!role_sent).then_some(ASSISTANT_ROLE),
                content: message.content.as_deref().map(Cow::Borrowed),
                ..Delta::default()
            };
            chunks.push(chunk(choice.index, delta, None));
        }
        if let Some(tool_calls) = message.tool_calls.as_deref().filter(|calls| !calls.is_empty()) {
            let delta = Delta { tool_calls: Some(Cow::Borrowed(tool_calls)), ..Delta::default() };
            chunks.push(chunk(choice.index, delta, None));
        }
        chunks.push(chunk(choice.index, Delta::default(), choice.finish_reason));
    }
    if let (true, Some(usage)) = (include_usage, completion.usage) {
        chunks.push(usage_chunk(&completion.id, completion.created, &completion.model, usage));
    }
    chunks
}

/// The chunk fake streaming sends while waiting: `{"content":""}` with a
/// null finish reason (never `stop`, which would end the answer).
pub fn keepalive_chunk<'a>(meta_id: &'a str, created: i64, model: &'a str) -> ChatChunk<'a> {
    let delta = Delta { content: Some(Cow::Borrowed("")), ..Delta::default() };
    single_choice_chunk(meta_id, created, model, 0, delta, None)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::{json, Value};

    use super::*;

    fn parse_fixture(fixture_text: &str) -> GenerateContentResponse {
        serde_json::from_str(fixture_text).expect("fixture parses")
    }

    fn test_meta(show_thinking: bool) -> AnswerMeta {
        AnswerMeta {
            id: "chatcmpl-test".to_string(),
            created: 1_700_000_000,
            model: "gemini-test".to_string(),
            show_thinking,
        }
    }

    /// Replaces every tool-call id with `"<call id>"` after checking its
    /// shape and uniqueness, and returns the ids in order.
    fn normalize_tool_call_ids(completion_json: &mut Value) -> Vec<String> {
        let mut ids = Vec::new();
        if let Some(choices) = completion_json["choices"].as_array_mut() {
            for choice in choices {
                let calls = choice
                    .get_mut("message")
                    .and_then(|message| message.get_mut("tool_calls"))
                    .and_then(Value::as_array_mut);
                if let Some(calls) = calls {
                    for call in calls {
                        let id = call["id"].as_str().expect("tool call id").to_string();
                        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
                        assert!(id[5..].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
                        assert!(!ids.contains(&id), "duplicate tool call id {id}");
                        call["id"] = json!("<call id>");
                        ids.push(id);
                    }
                }
            }
        }
        ids
    }

    /// Converts `fixture_text` and compares the JSON (tool-call ids
    /// normalized) to `expected`; returns the completion, the empty-answer
    /// verdict and the remembered signatures.
    fn check(
        fixture_text: &str,
        show_thinking: bool,
        expected: Value,
    ) -> (ChatCompletion, bool, Vec<(String, String)>) {
        let response = parse_fixture(fixture_text);
        let mut rng = StdRng::seed_from_u64(7);
        let mut remembered = Vec::new();
        let completion =
            to_chat_completion(&response, &test_meta(show_thinking), &mut rng, &mut |call_id, signature| {
                remembered.push((call_id.to_string(), signature.to_string()))
            });
        let mut completion_json = serde_json::to_value(&completion).expect("serializes");
        let call_ids = normalize_tool_call_ids(&mut completion_json);
        assert_eq!(completion_json, expected);
        for (call_id, _) in &remembered {
            assert!(call_ids.contains(call_id), "remembered unknown id {call_id}");
        }
        check_round_trip(&completion);
        (completion, is_empty_answer(&response), remembered)
    }

    fn expected_completion(choices: Value, usage: Value) -> Value {
        let mut completion = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gemini-test",
            "choices": choices,
        });
        if !usage.is_null() {
            completion["usage"] = usage;
        }
        completion
    }

    fn expected_usage(prompt: u64, completion: u64, total: u64, reasoning: u64) -> Value {
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
            "completion_tokens_details": { "reasoning_tokens": reasoning },
        })
    }

    fn text_choice(content: &str, finish_reason: &str) -> Value {
        json!([{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": finish_reason,
        }])
    }

    #[test]
    fn text_answer() {
        let (_, empty, _) = check(
            include_str!("../../tests/it/fixtures/gemini/response-text.json"),
            false,
            expected_completion(text_choice("Hello! How can I help you today?", "stop"), expected_usage(12, 9, 21, 0)),
        );
        assert!(!empty);
    }

    #[test]
    fn grounded_search_answer() {
        let (_, empty, _) = check(
            include_str!("../../tests/it/fixtures/gemini/response-grounded-search.json"),
            false,
            expected_completion(text_choice("Spain won Euro 2024.", "stop"), expected_usage(12, 9, 21, 0)),
        );
        assert!(!empty);
    }

    #[test]
    fn thinking_answer_shown_and_hidden() {
        let fixture = include_str!("../../tests/it/fixtures/gemini/response-thinking.json");
        let usage = expected_usage(8, 207, 215, 200);
        let (_, empty, _) = check(
            fixture,
            true,
            expected_completion(
                json!([{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "2 + 2 = 4.",
                        "reasoning_content": "**Adding the numbers**\n\nTwo plus two is four.",
                    },
                    "finish_reason": "stop",
                }]),
                usage.clone(),
            ),
        );
        assert!(!empty);
        check(fixture, false, expected_completion(text_choice("2 + 2 = 4.", "stop"), usage));
    }

    #[test]
    fn function_call_answer() {
        let signature = "CiIBVKhc7oDPpCaXyJKKssjqr4g3JNOSgJ/M2V+1THC1icsWCmwBVKhc7pBABjFjQ0zjcNOD5wDWVVh1UAjpbuO8";
        let (completion, empty, remembered) = check(
            include_str!("../../tests/it/fixtures/gemini/response-function-call.json"),
            false,
            expected_completion(
                json!([{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "<call id>",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": "{\"city\":\"Paris\",\"unit\":\"celsius\"}",
                                },
                                "extra_content": { "google": { "thought_signature": signature } },
                            },
                            {
                                "index": 1,
                                "id": "<call id>",
                                "type": "function",
                                "function": {
                                    "name": "get_time",
                                    "arguments": "{\"tz\":\"Europe/Paris\"}",
                                },
                            },
                        ],
                    },
                    "finish_reason": "tool_calls",
                }]),
                expected_usage(60, 90, 150, 60),
            ),
        );
        assert!(!empty);
        let first_call_id = &completion.choices[0].message.tool_calls.as_ref().expect("calls")[0].id;
        assert_eq!(remembered, vec![(first_call_id.clone(), signature.to_string())]);
    }

    #[test]
    fn blocked_and_filtered_answers_are_empty() {
        let (_, empty, _) = check(
            include_str!("../../tests/it/fixtures/gemini/response-prompt-blocked.json"),
            false,
            expected_completion(text_choice("", "content_filter"), expected_usage(30, 0, 30, 0)),
        );
        assert!(empty);
        let (_, empty, _) = check(
            include_str!("../../tests/it/fixtures/gemini/response-finish-safety.json"),
            false,
            expected_completion(text_choice("", "content_filter"), expected_usage(40, 0, 40, 0)),
        );
        assert!(empty);
    }

    #[test]
    fn max_tokens_answer_is_length() {
        let (_, empty, _) = check(
            include_str!("../../tests/it/fixtures/gemini/response-max-tokens.json"),
            false,
            expected_completion(text_choice("Once upon a time, in a land far", "length"), expected_usage(5, 10, 15, 0)),
        );
        assert!(!empty);
    }

    #[test]
    fn thought_only_and_multi_candidate_answers() {
        let thought_only = json!({
            "candidates": [{
                "content": { "parts": [{ "text": "hmm", "thought": true }, { "text": "" }] },
                "index": 0,
            }],
        })
        .to_string();
        let (_, empty, _) = check(&thought_only, true, {
            let mut choice = text_choice("", "stop");
            choice[0]["message"]["reasoning_content"] = json!("hmm");
            expected_completion(choice, Value::Null)
        });
        assert!(empty, "thoughts alone are an empty answer");

        let two_candidates = json!({
            "candidates": [
                { "content": { "parts": [{ "text": "a" }] }, "finishReason": "STOP", "index": 0 },
                { "content": { "parts": [{ "text": "b" }] }, "finishReason": "RECITATION", "index": 1 },
            ],
            "usageMetadata": { "promptTokenCount": 3, "candidatesTokenCount": 2 },
        })
        .to_string();
        let (_, empty, _) = check(
            &two_candidates,
            false,
            expected_completion(
                json!([
                    { "index": 0, "message": { "role": "assistant", "content": "a" }, "finish_reason": "stop" },
                    { "index": 1, "message": { "role": "assistant", "content": "b" }, "finish_reason": "content_filter" },
                ]),
                expected_usage(3, 2, 5, 0),
            ),
        );
        assert!(!empty);
    }

    #[test]
    fn finish_reason_table() {
        let cases: &[(Option<&str>, bool, Option<&str>)] = &[
            (None, false, None),
            (None, true, None),
            (Some("STOP"), false, Some("stop")),
            (Some("STOP"), true, Some("tool_calls")),
            (Some("MAX_TOKENS"), true, Some("length")),
            (Some("SAFETY"), false, Some("content_filter")),
            (Some("RECITATION"), false, Some("content_filter")),
            (Some("BLOCKLIST"), false, Some("content_filter")),
            (Some("PROHIBITED_CONTENT"), false, Some("content_filter")),
            (Some("SPII"), false, Some("content_filter")),
            (Some("IMAGE_SAFETY"), false, Some("content_filter")),
            (Some("LANGUAGE"), false, Some("content_filter")),
            (Some("MALFORMED_FUNCTION_CALL"), false, Some("stop")),
            (Some("FINISH_REASON_UNSPECIFIED"), false, Some("stop")),
            (Some("SOMETHING_NEW"), true, Some("stop")),
        ];
        for (gemini_reason, has_tool_calls, expected) in cases {
            assert_eq!(
                finish_reason(*gemini_reason, *has_tool_calls),
                *expected,
                "{gemini_reason:?} with tool calls: {has_tool_calls}"
            );
        }
    }

    #[test]
    fn ids_have_the_documented_shape_and_differ() {
        let mut rng = StdRng::seed_from_u64(1);
        let first = completion_id(&mut rng);
        let second = completion_id(&mut rng);
        for id in [&first, &second] {
            assert_eq!(id.len(), "chatcmpl-".len() + 29, "{id}");
            assert!(id.starts_with("chatcmpl-"));
            assert!(id[9..].chars().all(|c| c.is_ascii_alphanumeric()));
        }
        assert_ne!(first, second);
        let call = tool_call_id(&mut rng);
        assert_eq!(call.len(), "call_".len() + 24);
        assert!(call.starts_with("call_"));
    }

    #[test]
    fn keepalive_chunk_is_an_empty_content_delta_without_finish() {
        let chunk = keepalive_chunk("chatcmpl-k", 5, "m");
        assert_eq!(
            serde_json::to_value(&chunk).expect("serializes"),
            json!({
                "id": "chatcmpl-k",
                "object": "chat.completion.chunk",
                "created": 5,
                "model": "m",
                "choices": [{ "index": 0, "delta": { "content": "" }, "finish_reason": null }],
            })
        );
    }

    /// Replays `completion` as chunks and checks that concatenating the
    /// deltas of each choice gives the message back, that each choice starts
    /// with the role and ends with its finish chunk, and the usage chunk.
    fn check_round_trip(completion: &ChatCompletion) {
        for include_usage in [false, true] {
            let chunks = completion_to_chunks(completion, include_usage);
            for chunk in &chunks {
                assert_eq!(chunk.id, completion.id);
                assert_eq!(chunk.object, "chat.completion.chunk");
                assert_eq!(chunk.created, completion.created);
                assert_eq!(chunk.model, completion.model);
            }
            for choice in &completion.choices {
                let choice_deltas: Vec<&ChunkChoice> = chunks
                    .iter()
                    .flat_map(|chunk| &chunk.choices)
                    .filter(|chunk_choice| chunk_choice.index == choice.index)
                    .collect();
                assert_eq!(choice_deltas[0].delta.role, Some("assistant"));
                let roles = choice_deltas.iter().filter(|c| c.delta.role.is_some()).count();
                assert_eq!(roles, 1, "role sent once");
                let (last, body) = choice_deltas.split_last().expect("has chunks");
                assert_eq!(last.delta, Delta::default());
                assert_eq!(last.finish_reason.as_deref(), choice.finish_reason);
                let mut content: Option<String> = None;
                let mut reasoning: Option<String> = None;
                let mut tool_calls: Option<Vec<ToolCall>> = None;
                for chunk_choice in body {
                    assert_eq!(chunk_choice.finish_reason, None);
                    assert_ne!(chunk_choice.delta, Delta::default(), "no empty delta");
                    if let Some(text) = &chunk_choice.delta.content {
                        content.get_or_insert_with(String::new).push_str(text);
                    }
                    if let Some(text) = &chunk_choice.delta.reasoning_content {
                        reasoning.get_or_insert_with(String::new).push_str(text);
                    }
                    if let Some(calls) = &chunk_choice.delta.tool_calls {
                        tool_calls.get_or_insert_with(Vec::new).extend(calls.iter().cloned());
                    }
                }
                // An empty content after the reasoning chunk is not replayed.
                let without_empty = |text: &Option<String>| text.clone().filter(|t| !t.is_empty());
                if reasoning.is_some() {
                    assert_eq!(without_empty(&content), without_empty(&choice.message.content));
                } else {
                    assert_eq!(content, choice.message.content);
                }
                assert_eq!(reasoning, choice.message.reasoning_content);
                assert_eq!(tool_calls, choice.message.tool_calls);
            }
            let usage_chunks: Vec<&ChatChunk> = chunks.iter().filter(|chunk| chunk.usage.is_some()).collect();
            if include_usage && completion.usage.is_some() {
                assert_eq!(usage_chunks.len(), 1);
                assert!(usage_chunks[0].choices.is_empty());
                assert_eq!(usage_chunks[0].usage, completion.usage);
                assert!(std::ptr::eq(usage_chunks[0], chunks.last().expect("chunks")));
            } else {
                assert!(usage_chunks.is_empty());
            }
        }
    }
}
