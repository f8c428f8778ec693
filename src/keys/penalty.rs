//! What a classified upstream failure means for the key that got it: the
//! single table the pool and the retry loop both follow. Pure.
//!
//! | failure | retry on another key | consequence for the key |
//! |---|---|---|
//! | invalid / suspended / service disabled | yes | `invalid` until re-validated |
//! | per-day quota (or no free tier: limit 0) | yes | `exhausted_today` for that model until Pacific midnight |
//! | per-minute quota | yes | cooling for that model for `retryDelay` (default 60 s) |
//! | bare 429 (no details) | yes | cooling for that model for `retryDelay` (default 10 s); a storm of these across keys (`KeyPool::report_failure`) is a global back-off instead |
//! | 5xx, overload, timeout, network | yes, after a short back-off | cooling for that model for 2 s |
//! | the request's own fault (400), unknown model, unsupported location | no | none |

use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::keys::pacific::next_pacific_midnight;

pub const DEFAULT_PER_MINUTE_COOLDOWN_MS: u64 = 60_000;
pub const DEFAULT_RATE_LIMIT_COOLDOWN_MS: u64 = 10_000;
pub const SERVER_ERROR_COOLDOWN_MS: u64 = 2_000;
/// Longest cooldown a `retryDelay` may impose (a bogus delay must not
/// bench a key for days).
pub const MAX_COOLDOWN_MS: u64 = 15 * 60_000;

/// Why a key cannot serve a model for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoolingReason {
    PerMinuteQuota,
    RateLimited,
    ServerError,
}

impl CoolingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CoolingReason::PerMinuteQuota => "per-minute quota",
            CoolingReason::RateLimited => "rate limited",
            CoolingReason::ServerError => "upstream error",
        }
    }
}

/// The consequence of one failure for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    None,
    Invalid,
    /// (key, model) unusable until `until_ms`.
    Cooling {
        until_ms: u64,
        reason: CoolingReason,
    },
    /// (key, model) unusable until the next Pacific midnight.
    ExhaustedToday {
        until_ms: u64,
    },
}

/// The penalty for `failure` happening at `now_ms`.
pub fn penalty_for(failure: &UpstreamFailure, now_ms: u64) -> Penalty {
    let stated_delay_ms = failure.retry_after.map(|delay| (delay.as_millis() as u64).min(MAX_COOLDOWN_MS));
    let cooling = |default_ms: u64, reason| Penalty::Cooling {
        until_ms: now_ms + stated_delay_ms.unwrap_or(default_ms).max(1),
        reason,
    };
    match failure.kind {
        FailureKind::ClientError
        | FailureKind::ModelNotFound
        | FailureKind::LocationUnsupported
        | FailureKind::UnreadableRelay => Penalty::None,
        FailureKind::KeyInvalid => Penalty::Invalid,
        FailureKind::QuotaPerDay => {
            Penalty::ExhaustedToday { until_ms: next_pacific_midnight((now_ms / 1000) as i64) as u64 * 1000 }
        }
        FailureKind::QuotaPerMinute => cooling(DEFAULT_PER_MINUTE_COOLDOWN_MS, CoolingReason::PerMinuteQuota),
        FailureKind::RateLimited => cooling(DEFAULT_RATE_LIMIT_COOLDOWN_MS, CoolingReason::RateLimited),
        FailureKind::ServerError => {
            Penalty::Cooling { until_ms: now_ms + SERVER_ERROR_COOLDOWN_MS, reason: CoolingReason::ServerError }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::error::tests::fixture;

    /// Real Google error bodies → classification → action: retry? which
    /// penalty? how long?
    #[test]
    fn recorded_errors_to_actions() {
        // 2026-07-01 12:00 UTC = 05:00 PDT; next Pacific midnight 2026-07-02 07:00 UTC.
        let now_ms = 1_782_907_200_000;
        let midnight_ms = 1_782_975_600_000;
        let cases: &[(&str, u16, bool, Penalty)] = &[
            ("error-400-api-key-invalid.json", 400, true, Penalty::Invalid),
            ("error-400-client-invalid-argument.json", 400, false, Penalty::None),
            ("error-400-context-too-long.json", 400, false, Penalty::None),
            ("error-400-location-unsupported.json", 400, false, Penalty::None),
            ("error-403-consumer-suspended.json", 403, true, Penalty::Invalid),
            ("error-403-service-disabled.json", 403, true, Penalty::Invalid),
            (
                "error-429-bare.json",
                429,
                true,
                Penalty::Cooling { until_ms: now_ms + 10_000, reason: CoolingReason::RateLimited },
            ),
            ("error-429-limit-zero.json", 429, true, Penalty::ExhaustedToday { until_ms: midnight_ms }),
            ("error-429-mixed-violations.json", 429, true, Penalty::ExhaustedToday { until_ms: midnight_ms }),
            ("error-429-per-day.json", 429, true, Penalty::ExhaustedToday { until_ms: midnight_ms }),
            (
                "error-429-per-minute.json",
                429,
                true,
                Penalty::Cooling { until_ms: now_ms + 43_000, reason: CoolingReason::PerMinuteQuota },
            ),
            (
                "error-500-internal.json",
                500,
                true,
                Penalty::Cooling { until_ms: now_ms + 2_000, reason: CoolingReason::ServerError },
            ),
            (
                "error-503-overloaded.json",
                503,
                true,
                Penalty::Cooling { until_ms: now_ms + 2_000, reason: CoolingReason::ServerError },
            ),
            (
                "error-504-deadline.json",
                504,
                true,
                Penalty::Cooling { until_ms: now_ms + 2_000, reason: CoolingReason::ServerError },
            ),
            (
                "vertex-error-429-array.json",
                429,
                true,
                Penalty::Cooling { until_ms: now_ms + 10_000, reason: CoolingReason::RateLimited },
            ),
        ];
        for (name, status, retry, penalty) in cases {
            let failure = UpstreamFailure::classify(*status, &fixture(name));
            assert_eq!(failure.kind.is_retryable(), *retry, "{name}: retry");
            assert_eq!(penalty_for(&failure, now_ms), *penalty, "{name}: penalty");
        }
    }

    #[test]
    fn absurd_retry_delays_are_capped() {
        let failure = UpstreamFailure {
            status: 429,
            kind: FailureKind::QuotaPerMinute,
            retry_after: Some(std::time::Duration::from_secs(86_400 * 3)),
            message: String::new(),
        };
        assert_eq!(
            penalty_for(&failure, 0),
            Penalty::Cooling { until_ms: MAX_COOLDOWN_MS, reason: CoolingReason::PerMinuteQuota }
        );
    }
}
