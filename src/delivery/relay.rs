//! The retry loop between a converted request and the key pool: pick a key,
//! call the upstream, classify a failure, report it to the pool, and try the
//! next key while that can help — up to `MAX_RETRY_NUM` attempts and
//! `MAX_EMPTY_RESPONSES` empty answers. Client mistakes (Google's 400s for
//! the request itself) go straight back to the client and never penalise a
//! key. Non-streaming calls can be hedged (§8): several keys at once, the
//! first good answer wins, and the others may finish into the swipe cache.
//! Every route that calls Google (each front door, the native routes,
//! embeddings) goes through it: no other module picks keys for a call.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::bodyshare::Rope;
use crate::convert::answer::is_empty_answer;
use crate::error::ApiError;
use crate::gemini::client::{CallCredential, GeminiClient, OpenStream, Service, Target};
use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::gemini::native::Action;
use crate::gemini::types::{Answer, GenerateContentResponse};
use crate::keys::penalty::Penalty;
use crate::keys::{KeyId, KeyPool, Lease, UnavailableReason};
use crate::state::AppState;
use crate::store::Change;

pub use super::failure::{failure_to_client_error, Attempts};
use super::failure::{unavailable_error, SkipSignatures};
use super::quota::{Exhausted, QuotaHolds};

/// Hedged calls allowed to keep running after their client was answered.
pub const MAX_BACKGROUND_CALLS: usize = 32;

/// Limits of one client request's attempts.
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    pub max_attempts: u32,
    pub max_empty_answers: u32,
}

/// Parallel calls per round (§8): `initial`, growing by `increase` after a
/// failed round, up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Hedge {
    pub initial: u32,
    pub increase: u32,
    pub max: u32,
}

/// Receives successful answers that arrived after the client was answered.
pub type ExtraAnswerSink = Rc<dyn Fn(Arc<Answer>)>;

/// What one upstream call came to.
enum CallResult {
    Answer(Answer),
    Empty(Answer),
    Failed(UpstreamFailure),
}

/// See [`Relay::settle`].
enum Settled {
    Done(Result<(Answer, KeyId), ApiError>),
    Retry,
}

/// One call's result, tagged with the call's number (a key may serve two
/// calls of one request when there are fewer keys than hedged calls).
struct CallReport {
    number: u64,
    key: KeyId,
    result: CallResult,
}

struct RunningCall {
    number: u64,
    handle: actix_web::rt::task::JoinHandle<()>,
    in_background: Rc<Cell<bool>>,
}

/// Owned by a call's task. If the task dies without reporting (a panic,
/// a cancellation), it reports a failure so nobody waits forever; and it
/// gives back the background slot the call held, whatever happened.
struct CallGuard {
    sender: Option<mpsc::UnboundedSender<CallReport>>,
    number: u64,
    key: KeyId,
    in_background: Rc<Cell<bool>>,
    state: web::Data<AppState>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let failure = UpstreamFailure::network("the upstream call ended unexpectedly");
            let _ = sender.send(CallReport { number: self.number, key: self.key, result: CallResult::Failed(failure) });
        }
        if self.in_background.get() {
            self.state.background_calls.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Everything one retry loop needs; cheap to clone (shared handles).
#[derive(Clone)]
pub struct Relay {
    pub state: web::Data<AppState>,
    pub client: GeminiClient,
    pub budget: RetryBudget,
    pub hedge: Hedge,
    /// Longest wait for a cooling key (or a global back-off) before
    /// answering 429 instead.
    pub max_wait_for_key: Duration,
    /// Where the calls go.
    pub target: Target,
    /// The model name the pool books health and usage under: the upstream
    /// model for generation, `model:countTokens` for token counting (its
    /// quota is not the generation quota).
    pub pool_model: Rc<str>,
    /// When every attempt came back empty, hand over the last empty answer
    /// instead of an error (native clients read `promptFeedback` and
    /// `finishReason` themselves).
    pub keep_empty_answer: bool,
    /// `REQUEST_DEADLINE` from the request's start: no attempt starts or
    /// runs past it (timeouts must not add up across retries).
    pub deadline: tokio::time::Instant,
    /// Whether some client still waits for this answer; when none does, no
    /// new attempt starts after a failure (shared generations).
    pub still_wanted: Option<Rc<dyn Fn() -> bool>>,
    /// The key the request's first attempt goes to while it can serve: a
    /// follow-up carrying thought signatures goes back to the key that
    /// produced them (they may not survive a change of key or project).
    pub prefer: Option<KeyId>,
    /// When Google refuses the thought signatures a follow-up carries
    /// back (Gemini 3's 400), retry once with Google's placeholder in their
    /// place instead of failing the client. Front doors that convert set
    /// it; Gemini-native requests are the client's own and go as sent.
    pub signature_fallback: bool,
    /// Units of shared daily limits held for calls not yet settled.
    quota: QuotaHolds,
}

/// What authenticates one call, owned: a key, or a service account's
/// access token and project.
enum Resolved {
    Key(crate::secret::ApiKey),
    Account { token: crate::secret::Secret, project: String },
}

impl Resolved {
    fn as_call(&self) -> CallCredential<'_> {
        match self {
            Resolved::Key(key) => CallCredential::Key(key),
            Resolved::Account { token, project } => CallCredential::Account { token: token.expose(), project },
        }
    }
}

