//! Login, logout and the dashboard password: the setup code at first run,
//! password checks counted before they run, the Password page.

use super::*;

/// The login form: the password, or before one is set the setup code.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    setup_code: String,
}

/// The Password page's form (`current` is absent in the session the
/// setup code opened).
#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn login_page(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashboardError> {
    if session(&request, &state, true).is_ok() {
        return Ok(redirect(format!("{}/", prefix_of(&state))));
    }
    login_form(&request, &state, None, StatusCode::OK)
}

/// The login form: a password field, or — while no dashboard password is
/// set — a field for the setup code printed at startup. No banners: the
/// page is open to anyone.
pub(super) fn login_form(
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
pub(super) async fn attempt_password(
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
    let (csrf, form): (String, LoginForm) = read_form(&request, &state, payload, MAX_LOGIN_FORM_BYTES).await?;
    let expected_token = request.cookie(LOGIN_COOKIE).map(|cookie| cookie.value().to_owned()).unwrap_or_default();
    if !tokens_match(&expected_token, &csrf) {
        return login_form(
            &request,
            &state,
            Some(words(&request, &state).login_form_expired.into()),
            StatusCode::FORBIDDEN,
        );
    }
    let setup = state.dashboard.password.mode(&state.config().web_password) == Mode::Setup;
    let candidate = if setup { &form.setup_code } else { &form.password }.trim_end_matches(['\r', '\n']);
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
    let (info, NoFields {}) = authorized_post(&request, &state, payload, true).await?;
    crate::operations::commit(&state, vec![Change::SessionEnded { digest: crate::store::session_digest(&info.id) }])
        .await;
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
    let (info, form): (_, PasswordForm) = authorized_post(&request, &state, payload, true).await?;
    let t = words(&request, &state);
    let new_password = form.new_password.as_str();
    let current_ok =
        info.must_change_password || attempt_password(&request, &state, &form.current, "password change").await?.0;
    let problem = if !current_ok {
        Some(t.password_wrong_current.to_owned())
    } else if new_password.chars().count() < MIN_PASSWORD_LENGTH {
        Some(text::fill(t.password_too_short, &[("n", &MIN_PASSWORD_LENGTH)]))
    } else if new_password.len() > MAX_PASSWORD_BYTES {
        Some(text::fill(t.password_too_long, &[("n", &MAX_PASSWORD_BYTES)]))
    } else if new_password != form.confirm {
        Some(t.password_mismatch.to_owned())
    } else if new_password == password::WELL_KNOWN_DEFAULT
        || (!info.must_change_password && new_password == form.current)
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
    )
    .await;
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
pub(super) fn session_started(state: &AppState, info: &crate::operator::session::SessionInfo) -> Change {
    Change::SessionStarted {
        digest: crate::store::session_digest(&info.id),
        csrf: info.csrf.clone(),
        must_change_password: info.must_change_password,
        at_ms: state.now_ms(),
    }
}
