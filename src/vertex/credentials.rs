//! Google service-account credentials: reading the key files users paste
//! into `GOOGLE_CREDENTIALS_JSON`, upload on the dashboard or drop into a
//! directory, into validated [`ServiceAccount`]s. Users paste them in every
//! shape (one object, an array, several objects one after another, base64
//! of any of those), so all are accepted; what is wrong is reported by
//! field name and never quotes the key or the text. Pure apart from
//! [`load_dir`], which only reads files.

use std::path::Path;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use crate::secret::Secret;

pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

const SERVICE_ACCOUNT_TYPE: &str = "service_account";

/// One service account. `Debug` shows everything but the private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub client_email: String,
    /// The key's id, sent as the assertion's `kid`; may be empty.
    pub private_key_id: String,
    pub project_id: String,
    pub token_uri: String,
    private_key: Secret,
}

impl ServiceAccount {
    /// Validates one key-file object.
    pub fn from_value(value: &Value) -> Result<ServiceAccount, CredentialError> {
        let object = value.as_object().ok_or(CredentialError::NotAnObject)?;
        let account_type = required_string(object, "type")?;
        if account_type != SERVICE_ACCOUNT_TYPE {
            return Err(CredentialError::WrongType(describe_type(account_type)));
        }
        let client_email = required_string(object, "client_email")?.trim().to_owned();
        let private_key = required_string(object, "private_key")?;
        let project_id = required_string(object, "project_id")?.trim().to_owned();
        let private_key_id = optional_string(object, "private_key_id")?.unwrap_or("").trim().to_owned();
        let token_uri = optional_string(object, "token_uri")?.unwrap_or(DEFAULT_TOKEN_URI).trim().to_owned();
        if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
            return Err(CredentialError::InvalidTokenUri);
        }
        let private_key = validated_private_key(private_key)?;
        Ok(ServiceAccount { client_email, private_key_id, project_id, token_uri, private_key })
    }

    /// De-duplication identity: client email + key id.
    pub fn identity(&self) -> String {
        format!("{}#{}", self.client_email, self.private_key_id)
    }

    /// The PEM text, for the one place that needs it: signing assertions.
    pub fn private_key_pem(&self) -> &str {
        self.private_key.expose()
    }
}

/// What is wrong with a credential text. Messages name fields and never
/// quote the key or the text they were read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("no credential")]
    NoCredential,
    #[error("not JSON (nor base64 of JSON)")]
    NotJson,
    /// Starts like JSON but is not; the position helps find the typo.
    #[error("invalid JSON at line {line}, column {column}")]
    InvalidJson { line: usize, column: usize },
    #[error("not a JSON object")]
    NotAnObject,
    /// Holds a printable description of what was found (`"authorized_user"`).
    #[error("\"type\" is {0}, expected \"service_account\"")]
    WrongType(String),
    /// Absent, null or empty.
    #[error("missing field \"{0}\"")]
    MissingField(&'static str),
    #[error("field \"{0}\" is not a string")]
    NotAString(&'static str),
    #[error("private_key is not a valid RSA PEM key")]
    InvalidPrivateKey,
    #[error("\"token_uri\" must start with https:// or http://")]
    InvalidTokenUri,
    /// Which object of several (counted from 1) is wrong.
    #[error("credential {index}: {error}")]
    InCredential { index: usize, error: Box<CredentialError> },
}

/// Parses a credential text: one JSON object, a JSON array of objects,
/// several objects one after another (separated by whitespace and/or
/// commas), or base64 (standard or URL-safe, padded or not, whitespace
/// ignored) of any of those. Accounts come back in order, de-duplicated by
/// identity (first wins).
pub fn parse_accounts(text: &str) -> Result<Vec<ServiceAccount>, CredentialError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(CredentialError::NoCredential);
    }
    let values = if looks_like_json(text) {
        json_values(text)?
    } else {
        let decoded = decode_base64(text).ok_or(CredentialError::NotJson)?;
        let decoded = decoded.trim_start_matches('\u{feff}').trim();
        if !looks_like_json(decoded) {
            return Err(CredentialError::NotJson);
        }
        json_values(decoded)?
    };
    // A top-level array stands for its elements.
    let objects: Vec<&Value> = values
        .iter()
        .flat_map(|value| match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        })
        .collect();
    if objects.is_empty() {
        return Err(CredentialError::NoCredential);
    }
    let several = objects.len() > 1;
    let accounts = objects
        .into_iter()
        .enumerate()
        .map(|(position, value)| {
            ServiceAccount::from_value(value).map_err(|error| {
                if several {
                    CredentialError::InCredential { index: position + 1, error: Box::new(error) }
                } else {
                    error
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(dedup(accounts))
}

/// Every `*.json` file of `dir`, sorted by file name (a missing directory
/// holds none): the accounts, de-duplicated, and one line per file that
/// could not be used, `name.json: <error>`.
pub fn load_dir(dir: &Path) -> (Vec<ServiceAccount>, Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(error) => return (Vec::new(), vec![format!("{}: {error}", dir.display())]),
    };
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.extension().is_some_and(|extension| extension == "json") && path.is_file() {
                    files.push((entry.file_name().to_string_lossy().into_owned(), path));
                }
            }
            Err(error) => errors.push(format!("{}: {error}", dir.display())),
        }
    }
    files.sort();
    let mut accounts = Vec::new();
    for (name, path) in files {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| parse_accounts(&text).map_err(|error| error.to_string()));
        match parsed {
            Ok(found) => accounts.extend(found),
            Err(error) => errors.push(format!("{name}: {error}")),
        }
    }
    (dedup(accounts), errors)
}

