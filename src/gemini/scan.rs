//! A direct reading of the answers and stream events Gemini sends most:
//! text parts (thoughts included), a role, a finish reason, token counts.
//! It builds the same [`GenerateContentResponse`] serde would, without
//! serde's per-field machinery: a typed serde parse of a 190-byte stream
//! event was about 6,000 instructions, most of what hajimi spends on an
//! event.
//!
//! It only ever answers what serde would have answered. Whatever it is not
//! sure of — a part that is not text, grounding, a prompt block, a `null`,
//! a key or string it would have to guess about, a number that is not a
//! plain unsigned integer where one is expected, a repeated field, invalid
//! JSON — makes it give up (`None`), and [`GenerateContentResponse::from_json`]
//! parses with serde instead. Keys it does not know are skipped as serde
//! skips them, after checking that their values are JSON.

use std::borrow::Cow;

use super::types::{
    known_or_owned, Candidate, Content, GenerateContentResponse, Part, UsageMetadata, FINISH_REASONS, MODEL_ROLE,
    USER_ROLE,
};
use crate::bodyshare::BodyStr;
use crate::jsonout;

/// Nesting deeper than this inside a skipped value makes the scan give up
/// (serde's own limit is 128).
const MAX_DEPTH: usize = 64;

/// The answer or event in `json`, if it has a shape the scan reads.
pub fn response(json: &[u8]) -> Option<GenerateContentResponse> {
    let mut scan = Scan { json, at: 0 };
    let response = scan.response()?;
    scan.skip_whitespace();
    (scan.at == json.len()).then_some(response)
}

struct Scan<'a> {
    json: &'a [u8],
    at: usize,
}

/// Sets `field` to the `value` read; fails the scan when it could not be
/// read or the field is already set (serde refuses a repeated known
/// field).
fn set_once<T>(field: &mut Option<T>, value: Option<T>) -> Option<()> {
    if field.is_some() {
        return None;
    }
    *field = Some(value?);
    Some(())
}

