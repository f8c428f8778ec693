//! The dashboard over HTTP: nothing without a session, CSRF on every
//! form, the forced password change, keys, settings that take effect live,
//! escaping of hostile text, no full key on any page but the export, and
//! every change surviving a restart on the same storage directory.

use std::time::Duration;

use hajimi::secret::Secret;
use serde_json::json;

use crate::helpers::{chat_body, spawn_app_with, test_key, TestApp, PASSWORD};

/// Every registered dashboard route that needs a session.
fn routes_behind_the_session() -> Vec<(&'static str, &'static str)> {
    hajimi::dashboard::pages::ROUTES
        .iter()
        .copied()
        .filter(|(_, path)| !hajimi::dashboard::pages::OPEN_ROUTES.contains(path))
        .collect()
}

/// A browser-like client: no automatic redirects, one session cookie
/// (and whatever else a browser would send along: `extra_cookies` such as
/// `hajimi_lang=zh`, `extra_headers` such as `Accept-Language`).
pub struct Dashboard<'a> {
    pub app: &'a TestApp,
    client: awc::Client,
    pub session: String,
    pub csrf: String,
    pub extra_cookies: Vec<String>,
    pub extra_headers: Vec<(String, String)>,
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
    /// Every `Set-Cookie` of the answer.
    pub set_cookies: Vec<String>,
}

fn cookie_value(response: &awc::ClientResponse<impl futures_util::Stream + Unpin>, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").filter_map(|value| value.to_str().ok()).find_map(|cookie| {
        cookie.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap().to_owned())
    })
}

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).map(|index| index + marker.len()).expect("a csrf field");
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn plain_client() -> awc::Client {
    awc::Client::builder().disable_redirects().timeout(Duration::from_secs(60)).finish()
}

async fn read(
    mut response: awc::ClientResponse<
        impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
    >,
) -> Page {
    let body = response.body().limit(64 * 1024 * 1024).await.unwrap_or_default();
    Page {
        status: response.status().as_u16(),
        location: response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        set_cookies: response
            .headers()
            .get_all("set-cookie")
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect(),
    }
}

/// A GET without a session, as a browser sends it (no redirects followed).
pub async fn anonymous_get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut request = plain_client().get(format!("{}{path}", app.address));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    read(request.send().await.unwrap()).await
}

/// Logs in with `password`; `None` when refused (the status is returned).
pub async fn login<'a>(app: &'a TestApp, password: &str) -> Result<Dashboard<'a>, Page> {
    login_with(app, "password", password).await
}

/// Logs in with this start's setup code (no dashboard password set yet).
pub async fn login_with_setup_code(app: &TestApp) -> Result<Dashboard<'_>, Page> {
    let code = app.app.dashboard.password.setup_code().expect("a setup code (no dashboard password is set)");
    login_with(app, "setup_code", &code).await
}

/// Sends the login form with `value` in the field `name`.
pub async fn login_with<'a>(app: &'a TestApp, name: &str, value: &str) -> Result<Dashboard<'a>, Page> {
    let client = plain_client();
    let form_page = client.get(format!("{}/login", app.address)).send().await.unwrap();
    let login_cookie = cookie_value(&form_page, "hajimi_login").expect("a login cookie");
    let form = read(form_page).await;
    let token = csrf_in(&form.body);
    let response = client
        .post(format!("{}/login", app.address))
        .insert_header(("cookie", format!("hajimi_login={login_cookie}")))
        .send_form(&[("csrf", token.as_str()), (name, value)])
        .await
        .unwrap();
    let Some(session) = cookie_value(&response, "hajimi_session") else {
        return Err(read(response).await);
    };
    let mut dashboard =
        Dashboard { app, client, session, csrf: String::new(), extra_cookies: Vec::new(), extra_headers: Vec::new() };
    let page = dashboard.get("/password").await;
    dashboard.csrf = csrf_in(&page.body);
    Ok(dashboard)
}

