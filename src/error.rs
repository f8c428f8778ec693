//! Errors as clients see them.
//!
//! Policy:
//! - Leaf modules (conversion, upstream client, key pool) have their own error
//!   types; only the HTTP layer turns them into an [`ApiError`].
//! - Every `ApiError` becomes the OpenAI envelope
//!   `{"error":{"message","type","param","code"}}` with a real HTTP status
//!   whenever no byte of the answer has been sent yet; after that it becomes
//!   an SSE error event ([`ApiError::to_sse_event`]) followed by `[DONE]`.
//! - Messages are safe to show: they never contain a key, a password, an
//!   upstream URL or internal error text. Upstream messages are passed on
//!   only for the client's own mistakes (Google's 400s), redacted of keys.
//! - On Gemini-native routes the same errors wear Google's envelope
//!   `{"error":{"code","message","status"}}` ([`GoogleError`]), the shape
//!   Google's SDKs parse; `code` is the HTTP status and `status` its
//!   canonical name (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`…).
//! - Each error is logged once, where it is classified (upstream failures in
//!   the retry loop at `warn`); `ApiError` itself logs only 500s.
//! - A message quoting the client's own text (a model name) quotes at most
//!   [`MAX_ECHOED_CHARS`] of it ([`echo`]): a 30 MB name is not sent back.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// Characters of the client's own text an error message quotes at most.
pub const MAX_ECHOED_CHARS: usize = 128;

/// The client's text as an error message quotes it: control characters
/// escaped, cut to [`MAX_ECHOED_CHARS`] (then `…`).
pub fn echo(text: &str) -> String {
    let mut out = String::new();
    let mut escaper = crate::secret::Escaper::new(&mut out, MAX_ECHOED_CHARS);
    let _ = std::fmt::Write::write_str(&mut escaper, text);
    let _ = escaper.finish();
    out
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, param: Option<String> },
    #[error("Invalid API key / 密码错误")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    ModelNotFound(String),
    #[error("{0}")]
    RouteNotFound(String),
    #[error("Request body is too large (limit {limit_mb} MB) / 请求体过大")]
    PayloadTooLarge { limit_mb: usize },
    #[error("{message}")]
    RateLimited { message: String, retry_after: Duration },
    /// Too many request bodies held at once; try again shortly.
    #[error("The server is busy receiving other requests; try again shortly / 服务器繁忙，请稍后再试")]
    Busy { retry_after: Duration },
    #[error("The request body did not arrive in time (limit {limit_seconds} s) / 请求体上传超时")]
    BodyTimeout { limit_seconds: u64 },
    /// Every key is cooling down, exhausted or invalid.
    #[error("{message}")]
    NoKeyAvailable { message: String, retry_after: Option<Duration> },
    /// The pool has no key at all: 503 until an operator adds one.
    #[error("{0}")]
    NoKeysConfigured(String),
    /// Google refused the request itself (a 4xx that is the client's doing).
    #[error("{message}")]
    UpstreamRejected { status: StatusCode, message: String },
    /// The upstream failed after every retry.
    #[error("{message}")]
    UpstreamFailed { status: StatusCode, message: String },
    #[error("Internal server error / 服务器内部错误")]
    Internal,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { message: message.into(), param: None }
    }

    fn kind_and_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            ApiError::BadRequest { .. } => ("invalid_request_error", None),
            ApiError::Unauthorized => ("invalid_request_error", Some("invalid_api_key")),
            ApiError::Forbidden(_) => ("invalid_request_error", Some("forbidden")),
            ApiError::ModelNotFound(_) => ("invalid_request_error", Some("model_not_found")),
            ApiError::RouteNotFound(_) => ("invalid_request_error", Some("not_found")),
            ApiError::PayloadTooLarge { .. } => ("invalid_request_error", Some("request_too_large")),
            ApiError::RateLimited { .. } => ("rate_limit_error", Some("rate_limit_exceeded")),
            ApiError::Busy { .. } => ("server_error", Some("server_busy")),
            ApiError::BodyTimeout { .. } => ("invalid_request_error", Some("request_timeout")),
            ApiError::NoKeyAvailable { .. } => ("rate_limit_error", Some("no_key_available")),
            ApiError::NoKeysConfigured(_) => ("server_error", Some("no_keys_configured")),
            ApiError::UpstreamRejected { .. } => ("invalid_request_error", Some("upstream_rejected")),
            ApiError::UpstreamFailed { .. } => ("upstream_error", Some("upstream_error")),
            ApiError::Internal => ("server_error", Some("internal_error")),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } | ApiError::Busy { retry_after } => Some(*retry_after),
            ApiError::NoKeyAvailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The OpenAI error envelope.
    pub fn body(&self) -> serde_json::Value {
        let (kind, code) = self.kind_and_code();
        json!({"error": {"message": self.to_string(), "type": kind, "param": self.param(), "code": code}})
    }

    /// `data: {"error":…}\n\n`, for failures after a stream has started.
    pub fn to_sse_event(&self) -> String {
        format!("data: {}\n\n", self.body())
    }

    /// Google's error envelope. `error` is the only (so the first) member
    /// and `code` an integer: Google's SDKs rely on both to recognise an
    /// error event inside a stream.
    pub fn google_body(&self) -> serde_json::Value {
        let status = self.status_code();
        json!({"error": {"code": status.as_u16(), "message": self.to_string(), "status": google_status_name(status)}})
    }
}

