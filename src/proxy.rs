//! Reaching Google through a proxy (§2): `PROXY_URL`, `HTTPS_PROXY`,
//! `ALL_PROXY`, `HTTP_PROXY` (in that order of preference) and `NO_PROXY`.
//! `http://` proxies are used with `CONNECT` (the TLS session to Google
//! stays end to end), `socks5://` and `socks5h://` with the SOCKS5
//! handshake (the proxy resolves the name). Credentials in the URL are
//! sent to the proxy and never printed: [`ProxyConfig`]'s `Display` and
//! `Debug` leave them out.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;

use actix_rt::net::TcpStream;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    HttpConnect,
    Socks5,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub scheme: ProxyScheme,
    pub host: String,
    pub port: u16,
    credentials: Option<(String, String)>,
    /// Hosts reached directly: exact names, `.suffix` / `suffix` domain
    /// matches, or `*` for all.
    pub no_proxy: Vec<String>,
    /// The URL as configured (credentials included), to write the setting
    /// back unchanged when the dashboard saves other settings. Never shown.
    configured_url: String,
}

impl fmt::Display for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ProxyScheme::HttpConnect => "http",
            ProxyScheme::Socks5 => "socks5",
        };
        let auth = if self.credentials.is_some() { "***@" } else { "" };
        write!(f, "{scheme}://{auth}{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyConfig({self})")
    }
}

impl ProxyConfig {
    /// Parses a proxy URL; the error says what is wrong without repeating
    /// the URL (it may hold a password).
    pub fn parse(proxy_url: &str, no_proxy: &str) -> Result<ProxyConfig, String> {
        let parsed = url::Url::parse(proxy_url.trim()).map_err(|_| "not a URL".to_owned())?;
        let (scheme, default_port) = match parsed.scheme() {
            "http" => (ProxyScheme::HttpConnect, 80),
            "socks5" | "socks5h" => (ProxyScheme::Socks5, 1080),
            other => return Err(format!("unsupported proxy scheme {other:?} (use http, socks5 or socks5h)")),
        };
        let host = parsed.host_str().filter(|host| !host.is_empty()).ok_or("the proxy URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        // The userinfo of a URL is percent-encoded, not form-encoded: a `+`
        // in a password is a plus sign.
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| "the proxy user name or password is not UTF-8 once percent-decoded".to_owned())
        };
        let credentials = match parsed.username() {
            "" => None,
            user => Some((decode(user)?, decode(parsed.password().unwrap_or(""))?)),
        };
        let no_proxy = no_proxy
            .split(',')
            .map(|entry| entry.trim().to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .collect();
        Ok(ProxyConfig {
            scheme,
            host,
            port: parsed.port().unwrap_or(default_port),
            credentials,
            no_proxy,
            configured_url: proxy_url.trim().to_owned(),
        })
    }

    /// The URL as configured, credentials included (for the settings layer
    /// only; never log or show it).
    pub fn configured_url(&self) -> &str {
        &self.configured_url
    }

    /// The proxy password, for masking it wherever it might be quoted.
    pub fn password(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(_, password)| password.as_str()).filter(|password| !password.is_empty())
    }

    /// Whether `host` is reached directly (`NO_PROXY`).
    pub fn bypasses(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            let suffix = entry.trim_start_matches('.');
            entry == "*" || host == suffix || host.ends_with(&format!(".{suffix}"))
        })
    }
}

/// An awc TCP connector that goes through the proxy.
#[derive(Clone)]
pub struct ProxyConnector {
    config: Rc<ProxyConfig>,
    /// Hosts reached directly (`NO_PROXY`) may only resolve to public
    /// addresses (image fetches, unless private addresses are allowed).
    public_only_direct: bool,
}

impl ProxyConnector {
    pub fn new(config: ProxyConfig) -> ProxyConnector {
        ProxyConnector { config: Rc::new(config), public_only_direct: false }
    }

    /// Direct connections reach public addresses only.
    pub fn public_only_direct(mut self) -> ProxyConnector {
        self.public_only_direct = true;
        self
    }
}

/// Connects to the first public address `host` resolves to.
async fn connect_public(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last_error = proxy_error("the host has no public address");
    for address in tokio::net::lookup_host((host, port)).await? {
        if crate::iprange::is_private_address(address.ip()) {
            continue;
        }
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

impl actix_service::Service<ConnectInfo<Uri>> for ProxyConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_service::always_ready!();

    fn call(&self, info: ConnectInfo<Uri>) -> Self::Future {
        let config = self.config.clone();
        let public_only_direct = self.public_only_direct;
        Box::pin(async move {
            let host = info.hostname().to_owned();
            let port = info.port();
            let stream = if config.bypasses(&host) && public_only_direct {
                connect_public(&host, port).await.map_err(ConnectError::Io)?
            } else if config.bypasses(&host) {
                TcpStream::connect((host.as_str(), port)).await.map_err(ConnectError::Io)?
            } else {
                let mut stream =
                    TcpStream::connect((config.host.as_str(), config.port)).await.map_err(ConnectError::Io)?;
                match config.scheme {
                    ProxyScheme::HttpConnect => http_connect(&mut stream, &host, port, &config).await,
                    ProxyScheme::Socks5 => socks5_connect(&mut stream, &host, port, &config).await,
                }
                .map_err(ConnectError::Io)?;
                stream
            };
            let _ = stream.set_nodelay(true);
            Ok(Connection::new(info.request().clone(), stream))
        })
    }
}

fn proxy_error(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

/// `host:port` as a request target (IPv6 literals in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn http_connect(stream: &mut TcpStream, host: &str, port: u16, config: &ProxyConfig) -> io::Result<()> {
    let target = authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = &config.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Read the proxy's answer head, byte by byte so nothing of the tunnel
    // is consumed.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(proxy_error("the proxy's answer to CONNECT is too long"));
        }
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(proxy_error("the proxy closed the connection during CONNECT"));
        }
        head.push(byte[0]);
    }
    let status_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let status = String::from_utf8_lossy(status_line);
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        return Err(proxy_error(format!("the proxy refused CONNECT (HTTP {code})")));
    }
    Ok(())
}

