//! Fetching images that clients reference by http(s) URL, so they can be
//! sent inline to Gemini. Guarded against server-side request forgery:
//! only http(s), host names resolving to public addresses (loopback,
//! private, link-local and similar ranges refused unless the operator
//! allows them — checked up front for a clear error, and enforced again by
//! the client's resolver, so a DNS answer that changes between the check
//! and the connection cannot slip through), no redirects, a size limit per
//! image and per request, a cap on images per request, a timeout, and the
//! type sniffed from the bytes rather than trusted from the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;

use crate::gemini::types::Blob;

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
    #[error("image URL {0} points to a private or local address, which is not allowed")]
    PrivateAddress(String),
    #[error("could not fetch image {0}: {1}")]
    Failed(String, String),
    #[error("image {0} is larger than {1} MB")]
    TooLarge(String, usize),
    #[error("{0} is not an image hajimi recognises (png, jpeg, gif, webp, heic)")]
    NotAnImage(String),
    #[error("too many image URLs in one request (at most {MAX_IMAGES_PER_REQUEST}); send them inline as data URLs")]
    TooMany,
}

/// Whether an address is one a public URL must never reach.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a == 100 && (b & 0xc0) == 64 // carrier-grade NAT
                || a == 198 && (b & 0xfe) == 18 // benchmarking
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(mapped));
            }
            let segments = v6.segments();
            let embedded_v4 =
                |high: u16, low: u16| IpAddr::from([(high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8]);
            // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) embed an IPv4 address at the end,
            // 6to4 (2002::/16) right after the prefix.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (segments[..6] == [0; 6] && segments[6] != 0) {
                return is_private_address(embedded_v4(segments[6], segments[7]));
            }
            if segments[0] == 0x2002 {
                return is_private_address(embedded_v4(segments[1], segments[2]));
            }
            let first = segments[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first & 0xffc0) == 0xfec0 // site local (deprecated)
        }
    }
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

/// The HTTP client for fetching images: no redirects, and unless private
/// addresses are allowed, a resolver that drops them.
pub fn image_client(tls: std::sync::Arc<rustls::ClientConfig>, limits: &FetchLimits) -> awc::Client {
    let builder = awc::Client::builder().disable_redirects().timeout(limits.timeout);
    if limits.allow_private {
        builder.connector(awc::Connector::new().rustls_0_23(tls).timeout(limits.timeout)).finish()
    } else {
        let tcp =
            actix_tls::connect::Connector::new(actix_tls::connect::Resolver::custom(PublicOnlyResolver)).service();
        builder.connector(awc::Connector::new().connector(tcp).rustls_0_23(tls).timeout(limits.timeout)).finish()
    }
}

/// The image type from its first bytes.
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
    } else {
        None
    }
}

async fn check_host(url: &url::Url, shown: &str, limits: &FetchLimits) -> Result<(), FetchError> {
    if limits.allow_private {
        return Ok(());
    }
    let host = url.host_str().ok_or_else(|| FetchError::BadUrl(shown.to_owned()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => tokio::time::timeout(limits.timeout, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| FetchError::Failed(shown.to_owned(), "DNS lookup timed out".to_owned()))?
            .map_err(|_| FetchError::Failed(shown.to_owned(), "the host name does not resolve".to_owned()))?
            .map(|socket| socket.ip())
            .collect(),
    };
    if addresses.is_empty() || addresses.iter().any(|address| is_private_address(*address)) {
        return Err(FetchError::PrivateAddress(shown.to_owned()));
    }
    Ok(())
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
            client.get(url.as_str()).send().await.map_err(|e| FetchError::Failed(shown.clone(), e.to_string()))?;
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
    Ok(Blob { mime_type: mime.to_owned(), data: base64::engine::general_purpose::STANDARD.encode(&bytes) })
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

    #[test]
    fn private_ranges_are_refused() {
        let cases = [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("fe80::1", true),
            ("fd00::1", true),
            ("::ffff:127.0.0.1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::808:808", false),
            ("2002:a9fe:a9fe::1", true),
            ("::127.0.0.1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("198.18.0.1", true),
            ("240.0.0.1", true),
            ("224.0.0.1", true),
            ("8.8.8.8", false),
            ("2001:4860:4860::8888", false),
        ];
        for (address, private) in cases {
            assert_eq!(is_private_address(address.parse().unwrap()), private, "{address}");
        }
    }

    #[actix_web::test]
    async fn the_image_resolver_never_returns_a_private_address() {
        use actix_tls::connect::Resolve;
        assert!(PublicOnlyResolver.lookup("localhost", 80).await.is_err());
    }

    #[test]
    fn image_types_are_sniffed() {
        assert_eq!(sniff_image_mime(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image_mime(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_image_mime(b"GIF89a...."), Some("image/gif"));
        assert_eq!(sniff_image_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image_mime(b"<html>"), None);
    }

    #[test]
    fn urls_in_messages_lose_their_query() {
        assert_eq!(url_for_messages("https://x.test/a.png?token=secret"), "https://x.test/a.png");
    }
}
