//! OAuth access tokens for service accounts: the JWT-bearer grant
//! (RFC 7523) as Google runs it, and a cache of tokens per account. Pure:
//! this module signs assertions, builds request bodies and reads answers;
//! the caller sends the request and passes `now`. Tokens and assertions
//! never appear in an error.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use crate::secret::{LogSafe, Secret};
use crate::vertex::credentials::ServiceAccount;

pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Tokens are refreshed this long before they expire.
pub const REFRESH_MARGIN_MS: u64 = 5 * 60 * 1000;
/// Lifetime asked for in the assertion; Google allows at most one hour.
const ASSERTION_LIFETIME_S: u64 = 3600;
/// Lifetime assumed when the token endpoint does not state one.
const DEFAULT_EXPIRES_IN_S: u64 = 3600;
/// Longest error description kept from the token endpoint.
const MAX_DESCRIPTION_CHARS: usize = 300;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The signed assertion for `account` at `now_s` (Unix seconds): RS256,
/// `kid` = the key id (omitted when empty), valid for one hour.
pub fn signed_assertion(account: &ServiceAccount, now_s: u64) -> Result<String, TokenError> {
    let key = EncodingKey::from_rsa_pem(account.private_key_pem().as_bytes())
        .map_err(|_| TokenError::Signing("private_key is not a valid RSA PEM key".to_owned()))?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(account.private_key_id.clone()).filter(|kid| !kid.is_empty());
    let claims = Claims {
        iss: &account.client_email,
        scope: SCOPE,
        aud: &account.token_uri,
        iat: now_s,
        exp: now_s.saturating_add(ASSERTION_LIFETIME_S),
    };
    // The library's messages describe the failure, not the key.
    jsonwebtoken::encode(&header, &claims, &key).map_err(|error| TokenError::Signing(error.to_string()))
}

/// The token request's `application/x-www-form-urlencoded` body.
pub fn grant_body(assertion: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE)
        .append_pair("assertion", assertion)
        .finish()
}

/// An access token and when it expires (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at_ms: u64,
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The account's key cannot sign.
    #[error("cannot sign the token request: {0}")]
    Signing(String),
    /// The token endpoint refused the credential (revoked key, deleted
    /// account, clock skew): `<error>: <description>` as Google said it.
    #[error("token endpoint rejected the credential: {0}")]
    Rejected(String),
    /// No usable answer: rate limited, server error, garbage, network.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// Whether the account itself is at fault (so retrying soon is futile).
    pub fn is_credential_fault(&self) -> bool {
        matches!(self, TokenError::Rejected(_) | TokenError::Signing(_))
    }
}

/// Reads the token endpoint's answer to [`grant_body`].
pub fn parse_token_response(status: u16, body: &[u8], now_ms: u64) -> Result<AccessToken, TokenError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match status {
        200..=299 => {
            let answer = parsed.ok_or_else(|| unavailable("the answer is not JSON"))?;
            let token = answer
                .get("access_token")
                .and_then(Value::as_str)
                .filter(|token| !token.trim().is_empty())
                .ok_or_else(|| unavailable("the answer has no access_token"))?;
            let token_type = answer.get("token_type").and_then(Value::as_str).unwrap_or("Bearer");
            if !token_type.eq_ignore_ascii_case("bearer") {
                return Err(unavailable("the answer's token_type is not Bearer"));
            }
            let expires_in_s = answer.get("expires_in").and_then(seconds).unwrap_or(DEFAULT_EXPIRES_IN_S);
            Ok(AccessToken {
                token: Secret::new(token.trim()),
                expires_at_ms: now_ms.saturating_add(expires_in_s.saturating_mul(1000)),
            })
        }
        400 | 401 | 403 => {
            let error = parsed.as_ref().and_then(|answer| answer.get("error")).and_then(Value::as_str);
            let Some(error) = error.filter(|error| !error.trim().is_empty()) else {
                return Err(unavailable(&format!("HTTP {status} without an OAuth error")));
            };
            let description = parsed
                .as_ref()
                .and_then(|answer| answer.get("error_description"))
                .and_then(Value::as_str)
                .filter(|description| !description.trim().is_empty());
            let reason = match description {
                Some(description) => format!("{}: {}", printable(error), printable(description)),
                None => printable(error),
            };
            Err(TokenError::Rejected(reason))
        }
        _ => Err(unavailable(&format!("HTTP {status}"))),
    }
}

fn unavailable(reason: &str) -> TokenError {
    TokenError::Unavailable(reason.to_owned())
}

/// `expires_in` as a number or a numeric string, in whole seconds.
fn seconds(value: &Value) -> Option<u64> {
    let number = match value {
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        other => other.as_f64()?,
    };
    (number.is_finite() && number >= 0.0).then_some(number as u64)
}

