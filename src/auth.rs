//! Client authentication for the API routes (§3.1, §3.3). The key is read
//! from `x-goog-api-key`, the `key` query parameter, then
//! `Authorization: Bearer`, and compared in constant time with `PASSWORD`.
//! In Hugging Face mode a request that HF's gateway accepted is let in too,
//! but only with an `x-ip-token` whose signature, expiry and Space privacy
//! check out (see `huggingface`). Wrong keys are throttled per client
//! address (`throttle`).

use std::borrow::Cow;
use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::config::Config;
use crate::error::ApiError;
use crate::huggingface::TokenVerdict;
use crate::ratelimit::client_ip;
use crate::secret::LogSafe;
use crate::state::AppState;
use crate::throttle::{Guarded, Verdict};

/// The client key as sent, from the first place that has one:
/// `x-goog-api-key` (Google's clients), `x-api-key` (Anthropic's), the
/// `key` query parameter, `Authorization: Bearer`.
pub fn client_key(request: &HttpRequest) -> Option<Cow<'_, str>> {
    for header in ["x-goog-api-key", "x-api-key"] {
        if let Some(value) = request.headers().get(header).and_then(|v| v.to_str().ok()) {
            return Some(Cow::Borrowed(value.trim()));
        }
    }
    let from_query = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value);
    if from_query.is_some() {
        return from_query;
    }
    let authorization = request.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| Cow::Borrowed(token.trim()))
}

/// Who an authorized client is, as far as keeping clients apart needs:
/// how it proved itself and its address (IPv4, or IPv6 /64). The swipe
/// cache and in-flight sharing are scoped by it, so one client's answer is
/// never served to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientScope([u8; 17]);

