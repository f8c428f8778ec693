//! Classification of upstream failures. Google answers failures with a
//! structured body (`error.status`, `details[]` with `ErrorInfo.reason`,
//! `QuotaFailure.violations[].quotaId` and `RetryInfo.retryDelay`); this
//! module reads it (and the HTTP status) into a [`FailureKind`] that the key
//! pool and the retry loop act on. Pure: bytes in, classification out.

use std::time::Duration;

use serde_json::Value;

use crate::secret::redact_keys;

/// What went wrong, from the point of view of "whose fault, and what now".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The key is invalid, suspended, or its project cannot use the API.
    KeyInvalid,
    /// A per-minute quota of this key for this model ran out.
    QuotaPerMinute,
    /// A per-day quota of this key for this model ran out (or the model has
    /// no free tier for it: limit 0).
    QuotaPerDay,
    /// 429 without details: may be the key, the project or the server's IP.
    RateLimited,
    /// 5xx, overload, timeouts, connection failures.
    ServerError,
    /// The server's region cannot use the API; no key will do better.
    LocationUnsupported,
    /// The model does not exist (404).
    ModelNotFound,
    /// The request itself is wrong (bad argument, context too long…).
    ClientError,
    /// The upstream (a relay in front of Google) answered in a form that
    /// cannot be read — a body ended by closing the connection; no key will
    /// do better: the operator must fix `GEMINI_BASE_URL`'s relay.
    UnreadableRelay,
}

impl FailureKind {
    /// Whether another key (or a later attempt) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            FailureKind::KeyInvalid
                | FailureKind::QuotaPerMinute
                | FailureKind::QuotaPerDay
                | FailureKind::RateLimited
                | FailureKind::ServerError
        )
    }

    /// A short stable name for logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::KeyInvalid => "key_invalid",
            FailureKind::QuotaPerMinute => "quota_per_minute",
            FailureKind::QuotaPerDay => "quota_per_day",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::ServerError => "server_error",
            FailureKind::LocationUnsupported => "location_unsupported",
            FailureKind::ModelNotFound => "model_not_found",
            FailureKind::ClientError => "client_error",
            FailureKind::UnreadableRelay => "unreadable_relay",
        }
    }
}

/// One classified upstream failure.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamFailure {
    /// HTTP status from the upstream (0 when there was no answer at all).
    pub status: u16,
    pub kind: FailureKind,
    /// `RetryInfo.retryDelay`, or the delay stated in the message text.
    pub retry_after: Option<Duration>,
    /// Google's message with any key masked; safe to log and, for client
    /// errors, to show to the client.
    pub message: String,
}

impl UpstreamFailure {
    /// No answer: connection refused, reset, timed out.
    pub fn network(description: &str) -> UpstreamFailure {
        UpstreamFailure {
            status: 0,
            kind: FailureKind::ServerError,
            retry_after: None,
            message: redact_keys(description).into_owned(),
        }
    }

    /// No answer in time (a connect, call or stream deadline passed): the
    /// only failure clients see as 504.
    pub fn timed_out(description: &str) -> UpstreamFailure {
        UpstreamFailure { status: 504, ..UpstreamFailure::network(description) }
    }

    /// Classifies an HTTP error answer from Google (AI Studio or Vertex).
    pub fn classify(status: u16, body: &[u8]) -> UpstreamFailure {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        // Vertex wraps the error object in a one-element array.
        let error = match &parsed {
            Value::Array(items) => items.first().and_then(|item| item.get("error")),
            other => other.get("error"),
        }
        .cloned()
        .unwrap_or(Value::Null);
        let google_status = error.get("status").and_then(Value::as_str).unwrap_or("");
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(|message| redact_keys(message).into_owned())
            .unwrap_or_else(|| format!("upstream answered HTTP {status}"));
        let details = error.get("details").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let reasons: Vec<&str> =
            details.iter().filter_map(|detail| detail.get("reason").and_then(Value::as_str)).collect();
        let quota_ids: Vec<&str> = details
            .iter()
            .filter_map(|detail| detail.get("violations").and_then(Value::as_array))
            .flatten()
            .filter_map(|violation| violation.get("quotaId").and_then(Value::as_str))
            .collect();
        let retry_after = details
            .iter()
            .filter_map(|detail| detail.get("retryDelay").and_then(Value::as_str))
            .find_map(parse_google_duration)
            .or_else(|| delay_in_message(&message));

        let key_reason = reasons.iter().any(|reason| {
            matches!(
                *reason,
                "API_KEY_INVALID"
                    | "API_KEY_SERVICE_BLOCKED"
                    | "API_KEY_HTTP_REFERRER_BLOCKED"
                    | "API_KEY_IP_ADDRESS_BLOCKED"
                    | "CONSUMER_SUSPENDED"
                    | "SERVICE_DISABLED"
                    | "ACCESS_TOKEN_TYPE_UNSUPPORTED"
            )
        });
        let kind = match status {
            400 if key_reason || message.contains("API key not valid") => FailureKind::KeyInvalid,
            400 if google_status == "FAILED_PRECONDITION" && message.contains("location is not supported") => {
                FailureKind::LocationUnsupported
            }
            401 => FailureKind::KeyInvalid,
            // A 403 blames the key only when Google says so: a 403 for a file
            // the client referenced is the client's doing, and must not
            // cost the pool a key.
            403 if key_reason => FailureKind::KeyInvalid,
            403 => FailureKind::ClientError,
            // Redirects are not followed; an unexpected one is an upstream fault.
            300..=399 => FailureKind::ServerError,
            404 => FailureKind::ModelNotFound,
            429 if quota_ids.iter().any(|id| id.contains("PerDay")) => FailureKind::QuotaPerDay,
            429 if quota_ids.iter().any(|id| id.contains("PerMinute")) => FailureKind::QuotaPerMinute,
            429 => FailureKind::RateLimited,
            408 | 500..=599 => FailureKind::ServerError,
            _ => FailureKind::ClientError,
        };
        UpstreamFailure { status, kind, retry_after, message }
    }
}