/// Fails the scan when a field without an `Option` of its own is seen a
/// second time (`seen`: whether it was already).
fn first_time(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

/// How many bytes of `bytes` are printable ASCII other than the quote and
/// the backslash.
fn plain_ascii(bytes: &[u8]) -> usize {
    jsonout::plain_run::<true>(bytes)
}

/// Whether `run` has a control character, which JSON forbids inside
/// strings (checked without branching per byte).
fn has_control(run: &[u8]) -> bool {
    run.iter().fold(false, |found, &byte| found | (byte < 0x20))
}

/// A turn's role: Gemini's own two borrowed, anything else owned.
fn role(text: Cow<'_, str>) -> Cow<'static, str> {
    known_or_owned(text, &[MODEL_ROLE, USER_ROLE])
}

/// A candidate's finish reason: one of Gemini's borrowed, anything else
/// owned.
fn finish_reason(text: Cow<'_, str>) -> Cow<'static, str> {
    known_or_owned(text, FINISH_REASONS)
}

/// Pushes `item` to `items`, the first one without room for three more:
/// nearly every answer has one candidate, and a candidate one part.
fn push_one<T>(items: &mut Vec<T>, item: T) {
    if items.capacity() == 0 {
        items.reserve_exact(1);
    }
    items.push(item);
}

impl<'a> Scan<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.json.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.json.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Reads an object, calling `field` with each key and the scan placed
    /// at that key's value, which `field` consumes.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Reads an array, calling `item` with the scan placed at each item.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A key as written. A key with an escape or a byte outside printable
    /// ASCII is not compared (give up): Gemini's keys have neither.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + plain_ascii(&self.json[start..]);
        if self.json.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        Some(&self.json[start..end])
    }

    /// A string, unescaped; borrowed when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let mut unescaped = String::new();
        loop {
            let rest = &self.json[self.at..];
            let ascii = plain_ascii(rest);
            let (run, piece) = if rest.get(ascii).is_some_and(|&byte| byte >= 0x80) {
                // Text beyond ASCII: up to the next quote or escape, checked
                // as UTF-8 here (and for control characters).
                let run = memchr::memchr2(b'"', b'\\', rest)?;
                if has_control(&rest[..run]) {
                    return None;
                }
                (run, std::str::from_utf8(&rest[..run]).ok()?)
            } else {
                // SAFETY: `plain_ascii` stops at the first byte that is not
                // printable ASCII, so these bytes are all below 0x80: UTF-8.
                (ascii, unsafe { std::str::from_utf8_unchecked(&rest[..ascii]) })
            };
            self.at += run + 1;
            match rest.get(run)? {
                b'"' if unescaped.is_empty() => return Some(Cow::Borrowed(piece)),
                b'"' => {
                    unescaped.push_str(piece);
                    return Some(Cow::Owned(unescaped));
                }
                b'\\' => unescaped.push_str(piece),
                // A control character, which JSON forbids inside strings.
                _ => return None,
            }
            let escaped = *self.json.get(self.at)?;
            self.at += 1;
            unescaped.push(match escaped {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode_escape()?,
                _ => return None,
            });
        }
    }

    /// The four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.json.get(self.at..self.at + 4)?;
        self.at += 4;
        digits.iter().try_fold(0, |value, &digit| Some(value * 16 + char::from(digit).to_digit(16)?))
    }

    /// The character of a `\u` escape (after the `\u`), a surrogate pair
    /// read as one; a lone surrogate gives up, as serde refuses it.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                if self.json.get(self.at..self.at + 2)? != b"\\u" {
                    return None;
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            _ => char::from_u32(first),
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.json[self.at..].starts_with(word).then(|| self.at += word.len())
    }

    /// How many ASCII digits follow, consumed.
    fn digits(&mut self) -> usize {
        let count = self.json[self.at..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        self.at += count;
        count
    }

    /// A plain unsigned integer. A sign, fraction or exponent gives up:
    /// serde refuses those for an unsigned field.
    fn unsigned(&mut self) -> Option<u64> {
        self.skip_whitespace();
        let start = self.at;
        let count = self.digits();
        if count == 0 || (count > 1 && self.json[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.json.get(self.at) {
            return None;
        }
        self.json[start..self.at]
            .iter()
            .try_fold(0u64, |value, &digit| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
    }

    /// Any JSON number, by the grammar (`-`, no leading zeros, fraction,
    /// exponent).
    fn skip_number(&mut self) -> Option<()> {
        if self.json.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let start = self.at;
        let count = self.digits();
        if count == 0 || (count > 1 && self.json[start] == b'0') {
            return None;
        }
        if self.json.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.json.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.json.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Checks and passes over any JSON value.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|scan, _| scan.skip_value(depth + 1)),
            b'[' => self.array(|scan| scan.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    fn response(&mut self) -> Option<GenerateContentResponse> {
        let mut response = GenerateContentResponse::default();
        let mut candidates_seen = false;
        self.object(|scan, key| match key {
            b"candidates" => {
                first_time(&mut candidates_seen)?;
                scan.array(|scan| {
                    push_one(&mut response.candidates, scan.candidate()?);
                    Some(())
                })
            }
            b"usageMetadata" => set_once(&mut response.usage_metadata, scan.usage()),
            b"promptFeedback" => None,
            _ => scan.skip_value(1),
        })?;
        Some(response)
    }

    fn candidate(&mut self) -> Option<Candidate> {
        let mut candidate = Candidate::default();
        let mut index_seen = false;
        self.object(|scan, key| match key {
            b"content" => set_once(&mut candidate.content, scan.content()),
            b"finishReason" => set_once(&mut candidate.finish_reason, scan.string().map(finish_reason)),
            b"index" => {
                first_time(&mut index_seen)?;
                candidate.index = u32::try_from(scan.unsigned()?).ok()?;
                Some(())
            }
            b"groundingMetadata" => None,
            _ => scan.skip_value(1),
        })?;
        Some(candidate)
    }

    fn content(&mut self) -> Option<Content> {
        let mut content = Content::default();
        let mut parts_seen = false;
        self.object(|scan, key| match key {
            b"role" => set_once(&mut content.role, scan.string().map(role)),
            b"parts" => {
                first_time(&mut parts_seen)?;
                scan.array(|scan| {
                    push_one(&mut content.parts, scan.part()?);
                    Some(())
                })
            }
            _ => scan.skip_value(1),
        })?;
        Some(content)
    }

    fn part(&mut self) -> Option<Part> {
        let mut part = Part::default();
        self.object(|scan, key| match key {
            b"text" => set_once(&mut part.text, scan.string().map(|text| BodyStr::from(text.into_owned()))),
            b"thought" => set_once(&mut part.thought, scan.boolean()),
            b"thoughtSignature" => set_once(&mut part.thought_signature, scan.string().map(Cow::into_owned)),
            b"inlineData"
            | b"fileData"
            | b"functionCall"
            | b"functionResponse"
            | b"executableCode"
            | b"codeExecutionResult" => None,
            _ => scan.skip_value(1),
        })?;
        Some(part)
    }

    fn usage(&mut self) -> Option<UsageMetadata> {
        let mut usage = UsageMetadata::default();
        let mut seen = [false; 4];
        self.object(|scan, key| {
            let (slot, field) = match key {
                b"promptTokenCount" => (0, &mut usage.prompt_token_count),
                b"candidatesTokenCount" => (1, &mut usage.candidates_token_count),
                b"totalTokenCount" => (2, &mut usage.total_token_count),
                b"thoughtsTokenCount" => (3, &mut usage.thoughts_token_count),
                _ => return scan.skip_value(1),
            };
            first_time(&mut seen[slot])?;
            *field = scan.unsigned()?;
            Some(())
        })?;
        Some(usage)
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
