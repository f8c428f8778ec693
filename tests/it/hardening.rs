//! Security hardening II: the dashboard and every path an anonymous client
//! can reach, tried as an attacker would — attempts sent together, forms
//! that never end, junk paths, hostile model names — each with the bound
//! that must hold.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hajimi::secret::Secret;
use hajimi::throttle::Guarded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::dashboard::login;
use crate::helpers::{chat_body, spawn_app_with, TestApp, PASSWORD};

const DASHBOARD_PASSWORD: &str = "dashboard-only-pass";

/// A login form ready to post: its CSRF token and the login cookie.
async fn login_form(app: &TestApp) -> (String, String) {
    let client = awc::Client::builder().disable_redirects().finish();
    let mut page = client.get(format!("{}/login", app.address)).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .filter_map(|value| value.to_str().ok())
        .find_map(|cookie| cookie.strip_prefix("hajimi_login=").map(|rest| rest.split(';').next().unwrap().to_owned()))
        .expect("a login cookie");
    let body = String::from_utf8_lossy(&page.body().await.unwrap()).into_owned();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    (body[start..].split('"').next().unwrap().to_owned(), cookie)
}

/// Posts a prepared login form; the status.
async fn post_login(app: &TestApp, (csrf, cookie): &(String, String), fields: &[(&str, &str)]) -> u16 {
    let client = awc::Client::builder().disable_redirects().timeout(Duration::from_secs(60)).finish();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = client
        .post(format!("{}/login", app.address))
        .insert_header(("cookie", format!("hajimi_login={cookie}")))
        .send_form(&form)
        .await
        .unwrap();
    response.status().as_u16()
}

async fn app_with_dashboard_password(adjust: impl FnOnce(&mut hajimi::config::Config)) -> TestApp {
    spawn_app_with(1, |config| {
        config.web_password = Secret::new(DASHBOARD_PASSWORD);
        adjust(config);
    })
    .await
}

#[actix_web::test]
async fn attempts_sent_together_are_checked_at_most_the_allowance_and_the_right_one_after_is_refused() {
    let app = app_with_dashboard_password(|config| config.auth_failures_per_minute = 5).await;
    let mut forms = Vec::new();
    for _ in 0..40 {
        forms.push(login_form(&app).await);
    }
    let statuses = join_all(forms.iter().map(|form| post_login(&app, form, &[("password", "guess")]))).await;
    let checked = statuses.iter().filter(|status| **status == 401).count();
    assert!(checked <= 5, "{checked} wrong passwords were checked: {statuses:?}");
    assert!(statuses.iter().all(|status| [401, 429, 503].contains(status)), "{statuses:?}");
    // The right password a moment later: the address is locked out.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(post_login(&app, &login_form(&app).await, &[("password", DASHBOARD_PASSWORD)]).await, 429);

    // The same through the key export's and the password page's fields.
    for (path, field) in [("/keys/export", "password"), ("/password", "current")] {
        let app = app_with_dashboard_password(|config| config.auth_failures_per_minute = 5).await;
        let dashboard = login(&app, DASHBOARD_PASSWORD).await.ok().expect("login");
        let fields: Vec<(&str, &str)> =
            vec![(field, "guess"), ("new_password", "another-password"), ("confirm", "another-password")];
        let pages = join_all((0..20).map(|_| dashboard.post(path, &fields))).await;
        let checked = pages.iter().filter(|page| page.status == 403 || page.status == 400).count();
        assert!(checked <= 5, "{path}: {checked} wrong passwords checked");
        let right: Vec<(&str, &str)> =
            vec![(field, DASHBOARD_PASSWORD), ("new_password", "another-password"), ("confirm", "another-password")];
        assert_eq!(dashboard.post(path, &right).await.status, 429, "{path}");
    }
}