/// Google's canonical status name for an HTTP status.
pub fn google_status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 => "UNAVAILABLE",
        500 => "INTERNAL",
        _ if status.is_client_error() => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

/// An [`ApiError`] on a Gemini-native route: same status and
/// `Retry-After`, Google's envelope.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GoogleError(pub ApiError);

impl From<ApiError> for GoogleError {
    fn from(error: ApiError) -> GoogleError {
        GoogleError(error)
    }
}

impl ResponseError for GoogleError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.0.error_response();
        let body = serde_json::to_vec(&self.0.google_body()).unwrap_or_default();
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response.set_body(actix_web::body::BoxBody::new(body))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::ModelNotFound(_) | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy { .. } | ApiError::NoKeysConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited { .. } | ApiError::NoKeyAvailable { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UpstreamRejected { status, .. } | ApiError::UpstreamFailed { status, .. } => *status,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(delay) = self.retry_after() {
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, seconds.max(1).to_string()));
        }
        response.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_envelopes() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::bad_request("messages[2]: unknown role"), 400, "invalid_request_error"),
            (ApiError::Unauthorized, 401, "invalid_request_error"),
            (ApiError::ModelNotFound("no such model".into()), 404, "invalid_request_error"),
            (ApiError::PayloadTooLarge { limit_mb: 64 }, 413, "invalid_request_error"),
            (ApiError::Busy { retry_after: Duration::from_secs(2) }, 503, "server_error"),
            (ApiError::BodyTimeout { limit_seconds: 60 }, 408, "invalid_request_error"),
            (
                ApiError::NoKeyAvailable {
                    message: "all keys cooling".into(),
                    retry_after: Some(Duration::from_millis(1500)),
                },
                429,
                "rate_limit_error",
            ),
            (ApiError::UpstreamFailed { status: StatusCode::BAD_GATEWAY, message: "x".into() }, 502, "upstream_error"),
        ];
        for (error, status, kind) in cases {
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(error.body()["error"]["type"], kind);
            assert!(error.body()["error"].get("param").is_some());
        }
        let limited = ApiError::NoKeyAvailable { message: "m".into(), retry_after: Some(Duration::from_millis(1500)) };
        assert_eq!(limited.error_response().headers().get("retry-after").unwrap(), "2");
        assert!(ApiError::Internal.to_sse_event().starts_with("data: {\"error\""));
    }
}
