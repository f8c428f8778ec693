//! Model-name rules: how a model name requested by an OpenAI client (with
//! hajimi's own suffixes such as `-search`, `-nothinking`, `-max` and
//! `-thinking-<N>`) maps to an upstream Gemini model, and what that model can
//! do (thinking, its thinking-budget range, which safety thresholds it
//! accepts). Everything here is a pure function of the name; nothing asks the
//! upstream.

use std::borrow::Cow;

use super::types::known_or_owned;
use crate::config::SAFETY_THRESHOLDS;

/// A requested model name taken apart into the upstream model and hajimi's
/// per-request switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name exactly as the client sent it.
    pub requested: String,
    /// The upstream Gemini model name, without `models/` and without any
    /// recognised hajimi suffix.
    pub base: String,
    /// `-search` was present (only recognised when search mode is on).
    pub search: bool,
    /// What the thinking suffix, if any, asked for.
    pub thinking: ThinkingOverride,
}

/// The thinking switch carried in the model name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingOverride {
    /// No thinking suffix.
    None,
    /// `-nothinking`: the smallest budget the model allows (0 where it can be
    /// turned off).
    Off,
    /// `-max`: the largest budget the model allows.
    Max,
    /// `-thinking-<N>`: this budget, clamped into the model's range.
    Budget(i64),
}

const MODELS_PATH_PREFIX: &str = "models/";
const SEARCH_SUFFIX: &str = "-search";
const NO_THINKING_SUFFIX: &str = "-nothinking";
const MAXIMUM_THINKING_SUFFIX: &str = "-max";
const THINKING_BUDGET_SUFFIX_MARKER: &str = "-thinking-";

impl ModelSpec {
    /// Takes a requested model name apart. An optional `models/` prefix is
    /// removed; then, from the end of the name and in any order, at most one
    /// `-search` (only when `search_mode` is true, otherwise it stays part of
    /// the base name) and at most one thinking suffix (`-nothinking`, `-max`
    /// or `-thinking-<N>` with N a non-negative integer) are recognised. A
    /// suffix is never stripped if that would leave an empty base name, and a
    /// `-thinking-<N>` whose N does not parse stays in the name.
    pub fn parse(requested: &str, search_mode: bool) -> ModelSpec {
        let (base, search, thinking) = ModelSpec::split(requested, search_mode);
        ModelSpec { requested: requested.to_string(), base: base.to_string(), search, thinking }
    }

    /// The upstream model name [`ModelSpec::parse`] finds in `requested`,
    /// without copying it.
    pub fn base_of(requested: &str, search_mode: bool) -> &str {
        ModelSpec::split(requested, search_mode).0
    }

    fn split(requested: &str, search_mode: bool) -> (&str, bool, ThinkingOverride) {
        let mut remaining_name = requested.strip_prefix(MODELS_PATH_PREFIX).unwrap_or(requested);
        let mut search = false;
        let mut thinking = ThinkingOverride::None;

        loop {
            if search_mode && !search {
                if let Some(shorter) = strip_non_empty_suffix(remaining_name, SEARCH_SUFFIX) {
                    remaining_name = shorter;
                    search = true;
                    continue;
                }
            }
            if thinking == ThinkingOverride::None {
                if let Some((shorter, found_override)) = strip_thinking_suffix(remaining_name) {
                    remaining_name = shorter;
                    thinking = found_override;
                    continue;
                }
            }
            break;
        }

        (remaining_name, search, thinking)
    }
}

/// Upstream model names are path segments: only these characters.
pub fn is_valid_model_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

fn strip_non_empty_suffix<'name>(name: &'name str, suffix: &str) -> Option<&'name str> {
    name.strip_suffix(suffix).filter(|shorter_name| !shorter_name.is_empty())
}

fn strip_thinking_suffix(name: &str) -> Option<(&str, ThinkingOverride)> {
    if let Some(shorter_name) = strip_non_empty_suffix(name, NO_THINKING_SUFFIX) {
        return Some((shorter_name, ThinkingOverride::Off));
    }
    if let Some(shorter_name) = strip_non_empty_suffix(name, MAXIMUM_THINKING_SUFFIX) {
        return Some((shorter_name, ThinkingOverride::Max));
    }
    // A budget suffix ends in a digit; most names do not, and skip the search.
    if !name.ends_with(|last: char| last.is_ascii_digit()) {
        return None;
    }
    let marker_position = name.rfind(THINKING_BUDGET_SUFFIX_MARKER)?;
    let budget_digits = &name[marker_position + THINKING_BUDGET_SUFFIX_MARKER.len()..];
    let shorter_name = &name[..marker_position];
    if shorter_name.is_empty() || budget_digits.is_empty() || !budget_digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let budget = budget_digits.parse::<i64>().ok()?;
    Some((shorter_name, ThinkingOverride::Budget(budget)))
}

