//! Everything about Google's Gemini API: wire types, model-name rules, the
//! SSE decoder, error classification and the HTTP client (the only code that
//! talks to Google).

pub mod client;
pub mod error;
pub mod model;
pub mod native;
mod scan;
pub mod sse;
pub mod types;
mod write;
