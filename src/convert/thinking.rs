//! Thinking as Gemini's thinking config, for every front door: what the
//! client asked (the model-name suffix first, then the door's own fields,
//! resolved by the door into a [`ThinkingRequest`]) within the model's
//! range. Gemini 3 gets a `thinkingLevel` for off/max/effort and a clamped
//! budget for explicit budgets; other models get a budget clamped into
//! their range.

use crate::gemini::model::{is_gemini_3, thinking_budget_range, ModelSpec, ThinkingOverride};
use crate::gemini::types::ThinkingConfig;

/// What the client asked of thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingRequest {
    Off,
    Max,
    Budget(i64),
    Effort(ReasoningEffort),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

pub const LOW_EFFORT_THINKING_BUDGET: i64 = 1024;
pub const MEDIUM_EFFORT_THINKING_BUDGET: i64 = 8192;

/// `none`, `minimal`, `low`, `medium`, `high` (any case); `Err` names the
/// accepted values.
pub fn parse_reasoning_effort(reasoning_effort: &str) -> Result<ThinkingRequest, String> {
    Ok(match reasoning_effort.to_ascii_lowercase().as_str() {
        "none" => ThinkingRequest::Off,
        "minimal" => ThinkingRequest::Effort(ReasoningEffort::Minimal),
        "low" => ThinkingRequest::Effort(ReasoningEffort::Low),
        "medium" => ThinkingRequest::Effort(ReasoningEffort::Medium),
        "high" => ThinkingRequest::Effort(ReasoningEffort::High),
        other => return Err(format!("unknown value {other:?}; use minimal, low, medium or high")),
    })
}

/// The thinking config for `model`: its suffix wins over `requested` (the
/// door's own fields); `None` when thinking is off in the settings
/// (`ENABLE_THINKING`), the model does not think, or nothing is to be sent.
/// `show_thinking` (`SHOW_THINKING`) asks for thought summaries.
pub fn thinking_config(
    model: &ModelSpec,
    requested: Option<ThinkingRequest>,
    enable_thinking: bool,
    show_thinking: bool,
) -> Option<ThinkingConfig> {
    if !enable_thinking {
        return None;
    }
    let base = model.base.as_str();
    let budget_range = thinking_budget_range(base)?;
    let thinking_request = match model.thinking {
        ThinkingOverride::Off => Some(ThinkingRequest::Off),
        ThinkingOverride::Max => Some(ThinkingRequest::Max),
        ThinkingOverride::Budget(budget) => Some(ThinkingRequest::Budget(budget)),
        ThinkingOverride::None => requested,
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
    if show_thinking && !thinking_turned_off {
        thinking_config.include_thoughts = Some(true);
    }
    (thinking_config != ThinkingConfig::default()).then_some(thinking_config)
}
