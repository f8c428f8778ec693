//! Logging setup and the per-request access log (§13): one `info` line per
//! request with method, path without the query string (it may carry a
//! key), status, latency and — for generations — the door, the model
//! (and the alias target), the delivery mode and the key id. The same
//! wrapper (part of `startup`'s one middleware) turns a panic inside a
//! handler into a 500 answer, so one bad request never takes a worker
//! down.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use futures_util::FutureExt;

use crate::delivery::RequestNote;
use crate::error::ApiError;
use crate::secret::LogSafe;
use crate::state::AppState;
use crate::stats::Outcome;

/// Logging for tests: the same ring, with stderr output captured by the
/// test harness.
pub fn init_logging_for_tests() {
    install_logger(crate::log_ring::Sink::TestCapture);
}

/// The process's logging: stderr lines in batches, so a panic's message
/// (written by the panic hook straight to stderr) first lets the lines
/// logged before it out, and [`flush_logs`] does at exit.
pub fn init_logging() {
    install_logger(crate::log_ring::Sink::Stderr);
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush_logs();
        report(info);
    }));
}

/// Writes the log lines still waiting for their batch (before the
/// process exits).
pub fn flush_logs() {
    log::logger().flush();
}

fn install_logger(sink: crate::log_ring::Sink) {
    let env = env_logger::Env::default().filter_or("RUST_LOG", "info");
    let filter = env_logger::Builder::from_env(env).build();
    let max_level = filter.filter();
    let logger = crate::log_ring::RingLogger::new(filter, std::sync::Arc::clone(crate::log_ring::global()), sink);
    // Already set (a second app in the same process): keep the first.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Around `call` (the rest of the request's way): the access line, the
/// metrics and the request log, and a panic on the way as a 500.
pub async fn access_log<Fut>(
    request: ServiceRequest,
    call: impl FnOnce(ServiceRequest) -> Fut,
) -> Result<ServiceResponse<BoxBody>, Error>
where
    Fut: Future<Output = Result<ServiceResponse<BoxBody>, Error>>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let state = request.app_data::<actix_web::web::Data<AppState>>().cloned();
    let is_generation = calls_upstream(&method, &path);
    let _active = is_generation.then(|| state.as_ref().map(|state| state.stats.track_active()));
    // No clone of the request may be held here: routing needs it unique.
    let mut outcome = AssertUnwindSafe(call(request)).catch_unwind().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (status, note, route, authenticated) = match &mut outcome {
        Ok(Ok(response)) => {
            // The note is for this middleware alone: taken, not copied.
            let note = response.response_mut().extensions_mut().remove::<RequestNote>();
            (
                response.status().as_u16(),
                note,
                response.request().match_pattern(),
                response.request().extensions().contains::<crate::auth::Authenticated>(),
            )
        }
        Ok(Err(error)) => (error.as_response_error().status_code().as_u16(), None, None, false),
        Err(_) => (500, None, None, false),
    };
    // The Log page files API requests under "studio" and dashboard ones
    // under "dashboard" (by target), everything else under "system".
    let target = match &state {
        Some(state) if is_dashboard_path(&path, &state.config().dashboard_prefix) => "hajimi::dashboard::access",
        _ if note.as_ref().is_some_and(|note| note.vertex) => "hajimi::vertex::access",
        _ if crate::delivery::is_api_path(&path) => "hajimi::routes::access",
        _ => "hajimi::telemetry",
    };
    match (&outcome, &note) {
        (Err(_), _) => {
            log::error!(target: target, "{method} {} 500 {}ms: the handler panicked", LogSafe(&path), Tenths(latency_ms))
        }
        (_, Some(note)) => log::info!(
            target: target,
            "{method} {} {status} {}ms model={}{} door={} mode={} key={}",
            // The path and model are the client's text: escaped and cut.
            LogSafe(&path),
            Tenths(latency_ms),
            LogSafe(&note.model),
            note.alias.as_ref().map(|alias| format!(" served={}", LogSafe(&alias.target))).unwrap_or_default(),
            note.door.as_str(),
            note.mode,
            KeyOrDash(note.key)
        ),
        _ => log::info!(target: target, "{method} {} {status} {}ms", LogSafe(&path), Tenths(latency_ms)),
    }
    if let Some(state) = &state {
        // An aliased request is counted under the Gemini model that served
        // it, and by its alias pattern (both the operator's words).
        let counted = note.as_ref().map(|note| note.alias.as_ref().map_or(note.model.as_str(), |alias| &alias.target));
        let model = counted.map(|model| (model, state.catalog.knows(model, &state.config())));
        state.metrics.observe_request(route.as_deref(), model, status, latency_ms / 1000.0);
        if let Some(alias) = note.as_ref().and_then(|note| note.alias.as_ref()) {
            state.metrics.aliased_request(&alias.pattern, counted.unwrap_or_default());
        }
        if note.as_ref().is_some_and(|note| note.mode == crate::delivery::Mode::Cache) && status < 300 {
            state.metrics.cache_hit();
        }
    }
    if let (true, Some(state)) = (is_generation, &state) {
        state.stats.record(outcome_of(status, note.as_ref()), 0, 0, state.now_ms());
        // Anonymous requests are counted, never recorded: a stranger's
        // junk must not grow the database.
        if authenticated {
            record_generation(state, &method, route, status, latency_ms, note.as_ref());
        }
    }
    match outcome {
        Ok(result) => result,
        Err(_panic) => Err(ApiError::Internal.into()),
    }
}

