//! Wire types of Anthropic's Messages API: the request as clients send it
//! (`POST /v1/messages`, `/v1/messages/count_tokens`) and the `Message`
//! this door answers with. Unknown fields (`metadata`, `cache_control`,
//! `citations`, newer switches) are accepted and ignored; unknown content
//! block types parse as [`ContentBlock::Other`] so the conversion can name
//! them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bodyshare::BodyStr;
use crate::jsonout::{self, WriteJson};

/// `POST /v1/messages` (and, without `max_tokens`, `count_tokens`).
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    #[serde(default)]
    pub messages: Vec<InputMessage>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub tools: Option<Vec<ToolDefinition>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub thinking: Option<ThinkingParam>,
}

/// `system`: a string or text blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct InputMessage {
    pub role: String,
    pub content: MessageContent,
}

/// A message's `content`: a string or content blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(BodyStr),
    Blocks(Vec<ContentBlock>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: BodyStr,
    },
    Image {
        source: Source,
    },
    Document {
        source: Source,
        #[serde(default)]
        title: Option<String>,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<ToolResultContent>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    /// A block type this door does not know (server tool results,
    /// search results, containers…).
    #[serde(other)]
    Other,
}

impl ContentBlock {
    /// The block's `type`, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ContentBlock::Text { .. } => "text",
            ContentBlock::Image { .. } => "image",
            ContentBlock::Document { .. } => "document",
            ContentBlock::ToolUse { .. } => "tool_use",
            ContentBlock::ToolResult { .. } => "tool_result",
            ContentBlock::Thinking { .. } => "thinking",
            ContentBlock::RedactedThinking { .. } => "redacted_thinking",
            ContentBlock::Other => "unsupported",
        }
    }
}

/// Where an image's or a document's bytes are.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    Base64 {
        media_type: String,
        /// Usually a slice of the request body (see `bodyshare`).
        data: BodyStr,
    },
    Url {
        url: String,
    },
    /// A plain-text document.
    Text {
        #[serde(default)]
        media_type: Option<String>,
        data: BodyStr,
    },
    /// A document made of content blocks.
    Content {
        content: MessageContent,
    },
    /// Anthropic's Files API (not served here), or anything newer.
    #[serde(other)]
    Other,
}

/// A `tool_result`'s `content`: a string or blocks (text, images).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// One entry of `tools`: a client tool (`type` absent or `custom`), or
/// one of Anthropic's server tools (`web_search_…`, `bash_…`…).
#[derive(Debug, Clone, Deserialize)]
pub struct ToolDefinition {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    Any,
    Tool { name: String },
    None,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingParam {
    Enabled {
        #[serde(default)]
        budget_tokens: Option<i64>,
    },
    Disabled,
    /// `adaptive` and newer kinds: the model decides.
    #[serde(other)]
    Other,
}

/// The answer: `{"type":"message",…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    /// The model as the client named it.
    pub model: String,
    pub content: Vec<OutputBlock>,
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputBlock {
    Text { text: String },
    Thinking { thinking: String, signature: String },
    ToolUse { id: String, name: String, input: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    Refusal,
}

impl StopReason {
    /// As it is written (`end_turn`).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ToolUse => "tool_use",
            StopReason::Refusal => "refusal",
        }
    }
}

/// A block as a stream's `content_block_start` carries it (the tool-use
/// input through serde_json: any JSON the model wrote).
impl WriteJson for OutputBlock {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            OutputBlock::Text { text } => {
                out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                jsonout::string(out, text);
            }
            OutputBlock::Thinking { thinking, signature } => {
                out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
                jsonout::string(out, thinking);
                out.extend_from_slice(b",\"signature\":");
                jsonout::string(out, signature);
            }
            OutputBlock::ToolUse { id, name, input } => {
                out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                jsonout::string(out, id);
                out.extend_from_slice(b",\"name\":");
                jsonout::string(out, name);
                out.extend_from_slice(b",\"input\":");
                jsonout::serde(out, input);
            }
        }
        out.push(b'}');
    }
}

/// Token counts; prompt caching does not carry over, so its counts are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl WriteJson for Usage {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"input_tokens\":");
        jsonout::uint(out, self.input_tokens);
        out.extend_from_slice(b",\"output_tokens\":");
        jsonout::uint(out, self.output_tokens);
        out.extend_from_slice(b",\"cache_creation_input_tokens\":");
        jsonout::uint(out, self.cache_creation_input_tokens);
        out.extend_from_slice(b",\"cache_read_input_tokens\":");
        jsonout::uint(out, self.cache_read_input_tokens);
        out.push(b'}');
    }
}
