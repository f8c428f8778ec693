//! Dashboard handlers: thin — check the session (and CSRF on every POST),
//! call the pool, settings or store, fill a view, render it. Every mutation
//! sets a flash for the next page and writes one log record (source
//! `dashboard`, target `hajimi::dashboard`) naming what changed, never a
//! key or a password.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use super::password::{self, Busy, Mode};
use super::session::{random_token, tokens_match, SessionInfo, LOGIN_COOKIE, SESSION_COOKIE};
use super::settings::{self, GROUPS};
use super::views::*;
use crate::keys::{KeyId, KeyState, ModelAvailability};
use crate::secret::ApiKey;
use crate::state::AppState;
use crate::store::{Change, StoredCredential};
use crate::throttle::{Guarded, Verdict};

const KEYS_PER_PAGE: usize = 50;
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The API password every fresh install starts with (a banner, behind
/// the session, says so while it is in use).
const DEFAULT_API_PASSWORD: &str = "123";
const MIN_PASSWORD_LENGTH: usize = 8;
/// Largest form behind the session (a bulk add of 100,000 keys is about
/// 4 MB); read only once the session is known, and counted against
/// `MAX_BODY_BYTES_IN_FLIGHT_MB` like every request body.
const MAX_FORM_BYTES: usize = 16 * 1024 * 1024;
/// Largest login form: the one form an anonymous client can send.
const MAX_LOGIN_FORM_BYTES: usize = 4 * 1024;

/// A submitted form's fields, in order.
type Form = Vec<(String, String)>;

/// The route table, written once: it registers the routes and gives the
/// list (`ROUTES`) the tests walk to prove no route answers without a
/// session.
macro_rules! dashboard_routes {
    ($($method:ident $path:literal => $handler:ident,)*) => {
        /// Every dashboard route: (method, path under the prefix).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path),)*];

        fn register(cfg: &mut web::ServiceConfig, prefix: &str) {
            $(
                let path = if $path == "/" && !prefix.is_empty() { prefix.to_owned() } else { format!("{prefix}{}", $path) };
                cfg.route(&path, dashboard_routes!(@method $method).to($handler));
                if $path == "/" && !prefix.is_empty() {
                    cfg.route(&format!("{prefix}/"), dashboard_routes!(@method $method).to($handler));
                }
            )*
        }
    };
    (@method GET) => { web::get() };
    (@method POST) => { web::post() };
}

dashboard_routes! {
    GET "/" => overview,
    GET "/login" => login_page,
    POST "/login" => login,
    POST "/logout" => logout,
    GET "/password" => password_page,
    POST "/password" => change_password,
    GET "/keys" => keys_page,
    POST "/keys/add" => add_keys,
    POST "/keys/action" => key_action,
    POST "/keys/validate-all" => validate_all,
    GET "/keys/validation" => validation_progress,
    POST "/keys/clear-invalid" => clear_invalid,
    POST "/keys/export" => export_keys,
    POST "/keys/limits" => set_model_limit,
    GET "/settings" => settings_page,
    POST "/settings" => save_settings,
    POST "/settings/revert" => revert_setting,
    GET "/vertex" => vertex_page,
    POST "/vertex/toggles" => vertex_toggles,
    POST "/vertex/express" => add_express_keys,
    POST "/vertex/express/remove" => remove_express_key,
    POST "/vertex/credentials" => add_credential,
    POST "/vertex/credentials/remove" => remove_credential,
    POST "/vertex/test" => vertex_test,
    GET "/log" => log_page,
    GET "/log/stream" => log_stream,
    GET "/assets/{name}" => asset,
}

/// Routes open without a session (the login itself and static files).
pub const OPEN_ROUTES: &[&str] = &["/login", "/assets/{name}"];

/// Registers the dashboard's routes under `prefix` (`""` or `/name`).
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    register(cfg, prefix);
}

/// Why a dashboard request was not served.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No session: pages redirect to the login.
    #[error("login required")]
    LoginRequired { prefix: String, is_page: bool },
    /// A session that must set a new password first.
    #[error("password change required")]
    PasswordChangeRequired { prefix: String },
    #[error("the form is stale or forged (CSRF check failed); reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadForm(String),
    #[error("{message}")]
    Throttled { message: String, retry_after: Duration },
    /// Every password check that may run at once is running.
    #[error("The server is busy checking passwords; try again in a moment / 服务器正忙，请稍后再试")]
    Busy,
    /// The form's body was too large, too slow, or did not fit the shared
    /// body budget.
    #[error("{message}")]
    Body { status: StatusCode, message: String, retry_after: Option<Duration> },
    #[error("the page could not be rendered")]
    Render,
}

impl DashboardError {
    fn throttled(retry_after_ms: u64) -> DashboardError {
        DashboardError::Throttled {
            message: "Too many wrong passwords; try again later / 密码错误次数过多，请稍后再试".to_owned(),
            retry_after: Duration::from_millis(retry_after_ms),
        }
    }
}

impl ResponseError for DashboardError {
    fn status_code(&self) -> StatusCode {
        match self {
            DashboardError::LoginRequired { is_page: true, .. } | DashboardError::PasswordChangeRequired { .. } => {
                StatusCode::SEE_OTHER
            }
            DashboardError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            DashboardError::Csrf => StatusCode::FORBIDDEN,
            DashboardError::BadForm(_) => StatusCode::BAD_REQUEST,
            DashboardError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            DashboardError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            DashboardError::Body { status, .. } => *status,
            DashboardError::Render => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        security_headers(&mut response);
        match self {
            DashboardError::LoginRequired { prefix, is_page: true } => {
                response.insert_header((header::LOCATION, format!("{prefix}/login"))).finish()
            }
            DashboardError::PasswordChangeRequired { prefix } => {
                response.insert_header((header::LOCATION, format!("{prefix}/password"))).finish()
            }
            DashboardError::Throttled { retry_after, .. }
            | DashboardError::Body { retry_after: Some(retry_after), .. } => response
                .insert_header((header::RETRY_AFTER, retry_after.as_secs().max(1).to_string()))
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
            DashboardError::Busy => response
                .insert_header((header::RETRY_AFTER, "1"))
                .content_type("text/plain; charset=utf-8")
                .body(self.to_string()),
            _ => response.content_type("text/plain; charset=utf-8").body(self.to_string()),
        }
    }
}

/// Headers on every dashboard answer: no framing, no sniffing, scripts and
/// styles from this origin only, nothing cached.
fn security_headers(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
}

/// What [`security_headers`] says about frames until [`allow_framing`]
/// changes it.
const NO_FRAMES: &str = "frame-ancestors 'none'";

/// Middleware (on every answer; it acts on the dashboard's only, which
/// carry [`NO_FRAMES`]): while `FRAME_ANCESTORS` lists origins, the CSP
/// names them instead and no `X-Frame-Options` is sent, so a Hugging Face
/// Space page can show the dashboard in its frame.
pub async fn allow_framing(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let mut response = next.call(request).await?;
    let policy = response.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|value| value.to_str().ok());
    let Some(policy) = policy.filter(|policy| policy.contains(NO_FRAMES)) else { return Ok(response) };
    let ancestors = state.map(|state| state.config().frame_ancestors.join(" ")).unwrap_or_default();
    if !ancestors.is_empty() {
        let framed = policy.replace(NO_FRAMES, &format!("frame-ancestors {ancestors}"));
        if let Ok(value) = header::HeaderValue::from_str(&framed) {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
            headers.remove(header::X_FRAME_OPTIONS);
        }
    }
    Ok(response)
}

