//! A steady load for `scripts/quota-load.sh`: sends `RATE_PER_MINUTE`
//! chat requests per minute, evenly spaced, for `SECONDS` seconds, to
//! `URL` with `KEY`, and prints how many answers had each HTTP status.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn main() {
    let url = std::env::var("URL").unwrap_or_else(|_| "http://127.0.0.1:9200/v1/chat/completions".into());
    let key = std::env::var("KEY").unwrap_or_else(|_| "bench".into());
    let rate: f64 = std::env::var("RATE_PER_MINUTE").ok().and_then(|v| v.parse().ok()).unwrap_or(600.0);
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let body = serde_json::json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "Hello"}]});
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
        let statuses: Rc<RefCell<BTreeMap<u16, u64>>> = Rc::default();
        let gap = Duration::from_secs_f64(60.0 / rate);
        let started = Instant::now();
        let total = (rate * seconds as f64 / 60.0) as u64;
        let mut handles = Vec::new();
        for n in 0..total {
            let due = started + gap.mul_f64(n as f64);
            tokio::time::sleep_until(due.into()).await;
            let request = client.post(&url).insert_header(("authorization", format!("Bearer {key}"))).send_json(&body);
            let statuses = statuses.clone();
            handles.push(actix_web::rt::spawn(async move {
                let status = match request.await {
                    Ok(mut response) => {
                        let _ = response.body().await;
                        response.status().as_u16()
                    }
                    Err(_) => 0,
                };
                *statuses.borrow_mut().entry(status).or_default() += 1;
            }));
        }
        for handle in handles {
            let _ = handle.await;
        }
        println!("sent {total} requests in {:.1}s; statuses: {:?}", started.elapsed().as_secs_f64(), statuses.borrow());
    });
}
