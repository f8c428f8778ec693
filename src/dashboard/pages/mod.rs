//! Dashboard handlers: thin — check the session (and CSRF on every POST),
//! call the pool, settings or store, fill a view, render it. This file is
//! the route table, the errors, the security headers and cookies, the
//! session and form helpers and the language switch; each page's
//! handlers are in a file of their own. Every mutation
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

mod keys;
mod log_page;
mod login;
mod overview;
mod settings_page;
mod vertex;

use keys::*;
use log_page::*;
use login::*;
use overview::*;
use settings_page::*;
use vertex::*;

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

/// A submitted form's fields in order, for the one form whose field names
/// are data (the Settings page: one field per setting).
type Form = Vec<(String, String)>;

/// A form with no field but its CSRF token (logout, validate all, …).
#[derive(Deserialize)]
struct NoFields {}

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

/// Applied to every answer (`startup`'s one middleware; it acts on the
/// dashboard's only, which carry [`NO_FRAMES`]): while `FRAME_ANCESTORS`
/// lists origins, the CSP names them instead and no `X-Frame-Options` is
/// sent, so a Hugging Face Space page can show the dashboard in its frame.
pub fn allow_framing(
    mut response: actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
) -> actix_web::dev::ServiceResponse<actix_web::body::BoxBody> {
    let policy = response.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|value| value.to_str().ok());
    let Some(policy) = policy.filter(|policy| policy.contains(NO_FRAMES)) else { return response };
    let state = response.request().app_data::<web::Data<AppState>>();
    let ancestors = state.map(|state| state.config().frame_ancestors.join(" ")).unwrap_or_default();
    if !ancestors.is_empty() {
        let framed = policy.replace(NO_FRAMES, &format!("frame-ancestors {ancestors}"));
        if let Ok(value) = header::HeaderValue::from_str(&framed) {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
            headers.remove(header::X_FRAME_OPTIONS);
        }
    }
    response
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

/// Every form's CSRF token (the login form's too).
#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Reads a submitted form: at most `limit` bytes (413; a larger
/// `Content-Length` is refused unread), within `REQUEST_BODY_TIMEOUT`
/// (408), counted against `MAX_BODY_BYTES_IN_FLIGHT_MB` while it is read
/// and parsed (503).
pub(super) async fn read_form<T: serde::de::DeserializeOwned>(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    limit: usize,
) -> Result<(String, T), DashboardError> {
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
    let unreadable = || DashboardError::BadForm(words(request, state).error_form_unreadable.into());
    let CsrfField { csrf } = serde_html_form::from_bytes(&body).map_err(|_| unreadable())?;
    let form = serde_html_form::from_bytes(&body).map_err(|_| unreadable())?;
    Ok((csrf, form))
}

/// Session plus a valid CSRF token in the form: what every POST needs.
/// The session is checked before a byte of the form is read, so an
/// anonymous client cannot make the server read (or hold) a large form.
pub(super) async fn authorized_post<T: serde::de::DeserializeOwned>(
    request: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    allow_forced: bool,
) -> Result<(SessionInfo, T), DashboardError> {
    let info = session(request, state, allow_forced)?;
    let (csrf, form) = read_form(request, state, payload, MAX_FORM_BYTES).await?;
    if !tokens_match(&info.csrf, &csrf) {
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
