//! Application state. [`AppState`] is `Send + Sync`, lives for the whole
//! process and is shared by all workers behind `web::Data`.
//! [`WorkerClients`] holds the per-worker HTTP clients (awc clients are
//! `!Send`): one set per worker, built in the `HttpServer::new` closure.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::keys::KeyPool;
use crate::models::ModelCatalog;

/// The HTTP clients of one worker.
#[derive(Clone)]
pub struct WorkerClients {
    pub gemini: crate::gemini::client::GeminiClient,
    /// For fetching images clients reference by URL; follows no redirects
    /// (a redirect could lead to a private address).
    pub media: awc::Client,
}

pub struct AppState {
    config: RwLock<Arc<Config>>,
    pub pool: KeyPool,
    pub catalog: ModelCatalog,
    pub signatures: SignatureCache,
    pub started_at: Instant,
}

impl AppState {
    pub fn new(config: Config) -> AppState {
        AppState {
            pool: KeyPool::new(config.gemini_api_keys.iter().cloned()),
            catalog: ModelCatalog::default(),
            signatures: SignatureCache::new(config.thought_signature_cache_size),
            config: RwLock::new(Arc::new(config)),
            started_at: Instant::now(),
        }
    }

    /// A snapshot of the current configuration; cheap (an `Arc` clone) and
    /// safe to keep across `.await`.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    pub fn replace_config(&self, config: Config) {
        *self.config.write() = Arc::new(config);
    }
}

/// Wall-clock time in Unix milliseconds, the unit the pure modules take.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Thought signatures Gemini attached to function calls, by the tool-call
/// id hajimi gave the client, so that a client that drops
/// `extra_content` still sends them back (§4.6). Bounded: the oldest
/// entries are evicted first.
pub struct SignatureCache {
    capacity: usize,
    inner: Mutex<(HashMap<String, String>, VecDeque<String>)>,
}

impl SignatureCache {
    pub fn new(capacity: usize) -> SignatureCache {
        SignatureCache { capacity: capacity.max(1), inner: Mutex::default() }
    }

    pub fn remember(&self, call_id: &str, signature: &str) {
        let mut guard = self.inner.lock();
        let (map, order) = &mut *guard;
        if map.insert(call_id.to_owned(), signature.to_owned()).is_none() {
            order.push_back(call_id.to_owned());
        }
        while order.len() > self.capacity {
            if let Some(oldest) = order.pop_front() {
                map.remove(&oldest);
            }
        }
    }

    pub fn lookup(&self, call_id: &str) -> Option<String> {
        self.inner.lock().0.get(call_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_cache_is_bounded_and_evicts_the_oldest() {
        let cache = SignatureCache::new(2);
        cache.remember("a", "1");
        cache.remember("b", "2");
        cache.remember("c", "3");
        assert_eq!(cache.lookup("a"), None);
        assert_eq!(cache.lookup("b").as_deref(), Some("2"));
        assert_eq!(cache.lookup("c").as_deref(), Some("3"));
    }
}
