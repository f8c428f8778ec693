//! Gemini's thought signatures, as every front door hands them out and
//! takes them back (§4.6). Gemini 3 refuses a replayed tool turn without
//! the signature it attached; a signature may not survive a change of key
//! or project. So, bounded and in memory:
//!
//! - every signature Gemini returned is noted with the key that produced
//!   it ([`SignatureBook::issued`], by the delivery layer, whatever the
//!   door): a follow-up carrying it prefers that key ([`SignatureBook::key_of`]);
//! - a signature a client sends back is forwarded only when Gemini issued
//!   it here ([`SignatureBook::knows`]); anything else (a conversation
//!   begun with another model, a forged or stale one) becomes Google's
//!   documented placeholder (`convert::SKIP_THOUGHT_SIGNATURE_VALIDATOR`),
//!   never forwarded raw;
//! - the chat door also remembers each tool call's signature by the call
//!   id it gave the client ([`SignatureBook::remember`]), for clients that
//!   drop `extra_content`.
//!
//! Signatures are kept as 64-bit keyed digests, not as themselves; the
//! oldest entries go first.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use parking_lot::Mutex;

use crate::keys::KeyId;

pub struct SignatureBook {
    capacity: usize,
    digests: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Tool call id → its signature (the chat door's ids).
    by_call_id: HashMap<String, String>,
    call_order: VecDeque<String>,
    /// Digest of a signature Gemini returned → the key that produced it
    /// (`None` when no key is known, e.g. a cached answer).
    issued: HashMap<u64, Option<KeyId>>,
    issued_order: VecDeque<u64>,
}

impl SignatureBook {
    pub fn new(capacity: usize) -> SignatureBook {
        SignatureBook { capacity: capacity.max(1), digests: RandomState::new(), inner: Mutex::default() }
    }

    fn digest(&self, signature: &str) -> u64 {
        self.digests.hash_one(signature)
    }

    /// The signature of the tool call the client knows as `call_id`.
    pub fn remember(&self, call_id: &str, signature: &str) {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        if inner.by_call_id.insert(call_id.to_owned(), signature.to_owned()).is_none() {
            inner.call_order.push_back(call_id.to_owned());
        }
        while inner.call_order.len() > self.capacity {
            if let Some(oldest) = inner.call_order.pop_front() {
                inner.by_call_id.remove(&oldest);
            }
        }
    }

    pub fn lookup(&self, call_id: &str) -> Option<String> {
        self.inner.lock().by_call_id.get(call_id).cloned()
    }

    /// Gemini returned `signature` through `key`.
    pub fn issued(&self, signature: &str, key: Option<KeyId>) {
        let digest = self.digest(signature);
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        match inner.issued.insert(digest, key) {
            None => inner.issued_order.push_back(digest),
            // Known already: keep the key that first produced it.
            Some(first) => {
                inner.issued.insert(digest, first.or(key));
            }
        }
        while inner.issued_order.len() > self.capacity {
            if let Some(oldest) = inner.issued_order.pop_front() {
                inner.issued.remove(&oldest);
            }
        }
    }

    /// Whether Gemini issued `signature` here (so it may be sent back).
    pub fn knows(&self, signature: &str) -> bool {
        let digest = self.digest(signature);
        self.inner.lock().issued.contains_key(&digest)
    }

    /// The key that produced `signature`, when known.
    pub fn key_of(&self, signature: &str) -> Option<KeyId> {
        let digest = self.digest(signature);
        self.inner.lock().issued.get(&digest).copied().flatten()
    }

    /// The key most of `signatures` came from (the first one known wins).
    pub fn preferred_key<'a>(&self, signatures: impl IntoIterator<Item = &'a str>) -> Option<KeyId> {
        signatures.into_iter().find_map(|signature| self.key_of(signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_signatures_are_bounded_and_evict_the_oldest() {
        let book = SignatureBook::new(2);
        book.remember("a", "1");
        book.remember("b", "2");
        book.remember("c", "3");
        assert_eq!(book.lookup("a"), None);
        assert_eq!(book.lookup("b").as_deref(), Some("2"));
        assert_eq!(book.lookup("c").as_deref(), Some("3"));
    }

    #[test]
    fn issued_signatures_are_known_with_their_key_and_others_are_not() {
        let book = SignatureBook::new(2);
        book.issued("sig-from-key-3", Some(KeyId(3)));
        book.issued("sig-from-cache", None);
        assert!(book.knows("sig-from-key-3") && book.knows("sig-from-cache"));
        assert!(!book.knows("EqQBCkgIAxABGAIiQ...claude"), "another model's signature is not Gemini's");
        assert_eq!(book.key_of("sig-from-key-3"), Some(KeyId(3)));
        assert_eq!(book.key_of("sig-from-cache"), None);
        assert_eq!(book.preferred_key(["unknown", "sig-from-key-3"]), Some(KeyId(3)));
        // The same signature seen again keeps its first key.
        book.issued("sig-from-key-3", Some(KeyId(7)));
        assert_eq!(book.key_of("sig-from-key-3"), Some(KeyId(3)));
        // Bounded: the oldest goes.
        book.issued("third", Some(KeyId(1)));
        assert!(!book.knows("sig-from-key-3"));
    }
}
