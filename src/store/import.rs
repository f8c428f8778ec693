//! Reading the original (Python) hajimi's `settings.json` into store
//! changes, for `hajimi import-settings PATH` (§10). The original saves a
//! flat JSON object of its settings module: names in upper (sometimes
//! lower) case, values as strings, numbers, booleans, lists or null, plus
//! internal state (statistics, version information) that is not a
//! setting. Known settings become dashboard overrides; the key lists
//! become added keys; everything else is reported as skipped, with a
//! reason that never quotes the value (values can be secrets).

use serde_json::Value;

use super::Change;
use crate::config::SETTINGS;
use crate::secret::ApiKey;

/// What an import would do, and what it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// To apply in one transaction.
    pub changes: Vec<Change>,
    /// Setting names (canonical spelling) that produced changes.
    pub imported: Vec<String>,
    /// Names (as written, or canonical when known) left out, and why.
    pub skipped: Vec<(String, String)>,
}

impl ImportReport {
    /// How many AI Studio keys the import adds.
    pub fn added_key_count(&self) -> usize {
        self.changes.iter().map(|change| if let Change::AddKeys(keys) = change { keys.len() } else { 0 }).sum()
    }

    /// How many Vertex Express keys the import adds.
    pub fn express_key_count(&self) -> usize {
        self.changes.iter().filter(|change| matches!(change, Change::AddExpressKey(_))).count()
    }
}

/// Settings that say where the store lives cannot be kept in the store.
const STORAGE_LOCATION_SETTINGS: &[&str] = &["STORAGE_DIR", "ENABLE_STORAGE"];

/// Parses the original's `settings.json`. An error means the text is not a
/// JSON object at all; anything inside that cannot be used is skipped.
pub fn import_original_settings(json: &str) -> Result<ImportReport, String> {
    let parsed: Value =
        serde_json::from_str(json).map_err(|error| format!("settings.json is not valid JSON ({error})"))?;
    let Value::Object(entries) = parsed else {
        return Err("settings.json is not a JSON object of settings".to_owned());
    };
    // Sorted by name so the report does not depend on serde_json's map order.
    let mut entries: Vec<(String, Value)> = entries.into_iter().collect();
    entries.sort_by_cached_key(|(name, _)| (name.to_ascii_uppercase(), name.clone()));

    let mut report = ImportReport::default();
    for (written_name, value) in entries {
        let Some(name) = SETTINGS.iter().map(|(name, _)| *name).find(|name| name.eq_ignore_ascii_case(&written_name))
        else {
            report.skipped.push((written_name, "not a hajimi setting".to_owned()));
            continue;
        };
        match import_one_setting(name, &value) {
            Ok(changes) => {
                report.changes.extend(changes);
                report.imported.push(name.to_owned());
            }
            Err(reason) => report.skipped.push((name.to_owned(), reason)),
        }
    }
    Ok(report)
}

/// The changes for one known setting, or why it is skipped.
fn import_one_setting(name: &'static str, value: &Value) -> Result<Vec<Change>, String> {
    if value.is_null() {
        return Err("no value (null)".to_owned());
    }
    if name == "GOOGLE_CREDENTIALS_JSON" {
        return Err("service-account credentials are not imported; add them on the dashboard's Vertex page".to_owned());
    }
    if STORAGE_LOCATION_SETTINGS.contains(&name) {
        return Err("where the store lives cannot be a stored setting; set it in the environment".to_owned());
    }
    let text = value_as_text(value)?;
    match name {
        "GEMINI_API_KEYS" => {
            let keys: Vec<String> = ApiKey::extract_all(&text).iter().map(|key| key.expose().to_owned()).collect();
            if keys.is_empty() {
                return Err("no AI Studio keys (AIza…) found in the value".to_owned());
            }
            Ok(vec![Change::AddKeys(keys)])
        }
        "VERTEX_EXPRESS_API_KEY" => {
            let changes: Vec<Change> = text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|key| Change::AddExpressKey(key.to_owned()))
                .collect();
            if changes.is_empty() {
                return Err("no Express keys in the value".to_owned());
            }
            Ok(changes)
        }
        _ => Ok(vec![Change::SetSetting { name: name.to_owned(), value: text }]),
    }
}

