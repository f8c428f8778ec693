//! Fetching images that clients reference by http(s) URL, so they can be
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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;

use crate::gemini::types::Blob;
use crate::iprange::IpRange;

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
    #[error("{0} is not an image hajimi recognises (png, jpeg, gif, webp, heic)")]
    NotAnImage(String),
    #[error("too many image URLs in one request (at most {MAX_IMAGES_PER_REQUEST}); send them inline as data URLs")]
    TooMany,
}

/// IANA's IPv4 Special-Purpose Address Registry, the columns hajimi uses.
const IPV4_SPECIAL_REGISTRY_CSV: &str = include_str!("../assets/iana/ipv4-special-registry.csv");
/// IANA's IPv6 Special-Purpose Address Registry, the columns hajimi uses.
const IPV6_SPECIAL_REGISTRY_CSV: &str = include_str!("../assets/iana/ipv6-special-registry.csv");
/// The header line both registry files carry after their comment.
const SPECIAL_REGISTRY_HEADER: &str = "Address Block,Name,RFC,Globally Reachable";

/// The "Globally Reachable" column of a special-purpose registry row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GloballyReachable {
    True,
    False,
    /// IANA's "N/A": deprecated blocks and transition mechanisms whose
    /// reachability the registry does not vouch for.
    NotApplicable,
}

/// One row of a special-purpose address registry: a network and whether
/// addresses in it are globally reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialPurposeBlock {
    pub range: IpRange,
    pub globally_reachable: GloballyReachable,
}

/// Parses a vendored registry file: `#` comment lines, then the header,
/// then one `Address Block,Name,RFC,Globally Reachable` row per block. The
/// middle columns (quoted CSV, possibly with commas) are only documentation;
/// the block is the first field and the reachability the last.
pub fn parse_special_purpose_registry(csv: &str) -> Result<Vec<SpecialPurposeBlock>, String> {
    let mut header_seen = false;
    let mut blocks = Vec::new();
    for (index, line) in csv.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            if line != SPECIAL_REGISTRY_HEADER {
                return Err(format!("line {line_number}: expected the header {SPECIAL_REGISTRY_HEADER:?}"));
            }
            header_seen = true;
            continue;
        }
        let (block, rest) = line.split_once(',').ok_or(format!("line {line_number}: not a CSV row"))?;
        let (_, reachable) = rest.rsplit_once(',').ok_or(format!("line {line_number}: fewer than four columns"))?;
        if !block.contains('/') {
            return Err(format!("line {line_number}: {block:?} is not address/prefix"));
        }
        let range: IpRange = block.parse().map_err(|reason| format!("line {line_number}: {reason}"))?;
        if range.has_host_bits() {
            return Err(format!("line {line_number}: {block} has bits set after the prefix"));
        }
        let globally_reachable = match reachable {
            "True" => GloballyReachable::True,
            "False" => GloballyReachable::False,
            "N/A" => GloballyReachable::NotApplicable,
            other => return Err(format!("line {line_number}: Globally Reachable is {other:?}, not True/False/N/A")),
        };
        blocks.push(SpecialPurposeBlock { range, globally_reachable });
    }
    if !header_seen {
        return Err("no header line".to_owned());
    }
    Ok(blocks)
}

/// Every row of both vendored registries, parsed on first use. A unit test
/// parses them, so the panic cannot fire in a build whose tests pass.
fn special_purpose_blocks() -> &'static [SpecialPurposeBlock] {
    static BLOCKS: OnceLock<Vec<SpecialPurposeBlock>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        [IPV4_SPECIAL_REGISTRY_CSV, IPV6_SPECIAL_REGISTRY_CSV]
            .into_iter()
            .flat_map(|csv| {
                parse_special_purpose_registry(csv)
                    .unwrap_or_else(|error| panic!("a vendored IANA special-purpose registry is malformed: {error}"))
            })
            .collect()
    })
}

/// The IPv4 address an IPv6 one reaches: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated; all of `::/96`, so `::` and
/// `::1` become `0.0.0.0` and `0.0.0.1`, refused as "this network") and the
/// NAT64 well-known prefix `64:ff9b::/96` (globally reachable itself, so
/// the embedded address decides).
fn ipv4_reached_through(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    let embedded = Ipv4Addr::from((u32::from(segments[6]) << 16) | u32::from(segments[7]));
    match segments[..6] {
        [0, 0, 0, 0, 0, 0 | 0xffff] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(embedded),
        _ => None,
    }
}