fn html(template: &impl Template, status: StatusCode) -> Result<HttpResponse, DashboardError> {
    let body = template.render().map_err(|error| {
        log::error!("dashboard page failed to render: {error}");
        DashboardError::Render
    })?;
    let mut response = HttpResponse::build(status);
    security_headers(&mut response);
    Ok(response.content_type("text/html; charset=utf-8").body(body))
}

fn redirect(to: String) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    security_headers(&mut response);
    response.insert_header((header::LOCATION, to)).finish()
}

fn prefix_of(state: &AppState) -> String {
    state.config().dashboard_prefix.clone()
}

/// Whether the request came over HTTPS (directly or, from a trusted
/// proxy, per `X-Forwarded-Proto`).
fn is_https(request: &HttpRequest, state: &AppState) -> bool {
    if request.connection_info().scheme() == "https" && request.app_config().secure() {
        return true;
    }
    let config = state.config();
    let peer = request.peer_addr().map(|address| address.ip());
    let trusted =
        config.huggingface || peer.is_some_and(|peer| config.trusted_proxies.iter().any(|range| range.contains(peer)));
    trusted
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.eq_ignore_ascii_case("https"))
}

/// Sets a dashboard cookie (`value` empty: removes it). `SameSite=Strict`
/// (and `Secure` over HTTPS) — except while framing is allowed
/// (`FRAME_ANCESTORS`) and the request came over HTTPS: then
/// `SameSite=None; Secure; Partitioned` (CHIPS), the only kind a browser
/// sends inside a frame on another site (a Hugging Face Space page); the
/// cookie is kept apart per embedding site, and CSRF tokens still guard
/// every POST.
fn set_cookie(response: &mut HttpResponse, request: &HttpRequest, state: &AppState, name: &str, value: String) {
    let https = is_https(request, state);
    let framed = https && !state.config().frame_ancestors.is_empty();
    let prefix = prefix_of(state);
    let removal = value.is_empty();
    let mut cookie = Cookie::build(name, value)
        // `/admin` also covers `/admin/…` (and not `/adminx`).
        .path(if prefix.is_empty() { "/".to_owned() } else { prefix })
        .http_only(true)
        .same_site(if framed { SameSite::None } else { SameSite::Strict })
        .secure(https)
        .finish();
    if removal {
        cookie.make_removal();
    }
    // (actix's cookie crate predates `Partitioned`: appended by hand.)
    let text = if framed { format!("{cookie}; Partitioned") } else { cookie.to_string() };
    if let Ok(value) = header::HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The request's session, or why not. `is_page`: a GET of a page (which
/// redirects to the login instead of answering 401).
fn session(request: &HttpRequest, state: &AppState, allow_forced: bool) -> Result<SessionInfo, DashboardError> {
    let prefix = prefix_of(state);
    let is_page = request.method() == actix_web::http::Method::GET
        && !request.path().ends_with("/stream")
        && !request.path().ends_with("/validation");
    let info = request
        .cookie(SESSION_COOKIE)
        .and_then(|cookie| state.dashboard.sessions.get(cookie.value(), state.now_ms()))
        .ok_or(DashboardError::LoginRequired { prefix: prefix.clone(), is_page })?;
    if info.must_change_password && !allow_forced {
        return Err(DashboardError::PasswordChangeRequired { prefix });
    }
    Ok(info)
}

/// The value of `name` in a submitted form.
fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
}

/// Reads a submitted form: at most `limit` bytes (413; a larger
/// `Content-Length` is refused unread), within `REQUEST_BODY_TIMEOUT`
/// (408), counted against `MAX_BODY_BYTES_IN_FLIGHT_MB` while it is read
/// and parsed (503).
async fn read_form(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    limit: usize,
) -> Result<Form, DashboardError> {
    let config = state.config();
    let (body, _reservation) = crate::delivery::admission::read_body_within(request, payload, limit, &config, state)
        .await
        .map_err(|error| {
            let status = error.status_code();
            let retry_after = match &error {
                crate::error::ApiError::Busy { retry_after } => Some(*retry_after),
                _ => None,
            };
            let message = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "The form is too large / 表单过大".to_owned(),
                StatusCode::REQUEST_TIMEOUT => "The form took too long to arrive / 表单上传超时".to_owned(),
                StatusCode::SERVICE_UNAVAILABLE => "The server is busy; try again in a moment / 服务器正忙".to_owned(),
                _ => "The form could not be read / 无法读取表单".to_owned(),
            };
            DashboardError::Body { status, message, retry_after }
        })?;
    serde_urlencoded::from_bytes::<Form>(&body)
        .map_err(|_| DashboardError::BadForm("The form could not be read".into()))
}

/// Session plus a valid CSRF token in the form: what every POST needs.
/// The session is checked before a byte of the form is read, so an
/// anonymous client cannot make the server read (or hold) a large form.
async fn authorized_post(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    allow_forced: bool,
) -> Result<(SessionInfo, Form), DashboardError> {
    let info = session(request, state, allow_forced)?;
    let form = read_form(request, state, payload, MAX_FORM_BYTES).await?;
    if !tokens_match(&info.csrf, field(&form, "csrf").unwrap_or("")) {
        log::warn!("dashboard form refused: CSRF token missing or wrong");
        return Err(DashboardError::Csrf);
    }
    Ok((info, form))
}

fn flash_and_redirect(
    state: &AppState,
    info: &SessionInfo,
    kind: &'static str,
    text: String,
    to: &str,
) -> HttpResponse {
    state.dashboard.sessions.set_flash(&info.id, Flash { kind, text });
    redirect(format!("{}{to}", prefix_of(state)))
}

/// Banners for a page behind the session (the login page has none: an
/// anonymous visitor learns nothing about defaults or internals).
fn banners(state: &AppState) -> Vec<Banner> {
    let config = state.config();
    let mut banners = Vec::new();
    if config.password.matches(DEFAULT_API_PASSWORD) {
        banners.push(Banner {
            id: "banner-default-api-password",
            text: "The API PASSWORD is still the default \"123\": anyone can use this gateway. Change it in Settings."
                .to_owned(),
        });
    }
    if let Some(shared) = &state.shared {
        if !shared.status().is_up() {
            let pending = shared.pending_count();
            banners.push(Banner {
                id: "banner-redis-away",
                text: format!(
                    "Shared state: Redis at {} is unreachable. This replica serves from its own view; {pending} change(s) wait to be shared when it returns.",
                    shared.status().endpoint()
                ),
            });
        }
    } else if !config.enable_storage {
        banners.push(Banner {
            id: "banner-no-storage",
            text: "ENABLE_STORAGE=false: nothing changed here is saved; it is lost at the next restart.".to_owned(),
        });
    }
    banners
}

fn chrome(state: &AppState, info: &SessionInfo, active: &'static str) -> Chrome {
    Chrome {
        prefix: prefix_of(state),
        csrf: info.csrf.clone(),
        active,
        banners: banners(state),
        flash: state.dashboard.sessions.take_flash(&info.id),
        version: VERSION,
    }
}

// ---------------------------------------------------------------- login

pub async fn login_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    if session(&request, &state, true).is_ok() {
        return Ok(redirect(format!("{}/", prefix_of(&state))));
    }
    login_form(&request, &state, None, StatusCode::OK)
}

