//! The clients: threads doing put, get, compare-and-set and delete against the cluster, each
//! operation recorded with its invocation and completion times and its outcome.
//!
//! Two kinds of keys: a few *hot* keys that every client reads and writes (the material of
//! the linearizability check), and *unique* keys, each written once by one client (the
//! material of the lost-write check: every acknowledged one must be on every member at the
//! end).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use stepraft_kv::client::{ClientError, KvClient};
use stepraft_sim::history::{Key, KvOp, KvOutput, OpOutcome, Operation, Value};

/// Hot keys: history keys `0..HOT_KEYS`, named `hot0`, `hot1`, ...
pub const HOT_KEYS: u64 = 6;
/// History keys of unique writes start here: client `c`'s `n`-th is `UNIQUE_BASE + c *
/// UNIQUE_PER_CLIENT + n`, named `u{c}-{n}`.
const UNIQUE_BASE: u64 = 1 << 32;
const UNIQUE_PER_CLIENT: u64 = 1 << 24;
/// How long a client waits for a write: short, so that writes move on to a new leader while
/// the old one is frozen, and are acknowledged there during the freeze.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client waits for a read: longer than any freeze, so that a read sent to a
/// frozen server after writes were acknowledged elsewhere is answered when the server resumes
/// (and a stale answer from an expired lease would be seen).
const READ_TIMEOUT: Duration = Duration::from_secs(6);

/// The name of history key `key` on the server.
pub fn key_name(key: Key) -> String {
    if key >= UNIQUE_BASE {
        let offset = key - UNIQUE_BASE;
        format!("u{}-{}", offset / UNIQUE_PER_CLIENT, offset % UNIQUE_PER_CLIENT)
    } else {
        format!("hot{key}")
    }
}

/// The value a unique key must hold once its write is acknowledged.
pub fn unique_value(key: Key) -> String {
    format!("w{key}")
}

/// What the clients did.
#[derive(Debug, Default)]
pub struct History {
    /// Every operation, in completion order.
    pub operations: Vec<Operation>,
}

impl History {
    /// The unique keys whose write was acknowledged.
    pub fn acknowledged_unique_keys(&self) -> Vec<Key> {
        self.operations
            .iter()
            .filter(|op| op.op.key() >= UNIQUE_BASE && matches!(op.outcome, OpOutcome::Ok(_)))
            .map(|op| op.op.key())
            .collect()
    }
}

struct Recorder {
    start: Instant,
    operations: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Runs `call` as one operation of `client`, records it, and returns its output.
    fn record<V>(
        &self,
        client: u64,
        op: KvOp,
        call: impl FnOnce() -> Result<V, ClientError>,
        output: impl FnOnce(&V) -> KvOutput,
    ) -> Option<KvOutput> {
        let invoked_us = self.now();
        let result = call();
        let completed_us = self.now();
        let outcome = match &result {
            Ok(value) => OpOutcome::Ok(output(value)),
            // A read that did not answer had no effect, whatever the error.
            Err(_) if op.is_read() => OpOutcome::Failed,
            Err(error) if error.is_definite_failure() => OpOutcome::Failed,
            Err(_) => OpOutcome::Unknown,
        };
        let answered = match &outcome {
            OpOutcome::Ok(output) => Some(output.clone()),
            _ => None,
        };
        let operation = Operation { client, op, invoked_us, completed_us, outcome };
        self.operations.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(operation);
        answered
    }
}

/// Running clients.
pub struct Workload {
    stop: Arc<AtomicBool>,
    recorder: Arc<Recorder>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `clients` client threads on the cluster at `addresses` (re-read after errors,
    /// so membership changes reach them), with choices drawn from `seed`. Times in the
    /// history count from `start`.
    pub fn start(
        addresses: Arc<RwLock<Vec<String>>>,
        clients: u64,
        seed: u64,
        start: Instant,
    ) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let recorder = Arc::new(Recorder { start, operations: Mutex::new(Vec::new()) });
        let threads = (0..clients)
            .map(|client| {
                let (addresses, stop, recorder) =
                    (Arc::clone(&addresses), Arc::clone(&stop), Arc::clone(&recorder));
                std::thread::spawn(move || {
                    Client::new(client, seed, addresses).run(&stop, &recorder);
                })
            })
            .collect();
        Workload { stop, recorder, threads }
    }

    /// Microseconds since the history's start.
    pub fn now_us(&self) -> u64 {
        self.recorder.now()
    }

