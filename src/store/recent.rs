//! Responses saved (or deleted) a moment ago, before the writer thread has
//! put them in the store: the store writer is asynchronous (its batch
//! window), and a client chaining `previous_response_id` right after a
//! response completed must find it. So the Responses door notes each save
//! and delete here as well as sending its [`Change`](super::Change); a
//! read asks here first, then the store. Entries last [`KEEP_FOR_MS`]
//! (far longer than a batch takes: these changes are written at once) and
//! are bounded by count and bytes; a deletion is kept as a tombstone for
//! as long, so a read right after a delete does not find the row the
//! writer has yet to remove. The price, with replicas: for those seconds
//! a replica may still serve a response it saved that another replica
//! has just deleted.
//!
//! Why not wait for the write instead: a real stream's last event is made
//! on the async thread (`convert::stream::EventFormat::finish`), where
//! nothing may block, and a note here costs a map insert. Other replicas
//! (`REDIS_URL`) read Redis, which the writer updates at once for these
//! changes (`Change::is_urgent`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::StoredResponse;

/// How long a save or a delete is remembered here.
pub const KEEP_FOR_MS: u64 = 10_000;
/// Entries kept at most (the oldest go first).
pub const MAX_ENTRIES: usize = 1_024;
/// Bytes of responses kept at most (the oldest go first).
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

/// What a read finds here.
#[derive(Debug, Clone, PartialEq)]
pub enum Recent {
    Saved(Arc<StoredResponse>),
    Deleted,
}

struct Entry {
    at_ms: u64,
    /// Which note made it (positions in `order` name it).
    serial: u64,
    scope: String,
    /// `None`: deleted.
    response: Option<Arc<StoredResponse>>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Ids in the order noted (an id noted again appears again; stale
    /// positions are skipped when evicting).
    order: VecDeque<(String, u64, u64)>,
    bytes: usize,
    next_serial: u64,
}

#[derive(Default)]
pub struct RecentResponses {
    inner: Mutex<Inner>,
}

impl RecentResponses {
    pub fn new() -> RecentResponses {
        RecentResponses::default()
    }

    /// `response` was just saved.
    pub fn saved(&self, response: Arc<StoredResponse>, now_ms: u64) {
        let id = response.id.clone();
        let scope = response.scope.clone();
        self.note(id, Entry { at_ms: now_ms, serial: 0, scope, response: Some(response) }, now_ms);
    }

    /// The response `id` of `scope` was just deleted.
    pub fn deleted(&self, id: &str, scope: &str, now_ms: u64) {
        self.note(id.to_owned(), Entry { at_ms: now_ms, serial: 0, scope: scope.to_owned(), response: None }, now_ms);
    }

    /// What was noted about `id` for `scope` within [`KEEP_FOR_MS`].
    pub fn get(&self, id: &str, scope: &str, now_ms: u64) -> Option<Recent> {
        let inner = self.inner.lock();
        let entry = inner.entries.get(id)?;
        if entry.scope != scope || now_ms.saturating_sub(entry.at_ms) > KEEP_FOR_MS {
            return None;
        }
        Some(match &entry.response {
            Some(response) => Recent::Saved(response.clone()),
            None => Recent::Deleted,
        })
    }

    fn note(&self, id: String, mut entry: Entry, now_ms: u64) {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        inner.next_serial += 1;
        entry.serial = inner.next_serial;
        let size = entry.response.as_ref().map_or(0, |response| response.size());
        if let Some(old) = inner.entries.insert(id.clone(), entry) {
            inner.bytes -= old.response.as_ref().map_or(0, |response| response.size());
        }
        inner.bytes += size;
        inner.order.push_back((id, now_ms, inner.next_serial));
        while let Some((oldest, at_ms, serial)) = inner.order.front().cloned() {
            let expired = now_ms.saturating_sub(at_ms) > KEEP_FOR_MS;
            let over = inner.entries.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES;
            if !expired && !over {
                break;
            }
            inner.order.pop_front();
            // Only the entry this position noted: a later note of the same id stays.
            if inner.entries.get(&oldest).is_some_and(|entry| entry.serial == serial) {
                if let Some(gone) = inner.entries.remove(&oldest) {
                    inner.bytes -= gone.response.as_ref().map_or(0, |response| response.size());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: &str, scope: &str, bytes: usize) -> Arc<StoredResponse> {
        Arc::new(StoredResponse {
            id: id.to_owned(),
            scope: scope.to_owned(),
            created_ms: 0,
            expires_ms: 0,
            body: "x".repeat(bytes),
        })
    }

    #[test]
    fn a_save_is_found_by_its_scope_only_and_a_delete_is_a_tombstone() {
        let recent = RecentResponses::new();
        recent.saved(response("resp_1", "alice", 10), 1_000);
        assert!(matches!(recent.get("resp_1", "alice", 1_500), Some(Recent::Saved(_))));
        assert_eq!(recent.get("resp_1", "bob", 1_500), None);
        recent.deleted("resp_1", "alice", 2_000);
        assert_eq!(recent.get("resp_1", "alice", 2_000), Some(Recent::Deleted));
        // Forgotten after KEEP_FOR_MS: the store answers from then on.
        assert_eq!(recent.get("resp_1", "alice", 2_000 + KEEP_FOR_MS + 1), None);
    }

    #[test]
    fn entries_are_bounded_by_count_bytes_and_age() {
        let recent = RecentResponses::new();
        for n in 0..(MAX_ENTRIES + 10) {
            recent.saved(response(&format!("resp_{n}"), "s", 1), 5);
        }
        assert_eq!(recent.get("resp_0", "s", 5), None);
        assert!(recent.get(&format!("resp_{}", MAX_ENTRIES + 9), "s", 5).is_some());
        assert!(recent.inner.lock().entries.len() <= MAX_ENTRIES);
        recent.saved(response("big", "s", MAX_BYTES / 2 + 1), 6);
        recent.saved(response("bigger", "s", MAX_BYTES / 2 + 1), 6);
        assert_eq!(recent.get("big", "s", 6), None);
        assert!(recent.inner.lock().bytes <= MAX_BYTES);
        // Old entries go as new ones come.
        recent.saved(response("late", "s", 1), 6 + KEEP_FOR_MS + 1);
        assert_eq!(recent.inner.lock().entries.len(), 1);
    }
}
