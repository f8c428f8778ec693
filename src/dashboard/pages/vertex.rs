//! The Vertex page: the toggles, Express keys, service accounts, tests.

use super::*;

/// A "Test" button: which credential (`account` or `express`) and its id.
#[derive(Deserialize)]
pub(super) struct TestForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
}

/// The two switches (a hidden "false", then the checkbox's "true").
#[derive(Deserialize)]
pub(super) struct TogglesForm {
    #[serde(default)]
    enable_vertex: Vec<String>,
    #[serde(default)]
    enable_vertex_express: Vec<String>,
}

/// Express keys pasted (any separators).
#[derive(Deserialize)]
pub(super) struct ExpressKeysForm {
    #[serde(default)]
    keys: String,
}

/// One Express key, by its place in the list.
#[derive(Deserialize)]
pub(super) struct RemoveExpressForm {
    #[serde(default)]
    id: String,
}

/// A service account's key file, pasted.
#[derive(Deserialize)]
pub(super) struct CredentialForm {
    #[serde(default)]
    json: String,
}

/// A service account, by its email.
#[derive(Deserialize)]
pub(super) struct RemoveCredentialForm {
    #[serde(default)]
    client_email: String,
}

pub(super) fn mask_secret(text: &str) -> String {
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
pub(super) fn vertex_in_use(state: &AppState, t: &Text) -> Vec<VertexInUseRow> {
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
    let (info, form): (_, TestForm) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    let id = form.id.parse::<u32>().ok().map(crate::keys::KeyId);
    let clients = clients.current(&state);
    // (kind, the flash in the page's language, the same in English for the log)
    let said = |template: &dyn Fn(&Text) -> String| (template(t), template(&text::EN));
    let (kind, (message, logged)) = match (form.kind.as_str(), id) {
        ("account", Some(id)) => {
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
        ("express", Some(id)) => match state.vertex.express.key_of(id) {
            None => ("error", said(&|t| t.vertex_no_such_express.to_owned())),
            Some(key) => {
                let target = crate::gemini::client::Target {
                    version: crate::gemini::client::ApiVersion::V1,
                    model: std::rc::Rc::from(EXPRESS_TEST_MODEL),
                    service: crate::gemini::client::Service::VertexExpress,
                };
                let body = crate::bodyshare::Rope::from(r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#);
                let credential = crate::gemini::client::CallCredential::Key(&key);
                let masked = mask_secret(key.expose());
                match clients.gemini.call(credential, &target, crate::gemini::native::Action::CountTokens, body).await {
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
pub(super) const EXPRESS_TEST_MODEL: &str = "gemini-2.5-flash";

pub async fn vertex_toggles(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form): (_, TogglesForm) = authorized_post(&request, &state, payload, false).await?;
    let lang = lang(&request, &state);
    let t = text::text(lang);
    let checked = |name: &str| {
        let values = if name == "enable_vertex" { &form.enable_vertex } else { &form.enable_vertex_express };
        values.iter().any(|value| value != "false")
    };
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
    match crate::settings::save(&state, changes).await {
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
    let (info, form): (_, ExpressKeysForm) = authorized_post(&request, &state, payload, false).await?;
    let text = form.keys.as_str();
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
    crate::operations::commit(&state, added.into_iter().map(Change::AddExpressKey).collect()).await;
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
    let (info, form): (_, RemoveExpressForm) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    let index = form.id.parse::<usize>().ok();
    let removed = index.and_then(|index| state.dashboard.vertex.read().express_keys.get(index).cloned());
    match removed {
        Some(key) => {
            crate::operations::commit(&state, vec![Change::RemoveExpressKey(key)]).await;
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
    let (info, form): (_, CredentialForm) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    match parse_service_account(&form.json, t) {
        Ok(credential) => {
            let email = credential.client_email.clone();
            crate::operations::commit(&state, vec![Change::AddCredential(credential)]).await;
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
    let (info, form): (_, RemoveCredentialForm) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    let email = form.client_email.clone();
    let known = state.dashboard.vertex.read().credentials.iter().any(|known| known.client_email == email);
    if !known {
        return Ok(flash_and_redirect(&state, &info, "error", t.vertex_no_such_credential.into(), "/vertex"));
    }
    crate::operations::commit(&state, vec![Change::RemoveCredential { client_email: email.clone() }]).await;
    log::info!("dashboard: Vertex credential {} removed", crate::secret::LogSafe(&email));
    let message = text::fill(t.vertex_credential_removed, &[("email", &email)]);
    Ok(flash_and_redirect(&state, &info, "ok", message, "/vertex"))
}
