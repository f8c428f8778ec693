//! Fetching images (and PDF documents) that clients reference by http(s) URL, so they can be
//! sent inline to Gemini. Guarded against server-side request forgery:
//! only http(s), host names resolving to public addresses (checked up
//! front, and enforced again by the client's resolver, so a DNS answer that
//! changes between the check and the connection cannot slip through), no
//! redirects, a size limit per image and per request, a cap on images per
//! request, a timeout, and the type sniffed from the bytes rather than
//! trusted from the server. Which addresses are not public comes from
//! IANA's IPv4 and IPv6 Special-Purpose Address Registries, vendored as
//! `assets/iana/*-special-registry.csv` (every block whose "Globally
//! Reachable" is False or N/A is refused), plus multicast and the
//! deprecated IPv6 site-local block, which live in other registries;
//! operators may allow them all with `ALLOW_PRIVATE_IMAGE_URLS`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;

use crate::gemini::types::Blob;
use crate::iprange::is_private_address;

#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
    pub allow_private: bool,
}

/// Remote images one request may reference.
pub const MAX_IMAGES_PER_REQUEST: usize = 16;
/// Images fetched at the same time for one request.
const FETCH_CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FetchError {
    #[error("image URL {0} is not a valid http(s) URL")]
    BadUrl(String),
    /// The host does not resolve, resolves to nothing, times out in DNS,
    /// resolves to a refused address, or cannot be connected to: one
    /// message for all, so errors do not tell a client which hosts exist
    /// on hajimi's network.
    #[error(
        "image URL {0} cannot be fetched: its host is not a reachable public address \
         (private, local and reserved ones are refused)"
    )]
    Unreachable(String),
    #[error("could not fetch image {0}: {1}")]
    Failed(String, String),
    #[error("image {0} is larger than {1} MB")]
    TooLarge(String, usize),
    #[error("{0} is not an image or document hajimi recognises (png, jpeg, gif, webp, heic, pdf)")]
    NotAnImage(String),
    #[error("too many image URLs in one request (at most {MAX_IMAGES_PER_REQUEST}); send them inline as data URLs")]
    TooMany,
}

/// A resolver for the image client that only ever returns public
/// addresses: the connection itself cannot reach a private one.
pub struct PublicOnlyResolver;

impl actix_tls::connect::Resolve for PublicOnlyResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<Vec<std::net::SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let addresses: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host, port)).await?.filter(|a| !is_private_address(a.ip())).collect();
            if addresses.is_empty() {
                return Err("the host has no public address".into());
            }
            Ok(addresses)
        })
    }
}

/// The HTTP client for fetching images: no redirects; through the same
/// upstream proxy as Google calls when one is configured; and unless
/// private addresses are allowed, a resolver that drops them (through a
/// proxy, which resolves names itself, the host is still checked before
/// connecting, and `NO_PROXY` hosts still get the public-only resolver).
pub fn image_client(
    tls: std::sync::Arc<rustls::ClientConfig>,
    limits: &FetchLimits,
    proxy: Option<&crate::proxy::ProxyConfig>,
) -> awc::Client {
    let builder = awc::Client::builder().disable_redirects().timeout(limits.timeout);
    if let Some(proxy) = proxy {
        let mut connector = crate::proxy::ProxyConnector::new(proxy.clone());
        if !limits.allow_private {
            connector = connector.public_only_direct();
        }
        return builder
            .connector(awc::Connector::new().connector(connector).rustls_0_23(tls).timeout(limits.timeout))
            .finish();
    }
    if limits.allow_private {
        builder.connector(awc::Connector::new().rustls_0_23(tls).timeout(limits.timeout)).finish()
    } else {
        let tcp =
            actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(PublicOnlyResolver)).service();
        builder.connector(awc::Connector::new().connector(tcp).rustls_0_23(tls).timeout(limits.timeout)).finish()
    }
}

/// The image type (or PDF) from its first bytes.
pub fn sniff_image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && matches!(&bytes[8..12], b"heic" | b"heix" | b"mif1") {
        Some("image/heic")
    } else if bytes.starts_with(b"%PDF-") {
        // Anthropic's URL documents; Gemini reads PDFs inline like images.
        Some("application/pdf")
    } else {
        None
    }
}

/// Refuses a URL whose host is not public before connecting, unless
/// private addresses are allowed. Every way a host can fail here is the
/// same [`FetchError::Unreachable`].
async fn check_host(url: &url::Url, shown: &str, limits: &FetchLimits) -> Result<(), FetchError> {
    if limits.allow_private {
        return Ok(());
    }
    let unreachable = || FetchError::Unreachable(shown.to_owned());
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        None => return Err(FetchError::BadUrl(shown.to_owned())),
        Some(url::Host::Ipv4(address)) => vec![IpAddr::V4(address)],
        Some(url::Host::Ipv6(address)) => vec![IpAddr::V6(address)],
        Some(url::Host::Domain(name)) => {
            match tokio::time::timeout(limits.timeout, tokio::net::lookup_host((name, port))).await {
                Ok(Ok(found)) => found.map(|socket| socket.ip()).collect(),
                Ok(Err(_)) | Err(_) => return Err(unreachable()),
            }
        }
    };
    if addresses.is_empty() || addresses.iter().any(|address| is_private_address(*address)) {
        return Err(unreachable());
    }
    Ok(())
}

/// The error for a failed send. Failures to resolve or connect (among
/// them [`PublicOnlyResolver`] refusing a DNS answer that changed after
/// [`check_host`]) read exactly like a host refused up front.
fn send_error_to_fetch_error(error: awc::error::SendRequestError, shown: &str) -> FetchError {
    use awc::error::{ConnectError, SendRequestError};
    match error {
        SendRequestError::Connect(
            ConnectError::Resolver(_)
            | ConnectError::NoRecords
            | ConnectError::Unresolved
            | ConnectError::Timeout
            | ConnectError::Io(_),
        ) => FetchError::Unreachable(shown.to_owned()),
        other => FetchError::Failed(shown.to_owned(), other.to_string()),
    }
}

