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

use super::format::{group_digits, Format};
use super::settings::{self, GROUPS};
use super::text::{self, Lang, Text};
use super::views::*;
use crate::keys::{KeyId, KeyState, ModelAvailability};
use crate::operator::password::{self, Busy, Mode};
use crate::operator::session::{random_token, tokens_match, SessionInfo, LOGIN_COOKIE, SESSION_COOKIE};
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
const MAX_PASSWORD_BYTES: usize = 1024;
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
    POST "/settings/import" => import_settings,
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
    GET "/lang" => switch_language,
}

/// Routes open without a session (the login itself, the language switch
/// and static files).
pub const OPEN_ROUTES: &[&str] = &["/login", "/assets/{name}", "/lang"];

/// Registers the dashboard's routes under `prefix` (`""` or `/name`).
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str) {
    register(cfg, prefix);
}

/// Why a dashboard request was not served. The plain-text bodies are in
/// the request's language (`message`, from its [`Text`]); only `Render`,
/// raised where no request is at hand, is always English.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No session: pages redirect to the login.
    #[error("{message}")]
    LoginRequired { prefix: String, is_page: bool, message: &'static str },
    /// A session that must set a new password first.
    #[error("password change required")]
    PasswordChangeRequired { prefix: String },
    #[error("{message}")]
    Csrf { message: &'static str },
    #[error("{0}")]
    BadForm(String),
    #[error("{message}")]
    Throttled { message: &'static str, retry_after: Duration },
    /// Every password check that may run at once is running.
    #[error("{message}")]
    Busy { message: &'static str },
    /// The form's body was too large, too slow, or did not fit the shared
    /// body budget.
    #[error("{message}")]
    Body { status: StatusCode, message: &'static str, retry_after: Option<Duration> },
    #[error("the page could not be rendered")]
    Render,
}

impl DashboardError {
    fn throttled(t: &'static Text, retry_after_ms: u64) -> DashboardError {
        DashboardError::Throttled { message: t.error_throttled, retry_after: Duration::from_millis(retry_after_ms) }
    }

    fn busy(t: &'static Text) -> DashboardError {
        DashboardError::Busy { message: t.error_busy_passwords }
    }
}

impl ResponseError for DashboardError {
    fn status_code(&self) -> StatusCode {
        match self {
            DashboardError::LoginRequired { is_page: true, .. } | DashboardError::PasswordChangeRequired { .. } => {
                StatusCode::SEE_OTHER
            }
            DashboardError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            DashboardError::Csrf { .. } => StatusCode::FORBIDDEN,
            DashboardError::BadForm(_) => StatusCode::BAD_REQUEST,
            DashboardError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            DashboardError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            DashboardError::Body { status, .. } => *status,
            DashboardError::Render => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        security_headers(&mut response);
        match self {
            DashboardError::LoginRequired { prefix, is_page: true, .. } => {
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
            DashboardError::Busy { .. } => response
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
        .ok_or_else(|| DashboardError::LoginRequired {
            prefix: prefix.clone(),
            is_page,
            message: words(request, state).error_login_required,
        })?;
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
            let t = words(request, state);
            let message = match status {
                StatusCode::PAYLOAD_TOO_LARGE => t.error_form_too_large,
                StatusCode::REQUEST_TIMEOUT => t.error_form_too_slow,
                StatusCode::SERVICE_UNAVAILABLE => t.error_busy,
                _ => t.error_form_unreadable,
            };
            DashboardError::Body { status, message, retry_after }
        })?;
    serde_urlencoded::from_bytes::<Form>(&body)
        .map_err(|_| DashboardError::BadForm(words(request, state).error_form_unreadable.into()))
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
        return Err(DashboardError::Csrf { message: words(request, state).error_csrf });
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
fn banners(state: &AppState, t: &Text) -> Vec<Banner> {
    let config = state.config();
    let mut banners = Vec::new();
    if config.password.matches(DEFAULT_API_PASSWORD) {
        banners.push(Banner { id: "banner-default-api-password", text: t.banner_default_api_password.to_owned() });
    }
    if let Some(shared) = &state.shared {
        if !shared.status().is_up() {
            let pending = shared.pending_count();
            let endpoint = shared.status().endpoint().to_owned();
            banners.push(Banner {
                id: "banner-redis-away",
                text: text::fill(t.banner_redis_away, &[("endpoint", &endpoint), ("pending", &pending)]),
            });
        }
    } else if !config.enable_storage {
        banners.push(Banner { id: "banner-no-storage", text: t.banner_no_storage.to_owned() });
    }
    banners
}

/// The language a page of this request is written in.
fn lang(request: &HttpRequest, state: &AppState) -> Lang {
    text::lang_of(request, state.config().dashboard_lang)
}

/// The strings and formats of this request's pages.
fn words(request: &HttpRequest, state: &AppState) -> &'static Text {
    text::text(lang(request, state))
}

/// Where the language switch leads: the same page in the other language.
fn switch_url(request: &HttpRequest, state: &AppState) -> Option<String> {
    if state.config().dashboard_lang.is_some() {
        return None;
    }
    let back = match request.query_string() {
        "" => request.path().to_owned(),
        query => format!("{}?{query}", request.path()),
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("to", lang(request, state).other().code())
        .append_pair("back", &back)
        .finish();
    Some(format!("{}/lang?{query}", prefix_of(state)))
}

fn chrome(request: &HttpRequest, state: &AppState, info: &SessionInfo, active: &'static str) -> Chrome {
    let config = state.config();
    let t = words(request, state);
    Chrome {
        t,
        lang: lang(request, state).code(),
        switch_url: switch_url(request, state),
        zone_note: Format { t, zone: &config.time_zone }.zone_note(&config.time_zone_name),
        prefix: prefix_of(state),
        csrf: info.csrf.clone(),
        active,
        banners: banners(state, t),
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
    let page = LoginPage {
        t: words(request, state),
        lang: lang(request, state).code(),
        switch_url: switch_url(request, state),
        prefix: prefix.clone(),
        csrf: token.clone(),
        error,
        setup,
        version: VERSION,
    };
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
    let t = words(request, state);
    if let Err(locked) = throttle.check(address, state.now_ms()) {
        return Err(DashboardError::throttled(t, locked.retry_after_ms));
    }
    let pass = state.dashboard.password.begin(&config.web_password).map_err(|Busy| DashboardError::busy(t))?;
    if let Err(Verdict::LockedOut { retry_after_ms, began }) =
        throttle.reserve(address, config.auth_failures_per_minute, state.now_ms())
    {
        if began {
            log::warn!("dashboard: too many wrong passwords from {address}: refused for {} s", retry_after_ms / 1000);
            crate::cluster::share_lockout(state, Guarded::Dashboard, address, retry_after_ms);
        }
        return Err(DashboardError::throttled(t, retry_after_ms));
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
            Some(words(&request, &state).login_form_expired.into()),
            StatusCode::FORBIDDEN,
        );
    }
    let setup = state.dashboard.password.mode(&state.config().web_password) == Mode::Setup;
    let candidate =
        field(&form, if setup { "setup_code" } else { "password" }).unwrap_or("").trim_end_matches(['\r', '\n']);
    let (matched, mode) = attempt_password(&request, &state, candidate, "login").await?;
    if !matched {
        let t = words(&request, &state);
        let message = if mode == Mode::Setup { t.wrong_setup_code } else { t.wrong_password };
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
    crate::operations::commit(&state, vec![Change::SessionEnded { digest: crate::store::session_digest(&info.id) }]);
    log::info!("dashboard logout");
    let prefix = prefix_of(&state);
    let mut response = redirect(format!("{prefix}/login"));
    set_cookie(&mut response, &request, &state, SESSION_COOKIE, String::new());
    Ok(response)
}

pub async fn password_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, true)?;
    let page = PasswordPage {
        chrome: chrome(&request, &state, &info, "password"),
        forced: info.must_change_password,
        error: None,
    };
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
    let t = words(&request, &state);
    let new_password = field(&form, "new_password").unwrap_or("");
    let current_ok = info.must_change_password
        || attempt_password(&request, &state, field(&form, "current").unwrap_or(""), "password change").await?.0;
    let problem = if !current_ok {
        Some(t.password_wrong_current.to_owned())
    } else if new_password.chars().count() < MIN_PASSWORD_LENGTH {
        Some(text::fill(t.password_too_short, &[("n", &MIN_PASSWORD_LENGTH)]))
    } else if new_password.len() > MAX_PASSWORD_BYTES {
        Some(text::fill(t.password_too_long, &[("n", &MAX_PASSWORD_BYTES)]))
    } else if new_password != field(&form, "confirm").unwrap_or("") {
        Some(t.password_mismatch.to_owned())
    } else if new_password == password::WELL_KNOWN_DEFAULT
        || (!info.must_change_password && new_password == field(&form, "current").unwrap_or(""))
    {
        Some(t.password_same.to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        let page = PasswordPage {
            chrome: chrome(&request, &state, &info, "password"),
            forced: info.must_change_password,
            error: Some(problem),
        };
        return html(&page, StatusCode::BAD_REQUEST);
    }
    let permit = state.dashboard.password.hashing_permit().map_err(|Busy| DashboardError::busy(t))?;
    let to_hash = new_password.to_owned();
    let hash = web::block(move || {
        let _permit = permit;
        password::hash(&to_hash, &mut rand::rng())
    })
    .await
    .map_err(|_| DashboardError::Render)?
    .ok_or(DashboardError::Render)?;
    crate::secret::register_secret(new_password);
    // Every session ends, this one included; this client goes on in a new
    // one (new id, new CSRF token), on every replica.
    let fresh = SessionInfo {
        id: random_token(&mut rand::rng()),
        csrf: random_token(&mut rand::rng()),
        must_change_password: false,
    };
    let digest = crate::store::session_digest(&fresh.id);
    crate::operations::commit(
        &state,
        vec![Change::SetPasswordHash(hash), Change::PasswordChangedIn { digest }, session_started(&state, &fresh)],
    );
    let address = crate::auth::client_address(&request, &state.config());
    log::warn!("dashboard password set from {address}; every session ended");
    state.dashboard.sessions.set_flash(&fresh.id, Flash { kind: "ok", text: t.password_saved.into() });
    let prefix = prefix_of(&state);
    let mut response = redirect(format!("{prefix}/"));
    set_cookie(&mut response, &request, &state, SESSION_COOKIE, fresh.id);
    Ok(response)
}

/// The shared form of a session that just began (other replicas learn it
/// by digest; see `store::redis`).
fn session_started(state: &AppState, info: &crate::operator::session::SessionInfo) -> Change {
    Change::SessionStarted {
        digest: crate::store::session_digest(&info.id),
        csrf: info.csrf.clone(),
        must_change_password: info.must_change_password,
        at_ms: state.now_ms(),
    }
}

// ---------------------------------------------------------------- overview

pub async fn overview(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let config = state.config();
    let t = words(&request, &state);
    let format = Format { t, zone: &config.time_zone };
    let now_ms = state.now_ms();
    let summary = state.pool.summary(now_ms);
    let count = |label: &str, value: usize| CountRow { label: label.to_owned(), value: group_digits(value as u64) };
    let keys = vec![
        count(t.overview_total, summary.total),
        count(t.state_active, summary.active),
        count(t.overview_limited, summary.limited_for_some_model),
        count(t.state_invalid, summary.invalid),
        count(t.state_disabled, summary.disabled),
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
    let windows =
        vec![window(t.overview_last_minute, 1), window(t.overview_last_hour, 60), window(t.overview_last_day, 24 * 60)];
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
            from_label: t.chart_from,
            to_label: t.chart_now,
        }
    };
    let page = OverviewPage {
        chrome: chrome(&request, &state, &info, "overview"),
        keys,
        windows,
        error_kinds,
        calls_chart: chart(t.chart_requests, per_step(|minute| minute.requests)),
        tokens_chart: chart(t.chart_tokens, per_step(|minute| minute.prompt_tokens + minute.completion_tokens)),
        active_requests: group_digits(state.stats.active_requests() as u64),
        cache_entries: group_digits(state.swipe_cache.len() as u64),
        uptime: format.duration(state.started_at.elapsed().as_secs()),
        version: VERSION,
        global_backoff: summary
            .global_backoff_until_ms
            .map(|until| text::fill(t.overview_backoff, &[("when", &format.until(until, now_ms))])),
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

/// The Keys page's state filter: the query value and its label.
fn state_filters(t: &Text) -> [(&'static str, &'static str); 5] {
    [
        ("all", t.state_all),
        ("active", t.state_active),
        ("limited", t.state_limited),
        ("invalid", t.state_invalid),
        ("disabled", t.state_disabled),
    ]
}

const STATE_FILTER_VALUES: &[&str] = &["all", "active", "limited", "invalid", "disabled"];

/// A key's state: the CSS hook (`state-…`, `data-avail`) and its badge's
/// words.
fn key_state(state: &KeyState, t: &Text) -> (&'static str, &'static str) {
    match state {
        KeyState::Active => ("active", t.badge_active),
        KeyState::Invalid { .. } => ("invalid", t.badge_invalid),
        KeyState::Disabled => ("disabled", t.badge_disabled),
        KeyState::Removed => ("deleted", t.badge_deleted),
    }
}

fn key_row(view: crate::keys::KeyView, now_ms: u64, format: Format) -> KeyRow {
    let t = format.t;
    let (state, state_label) = key_state(&view.state, t);
    let (reason, since) = match &view.state {
        KeyState::Invalid { since_ms, reason } => {
            (reason.clone(), text::fill(t.keys_invalid_since, &[("time", &format.time(*since_ms))]))
        }
        _ => (String::new(), String::new()),
    };
    // A key that does not serve is not "ready" for any model.
    let out_of_service = (view.state != KeyState::Active).then_some((state, state_label));
    let usage = view
        .models
        .iter()
        .map(|model| {
            let ((availability, availability_label), until) = match model.availability {
                _ if out_of_service.is_some() => (out_of_service.unwrap_or_default(), String::new()),
                ModelAvailability::Ready => (("ready", t.avail_ready), String::new()),
                ModelAvailability::Cooling { until_ms, .. } => {
                    (("cooling", t.avail_cooling), format.until(until_ms, now_ms))
                }
                ModelAvailability::ExhaustedToday { until_ms } => {
                    (("exhausted", t.avail_exhausted), format.until(until_ms, now_ms))
                }
                ModelAvailability::OverDailyLimit { until_ms } => {
                    (("over limit", t.avail_over_limit), format.until(until_ms, now_ms))
                }
            };
            UsageCell {
                model: model.model.clone(),
                availability: availability.to_owned(),
                availability_label,
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
        .map(|note| format!("{} {} {} (HTTP {})", format.time(note.at_ms), note.model, note.kind.as_str(), note.status))
        .unwrap_or_default();
    // Empty for never: the page says "never used", "not validated".
    let time_or_empty = |ms: u64| if ms == 0 { String::new() } else { format.time(ms) };
    KeyRow {
        id: view.id.0,
        masked: view.masked,
        state,
        state_label,
        reason,
        since,
        usage,
        last_error,
        last_used: time_or_empty(view.last_used_ms),
        last_validated: time_or_empty(view.last_validated_ms),
    }
}

pub async fn keys_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<KeysQuery>,
) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let config = state.config();
    let format = Format { t: words(&request, &state), zone: &config.time_zone };
    let now_ms = state.now_ms();
    let wanted_state = query.state.as_deref().filter(|s| STATE_FILTER_VALUES.contains(s)).unwrap_or("all");
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
        .map(|view| key_row(view, now_ms, format))
        .collect();
    let filter_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", &search)
        .append_pair("state", wanted_state)
        .finish();
    let progress = state.validation.progress();
    let limits = state.pool.daily_limits();
    let summary = state.pool.summary(now_ms);
    let page_view = KeysPage {
        chrome: chrome(&request, &state, &info, "keys"),
        rows,
        page,
        pages,
        previous_page: (page > 1).then(|| page - 1),
        next_page: (page < pages).then(|| page + 1),
        matching: group_digits(matching.len() as u64),
        total: group_digits(summary.total as u64),
        query: search,
        states: state_filters(format.t)
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
        crate::operations::commit(
            &state,
            vec![Change::AddKeys(new_keys.iter().map(|key| key.expose().to_owned()).collect())],
        );
        // Checked here, by the replica that added them.
        let ids: Vec<KeyId> = new_keys.iter().filter_map(|key| state.pool.id_of(key)).collect();
        state.validation.request_keys(&ids);
    }
    log::info!("dashboard: {added} keys added, {duplicates} already present, {malformed} malformed");
    let t = words(&request, &state);
    let mut clauses = vec![text::fill(t.keys_added, &[("added", &added)])];
    if duplicates > 0 {
        let template = if duplicates == 1 { t.keys_duplicate_one } else { t.keys_duplicate_many };
        clauses.push(text::fill(template, &[("n", &duplicates)]));
    }
    if malformed > 0 {
        let template = if malformed == 1 { t.keys_malformed_one } else { t.keys_malformed_many };
        clauses.push(text::fill(template, &[("n", &malformed)]));
    }
    let message = format!("{}{}", clauses.join(t.clause_separator), t.sentence_end);
    let kind = if added > 0 || (duplicates == 0 && malformed == 0) { "ok" } else { "error" };
    Ok(flash_and_redirect(&state, &info, kind, message, "/keys"))
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
    let t = words(&request, &state);
    if ids.is_empty() {
        return Ok(flash_and_redirect(&state, &info, "error", t.keys_select_one.into(), "/keys"));
    }
    let action = field(&form, "action").unwrap_or("");
    let mut changes = Vec::new();
    for id in &ids {
        let Some(key) = state.pool.key_of(*id) else { continue };
        let key_text = key.expose().to_owned();
        match action {
            "disable" => {
                changes.push(Change::SetKeyAction { key: key_text, action: Some(crate::store::KeyAction::Disabled) });
            }
            "enable" => changes.push(Change::SetKeyAction { key: key_text, action: None }),
            "delete" => {
                changes.push(Change::SetKeyAction { key: key_text, action: Some(crate::store::KeyAction::Deleted) });
            }
            "validate" => {}
            _ => return Err(DashboardError::BadForm(t.error_unknown_action.into())),
        }
    }
    if action == "validate" {
        state.validation.request_keys(&ids);
    }
    crate::operations::commit(&state, changes);
    let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
    log::info!("dashboard: {action} keys {}", names.join(" "));
    let done = match action {
        "disable" => t.keys_disabled,
        "enable" => t.keys_enabled,
        "delete" => t.keys_deleted,
        _ => t.keys_queued,
    };
    Ok(flash_and_redirect(&state, &info, "ok", text::fill(done, &[("n", &ids.len())]), "/keys"))
}

pub async fn validate_all(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, _form) = authorized_post(&request, &state, payload, false).await?;
    state.validation.request(crate::keys::validation::ValidationScope::All);
    log::info!("dashboard: validation of every key requested");
    Ok(flash_and_redirect(&state, &info, "ok", words(&request, &state).validation_started.into(), "/keys"))
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
            changes.push(Change::SetKeyAction {
                key: key.expose().to_owned(),
                action: Some(crate::store::KeyAction::Deleted),
            });
        }
    }
    crate::operations::commit(&state, changes);
    log::info!("dashboard: {} invalid keys deleted", ids.len());
    let message = text::fill(words(&request, &state).invalid_deleted, &[("n", &ids.len())]);
    Ok(flash_and_redirect(&state, &info, "ok", message, "/keys"))
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
        let t = words(&request, &state);
        let page = MessagePage {
            chrome: chrome(&request, &state, &info, "keys"),
            title: t.export_refused_title.into(),
            message: t.export_refused.into(),
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
    let t = words(&request, &state);
    let model = field(&form, "model").unwrap_or("").trim().to_owned();
    let valid_model = !model.is_empty()
        && model.len() <= 128
        && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid_model {
        return Ok(flash_and_redirect(&state, &info, "error", t.limit_bad_model.into(), "/keys"));
    }
    let limit = match field(&form, "limit").unwrap_or("").trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(limit) => Some(limit),
            Err(_) => return Ok(flash_and_redirect(&state, &info, "error", t.limit_bad_number.into(), "/keys")),
        },
    };
    crate::operations::commit(&state, vec![Change::SetModelLimit { model: model.clone(), limit }]);
    log::info!("dashboard: daily limit for {model} set to {}", limit.map_or("default".to_owned(), |l| l.to_string()));
    Ok(flash_and_redirect(&state, &info, "ok", text::fill(t.limit_saved, &[("model", &model)]), "/keys"))
}

// ---------------------------------------------------------------- settings

/// Where a value comes from, in the page's language.
fn source_label(source: crate::config::Source, t: &Text) -> &'static str {
    use crate::config::Source;
    match source {
        Source::Default => t.source_default,
        Source::File => t.source_file,
        Source::Env => t.source_env,
        Source::CommandLine => t.source_command_line,
        Source::Dashboard => t.source_dashboard,
    }
}

/// The Settings page's groups in `lang`. Validation errors come from
/// `config.rs` as "English / 中文": the page shows its language's half.
fn settings_view(
    state: &AppState,
    lang: Lang,
    errors: &crate::settings::FieldErrors,
    submitted: &BTreeMap<&'static str, String>,
) -> Vec<SettingsGroup> {
    let t = text::text(lang);
    let layers = state.settings.lock();
    let combined = layers.combined(&layers.overrides);
    GROUPS
        .iter()
        .map(|(title, specs)| SettingsGroup {
            title: settings::group_title(title, lang),
            settings: specs
                .iter()
                .map(|spec| {
                    let value = submitted.get(spec.name).cloned().unwrap_or_else(|| combined.get(spec.name).to_owned());
                    SettingRow {
                        name: spec.name,
                        description: spec.description_in(lang),
                        kind: spec.kind.as_str(),
                        checked: crate::config::parse_bool(&value).unwrap_or(false),
                        value: if spec.kind == settings::Kind::Secret { String::new() } else { value },
                        source: source_label(combined.source(spec.name), t).to_owned(),
                        overridden: layers.overrides.contains_key(spec.name),
                        restart_required: spec.restart_required,
                        guarded: crate::settings::decides_where_secrets_go(spec.name),
                        error: errors.get(spec.name).map(|reason| crate::messages::in_lang(reason, lang).to_owned()),
                    }
                })
                .collect(),
        })
        .collect()
}

/// `NAME: reason; NAME: reason`, each reason in `lang`.
fn errors_in(errors: &crate::settings::FieldErrors, lang: Lang) -> String {
    errors
        .iter()
        .map(|(name, reason)| format!("{name}: {}", crate::messages::in_lang(reason, lang)))
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn settings_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    let info = session(&request, &state, false)?;
    let page = SettingsPage {
        chrome: chrome(&request, &state, &info, "settings"),
        groups: settings_view(&state, lang(&request, &state), &Default::default(), &Default::default()),
        error_summary: None,
        guarded_names: crate::settings::SECRET_DESTINATIONS.join(", "),
    };
    html(&page, StatusCode::OK)
}

pub async fn save_settings(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let lang = lang(&request, &state);
    let t = text::text(lang);
    let changes = {
        let layers = state.settings.lock();
        settings::changes_from_form(&form, &layers.combined(&layers.overrides))
    };
    if changes.is_empty() {
        return Ok(flash_and_redirect(&state, &info, "ok", t.nothing_changed.into(), "/settings"));
    }
    // Where keys and tokens are sent: only with the password again.
    let guarded: Vec<&'static str> =
        changes.keys().copied().filter(|name| crate::settings::decides_where_secrets_go(name)).collect();
    if !guarded.is_empty() {
        let given = field(&form, "confirm_password").unwrap_or("");
        let confirmed = !given.is_empty() && attempt_password(&request, &state, given, "settings").await?.0;
        if !confirmed {
            let reason = if given.is_empty() { t.settings_needs_password } else { t.settings_password_wrong };
            let errors: crate::settings::FieldErrors = guarded.iter().map(|name| (*name, reason.to_owned())).collect();
            let submitted: BTreeMap<&'static str, String> = changes
                .into_iter()
                .filter(|(name, _)| settings::spec(name).is_some_and(|spec| spec.kind != settings::Kind::Secret))
                .collect();
            let page = SettingsPage {
                chrome: chrome(&request, &state, &info, "settings"),
                groups: settings_view(&state, lang, &errors, &submitted),
                error_summary: Some(text::fill(t.settings_guarded_summary, &[("names", &guarded.join(", "))])),
                guarded_names: crate::settings::SECRET_DESTINATIONS.join(", "),
            };
            return html(&page, StatusCode::FORBIDDEN);
        }
    }
    match crate::settings::save(&state, changes.clone()) {
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
            let mut message = text::fill(t.saved_names, &[("names", &names.join(", "))]);
            if !restart.is_empty() {
                message.push(' ');
                message.push_str(&text::fill(t.settings_after_restart, &[("names", &restart.join(", "))]));
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
                chrome: chrome(&request, &state, &info, "settings"),
                groups: settings_view(&state, lang, &errors, &submitted),
                error_summary: Some(text::fill(t.settings_fix, &[("names", &names.join(", "))])),
                guarded_names: crate::settings::SECRET_DESTINATIONS.join(", "),
            };
            html(&page, StatusCode::BAD_REQUEST)
        }
    }
}

/// The Settings page's import of the original's `settings.json` (on a
/// Space there is no shell for `hajimi import-settings`): the same plan
/// (`store::import::plan_import`: only valid values that differ from what
/// is in force), settings saved as one validated set — with the password
/// again when one decides where keys go —, keys added, everything skipped
/// named in the flash.
pub async fn import_settings(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let lang = lang(&request, &state);
    let t = text::text(lang);
    let json = field(&form, "settings_json").unwrap_or("");
    if json.trim().is_empty() {
        return Ok(flash_and_redirect(&state, &info, "error", t.import_empty.into(), "/settings"));
    }
    let in_force = {
        let layers = state.settings.lock();
        layers.combined(&layers.overrides)
    };
    let plan = match crate::store::import::plan_import(json, "settings.json", &in_force) {
        Ok(plan) => plan,
        Err(error) => {
            let message = crate::messages::in_lang(&error, lang).to_owned();
            return Ok(flash_and_redirect(&state, &info, "error", message, "/settings"));
        }
    };
    let mut skipped: Vec<String> =
        plan.skipped.iter().map(|(name, why)| format!("{name} ({})", crate::messages::in_lang(why, lang))).collect();
    let mut settings_changes: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut other_changes = Vec::new();
    for change in plan.changes.iter().cloned() {
        match change {
            // The dashboard password has a page of its own.
            Change::SetSetting { name, .. } if name == "WEB_PASSWORD" => {
                skipped.push(format!("WEB_PASSWORD ({})", t.import_web_password));
            }
            Change::SetSetting { name, value } => {
                if let Some(name) = crate::settings::known_name(&name) {
                    settings_changes.insert(name, value);
                }
            }
            other => other_changes.push(other),
        }
    }
    let guarded: Vec<&'static str> =
        settings_changes.keys().copied().filter(|name| crate::settings::decides_where_secrets_go(name)).collect();
    if !guarded.is_empty() {
        let given = field(&form, "confirm_password").unwrap_or("");
        let confirmed = !given.is_empty() && attempt_password(&request, &state, given, "settings import").await?.0;
        if !confirmed {
            let message = text::fill(t.settings_guarded_summary, &[("names", &guarded.join(", "))]);
            return Ok(flash_and_redirect(&state, &info, "error", message, "/settings"));
        }
    }
    let names = match crate::settings::save(&state, settings_changes) {
        Ok(names) => names,
        Err(errors) => {
            let message = text::fill(t.settings_fix, &[("names", &errors_in(&errors, lang))]);
            return Ok(flash_and_redirect(&state, &info, "error", message, "/settings"));
        }
    };
    // Keys the pool holds already (from the environment too) are not new.
    let in_pool = |key: &crate::secret::ApiKey| {
        state
            .pool
            .id_of(key)
            .and_then(|id| state.pool.key_view(id, 0))
            .is_some_and(|view| view.state != KeyState::Removed)
    };
    let new_keys: Vec<crate::secret::ApiKey> = other_changes
        .iter()
        .filter_map(|change| match change {
            Change::AddKeys(keys) => Some(keys.iter().flat_map(|key| crate::secret::ApiKey::extract_all(key))),
            _ => None,
        })
        .flatten()
        .filter(|key| !in_pool(key))
        .collect();
    let added_keys = new_keys.len();
    other_changes.retain(|change| !matches!(change, Change::AddKeys(_)));
    if !new_keys.is_empty() {
        other_changes.push(Change::AddKeys(new_keys.iter().map(|key| key.expose().to_owned()).collect()));
    }
    crate::operations::commit(&state, other_changes);
    let ids: Vec<KeyId> = new_keys.iter().filter_map(|key| state.pool.id_of(key)).collect();
    state.validation.request_keys(&ids);
    let address = crate::auth::client_address(&request, &state.config());
    log::warn!(
        "dashboard: settings.json imported from {address}: settings {}; {} AI Studio and {} Express key(s) added; {} skipped",
        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        added_keys,
        plan.express_key_count(),
        skipped.len()
    );
    let mut parts = Vec::new();
    if !names.is_empty() {
        parts.push(text::fill(t.import_done, &[("names", &names.join(", "))]));
    }
    if added_keys > 0 {
        parts.push(text::fill(t.import_keys, &[("n", &added_keys)]));
    }
    if plan.express_key_count() > 0 {
        parts.push(text::fill(t.import_express_keys, &[("n", &plan.express_key_count())]));
    }
    if parts.is_empty() {
        parts.push(t.import_nothing.to_owned());
    }
    if !plan.unchanged.is_empty() {
        parts.push(text::fill(t.import_unchanged, &[("n", &plan.unchanged.len())]));
    }
    if !skipped.is_empty() {
        parts.push(text::fill(t.import_skipped, &[("items", &skipped.join("; "))]));
    }
    let kind = if names.is_empty() && added_keys + plan.express_key_count() == 0 && !skipped.is_empty() {
        "error"
    } else {
        "ok"
    };
    Ok(flash_and_redirect(&state, &info, kind, parts.join(" "), "/settings"))
}

pub async fn revert_setting(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let lang = lang(&request, &state);
    let t = text::text(lang);
    match crate::settings::revert(&state, field(&form, "name").unwrap_or("")) {
        Ok(name) => {
            log::info!("dashboard: setting {name} reverted");
            let message = text::fill(t.settings_reverted, &[("name", &name)]);
            Ok(flash_and_redirect(&state, &info, "ok", message, "/settings"))
        }
        Err(error) => {
            let reason = match error {
                crate::settings::RevertError::Unknown => t.settings_unknown.to_owned(),
                crate::settings::RevertError::NotOverridden(name) => {
                    text::fill(t.settings_not_overridden, &[("name", &name)])
                }
                crate::settings::RevertError::Invalid(errors) => errors_in(&errors, lang),
            };
            let message = text::fill(t.settings_not_reverted, &[("reason", &reason)]);
            Ok(flash_and_redirect(&state, &info, "error", message, "/settings"))
        }
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
        chrome: chrome(&request, &state, &info, "vertex"),
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
        in_use: vertex_in_use(&state, words(&request, &state)),
        problems: state.vertex.problems.read().clone(),
    };
    drop(vertex);
    html(&page, StatusCode::OK)
}

/// Every Vertex credential in use, from any source, with its health.
fn vertex_in_use(state: &AppState, t: &Text) -> Vec<VertexInUseRow> {
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
                    text::fill(t.vertex_health_invalid, &[("reason", &crate::secret::redact_keys(reason))])
                }
                KeyState::Active => t.badge_active.to_owned(),
                KeyState::Disabled => t.badge_disabled.to_owned(),
                KeyState::Removed => t.badge_removed.to_owned(),
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
    clients: web::Data<crate::state::WorkerClientCell>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    let id = field(&form, "id").and_then(|id| id.parse::<u32>().ok()).map(crate::keys::KeyId);
    let clients = clients.current(&state);
    // (kind, the flash in the page's language, the same in English for the log)
    let said = |template: &dyn Fn(&Text) -> String| (template(t), template(&text::EN));
    let (kind, (message, logged)) = match (field(&form, "kind"), id) {
        (Some("account"), Some(id)) => {
            let account = state.vertex.accounts.key_of(id).and_then(|key| state.vertex.account(key.expose()));
            match account {
                None => ("error", said(&|t| t.vertex_no_such_account.to_owned())),
                Some(account) => match crate::vertex::grant(&clients.gemini, &account, state.now_ms()).await {
                    Ok(token) => {
                        let minutes = token.expires_at_ms.saturating_sub(state.now_ms()) / 60_000;
                        state.vertex.tokens.store(&account.identity(), token);
                        state.vertex.accounts.mark_valid(id, state.now_ms());
                        let email = account.client_email.clone();
                        (
                            "ok",
                            said(&|t| text::fill(t.vertex_token_granted, &[("email", &email), ("minutes", &minutes)])),
                        )
                    }
                    Err(error) => {
                        let text = format!("{}: {error}", account.client_email);
                        ("error", (text.clone(), text))
                    }
                },
            }
        }
        (Some("express"), Some(id)) => match state.vertex.express.key_of(id) {
            None => ("error", said(&|t| t.vertex_no_such_express.to_owned())),
            Some(key) => {
                let target = crate::gemini::client::Target {
                    version: crate::gemini::client::ApiVersion::V1,
                    model: std::rc::Rc::from(EXPRESS_TEST_MODEL),
                    service: crate::gemini::client::Service::VertexExpress,
                };
                let body = bytes::Bytes::from_static(br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#);
                let credential = crate::gemini::client::CallCredential::Key(&key);
                let masked = mask_secret(key.expose());
                match clients.gemini.call(credential, &target, "countTokens", body).await {
                    Ok(_) => (
                        "ok",
                        said(&|t| {
                            text::fill(t.vertex_express_answered, &[("key", &masked), ("model", &EXPRESS_TEST_MODEL)])
                        }),
                    ),
                    Err(failure) => (
                        "error",
                        said(&|t| {
                            text::fill(
                                t.vertex_express_failed,
                                &[("key", &masked), ("status", &failure.status), ("message", &failure.message)],
                            )
                        }),
                    ),
                }
            }
        },
        _ => ("error", said(&|t| t.vertex_nothing_to_test.to_owned())),
    };
    log::info!(target: "hajimi::vertex", "dashboard test: {}", crate::secret::LogSafe(&logged));
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
    let lang = lang(&request, &state);
    let t = text::text(lang);
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
    match crate::settings::save(&state, changes) {
        Ok(names) if names.is_empty() => {
            Ok(flash_and_redirect(&state, &info, "ok", t.nothing_changed.into(), "/vertex"))
        }
        Ok(names) => {
            log::info!("dashboard: Vertex toggles changed: {}", names.join(", "));
            let message = text::fill(t.saved_names, &[("names", &names.join(", "))]);
            Ok(flash_and_redirect(&state, &info, "ok", message, "/vertex"))
        }
        Err(errors) => {
            let message = text::fill(t.not_saved_reason, &[("reason", &errors_in(&errors, lang))]);
            Ok(flash_and_redirect(&state, &info, "error", message, "/vertex"))
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
    let mut added: Vec<String> = Vec::new();
    {
        let vertex = state.dashboard.vertex.read();
        for key in candidates {
            if !vertex.express_keys.contains(&key) && !added.contains(&key) {
                added.push(key);
            }
        }
    }
    let count = added.len();
    crate::operations::commit(&state, added.into_iter().map(Change::AddExpressKey).collect());
    log::info!("dashboard: {count} Vertex Express keys added");
    let kind = if count > 0 { "ok" } else { "error" };
    let message = text::fill(words(&request, &state).vertex_express_added, &[("n", &count)]);
    Ok(flash_and_redirect(&state, &info, kind, message, "/vertex"))
}

pub async fn remove_express_key(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    let index = field(&form, "id").and_then(|id| id.parse::<usize>().ok());
    let removed = index.and_then(|index| state.dashboard.vertex.read().express_keys.get(index).cloned());
    match removed {
        Some(key) => {
            crate::operations::commit(&state, vec![Change::RemoveExpressKey(key)]);
            log::info!("dashboard: a Vertex Express key was removed");
            Ok(flash_and_redirect(&state, &info, "ok", t.vertex_express_removed.into(), "/vertex"))
        }
        None => Ok(flash_and_redirect(&state, &info, "error", t.vertex_no_such_express.into(), "/vertex")),
    }
}

/// Checks one pasted service-account JSON (the same rules as
/// `GOOGLE_CREDENTIALS_JSON`: a real RSA key, every field Vertex needs);
/// errors name the field, never the key (in `t`'s language; what is wrong
/// with the JSON itself is the credentials module's English).
pub fn parse_service_account(json: &str, t: &Text) -> Result<StoredCredential, String> {
    let mut accounts = crate::vertex::credentials::parse_accounts(json)
        .map_err(|error| text::fill(t.vertex_not_added, &[("error", &error)]))?;
    if accounts.len() != 1 {
        return Err(text::fill(t.vertex_one_at_a_time, &[("n", &accounts.len())]));
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
    let t = words(&request, &state);
    match parse_service_account(field(&form, "json").unwrap_or(""), t) {
        Ok(credential) => {
            let email = credential.client_email.clone();
            crate::operations::commit(&state, vec![Change::AddCredential(credential)]);
            log::info!("dashboard: Vertex credential {} added", crate::secret::LogSafe(&email));
            let message = text::fill(t.vertex_credential_added, &[("email", &email)]);
            Ok(flash_and_redirect(&state, &info, "ok", message, "/vertex"))
        }
        Err(reason) => {
            let page = MessagePage {
                chrome: chrome(&request, &state, &info, "vertex"),
                title: t.vertex_credential_not_added.into(),
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
    let t = words(&request, &state);
    let email = field(&form, "client_email").unwrap_or("").to_owned();
    let known = state.dashboard.vertex.read().credentials.iter().any(|known| known.client_email == email);
    if !known {
        return Ok(flash_and_redirect(&state, &info, "error", t.vertex_no_such_credential.into(), "/vertex"));
    }
    crate::operations::commit(&state, vec![Change::RemoveCredential { client_email: email.clone() }]);
    log::info!("dashboard: Vertex credential {} removed", crate::secret::LogSafe(&email));
    let message = text::fill(t.vertex_credential_removed, &[("email", &email)]);
    Ok(flash_and_redirect(&state, &info, "ok", message, "/vertex"))
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

fn log_row(record: &crate::log_ring::LogRecord, format: Format) -> LogRow {
    LogRow {
        seq: record.seq,
        time: format.time(record.time_ms),
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
    let config = state.config();
    let t = words(&request, &state);
    let format = Format { t, zone: &config.time_zone };
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
                time: format.time(record.time_ms),
                level: record.level,
                source: record.source,
                message: format!("[{}] {}", record.replica, record.message),
            })
            .collect(),
        None => ring.records(query.level(), query.source()).iter().map(|record| log_row(record, format)).collect(),
    };
    let level = query.level.as_deref().unwrap_or("");
    let source = query.source().unwrap_or("");
    let levels = [("", t.log_all_levels), ("error", t.log_errors), ("warn", t.log_warnings), ("info", t.log_info)]
        .iter()
        .map(|(value, label)| Choice { value: (*value).into(), label: (*label).into(), selected: *value == level })
        .collect();
    let sources = std::iter::once("")
        .chain(crate::log_ring::SOURCES.iter().copied())
        .map(|value| Choice {
            value: value.into(),
            label: if value.is_empty() { t.log_all_sources.into() } else { value.into() },
            selected: value == source,
        })
        .collect();
    let stream_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("level", level)
        .append_pair("source", source)
        .finish();
    let page = LogPage {
        chrome: chrome(&request, &state, &info, "log"),
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
    let (t, zone) = (words(&request, &state), state.config().time_zone.clone());
    let (min_level, source) = (query.level(), query.source());
    let receiver = crate::log_ring::global().subscribe();
    let records = tokio_stream_from(receiver).filter_map(move |record| {
        let zone = zone.clone();
        async move {
            let format = Format { t, zone: &zone };
            let record = record?;
            let level_ok = min_level.is_none_or(|min| record.level <= min);
            let source_ok = source.is_none_or(|source| record.source == source);
            if !(level_ok && source_ok) {
                return None;
            }
            let mut json = serde_json::to_value(&*record).ok()?;
            json["seq"] = serde_json::json!(record.seq);
            json["time"] = serde_json::json!(format.time(record.time_ms));
            Some(Ok::<_, actix_web::Error>(web::Bytes::from(format!("data: {json}\n\n"))))
        }
    });
    // A comment every 15 s keeps proxies from closing an idle tail.
    let keep_alive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b": keep-alive\n\n")), ()))
    });
    let opening =
        futures_util::stream::once(async { Ok::<_, actix_web::Error>(web::Bytes::from_static(b": tail\n\n")) });
    // The tail ends when the server begins to stop (SIGTERM): an open Log
    // page must not hold the shutdown for SHUTDOWN_TIMEOUT.
    let mut stopping = state.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    let body = opening.chain(futures_util::stream::select(records, keep_alive)).take_until(stopped);
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

// ---------------------------------------------------------------- language

#[derive(Deserialize)]
pub struct LanguageQuery {
    to: Option<String>,
    back: Option<String>,
}

/// The language switch: remembers the language in a cookie and goes back
/// to the page it was clicked on — only to a path of the dashboard (no
/// other site, no `//host`), else to the Overview.
pub async fn switch_language(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LanguageQuery>,
) -> HttpResponse {
    let prefix = prefix_of(&state);
    let back = query.back.as_deref().unwrap_or("");
    let local = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && back.len() <= 2048
        && !back.bytes().any(|b| b.is_ascii_control())
        && (prefix.is_empty() || back == prefix || back.starts_with(&format!("{prefix}/")))
        && !back.trim_start_matches(&prefix).starts_with("/lang");
    let to = if local { back.to_owned() } else { format!("{prefix}/") };
    let mut response = redirect(to);
    if let Some(lang) = query.to.as_deref().and_then(Lang::parse) {
        set_cookie(&mut response, &request, &state, text::LANG_COOKIE, lang.code().to_owned());
    }
    response
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
    fn malformed_key_lookalikes_are_counted_not_echoed() {
        let valid = "AIzaSyA-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(count_malformed_keys(&format!("{valid}\nAIzaShort\nnot a key AIza123")), 2);
    }

    #[test]
    fn service_accounts_are_checked_before_they_are_stored() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/vertex/service-account.json");
        let good = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            parse_service_account(&good, &text::EN).unwrap().client_email,
            "hajimi-test@hajimi-test.iam.gserviceaccount.com"
        );
        let two = format!("[{good}, {}]", good.replace("hajimi-test@", "other@"));
        for bad in ["", "{}", "[1]", r#"{"type":"authorized_user"}"#, &good.replace("BEGIN", ""), &two] {
            let error = parse_service_account(bad, &text::EN).unwrap_err();
            assert!(!error.contains("PRIVATE KEY"), "{error}");
        }
        assert!(parse_service_account(&good.replace("\"project_id\"", "\"project\""), &text::EN)
            .unwrap_err()
            .contains("project_id"));
    }
}
