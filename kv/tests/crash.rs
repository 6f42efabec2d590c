//! The crash test: three real server processes on loopback, concurrent clients, the leader
//! killed with SIGKILL mid-write and restarted; every acknowledged write must be on every node
//! and the recorded history must be linearizable (checked by the simulator's checker).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use stepraft_kv::client::{ClientError, KvClient};
use stepraft_kv::launch::{self, wait_until, LocalCluster};
use stepraft_sim::history::{KvOp, KvOutput, OpOutcome, Operation};
use stepraft_sim::linearizability::{check_history, CheckLimits, Verdict};

/// Keys written once each, every one of which must survive.
const KEYS: u64 = 1000;
/// Keys that every client overwrites, reads and compare-and-sets: the linearizability check's
/// material. Their ids in the history start at `HOT_BASE`.
const HOT_KEYS: u64 = 4;
const HOT_BASE: u64 = 1_000_000;
const CLIENTS: u64 = 8;

/// The history, shared by the client threads, with times in microseconds since the start.
struct Recorder {
    start: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Runs `call` as one operation of `client` and records its invocation, completion and
    /// outcome; returns the result.
    fn record<V>(
        &self,
        client: u64,
        op: KvOp,
        call: impl FnOnce() -> Result<V, ClientError>,
        output: impl FnOnce(&V) -> KvOutput,
    ) -> Result<V, ClientError> {
        let invoked_us = self.now();
        let result = call();
        let completed_us = self.now();
        let outcome = match &result {
            Ok(value) => OpOutcome::Ok(output(value)),
            Err(error) if error.is_definite_failure() => OpOutcome::Failed,
            Err(_) => OpOutcome::Unknown,
        };
        let operation = Operation { client, op, invoked_us, completed_us, outcome };
        self.operations.lock().expect("no panic while recording").push(operation);
        result
    }
}

fn key_name(key: u64) -> String {
    if key >= HOT_BASE {
        format!("hot{}", key - HOT_BASE)
    } else {
        format!("k{key}")
    }
}

/// One client: writes its share of the keys (retrying each until acknowledged), and after
/// every few keys puts, reads or compare-and-sets a hot key.
fn client_loop(
    client: u64,
    addresses: Vec<String>,
    next_key: &AtomicU64,
    acked: &AtomicU64,
    recorder: &Recorder,
) {
    // Writes follow redirects to the leader; reads stay on a node of their own, so that
    // followers serve linearizable reads too (by forwarding ReadIndex to the leader).
    let mut kv = KvClient::new(addresses.clone(), Duration::from_secs(3));
    let mut reader = KvClient::new(addresses, Duration::from_secs(3));
    for _ in 0..client {
        kv.next_node();
        reader.next_node();
    }
    let mut operation_count = 0u64;
    loop {
        let key = next_key.fetch_add(1, Ordering::Relaxed);
        if key >= KEYS {
            return;
        }
        let value = format!("v{key}");
        loop {
            let op = KvOp::Put { key, value: value.as_str().into() };
            let result =
                recorder.record(client, op, || kv.put(&key_name(key), &value), |_| KvOutput::Done);
            match result {
                Ok(_) => break,
                Err(_) => retry_pause(&mut kv),
            }
        }
        acked.fetch_add(1, Ordering::Relaxed);
        if key % 2 == 0 {
            operation_count += 1;
            hot_operation(client, operation_count, &mut kv, &mut reader, recorder);
        }
    }
}

fn retry_pause(kv: &mut KvClient) {
    kv.next_node();
    std::thread::sleep(Duration::from_millis(20));
}

fn hot_operation(
    client: u64,
    count: u64,
    kv: &mut KvClient,
    reader: &mut KvClient,
    recorder: &Recorder,
) {
    let key = HOT_BASE + (client + count) % HOT_KEYS;
    let name = key_name(key);
    let value = format!("c{client}-{count}");
    // Reads go to the client's own node; writes follow redirects to the leader. Deletes make
    // room for compare-and-set-if-absent to swap.
    let (result, client_used) = match count % 4 {
        0 => {
            let read = recorder.record(
                client,
                KvOp::Get { key },
                || reader.get(&name, false),
                |v| KvOutput::Value(v.as_deref().map(Into::into)),
            );
            (read.map(drop), reader)
        }
        1 => {
            let op = KvOp::Put { key, value: value.as_str().into() };
            let put = recorder.record(client, op, || kv.put(&name, &value), |_| KvOutput::Done);
            (put.map(drop), kv)
        }
        2 => {
            let op = KvOp::Cas { key, expected: None, new: value.as_str().into() };
            let cas = recorder.record(
                client,
                op,
                || kv.cas(&name, None, &value),
                |swapped| KvOutput::Swapped(*swapped),
            );
            (cas.map(drop), kv)
        }
        _ => {
            let delete = recorder.record(
                client,
                KvOp::Delete { key },
                || kv.delete(&name),
                |_| KvOutput::Done,
            );
            (delete.map(drop), kv)
        }
    };
    if result.is_err() {
        retry_pause(client_used);
    }
}