/// The login form: a password field, or — while no dashboard password is
/// set — a field for the setup code printed at startup. No banners: the
/// page is open to anyone.
fn login_form(
    request: &HttpRequest,
    state: &AppState,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, DashboardError> {
    let token = random_token(&mut rand::rng());
    let prefix = prefix_of(state);
    let setup = state.dashboard.password.mode(&state.config().web_password) == Mode::Setup;
    let page = LoginPage { prefix: prefix.clone(), csrf: token.clone(), error, setup, version: VERSION };
    let mut response = html(&page, status)?;
    set_cookie(&mut response, request, state, LOGIN_COOKIE, token);
    Ok(response)
}

/// Checks a dashboard password (or, before one is set, the setup code) as
/// an attempt that counts. In order: a locked-out address is refused
/// unchecked; an argon2 check needs one of the few permits (else `Busy`,
/// at once, uncounted); the attempt is counted *before* the check, so
/// attempts sent together cannot all be checked; a success clears the
/// address's record. Login, the key export, the password change and the
/// settings that decide where keys go all come through here. Returns
/// whether it matched, and what it was checked against.
async fn attempt_password(
    request: &HttpRequest,
    state: &AppState,
    candidate: &str,
    what: &str,
) -> Result<(bool, Mode), DashboardError> {
    let config = state.config();
    let address = crate::auth::client_address(request, &config);
    let throttle = state.throttles.of(Guarded::Dashboard);
    if let Err(locked) = throttle.check(address, state.now_ms()) {
        return Err(DashboardError::throttled(locked.retry_after_ms));
    }
    let pass = state.dashboard.password.begin(&config.web_password).map_err(|Busy| DashboardError::Busy)?;
    if let Err(Verdict::LockedOut { retry_after_ms, began }) =
        throttle.reserve(address, config.auth_failures_per_minute, state.now_ms())
    {
        if began {
            log::warn!("dashboard: too many wrong passwords from {address}: refused for {} s", retry_after_ms / 1000);
            crate::cluster::share_lockout(state, Guarded::Dashboard, address, retry_after_ms);
        }
        return Err(DashboardError::throttled(retry_after_ms));
    }
    let mode = pass.mode().clone();
    let matched = pass.check(candidate).await;
    if matched {
        throttle.record_success(address);
    } else {
        let wrong = if mode == Mode::Setup { "setup code" } else { "password" };
        log::warn!("dashboard: wrong {wrong} for {what} from {address}");
    }
    Ok((matched, mode))
}

pub async fn login(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let form = read_form(&request, &state, payload, MAX_LOGIN_FORM_BYTES).await?;
    let expected_token = request.cookie(LOGIN_COOKIE).map(|cookie| cookie.value().to_owned()).unwrap_or_default();
    if !tokens_match(&expected_token, field(&form, "csrf").unwrap_or("")) {
        return login_form(
            &request,
            &state,
            Some("The login form expired; please try again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let setup = state.dashboard.password.mode(&state.config().web_password) == Mode::Setup;
    let candidate =
        field(&form, if setup { "setup_code" } else { "password" }).unwrap_or("").trim_end_matches(['\r', '\n']);
    let (matched, mode) = attempt_password(&request, &state, candidate, "login").await?;
    if !matched {
        let message =
            if mode == Mode::Setup { "Wrong setup code / 设置码错误" } else { "Wrong password / 密码错误" };
        return login_form(&request, &state, Some(message.into()), StatusCode::UNAUTHORIZED);
    }
    // The setup code opens only the page that sets the password.
    let forced = mode == Mode::Setup;
    let info = state.dashboard.sessions.create(forced, state.now_ms(), &mut rand::rng());
    state.store.send(session_started(&state, &info));
    let address = crate::auth::client_address(&request, &state.config());
    if forced {
        log::warn!("dashboard: setup code accepted from {address}; a password must be set now");
    } else {
        log::info!("dashboard login from {address}");
    }
    let prefix = prefix_of(&state);
    let mut response = redirect(if forced { format!("{prefix}/password") } else { format!("{prefix}/") });
    set_cookie(&mut response, &request, &state, SESSION_COOKIE, info.id);
    set_cookie(&mut response, &request, &state, LOGIN_COOKIE, String::new());
    Ok(response)
}

pub async fn logout(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, _form) = authorized_post(&request, &state, payload, true).await?;
    state.dashboard.sessions.remove(&info.id);
    state.store.send(Change::SessionEnded { digest: crate::store::session_digest(&info.id) });
    log::info!("dashboard logout");
    let prefix = prefix_of(&state);
    let mut response = redirect(format!("{prefix}/login"));
    set_cookie(&mut response, &request, &state, SESSION_COOKIE, String::new());
    Ok(response)
}

pub async fn password_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, true)?;
    let page =
        PasswordPage { chrome: chrome(&state, &info, "password"), forced: info.must_change_password, error: None };
    html(&page, StatusCode::OK)
}

/// Sets the dashboard password: with the current one, or — in the session
/// the setup code opened — without. Every session ends (on every
/// replica); the one that made the change gets a new session at once.
pub async fn change_password(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, true).await?;
    let new_password = field(&form, "new_password").unwrap_or("");
    let current_ok = info.must_change_password
        || attempt_password(&request, &state, field(&form, "current").unwrap_or(""), "password change").await?.0;
    let problem = if !current_ok {
        Some("The current password is wrong.")
    } else if new_password.chars().count() < MIN_PASSWORD_LENGTH {
        Some("The new password must have at least 8 characters.")
    } else if new_password.len() > 1024 {
        Some("The new password must have at most 1024 bytes.")
    } else if new_password != field(&form, "confirm").unwrap_or("") {
        Some("The two new passwords differ.")
    } else if new_password == password::WELL_KNOWN_DEFAULT
        || (!info.must_change_password && new_password == field(&form, "current").unwrap_or(""))
    {
        Some("Choose a password different from the current one.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let page = PasswordPage {
            chrome: chrome(&state, &info, "password"),
            forced: info.must_change_password,
            error: Some(problem.to_owned()),
        };
        return html(&page, StatusCode::BAD_REQUEST);
    }
    let permit = state.dashboard.password.hashing_permit().map_err(|Busy| DashboardError::Busy)?;
    let to_hash = new_password.to_owned();
    let hash = web::block(move || {
        let _permit = permit;
        password::hash(&to_hash, &mut rand::rng())
    })
    .await
    .map_err(|_| DashboardError::Render)?
    .ok_or(DashboardError::Render)?;
    state.dashboard.password.set_hash(hash.clone());
    crate::secret::register_secret(new_password);
    // Every session ends, this one included; this client goes on in a new
    // one (new id, new CSRF token).
    state.dashboard.sessions.remove_all();
    let fresh = state.dashboard.sessions.create(false, state.now_ms(), &mut rand::rng());
    let digest = crate::store::session_digest(&fresh.id);
    state.store.send_all(vec![
        Change::SetPasswordHash(hash),
        Change::PasswordChangedIn { digest: digest.clone() },
        session_started(&state, &fresh),
    ]);
    let address = crate::auth::client_address(&request, &state.config());
    log::warn!("dashboard password set from {address}; every session ended");
    state
        .dashboard
        .sessions
        .set_flash(&fresh.id, Flash { kind: "ok", text: "Password saved. Every other session was logged out.".into() });
    let prefix = prefix_of(&state);
    let mut response = redirect(format!("{prefix}/"));
    set_cookie(&mut response, &request, &state, SESSION_COOKIE, fresh.id);
    Ok(response)
}

/// The shared form of a session that just began (other replicas learn it
/// by digest; see `store::redis`).
fn session_started(state: &AppState, info: &crate::dashboard::session::SessionInfo) -> Change {
    Change::SessionStarted {
        digest: crate::store::session_digest(&info.id),
        csrf: info.csrf.clone(),
        must_change_password: info.must_change_password,
        at_ms: state.now_ms(),
    }
}

