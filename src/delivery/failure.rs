//! What a client is told when its request fails for good (pure): the
//! last upstream failure, empty answers, or a pool that cannot serve, as
//! the client's error — real statuses, messages safe to show (never an
//! address, a key or internal error text).

use std::time::Duration;

use actix_web::http::StatusCode;

use crate::error::ApiError;
use crate::gemini::client::Service;
use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::keys::{KeyId, Unavailable, UnavailableReason};

/// Bookkeeping of one client request across attempts (and, for streams,
/// across the re-opens done inside the stream before any output).
#[derive(Debug, Default)]
pub struct Attempts {
    pub tried: Vec<KeyId>,
    pub attempts: u32,
    pub empty_answers: u32,
    pub consecutive_server_errors: u32,
    pub last_failure: Option<UpstreamFailure>,
    /// Google refused the request's thought signatures: the next attempt
    /// goes with the placeholder instead (see `Relay::signature_fallback`).
    pub skip_signatures: SkipSignatures,
}

/// Where a request stands with the thought-signature fallback.
#[derive(Debug, Default)]
pub enum SkipSignatures {
    /// The body as converted.
    #[default]
    No,
    /// Refused: the next attempt sends the placeholder.
    Pending,
    /// Every attempt from now on sends this body.
    Sent(crate::bodyshare::Rope),
}

impl Attempts {
    /// The error for the client once attempts are used up.
    pub fn exhausted_error(&self) -> ApiError {
        match &self.last_failure {
            Some(failure) => failure_to_client_error(failure),
            None if self.empty_answers > 0 => ApiError::UpstreamFailed {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "Gemini returned an empty answer {} times (the prompt may be blocked) / 空响应次数达到上限",
                    self.empty_answers
                ),
            },
            None => ApiError::UpstreamFailed {
                status: StatusCode::BAD_GATEWAY,
                message: "The upstream failed / 上游请求失败".to_owned(),
            },
        }
    }
}

/// A failure as the client sees it, when it is final.
pub fn failure_to_client_error(failure: &UpstreamFailure) -> ApiError {
    match failure.kind {
        FailureKind::ClientError => ApiError::UpstreamRejected {
            status: StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST),
            message: format!("Gemini rejected the request: {}", failure.message),
        },
        FailureKind::ModelNotFound => {
            ApiError::ModelNotFound(format!("Gemini does not know this model: {}", failure.message))
        }
        FailureKind::LocationUnsupported => ApiError::UpstreamFailed {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Gemini refuses requests from this server's region (User location is not supported); \
                      the operator must run hajimi elsewhere or use a relay / 服务器所在地区不受支持"
                .to_owned(),
        },
        FailureKind::UnreadableRelay => ApiError::UpstreamFailed {
            status: StatusCode::BAD_GATEWAY,
            message: format!("{} / 上游中继的响应无法读取", failure.message),
        },
        FailureKind::QuotaPerDay | FailureKind::QuotaPerMinute | FailureKind::RateLimited => ApiError::NoKeyAvailable {
            message: "Every attempt hit a Gemini rate limit; retry shortly / 请求频率超限，请稍后重试".to_owned(),
            retry_after: failure.retry_after.or(Some(Duration::from_secs(10))),
        },
        FailureKind::KeyInvalid => ApiError::UpstreamFailed {
            status: StatusCode::BAD_GATEWAY,
            message: "Every key tried was refused by Gemini as invalid / API 密钥无效".to_owned(),
        },
        FailureKind::ServerError if failure.status == 504 => ApiError::UpstreamFailed {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: "Gemini did not answer in time / 上游超时".to_owned(),
        },
        // No HTTP answer at all: refused, reset, cut, unreadable.
        FailureKind::ServerError if failure.status == 0 => ApiError::UpstreamFailed {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "The connection to Gemini failed: {} / 与上游的连接失败",
                connection_failure_summary(&failure.message)
            ),
        },
        FailureKind::ServerError => ApiError::UpstreamFailed {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Gemini is unavailable or overloaded; retry shortly / 上游服务不可用".to_owned(),
        },
    }
}

/// What happened to a connection, in words safe to show a client (never
/// an address or internal error text).
fn connection_failure_summary(message: &str) -> &'static str {
    let message = message.to_ascii_lowercase();
    if message.contains("reset") {
        "connection reset by the upstream"
    } else if message.contains("refused") {
        "connection refused by the upstream"
    } else if message.contains("unreadable") || message.contains("unparseable") || message.contains("oversized") {
        "the upstream's answer could not be read"
    } else if message.contains("dns") || message.contains("resolve") || message.contains("lookup") {
        "the upstream's name did not resolve"
    } else {
        "the upstream closed the connection or could not be reached"
    }
}

