//! Dashboard sessions (§3.2): server-side, in memory. A session id is 256
//! random bits (hex) in an `HttpOnly`, `SameSite=Strict` cookie; each
//! session has its own CSRF token and a one-shot flash message, and ends
//! after [`IDLE_EXPIRY_MS`] without a request, [`MAX_LIFETIME_MS`] after
//! it began whatever its use, on logout, or when the password changes.
//! Pure: callers pass `now_ms` and the RNG.
//!
//! Sessions are held by the digest of their id (`store::session_digest`),
//! the name replicas share them under (REDIS_URL): a session begun on one
//! replica is known to the others without its id ever leaving the first.

use std::collections::HashMap;

use parking_lot::Mutex;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::store::session_digest;

pub const SESSION_COOKIE: &str = "hajimi_session";
pub const LOGIN_COOKIE: &str = "hajimi_login";
/// Sessions end after this long without a request.
pub const IDLE_EXPIRY_MS: u64 = 2 * 60 * 60 * 1000;
/// Sessions end this long after they began, however busy.
pub const MAX_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;
/// Sessions held at most; the least recently used goes first.
const MAX_SESSIONS: usize = 1_000;

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    began_ms: u64,
    last_seen_ms: u64,
    flash: Option<Flash>,
    /// Logged in with the default password: only the password page is
    /// shown until a new one is set.
    must_change_password: bool,
}

/// What a request learns about its session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub csrf: String,
    pub must_change_password: bool,
}

#[derive(Default)]
pub struct Sessions {
    /// By digest of the id.
    by_id: Mutex<HashMap<String, Session>>,
}

pub use crate::secret::random_token;

/// The one-shot message after a mutation (`kind` is `ok` or `error`).
#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: &'static str,
    pub text: String,
}

/// Constant-time equality of two tokens.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

impl Session {
    fn is_live(&self, now_ms: u64) -> bool {
        self.last_seen_ms + IDLE_EXPIRY_MS > now_ms && self.began_ms + MAX_LIFETIME_MS > now_ms
    }
}

impl Sessions {
    pub fn create(&self, must_change_password: bool, now_ms: u64, rng: &mut impl RngCore) -> SessionInfo {
        let id = random_token(rng);
        let csrf = random_token(rng);
        self.insert_shared(&session_digest(&id), &csrf, must_change_password, now_ms, now_ms);
        SessionInfo { id, csrf, must_change_password }
    }

    /// A session another replica began at `began_ms` (or this one, again),
    /// by digest.
    pub fn insert_shared(&self, digest: &str, csrf: &str, must_change_password: bool, began_ms: u64, now_ms: u64) {
        // Another replica's session not heard of since it began may have
        // been idle too long already: refused (its use there is not shared).
        if began_ms.saturating_add(IDLE_EXPIRY_MS) <= now_ms {
            return;
        }
        let mut sessions = self.by_id.lock();
        sessions.retain(|_, session| session.is_live(now_ms));
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(digest) {
            if let Some(oldest) =
                sessions.iter().min_by_key(|(_, session)| session.last_seen_ms).map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        let session = sessions.entry(digest.to_owned()).or_insert_with(|| Session {
            csrf: String::new(),
            began_ms,
            last_seen_ms: now_ms,
            flash: None,
            must_change_password,
        });
        session.csrf = csrf.to_owned();
        session.must_change_password = must_change_password;
        session.last_seen_ms = session.last_seen_ms.max(now_ms);
    }

    /// Ends the session with this digest (logout on another replica).
    pub fn remove_shared(&self, digest: &str) {
        self.by_id.lock().remove(digest);
    }

    /// Ends every session but the one with this digest.
    pub fn keep_only_shared(&self, digest: &str) {
        self.by_id.lock().retain(|known, _| known == digest);
    }

    /// The live session with this id (its idle clock restarts).
    pub fn get(&self, id: &str, now_ms: u64) -> Option<SessionInfo> {
        let digest = session_digest(id);
        let mut sessions = self.by_id.lock();
        let session = sessions.get_mut(&digest)?;
        if !session.is_live(now_ms) {
            sessions.remove(&digest);
            return None;
        }
        session.last_seen_ms = now_ms;
        Some(SessionInfo {
            id: id.to_owned(),
            csrf: session.csrf.clone(),
            must_change_password: session.must_change_password,
        })
    }

    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(session) = self.by_id.lock().get_mut(&session_digest(id)) {
            session.flash = Some(flash);
        }
    }

    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.by_id.lock().get_mut(&session_digest(id)).and_then(|session| session.flash.take())
    }

    pub fn password_changed(&self, id: &str) {
        if let Some(session) = self.by_id.lock().get_mut(&session_digest(id)) {
            session.must_change_password = false;
        }
    }

    pub fn remove(&self, id: &str) {
        self.remove_shared(&session_digest(id));
    }

    /// Ends every session (the dashboard password changed).
    pub fn remove_all(&self) {
        self.by_id.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.by_id.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_carry_a_flash_once() {
        let sessions = Sessions::default();
        let mut rng = rand::rng();
        let info = sessions.create(false, 0, &mut rng);
        assert_eq!(info.id.len(), 64);
        assert_ne!(info.id, info.csrf);
        assert!(sessions.get(&info.id, IDLE_EXPIRY_MS - 1).is_some());
        // Touched at IDLE_EXPIRY_MS - 1: alive until twice that.
        assert!(sessions.get(&info.id, 2 * IDLE_EXPIRY_MS - 2).is_some());
        sessions.set_flash(&info.id, Flash { kind: "ok", text: "saved".into() });
        assert_eq!(sessions.take_flash(&info.id).unwrap().text, "saved");
        assert!(sessions.take_flash(&info.id).is_none());
        assert!(sessions.get(&info.id, 4 * IDLE_EXPIRY_MS).is_none());
        assert!(sessions.get("not-a-session", 0).is_none());
    }

    #[test]
    fn a_session_in_constant_use_still_ends_after_its_lifetime() {
        let sessions = Sessions::default();
        let info = sessions.create(false, 0, &mut rand::rng());
        let mut now = 0;
        while now + IDLE_EXPIRY_MS / 2 < MAX_LIFETIME_MS {
            now += IDLE_EXPIRY_MS / 2;
            assert!(sessions.get(&info.id, now).is_some(), "alive at {now}");
        }
        assert!(sessions.get(&info.id, MAX_LIFETIME_MS).is_none());
        // A session shared by another replica keeps its own start; one not
        // heard of for longer than the idle expiry is refused.
        sessions.insert_shared("digest", "csrf", false, 1_000, 2_000);
        assert_eq!(sessions.len(), 1);
        sessions.insert_shared("stale", "csrf", false, 1_000, 1_000 + IDLE_EXPIRY_MS);
        assert_eq!(sessions.len(), 1, "a shared session idle too long is not taken");
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn session_count_is_bounded() {
        let sessions = Sessions::default();
        let mut rng = rand::rng();
        for n in 0..(MAX_SESSIONS as u64 + 50) {
            sessions.create(false, n, &mut rng);
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
    }
}
