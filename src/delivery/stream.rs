//! Streaming deliveries, generic over the client's wire format.
//!
//! - [`pump`] forwards a real upstream stream (`streamGenerateContent?alt=sse`)
//!   event by event; what the upstream has ready at once leaves as one
//!   piece (one chunk, one write). While nothing but
//!   keep-alives has reached the client, a failure, an empty answer or a
//!   cut stream re-opens on another key inside the same response; after
//!   content, the stream ends with the format's error event, never restarted
//!   and never silent.
//! - [`deliver_later`] sends headers at once, keep-alive bytes while the work
//!   runs, then the rendered outcome (fake streaming §5.3, non-stream
//!   keep-alive §5.4, and their native counterparts).
//!
//! The format ([`EventFormat`]) decides every byte the client sees: OpenAI
//! chunks and `[DONE]` ([`crate::delivery::openai`]) or Google's own events
//! ([`crate::delivery::google`]).

use std::task::Poll;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::bodyshare::Rope;
use crate::convert::stream::StreamEnd;
use crate::delivery::outbox::{produced_body, Outbox};
use crate::delivery::relay::{Attempts, Relay};
use crate::error::ApiError;
use crate::gemini::client::OpenStream;
use crate::gemini::error::UpstreamFailure;
use crate::gemini::sse::SseDecoder;
use crate::gemini::types::GenerateContentResponse;
use crate::keys::KeyId;
use crate::secret::LogSafe;

pub use crate::convert::stream::EventFormat;

/// An SSE response's headers (§5.2).
pub fn sse_headers() -> actix_web::HttpResponseBuilder {
    const SSE: HeaderValue = HeaderValue::from_static("text/event-stream; charset=utf-8");
    streamed_headers(SSE)
}

/// A streamed JSON response's headers (non-stream keep-alive, Google's
/// JSON-array stream).
pub fn json_stream_headers() -> actix_web::HttpResponseBuilder {
    const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
    streamed_headers(JSON)
}

/// Tells a buffering reverse proxy (nginx) to pass the stream on as it comes.
pub const X_ACCEL_BUFFERING: header::HeaderName = header::HeaderName::from_static("x-accel-buffering");

/// 200 with `content_type`, never cached, never buffered by a proxy. The
/// values are constants, checked once at compile time (`insert_header`
/// with a `&str` checks every byte of every value, for every stream).
fn streamed_headers(content_type: HeaderValue) -> actix_web::HttpResponseBuilder {
    const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
    const NO: HeaderValue = HeaderValue::from_static("no");
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, NO_CACHE))
        .insert_header((X_ACCEL_BUFFERING, NO));
    builder
}

/// Awaits `work`, sending `keepalive` every `interval` meanwhile.
pub async fn with_keepalive<T>(
    work: impl std::future::Future<Output = T>,
    outbox: &Outbox,
    keepalive: Bytes,
    interval: Duration,
) -> T {
    tokio::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            _ = ticker.tick() => outbox.send(keepalive.clone()).await,
        }
    }
}

/// Headers (from `headers`) at once, `keepalive` every `interval` while
/// `work` runs, then the pieces `render` makes of its outcome. If the
/// client leaves, `work` is dropped (shared generations go on by
/// themselves, see `shared`).
pub fn deliver_later<T: 'static>(
    mut headers: actix_web::HttpResponseBuilder,
    work: impl std::future::Future<Output = T> + 'static,
    keepalive: Bytes,
    interval: Duration,
    render: impl FnOnce(T) -> Vec<Bytes> + 'static,
) -> HttpResponse {
    headers.streaming(produced_body(move |outbox| async move {
        let outcome = with_keepalive(work, &outbox, keepalive, interval).await;
        for piece in render(outcome) {
            outbox.send(piece).await;
        }
    }))
}

/// How one upstream stream ended, when it did not end well.
enum StreamProblem {
    Failed(UpstreamFailure),
    Empty,
}

/// Timing of a pumped stream.
#[derive(Debug, Clone, Copy)]
pub struct PumpTiming {
    /// Keep-alive interval while the upstream is silent.
    pub keepalive_every: Duration,
    /// Silence after which the upstream stream counts as failed.
    pub idle_timeout: Duration,
}

/// Opens the upstream stream (retrying other keys while nothing has been
/// sent, so failures keep their real HTTP status), then returns the
/// response whose body `pump` feeds.
pub async fn open_and_pump<F: EventFormat + 'static>(
    relay: Relay,
    body: Rope,
    mut format: F,
    mut headers: actix_web::HttpResponseBuilder,
    timing: PumpTiming,
) -> Result<(HttpResponse, KeyId), ApiError> {
    let started = std::time::Instant::now();
    let mut attempts = Attempts::default();
    let (upstream, key) = relay.open_stream(&body, &mut attempts).await?;
    let response = headers.streaming(produced_body(move |outbox| async move {
        let opening = format.opening();
        let mut pumping = Pumping { format, relay, key, opening, booked: false };
        pump(&mut pumping, &body, upstream, attempts, started, &outbox, timing).await;
    }));
    Ok((response, key))
}

