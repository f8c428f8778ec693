//! Calls to Google through an HTTP (CONNECT) or SOCKS5 proxy: tiny proxies
//! on loopback that record what they were asked to reach.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// Starts a proxy on loopback; returns its port and the targets it was asked for.
async fn start_proxy(socks: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let targets: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = targets.clone();
    actix_web::rt::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let seen = seen.clone();
            actix_web::rt::spawn(async move {
                let _ = if socks { serve_socks(client, seen).await } else { serve_connect(client, seen).await };
            });
        }
    });
    (port, targets)
}

async fn serve_connect(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    seen.lock().push(target.clone());
    let mut upstream = TcpStream::connect(target).await?;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn serve_socks(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; usize::from(greeting[1])];
    client.read_exact(&mut methods).await?;
    client.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut octets = [0u8; 4];
            client.read_exact(&mut octets).await?;
            std::net::Ipv4Addr::from(octets).to_string()
        }
        3 => {
            let mut length = [0u8; 1];
            client.read_exact(&mut length).await?;
            let mut name = vec![0u8; usize::from(length[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    seen.lock().push(target.clone());
    let mut upstream = TcpStream::connect(target).await?;
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[actix_web::test]
async fn chat_reaches_google_through_an_http_or_socks5_proxy() {
    for (socks, scheme) in [(false, "http"), (true, "socks5")] {
        let (port, targets) = start_proxy(socks).await;
        let app = spawn_app_with(1, |config| {
            config.upstream_proxy =
                Some(hajimi::proxy::ProxyConfig::parse(&format!("{scheme}://127.0.0.1:{port}"), "").unwrap());
        })
        .await;
        let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
        assert_eq!(answer.status, 200, "{scheme}: {}", answer.body);
        let upstream_address = app.upstream.base_url.trim_start_matches("http://").to_owned();
        assert!(targets.lock().contains(&upstream_address), "{scheme}: {:?}", targets.lock());
    }
}

#[actix_web::test]
async fn no_proxy_hosts_are_reached_directly() {
    let (port, targets) = start_proxy(false).await;
    let app = spawn_app_with(1, |config| {
        config.upstream_proxy =
            Some(hajimi::proxy::ProxyConfig::parse(&format!("http://127.0.0.1:{port}"), "127.0.0.1").unwrap());
    })
    .await;
    assert_eq!(app.post("/v1/chat/completions", &chat_body(false)).await.status, 200);
    assert!(targets.lock().is_empty());
}

#[actix_web::test]
async fn remote_images_go_through_the_same_proxy_and_keep_their_guards() {
    let image_message = |url: String| {
        serde_json::json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": url}}
        ]}]})
    };
    let images = FakeUpstream::start().await;
    let image_host = images.base_url.trim_start_matches("http://").to_owned();
    let (port, targets) = start_proxy(false).await;
    let app = spawn_app_with(1, |config| {
        config.allow_private_image_urls = true;
        config.upstream_proxy =
            Some(hajimi::proxy::ProxyConfig::parse(&format!("http://127.0.0.1:{port}"), "").unwrap());
    })
    .await;
    let answer = app.post("/v1/chat/completions", &image_message(format!("{}/image.png", images.base_url))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(targets.lock().contains(&image_host), "the image was fetched through the proxy: {:?}", targets.lock());

    // The guard still refuses a private host before anything is sent.
    let (port, targets) = start_proxy(false).await;
    let guarded = spawn_app_with(1, |config| {
        config.upstream_proxy =
            Some(hajimi::proxy::ProxyConfig::parse(&format!("http://127.0.0.1:{port}"), "").unwrap());
    })
    .await;
    let answer = guarded.post("/v1/chat/completions", &image_message(format!("{}/image.png", images.base_url))).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(!targets.lock().contains(&image_host), "{:?}", targets.lock());
}