/// Keeps the first account of each identity, in order.
pub fn dedup(accounts: Vec<ServiceAccount>) -> Vec<ServiceAccount> {
    let mut seen = std::collections::HashSet::with_capacity(accounts.len());
    accounts.into_iter().filter(|account| seen.insert(account.identity())).collect()
}

fn required_string<'a>(object: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, CredentialError> {
    optional_string(object, field)?.ok_or(CredentialError::MissingField(field))
}

/// `None` when absent, null or blank.
fn optional_string<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, CredentialError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(CredentialError::NotAString(field)),
    }
}

/// The found `type`, quoted, when it is short and plain enough to print;
/// anything else (which might be a pasted secret) is not echoed.
fn describe_type(found: &str) -> String {
    let plain = found.len() <= 32 && found.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        format!("\"{found}\"")
    } else {
        "an unexpected value".to_owned()
    }
}

/// Checks the PEM and returns it. A key whose newlines were escaped twice
/// on the way (`\\n` in the file, a literal backslash-n in the string) is
/// repaired, as shells and `.env` files often do that.
fn validated_private_key(pem: &str) -> Result<Secret, CredentialError> {
    let pem = if !pem.contains('\n') && pem.contains("\\n") { pem.replace("\\n", "\n") } else { pem.to_owned() };
    if !(pem.contains("-----BEGIN") && pem.contains("PRIVATE KEY-----")) {
        return Err(CredentialError::InvalidPrivateKey);
    }
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| CredentialError::InvalidPrivateKey)?;
    Ok(Secret::new(pem))
}

fn looks_like_json(text: &str) -> bool {
    text.starts_with('{') || text.starts_with('[')
}

/// Base64 of either alphabet, padding optional, whitespace ignored;
/// `None` unless it decodes to UTF-8.
fn decode_base64(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|character| !character.is_whitespace()).collect();
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let alphabet = if compact.contains(['-', '_']) { &base64::alphabet::URL_SAFE } else { &base64::alphabet::STANDARD };
    let bytes = GeneralPurpose::new(alphabet, config).decode(compact.as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

/// The JSON values of `text`, one after another. A text whose strings
/// hold raw line breaks (a key file whose `\n` escapes were expanded on
/// the way) is read as if they were escaped.
fn json_values(text: &str) -> Result<Vec<Value>, CredentialError> {
    json_sequence(text).or_else(|error| match escape_raw_controls_in_strings(text) {
        Some(repaired) => json_sequence(&repaired).map_err(|_| error),
        None => Err(error),
    })
}

fn json_sequence(text: &str) -> Result<Vec<Value>, CredentialError> {
    let mut values = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|character: char| character.is_whitespace() || character == ',');
        if rest.is_empty() {
            return Ok(values);
        }
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                values.push(value);
                rest = &rest[stream.byte_offset()..];
            }
            Some(Err(error)) => {
                // The error's position is relative to `rest`.
                let consumed = &text[..text.len() - rest.len()];
                let line = consumed.matches('\n').count() + error.line();
                let column = match error.line() {
                    1 => consumed.rsplit('\n').next().map_or(0, str::len) + error.column(),
                    _ => error.column(),
                };
                return Err(CredentialError::InvalidJson { line, column });
            }
            None => return Ok(values),
        }
    }
}