/// A pumped stream's format, relay and current key. Dropped before the
/// stream's outcome was booked, the client left (actix dropped the body):
/// what the answer used so far still counts against the key.
struct Pumping<F: EventFormat> {
    format: F,
    relay: Relay,
    key: KeyId,
    /// The format's first bytes until they leave, before anything else:
    /// with what the upstream has ready at once, or alone if it has
    /// nothing yet.
    opening: Option<Bytes>,
    /// The key's success or failure is booked: the client leaving during
    /// the last sends (an error event) books nothing more.
    booked: bool,
}

impl<F: EventFormat> Drop for Pumping<F> {
    fn drop(&mut self) {
        if self.booked {
            return;
        }
        log::info!("client left during the stream model={} key={}", LogSafe(&self.relay.pool_model), self.key);
        if self.format.has_output() {
            let (prompt, completion) = self.format.usage();
            self.relay.record_success(self.key, prompt, completion);
        }
    }
}

async fn pump<F: EventFormat>(
    pumping: &mut Pumping<F>,
    body: &Rope,
    mut upstream: OpenStream,
    mut attempts: Attempts,
    started: std::time::Instant,
    outbox: &Outbox,
    timing: PumpTiming,
) {
    let model = pumping.relay.pool_model.clone();
    loop {
        let outcome = forward_events(pumping, &mut upstream, outbox, timing, started).await;
        let Pumping { format, relay, key, booked, .. } = pumping;
        let problem = match outcome {
            Ok(()) => {
                let (prompt, completion) = format.usage();
                relay.record_success(*key, prompt, completion);
                *booked = true;
                return;
            }
            Err(problem) => problem,
        };
        if format.has_output() {
            // Part of the answer is out: never restart it, never end silently.
            let reason = match &problem {
                StreamProblem::Failed(failure) => failure.message.clone(),
                StreamProblem::Empty => "the stream ended early".to_owned(),
            };
            log::warn!("stream truncated model={} key={key}: {}", LogSafe(&model), LogSafe(&reason));
            relay.state.metrics.truncated_stream();
            if let StreamProblem::Failed(failure) = problem {
                // The key still answers for what happened (a 429 mid-stream cools it).
                let _ = relay.after_stream_failure(&mut attempts, *key, failure);
            }
            *booked = true;
            let error = ApiError::UpstreamFailed {
                status: actix_web::http::StatusCode::BAD_GATEWAY,
                message: "The Gemini stream was cut off before the answer finished / 上游流式响应中断".to_owned(),
            };
            outbox.send(format.error_end(&error, true)).await;
            return;
        }
        // Nothing sent yet but keep-alives: another key may do better.
        let empty = matches!(problem, StreamProblem::Empty);
        let retry = match problem {
            StreamProblem::Empty => relay.after_empty(&mut attempts, *key),
            StreamProblem::Failed(failure) => relay.after_stream_failure(&mut attempts, *key, failure),
        };
        let reopened = match retry {
            Ok(()) => relay.open_stream(body, &mut attempts).await,
            Err(error) => Err(error),
        };
        match reopened {
            Ok((next_upstream, next_key)) => {
                upstream = next_upstream;
                *key = next_key;
                format.restart();
            }
            Err(error) => {
                *booked = true;
                let mut out = Vec::new();
                if empty && format.give_up_empty(&mut out) {
                    outbox.send(Bytes::from(out)).await;
                } else {
                    outbox.send(format.error_end(&error, false)).await;
                }
                return;
            }
        }
    }
}

/// Most upstream pieces gathered into one piece for the client.
const MOST_PIECES_GATHERED: usize = 16;
/// Converted bytes past which a gathered piece goes out.
const MOST_BYTES_GATHERED: usize = 64 * 1024;

