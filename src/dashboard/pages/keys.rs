//! The Keys page: search and paging, adding keys, actions on keys,
//! validation, clearing invalid keys, per-model daily limits, the export.

use super::*;

/// The Keys page's paste box.
#[derive(Deserialize)]
pub(super) struct AddKeysForm {
    #[serde(default)]
    keys: String,
}

/// An action on the keys ticked in the table (`id` once per key).
#[derive(Deserialize)]
pub(super) struct KeyActionForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: Vec<String>,
}

/// The export asks for the password again.
#[derive(Deserialize)]
pub(super) struct ExportForm {
    #[serde(default)]
    password: String,
}

/// A per-model daily limit (an empty limit removes it).
#[derive(Deserialize)]
pub(super) struct ModelLimitForm {
    #[serde(default)]
    model: String,
    #[serde(default)]
    limit: String,
}

#[derive(Deserialize)]
pub struct KeysQuery {
    page: Option<usize>,
    q: Option<String>,
    state: Option<String>,
}

/// The Keys page's state filter: the query value and its label.
pub(super) fn state_filters(t: &Text) -> [(&'static str, &'static str); 5] {
    [
        ("all", t.state_all),
        ("active", t.state_active),
        ("limited", t.state_limited),
        ("invalid", t.state_invalid),
        ("disabled", t.state_disabled),
    ]
}

pub(super) const STATE_FILTER_VALUES: &[&str] = &["all", "active", "limited", "invalid", "disabled"];

/// A key's state: the CSS hook (`state-…`, `data-avail`) and its badge's
/// words.
pub(super) fn key_state(state: &KeyState, t: &Text) -> (&'static str, &'static str) {
    match state {
        KeyState::Active => ("active", t.badge_active),
        KeyState::Invalid { .. } => ("invalid", t.badge_invalid),
        KeyState::Disabled => ("disabled", t.badge_disabled),
        KeyState::Removed => ("deleted", t.badge_deleted),
    }
}

pub(super) fn key_row(view: crate::keys::KeyView, now_ms: u64, format: Format) -> KeyRow {
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
pub(super) fn count_key_tokens(text: &str) -> usize {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|token| token.starts_with(ApiKey::PREFIX) && token.len() == ApiKey::LENGTH)
        .count()
}

pub(super) fn count_malformed_keys(text: &str) -> usize {
    ApiKey::count_malformed(text)
}

pub async fn add_keys(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form): (_, AddKeysForm) = authorized_post(&request, &state, payload, false).await?;
    let text = form.keys.as_str();
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
        )
        .await;
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
    let (info, form): (_, KeyActionForm) = authorized_post(&request, &state, payload, false).await?;
    let ids: Vec<KeyId> = form
        .id
        .iter()
        .filter_map(|value| value.parse::<u32>().ok())
        .map(KeyId)
        .filter(|id| state.pool.key_of(*id).is_some())
        .collect();
    let t = words(&request, &state);
    if ids.is_empty() {
        return Ok(flash_and_redirect(&state, &info, "error", t.keys_select_one.into(), "/keys"));
    }
    let action = form.action.as_str();
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
    crate::operations::commit(&state, changes).await;
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
    let (info, NoFields {}) = authorized_post(&request, &state, payload, false).await?;
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
    let (info, NoFields {}) = authorized_post(&request, &state, payload, false).await?;
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
    crate::operations::commit(&state, changes).await;
    log::info!("dashboard: {} invalid keys deleted", ids.len());
    let message = text::fill(words(&request, &state).invalid_deleted, &[("n", &ids.len())]);
    Ok(flash_and_redirect(&state, &info, "ok", message, "/keys"))
}

pub async fn export_keys(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, DashboardError> {
    let (info, form): (_, ExportForm) = authorized_post(&request, &state, payload, false).await?;
    let address = crate::auth::client_address(&request, &state.config());
    let now_ms = state.now_ms();
    if !attempt_password(&request, &state, &form.password, "key export").await?.0 {
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
    let (info, form): (_, ModelLimitForm) = authorized_post(&request, &state, payload, false).await?;
    let t = words(&request, &state);
    let model = form.model.trim().to_owned();
    let valid_model = !model.is_empty()
        && model.len() <= 128
        && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid_model {
        return Ok(flash_and_redirect(&state, &info, "error", t.limit_bad_model.into(), "/keys"));
    }
    let limit = match form.limit.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(limit) => Some(limit),
            Err(_) => return Ok(flash_and_redirect(&state, &info, "error", t.limit_bad_number.into(), "/keys")),
        },
    };
    crate::operations::commit(&state, vec![Change::SetModelLimit { model: model.clone(), limit }]).await;
    log::info!("dashboard: daily limit for {model} set to {}", limit.map_or("default".to_owned(), |l| l.to_string()));
    Ok(flash_and_redirect(&state, &info, "ok", text::fill(t.limit_saved, &[("model", &model)]), "/keys"))
}
