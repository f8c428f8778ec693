//! The swipe cache. A hedged request runs several upstream calls at once; the
//! first good answer goes to the client and the other successful answers are
//! kept here, so that the client's next identical request (a SillyTavern
//! "regenerate" or "swipe") is answered at once with a different answer than
//! the one it already has. [`cache_key`] reduces a request to a 128-bit
//! [`CacheKey`] over the client's scope, the requested model, the
//! generation parameters, the tools and the full content of every message
//! (images included by their whole data, never a prefix); JSON objects are hashed in a canonical
//! form, so the client's key order does not matter. [`SwipeCache`] keeps a
//! first-in-first-out queue of answers per key, serves each answer once,
//! drops answers older than the time to live and never holds more than the
//! configured number of answers. The module is pure: callers pass the clock
//! (`now_ms`, Unix milliseconds) and do all I/O.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hasher;
use std::sync::OnceLock;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Number, Value};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::bodyshare::{BodyJson, Rope};

/// 128-bit digest of the parts of a request that decide its answer. Equal
/// keys mean "the same request" for the swipe cache; keys are stable within
/// one process run only (the hash is seeded randomly at start-up, so nobody
/// can craft colliding requests offline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(u128);

impl fmt::Display for CacheKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:032x}", self.0)
    }
}

/// The swipe-cache key of a Gemini-native request: the client's scope, the
/// path's API version, model (as the client named it, suffixes included)
/// and action, and the body's exact bytes. The body is forwarded as sent,
/// so a swipe resends the same bytes; no canonical form is needed. The
/// domain tag keeps these keys apart from OpenAI requests' keys.
pub fn native_cache_key(scope: &[u8], version: &str, model: &str, action: &str, body: &Rope) -> CacheKey {
    let mut digest = KeyDigest::new();
    digest.write_field("native");
    digest.write_length(scope.len());
    digest.write_bytes(scope);
    for part in [version, model, action] {
        digest.write_text(part);
    }
    digest.write_length(body.len());
    digest.finish_with(body.pieces())
}

/// The per-process random 128-bit SipHash key of every cache key.
fn key_hasher_seed() -> &'static [u8; 16] {
    static SEED: OnceLock<[u8; 16]> = OnceLock::new();
    SEED.get_or_init(rand::random)
}

/// Type tags of the canonical encoding; every value is written as a tag
/// followed by a self-delimiting body, so distinct structures never encode
/// to the same byte stream.
pub mod tag {
    pub const ABSENT: u8 = 0x10;
    pub const PRESENT: u8 = 0x11;
    pub const FIELD: u8 = 0x12;
    pub const MESSAGE: u8 = 0x13;
    pub const JSON_NULL: u8 = 0x20;
    pub const JSON_FALSE: u8 = 0x21;
    pub const JSON_TRUE: u8 = 0x22;
    pub const JSON_NUMBER: u8 = 0x23;
    pub const JSON_STRING: u8 = 0x24;
    pub const JSON_ARRAY: u8 = 0x25;
    pub const JSON_OBJECT: u8 = 0x26;
}

/// A keyed 128-bit SipHash of the canonical bytes. Each request shape writes its parts through it
/// (`openai::cache_key`, [`native_cache_key`]).
pub struct KeyDigest {
    /// The canonical encoding not hashed yet: small writes gather here and
    /// are hashed in one pass (SipHash costs per call; thousands
    /// of tiny writes cost more than one copy of the bytes).
    canonical: Vec<u8>,
    /// SipHash-1-3 with a 128-bit output and a secret per-process key
    /// (one pass: two keyed 64-bit hashers cost twice as much), fed what
    /// `canonical` gathered whenever a large write comes (hashed where it
    /// lies: a 20 MB message is never copied) and at the end.
    hasher: SipHasher13,
}

/// Writes at least this long are hashed in place instead of gathered.
const HASHED_IN_PLACE: usize = 4096;

impl Default for KeyDigest {
    fn default() -> KeyDigest {
        KeyDigest::new()
    }
}