/// Whether an address is one a public URL must never reach: inside any
/// special-purpose registry block that is not globally reachable (False or
/// N/A — also when a globally reachable block sits inside it, as
/// `192.0.0.9/32` does in `192.0.0.0/24`: an image fetcher has no business
/// with those), multicast, or deprecated IPv6 site-local (`fec0::/10`).
pub fn is_private_address(address: IpAddr) -> bool {
    let in_non_global_block = |address: IpAddr| {
        special_purpose_blocks()
            .iter()
            .any(|block| block.globally_reachable != GloballyReachable::True && block.range.contains(address))
    };
    match address {
        IpAddr::V4(v4) => v4.is_multicast() || in_non_global_block(address),
        IpAddr::V6(v6) => {
            if let Some(v4) = ipv4_reached_through(v6) {
                return is_private_address(IpAddr::V4(v4));
            }
            let site_local = (v6.segments()[0] & 0xffc0) == 0xfec0;
            v6.is_multicast() || site_local || in_non_global_block(address)
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
            // From IANA's registries rather than the standard library's helpers:
            ("192.0.0.1", true),          // IETF Protocol Assignments
            ("192.0.0.9", true),          // PCP anycast is reachable, but inside 192.0.0.0/24
            ("192.88.99.1", true),        // deprecated 6to4 relay anycast (N/A)
            ("198.51.100.1", true),       // TEST-NET-2
            ("255.255.255.255", true),    // limited broadcast
            ("64:ff9b:1::1", true),       // local-use IPv4/IPv6 translation
            ("64:ff9b:1::808:808", true), // local-use, whatever it embeds
            ("2001:db8::1", true),        // documentation
            ("3fff::1", true),            // documentation
            ("2001::1", true),            // Teredo (N/A)
            ("2002:808:808::1", true),    // 6to4 (N/A), even around a public address
            ("100::1", true),             // discard-only
            ("5f00::1", true),            // SRv6 SIDs
            ("::", true),
            ("::ffff:8.8.8.8", false),
            ("::8.8.8.8", false),
            ("1.1.1.1", false),
            ("192.0.3.1", false),
            ("2606:4700::1111", false),
            ("2001:4:112::1", true), // AS112-v6 is reachable, but inside 2001::/23
        ];
        for (address, private) in cases {
            assert_eq!(is_private_address(address.parse().unwrap()), private, "{address}");
        }
    }

    #[test]
    fn the_vendored_iana_registries_parse_completely() {
        let cases = [("ipv4", IPV4_SPECIAL_REGISTRY_CSV, 25, true), ("ipv6", IPV6_SPECIAL_REGISTRY_CSV, 25, false)];
        for (registry, csv, expected_rows, is_ipv4) in cases {
            let blocks = parse_special_purpose_registry(csv).unwrap_or_else(|error| panic!("{registry}: {error}"));
            assert_eq!(blocks.len(), expected_rows, "{registry}");
            let data_lines = csv.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')).count();
            assert_eq!(data_lines, expected_rows + 1, "{registry}: every row but the header becomes a block");
            assert!(
                blocks.iter().all(|block| block.range.network().is_ipv4() == is_ipv4),
                "{registry}: address family"
            );
        }
        assert_eq!(special_purpose_blocks().len(), 50);
    }

    #[test]
    fn malformed_registry_rows_are_rejected() {
        let header = SPECIAL_REGISTRY_HEADER;
        let cases = [
            (format!("{header}\n10.0.0.0/8,Private-Use,[RFC1918],False"), true),
            (format!("# comment\n{header}\n0.0.0.0/8,\"\"\"This network\"\"\",\"[RFC791], Section 3.2\",False"), true),
            ("10.0.0.0/8,Private-Use,[RFC1918],False".to_owned(), false),
            (format!("{header}\n10.0.0.1/8,Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0/33,Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0,Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0/8,Private-Use,[RFC1918],False [4]"), false),
            (format!("{header}\n10.0.0.0/8 [2],Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0/8"), false),
        ];
        for (csv, parses) in cases {
            assert_eq!(parse_special_purpose_registry(&csv).is_ok(), parses, "{csv}");
        }
    }

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
        assert_eq!(sniff_image_mime(b"<html>"), None);
    }

    #[test]
    fn urls_in_messages_lose_their_query() {
        assert_eq!(url_for_messages("https://x.test/a.png?token=secret"), "https://x.test/a.png");
    }
}
