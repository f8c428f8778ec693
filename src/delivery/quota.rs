//! Exact daily limits across replicas (`REDIS_URL` with a limit enforced):
//! before a key is used, one unit of its limit for the model is held in
//! the shared store (or taken from this replica's credit); once the call
//! is settled the unit counts as used, or — when the call used nothing —
//! goes back. One request's holds live here, for as long as its relay.

use std::cell::RefCell;

use crate::gemini::client::Service;
use crate::keys::pacific::{next_pacific_midnight, pacific_day};
use crate::keys::{KeyId, Lease};
use crate::replicas::Reservation;
use crate::state::AppState;

/// The key reached its daily limit on some replica: it rests until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub until_ms: u64,
}

/// Keys holding a unit of a shared daily limit for a call not yet settled.
/// (A relay is cloned into the calls it spawns; holds and settles happen on
/// the relay the request owns.)
#[derive(Debug, Default, Clone)]
pub struct QuotaHolds {
    held: RefCell<Vec<KeyId>>,
}

impl QuotaHolds {
    /// Holds a unit of `lease`'s limit for `model` when a shared limit is
    /// enforced (AI Studio keys only); `Ok` when there is none to hold, or
    /// Redis cannot answer (this replica's own count decides then).
    pub async fn hold(&self, state: &AppState, service: Service, model: &str, lease: &Lease) -> Result<(), Exhausted> {
        let Some(shared) = &state.shared else { return Ok(()) };
        if service != Service::Studio {
            return Ok(());
        }
        let Some(limit) = state.pool.enforced_limit(model) else { return Ok(()) };
        let now_s = (state.now_ms() / 1000) as i64;
        match shared.link().reserve(lease.key.expose(), model, pacific_day(now_s), limit).await {
            Reservation::Granted => {
                self.held.borrow_mut().push(lease.id);
                Ok(())
            }
            Reservation::Unknown => Ok(()),
            Reservation::Denied => Err(Exhausted { until_ms: next_pacific_midnight(now_s) as u64 * 1000 }),
        }
    }

    /// The call with `key` is settled: its held unit (if any) is used, or
    /// with `used` false, kept as credit for the next call.
    pub fn settle(&self, state: &AppState, model: &str, key: KeyId, used: bool) {
        let mut held = self.held.borrow_mut();
        let Some(position) = held.iter().position(|holding| *holding == key) else { return };
        held.swap_remove(position);
        drop(held);
        if used {
            return;
        }
        if let (Some(shared), Some(api_key)) = (&state.shared, state.pool.key_of(key)) {
            shared.link().give_back(api_key.expose(), model, pacific_day((state.now_ms() / 1000) as i64));
        }
    }
}
