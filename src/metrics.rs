//! `GET /metrics` (§13): counters, histograms and pool gauges in the
//! Prometheus text format (version 0.0.4), encoded by `prometheus-client`.
//!
//! [`Metrics`] lives in `AppState`. Requests, upstream calls and stream
//! events are recorded as they happen (`observe_*`, `failure`, …); the
//! gauges (keys per pool and state, cooling keys per reason, swipe-cache
//! entries, requests in flight) are computed from the state at scrape time
//! by [`Metrics::render`].
//!
//! Labels never carry a secret: routes are the route table's patterns
//! (never a raw path, which may carry a key in a query string), statuses
//! are numbers, failure kinds and services are fixed names, and model names
//! (which come from clients) are labelled only when they name a model of
//! the served lists (`ModelCatalog::knows`; any other name is `other`, so
//! invented names cannot take the labels real models need); they pass
//! through `redact_keys`, are cut to [`MAX_MODEL_LABEL_CHARS`] and capped
//! at [`MAX_MODEL_LABELS`] distinct values (later ones are `other` too).
//!
//! The route and who may read it: `routes::metrics`.

use std::collections::HashSet;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::gemini::client::Service;
use crate::gemini::error::FailureKind;
use crate::keys::penalty::CoolingReason;
use crate::keys::{KeyPool, KeyState, ModelAvailability};

/// The `Content-Type` of what [`Metrics::render`] produces.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// Characters of a model name kept in a label.
pub const MAX_MODEL_LABEL_CHARS: usize = 64;
/// Distinct model label values; further models are counted as [`OTHER`].
pub const MAX_MODEL_LABELS: usize = 50;
/// The label value for unmatched routes and models past the cap.
pub const OTHER: &str = "other";

/// Request durations (to the response head; streams go on after it).
const REQUEST_BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// One non-streaming upstream call, whatever its outcome.
const UPSTREAM_BUCKETS: [f64; 13] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
/// From the start of a real stream to its first content sent to the client.
const FIRST_TOKEN_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];

const POOLS: [(&str, PoolOf); 3] =
    [("studio", PoolOf::Studio), ("vertex_express", PoolOf::VertexExpress), ("vertex_account", PoolOf::VertexAccount)];
const KEY_STATES: [&str; 5] = ["active", "cooling", "exhausted", "invalid", "disabled"];
const COOLING_REASONS: [CoolingReason; 3] =
    [CoolingReason::PerMinuteQuota, CoolingReason::RateLimited, CoolingReason::ServerError];