/// `text` with raw control characters inside JSON strings escaped, or
/// `None` when there were none.
fn escape_raw_controls_in_strings(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    for character in text.chars() {
        if in_string && !escaped && character.is_control() {
            changed = true;
            match character {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                other => out.push_str(&format!("\\u{:04x}", u32::from(other))),
            }
            continue;
        }
        out.push(character);
        match character {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ => {}
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/vertex/service-account.json");
    const EMAIL: &str = "hajimi-test@hajimi-test.iam.gserviceaccount.com";
    const OTHER_EMAIL: &str = "other@hajimi-test.iam.gserviceaccount.com";
    const KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";

    fn fixture_text() -> String {
        std::fs::read_to_string(FIXTURE).unwrap()
    }

    fn fixture() -> Value {
        serde_json::from_str(&fixture_text()).unwrap()
    }

    fn fixture_key() -> String {
        fixture()["private_key"].as_str().unwrap().to_owned()
    }

    /// The fixture with fields replaced; `Value::Null` removes the field.
    fn with(changes: &[(&str, Value)]) -> Value {
        let mut value = fixture();
        for (field, new) in changes {
            match new {
                Value::Null => value.as_object_mut().unwrap().remove(*field),
                new => value.as_object_mut().unwrap().insert(field.to_string(), new.clone()),
            };
        }
        value
    }

    fn other() -> Value {
        with(&[("client_email", json!(OTHER_EMAIL))])
    }

    fn identities(text: &str) -> Result<Vec<String>, CredentialError> {
        parse_accounts(text).map(|accounts| accounts.iter().map(ServiceAccount::identity).collect())
    }

    fn base64_of(text: &str, engine: &impl Engine) -> String {
        engine.encode(text)
    }

    #[test]
    fn reads_a_key_file() {
        let accounts = parse_accounts(&fixture_text()).unwrap();
        assert_eq!(accounts.len(), 1);
        let account = &accounts[0];
        assert_eq!(account.client_email, EMAIL);
        assert_eq!(account.private_key_id, KEY_ID);
        assert_eq!(account.project_id, "hajimi-test");
        assert_eq!(account.token_uri, DEFAULT_TOKEN_URI);
        assert_eq!(account.identity(), format!("{EMAIL}#{KEY_ID}"));
        assert_eq!(account.private_key_pem(), fixture_key());
        assert!(account.private_key_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let debug = format!("{account:?}");
        assert!(debug.contains(EMAIL) && !debug.contains("PRIVATE KEY"), "{debug}");
    }

    #[test]
    fn accepts_every_shape_users_paste() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let one = fixture().to_string();
        let two = other().to_string();
        let pretty_one = fixture_text();
        let pretty_two = serde_json::to_string_pretty(&other()).unwrap();
        let both = vec![format!("{EMAIL}#{KEY_ID}"), format!("{OTHER_EMAIL}#{KEY_ID}")];
        let only_one = vec![format!("{EMAIL}#{KEY_ID}")];
        let wrapped = base64_of(&format!("[{one},{two}]"), &STANDARD)
            .as_bytes()
            .chunks(76)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let cases: Vec<(&str, String, &Vec<String>)> = vec![
            ("one object", one.clone(), &only_one),
            ("pretty object with a BOM", format!("\u{feff}{pretty_one}"), &only_one),
            ("array", format!("[{one}, {two}]"), &both),
            ("concatenated", format!("{pretty_one}\n{pretty_two}"), &both),
            ("concatenated without a gap", format!("{one}{two}"), &both),
            ("comma separated", format!("{one},\n{two},"), &both),
            ("arrays one after another", format!("[{one}] [{two}]"), &both),
            ("base64, standard", base64_of(&one, &STANDARD), &only_one),
            ("base64, url-safe unpadded", base64_of(&format!("{one}\n{two}"), &URL_SAFE_NO_PAD), &both),
            ("base64, wrapped lines", wrapped, &both),
            ("duplicate dropped", format!("{one}\n{two}\n{one}"), &both),
            ("duplicate in an array", format!("[{one},{one}]"), &only_one),
        ];
        for (name, text, expected) in cases {
            assert_eq!(&identities(&text).unwrap_or_else(|error| panic!("{name}: {error}")), expected, "{name}");
        }
    }

    #[test]
    fn dedup_keeps_the_first_of_each_identity() {
        let first = ServiceAccount::from_value(&fixture()).unwrap();
        let same_identity = ServiceAccount::from_value(&with(&[("project_id", json!("another"))])).unwrap();
        let second = ServiceAccount::from_value(&other()).unwrap();
        let kept = dedup(vec![first.clone(), second.clone(), same_identity]);
        assert_eq!(kept, vec![first, second]);
    }

    #[test]
    fn repairs_newlines_mangled_on_the_way() {
        let key = fixture_key();
        // The `\n` escapes expanded into raw line breaks inside the string.
        let raw = fixture_text().replace("\\n", "\n");
        assert!(raw.contains("-----BEGIN PRIVATE KEY-----\nMII"));
        // The escapes escaped once more: the string holds backslash-n.
        let doubled = with(&[("private_key", json!(key.replace('\n', "\\n")))]).to_string();
        for text in [raw, doubled] {
            assert_eq!(parse_accounts(&text).unwrap()[0].private_key_pem(), key);
        }
    }

    #[test]
    fn names_each_missing_field() {
        for field in ["type", "client_email", "private_key", "project_id"] {
            // Null stands for "absent" in `with`.
            for missing in [Value::Null, json!(""), json!("  ")] {
                let error = parse_accounts(&with(&[(field, missing)]).to_string()).unwrap_err();
                assert_eq!(error, CredentialError::MissingField(field));
                assert_eq!(error.to_string(), format!("missing field \"{field}\""));
            }
        }
        let error = ServiceAccount::from_value(&with(&[("project_id", json!(42))])).unwrap_err();
        assert_eq!(error.to_string(), "field \"project_id\" is not a string");
    }

    #[test]
    fn says_which_of_several_credentials_is_wrong() {
        let broken = with(&[("client_email", Value::Null)]);
        let error = parse_accounts(&format!("{}\n{broken}", fixture())).unwrap_err();
        assert_eq!(error.to_string(), "credential 2: missing field \"client_email\"");
        let error = parse_accounts(&format!("[{}, 42]", fixture())).unwrap_err();
        assert_eq!(error.to_string(), "credential 2: not a JSON object");
    }

    #[test]
    fn optional_fields_have_defaults_and_are_checked() {
        let account =
            ServiceAccount::from_value(&with(&[("token_uri", Value::Null), ("private_key_id", Value::Null)])).unwrap();
        assert_eq!(account.token_uri, DEFAULT_TOKEN_URI);
        assert_eq!(account.private_key_id, "");
        assert_eq!(account.identity(), format!("{EMAIL}#"));
        let local = ServiceAccount::from_value(&with(&[("token_uri", json!("http://127.0.0.1:9/token"))])).unwrap();
        assert_eq!(local.token_uri, "http://127.0.0.1:9/token");
        for bad in ["ftp://example.com/token", "oauth2.googleapis.com/token"] {
            let error = ServiceAccount::from_value(&with(&[("token_uri", json!(bad))])).unwrap_err();
            assert_eq!(error, CredentialError::InvalidTokenUri);
            assert_eq!(error.to_string(), "\"token_uri\" must start with https:// or http://");
        }
    }

    #[test]
    fn rejects_other_kinds_of_google_credentials() {
        let cases = [
            (json!("authorized_user"), "\"type\" is \"authorized_user\", expected \"service_account\""),
            (json!("external_account"), "\"type\" is \"external_account\", expected \"service_account\""),
            (json!("not a type: a sentence"), "\"type\" is an unexpected value, expected \"service_account\""),
        ];
        for (found, expected) in cases {
            let error = ServiceAccount::from_value(&with(&[("type", found)])).unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn rejects_keys_that_are_not_rsa_pem() {
        let key = fixture_key();
        let body_start = key.find('\n').unwrap() + 1;
        let public_key = std::fs::read_to_string(FIXTURE.replace(".json", ".pub.pem")).unwrap();
        let cases = [
            ("not PEM", "just some text".to_owned()),
            ("public key", public_key),
            ("header only", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_owned()),
            ("garbage body", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n".to_owned()),
            ("truncated", format!("{}\n-----END PRIVATE KEY-----\n", &key[..body_start + 200])),
            ("body missing its start", format!("-----BEGIN PRIVATE KEY-----\n{}", &key[body_start + 65..])),
        ];
        for (name, pem) in cases {
            let error = ServiceAccount::from_value(&with(&[("private_key", json!(pem))])).unwrap_err();
            assert_eq!(error, CredentialError::InvalidPrivateKey, "{name}");
            assert_eq!(error.to_string(), "private_key is not a valid RSA PEM key");
        }
    }

    #[test]
    fn rejects_what_is_not_a_credential() {
        use base64::engine::general_purpose::STANDARD;
        let cases = [
            ("", CredentialError::NoCredential),
            (" \n\t ", CredentialError::NoCredential),
            ("[]", CredentialError::NoCredential),
            ("hello world", CredentialError::NotJson),
            ("aGVsbG8gd29ybGQ=", CredentialError::NotJson),
            ("@@@", CredentialError::NotJson),
            ("{\"type\": \"service_account\",", CredentialError::InvalidJson { line: 1, column: 27 }),
            ("{}\n{\"type\" 1}", CredentialError::InvalidJson { line: 2, column: 9 }),
            ("\"a string\"", CredentialError::NotJson),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_accounts(text).unwrap_err(), expected, "{text:?}");
        }
        let encoded_broken = base64_of("{\"type\":", &STANDARD);
        assert!(matches!(parse_accounts(&encoded_broken), Err(CredentialError::InvalidJson { .. })));
    }

    #[test]
    fn error_messages_never_quote_the_key_or_the_text() {
        let key = fixture_key();
        let key_line = key.lines().nth(1).unwrap().to_owned();
        let mut broken_text = fixture_text();
        broken_text.insert(broken_text.find("MII").unwrap() + 100, '"');
        let texts = vec![
            with(&[("type", json!(key))]).to_string(),
            with(&[("type", json!(key_line))]).to_string(),
            with(&[("private_key", json!(key.replace("MII", "XYZ")))]).to_string(),
            with(&[("private_key", json!(key.replace("-----BEGIN", "")))]).to_string(),
            with(&[("private_key", json!(&key[..key.len() / 2]))]).to_string(),
            with(&[("private_key", json!(key_line))]).to_string(),
            with(&[("token_uri", json!(key))]).to_string(),
            with(&[("project_id", json!([key]))]).to_string(),
            format!("{}\n{}", fixture(), with(&[("client_email", Value::Null)])),
            broken_text.clone(),
            broken_text.replace("\\n", "\n"),
            key.clone(),
            key.replace('\n', ""),
        ];
        let windows: Vec<&str> = (0..key.len() - 20).map(|start| &key[start..start + 20]).collect();
        for text in texts {
            let message = parse_accounts(&text).unwrap_err().to_string();
            assert!(!message.contains("PRIVATE KEY"), "{message}");
            assert!(!windows.iter().any(|window| message.contains(window)), "{message}");
            assert!(!message.contains(&key_line[..20]), "{message}");
        }
    }

    #[test]
    fn loads_the_json_files_of_a_directory() {
        let dir = std::env::temp_dir().join(format!("hajimi-credentials-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("b-duplicate.json", fixture().to_string()),
            ("a-first.json", format!("[{}, {}]", fixture(), other())),
            ("c-broken.json", with(&[("project_id", Value::Null)]).to_string()),
            ("d-empty.json", String::new()),
            ("notes.txt", "not a credential".to_owned()),
        ];
        for (name, content) in &files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        std::fs::create_dir_all(dir.join("directory.json")).unwrap();
        let (accounts, errors) = load_dir(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let found: Vec<String> = accounts.iter().map(ServiceAccount::identity).collect();
        assert_eq!(found, vec![format!("{EMAIL}#{KEY_ID}"), format!("{OTHER_EMAIL}#{KEY_ID}")]);
        assert_eq!(errors, vec!["c-broken.json: missing field \"project_id\"", "d-empty.json: no credential"]);

        let (accounts, errors) = load_dir(&dir);
        assert!(accounts.is_empty() && errors.is_empty(), "a missing directory holds no credential");
    }
}
