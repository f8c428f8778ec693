//! Vertex AI (§11): service accounts (OAuth access tokens from the
//! JWT-bearer grant) and Vertex Express keys, as a second upstream behind
//! the same conversion, delivery and pool rules as AI Studio.
//!
//! Each kind of credential has its own [`KeyPool`] (health per credential
//! and per (credential, model), by the same classified-failure rules as AI
//! Studio keys); a service account sits in its pool under its identity
//! (client email + key id), and [`access_token`] turns a lease into a
//! token. Tokens are cached and refreshed ahead of expiry by the
//! background job ([`refresh_due_tokens`]); a refused grant marks the
//! account invalid until a later grant succeeds.

pub mod credentials;
pub mod models;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::config::Config;
use crate::gemini::client::{GeminiClient, Service};
use crate::gemini::error::{FailureKind, UpstreamFailure};
use crate::keys::KeyPool;
use crate::secret::{ApiKey, Secret};
use credentials::ServiceAccount;
use token::{TokenCache, TokenError};

/// Everything Vertex keeps while running.
#[derive(Default)]
pub struct VertexState {
    /// Vertex Express keys.
    pub express: KeyPool,
    /// Service accounts, keyed by identity.
    pub accounts: KeyPool,
    known_accounts: RwLock<HashMap<String, Arc<ServiceAccount>>>,
    pub tokens: TokenCache,
    pub models: models::VertexModels,
    /// Problems found the last time credentials were read (file or setting
    /// and what is wrong; never a key).
    pub problems: RwLock<Vec<String>>,
}

/// Where Vertex credentials come from besides the settings.
pub struct CredentialSources<'a> {
    /// Express keys added in the dashboard.
    pub express_keys: &'a [String],
    /// Service-account JSON added in the dashboard.
    pub stored_accounts: &'a [String],
}

