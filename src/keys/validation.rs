//! What the operator asked of key validation and how far a run has got
//! (shared by the dashboard, which asks, and the background job in
//! `validator`, which runs): no I/O.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Which keys a validation run checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationScope {
    All,
    OnlyInvalid,
    /// The keys the dashboard asked for (`ValidationControl::request_keys`).
    Selected,
}

/// Shared between the background runner and whoever asks for a run (the
/// dashboard): the request, and progress for a progress bar.
#[derive(Debug, Default)]
pub struct ValidationControl {
    pub(crate) wake: Notify,
    pub(crate) requested_all: AtomicBool,
    pub(crate) requested: AtomicBool,
    pub running: AtomicBool,
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub found_invalid: AtomicUsize,
    pub(crate) selected: parking_lot::Mutex<Vec<crate::keys::KeyId>>,
}

/// Progress of the current or last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationProgress {
    pub running: bool,
    pub total: usize,
    pub done: usize,
    pub found_invalid: usize,
}

impl ValidationControl {
    pub fn request(&self, scope: ValidationScope) {
        if scope == ValidationScope::All {
            self.requested_all.store(true, Ordering::SeqCst);
        }
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Asks for a run over these keys (added to any already asked for).
    pub fn request_keys(&self, ids: &[crate::keys::KeyId]) {
        self.selected.lock().extend_from_slice(ids);
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub fn progress(&self) -> ValidationProgress {
        ValidationProgress {
            running: self.running.load(Ordering::SeqCst),
            total: self.total.load(Ordering::SeqCst),
            done: self.done.load(Ordering::SeqCst),
            found_invalid: self.found_invalid.load(Ordering::SeqCst),
        }
    }

    /// Waits for a request; returns its scope.
    pub async fn next_request(&self) -> ValidationScope {
        loop {
            if self.requested.swap(false, Ordering::SeqCst) {
                return if self.requested_all.swap(false, Ordering::SeqCst) {
                    self.selected.lock().clear();
                    ValidationScope::All
                } else if !self.selected.lock().is_empty() {
                    ValidationScope::Selected
                } else {
                    ValidationScope::OnlyInvalid
                };
            }
            self.wake.notified().await;
        }
    }
}