impl ClientScope {
    fn new(credential: Credential, address: IpAddr) -> ClientScope {
        let mut bytes = [0u8; 17];
        bytes[0] = credential as u8;
        match address.to_canonical() {
            IpAddr::V4(v4) => bytes[1..5].copy_from_slice(&v4.octets()),
            // One household or server usually owns a whole /64.
            IpAddr::V6(v6) => bytes[1..9].copy_from_slice(&v6.octets()[..8]),
        }
        bytes[16] = u8::from(address.to_canonical().is_ipv6());
        ClientScope(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Credential {
    Password = 1,
    HuggingFaceToken = 2,
}

/// The client's address: the peer, or what the trusted proxy header says
/// when the peer is a trusted proxy (`TRUSTED_PROXY_HEADER`,
/// `TRUSTED_PROXIES`). Several header lines count as one list in order, as
/// HTTP defines, so a client-supplied line cannot hide the one the proxy
/// appended.
pub fn client_address(request: &HttpRequest, config: &Config) -> IpAddr {
    let peer = request.peer_addr().map(|address| address.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    if config.trusted_proxy_header.is_empty() {
        return peer.to_canonical();
    }
    let is_forwarded_for = config.trusted_proxy_header == "x-forwarded-for";
    let lines: Vec<&str> = request
        .headers()
        .get_all(config.trusted_proxy_header.as_str())
        .filter_map(|value| value.to_str().ok())
        .collect();
    let header = match lines.as_slice() {
        [] => None,
        [only] => Some(std::borrow::Cow::Borrowed(*only)),
        // A single-address header given twice: the proxy's is the last.
        [.., last] if !is_forwarded_for => Some(std::borrow::Cow::Borrowed(*last)),
        several => Some(std::borrow::Cow::Owned(several.join(","))),
    };
    client_ip(peer, header.as_deref(), is_forwarded_for, &config.trusted_proxies)
}

/// Decides whether an API request may proceed. Order: User-Agent allow-list;
/// an address locked out by failed attempts gets 429 before its key is even
/// looked at; `PASSWORD`; in Hugging Face mode a verified `x-ip-token`. A
/// wrong key counts against the address.
pub fn authorize(request: &HttpRequest, state: &AppState, config: &Config) -> Result<ClientAuthorized, ApiError> {
    if !config.whitelist_user_agent.is_empty() {
        let agent = request.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_lowercase();
        if !config.whitelist_user_agent.iter().any(|allowed| agent.contains(allowed.as_str())) {
            return Err(ApiError::Forbidden("This client is not allowed / 客户端不在白名单中".to_owned()));
        }
    }
    let address = client_address(request, config);
    let now_ms = state.now_ms();
    let throttle = state.throttles.of(Guarded::Api);
    if let Err(locked) = throttle.check(address, now_ms) {
        return Err(locked_out(locked.retry_after_ms));
    }
    let key = client_key(request);
    if key.as_deref().is_some_and(|key| config.password.matches(key)) {
        throttle.record_success(address);
        request.extensions_mut().insert(Authenticated);
        return Ok(ClientAuthorized { address, scope: ClientScope::new(Credential::Password, address) });
    }
    if config.huggingface {
        let token = request.headers().get("x-ip-token").and_then(|v| v.to_str().ok());
        match state.huggingface.verify(token) {
            TokenVerdict::Accepted => {
                request.extensions_mut().insert(Authenticated);
                return Ok(ClientAuthorized {
                    address,
                    scope: ClientScope::new(Credential::HuggingFaceToken, address),
                });
            }
            TokenVerdict::Rejected(reason) => {
                log::warn!("Hugging Face gateway rejected the caller's token: {}", LogSafe(&reason));
                return Err(ApiError::Forbidden(
                    "Hugging Face rejected your access token / Hugging Face 访问令牌无效".to_owned(),
                ));
            }
            TokenVerdict::NotProven => {}
        }
    }
    // (A request without any key is not a guess. The key was compared
    // above already: HF mode may accept a request the password did not, so
    // the failure is counted only now, through the same throttle.)
    if key.is_some() {
        if let Verdict::LockedOut { retry_after_ms, began } =
            throttle.check_secret(address, config.auth_failures_per_minute, now_ms, || false)
        {
            if began {
                log::warn!("too many wrong client keys from {address}: refused for {} s", retry_after_ms / 1000);
                crate::cluster::share_lockout(state, Guarded::Api, address, retry_after_ms);
            }
            return Err(locked_out(retry_after_ms));
        }
    }
    Err(ApiError::Unauthorized)
}

fn locked_out(retry_after_ms: u64) -> ApiError {
    ApiError::RateLimited {
        message: "Too many failed attempts; try again later / 密码错误次数过多，请稍后再试".to_owned(),
        retry_after: std::time::Duration::from_millis(retry_after_ms),
    }
}

/// Marks a request whose client authenticated (a request extension): only
/// such requests go into the request log.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

/// Extractor: put it first in a handler's arguments to require client auth.
/// It carries who the client is.
#[derive(Debug, Clone, Copy)]
pub struct ClientAuthorized {
    pub address: IpAddr,
    pub scope: ClientScope,
}

impl FromRequest for ClientAuthorized {
    type Error = ApiError;
    type Future = Ready<Result<ClientAuthorized, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match request.app_data::<web::Data<AppState>>() {
            Some(state) => authorize(request, state, &state.config()),
            None => Err(ApiError::Internal),
        };
        ready(result)
    }
}

/// [`ClientAuthorized`] for Gemini-native routes: the same checks, the
/// refusal in Google's error envelope.
#[derive(Debug, Clone, Copy)]
pub struct NativeAuthorized(pub ClientAuthorized);

impl FromRequest for NativeAuthorized {
    type Error = crate::error::GoogleError;
    type Future = Ready<Result<NativeAuthorized, crate::error::GoogleError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match request.app_data::<web::Data<AppState>>() {
            Some(state) => authorize(request, state, &state.config()),
            None => Err(ApiError::Internal),
        };
        ready(result.map(NativeAuthorized).map_err(crate::error::GoogleError))
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

    fn status(result: Result<ClientAuthorized, ApiError>) -> Result<(), u16> {
        use actix_web::ResponseError;
        result.map(|_| ()).map_err(|e| e.status_code().as_u16())
    }

    #[test]
    fn every_key_location() {
        let cases: Vec<(TestRequest, Result<(), u16>)> = vec![
            (TestRequest::default(), Err(401)),
            (TestRequest::default().insert_header(("x-goog-api-key", "s3cret")), Ok(())),
            (TestRequest::default().insert_header(("x-api-key", "s3cret")), Ok(())),
            (TestRequest::default().insert_header(("x-api-key", "wrong")), Err(401)),
            (TestRequest::default().uri("/v1/models?key=s3cret"), Ok(())),
            (TestRequest::default().insert_header(("authorization", "Bearer s3cret")), Ok(())),
            (TestRequest::default().insert_header(("authorization", "bearer s3cret")), Ok(())),
            (TestRequest::default().insert_header(("authorization", "Bearer wrong")), Err(401)),
            (TestRequest::default().insert_header(("authorization", "Basic s3cret")), Err(401)),
        ];
        for (index, (request, expected)) in cases.into_iter().enumerate() {
            let config = config(false);
            let state = AppState::new(config.clone());
            assert_eq!(status(authorize(&request.to_http_request(), &state, &config)), expected, "case {index}");
        }
    }

    #[test]
    fn a_hand_made_token_opens_nothing() {
        // `.e30.` is the payload `{}`: accepted before hardening.
        let config = config(true);
        let state = AppState::new(config.clone());
        for token in ["x.e30.y", "eyJhbGciOiJFZERTQSJ9.e30.c2ln", "garbage"] {
            let request = TestRequest::default().insert_header(("x-ip-token", token)).to_http_request();
            assert_eq!(status(authorize(&request, &state, &config)), Err(401), "{token}");
        }
        let request = TestRequest::default().insert_header(("authorization", "Bearer s3cret")).to_http_request();
        assert_eq!(status(authorize(&request, &state, &config)), Ok(()));
    }

    #[test]
    fn wrong_keys_lock_the_address_out_and_a_success_clears_it() {
        let config = config(false);
        let state = AppState::new(config.clone());
        let from = |key: &str, address: &str| {
            TestRequest::default()
                .peer_addr(format!("{address}:5000").parse().unwrap())
                .insert_header(("authorization", format!("Bearer {key}")))
                .to_http_request()
        };
        let attacker = "203.0.113.5";
        for attempt in 0..config.auth_failures_per_minute {
            assert_eq!(status(authorize(&from("guess", attacker), &state, &config)), Err(401), "attempt {attempt}");
        }
        let locked = authorize(&from("guess", attacker), &state, &config).unwrap_err();
        assert!(matches!(&locked, ApiError::RateLimited { retry_after, .. } if retry_after.as_secs() >= 30));
        // While locked, even the right key is refused (no oracle).
        assert_eq!(status(authorize(&from("s3cret", attacker), &state, &config)), Err(429));
        // Others are not affected.
        assert_eq!(status(authorize(&from("s3cret", "198.51.100.7"), &state, &config)), Ok(()));
        // A request without any key is not a guess.
        let bare = TestRequest::default().peer_addr("198.51.100.8:1".parse().unwrap()).to_http_request();
        for _ in 0..20 {
            assert_eq!(status(authorize(&bare, &state, &config)), Err(401));
        }
    }

    #[test]
    fn forwarded_for_lines_are_one_list_walked_from_the_right() {
        let mut config = config(false);
        config.trusted_proxy_header = "x-forwarded-for".into();
        config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        let request = TestRequest::default()
            .peer_addr("10.1.1.1:443".parse().unwrap())
            // The client's own (forged) line, then the one the proxy appended.
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .append_header(("x-forwarded-for", "198.51.100.20, 10.2.2.2"))
            .to_http_request();
        assert_eq!(client_address(&request, &config), "198.51.100.20".parse::<IpAddr>().unwrap());
        // From an untrusted peer the header is ignored.
        let request = TestRequest::default()
            .peer_addr("203.0.113.1:443".parse().unwrap())
            .append_header(("x-forwarded-for", "6.6.6.6"))
            .to_http_request();
        assert_eq!(client_address(&request, &config), "203.0.113.1".parse::<IpAddr>().unwrap());
        // A single-address header sent twice: the proxy's line is the last.
        config.trusted_proxy_header = "x-real-ip".into();
        let request = TestRequest::default()
            .peer_addr("10.1.1.1:443".parse().unwrap())
            .append_header(("x-real-ip", "6.6.6.6"))
            .append_header(("x-real-ip", "198.51.100.21"))
            .to_http_request();
        assert_eq!(client_address(&request, &config), "198.51.100.21".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn scopes_differ_by_address_and_credential() {
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        assert_ne!(ClientScope::new(Credential::Password, a), ClientScope::new(Credential::Password, b));
        assert_ne!(ClientScope::new(Credential::Password, a), ClientScope::new(Credential::HuggingFaceToken, a));
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::99".parse().unwrap();
        assert_eq!(ClientScope::new(Credential::Password, v6a), ClientScope::new(Credential::Password, v6b));
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        assert_eq!(ClientScope::new(Credential::Password, a), ClientScope::new(Credential::Password, mapped));
    }

    /// The credential is read where it was sent, not copied: only a query
    /// value with escapes has to be decoded into a text of its own.
    #[test]
    fn the_credential_is_borrowed_from_the_request() {
        let cases = [
            (TestRequest::default().insert_header(("x-goog-api-key", " s3cret ")), "s3cret", true),
            (TestRequest::default().insert_header(("x-api-key", "s3cret")), "s3cret", true),
            (TestRequest::default().uri("/v1/models?key=s3cret"), "s3cret", true),
            (TestRequest::default().uri("/v1/models?key=s3%63ret"), "s3cret", false),
            (TestRequest::default().insert_header(("authorization", "bearer  s3cret ")), "s3cret", true),
        ];
        for (request, expected, borrowed) in cases {
            let request = request.to_http_request();
            let key = client_key(&request).expect("a credential");
            assert_eq!(key, expected);
            assert_eq!(matches!(key, Cow::Borrowed(_)), borrowed, "{expected}");
        }
        let request = TestRequest::default().insert_header(("authorization", "Basic s3cret")).to_http_request();
        assert_eq!(client_key(&request), None);
    }
}
