//! The gateway's errors in Anthropic's envelope,
//! `{"type":"error","error":{"type","message"}}`, with Anthropic's statuses:
//! `invalid_request_error` 400 (`request_too_large` 413, `not_found_error`
//! 404), `authentication_error` 401, `permission_error` 403,
//! `rate_limit_error` 429 with `Retry-After`, `api_error` 5xx, and
//! `overloaded_error` 529 when the pool cannot serve at all (no key
//! configured, every key invalid, the server busy, Gemini overloaded) —
//! the status Anthropic's SDKs retry as overloaded.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::error::ApiError;

/// Anthropic's overloaded status.
const OVERLOADED: u16 = 529;

/// An [`ApiError`] on an Anthropic route.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AnthropicError(pub ApiError);

impl From<ApiError> for AnthropicError {
    fn from(error: ApiError) -> AnthropicError {
        AnthropicError(error)
    }
}

/// Anthropic's status and error type for `error`.
pub fn status_and_type(error: &ApiError) -> (u16, &'static str) {
    let by_status = |status: StatusCode| match status.as_u16() {
        400 | 408 | 409 | 422 => (status.as_u16(), "invalid_request_error"),
        401 => (401, "authentication_error"),
        403 => (403, "permission_error"),
        404 => (404, "not_found_error"),
        413 => (413, "request_too_large"),
        429 => (429, "rate_limit_error"),
        503 | 529 => (OVERLOADED, "overloaded_error"),
        status @ 500.. => (status, "api_error"),
        _ => (400, "invalid_request_error"),
    };
    match error {
        ApiError::BadRequest { .. } => (400, "invalid_request_error"),
        ApiError::Unauthorized => (401, "authentication_error"),
        ApiError::Forbidden(_) => (403, "permission_error"),
        ApiError::ModelNotFound(_) | ApiError::RouteNotFound(_) => (404, "not_found_error"),
        ApiError::PayloadTooLarge { .. } => (413, "request_too_large"),
        ApiError::BodyTimeout { .. } => (408, "invalid_request_error"),
        ApiError::RateLimited { .. } => (429, "rate_limit_error"),
        ApiError::NoKeyAvailable { retry_after: Some(_), .. } => (429, "rate_limit_error"),
        // Nothing to wait for: every key invalid or disabled.
        ApiError::NoKeyAvailable { retry_after: None, .. } => (OVERLOADED, "overloaded_error"),
        ApiError::Busy { .. } | ApiError::NoKeysConfigured(_) => (OVERLOADED, "overloaded_error"),
        ApiError::UpstreamRejected { status, .. } | ApiError::UpstreamFailed { status, .. } => by_status(*status),
        ApiError::Internal => (500, "api_error"),
    }
}

/// `{"type":"error","error":{"type","message"}}`.
pub fn error_body(error: &ApiError) -> Value {
    let (_, kind) = status_and_type(error);
    json!({"type": "error", "error": {"type": kind, "message": error.to_string()}})
}

impl ResponseError for AnthropicError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(status_and_type(&self.0).0).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        // The OpenAI response carries `Retry-After` (and logs 500s); only
        // the status and the body change.
        let mut response = self.0.error_response();
        *response.status_mut() = self.status_code();
        let body = serde_json::to_vec(&error_body(&self.0)).unwrap_or_default();
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response.set_body(actix_web::body::BoxBody::new(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn statuses_types_and_retry_after_are_anthropics() {
        let rejected = |status: u16| ApiError::UpstreamRejected {
            status: StatusCode::from_u16(status).unwrap(),
            message: "x".into(),
        };
        let failed = |status: u16| ApiError::UpstreamFailed {
            status: StatusCode::from_u16(status).unwrap(),
            message: "x".into(),
        };
        let cases: Vec<(ApiError, u16, &str, bool)> = vec![
            (ApiError::bad_request("messages: must not be empty"), 400, "invalid_request_error", false),
            (ApiError::Unauthorized, 401, "authentication_error", false),
            (ApiError::Forbidden("agent".into()), 403, "permission_error", false),
            (ApiError::ModelNotFound("m".into()), 404, "not_found_error", false),
            (ApiError::PayloadTooLarge { limit_mb: 1 }, 413, "request_too_large", false),
            (
                ApiError::NoKeyAvailable { message: "cooling".into(), retry_after: Some(Duration::from_secs(3)) },
                429,
                "rate_limit_error",
                true,
            ),
            (ApiError::NoKeyAvailable { message: "invalid".into(), retry_after: None }, 529, "overloaded_error", false),
            (ApiError::NoKeysConfigured("none".into()), 529, "overloaded_error", false),
            (ApiError::Busy { retry_after: Duration::from_secs(2) }, 529, "overloaded_error", true),
            (rejected(400), 400, "invalid_request_error", false),
            (rejected(403), 403, "permission_error", false),
            (failed(502), 502, "api_error", false),
            (failed(504), 504, "api_error", false),
            (failed(503), 529, "overloaded_error", false),
            (ApiError::Internal, 500, "api_error", false),
        ];
        for (error, status, kind, retry_after) in cases {
            let response = AnthropicError(error.clone()).error_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(response.headers().contains_key("retry-after"), retry_after, "{error:?}");
            let body = error_body(&error);
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], kind, "{error:?}");
            assert_eq!(body["error"]["message"], error.to_string());
        }
    }
}
