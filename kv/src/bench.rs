//! The write benchmark: concurrent clients against a real cluster, with fsync.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::KvClient;

/// The figures of one concurrency level.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    /// Concurrent clients.
    pub clients: usize,
    /// Acknowledged writes.
    pub writes: u64,
    /// Failed writes.
    pub errors: u64,
    /// Writes per second.
    pub writes_per_second: f64,
    /// Median write latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile write latency, milliseconds.
    pub p99_ms: f64,
}

/// Runs `clients` closed-loop writers for `duration`, each putting `value_bytes`-byte values
/// under its own keys, and measures acknowledged writes and their latency.
pub fn run_level(
    addresses: &[String],
    clients: usize,
    duration: Duration,
    value_bytes: usize,
) -> BenchResult {
    let stop = Arc::new(AtomicBool::new(false));
    let value = "x".repeat(value_bytes);
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (addresses, stop, value) = (addresses.to_vec(), Arc::clone(&stop), value.clone());
            std::thread::spawn(move || {
                let mut kv = KvClient::new(addresses, Duration::from_secs(5));
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match kv.put(&format!("bench-{client}-{n}"), &value) {
                        Ok(_) => latencies.push(started.elapsed()),
                        Err(_) => {
                            errors += 1;
                            kv.next_node();
                        }
                    }
                    n += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (worker_latencies, worker_errors) = worker.join().unwrap_or_default();
        latencies.extend(worker_latencies);
        errors += worker_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let at = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[at].as_secs_f64() * 1000.0
    };
    BenchResult {
        clients,
        writes: latencies.len() as u64,
        errors,
        writes_per_second: latencies.len() as f64 / elapsed,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
    }
}