/// Google's `Duration` JSON form: `"43s"`, `"20.04466179s"`.
pub fn parse_google_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (0.0..1e7).contains(&seconds).then(|| Duration::from_secs_f64(seconds))
}

/// "… Please retry in 20.04466179s." in the message text.
fn delay_in_message(message: &str) -> Option<Duration> {
    let rest = &message[message.find("retry in ")? + "retry in ".len()..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let seconds: f64 = rest[..end].parse().ok()?;
    let unit = &rest[end..];
    let seconds = if unit.starts_with("ms") { seconds / 1000.0 } else { seconds };
    (seconds.is_finite() && seconds < 1e7).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A recorded upstream body from `tests/it/fixtures/gemini/`.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/it/fixtures/gemini/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Real Google bodies → classification → what the proxy does with it.
    #[test]
    fn classifies_recorded_google_errors() {
        let cases: &[(&str, u16, FailureKind, Option<f64>, bool)] = &[
            ("error-400-api-key-invalid.json", 400, FailureKind::KeyInvalid, None, true),
            ("error-400-client-invalid-argument.json", 400, FailureKind::ClientError, None, false),
            ("error-400-context-too-long.json", 400, FailureKind::ClientError, None, false),
            ("error-400-location-unsupported.json", 400, FailureKind::LocationUnsupported, None, false),
            ("error-403-consumer-suspended.json", 403, FailureKind::KeyInvalid, None, true),
            ("error-403-service-disabled.json", 403, FailureKind::KeyInvalid, None, true),
            ("error-429-bare.json", 429, FailureKind::RateLimited, None, true),
            ("error-429-limit-zero.json", 429, FailureKind::QuotaPerDay, Some(20.0), true),
            ("error-429-mixed-violations.json", 429, FailureKind::QuotaPerDay, None, true),
            ("error-429-per-day.json", 429, FailureKind::QuotaPerDay, Some(17.0), true),
            ("error-429-per-minute.json", 429, FailureKind::QuotaPerMinute, Some(43.0), true),
            ("error-500-internal.json", 500, FailureKind::ServerError, None, true),
            ("error-503-overloaded.json", 503, FailureKind::ServerError, None, true),
            ("error-504-deadline.json", 504, FailureKind::ServerError, None, true),
            ("vertex-error-429-array.json", 429, FailureKind::RateLimited, None, true),
        ];
        for (name, status, kind, delay, retry) in cases {
            let failure = UpstreamFailure::classify(*status, &fixture(name));
            assert_eq!(failure.kind, *kind, "{name}");
            assert_eq!(failure.retry_after.map(|d| d.as_secs_f64().round()), *delay, "{name}");
            assert_eq!(failure.kind.is_retryable(), *retry, "{name}");
            assert!(!failure.message.is_empty(), "{name}");
        }
    }

    #[test]
    fn delay_only_in_message_text_is_found() {
        let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded. Please retry in 20.04466179s."}}"#;
        let failure = UpstreamFailure::classify(429, body);
        assert_eq!(failure.retry_after.map(|d| d.as_millis()), Some(20044));
    }

    #[test]
    fn a_403_blames_the_key_only_when_google_says_so() {
        let file_denied = br#"{"error":{"code":403,"message":"You do not have permission to access the File abc or it may not exist.","status":"PERMISSION_DENIED"}}"#;
        assert_eq!(UpstreamFailure::classify(403, file_denied).kind, FailureKind::ClientError);
        assert_eq!(UpstreamFailure::classify(302, b"").kind, FailureKind::ServerError);
    }

    #[test]
    fn unparseable_bodies_still_classify_by_status() {
        assert_eq!(UpstreamFailure::classify(502, b"<html>bad gateway</html>").kind, FailureKind::ServerError);
        assert_eq!(UpstreamFailure::classify(401, b"").kind, FailureKind::KeyInvalid);
        assert_eq!(UpstreamFailure::classify(400, b"nope").kind, FailureKind::ClientError);
    }

    #[test]
    fn keys_in_upstream_messages_are_masked() {
        let body = br#"{"error":{"code":400,"message":"key AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is bad","status":"INVALID_ARGUMENT"}}"#;
        let failure = UpstreamFailure::classify(400, body);
        assert!(!failure.message.contains("aaaaaaaaaaaaaaaa"), "{}", failure.message);
    }

    #[test]
    fn google_durations() {
        assert_eq!(parse_google_duration("43s"), Some(Duration::from_secs(43)));
        assert_eq!(parse_google_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_google_duration("43"), None);
        assert_eq!(parse_google_duration("-1s"), None);
    }
}