#[derive(Clone, Copy)]
enum PoolOf {
    Studio,
    VertexExpress,
    VertexAccount,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    model: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AliasLabels {
    alias: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CoolingLabels {
    pool: &'static str,
    reason: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The registry and every metric in it. `Send + Sync`: one instance is
/// shared by all workers.
/// What the gauges show, read from the state at scrape time.
pub struct Now<'a> {
    pub now_ms: u64,
    pub studio: &'a KeyPool,
    pub vertex_express: &'a KeyPool,
    pub vertex_accounts: &'a KeyPool,
    pub swipe_cache_entries: usize,
    pub active_requests: usize,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    aliased: Family<AliasLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    upstream_latency: HistogramFamily<ServiceLabels>,
    first_token: HistogramFamily<ServiceLabels>,
    upstream_failures: Family<KindLabels, Counter>,
    empty_answers: Counter,
    truncated_streams: Counter,
    cache_hits: Counter,
    keys: Family<KeyLabels, Gauge>,
    cooling_keys: Family<CoolingLabels, Gauge>,
    swipe_cache_entries: Gauge,
    active_requests: Gauge,
    /// Model label values handed out so far (at most [`MAX_MODEL_LABELS`]).
    models: Mutex<HashSet<String>>,
    /// One scrape at a time updates the gauges and encodes.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn upstream_histogram() -> Histogram {
    Histogram::new(UPSTREAM_BUCKETS)
}

fn first_token_histogram() -> Histogram {
    Histogram::new(FIRST_TOKEN_BUCKETS)
}

/// The `service` label of an upstream service.
pub fn service_label(service: Service) -> &'static str {
    match service {
        Service::Studio => "studio",
        Service::VertexExpress => "vertex_express",
        Service::VertexAccount => "vertex_account",
    }
}

/// The `reason` label of a cooldown.
pub fn cooling_reason_label(reason: CoolingReason) -> &'static str {
    match reason {
        CoolingReason::PerMinuteQuota => "per_minute_quota",
        CoolingReason::RateLimited => "rate_limited",
        CoolingReason::ServerError => "server_error",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "hajimi_requests",
            "Requests answered, by route pattern (\"other\" when no route matched), model as the client named it, and HTTP status",
            requests.clone(),
        );
        let aliased = Family::<AliasLabels, Counter>::default();
        registry.register(
            "hajimi_aliased_requests",
            "Requests whose model name matched a MODEL_ALIASES pattern, by pattern and the Gemini model that served them",
            aliased.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> = Family::new_with_constructor(request_histogram);
        registry.register(
            "hajimi_request_duration_seconds",
            "Time from a request's arrival to its response head (a stream's body goes on after it)",
            request_duration.clone(),
        );
        let upstream_latency: HistogramFamily<ServiceLabels> = Family::new_with_constructor(upstream_histogram);
        registry.register(
            "hajimi_upstream_latency_seconds",
            "Duration of one non-streaming upstream call, whatever its outcome",
            upstream_latency.clone(),
        );
        let first_token: HistogramFamily<ServiceLabels> = Family::new_with_constructor(first_token_histogram);
        registry.register(
            "hajimi_time_to_first_token_seconds",
            "Time from the start of a real stream to the first content sent to the client",
            first_token.clone(),
        );
        let upstream_failures = Family::<KindLabels, Counter>::default();
        registry.register(
            "hajimi_upstream_failures",
            "Failed upstream calls, by classified kind",
            upstream_failures.clone(),
        );
        let empty_answers = Counter::default();
        registry.register("hajimi_empty_answers", "Upstream answers without content", empty_answers.clone());
        let truncated_streams = Counter::default();
        registry.register(
            "hajimi_truncated_streams",
            "Streams cut off after content was sent (ended with an error event)",
            truncated_streams.clone(),
        );
        let cache_hits = Counter::default();
        registry.register("hajimi_cache_hits", "Requests answered from the swipe cache", cache_hits.clone());
        let keys = Family::<KeyLabels, Gauge>::default();
        registry.register(
            "hajimi_keys",
            "Keys per pool: active (neither invalid nor disabled), invalid, disabled; cooling and exhausted count the \
             active keys cooling or exhausted for at least one model (exhausted first), as the dashboard's \
             \"limited for some model\"",
            keys.clone(),
        );
        let cooling_keys = Family::<CoolingLabels, Gauge>::default();
        registry.register(
            "hajimi_cooling_keys",
            "Active keys cooling for at least one model, by pool and reason (a key may count under several reasons)",
            cooling_keys.clone(),
        );
        let swipe_cache_entries = Gauge::default();
        registry.register(
            "hajimi_swipe_cache_entries",
            "Spare answers in the swipe cache",
            swipe_cache_entries.clone(),
        );
        let active_requests = Gauge::default();
        registry.register(
            "hajimi_active_requests",
            "Generation requests in flight, until their response head (as on the dashboard's Overview)",
            active_requests.clone(),
        );
        Metrics {
            registry,
            requests,
            aliased,
            request_duration,
            upstream_latency,
            first_token,
            upstream_failures,
            empty_answers,
            truncated_streams,
            cache_hits,
            keys,
            cooling_keys,
            swipe_cache_entries,
            active_requests,
            models: Mutex::default(),
            scrape: Mutex::new(()),
        }
    }

    /// One answered request: `route` is the matched route pattern (`None`
    /// when no route matched), `model` the model as the client named it
    /// (from the `RequestNote`, when there is one) and whether it is a
    /// model of the served lists (others are counted as `other`).
    pub fn observe_request(&self, route: Option<&str>, model: Option<(&str, bool)>, status: u16, seconds: f64) {
        let route = match route {
            Some(route) if !route.is_empty() => route.to_owned(),
            _ => OTHER.to_owned(),
        };
        let model = match model {
            Some((model, true)) => self.model_label(model),
            Some((_, false)) => OTHER.to_owned(),
            None => String::new(),
        };
        self.request_duration.get_or_create(&RouteLabels { route: route.clone() }).observe(seconds);
        self.requests.get_or_create(&RequestLabels { route, model, status }).inc();
    }

    /// One request served under a `MODEL_ALIASES` pair. Both labels are
    /// the operator's text (a pattern, its target), cut short: the series
    /// are as many as the configured pairs.
    pub fn aliased_request(&self, pattern: &str, target: &str) {
        let alias: String = pattern.chars().take(MAX_MODEL_LABEL_CHARS).collect();
        let model = self.model_label(target);
        self.aliased.get_or_create(&AliasLabels { alias, model }).inc();
    }

    /// One non-streaming upstream call took `seconds`.
    pub fn observe_upstream(&self, service: Service, seconds: f64) {
        self.upstream_latency.get_or_create(&ServiceLabels { service: service_label(service) }).observe(seconds);
    }

