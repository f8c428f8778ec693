//! Reading the original (Python) hajimi's `settings.json` into store
//! changes, for `hajimi import-settings PATH` (§10) and an upload on the
//! dashboard. The original saves a flat JSON object of its settings
//! module: names in upper (sometimes lower) case, values as strings,
//! numbers, booleans, lists or null, the search settings as an object
//! (`"search": {"search_mode": …, "search_prompt": …}`), plus internal
//! state (statistics, version information) that is not a setting.
//!
//! [`plan_import`] is pure (no I/O): given the text and the settings in
//! force, it says what to change. Each known setting is validated by the
//! same rules as at startup (`Config::from_raw` with it on top of the
//! settings in force) and becomes a dashboard override only when it is
//! valid and differs from what is in force, so a default or an unchanged
//! value does not shadow later changes of the environment or the config
//! file. The key lists become added keys (those already configured left
//! out). Everything else is reported as skipped, with a reason (`English /
//! 中文`) that never quotes the value (values can be secrets).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Change;
use crate::config::{Config, ConfigError, RawSettings, Source, ORIGINAL_UNUSED, SETTINGS};
use crate::messages::{both, halves, inline};
use crate::secret::ApiKey;

/// What an import would do, and what it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    /// To apply in one transaction: `SetSetting` for each imported
    /// setting, `AddKeys`, `AddExpressKey`.
    pub changes: Vec<Change>,
    /// Setting names (canonical spelling) that produced changes.
    pub imported: Vec<String>,
    /// Names (as written — `search.search_mode` for a nested one —, or
    /// canonical when known) left out, and why (`English / 中文`).
    pub skipped: Vec<(String, String)>,
    /// Settings whose value is already the one in force: nothing stored.
    pub unchanged: Vec<String>,
    /// AI Studio keys in the file that are already configured (not added).
    pub keys_already_configured: usize,
    /// Express keys in the file that are already configured (not added).
    pub express_keys_already_configured: usize,
}

impl ImportPlan {
    /// How many AI Studio keys the import adds.
    pub fn added_key_count(&self) -> usize {
        self.changes.iter().map(|change| if let Change::AddKeys(keys) = change { keys.len() } else { 0 }).sum()
    }

    /// How many Vertex Express keys the import adds.
    pub fn express_key_count(&self) -> usize {
        self.changes.iter().filter(|change| matches!(change, Change::AddExpressKey(_))).count()
    }

    /// The report for people, one line each (`English / 中文` where it
    /// is not a list of names): what is imported, what is already in
    /// force, the keys, and each skipped name with its reason.
    pub fn report_lines(&self) -> Vec<String> {
        let names = |names: &[String]| if names.is_empty() { "none / 无".to_owned() } else { names.join(", ") };
        let mut lines = vec![
            format!(
                "imported as dashboard values / 作为控制台设置导入 ({}): {}",
                self.imported.len(),
                names(&self.imported)
            ),
            format!(
                "already in force, not stored / 与当前生效的值相同，未保存 ({}): {}",
                self.unchanged.len(),
                names(&self.unchanged)
            ),
            format!(
                "AI Studio keys added / 新增 AI Studio key: {} ({} already configured / 已配置)",
                self.added_key_count(),
                self.keys_already_configured
            ),
            format!(
                "Vertex Express keys added / 新增 Vertex Express key: {} ({} already configured / 已配置)",
                self.express_key_count(),
                self.express_keys_already_configured
            ),
        ];
        if !self.skipped.is_empty() {
            lines.push(format!("skipped / 已跳过 ({}):", self.skipped.len()));
            lines.extend(self.skipped.iter().map(|(name, why)| format!("  {name}: {why}")));
        }
        lines
    }
}

/// Settings that say where the store lives cannot be kept in the store.
const STORAGE_LOCATION_SETTINGS: &[&str] = &["STORAGE_DIR", "ENABLE_STORAGE"];

/// Objects of the original's file whose entries are settings of their own
/// (`search.search_mode` is `SEARCH_MODE`).
const NESTED_SETTINGS: &[&str] = &["search"];

