//! Long strings that stay where they arrived. A request body is read once
//! into one buffer; parsed with [`parse_shared`], its long strings (base64
//! media, large texts) become [`BodyStr`] slices of that buffer instead of
//! copies, and a [`RopeWriter`] writes the upstream JSON around them as a
//! [`Rope`]: the JSON it writes itself, with the slices in between. A
//! 20 MB image is then in memory once, from the client's socket to
//! Google's.
//!
//! A slice is taken only of a string the JSON parser lent without
//! unescaping it: its bytes are then valid inside a JSON string as they
//! are (no quote, backslash or control character), and go upstream
//! verbatim. Escaped strings, short strings and strings parsed any other
//! way are ordinary copies.

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, Range};
use std::thread::LocalKey;

use bytes::Bytes;
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::Number;

/// Strings shorter than this are copied as usual: sharing pays only for
/// large ones, and a short slice would keep a whole body alive.
pub const SHARED_FROM_BYTES: usize = 64 * 1024;

/// The pieces a [`Rope`] is sent in: a socket write buffer then holds
/// one piece at a time instead of a copy of the whole body.
pub const SEND_PIECE_BYTES: usize = 64 * 1024;

thread_local! {
    /// The body [`parse_shared`] is parsing on this thread, if any.
    static PARSED_BODY: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// A string that is either owned or a slice of a request body.
#[derive(Clone, Default)]
pub struct BodyStr(Repr);

#[derive(Clone)]
enum Repr {
    Owned(String),
    /// Always valid UTF-8: made only from `&str`s, cut on char boundaries.
    Shared(Bytes),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Owned(String::new())
    }
}

impl BodyStr {
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Owned(text) => text,
            // SAFETY: `Shared` bytes are only ever taken from a `&str`
            // (whole, or cut where `str` indexing allowed), so UTF-8.
            Repr::Shared(bytes) => unsafe { std::str::from_utf8_unchecked(bytes) },
        }
    }

    /// Whether this string is a slice of a request body.
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared(_))
    }

    /// `self[range]`: another slice of the same body when shared, else a
    /// copy. Panics where `str` indexing would.
    pub fn slice(&self, range: Range<usize>) -> BodyStr {
        let text = &self.as_str()[range.clone()];
        match &self.0 {
            Repr::Shared(bytes) => BodyStr(Repr::Shared(bytes.slice(range))),
            Repr::Owned(_) => BodyStr::from(text),
        }
    }

    /// `text` as lent by the JSON parser: a slice of the body being
    /// parsed when it is long and lies in that body, else a copy.
    fn lent(text: &str) -> BodyStr {
        if text.len() >= SHARED_FROM_BYTES {
            let shared = PARSED_BODY.with(|body| body.borrow().as_ref().and_then(|body| slice_of(body, text)));
            if let Some(shared) = shared {
                return BodyStr(Repr::Shared(shared));
            }
        }
        BodyStr::from(text)
    }
}

