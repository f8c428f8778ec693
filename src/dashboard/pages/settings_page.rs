//! The Settings page: every setting with its source, a save validated as
//! a whole (the password again for where keys go), revert, and the import
//! of the original's settings.json.

use super::*;

/// The value of `name` in the Settings form (whose field names are the
/// settings').
fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
}

/// The import of the original's settings.json.
#[derive(Deserialize)]
pub(super) struct ImportForm {
    #[serde(default)]
    settings_json: String,
    #[serde(default)]
    confirm_password: String,
}

/// Which override to remove.
#[derive(Deserialize)]
pub(super) struct RevertForm {
    #[serde(default)]
    name: String,
}

/// Where a value comes from, in the page's language.
pub(super) fn source_label(source: crate::config::Source, t: &Text) -> &'static str {
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
pub(super) fn settings_view(
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
pub(super) fn errors_in(errors: &crate::settings::FieldErrors, lang: Lang) -> String {
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
    let (info, form): (_, Form) = authorized_post(&request, &state, payload, false).await?;
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
    match crate::settings::save(&state, changes.clone()).await {
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
    let (info, form): (_, ImportForm) = authorized_post(&request, &state, payload, false).await?;
    let lang = lang(&request, &state);
    let t = text::text(lang);
    let json = form.settings_json.as_str();
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
        let given = form.confirm_password.as_str();
        let confirmed = !given.is_empty() && attempt_password(&request, &state, given, "settings import").await?.0;
        if !confirmed {
            let message = text::fill(t.settings_guarded_summary, &[("names", &guarded.join(", "))]);
            return Ok(flash_and_redirect(&state, &info, "error", message, "/settings"));
        }
    }
    let names = match crate::settings::save(&state, settings_changes).await {
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
    crate::operations::commit(&state, other_changes).await;
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
    let (info, form): (_, RevertForm) = authorized_post(&request, &state, payload, false).await?;
    let lang = lang(&request, &state);
    let t = text::text(lang);
    match crate::settings::revert(&state, &form.name).await {
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