/// What one entry of the file would change.
enum Wanted {
    Setting(&'static str, String),
    Keys(Vec<String>),
    ExpressKeys(Vec<String>),
}

/// Plans the import of the original's `settings.json` (`json`, read from
/// `file_name`, which messages name) on top of `in_force`: the settings in
/// force below what the import writes (defaults, config file, environment,
/// and the dashboard values already stored — `SettingsLayers::combined`
/// on the server; keys are compared with its `GEMINI_API_KEYS` and
/// `VERTEX_EXPRESS_API_KEY`). No I/O. An error (`English / 中文`) means
/// the text is not a JSON object at all, or `in_force` itself is invalid;
/// anything inside that cannot be used is skipped.
pub fn plan_import(json: &str, file_name: &str, in_force: &RawSettings) -> Result<ImportPlan, String> {
    let parsed: Value = serde_json::from_str(json).map_err(|error| {
        both(
            &format!("{file_name} is not valid JSON ({error})"),
            &inline(&format!("{file_name} 不是有效的 JSON（{error}）")),
        )
    })?;
    let Value::Object(entries) = parsed else {
        return Err(both(
            &format!("{file_name} is not a JSON object of settings"),
            &inline(&format!("{file_name} 不是由设置组成的 JSON 对象")),
        ));
    };
    let mut flat: Vec<(String, Value)> = Vec::new();
    for (written, value) in entries {
        match value {
            Value::Object(inner) if NESTED_SETTINGS.iter().any(|nested| nested.eq_ignore_ascii_case(&written)) => {
                flat.extend(inner.into_iter().map(|(name, value)| (format!("{written}.{name}"), value)));
            }
            value => flat.push((written, value)),
        }
    }
    // Sorted by name so the report does not depend on serde_json's map order.
    flat.sort_by_cached_key(|(name, _)| (name.to_ascii_uppercase(), name.clone()));

    let mut plan = ImportPlan::default();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut seen: BTreeMap<&'static str, String> = BTreeMap::new();
    for (written, value) in flat {
        let bare = written.rsplit('.').next().unwrap_or(&written);
        let Some(name) = SETTINGS.iter().map(|(name, _)| *name).find(|name| name.eq_ignore_ascii_case(bare)) else {
            let reason = match ORIGINAL_UNUSED.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(bare)) {
                Some((_, en, zh)) => both(
                    &format!("a setting of the original that hajimi does not use ({en})"),
                    &format!("原版的设置，hajimi 不使用（{zh}）"),
                ),
                None => both("not a hajimi setting", "不是 hajimi 的设置"),
            };
            plan.skipped.push((written, reason));
            continue;
        };
        let shown = if written.contains('.') { written.clone() } else { name.to_owned() };
        if let Some(first) = seen.get(name) {
            let reason =
                both(&format!("also given as {first}; that one is used"), &format!("{first} 也给出了它；以那个为准"));
            plan.skipped.push((shown, reason));
            continue;
        }
        seen.insert(name, shown.clone());
        match wanted_by(name, &value) {
            Ok(change) => wanted.push(change),
            Err(reason) => plan.skipped.push((shown, reason)),
        }
    }

