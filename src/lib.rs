//! hajimi: an OpenAI-compatible gateway to Google Gemini over a pool of API
//! keys. `main.rs` only parses arguments and calls [`startup::Application`].

pub mod config;
pub mod error;
pub mod gemini;
pub mod keys;
pub mod openai;
pub mod secret;
