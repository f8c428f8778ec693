//! 10,000 idle client connections held open against the real binary while
//! requests are still served; the server's RSS is reported.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[actix_rt::test]
async fn ten_thousand_idle_connections_are_held_while_requests_are_served() {
    const IDLE: usize = 10_000;
    let upstream = FakeUpstream::start().await;
    let settings = [("ENABLE_STORAGE", "false"), ("WORKERS", "1"), ("RUST_LOG", "warn")];
    let (mut command, port) = hajimi_process(&upstream, &settings);
    let mut child = command.spawn().expect("the binary starts");
    let pid = child.id();
    let outcome = actix_web::rt::task::spawn_blocking(move || {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let idle_before = rss_kib(pid);
        let opening = Instant::now();
        let held: Vec<std::net::TcpStream> =
            (0..IDLE).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connection accepted")).collect();
        eprintln!("opened {IDLE} connections in {:?}", opening.elapsed());
        std::thread::sleep(Duration::from_millis(500));
        let serving = Instant::now();
        let body = serde_json::to_vec(&chat_body(false)).unwrap();
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let head = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PASSWORD}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&body).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            statuses.push(answer.lines().next().unwrap_or_default().to_owned());
        }
        eprintln!("served 5 requests in {:?}", serving.elapsed());
        let with_idle = rss_kib(pid);
        drop(held);
        (statuses, idle_before, with_idle)
    })
    .await
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (statuses, idle_before, with_idle) = outcome;
    eprintln!("RSS: {idle_before} KiB idle, {with_idle} KiB with {IDLE} idle connections open");
    assert!(statuses.iter().all(|status| status.starts_with("HTTP/1.1 200")), "{statuses:?}");
}