/// One node of a JSON tree, borrowed, for [`KeyDigest::write_json`].
pub enum JsonNode<'a, J> {
    Null,
    Bool(bool),
    Number(&'a Number),
    String(&'a str),
    Array(&'a [J]),
    /// Members in the tree's order.
    Object(Vec<(&'a str, &'a J)>),
}

/// A JSON tree the key digest can walk: `serde_json`'s, or a request's
/// [`BodyJson`] (whose long strings share the body).
pub trait JsonTree: Sized {
    fn node(&self) -> JsonNode<'_, Self>;
}

impl JsonTree for Value {
    fn node(&self) -> JsonNode<'_, Value> {
        match self {
            Value::Null => JsonNode::Null,
            Value::Bool(flag) => JsonNode::Bool(*flag),
            Value::Number(number) => JsonNode::Number(number),
            Value::String(text) => JsonNode::String(text),
            Value::Array(values) => JsonNode::Array(values),
            Value::Object(members) => {
                JsonNode::Object(members.iter().map(|(name, value)| (name.as_str(), value)).collect())
            }
        }
    }
}

impl JsonTree for BodyJson {
    fn node(&self) -> JsonNode<'_, BodyJson> {
        match self {
            BodyJson::Null => JsonNode::Null,
            BodyJson::Bool(flag) => JsonNode::Bool(*flag),
            BodyJson::Number(number) => JsonNode::Number(number),
            BodyJson::String(text) => JsonNode::String(text),
            BodyJson::Array(values) => JsonNode::Array(values),
            BodyJson::Object(members) => {
                JsonNode::Object(members.iter().map(|(name, value)| (name.as_str(), value)).collect())
            }
        }
    }
}

impl KeyDigest {
    pub fn new() -> KeyDigest {
        KeyDigest { canonical: Vec::with_capacity(1024), hasher: SipHasher13::new_with_key(key_hasher_seed()) }
    }

    pub fn write_bytes(&mut self, bytes: &[u8]) {
        if bytes.len() < HASHED_IN_PLACE {
            self.canonical.extend_from_slice(bytes);
            return;
        }
        self.hash_gathered();
        self.hasher.write(bytes);
    }

    fn hash_gathered(&mut self) {
        if !self.canonical.is_empty() {
            self.hasher.write(&self.canonical);
            self.canonical.clear();
        }
    }

    pub fn write_tag(&mut self, tag: u8) {
        self.write_bytes(&[tag]);
    }

    pub fn write_u64(&mut self, value: u64) {
        self.write_bytes(&value.to_le_bytes());
    }

    pub fn write_length(&mut self, length: usize) {
        self.write_u64(length as u64);
    }

    pub fn write_float(&mut self, value: f64) {
        self.write_u64(value.to_bits());
    }

    /// Length-prefixed, so adjacent strings cannot run into each other.
    pub fn write_text(&mut self, text: &str) {
        self.write_length(text.len());
        self.write_bytes(text.as_bytes());
    }

    pub fn write_field(&mut self, field_name: &str) {
        self.write_tag(tag::FIELD);
        self.write_text(field_name);
    }

    pub fn write_optional<T>(&mut self, value: Option<T>, write_value: impl FnOnce(&mut KeyDigest, T)) {
        match value {
            None => self.write_tag(tag::ABSENT),
            Some(value) => {
                self.write_tag(tag::PRESENT);
                write_value(self, value);
            }
        }
    }

    pub fn write_json_list<J: JsonTree>(&mut self, values: &[J]) {
        self.write_tag(tag::JSON_ARRAY);
        self.write_length(values.len());
        for value in values {
            self.write_json(value);
        }
    }

