//! Newtypes for secrets. They never print their value: `Debug` and
//! `Display` mask it, and neither implements `Serialize`, so a key or a
//! password cannot reach a log line, an error body or a page by accident.
//! Comparison against client input is constant-time.

use std::fmt;
use subtle::ConstantTimeEq;

/// A Gemini AI Studio API key (`AIza…`, 39 characters). Shared, so
/// handing a key to an upstream call copies a pointer, not the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(std::sync::Arc<str>);

impl ApiKey {
    pub const PREFIX: &'static str = "AIza";
    pub const LENGTH: usize = 39;

    /// Wraps a string that is already known to be a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(std::sync::Arc::from(key.into()))
    }

    /// The raw key, for the one place that needs it: the upstream header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `AIza…Xy12`: enough to tell keys apart, useless to an attacker.
    pub fn masked(&self) -> String {
        let tail_start = self.0.len().saturating_sub(4);
        let tail = self.0.get(tail_start..).unwrap_or("");
        format!("{}…{}", Self::PREFIX, tail)
    }

    /// Every key in `text`, in order, without duplicates. Keys are found by
    /// the pattern `AIza[0-9A-Za-z_-]{35}` whatever separates them (commas,
    /// newlines, spaces, quotes…), as the original does.
    pub fn extract_all(text: &str) -> Vec<ApiKey> {
        let is_key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        let bytes = text.as_bytes();
        let prefix = Self::PREFIX.as_bytes();
        let mut found: Vec<ApiKey> = Vec::with_capacity(text.len() / (Self::LENGTH + 1));
        let mut seen: std::collections::HashSet<&str, crate::fasthash::FastBuildHasher> =
            std::collections::HashSet::with_capacity_and_hasher(text.len() / (Self::LENGTH + 1), Default::default());
        let mut position = 0;
        while position + Self::LENGTH <= bytes.len() {
            // Jump to the next 'A' (a byte scan, no searcher set-up per key).
            let Some(offset) = bytes[position..bytes.len() - Self::LENGTH + 1].iter().position(|&b| b == b'A') else {
                break;
            };
            let start = position + offset;
            let end = start + Self::LENGTH;
            let is_key = bytes[start..].starts_with(prefix)
                && bytes[start + prefix.len()..end].iter().all(|&b| is_key_byte(b))
                && bytes.get(end).is_none_or(|&b| !is_key_byte(b));
            if !is_key {
                position = start + 1;
                continue;
            }
            // The range holds ASCII only, so it is a valid `str` slice.
            let key = &text[start..end];
            if seen.insert(key) {
                found.push(ApiKey(std::sync::Arc::from(key)));
            }
            position = end;
        }
        found
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.masked())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A password or token. Prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with what a client sent (the length is the
    /// only thing a timing attacker can learn).
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Masks anything that looks like an AI Studio key in free text (upstream
/// error messages sometimes quote the key).
pub fn redact_keys(text: &str) -> String {
    let keys = ApiKey::extract_all(text);
    let mut out = text.to_owned();
    for key in keys {
        out = out.replace(key.expose(), &key.masked());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY_B: &str = "AIzaSyB_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn extracts_keys_whatever_separates_them() {
        let cases: &[(&str, Vec<&str>)] = &[
            ("", vec![]),
            (KEY_A, vec![KEY_A]),
            (&format!("{KEY_A},{KEY_B}"), vec![KEY_A, KEY_B]),
            (&format!(" \"{KEY_A}\"\n{KEY_B};{KEY_A}"), vec![KEY_A, KEY_B]),
            // Too long: not a key.
            (&format!("{KEY_A}x"), vec![]),
            ("AIzaShort", vec![]),
        ];
        for (input, expected) in cases {
            let got: Vec<String> = ApiKey::extract_all(input).iter().map(|k| k.expose().to_owned()).collect();
            assert_eq!(&got, expected, "input {input:?}");
        }
    }

    #[test]
    fn keys_and_secrets_never_print_their_value() {
        let key = ApiKey::new(KEY_A);
        assert_eq!(key.to_string(), "AIza…aaaa");
        assert!(!format!("{key:?}").contains(KEY_A));
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(secret.matches("hunter2"));
        assert!(!secret.matches("hunter3"));
        assert!(!secret.matches(""));
        assert_eq!(redact_keys(&format!("bad key {KEY_A}!")), "bad key AIza…aaaa!");
    }
}
