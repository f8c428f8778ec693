//! Non-stream generations shared between identical requests (§8). A
//! shared generation runs as a detached task, so no client leaving cancels
//! a call another client waits on; identical requests in flight (same
//! [`CacheKey`]: the whole request and the client's scope) join it. Under
//! `PUBLIC_MODE` nobody joins, and a generation runs in its request's own
//! task until its client leaves, when the rest of it moves to a task of its
//! own. Either way, hedged extras and answers nobody collected go to the
//! swipe cache for the next swipe. Format-free: it deals in upstream
//! [`Answer`]s, which each route converts for its client.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
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
/// already in flight, or starts `relay.generate(body)` as a detached task
/// (or, when nothing is shared, in this task: see [`generate_here`]).
pub async fn obtain_answer(
    key: CacheKey,
    share: bool,
    mut relay: Relay,
    body: Rope,
    state: &web::Data<AppState>,
) -> (Result<Arc<Answer>, ApiError>, Option<KeyId>) {
    if !share {
        return generate_here(key, relay, body, state).await;
    }
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

/// A generation nobody can join (`PUBLIC_MODE`), run in the request's own
/// task: no task, channel or in-flight entry. If the client leaves first,
/// what is left of the generation moves to a task of its own, which makes
/// no further attempt and keeps its answer for the next swipe, as a shared
/// generation would.
async fn generate_here(
    key: CacheKey,
    mut relay: Relay,
    body: Rope,
    state: &web::Data<AppState>,
) -> (Result<Arc<Answer>, ApiError>, Option<KeyId>) {
    let client_here = Rc::new(Cell::new(true));
    let wanted = client_here.clone();
    relay.still_wanted = Some(Rc::new(move || wanted.get()));
    let extras = extra_answers_to_cache(key, state);
    let generation = Box::pin(async move { relay.generate(body, Some(extras)).await });
    let mut running = RunningHere { generation: Some(generation), client_here, key, state: state.clone() };
    let result = match &mut running.generation {
        Some(generation) => generation.await,
        None => Err(ApiError::Internal),
    };
    running.generation = None;
    match result {
        Ok((answer, key_id)) => (Ok(Arc::new(answer)), Some(key_id)),
        Err(error) => (Err(error), None),
    }
}

type Generation = Pin<Box<dyn Future<Output = Result<(Answer, KeyId), ApiError>>>>;

/// A generation running in its request's task, for as long as it runs.
struct RunningHere {
    generation: Option<Generation>,
    client_here: Rc<Cell<bool>>,
    key: CacheKey,
    state: web::Data<AppState>,
}

impl Drop for RunningHere {
    /// The client left before the answer: the generation goes on alone.
    /// (Not while unwinding from a panic in it: it cannot be resumed.)
    fn drop(&mut self) {
        let Some(generation) = self.generation.take() else { return };
        if std::thread::panicking() {
            return;
        }
        self.client_here.set(false);
        let (key, state) = (self.key, self.state.clone());
        actix_web::rt::spawn(async move {
            if let Ok((answer, _)) = generation.await {
                keep_for_the_next_swipe(&state, key, Arc::new(answer));
            }
        });
    }
}

/// An answer that finished after its client left.
fn keep_for_the_next_swipe(state: &AppState, key: CacheKey, answer: Arc<Answer>) {
    log::info!("answer finished after its client left; kept for the next swipe");
    state.swipe_cache.put(key, answer, state.now_ms());
}

/// Hedged answers that arrive after the winner: kept for the next swipe.
fn extra_answers_to_cache(key: CacheKey, state: &web::Data<AppState>) -> ExtraAnswerSink {
    let state = state.clone();
    Rc::new(move |answer: Arc<Answer>| state.swipe_cache.put(key, answer, state.now_ms()))
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
    let extras = extra_answers_to_cache(key, state);
    let state = state.clone();
    let mut guard = GenerationGuard { state: state.clone(), key, sender: Some(sender) };
    actix_web::rt::spawn(async move {
        let result = relay.generate(body, Some(extras)).await;
        let outcome: SharedOutcome = result.map(|(answer, key_id)| (Arc::new(answer), key_id));
        guard.forget_inflight();
        let Some(sender) = guard.sender.take() else { return };
        if sender.receiver_count() == 0 {
            if let Ok((answer, _)) = &outcome {
                keep_for_the_next_swipe(&state, key, answer.clone());
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