    /// Canonical walk: object members in sorted key order, every string in
    /// full (so a data URL's whole base64 payload is covered). The same
    /// value gives the same bytes whichever tree holds it.
    pub fn write_json<J: JsonTree>(&mut self, value: &J) {
        match value.node() {
            JsonNode::Null => self.write_tag(tag::JSON_NULL),
            JsonNode::Bool(false) => self.write_tag(tag::JSON_FALSE),
            JsonNode::Bool(true) => self.write_tag(tag::JSON_TRUE),
            JsonNode::Number(number) => {
                self.write_tag(tag::JSON_NUMBER);
                self.write_text(&number.to_string());
            }
            JsonNode::String(text) => {
                self.write_tag(tag::JSON_STRING);
                self.write_text(text);
            }
            JsonNode::Array(values) => self.write_json_list(values),
            JsonNode::Object(mut members) => {
                members.sort_by(|left, right| left.0.cmp(right.0));
                self.write_tag(tag::JSON_OBJECT);
                self.write_length(members.len());
                for (member_name, member_value) in members {
                    self.write_text(member_name);
                    self.write_json(member_value);
                }
            }
        }
    }

    pub fn finish(self) -> CacheKey {
        self.finish_with(&[])
    }

    /// Hashes the canonical bytes followed by `tail` (a large body is
    /// hashed where it lies instead of being copied).
    fn finish_with(mut self, tail: &[Bytes]) -> CacheKey {
        self.hash_gathered();
        for piece in tail {
            self.hasher.write(piece);
        }
        CacheKey(self.hasher.finish128().as_u128())
    }
}

/// Bounded, expiring store of spare answers, each served once. `Send +
/// Sync`; every operation holds the inner lock briefly and costs amortized
/// O(1) (plus the answer moves).
#[derive(Debug)]
pub struct SwipeCache<A> {
    state: Mutex<SwipeCacheState<A>>,
}

/// One stored answer; `sequence` ties it to its [`InsertionRecord`].
#[derive(Debug)]
struct StoredAnswer<A> {
    sequence: u64,
    answer: A,
}

/// Global insertion order. Records of answers already taken stay behind
/// ("stale") until they reach the front or a compaction drops them.
#[derive(Debug)]
struct InsertionRecord {
    sequence: u64,
    inserted_at_ms: u64,
    key: CacheKey,
}

#[derive(Debug)]
struct SwipeCacheState<A> {
    max_entries: usize,
    ttl_ms: u64,
    /// Per key, answers oldest first (ascending `sequence`). Never holds an
    /// empty queue.
    answers_by_key: HashMap<CacheKey, VecDeque<StoredAnswer<A>>>,
    /// Every stored answer has exactly one record here; records are in
    /// ascending `sequence` and non-decreasing `inserted_at_ms`.
    insertion_order: VecDeque<InsertionRecord>,
    stored_answer_count: usize,
    next_sequence: u64,
    /// Insertion times are clamped to be monotonic, so expiry only ever
    /// removes from the front of `insertion_order`.
    latest_inserted_at_ms: u64,
}

/// Stale records tolerated beyond twice the live ones before compaction.
const STALE_RECORD_SLACK: usize = 64;

impl<A> SwipeCache<A> {
    /// A cache holding at most `max_entries` answers, each for at most
    /// `ttl_ms` milliseconds. Zero in either disables storing.
    pub fn new(max_entries: usize, ttl_ms: u64) -> SwipeCache<A> {
        SwipeCache {
            state: Mutex::new(SwipeCacheState {
                max_entries,
                ttl_ms,
                answers_by_key: HashMap::new(),
                insertion_order: VecDeque::new(),
                stored_answer_count: 0,
                next_sequence: 0,
                latest_inserted_at_ms: 0,
            }),
        }
    }

    /// Stores `answer` under `key` behind any answers already there. Drops
    /// expired answers first, then the oldest answers (of any key) beyond
    /// `max_entries`.
    pub fn put(&self, key: CacheKey, answer: A, now_ms: u64) {
        let mut state = self.state.lock();
        state.evict_expired(now_ms);
        if state.max_entries == 0 || state.ttl_ms == 0 {
            return;
        }
        let inserted_at_ms = now_ms.max(state.latest_inserted_at_ms);
        state.latest_inserted_at_ms = inserted_at_ms;
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        state.insertion_order.push_back(InsertionRecord { sequence, inserted_at_ms, key });
        state.answers_by_key.entry(key).or_default().push_back(StoredAnswer { sequence, answer });
        state.stored_answer_count += 1;
        state.evict_beyond_limit();
    }