impl Dashboard<'_> {
    /// The same browser session, talking to another app (a replica).
    pub fn on<'b>(&self, app: &'b TestApp) -> Dashboard<'b> {
        Dashboard {
            app,
            client: plain_client(),
            session: self.session.clone(),
            csrf: self.csrf.clone(),
            extra_cookies: self.extra_cookies.clone(),
            extra_headers: self.extra_headers.clone(),
        }
    }

    /// The `Cookie` header: the session and the extra cookies.
    fn cookie_header(&self) -> String {
        std::iter::once(format!("hajimi_session={}", self.session))
            .chain(self.extra_cookies.iter().cloned())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn with_extras(&self, mut request: awc::ClientRequest) -> awc::ClientRequest {
        request = request.insert_header(("cookie", self.cookie_header()));
        for (name, value) in &self.extra_headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        request
    }

    pub async fn get(&self, path: &str) -> Page {
        let request = self.with_extras(self.client.get(format!("{}{path}", self.app.address)));
        read(request.send().await.unwrap()).await
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.with_extras(self.client.post(format!("{}{path}", self.app.address)));
        read(request.send_form(&form).await.unwrap()).await
    }

    /// The flash shown on the page a redirect leads to.
    pub async fn follow(&self, page: Page) -> Page {
        assert_eq!(page.status, 303, "{}", page.body);
        self.get(&page.location).await
    }
}

fn storage_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hajimi-dashboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[actix_web::test]
async fn every_route_requires_a_session() {
    let app = spawn_app_with(1, |_| {}).await;
    let client = plain_client();
    assert!(routes_behind_the_session().len() >= 20);
    for (method, path) in routes_behind_the_session() {
        let url = format!("{}{path}", app.address);
        let response = match method {
            "GET" => client.get(url).send().await.unwrap(),
            _ => client.post(url).send_form(&[("csrf", "x")]).await.unwrap(),
        };
        let page = read(response).await;
        let is_page = method == "GET" && !path.ends_with("/stream") && !path.ends_with("/validation");
        if is_page {
            assert_eq!((page.status, page.location.as_str()), (303, "/login"), "{method} {path}");
        } else {
            assert_eq!(page.status, 401, "{method} {path}");
        }
        assert!(!page.body.contains("AIza"), "{method} {path}");
    }
    // A forged session cookie is no session.
    let forged = Dashboard {
        app: &app,
        client: plain_client(),
        session: "0".repeat(64),
        csrf: "x".into(),
        extra_cookies: Vec::new(),
        extra_headers: Vec::new(),
    };
    assert_eq!(forged.get("/keys").await.status, 303);
    // Static assets are public.
    assert_eq!(read(client.get(format!("{}/assets/style.css", app.address)).send().await.unwrap()).await.status, 200);
}

