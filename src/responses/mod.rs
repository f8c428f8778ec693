//! The OpenAI Responses door (`/v1/responses`), pure: the request's wire
//! type and its conversion to a Gemini `generateContent` request
//! ([`request`]: instructions, input items — messages, function calls and
//! their outputs, reasoning items carrying Gemini's thought signatures —,
//! function tools, `tool_choice`, reasoning effort, `text.format`), and
//! Gemini's answer as the Responses API's output items, response object
//! and typed stream events ([`output`]: one builder for non-stream, real
//! and fake streams). Storage, signatures' keys and delivery are the
//! route's and `delivery`'s; nothing here does I/O or reads the clock.
//!
//! Thought signatures (§4.6) travel in `reasoning` items' `encrypted_content`:
//! every signature Gemini returns goes out on a reasoning item placed right
//! before the function call it belongs to, on the reasoning item holding the
//! thoughts it closes, or right after the message whose text carried it
//! (a text answer's signature is on its last part). [`request`] puts each
//! back on the part it came from by the same rule.

pub mod output;
pub mod request;

use rand::distr::Alphanumeric;
use rand::Rng;

/// Why a request could not be converted: always the client's fault (400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("{message}")]
    BadRequest {
        /// English, starting with the location, e.g. `input[3]: unknown item type "x"`.
        message: String,
        /// The offending request field, e.g. `input[3].type`.
        param: Option<String>,
    },
}

pub(crate) fn bad_request_at(location: impl std::fmt::Display, detail: impl std::fmt::Display) -> ConvertError {
    let location = location.to_string();
    ConvertError::BadRequest { message: format!("{location}: {detail}"), param: Some(location) }
}

/// `prefix` followed by 24 random alphanumerics (`resp_`, `msg_`, `fc_`,
/// `call_`, `rs_`).
pub fn random_id(prefix: &str, rng: &mut impl Rng) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    for _ in 0..24 {
        id.push(char::from(rng.sample(Alphanumeric)));
    }
    id
}

/// A response id: `resp_` and 40 random alphanumerics (hard to guess; ids
/// are also bound to their client's scope when stored).
pub fn response_id(rng: &mut impl Rng) -> String {
    let mut id = random_id("resp_", rng);
    for _ in 0..16 {
        id.push(char::from(rng.sample(Alphanumeric)));
    }
    id
}

/// Whether `id` could be one of [`response_id`]'s (checked before any
/// store lookup: a client's text is never used as a key unchecked).
pub fn is_response_id(id: &str) -> bool {
    id.strip_prefix("resp_").is_some_and(|rest| {
        (1..=64).contains(&rest.len()) && rest.chars().all(|character| character.is_ascii_alphanumeric())
    })
}