// ---------------------------------------------------------------- overview

fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `2026-11-27 16:40:05 UTC`.
pub fn format_time(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "never".to_owned();
    }
    let seconds = (unix_ms / 1000) as i64;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

/// `in 3 min 20 s`, `in 2 h 5 min`.
fn format_until(until_ms: u64, now_ms: u64) -> String {
    let seconds = until_ms.saturating_sub(now_ms).div_ceil(1000);
    match seconds {
        0..=59 => format!("in {seconds} s"),
        60..=3599 => format!("in {} min {} s", seconds / 60, seconds % 60),
        _ => format!("in {} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn format_duration(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=86_399 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

pub async fn overview(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let now_ms = state.now_ms();
    let summary = state.pool.summary(now_ms);
    let count = |label: &str, value: usize| CountRow { label: label.to_owned(), value: group_digits(value as u64) };
    let keys = vec![
        count("Total", summary.total),
        count("Active", summary.active),
        count("Limited for some model", summary.limited_for_some_model),
        count("Invalid", summary.invalid),
        count("Disabled", summary.disabled),
    ];
    let window = |label: &'static str, minutes: u64| {
        let totals = state.stats.totals(minutes, now_ms);
        WindowRow {
            label,
            requests: group_digits(totals.requests),
            successes: group_digits(totals.successes),
            failures: group_digits(totals.failures),
            cache_hits: group_digits(totals.cache_hits),
            prompt_tokens: group_digits(totals.prompt_tokens),
            completion_tokens: group_digits(totals.completion_tokens),
        }
    };
    let windows = vec![window("Last minute", 1), window("Last hour", 60), window("Last 24 hours", 24 * 60)];
    let day = state.stats.totals(24 * 60, now_ms);
    let error_kinds = day
        .failures_by_kind
        .iter()
        .map(|(kind, count)| ErrorKindRow {
            kind: kind.clone(),
            count: group_digits(*count),
            rate: format!("{:.1}%", *count as f64 * 100.0 / day.requests.max(1) as f64),
        })
        .collect();
    // 24 h in 15-minute steps.
    let series = state.stats.series(24 * 60, now_ms);
    let per_step = |value: fn(&crate::store::MinuteStats) -> u64| -> Vec<u64> {
        series.chunks(15).map(|chunk| chunk.iter().map(value).sum()).collect()
    };
    let chart = |title: &'static str, values: Vec<u64>| {
        let points = crate::stats::chart_points(&values, 600, 120);
        Chart {
            title,
            width: 600,
            height: 120,
            points: points.points,
            max_label: group_digits(points.max),
            from_label: "-24 h",
            to_label: "now",
        }
    };
    let page = OverviewPage {
        chrome: chrome(&state, &info, "overview"),
        keys,
        windows,
        error_kinds,
        calls_chart: chart("Requests per 15 minutes", per_step(|minute| minute.requests)),
        tokens_chart: chart(
            "Tokens per 15 minutes",
            per_step(|minute| minute.prompt_tokens + minute.completion_tokens),
        ),
        active_requests: group_digits(state.stats.active_requests() as u64),
        cache_entries: group_digits(state.swipe_cache.len() as u64),
        uptime: format_duration(state.started_at.elapsed().as_secs()),
        version: VERSION,
        global_backoff: summary.global_backoff_until_ms.map(|until| {
            format!("Google is limiting this server: the whole pool pauses, back {}.", format_until(until, now_ms))
        }),
    };
    html(&page, StatusCode::OK)
}

// ---------------------------------------------------------------- keys

#[derive(Deserialize)]
pub struct KeysQuery {
    page: Option<usize>,
    q: Option<String>,
    state: Option<String>,
}

const STATE_FILTERS: &[(&str, &str)] =
    &[("all", "All"), ("active", "Active"), ("limited", "Limited"), ("invalid", "Invalid"), ("disabled", "Disabled")];

fn key_row(view: crate::keys::KeyView, now_ms: u64) -> KeyRow {
    let (state, reason, since) = match &view.state {
        KeyState::Active => ("active", String::new(), String::new()),
        KeyState::Invalid { since_ms, reason } => ("invalid", reason.clone(), format_time(*since_ms)),
        KeyState::Disabled => ("disabled", String::new(), String::new()),
        KeyState::Removed => ("deleted", String::new(), String::new()),
    };
    let usage = view
        .models
        .iter()
        .map(|model| {
            let (availability, until) = match model.availability {
                ModelAvailability::Ready => ("ready", String::new()),
                ModelAvailability::Cooling { until_ms, .. } => ("cooling", format_until(until_ms, now_ms)),
                ModelAvailability::ExhaustedToday { until_ms } => ("exhausted", format_until(until_ms, now_ms)),
                ModelAvailability::OverDailyLimit { until_ms } => ("over limit", format_until(until_ms, now_ms)),
            };
            UsageCell {
                model: model.model.clone(),
                availability: availability.to_owned(),
                until,
                successes: group_digits(model.usage_today.successes),
                failures: group_digits(model.usage_today.failures),
                tokens: group_digits(model.usage_today.prompt_tokens + model.usage_today.completion_tokens),
            }
        })
        .collect();
    let last_error = view
        .recent_errors
        .first()
        .map(|note| format!("{} {} {} (HTTP {})", format_time(note.at_ms), note.model, note.kind.as_str(), note.status))
        .unwrap_or_default();
    KeyRow {
        id: view.id.0,
        masked: view.masked,
        state,
        reason,
        since,
        usage,
        last_error,
        last_used: format_time(view.last_used_ms),
        last_validated: format_time(view.last_validated_ms),
    }
}

pub async fn keys_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<KeysQuery>,
) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let now_ms = state.now_ms();
    let wanted_state = query.state.as_deref().filter(|s| STATE_FILTERS.iter().any(|(v, _)| v == s)).unwrap_or("all");
    let search = query.q.as_deref().unwrap_or("").trim().to_owned();
    let needle = search.trim_start_matches("AIza").trim_start_matches('…').trim_start_matches('#').to_owned();
    let matching = state.pool.find_ids(
        |id, tail, key_state, limited| {
            let state_ok = match wanted_state {
                "active" => *key_state == KeyState::Active,
                "limited" => *key_state == KeyState::Active && limited,
                "invalid" => matches!(key_state, KeyState::Invalid { .. }),
                "disabled" => *key_state == KeyState::Disabled,
                _ => true,
            };
            state_ok && (needle.is_empty() || tail.contains(needle.as_str()) || id.0.to_string() == needle)
        },
        now_ms,
    );
    let pages = matching.len().div_ceil(KEYS_PER_PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = matching
        .iter()
        .skip((page - 1) * KEYS_PER_PAGE)
        .take(KEYS_PER_PAGE)
        .filter_map(|id| state.pool.key_view(*id, now_ms))
        .map(|view| key_row(view, now_ms))
        .collect();
    let filter_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &search)
        .append_pair("state", wanted_state)
        .finish();
    let progress = state.validation.progress();
    let limits = state.pool.daily_limits();
    let summary = state.pool.summary(now_ms);
    let page_view = KeysPage {
        chrome: chrome(&state, &info, "keys"),
        rows,
        page,
        pages,
        previous_page: (page > 1).then(|| page - 1),
        next_page: (page < pages).then(|| page + 1),
        matching: group_digits(matching.len() as u64),
        total: group_digits(summary.total as u64),
        query: search,
        states: STATE_FILTERS
            .iter()
            .map(|(value, label)| Choice {
                value: (*value).to_owned(),
                label: (*label).to_owned(),
                selected: *value == wanted_state,
            })
            .collect(),
        filter_query,
        validation: ValidationView {
            running: progress.running,
            done: progress.done,
            total: progress.total,
            valid: progress.done.saturating_sub(progress.found_invalid),
            invalid: progress.found_invalid,
            percent: (progress.done * 100).checked_div(progress.total).unwrap_or(0) as u32,
        },
        limits: limits
            .per_model
            .iter()
            .map(|(model, limit)| LimitRow { model: model.clone(), limit: group_digits(u64::from(*limit)) })
            .collect(),
        default_limit: group_digits(u64::from(limits.default_limit)),
    };
    html(&page_view, StatusCode::OK)
}