/// Fetches one image.
pub async fn fetch_image(client: &awc::Client, raw_url: &str, limits: &FetchLimits) -> Result<Blob, FetchError> {
    let shown = url_for_messages(raw_url);
    let url = url::Url::parse(raw_url).map_err(|_| FetchError::BadUrl(shown.clone()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl(shown));
    }
    check_host(&url, &shown, limits).await?;
    let fetch = async {
        let mut response =
            client.get(url.as_str()).send().await.map_err(|error| send_error_to_fetch_error(error, &shown))?;
        if !response.status().is_success() {
            return Err(FetchError::Failed(shown.clone(), format!("HTTP {}", response.status().as_u16())));
        }
        response.body().limit(limits.max_bytes).await.map_err(|e| match e {
            awc::error::PayloadError::Overflow => FetchError::TooLarge(shown.clone(), limits.max_bytes / (1024 * 1024)),
            _ => FetchError::Failed(shown.clone(), "reading the image failed".to_owned()),
        })
    };
    let bytes = tokio::time::timeout(limits.timeout, fetch)
        .await
        .map_err(|_| FetchError::Failed(shown.clone(), "timed out".to_owned()))??;
    let mime = sniff_image_mime(&bytes).ok_or(FetchError::NotAnImage(shown))?;
    Ok(Blob { mime_type: mime.to_owned(), data: base64::engine::general_purpose::STANDARD.encode(&bytes).into() })
}

/// Fetches every URL (a few at a time), stopping at the first failure.
/// At most [`MAX_IMAGES_PER_REQUEST`] images, and at most `max_total_bytes`
/// of them together.
pub async fn fetch_all(
    client: &awc::Client,
    urls: &[String],
    limits: &FetchLimits,
    max_total_bytes: usize,
) -> Result<HashMap<String, Blob>, FetchError> {
    if urls.len() > MAX_IMAGES_PER_REQUEST {
        return Err(FetchError::TooMany);
    }
    let mut fetches = futures_util::stream::iter(urls.iter().cloned())
        .map(|url| async move {
            let result = fetch_image(client, &url, limits).await;
            (url, result)
        })
        .buffer_unordered(FETCH_CONCURRENCY);
    let mut fetched = HashMap::new();
    let mut total_bytes = 0usize;
    while let Some((url, result)) = fetches.next().await {
        let blob = result?;
        total_bytes += blob.data.len();
        if total_bytes > max_total_bytes {
            return Err(FetchError::TooLarge(url_for_messages(&url), max_total_bytes / (1024 * 1024)));
        }
        fetched.insert(url, blob);
    }
    Ok(fetched)
}

/// A URL as error messages may show it: query string and fragment dropped
/// (they may carry tokens), long ones cut.
pub fn url_for_messages(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    if without_query.chars().count() > 120 {
        format!("{}…", without_query.chars().take(120).collect::<String>())
    } else {
        without_query.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_image_resolver_never_returns_a_private_address() {
        use actix_tls::connect::Resolve;
        assert!(PublicOnlyResolver.lookup("localhost", 80).await.is_err());
    }

    #[actix_web::test]
    async fn refused_and_unresolvable_hosts_read_the_same() {
        let limits = FetchLimits { max_bytes: 1024, timeout: Duration::from_secs(10), allow_private: false };
        let client = image_client(crate::gemini::client::tls_config(), &limits, None);
        // Resolves to loopback; never resolves (RFC 6761); a private literal.
        let cases = ["http://localhost/x.png", "http://does-not-exist.invalid/x.png", "http://10.0.0.1/x.png"];
        for url in cases {
            let error = fetch_image(&client, url, &limits).await.unwrap_err();
            assert_eq!(error, FetchError::Unreachable(url.to_owned()), "{url}");
            assert_eq!(
                error.to_string().replace(url, "<url>"),
                "image URL <url> cannot be fetched: its host is not a reachable public address \
                 (private, local and reserved ones are refused)",
            );
        }
    }

    #[test]
    fn connection_failures_read_like_refused_hosts() {
        use awc::error::{ConnectError, SendRequestError};
        let shown = "http://x.test/a.png";
        let unreachable = FetchError::Unreachable(shown.to_owned());
        let cases = [
            (SendRequestError::Connect(ConnectError::Resolver("the host has no public address".into())), &unreachable),
            (SendRequestError::Connect(ConnectError::NoRecords), &unreachable),
            (SendRequestError::Connect(ConnectError::Unresolved), &unreachable),
            (SendRequestError::Connect(ConnectError::Timeout), &unreachable),
            (SendRequestError::Connect(ConnectError::Io(std::io::ErrorKind::ConnectionRefused.into())), &unreachable),
            (
                SendRequestError::Timeout,
                &FetchError::Failed(shown.to_owned(), "Timeout while waiting for response".to_owned()),
            ),
        ];
        for (error, expected) in cases {
            let description = error.to_string();
            assert_eq!(&send_error_to_fetch_error(error, shown), expected, "{description}");
        }
    }

    #[test]
    fn image_types_are_sniffed() {
        assert_eq!(sniff_image_mime(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image_mime(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_image_mime(b"GIF89a...."), Some("image/gif"));
        assert_eq!(sniff_image_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image_mime(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff_image_mime(b"<html>"), None);
    }

    #[test]
    fn urls_in_messages_lose_their_query() {
        assert_eq!(url_for_messages("https://x.test/a.png?token=secret"), "https://x.test/a.png");
    }
}
