//! Several replicas, one pool (`REDIS_URL`). Each replica keeps its own
//! local view — key pool, settings, sessions, Vertex credentials — and the
//! request path reads only that view. What one replica changes or learns
//! reaches the others as [`Change`]s on the shared store's channel
//! (`store::redis`); [`follow`] applies them here, and after any gap (a
//! start, Redis away and back) reloads the whole shared state and adopts
//! it ([`converge`]).
//!
//! Applying is idempotent, like the store's changes: a replica may see a
//! change twice (its catch-up reload and the message) without harm.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use futures_util::StreamExt;

use crate::state::AppState;
use crate::store::redis::{Broadcast, RedisStore, CHANNEL};
use crate::store::{Change, KeyAction, Snapshot, Store};

/// How often a replica checks that Redis still answers while subscribed.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Log records one replica adds to the shared log per second, at most.
const MAX_LOG_RECORDS_PER_TICK: usize = 1_000;
/// Pause between attempts to reach Redis while it is away.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Adopts the whole shared state after a gap in the channel: settings,
/// keys and the operator's actions, key health, limits, the dashboard
/// password, Vertex credentials and live sessions.
pub fn converge(state: &AppState, snapshot: &Snapshot) -> crate::operations::Applied {
    let settings = crate::settings::adopt_shared(state, snapshot.setting_overrides.clone());
    let changes: Vec<Change> = snapshot
        .to_changes()
        .into_iter()
        .filter(|change| match change {
            // Adopted as a whole above.
            Change::SetSetting { .. } => false,
            // Health marks only what is known invalid: a key this replica
            // found invalid is not revived by an older "valid" row.
            Change::KeyHealth(health) => health.invalid_reason.is_some(),
            _ => true,
        })
        .collect();
    settings.and(crate::operations::apply(state, &changes))
}

/// This replica's view as changes: what it would take to rebuild the
/// shared state from it (settings, keys and what was done to them, limits,
/// the dashboard password, Vertex credentials).
fn own_view(state: &AppState) -> Vec<Change> {
    let now_ms = state.now_ms();
    let mut view = Snapshot { setting_overrides: state.settings.lock().overrides.clone(), ..Snapshot::default() };
    for id in state.pool.find_ids(|_, _, _, _| true, now_ms) {
        let (Some(key), Some(key_view)) = (state.pool.key_of(id), state.pool.key_view(id, now_ms)) else { continue };
        let key = key.expose().to_owned();
        match key_view.state {
            crate::keys::KeyState::Disabled => {
                view.key_actions.insert(key.clone(), KeyAction::Disabled);
            }
            crate::keys::KeyState::Invalid { reason, .. } => view.key_health.push(crate::store::StoredKeyHealth {
                key: key.clone(),
                invalid_reason: Some(reason),
                last_validated_ms: key_view.last_validated_ms,
            }),
            _ => {}
        }
        view.added_keys.push(key);
    }
    view.model_limits = state.pool.daily_limits().per_model.into_iter().collect();
    view.password_hash = state.dashboard.password.hash.read().clone();
    let vertex = state.dashboard.vertex.read();
    view.credentials = vertex.credentials.clone();
    view.express_keys = vertex.express_keys.clone();
    view.to_changes()
}

