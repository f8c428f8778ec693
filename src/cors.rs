//! CORS for browser clients of the API routes (`ALLOWED_ORIGINS`, §2): a
//! web chat front-end served from another origin may call the API when its
//! origin is listed (`*` allows every origin). Empty (the default) sends
//! no CORS header at all, so browsers keep other origins out.
//!
//! Only the API answers CORS: the dashboard, `/health`, `/ready` and
//! `/metrics` never do (they are for the operator's own browser tab and
//! probes). No credentials are allowed (the API takes a key in a header,
//! never a cookie). A preflight from an allowed origin is answered here,
//! before routing, with 204; one from another origin gets 403 with no
//! CORS header.

use std::future::Future;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, Error, HttpResponse};

use crate::state::AppState;

/// Request headers a browser client may send (the API's key headers and
/// those of the SDKs of each API shape).
const ALLOWED_HEADERS: &str = "authorization, content-type, x-goog-api-key, x-goog-api-client, x-api-key, \
                               anthropic-version, anthropic-beta, openai-beta, x-stainless-arch, x-stainless-lang, \
                               x-stainless-os, x-stainless-package-version, x-stainless-runtime, \
                               x-stainless-runtime-version, x-stainless-retry-count, x-stainless-timeout";
const ALLOWED_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// How long a browser may cache a preflight answer (seconds).
const MAX_AGE: &str = "600";

/// Whether `origin` may call the API under `allowed` (`ALLOWED_ORIGINS`).
/// Origins compare exactly, without a trailing slash, case-insensitively
/// (scheme and host are).
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    !origin.is_empty()
        && allowed.iter().any(|entry| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Around `call` (the rest of the request's way): answers an API
/// preflight itself, and adds the CORS headers to an API answer.
pub async fn cors<Fut>(
    request: ServiceRequest,
    call: impl FnOnce(ServiceRequest) -> Fut,
) -> Result<ServiceResponse<BoxBody>, Error>
where
    Fut: Future<Output = Result<ServiceResponse<BoxBody>, Error>>,
{
    let allowed_origin = request
        .headers()
        .get(header::ORIGIN)
        .filter(|_| crate::delivery::is_api_path(request.path()))
        .and_then(|origin| origin.to_str().ok())
        .and_then(|origin| {
            let state = request.app_data::<web::Data<AppState>>()?;
            let config = state.config();
            if config.allowed_origins.is_empty() {
                return None;
            }
            Some((origin.to_owned(), origin_allowed(origin, &config.allowed_origins)))
        });
    let Some((origin, allowed)) = allowed_origin else {
        return call(request).await;
    };
    let is_preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        let response = if allowed {
            HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
                .insert_header((header::VARY, "Origin"))
                .finish()
        } else {
            HttpResponse::Forbidden().insert_header((header::VARY, "Origin")).finish()
        };
        return Ok(request.into_response(response));
    }
    let mut response = call(request).await?;
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after"));
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_star() {
        let allowed = vec!["https://chat.example".to_owned(), "http://localhost:3000/".to_owned()];
        assert!(origin_allowed("https://chat.example", &allowed));
        assert!(origin_allowed("HTTPS://CHAT.EXAMPLE", &allowed));
        assert!(origin_allowed("http://localhost:3000", &allowed));
        for refused in ["https://chat.example.evil", "http://chat.example", "", "null"] {
            assert!(!origin_allowed(refused, &allowed), "{refused}");
        }
        assert!(origin_allowed("https://anything", &["*".to_owned()]));
        assert!(!origin_allowed("", &["*".to_owned()]));
    }

    #[test]
    fn only_the_api_answers_cors() {
        for api in ["/v1/chat/completions", "/v1beta/models", "/chat/completions", "/v1/messages", "/models"] {
            assert!(crate::delivery::is_api_path(api), "{api}");
        }
        for other in ["/", "/login", "/keys", "/settings", "/health", "/ready", "/metrics", "/vertex"] {
            assert!(!crate::delivery::is_api_path(other), "{other}");
        }
    }
}