impl Relay {
    /// A relay for calls to `target`, booked under `pool_model`, with the
    /// retry and hedging settings of `config`.
    pub fn new(
        config: &crate::config::Config,
        state: &web::Data<AppState>,
        client: &GeminiClient,
        target: Target,
        pool_model: Rc<str>,
    ) -> Relay {
        Relay {
            state: state.clone(),
            client: client.clone(),
            budget: RetryBudget { max_attempts: config.max_retry_num, max_empty_answers: config.max_empty_responses },
            hedge: Hedge {
                initial: config.concurrent_requests,
                increase: config.increase_concurrent_on_failure,
                max: config.max_concurrent_requests,
            },
            max_wait_for_key: config.max_wait_for_key,
            target,
            pool_model,
            keep_empty_answer: false,
            deadline: tokio::time::Instant::now() + config.request_deadline,
            still_wanted: None,
            prefer: None,
            signature_fallback: false,
            quota: QuotaHolds::default(),
        }
    }

    /// Holds a unit of the key's shared daily limit (see `quota`). False
    /// when the key reached its limit on some replica: it then rests here
    /// until Pacific midnight and the others hear of it.
    async fn hold_quota(&self, lease: &Lease) -> bool {
        match self.quota.hold(&self.state, self.target.service, &self.pool_model, lease).await {
            Ok(()) => true,
            Err(Exhausted { until_ms }) => {
                self.state.pool.rest_until(lease.id, &self.pool_model, until_ms, true, self.state.now_ms());
                self.announce_rest(&lease.key, until_ms, true);
                false
            }
        }
    }

    /// The call with `key` is settled (see `quota`).
    fn settle_quota(&self, key: KeyId, used: bool) {
        self.quota.settle(&self.state, &self.pool_model, key, used);
    }

    /// The client's error when the deadline passed: the last real failure,
    /// else a timeout.
    fn deadline_error(&self, attempts: &Attempts) -> ApiError {
        if attempts.last_failure.is_some() || attempts.empty_answers > 0 {
            return attempts.exhausted_error();
        }
        ApiError::UpstreamFailed {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: "No answer within REQUEST_DEADLINE / 请求总时长超限".to_owned(),
        }
    }

    fn past_deadline(&self) -> bool {
        tokio::time::Instant::now() >= self.deadline
    }

    /// The pool this relay's keys come from: AI Studio keys, Vertex Express
    /// keys or Vertex service accounts.
    pub fn pool(&self) -> &KeyPool {
        match self.target.service {
            Service::Studio => &self.state.pool,
            Service::VertexExpress => &self.state.vertex.express,
            Service::VertexAccount => &self.state.vertex.accounts,
        }
    }