#[actix_web::test]
async fn every_form_needs_the_sessions_csrf_token() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    for (method, path) in routes_behind_the_session().into_iter().filter(|(method, _)| *method == "POST") {
        let without = dashboard.post_raw(path, &[("name", "MAX_RETRY_NUM")]).await;
        assert_eq!(without.status, 403, "{method} {path} without a token");
        let wrong = dashboard.post_raw(path, &[("csrf", "f".repeat(64).as_str())]).await;
        assert_eq!(wrong.status, 403, "{method} {path} with a wrong token");
    }
    // The session is still alive and the token works.
    let saved = dashboard.post("/settings", &[("MAX_RETRY_NUM", "9")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(app.app.config().max_retry_num, 9);
}

#[actix_web::test]
async fn without_a_dashboard_password_only_the_setup_code_opens_and_a_password_must_be_set_first() {
    // The original's default `123` as WEB_PASSWORD counts as none.
    for web_password in ["", "123"] {
        let app = spawn_app_with(1, |config| config.web_password = Secret::new(web_password)).await;
        let form = plain_client().get(format!("{}/login", app.address)).send().await.unwrap();
        let form = read(form).await;
        assert!(form.body.contains("name=\"setup_code\""), "{}", form.body);
        assert!(!form.body.contains("name=\"password\""));
        // Neither the API password nor the old default opens the dashboard.
        for guess in [PASSWORD, "123"] {
            assert_eq!(login_with(&app, "setup_code", guess).await.err().map(|page| page.status), Some(401));
            assert_eq!(login_with(&app, "password", guess).await.err().map(|page| page.status), Some(401));
        }
        app.app.throttles.of(hajimi::throttle::Guarded::Dashboard).record_success("127.0.0.1".parse().unwrap());
        let dashboard = login_with_setup_code(&app).await.ok().expect("the setup code opens a session");
        let home = dashboard.get("/").await;
        assert_eq!((home.status, home.location.as_str()), (303, "/password"));
        assert_eq!(dashboard.get("/keys").await.location, "/password");
        assert_eq!(dashboard.post("/keys/add", &[("keys", &test_key(9))]).await.location, "/password");
        let page = dashboard.get("/password").await;
        assert!(!page.body.contains("name=\"current\""), "no current password to give");
        let short = dashboard.post("/password", &[("new_password", "short"), ("confirm", "short")]).await;
        assert_eq!(short.status, 400);
        let changed = dashboard
            .post("/password", &[("new_password", "a-much-better-one"), ("confirm", "a-much-better-one")])
            .await;
        assert_eq!((changed.status, changed.location.as_str()), (303, "/"));
        // The session the code opened is over; the new one came with the answer.
        assert_eq!(dashboard.get("/").await.location, "/login");
        // The code is spent; the login asks for the password; the API
        // password still opens nothing.
        assert_eq!(app.app.dashboard.password.setup_code(), None);
        assert!(login(&app, PASSWORD).await.is_err());
        let dashboard = login(&app, "a-much-better-one").await.ok().expect("the new password opens");
        assert_eq!(dashboard.get("/").await.status, 200);
    }
}

#[actix_web::test]
async fn wrong_dashboard_passwords_are_throttled() {
    let app = spawn_app_with(1, |config| config.auth_failures_per_minute = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(login(&app, "guess").await.err().map(|page| page.status));
    }
    assert_eq!(statuses, [Some(401), Some(401), Some(401), Some(429), Some(429), Some(429)]);
}

#[actix_web::test]
async fn keys_are_added_acted_on_and_never_shown_in_full_except_by_the_export() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let (a, b) = (test_key(100), test_key(101));
    let pasted = format!("{a}\n{b}, {a}\nAIzaTooShort\nnot a key at all");
    let added = dashboard.follow(dashboard.post("/keys/add", &[("keys", &pasted)]).await).await;
    assert!(added.body.contains("Keys added: 2"), "{}", added.body);
    assert!(added.body.contains("1 duplicate"), "{}", added.body);
    assert!(added.body.contains("1 string looked like a key"), "{}", added.body);
    assert_eq!(app.app.pool.summary(0).total, 3);
    let id_of_a = app.app.pool.id_of(&hajimi::secret::ApiKey::new(a.as_str())).unwrap().0.to_string();
    let disabled = dashboard.post("/keys/action", &[("action", "disable"), ("id", &id_of_a)]).await;
    assert!(dashboard.follow(disabled).await.body.contains("1 key(s) disabled."));
    assert_eq!(app.app.pool.summary(0).disabled, 1);
    // No page shows a whole key.
    let all_keys = [test_key(0), a.clone(), b.clone()];
    for path in ["/", "/keys", "/keys?state=disabled", "/keys?q=0101", "/settings", "/vertex", "/log", "/password"] {
        let page = dashboard.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        for key in &all_keys {
            assert!(!page.body.contains(key.as_str()), "{path} shows a key");
            assert!(!page.body.contains(&key[4..]), "{path} shows most of a key");
        }
    }
    // The export asks for the password again.
    let refused = dashboard.post("/keys/export", &[("password", "wrong")]).await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body.contains(&b[4..]));
    let export = dashboard.post("/keys/export", &[("password", PASSWORD)]).await;
    assert_eq!(export.status, 200);
    assert!(export.body.contains(&b) && export.body.contains(&test_key(0)), "active keys exported");
    assert!(!export.body.contains(&a), "a disabled key is not a valid key");
}

#[actix_web::test]
async fn hostile_text_is_escaped_on_every_page() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let hostile = "\"><script>alert(1)</script>";
    let saved = dashboard.post("/settings", &[("SEARCH_PROMPT", hostile)]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let mut credential = test_service_account(&app);
    credential["project_id"] = json!("<img src=x onerror=alert(2)>");
    credential["client_email"] = json!("<script>alert(3)</script>@x.iam.gserviceaccount.com");
    let credential = credential.to_string();
    let added = dashboard.post("/vertex/credentials", &[("json", &credential)]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    for path in ["/settings", "/vertex", "/log"] {
        let page = dashboard.get(path).await;
        for raw in ["<script>alert", "<img src=x"] {
            assert!(!page.body.contains(raw), "{path} contains {raw} unescaped");
        }
    }
    let vertex = dashboard.get("/vertex").await.body;
    assert!(vertex.contains("alert(3)") && !vertex.contains("<script>alert(3)"), "shown, escaped");
}

#[actix_web::test]
async fn settings_take_effect_live_including_the_api_password() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let invalid = dashboard.post("/settings", &[("MAX_RETRY_NUM", "0"), ("PORT", "x"), ("SEARCH_MODE", "true")]).await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.body.contains("field-error"), "inline errors");
    assert!(!app.app.config().search_mode, "nothing saved when any field is invalid");
    let saved =
        dashboard.post("/settings", &[("PASSWORD", "the-new-api-key"), ("MAX_REQUESTS_PER_MINUTE", "1000")]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let old = app.get_with("/v1/models", &[("authorization", &format!("Bearer {PASSWORD}"))]).await;
    assert_eq!(old.status, 401);
    let new = app.get_with("/v1/models", &[("authorization", "Bearer the-new-api-key")]).await;
    assert_eq!(new.status, 200);
    let page = dashboard.get("/settings").await;
    assert!(!page.body.contains("the-new-api-key"), "secrets are never shown");
    assert_eq!(
        hajimi::secret::redact_keys("relay said: bad key the-new-api-key"),
        "relay said: bad key ***",
        "a password set in the dashboard is masked in upstream text like one from the environment"
    );
    // Revert: back to the value below the dashboard.
    let reverted = dashboard.post("/settings/revert", &[("name", "PASSWORD")]).await;
    assert_eq!(reverted.status, 303);
    assert_eq!(app.get("/v1/models").await.status, 200);
}

