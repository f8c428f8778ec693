//! What every door asks of a Gemini answer before converting it.

use crate::gemini::types::{Candidate, GenerateContentResponse};

fn candidate_has_answer(candidate: &Candidate) -> bool {
    candidate.content.as_ref().is_some_and(|content| {
        content.parts.iter().any(|part| {
            part.function_call.is_some()
                || (part.thought != Some(true) && part.text.as_deref().is_some_and(|t| !t.is_empty()))
        })
    })
}

/// An answer the client cannot use (spec §7): no candidates, a prompt block,
/// or no candidate with a non-empty non-thought text part or a function call.
/// Thoughts alone do not make an answer.
pub fn is_empty_answer(resp: &GenerateContentResponse) -> bool {
    let prompt_blocked = resp.prompt_feedback.as_ref().is_some_and(|feedback| feedback.block_reason.is_some());
    prompt_blocked || !resp.candidates.iter().any(candidate_has_answer)
}
