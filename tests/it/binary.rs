//! The binary's command line and startup messages: it answers to the
//! original's `uvicorn app.main:app …` (flags with values included) and
//! says when `GEMINI_API_KEYS` holds key-like strings it skipped.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use crate::helpers::*;

#[actix_rt::test]
async fn uvicorn_flags_with_values_are_accepted_and_skipped_keys_are_reported() {
    let upstream = FakeUpstream::start().await;
    let keys = format!("{},AIzaTooShort", test_key(1));
    let settings = [("GEMINI_API_KEYS", keys.as_str()), ("ENABLE_STORAGE", "false"), ("RUST_LOG", "info")];
    let (mut command, port) = hajimi_process(&upstream, &settings);
    let port_text = port.to_string();
    let mut child = command
        .args(["app.main:app", "--host", "127.0.0.1", "--port", &port_text, "--workers", "2", "--log-level", "info"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        let started = Instant::now();
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let listening = line.contains("listening on port");
            seen.push(line);
            if listening || started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        seen
    })
    .join()
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let log = lines.join("\n");
    assert!(log.contains("listening on port"), "the uvicorn command line starts the server:\n{log}");
    assert!(log.contains("with 1 AI Studio keys"), "{log}");
    assert!(log.contains("1 string(s) that start like a key but are not one"), "{log}");
    assert!(!log.contains("AIzaTooShort"), "the skipped string is not echoed");
}