/// Key-shaped strings in `text`, repeats included.
fn count_key_tokens(text: &str) -> usize {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|token| token.starts_with(ApiKey::PREFIX) && token.len() == ApiKey::LENGTH)
        .count()
}

fn count_malformed_keys(text: &str) -> usize {
    ApiKey::count_malformed(text)
}

pub async fn add_keys(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let text = field(&form, "keys").unwrap_or("");
    let found = ApiKey::extract_all(text);
    let malformed = count_malformed_keys(text);
    // Repeats within the paste are duplicates too.
    let mut duplicates = count_key_tokens(text).saturating_sub(found.len());
    let mut new_keys = Vec::new();
    for key in found {
        let present = state
            .pool
            .id_of(&key)
            .and_then(|id| state.pool.key_view(id, 0))
            .is_some_and(|view| view.state != KeyState::Removed);
        if present {
            duplicates += 1;
        } else {
            new_keys.push(key);
        }
    }
    let added = new_keys.len();
    if added > 0 {
        state.store.send(Change::AddKeys(new_keys.iter().map(|key| key.expose().to_owned()).collect()));
        state.pool.add(new_keys.iter().cloned());
        let ids: Vec<KeyId> = new_keys.iter().filter_map(|key| state.pool.id_of(key)).collect();
        state.validation.request_keys(&ids);
        state.model_refresh.notify_one();
    }
    log::info!("dashboard: {added} keys added, {duplicates} already present, {malformed} malformed");
    let mut message = format!("{added} keys added");
    if duplicates > 0 {
        message.push_str(&format!(", {duplicates} duplicate{} skipped", if duplicates == 1 { "" } else { "s" }));
    }
    if malformed > 0 {
        message.push_str(&format!(
            ", {malformed} string{} looked like a key but {} not valid (AIza… and 39 characters)",
            if malformed == 1 { "" } else { "s" },
            if malformed == 1 { "is" } else { "are" }
        ));
    }
    let kind = if added > 0 || (duplicates == 0 && malformed == 0) { "ok" } else { "error" };
    Ok(flash_and_redirect(&state, &info, kind, format!("{message}."), "/keys"))
}

pub async fn key_action(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let ids: Vec<KeyId> = form
        .iter()
        .filter(|(name, _)| name == "id")
        .filter_map(|(_, value)| value.parse::<u32>().ok())
        .map(KeyId)
        .filter(|id| state.pool.key_of(*id).is_some())
        .collect();
    if ids.is_empty() {
        return Ok(flash_and_redirect(&state, &info, "error", "Select at least one key.".into(), "/keys"));
    }
    let action = field(&form, "action").unwrap_or("");
    let mut changes = Vec::new();
    for id in &ids {
        let Some(key) = state.pool.key_of(*id) else { continue };
        let key_text = key.expose().to_owned();
        match action {
            "disable" => {
                state.pool.set_disabled(*id, true);
                changes.push(Change::SetKeyAction { key: key_text, action: Some(crate::store::KeyAction::Disabled) });
            }
            "enable" => {
                state.pool.set_disabled(*id, false);
                changes.push(Change::SetKeyAction { key: key_text, action: None });
            }
            "delete" => {
                state.pool.remove(*id);
                changes.push(Change::SetKeyAction { key: key_text, action: Some(crate::store::KeyAction::Deleted) });
            }
            "validate" => {}
            _ => return Err(DashboardError::BadForm("Unknown action".into())),
        }
    }
    if action == "validate" {
        state.validation.request_keys(&ids);
    }
    state.store.send_all(changes);
    if action == "delete" {
        state.model_refresh.notify_one();
    }
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    log::info!("dashboard: {action} keys {}", names.join(" "));
    let done = match action {
        "disable" => "disabled",
        "enable" => "enabled",
        "delete" => "deleted",
        _ => "queued for validation",
    };
    Ok(flash_and_redirect(&state, &info, "ok", format!("{} key(s) {done}.", ids.len()), "/keys"))
}

pub async fn validate_all(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, _form) = authorized_post(&request, &state, payload, false).await?;
    state.validation.request(crate::validator::ValidationScope::All);
    log::info!("dashboard: validation of every key requested");
    Ok(flash_and_redirect(&state, &info, "ok", "Validation of every key started.".into(), "/keys"))
}

pub async fn validation_progress(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashboardError> {
    session(&request, &state, false)?;
    let progress = state.validation.progress();
    let mut response = HttpResponse::Ok();
    security_headers(&mut response);
    Ok(response.json(serde_json::json!({
        "running": progress.running,
        "done": progress.done,
        "total": progress.total,
        "valid": progress.done.saturating_sub(progress.found_invalid),
        "invalid": progress.found_invalid,
    })))
}

pub async fn clear_invalid(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, _form) = authorized_post(&request, &state, payload, false).await?;
    let ids = state.pool.find_ids(|_, _, key_state, _| matches!(key_state, KeyState::Invalid { .. }), state.now_ms());
    let mut changes = Vec::new();
    for id in &ids {
        if let Some(key) = state.pool.key_of(*id) {
            state.pool.remove(*id);
            changes.push(Change::SetKeyAction {
                key: key.expose().to_owned(),
                action: Some(crate::store::KeyAction::Deleted),
            });
        }
    }
    state.store.send_all(changes);
    log::info!("dashboard: {} invalid keys deleted", ids.len());
    Ok(flash_and_redirect(&state, &info, "ok", format!("{} invalid key(s) deleted.", ids.len()), "/keys"))
}

pub async fn export_keys(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let address = crate::auth::client_address(&request, &state.config());
    let now_ms = state.now_ms();
    if !attempt_password(&request, &state, field(&form, "password").unwrap_or(""), "key export").await?.0 {
        let page = MessagePage {
            chrome: chrome(&state, &info, "keys"),
            title: "Export refused".into(),
            message: "The password was wrong; nothing was exported.".into(),
        };
        return html(&page, StatusCode::FORBIDDEN);
    }
    let ids = state.pool.find_ids(|_, _, key_state, _| *key_state == KeyState::Active, now_ms);
    let mut body = String::with_capacity(ids.len() * 40);
    for id in &ids {
        if let Some(key) = state.pool.key_of(*id) {
            body.push_str(key.expose());
            body.push('\n');
        }
    }
    log::warn!("dashboard: {} valid keys exported from {address}", ids.len());
    let mut response = HttpResponse::Ok();
    security_headers(&mut response);
    Ok(response
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"hajimi-valid-keys.txt\""))
        .body(body))
}