    /// As [`take`](Self::take), with the key made only when the cache
    /// holds answers: an empty cache cannot answer, and making a key is a
    /// pass over the whole request.
    pub fn take_if_any(&self, key: impl FnOnce() -> CacheKey, now_ms: u64) -> Option<A> {
        if self.is_empty() {
            return None;
        }
        self.take(key(), now_ms)
    }

    /// Removes and returns the oldest unexpired answer stored under `key`.
    pub fn take(&self, key: CacheKey, now_ms: u64) -> Option<A> {
        let mut state = self.state.lock();
        state.evict_expired(now_ms);
        let answers = state.answers_by_key.get_mut(&key)?;
        let taken = answers.pop_front()?;
        if answers.is_empty() {
            state.answers_by_key.remove(&key);
        }
        state.stored_answer_count -= 1;
        state.compact_if_mostly_stale();
        Some(taken.answer)
    }

    /// Number of answers stored (expired ones included until the next `put`
    /// or `take` drops them).
    pub fn len(&self) -> usize {
        self.state.lock().stored_answer_count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies new `MAX_CACHE_ENTRIES` / `CACHE_EXPIRY_TIME` values. A lower
    /// bound evicts the oldest answers at once; a shorter time to live takes
    /// effect at the next `put` or `take`.
    pub fn set_limits(&self, max_entries: usize, ttl_ms: u64) {
        let mut state = self.state.lock();
        state.max_entries = max_entries;
        state.ttl_ms = ttl_ms;
        state.evict_beyond_limit();
        state.compact_if_mostly_stale();
    }
}

impl<A> SwipeCacheState<A> {
    fn is_expired(&self, inserted_at_ms: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(inserted_at_ms) >= self.ttl_ms
    }

    /// Whether the answer of `record` is still stored. A live record's
    /// answer is the front of its key's queue whenever the record is the
    /// front of `insertion_order`, since both are in sequence order.
    fn front_record_is_live(&self, record: &InsertionRecord) -> bool {
        self.answers_by_key
            .get(&record.key)
            .and_then(VecDeque::front)
            .is_some_and(|stored| stored.sequence == record.sequence)
    }

    /// Pops the front record and removes its answer if still stored.
    fn pop_front_record(&mut self) {
        let Some(record) = self.insertion_order.pop_front() else {
            return;
        };
        let Some(answers) = self.answers_by_key.get_mut(&record.key) else {
            return;
        };
        if answers.front().is_some_and(|stored| stored.sequence == record.sequence) {
            answers.pop_front();
            self.stored_answer_count -= 1;
            if answers.is_empty() {
                self.answers_by_key.remove(&record.key);
            }
        }
    }

    /// Drops expired answers and any stale records in front of them.
    fn evict_expired(&mut self, now_ms: u64) {
        while let Some(front) = self.insertion_order.front() {
            if self.is_expired(front.inserted_at_ms, now_ms) || !self.front_record_is_live(front) {
                self.pop_front_record();
            } else {
                break;
            }
        }
    }

    fn evict_beyond_limit(&mut self) {
        while self.stored_answer_count > self.max_entries && !self.insertion_order.is_empty() {
            self.pop_front_record();
        }
    }

