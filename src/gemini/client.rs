//! The HTTP client for Google's Gemini API (AI Studio): the only code that
//! talks to Google. One instance per actix worker (awc clients are `!Send`),
//! built with rustls and bundled web-PKI roots so the binary needs no
//! system CA files. The key travels in the `x-goog-api-key` header, never in
//! a URL, so no proxy or access log on the way can record it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use bytes::Bytes;
use serde::Deserialize;

use crate::bodyshare::Rope;
use crate::gemini::error::UpstreamFailure;
use crate::gemini::native::Action;
use crate::secret::ApiKey;

/// The header AI Studio reads the key from (named once, not parsed per call).
const GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
/// Every body hajimi sends Google: neither checked nor copied per call.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Settings the client is built from.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: String,
    /// Whole-request limit for non-streaming calls (long generations).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Largest non-streaming body accepted from the upstream.
    pub max_response_bytes: usize,
    /// Reach Google through this proxy.
    pub proxy: Option<crate::proxy::ProxyConfig>,
    /// `VERTEX_BASE_URL`.
    pub vertex_base_url: String,
    /// `VERTEX_LOCATION` (`global` or a region such as `us-central1`).
    pub vertex_location: String,
}

/// Vertex's default host; a regional location gets its regional host.
pub const VERTEX_DEFAULT_BASE_URL: &str = "https://aiplatform.googleapis.com";

/// A response whose status was 200 and whose body is still to be read.
pub type OpenStream = awc::ClientResponse;

/// The version of Google's REST API a call goes to; native clients choose
/// it in their path and get the same upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V1Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V1Beta => "v1beta",
        }
    }

    pub fn parse(text: &str) -> Option<ApiVersion> {
        match text {
            "v1" => Some(ApiVersion::V1),
            "v1beta" => Some(ApiVersion::V1Beta),
            _ => None,
        }
    }
}

/// Which upstream model a call goes to, under which API version, and
/// which of Google's services answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub version: ApiVersion,
    /// The upstream model name (no `models/`, no hajimi suffix).
    pub model: std::rc::Rc<str>,
    pub service: Service,
}

impl Target {
    /// An AI Studio model under `v1beta`.
    pub fn studio(model: std::rc::Rc<str>) -> Target {
        Target { version: ApiVersion::V1Beta, model, service: Service::Studio }
    }
}

/// Google's services behind the same `generateContent` API (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// AI Studio (`GEMINI_BASE_URL`), an API key.
    Studio,
    /// Vertex Express (`VERTEX_BASE_URL/v1/publishers/google/…`), an API key.
    VertexExpress,
    /// Vertex with a service account (`…/projects/{p}/locations/{l}/…`),
    /// an OAuth access token.
    VertexAccount,
}

/// What authenticates one upstream call.
#[derive(Clone, Copy)]
pub enum CallCredential<'a> {
    /// AI Studio or Vertex Express key (`x-goog-api-key`).
    Key(&'a ApiKey),
    /// A service account's access token (`Authorization: Bearer`) and its
    /// project.
    Account { token: &'a str, project: &'a str },
}

#[derive(Clone)]
pub struct GeminiClient {
    http: awc::Client,
    settings: Arc<ClientSettings>,
}

/// One page of `GET /v1beta/models`. Entries are kept whole: native
/// clients get them as Google sent them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelsPage {
    #[serde(default)]
    pub models: Vec<UpstreamModel>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// One model as Google describes it (`name`, `displayName`,
/// `supportedGenerationMethods`, token limits…).
pub type UpstreamModel = serde_json::Map<String, serde_json::Value>;