/// The id of the key that answered, or `-`.
struct KeyOrDash(Option<crate::keys::KeyId>);

impl std::fmt::Display for KeyOrDash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(key) => key.fmt(formatter),
            None => formatter.write_str("-"),
        }
    }
}

/// A non-negative number with one decimal (`0.8`), as `{:.1}` writes it
/// but without the float formatter's exact-digit machinery (the access
/// line of every request carries one).
struct Tenths(f64);

impl std::fmt::Display for Tenths {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 * 10.0).round();
        if !(0.0..1e15).contains(&tenths) {
            return write!(formatter, "{:.1}", self.0);
        }
        let tenths = tenths as u64;
        write!(formatter, "{}.{}", tenths / 10, tenths % 10)
    }
}

/// Characters of a model name the request log keeps.
const MAX_RECORDED_MODEL_CHARS: usize = 128;

/// The request log's model: the client's name, and the Gemini model an
/// alias served it with (`claude-sonnet-4-5 → gemini-2.5-pro`).
fn recorded_model(note: &RequestNote) -> String {
    let requested = bounded_text(&note.model, MAX_RECORDED_MODEL_CHARS);
    match &note.alias {
        Some(alias) => format!("{requested} → {}", bounded_text(&alias.target, MAX_RECORDED_MODEL_CHARS)),
        None => requested,
    }
}

/// Client text for a stored record: control characters escaped, cut.
fn bounded_text(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut escaper = crate::secret::Escaper::new(&mut out, max_chars);
    let _ = std::fmt::Write::write_str(&mut escaper, text);
    let _ = escaper.finish();
    out
}

/// Requests that use the pool: counted on the Overview and in the request
/// log (chat, Anthropic messages and their token counts, a new response,
/// embeddings, and every native `models/…:action`).
fn calls_upstream(method: &actix_web::http::Method, path: &str) -> bool {
    path.ends_with("/chat/completions")
        || path.ends_with("/v1/messages")
        || path.ends_with("/v1/messages/count_tokens")
        || (path == "/v1/responses" && method == actix_web::http::Method::POST)
        || path.ends_with("/embeddings")
        || (crate::delivery::is_api_path(path) && path.rsplit('/').next().is_some_and(|last| last.contains(':')))
}