/// Text from the token endpoint as it may appear in logs and on the
/// dashboard: control characters escaped, length bounded.
fn printable(text: &str) -> String {
    let escaped = LogSafe(text.trim()).to_string();
    match escaped.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

/// Access tokens by account identity ([`ServiceAccount::identity`]).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, AccessToken>>,
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// A token still valid for more than [`REFRESH_MARGIN_MS`] at `now_ms`.
    pub fn fresh(&self, identity: &str, now_ms: u64) -> Option<Secret> {
        self.valid_after(identity, now_ms.saturating_add(REFRESH_MARGIN_MS))
    }

    /// A token still valid at all: what to use while a refresh fails but
    /// the old token has not expired yet.
    pub fn usable(&self, identity: &str, now_ms: u64) -> Option<Secret> {
        self.valid_after(identity, now_ms)
    }

    pub fn store(&self, identity: &str, token: AccessToken) {
        self.tokens.lock().insert(identity.to_owned(), token);
    }

    pub fn forget(&self, identity: &str) {
        self.tokens.lock().remove(identity);
    }

    /// The identities among `identities` whose token is missing or within
    /// the margin of expiring, in the order given (for the refresher).
    pub fn due(&self, identities: &[String], now_ms: u64) -> Vec<String> {
        let tokens = self.tokens.lock();
        let horizon_ms = now_ms.saturating_add(REFRESH_MARGIN_MS);
        identities
            .iter()
            .filter(|identity| tokens.get(identity.as_str()).is_none_or(|token| token.expires_at_ms <= horizon_ms))
            .cloned()
            .collect()
    }

    fn valid_after(&self, identity: &str, instant_ms: u64) -> Option<Secret> {
        let tokens = self.tokens.lock();
        tokens.get(identity).filter(|token| token.expires_at_ms > instant_ms).map(|token| token.token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vertex::credentials::parse_accounts;
    use jsonwebtoken::{DecodingKey, Validation};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/vertex");
    const NOW_S: u64 = 1_750_000_000;
    const NOW_MS: u64 = NOW_S * 1000;

    fn account() -> ServiceAccount {
        let text = std::fs::read_to_string(format!("{FIXTURES}/service-account.json")).unwrap();
        parse_accounts(&text).unwrap().remove(0)
    }

    fn decoding_key() -> DecodingKey {
        let pem = std::fs::read(format!("{FIXTURES}/service-account.pub.pem")).unwrap();
        DecodingKey::from_rsa_pem(&pem).unwrap()
    }

    #[derive(serde::Deserialize)]
    struct DecodedClaims {
        iss: String,
        scope: String,
        aud: String,
        iat: u64,
        exp: u64,
    }

    #[test]
    fn assertion_is_signed_by_the_account_key() {
        let account = account();
        let assertion = signed_assertion(&account, NOW_S).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&account.token_uri]);
        validation.set_issuer(&[&account.client_email]);
        // A fixed `now` long past: expiry is checked by hand below.
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<DecodedClaims>(&assertion, &decoding_key(), &validation).unwrap();
        assert_eq!(decoded.header.alg, Algorithm::RS256);
        assert_eq!(decoded.header.typ.as_deref(), Some("JWT"));
        assert_eq!(decoded.header.kid.as_deref(), Some("0123456789abcdef0123456789abcdef01234567"));
        let claims = decoded.claims;
        assert_eq!(claims.iss, "hajimi-test@hajimi-test.iam.gserviceaccount.com");
        assert_eq!(claims.scope, SCOPE);
        assert_eq!(claims.aud, "https://oauth2.googleapis.com/token");
        assert_eq!((claims.iat, claims.exp), (NOW_S, NOW_S + 3600));
    }

    #[test]
    fn assertion_has_no_kid_without_a_key_id() {
        let mut account = account();
        account.private_key_id.clear();
        let assertion = signed_assertion(&account, NOW_S).unwrap();
        let header = jsonwebtoken::decode_header(&assertion).unwrap();
        assert_eq!(header.kid, None);
        let header_json = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            assertion.split('.').next().unwrap(),
        )
        .unwrap();
        assert!(!String::from_utf8(header_json).unwrap().contains("kid"));
    }

    #[test]
    fn grant_body_is_a_form_google_reads() {
        let assertion = signed_assertion(&account(), NOW_S).unwrap();
        let body = grant_body(&assertion);
        assert!(body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="));
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(pairs, vec![("grant_type".to_owned(), GRANT_TYPE.to_owned()), ("assertion".to_owned(), assertion)]);
        // Characters form encoding must escape survive the round trip.
        let odd = "a+b c&d=e/é";
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(grant_body(odd).as_bytes()).into_owned().collect();
        assert_eq!(pairs[1].1, odd);
    }

    #[test]
    fn reads_the_token_endpoint_answer() {
        let token = |value: &str, expires_at_ms: u64| Ok(AccessToken { token: Secret::new(value), expires_at_ms });
        let rejected = |reason: &str| Err(TokenError::Rejected(reason.to_owned()));
        let unavailable = |reason: &str| Err(TokenError::Unavailable(reason.to_owned()));
        let cases: Vec<(u16, &str, Result<AccessToken, TokenError>)> = vec![
            (
                200,
                r#"{"access_token":"ya29.c.token","expires_in":3599,"token_type":"Bearer"}"#,
                token("ya29.c.token", NOW_MS + 3_599_000),
            ),
            (200, r#"{"access_token":"ya29.a","expires_in":"1800"}"#, token("ya29.a", NOW_MS + 1_800_000)),
            (200, r#"{"access_token":"ya29.b","token_type":"bearer"}"#, token("ya29.b", NOW_MS + 3_600_000)),
            (200, r#"{"access_token":"ya29.c","expires_in":59.9}"#, token("ya29.c", NOW_MS + 59_000)),
            (200, r#"{"access_token":"ya29.d","expires_in":-5}"#, token("ya29.d", NOW_MS + 3_600_000)),
            (200, r#"{"expires_in":3599}"#, unavailable("the answer has no access_token")),
            (200, r#"{"access_token":"","expires_in":3599}"#, unavailable("the answer has no access_token")),
            (200, r#"{"access_token":"x","token_type":"MAC"}"#, unavailable("the answer's token_type is not Bearer")),
            (200, "<html>proxy</html>", unavailable("the answer is not JSON")),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
                rejected("invalid_grant: Invalid JWT Signature."),
            ),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token\n(60 minutes)"}"#,
                rejected("invalid_grant: Invalid JWT: Token must be a short-lived token\\n(60 minutes)"),
            ),
            (401, r#"{"error":"invalid_client"}"#, rejected("invalid_client")),
            (
                403,
                r#"{"error":"access_denied","error_description":"Account deleted"}"#,
                rejected("access_denied: Account deleted"),
            ),
            (400, "Bad Request", unavailable("HTTP 400 without an OAuth error")),
            (429, r#"{"error":"rate_limit_exceeded"}"#, unavailable("HTTP 429")),
            (503, "Service Unavailable", unavailable("HTTP 503")),
            (500, "", unavailable("HTTP 500")),
            (302, "", unavailable("HTTP 302")),
        ];
        for (status, body, expected) in cases {
            assert_eq!(parse_token_response(status, body.as_bytes(), NOW_MS), expected, "{status} {body}");
        }
    }

    #[test]
    fn long_descriptions_are_cut() {
        let body = serde_json::json!({"error": "invalid_grant", "error_description": "x".repeat(1000)}).to_string();
        let Err(TokenError::Rejected(reason)) = parse_token_response(400, body.as_bytes(), NOW_MS) else {
            panic!("expected a rejection");
        };
        assert_eq!(reason, format!("invalid_grant: {}…", "x".repeat(MAX_DESCRIPTION_CHARS)));
    }

    #[test]
    fn credential_faults_are_told_apart_from_outages() {
        assert!(TokenError::Rejected("invalid_grant".into()).is_credential_fault());
        assert!(TokenError::Signing("bad key".into()).is_credential_fault());
        assert!(!TokenError::Unavailable("HTTP 503".into()).is_credential_fault());
    }

    #[test]
    fn errors_never_carry_the_token() {
        let bodies =
            [r#"{"access_token":"ya29.secret-token","token_type":"MAC"}"#, r#"{"access_token":"ya29.secret-token""#];
        for body in bodies {
            let error = parse_token_response(200, body.as_bytes(), NOW_MS).unwrap_err();
            assert!(!format!("{error} {error:?}").contains("secret-token"), "{error}");
        }
        let token = parse_token_response(200, br#"{"access_token":"ya29.secret-token"}"#, NOW_MS).unwrap();
        assert!(!format!("{token:?}").contains("secret-token"));
    }

    #[test]
    fn cache_tells_fresh_from_usable_from_due() {
        let cache = TokenCache::new();
        let identities = vec!["a#1".to_owned(), "b#2".to_owned()];
        assert_eq!(cache.due(&identities, NOW_MS), identities, "nothing cached yet");
        let expires_at_ms = NOW_MS + 3_600_000;
        cache.store("a#1", AccessToken { token: Secret::new("ya29.a"), expires_at_ms });
        let margin_starts = expires_at_ms - REFRESH_MARGIN_MS;
        let token = Some(Secret::new("ya29.a"));
        // (now, fresh, usable, due)
        let cases = [
            (NOW_MS, true, true, false),
            (margin_starts - 1, true, true, false),
            (margin_starts, false, true, true),
            (expires_at_ms - 1, false, true, true),
            (expires_at_ms, false, false, true),
            (expires_at_ms + 1, false, false, true),
        ];
        for (now_ms, fresh, usable, due) in cases {
            assert_eq!(cache.fresh("a#1", now_ms), token.clone().filter(|_| fresh), "fresh at {now_ms}");
            assert_eq!(cache.usable("a#1", now_ms), token.clone().filter(|_| usable), "usable at {now_ms}");
            let expected_due: Vec<String> =
                identities.iter().filter(|identity| due || identity.as_str() == "b#2").cloned().collect();
            assert_eq!(cache.due(&identities, now_ms), expected_due, "due at {now_ms}");
        }
        assert_eq!(cache.fresh("b#2", NOW_MS), None);
        cache.forget("a#1");
        assert_eq!(cache.usable("a#1", NOW_MS), None);
    }

    #[test]
    fn cache_is_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TokenCache>();
    }
}