fn status(address: &str) -> Option<Value> {
    KvClient::new(vec![address.to_owned()], Duration::from_secs(2)).status().ok()
}

#[test]
fn acknowledged_writes_survive_killing_the_leader_and_the_history_is_linearizable() {
    let test_start = Instant::now();
    let directory = launch::fresh_directory("stepraft-kv-crash").expect("temp dir");
    let addresses = launch::free_loopback_addresses(3).expect("free ports");
    let arguments = ["--tick-ms", "20", "--request-timeout-ms", "2000"].map(str::to_owned).to_vec();
    let executable = env!("CARGO_BIN_EXE_stepraft-kv").into();
    let mut cluster =
        LocalCluster::new(executable, directory.clone(), addresses.clone(), arguments, true);
    cluster.start_all().expect("servers start");
    let leader =
        cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader is elected") as usize;

    let recorder = Arc::new(Recorder { start: Instant::now(), operations: Mutex::new(Vec::new()) });
    let next_key = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (addresses, next_key, acked, recorder) = (
                addresses.clone(),
                Arc::clone(&next_key),
                Arc::clone(&acked),
                Arc::clone(&recorder),
            );
            std::thread::spawn(move || client_loop(client, addresses, &next_key, &acked, &recorder))
        })
        .collect();

    // Kill the leader mid-write, let the others elect a successor and keep taking writes, then
    // bring it back on its data directory.
    wait_until(Duration::from_secs(30), "300 writes are acknowledged", || {
        acked.load(Ordering::Relaxed) >= 300
    });
    cluster.kill(leader);
    let acked_at_kill = acked.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(30), "the survivors take 300 more writes", || {
        acked.load(Ordering::Relaxed) >= acked_at_kill + 300
    });
    cluster.start(leader).expect("the old leader restarts");
    for client in clients {
        client.join().expect("client thread");
    }
    assert_eq!(acked.load(Ordering::Relaxed), KEYS);

    // Every node catches up with the leader's commit index, then holds every acknowledged write.
    let new_leader = cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader") as usize;
    let commit = status(&addresses[new_leader - 1]).expect("leader status")["commit"]
        .as_u64()
        .expect("commit");
    for address in &addresses {
        wait_until(Duration::from_secs(20), &format!("{address} applies up to {commit}"), || {
            status(address)
                .and_then(|s| s["applied"].as_u64())
                .is_some_and(|applied| applied >= commit)
        });
    }
    let mut hot_values = Vec::new();
    for address in &addresses {
        let mut kv = KvClient::new(vec![address.clone()], Duration::from_secs(5));
        for key in 0..KEYS {
            let value = kv.get(&key_name(key), true).expect("stale read");
            assert_eq!(value, Some(format!("v{key}")), "key {key} on {address}");
        }
        let hot: Vec<_> =
            (0..HOT_KEYS).map(|h| kv.get(&key_name(HOT_BASE + h), true).expect("read")).collect();
        hot_values.push(hot);
    }
    assert!(hot_values.windows(2).all(|pair| pair[0] == pair[1]), "nodes disagree: {hot_values:?}");

    let history = recorder.operations.lock().expect("history").clone();
    let hot_operations = history.iter().filter(|op| op.op.key() >= HOT_BASE).count();
    assert!(hot_operations > 100, "only {hot_operations} operations on hot keys");
    let verdict = check_history(&history, &CheckLimits::default());
    assert_eq!(verdict, Verdict::Linearizable, "{} operations", history.len());
    let count = |f: fn(&OpOutcome) -> bool| history.iter().filter(|op| f(&op.outcome)).count();
    eprintln!(
        "crash test: {} operations ({hot_operations} on hot keys; {} failed, {} unknown), leader {leader} killed and restarted, new leader {new_leader}, {:.1} s",
        history.len(),
        count(|o| matches!(o, OpOutcome::Failed)),
        count(|o| matches!(o, OpOutcome::Unknown)),
        test_start.elapsed().as_secs_f64()
    );
    drop(cluster);
    launch::remove_directory(&directory);
}

/// The check above can fail: the same recording, with a read that misses an acknowledged
/// write, is refused by the checker.
#[test]
fn the_checker_refuses_a_read_that_misses_an_acknowledged_write() {
    let recorder = Recorder { start: Instant::now(), operations: Mutex::new(Vec::new()) };
    let key = HOT_BASE;
    let put = KvOp::Put { key, value: "new".into() };
    recorder.record(0, put, || Ok::<_, ClientError>(()), |_| KvOutput::Done).expect("recorded");
    std::thread::sleep(Duration::from_millis(1));
    let stale: Result<Option<String>, ClientError> = Ok(None);
    recorder
        .record(1, KvOp::Get { key }, || stale, |v| KvOutput::Value(v.as_deref().map(Into::into)))
        .expect("recorded");
    let history = recorder.operations.lock().expect("history").clone();
    assert!(matches!(
        check_history(&history, &CheckLimits::default()),
        Verdict::NotLinearizable { .. }
    ));
}