/// Whether the model accepts a `thinkingConfig`: the Gemini 2.5 and 3
/// families, the `gemini-*-latest` aliases that point at them, and any other
/// name containing `thinking`; but never image-generation (`-image`),
/// text-to-speech (`-tts`), Gemini 2.0 / 1.x, Gemma or embedding models.
pub fn supports_thinking(base: &str) -> bool {
    let name = NameCase(base);
    let excluded = name.contains("-image")
        || name.contains("-tts")
        || name.contains("embedding")
        || name.starts_with("gemini-2.0")
        || name.starts_with("gemini-1.")
        || name.starts_with("gemma");
    if excluded {
        return false;
    }
    name.starts_with("gemini-2.5")
        || name.starts_with("gemini-3")
        || name.is("gemini-flash-latest")
        || name.is("gemini-flash-lite-latest")
        || name.is("gemini-pro-latest")
        || name.contains("thinking")
}

/// A model name compared without regard to ASCII case, without a
/// lowercased copy (these run for every request; names are at most 128
/// bytes). The patterns are lowercase.
#[derive(Clone, Copy)]
struct NameCase<'a>(&'a str);

impl NameCase<'_> {
    fn is(self, pattern: &str) -> bool {
        self.0.eq_ignore_ascii_case(pattern)
    }

    fn starts_with(self, pattern: &str) -> bool {
        self.0.as_bytes().get(..pattern.len()).is_some_and(|start| start.eq_ignore_ascii_case(pattern.as_bytes()))
    }

    fn contains(self, pattern: &str) -> bool {
        self.0.as_bytes().windows(pattern.len()).any(|window| window.eq_ignore_ascii_case(pattern.as_bytes()))
    }
}

/// Whether the model belongs to the Gemini 3 family, which takes a
/// `thinkingLevel` and requires thought signatures on replayed function
/// calls.
pub fn is_gemini_3(base: &str) -> bool {
    NameCase(base).starts_with("gemini-3")
}

/// The thinking budgets a model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkingBudgetRange {
    /// The smallest budget that keeps thinking on.
    pub minimum_budget_when_thinking: i64,
    /// The largest budget.
    pub maximum_budget: i64,
    /// Whether a budget of 0 (thinking off) is accepted.
    pub can_turn_thinking_off: bool,
}

impl ThinkingBudgetRange {
    /// The budget used for "as little thinking as possible": 0 where thinking
    /// can be turned off, otherwise the minimum.
    pub fn smallest_allowed_budget(&self) -> i64 {
        if self.can_turn_thinking_off {
            0
        } else {
            self.minimum_budget_when_thinking
        }
    }

    /// Clamps a requested budget into the range. `-1` (dynamic thinking) is
    /// kept as is; 0 and other negative values become the smallest allowed
    /// budget; values between 0 and the minimum are raised to the minimum.
    pub fn clamp_requested_budget(&self, requested_budget: i64) -> i64 {
        if requested_budget == -1 {
            return -1;
        }
        if requested_budget <= 0 {
            return self.smallest_allowed_budget();
        }
        requested_budget.clamp(self.minimum_budget_when_thinking, self.maximum_budget)
    }
}

/// The thinking-budget range of a thinking model, or `None` when the model
/// does not think (see [`supports_thinking`]). Pro models: 128..=32768 and
/// thinking cannot be turned off; Flash-Lite: 0 or 512..=24576; Flash and
/// any other thinking model: 0..=24576.
pub fn thinking_budget_range(base: &str) -> Option<ThinkingBudgetRange> {
    if !supports_thinking(base) {
        return None;
    }
    let name = NameCase(base);
    let range = if name.contains("flash-lite") {
        ThinkingBudgetRange { minimum_budget_when_thinking: 512, maximum_budget: 24576, can_turn_thinking_off: true }
    } else if name.contains("flash") {
        ThinkingBudgetRange { minimum_budget_when_thinking: 1, maximum_budget: 24576, can_turn_thinking_off: true }
    } else if name.contains("-pro") {
        ThinkingBudgetRange { minimum_budget_when_thinking: 128, maximum_budget: 32768, can_turn_thinking_off: false }
    } else {
        ThinkingBudgetRange { minimum_budget_when_thinking: 1, maximum_budget: 24576, can_turn_thinking_off: true }
    };
    Some(range)
}

