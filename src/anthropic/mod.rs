//! The Anthropic Messages door, pure: wire types ([`types`]), a request
//! → Gemini's ([`request`]), a Gemini answer → a `Message`
//! ([`response`]), Gemini stream events → Anthropic's events ([`stream`],
//! an `EventFormat`), errors in Anthropic's envelope ([`error`]) and the
//! model list in Anthropic's shape ([`models`]). The route is
//! `routes::messages`; everything around the conversion is `delivery`'s.

pub mod error;
pub mod models;
pub mod request;
pub mod response;
pub mod stream;
pub mod types;