/// The TLS configuration shared by every upstream client: rustls with the
/// `ring` provider and Mozilla's roots compiled in.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl GeminiClient {
    pub fn new(settings: ClientSettings, tls: Arc<rustls::ClientConfig>) -> GeminiClient {
        let builder = awc::Client::builder()
            // Timeouts are applied per call: streams must not have one.
            .disable_timeout()
            .disable_redirects()
            .no_default_headers();
        let http = match settings.proxy.clone() {
            Some(proxy) => builder
                .connector(
                    awc::Connector::new()
                        .connector(crate::proxy::ProxyConnector::new(proxy))
                        .rustls_0_23(tls)
                        .timeout(settings.connect_timeout)
                        .conn_keep_alive(Duration::from_secs(60))
                        .limit(0),
                )
                .finish(),
            None => builder
                .connector(
                    awc::Connector::new()
                        .rustls_0_23(tls)
                        .timeout(settings.connect_timeout)
                        .conn_keep_alive(Duration::from_secs(60))
                        .limit(0),
                )
                .finish(),
        };
        GeminiClient { http, settings: Arc::new(settings) }
    }

    /// The URL of `action` on `target`'s model, then `query` (`?alt=sse`).
    fn model_url(&self, credential: CallCredential<'_>, target: &Target, action: Action, query: &str) -> String {
        let action = action.as_str();
        let settings = &*self.settings;
        let model = &target.model;
        match (target.service, credential) {
            (Service::VertexAccount, CallCredential::Account { project, .. }) => {
                let location = &settings.vertex_location;
                let base = match settings.vertex_base_url.as_str() {
                    VERTEX_DEFAULT_BASE_URL if location != "global" => {
                        format!("https://{location}-aiplatform.googleapis.com")
                    }
                    base => base.to_owned(),
                };
                format!(
                    "{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{action}{query}"
                )
            }
            (Service::VertexExpress | Service::VertexAccount, _) => {
                format!("{}/v1/publishers/google/models/{model}:{action}{query}", settings.vertex_base_url)
            }
            // Every Gemini API call's: put together without the formatter.
            (Service::Studio, _) => {
                let version = target.version.as_str();
                let parts = [settings.base_url.as_str(), "/", version, "/models/", model, ":", action, query];
                let mut url = String::with_capacity(parts.iter().map(|part| part.len()).sum());
                parts.into_iter().for_each(|part| url.push_str(part));
                url
            }
        }
    }

    async fn post(
        &self,
        credential: CallCredential<'_>,
        // Owned: the request's URI takes the text over instead of copying it.
        url: String,
        body: Rope,
        timeout: Option<Duration>,
    ) -> Result<OpenStream, UpstreamFailure> {
        let request = self.http.post(url).insert_header((header::CONTENT_TYPE, JSON));
        let mut request = match credential {
            CallCredential::Key(key) => request.insert_header((GOOG_API_KEY, key.expose())),
            CallCredential::Account { token, .. } => request.bearer_auth(token),
        };
        if let Some(limit) = timeout {
            request = request.timeout(limit);
        }
        let sent = match body.as_small() {
            Some(small) => request.send_body(small.clone()).await,
            // A large body goes in slices: the connection's write buffer
            // never holds a copy of it.
            None => {
                let pieces = futures_util::stream::iter(body.send_pieces().into_iter().map(Ok::<_, Infallible>));
                request.send_body(SizedStream::new(body.len() as u64, pieces)).await
            }
        };
        let mut response = sent.map_err(|error| describe_send_error(&error))?;
        if response.status().is_success() {
            if is_close_delimited(&response) {
                return Err(close_delimited_failure());
            }
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.body().limit(1024 * 1024).await.unwrap_or_default();
        Err(UpstreamFailure::classify(status, &body))
    }

    /// `models/{model}:{action}` answered with one JSON body
    /// (`generateContent`, `countTokens`, `embedContent`,
    /// `batchEmbedContents`); returns the raw answer.
    pub async fn call(
        &self,
        credential: CallCredential<'_>,
        target: &Target,
        action: Action,
        body: Rope,
    ) -> Result<Bytes, UpstreamFailure> {
        let url = self.model_url(credential, target, action, "");
        let deadline = self.settings.request_timeout;
        let call = async {
            let mut response = self.post(credential, url, body, None).await?;
            response
                .body()
                .limit(self.settings.max_response_bytes)
                .await
                .map_err(|error| UpstreamFailure::network(&format!("reading the answer failed: {error}")))
        };
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamFailure::timed_out(&format!("no answer within {}s", deadline.as_secs()))),
        }
    }

    /// `models/{model}:streamGenerateContent?alt=sse`; returns once the
    /// upstream answered 200 (its events are then read by the caller).
    pub async fn stream_generate_content(
        &self,
        credential: CallCredential<'_>,
        target: &Target,
        body: Rope,
    ) -> Result<OpenStream, UpstreamFailure> {
        let url = self.model_url(credential, target, Action::StreamGenerateContent, "?alt=sse");
        self.post(credential, url, body, Some(self.settings.request_timeout)).await
    }

    /// `GET url` (an operator-configured list, e.g. `VERTEX_MODELS_URL`):
    /// the body of a 200, at most 1 MiB.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, String> {
        let call = async {
            let mut response = self.http.get(url).send().await.map_err(|error| describe_send_error(&error).message)?;
            if response.status().as_u16() != 200 {
                return Err(format!("HTTP {}", response.status().as_u16()));
            }
            response.body().limit(1024 * 1024).await.map_err(|error| format!("reading the answer: {error}"))
        };
        match tokio::time::timeout(Duration::from_secs(30), call).await {
            Ok(result) => result,
            Err(_) => Err("no answer in time".to_owned()),
        }
    }

    /// Posts a JWT-bearer grant to `token_uri` (through the same proxy as
    /// every upstream call); returns the status and body.
    pub async fn post_token_grant(&self, token_uri: &str, form: String) -> Result<(u16, Bytes), String> {
        let call = async {
            let mut response = self
                .http
                .post(token_uri)
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .send_body(form)
                .await
                .map_err(|error| describe_send_error(&error).message)?;
            let status = response.status().as_u16();
            let body =
                response.body().limit(64 * 1024).await.map_err(|error| format!("reading the answer: {error}"))?;
            Ok((status, body))
        };
        match tokio::time::timeout(Duration::from_secs(30), call).await {
            Ok(result) => result,
            Err(_) => Err("the token endpoint did not answer in time".to_owned()),
        }
    }

    /// Whether Google accepts `key`: the smallest model-list call (free: it
    /// uses no quota).
    pub async fn check_key(&self, key: &ApiKey) -> Result<(), UpstreamFailure> {
        self.models_page(key, 1, None).await.map(|_| ())
    }

    /// One page of the model list (a free call: it uses no quota).
    pub async fn list_models(&self, key: &ApiKey, page_token: Option<&str>) -> Result<ModelsPage, UpstreamFailure> {
        self.models_page(key, 1000, page_token).await
    }

    async fn models_page(
        &self,
        key: &ApiKey,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<ModelsPage, UpstreamFailure> {
        let mut url = format!("{}/v1beta/models?pageSize={page_size}", self.settings.base_url);
        if let Some(token) = page_token {
            url.push_str("&pageToken=");
            url.push_str(&url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>());
        }
        let call = async {
            let mut response = self
                .http
                .get(&url)
                .insert_header((GOOG_API_KEY, key.expose()))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|error| describe_send_error(&error))?;
            let status = response.status().as_u16();
            let body = response
                .body()
                .limit(8 * 1024 * 1024)
                .await
                .map_err(|error| UpstreamFailure::network(&format!("reading the model list failed: {error}")))?;
            if status != 200 {
                return Err(UpstreamFailure::classify(status, &body));
            }
            serde_json::from_slice(&body)
                .map_err(|error| UpstreamFailure::network(&format!("unreadable model list: {error}")))
        };
        match tokio::time::timeout(Duration::from_secs(60), call).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamFailure::timed_out("model list timed out")),
        }
    }
}

