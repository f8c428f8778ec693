//! Fault injection: a raw TCP "upstream" that misbehaves in one precise way
//! per test (resets before or after its headers or mid-stream, stalls,
//! sends a malformed or an oversized event, ends a body by closing), and
//! the exact outcome each must give the client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hajimi::keys::KeyId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    ResetBeforeHeaders,
    ResetAfterHeaders,
    ResetMidStream,
    Stall,
    MalformedEvent,
    OversizedEvent,
    CloseDelimited,
    /// A slow stream; counts connections the client side closed.
    SlowStream,
    /// Never answers; counts generation calls (POSTs) that arrived, then
    /// those whose connection the client side closed (2 per call given up).
    SilentUntilClosed,
}

pub const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
const TEXT_EVENT: &str =
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}],\"role\":\"model\"}}]}\r\n\r\n";

pub fn chunk(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// Reads one request (head and `Content-Length` body); whether it was a POST.
pub async fn read_request(stream: &mut TcpStream) -> std::io::Result<bool> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = text
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(text.starts_with("post "))
}

fn reset(stream: TcpStream) {
    // SO_LINGER 0: closing sends RST instead of FIN.
    #[allow(deprecated)] // set_linger is deprecated only because it blocks on close, which 0 does not
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Starts the faulty upstream; returns its base URL and a counter of
/// connections its peer closed while it was still sending.
async fn faulty_upstream(fault: Fault) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let hung_up = Arc::new(AtomicUsize::new(0));
    let counter = hung_up.clone();
    actix_web::rt::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let counter = counter.clone();
            actix_web::rt::spawn(async move {
                let Ok(is_post) = read_request(&mut stream).await else { return };
                match fault {
                    Fault::ResetBeforeHeaders => reset(stream),
                    Fault::ResetAfterHeaders => {
                        let _ = stream.write_all(SSE_HEAD).await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        reset(stream);
                    }
                    Fault::ResetMidStream => {
                        let _ = stream.write_all(SSE_HEAD).await;
                        let _ = stream.write_all(&chunk(TEXT_EVENT.as_bytes())).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        reset(stream);
                    }
                    Fault::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
                    Fault::SilentUntilClosed => {
                        if !is_post {
                            return tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        let mut byte = [0u8; 1];
                        if let Ok(Ok(0) | Err(_)) =
                            tokio::time::timeout(Duration::from_secs(60), stream.read(&mut byte)).await
                        {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Fault::MalformedEvent => {
                        let _ = stream.write_all(SSE_HEAD).await;
                        let _ = stream.write_all(&chunk(b"data: {\"candidates\": [nope\r\n\r\n")).await;
                        let _ = stream.write_all(b"0\r\n\r\n").await;
                    }
                    Fault::OversizedEvent => {
                        let _ = stream.write_all(SSE_HEAD).await;
                        let _ = stream.write_all(&chunk(b"data: {\"x\":\"")).await;
                        let filler = vec![b'a'; 1024 * 1024];
                        for _ in 0..40 {
                            if stream.write_all(&chunk(&filler)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Fault::CloseDelimited => {
                        if is_post {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        let body = fixture("response-text.json");
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(body.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Fault::SlowStream => {
                        let _ = stream.write_all(SSE_HEAD).await;
                        for _ in 0..200 {
                            if stream.write_all(&chunk(TEXT_EVENT.as_bytes())).await.is_err() {
                                counter.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
    });
    (base_url, hung_up)
}

async fn app_against(fault: Fault, fake_streaming: bool) -> (TestApp, Arc<AtomicUsize>) {
    let (base_url, hung_up) = faulty_upstream(fault).await;
    let app = spawn_app_with(2, move |config| {
        config.gemini_base_url = base_url;
        config.fake_streaming = fake_streaming;
        config.max_retry_num = 2;
        config.upstream_timeout = Duration::from_secs(1);
        config.stream_idle_timeout = Duration::from_secs(1);
        config.validate_keys_on_startup = false;
    })
    .await;
    (app, hung_up)
}

fn error_message(answer: &Answer) -> String {
    answer.json()["error"]["message"].as_str().unwrap_or_default().to_owned()
}

/// The error event that ends an SSE answer.
fn stream_error(answer: &Answer) -> serde_json::Value {
    let events = answer.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{}", answer.body);
    let error = events.iter().rev().nth(1).unwrap();
    serde_json::from_str::<serde_json::Value>(error).unwrap()["error"].clone()
}

#[actix_rt::test]
async fn resets_and_refusals_are_502_naming_what_happened_and_only_timeouts_are_504() {
    let (app, _) = app_against(Fault::ResetBeforeHeaders, false).await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(error_message(&answer).contains("connection reset by the upstream"), "{}", answer.body);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let refused = spawn_app_with(1, |config| {
        config.gemini_base_url = format!("http://{closed}");
        config.max_retry_num = 1;
    })
    .await;
    let answer = refused.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(error_message(&answer).contains("refused"), "{}", answer.body);
    assert!(!answer.body.contains(&closed.to_string()), "no address in the message");

    let (app, _) = app_against(Fault::Stall, false).await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 504, "{}", answer.body);
}

#[actix_rt::test]
async fn stream_faults_end_with_an_error_event_never_silently() {
    // Reset after the headers, before any event: retried, then the error.
    let (app, _) = app_against(Fault::ResetAfterHeaders, false).await;
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.status, 200);
    assert!(stream_error(&answer)["message"].as_str().unwrap().contains("connection"), "{}", answer.body);

    // Reset mid-stream: the content already sent stays, the end says cut off.
    let (app, _) = app_against(Fault::ResetMidStream, false).await;
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.streamed_content(), "Hello", "{}", answer.body);
    assert!(stream_error(&answer)["message"].as_str().unwrap().contains("cut off"), "{}", answer.body);

    for fault in [Fault::MalformedEvent, Fault::OversizedEvent] {
        let (app, _) = app_against(fault, false).await;
        let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
        assert_eq!(answer.status, 200, "{fault:?}");
        let message = stream_error(&answer)["message"].as_str().unwrap().to_owned();
        assert!(message.contains("could not be read"), "{fault:?}: {message}");
        assert_eq!(answer.streamed_content(), "", "{fault:?}");
    }

    // A stalled stream: the idle timeout ends it.
    let (app, _) = app_against(Fault::Stall, false).await;
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert_eq!(answer.status, 504, "nothing was sent yet: the real status ({})", answer.body);
}

/// awc reads an HTTP/1.1 body that runs to the connection's close as empty
/// (a known limitation); such an answer is recognised from its headers and
/// fails once, naming the cause, instead of being retried as "empty" on
/// every key.
#[actix_rt::test]
async fn a_body_ended_by_closing_the_connection_fails_once_naming_the_cause() {
    let (app, calls) = app_against(Fault::CloseDelimited, false).await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(error_message(&answer).contains("closing the connection"), "{}", answer.body);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no other key was burned");
    let summary = app.app.pool.summary(app.app.now_ms());
    assert_eq!(summary.active, 2, "no key was blamed");
}

#[actix_rt::test]
async fn a_client_that_leaves_mid_stream_drops_the_upstream_request() {
    let (app, hung_up) = app_against(Fault::SlowStream, false).await;
    let mut response = app.send_chat(true).await.unwrap();
    let _first = futures_util::StreamExt::next(&mut response).await;
    let _second = futures_util::StreamExt::next(&mut response).await;
    drop(response);
    for _ in 0..100 {
        if hung_up.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hung_up.load(Ordering::SeqCst), 1, "the upstream connection was closed after the client left");
    // Content had gone out: the call counts against its key all the same.
    let now = app.app.now_ms();
    let successes: u64 = (0..2)
        .filter_map(|key| app.app.pool.key_view(KeyId(key), now))
        .flat_map(|view| view.models)
        .map(|model| model.usage_today.successes)
        .sum();
    assert_eq!(successes, 1, "the left stream was booked once");
}

/// A client that leaves before Google answered cancels the call: the
/// stream being opened is dropped with the handler, and its connection
/// with it.
#[actix_rt::test]
async fn a_client_that_leaves_while_the_stream_opens_drops_the_upstream_request() {
    let (base_url, hung_up) = faulty_upstream(Fault::SilentUntilClosed).await;
    let app = spawn_app_with(2, move |config| {
        config.gemini_base_url = base_url;
        config.fake_streaming = false;
        config.upstream_timeout = Duration::from_secs(60);
        config.validate_keys_on_startup = false;
    })
    .await;
    let request = app.send_chat(true);
    let client = actix_web::rt::spawn(request);
    let counted_up_to = |count: usize| {
        let hung_up = hung_up.clone();
        async move {
            for _ in 0..200 {
                if hung_up.load(Ordering::SeqCst) >= count {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            false
        }
    };
    assert!(counted_up_to(1).await, "the call reached the upstream");
    // No headers come: the client gives up and closes its connection.
    client.abort();
    assert!(counted_up_to(2).await, "the upstream connection was closed after the client left");
}

#[actix_rt::test]
async fn large_bodies_are_served_and_too_large_ones_refused_before_reading() {
    let app = spawn_app_with(2, |config| config.max_request_body_bytes = 24 * 1024 * 1024).await;
    for megabytes in [1usize, 20] {
        let mut body = chat_body(false);
        body["messages"][1]["content"] = serde_json::json!("x".repeat(megabytes * 1024 * 1024));
        let answer = app.post("/v1/chat/completions", &body).await;
        assert_eq!(answer.status, 200, "{megabytes} MB");
        let sent = app.upstream.generation_calls().pop().unwrap();
        assert_eq!(sent.body["contents"][0]["parts"][0]["text"].as_str().map(str::len), Some(megabytes * 1024 * 1024));
    }
    // Announced too large: 413 at once, nothing read.
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PASSWORD}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        70 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer[..read])
    );
}

#[actix_rt::test]
async fn timeouts_do_not_add_up_across_retries() {
    let (base_url, _) = faulty_upstream(Fault::Stall).await;
    let app = spawn_app_with(3, move |config| {
        config.gemini_base_url = base_url;
        config.upstream_timeout = Duration::from_secs(30);
        config.request_deadline = Duration::from_secs(1);
        config.max_retry_num = 15;
    })
    .await;
    let answer = app.post("/v1/chat/completions", &chat_body(false)).await;
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert!(error_message(&answer).contains("REQUEST_DEADLINE"), "{}", answer.body);
    // A fake stream has sent its headers: the same error as its last event.
    let answer = app.post("/v1/chat/completions", &chat_body(true)).await;
    assert!(stream_error(&answer)["message"].as_str().unwrap().contains("REQUEST_DEADLINE"), "{}", answer.body);
}

#[actix_rt::test]
async fn a_failing_answer_nobody_waits_for_any_more_is_not_retried_on_and_on() {
    for public_mode in [false, true] {
        failing_answer_nobody_waits_for(public_mode).await;
    }
}

async fn failing_answer_nobody_waits_for(public_mode: bool) {
    let app = spawn_app_with(3, |config| {
        config.max_retry_num = 15;
        config.fake_streaming = false;
        config.public_mode = public_mode;
    })
    .await;
    app.upstream.answer(|_, _| {
        Reply::After(Duration::from_millis(200), Box::new(Reply::error(503, "error-503-overloaded.json")))
    });
    let impatient = awc::Client::builder().timeout(Duration::from_millis(300)).finish();
    let left = impatient
        .post(format!("{}/v1/chat/completions", app.address))
        .insert_header(("authorization", format!("Bearer {PASSWORD}")))
        .send_json(&chat_body(false))
        .await;
    assert!(left.is_err(), "the client gave up");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calls = app.upstream.generation_calls().len();
    assert!(calls <= 3, "{calls} upstream attempts after the client left (15 allowed), public_mode={public_mode}");
}
