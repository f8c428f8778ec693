//! Key validation in the background (§7): at startup (never delaying it),
//! on demand, and — for keys found invalid — again on a slow schedule.
//! Uses the model-list call, which costs no quota, with bounded
//! concurrency. Only a definite "this key is invalid" answer marks a key
//! invalid; rate limits, 5xx and network errors leave it as it was.

use std::sync::atomic::Ordering;

use futures_util::StreamExt;

use crate::gemini::client::GeminiClient;
use crate::gemini::error::FailureKind;
use crate::keys::validation::ValidationScope;
use crate::state::AppState;

fn control_selected(state: &AppState) -> parking_lot::MutexGuard<'_, Vec<crate::keys::KeyId>> {
    state.validation.selected.lock()
}

/// One validation run over the pool.
pub async fn validate_keys(client: &GeminiClient, state: &AppState, scope: ValidationScope, concurrency: usize) {
    let leases = match scope {
        ValidationScope::Selected => {
            let mut ids = std::mem::take(&mut *control_selected(state));
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter().filter_map(|id| Some(crate::keys::Lease { id, key: state.pool.key_of(id)? })).collect()
        }
        _ => state.pool.keys_to_validate(scope == ValidationScope::OnlyInvalid),
    };
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
                state.persist_key_health(id);
                valid += 1;
            }
            Err(failure) if failure.kind == FailureKind::KeyInvalid => {
                log::warn!(
                    "key {id} is invalid: {} (HTTP {})",
                    crate::secret::LogSafe(&failure.message),
                    failure.status
                );
                state.pool.mark_invalid(id, &format!("{} (HTTP {})", failure.message, failure.status), now_ms);
                state.persist_key_health(id);
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
