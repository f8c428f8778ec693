//! The training run of a profile-guided build (`scripts/pgo-build.sh`):
//! sends a mix of requests to a hajimi at `URL` (default
//! `http://127.0.0.1:9250`, client key `KEY`, default `bench`) that serves
//! from `static_upstream`, `ROUNDS` times (default 3), 16 at a time, and
//! prints how many answers each scenario had per HTTP status.
//!
//! The mix is what hajimi's users send, weighted as they send it: chat
//! streams and answers above all (short, long multi-turn with sampling
//! settings, tools, tool results, an image), then the Anthropic Messages
//! and OpenAI Responses doors, the native Gemini routes, the model list,
//! and a refusal (a model name Gemini cannot have). Training on one
//! request shape alone would teach the compiler that shape, not the
//! product. Exits 1 when a scenario that should succeed did not (a
//! profile of error paths would mislead the build).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

/// A tiny PNG (1×1), as a data URL.
const PIXEL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

struct Scenario {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    /// Requests per round.
    count: usize,
    /// Whether its answers should be 2xx.
    succeeds: bool,
}

impl Scenario {
    /// The body of its `n`th request: `{n}` in its texts becomes `n`, so
    /// no two requests are alike (alike, they would be answered once and
    /// shared, which real traffic almost never is).
    fn body(&self, n: usize) -> Option<String> {
        self.body.as_ref().map(|body| body.to_string().replace("{n}", &n.to_string()))
    }
}

fn long_history() -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are Seraphina, a gentle guardian of the forest. Stay in character, write in the third person, and keep replies under three paragraphs."}),
    ];
    for turn in 0..12 {
        messages.push(json!({"role": "user", "content": format!("Turn {turn}: I walk deeper into the glade and ask about the old stone circle, the river spirits and the path home. \"What happened here?\"")}));
        messages.push(json!({"role": "assistant", "content": format!("*Seraphina tilts her head, her amber eyes catching the light.* \"Long ago,\" she says softly, \"the circle kept the river calm.\" Turn {turn}.")}));
    }
    messages.push(json!({"role": "user", "content": "And now? Tell me everything you know, {n}."}));
    json!({
        "model": "gemini-2.5-flash", "stream": true, "messages": messages,
        "temperature": 0.9, "top_p": 0.95, "max_tokens": 1024, "presence_penalty": 0.3,
        "frequency_penalty": 0.2, "stop": ["\nUser:"], "stream_options": {"include_usage": true}
    })
}

fn tools() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["city"],
                "additionalProperties": false
            }
        }
    }])
}

fn scenarios() -> Vec<Scenario> {
    let chat = "/v1/chat/completions";
    let short = |stream: bool| {
        json!({"model": "gemini-2.5-flash", "stream": stream, "messages": [
            {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello {n}"}]})
    };
    vec![
        Scenario {
            name: "chat stream",
            method: "POST",
            path: chat,
            body: Some(short(true)),
            count: 3000,
            succeeds: true,
        },
        Scenario { name: "chat", method: "POST", path: chat, body: Some(short(false)), count: 2000, succeeds: true },
        Scenario {
            name: "chat long history",
            method: "POST",
            path: chat,
            body: Some(long_history()),
            count: 1500,
            succeeds: true,
        },
        Scenario {
            name: "chat tools",
            method: "POST",
            path: chat,
            body: Some(json!({"model": "gemini-2.5-flash", "tools": tools(), "tool_choice": "auto",
                "messages": [{"role": "user", "content": "Weather in Paris, {n}?"}]})),
            count: 500,
            succeeds: true,
        },
        Scenario {
            name: "chat tool result",
            method: "POST",
            path: chat,
            body: Some(json!({"model": "gemini-2.5-flash", "stream": true, "tools": tools(), "messages": [
                {"role": "user", "content": "Weather in Paris, {n}?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\":18,\"sky\":\"clear\"}"}]})),
            count: 500,
            succeeds: true,
        },
        Scenario {
            name: "chat image",
            method: "POST",
            path: chat,
            body: Some(json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, {n}?"},
                {"type": "image_url", "image_url": {"url": PIXEL}}]}]})),
            count: 200,
            succeeds: true,
        },
        Scenario {
            name: "messages stream",
            method: "POST",
            path: "/v1/messages",
            body: Some(
                json!({"model": "gemini-2.5-flash", "max_tokens": 256, "stream": true, "system": "You are terse.",
                "messages": [{"role": "user", "content": "Hello {n}"}]}),
            ),
            count: 800,
            succeeds: true,
        },
        Scenario {
            name: "messages",
            method: "POST",
            path: "/v1/messages",
            body: Some(json!({"model": "gemini-2.5-flash", "max_tokens": 256,
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello {n}"}]}]})),
            count: 400,
            succeeds: true,
        },
        Scenario {
            name: "responses stream",
            method: "POST",
            path: "/v1/responses",
            body: Some(json!({"model": "gemini-2.5-flash", "stream": true, "store": false,
                "instructions": "You are terse.", "input": "Hello {n}"})),
            count: 800,
            succeeds: true,
        },
        Scenario {
            name: "responses",
            method: "POST",
            path: "/v1/responses",
            body: Some(json!({"model": "gemini-2.5-flash", "store": false,
                "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello {n}"}]}]})),
            count: 400,
            succeeds: true,
        },
        Scenario {
            name: "native stream",
            method: "POST",
            path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            body: Some(json!({"contents": [{"role": "user", "parts": [{"text": "Hello {n}"}]}],
                "systemInstruction": {"parts": [{"text": "You are terse."}]}})),
            count: 500,
            succeeds: true,
        },
        Scenario {
            name: "native",
            method: "POST",
            path: "/v1beta/models/gemini-2.5-flash:generateContent",
            body: Some(json!({"contents": [{"role": "user", "parts": [{"text": "Hello {n}"}]}]})),
            count: 500,
            succeeds: true,
        },
        Scenario { name: "models", method: "GET", path: "/v1/models", body: None, count: 100, succeeds: true },
        Scenario {
            name: "invalid model",
            method: "POST",
            path: chat,
            body: Some(json!({"model": "no such model!", "messages": [{"role": "user", "content": "Hello"}]})),
            count: 100,
            succeeds: false,
        },
    ]
}

