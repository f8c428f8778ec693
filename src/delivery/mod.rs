//! How an answer gets from Google to a client, whatever the client's API
//! (OpenAI chat, Gemini-native, embeddings). Routes parse and convert; this
//! module owns what they have in common, once:
//!
//! - [`admission`]: per-IP limits and reading the body within its size,
//!   time and shared-memory budgets;
//! - [`relay`]: the retry loop over the key pool (classified failures,
//!   hedged rounds, empty answers);
//! - [`shared`]: non-stream generations as detached tasks shared by
//!   identical requests in flight, spare answers into the swipe cache;
//! - [`stream`]: the streaming pump (re-open on another key before any
//!   content, keep-alives while the upstream is silent, never a silent end)
//!   and "headers now, answer later" deliveries (fake streaming, non-stream
//!   keep-alive), generic over the client's wire format
//!   ([`stream::EventFormat`]: [`openai`] chunks or [`google`] events);
//! - [`outbox`]: the body those deliveries stream, which runs its producer
//!   inside its own polls (no task, no channel).
//!
//! The contract (SPEC §5.2, §5.5): real HTTP statuses until the first byte;
//! after it, never a restart and never a silent end — an error event in
//! the client's format ends the stream.

pub mod admission;
pub mod door;
pub mod failure;
pub mod google;
pub mod openai;
pub mod outbox;
pub mod quota;
pub mod relay;
pub mod responses;
pub mod shared;
pub mod stream;

/// Whether `path` is one of the API's (every front door's) rather than
/// the dashboard's, `/health`, `/ready` or `/metrics`: the access log files
/// it under the API and CORS answers only these. (The dashboard's own
/// Vertex page is `/vertex` and `/vertex/<action>`.)
pub fn is_api_path(path: &str) -> bool {
    [
        "/v1/",
        "/v1beta/",
        "/gemini/",
        "/aistudio/",
        "/anthropic/",
        "/vertex/models",
        "/vertex/v1/",
        "/vertex/chat/",
        "/models",
        "/chat/completions",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
}

/// The key a follow-up request should go to first: the one that produced
/// the thought signatures it carries back (see `signatures`), whatever the
/// front door.
pub fn preferred_key(
    request: &crate::gemini::types::GenerateContentRequest,
    signatures: &crate::signatures::SignatureBook,
) -> Option<crate::keys::KeyId> {
    let carried = request
        .contents
        .iter()
        .flat_map(|content| &content.parts)
        .filter_map(|part| part.thought_signature.as_deref())
        .filter(|signature| *signature != crate::convert::SKIP_THOUGHT_SIGNATURE_VALIDATOR);
    // The newest turn's signature decides (the conversation's key now).
    let newest: Vec<&str> = carried.collect();
    signatures.preferred_key(newest.into_iter().rev())
}

/// What the access log and the request log record about an API request
/// besides its path: set by the handler as a response extension.
#[derive(Debug, Clone)]
pub struct RequestNote {
    /// The API the client spoke.
    pub door: Door,
    /// The model as the client named it.
    pub model: String,
    /// The key that answered, when one did.
    pub key: Option<crate::keys::KeyId>,
    /// How the answer was delivered.
    pub mode: Mode,
    /// Answered by Vertex AI (its log lines are filed under `vertex`).
    pub vertex: bool,
    /// The `MODEL_ALIASES` pair that mapped the client's name, when one did.
    pub alias: Option<Alias>,
}

/// A `MODEL_ALIASES` pair applied to a request: the operator's pattern and
/// the Gemini model it served (both bounded, operator-written text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub pattern: String,
    pub target: String,
}

/// The model a request is served with: the client's name, or the target
/// of the first `MODEL_ALIASES` pattern it matches (with the pair, for the
/// request log and metrics). Every front door asks this first; the answer
/// still names the model as the client sent it.
pub fn served_model<'a>(requested: &'a str, config: &'a crate::config::Config) -> (&'a str, Option<Alias>) {
    match crate::models::resolve_alias(requested, &config.model_aliases) {
        Some((pattern, target)) => (target.as_str(), Some(Alias { pattern: pattern.clone(), target: target.clone() })),
        None => (requested, None),
    }
}

/// How an answer reached its client (the access log's `mode=`), whatever
/// the front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One JSON body.
    Json,
    /// A real stream.
    Stream,
    /// Keep-alives, then the whole answer in the door's stream format (§5.3).
    FakeStream,
    /// Newlines while waiting, then one JSON body (§5.4).
    Keepalive,
    /// A spare answer from the swipe cache.
    Cache,
    /// Token counting (`countTokens`).
    Count,
    /// Embeddings (`embedContent`, `batchEmbedContents`, OpenAI's).
    Embed,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Json => "json",
            Mode::Stream => "stream",
            Mode::FakeStream => "fake_stream",
            Mode::Keepalive => "keepalive",
            Mode::Cache => "cache",
            Mode::Count => "count",
            Mode::Embed => "embed",
        }
    }
}

/// Which API the client spoke (the access log's `door=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// OpenAI Chat Completions.
    Chat,
    /// OpenAI embeddings.
    Embeddings,
    /// Gemini's own API.
    Native,
    /// Anthropic Messages.
    Messages,
    /// OpenAI Responses.
    Responses,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Chat => "chat",
            Door::Embeddings => "embeddings",
            Door::Native => "native",
            Door::Messages => "messages",
            Door::Responses => "responses",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