#[actix_web::test]
async fn a_new_upstream_base_url_is_used_by_the_next_request() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let other = crate::helpers::FakeUpstream::start().await;
    let saved =
        dashboard.post("/settings", &[("GEMINI_BASE_URL", &other.base_url), ("confirm_password", PASSWORD)]).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    assert_eq!(other.generation_calls().len(), 1, "the worker rebuilt its client");
    assert!(app.upstream.generation_calls().is_empty());
}

#[actix_web::test]
async fn the_log_tail_streams_new_records() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let mut tail = dashboard
        .client
        .get(format!("{}/log/stream", app.address))
        .insert_header(("cookie", format!("hajimi_session={}", dashboard.session)))
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status().as_u16(), 200);
    // Passed on as it comes by a buffering proxy in front (nginx).
    assert_eq!(tail.headers().get("x-accel-buffering").map(|value| value.as_bytes()), Some(&b"no"[..]));
    let added = dashboard.post("/vertex/express", &[("keys", "express-key-0123456789abcdef")]).await;
    assert_eq!(added.status, 303);
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let done = |seen: &str| seen.contains("Express keys added") && seen.contains("/v1/chat/completions");
    while !done(&seen) && std::time::Instant::now() < deadline {
        use futures_util::StreamExt;
        if let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(1), tail.next()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("Express keys added"), "{seen}");
    assert!(seen.contains("\"source\":\"dashboard\""), "{seen}");
    let chat_line = seen.split("\n\n").find(|event| event.contains("/v1/chat/completions")).unwrap_or_default();
    assert!(chat_line.contains("\"source\":\"studio\""), "API requests are filed under studio: {chat_line}");
    assert!(!seen.contains("0123456789abcdef"), "the Express key is redacted: {seen}");
}