async fn socks5_connect(stream: &mut TcpStream, host: &str, port: u16, config: &ProxyConfig) -> io::Result<()> {
    let greeting: &[u8] = if config.credentials.is_some() { &[5, 2, 0, 2] } else { &[5, 1, 0] };
    stream.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    match (choice, &config.credentials) {
        ([5, 0], _) => {}
        ([5, 2], Some((user, password))) => {
            if user.len() > 255 || password.len() > 255 {
                return Err(proxy_error("SOCKS5 user name or password longer than 255 bytes"));
            }
            let mut login = vec![1, user.len() as u8];
            login.extend_from_slice(user.as_bytes());
            login.push(password.len() as u8);
            login.extend_from_slice(password.as_bytes());
            stream.write_all(&login).await?;
            let mut verdict = [0u8; 2];
            stream.read_exact(&mut verdict).await?;
            if verdict[1] != 0 {
                return Err(proxy_error("the SOCKS5 proxy refused the credentials"));
            }
        }
        _ => return Err(proxy_error("the SOCKS5 proxy accepts none of our authentication methods")),
    }
    let mut request = vec![5, 1, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            request.push(1);
            request.extend_from_slice(&v4.octets());
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            request.push(4);
            request.extend_from_slice(&v6.octets());
        }
        Err(_) if host.len() <= 255 => {
            request.push(3);
            request.push(host.len() as u8);
            request.extend_from_slice(host.as_bytes());
        }
        Err(_) => return Err(proxy_error("host name too long for SOCKS5")),
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await?;
    if reply[1] != 0 {
        return Err(proxy_error(format!("the SOCKS5 proxy could not connect (code {})", reply[1])));
    }
    let address_length = match reply[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut length = [0u8; 1];
            stream.read_exact(&mut length).await?;
            usize::from(length[0])
        }
        _ => return Err(proxy_error("malformed SOCKS5 reply")),
    };
    let mut bound = vec![0u8; address_length + 2];
    stream.read_exact(&mut bound).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_and_no_proxy() {
        let config = ProxyConfig::parse("http://user:p%40ss@proxy.local:3128", "localhost, .internal").unwrap();
        assert!(config.scheme == ProxyScheme::HttpConnect);
        assert_eq!((config.host.as_str(), config.port), ("proxy.local", 3128));
        assert_eq!(config.credentials, Some(("user".to_owned(), "p@ss".to_owned())));
        assert_eq!(config.to_string(), "http://***@proxy.local:3128");
        assert!(!format!("{config:?}").contains("p@ss"));
        assert!(config.bypasses("localhost"));
        assert!(config.bypasses("api.internal"));
        assert!(!config.bypasses("generativelanguage.googleapis.com"));

        let socks = ProxyConfig::parse("socks5h://127.0.0.1", "").unwrap();
        assert!(socks.scheme == ProxyScheme::Socks5);
        assert_eq!(socks.port, 1080);
        assert!(ProxyConfig::parse("ftp://x", "").is_err());
        assert!(ProxyConfig::parse("nonsense", "").is_err());
        assert!(ProxyConfig::parse("http://x", "*").unwrap().bypasses("anything"));
    }

    #[test]
    fn proxy_credentials_are_percent_decoded() {
        let cases = [
            ("http://us%40er:p+ss%2Bw%3Ard@host:8080", Ok(Some(("us@er", "p+ss+w:rd")))),
            ("http://user:p%20ss@host", Ok(Some(("user", "p ss")))),
            ("socks5://user@host", Ok(Some(("user", "")))),
            ("http://host:8080", Ok(None)),
            ("http://us%ffer:secret%fe@host", Err(())),
            ("http://user:secret%c3@host", Err(())),
        ];
        for (proxy_url, expected) in cases {
            match (ProxyConfig::parse(proxy_url, ""), expected) {
                (Ok(config), Ok(credentials)) => assert_eq!(
                    config.credentials,
                    credentials.map(|(user, password)| (user.to_owned(), password.to_owned())),
                    "{proxy_url}"
                ),
                (Err(message), Err(())) => {
                    assert!(!message.contains("secret") && !message.contains("host"), "{proxy_url}: {message}")
                }
                (result, _) => panic!("{proxy_url}: unexpected {result:?}"),
            }
        }
    }
}