impl VertexState {
    /// Puts both pools in line with every source: `VERTEX_EXPRESS_API_KEY`
    /// and `GOOGLE_CREDENTIALS_JSON`, `STORAGE_DIR/credentials/*.json`, and
    /// the dashboard's. Credentials already there keep their health;
    /// removed ones leave. Returns how many of each are in use.
    pub fn sync(&self, config: &Config, sources: &CredentialSources<'_>) -> (usize, usize) {
        let mut problems = Vec::new();
        let mut express: Vec<String> = config
            .vertex_express_api_key
            .expose()
            .split([',', '\n', ' '])
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(str::to_owned)
            .collect();
        express.extend(sources.express_keys.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        express.retain(|key| seen.insert(key.clone()));

        let mut accounts = Vec::new();
        if !config.google_credentials_json.expose().trim().is_empty() {
            match credentials::parse_accounts(config.google_credentials_json.expose()) {
                Ok(found) => accounts.extend(found),
                Err(error) => problems.push(format!("GOOGLE_CREDENTIALS_JSON: {error}")),
            }
        }
        let (from_files, file_problems) = credentials::load_dir(&config.storage_dir.join("credentials"));
        accounts.extend(from_files);
        problems.extend(file_problems);
        for (index, json) in sources.stored_accounts.iter().enumerate() {
            match credentials::parse_accounts(json) {
                Ok(found) => accounts.extend(found),
                Err(error) => problems.push(format!("dashboard credential {}: {error}", index + 1)),
            }
        }
        let accounts = credentials::dedup(accounts);
        for problem in &problems {
            log::warn!(target: "hajimi::vertex", "Vertex credentials: {problem}");
        }

        let identities: Vec<String> = accounts.iter().map(ServiceAccount::identity).collect();
        replace_pool_keys(&self.express, express.iter().map(String::as_str));
        replace_pool_keys(&self.accounts, identities.iter().map(String::as_str));
        let counts = (express.len(), accounts.len());
        *self.known_accounts.write() =
            accounts.into_iter().map(|account| (account.identity(), Arc::new(account))).collect();
        *self.problems.write() = problems;
        counts
    }

    pub fn account(&self, identity: &str) -> Option<Arc<ServiceAccount>> {
        self.known_accounts.read().get(identity).cloned()
    }

    pub fn account_identities(&self) -> Vec<String> {
        self.known_accounts.read().keys().cloned().collect()
    }

    /// Whether a credential of this kind is in service (configured, and
    /// not invalid, disabled or removed).
    pub fn has(&self, service: Service) -> bool {
        match service {
            Service::VertexExpress => self.express.active_count() > 0,
            Service::VertexAccount => self.accounts.active_count() > 0,
            Service::Studio => false,
        }
    }

    /// Whether some credential of this kind could serve `model` now.
    pub fn can_serve(&self, service: Service, model: &str, now_ms: u64) -> bool {
        let pool = match service {
            Service::VertexExpress => &self.express,
            Service::VertexAccount => &self.accounts,
            Service::Studio => return false,
        };
        pool.pick(model, now_ms, &[]).is_ok()
    }
}

/// Which service answers a request for `requested` on `path`, and the
/// model name without a route prefix. The original's prefixes force the
/// route: `[EXPRESS] ` → Vertex Express, `[PAY]` → service accounts.
/// Otherwise `/vertex/…` always goes to Vertex, and `/v1/…` does while
/// `ENABLE_VERTEX` is on; there, Express keys serve first when
/// `ENABLE_VERTEX_EXPRESS` is on and one can serve the model, service
/// accounts otherwise (Express alone when there is no account).
pub fn route<'a>(
    path: &str,
    requested: &'a str,
    config: &Config,
    vertex_state: &VertexState,
    now_ms: u64,
) -> (Service, &'a str) {
    if let Some(model) = requested.strip_prefix("[EXPRESS]") {
        return (Service::VertexExpress, model.trim_start());
    }
    if let Some(model) = requested.strip_prefix("[PAY]") {
        return (Service::VertexAccount, model.trim_start());
    }
    let vertex = path.starts_with("/vertex/") || (config.enable_vertex && path.starts_with("/v1/"));
    if !vertex {
        return (Service::Studio, requested);
    }
    let express_on = config.enable_vertex_express && vertex_state.has(Service::VertexExpress);
    let base = crate::gemini::model::ModelSpec::parse(requested, config.search_mode).base;
    let service = if express_on
        && (!vertex_state.has(Service::VertexAccount) || vertex_state.can_serve(Service::VertexExpress, &base, now_ms))
    {
        Service::VertexExpress
    } else {
        Service::VertexAccount
    };
    (service, requested)
}

/// Whether model lists on `path` are Vertex's.
pub fn lists_vertex_models(path: &str, config: &Config) -> bool {
    path.starts_with("/vertex/") || (config.enable_vertex && path.starts_with("/v1/"))
}

/// Makes `pool` hold exactly `wanted` (keys already there keep their state).
fn replace_pool_keys<'a>(pool: &KeyPool, wanted: impl Iterator<Item = &'a str>) {
    let wanted: std::collections::HashSet<&str> = wanted.collect();
    // Every key matches, whatever the time.
    for id in pool.find_ids(|_, _, _, _| true, 0) {
        if pool.key_of(id).is_some_and(|key| !wanted.contains(key.expose())) {
            pool.remove(id);
        }
    }
    pool.add(wanted.into_iter().map(ApiKey::new));
}

