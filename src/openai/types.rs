//! Wire types of the OpenAI Chat Completions API as hajimi receives and
//! answers it. Request types are lenient where clients differ (message
//! content is kept as raw JSON and interpreted by the converter, which can
//! then name the offending message in its error); response types are exact.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bodyshare::BodyJson;
use crate::jsonout::{self, Members, WriteJson};

/// Body of `POST /v1/chat/completions`. Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Not OpenAI, but sent by SillyTavern and others for Gemini.
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// A string or a list of strings.
    #[serde(default)]
    pub stop: Option<Value>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// `minimal|low|medium|high`.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    #[serde(default)]
    pub thinking_budget: Option<i64>,
    #[serde(default)]
    pub enable_thinking: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// One message of the history. `content` is a string, a list of parts, or
/// null; the converter interprets it. Its long strings (images, large
/// texts) share the request body when parsed with `bodyshare`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<BodyJson>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// Non-streaming answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// Position of the call in the answer; required in stream deltas and
    /// harmless elsewhere.
    pub index: u32,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCallOut,
    /// `{"google":{"thought_signature":…}}` when Gemini sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_content: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCallOut {
    pub name: String,
    /// JSON-encoded arguments.
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub completion_tokens_details: CompletionTokensDetails,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

/// One `data:` event of a streamed answer. It borrows what it repeats (the
/// answer's id, model and texts): a live stream's chunks borrow the
/// upstream event, a replayed answer's chunks borrow the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatChunk<'a> {
    pub id: Cow<'a, str>,
    pub object: &'static str,
    pub created: i64,
    pub model: Cow<'a, str>,
    pub choices: Vec<ChunkChoice<'a>>,
    /// Present (possibly null) only on the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Cow<'a, [ToolCall]>>,
}

// JSON written by hand for the answer shapes (see `jsonout`): a streamed
// answer writes one `ChunkChoice` per upstream event. Byte for byte what
// the derived `Serialize` writes (tested below).

impl WriteJson for ChatCompletion {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        jsonout::string(out, &self.id);
        out.extend_from_slice(b",\"object\":");
        jsonout::string(out, self.object);
        out.extend_from_slice(b",\"created\":");
        jsonout::int(out, self.created);
        out.extend_from_slice(b",\"model\":");
        jsonout::string(out, &self.model);
        out.extend_from_slice(b",\"choices\":");
        jsonout::array(out, &self.choices, |out, choice| choice.write_json(out));
        if let Some(usage) = &self.usage {
            out.extend_from_slice(b",\"usage\":");
            usage.write_json(out);
        }
        out.push(b'}');
    }
}

impl WriteJson for Choice {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"index\":");
        jsonout::uint(out, u64::from(self.index));
        out.extend_from_slice(b",\"message\":{\"role\":");
        jsonout::string(out, self.message.role);
        out.extend_from_slice(b",\"content\":");
        jsonout::optional(out, self.message.content.as_deref());
        if let Some(reasoning) = &self.message.reasoning_content {
            out.extend_from_slice(b",\"reasoning_content\":");
            jsonout::string(out, reasoning);
        }
        if let Some(tool_calls) = &self.message.tool_calls {
            out.extend_from_slice(b",\"tool_calls\":");
            jsonout::serde(out, tool_calls);
        }
        out.extend_from_slice(b"},\"finish_reason\":");
        jsonout::optional(out, self.finish_reason);
        out.push(b'}');
    }
}

impl WriteJson for Usage {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"prompt_tokens\":");
        jsonout::uint(out, self.prompt_tokens);
        out.extend_from_slice(b",\"completion_tokens\":");
        jsonout::uint(out, self.completion_tokens);
        out.extend_from_slice(b",\"total_tokens\":");
        jsonout::uint(out, self.total_tokens);
        out.extend_from_slice(b",\"completion_tokens_details\":{\"reasoning_tokens\":");
        jsonout::uint(out, self.completion_tokens_details.reasoning_tokens);
        out.extend_from_slice(b"}}");
    }
}

impl WriteJson for ChunkChoice<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"index\":");
        jsonout::uint(out, u64::from(self.index));
        out.extend_from_slice(b",\"delta\":");
        let delta = &self.delta;
        let mut members = Members::open(out);
        members.member(out, b"\"role\":", delta.role);
        members.member(out, b"\"content\":", delta.content.as_deref());
        members.member(out, b"\"reasoning_content\":", delta.reasoning_content.as_deref());
        members.serde(out, b"\"tool_calls\":", delta.tool_calls.as_deref());
        members.close(out);
        out.extend_from_slice(b",\"finish_reason\":");
        jsonout::optional(out, self.finish_reason.as_deref());
        out.push(b'}');
    }
}

#[cfg(test)]
mod write_json_tests {
    use super::*;

    fn by_hand(value: &impl WriteJson) -> String {
        let mut out = Vec::new();
        value.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn tool_call() -> ToolCall {
        ToolCall {
            index: 0,
            id: "call_1".into(),
            kind: "function",
            function: FunctionCallOut { name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() },
            extra_content: Some(serde_json::json!({"google": {"thought_signature": "c2ln"}})),
        }
    }

    #[test]
    fn chunk_choices_are_written_as_serde_writes_them() {
        let texts = [None, Some(""), Some("Hello"), Some("line\nand \"quote\" 你好 \u{1}")];
        let mut cases = 0;
        for role in [None, Some("assistant")] {
            for content in texts {
                for reasoning in texts {
                    for tool_calls in [None, Some(vec![tool_call()])] {
                        for finish_reason in [None, Some("stop"), Some("tool_calls")] {
                            let choice = ChunkChoice {
                                index: 3,
                                delta: Delta {
                                    role,
                                    content: content.map(Cow::Borrowed),
                                    reasoning_content: reasoning.map(Cow::Borrowed),
                                    tool_calls: tool_calls.clone().map(Cow::Owned),
                                },
                                finish_reason: finish_reason.map(Cow::Borrowed),
                            };
                            assert_eq!(by_hand(&choice), serde_json::to_string(&choice).unwrap());
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 2 * 4 * 4 * 2 * 3);
    }

    #[test]
    fn completions_are_written_as_serde_writes_them() {
        let usage = Usage {
            prompt_tokens: 12,
            completion_tokens: 9,
            total_tokens: 21,
            completion_tokens_details: CompletionTokensDetails { reasoning_tokens: 4 },
        };
        let choice =
            |index, content: Option<&str>, reasoning: Option<&str>, tools: bool, finish: Option<&'static str>| Choice {
                index,
                message: AssistantMessage {
                    role: "assistant",
                    content: content.map(str::to_owned),
                    reasoning_content: reasoning.map(str::to_owned),
                    tool_calls: tools.then(|| vec![tool_call(), tool_call()]),
                },
                finish_reason: finish,
            };
        let choice_sets = [
            vec![],
            vec![choice(0, Some("Hello! \"hi\"\n"), None, false, Some("stop"))],
            vec![
                choice(0, None, Some("thinking…"), true, Some("tool_calls")),
                choice(1, Some(""), Some(""), false, None),
            ],
        ];
        for choices in choice_sets {
            for usage in [None, Some(usage)] {
                let completion = ChatCompletion {
                    id: "chatcmpl-\"x\"".into(),
                    object: "chat.completion",
                    created: 1_765_000_000,
                    model: "gemini-2.5-flash".into(),
                    choices: choices.clone(),
                    usage,
                };
                assert_eq!(by_hand(&completion), serde_json::to_string(&completion).unwrap());
            }
        }
    }
}