pub async fn set_model_limit(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let model = field(&form, "model").unwrap_or("").trim().to_owned();
    let valid_model = !model.is_empty()
        && model.len() <= 128
        && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid_model {
        return Ok(flash_and_redirect(
            &state,
            &info,
            "error",
            "Enter a model name (letters, digits, - . _).".into(),
            "/keys",
        ));
    }
    let limit = match field(&form, "limit").unwrap_or("").trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(limit) => Some(limit),
            Err(_) => {
                return Ok(flash_and_redirect(
                    &state,
                    &info,
                    "error",
                    "The limit must be a whole number.".into(),
                    "/keys",
                ))
            }
        },
    };
    let mut limits = state.pool.daily_limits();
    match limit {
        Some(limit) => limits.per_model.insert(model.clone(), limit),
        None => limits.per_model.remove(&model),
    };
    state.pool.set_daily_limits(limits);
    state.store.send(Change::SetModelLimit { model: model.clone(), limit });
    log::info!("dashboard: daily limit for {model} set to {}", limit.map_or("default".to_owned(), |l| l.to_string()));
    Ok(flash_and_redirect(&state, &info, "ok", format!("Daily limit for {model} saved."), "/keys"))
}

// ---------------------------------------------------------------- settings

fn settings_view(
    state: &AppState,
    errors: &settings::FieldErrors,
    submitted: &BTreeMap<&'static str, String>,
) -> Vec<SettingsGroup> {
    let layers = state.settings.lock();
    let combined = layers.combined(&layers.overrides);
    GROUPS
        .iter()
        .map(|(title, specs)| SettingsGroup {
            title,
            settings: specs
                .iter()
                .map(|spec| {
                    let value = submitted.get(spec.name).cloned().unwrap_or_else(|| combined.get(spec.name).to_owned());
                    SettingRow {
                        name: spec.name,
                        description: spec.description,
                        kind: spec.kind.as_str(),
                        checked: crate::config::parse_bool(&value).unwrap_or(false),
                        value: if spec.kind == settings::Kind::Secret { String::new() } else { value },
                        source: combined.source(spec.name).to_string(),
                        overridden: layers.overrides.contains_key(spec.name),
                        restart_required: spec.restart_required,
                        guarded: settings::decides_where_secrets_go(spec.name),
                        error: errors.get(spec.name).cloned(),
                    }
                })
                .collect(),
        })
        .collect()
}

pub async fn settings_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let page = SettingsPage {
        chrome: chrome(&state, &info, "settings"),
        groups: settings_view(&state, &Default::default(), &Default::default()),
        error_summary: None,
        guarded_names: settings::SECRET_DESTINATIONS.join(", "),
    };
    html(&page, StatusCode::OK)
}

pub async fn save_settings(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let changes = {
        let layers = state.settings.lock();
        settings::changes_from_form(&form, &layers.combined(&layers.overrides))
    };
    if changes.is_empty() {
        return Ok(flash_and_redirect(&state, &info, "ok", "Nothing changed.".into(), "/settings"));
    }
    // Where keys and tokens are sent: only with the password again.
    let guarded: Vec<&'static str> =
        changes.keys().copied().filter(|name| settings::decides_where_secrets_go(name)).collect();
    if !guarded.is_empty() {
        let given = field(&form, "confirm_password").unwrap_or("");
        let confirmed = !given.is_empty() && attempt_password(&request, &state, given, "settings").await?.0;
        if !confirmed {
            let reason = if given.is_empty() {
                "needs the dashboard password (below, next to Save)"
            } else {
                "needs the dashboard password: the one given was wrong"
            };
            let errors: settings::FieldErrors = guarded.iter().map(|name| (*name, reason.to_owned())).collect();
            let submitted: BTreeMap<&'static str, String> = changes
                .into_iter()
                .filter(|(name, _)| settings::spec(name).is_some_and(|spec| spec.kind != settings::Kind::Secret))
                .collect();
            let page = SettingsPage {
                chrome: chrome(&state, &info, "settings"),
                groups: settings_view(&state, &errors, &submitted),
                error_summary: Some(format!(
                    "Changing {} decides where keys or tokens are sent: enter the dashboard password to save.",
                    guarded.join(", ")
                )),
                guarded_names: settings::SECRET_DESTINATIONS.join(", "),
            };
            return html(&page, StatusCode::FORBIDDEN);
        }
    }
    match settings::save(&state, changes.clone()) {
        Ok(names) => {
            if guarded.is_empty() {
                log::info!("dashboard: settings changed: {}", names.join(", "));
            } else {
                let address = crate::auth::client_address(&request, &state.config());
                log::warn!(
                    "dashboard: settings changed: {} (where keys or tokens are sent: password confirmed from {address})",
                    names.join(", ")
                );
            }
            let restart: Vec<&str> = names
                .iter()
                .copied()
                .filter(|name| settings::spec(name).is_some_and(|spec| spec.restart_required))
                .collect();
            let mut message = format!("Saved: {}.", names.join(", "));
            if !restart.is_empty() {
                message.push_str(&format!(" {} take(s) effect after a restart.", restart.join(", ")));
            }
            Ok(flash_and_redirect(&state, &info, "ok", message, "/settings"))
        }
        Err(errors) => {
            let names: Vec<&str> = errors.keys().copied().collect();
            log::info!("dashboard: settings not saved, invalid: {}", names.join(", "));
            // Secrets are never echoed back into the form.
            let submitted: BTreeMap<&'static str, String> = changes
                .into_iter()
                .filter(|(name, _)| settings::spec(name).is_some_and(|spec| spec.kind != settings::Kind::Secret))
                .collect();
            let page = SettingsPage {
                chrome: chrome(&state, &info, "settings"),
                groups: settings_view(&state, &errors, &submitted),
                error_summary: Some(format!("Nothing was saved: fix {}.", names.join(", "))),
                guarded_names: settings::SECRET_DESTINATIONS.join(", "),
            };
            html(&page, StatusCode::BAD_REQUEST)
        }
    }
}

pub async fn revert_setting(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    match settings::revert(&state, field(&form, "name").unwrap_or("")) {
        Ok(name) => {
            log::info!("dashboard: setting {name} reverted");
            Ok(flash_and_redirect(
                &state,
                &info,
                "ok",
                format!("{name} reverted to its file, env or default value."),
                "/settings",
            ))
        }
        Err(reason) => Ok(flash_and_redirect(&state, &info, "error", format!("Not reverted: {reason}."), "/settings")),
    }
}

// ---------------------------------------------------------------- vertex

fn mask_secret(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 8 {
        return "…".to_owned();
    }
    format!("{}…{}", chars[..4].iter().collect::<String>(), chars[chars.len() - 4..].iter().collect::<String>())
}

pub async fn vertex_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let config = state.config();
    let vertex = state.dashboard.vertex.read();
    let page = VertexPage {
        chrome: chrome(&state, &info, "vertex"),
        enable_vertex: config.enable_vertex,
        enable_vertex_express: config.enable_vertex_express,
        express_keys: vertex
            .express_keys
            .iter()
            .enumerate()
            .map(|(id, key)| ExpressKeyRow { id, masked: mask_secret(key) })
            .collect(),
        credentials: vertex
            .credentials
            .iter()
            .map(|credential| CredentialRow {
                client_email: credential.client_email.clone(),
                project_id: credential.project_id.clone(),
            })
            .collect(),
        in_use: vertex_in_use(&state),
        problems: state.vertex.problems.read().clone(),
    };
    drop(vertex);
    html(&page, StatusCode::OK)
}

