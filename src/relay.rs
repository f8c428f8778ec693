//! The retry loop between a converted request and the key pool: pick a key,
//! call the upstream, classify a failure, report it to the pool, and try the
//! next key while that can help — up to `MAX_RETRY_NUM` attempts and
//! `MAX_EMPTY_RESPONSES` empty answers. Client mistakes (Google's 400s for
//! the request itself) go straight back to the client and never penalise a
//! key. This is the only module that combines the pool with the client.

use std::time::Duration;

use actix_web::http::StatusCode;
use bytes::Bytes;

use crate::error::ApiError;
use crate::gemini::client::{GeminiClient, OpenStream};
use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::gemini::types::GenerateContentResponse;
use crate::keys::{KeyId, KeyPool, Unavailable, UnavailableReason};
use crate::openai::response::is_empty_answer;
use crate::state::unix_ms;

/// Longest wait for a cooling key before answering 429 instead.
const MAX_WAIT_FOR_KEY: Duration = Duration::from_secs(5);

/// Limits of one client request's attempts.
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    pub max_attempts: u32,
    pub max_empty_answers: u32,
}

/// Bookkeeping of one client request across attempts (and, for streams,
/// across the re-opens done inside the stream before any output).
#[derive(Debug, Default)]
pub struct Attempts {
    pub tried: Vec<KeyId>,
    pub attempts: u32,
    pub empty_answers: u32,
    pub last_failure: Option<UpstreamFailure>,
}

impl Attempts {
    /// The error for the client once attempts are used up.
    pub fn exhausted_error(&self) -> ApiError {
        match &self.last_failure {
            Some(failure) => failure_to_client_error(failure),
            None if self.empty_answers > 0 => ApiError::UpstreamFailed {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "Gemini returned an empty answer {} times (the prompt may be blocked) / 空响应次数达到上限",
                    self.empty_answers
                ),
            },
            None => ApiError::UpstreamFailed {
                status: StatusCode::BAD_GATEWAY,
                message: "The upstream failed / 上游请求失败".to_owned(),
            },
        }
    }
}

/// A failure as the client sees it, when it is final.
pub fn failure_to_client_error(failure: &UpstreamFailure) -> ApiError {
    match failure.kind {
        FailureKind::ClientError => ApiError::UpstreamRejected {
            status: StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST),
            message: format!("Gemini rejected the request: {}", failure.message),
        },
        FailureKind::ModelNotFound => {
            ApiError::ModelNotFound(format!("Gemini does not know this model: {}", failure.message))
        }
        FailureKind::LocationUnsupported => ApiError::UpstreamFailed {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Gemini refuses requests from this server's region (User location is not supported); \
                      the operator must run hajimi elsewhere or use a relay / 服务器所在地区不受支持"
                .to_owned(),
        },
        FailureKind::QuotaPerDay | FailureKind::QuotaPerMinute | FailureKind::RateLimited => ApiError::NoKeyAvailable {
            message: "Every attempt hit a Gemini rate limit; retry shortly / 请求频率超限，请稍后重试".to_owned(),
            retry_after: failure.retry_after.or(Some(Duration::from_secs(10))),
        },
        FailureKind::KeyInvalid => ApiError::UpstreamFailed {
            status: StatusCode::BAD_GATEWAY,
            message: "Every key tried was refused by Gemini as invalid / API 密钥无效".to_owned(),
        },
        FailureKind::ServerError if failure.status == 504 || failure.status == 0 => ApiError::UpstreamFailed {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: "Gemini did not answer in time / 上游超时".to_owned(),
        },
        FailureKind::ServerError => ApiError::UpstreamFailed {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Gemini is unavailable or overloaded; retry shortly / 上游服务不可用".to_owned(),
        },
    }
}

fn unavailable_error(unavailable: &Unavailable, now_ms: u64) -> ApiError {
    let retry_after = unavailable.retry_at_ms.map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
    ApiError::NoKeyAvailable { message: unavailable.message().to_owned(), retry_after }
}

/// Everything one retry loop needs.
pub struct Relay<'a> {
    pub client: &'a GeminiClient,
    pub pool: &'a KeyPool,
    pub budget: RetryBudget,
    /// The upstream model name (suffixes removed).
    pub model: &'a str,
}