pub fn unavailable_error(unavailable: &Unavailable, service: Service, now_ms: u64) -> ApiError {
    if unavailable.reason == UnavailableReason::NoKeys {
        // Not a rate limit: nothing to wait for until an operator acts.
        let message = match service {
            Service::Studio => {
                "No Gemini API key is configured: add keys (GEMINI_API_KEYS or the dashboard's Keys page) / 未配置任何 Gemini API 密钥：请通过 GEMINI_API_KEYS 或控制台的密钥页添加"
            }
            Service::VertexExpress => "No Vertex Express key is configured / 未配置 Vertex Express 密钥",
            Service::VertexAccount => "No Vertex service account is configured / 未配置 Vertex 服务账号",
        };
        return ApiError::NoKeysConfigured(message.to_owned());
    }
    let retry_after = unavailable.retry_at_ms.map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
    ApiError::NoKeyAvailable { message: unavailable.message().to_owned(), retry_after }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, status: u16, message: &str) -> UpstreamFailure {
        UpstreamFailure { kind, status, message: message.to_owned(), retry_after: None }
    }

    fn status_and_text(error: &ApiError) -> (u16, String) {
        use actix_web::ResponseError;
        (error.status_code().as_u16(), error.to_string())
    }

    #[test]
    fn final_failures_keep_real_statuses_and_safe_words() {
        let cases = [
            (failure(FailureKind::ClientError, 400, "bad field"), 400, "bad field"),
            (failure(FailureKind::ModelNotFound, 404, "no such model"), 404, "does not know this model"),
            (failure(FailureKind::LocationUnsupported, 400, "User location"), 503, "region"),
            (failure(FailureKind::QuotaPerDay, 429, "quota"), 429, "rate limit"),
            (failure(FailureKind::KeyInvalid, 400, "API key not valid"), 502, "invalid"),
            (failure(FailureKind::ServerError, 504, "deadline"), 504, "in time"),
            (failure(FailureKind::ServerError, 500, "internal"), 503, "unavailable"),
            (failure(FailureKind::ServerError, 0, "Connection reset by peer (10.0.0.7:443)"), 502, "connection reset"),
            (failure(FailureKind::ServerError, 0, "connection refused"), 502, "connection refused"),
            (failure(FailureKind::ServerError, 0, "dns lookup failed for internal.host"), 502, "did not resolve"),
            (failure(FailureKind::ServerError, 0, "something else 10.0.0.7"), 502, "closed the connection"),
        ];
        for (failure, status, words) in cases {
            let (got_status, text) = status_and_text(&failure_to_client_error(&failure));
            assert_eq!(got_status, status, "{failure:?}");
            assert!(text.contains(words), "{failure:?}: {text}");
            assert!(!text.contains("10.0.0.7") && !text.contains("internal.host"), "{text}");
        }
        // A rate limit says when to come back.
        let limited = failure_to_client_error(&failure(FailureKind::RateLimited, 429, "x"));
        assert!(matches!(limited, ApiError::NoKeyAvailable { retry_after: Some(_), .. }));
    }

    #[test]
    fn used_up_attempts_report_the_last_failure_or_the_empty_answers() {
        let mut attempts = Attempts::default();
        assert_eq!(status_and_text(&attempts.exhausted_error()).0, 502);
        attempts.empty_answers = 3;
        assert!(status_and_text(&attempts.exhausted_error()).1.contains("empty answer 3 times"));
        attempts.last_failure = Some(failure(FailureKind::ClientError, 400, "bad"));
        assert_eq!(status_and_text(&attempts.exhausted_error()).0, 400);
    }

    #[test]
    fn an_empty_pool_is_a_503_naming_the_service_and_a_busy_one_a_429_with_its_wait() {
        let none = Unavailable { reason: UnavailableReason::NoKeys, retry_at_ms: None };
        for (service, words) in [
            (Service::Studio, "No Gemini API key"),
            (Service::VertexExpress, "Vertex Express"),
            (Service::VertexAccount, "service account"),
        ] {
            let (status, text) = status_and_text(&unavailable_error(&none, service, 0));
            assert_eq!(status, 503);
            assert!(text.contains(words), "{text}");
        }
        let cooling = Unavailable { reason: UnavailableReason::AllCooling, retry_at_ms: Some(5_000) };
        match unavailable_error(&cooling, Service::Studio, 2_000) {
            ApiError::NoKeyAvailable { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_millis(3_000))),
            other => panic!("{other:?}"),
        }
    }
}
