//! Per-event streaming latency (SPEC §14: each upstream event reaches the
//! client within 1 ms). Against `static_upstream` with `STAMPED_EVENTS`,
//! whose event texts are the Unix microseconds they were written at, it
//! reads a stream — through hajimi (`URL`, OpenAI chunks) or directly
//! (`DIRECT_URL`, Gemini events) — and prints the delay from write to
//! arrival of every event: p50, p99 and max over `STREAMS` streams.

use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;

fn now_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()
}

/// The time stamps in the text of the events of `line` (OpenAI chunk or
/// Gemini event).
fn stamps(line: &str) -> Vec<u128> {
    let Some(json) = line.strip_prefix("data: ") else { return Vec::new() };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else { return Vec::new() };
    let text = value["choices"][0]["delta"]["content"]
        .as_str()
        .or_else(|| value["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .unwrap_or("");
    text.split_whitespace().filter_map(|t| t.parse().ok()).collect()
}

async fn measure(client: &awc::Client, url: &str, body: &serde_json::Value, delays: &mut Vec<u128>) {
    let mut response = client.post(url).insert_header(("authorization", "Bearer bench")).send_json(body).await.unwrap();
    let mut pending = String::new();
    while let Some(chunk) = response.next().await {
        let arrived = now_us();
        pending.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = pending.find("\n") {
            let line: String = pending.drain(..=end).collect();
            delays.extend(stamps(line.trim_end()).into_iter().map(|sent| arrived.saturating_sub(sent)));
        }
    }
}

fn main() {
    let url = std::env::var("URL").ok();
    let direct = std::env::var("DIRECT_URL").ok();
    let streams: usize = std::env::var("STREAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::default();
        for (label, target, body) in [
            ("direct", direct, serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})),
            (
                "through hajimi",
                url,
                serde_json::json!({"model": "gemini-2.5-flash", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            ),
        ] {
            let Some(target) = target else { continue };
            let mut delays = Vec::new();
            for _ in 0..streams {
                measure(&client, &target, &body, &mut delays).await;
            }
            delays.sort_unstable();
            if delays.is_empty() {
                println!("{label}: no events");
                continue;
            }
            let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
            println!(
                "{label:>15}: {} events, write→arrival p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                delays.len(),
                at(0.5),
                at(0.99),
                at(1.0)
            );
        }
    });
}
