//! OpenAI Chat Completions wire types and the pure conversions between them
//! and Gemini's (`request`: OpenAI → Gemini, `response`/`stream`: Gemini →
//! OpenAI), and OpenAI embeddings (`embeddings`).

pub mod embeddings;
pub mod request;
pub mod response;
pub mod stream;
pub mod types;
