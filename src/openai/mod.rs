//! OpenAI Chat Completions wire types and the pure conversions between them
//! and Gemini's (`request`: OpenAI → Gemini, `response`/`stream`: Gemini →
//! OpenAI), OpenAI embeddings (`embeddings`) and a chat request's
//! swipe-cache key (`cache_key`).

pub mod cache_key;
pub mod embeddings;
pub mod request;
pub mod response;
pub mod stream;
pub mod types;
