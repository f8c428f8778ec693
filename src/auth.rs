//! Client authentication for the API routes (§3.1, §3.3). The key is read
//! from `x-goog-api-key`, the `key` query parameter, then
//! `Authorization: Bearer`, and compared in constant time with `PASSWORD`.
//! In Hugging Face mode a request that HF's gateway accepted (an
//! `x-ip-token` whose payload carries no `error`) is let in too — this
//! trusts HF's gateway and must not be enabled on a host reachable any other
//! way.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine;
use std::future::{ready, Ready};

use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;

/// The client key as sent, from the first place that has one.
pub fn client_key(request: &HttpRequest) -> Option<String> {
    if let Some(value) = request.headers().get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        return Some(value.trim().to_owned());
    }
    let from_query = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value.into_owned());
    if from_query.is_some() {
        return from_query;
    }
    let authorization = request.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// What HF's gateway said about the caller's access token.
#[derive(Debug, PartialEq, Eq)]
enum HuggingFaceVerdict {
    Accepted,
    Rejected(String),
    Absent,
}

fn huggingface_verdict(request: &HttpRequest) -> HuggingFaceVerdict {
    let Some(token) = request.headers().get("x-ip-token").and_then(|v| v.to_str().ok()) else {
        return HuggingFaceVerdict::Absent;
    };
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|segment| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    match payload {
        None => HuggingFaceVerdict::Rejected("malformed x-ip-token".to_owned()),
        Some(payload) => match payload.get("error") {
            None | Some(serde_json::Value::Null) => HuggingFaceVerdict::Accepted,
            Some(error) => HuggingFaceVerdict::Rejected(error.as_str().unwrap_or("rejected").to_owned()),
        },
    }
}

/// Decides whether an API request may proceed.
pub fn authorize(request: &HttpRequest, config: &Config) -> Result<(), ApiError> {
    if !config.whitelist_user_agent.is_empty() {
        let agent = request.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_lowercase();
        if !config.whitelist_user_agent.iter().any(|allowed| agent.contains(allowed.as_str())) {
            return Err(ApiError::Forbidden("This client is not allowed / 客户端不在白名单中".to_owned()));
        }
    }
    if client_key(request).is_some_and(|key| config.password.matches(&key)) {
        return Ok(());
    }
    if config.huggingface {
        match huggingface_verdict(request) {
            HuggingFaceVerdict::Accepted => return Ok(()),
            HuggingFaceVerdict::Rejected(reason) => {
                log::warn!("Hugging Face gateway rejected the caller's token: {reason}");
                return Err(ApiError::Forbidden(
                    "Hugging Face rejected your access token / Hugging Face 访问令牌无效".to_owned(),
                ));
            }
            HuggingFaceVerdict::Absent => {}
        }
    }
    Err(ApiError::Unauthorized)
}

/// Extractor: put it first in a handler's arguments to require client auth.
pub struct ClientAuthorized;

impl FromRequest for ClientAuthorized {
    type Error = ApiError;
    type Future = Ready<Result<ClientAuthorized, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match request.app_data::<web::Data<AppState>>() {
            Some(state) => authorize(request, &state.config()).map(|()| ClientAuthorized),
            None => Err(ApiError::Internal),
        };
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn config(huggingface: bool) -> Config {
        let mut config = Config::for_tests();
        config.password = crate::secret::Secret::new("s3cret");
        config.huggingface = huggingface;
        config
    }

    fn jwt(payload: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", encode(r#"{"alg":"EdDSA"}"#), encode(payload))
    }

    #[test]
    fn every_key_location_and_the_hf_gateway() {
        let cases: Vec<(TestRequest, bool, Result<(), u16>)> = vec![
            (TestRequest::default(), false, Err(401)),
            (TestRequest::default().insert_header(("x-goog-api-key", "s3cret")), false, Ok(())),
            (TestRequest::default().uri("/v1/models?key=s3cret"), false, Ok(())),
            (TestRequest::default().insert_header(("authorization", "Bearer s3cret")), false, Ok(())),
            (TestRequest::default().insert_header(("authorization", "bearer s3cret")), false, Ok(())),
            (TestRequest::default().insert_header(("authorization", "Bearer wrong")), false, Err(401)),
            (TestRequest::default().insert_header(("authorization", "Basic s3cret")), false, Err(401)),
            // HF mode: accepted token passes without PASSWORD, rejected is 403.
            (TestRequest::default().insert_header(("x-ip-token", jwt(r#"{"ip":"1.2.3.4"}"#))), true, Ok(())),
            (
                TestRequest::default().insert_header(("x-ip-token", jwt(r#"{"error":"InvalidAccessToken"}"#))),
                true,
                Err(403),
            ),
            (TestRequest::default().insert_header(("x-ip-token", jwt(r#"{"ip":"1.2.3.4"}"#))), false, Err(401)),
            (TestRequest::default().insert_header(("authorization", "Bearer s3cret")), true, Ok(())),
        ];
        for (index, (request, huggingface, expected)) in cases.into_iter().enumerate() {
            let request = request.to_http_request();
            let got = authorize(&request, &config(huggingface)).map_err(|e| {
                use actix_web::ResponseError;
                e.status_code().as_u16()
            });
            assert_eq!(got, expected, "case {index}");
        }
    }
}