    /// Stops the clients (each finishes its operation in flight) and returns the history.
    pub fn stop(self) -> History {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        let operations = std::mem::take(
            &mut *self.recorder.operations.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        History { operations }
    }
}

struct Client {
    id: u64,
    rng: ChaCha8Rng,
    addresses: Arc<RwLock<Vec<String>>>,
    known: Vec<String>,
    /// Writes follow redirects to the leader.
    writer: KvClient,
    /// Reads go to a random member each time (followers serve linearizable reads too), so
    /// that some are sent to a frozen or cut-off server.
    readers: Vec<KvClient>,
    /// The last value this client saw for each hot key: what its compare-and-sets expect.
    seen: BTreeMap<Key, Option<Value>>,
    count: u64,
}

impl Client {
    fn new(id: u64, seed: u64, addresses: Arc<RwLock<Vec<String>>>) -> Client {
        let known = addresses.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let (writer, readers) = clients_on(&known, id);
        let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(id));
        Client { id, rng, addresses, known, writer, readers, seen: BTreeMap::new(), count: 0 }
    }

    fn run(&mut self, stop: &AtomicBool, recorder: &Recorder) {
        while !stop.load(Ordering::Relaxed) {
            self.count += 1;
            let roll = self.rng.next_u64() % 100;
            let answered = if roll < 25 {
                self.unique_put(recorder)
            } else {
                self.hot_operation(roll, recorder)
            };
            if !answered {
                self.after_error();
            }
        }
    }

    fn unique_put(&mut self, recorder: &Recorder) -> bool {
        let key = UNIQUE_BASE + self.id * UNIQUE_PER_CLIENT + self.count;
        let value = unique_value(key);
        let op = KvOp::Put { key, value: value.as_str().into() };
        let writer = &mut self.writer;
        recorder
            .record(self.id, op, || writer.put(&key_name(key), &value), |_| KvOutput::Done)
            .is_some()
    }

    fn hot_operation(&mut self, roll: u64, recorder: &Recorder) -> bool {
        let key = self.rng.next_u64() % HOT_KEYS;
        let name = key_name(key);
        let fresh = format!("c{}-{}", self.id, self.count);
        let node = (self.rng.next_u64() % self.readers.len() as u64) as usize;
        let (client, writer, reader) = (self.id, &mut self.writer, &mut self.readers[node]);
        let output = match roll {
            25..=59 => recorder.record(
                client,
                KvOp::Get { key },
                || reader.get(&name, false),
                |value| KvOutput::Value(value.as_deref().map(Into::into)),
            ),
            60..=79 => {
                let op = KvOp::Put { key, value: fresh.as_str().into() };
                recorder.record(client, op, || writer.put(&name, &fresh), |_| KvOutput::Done)
            }
            80..=94 => {
                let expected = self.seen.get(&key).cloned().flatten();
                let op = KvOp::Cas { key, expected: expected.clone(), new: fresh.as_str().into() };
                recorder.record(
                    client,
                    op,
                    || writer.cas(&name, expected.as_deref(), &fresh),
                    |swapped| KvOutput::Swapped(*swapped),
                )
            }
            _ => recorder.record(
                client,
                KvOp::Delete { key },
                || writer.delete(&name),
                |_| KvOutput::Done,
            ),
        };
        // What this client now knows the key holds: its next compare-and-set expects it.
        match (&output, roll) {
            (Some(KvOutput::Value(value)), _) => {
                self.seen.insert(key, value.clone());
            }
            (Some(KvOutput::Done), 60..=79) | (Some(KvOutput::Swapped(true)), _) => {
                self.seen.insert(key, Some(fresh.as_str().into()));
            }
            (Some(KvOutput::Done), _) => {
                self.seen.insert(key, None);
            }
            _ => {}
        }
        output.is_some()
    }

    /// Moves to another node; picks up a changed member list.
    fn after_error(&mut self) {
        let current =
            self.addresses.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if current != self.known && !current.is_empty() {
            (self.writer, self.readers) = clients_on(&current, self.id + self.count);
            self.known = current;
        } else {
            self.writer.next_node();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A writer on `addresses`, starting at the node `offset` picks, and a reader per address.
fn clients_on(addresses: &[String], offset: u64) -> (KvClient, Vec<KvClient>) {
    let mut writer = KvClient::new(addresses.to_vec(), WRITE_TIMEOUT);
    for _ in 0..offset % addresses.len() as u64 {
        writer.next_node();
    }
    let readers = addresses
        .iter()
        .map(|address| KvClient::new(vec![address.clone()], READ_TIMEOUT))
        .collect();
    (writer, readers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_distinct_between_hot_and_unique_keys() {
        assert_eq!(key_name(3), "hot3");
        assert_eq!(key_name(UNIQUE_BASE + 2 * UNIQUE_PER_CLIENT + 17), "u2-17");
    }
}
