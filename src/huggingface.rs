//! Hugging Face mode (§3.3): on a *private* Space, HF's gateway lets in only
//! callers with access to the Space and forwards each request with an
//! `x-ip-token` JWT that HF signs (EdDSA). hajimi accepts such a request
//! without `PASSWORD` only when all of this holds:
//!
//! - the token's signature verifies against HF's published public key
//!   (fetched from `HF_JWT_KEYS_URL`, refreshed hourly; no verified key, no
//!   token auth — it fails closed);
//! - the token has not expired (`exp` is required);
//! - the Space is private: at startup (and hourly) an anonymous Hub API
//!   lookup of `SPACE_ID` must *not* return its metadata. A public Space,
//!   a missing `SPACE_ID` or a lookup that cannot be made leaves token auth
//!   off (anyone can reach a public Space, and HF hands every visitor a
//!   token); `PASSWORD` keeps working either way.
//!
//! A verified token whose payload carries `error` (HF refused the caller's
//! access token) is a 403. The state ([`TokenAuthState`]) is shown by
//! `/ready` and logged when it changes.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::RwLock;
use serde_json::Value;

use crate::config::Config;
use crate::secret::LogSafe;

/// Leeway for clock differences when checking `exp`.
const EXPIRY_LEEWAY_SECONDS: u64 = 30;
/// How often the key and the Space's privacy are checked again once known.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// How soon a check that could not be made is retried.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// Larger answers from the Hub are not read.
const MAX_HUB_ANSWER_BYTES: usize = 256 * 1024;

/// Whether `x-ip-token` may authenticate requests, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAuthState {
    /// `HUGGINGFACE` is false.
    Disabled,
    /// Being checked (startup): off until confirmed.
    Checking,
    On,
    Off(String),
}

impl TokenAuthState {
    /// For `/ready` and logs.
    pub fn describe(&self) -> String {
        match self {
            TokenAuthState::Disabled => "disabled".to_owned(),
            TokenAuthState::Checking => "off: checking that the Space is private".to_owned(),
            TokenAuthState::On => "on".to_owned(),
            TokenAuthState::Off(reason) => format!("off: {reason}"),
        }
    }
}

/// What a request's `x-ip-token` proves.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Signed by HF, unexpired, and HF accepted the caller.
    Accepted,
    /// Signed by HF, which says the caller's access token is bad.
    Rejected(String),
    /// No token, token auth off, or a token that does not verify.
    NotProven,
}

/// The verifier shared by all workers.
pub struct HuggingFaceAuth {
    state: RwLock<TokenAuthState>,
    keys: RwLock<Vec<DecodingKey>>,
    space_is_private: RwLock<Option<bool>>,
}

impl HuggingFaceAuth {
    pub fn new(enabled: bool) -> HuggingFaceAuth {
        HuggingFaceAuth {
            state: RwLock::new(if enabled { TokenAuthState::Checking } else { TokenAuthState::Disabled }),
            keys: RwLock::new(Vec::new()),
            space_is_private: RwLock::new(None),
        }
    }

    pub fn state(&self) -> TokenAuthState {
        self.state.read().clone()
    }

    pub fn verify(&self, token: Option<&str>) -> TokenVerdict {
        let Some(token) = token else {
            return TokenVerdict::NotProven;
        };
        if *self.state.read() != TokenAuthState::On {
            return TokenVerdict::NotProven;
        }
        let keys = self.keys.read();
        match verify_token(token.trim(), &keys) {
            Some(claims) => match claims.get("error") {
                None | Some(Value::Null) => TokenVerdict::Accepted,
                Some(error) => TokenVerdict::Rejected(error.as_str().unwrap_or("rejected").to_owned()),
            },
            None => TokenVerdict::NotProven,
        }
    }