/// Every Vertex credential in use, from any source, with its health.
fn vertex_in_use(state: &AppState) -> Vec<VertexInUseRow> {
    let now_ms = state.now_ms();
    let mut rows = Vec::new();
    for (kind, pool) in [("express", &state.vertex.express), ("account", &state.vertex.accounts)] {
        for view in pool.key_views(0, 1000, now_ms) {
            let Some(key) = pool.key_of(view.id) else { continue };
            let label = match kind {
                "express" => mask_secret(key.expose()),
                _ => state.vertex.account(key.expose()).map(|account| account.client_email.clone()).unwrap_or_default(),
            };
            let health = match &view.state {
                KeyState::Invalid { reason, .. } => {
                    format!("invalid: {}", crate::secret::redact_keys(reason))
                }
                KeyState::Active => "active".to_owned(),
                KeyState::Disabled => "disabled".to_owned(),
                KeyState::Removed => "removed".to_owned(),
            };
            rows.push(VertexInUseRow { kind, id: view.id.0, label, health });
        }
    }
    rows
}

/// The Vertex page's "Test" buttons: a real token grant for a service
/// account, a real (free) `countTokens` call for an Express key; the
/// outcome is flashed.
pub async fn vertex_test(
    request: HttpRequest,
    state: web::Data<AppState>,
    clients: web::Data<crate::startup::WorkerClientCell>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let id = field(&form, "id").and_then(|id| id.parse::<u32>().ok()).map(crate::keys::KeyId);
    let clients = clients.current(&state);
    let (kind, message) = match (field(&form, "kind"), id) {
        (Some("account"), Some(id)) => {
            let account = state.vertex.accounts.key_of(id).and_then(|key| state.vertex.account(key.expose()));
            match account {
                None => ("error", "No such service account.".to_owned()),
                Some(account) => match crate::vertex::grant(&clients.gemini, &account, state.now_ms()).await {
                    Ok(token) => {
                        let minutes = token.expires_at_ms.saturating_sub(state.now_ms()) / 60_000;
                        state.vertex.tokens.store(&account.identity(), token);
                        state.vertex.accounts.mark_valid(id, state.now_ms());
                        ("ok", format!("{}: token granted (valid {minutes} min).", account.client_email))
                    }
                    Err(error) => ("error", format!("{}: {error}", account.client_email)),
                },
            }
        }
        (Some("express"), Some(id)) => match state.vertex.express.key_of(id) {
            None => ("error", "No such Express key.".to_owned()),
            Some(key) => {
                let target = crate::gemini::client::Target {
                    version: crate::gemini::client::ApiVersion::V1,
                    model: std::rc::Rc::from(EXPRESS_TEST_MODEL),
                    service: crate::gemini::client::Service::VertexExpress,
                };
                let body = bytes::Bytes::from_static(br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#);
                let credential = crate::gemini::client::CallCredential::Key(&key);
                match clients.gemini.call(credential, &target, "countTokens", body).await {
                    Ok(_) => (
                        "ok",
                        format!("Express key {}: Vertex answered ({EXPRESS_TEST_MODEL}).", mask_secret(key.expose())),
                    ),
                    Err(failure) => (
                        "error",
                        format!(
                            "Express key {}: HTTP {} {}",
                            mask_secret(key.expose()),
                            failure.status,
                            failure.message
                        ),
                    ),
                }
            }
        },
        _ => ("error", "Nothing to test.".to_owned()),
    };
    log::info!(target: "hajimi::vertex", "dashboard test: {}", crate::secret::LogSafe(&message));
    Ok(flash_and_redirect(&state, &info, kind, message, "/vertex"))
}

/// The model an Express key is tested with (`countTokens`: no quota used).
const EXPRESS_TEST_MODEL: &str = "gemini-2.5-flash";

pub async fn vertex_toggles(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let checked = |name: &str| form.iter().any(|(field, value)| field == name && value != "false");
    let wanted: BTreeMap<&'static str, String> = [
        ("ENABLE_VERTEX", checked("enable_vertex").to_string()),
        ("ENABLE_VERTEX_EXPRESS", checked("enable_vertex_express").to_string()),
    ]
    .into();
    let config = state.config();
    let changes: BTreeMap<&'static str, String> = wanted
        .into_iter()
        .filter(|(name, value)| {
            let current = if *name == "ENABLE_VERTEX" { config.enable_vertex } else { config.enable_vertex_express };
            current.to_string() != *value
        })
        .collect();
    match settings::save(&state, changes) {
        Ok(names) if names.is_empty() => {
            Ok(flash_and_redirect(&state, &info, "ok", "Nothing changed.".into(), "/vertex"))
        }
        Ok(names) => {
            log::info!("dashboard: Vertex toggles changed: {}", names.join(", "));
            Ok(flash_and_redirect(&state, &info, "ok", format!("Saved: {}.", names.join(", ")), "/vertex"))
        }
        Err(errors) => {
            let text = errors.iter().map(|(name, reason)| format!("{name}: {reason}")).collect::<Vec<_>>().join("; ");
            Ok(flash_and_redirect(&state, &info, "error", format!("Not saved: {text}"), "/vertex"))
        }
    }
}

pub async fn add_express_keys(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let text = field(&form, "keys").unwrap_or("");
    let candidates: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|item| item.len() >= 16 && item.len() <= 256 && item.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .collect();
    let mut added = Vec::new();
    {
        let mut vertex = state.dashboard.vertex.write();
        for key in candidates {
            if !vertex.express_keys.contains(&key) && !added.contains(&key) {
                crate::secret::register_secret(&key);
                vertex.express_keys.push(key.clone());
                added.push(key);
            }
        }
    }
    let count = added.len();
    state.store.send_all(added.into_iter().map(Change::AddExpressKey).collect());
    state.sync_vertex();
    log::info!("dashboard: {count} Vertex Express keys added");
    let kind = if count > 0 { "ok" } else { "error" };
    Ok(flash_and_redirect(&state, &info, kind, format!("{count} Express key(s) added."), "/vertex"))
}

pub async fn remove_express_key(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let index = field(&form, "id").and_then(|id| id.parse::<usize>().ok());
    let removed = {
        let mut vertex = state.dashboard.vertex.write();
        match index {
            Some(index) if index < vertex.express_keys.len() => Some(vertex.express_keys.remove(index)),
            _ => None,
        }
    };
    match removed {
        Some(key) => {
            state.store.send(Change::RemoveExpressKey(key));
            state.sync_vertex();
            log::info!("dashboard: a Vertex Express key was removed");
            Ok(flash_and_redirect(&state, &info, "ok", "Express key removed.".into(), "/vertex"))
        }
        None => Ok(flash_and_redirect(&state, &info, "error", "No such Express key.".into(), "/vertex")),
    }
}

/// Checks one pasted service-account JSON (the same rules as
/// `GOOGLE_CREDENTIALS_JSON`: a real RSA key, every field Vertex needs);
/// errors name the field, never the key.
pub fn parse_service_account(json: &str) -> Result<StoredCredential, String> {
    let mut accounts =
        crate::vertex::credentials::parse_accounts(json).map_err(|error| format!("Not added: {error}."))?;
    if accounts.len() != 1 {
        return Err(format!("This holds {} credentials; paste one key file at a time.", accounts.len()));
    }
    let account = accounts.remove(0);
    Ok(StoredCredential {
        client_email: account.client_email,
        project_id: account.project_id,
        json: json.trim().to_owned(),
    })
}

pub async fn add_credential(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    match parse_service_account(field(&form, "json").unwrap_or("")) {
        Ok(credential) => {
            let email = credential.client_email.clone();
            {
                let mut vertex = state.dashboard.vertex.write();
                vertex.credentials.retain(|known| known.client_email != email);
                vertex.credentials.push(credential.clone());
            }
            state.store.send(Change::AddCredential(credential));
            state.sync_vertex();
            log::info!("dashboard: Vertex credential {} added", crate::secret::LogSafe(&email));
            Ok(flash_and_redirect(&state, &info, "ok", format!("Credential {email} added."), "/vertex"))
        }
        Err(reason) => {
            let page = MessagePage {
                chrome: chrome(&state, &info, "vertex"),
                title: "Credential not added".into(),
                message: reason,
            };
            html(&page, StatusCode::BAD_REQUEST)
        }
    }
}