    let configured_keys: BTreeSet<String> =
        ApiKey::extract_all(in_force.get("GEMINI_API_KEYS")).iter().map(|key| key.expose().to_owned()).collect();
    let configured_express: BTreeSet<&str> = express_keys(in_force.get("VERTEX_EXPRESS_API_KEY")).collect();
    // Validation never needs the keys (a large set would only slow it).
    let mut base = in_force.clone();
    base.set("GEMINI_API_KEYS", String::new(), in_force.source("GEMINI_API_KEYS"));
    Config::from_raw(&base).map_err(|error| {
        let (en, zh) = halves_of(&error);
        both(&format!("the settings in force are not valid: {en}"), &format!("当前生效的设置无效：{zh}"))
    })?;
    let with = |settings: &[(&'static str, String)]| {
        let mut raw = base.clone();
        for (name, value) in settings {
            raw.set(name, value.clone(), Source::Dashboard);
        }
        Config::from_raw(&raw)
    };

    let mut settings: Vec<(&'static str, String)> = Vec::new();
    for change in wanted {
        match change {
            Wanted::Setting(name, text) => settings.push((name, text)),
            Wanted::Keys(keys) => {
                let (known, new): (Vec<String>, Vec<String>) =
                    keys.into_iter().partition(|key| configured_keys.contains(key));
                plan.keys_already_configured += known.len();
                if new.is_empty() {
                    plan.unchanged.push("GEMINI_API_KEYS".to_owned());
                } else {
                    plan.changes.push(Change::AddKeys(new));
                    plan.imported.push("GEMINI_API_KEYS".to_owned());
                }
            }
            Wanted::ExpressKeys(keys) => {
                let (known, new): (Vec<String>, Vec<String>) =
                    keys.into_iter().partition(|key| configured_express.contains(key.as_str()));
                plan.express_keys_already_configured += known.len();
                if new.is_empty() {
                    plan.unchanged.push("VERTEX_EXPRESS_API_KEY".to_owned());
                } else {
                    plan.changes.extend(new.into_iter().map(Change::AddExpressKey));
                    plan.imported.push("VERTEX_EXPRESS_API_KEY".to_owned());
                }
            }
        }
    }
    // Valid together, as the Settings page validates a form: the value the
    // rules blame is skipped until the rest holds.
    let config = loop {
        let error = match with(&settings) {
            Ok(config) => break config,
            Err(error) => error,
        };
        let blamed = match &error {
            ConfigError::InvalidValue { name, .. } => settings.iter().position(|(wanted, _)| wanted == name),
            _ => None,
        };
        if let Some(index) = blamed {
            let (name, _) = settings.remove(index);
            plan.skipped.push((name.to_owned(), invalid_reason(name, &error)));
            continue;
        }
        // A value in force is blamed (it was set in the same layer): skip
        // what is invalid on its own against the settings in force.
        let before = settings.len();
        settings.retain(|(name, text)| match with(&[(name, text.clone())]) {
            Ok(_) => true,
            Err(error) => {
                plan.skipped.push((name.to_string(), invalid_reason(name, &error)));
                false
            }
        });
        if settings.len() == before {
            // Not expected: nothing is wrong alone. None can be trusted.
            for (name, _) in std::mem::take(&mut settings) {
                plan.skipped.push((name.to_owned(), invalid_reason(name, &error)));
            }
        }
    };
    // A value that changes nothing in force (a default, the environment's
    // own value) is not stored: it would shadow later changes below it.
    let mut result = config.to_raw(None);
    let mut index = 0;
    while index < settings.len() {
        let mut without = settings.clone();
        let (name, _) = without.remove(index);
        match with(&without) {
            Ok(config) if same_settings(&config.to_raw(None), &result) => {
                plan.unchanged.push(name.to_owned());
                settings = without;
                result = config.to_raw(None);
            }
            _ => index += 1,
        }
    }
    for (name, value) in settings {
        plan.changes.push(Change::SetSetting { name: name.to_owned(), value });
        plan.imported.push(name.to_owned());
    }
    plan.imported.sort();
    plan.unchanged.sort();
    plan.skipped.sort_by_cached_key(|(name, _)| (name.to_ascii_uppercase(), name.clone()));
    Ok(plan)
}

/// Whether two configurations, written back as text, are the same.
fn same_settings(a: &RawSettings, b: &RawSettings) -> bool {
    SETTINGS.iter().all(|(name, _)| a.get(name) == b.get(name))
}

/// The English and Chinese halves of a configuration error's message.
fn halves_of(error: &ConfigError) -> (String, String) {
    let text = error.to_string();
    let (en, zh) = halves(&text);
    (en.to_owned(), zh.to_owned())
}

/// Why the value of `name` is skipped, from the error the rules gave (its
/// reason, never the value; naming the other setting when that one is
/// blamed).
fn invalid_reason(name: &str, error: &ConfigError) -> String {
    match error {
        ConfigError::InvalidValue { name: blamed, reason, .. } if *blamed == name => {
            let (en, zh) = halves(reason);
            both(&format!("invalid: {en}"), &format!("无效：{zh}"))
        }
        ConfigError::InvalidValue { name: blamed, reason, .. } => {
            let (en, zh) = halves(reason);
            both(&format!("does not fit with {blamed}: {blamed} {en}"), &format!("与 {blamed} 冲突：{blamed} {zh}"))
        }
        other => {
            let (en, zh) = halves_of(other);
            both(&format!("invalid: {en}"), &format!("无效：{zh}"))
        }
    }
}

/// Express keys in a `VERTEX_EXPRESS_API_KEY` value.
fn express_keys(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '\n', ' ']).map(str::trim).filter(|item| !item.is_empty())
}