    /// Records the outcome of a privacy check (`None`: could not tell) and
    /// of a key fetch (`None`: failed), and recomputes the state. A failed
    /// check keeps the last definite answer; a failed key fetch keeps the
    /// keys already verified.
    pub fn update(&self, privacy: Result<bool, String>, keys: Result<Vec<DecodingKey>, String>) {
        let privacy_error = match privacy {
            Ok(private) => {
                *self.space_is_private.write() = Some(private);
                None
            }
            Err(reason) => Some(reason),
        };
        let key_error = match keys {
            Ok(keys) if !keys.is_empty() => {
                *self.keys.write() = keys;
                None
            }
            Ok(_) => Some("Hugging Face published no Ed25519 key".to_owned()),
            Err(reason) => Some(reason),
        };
        let new_state = match (*self.space_is_private.read(), privacy_error) {
            (Some(false), _) => TokenAuthState::Off("the Space is public, so anyone could present a token".to_owned()),
            (None, Some(reason)) => {
                TokenAuthState::Off(format!("could not confirm that the Space is private ({reason})"))
            }
            (None, None) => TokenAuthState::Off("could not confirm that the Space is private".to_owned()),
            (Some(true), _) if self.keys.read().is_empty() => TokenAuthState::Off(format!(
                "no verified Hugging Face key ({})",
                key_error.as_deref().unwrap_or("not fetched yet")
            )),
            (Some(true), _) => TokenAuthState::On,
        };
        let mut state = self.state.write();
        if *state != new_state {
            match &new_state {
                TokenAuthState::On => log::info!("Hugging Face token auth is on (private Space, HF key verified)"),
                other => log::warn!("Hugging Face token auth is {}; PASSWORD still works", LogSafe(&other.describe())),
            }
            *state = new_state;
        }
    }
}

/// The token's claims if its signature verifies with one of `keys` and it
/// has not expired.
fn verify_token(token: &str, keys: &[DecodingKey]) -> Option<Value> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = EXPIRY_LEEWAY_SECONDS;
    validation.validate_aud = false;
    keys.iter().find_map(|key| jsonwebtoken::decode::<Value>(token, key, &validation).ok().map(|data| data.claims))
}

/// Ed25519 keys from the Hub's answer: a list of JWKs (what
/// `/api/keys/jwt` serves) or a JWK set `{"keys": […]}`. Other key types
/// are skipped.
pub fn parse_published_keys(body: &[u8]) -> Result<Vec<DecodingKey>, String> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| "the key answer is not JSON".to_owned())?;
    let list = match &parsed {
        Value::Array(items) => items.as_slice(),
        Value::Object(object) => match object.get("keys") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => std::slice::from_ref(&parsed),
        },
        _ => return Err("the key answer is not a list of keys".to_owned()),
    };
    let keys: Vec<DecodingKey> = list
        .iter()
        .filter(|jwk| jwk.get("kty").and_then(Value::as_str) == Some("OKP"))
        .filter(|jwk| jwk.get("crv").and_then(Value::as_str) == Some("Ed25519"))
        .filter_map(|jwk| jwk.get("x").and_then(Value::as_str))
        .filter(|x| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(x.trim_end_matches('='))
                .is_ok_and(|bytes| bytes.len() == 32)
        })
        .filter_map(|x| DecodingKey::from_ed_components(x.trim_end_matches('=')).ok())
        .collect();
    Ok(keys)
}

