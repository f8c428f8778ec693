//! Several replicas sharing one state through a real Redis (`redis-server`
//! from Debian, started per test on a free loopback port; `.ci/run`
//! installs it): a key found invalid on one is not tried by another, a
//! dashboard session or a setting made on one holds on all, cooling is
//! shared, a stored response of the Responses door is found on every one,
//! and replicas keep serving while Redis is away and converge when
//! it returns.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hajimi::keys::{KeyId, KeyState};
use serde_json::{json, Value};

use crate::dashboard::login;
use crate::helpers::{chat_body, hajimi_process, spawn_app_on, test_key, FakeUpstream, Reply, TestApp, PASSWORD};

/// A private `redis-server` on a free port, killed on drop.
struct RedisServer {
    port: u16,
    /// `requirepass`, when set.
    password: Option<&'static str>,
    /// Only TLS (`rediss://`), with the test certificate.
    tls: bool,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(None)
    }

    fn start_with(password: Option<&'static str>) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { port, password, tls: false, child: None };
        server.restart();
        server
    }

    fn start_tls() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = RedisServer { port, password: None, tls: true, child: None };
        server.restart();
        server
    }

    fn url(&self) -> String {
        match (self.password, self.tls) {
            // Verified against the test certificate (REDIS_CA_FILE).
            (_, true) => format!("rediss://127.0.0.1:{}/0", self.port),
            (Some(password), false) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            (None, false) => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Starts (again) on the same port, empty: no persistence.
    fn restart(&mut self) {
        let port = self.port.to_string();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/redis-tls");
        let (cert, key) = (format!("{fixtures}/cert.pem"), format!("{fixtures}/key.pem"));
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        if self.tls {
            args = vec!["--port", "0", "--tls-port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
            args.extend(["--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-auth-clients", "no"]);
        }
        if let Some(password) = self.password {
            args.extend(["--requirepass", password]);
        }
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server; .ci/run does it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn replicas(count: usize, keys: usize, redis: &RedisServer) -> Vec<TestApp> {
    let tls = redis.tls;
    replicas_with(count, keys, redis, move |config| {
        if tls {
            config.redis_ca_file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/redis-tls/ca.pem").into();
        }
    })
    .await
}

async fn replicas_with(
    count: usize,
    keys: usize,
    redis: &RedisServer,
    adjust: impl Fn(&mut hajimi::config::Config) + Clone,
) -> Vec<TestApp> {
    let upstream = FakeUpstream::start().await;
    let mut apps = Vec::new();
    for _ in 0..count {
        let url = redis.url();
        let adjust = adjust.clone();
        let app = spawn_app_on(upstream.clone(), keys, Arc::new(hajimi::clock::SystemClock), move |config| {
            config.redis_url = hajimi::secret::Secret::new(url);
            adjust(config);
        })
        .await;
        apps.push(app);
    }
    for app in &apps {
        wait_for(|| shared_state(app) == Some(true), "each replica reaches Redis").await;
    }
    apps
}

fn shared_state(app: &TestApp) -> Option<bool> {
    hajimi::cluster::status(&app.app).map(|(up, _)| up)
}

/// Polls `condition` for up to 10 s (replicas hear of changes in
/// milliseconds; the bound is for a loaded CI machine).
async fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The upstream answers `failure` to `key` and the fixture to the others;
/// `app` is asked until `key` has been tried (every answer is a 200: the
/// next key answers).
async fn one_key_fails_until_used(app: &TestApp, key: &str, failure: Reply) {
    let failing = key.to_owned();
    app.upstream.answer(move |seen, _| {
        if seen.key.as_deref() == Some(failing.as_str()) {
            failure.clone()
        } else {
            Reply::fixture("response-text.json")
        }
    });
    while calls_with_key(app, key) == 0 {
        let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
}

fn calls_with_key(app: &TestApp, key: &str) -> usize {
    app.upstream.generation_calls().iter().filter(|seen| seen.key.as_deref() == Some(key)).count()
}

#[actix_web::test]
async fn a_key_found_invalid_on_one_replica_is_never_tried_by_another() {
    let redis = RedisServer::start();
    let apps = replicas(2, 3, &redis).await;
    let bad = test_key(0);
    one_key_fails_until_used(&apps[0], &bad, Reply::error(400, "error-400-api-key-invalid.json")).await;
    let id = KeyId(0);
    wait_for(
        || matches!(apps[1].app.pool.key_view(id, 0).map(|view| view.state), Some(KeyState::Invalid { .. })),
        "the other replica marks the key invalid",
    )
    .await;
    let tried = calls_with_key(&apps[0], &bad);
    for _ in 0..9 {
        let answer = apps[1].post("/v1/chat/completions", &chat_body(false)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(calls_with_key(&apps[0], &bad), tried, "replica 2 never sent the invalid key upstream");
    // Both replicas' requests are in the one shared request log.
    apps[0].app.store.flush();
    apps[1].app.store.flush();
    let records = apps[0].app.store.store().recent_requests(100).unwrap();
    assert!(records.len() >= 10, "{} request records", records.len());
    assert!(records.iter().all(|record| record.route == "/v1/chat/completions"), "{records:?}");
}

#[actix_web::test]
async fn replicas_share_state_over_tls() {
    let redis = RedisServer::start_tls();
    let apps = replicas(2, 1, &redis).await;
    let dashboard = login(&apps[0], PASSWORD).await.ok().expect("login");
    let saved = dashboard.post("/settings", &[("MAX_RETRY_NUM", "8")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    wait_for(|| apps[1].app.config().max_retry_num == 8, "the setting crosses a rediss:// connection").await;
    // Without REDIS_CA_FILE the certificate is checked against the bundled
    // roots, which did not sign it: no connection, and the replica says so.
    let url = redis.url();
    let untrusting = spawn_app_on(apps[0].upstream.clone(), 1, Arc::new(hajimi::clock::SystemClock), move |config| {
        config.redis_url = hajimi::secret::Secret::new(url);
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(shared_state(&untrusting), Some(false), "a certificate no trusted CA signed is refused");
    assert_ne!(untrusting.app.config().max_retry_num, 8);
}

#[actix_web::test]
async fn a_key_cooling_on_one_replica_rests_on_the_others() {
    let redis = RedisServer::start();
    let apps = replicas(2, 2, &redis).await;
    let limited = test_key(0);
    one_key_fails_until_used(&apps[0], &limited, Reply::error(429, "error-429-per-minute.json")).await;
    let now = hajimi::clock::unix_ms();
    wait_for(
        || {
            apps[1].app.pool.key_view(KeyId(0), now).is_some_and(|view| {
                view.models.iter().any(|model| {
                    matches!(model.availability, hajimi::keys::ModelAvailability::Cooling { until_ms, .. } if until_ms > now)
                })
            })
        },
        "the other replica rests the key for that model",
    )
    .await;
    let tried = calls_with_key(&apps[0], &limited);
    for _ in 0..6 {
        let answer = apps[1].post("/v1/chat/completions", &chat_body(false)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(calls_with_key(&apps[0], &limited), tried, "the resting key was not used by replica 2");
}

#[actix_web::test]
async fn a_daily_limit_of_n_across_three_replicas_allows_exactly_n() {
    let redis = RedisServer::start();
    let apps = replicas_with(3, 1, &redis, |config| {
        config.api_key_daily_limit = 4;
        config.allow_over_daily_limit = false;
    })
    .await;
    // Twelve different requests at once, four to each replica.
    let bodies: Vec<Value> = (0..12)
        .map(|n| {
            let mut body = chat_body(false);
            body["messages"][1]["content"] = format!("Hello {n}").into();
            body
        })
        .collect();
    let requests = bodies.iter().enumerate().map(|(n, body)| apps[n % 3].post("/v1/chat/completions", body));
    let answers = futures_util::future::join_all(requests).await;
    let served = answers.iter().filter(|answer| answer.status == 200).count();
    assert_eq!(served, 4, "{:?}", answers.iter().map(|answer| answer.status).collect::<Vec<_>>());
    assert_eq!(calls_with_key(&apps[0], &test_key(0)), 4, "the key went upstream exactly N times");
    for answer in answers.iter().filter(|answer| answer.status != 200) {
        assert_eq!(answer.status, 429, "{}", answer.body);
    }
    let again = apps[1].post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(again.status, 429, "still at the limit: {}", again.body);
}

#[actix_web::test]
async fn per_address_limits_count_requests_to_every_replica() {
    let redis = RedisServer::start();
    let apps = replicas_with(2, 1, &redis, |config| {
        config.max_requests_per_minute = 3;
        config.public_mode = true;
        // Exact: Redis asked for every request.
        config.rate_limit_sync = Duration::ZERO;
    })
    .await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let answer = apps[n % 2].post("/v1/chat/completions", &chat_body(false)).await;
        if answer.status == 429 {
            let retry_after: u64 = answer.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "three per minute from this address, whichever replica");
}

#[actix_web::test]
async fn an_address_locked_out_on_one_replica_is_locked_out_on_all() {
    let redis = RedisServer::start();
    let apps = replicas_with(2, 1, &redis, |config| config.auth_failures_per_minute = 2).await;
    let wrong = [("authorization", "Bearer not-the-password")];
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(apps[0].post_with("/v1/chat/completions", &chat_body(false), &wrong).await.status);
    }
    assert_eq!(statuses, [401, 401, 429], "the third wrong key locks the address out");
    // Replica 2 saw no wrong key from it, yet refuses it now.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = apps[1].post("/v1/chat/completions", &chat_body(false)).await;
        if answer.status == 429 {
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(Instant::now() < deadline, "replica 2 never heard of the lockout");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_failed_call_does_not_use_up_the_shared_daily_limit() {
    let redis = RedisServer::start();
    let apps = replicas_with(2, 1, &redis, |config| {
        config.api_key_daily_limit = 2;
        config.allow_over_daily_limit = false;
        config.max_retry_num = 1;
    })
    .await;
    apps[0].upstream.answer(|_, calls| {
        if calls == 0 {
            Reply::error(500, "error-500-internal.json")
        } else {
            Reply::fixture("response-text.json")
        }
    });
    let failed = apps[0].post("/v1/chat/completions", &chat_body(false)).await;
    assert_ne!(failed.status, 200, "the first call fails upstream");
    let statuses = [
        apps[0].post("/v1/chat/completions", &chat_body(false)).await.status,
        apps[1].post("/v1/chat/completions", &chat_body(false)).await.status,
        apps[1].post("/v1/chat/completions", &chat_body(false)).await.status,
    ];
    assert_eq!(statuses, [200, 200, 429], "two successes, as the limit says, failure or not");
}

#[actix_web::test]
async fn a_dashboard_session_and_a_setting_hold_on_every_replica() {
    let redis = RedisServer::start();
    let apps = replicas(3, 1, &redis).await;
    let dashboard = login(&apps[0], PASSWORD).await.ok().expect("login on replica 1");
    for app in &apps[1..] {
        let elsewhere = dashboard.on(app);
        let mut page = elsewhere.get("/").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while page.status != 200 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            page = elsewhere.get("/").await;
        }
        assert_eq!(page.status, 200, "the session works on another replica: {}", page.location);
    }
    // A setting saved on replica 2 (with the session begun on replica 1).
    let saved = dashboard.on(&apps[1]).post("/settings", &[("MAX_RETRY_NUM", "9")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    for app in &apps {
        wait_for(|| app.app.config().max_retry_num == 9, "the setting applies on every replica").await;
    }
    // The Log page shows the log of every replica, each line naming its own.
    let first = format!("[{}]", apps[0].app.shared.as_ref().unwrap().replica());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dashboard.on(&apps[2]).get("/log").await.body.contains(&first) {
        assert!(Instant::now() < deadline, "replica 1's log never reached replica 3's Log page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Logging out on replica 3 ends the session everywhere.
    let logout = dashboard.on(&apps[2]).post("/logout", &[]).await;
    assert_eq!(logout.status, 303);
    for app in &apps {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = dashboard.on(app).get("/").await;
            if page.status == 303 && page.location.ends_with("/login") {
                break;
            }
            assert!(Instant::now() < deadline, "the session still works after logout: {}", page.status);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[actix_web::test]
async fn replicas_serve_while_redis_is_away_and_converge_when_it_returns() {
    let mut redis = RedisServer::start_with(Some("s3cret-redis-pass"));
    let apps = replicas(2, 2, &redis).await;
    let dashboard = login(&apps[0], PASSWORD).await.ok().expect("login");
    // Saved before the outage; Redis comes back empty (no persistence).
    let saved = dashboard.post("/settings", &[("MAX_EMPTY_RESPONSES", "3")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    wait_for(|| apps[1].app.config().max_empty_responses == 3, "the first setting is shared").await;
    redis.stop();
    for app in &apps {
        wait_for(|| shared_state(app) == Some(false), "each replica notices Redis is away").await;
        let ready = app.get("/ready").await;
        assert_eq!(ready.status, 200, "a replica without Redis still serves");
        let body: Value = ready.json();
        assert_eq!(body["shared_state"]["redis"], "unreachable", "{body}");
        assert!(body["shared_state"].get("endpoint").is_none(), "anonymous callers learn where Redis is: {body}");
        // A dashboard session learns where (never the credentials).
        let body: Value = serde_json::from_str(&dashboard.on(app).get("/ready").await.body).unwrap();
        assert_eq!(body["shared_state"]["endpoint"], format!("redis://127.0.0.1:{}", redis.port), "no credentials");
        for _ in 0..3 {
            let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    }
    let overview = dashboard.get("/").await;
    assert!(overview.body.contains("banner-redis-away"), "the dashboard says Redis is away");
    // Made while Redis is away: kept, written and shared once it returns.
    let saved = dashboard.post("/settings", &[("MAX_RETRY_NUM", "7")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(apps[0].app.config().max_retry_num, 7);
    assert_ne!(apps[1].app.config().max_retry_num, 7);
    redis.restart();
    for app in &apps {
        wait_for(|| shared_state(app) == Some(true), "each replica reconnects").await;
    }
    wait_for(|| apps[1].app.config().max_retry_num == 7, "the setting reaches the other replica").await;
    // Redis lost what it held before; the replicas wrote their view back,
    // so nothing was reverted and a replica started now gets all of it.
    assert_eq!(apps[1].app.config().max_empty_responses, 3, "not reverted by the empty Redis");
    let url = redis.url();
    let late = spawn_app_on(apps[0].upstream.clone(), 2, Arc::new(hajimi::clock::SystemClock), move |config| {
        config.redis_url = hajimi::secret::Secret::new(url);
    })
    .await;
    assert_eq!((late.app.config().max_empty_responses, late.app.config().max_retry_num), (3, 7));
    let ready: Value = apps[1].get("/ready").await.json();
    assert_eq!(ready["shared_state"]["redis"], "connected");
    assert!(!dashboard.get("/").await.body.contains("banner-redis-away"));
    // The Redis password is on no page and in no log record.
    for path in ["/", "/settings", "/log"] {
        let page = dashboard.get(path).await;
        assert!(!page.body.contains("s3cret-redis-pass"), "{path} shows the Redis password");
    }
    let records = hajimi::log_ring::global().records(None, None);
    assert!(records.iter().all(|record| !record.message.contains("s3cret-redis-pass")), "a log record holds it");
}

#[actix_web::test]
async fn a_replica_killed_mid_request_leaves_its_spending_counted() {
    let redis = RedisServer::start();
    let upstream = FakeUpstream::start().await;
    upstream.answer(|seen, _| {
        if seen.raw.windows(5).any(|window| window == b"stall") {
            Reply::After(Duration::from_secs(60), Box::new(Reply::fixture("response-text.json")))
        } else {
            Reply::fixture("response-text.json")
        }
    });
    let url = redis.url();
    let settings = [
        ("REDIS_URL", url.as_str()),
        ("GEMINI_API_KEYS", &test_key(0)),
        ("API_KEY_DAILY_LIMIT", "3"),
        ("MAX_REQUESTS_PER_MINUTE", "0"),
        ("MAX_REQUESTS_PER_DAY_PER_IP", "0"),
        ("PUBLIC_MODE", "true"),
        ("ENABLE_STORAGE", "false"),
    ];
    let (mut command, port) = hajimi_process(&upstream, &settings);
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("the binary starts");
    let client = awc::Client::builder().timeout(Duration::from_secs(120)).finish();
    let address = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = client.get(format!("{address}/ready")).send().await;
        if let Ok(mut ready) = ready {
            let body: Value = ready.json().await.unwrap_or_default();
            if body["shared_state"]["redis"] == "connected" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the process replica never reached Redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = |text: &'static str| {
        let mut body = chat_body(false);
        body["messages"][1]["content"] = text.into();
        client
            .post(format!("{address}/v1/chat/completions"))
            .insert_header(("authorization", format!("Bearer {PASSWORD}")))
            .send_json(&body)
    };
    for text in ["one", "two"] {
        assert_eq!(post(text).await.unwrap().status(), 200);
    }
    // A third call is running upstream when the replica is killed.
    let stalled = actix_web::rt::spawn(post("stall"));
    wait_for(|| upstream.generation_calls().len() == 3, "the third call reaches the upstream").await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = stalled.await;
    // Another replica finds the key's limit of 3 spent: 2 answered, 1 held
    // by the killed call; nothing it did was lost.
    let url = redis.url();
    let survivor = spawn_app_on(upstream.clone(), 1, Arc::new(hajimi::clock::SystemClock), move |config| {
        config.redis_url = hajimi::secret::Secret::new(url);
        config.api_key_daily_limit = 3;
        config.allow_over_daily_limit = false;
    })
    .await;
    wait_for(|| shared_state(&survivor) == Some(true), "the survivor reaches Redis").await;
    let answer = survivor.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(upstream.generation_calls().len(), 3, "the key was not used past its limit");
}

#[actix_web::test]
async fn a_single_nodes_database_is_copied_into_redis_for_the_replicas() {
    use hajimi::store::{Change, KeyAction, Store};
    let redis = RedisServer::start();
    let directory = std::env::temp_dir().join(format!("hajimi-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let store = hajimi::store::sqlite::SqliteStore::open(&directory).unwrap();
    store
        .apply(&[
            Change::SetSetting { name: "MAX_RETRY_NUM".into(), value: "6".into() },
            Change::AddKeys(vec![test_key(5), test_key(6)]),
            Change::SetKeyAction { key: test_key(6), action: Some(KeyAction::Disabled) },
        ])
        .unwrap();
    drop(store);
    let run = |redis_url: &str| {
        Command::new(env!("CARGO_BIN_EXE_hajimi"))
            .arg("migrate-to-redis")
            .env_clear()
            .env("STORAGE_DIR", &directory)
            .env("REDIS_URL", redis_url)
            .output()
            .expect("the binary runs")
    };
    let copied = run(&redis.url());
    let printed = String::from_utf8_lossy(&copied.stdout).into_owned();
    assert!(copied.status.success(), "{printed}{}", String::from_utf8_lossy(&copied.stderr));
    assert!(printed.contains("settings: 1") && printed.contains("dashboard: 2"), "{printed}");
    assert!(!printed.contains(&test_key(5)), "no key is printed");
    // No Redis to copy into: a clear error, exit 1.
    let refused = run("");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("REDIS_URL is not set"));

    let apps = replicas(1, 1, &redis).await;
    assert_eq!(apps[0].app.config().max_retry_num, 6, "the setting came along");
    let key_state = |n: usize| {
        let id = apps[0].app.pool.id_of(&hajimi::secret::ApiKey::new(test_key(n))).expect("the key came along");
        apps[0].app.pool.key_view(id, 0).unwrap().state
    };
    assert_eq!(key_state(5), KeyState::Active);
    assert_eq!(key_state(6), KeyState::Disabled);
    let _ = std::fs::remove_dir_all(&directory);
}

#[actix_web::test]
async fn per_address_counts_exchanged_in_the_background_hold_across_replicas() {
    let redis = RedisServer::start();
    let apps = replicas_with(2, 1, &redis, |config| {
        config.max_requests_per_minute = 3;
        config.public_mode = true;
        config.rate_limit_sync = Duration::from_millis(50);
    })
    .await;
    // Spaced beyond the interval: each replica has heard of the other's.
    let mut statuses = Vec::new();
    for n in 0..6 {
        let answer = apps[n % 2].post("/v1/chat/completions", &chat_body(false)).await;
        if answer.status == 429 {
            let retry_after: u64 = answer.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        }
        statuses.push(answer.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "three per minute from this address, whichever replica");
    // A burst within one interval: each replica admits at most its own
    // limit before the exchange (the documented bound), never more.
    let redis = RedisServer::start();
    let apps = replicas_with(2, 1, &redis, |config| {
        config.max_requests_per_minute = 3;
        config.public_mode = true;
        config.rate_limit_sync = Duration::from_millis(1_000);
    })
    .await;
    let requests = (0..12).map(|n| apps[n % 2].post("/v1/chat/completions", chat_body_ref()));
    let served = futures_util::future::join_all(requests).await.iter().filter(|answer| answer.status == 200).count();
    assert!((3..=6).contains(&served), "served {served}");
}

fn chat_body_ref() -> &'static Value {
    static BODY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    BODY.get_or_init(|| chat_body(false))
}

#[actix_web::test]
async fn a_response_stored_on_one_replica_is_found_and_chained_on_another() {
    let redis = RedisServer::start();
    let apps = replicas(2, 1, &redis).await;
    let bearer = [("authorization", format!("Bearer {PASSWORD}"))];
    let headers: Vec<(&str, &str)> = bearer.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let created = apps[0]
        .post_with("/v1/responses", &json!({"model": "gemini-2.5-flash", "input": "Hello"}), &headers)
        .await
        .json();
    let path = format!("/v1/responses/{}", created["id"].as_str().unwrap());
    // Written at once (not at the end of the writer's batch window): the
    // other replica finds it as soon as a client could ask.
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        let got = apps[1].get(&path).await;
        if got.status == 200 {
            assert_eq!(got.json(), created);
            break;
        }
        assert!(Instant::now() < deadline, "not found on the other replica: {}", got.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let chained = json!({"model": "gemini-2.5-flash", "input": "More", "previous_response_id": created["id"]});
    assert_eq!(apps[1].post_with("/v1/responses", &chained, &headers).await.status, 200);
    let contents = apps[1].upstream.generation_calls().last().unwrap().body["contents"].clone();
    assert_eq!(contents.as_array().unwrap().len(), 3, "{contents}");
    // Deleted on the second, gone from Redis for every replica.
    let url = format!("{}{path}", apps[1].address);
    let deleted = apps[1].client.delete(url).insert_header(headers[0]).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    apps[1].app.store.flush();
    assert_eq!(apps[1].get(&path).await.status, 404);
}