#[actix_web::test]
async fn the_api_password_never_opens_the_dashboard_and_a_new_api_password_changes_nothing_there() {
    let app = app_with_dashboard_password(|_| {}).await;
    assert!(login(&app, PASSWORD).await.is_err(), "the API password is not the dashboard's");
    app.app.throttles.of(Guarded::Dashboard).record_success("127.0.0.1".parse().unwrap());
    let dashboard = login(&app, DASHBOARD_PASSWORD).await.ok().expect("login");
    let other = login(&app, DASHBOARD_PASSWORD).await.ok().expect("a second session");
    let saved = dashboard.post("/settings", &[("PASSWORD", "a-new-api-password")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    // Sessions go on; the dashboard password is the same; neither API
    // password opens the dashboard.
    assert_eq!(other.get("/keys").await.status, 200);
    assert!(login(&app, "a-new-api-password").await.is_err());
    assert!(login(&app, PASSWORD).await.is_err());
    app.app.throttles.of(Guarded::Dashboard).record_success("127.0.0.1".parse().unwrap());
    assert!(login(&app, DASHBOARD_PASSWORD).await.is_ok());
    // Nothing derived was stored: the base layer has no WEB_PASSWORD but
    // the one configured.
    assert_eq!(app.app.settings.lock().base.get("WEB_PASSWORD"), DASHBOARD_PASSWORD);
}

#[actix_web::test]
async fn setting_the_dashboard_password_ends_every_session_and_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("hajimi-rotation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let configure = |dir: std::path::PathBuf| {
        move |config: &mut hajimi::config::Config| {
            config.web_password = Secret::new(DASHBOARD_PASSWORD);
            config.enable_storage = true;
            config.storage_dir = dir;
        }
    };
    {
        let app = spawn_app_with(1, configure(dir.clone())).await;
        let changer = login(&app, DASHBOARD_PASSWORD).await.ok().expect("login");
        let bystander = login(&app, DASHBOARD_PASSWORD).await.ok().expect("a second session");
        let changed = changer
            .post(
                "/password",
                &[("current", DASHBOARD_PASSWORD), ("new_password", "rotated-pass-2"), ("confirm", "rotated-pass-2")],
            )
            .await;
        assert_eq!(changed.status, 303, "{}", changed.body);
        assert_eq!(bystander.get("/keys").await.location, "/login", "the other session ended");
        assert_eq!(changer.get("/keys").await.location, "/login", "the changing session's old id ended too");
        assert!(login(&app, DASHBOARD_PASSWORD).await.is_err());
        assert!(login(&app, "rotated-pass-2").await.is_ok());
        hajimi::startup::persist_before_exit(&app.app);
    }
    // After a restart: the same password, the old one (still WEB_PASSWORD)
    // refused, no setup code.
    let app = spawn_app_with(1, configure(dir.clone())).await;
    assert_eq!(app.app.dashboard.password.setup_code(), None);
    assert!(login(&app, DASHBOARD_PASSWORD).await.is_err());
    assert!(login(&app, "rotated-pass-2").await.is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn where_keys_are_sent_changes_only_with_the_password_again() {
    let app = app_with_dashboard_password(|_| {}).await;
    let dashboard = login(&app, DASHBOARD_PASSWORD).await.ok().expect("login");
    let before = app.app.config().gemini_base_url.clone();
    let cases = [
        ("GEMINI_BASE_URL", "https://collector.example"),
        ("VERTEX_BASE_URL", "https://collector.example"),
        ("VERTEX_LOCATION", "us-east1"),
        ("VERTEX_MODELS_URL", "https://collector.example/models.json"),
        ("PROXY_URL", "http://collector.example:3128"),
        ("NO_PROXY", "generativelanguage.googleapis.com"),
    ];
    for (name, value) in cases {
        let refused = dashboard.post("/settings", &[(name, value)]).await;
        assert_eq!(refused.status, 403, "{name} without the password: {}", refused.body);
        assert!(refused.body.contains("dashboard password"), "{name}");
        let wrong = dashboard.post("/settings", &[(name, value), ("confirm_password", "wrong")]).await;
        assert_eq!(wrong.status, 403, "{name} with a wrong password");
        app.app.throttles.of(Guarded::Dashboard).record_success("127.0.0.1".parse().unwrap());
    }
    assert_eq!(app.app.config().gemini_base_url, before, "nothing was saved");
    assert!(app.app.settings.lock().overrides.is_empty());
    let saved = dashboard
        .post("/settings", &[("GEMINI_BASE_URL", "https://relay.example"), ("confirm_password", DASHBOARD_PASSWORD)])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(app.app.config().gemini_base_url, "https://relay.example");
    let logged = hajimi::log_ring::global().records(None, None);
    assert!(
        logged.iter().any(|record| record.message.contains("GEMINI_BASE_URL")
            && record.message.contains("password confirmed from 127.0.0.1")),
        "the change is logged with the address"
    );
    // Other settings need no password.
    assert_eq!(dashboard.post("/settings", &[("MAX_RETRY_NUM", "9")]).await.status, 303);
    // VERTEX_LOCATION becomes part of a host name: a region name only.
    for bad in ["us-central1.collector.example/x", "global#", "US", ""] {
        let refused =
            dashboard.post("/settings", &[("VERTEX_LOCATION", bad), ("confirm_password", DASHBOARD_PASSWORD)]).await;
        assert_eq!(refused.status, 400, "VERTEX_LOCATION={bad:?}");
    }
}

/// Sends a request head and `sent` bytes of a body announced as
/// `announced`, then waits (at most `wait`) for the answer's status line.
async fn partial_post(
    app: &TestApp,
    path: &str,
    cookie: &str,
    announced: usize,
    sent: usize,
    wait: Duration,
) -> Option<u16> {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncookie: {cookie}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {announced}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'a'; sent]).await.unwrap();
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(wait, stream.read(&mut answer)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    text.split(' ').nth(1).and_then(|status| status.parse().ok())
}

#[actix_web::test]
async fn dashboard_forms_are_not_read_before_the_session_and_the_login_form_is_tiny() {
    let app = app_with_dashboard_password(|_| {}).await;
    // An anonymous 15 MB form: answered at once, its body never read.
    for path in ["/keys/add", "/settings", "/vertex/credentials", "/keys/export"] {
        let status = partial_post(&app, path, "x=y", 15 << 20, 1024, Duration::from_secs(3)).await;
        assert!(matches!(status, Some(401 | 303)), "{path}: {status:?}");
    }
    // The login form is a few KB; a larger one is refused unread.
    let status = partial_post(&app, "/login", "x=y", 64 * 1024, 100, Duration::from_secs(3)).await;
    assert_eq!(status, Some(413));
    // Behind the session, forms count against the shared body budget.
    let app = app_with_dashboard_password(|config| config.max_body_bytes_in_flight = 64 * 1024).await;
    let dashboard = login(&app, DASHBOARD_PASSWORD).await.ok().expect("login");
    let big = "k".repeat(200 * 1024);
    let page = dashboard.post("/keys/add", &[("keys", &big)]).await;
    assert_eq!(page.status, 503, "{}", page.body);
}

#[actix_web::test]
async fn a_trickled_form_ends_at_the_body_deadline() {
    let app = app_with_dashboard_password(|config| config.request_body_timeout = Duration::from_secs(1)).await;
    let dashboard = login(&app, DASHBOARD_PASSWORD).await.ok().expect("login");
    let cookie = format!("hajimi_session={}", dashboard.session);
    let started = Instant::now();
    // 100 bytes announced, 10 sent, then nothing: a trickle that stalls.
    let status = partial_post(&app, "/settings", &cookie, 100, 10, Duration::from_secs(8)).await;
    assert_eq!(status, Some(408));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let started = Instant::now();
    let status = partial_post(&app, "/login", "x=y", 100, 10, Duration::from_secs(8)).await;
    assert_eq!(status, Some(408));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[actix_web::test]
async fn anonymous_junk_is_counted_but_never_recorded_and_log_lines_stay_bounded() {
    let app = spawn_app_with(1, |_| {}).await;
    let long_name = "x".repeat(60 * 1024);
    for _ in 0..20 {
        let path = format!("/v1beta/models/{long_name}:generateContent");
        let answer = app.post_with(&path, &chat_body(false), &[]).await;
        assert_eq!(answer.status, 401);
    }
    // One authenticated request, with a hostile model name.
    let mut body = chat_body(false);
    body["model"] = serde_json::json!(format!("[PAY]\r\nFORGED-LINE {}", "y".repeat(100_000)));
    let answer = app.post("/v1/chat/completions", &body).await;
    assert!(answer.status >= 400, "{}", answer.status);
    assert!(answer.body.len() < 4096, "the error echoes the whole model name: {} bytes", answer.body.len());
    assert!(app.post("/v1/chat/completions", &chat_body(false)).await.status == 200);
    hajimi::startup::persist_before_exit(&app.app);
    let records = app.app.store.store().recent_requests(100).unwrap();
    assert!(!records.is_empty(), "authenticated requests are recorded");
    for record in &records {
        assert!(record.route.len() <= 128, "{}", record.route.len());
        assert!(!record.route.contains("xxxxxxxx"), "the raw path is stored: {}", &record.route[..64]);
        assert!(record.model.chars().count() <= 129 && !record.model.contains('\n'), "{:?}", record.model);
    }
    assert_eq!(records.iter().filter(|record| record.status == 401).count(), 0, "anonymous requests are recorded");
    for record in hajimi::log_ring::global().records(None, None) {
        assert!(!record.message.contains('\n') && !record.message.starts_with("FORGED"));
        assert!(record.message.chars().count() <= 2000);
    }
}

#[actix_web::test]
async fn anonymous_visitors_learn_nothing_from_the_login_page() {
    // The API password is the default 123: the login page still says nothing.
    let app = spawn_app_with(1, |config| config.password = Secret::new("123")).await;
    let page = app.get_with("/login", &[]).await;
    assert_eq!(page.status, 200);
    // The form's random CSRF token may hold "123" by chance (it did once
    // in CI): it is left out of the search.
    let text = without_csrf_token(&page.body);
    assert!(text.len() < page.body.len(), "the login form carries a CSRF token");
    for hint in ["banner", "123", "default"] {
        assert!(!text.contains(hint), "the login page mentions {hint:?}");
    }
}

/// `page` with the values of its `csrf` inputs left out.
fn without_csrf_token(page: &str) -> String {
    const FIELD: &str = "name=\"csrf\" value=\"";
    let mut text = String::new();
    let mut rest = page;
    while let Some(start) = rest.find(FIELD) {
        let value = start + FIELD.len();
        text.push_str(&rest[..value]);
        rest = rest[value..].find('"').map_or("", |end| &rest[value + end..]);
    }
    text.push_str(rest);
    text
}

#[actix_web::test]
async fn each_secret_keeps_its_own_failures() {
    // A good metrics token between wrong API passwords clears nothing.
    let app = spawn_app_with(1, |config| {
        config.metrics_token = Secret::new("metrics-token-0123456789");
        config.auth_failures_per_minute = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for round in 0..6 {
        let wrong = app.get_with("/v1/models", &[("authorization", "Bearer wrong")]).await;
        statuses.push(wrong.status);
        if round % 2 == 0 {
            let scrape = app.get_with("/metrics", &[("authorization", "Bearer metrics-token-0123456789")]).await;
            assert_eq!(scrape.status, 200);
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}

#[actix_web::test]
async fn metrics_label_only_listed_models() {
    let app = spawn_app_with(1, |config| config.metrics_token = Secret::new("metrics-token-0123456789")).await;
    for n in 0..60 {
        let mut body = chat_body(false);
        body["model"] = serde_json::json!(format!("made-up-model-{n}"));
        app.post("/v1/chat/completions", &body).await;
    }
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    let scrape = app.get_with("/metrics", &[("authorization", "Bearer metrics-token-0123456789")]).await;
    assert!(scrape.body.contains("model=\"gemini-2.5-flash\""), "a real model counts under its name");
    assert!(!scrape.body.contains("made-up-model"), "client-invented names take no label");
}

#[actix_web::test]
async fn cors_answers_listed_origins_on_the_api_only() {
    let app = spawn_app_with(1, |config| config.allowed_origins = vec!["https://chat.example".to_owned()]).await;
    let preflight = |origin: &'static str, path: &'static str| {
        let client = awc::Client::default();
        let url = format!("{}{path}", app.address);
        async move {
            client
                .request(actix_web::http::Method::OPTIONS, url)
                .insert_header(("origin", origin))
                .insert_header(("access-control-request-method", "POST"))
                .insert_header(("access-control-request-headers", "authorization, content-type"))
                .send()
                .await
                .unwrap()
        }
    };
    let allowed = preflight("https://chat.example", "/v1/chat/completions").await;
    assert_eq!(allowed.status().as_u16(), 204);
    assert_eq!(allowed.headers().get("access-control-allow-origin").unwrap(), "https://chat.example");
    assert!(allowed.headers().get("access-control-allow-headers").unwrap().to_str().unwrap().contains("authorization"));
    let refused = preflight("https://evil.example", "/v1/chat/completions").await;
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    let dashboard = preflight("https://chat.example", "/settings").await;
    assert!(dashboard.headers().get("access-control-allow-origin").is_none(), "the dashboard never answers CORS");
    let answer = app
        .post_with(
            "/v1/chat/completions",
            &chat_body(false),
            &[("authorization", &format!("Bearer {PASSWORD}")), ("origin", "https://chat.example")],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers.get("access-control-allow-origin").unwrap(), "https://chat.example");
    // Without ALLOWED_ORIGINS, no CORS header at all.
    let closed = spawn_app_with(1, |_| {}).await;
    let answer = closed
        .post_with(
            "/v1/chat/completions",
            &chat_body(false),
            &[("authorization", &format!("Bearer {PASSWORD}")), ("origin", "https://chat.example")],
        )
        .await;
    assert!(answer.headers.get("access-control-allow-origin").is_none());
}

/// The binary with its stderr read on a thread: every line goes to a
/// channel (and on, so the pipe never fills).
struct Running {
    child: std::process::Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(upstream: &crate::helpers::FakeUpstream, settings: &[(&str, &str)]) -> Running {
        let (mut command, port) = crate::helpers::hajimi_process(upstream, settings);
        let mut child = command.stderr(std::process::Stdio::piped()).spawn().expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Running { child, port, lines, seen: Vec::new() }
    }

    /// Waits (at most 20 s) for a stderr line containing `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?} on stderr:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Every stderr line so far.
    fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// Resident memory now and at its peak (kB), from /proc.
    fn memory_kb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
                .unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(self) {}
}

impl Drop for Running {
    /// Stopped however the test ends (a child left running would hold the
    /// test's output open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The setup code a `dashboard setup code: CODE` line gives.
fn setup_code_in(line: &str) -> String {
    let code = line.split("dashboard setup code: ").nth(1).expect("the line").trim().to_owned();
    assert!(line.trim_end().ends_with(&format!("dashboard setup code: {code}")), "{line}");
    assert!(code.len() >= 24 && code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
    code
}

/// Posts the login form as the client `address` (forwarded by a trusted
/// proxy); the status and the session cookie it set, if any.
async fn login_as(port: u16, address: &str, fields: &[(&str, &str)]) -> (u16, Option<String>, Option<String>) {
    let client = awc::Client::builder().disable_redirects().timeout(Duration::from_secs(120)).finish();
    let base = format!("http://127.0.0.1:{port}");
    let mut page =
        client.get(format!("{base}/login")).insert_header(("x-forwarded-for", address)).send().await.unwrap();
    let cookie_of = |headers: &actix_web::http::header::HeaderMap, name: &str| {
        headers.get_all("set-cookie").filter_map(|value| value.to_str().ok()).find_map(|cookie| {
            cookie.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap().to_owned())
        })
    };
    let login_cookie = cookie_of(page.headers(), "hajimi_login").expect("a login cookie");
    let body = String::from_utf8_lossy(&page.body().await.unwrap()).into_owned();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let csrf = body[start..].split('"').next().unwrap().to_owned();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = client
        .post(format!("{base}/login"))
        .insert_header(("x-forwarded-for", address))
        .insert_header(("cookie", format!("hajimi_login={login_cookie}")))
        .send_form(&form)
        .await
        .unwrap();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (response.status().as_u16(), cookie_of(response.headers(), "hajimi_session"), retry_after)
}

#[actix_web::test]
async fn the_setup_code_is_printed_once_per_start_and_a_burst_of_logins_costs_bounded_memory() {
    let upstream = crate::helpers::FakeUpstream::start().await;
    let storage = std::env::temp_dir().join(format!("hajimi-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&storage);
    let storage_text = storage.display().to_string();
    let settings = [
        ("STORAGE_DIR", storage_text.as_str()),
        ("TRUSTED_PROXY_HEADER", "x-forwarded-for"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("RUST_LOG", "info"),
        // The original's default counts as none.
        ("WEB_PASSWORD", "123"),
    ];
    // Two starts without a password: a new code each time, one line each.
    let mut first = Running::start(&upstream, &settings);
    let first_code = setup_code_in(&first.wait_for("dashboard setup code: "));
    first.wait_for("listening on port");
    first.stop();
    let mut running = Running::start(&upstream, &settings);
    let code = setup_code_in(&running.wait_for("dashboard setup code: "));
    assert_ne!(code, first_code, "a new code at every start");
    running.wait_for("listening on port");
    let port = running.port;

    // The code opens a session that must set the password (argon2).
    assert_eq!(login_as(port, "198.51.100.1", &[("setup_code", &first_code)]).await.0, 401, "last start's code");
    let (status, session, _) = login_as(port, "198.51.100.1", &[("setup_code", &code)]).await;
    assert_eq!(status, 303);
    let session = session.expect("a session");
    let client = awc::Client::builder().disable_redirects().timeout(Duration::from_secs(60)).finish();
    let base = format!("http://127.0.0.1:{port}");
    let mut page = client
        .get(format!("{base}/password"))
        .insert_header(("cookie", format!("hajimi_session={session}")))
        .send()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&page.body().await.unwrap()).into_owned();
    let marker = "name=\"csrf\" value=\"";
    let csrf = body[body.find(marker).unwrap() + marker.len()..].split('"').next().unwrap().to_owned();
    let set = client
        .post(format!("{base}/password"))
        .insert_header(("cookie", format!("hajimi_session={session}")))
        .send_form(&[("csrf", csrf.as_str()), ("new_password", "burst-test-pass"), ("confirm", "burst-test-pass")])
        .await
        .unwrap();
    assert_eq!(set.status().as_u16(), 303);

    // 100 wrong logins at once, each from its own address (so no lockout
    // stops them): at most a few argon2 checks run, the rest are told to
    // come back, and memory stays bounded.
    let (rss_before, _) = running.memory_kb();
    let statuses = join_all(
        (0..100)
            .map(|n| async move { login_as(port, &format!("203.0.113.{}", n + 1), &[("password", "wrong")]).await }),
    )
    .await;
    let (_, peak) = running.memory_kb();
    let busy: Vec<_> = statuses.iter().filter(|(status, ..)| *status == 503).collect();
    assert!(statuses.iter().all(|(status, ..)| [401, 503].contains(status)), "{statuses:?}");
    assert!(busy.iter().all(|(_, _, retry_after)| retry_after.is_some()), "503 without Retry-After");
    let growth_mb = peak.saturating_sub(rss_before) / 1024;
    eprintln!("burst: RSS {rss_before} kB before, peak {peak} kB; {} of 100 told to retry", busy.len());
    assert!(growth_mb < 100, "100 concurrent logins took RSS from {rss_before} kB to a peak of {peak} kB");
    // The right password still works.
    assert_eq!(login_as(port, "198.51.100.2", &[("password", "burst-test-pass")]).await.0, 303);

    // A model name after a route prefix may carry CR/LF (the prefix is
    // cut and the rest trimmed before routing, but the name as sent is
    // logged): it cannot start a line of its own on stderr.
    let mut body = chat_body(false);
    body["model"] = serde_json::json!("[EXPRESS]\r\ngemini-2.5-flash");
    let answer = client
        .post(format!("{base}/v1/chat/completions"))
        .insert_header(("authorization", format!("Bearer {PASSWORD}")))
        .send_json(&body)
        .await
        .unwrap();
    assert!(answer.status().as_u16() >= 400, "no Express key is configured");
    // Every stderr line is a record of its own (or the setup code's).
    // The code was printed once, on its own line, and in no log record.
    let lines = running.drain();
    assert!(
        lines.iter().all(|line| line.starts_with('[') || line.starts_with("dashboard setup code: ")),
        "{}",
        lines.join("\n")
    );
    let mentions = lines.iter().filter(|line| line.contains(&code)).count();
    assert_eq!(mentions, 1, "{}", lines.join("\n"));
    running.stop();
    let _ = std::fs::remove_dir_all(&storage);
}