    /// The credential for a call with `lease`; for a service account, its
    /// access token (fetched now when none is fresh).
    async fn resolve(&self, lease: &Lease) -> Result<Resolved, UpstreamFailure> {
        match self.target.service {
            Service::Studio | Service::VertexExpress => Ok(Resolved::Key(lease.key.clone())),
            Service::VertexAccount => {
                let (token, project) = crate::vertex::access_token(
                    &self.state.vertex,
                    &self.client,
                    lease.key.expose(),
                    self.state.now_ms(),
                )
                .await?;
                Ok(Resolved::Account { token, project })
            }
        }
    }

    /// A key for the next attempt, waiting briefly when every key is cooling
    /// (or the pool is backing off) for only a moment. When every key was
    /// already tried, the tried list is cleared so transient failures can be
    /// retried on the same keys.
    async fn next_key(&self, attempts: &mut Attempts) -> Result<Lease, ApiError> {
        if !*self.state.keys_loaded.borrow() {
            self.state.wait_for_keys(Duration::from_secs(30)).await;
        }
        if let (Some(preferred), 0) = (self.prefer, attempts.attempts) {
            let now_ms = self.state.now_ms();
            if let Some(lease) = self.pool().pick_preferred(&self.pool_model, now_ms, preferred) {
                if self.hold_quota(&lease).await {
                    return Ok(lease);
                }
            }
        }
        let mut waited = Duration::ZERO;
        loop {
            let now_ms = self.state.now_ms();
            match self.pool().pick(&self.pool_model, now_ms, &attempts.tried) {
                // A key refused by the shared limit now rests: pick again.
                Ok(lease) if !self.hold_quota(&lease).await => {}
                Ok(lease) => return Ok(lease),
                Err(unavailable) if unavailable.reason == UnavailableReason::AllTried => attempts.tried.clear(),
                Err(unavailable) => {
                    let wait = unavailable.retry_at_ms.map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
                    let brief =
                        matches!(unavailable.reason, UnavailableReason::AllCooling | UnavailableReason::GlobalBackoff);
                    match wait {
                        Some(wait) if brief && waited + wait <= self.max_wait_for_key => {
                            let pause = wait + Duration::from_millis(5);
                            tokio::time::sleep(pause).await;
                            waited += pause;
                        }
                        _ => return Err(unavailable_error(&unavailable, self.target.service, now_ms)),
                    }
                }
            }
        }
    }

    /// A short, growing pause after consecutive server errors.
    async fn back_off(&self, attempts: &Attempts) {
        if attempts.consecutive_server_errors > 0 {
            let exponent = attempts.consecutive_server_errors.min(5) - 1;
            tokio::time::sleep(Duration::from_millis(200 << exponent).min(Duration::from_secs(2))).await;
        }
    }

