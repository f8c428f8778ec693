//! Key validation in the background (§7): at startup (never delaying it),
//! on demand, and — for keys found invalid — again on a slow schedule.
//! Uses the model-list call, which costs no quota, with bounded
//! concurrency. Only a definite "this key is invalid" answer marks a key
//! invalid; rate limits, 5xx and network errors leave it as it was.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::gemini::client::GeminiClient;
use crate::gemini::error::FailureKind;
use crate::state::AppState;

/// Which keys a validation run checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationScope {
    All,
    OnlyInvalid,
}

/// Shared between the background runner and whoever asks for a run (the
/// dashboard): the request, and progress for a progress bar.
#[derive(Debug, Default)]
pub struct ValidationControl {
    wake: Notify,
    requested_all: AtomicBool,
    requested: AtomicBool,
    pub running: AtomicBool,
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub found_invalid: AtomicUsize,
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
                    ValidationScope::All
                } else {
                    ValidationScope::OnlyInvalid
                };
            }
            self.wake.notified().await;
        }
    }
}

/// One validation run over the pool.
pub async fn validate_keys(client: &GeminiClient, state: &AppState, scope: ValidationScope, concurrency: usize) {
    let leases = state.pool.keys_to_validate(scope == ValidationScope::OnlyInvalid);
    let control = &state.validation;
    control.total.store(leases.len(), Ordering::SeqCst);
    control.done.store(0, Ordering::SeqCst);
    control.found_invalid.store(0, Ordering::SeqCst);
    control.running.store(true, Ordering::SeqCst);
    let checks = futures_util::stream::iter(leases)
        .map(|lease| async move {
            let result = client.check_key(&lease.key).await;
            (lease.id, result)
        })
        .buffer_unordered(concurrency.max(1));
    futures_util::pin_mut!(checks);
    let (mut valid, mut invalid, mut undecided) = (0usize, 0usize, 0usize);
    while let Some((id, result)) = checks.next().await {
        let now_ms = state.now_ms();
        match result {
            Ok(_) => {
                state.pool.mark_valid(id, now_ms);
                valid += 1;
            }
            Err(failure) if failure.kind == FailureKind::KeyInvalid => {
                log::warn!(
                    "key {id} is invalid: {} (HTTP {})",
                    crate::secret::LogSafe(&failure.message),
                    failure.status
                );
                state.pool.mark_invalid(id, &format!("{} (HTTP {})", failure.message, failure.status), now_ms);
                control.found_invalid.fetch_add(1, Ordering::SeqCst);
                invalid += 1;
            }
            Err(failure) => {
                log::info!("key {id} could not be checked now ({}); left as it was", failure.kind.as_str());
                state.pool.mark_checked(id, now_ms);
                undecided += 1;
            }
        }
        control.done.fetch_add(1, Ordering::SeqCst);
    }
    control.running.store(false, Ordering::SeqCst);
    log::info!("key validation finished: {valid} valid, {invalid} invalid, {undecided} undecided");
}
