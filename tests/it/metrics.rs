//! `GET /metrics` (§13): only with a dashboard session or the
//! `METRICS_TOKEN` bearer token; the Prometheus text format, checked by a
//! small parser of its own (every line must parse); counters, histograms
//! and the pool gauges agree with what happened; no secret in any line.

use std::collections::BTreeMap;
use std::time::Duration;

use hajimi::secret::Secret;

use crate::dashboard::{login, login_with_setup_code};
use crate::helpers::{chat_body, fixture, spawn_app_with, test_key, Answer, Reply, TestApp, PASSWORD};

const TOKEN: &str = "m-token";

fn with_token(config: &mut hajimi::config::Config) {
    config.metrics_token = Secret::new(TOKEN);
}

/// One sample line: `name{label="value",…} value [timestamp]`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed text exposition (format 0.0.4).
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// The samples named `name` whose labels include every pair of `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| labels.iter().all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect()
    }

    /// The one sample named `name` with exactly these labels' values.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(found.len(), 1, "one sample {name}{labels:?}, found {found:?}");
        found[0].value
    }

    /// The sum over every sample named `name` with these labels.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|sample| sample.value).sum()
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        other => other.parse().map_err(|_| format!("bad value {other:?}")),
    }
}

/// `{a="x",b="y\"z"}` (the braces included) → labels, and what follows.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after_name) = rest.split_once("=\"").ok_or(format!("bad label in {text:?}"))?;
        if !is_name(name) || name.contains(':') {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after_name.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {text:?}")),
                },
                Some((index, '"')) => break index,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated label value in {text:?}")),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice in {text:?}"));
        }
        rest = &after_name[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The family a sample belongs to: its own name, or the histogram's or
/// counter's name it was derived from.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|family| types.get(*family).is_some_and(|kind| kind == "histogram"))
}

/// Parses the whole body; any line that does not parse is an error.
fn parse(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    for (number, line) in text.lines().enumerate() {
        let at = |problem: String| format!("line {}: {problem}: {line:?}", number + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), help) if is_name(name) => {
                    let earlier = exposition.helps.insert(name.to_owned(), help.unwrap_or("").to_owned());
                    if earlier.is_some() {
                        return Err(at("HELP twice".into()));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) if is_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if exposition.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at("TYPE twice".into()));
                    }
                }
                (Some("HELP" | "TYPE"), _, _) => return Err(at("malformed HELP/TYPE".into())),
                _ => {} // other comments are allowed
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let value = parse_value(fields.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
        if let Some(timestamp) = fields.next() {
            timestamp.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing text".into()));
        }
        let family = family_of(name, &exposition.types).ok_or_else(|| at("sample before its TYPE".into()))?;
        if name.ends_with("_bucket") && family != name && !labels.contains_key("le") {
            return Err(at("bucket without le".into()));
        }
        exposition.samples.push(Sample { name: name.to_owned(), labels, value });
    }
    Ok(exposition)
}

async fn scrape(app: &TestApp, headers: &[(&str, &str)]) -> Answer {
    app.get_with("/metrics", headers).await
}

async fn scrape_with_token(app: &TestApp) -> Exposition {
    let answer = scrape(app, &[("authorization", &format!("Bearer {TOKEN}"))]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    parse(&answer.body).unwrap_or_else(|problem| panic!("{problem}\n{}", answer.body))
}

fn assert_refused(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.json()["error"]["message"].is_string(), "{}", answer.body);
    assert!(!answer.body.contains("hajimi_"), "no metrics in a refusal: {}", answer.body);
}

