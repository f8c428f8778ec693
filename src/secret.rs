//! Newtypes for secrets. They never print their value: `Debug` and
//! `Display` mask it, and neither implements `Serialize`, so a key or a
//! password cannot reach a log line, an error body or a page by accident.
//! Comparison against client input is constant-time.

use std::borrow::Cow;
use std::fmt;
use subtle::ConstantTimeEq;

/// A Gemini AI Studio API key (`AIza…`, 39 characters). Shared, so
/// handing a key to an upstream call copies a pointer, not the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(std::sync::Arc<str>);

impl ApiKey {
    pub const PREFIX: &'static str = "AIza";
    pub const LENGTH: usize = 39;

    /// Strings in `text` that start like a key but are not one (wrong length
    /// or characters), to report them without echoing them.
    pub fn count_malformed(text: &str) -> usize {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .filter(|token| token.starts_with(ApiKey::PREFIX) && token.len() != ApiKey::LENGTH)
            .count()
    }

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

/// Key characters after `AIza` from which a run is treated as a key (a
/// real key has 35; a message may quote one cut short).
const MIN_KEY_TAIL_TO_MASK: usize = 16;

/// Secrets of other shapes (passwords, proxy credentials, Vertex Express
/// keys) that are masked wherever they appear, by exact match. Shorter
/// ones are not registered: masking "123" would garble every message.
static EXACT_SECRETS: parking_lot::RwLock<Vec<ExactSecret>> = parking_lot::RwLock::new(Vec::new());
pub const MIN_REGISTERED_SECRET_LENGTH: usize = 8;

/// A registered secret and its searcher, built once (a search set up per
/// message and secret cost more than the search).
struct ExactSecret {
    value: std::sync::Arc<str>,
    finder: memchr::memmem::Finder<'static>,
}

/// Registers a secret for [`redact_keys`] (idempotent).
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.len() < MIN_REGISTERED_SECRET_LENGTH {
        return;
    }
    let mut secrets = EXACT_SECRETS.write();
    if !secrets.iter().any(|known| &*known.value == value) {
        let finder = memchr::memmem::Finder::new(value.as_bytes()).into_owned();
        secrets.push(ExactSecret { value: std::sync::Arc::from(value), finder });
    }
}

/// Masks keys and registered secrets in free text (upstream and relay
/// messages sometimes quote the key). Every `AIza` followed by at least
/// 16 key characters is masked whatever precedes or follows it — a key
/// run into `-x` or `_v2` is still a key — so each of the pool's keys (all
/// of this shape) is masked wherever it appears; registered secrets of
/// other shapes are masked by exact match.
pub fn redact_keys(text: &str) -> Cow<'_, str> {
    let is_key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let bytes = text.as_bytes();
    // Most messages quote no key: they are returned as they are.
    let mut out = String::new();
    let mut copied_up_to = 0;
    let mut position = 0;
    while let Some(offset) = KEY_PREFIX_FINDER.find(&bytes[position..]) {
        let start = position + offset;
        let tail_start = start + ApiKey::PREFIX.len();
        let tail_length = bytes[tail_start..].iter().take_while(|&&b| is_key_byte(b)).count();
        if tail_length < MIN_KEY_TAIL_TO_MASK {
            position = tail_start;
            continue;
        }
        // A whole key is 39 characters; what follows it is kept.
        let key_end = tail_start + tail_length.min(ApiKey::LENGTH - ApiKey::PREFIX.len());
        out.push_str(&text[copied_up_to..start]);
        if key_end - start == ApiKey::LENGTH {
            out.push_str(&ApiKey::new(&text[start..key_end]).masked());
        } else {
            out.push_str(ApiKey::PREFIX);
            out.push('…');
        }
        copied_up_to = key_end;
        position = key_end;
    }
    let mut redacted = if copied_up_to == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[copied_up_to..]);
        Cow::Owned(out)
    };
    let secrets = EXACT_SECRETS.read();
    for secret in secrets.iter() {
        if secret.finder.find(redacted.as_bytes()).is_some() {
            redacted = Cow::Owned(redacted.replace(&*secret.value, "***"));
        }
    }
    redacted
}

/// Finds [`ApiKey::PREFIX`] (built once, see [`ExactSecret`]).
static KEY_PREFIX_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(ApiKey::PREFIX.as_bytes()));

