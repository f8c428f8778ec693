//! Key selection benchmark (issue: O(1) per pick at 100,000 keys): picks
//! per second at 20, 10,000 and 100,000 keys, with every key ready, and
//! with 90% of the keys cooling for the model. Run with
//! `cargo run --release --example pool_bench`.

use std::time::{Duration, Instant};

use hajimi::gemini::error::{FailureKind, UpstreamFailure};
use hajimi::keys::{KeyId, KeyPool};
use hajimi::secret::ApiKey;

const NOW_MS: u64 = 1_782_907_200_000;

fn pool(keys: usize) -> KeyPool {
    KeyPool::new((0..keys).map(|n| ApiKey::new(format!("AIzaBench{n:0>30}"))))
}

fn measure(pool: &KeyPool, picks: usize) -> f64 {
    let started = Instant::now();
    for n in 0..picks {
        let lease = pool.pick("gemini-2.5-flash", NOW_MS + (n as u64 / 1000), &[]).expect("a key is free");
        std::hint::black_box(lease);
    }
    picks as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    println!("{:>8} {:>16} {:>22} {:>14}", "keys", "picks/s (ready)", "picks/s (90% cooling)", "build time");
    for keys in [20usize, 10_000, 100_000] {
        let started = Instant::now();
        let ready = pool(keys);
        let build = started.elapsed();
        let picks = 2_000_000;
        measure(&ready, 10_000); // warm-up: creates the model's queue
        let ready_rate = measure(&ready, picks);

        let cooling = pool(keys);
        let per_minute = UpstreamFailure {
            status: 429,
            kind: FailureKind::QuotaPerMinute,
            retry_after: Some(Duration::from_secs(3600)),
            message: String::new(),
        };
        for id in 0..(keys * 9 / 10) {
            cooling.report_failure(KeyId(id as u32), "gemini-2.5-flash", &per_minute, NOW_MS);
        }
        measure(&cooling, 10_000);
        let cooling_rate = measure(&cooling, picks);
        println!("{keys:>8} {ready_rate:>16.0} {cooling_rate:>22.0} {:>11.1} ms", build.as_secs_f64() * 1000.0);
    }
}