/// Reads one upstream stream to its end, forwarding what the format makes
/// of each event and sending keep-alives while the upstream is silent.
///
/// What the upstream has ready at once goes to the client as one piece:
/// the upstream's HTTP client yields each of the upstream's chunks apart
/// (one per event, usually) even when one read brought them all, and each
/// piece handed to the client's connection costs a chunk of its own, a
/// pass through the producer and a timer update.
async fn forward_events<F: EventFormat>(
    pumping: &mut Pumping<F>,
    upstream: &mut OpenStream,
    outbox: &Outbox,
    timing: PumpTiming,
    started: std::time::Instant,
) -> Result<(), StreamProblem> {
    let Pumping { format, relay, key, opening, .. } = pumping;
    let key = *key;
    let mut decoder = SseDecoder::default();
    let mut silent_for = Duration::ZERO;
    let interval = timing.keepalive_every;
    // One timer for the whole stream, pushed back after each read (a
    // later deadline only updates the entry; a new timer per read cost a
    // timer-wheel insert and removal each time).
    let silence = tokio::time::sleep(interval);
    tokio::pin!(silence);
    loop {
        let mut out = Vec::new();
        let mut next = if let Some(opening) = opening.take() {
            match poll_now(upstream).await {
                Poll::Ready(next) => {
                    out.extend_from_slice(&opening);
                    next
                }
                Poll::Pending => {
                    outbox.send(opening).await;
                    continue;
                }
            }
        } else {
            tokio::select! {
                biased;
                next = upstream.next() => next,
                () = &mut silence => {
                    silent_for += interval;
                    if silent_for >= timing.idle_timeout {
                        return Err(StreamProblem::Failed(UpstreamFailure::timed_out("the upstream stream went silent")));
                    }
                    outbox.send(format.keepalive()).await;
                    silence.as_mut().reset(tokio::time::Instant::now() + interval);
                    continue;
                }
            }
        };
        silent_for = Duration::ZERO;
        let had_output = format.has_output();
        let mut gathered = 0;
        let outcome = loop {
            let step = match next {
                Some(Ok(bytes)) => {
                    out.reserve(bytes.len() + 256);
                    let fed = decoder.feed_each(&bytes, |payload| push_payload(format, payload, &mut out, relay, key));
                    if fed.is_ok() && decoder.is_oversized() {
                        Err(StreamProblem::Failed(UpstreamFailure::network("oversized upstream stream event")))
                    } else {
                        fed
                    }
                }
                Some(Err(error)) => {
                    Err(StreamProblem::Failed(UpstreamFailure::network(&format!("stream read failed: {error}"))))
                }
                None => break Some(finish_stream(format, &mut decoder, &mut out, relay, key)),
            };
            if let Err(problem) = step {
                break Some(Err(problem));
            }
            gathered += 1;
            if gathered == MOST_PIECES_GATHERED || out.len() >= MOST_BYTES_GATHERED {
                break None;
            }
            match poll_now(upstream).await {
                Poll::Ready(more) => next = more,
                Poll::Pending => break None,
            }
        };
        send_batch(outbox, out).await;
        if !had_output && format.has_output() {
            relay.state.metrics.observe_first_token(relay.target.service, started.elapsed().as_secs_f64());
        }
        if let Some(ended) = outcome {
            return ended;
        }
        silence.as_mut().reset(tokio::time::Instant::now() + interval);
    }
}

/// The upstream's next piece if it is ready now, without waiting (the
/// task's own waker is registered when it is not).
async fn poll_now(upstream: &mut OpenStream) -> Poll<Option<<OpenStream as futures_util::Stream>::Item>> {
    std::future::poll_fn(|cx| Poll::Ready(upstream.poll_next_unpin(cx))).await
}

/// The upstream stream ended: its last event (one without a blank line
/// after it) and the format's end go into `out`.
fn finish_stream<F: EventFormat>(
    format: &mut F,
    decoder: &mut SseDecoder,
    out: &mut Vec<u8>,
    relay: &Relay,
    key: KeyId,
) -> Result<(), StreamProblem> {
    if let Some(last) = decoder.finish() {
        push_payload(format, &last, out, relay, key)?;
    }
    match format.finish(out) {
        Ok(()) => Ok(()),
        Err(StreamEnd::Empty) => Err(StreamProblem::Empty),
        Err(StreamEnd::Truncated) => {
            Err(StreamProblem::Failed(UpstreamFailure::network("the upstream stream ended without a finish reason")))
        }
    }
}

async fn send_batch(outbox: &Outbox, out: Vec<u8>) {
    if !out.is_empty() {
        outbox.send(Bytes::from(out)).await;
    }
}

/// Parses one upstream event and hands it to the format. An error object
/// sent inside the stream is classified like an HTTP error answer.
fn push_payload<F: EventFormat>(
    format: &mut F,
    payload: &str,
    out: &mut Vec<u8>,
    relay: &Relay,
    key: KeyId,
) -> Result<(), StreamProblem> {
    let event = GenerateContentResponse::from_json(payload.as_bytes())
        .map_err(|_| StreamProblem::Failed(UpstreamFailure::network("unparseable upstream stream event")))?;
    let looks_empty = event.candidates.is_empty() && event.prompt_feedback.is_none();
    if looks_empty && payload.contains("\"error\"") {
        let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
        if let Some(error) = value.get("error") {
            let status = error.get("code").and_then(serde_json::Value::as_u64).unwrap_or(500) as u16;
            return Err(StreamProblem::Failed(UpstreamFailure::classify(status, payload.as_bytes())));
        }
    }
    relay.note_signatures(&event, key);
    format.push(&event, payload, out);
    Ok(())
}