pub async fn remove_credential(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let email = field(&form, "client_email").unwrap_or("").to_owned();
    let removed = {
        let mut vertex = state.dashboard.vertex.write();
        let before = vertex.credentials.len();
        vertex.credentials.retain(|known| known.client_email != email);
        before != vertex.credentials.len()
    };
    if !removed {
        return Ok(flash_and_redirect(&state, &info, "error", "No such credential.".into(), "/vertex"));
    }
    state.store.send(Change::RemoveCredential { client_email: email.clone() });
    state.sync_vertex();
    log::info!("dashboard: Vertex credential {} removed", crate::secret::LogSafe(&email));
    Ok(flash_and_redirect(&state, &info, "ok", format!("Credential {email} removed."), "/vertex"))
}

// ---------------------------------------------------------------- log

#[derive(Deserialize)]
pub struct LogQuery {
    level: Option<String>,
    source: Option<String>,
}

impl LogQuery {
    fn level(&self) -> Option<log::Level> {
        match self.level.as_deref() {
            Some("error") => Some(log::Level::Error),
            Some("warn") => Some(log::Level::Warn),
            Some("info") => Some(log::Level::Info),
            _ => None,
        }
    }

    fn source(&self) -> Option<&'static str> {
        let wanted = self.source.as_deref()?;
        crate::log_ring::SOURCES.iter().copied().find(|source| *source == wanted)
    }
}

/// Whether a shared record's level (`ERROR`, `WARN`, …) is `min` or more
/// severe.
fn level_at_least(level: &str, min: log::Level) -> bool {
    level.parse::<log::Level>().is_ok_and(|level| level <= min)
}

fn shared_replica(state: &AppState) -> &str {
    state.shared.as_ref().map_or("", |shared| shared.replica())
}

fn log_row(record: &crate::log_ring::LogRecord) -> LogRow {
    LogRow {
        seq: record.seq,
        time: format_time(record.time_ms),
        level: record.level.as_str().to_owned(),
        source: record.source.to_owned(),
        message: record.message.clone(),
    }
}

pub async fn log_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let ring = crate::log_ring::global();
    let merged = match &state.shared {
        Some(shared) => shared.merged_log(ring.capacity()).await,
        None => None,
    };
    // With shared state, the log of every replica (each line names its
    // replica); this replica's own log while Redis is away.
    let records = match merged {
        Some(merged) => merged
            .into_iter()
            .filter(|record| query.level().is_none_or(|min| level_at_least(&record.level, min)))
            .filter(|record| query.source().is_none_or(|source| record.source == source))
            .map(|record| LogRow {
                seq: if shared_replica(&state) == record.replica { record.seq } else { 0 },
                time: format_time(record.time_ms),
                level: record.level,
                source: record.source,
                message: format!("[{}] {}", record.replica, record.message),
            })
            .collect(),
        None => ring.records(query.level(), query.source()).iter().map(log_row).collect(),
    };
    let level = query.level.as_deref().unwrap_or("");
    let source = query.source().unwrap_or("");
    let levels = [("", "All levels"), ("error", "Errors"), ("warn", "Warnings and errors"), ("info", "Info and above")]
        .iter()
        .map(|(value, label)| Choice { value: (*value).into(), label: (*label).into(), selected: *value == level })
        .collect();
    let sources = std::iter::once("")
        .chain(crate::log_ring::SOURCES.iter().copied())
        .map(|value| Choice {
            value: value.into(),
            label: if value.is_empty() { "All sources".into() } else { value.into() },
            selected: value == source,
        })
        .collect();
    let stream_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("level", level)
        .append_pair("source", source)
        .finish();
    let page = LogPage {
        chrome: chrome(&state, &info, "log"),
        records,
        levels,
        sources,
        stream_url: format!("{}/log/stream?{stream_query}", prefix_of(&state)),
        capacity: ring.capacity().to_string(),
    };
    html(&page, StatusCode::OK)
}

/// Live tail: every new record matching the filters as an SSE event.
pub async fn log_stream(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, DashboardError> {
    session(&request, &state, false)?;
    let (min_level, source) = (query.level(), query.source());
    let receiver = crate::log_ring::global().subscribe();
    let records = tokio_stream_from(receiver).filter_map(move |record| async move {
        let record = record?;
        let level_ok = min_level.is_none_or(|min| record.level <= min);
        let source_ok = source.is_none_or(|source| record.source == source);
        if !(level_ok && source_ok) {
            return None;
        }
        let mut json = serde_json::to_value(&*record).ok()?;
        json["seq"] = serde_json::json!(record.seq);
        json["time"] = serde_json::json!(format_time(record.time_ms));
        Some(Ok::<_, actix_web::Error>(web::Bytes::from(format!("data: {json}\n\n"))))
    });
    // A comment every 15 s keeps proxies from closing an idle tail.
    let keep_alive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b": keep-alive\n\n")), ()))
    });
    let opening =
        futures_util::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b": tail\n\n")) });
    let body = opening.chain(futures_util::stream::select(records, keep_alive));
    let mut response = HttpResponse::Ok();
    security_headers(&mut response);
    Ok(response.content_type("text/event-stream").insert_header(("x-accel-buffering", "no")).streaming(body))
}

/// A broadcast receiver as a stream of records (`None` items for records
/// the tail was too slow to receive: they are skipped).
fn tokio_stream_from(
    receiver: tokio::sync::broadcast::Receiver<std::sync::Arc<crate::log_ring::LogRecord>>,
) -> impl futures_util::Stream<Item = Option<std::sync::Arc<crate::log_ring::LogRecord>>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(record) => Some((Some(record), receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((None, receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

// ---------------------------------------------------------------- assets

pub async fn asset(name: web::Path<String>) -> HttpResponse {
    match super::assets::asset(&name) {
        Some((bytes, content_type)) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        let cases = [
            (0, "never"),
            (1_000, "1970-01-01 00:00:01 UTC"),
            (951_782_400_000, "2000-02-29 00:00:00 UTC"),
            (1_795_796_405_000, "2026-11-27 16:20:05 UTC"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_time(ms), expected);
        }
        assert_eq!(format_until(61_000, 0), "in 1 min 1 s");
        assert_eq!(group_digits(1234567), "1,234,567");
        assert_eq!(group_digits(12), "12");
    }

    #[test]
    fn malformed_key_lookalikes_are_counted_not_echoed() {
        let valid = "AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(count_malformed_keys(&format!("{valid}\nAIzaShort\nnot a key AIza123")), 2);
    }

    #[test]
    fn service_accounts_are_checked_before_they_are_stored() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/vertex/service-account.json");
        let good = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            parse_service_account(&good).unwrap().client_email,
            "hajimi-test@hajimi-test.iam.gserviceaccount.com"
        );
        let two = format!("[{good}, {}]", good.replace("hajimi-test@", "other@"));
        for bad in ["", "{}", "[1]", r#"{"type":"authorized_user"}"#, &good.replace("BEGIN", ""), &two] {
            let error = parse_service_account(bad).unwrap_err();
            assert!(!error.contains("PRIVATE KEY"), "{error}");
        }
        assert!(parse_service_account(&good.replace("\"project_id\"", "\"project\""))
            .unwrap_err()
            .contains("project_id"));
    }
}