/// An HTTP/1.1 answer with neither `Content-Length` nor chunked coding:
/// its body runs to the connection's close (RFC 9112 §6.3), which awc
/// reads as an empty body. Google never answers so; relays in front of it
/// sometimes do.
fn is_close_delimited(response: &OpenStream) -> bool {
    let headers = response.headers();
    response.version() == actix_web::http::Version::HTTP_11
        && !headers.contains_key(actix_web::http::header::CONTENT_LENGTH)
        && !headers.contains_key(actix_web::http::header::TRANSFER_ENCODING)
}

fn close_delimited_failure() -> UpstreamFailure {
    UpstreamFailure {
        kind: crate::gemini::error::FailureKind::UnreadableRelay,
        ..UpstreamFailure::network(
            "the upstream ends its answers by closing the connection (no Content-Length, not chunked), \
             which hajimi cannot read; fix or replace the relay at GEMINI_BASE_URL",
        )
    }
}

/// A send error as a classified failure. awc's messages name the host but
/// never the header, so they carry no key.
fn describe_send_error(error: &awc::error::SendRequestError) -> UpstreamFailure {
    use awc::error::SendRequestError as E;
    let description = match error {
        E::Timeout => return UpstreamFailure::timed_out("upstream did not answer in time"),
        E::Connect(awc::error::ConnectError::Timeout) => {
            return UpstreamFailure::timed_out("connecting to the upstream timed out")
        }
        E::Connect(inner) => format!("cannot connect to upstream: {inner}"),
        other => format!("upstream request failed: {other}"),
    };
    UpstreamFailure::network(&description)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(vertex_base_url: &str, location: &str) -> GeminiClient {
        let settings = ClientSettings {
            base_url: "https://generativelanguage.googleapis.com".into(),
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            max_response_bytes: 1,
            proxy: None,
            vertex_base_url: vertex_base_url.into(),
            vertex_location: location.into(),
        };
        GeminiClient::new(settings, tls_config())
    }

    #[actix_rt::test]
    async fn each_service_has_its_url() {
        let key = ApiKey::new("k");
        let target = |service| Target { version: ApiVersion::V1Beta, model: "gemini-2.5-flash".into(), service };
        let account = CallCredential::Account { token: "t", project: "p" };
        let global = client(VERTEX_DEFAULT_BASE_URL, "global");
        assert_eq!(
            global.model_url(CallCredential::Key(&key), &target(Service::Studio), Action::GenerateContent, ""),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            global.model_url(
                CallCredential::Key(&key),
                &target(Service::Studio),
                Action::StreamGenerateContent,
                "?alt=sse"
            ),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            global.model_url(CallCredential::Key(&key), &target(Service::VertexExpress), Action::GenerateContent, ""),
            "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            global.model_url(account, &target(Service::VertexAccount), Action::StreamGenerateContent, ""),
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
        );
        let regional = client(VERTEX_DEFAULT_BASE_URL, "us-central1");
        assert_eq!(
            regional.model_url(account, &target(Service::VertexAccount), Action::GenerateContent, ""),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        // A configured base (tests, relays) is kept as it is.
        let relayed = client("http://127.0.0.1:9", "us-central1");
        assert!(relayed
            .model_url(account, &target(Service::VertexAccount), Action::CountTokens, "")
            .starts_with("http://127.0.0.1:9/v1/projects/p/locations/us-central1/"));
    }
}