/// Sends one request and reads its whole answer; the status, or 0 when
/// the request failed.
async fn send(client: &awc::Client, base: &str, key: &str, scenario: &Scenario, n: usize) -> u16 {
    let url = format!("{base}{}", scenario.path);
    let request = match scenario.method {
        "GET" => client.get(&url),
        _ => client.post(&url),
    }
    .insert_header(("authorization", format!("Bearer {key}")))
    .insert_header(("x-goog-api-key", key.to_owned()));
    let sent = match scenario.body(n) {
        Some(body) => request.insert_header(("content-type", "application/json")).send_body(body).await,
        None => request.send().await,
    };
    let Ok(mut response) = sent else { return 0 };
    while let Some(chunk) = response.next().await {
        if chunk.is_err() {
            return 0;
        }
    }
    response.status().as_u16()
}

fn main() {
    let base = std::env::var("URL").unwrap_or_else(|_| "http://127.0.0.1:9250".into());
    let key = std::env::var("KEY").unwrap_or_else(|_| "bench".into());
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let failed = actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let scenarios = Rc::new(scenarios());
        let statuses: Rc<RefCell<BTreeMap<(usize, u16), usize>>> = Rc::default();
        // Every scenario's requests, interleaved, in one queue for 16
        // senders: the profile sees the doors mixed, as they come.
        let mut queue = Vec::new();
        let longest = scenarios.iter().map(|s| s.count).max().unwrap_or(0);
        for _ in 0..rounds {
            for n in 0..longest {
                queue.extend((0..scenarios.len()).filter(|&index| n < scenarios[index].count));
            }
        }
        let queue: Vec<(usize, usize)> = queue.into_iter().enumerate().map(|(serial, index)| (index, serial)).collect();
        let queue = Rc::new(RefCell::new(queue.into_iter()));
        let mut senders = Vec::new();
        for _ in 0..16 {
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            let (scenarios, statuses, queue) = (scenarios.clone(), statuses.clone(), queue.clone());
            senders.push(actix_web::rt::spawn(async move {
                loop {
                    let next = queue.borrow_mut().next();
                    let Some((index, serial)) = next else { break };
                    let status = send(&client, &base, &key, &scenarios[index], serial).await;
                    *statuses.borrow_mut().entry((index, status)).or_default() += 1;
                }
            }));
        }
        for sender in senders {
            let _ = sender.await;
        }
        let statuses = statuses.borrow();
        let mut failed = false;
        for (index, scenario) in scenarios.iter().enumerate() {
            let counts: Vec<String> = statuses
                .iter()
                .filter(|((at, _), _)| *at == index)
                .map(|((_, status), count)| format!("{status}: {count}"))
                .collect();
            let ok = statuses.iter().any(|((at, status), _)| *at == index && (200..300).contains(status));
            let all_ok = statuses.iter().all(|((at, status), _)| *at != index || (200..300).contains(status));
            let good = if scenario.succeeds { ok && all_ok } else { !ok };
            failed |= !good;
            println!("{:<18} {}{}", scenario.name, counts.join(", "), if good { "" } else { "  <- unexpected" });
        }
        failed
    });
    if failed {
        std::process::exit(1);
    }
}