/// 256 random bits as 64 hex characters (session ids, CSRF tokens,
/// replica names).
pub fn random_token(rng: &mut impl rand::RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// `bytes` as lowercase hex, two characters each.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Untrusted text (client input such as model names and paths, upstream
/// messages, token claims, names an operator pasted) as it may appear in a
/// log line: control characters escaped, so nobody can forge a log record
/// with a newline or drive a terminal with escapes, and cut to
/// [`MAX_LOGGED_CHARS`], so a 30 MB model name costs a log line no more
/// than a short one. Every such text goes through it; the stderr logger
/// escapes whole lines the same way besides (`telemetry`).
pub struct LogSafe<'a>(pub &'a str);

/// Characters of one untrusted text a log line carries at most.
pub const MAX_LOGGED_CHARS: usize = 512;

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut escaper = Escaper::new(f, MAX_LOGGED_CHARS);
        fmt::Write::write_str(&mut escaper, self.0)?;
        escaper.finish()
    }
}

/// A `fmt::Write` that escapes what goes through it as [`LogSafe`] does
/// and keeps at most `max_chars` characters of it (then `…`).
pub struct Escaper<W: fmt::Write> {
    inner: W,
    chars_left: usize,
    cut: bool,
}

impl<W: fmt::Write> Escaper<W> {
    pub fn new(inner: W, max_chars: usize) -> Escaper<W> {
        Escaper { inner, chars_left: max_chars, cut: false }
    }

    /// Marks a cut text as such.
    pub fn finish(mut self) -> fmt::Result {
        if self.cut {
            self.inner.write_char('…')?;
        }
        Ok(())
    }
}

/// Whether every byte is printable ASCII (0x20 to 0x7e), eight bytes at a
/// time: every log line's message goes through here, twice.
fn printable_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    let mut chunks = bytes.chunks_exact(8);
    let mut outside = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        // The high bit of: a byte below 0x20 (a borrow marks only bytes
        // above one that is), a byte of 0x80 or more, and 0x7f, which
        // adding one carries into the high bit (a carry out of a byte
        // comes only from 0xff, marked already).
        outside |= word.wrapping_sub(ONES * 0x20) & !word | word | word.wrapping_add(ONES);
    }
    outside & HIGHS == 0 && chunks.remainder().iter().all(|b| (0x20..0x7f).contains(b))
}

impl<W: fmt::Write> fmt::Write for Escaper<W> {
    /// Characters that need no escaping go through as whole runs.
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // The usual text, printable ASCII within the limit, goes through
        // whole without a look at each character.
        if text.len() <= self.chars_left && printable_ascii(text.as_bytes()) {
            self.chars_left -= text.len();
            return self.inner.write_str(text);
        }
        let mut run_start = 0;
        for (index, character) in text.char_indices() {
            if self.chars_left == 0 {
                self.cut = true;
                return self.inner.write_str(&text[run_start..index]);
            }
            self.chars_left -= 1;
            // `Some(name)`: a named escape; `None`: the code point in hex.
            let escape = match character {
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                // Bidirectional overrides can make a line read differently.
                character
                    if character.is_control()
                        || ('\u{202a}'..='\u{202e}').contains(&character)
                        || ('\u{2066}'..='\u{2069}').contains(&character) =>
                {
                    None
                }
                _ => continue,
            };
            self.inner.write_str(&text[run_start..index])?;
            run_start = index + character.len_utf8();
            match escape {
                Some(named) => self.inner.write_str(named)?,
                None => write!(self.inner, "\\u{{{:x}}}", u32::from(character))?,
            }
        }
        self.inner.write_str(&text[run_start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-at-a-time check against the byte-at-a-time one: every
    /// byte value at every place of a text of 1 to 24 bytes.
    #[test]
    fn printable_ascii_is_what_each_byte_says() {
        for length in 1..=24 {
            for at in 0..length {
                for byte in 0..=255u8 {
                    let mut text = vec![b'a'; length];
                    text[at] = byte;
                    let expected = (0x20..0x7f).contains(&byte);
                    assert_eq!(printable_ascii(&text), expected, "byte {byte:#x} at {at} of {length}");
                }
            }
        }
        assert!(printable_ascii(b""));
        assert!(printable_ascii(b" ~ the quick \"brown\" fox ~ "));
    }

    const KEY_A: &str = "AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY_B: &str = "AIzaSyB_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex(&all), expected);
    }

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