/// What one known setting would change, or why it is skipped.
fn wanted_by(name: &'static str, value: &Value) -> Result<Wanted, String> {
    if value.is_null() {
        return Err(both("no value (null)", "没有值（null）"));
    }
    if name == "GOOGLE_CREDENTIALS_JSON" {
        return Err(both(
            "service-account credentials are not imported; add them on the dashboard's Vertex page",
            "服务账号凭据不会导入；请在控制台的 Vertex 页添加",
        ));
    }
    if STORAGE_LOCATION_SETTINGS.contains(&name) {
        return Err(both(
            "where the store lives cannot be a stored setting; set it in the environment",
            "存储位置不能保存在存储里；请用环境变量设置",
        ));
    }
    let text = value_as_text(value).map_err(|(en, zh)| both(en, zh))?;
    match name {
        "GEMINI_API_KEYS" => {
            let keys: Vec<String> = ApiKey::extract_all(&text).iter().map(|key| key.expose().to_owned()).collect();
            if keys.is_empty() {
                return Err(both("no AI Studio keys (AIza…) found in the value", "值里没有 AI Studio key（AIza…）"));
            }
            Ok(Wanted::Keys(keys))
        }
        "VERTEX_EXPRESS_API_KEY" => {
            let mut keys: Vec<String> = Vec::new();
            for key in express_keys(&text) {
                if !keys.iter().any(|known| known == key) {
                    keys.push(key.to_owned());
                }
            }
            if keys.is_empty() {
                return Err(both("no Express keys in the value", "值里没有 Express key"));
            }
            Ok(Wanted::ExpressKeys(keys))
        }
        _ => Ok(Wanted::Setting(name, text.trim().to_owned())),
    }
}

