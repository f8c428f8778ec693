//! The settings in force and how they change at runtime, without any
//! page: the layers (defaults, file, environment, then dashboard
//! overrides), validating a set of overrides as a whole, putting it in
//! force (`AppState::replace_config`) and persisting it, adopting what
//! another replica saved, reverting one override, and applying the stored
//! ones at startup. The dashboard's Settings page (`dashboard::settings`)
//! and the cluster both come here.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Config, ConfigError, Source};
use crate::state::{AppState, Applied};
use crate::store::Change;

/// The `'static` name of a setting hajimi knows (not the keys, which live
/// in the pool).
pub fn known_name(name: &str) -> Option<&'static str> {
    crate::config::SETTINGS.iter().map(|(known, _)| *known).find(|known| *known == name && *known != "GEMINI_API_KEYS")
}

/// Settings that decide where pool keys, Vertex tokens or the proxy's
/// credentials are sent, or whose word vouches for a Hugging Face caller:
/// changing one in the dashboard needs the dashboard password again (a
/// stolen session alone must not be able to send the keys elsewhere), and
/// is logged with the address.
pub const SECRET_DESTINATIONS: &[&str] = &[
    "GEMINI_BASE_URL",
    "VERTEX_BASE_URL",
    "VERTEX_LOCATION",
    "VERTEX_MODELS_URL",
    "PROXY_URL",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "HF_HUB_URL",
    "HF_JWT_KEYS_URL",
];

pub fn decides_where_secrets_go(name: &str) -> bool {
    SECRET_DESTINATIONS.contains(&name)
}

/// Validation errors by setting name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Validates `overrides` on top of the lower layers: the configuration they
/// give, or every field's error. Each invalid field is reverted to find
/// the next one, so all errors are reported at once.
pub fn validate(
    layers: &crate::state::SettingsLayers,
    overrides: &BTreeMap<String, String>,
    changed: &BTreeSet<&'static str>,
) -> Result<Config, FieldErrors> {
    let mut candidate = overrides.clone();
    let mut errors = FieldErrors::new();
    for _ in 0..=crate::config::SETTINGS.len() {
        match Config::from_raw(&layers.combined(&candidate)) {
            Ok(config) if errors.is_empty() => return Ok(config),
            Ok(_) => return Err(errors),
            Err(ConfigError::InvalidValue { name, reason, .. }) => {
                errors.insert(name, reason);
                if candidate.remove(name).is_none() || !changed.contains(name) {
                    // The lower layers themselves are invalid for this
                    // name: nothing more can be learned.
                    return Err(errors);
                }
            }
            Err(other) => {
                errors.insert("PASSWORD", other.to_string());
                return Err(errors);
            }
        }
    }
    Err(errors)
}

/// At startup: the configuration with the stored dashboard overrides on
/// top, or `None` when there are none. Overrides of names hajimi does not
/// know, or that no longer validate (an upgrade changed a rule), are
/// dropped from `layers` with a warning instead of stopping startup; an
/// environment value an override shadows is logged once.
pub fn apply_stored(layers: &mut crate::state::SettingsLayers) -> Option<Config> {
    layers.overrides.retain(|name, _| {
        let known = crate::config::SETTINGS.iter().any(|(known, _)| known == name) && name != "GEMINI_API_KEYS";
        if !known {
            log::warn!("a stored dashboard setting {} is unknown and ignored", crate::secret::LogSafe(name));
        }
        known
    });
    if layers.overrides.is_empty() {
        return None;
    }
    for (name, value) in &layers.overrides {
        if layers.base.source(name) == Source::Env && layers.base.get(name) != value {
            log::warn!("{name} from the environment is overridden by the value set in the dashboard");
        }
    }
    loop {
        match Config::from_raw(&layers.combined(&layers.overrides)) {
            Ok(config) => return Some(config),
            Err(ConfigError::InvalidValue { name, reason, .. }) if layers.overrides.contains_key(name) => {
                log::warn!("the dashboard value of {name} is ignored: {reason}");
                layers.overrides.remove(name);
            }
            Err(error) => {
                log::warn!("the dashboard settings are ignored: {error}");
                layers.overrides.clear();
                return None;
            }
        }
    }
}

