//! Non-stream generations shared between identical requests (§8). A
//! generation runs as a detached task, so no client leaving cancels a call
//! another client waits on; identical requests in flight (same
//! [`CacheKey`]: the whole request and the client's scope) join it unless
//! `PUBLIC_MODE`; hedged extras and answers nobody collected go to the
//! swipe cache for the next swipe. Format-free: it deals in upstream
//! [`Answer`]s, which each route converts for its client.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::web;

use crate::bodyshare::Rope;
use crate::cache::CacheKey;
use crate::delivery::relay::{ExtraAnswerSink, Relay};
use crate::error::ApiError;
use crate::gemini::types::Answer;
use crate::keys::KeyId;
use crate::state::{AppState, InflightAnswer, SharedOutcome};

/// The answer to the request keyed `key`: joins an identical generation
/// already in flight, or starts `relay.generate(body)` as a detached task.
pub async fn obtain_answer(
    key: CacheKey,
    share: bool,
    mut relay: Relay,
    body: Rope,
    state: &web::Data<AppState>,
) -> (Result<Arc<Answer>, ApiError>, Option<KeyId>) {
    let InflightAnswer { mut receiver, waiters } = {
        let mut inflight = state.inflight.lock();
        match inflight.get(&key) {
            Some(joined) if share => joined.clone(),
            _ => {
                let (sender, receiver) = tokio::sync::watch::channel(None);
                let joined = InflightAnswer { receiver, waiters: Arc::new(AtomicUsize::new(0)) };
                if share {
                    inflight.insert(key, joined.clone());
                }
                let waiting = joined.waiters.clone();
                relay.still_wanted = Some(Rc::new(move || waiting.load(Ordering::SeqCst) > 0));
                spawn_generation(key, relay, body, state, sender);
                joined
            }
        }
    };
    let _waiting = Waiting::new(waiters);
    let outcome = match receiver.wait_for(Option::is_some).await {
        Ok(value) => value.clone().unwrap_or(Err(ApiError::Internal)),
        Err(_) => Err(ApiError::Internal),
    };
    match outcome {
        Ok((answer, key)) => (Ok(answer), Some(key)),
        Err(error) => (Err(error), None),
    }
}

/// One client waiting for a generation, for as long as it waits.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(waiters: Arc<AtomicUsize>) -> Waiting {
        waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(waiters)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the retry loop in its own task, so no client leaving cancels it.
/// Hedged extras and answers nobody collected go to the swipe cache.
fn spawn_generation(
    key: CacheKey,
    relay: Relay,
    body: Rope,
    state: &web::Data<AppState>,
    sender: tokio::sync::watch::Sender<Option<SharedOutcome>>,
) {
    let state = state.clone();
    let sink_state = state.clone();
    let extras: ExtraAnswerSink = Rc::new(move |answer: Arc<Answer>| {
        sink_state.swipe_cache.put(key, answer, sink_state.now_ms());
    });
    let mut guard = GenerationGuard { state: state.clone(), key, sender: Some(sender) };
    actix_web::rt::spawn(async move {
        let result = relay.generate(body, Some(extras)).await;
        let outcome: SharedOutcome = result.map(|(answer, key_id)| (Arc::new(answer), key_id));
        guard.forget_inflight();
        let Some(sender) = guard.sender.take() else { return };
        if sender.receiver_count() == 0 {
            if let Ok((answer, _)) = &outcome {
                log::info!("answer finished after its client left; kept for the next swipe");
                state.swipe_cache.put(key, answer.clone(), state.now_ms());
            }
        }
        sender.send_replace(Some(outcome));
    });
}

/// Owned by a generation task: however the task ends (even by a panic),
/// the in-flight entry goes and every waiter gets an outcome.
struct GenerationGuard {
    state: web::Data<AppState>,
    key: CacheKey,
    sender: Option<tokio::sync::watch::Sender<Option<SharedOutcome>>>,
}

impl GenerationGuard {
    fn forget_inflight(&self) {
        let Some(sender) = &self.sender else { return };
        let mut inflight = self.state.inflight.lock();
        if inflight.get(&self.key).is_some_and(|joined| joined.receiver.same_channel(&sender.subscribe())) {
            inflight.remove(&self.key);
        }
    }
}

impl Drop for GenerationGuard {
    fn drop(&mut self) {
        self.forget_inflight();
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(Err(ApiError::Internal)));
        }
    }
}