/// An access token and the project for the service account `identity`:
/// the cached one while fresh, else a new grant. A refused grant is the
/// credential's fault (it counts as an invalid key); an unreachable token
/// endpoint is a server error (the account cools briefly).
pub async fn access_token(
    vertex: &VertexState,
    client: &GeminiClient,
    identity: &str,
    now_ms: u64,
) -> Result<(Secret, String), UpstreamFailure> {
    let account =
        vertex.account(identity).ok_or_else(|| UpstreamFailure::network("the service account was removed"))?;
    if let Some(token) = vertex.tokens.fresh(identity, now_ms) {
        return Ok((token, account.project_id.clone()));
    }
    match grant(client, &account, now_ms).await {
        Ok(token) => {
            let secret = token.token.clone();
            vertex.tokens.store(identity, token);
            Ok((secret, account.project_id.clone()))
        }
        Err(error) => match vertex.tokens.usable(identity, now_ms) {
            // The refresh failed but the current token still works.
            Some(token) => {
                log::warn!(target: "hajimi::vertex", "token refresh for {} failed ({error}); the current token is used", crate::secret::LogSafe(&account.client_email));
                Ok((token, account.project_id.clone()))
            }
            None => Err(token_failure(&error)),
        },
    }
}

/// One JWT-bearer grant for `account`.
pub async fn grant(
    client: &GeminiClient,
    account: &ServiceAccount,
    now_ms: u64,
) -> Result<token::AccessToken, TokenError> {
    let assertion = token::signed_assertion(account, now_ms / 1000)?;
    let (status, body) = client
        .post_token_grant(&account.token_uri, token::grant_body(&assertion))
        .await
        .map_err(TokenError::Unavailable)?;
    token::parse_token_response(status, &body, now_ms)
}

/// A failed grant as the pool sees it.
fn token_failure(error: &TokenError) -> UpstreamFailure {
    let mut failure = UpstreamFailure::network(&format!("token grant failed: {error}"));
    if error.is_credential_fault() {
        failure.status = 401;
        failure.kind = FailureKind::KeyInvalid;
    }
    failure
}

/// Background: grants new tokens for accounts whose token is missing or
/// about to expire (so requests rarely wait for one), and re-tries accounts
/// marked invalid; a success marks the account valid again.
pub async fn refresh_due_tokens(vertex: &VertexState, client: &GeminiClient, now_ms: u64) {
    let due = vertex.tokens.due(&vertex.account_identities(), now_ms);
    for identity in due {
        let Some(account) = vertex.account(&identity) else { continue };
        let id = vertex.accounts.id_of(&ApiKey::new(identity.as_str()));
        match grant(client, &account, now_ms).await {
            Ok(token) => {
                vertex.tokens.store(&identity, token);
                if let Some(id) = id {
                    vertex.accounts.mark_valid(id, now_ms);
                }
            }
            Err(error) => {
                log::warn!(target: "hajimi::vertex", "token refresh for {} failed: {error}", crate::secret::LogSafe(&account.client_email));
                if let (Some(id), true) = (id, error.is_credential_fault()) {
                    vertex.accounts.mark_invalid(id, &error.to_string(), now_ms);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn express_keys_from_every_source_count_once() {
        let mut config = Config::for_tests();
        config.vertex_express_api_key = Secret::new("AQ.express-one-0123456789, AQ.express-two-0123456789");
        config.storage_dir = std::env::temp_dir().join("hajimi-no-such-dir");
        let vertex = VertexState::default();
        let dashboard = vec!["AQ.express-one-0123456789".to_owned(), "AQ.express-two-0123456789".to_owned()];
        let sources = CredentialSources { express_keys: &dashboard, stored_accounts: &[] };
        assert_eq!(vertex.sync(&config, &sources), (2, 0));
        assert_eq!(vertex.express.summary(0).total, 2);
        // A key removed everywhere leaves the pool.
        config.vertex_express_api_key = Secret::new("");
        let sources = CredentialSources { express_keys: &dashboard[..1], stored_accounts: &[] };
        assert_eq!(vertex.sync(&config, &sources), (1, 0));
        assert_eq!(vertex.express.summary(0).total, 1, "removed keys are not counted");
        assert!(vertex.has(Service::VertexExpress));
        let sources = CredentialSources { express_keys: &[], stored_accounts: &[] };
        vertex.sync(&config, &sources);
        assert!(!vertex.has(Service::VertexExpress), "no Express key left in service");
    }
}