    #[test]
    fn keys_are_masked_whatever_surrounds_them() {
        let cases = [
            (format!("bad key {KEY_A}"), "bad key AIza…aaaa".to_owned()),
            // Run straight into more key characters.
            (format!("key {KEY_A}-x"), "key AIza…aaaa-x".to_owned()),
            (format!("key {KEY_A}_v2 and {KEY_B}abc"), "key AIza…aaaa_v2 and AIza…bbbbabc".to_owned()),
            (format!("x{KEY_A}"), "xAIza…aaaa".to_owned()),
            (format!("key={KEY_A}&alt=sse"), "key=AIza…aaaa&alt=sse".to_owned()),
            // Cut short, but long enough to help an attacker.
            ("quoted AIzaSyA-aaaaaaaaaaaaaaaa…".to_owned(), "quoted AIza……".to_owned()),
            // Too short to be anything.
            ("AIzaShort AIza".to_owned(), "AIzaShort AIza".to_owned()),
            ("no keys here, 中文 too".to_owned(), "no keys here, 中文 too".to_owned()),
        ];
        for (input, expected) in cases {
            let output = redact_keys(&input);
            assert_eq!(output, expected, "{input}");
            assert!(!output.contains("aaaaaaaaaaaa"), "{output}");
            // Text with nothing to mask is handed back, not copied.
            assert_eq!(matches!(output, Cow::Borrowed(_)), input == expected, "{input}");
        }
    }

    #[test]
    fn registered_secrets_are_masked_by_exact_match() {
        register_secret("Vertex.Express-Key_0123456789");
        register_secret("short");
        assert_eq!(redact_keys("quota for Vertex.Express-Key_0123456789x"), "quota for ***x");
        assert_eq!(redact_keys("short stays"), "short stays");
    }

    #[test]
    fn log_safe_text_cannot_forge_lines_or_drive_terminals() {
        let cases = [
            ("plain", "plain"),
            ("two\nlines\r", "two\\nlines\\r"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("bidi\u{202e}txt", "bidi\\u{202e}txt"),
            ("中文 ok", "中文 ok"),
        ];
        for (input, expected) in cases {
            assert_eq!(LogSafe(input).to_string(), expected);
        }
        // A huge text costs a bounded line.
        let huge = "m".repeat(30 * 1024 * 1024);
        let logged = LogSafe(&huge).to_string();
        assert_eq!(logged.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(logged.ends_with('…'));
        assert_eq!(LogSafe(&"é".repeat(MAX_LOGGED_CHARS)).to_string().chars().count(), MAX_LOGGED_CHARS);
    }

    /// The escaper writes runs of plain characters whole; what comes out
    /// is what one character at a time gives, at every cut.
    #[test]
    fn escaping_in_runs_is_escaping_one_character_at_a_time() {
        fn one_at_a_time(text: &str, max_chars: usize) -> String {
            let mut out = String::new();
            for (count, character) in text.chars().enumerate() {
                if count == max_chars {
                    out.push('…');
                    break;
                }
                match character {
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control()
                        || ('\u{202a}'..='\u{202e}').contains(&c)
                        || ('\u{2066}'..='\u{2069}').contains(&c) =>
                    {
                        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)))
                    }
                    c => out.push(c),
                }
            }
            out
        }
        // Special characters throughout; plain ASCII only (the whole-text
        // fast path); a plain head, then special characters; DEL.
        let texts =
            ["ab\ncd\t中文\u{1b}[0m\u{202e}x\r\u{0}end é", "plain ascii ~!", "plain\u{1b}[0m 中", "del\u{7f}xyz"];
        for text in texts {
            for max_chars in 0..=text.chars().count() + 1 {
                let mut out = String::new();
                let mut escaper = Escaper::new(&mut out, max_chars);
                // Fed in two pieces: the count carries over.
                let (head, tail) = text.split_at(text.char_indices().nth(5).unwrap().0);
                fmt::Write::write_str(&mut escaper, head).unwrap();
                fmt::Write::write_str(&mut escaper, tail).unwrap();
                escaper.finish().unwrap();
                assert_eq!(out, one_at_a_time(text, max_chars), "{text:?} cut at {max_chars}");
            }
        }
    }
}