    /// Keeps the stale records left behind by `take` from growing without
    /// bound; amortized O(1) per operation (binary search per record).
    fn compact_if_mostly_stale(&mut self) {
        if self.insertion_order.len() <= 2 * self.stored_answer_count + STALE_RECORD_SLACK {
            return;
        }
        let answers_by_key = &self.answers_by_key;
        self.insertion_order.retain(|record| {
            answers_by_key
                .get(&record.key)
                .is_some_and(|answers| answers.binary_search_by_key(&record.sequence, |stored| stored.sequence).is_ok())
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    // (The chat request's key is written in `openai`; its properties are
    // tested here, with the cache they serve.)
    use crate::openai::cache_key::cache_key;
    use crate::openai::types::ChatRequest;

    const ALICE: &[u8] = b"alice";
    const BOB: &[u8] = b"bob";

    fn key_of_json_text(request_text: &str, scope: &[u8]) -> CacheKey {
        let request: ChatRequest = serde_json::from_str(request_text).expect("test request parses");
        cache_key(&request, scope)
    }

    fn key_of_json(request: &Value, scope: &[u8]) -> CacheKey {
        key_of_json_text(&request.to_string(), scope)
    }

    fn image_data_url(last_character: char) -> String {
        format!("data:image/png;base64,{}{last_character}", "A".repeat(8192))
    }

    fn base_request() -> Value {
        json!({
            "model": "gemini-2.5-pro",
            "messages": [
                {"role": "system", "content": "You are a narrator."},
                {"role": "user", "content": "An old turn."},
                {"role": "assistant", "content": "An old reply.", "name": "Narrator"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Describe this picture."},
                    {"type": "image_url", "image_url": {"url": image_data_url('B'), "detail": "high"}}
                ]}
            ],
            "stream": false,
            "temperature": 0.9,
            "top_p": 0.95,
            "max_tokens": 1024,
            "stop": ["\nUser:"],
            "tools": [{"type": "function", "function": {"name": "roll_dice", "parameters": {"type": "object"}}}],
            "tool_choice": "auto"
        })
    }

    #[test]
    fn json_key_order_does_not_change_the_key() {
        let first = r#"{"model":"m","temperature":0.5,
            "tools":[{"type":"function","function":{"name":"f","parameters":{"a":1,"b":[{"x":1,"y":2}]}}}],
            "response_format":{"type":"json_schema","json_schema":{"name":"n","strict":true}},
            "messages":[{"role":"user","content":[{"type":"text","text":"hi"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,QUJD","detail":"low"}}]}]}"#;
        let second = r#"{"messages":[{"content":[{"text":"hi","type":"text"},
                {"image_url":{"detail":"low","url":"data:image/png;base64,QUJD"},"type":"image_url"}],"role":"user"}],
            "response_format":{"json_schema":{"strict":true,"name":"n"},"type":"json_schema"},
            "tools":[{"function":{"parameters":{"b":[{"y":2,"x":1}],"a":1},"name":"f"},"type":"function"}],
            "temperature":0.5,"model":"m"}"#;
        assert_eq!(key_of_json_text(first, ALICE), key_of_json_text(second, ALICE));
    }

    /// A request's content (a `BodyJson`, its long strings shared or not)
    /// and the same JSON as a `serde_json` tree give the same bytes.
    #[test]
    fn either_json_tree_gives_the_same_key() {
        let long = "x".repeat(crate::bodyshare::SHARED_FROM_BYTES);
        let value = json!({"b": [1, 2.5, null, true, {"d": "e", "c": long}], "a": "hi"});
        let body = Bytes::from(serde_json::to_vec(&value).unwrap());
        let shared: BodyJson = crate::bodyshare::parse_shared(&body).unwrap();
        let key_of = |write: &dyn Fn(&mut KeyDigest)| {
            let mut digest = KeyDigest::new();
            write(&mut digest);
            digest.finish()
        };
        let of_value = key_of(&|digest| digest.write_json(&value));
        assert_eq!(key_of(&|digest| digest.write_json(&shared)), of_value);
        assert_eq!(key_of(&|digest| digest.write_json(&BodyJson::from(value.clone()))), of_value);
        let changed = json!({"b": [1, 2.5, null, true, {"d": "e", "c": "x"}], "a": "hi"});
        assert_ne!(key_of(&|digest| digest.write_json(&changed)), of_value);
    }

    type RequestEdit = fn(&mut Value);

    #[test]
    fn key_covers_exactly_the_documented_parts() {
        let cases: &[(&str, &[u8], RequestEdit, bool)] = &[
            ("unchanged", ALICE, |_| {}, true),
            ("stream on", ALICE, |request| request["stream"] = json!(true), true),
            ("stream options", ALICE, |request| request["stream_options"] = json!({"include_usage": true}), true),
            ("n", ALICE, |request| request["n"] = json!(3), false),
            ("older message", ALICE, |request| request["messages"][1]["content"] = json!("x"), false),
            ("system instruction", ALICE, |request| request["messages"][0]["content"] = json!("Secret"), false),
            ("another client", BOB, |_| {}, false),
            ("last message text", ALICE, |request| request["messages"][3]["content"][0]["text"] = json!("y"), false),
            (
                "image data sharing a prefix",
                ALICE,
                |request| request["messages"][3]["content"][1]["image_url"]["url"] = json!(image_data_url('C')),
                false,
            ),
            ("message name", ALICE, |request| request["messages"][2]["name"] = json!("Other"), false),
            ("message role", ALICE, |request| request["messages"][2]["role"] = json!("user"), false),
            ("temperature", ALICE, |request| request["temperature"] = json!(1.0), false),
            ("temperature removed", ALICE, |request| request["temperature"] = Value::Null, false),
            ("top_k added", ALICE, |request| request["top_k"] = json!(40), false),
            ("seed added", ALICE, |request| request["seed"] = json!(7), false),
            ("stop", ALICE, |request| request["stop"] = json!("\nUser:"), false),
            ("tools", ALICE, |request| request["tools"][0]["function"]["name"] = json!("flip_coin"), false),
            ("tool_choice", ALICE, |request| request["tool_choice"] = json!("none"), false),
            ("response_format", ALICE, |request| request["response_format"] = json!({"type": "json_object"}), false),
            ("reasoning effort", ALICE, |request| request["reasoning_effort"] = json!("high"), false),
            ("thinking budget", ALICE, |request| request["thinking_budget"] = json!(0), false),
            ("model", ALICE, |request| request["model"] = json!("gemini-2.5-flash"), false),
        ];
        let base = base_request();
        for (case_name, scope, edit, expect_same_key) in cases {
            let mut edited = base.clone();
            edit(&mut edited);
            let same_key = key_of_json(&base, ALICE) == key_of_json(&edited, scope);
            assert_eq!(same_key, *expect_same_key, "case `{case_name}`");
        }
    }

    #[test]
    fn key_is_deterministic() {
        let request = base_request();
        assert_eq!(key_of_json(&request, ALICE), key_of_json(&request, ALICE));
        assert_eq!(key_of_json(&request, ALICE).to_string().len(), 32);
    }

    #[test]
    fn a_long_text_is_hashed_where_it_lies_and_every_byte_counts() {
        let long = "x".repeat(3 * HASHED_IN_PLACE);
        let key = |text: &str, after: &str| {
            let mut digest = KeyDigest::new();
            digest.write_text("before");
            digest.write_text(text);
            digest.write_text(after);
            digest.finish()
        };
        assert_eq!(key(&long, "after"), key(&long, "after"));
        let mut changed = long.clone();
        changed.replace_range(long.len() - 1.., "y");
        assert_ne!(key(&long, "after"), key(&changed, "after"));
        assert_ne!(key(&long, "after"), key(&long, "later"));
        // The same bytes gathered or hashed in place make the same key.
        let mut gathered = KeyDigest::new();
        for piece in long.as_bytes().chunks(100) {
            gathered.write_bytes(piece);
        }
        let mut in_place = KeyDigest::new();
        in_place.write_bytes(long.as_bytes());
        assert_eq!(gathered.finish(), in_place.finish());
    }

    /// Alice's answer came from her private system prompt and history; Bob
    /// sends the same last six messages under his own, from elsewhere.
    #[test]
    fn one_clients_answer_never_keys_another_clients_request() {
        let turns: Vec<Value> = (0..6)
            .map(
                |turn| json!({"role": if turn % 2 == 0 {"user"} else {"assistant"}, "content": format!("turn {turn}")}),
            )
            .collect();
        let request = |system: &str, history: &str| {
            let mut messages =
                vec![json!({"role": "system", "content": system}), json!({"role": "user", "content": history})];
            messages.extend(turns.iter().cloned());
            json!({"model": "gemini-2.5-pro", "messages": messages})
        };
        let alice = request("Alice's private persona", "Alice's early history");
        let bob_same_tail = request("Bob's persona", "Bob's early history");
        assert_ne!(key_of_json(&alice, ALICE), key_of_json(&bob_same_tail, ALICE));
        assert_ne!(key_of_json(&alice, ALICE), key_of_json(&bob_same_tail, BOB));
        // Even the identical request from another client has another key.
        assert_ne!(key_of_json(&alice, ALICE), key_of_json(&alice, BOB));
    }

    fn answer(text: &str) -> String {
        text.to_owned()
    }

    fn answer_text(answer: &str) -> Option<&str> {
        Some(answer)
    }

    enum Step {
        Put { key: u128, text: &'static str, now_ms: u64 },
        Take { key: u128, now_ms: u64, expected: Option<&'static str> },
        SetLimits { max_entries: usize, ttl_ms: u64 },
        Len(usize),
    }

    fn run_cache_script(max_entries: usize, ttl_ms: u64, steps: &[Step]) {
        let cache = SwipeCache::new(max_entries, ttl_ms);
        for (step_index, step) in steps.iter().enumerate() {
            match step {
                Step::Put { key, text, now_ms } => cache.put(CacheKey(*key), answer(text), *now_ms),
                Step::Take { key, now_ms, expected } => {
                    let taken = cache.take(CacheKey(*key), *now_ms);
                    assert_eq!(taken.as_deref().and_then(answer_text), *expected, "step {step_index}");
                }
                Step::SetLimits { max_entries, ttl_ms } => cache.set_limits(*max_entries, *ttl_ms),
                Step::Len(expected) => {
                    assert_eq!(cache.len(), *expected, "step {step_index}");
                    assert_eq!(cache.is_empty(), *expected == 0, "step {step_index}");
                }
            }
        }
    }

    #[test]
    fn an_empty_cache_is_asked_without_making_the_key() {
        let cache = SwipeCache::new(10, 60_000);
        let made = std::cell::Cell::new(0);
        let key = || {
            made.set(made.get() + 1);
            CacheKey(7)
        };
        assert!(cache.take_if_any(key, 1_000).is_none());
        assert_eq!(made.get(), 0);
        cache.put(CacheKey(7), answer("kept"), 1_000);
        assert_eq!(cache.take_if_any(key, 1_000).as_deref().and_then(answer_text), Some("kept"));
        assert_eq!(made.get(), 1);
        assert!(cache.take_if_any(key, 1_000).is_none(), "served once");
    }

    #[test]
    fn answers_are_served_oldest_first_and_once() {
        run_cache_script(
            10,
            60_000,
            &[
                Step::Len(0),
                Step::Put { key: 1, text: "first", now_ms: 1_000 },
                Step::Put { key: 1, text: "second", now_ms: 1_001 },
                Step::Put { key: 2, text: "other", now_ms: 1_002 },
                Step::Len(3),
                Step::Take { key: 1, now_ms: 2_000, expected: Some("first") },
                Step::Take { key: 1, now_ms: 2_000, expected: Some("second") },
                Step::Take { key: 1, now_ms: 2_000, expected: None },
                Step::Take { key: 3, now_ms: 2_000, expected: None },
                Step::Len(1),
                Step::Take { key: 2, now_ms: 2_000, expected: Some("other") },
                Step::Len(0),
            ],
        );
    }

    #[test]
    fn answers_expire_after_the_time_to_live() {
        run_cache_script(
            10,
            1_000,
            &[
                Step::Put { key: 1, text: "early", now_ms: 10_000 },
                Step::Put { key: 1, text: "late", now_ms: 10_500 },
                Step::Take { key: 1, now_ms: 11_000, expected: Some("late") },
                Step::Len(0),
                Step::Put { key: 2, text: "fresh", now_ms: 20_000 },
                Step::Take { key: 2, now_ms: 20_999, expected: Some("fresh") },
                Step::Put { key: 3, text: "stale", now_ms: 30_000 },
                Step::Put { key: 4, text: "evicts stale", now_ms: 31_000 },
                Step::Len(1),
                Step::Take { key: 3, now_ms: 31_000, expected: None },
                // A clock that steps back does not resurrect or break anything.
                Step::Put { key: 5, text: "clock went back", now_ms: 30_500 },
                Step::Take { key: 5, now_ms: 30_500, expected: Some("clock went back") },
            ],
        );
    }

    #[test]
    fn max_entries_evicts_the_oldest_answers_across_keys() {
        run_cache_script(
            3,
            60_000,
            &[
                Step::Put { key: 1, text: "a1", now_ms: 1 },
                Step::Put { key: 2, text: "b1", now_ms: 2 },
                Step::Put { key: 1, text: "a2", now_ms: 3 },
                Step::Put { key: 3, text: "c1", now_ms: 4 },
                Step::Len(3),
                Step::Take { key: 1, now_ms: 5, expected: Some("a2") },
                Step::Take { key: 2, now_ms: 5, expected: Some("b1") },
                // A taken answer leaves a stale record; eviction must skip it.
                Step::Put { key: 4, text: "d1", now_ms: 6 },
                Step::Put { key: 4, text: "d2", now_ms: 7 },
                Step::Put { key: 4, text: "d3", now_ms: 8 },
                Step::Len(3),
                Step::Take { key: 3, now_ms: 9, expected: None },
                Step::Take { key: 4, now_ms: 9, expected: Some("d1") },
            ],
        );
    }

    #[test]
    fn set_limits_applies_at_runtime() {
        run_cache_script(
            10,
            60_000,
            &[
                Step::Put { key: 1, text: "a1", now_ms: 1 },
                Step::Put { key: 2, text: "b1", now_ms: 2 },
                Step::Put { key: 1, text: "a2", now_ms: 3 },
                Step::SetLimits { max_entries: 1, ttl_ms: 60_000 },
                Step::Len(1),
                Step::Take { key: 2, now_ms: 4, expected: None },
                Step::Take { key: 1, now_ms: 4, expected: Some("a2") },
                Step::SetLimits { max_entries: 0, ttl_ms: 60_000 },
                Step::Put { key: 1, text: "not stored", now_ms: 5 },
                Step::Len(0),
                Step::SetLimits { max_entries: 5, ttl_ms: 100 },
                Step::Put { key: 1, text: "short lived", now_ms: 6 },
                Step::Take { key: 1, now_ms: 106, expected: None },
                Step::SetLimits { max_entries: 5, ttl_ms: 0 },
                Step::Put { key: 1, text: "caching off", now_ms: 200 },
                Step::Len(0),
            ],
        );
    }

    #[test]
    fn stale_records_from_takes_stay_bounded() {
        let cache = SwipeCache::new(1_000, u64::MAX);
        cache.put(CacheKey(0), answer("long lived"), 0);
        for round in 0..10_000u64 {
            cache.put(CacheKey(1), answer("spare"), round);
            assert!(cache.take(CacheKey(1), round).is_some());
        }
        let state = cache.state.lock();
        assert_eq!(state.stored_answer_count, 1);
        assert!(state.insertion_order.len() <= 2 + STALE_RECORD_SLACK + 1);
    }

    #[test]
    fn swipe_cache_is_send_and_sync() {
        fn assert_send_and_sync<T: Send + Sync>() {}
        assert_send_and_sync::<SwipeCache<std::sync::Arc<crate::gemini::types::Answer>>>();
    }
}