/// A value as the text a setting holds: strings as they are, booleans
/// `true`/`false`, numbers as written, lists joined with commas; or why
/// not (English, Chinese).
fn value_as_text(value: &Value) -> Result<String, (&'static str, &'static str)> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Array(items) => {
            let texts = items
                .iter()
                .filter(|item| !item.is_null())
                .map(|item| match item {
                    Value::Array(_) | Value::Object(_) => {
                        Err(("a list of lists or objects is not a setting value", "由列表或对象组成的列表不是设置值"))
                    }
                    scalar => value_as_text(scalar),
                })
                .collect::<Result<Vec<String>, _>>()?;
            Ok(texts.join(","))
        }
        Value::Object(_) => Err(("an object is not a setting value", "对象不是设置值")),
        Value::Null => Err(("no value (null)", "没有值（null）")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AIzaSyImportTestKeyAAAAAAAAAAAAAAAAAAAA";
    const KEY_B: &str = "AIzaSyImportTestKeyBBBBBBBBBBBBBBBBBBBB";
    const KEY_C: &str = "AIzaSyImportTestKeyCCCCCCCCCCCCCCCCCCCC";
    const SECRET_CREDENTIALS: &str = r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----secret"}"#;

    fn set(name: &str, value: &str) -> Change {
        Change::SetSetting { name: name.to_owned(), value: value.to_owned() }
    }

    /// The settings in force: defaults plus `env`.
    fn in_force(env: &[(&str, &str)]) -> RawSettings {
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RawSettings::load(None, &|name| env.get(name).cloned()).expect("load")
    }

    fn plan_of(json: &str) -> ImportPlan {
        plan_import(json, "settings.json", &in_force(&[])).unwrap_or_else(|error| panic!("{json}: {error}"))
    }

    fn skipped_names(plan: &ImportPlan) -> Vec<&str> {
        plan.skipped.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn a_realistic_original_settings_file_imports_what_differs_from_what_is_in_force() {
        let settings_json = serde_json::json!({
            "FAKE_STREAMING": true,
            "FAKE_STREAMING_INTERVAL": 1.0,
            "RANDOM_STRING": false,
            "RANDOM_STRING_LENGTH": 5,
            "concurrent_requests": 2,
            "MAX_RETRY_NUM": 20,
            "BLOCKED_MODELS": ["gemini-1.0-pro", "gemini-1.5-flash-8b"],
            "GEMINI_API_KEYS": format!("{KEY_A},{KEY_B}, {KEY_A}\n{KEY_C}"),
            "VERTEX_EXPRESS_API_KEY": "express-one, express-two,",
            "GOOGLE_CREDENTIALS_JSON": SECRET_CREDENTIALS,
            "STORAGE_DIR": "/hajimi/settings/",
            "INVALID_API_KEYS": "",
            "RETRY_DELAY": 1,
            "search": {"search_mode": true, "search_prompt": crate::config::DEFAULT_SEARCH_PROMPT},
            "version": {"local_version": "0.0.5", "remote_version": "0.0.5", "has_update": false},
            "api_call_stats": {"last_24h": {"total": {}}},
        })
        .to_string();
        // MAX_RETRY_NUM is set to 20 in the environment already.
        let plan = plan_import(&settings_json, "settings.json", &in_force(&[("MAX_RETRY_NUM", "20")])).expect("plan");
        assert_eq!(
            plan.changes,
            vec![
                Change::AddKeys(vec![KEY_A.to_owned(), KEY_B.to_owned(), KEY_C.to_owned()]),
                Change::AddExpressKey("express-one".to_owned()),
                Change::AddExpressKey("express-two".to_owned()),
                set("BLOCKED_MODELS", "gemini-1.0-pro,gemini-1.5-flash-8b"),
                set("CONCURRENT_REQUESTS", "2"),
                set("RANDOM_STRING", "false"),
                set("SEARCH_MODE", "true"),
            ]
        );
        assert_eq!(
            plan.imported,
            [
                "BLOCKED_MODELS",
                "CONCURRENT_REQUESTS",
                "GEMINI_API_KEYS",
                "RANDOM_STRING",
                "SEARCH_MODE",
                "VERTEX_EXPRESS_API_KEY"
            ]
        );
        // Defaults and the environment's value are not stored over them.
        assert_eq!(
            plan.unchanged,
            ["FAKE_STREAMING", "FAKE_STREAMING_INTERVAL", "MAX_RETRY_NUM", "RANDOM_STRING_LENGTH", "SEARCH_PROMPT"]
        );
        assert_eq!(
            skipped_names(&plan),
            ["api_call_stats", "GOOGLE_CREDENTIALS_JSON", "INVALID_API_KEYS", "RETRY_DELAY", "STORAGE_DIR", "version"]
        );
        let reason = |name: &str| plan.skipped.iter().find(|(skipped, _)| skipped == name).unwrap().1.clone();
        assert_eq!(reason("RETRY_DELAY"), "not a hajimi setting / 不是 hajimi 的设置");
        assert!(reason("INVALID_API_KEYS").starts_with("a setting of the original that hajimi does not use ("));
        assert!(reason("GOOGLE_CREDENTIALS_JSON").contains("Vertex page / 服务账号凭据不会导入"));
        assert_eq!((plan.added_key_count(), plan.express_key_count()), (3, 2));
        let report = plan.report_lines().join("\n");
        assert!(report.contains("(6): BLOCKED_MODELS, CONCURRENT_REQUESTS"), "{report}");
        assert!(report.contains("  STORAGE_DIR: where the store lives"), "{report}");
        assert!(!report.contains("secret"), "{report}");
    }

    #[test]
    fn the_search_object_of_the_original_becomes_search_mode_and_search_prompt() {
        let plan = plan_of(r#"{"search": {"search_mode": true, "search_prompt": "联网搜索", "search_engine": "x"}}"#);
        assert_eq!(plan.changes, vec![set("SEARCH_MODE", "true"), set("SEARCH_PROMPT", "联网搜索")]);
        assert_eq!(skipped_names(&plan), ["search.search_engine"]);
        // Given twice: the nested one is used, the other reported.
        let plan = plan_of(r#"{"SEARCH_MODE": false, "search": {"search_mode": true}}"#);
        assert_eq!(plan.changes, vec![set("SEARCH_MODE", "true")]);
        assert_eq!(skipped_names(&plan), ["SEARCH_MODE"]);
    }

    #[test]
    fn invalid_values_are_skipped_by_name_with_the_rule_they_break() {
        let plan = plan_of(
            r#"{"PORT": "seventy", "MAX_RETRY_NUM": 0, "SAFETY_THRESHOLD": "LOW", "PASSWORD": "", "TZ": "Asia/Shanghai"}"#,
        );
        assert_eq!(plan.changes, vec![set("TZ", "Asia/Shanghai")]);
        assert_eq!(skipped_names(&plan), ["MAX_RETRY_NUM", "PASSWORD", "PORT", "SAFETY_THRESHOLD"]);
        let port = &plan.skipped.iter().find(|(name, _)| name == "PORT").unwrap().1;
        assert_eq!(port, "invalid: expected a port number from 0 to 65535 / 无效：应为 0 到 65535 之间的端口号");
        assert!(!plan.skipped.iter().any(|(_, why)| why.contains("seventy")), "values are never quoted");
    }

    #[test]
    fn values_valid_alone_but_not_together_skip_the_one_the_rules_blame() {
        // 100 MB bodies need a 300 MB budget: alone, the body limit is
        // refused against the default budget; with a budget it fits.
        let plan = plan_of(r#"{"MAX_REQUEST_BODY_MB": 100}"#);
        assert_eq!(skipped_names(&plan), ["MAX_REQUEST_BODY_MB"]);
        assert!(plan.skipped[0].1.contains("MAX_BODY_BYTES_IN_FLIGHT_MB (256)"), "{:?}", plan.skipped);
        let plan = plan_of(r#"{"MAX_REQUEST_BODY_MB": 100, "MAX_BODY_BYTES_IN_FLIGHT_MB": 300}"#);
        assert_eq!(plan.imported, ["MAX_BODY_BYTES_IN_FLIGHT_MB", "MAX_REQUEST_BODY_MB"]);
        // A budget stored in the dashboard (the same layer) is blamed: the
        // imported body limit that does not fit it is skipped.
        let mut stored = in_force(&[]);
        stored.set("MAX_BODY_BYTES_IN_FLIGHT_MB", "256".into(), Source::Dashboard);
        let plan = plan_import(r#"{"MAX_REQUEST_BODY_MB": 100, "TZ": "Mars/Olympus"}"#, "s.json", &stored).unwrap();
        assert_eq!(skipped_names(&plan), ["MAX_REQUEST_BODY_MB", "TZ"]);
        assert!(plan.skipped[0].1.starts_with("does not fit with MAX_BODY_BYTES_IN_FLIGHT_MB"), "{:?}", plan.skipped);
        // Each valid alone (80 MB bodies, a 200 MB budget), not together:
        // both set in the same layer, the budget is blamed.
        let plan = plan_of(r#"{"MAX_REQUEST_BODY_MB": 80, "MAX_BODY_BYTES_IN_FLIGHT_MB": 200}"#);
        assert_eq!(plan.imported, ["MAX_REQUEST_BODY_MB"]);
        assert_eq!(skipped_names(&plan), ["MAX_BODY_BYTES_IN_FLIGHT_MB"]);
    }

    #[test]
    fn keys_already_configured_are_not_added_again() {
        let json = format!(r#"{{"GEMINI_API_KEYS": "{KEY_A},{KEY_B}", "VERTEX_EXPRESS_API_KEY": "express-one"}}"#);
        let configured = in_force(&[("GEMINI_API_KEYS", KEY_A), ("VERTEX_EXPRESS_API_KEY", "express-one")]);
        let plan = plan_import(&json, "settings.json", &configured).expect("plan");
        assert_eq!(plan.changes, vec![Change::AddKeys(vec![KEY_B.to_owned()])]);
        assert_eq!((plan.keys_already_configured, plan.express_keys_already_configured), (1, 1));
        assert_eq!(plan.unchanged, ["VERTEX_EXPRESS_API_KEY"]);
    }

    #[test]
    fn values_that_cannot_be_used_are_skipped_without_quoting_them() {
        // (json, skipped name, English half of the reason)
        let cases = [
            (
                r#"{"GEMINI_API_KEYS": "secret-but-not-a-key"}"#,
                "GEMINI_API_KEYS",
                "no AI Studio keys (AIza…) found in the value",
            ),
            (r#"{"VERTEX_EXPRESS_API_KEY": " , "}"#, "VERTEX_EXPRESS_API_KEY", "no Express keys in the value"),
            (r#"{"password": {"secret-value": 1}}"#, "PASSWORD", "an object is not a setting value"),
            (r#"{"password": "secret-value "}"#, "PASSWORD", ""),
            (
                r#"{"EXTRA_MODELS": [["secret-value"]]}"#,
                "EXTRA_MODELS",
                "a list of lists or objects is not a setting value",
            ),
            (
                r#"{"ENABLE_STORAGE": false}"#,
                "ENABLE_STORAGE",
                "where the store lives cannot be a stored setting; set it in the environment",
            ),
            (r#"{"secret-value": "x"}"#, "secret-value", "not a hajimi setting"),
        ];
        for (json, name, reason) in cases {
            let plan = plan_of(json);
            if reason.is_empty() {
                // A valid secret is imported, and never shown either.
                assert_eq!(plan.changes, vec![set(name, "secret-value")], "{json}");
                assert!(!plan.report_lines().concat().contains("secret-value"), "{json}");
                continue;
            }
            assert_eq!(plan.changes, vec![], "{json}");
            assert_eq!(skipped_names(&plan), [name], "{json}");
            let why = &plan.skipped[0].1;
            assert_eq!(halves(why).0, reason, "{json}");
            assert!(!why.contains("secret-value") && !why.contains("secret-but"), "{json}");
        }
    }

    #[test]
    fn gemini_keys_may_be_a_list_and_names_any_case() {
        let json = format!(r#"{{"gemini_api_keys": ["{KEY_B}", "{KEY_A}", "{KEY_B}"], "Password": "hunter2"}}"#);
        let plan = plan_of(&json);
        assert_eq!(
            plan.changes,
            vec![Change::AddKeys(vec![KEY_B.to_owned(), KEY_A.to_owned()]), set("PASSWORD", "hunter2")]
        );
        assert_eq!(plan.imported, ["GEMINI_API_KEYS", "PASSWORD"]);
    }

    #[test]
    fn text_that_is_not_a_json_object_is_an_error_naming_the_file() {
        for json in ["", "not json", "[1, 2]", "\"FAKE_STREAMING\"", "null"] {
            let error = plan_import(json, "/backup/old-hajimi.json", &in_force(&[])).unwrap_err();
            assert!(error.starts_with("/backup/old-hajimi.json is not"), "{json:?}: {error}");
            assert!(halves(&error).1.starts_with("/backup/old-hajimi.json 不是"), "{json:?}: {error}");
        }
        assert_eq!(plan_of("{}"), ImportPlan::default());
    }
}