fn is_dashboard_path(path: &str, prefix: &str) -> bool {
    !crate::delivery::is_api_path(path)
        && !matches!(path, "/health" | "/ready")
        && (prefix.is_empty() || path.starts_with(prefix))
}

/// How a generation request ended, for the Overview's counters.
fn outcome_of(status: u16, note: Option<&RequestNote>) -> Outcome {
    match (error_kind(status), note.map(|note| note.mode)) {
        (Some(kind), _) => Outcome::Failure(kind.to_owned()),
        (None, Some(crate::delivery::Mode::Cache)) => Outcome::CacheHit,
        (None, _) => Outcome::Success,
    }
}

fn error_kind(status: u16) -> Option<&'static str> {
    match status {
        200..=299 => None,
        401 | 403 => Some("auth"),
        408 | 413 => Some("client"),
        429 => Some("rate_limited"),
        400..=499 => Some("client"),
        503 => Some("busy"),
        _ => Some("upstream"),
    }
}

/// Keeps an authenticated generation request's metadata for the request
/// log (§10): time, route *pattern* (not the client's path), model (cut,
/// control characters escaped), key id, status, latency, error kind —
/// never content, never a key.
fn record_generation(
    state: &AppState,
    method: &actix_web::http::Method,
    route: Option<String>,
    status: u16,
    latency_ms: f64,
    note: Option<&RequestNote>,
) {
    let error_kind = error_kind(status);
    state.store.send(crate::store::Change::Request(crate::store::RequestRecord {
        at_ms: state.now_ms(),
        method: clipped(method.as_str().into(), 16),
        // The pattern actix made for this request is taken over, not copied.
        route: clipped(route.map_or(Cow::Borrowed("(unmatched)"), Cow::Owned), 128),
        model: note.map(recorded_model).unwrap_or_default(),
        key_id: note.and_then(|note| note.key).map(|key| key.0),
        status,
        latency_ms: latency_ms as u64,
        prompt_tokens: 0,
        completion_tokens: 0,
        error_kind: error_kind.map(str::to_owned),
    }));
}

/// At most `max_chars` characters of `text`: an owned text is cut in place,
/// a borrowed one copied at once (neither collected one character at a
/// time).
fn clipped(text: Cow<'_, str>, max_chars: usize) -> String {
    let end = if text.len() <= max_chars {
        text.len() // no more characters than bytes
    } else {
        text.char_indices().nth(max_chars).map_or(text.len(), |(at, _)| at)
    };
    match text {
        Cow::Owned(mut owned) => {
            owned.truncate(end);
            owned
        }
        Cow::Borrowed(borrowed) => borrowed[..end].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_written_with_one_decimal_like_the_float_formatter() {
        for (latency_ms, written) in [(0.0, "0.0"), (0.84, "0.8"), (0.96, "1.0"), (12.31, "12.3"), (1234.56, "1234.6")]
        {
            assert_eq!(Tenths(latency_ms).to_string(), written);
            assert_eq!(format!("{latency_ms:.1}"), written);
        }
        assert_eq!(Tenths(f64::NAN).to_string(), "NaN");
        assert_eq!(Tenths(1e20).to_string(), format!("{:.1}", 1e20));
    }

    #[test]
    fn the_access_line_names_the_key_by_its_id_or_a_dash() {
        assert_eq!(KeyOrDash(Some(crate::keys::KeyId(7))).to_string(), "#7");
        assert_eq!(KeyOrDash(None).to_string(), "-");
    }

    #[test]
    fn clipped_text_keeps_whole_characters() {
        for (text, max_chars) in
            [("", 3), ("POST", 16), ("POST", 4), ("POST", 2), ("模型名称", 2), ("a模b", 3), ("é", 0)]
        {
            let expected = text.chars().take(max_chars).collect::<String>();
            assert_eq!(clipped(Cow::Borrowed(text), max_chars), expected);
            assert_eq!(clipped(Cow::Owned(text.to_owned()), max_chars), expected);
        }
    }
}