/// Follows the shared store for the life of the process: subscribes to
/// the channel, catches up (writes what waited, reloads, converges), then
/// applies each message of another replica; when Redis goes away, marks it
/// so and tries again every second. Returns at once without `REDIS_URL`.
pub async fn follow(state: &web::Data<AppState>) {
    let Some(shared) = state.shared.clone() else { return };
    loop {
        match subscribe(&shared).await {
            Ok(mut pubsub) => {
                match shared.client().get_multiplexed_async_connection().await {
                    Ok(connection) => shared.link().set_connection(Some(connection)),
                    Err(error) => shared.status().set_up(false, &error.to_string()),
                }
                if catch_up(state, &shared).await && shared.link().is_connected() {
                    shared.status().set_up(true, "");
                    listen(state, &shared, &mut pubsub).await;
                }
                shared.link().set_connection(None);
            }
            Err(error) => shared.status().set_up(false, &error.to_string()),
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

async fn subscribe(shared: &RedisStore) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = shared.client().get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    Ok(pubsub)
}

/// Writes what waited for Redis, then adopts the shared state. False when
/// Redis went away again meanwhile.
async fn catch_up(state: &web::Data<AppState>, shared: &Arc<RedisStore>) -> bool {
    let store = Arc::clone(shared);
    // Written back first if Redis lost its data: this replica's view.
    let own_view = own_view(state);
    let loaded = tokio::task::spawn_blocking(move || {
        if store.data_set_is_new().ok()? {
            log::warn!(target: "hajimi::cluster", "shared state: Redis holds none of the shared state (new, flushed or restarted without persistence); writing this replica's back");
            store.write_now(&own_view).ok()?;
        }
        if !store.write_pending() {
            return None;
        }
        store.load().ok()
    })
    .await
    .ok()
    .flatten();
    match loaded {
        Some(snapshot) => {
            if converge(state, &snapshot).vertex_changed {
                crate::operations::sync_vertex_off_thread(state).await;
            }
            true
        }
        None => false,
    }
}

/// Applies messages until the subscription ends or a ping goes unanswered.
async fn listen(state: &web::Data<AppState>, shared: &Arc<RedisStore>, pubsub: &mut redis::aio::PubSub) {
    let mut messages = pubsub.on_message();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // This replica's log records, added to the shared rolling log each tick.
    let mut log = crate::log_ring::global().subscribe();
    let mut log_records = Vec::new();
    // Per-address counts are exchanged every RATE_LIMIT_SYNC_MS (read each
    // time: the setting is live).
    let exchange_every = |state: &AppState| match state.config().rate_limit_sync {
        interval if interval.is_zero() => PING_INTERVAL,
        interval => interval,
    };
    let exchange = tokio::time::sleep(exchange_every(state));
    tokio::pin!(exchange);
    loop {
        tokio::select! {
            () = &mut exchange => {
                if !state.config().rate_limit_sync.is_zero() {
                    shared.link().exchange_address_counts(state.now_ms()).await;
                }
                exchange.as_mut().reset(tokio::time::Instant::now() + exchange_every(state));
            }
            record = log.recv() => match record {
                Ok(record) if log_records.len() < MAX_LOG_RECORDS_PER_TICK => log_records.push(record),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => log = crate::log_ring::global().subscribe(),
            },
            message = messages.next() => {
                let Some(message) = message else {
                    shared.status().set_up(false, "the subscription ended");
                    return;
                };
                let Ok(broadcast) = serde_json::from_slice::<Broadcast>(message.get_payload_bytes()) else {
                    log::warn!(target: "hajimi::cluster", "shared state: an unreadable message on {CHANNEL} was ignored");
                    continue;
                };
                if broadcast.from != shared.replica()
                    && crate::operations::apply(state, &broadcast.changes).vertex_changed
                {
                    crate::operations::sync_vertex_off_thread(state).await;
                }
            }
            _ = ping.tick() => {
                let store = Arc::clone(shared);
                let answered = tokio::task::spawn_blocking(move || store.ping()).await.unwrap_or(false);
                if !answered {
                    return;
                }
                shared.link().return_idle_credit(false).await;
                shared.link().push_log(&std::mem::take(&mut log_records), state.config().log_ring_size).await;
                // Changes that waited while the writer could not reach Redis.
                if shared.pending_count() > 0 {
                    let store = Arc::clone(shared);
                    let _ = tokio::task::spawn_blocking(move || store.write_pending()).await;
                }
            }
        }
    }
}

/// Tells the other replicas that `address` is locked out of the table of
/// `guarded` for `retry_after_ms`, so a guesser cannot go on through them.
pub fn share_lockout(
    state: &AppState,
    guarded: crate::throttle::Guarded,
    address: std::net::IpAddr,
    retry_after_ms: u64,
) {
    if state.shared.is_some() {
        state.store.send(Change::AddressLockedOut {
            throttle: guarded.as_str().to_owned(),
            address: address.to_string(),
            until_ms: state.now_ms() + retry_after_ms,
        });
    }
}

/// For `/ready` and the dashboard: `None` on a single node, else whether
/// Redis is reachable and where it is (no credentials).
pub fn status(state: &AppState) -> Option<(bool, String)> {
    state.shared.as_ref().map(|shared| (shared.status().is_up(), shared.status().endpoint().to_owned()))
}