    /// Awaits one upstream call and observes how long it took (a call
    /// cancelled before it ends is not observed).
    pub async fn time_upstream<T>(&self, service: Service, call: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let result = call.await;
        self.observe_upstream(service, started.elapsed().as_secs_f64());
        result
    }

    /// A real stream sent its first content `seconds` after it started.
    pub fn observe_first_token(&self, service: Service, seconds: f64) {
        self.first_token.get_or_create(&ServiceLabels { service: service_label(service) }).observe(seconds);
    }

    pub fn failure(&self, kind: FailureKind) {
        self.upstream_failures.get_or_create(&KindLabels { kind: kind.as_str() }).inc();
    }

    pub fn empty_answer(&self) {
        self.empty_answers.inc();
    }

    pub fn truncated_stream(&self) {
        self.truncated_streams.inc();
    }

    pub fn cache_hit(&self) {
        self.cache_hits.inc();
    }

    /// The label value for a client's model name: keys and registered
    /// secrets masked, cut short, and `other` once
    /// [`MAX_MODEL_LABELS`] distinct values were handed out.
    fn model_label(&self, model: &str) -> String {
        let redacted = crate::secret::redact_keys(model);
        let label: String = redacted.chars().take(MAX_MODEL_LABEL_CHARS).collect();
        let mut models = self.models.lock();
        if models.contains(&label) {
            return label;
        }
        if models.len() < MAX_MODEL_LABELS {
            models.insert(label.clone());
            return label;
        }
        OTHER.to_owned()
    }

