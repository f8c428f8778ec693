//! Thinking (rule 9): the chat request's `thinking_budget`,
//! `enable_thinking: false` and `reasoning_effort` (`none` counts as off),
//! in that priority, as a request `convert::thinking` turns into Gemini's
//! thinking config (the model-name suffix wins over all of them).

use super::*;
use crate::convert::thinking::{parse_reasoning_effort, thinking_config, ThinkingRequest};

pub(super) fn convert_thinking(
    req: &ChatRequest,
    opts: &ConvertOptions,
) -> Result<Option<ThinkingConfig>, ConvertError> {
    let requested = match (req.thinking_budget, req.enable_thinking, req.reasoning_effort.as_deref()) {
        (Some(budget), _, _) => Some(ThinkingRequest::Budget(budget)),
        (None, Some(false), _) => Some(ThinkingRequest::Off),
        (None, _, Some(reasoning_effort)) => Some(
            parse_reasoning_effort(reasoning_effort).map_err(|detail| bad_request_at("reasoning_effort", detail))?,
        ),
        (None, _, None) => None,
    };
    Ok(thinking_config(opts.model, requested, opts.enable_thinking, opts.show_thinking))
}