    /// Log lines about Vertex calls are filed under `vertex`.
    fn log_target(&self) -> &'static str {
        match self.target.service {
            Service::Studio => "hajimi::delivery::relay",
            Service::VertexExpress | Service::VertexAccount => "hajimi::vertex::relay",
        }
    }

    fn log_failure(&self, key: KeyId, failure: &UpstreamFailure) {
        log::warn!(
            target: self.log_target(),
            "upstream failure model={} key={} status={} kind={} message=\"{}\"",
            self.pool_model,
            key,
            failure.status,
            failure.kind.as_str(),
            crate::secret::LogSafe(&failure.message)
        );
    }

    /// Decides whether to go on after a failure already reported to the
    /// pool; returns the client error if not.
    fn after_failure(&self, attempts: &mut Attempts, failure: UpstreamFailure) -> Result<(), ApiError> {
        if failure.kind == FailureKind::ServerError {
            attempts.consecutive_server_errors += 1;
        } else {
            attempts.consecutive_server_errors = 0;
        }
        if self.signature_fallback
            && matches!(attempts.skip_signatures, SkipSignatures::No)
            && crate::convert::is_signature_refusal(failure.status, &failure.message)
        {
            log::info!(target: self.log_target(), "thought signatures refused; retrying once with the placeholder model={}", self.pool_model);
            attempts.skip_signatures = SkipSignatures::Pending;
            // Not the key's fault and not a new attempt of the same request.
            attempts.attempts = attempts.attempts.saturating_sub(1);
            attempts.last_failure = Some(failure);
            return Ok(());
        }
        let retry = failure.kind.is_retryable() && attempts.attempts < self.budget.max_attempts;
        let error = failure_to_client_error(&failure);
        attempts.last_failure = Some(failure);
        if retry {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// The body the next attempt sends: the converted one, or once Google
    /// refused its thought signatures, the same with the placeholder.
    fn body_for(&self, attempts: &mut Attempts, body: &Rope) -> Rope {
        if matches!(attempts.skip_signatures, SkipSignatures::Pending) {
            // No model turn to change: the next attempt is refused again
            // and the client hears Google's error.
            let skipped =
                crate::convert::with_skip_signatures(&body.flat()).map(Rope::from).unwrap_or_else(|| body.clone());
            attempts.skip_signatures = SkipSignatures::Sent(skipped);
        }
        match &attempts.skip_signatures {
            SkipSignatures::Sent(skipped) => skipped.clone(),
            _ => body.clone(),
        }
    }

    /// Records an empty answer (not the key's fault: no penalty).
    pub fn after_empty(&self, attempts: &mut Attempts, key: KeyId) -> Result<(), ApiError> {
        attempts.empty_answers += 1;
        self.state.metrics.empty_answer();
        log::warn!(
            target: self.log_target(),
            "empty answer model={} key={} count={}",
            self.pool_model,
            key,
            attempts.empty_answers
        );
        if attempts.empty_answers >= self.budget.max_empty_answers || attempts.attempts >= self.budget.max_attempts {
            attempts.last_failure = None;
            return Err(attempts.exhausted_error());
        }
        Ok(())
    }

    /// One non-streaming call, reported to the pool whatever happens to the
    /// request that started it.
    async fn call_once(&self, lease: Lease, body: Rope) -> CallResult {
        let result = match self.resolve(&lease).await {
            Ok(credential) => {
                let call = self.client.call(credential.as_call(), &self.target, Action::GenerateContent, body);
                self.state.metrics.time_upstream(self.target.service, call).await
            }
            Err(failure) => Err(failure),
        };
        let parsed = result.and_then(|raw| match GenerateContentResponse::from_json(&raw) {
            Ok(parsed) => Ok(Answer { raw, parsed }),
            Err(error) => Err(UpstreamFailure::network(&format!("unreadable answer: {error}"))),
        });
        match parsed {
            Ok(answer) if is_empty_answer(&answer.parsed) => {
                self.settle_quota(lease.id, false);
                CallResult::Empty(answer)
            }
            Ok(answer) => {
                self.note_signatures(&answer.parsed, lease.id);
                let usage = answer.parsed.usage_metadata.unwrap_or_default();
                let completion_tokens = usage.candidates_token_count.saturating_add(usage.thoughts_token_count);
                self.record_success(lease.id, usage.prompt_token_count, completion_tokens);
                CallResult::Answer(answer)
            }
            Err(failure) => {
                self.record_failure(lease.id, &failure);
                CallResult::Failed(failure)
            }
        }
    }

    /// Notes the thought signatures of an answer (or stream event) with
    /// the key that produced them (see `signatures`).
    pub fn note_signatures(&self, response: &GenerateContentResponse, key: KeyId) {
        let parts = response
            .candidates
            .iter()
            .filter_map(|candidate| candidate.content.as_ref())
            .flat_map(|content| &content.parts);
        for signature in parts.filter_map(|part| part.thought_signature.as_deref()) {
            self.state.signatures.issued(signature, Some(key));
        }
    }

    fn record_failure(&self, key: KeyId, failure: &UpstreamFailure) {
        self.log_failure(key, failure);
        self.state.metrics.failure(failure.kind);
        self.settle_quota(key, false);
        let outcome = self.pool().report_failure(key, &self.pool_model, failure, self.state.now_ms());
        if self.target.service == Service::Studio {
            self.share_penalty(key, outcome.penalty);
        }
    }

    /// What a failure taught about an AI Studio key, for the store: an
    /// invalid key is remembered (and other replicas stop using it); with
    /// shared state, a rest is told to the other replicas too.
    fn share_penalty(&self, key: KeyId, penalty: Penalty) {
        let (until_ms, exhausted) = match penalty {
            Penalty::Invalid => return self.state.persist_key_health(key),
            Penalty::Cooling { until_ms, .. } => (until_ms, false),
            Penalty::ExhaustedToday { until_ms } => (until_ms, true),
            Penalty::None => return,
        };
        if let Some(api_key) = self.state.pool.key_of(key) {
            self.announce_rest(&api_key, until_ms, exhausted);
        }
    }

    /// Tells the other replicas (shared state only) that `key` rests for
    /// this relay's model until `until_ms`: cooling, or `exhausted` today.
    fn announce_rest(&self, key: &crate::secret::ApiKey, until_ms: u64, exhausted: bool) {
        if self.state.shared.is_none() {
            return;
        }
        let (key, model) = (key.expose().to_owned(), self.pool_model.to_string());
        self.state.store.send(if exhausted {
            Change::KeyExhausted { key, model, until_ms }
        } else {
            Change::KeyCooling { key, model, until_ms }
        });
    }

    /// Books a success (and its tokens) for the key and in the stats.
    pub fn record_success(&self, key: KeyId, prompt_tokens: u64, completion_tokens: u64) {
        self.settle_quota(key, true);
        let now_ms = self.state.now_ms();
        self.pool().report_success(key, &self.pool_model, prompt_tokens, completion_tokens, now_ms);
        self.state.stats.add_tokens(prompt_tokens, completion_tokens, now_ms);
    }

    /// Any other one-answer action (`countTokens`, `embedContent`,
    /// `batchEmbedContents`): key after key until one answers, no hedging
    /// (these are cheap and have no swipes). Returns the raw answer.
    pub async fn call(&self, action: Action, body: Rope) -> Result<(Bytes, KeyId), ApiError> {
        let mut attempts = Attempts::default();
        loop {
            if attempts.attempts >= self.budget.max_attempts {
                return Err(attempts.exhausted_error());
            }
            if self.past_deadline() {
                return Err(self.deadline_error(&attempts));
            }
            self.back_off(&attempts).await;
            let lease = self.next_key(&mut attempts).await?;
            attempts.tried.push(lease.id);
            attempts.attempts += 1;
            let call = async {
                let credential = self.resolve(&lease).await?;
                let call = self.client.call(credential.as_call(), &self.target, action, body.clone());
                self.state.metrics.time_upstream(self.target.service, call).await
            };
            let result = match tokio::time::timeout_at(self.deadline, call).await {
                Ok(result) => result,
                Err(_) => return Err(self.deadline_error(&attempts)),
            };
            match result {
                Ok(raw) => {
                    self.record_success(lease.id, 0, 0);
                    return Ok((raw, lease.id));
                }
                Err(failure) => {
                    self.record_failure(lease.id, &failure);
                    self.after_failure(&mut attempts, failure)?;
                }
            }
        }
    }

    /// Non-streaming `generateContent` until a non-empty answer, hedged as
    /// configured. Answers that arrive after the winner go to `extras`.
    pub async fn generate(&self, body: Rope, extras: Option<ExtraAnswerSink>) -> Result<(Answer, KeyId), ApiError> {
        if self.hedge.initial <= 1 && self.hedge.increase == 0 {
            return self.generate_one_at_a_time(body).await;
        }
        let mut attempts = Attempts::default();
        let mut last_empty: Option<(Answer, KeyId)> = None;
        let mut width = self.hedge.initial.max(1);
        let (sender, mut receiver) = mpsc::unbounded_channel::<CallReport>();
        let mut running: Vec<RunningCall> = Vec::new();
        let mut next_number = 0u64;
        loop {
            if running.is_empty() {
                if let Some(error) = self.stop_before_attempt(&attempts) {
                    return Err(error);
                }
            }
            while (running.len() as u32) < width && attempts.attempts < self.budget.max_attempts {
                let lease = if running.is_empty() {
                    self.next_key(&mut attempts).await?
                } else {
                    // Widening a round: only a key free right now and not yet
                    // tried; no waiting while answers may be arriving.
                    match self.pool().pick(&self.pool_model, self.state.now_ms(), &attempts.tried) {
                        Ok(lease) if self.hold_quota(&lease).await => lease,
                        _ => break,
                    }
                };
                attempts.tried.push(lease.id);
                attempts.attempts += 1;
                next_number += 1;
                let body = self.body_for(&mut attempts, &body);
                running.push(self.spawn_call(next_number, lease, body, &sender, extras.clone()));
            }
            if running.is_empty() {
                return Err(attempts.exhausted_error());
            }
            // Every task reports exactly once (its guard reports a task that
            // died), and `sender` is held here, so this never ends early.
            let report = match tokio::time::timeout_at(self.deadline, receiver.recv()).await {
                Ok(Some(report)) => report,
                Ok(None) => return Err(ApiError::Internal),
                Err(_) => {
                    self.detach(running, &mut receiver, extras.as_ref());
                    return Err(self.deadline_error(&attempts));
                }
            };
            running.retain(|call| call.number != report.number);
            if let Settled::Done(outcome) = self.settle(&mut attempts, &mut last_empty, report.key, report.result) {
                let extras = if outcome.is_ok() { extras.as_ref() } else { None };
                self.detach(running, &mut receiver, extras);
                return outcome;
            }
            if running.is_empty() && attempts.last_failure.is_some() {
                width = (width + self.hedge.increase).min(self.hedge.max.max(1));
                self.back_off(&attempts).await;
            }
        }
    }

    /// The error that ends a generation before its next attempt: the
    /// deadline passed, or every client waiting for it left.
    fn stop_before_attempt(&self, attempts: &Attempts) -> Option<ApiError> {
        if self.past_deadline() {
            return Some(self.deadline_error(attempts));
        }
        if attempts.attempts > 0 && self.still_wanted.as_ref().is_some_and(|wanted| !wanted()) {
            log::info!(target: self.log_target(), "every client left; no further attempts model={}", crate::secret::LogSafe(&self.pool_model));
            return Some(attempts.exhausted_error());
        }
        None
    }

    /// What one finished call means for its generation: done (an answer,
    /// or an error — or, when every attempt came back empty and the
    /// client reads empty answers itself, the last empty one), or try
    /// again.
    fn settle(
        &self,
        attempts: &mut Attempts,
        last_empty: &mut Option<(Answer, KeyId)>,
        key: KeyId,
        result: CallResult,
    ) -> Settled {
        let carry_on = match result {
            CallResult::Answer(answer) => return Settled::Done(Ok((answer, key))),
            CallResult::Empty(answer) => {
                *last_empty = Some((answer, key));
                self.after_empty(attempts, key)
            }
            CallResult::Failed(failure) => self.after_failure(attempts, failure),
        };
        match carry_on {
            Ok(()) => Settled::Retry,
            Err(error) => Settled::Done(match last_empty.take() {
                Some(empty) if self.keep_empty_answer && attempts.last_failure.is_none() => Ok(empty),
                _ => Err(error),
            }),
        }
    }

    /// `generate` without hedging (the default): one call at a time, run
    /// in this task — no task, channel or guard per attempt.
    async fn generate_one_at_a_time(&self, body: Rope) -> Result<(Answer, KeyId), ApiError> {
        let mut attempts = Attempts::default();
        let mut last_empty: Option<(Answer, KeyId)> = None;
        loop {
            if let Some(error) = self.stop_before_attempt(&attempts) {
                return Err(error);
            }
            if attempts.attempts >= self.budget.max_attempts {
                return Err(attempts.exhausted_error());
            }
            let lease = self.next_key(&mut attempts).await?;
            let key = lease.id;
            attempts.tried.push(key);
            attempts.attempts += 1;
            let body = self.body_for(&mut attempts, &body);
            let result = match tokio::time::timeout_at(self.deadline, self.call_once(lease, body)).await {
                Ok(result) => result,
                Err(_) => return Err(self.deadline_error(&attempts)),
            };
            if let Settled::Done(outcome) = self.settle(&mut attempts, &mut last_empty, key, result) {
                return outcome;
            }
            self.back_off(&attempts).await;
        }
    }

    fn spawn_call(
        &self,
        number: u64,
        lease: Lease,
        body: Rope,
        sender: &mpsc::UnboundedSender<CallReport>,
        extras: Option<ExtraAnswerSink>,
    ) -> RunningCall {
        let key = lease.id;
        let in_background = Rc::new(Cell::new(false));
        let mut guard = CallGuard {
            sender: Some(sender.clone()),
            number,
            key,
            in_background: in_background.clone(),
            state: self.state.clone(),
        };
        let relay = self.clone();
        let handle = actix_web::rt::spawn(async move {
            let result = relay.call_once(lease, body).await;
            if let Some(sender) = guard.sender.take() {
                if let Err(mpsc::error::SendError(late)) = sender.send(CallReport { number, key, result }) {
                    // The client was answered already: keep a good late answer.
                    if let (CallResult::Answer(answer), Some(sink)) = (late.result, extras) {
                        sink(Arc::new(answer));
                    }
                }
            }
        });
        RunningCall { number, handle, in_background }
    }

    /// After the winner: calls already finished feed `extras`; calls still
    /// running may finish in the background (bounded), or are cancelled.
    fn detach(
        &self,
        running: Vec<RunningCall>,
        receiver: &mut mpsc::UnboundedReceiver<CallReport>,
        extras: Option<&ExtraAnswerSink>,
    ) {
        let mut still_running = running;
        while let Ok(report) = receiver.try_recv() {
            still_running.retain(|call| call.number != report.number);
            if let (CallResult::Answer(answer), Some(sink)) = (report.result, extras) {
                sink(Arc::new(answer));
            }
        }
        let background = &self.state.background_calls;
        for call in still_running {
            if extras.is_some() && background.fetch_add(1, Ordering::Relaxed) < MAX_BACKGROUND_CALLS {
                // Finishes on its own; its guard gives the slot back.
                call.in_background.set(true);
                continue;
            }
            if extras.is_some() {
                background.fetch_sub(1, Ordering::Relaxed);
            }
            call.handle.abort();
        }
    }

    /// Opens `streamGenerateContent` until some key answers 200.
    pub async fn open_stream(&self, body: &Rope, attempts: &mut Attempts) -> Result<(OpenStream, KeyId), ApiError> {
        loop {
            if attempts.attempts >= self.budget.max_attempts {
                return Err(attempts.exhausted_error());
            }
            if self.past_deadline() {
                return Err(self.deadline_error(attempts));
            }
            self.back_off(attempts).await;
            let lease = self.next_key(attempts).await?;
            attempts.tried.push(lease.id);
            attempts.attempts += 1;
            let body = self.body_for(attempts, body);
            let open = async {
                let credential = self.resolve(&lease).await?;
                self.client.stream_generate_content(credential.as_call(), &self.target, body).await
            };
            let opened = match tokio::time::timeout_at(self.deadline, open).await {
                Ok(opened) => opened,
                Err(_) => return Err(self.deadline_error(attempts)),
            };
            match opened {
                Ok(stream) => return Ok((stream, lease.id)),
                Err(failure) => self.after_stream_failure(attempts, lease.id, failure)?,
            }
        }
    }

    /// A stream that failed (before producing output, so it may be retried).
    pub fn after_stream_failure(
        &self,
        attempts: &mut Attempts,
        key: KeyId,
        failure: UpstreamFailure,
    ) -> Result<(), ApiError> {
        self.record_failure(key, &failure);
        self.after_failure(attempts, failure)
    }
}
