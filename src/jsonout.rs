//! JSON written by hand, for the few shapes written once per request or
//! per stream event: keys are literals, written as they are, and strings
//! are escaped eight bytes at a time. serde_json escapes every key at run
//! time and a string a byte at a time: for a chunk of a streamed answer
//! that was most of the cost of writing it.
//!
//! What is written here is byte for byte what serde_json writes for the
//! same value (the types that use it test that against their `Serialize`),
//! so clients see no difference.

use serde::Serialize;

/// A type's JSON, as its `Serialize` would write it through serde_json.
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// `text` as a JSON string: quoted, with `"`, `\` and control characters
/// escaped as serde_json escapes them (and nothing else).
pub fn string(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    let mut rest = text.as_bytes();
    loop {
        let plain = plain_run::<false>(rest);
        out.extend_from_slice(&rest[..plain]);
        let Some(&byte) = rest.get(plain) else { break };
        escape(out, byte);
        rest = &rest[plain + 1..];
    }
    out.push(b'"');
}

/// An optional value: the value, or `null`.
pub fn optional<T: WriteJson>(out: &mut Vec<u8>, value: Option<T>) {
    match value {
        Some(value) => value.write_json(out),
        None => out.extend_from_slice(b"null"),
    }
}

/// An unsigned integer.
pub fn uint(out: &mut Vec<u8>, number: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

/// A signed integer.
pub fn int(out: &mut Vec<u8>, number: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

impl<T: WriteJson> WriteJson for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl WriteJson for &str {
    fn write_json(&self, out: &mut Vec<u8>) {
        string(out, self);
    }
}

impl WriteJson for u64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        uint(out, *self);
    }
}

impl WriteJson for i64 {
    fn write_json(&self, out: &mut Vec<u8>) {
        int(out, *self);
    }
}

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

/// Anything else, through serde_json (shapes too rare to write by hand).
pub fn serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec fails only for a map with non-string keys, which
    // none of hajimi's answer types has.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// `items` as a JSON array, each written by `write`.
pub fn array<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    let mut comma = Comma::default();
    for item in items {
        comma.before(out);
        write(out, item);
    }
    out.push(b']');
}

/// The comma before each item of an array or member of an object but the
/// first.
#[derive(Default)]
pub struct Comma {
    wrote_one: bool,
}

impl Comma {
    pub fn before(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.wrote_one, true) {
            out.push(b',');
        }
    }
}

/// An object whose members are optional, written member by member; each
/// `key` is the quoted key and its colon (`b"\"text\":"`). A member left
/// out (`None`) is not written, as `skip_serializing_if` leaves it out.
pub struct Members {
    comma: Comma,
}

impl Members {
    /// Writes the `{`.
    pub fn open(out: &mut Vec<u8>) -> Members {
        out.push(b'{');
        Members { comma: Comma::default() }
    }

    /// Writes the key of a member whose value the caller writes.
    pub fn key(&mut self, out: &mut Vec<u8>, key: &[u8]) {
        self.comma.before(out);
        out.extend_from_slice(key);
    }

    /// Writes a member whose value is a string, an integer or a bool.
    pub fn member<T: WriteJson>(&mut self, out: &mut Vec<u8>, key: &[u8], value: Option<T>) {
        if let Some(value) = value {
            self.key(out, key);
            value.write_json(out);
        }
    }

    /// Through serde_json: floats (written as serde_json writes them) and
    /// the shapes too rare to write by hand.
    pub fn serde<T: Serialize + ?Sized>(&mut self, out: &mut Vec<u8>, key: &[u8], value: Option<&T>) {
        if let Some(value) = value {
            self.key(out, key);
            serde(out, value);
        }
    }

    /// Writes the `}`.
    pub fn close(self, out: &mut Vec<u8>) {
        out.push(b'}');
    }
}

/// The escape of one byte that cannot stand in a JSON string.
fn escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let named = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let hex = [b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]];
            out.extend_from_slice(&hex);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', named]);
}