/// The part of `body` that `text` is, if `text` lies inside it.
fn slice_of(body: &Bytes, text: &str) -> Option<Bytes> {
    let start = (text.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(text.len())?;
    (end <= body.len()).then(|| body.slice(start..end))
}

impl Deref for BodyStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for BodyStr {
    fn from(text: String) -> BodyStr {
        BodyStr(Repr::Owned(text))
    }
}

impl From<&str> for BodyStr {
    fn from(text: &str) -> BodyStr {
        BodyStr(Repr::Owned(text.to_owned()))
    }
}

impl PartialEq for BodyStr {
    fn eq(&self, other: &BodyStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BodyStr {}

impl PartialEq<&str> for BodyStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for BodyStr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl Serialize for BodyStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BodyStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BodyStr, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = BodyStr;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<BodyStr, E> {
                Ok(BodyStr::lent(text))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<BodyStr, E> {
                Ok(BodyStr::from(text))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<BodyStr, E> {
                Ok(BodyStr::from(text))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// `T` parsed from `body`, its long strings sharing `body` (see the
/// module documentation).
pub fn parse_shared<T: DeserializeOwned>(body: &Bytes) -> serde_json::Result<T> {
    while_holding(&PARSED_BODY, body.clone(), || serde_json::from_slice(body)).0
}

/// `value` written as a request body and parsed from it with
/// [`parse_shared`] (tests of the doors' conversions).
#[cfg(test)]
pub fn parse_shared_json<T: DeserializeOwned>(value: &serde_json::Value) -> T {
    parse_shared(&Bytes::from(serde_json::to_vec(value).unwrap())).unwrap()
}

/// Runs `work` while this thread's `cell` holds `value`, then takes the
/// value back; the cell is emptied even if `work` panics.
fn while_holding<T: 'static, R>(
    cell: &'static LocalKey<RefCell<Option<T>>>,
    value: T,
    work: impl FnOnce() -> R,
) -> (R, Option<T>) {
    struct Emptied<T: 'static>(&'static LocalKey<RefCell<Option<T>>>);
    impl<T: 'static> Drop for Emptied<T> {
        fn drop(&mut self) {
            self.0.with(|held| held.borrow_mut().take());
        }
    }
    cell.with(|held| *held.borrow_mut() = Some(value));
    let emptied = Emptied(cell);
    let result = work();
    let value = cell.with(|held| held.borrow_mut().take());
    drop(emptied);
    (result, value)
}

/// A JSON value whose strings are [`BodyStr`]s, for request fields read
/// by hand (chat message content, Responses input items). Members keep
/// their order; a repeated name is found as its last occurrence, as
/// `serde_json` would keep it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum BodyJson {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(BodyStr),
    Array(Vec<BodyJson>),
    Object(Vec<(String, BodyJson)>),
}

impl BodyJson {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            BodyJson::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_body_str(&self) -> Option<&BodyStr> {
        match self {
            BodyJson::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, BodyJson::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, BodyJson::Object(_))
    }

    /// The same value as a `serde_json` tree (a copy).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn as_object(&self) -> Option<&[(String, BodyJson)]> {
        match self {
            BodyJson::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The member `name` of an object (`None` for anything else).
    pub fn get(&self, name: &str) -> Option<&BodyJson> {
        member(self.as_object()?, name)
    }

    /// About how many bytes this value holds of its own: its strings and
    /// names that are not slices of a request body, plus a little per node
    /// (for a memory budget).
    pub fn owned_len(&self) -> usize {
        const PER_NODE: usize = 16;
        PER_NODE
            + match self {
                BodyJson::Null | BodyJson::Bool(_) | BodyJson::Number(_) => 0,
                BodyJson::String(text) if text.is_shared() => 0,
                BodyJson::String(text) => text.len(),
                BodyJson::Array(values) => values.iter().map(BodyJson::owned_len).sum(),
                BodyJson::Object(members) => members.iter().map(|(name, value)| name.len() + value.owned_len()).sum(),
            }
    }
}

/// The member `name` of an object's members, the last if repeated.
pub fn member<'a>(members: &'a [(String, BodyJson)], name: &str) -> Option<&'a BodyJson> {
    members.iter().rev().find(|(member_name, _)| member_name == name).map(|(_, value)| value)
}

impl From<serde_json::Value> for BodyJson {
    fn from(value: serde_json::Value) -> BodyJson {
        use serde_json::Value;
        match value {
            Value::Null => BodyJson::Null,
            Value::Bool(flag) => BodyJson::Bool(flag),
            Value::Number(number) => BodyJson::Number(number),
            Value::String(text) => BodyJson::String(text.into()),
            Value::Array(values) => BodyJson::Array(values.into_iter().map(BodyJson::from).collect()),
            Value::Object(members) => {
                BodyJson::Object(members.into_iter().map(|(name, value)| (name, BodyJson::from(value))).collect())
            }
        }
    }
}

impl Serialize for BodyJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            BodyJson::Null => serializer.serialize_unit(),
            BodyJson::Bool(flag) => serializer.serialize_bool(*flag),
            BodyJson::Number(number) => number.serialize(serializer),
            BodyJson::String(text) => text.serialize(serializer),
            BodyJson::Array(values) => {
                let mut sequence = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    sequence.serialize_element(value)?;
                }
                sequence.end()
            }
            BodyJson::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (name, value) in members {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for BodyJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BodyJson, D::Error> {
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = BodyJson;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("any JSON value")
            }

            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<BodyJson, E> {
                Ok(BodyJson::Bool(flag))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<BodyJson, E> {
                Ok(BodyJson::Number(number.into()))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<BodyJson, E> {
                Ok(BodyJson::Number(number.into()))
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<BodyJson, E> {
                Ok(Number::from_f64(number).map_or(BodyJson::Null, BodyJson::Number))
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<BodyJson, E> {
                Ok(BodyJson::String(BodyStr::lent(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<BodyJson, E> {
                Ok(BodyJson::String(text.into()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<BodyJson, E> {
                Ok(BodyJson::String(text.into()))
            }

            fn visit_unit<E: de::Error>(self) -> Result<BodyJson, E> {
                Ok(BodyJson::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<BodyJson, E> {
                Ok(BodyJson::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<BodyJson, D::Error> {
                BodyJson::deserialize(deserializer)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<BodyJson, A::Error> {
                let mut values = Vec::with_capacity(sequence.size_hint().unwrap_or(0).min(64));
                while let Some(value) = sequence.next_element()? {
                    values.push(value);
                }
                Ok(BodyJson::Array(values))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BodyJson, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((name, value)) = map.next_entry::<String, BodyJson>()? {
                    members.push((name, value));
                }
                Ok(BodyJson::Object(members))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// A JSON body in pieces: what a [`RopeWriter`] wrote, with the shared
/// slices in between. Cloning it copies no text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rope {
    /// Never an empty piece.
    pieces: Vec<Bytes>,
}

impl Rope {
    pub fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The body as one buffer: itself when it is one piece, else a copy
    /// (for the rare paths that rewrite a body).
    pub fn flat(&self) -> Bytes {
        match self.pieces.as_slice() {
            [] => Bytes::new(),
            [only] => only.clone(),
            pieces => Bytes::from(pieces.concat()),
        }
    }

    /// The one piece of a small body, to be sent as it is.
    pub fn as_small(&self) -> Option<&Bytes> {
        match self.pieces.as_slice() {
            [only] if only.len() <= SEND_PIECE_BYTES => Some(only),
            _ => None,
        }
    }

    /// The body in pieces of at most [`SEND_PIECE_BYTES`] (slices, no
    /// copies), as an HTTP client sends it.
    pub fn send_pieces(&self) -> Vec<Bytes> {
        let mut cut = Vec::with_capacity(self.len() / SEND_PIECE_BYTES + self.pieces.len());
        for piece in &self.pieces {
            let mut start = 0;
            while start < piece.len() {
                let end = (start + SEND_PIECE_BYTES).min(piece.len());
                cut.push(piece.slice(start..end));
                start = end;
            }
        }
        cut
    }
}

impl From<Bytes> for Rope {
    fn from(bytes: Bytes) -> Rope {
        Rope { pieces: if bytes.is_empty() { Vec::new() } else { vec![bytes] } }
    }
}

impl From<Vec<u8>> for Rope {
    fn from(bytes: Vec<u8>) -> Rope {
        Rope::from(Bytes::from(bytes))
    }
}

impl From<&'static str> for Rope {
    fn from(text: &'static str) -> Rope {
        Rope::from(Bytes::from_static(text.as_bytes()))
    }
}

/// Writes a JSON body as a [`Rope`]: the JSON around the shared strings
/// into one buffer, each shared [`BodyStr`] cut in as the slice it is.
pub struct RopeWriter {
    written: Vec<u8>,
    /// Where in `written` each shared slice goes, in order.
    cuts: Vec<(usize, Bytes)>,
}

impl RopeWriter {
    /// `capacity` sizes the buffer for what is not shared.
    pub fn with_capacity(capacity: usize) -> RopeWriter {
        RopeWriter { written: Vec::with_capacity(capacity), cuts: Vec::new() }
    }

    /// The buffer, for the JSON around the strings.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.written
    }

    /// `text` as a JSON string. A shared one goes in as the slice it is:
    /// the parser lent it unescaped, so its bytes are valid inside a JSON
    /// string as they are (see the module documentation).
    pub fn body_str(&mut self, text: &BodyStr) {
        match &text.0 {
            Repr::Shared(bytes) => {
                self.written.push(b'"');
                self.cuts.push((self.written.len(), bytes.clone()));
                self.written.push(b'"');
            }
            Repr::Owned(text) => crate::jsonout::string(&mut self.written, text),
        }
    }

    pub fn finish(self) -> Rope {
        if self.cuts.is_empty() {
            return Rope::from(self.written);
        }
        let written = Bytes::from(self.written);
        let mut pieces = Vec::with_capacity(self.cuts.len() * 2 + 1);
        let mut rest = 0;
        for (at, slice) in self.cuts {
            pieces.push(written.slice(rest..at));
            pieces.push(slice);
            rest = at;
        }
        pieces.push(written.slice(rest..));
        pieces.retain(|piece| !piece.is_empty());
        Rope { pieces }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, serde::Serialize)]
    struct Holder {
        short: BodyStr,
        long: BodyStr,
        #[serde(default)]
        any: BodyJson,
    }

    fn long_text(fill: char) -> String {
        std::iter::repeat_n(fill, SHARED_FROM_BYTES + 10).collect()
    }

    #[test]
    fn long_unescaped_strings_share_the_body_and_others_are_copied() {
        let long = long_text('a');
        let body = Bytes::from(format!(r#"{{"short":"s","long":"{long}","any":{{"x":["{long}","e\n{long}"]}}}}"#));
        let parsed: Holder = parse_shared(&body).unwrap();
        assert!(!parsed.short.is_shared());
        assert!(parsed.long.is_shared());
        assert_eq!(parsed.long, long.as_str());
        let items = match parsed.any.get("x") {
            Some(BodyJson::Array(items)) => items,
            other => panic!("{other:?}"),
        };
        assert!(items[0].as_body_str().unwrap().is_shared());
        assert!(!items[1].as_body_str().unwrap().is_shared(), "an escaped string is unescaped into a copy");
        assert_eq!(items[1].as_str().unwrap(), format!("e\n{long}"));

        // Parsed any other way, nothing is shared.
        let copied: Holder = serde_json::from_slice(&body).unwrap();
        assert!(!copied.long.is_shared());

        // What the value holds of its own: the escaped copy, not the slice.
        let owned = parsed.any.owned_len();
        assert!(owned > long.len() && owned < long.len() + 200, "{owned}");
        assert!(copied.any.owned_len() > 2 * long.len());
    }

    #[test]
    fn a_rope_is_the_same_json_with_the_slices_in_place() {
        let long = long_text('b');
        let body = Bytes::from(format!(r#"{{"short":"s\"","long":"{long}"}}"#));
        let parsed: Holder = parse_shared(&body).unwrap();
        let mut writer = RopeWriter::with_capacity(64);
        writer.out().extend_from_slice(b"{\"short\":");
        writer.body_str(&parsed.short);
        writer.out().extend_from_slice(b",\"long\":");
        writer.body_str(&parsed.long);
        writer.out().push(b'}');
        let rope = writer.finish();
        let plain = format!(r#"{{"short":"s\"","long":"{long}"}}"#);
        assert!(rope.flat() == plain.as_bytes(), "the same bytes as a plain write");
        assert!(rope.pieces.iter().any(|piece| piece.as_ptr() == parsed.long.as_ptr()), "the slice itself");
        assert_eq!(rope.pieces.len(), 3);
        assert_eq!(rope.len(), rope.flat().len());
        // Sent in pieces of at most SEND_PIECE_BYTES, in order.
        let pieces = rope.send_pieces();
        assert!(pieces.iter().all(|piece| piece.len() <= SEND_PIECE_BYTES));
        assert_eq!(pieces.concat(), rope.flat());
        // Nothing shared: one piece.
        let mut writer = RopeWriter::with_capacity(0);
        writer.body_str(&parsed.short);
        assert_eq!(writer.finish().pieces(), [Bytes::from_static(b"\"s\\\"\"")]);
    }

    #[test]
    fn slices_of_a_shared_string_stay_shared() {
        let long = format!("data:image/png;base64,{}", long_text('Q'));
        let body = Bytes::from(format!(r#"{{"short":"s","long":"{long}"}}"#));
        let parsed: Holder = parse_shared(&body).unwrap();
        let comma = parsed.long.find(',').unwrap();
        let data = parsed.long.slice(comma + 1..parsed.long.len());
        assert!(data.is_shared());
        assert_eq!(data, &long[comma + 1..]);
        assert_eq!(BodyStr::from("héllo").slice(0..3), "hé");
    }
}