#[actix_web::test]
async fn metrics_need_the_token_and_count_requests_failures_and_keys() {
    let app = spawn_app_with(3, with_token).await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::error(429, "error-429-per-minute.json"),
        _ => Reply::fixture("response-text.json"),
    });
    // The first call hits a per-minute quota; the retry on another key answers.
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.upstream.generation_calls().len(), 2);
    let unknown = app.get("/no-such-route").await;
    assert_eq!(unknown.status, 404);

    assert_refused(&scrape(&app, &[]).await);
    assert_refused(&scrape(&app, &[("authorization", "Bearer wrong-token")]).await);
    // The API key is not the metrics token.
    assert_refused(&scrape(&app, &[("authorization", &format!("Bearer {PASSWORD}"))]).await);

    let answer = scrape(&app, &[("authorization", &format!("Bearer {TOKEN}"))]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let content_type = answer.headers.get("content-type").unwrap().to_str().unwrap();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let metrics = parse(&answer.body).unwrap_or_else(|problem| panic!("{problem}\n{}", answer.body));
    for line in answer.body.lines() {
        for secret in [PASSWORD, TOKEN, "AIzaTestKey", test_key(0).as_str()] {
            assert!(!line.contains(secret), "{secret:?} in {line:?}");
        }
    }
    for (family, kind) in [
        ("hajimi_requests_total", "counter"),
        ("hajimi_request_duration_seconds", "histogram"),
        ("hajimi_upstream_latency_seconds", "histogram"),
        ("hajimi_upstream_failures_total", "counter"),
        ("hajimi_empty_answers_total", "counter"),
        ("hajimi_truncated_streams_total", "counter"),
        ("hajimi_cache_hits_total", "counter"),
        ("hajimi_keys", "gauge"),
        ("hajimi_cooling_keys", "gauge"),
        ("hajimi_swipe_cache_entries", "gauge"),
        ("hajimi_active_requests", "gauge"),
    ] {
        assert_eq!(metrics.types.get(family).map(String::as_str), Some(kind), "{family}");
        assert!(metrics.helps.get(family).is_some_and(|help| !help.is_empty()), "{family} has no HELP");
    }
    // A family without samples yet (no real stream here) is left out.
    assert!(metrics.find("hajimi_time_to_first_token_seconds_count", &[]).is_empty());

    let route = ("route", "/v1/chat/completions");
    assert!(metrics.value("hajimi_requests_total", &[route, ("status", "200"), ("model", "gemini-2.5-flash")]) >= 1.0);
    assert!(metrics.sum("hajimi_requests_total", &[("route", "other"), ("status", "404")]) >= 1.0);
    assert!(metrics.value("hajimi_request_duration_seconds_count", &[route]) >= 1.0);
    let buckets = metrics.find("hajimi_request_duration_seconds_bucket", &[route]);
    assert!(buckets.iter().any(|bucket| bucket.labels["le"] == "+Inf" && bucket.value >= 1.0), "{buckets:?}");
    assert!(metrics.value("hajimi_upstream_failures_total", &[("kind", "quota_per_minute")]) >= 1.0);
    assert_eq!(metrics.value("hajimi_upstream_latency_seconds_count", &[("service", "studio")]), 2.0);

    let summary = app.app.pool.summary(app.app.now_ms());
    let keys = |state: &str| metrics.value("hajimi_keys", &[("pool", "studio"), ("state", state)]);
    assert_eq!(keys("active"), summary.active as f64);
    assert_eq!(keys("active"), 3.0);
    assert_eq!(keys("cooling"), 1.0, "the key that hit its per-minute quota");
    assert_eq!(keys("exhausted"), 0.0);
    assert_eq!(keys("invalid"), summary.invalid as f64);
    assert_eq!(keys("disabled"), summary.disabled as f64);
    let cooling = |reason: &str| metrics.value("hajimi_cooling_keys", &[("pool", "studio"), ("reason", reason)]);
    assert_eq!(cooling("per_minute_quota"), 1.0);
    assert_eq!(cooling("server_error"), 0.0);
    for pool in ["vertex_express", "vertex_account"] {
        assert_eq!(metrics.value("hajimi_keys", &[("pool", pool), ("state", "active")]), 0.0);
    }
    assert_eq!(metrics.value("hajimi_swipe_cache_entries", &[]), 0.0);
    assert_eq!(metrics.value("hajimi_active_requests", &[]), 0.0);
}

#[actix_web::test]
async fn real_streams_count_time_to_first_token_empty_answers_and_truncations() {
    let app = spawn_app_with(2, |config| {
        with_token(config);
        config.fake_streaming = false;
    })
    .await;
    app.upstream.answer(|_, index| match index {
        0 => Reply::sse_fixture("stream-empty-stop.sse", Duration::ZERO),
        1 => Reply::sse_fixture("stream-text.sse", Duration::ZERO),
        _ => Reply::sse_fixture("stream-truncated.sse", Duration::ZERO),
    });
    let whole = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(whole.streamed_content(), "Hello! How can I help you today?", "{}", whole.body);
    let cut = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert!(cut.body.contains("cut off"), "{}", cut.body);

    let metrics = scrape_with_token(&app).await;
    assert_eq!(metrics.types["hajimi_time_to_first_token_seconds"], "histogram");
    assert_eq!(metrics.value("hajimi_time_to_first_token_seconds_count", &[("service", "studio")]), 2.0);
    assert_eq!(metrics.value("hajimi_empty_answers_total", &[]), 1.0);
    assert_eq!(metrics.value("hajimi_truncated_streams_total", &[]), 1.0);
    // Streams are not non-streaming calls.
    assert!(metrics.find("hajimi_upstream_latency_seconds_count", &[]).is_empty());
}