/// Saves a set of changes (from the Settings or Vertex page): validated as
/// a whole, then put in force and persisted, or refused with every error.
pub async fn save(
    state: &actix_web::web::Data<AppState>,
    changes: BTreeMap<&'static str, String>,
) -> Result<Vec<&'static str>, FieldErrors> {
    let (names, applied) = save_here(state, changes)?;
    applied.finish(state).await;
    Ok(names)
}

/// [`save`] up to what is left to do.
fn save_here(
    state: &AppState,
    changes: BTreeMap<&'static str, String>,
) -> Result<(Vec<&'static str>, Applied), FieldErrors> {
    if changes.is_empty() {
        return Ok((Vec::new(), Applied::default()));
    }
    let mut layers = state.settings.lock();
    let mut overrides = layers.overrides.clone();
    for (name, value) in &changes {
        overrides.insert((*name).to_owned(), value.clone());
    }
    let changed: BTreeSet<&'static str> = changes.keys().copied().collect();
    let config = validate(&layers, &overrides, &changed)?;
    layers.overrides = overrides;
    drop(layers);
    let applied = state.replace_config(config);
    state.store.send_all(
        changes
            .iter()
            .map(|(name, value)| Change::SetSetting { name: (*name).to_owned(), value: value.clone() })
            .collect(),
    );
    Ok((changed.into_iter().collect(), applied))
}

/// Puts in force the dashboard overrides another replica saved (shared
/// state): validated like a save here, but not written back. An override
/// set that does not validate on this replica is left out with a warning.
/// What is left to do (the caller syncs Vertex, off the async thread).
pub fn adopt_shared(state: &AppState, overrides: std::collections::BTreeMap<String, String>) -> Applied {
    let mut layers = state.settings.lock();
    if layers.overrides == overrides {
        return Applied::default();
    }
    let changed: BTreeSet<&'static str> = overrides
        .iter()
        .filter(|(name, value)| layers.overrides.get(*name) != Some(*value))
        .chain(layers.overrides.iter().filter(|(name, _)| !overrides.contains_key(*name)))
        .filter_map(|(name, _)| known_name(name))
        .collect();
    match validate(&layers, &overrides, &changed) {
        Ok(config) => {
            layers.overrides = overrides;
            drop(layers);
            let applied = state.replace_config(config);
            log::info!(target: "hajimi::cluster", "settings changed on another replica are in force: {}", changed.into_iter().collect::<Vec<_>>().join(", "));
            applied
        }
        Err(errors) => {
            let names: Vec<String> = errors.into_keys().map(str::to_owned).collect();
            log::warn!(target: "hajimi::cluster", "settings saved on another replica do not validate here ({}); keeping this replica's", names.join(", "));
            Applied::default()
        }
    }
}

/// Why a revert was refused (the page words it in its language).
#[derive(Debug)]
pub enum RevertError {
    /// No setting has that name.
    Unknown,
    /// The setting has no dashboard value to remove.
    NotOverridden(&'static str),
    /// Without the override the settings do not validate.
    Invalid(FieldErrors),
}

/// Drops a dashboard override: the setting returns to its file, env or
/// default value.
pub async fn revert(state: &actix_web::web::Data<AppState>, name: &str) -> Result<&'static str, RevertError> {
    let (name, applied) = revert_here(state, name)?;
    applied.finish(state).await;
    Ok(name)
}

/// [`revert`] up to what is left to do.
fn revert_here(state: &AppState, name: &str) -> Result<(&'static str, Applied), RevertError> {
    let name = known_name(name).ok_or(RevertError::Unknown)?;
    let mut layers = state.settings.lock();
    let mut overrides = layers.overrides.clone();
    if overrides.remove(name).is_none() {
        return Err(RevertError::NotOverridden(name));
    }
    let config = validate(&layers, &overrides, &BTreeSet::new()).map_err(RevertError::Invalid)?;
    layers.overrides = overrides;
    drop(layers);
    let applied = state.replace_config(config);
    state.store.send(Change::RemoveSetting { name: name.to_owned() });
    Ok((name, applied))
}