#[actix_web::test]
async fn every_change_survives_a_restart_on_the_same_storage_directory() {
    let dir = storage_dir("restart");
    let env_key = test_key(0);
    let configure = |dir: std::path::PathBuf| {
        move |config: &mut hajimi::config::Config| {
            config.enable_storage = true;
            config.storage_dir = dir;
        }
    };
    {
        let app = spawn_app_with(2, configure(dir.clone())).await;
        let dashboard = login(&app, PASSWORD).await.ok().expect("login");
        dashboard.post("/keys/add", &[("keys", &test_key(50))]).await;
        let id_env = app.app.pool.id_of(&hajimi::secret::ApiKey::new(env_key.as_str())).unwrap().0.to_string();
        let id_second = app.app.pool.id_of(&hajimi::secret::ApiKey::new(test_key(1).as_str())).unwrap().0.to_string();
        // Deleted and disabled although both are in the environment.
        dashboard.post("/keys/action", &[("action", "delete"), ("id", &id_env)]).await;
        dashboard.post("/keys/action", &[("action", "disable"), ("id", &id_second)]).await;
        dashboard.post("/keys/limits", &[("model", "gemini-2.5-pro"), ("limit", "42")]).await;
        dashboard.post("/settings", &[("MAX_RETRY_NUM", "4")]).await;
        dashboard
            .post(
                "/password",
                &[("current", PASSWORD), ("new_password", "persisted-pass"), ("confirm", "persisted-pass")],
            )
            .await;
        // Changing the password ended every session: log in again.
        assert_eq!(dashboard.get("/").await.location, "/login");
        let dashboard = login(&app, "persisted-pass").await.ok().expect("login with the new password");
        dashboard.post("/vertex/express", &[("keys", "express-key-0123456789abcdef")]).await;
        dashboard.post("/vertex/toggles", &[("enable_vertex_express", "true")]).await;
        assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
        hajimi::startup::persist_before_exit(&app.app);
    }
    let app = spawn_app_with(2, configure(dir.clone())).await;
    let pool = &app.app.pool;
    let summary = pool.summary(app.app.now_ms());
    assert_eq!(summary.total, 2, "the env key deleted in the dashboard stays deleted");
    assert_eq!(summary.disabled, 1);
    assert!(pool.id_of(&hajimi::secret::ApiKey::new(test_key(50).as_str())).is_some());
    assert_eq!(app.app.config().max_retry_num, 4);
    assert!(app.app.config().enable_vertex_express);
    assert_eq!(pool.daily_limits().per_model.get("gemini-2.5-pro"), Some(&42));
    assert!(login(&app, PASSWORD).await.is_err(), "the old dashboard password is gone");
    let dashboard = login(&app, "persisted-pass").await.ok().expect("the new password survives");
    assert!(dashboard.get("/vertex").await.body.contains("expr…cdef"));
    let used_today: u64 = (0..pool.len() as u32)
        .filter_map(|id| pool.key_view(hajimi::keys::KeyId(id), app.app.now_ms()))
        .flat_map(|view| view.models)
        .map(|model| model.usage_today.successes)
        .sum();
    assert_eq!(used_today, 1, "today's usage survives");
    let requests_today = app.app.stats.totals(24 * 60, app.app.now_ms()).requests;
    assert!(requests_today >= 1, "the statistics survive, the last minute included");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn a_hundred_thousand_keys_are_added_in_one_paste_and_paged() {
    let app = spawn_app_with(1, |_| {}).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let pasted: String = (1000..101_000).map(|n| format!("{}\n", test_key(n))).collect();
    let added = dashboard.post("/keys/add", &[("keys", &pasted)]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(app.app.pool.summary(0).total, 100_001);
    // Requests are still served.
    assert_eq!(app.get("/v1/models").await.status, 200);
    let page = dashboard.get("/keys?page=2000").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("100,001"), "total shown");
    assert!(page.body.matches("name=\"id\"").count() <= 51, "one page of rows, not every key");
}

#[actix_web::test]
async fn dashboard_url_moves_the_dashboard_under_a_prefix() {
    let app = spawn_app_with(1, |config| config.dashboard_prefix = "/admin".into()).await;
    let client = plain_client();
    let page = read(client.get(format!("{}/admin/keys", app.address)).send().await.unwrap()).await;
    assert_eq!((page.status, page.location.as_str()), (303, "/admin/login"));
    let form_page = client.get(format!("{}/admin/login", app.address)).send().await.unwrap();
    let login_cookie = cookie_value(&form_page, "hajimi_login").unwrap();
    let login_page = read(form_page).await;
    assert_eq!(login_page.status, 200);
    assert!(login_page.body.contains("/admin/assets/style.css"));
    let response = client
        .post(format!("{}/admin/login", app.address))
        .insert_header(("cookie", format!("hajimi_login={login_cookie}")))
        .send_form(&[("csrf", csrf_in(&login_page.body).as_str()), ("password", PASSWORD)])
        .await
        .unwrap();
    let set_cookie: Vec<String> =
        response.headers().get_all("set-cookie").filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    assert!(set_cookie.iter().any(|c| c.starts_with("hajimi_session=") && c.contains("Path=/admin")), "{set_cookie:?}");
    assert!(set_cookie.iter().any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict")), "{set_cookie:?}");
    let session = cookie_value(&response, "hajimi_session").unwrap();
    let home = read(
        client
            .get(format!("{}/admin", app.address))
            .insert_header(("cookie", format!("hajimi_session={session}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(home.status, 200, "{}", home.location);
    // Not at the root any more, and the API is untouched.
    assert_eq!(read(client.get(format!("{}/keys", app.address)).send().await.unwrap()).await.status, 404);
    assert_eq!(app.get("/v1/models").await.status, 200);
}

#[actix_web::test]
async fn the_export_and_the_password_change_count_as_password_attempts() {
    let app = spawn_app_with(1, |config| config.auth_failures_per_minute = 2).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let change = |current: &'static str| {
        let dashboard = &dashboard;
        async move {
            dashboard
                .post(
                    "/password",
                    &[("current", current), ("new_password", "another-one-1"), ("confirm", "another-one-1")],
                )
                .await
                .status
        }
    };
    assert_eq!(change("guess-1").await, 400);
    assert_eq!(dashboard.post("/keys/export", &[("password", "guess-2")]).await.status, 403);
    // The third wrong password from this address, whichever form it came through.
    assert_eq!(change("guess-3").await, 429);
    assert_eq!(dashboard.post("/keys/export", &[("password", PASSWORD)]).await.status, 429, "locked out");
    assert_eq!(login(&app, PASSWORD).await.err().map(|page| page.status), Some(429));
}

/// The test service account (tests/it/fixtures/vertex), its tokens from the
/// fake upstream.
fn test_service_account(app: &TestApp) -> serde_json::Value {
    let path = format!("{}/tests/it/fixtures/vertex/service-account.json", env!("CARGO_MANIFEST_DIR"));
    let mut account: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    account["token_uri"] = json!(format!("{}/token", app.upstream.base_url));
    account
}

#[actix_web::test]
async fn the_vertex_test_button_makes_a_real_grant_and_says_how_it_went() {
    let app = spawn_app_with(1, |config| config.vertex_base_url = config.gemini_base_url.clone()).await;
    let dashboard = login(&app, PASSWORD).await.ok().expect("login");
    let added = dashboard.post("/vertex/credentials", &[("json", &test_service_account(&app).to_string())]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(app.app.vertex.accounts.len(), 1, "in use at once");
    let page = dashboard.get("/vertex").await.body;
    assert!(page.contains("id=\"vertex-in-use\""), "{page}");

    let tested = dashboard.post("/vertex/test", &[("kind", "account"), ("id", "0")]).await;
    assert_eq!(tested.status, 303);
    assert_eq!(app.upstream.token_grants().len(), 1, "a real grant");
    let page = dashboard.get("/vertex").await.body;
    assert!(page.contains("token granted"), "{page}");

    app.upstream.answer_tokens(|_, _| {
        crate::helpers::Reply::Json(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into(),
        )
    });
    dashboard.post("/vertex/test", &[("kind", "account"), ("id", "0")]).await;
    let page = dashboard.get("/vertex").await.body;
    assert!(page.contains("Invalid JWT Signature."), "the refusal is shown: {page}");

    dashboard.post("/vertex/express", &[("keys", "AQ.express-key-0123456789abcdef")]).await;
    app.upstream.answer(|seen, _| match seen.action.as_str() {
        "countTokens" => crate::helpers::Reply::fixture("count-tokens.json"),
        other => panic!("unexpected {other}"),
    });
    let tested = dashboard.post("/vertex/test", &[("kind", "express"), ("id", "0")]).await;
    assert_eq!(tested.status, 303);
    let call = app.upstream.seen().into_iter().rfind(|seen| seen.action == "countTokens").unwrap();
    assert_eq!(call.path, "/v1/publishers/google/models/gemini-2.5-flash:countTokens");
    assert_eq!(call.key.as_deref(), Some("AQ.express-key-0123456789abcdef"));
    assert!(dashboard.get("/vertex").await.body.contains("Vertex answered"));
}

#[actix_web::test]
async fn a_key_found_invalid_by_a_request_stays_invalid_after_a_restart() {
    let dir = storage_dir("invalid-by-request");
    let configure = |dir: std::path::PathBuf| {
        move |config: &mut hajimi::config::Config| {
            config.enable_storage = true;
            config.storage_dir = dir;
        }
    };
    let bad = test_key(0);
    {
        let app = spawn_app_with(2, configure(dir.clone())).await;
        let script_bad = bad.clone();
        app.upstream.answer(move |seen, _| {
            if seen.key.as_deref() == Some(script_bad.as_str()) {
                crate::helpers::Reply::error(400, "error-400-api-key-invalid.json")
            } else {
                crate::helpers::Reply::fixture("response-text.json")
            }
        });
        // Round-robin: one of the first two requests meets the bad key.
        for _ in 0..2 {
            assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
        }
        assert!(app.upstream.generation_calls().iter().any(|seen| seen.key.as_deref() == Some(bad.as_str())));
        app.app.store.flush();
    }
    let app = spawn_app_with(2, configure(dir.clone())).await;
    let id = app.app.pool.id_of(&hajimi::secret::ApiKey::new(bad.as_str())).unwrap();
    let state = app.app.pool.key_view(id, app.app.now_ms()).unwrap().state;
    assert!(matches!(state, hajimi::keys::KeyState::Invalid { .. }), "{state:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