#[actix_web::test]
async fn swipe_cache_entries_and_hits_are_counted() {
    let app = spawn_app_with(2, |config| {
        with_token(config);
        config.concurrent_requests = 2;
    })
    .await;
    let fast_key = test_key(0);
    app.upstream.answer(move |seen, _| {
        if seen.key.as_deref() == Some(fast_key.as_str()) {
            Reply::Json(200, fixture("response-text.json"))
        } else {
            Reply::After(Duration::from_millis(100), Box::new(Reply::fixture("response-text.json")))
        }
    });
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    app.wait_for_cached_answers(1).await;
    assert_eq!(scrape_with_token(&app).await.value("hajimi_swipe_cache_entries", &[]), 1.0);
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    let metrics = scrape_with_token(&app).await;
    assert_eq!(metrics.value("hajimi_cache_hits_total", &[]), 1.0);
    assert_eq!(metrics.value("hajimi_swipe_cache_entries", &[]), 0.0);
}

#[actix_web::test]
async fn a_dashboard_session_may_read_the_metrics_and_an_empty_token_opens_nothing() {
    // No METRICS_TOKEN: bearer access is off, whatever is sent.
    let app = spawn_app_with(1, |_| {}).await;
    assert_refused(&scrape(&app, &[("authorization", "Bearer ")]).await);
    assert_refused(&scrape(&app, &[("authorization", &format!("Bearer {PASSWORD}"))]).await);
    assert_refused(&scrape(&app, &[("cookie", "hajimi_session=not-a-session")]).await);

    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let page = dashboard.get("/metrics").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let metrics = parse(&page.body).unwrap_or_else(|problem| panic!("{problem}\n{}", page.body));
    assert_eq!(metrics.value("hajimi_keys", &[("pool", "studio"), ("state", "active")]), 1.0);
    assert!(!page.body.contains(PASSWORD));
}

#[actix_web::test]
async fn a_session_that_must_change_the_default_password_may_not() {
    let app = spawn_app_with(1, |config| config.web_password = Secret::new("")).await;
    let dashboard = login_with_setup_code(&app).await.ok().expect("login with the setup code");
    let page = dashboard.get("/metrics").await;
    assert_eq!(page.status, 401, "{}", page.body);
}

#[actix_web::test]
async fn wrong_tokens_count_against_the_address() {
    let app = spawn_app_with(1, |config| {
        with_token(config);
        config.auth_failures_per_minute = 2;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(scrape(&app, &[("authorization", "Bearer guess")]).await.status);
    }
    assert_eq!(statuses, [401, 401, 429]);
    let locked = scrape(&app, &[("authorization", &format!("Bearer {TOKEN}"))]).await;
    assert_eq!(locked.status, 429, "locked out even with the right token");
    assert!(locked.headers.contains_key("retry-after"));
}

#[test]
fn the_parser_refuses_malformed_lines() {
    let good = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"w\"} 1\n\
                # TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
    let parsed = parse(good).unwrap();
    assert_eq!(parsed.value("a_total", &[("k", "v\"w")]), 1.0);
    assert_eq!(parsed.value("h_count", &[]), 2.0);
    for bad in [
        "a_total 1\n",
        "# TYPE a counter\na{k=\"v} 1\n",
        "# TYPE a counter\na{k=v} 1\n",
        "# TYPE a counter\na one\n",
        "# TYPE a counter\na 1 2 3\n",
        "# TYPE a wat\n",
        "# TYPE h histogram\nh_bucket 1\n",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[actix_web::test]
async fn an_aliased_model_is_served_by_its_target_and_counted_under_both() {
    let app = spawn_app_with(2, |config| {
        with_token(config);
        config.model_aliases =
            vec![("claude-*-haiku*".into(), "gemini-2.5-flash".into()), ("claude-*".into(), "gemini-2.5-pro".into())];
    })
    .await;
    let mut body = chat_body(false);
    body["model"] = serde_json::json!("claude-sonnet-4-5");
    let answer = app.post("/v1/chat/completions", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The answer names the model as the client did; Google saw the target.
    assert_eq!(answer.json()["model"], "claude-sonnet-4-5");
    assert_eq!(app.upstream.generation_calls()[0].model, "gemini-2.5-pro");
    let metrics = scrape_with_token(&app).await;
    assert_eq!(
        metrics.value("hajimi_aliased_requests_total", &[("alias", "claude-*"), ("model", "gemini-2.5-pro")]),
        1.0
    );
    assert!(metrics.sum("hajimi_requests_total", &[("model", "gemini-2.5-pro")]) >= 1.0);
    assert!(metrics.find("hajimi_requests_total", &[("model", "claude-sonnet-4-5")]).is_empty());
}
