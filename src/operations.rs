//! One place changes the running state. Every durable change is a
//! [`Change`]; whichever path it comes from — a dashboard action, another
//! replica (`cluster`), the store at startup — it is put in force by
//! [`apply`], so replicas and restarts cannot drift from what a dashboard
//! action did. A dashboard handler builds its `Change`s and calls
//! [`commit`] (apply here, then hand them to the store's writer).

use crate::secret::ApiKey;
use crate::state::AppState;
use crate::store::{Change, KeyAction};

pub use crate::state::{sync_vertex_off_thread, Applied};

/// Applies `changes` here and persists them (shared with other replicas
/// when `REDIS_URL` is set); Vertex pools are synced on a blocking thread.
pub async fn commit(state: &actix_web::web::Data<AppState>, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    let applied = apply(state, &changes);
    state.store.send_all(changes);
    if applied.vertex_changed {
        sync_vertex_off_thread(state).await;
    }
}

/// Applies `changes` to this replica's running state, in order: what a
/// dashboard action did here, what another replica did (its changes on
/// the channel, or a reloaded snapshot), what the store held at startup.
/// Idempotent, like the store's own application of a change. Persisting
/// is the caller's (see [`commit`]); nothing here writes to the store, and
/// Vertex credentials are synced by the caller, off the async thread (see
/// [`Applied`]).
pub fn apply(state: &AppState, changes: &[Change]) -> Applied {
    let now_ms = state.now_ms();
    let mut vertex_changed = false;
    let mut keys_changed = false;
    for change in changes {
        match change {
            Change::SetSetting { name, value } => {
                let mut overrides = state.settings.lock().overrides.clone();
                overrides.insert(name.clone(), value.clone());
                vertex_changed |= crate::settings::adopt_shared(state, overrides).vertex_changed;
            }
            Change::RemoveSetting { name } => {
                let mut overrides = state.settings.lock().overrides.clone();
                overrides.remove(name);
                vertex_changed |= crate::settings::adopt_shared(state, overrides).vertex_changed;
            }
            Change::AddKeys(keys) => {
                let keys: Vec<ApiKey> = keys.iter().flat_map(|text| ApiKey::extract_all(text)).collect();
                keys_changed |= state.pool.add(keys) > 0;
            }
            Change::SetKeyAction { key, action } => {
                let Some(id) = state.pool.id_of(&ApiKey::new(key.as_str())) else { continue };
                match action {
                    Some(KeyAction::Deleted) => {
                        state.pool.remove(id);
                        keys_changed = true;
                    }
                    Some(KeyAction::Disabled) => state.pool.set_disabled(id, true),
                    None => state.pool.set_disabled(id, false),
                }
            }
            Change::KeyHealth(health) => {
                let Some(id) = state.pool.id_of(&ApiKey::new(health.key.as_str())) else { continue };
                match &health.invalid_reason {
                    Some(reason) => state.pool.restore_invalid(id, reason, health.last_validated_ms),
                    None => state.pool.mark_valid(id, health.last_validated_ms),
                }
            }
            Change::KeyCooling { key, model, until_ms } | Change::KeyExhausted { key, model, until_ms } => {
                let Some(id) = state.pool.id_of(&ApiKey::new(key.as_str())) else { continue };
                let exhausted = matches!(change, Change::KeyExhausted { .. });
                state.pool.rest_until(id, model, *until_ms, exhausted, now_ms);
            }
            Change::SetModelLimit { model, limit } => {
                let mut limits = state.pool.daily_limits();
                match limit {
                    Some(limit) => limits.per_model.insert(model.clone(), *limit),
                    None => limits.per_model.remove(model),
                };
                state.pool.set_daily_limits(limits);
            }
            Change::SetPasswordHash(hash) => {
                // Sessions end by the `PasswordChangedIn` sent with it.
                state.dashboard.password.set_hash(hash.clone());
            }
            Change::AddCredential(credential) => {
                let mut vertex = state.dashboard.vertex.write();
                vertex.credentials.retain(|known| known.client_email != credential.client_email);
                vertex.credentials.push(credential.clone());
                vertex_changed = true;
            }
            Change::RemoveCredential { client_email } => {
                state.dashboard.vertex.write().credentials.retain(|known| &known.client_email != client_email);
                vertex_changed = true;
            }
            Change::AddExpressKey(key) => {
                let mut vertex = state.dashboard.vertex.write();
                if !vertex.express_keys.contains(key) {
                    crate::secret::register_secret(key);
                    vertex.express_keys.push(key.clone());
                    vertex_changed = true;
                }
            }
            Change::RemoveExpressKey(key) => {
                state.dashboard.vertex.write().express_keys.retain(|known| known != key);
                vertex_changed = true;
            }
            Change::SessionStarted { digest, csrf, must_change_password, at_ms } => {
                state.dashboard.sessions.insert_shared(digest, csrf, *must_change_password, *at_ms, now_ms);
            }
            Change::SessionEnded { digest } => state.dashboard.sessions.remove_shared(digest),
            Change::PasswordChangedIn { digest } => state.dashboard.sessions.keep_only_shared(digest),
            Change::AddressLockedOut { throttle, address, until_ms } => {
                let Ok(address) = address.parse::<std::net::IpAddr>() else { continue };
                let Some(guarded) = crate::throttle::Guarded::parse(throttle) else { continue };
                state.throttles.of(guarded).lock_out(address, *until_ms, now_ms);
            }
            Change::Usage(_)
            | Change::MinuteStats(_)
            | Change::Request(_)
            | Change::Prune { .. }
            | Change::SaveResponse(_)
            | Change::DeleteResponse { .. }
            | Change::PruneResponses { .. } => {}
        }
    }
    if keys_changed {
        // Keys came or went: the model list may differ.
        state.model_refresh.notify_one();
    }
    Applied { vertex_changed }
}