/// A value as the text a setting holds: strings as they are, booleans
/// `true`/`false`, numbers as written, lists joined with commas.
fn value_as_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Bool(flag) => Ok(flag.to_string()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Array(items) => {
            let texts = items
                .iter()
                .filter(|item| !item.is_null())
                .map(|item| match item {
                    Value::Array(_) | Value::Object(_) => Err("a list of lists or objects is not a setting value"),
                    scalar => value_as_text(scalar).map_err(|_| "unreadable list item"),
                })
                .collect::<Result<Vec<String>, _>>()?;
            Ok(texts.join(","))
        }
        Value::Object(_) => Err("an object is not a setting value".to_owned()),
        Value::Null => Err("no value (null)".to_owned()),
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

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, why)| (name.to_string(), why.to_string())).collect()
    }

    #[test]
    fn a_realistic_original_settings_file_imports_as_expected() {
        let settings_json = serde_json::json!({
            "FAKE_STREAMING": true,
            "FAKE_STREAMING_INTERVAL": 1.0,
            "RANDOM_STRING": false,
            "RANDOM_STRING_LENGTH": 5,
            "concurrent_requests": 2,
            "SEARCH_PROMPT": null,
            "BLOCKED_MODELS": ["gemini-1.0-pro", "gemini-1.5-flash-8b"],
            "GEMINI_API_KEYS": format!("{KEY_A},{KEY_B}, {KEY_A}\n{KEY_C}"),
            "VERTEX_EXPRESS_API_KEY": "express-one, express-two,",
            "GOOGLE_CREDENTIALS_JSON": SECRET_CREDENTIALS,
            "STORAGE_DIR": "/hajimi/settings/",
            "RETRY_DELAY": 1,
            "version": {"local_version": "0.0.5", "remote_version": "0.0.5", "has_update": false},
            "api_call_stats": {"last_24h": {"total": {}}},
        })
        .to_string();
        let report = import_original_settings(&settings_json).expect("import");
        assert_eq!(
            report.changes,
            vec![
                set("BLOCKED_MODELS", "gemini-1.0-pro,gemini-1.5-flash-8b"),
                set("CONCURRENT_REQUESTS", "2"),
                set("FAKE_STREAMING", "true"),
                set("FAKE_STREAMING_INTERVAL", "1.0"),
                Change::AddKeys(vec![KEY_A.to_owned(), KEY_B.to_owned(), KEY_C.to_owned()]),
                set("RANDOM_STRING", "false"),
                set("RANDOM_STRING_LENGTH", "5"),
                Change::AddExpressKey("express-one".to_owned()),
                Change::AddExpressKey("express-two".to_owned()),
            ]
        );
        assert_eq!(
            report.imported,
            [
                "BLOCKED_MODELS",
                "CONCURRENT_REQUESTS",
                "FAKE_STREAMING",
                "FAKE_STREAMING_INTERVAL",
                "GEMINI_API_KEYS",
                "RANDOM_STRING",
                "RANDOM_STRING_LENGTH",
                "VERTEX_EXPRESS_API_KEY"
            ]
        );
        assert_eq!(
            report.skipped,
            owned(&[
                ("api_call_stats", "not a hajimi setting"),
                (
                    "GOOGLE_CREDENTIALS_JSON",
                    "service-account credentials are not imported; add them on the dashboard's Vertex page"
                ),
                ("RETRY_DELAY", "not a hajimi setting"),
                ("SEARCH_PROMPT", "no value (null)"),
                ("STORAGE_DIR", "where the store lives cannot be a stored setting; set it in the environment"),
                ("version", "not a hajimi setting"),
            ])
        );
        assert_eq!(report.added_key_count(), 3);
        assert_eq!(report.express_key_count(), 2);
    }

    #[test]
    fn values_that_cannot_be_used_are_skipped_without_quoting_them() {
        // (json, skipped name, reason)
        let cases = [
            (
                r#"{"GEMINI_API_KEYS": "secret-but-not-a-key"}"#,
                "GEMINI_API_KEYS",
                "no AI Studio keys (AIza…) found in the value",
            ),
            (r#"{"VERTEX_EXPRESS_API_KEY": " , "}"#, "VERTEX_EXPRESS_API_KEY", "no Express keys in the value"),
            (r#"{"password": {"secret-value": 1}}"#, "PASSWORD", "an object is not a setting value"),
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
            let report = import_original_settings(json).unwrap_or_else(|error| panic!("{json}: {error}"));
            assert_eq!(report.changes, vec![], "{json}");
            assert_eq!(report.skipped, owned(&[(name, reason)]), "{json}");
            assert!(!reason.contains("secret-value") && !reason.contains("secret-but"), "{json}");
        }
    }

    #[test]
    fn gemini_keys_may_be_a_list_and_names_any_case() {
        let json = format!(r#"{{"gemini_api_keys": ["{KEY_B}", "{KEY_A}", "{KEY_B}"], "Password": "hunter2"}}"#);
        let report = import_original_settings(&json).expect("import");
        assert_eq!(
            report.changes,
            vec![Change::AddKeys(vec![KEY_B.to_owned(), KEY_A.to_owned()]), set("PASSWORD", "hunter2")]
        );
        assert_eq!(report.imported, ["GEMINI_API_KEYS", "PASSWORD"]);
    }

    #[test]
    fn text_that_is_not_a_json_object_is_an_error() {
        for json in ["", "not json", "[1, 2]", "\"FAKE_STREAMING\"", "null"] {
            assert!(import_original_settings(json).is_err(), "{json:?}");
        }
        assert_eq!(import_original_settings("{}").expect("empty object"), ImportReport::default());
    }
}
