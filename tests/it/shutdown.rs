//! SIGTERM to the real binary during a slow streaming answer: the answer
//! still completes, new connections are refused, state is saved, and the
//! process exits cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use crate::helpers::*;

#[actix_rt::test]
async fn sigterm_lets_a_running_stream_finish_then_exits_cleanly() {
    let upstream = FakeUpstream::start().await;
    upstream.answer(|_, _| Reply::sse_fixture("stream-text.sse", Duration::from_millis(400)));
    let storage = std::env::temp_dir().join(format!("hajimi-shutdown-{}", std::process::id()));
    let storage_dir = storage.display().to_string();
    let settings = [
        ("STORAGE_DIR", storage_dir.as_str()),
        ("FAKE_STREAMING", "false"),
        ("SHUTDOWN_TIMEOUT", "20"),
        ("RUST_LOG", "info"),
    ];
    let (mut command, port) = hajimi_process(&upstream, &settings);
    let mut child = command.stderr(std::process::Stdio::piped()).spawn().expect("the binary starts");
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());

    let result = actix_web::rt::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(_) if started.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(50)),
                Err(error) => panic!("the server never listened: {error}"),
            }
        };
        let body = serde_json::to_vec(&chat_body(true)).unwrap();
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PASSWORD}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        // Headers and the first event are out: the answer is running.
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains("data: ") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "closed early");
            received.extend_from_slice(&buffer[..read]);
        }
        let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        std::thread::sleep(Duration::from_millis(300));
        let refused = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.read_to_end(&mut received).unwrap();
        (String::from_utf8_lossy(&received).into_owned(), refused)
    })
    .await
    .unwrap();
    let (answer, refused) = result;
    assert!(answer.contains("data: [DONE]"), "the running answer completed after SIGTERM:\n{answer}");
    assert!(!answer.contains("\"error\""), "{answer}");
    assert!(refused, "no new connections once shutting down");
    let status = child.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{}", log.join("\n"));
    assert!(log.iter().any(|line| line.contains("state saved")), "{}", log.join("\n"));
    let _ = std::fs::remove_dir_all(&storage);
}

#[actix_rt::test]
async fn an_open_log_tail_does_not_hold_the_shutdown() {
    let upstream = FakeUpstream::start().await;
    let settings = [
        ("ENABLE_STORAGE", "false"),
        ("SHUTDOWN_TIMEOUT", "30"),
        ("WEB_PASSWORD", "tail-test-password"),
        ("RUST_LOG", "info"),
    ];
    let (mut command, port) = hajimi_process(&upstream, &settings);
    let mut child = command.stderr(std::process::Stdio::null()).spawn().expect("the binary starts");
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder().disable_redirects().timeout(Duration::from_secs(10)).finish();
    let started = Instant::now();
    let mut login_page = loop {
        match client.get(format!("{base}/login")).send().await {
            Ok(page) => break page,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                actix_web::rt::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("the server never answered: {error}"),
        }
    };
    let cookie_of = |headers: &actix_web::http::header::HeaderMap, name: &str| {
        headers.get_all("set-cookie").filter_map(|value| value.to_str().ok()).find_map(|cookie| {
            cookie.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap().to_owned())
        })
    };
    let login_cookie = cookie_of(login_page.headers(), "hajimi_login").unwrap();
    let body = String::from_utf8_lossy(&login_page.body().await.unwrap()).into_owned();
    let marker = "name=\"csrf\" value=\"";
    let csrf = body[body.find(marker).unwrap() + marker.len()..].split('"').next().unwrap().to_owned();
    let logged_in = client
        .post(format!("{base}/login"))
        .insert_header(("cookie", format!("hajimi_login={login_cookie}")))
        .send_form(&[("csrf", csrf.as_str()), ("password", "tail-test-password")])
        .await
        .unwrap();
    let session = cookie_of(logged_in.headers(), "hajimi_session").expect("logged in");

    let result = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!("GET /log/stream HTTP/1.1\r\nHost: x\r\nCookie: hajimi_session={session}\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains(": tail") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "closed early");
            received.extend_from_slice(&buffer[..read]);
        }
        let stopping = Instant::now();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(killed.success());
        stream.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let _ = stream.read_to_end(&mut received);
        stopping.elapsed()
    })
    .await
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(result < Duration::from_secs(10), "the live tail held the shutdown for {result:?}");
}
