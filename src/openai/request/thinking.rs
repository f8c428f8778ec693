//! Thinking (rule 9): the model-name suffix, `reasoning_effort` and
//! `thinking` settings as Gemini's thinking config.

use super::*;

/// What the client asked of thinking, in priority order of its sources.
pub(super) enum ThinkingRequest {
    Off,
    Max,
    Budget(i64),
    Effort(ReasoningEffort),
}

pub(super) enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

pub(super) const LOW_EFFORT_THINKING_BUDGET: i64 = 1024;
pub(super) const MEDIUM_EFFORT_THINKING_BUDGET: i64 = 8192;

pub(super) fn parse_reasoning_effort(reasoning_effort: &str) -> Result<ThinkingRequest, ConvertError> {
    let thinking_request = match reasoning_effort.to_ascii_lowercase().as_str() {
        "none" => ThinkingRequest::Off,
        "minimal" => ThinkingRequest::Effort(ReasoningEffort::Minimal),
        "low" => ThinkingRequest::Effort(ReasoningEffort::Low),
        "medium" => ThinkingRequest::Effort(ReasoningEffort::Medium),
        "high" => ThinkingRequest::Effort(ReasoningEffort::High),
        other => {
            return Err(bad_request_at(
                "reasoning_effort",
                format!("unknown value {other:?}; use minimal, low, medium or high"),
            ))
        }
    };
    Ok(thinking_request)
}

/// Rule 9: the thinking config, from (in priority) the model suffix, the
/// request's `thinking_budget`, `enable_thinking: false`, then
/// `reasoning_effort` (`none` counts as off). Gemini 3 gets a
/// `thinkingLevel` for off/max/effort and a clamped budget for explicit
/// budgets; other models get a budget clamped into their range.
pub(super) fn convert_thinking(
    req: &ChatRequest,
    opts: &ConvertOptions,
) -> Result<Option<ThinkingConfig>, ConvertError> {
    if !opts.enable_thinking {
        return Ok(None);
    }
    let base = opts.model.base.as_str();
    let Some(budget_range) = thinking_budget_range(base) else {
        return Ok(None);
    };
    let thinking_request = match opts.model.thinking {
        ThinkingOverride::Off => Some(ThinkingRequest::Off),
        ThinkingOverride::Max => Some(ThinkingRequest::Max),
        ThinkingOverride::Budget(budget) => Some(ThinkingRequest::Budget(budget)),
        ThinkingOverride::None => match (req.thinking_budget, req.enable_thinking, req.reasoning_effort.as_deref()) {
            (Some(budget), _, _) => Some(ThinkingRequest::Budget(budget)),
            (None, Some(false), _) => Some(ThinkingRequest::Off),
            (None, _, Some(reasoning_effort)) => Some(parse_reasoning_effort(reasoning_effort)?),
            (None, _, None) => None,
        },
    };

    let gemini_3 = is_gemini_3(base);
    let level =
        |level_name: &str| ThinkingConfig { thinking_level: Some(level_name.to_string()), ..ThinkingConfig::default() };
    let budget =
        |thinking_budget: i64| ThinkingConfig { thinking_budget: Some(thinking_budget), ..ThinkingConfig::default() };
    let mut thinking_config = match thinking_request {
        None => ThinkingConfig::default(),
        Some(ThinkingRequest::Budget(requested_budget)) => {
            budget(budget_range.clamp_requested_budget(requested_budget))
        }
        Some(ThinkingRequest::Off | ThinkingRequest::Effort(ReasoningEffort::Minimal)) if gemini_3 => level("low"),
        Some(ThinkingRequest::Effort(ReasoningEffort::Low)) if gemini_3 => level("low"),
        Some(ThinkingRequest::Max | ThinkingRequest::Effort(ReasoningEffort::Medium | ReasoningEffort::High))
            if gemini_3 =>
        {
            level("high")
        }
        Some(ThinkingRequest::Off | ThinkingRequest::Effort(ReasoningEffort::Minimal)) => {
            budget(budget_range.smallest_allowed_budget())
        }
        Some(ThinkingRequest::Effort(ReasoningEffort::Low)) => {
            budget(budget_range.clamp_requested_budget(LOW_EFFORT_THINKING_BUDGET))
        }
        Some(ThinkingRequest::Effort(ReasoningEffort::Medium)) => {
            budget(budget_range.clamp_requested_budget(MEDIUM_EFFORT_THINKING_BUDGET))
        }
        Some(ThinkingRequest::Max | ThinkingRequest::Effort(ReasoningEffort::High)) => {
            budget(budget_range.maximum_budget)
        }
    };
    let thinking_turned_off = thinking_config.thinking_budget == Some(0);
    if opts.show_thinking && !thinking_turned_off {
        thinking_config.include_thoughts = Some(true);
    }
    Ok((thinking_config != ThinkingConfig::default()).then_some(thinking_config))
}