/// The safety threshold to send for `base`: the configured one, except that
/// `OFF` becomes `BLOCK_NONE` for older models known to reject `OFF`
/// (`gemini-1.*`, `gemini-pro*` other than the `gemini-pro-latest` alias,
/// and Gemma). One of the thresholds the configuration accepts is
/// borrowed, so a request's safety settings copy no text.
pub fn safety_threshold_for(base: &str, configured_threshold: &str) -> Cow<'static, str> {
    let name = NameCase(base);
    let model_rejects_off = name.starts_with("gemini-1.")
        || (name.starts_with("gemini-pro") && !name.is("gemini-pro-latest"))
        || name.starts_with("gemma");
    if model_rejects_off && configured_threshold.eq_ignore_ascii_case("OFF") {
        return Cow::Borrowed("BLOCK_NONE");
    }
    known_or_owned(Cow::Borrowed(configured_threshold), SAFETY_THRESHOLDS)
}

/// The extra names the model list offers for a thinking model: its
/// `-nothinking` and `-max` variants. Empty for models that do not think.
pub fn variant_names(base: &str) -> Vec<String> {
    if !supports_thinking(base) {
        return Vec::new();
    }
    vec![format!("{base}{NO_THINKING_SUFFIX}"), format!("{base}{MAXIMUM_THINKING_SUFFIX}")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_safe_path_segments() {
        for (name, valid) in [
            ("gemini-2.5-pro", true),
            ("gemini-2.5-flash-preview-05-20", true),
            ("", false),
            ("../admin", false),
            ("a/b", false),
            ("x?key=1", false),
            ("gemini-2.5-flash:generateContent", false),
        ] {
            assert_eq!(is_valid_model_name(name), valid, "{name}");
        }
    }

    fn check_parse(
        requested: &str,
        search_mode: bool,
        expected_base: &str,
        expected_search: bool,
        expected_thinking: ThinkingOverride,
    ) {
        let spec = ModelSpec::parse(requested, search_mode);
        assert_eq!(ModelSpec::base_of(requested, search_mode), expected_base, "base_of({requested:?})");
        assert_eq!(
            spec,
            ModelSpec {
                requested: requested.to_string(),
                base: expected_base.to_string(),
                search: expected_search,
                thinking: expected_thinking,
            },
            "parsing {requested:?} with search_mode={search_mode}"
        );
    }

    #[test]
    fn parse_model_names() {
        use ThinkingOverride::{Budget, Max, None, Off};
        let cases: &[(&str, bool, &str, bool, ThinkingOverride)] = &[
            ("gemini-2.5-flash", true, "gemini-2.5-flash", false, None),
            ("models/gemini-2.5-flash", true, "gemini-2.5-flash", false, None),
            ("gemini-2.5-flash-search", true, "gemini-2.5-flash", true, None),
            ("gemini-2.5-flash-search", false, "gemini-2.5-flash-search", false, None),
            ("gemini-2.5-flash-nothinking", false, "gemini-2.5-flash", false, Off),
            ("gemini-2.5-pro-max", false, "gemini-2.5-pro", false, Max),
            ("gemini-2.5-pro-thinking-2048", false, "gemini-2.5-pro", false, Budget(2048)),
            ("gemini-2.5-pro-thinking-0", false, "gemini-2.5-pro", false, Budget(0)),
            ("gemini-2.5-pro-thinking-abc", false, "gemini-2.5-pro-thinking-abc", false, None),
            ("gemini-2.5-pro-thinking--1", false, "gemini-2.5-pro-thinking--1", false, None),
            ("gemini-2.5-pro-thinking-", false, "gemini-2.5-pro-thinking-", false, None),
            ("gemini-2.5-flash-search-nothinking", true, "gemini-2.5-flash", true, Off),
            ("gemini-2.5-flash-nothinking-search", true, "gemini-2.5-flash", true, Off),
            ("models/gemini-3-pro-preview-max-search", true, "gemini-3-pro-preview", true, Max),
            ("gemini-2.5-flash-thinking-512-search", true, "gemini-2.5-flash", true, Budget(512)),
            // Only one thinking suffix: the outer one wins, the inner stays.
            ("gemini-2.5-flash-max-nothinking", false, "gemini-2.5-flash-max", false, Off),
            ("gemini-2.5-flash-search-search", true, "gemini-2.5-flash-search", true, None),
            ("-search", true, "-search", false, None),
            ("-max", true, "-max", false, None),
            ("gemini-2.0-flash-thinking-exp", false, "gemini-2.0-flash-thinking-exp", false, None),
        ];
        for (requested, search_mode, base, search, thinking) in cases {
            check_parse(requested, *search_mode, base, *search, *thinking);
        }
    }

    #[test]
    fn thinking_support_by_name() {
        let cases: &[(&str, bool, bool)] = &[
            ("gemini-2.5-flash", true, false),
            ("gemini-2.5-pro", true, false),
            ("gemini-2.5-flash-lite-preview-06-17", true, false),
            ("gemini-3-pro-preview", true, true),
            ("gemini-3-flash-preview", true, true),
            ("gemini-flash-latest", true, false),
            ("gemini-2.5-flash-image-preview", false, false),
            ("gemini-3-pro-image-preview", false, true),
            ("gemini-2.5-flash-preview-tts", false, false),
            ("gemini-2.0-flash", false, false),
            ("gemini-2.0-flash-thinking-exp", false, false),
            ("gemini-1.5-pro", false, false),
            ("gemma-3-27b-it", false, false),
            ("gemini-embedding-001", false, false),
            ("learnlm-thinking-experimental", true, false),
            // Names are compared without regard to ASCII case.
            ("Gemini-2.5-Flash", true, false),
            ("GEMINI-3-PRO-PREVIEW", true, true),
            ("Gemini-2.5-Flash-Image-Preview", false, false),
            ("GEMMA-3-27B-IT", false, false),
            ("Gemini-Flash-Latest", true, false),
            ("LearnLM-Thinking-Experimental", true, false),
        ];
        for (base, expected_thinking, expected_gemini_3) in cases {
            assert_eq!(supports_thinking(base), *expected_thinking, "supports_thinking({base})");
            assert_eq!(is_gemini_3(base), *expected_gemini_3, "is_gemini_3({base})");
        }
    }

    #[test]
    fn thinking_budget_ranges_and_clamping() {
        // (base, requested budget, clamped budget, smallest, maximum)
        let cases: &[(&str, i64, i64, i64, i64)] = &[
            ("gemini-2.5-pro", 0, 128, 128, 32768),
            ("gemini-2.5-pro", 50, 128, 128, 32768),
            ("gemini-2.5-pro", 99999, 32768, 128, 32768),
            ("gemini-2.5-pro", -1, -1, 128, 32768),
            ("gemini-2.5-flash", 0, 0, 0, 24576),
            ("gemini-2.5-flash", 1, 1, 0, 24576),
            ("gemini-2.5-flash", 30000, 24576, 0, 24576),
            ("gemini-2.5-flash-lite", 0, 0, 0, 24576),
            ("gemini-2.5-flash-lite", 100, 512, 0, 24576),
            ("gemini-2.5-flash-lite", -7, 0, 0, 24576),
            ("learnlm-thinking-experimental", 5000, 5000, 0, 24576),
            ("Gemini-2.5-Flash-Lite", 100, 512, 0, 24576),
            ("GEMINI-2.5-PRO", 0, 128, 128, 32768),
        ];
        for (base, requested_budget, expected_budget, smallest, maximum) in cases {
            let Some(range) = thinking_budget_range(base) else {
                panic!("{base} should have a thinking budget range");
            };
            assert_eq!(range.clamp_requested_budget(*requested_budget), *expected_budget, "{base} {requested_budget}");
            assert_eq!(range.smallest_allowed_budget(), *smallest, "{base} smallest");
            assert_eq!(range.maximum_budget, *maximum, "{base} maximum");
        }
        assert_eq!(thinking_budget_range("gemini-2.0-flash"), None);
    }

    #[test]
    fn safety_thresholds() {
        let cases: &[(&str, &str, &str)] = &[
            ("gemini-2.5-flash", "OFF", "OFF"),
            ("gemini-1.5-flash", "OFF", "BLOCK_NONE"),
            ("gemini-pro", "OFF", "BLOCK_NONE"),
            ("gemini-pro-latest", "OFF", "OFF"),
            ("gemma-3-27b-it", "OFF", "BLOCK_NONE"),
            ("gemma-3-27b-it", "BLOCK_ONLY_HIGH", "BLOCK_ONLY_HIGH"),
            ("gemini-2.5-pro", "BLOCK_NONE", "BLOCK_NONE"),
            ("Gemini-1.5-Flash", "off", "BLOCK_NONE"),
            ("GEMINI-PRO-LATEST", "OFF", "OFF"),
            ("Gemma-3-27b-it", "OFF", "BLOCK_NONE"),
        ];
        for (base, configured, expected) in cases {
            assert_eq!(safety_threshold_for(base, configured), *expected, "{base} {configured}");
        }
        // Every threshold the configuration accepts is borrowed, not copied.
        for configured in SAFETY_THRESHOLDS {
            for base in ["gemini-2.5-flash", "gemini-1.5-flash"] {
                assert!(matches!(safety_threshold_for(base, configured), Cow::Borrowed(_)), "{base} {configured}");
            }
        }
    }

    #[test]
    fn model_list_variants() {
        assert_eq!(
            variant_names("gemini-2.5-pro"),
            vec!["gemini-2.5-pro-nothinking".to_string(), "gemini-2.5-pro-max".to_string()]
        );
        assert!(variant_names("gemini-2.0-flash").is_empty());
    }
}