/// `owner/name` with the characters the Hub allows.
fn is_valid_space_id(space_id: &str) -> bool {
    let Some((owner, name)) = space_id.split_once('/') else {
        return false;
    };
    let part_ok = |part: &str| {
        !part.is_empty() && part.len() <= 96 && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    part_ok(owner) && part_ok(name) && !space_id.contains("..")
}

/// Asks the Hub, without credentials, about the Space: metadata served
/// means public; 401/403/404 mean private (the Hub hides private
/// repositories from anonymous callers).
pub async fn check_space_privacy(client: &awc::Client, config: &Config) -> Result<bool, String> {
    if config.space_id.is_empty() {
        return Err("SPACE_ID is not set".to_owned());
    }
    if !is_valid_space_id(&config.space_id) {
        return Err("SPACE_ID is not of the form owner/name".to_owned());
    }
    let url = format!("{}/api/spaces/{}", config.hf_hub_url, config.space_id);
    let mut response = client.get(&url).send().await.map_err(|_| "the Hub API could not be reached".to_owned())?;
    match response.status().as_u16() {
        200 => {
            let body =
                response.body().limit(MAX_HUB_ANSWER_BYTES).await.map_err(|_| "the Hub answer was unreadable")?;
            let metadata: Value = serde_json::from_slice(&body).map_err(|_| "the Hub answer was not JSON")?;
            match metadata.get("private").and_then(Value::as_bool) {
                // Anonymous callers never see a private Space; if the Hub
                // says so anyway, believe the flag.
                Some(true) => Ok(true),
                _ => Ok(false),
            }
        }
        401 | 403 | 404 => Ok(true),
        status => Err(format!("the Hub API answered HTTP {status}")),
    }
}

pub async fn fetch_published_keys(client: &awc::Client, config: &Config) -> Result<Vec<DecodingKey>, String> {
    let mut response = client
        .get(&config.hf_jwt_keys_url)
        .send()
        .await
        .map_err(|_| "the Hugging Face key endpoint could not be reached".to_owned())?;
    if !response.status().is_success() {
        return Err(format!("the Hugging Face key endpoint answered HTTP {}", response.status().as_u16()));
    }
    let body = response.body().limit(MAX_HUB_ANSWER_BYTES).await.map_err(|_| "the key answer was unreadable")?;
    parse_published_keys(&body)
}

/// Checks privacy and fetches the key now, then again every hour (every
/// minute while something could not be checked).
pub async fn keep_checking(auth: &HuggingFaceAuth, client: &awc::Client, config: &Config) {
    loop {
        let privacy = check_space_privacy(client, config).await;
        let keys = match privacy {
            Ok(true) => fetch_published_keys(client, config).await,
            Ok(false) => Err("not fetched: the Space is public".to_owned()),
            Err(_) => Err("not fetched: privacy unknown".to_owned()),
        };
        auth.update(privacy, keys);
        let wait = if auth.state() == TokenAuthState::On { REFRESH_INTERVAL } else { RETRY_INTERVAL };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SIGNING_KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGbrDpJRH5fOIhH3larvpcNUSf774cJR15EpXM1Dk7HS\n-----END PRIVATE KEY-----\n";
    const PUBLIC_X: &str = "X2kJ5Usyp5x1_EDdpVFF1Umd26ZuekExdeE3yYGYTLA";
    const OTHER_SIGNING_KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOHPu2bBbXPuQbk9R8/r5vq8hh9OYQqx1u0hXacSL4X0\n-----END PRIVATE KEY-----\n";

    fn now() -> u64 {
        crate::clock::unix_ms() / 1000
    }

    fn sign(pem: &str, claims: Value) -> String {
        let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
    }

    fn unsigned(claims: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.{}", encode(r#"{"alg":"EdDSA"}"#), encode(claims), encode("sig"))
    }

    fn verifier_on() -> HuggingFaceAuth {
        let auth = HuggingFaceAuth::new(true);
        let keys = parse_published_keys(format!(r#"[{{"crv":"Ed25519","x":"{PUBLIC_X}","kty":"OKP"}}]"#).as_bytes());
        auth.update(Ok(true), keys);
        assert_eq!(auth.state(), TokenAuthState::On);
        auth
    }

    #[test]
    fn only_tokens_signed_by_hugging_face_count() {
        let auth = verifier_on();
        let exp = now() + 600;
        let cases: Vec<(String, TokenVerdict)> = vec![
            (sign(SIGNING_KEY, serde_json::json!({"ip": "1.2.3.4", "exp": exp})), TokenVerdict::Accepted),
            (
                sign(SIGNING_KEY, serde_json::json!({"error": "InvalidAccessToken", "exp": exp})),
                TokenVerdict::Rejected("InvalidAccessToken".into()),
            ),
            // The hole this closes: a hand-made payload `{}`.
            (unsigned("{}"), TokenVerdict::NotProven),
            ("x.e30.y".to_owned(), TokenVerdict::NotProven),
            (sign(OTHER_SIGNING_KEY, serde_json::json!({"exp": exp})), TokenVerdict::NotProven),
            // Expired, or no expiry at all.
            (sign(SIGNING_KEY, serde_json::json!({"exp": now() - 3600})), TokenVerdict::NotProven),
            (sign(SIGNING_KEY, serde_json::json!({"ip": "1.2.3.4"})), TokenVerdict::NotProven),
            ("".to_owned(), TokenVerdict::NotProven),
        ];
        for (index, (token, expected)) in cases.into_iter().enumerate() {
            assert_eq!(auth.verify(Some(&token)), expected, "case {index}");
        }
        assert_eq!(auth.verify(None), TokenVerdict::NotProven);
    }

    #[test]
    fn an_hmac_token_using_the_public_key_as_secret_is_refused() {
        let auth = verifier_on();
        let key = EncodingKey::from_secret(PUBLIC_X.as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &serde_json::json!({"exp": now() + 60}), &key)
            .unwrap();
        assert_eq!(auth.verify(Some(&token)), TokenVerdict::NotProven);
    }

    #[test]
    fn token_auth_fails_closed() {
        let valid = sign(SIGNING_KEY, serde_json::json!({"exp": now() + 600}));
        let good_keys = || {
            parse_published_keys(format!(r#"{{"keys":[{{"crv":"Ed25519","x":"{PUBLIC_X}","kty":"OKP"}}]}}"#).as_bytes())
        };
        // Still checking: off.
        let auth = HuggingFaceAuth::new(true);
        assert_eq!(auth.verify(Some(&valid)), TokenVerdict::NotProven);
        // Public Space: off even with a key.
        auth.update(Ok(false), good_keys());
        assert!(matches!(auth.state(), TokenAuthState::Off(reason) if reason.contains("public")));
        assert_eq!(auth.verify(Some(&valid)), TokenVerdict::NotProven);
        // Privacy unknown: off.
        let auth = HuggingFaceAuth::new(true);
        auth.update(Err("SPACE_ID is not set".into()), good_keys());
        assert!(matches!(auth.state(), TokenAuthState::Off(reason) if reason.contains("SPACE_ID")));
        // Private but no key: off.
        let auth = HuggingFaceAuth::new(true);
        auth.update(Ok(true), Err("unreachable".into()));
        assert!(matches!(auth.state(), TokenAuthState::Off(reason) if reason.contains("no verified")));
        assert_eq!(auth.verify(Some(&valid)), TokenVerdict::NotProven);
        // Then the key arrives: on. A later failed refresh keeps the key.
        auth.update(Ok(true), good_keys());
        assert_eq!(auth.verify(Some(&valid)), TokenVerdict::Accepted);
        auth.update(Err("timeout".into()), Err("timeout".into()));
        assert_eq!(auth.verify(Some(&valid)), TokenVerdict::Accepted);
        // A Space turned public turns it off.
        auth.update(Ok(false), Err("not fetched".into()));
        assert_eq!(auth.verify(Some(&valid)), TokenVerdict::NotProven);
    }

    #[test]
    fn published_keys_of_other_types_are_skipped() {
        let body = br#"[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"X25519","x":"X2kJ5Usyp5x1_EDdpVFF1Umd26ZuekExdeE3yYGYTLA"},{"kty":"OKP","crv":"Ed25519","x":"short"}]"#;
        assert_eq!(parse_published_keys(body).unwrap().len(), 0);
        assert!(parse_published_keys(b"not json").is_err());
        assert!(parse_published_keys(b"42").is_err());
    }

    #[test]
    fn space_ids_are_checked_before_use_in_a_url() {
        for (space_id, valid) in [
            ("owner/name", true),
            ("my-org/hajimi.v2", true),
            ("owner", false),
            ("owner/name/extra", false),
            ("../x", false),
            ("owner/..", false),
            ("owner/na me", false),
            ("owner/name?x=1", false),
        ] {
            assert_eq!(is_valid_space_id(space_id), valid, "{space_id}");
        }
    }
}