impl Relay<'_> {
    /// A key for the next attempt, waiting briefly when every key is cooling
    /// for only a moment. When every key was already tried, the tried list
    /// is cleared so transient failures can be retried on the same keys.
    async fn next_key(&self, state: &mut Attempts) -> Result<crate::keys::Lease, ApiError> {
        loop {
            let now_ms = unix_ms();
            match self.pool.pick(self.model, now_ms, &state.tried) {
                Ok(lease) => return Ok(lease),
                Err(unavailable) if unavailable.reason == UnavailableReason::AllTried => state.tried.clear(),
                Err(unavailable) => {
                    let wait = unavailable.retry_at_ms.map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
                    match wait {
                        Some(wait)
                            if wait <= MAX_WAIT_FOR_KEY && unavailable.reason == UnavailableReason::AllCooling =>
                        {
                            tokio::time::sleep(wait + Duration::from_millis(5)).await;
                        }
                        _ => return Err(unavailable_error(&unavailable, now_ms)),
                    }
                }
            }
        }
    }

    /// Records a failure; returns the client error if no retry should follow.
    fn on_failure(&self, state: &mut Attempts, key: KeyId, failure: UpstreamFailure) -> Result<(), ApiError> {
        log::warn!(
            "upstream failure model={} key={} status={} kind={} message={:?}",
            self.model,
            key,
            failure.status,
            failure.kind.as_str(),
            failure.message
        );
        self.pool.report_failure(key, self.model, &failure, unix_ms());
        let retry = failure.kind.is_retryable() && state.attempts < self.budget.max_attempts;
        let error = failure_to_client_error(&failure);
        state.last_failure = Some(failure);
        if retry {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// Records an empty answer (not the key's fault: no penalty).
    pub fn on_empty(&self, state: &mut Attempts, key: KeyId) -> Result<(), ApiError> {
        state.empty_answers += 1;
        log::warn!("empty answer model={} key={} count={}", self.model, key, state.empty_answers);
        if state.empty_answers >= self.budget.max_empty_answers || state.attempts >= self.budget.max_attempts {
            state.last_failure = None;
            return Err(state.exhausted_error());
        }
        Ok(())
    }

    /// Non-streaming `generateContent` until a non-empty answer.
    pub async fn generate(&self, body: Bytes) -> Result<(GenerateContentResponse, KeyId), ApiError> {
        let mut state = Attempts::default();
        loop {
            let lease = self.next_key(&mut state).await?;
            state.tried.push(lease.id);
            state.attempts += 1;
            match self.client.generate_content(&lease.key, self.model, body.clone()).await {
                Ok(raw) => match serde_json::from_slice::<GenerateContentResponse>(&raw) {
                    Ok(answer) if is_empty_answer(&answer) => self.on_empty(&mut state, lease.id)?,
                    Ok(answer) => {
                        self.pool.report_success(lease.id, self.model, unix_ms());
                        return Ok((answer, lease.id));
                    }
                    Err(error) => {
                        let failure = UpstreamFailure::network(&format!("unreadable answer: {error}"));
                        self.on_failure(&mut state, lease.id, failure)?;
                    }
                },
                Err(failure) => self.on_failure(&mut state, lease.id, failure)?,
            }
        }
    }

    /// Opens `streamGenerateContent` until some key answers 200.
    pub async fn open_stream(&self, body: &Bytes, state: &mut Attempts) -> Result<(OpenStream, KeyId), ApiError> {
        loop {
            if state.attempts >= self.budget.max_attempts {
                return Err(state.exhausted_error());
            }
            let lease = self.next_key(state).await?;
            state.tried.push(lease.id);
            state.attempts += 1;
            match self.client.stream_generate_content(&lease.key, self.model, body.clone()).await {
                Ok(stream) => return Ok((stream, lease.id)),
                Err(failure) => self.on_failure(state, lease.id, failure)?,
            }
        }
    }

    /// A stream that failed mid-way before producing output (so it may be
    /// retried on another key).
    pub fn on_stream_failure(
        &self,
        state: &mut Attempts,
        key: KeyId,
        failure: UpstreamFailure,
    ) -> Result<(), ApiError> {
        self.on_failure(state, key, failure)
    }

    pub fn on_stream_success(&self, key: KeyId) {
        self.pool.report_success(key, self.model, unix_ms());
    }
}