    /// The metrics in the Prometheus text format, the gauges computed from
    /// `state` now.
    pub fn render(&self, now: &Now<'_>) -> String {
        let _one_scrape_at_a_time = self.scrape.lock();
        for (label, which) in POOLS {
            let pool = match which {
                PoolOf::Studio => now.studio,
                PoolOf::VertexExpress => now.vertex_express,
                PoolOf::VertexAccount => now.vertex_accounts,
            };
            self.set_pool_gauges(label, pool, now.now_ms);
        }
        self.swipe_cache_entries.set(gauge_value(now.swipe_cache_entries));
        self.active_requests.set(gauge_value(now.active_requests));
        let mut out = String::with_capacity(16 * 1024);
        if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry) {
            // Writing to a String does not fail; a label encoder could.
            log::error!("metrics could not be encoded: {error}");
        }
        out
    }

    fn set_pool_gauges(&self, pool_label: &'static str, pool: &KeyPool, now_ms: u64) {
        let summary = pool.summary(now_ms);
        let limited = limited_keys(pool, summary.limited_for_some_model, now_ms);
        for state in KEY_STATES {
            let count = match state {
                "active" => summary.active,
                "cooling" => limited.cooling,
                "exhausted" => limited.exhausted,
                "invalid" => summary.invalid,
                _ => summary.disabled,
            };
            self.keys.get_or_create(&KeyLabels { pool: pool_label, state }).set(gauge_value(count));
        }
        for (reason, count) in COOLING_REASONS.iter().zip(limited.by_reason) {
            let labels = CoolingLabels { pool: pool_label, reason: cooling_reason_label(*reason) };
            self.cooling_keys.get_or_create(&labels).set(gauge_value(count));
        }
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Active keys limited for some model, split as the gauges show them.
#[derive(Debug, Default, PartialEq, Eq)]
struct LimitedKeys {
    /// Cooling for some model, exhausted for none.
    cooling: usize,
    /// Exhausted today for some model.
    exhausted: usize,
    /// Cooling for some model, by [`COOLING_REASONS`].
    by_reason: [usize; 3],
}

/// Looks at the limited keys only (none in a healthy pool), one key view
/// at a time, so the pool's lock is never held for long.
fn limited_keys(pool: &KeyPool, limited_for_some_model: usize, now_ms: u64) -> LimitedKeys {
    let mut limited = LimitedKeys::default();
    if limited_for_some_model == 0 {
        return limited;
    }
    let ids = pool.find_ids(|_, _, state, is_limited| is_limited && *state == KeyState::Active, now_ms);
    for id in ids {
        let Some(view) = pool.key_view(id, now_ms) else { continue };
        let mut exhausted = false;
        let mut cooling = false;
        let mut reasons = [false; 3];
        for model in &view.models {
            match model.availability {
                ModelAvailability::ExhaustedToday { .. } => exhausted = true,
                ModelAvailability::Cooling { reason, .. } => {
                    cooling = true;
                    if let Some(index) = COOLING_REASONS.iter().position(|known| *known == reason) {
                        reasons[index] = true;
                    }
                }
                ModelAvailability::Ready | ModelAvailability::OverDailyLimit { .. } => {}
            }
        }
        if exhausted {
            limited.exhausted += 1;
        } else if cooling {
            limited.cooling += 1;
        }
        for (count, present) in limited.by_reason.iter_mut().zip(reasons) {
            *count += usize::from(present);
        }
    }
    limited
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(metrics: &Metrics, name: &str) -> Vec<String> {
        let empty = KeyPool::default();
        let now = Now {
            now_ms: 0,
            studio: &empty,
            vertex_express: &empty,
            vertex_accounts: &empty,
            swipe_cache_entries: 0,
            active_requests: 0,
        };
        metrics.render(&now).lines().filter(|line| line.starts_with(name)).map(str::to_owned).collect()
    }

    #[test]
    fn counters_get_their_total_suffix_once() {
        let metrics = Metrics::new();
        metrics.failure(FailureKind::QuotaPerMinute);
        metrics.failure(FailureKind::QuotaPerMinute);
        metrics.empty_answer();
        assert_eq!(
            lines_of(&metrics, "hajimi_upstream_failures_total{"),
            ["hajimi_upstream_failures_total{kind=\"quota_per_minute\"} 2"]
        );
        assert_eq!(lines_of(&metrics, "hajimi_empty_answers_total "), ["hajimi_empty_answers_total 1"]);
    }

    #[test]
    fn unmatched_routes_are_other_and_model_labels_are_bounded_and_redacted() {
        let metrics = Metrics::new();
        metrics.observe_request(None, None, 404, 0.001);
        let key = format!("AIza{}", "x".repeat(35));
        metrics.observe_request(Some("/v1/chat/completions"), Some((&key, true)), 200, 0.2);
        for n in 0..MAX_MODEL_LABELS + 5 {
            let model = format!("m{n}{}", "y".repeat(100));
            metrics.observe_request(Some("/v1/chat/completions"), Some((&model, true)), 200, 0.2);
        }
        // A model of no list is `other` from the first.
        let fresh = Metrics::new();
        fresh.observe_request(Some("/v1/chat/completions"), Some(("made-up", false)), 404, 0.1);
        assert!(lines_of(&fresh, "hajimi_requests_total{").iter().all(|line| line.contains("model=\"other\"")));
        let requests = lines_of(&metrics, "hajimi_requests_total{");
        assert!(requests.contains(&"hajimi_requests_total{route=\"other\",model=\"\",status=\"404\"} 1".to_owned()));
        assert!(requests.iter().all(|line| !line.contains(&key)), "{requests:?}");
        assert!(requests.iter().any(|line| line.contains("model=\"other\"")));
        // The 404 without a model, MAX_MODEL_LABELS models (the redacted key
        // first), and `other` for the rest.
        assert_eq!(requests.len(), 1 + MAX_MODEL_LABELS + 1);
        let longest = requests.iter().map(|line| line.split('"').nth(3).unwrap_or("").chars().count()).max();
        assert_eq!(longest, Some(MAX_MODEL_LABEL_CHARS));
    }

    #[test]
    fn pool_gauges_cover_every_pool_and_state() {
        let metrics = Metrics::new();
        let keys = lines_of(&metrics, "hajimi_keys{");
        assert_eq!(keys.len(), POOLS.len() * KEY_STATES.len(), "{keys:?}");
        assert!(keys.contains(&"hajimi_keys{pool=\"studio\",state=\"active\"} 0".to_owned()), "{keys:?}");
        let cooling = lines_of(&metrics, "hajimi_cooling_keys{");
        assert_eq!(cooling.len(), POOLS.len() * COOLING_REASONS.len(), "{cooling:?}");
    }

    #[test]
    fn limited_keys_are_split_by_state_and_reason() {
        let now_ms = 1_700_000_000_000;
        let pool = KeyPool::new((0..3).map(|n| crate::secret::ApiKey::new(format!("AIza{n:0>35}"))));
        let failure = |kind| crate::gemini::error::UpstreamFailure {
            kind,
            ..crate::gemini::error::UpstreamFailure::network("test")
        };
        pool.report_failure(crate::keys::KeyId(0), "m", &failure(FailureKind::QuotaPerMinute), now_ms);
        pool.report_failure(crate::keys::KeyId(1), "m", &failure(FailureKind::QuotaPerDay), now_ms);
        let summary = pool.summary(now_ms);
        let limited = limited_keys(&pool, summary.limited_for_some_model, now_ms);
        assert_eq!(limited, LimitedKeys { cooling: 1, exhausted: 1, by_reason: [1, 0, 0] });
        assert_eq!(limited.cooling + limited.exhausted, summary.limited_for_some_model);
    }
}