/// How many bytes of `bytes` come before the first `"`, `\` or control
/// character (what a JSON string must escape), and, with `ASCII_ONLY`,
/// before the first byte beyond ASCII too (the JSON reader's plain run,
/// `gemini::scan`). Eight bytes at a time (SWAR), the last few one by one:
/// keys and streamed texts are too short for `memchr`'s set-up.
pub fn plain_run<const ASCII_ONLY: bool>(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES * 0x80;
    /// The high bit of each zero byte of `word`, exact up to and including
    /// the first (a borrow can only mark bytes above a zero byte).
    fn zero_bytes(word: u64) -> u64 {
        word.wrapping_sub(ONES) & !word & HIGHS
    }
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        // Bytes below 0x20 (exact up to the first, as above); with
        // `ASCII_ONLY`, bytes with the high bit set as well.
        let stops = word.wrapping_sub(ONES * 0x20) & !word | if ASCII_ONLY { word } else { 0 };
        let found =
            stops & HIGHS | zero_bytes(word ^ (ONES * u64::from(b'"'))) | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = chunks.remainder();
    at + rest.iter().position(|&byte| ends_run::<ASCII_ONLY>(byte)).unwrap_or(rest.len())
}

/// Whether `byte` ends a [`plain_run`].
fn ends_run<const ASCII_ONLY: bool>(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\' || (ASCII_ONLY && byte >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let texts = [
            "",
            "plain",
            "exactly8",
            "quote \" backslash \\ slash / tab \t newline \n return \r",
            "\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f} del and controls",
            "你好，世界 — non-ASCII stays as it is: é 😀 \u{2028}",
            "\"\"\"\"\"\"\"\"\"\\\\\\\\\\\\\\\\",
            "a long text that crosses many eight-byte words before its \"quote\" and after",
        ];
        for text in texts {
            assert_eq!(written(text), serde_json::to_string(text).unwrap(), "{text:?}");
        }
        // Every character below 0x80 at every place of a short text.
        for length in 1..=17 {
            for at in 0..length {
                for byte in 0..0x80u8 {
                    let mut bytes = vec![b'a'; length];
                    bytes[at] = byte;
                    let text = String::from_utf8(bytes).unwrap();
                    assert_eq!(written(&text), serde_json::to_string(&text).unwrap(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn plain_runs_stop_where_a_byte_by_byte_search_does() {
        fn check<const ASCII_ONLY: bool>(bytes: &[u8]) {
            let stops = |byte: u8| byte < 0x20 || byte == b'"' || byte == b'\\' || (ASCII_ONLY && byte >= 0x80);
            let by_byte = bytes.iter().position(|&byte| stops(byte)).unwrap_or(bytes.len());
            assert_eq!(plain_run::<ASCII_ONLY>(bytes), by_byte, "{bytes:?}, ASCII only: {ASCII_ONLY}");
        }
        for length in 0..=17 {
            for at in 0..length {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; length];
                    bytes[at] = byte;
                    check::<false>(&bytes);
                    check::<true>(&bytes);
                    // A second stop after the first: the first still counts.
                    if at + 1 < length {
                        bytes[at + 1] = b'"';
                        check::<false>(&bytes);
                        check::<true>(&bytes);
                    }
                }
            }
        }
    }

    #[test]
    fn numbers_and_nulls_are_written_as_serde_json_writes_them() {
        for number in [0, 7, 10, 999, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            uint(&mut out, number);
            assert_eq!(out, serde_json::to_vec(&number).unwrap());
        }
        for number in [0, -1, i64::MIN, i64::MAX, 1_700_000_000] {
            let mut out = Vec::new();
            int(&mut out, number);
            assert_eq!(out, serde_json::to_vec(&number).unwrap());
        }
        let mut out = Vec::new();
        optional::<&str>(&mut out, None);
        optional(&mut out, Some("x"));
        assert_eq!(out, b"null\"x\"");
    }
}
