//! The fault-injecting proxy on peer links.
//!
//! Every server is told that its peers live at their proxies' addresses, so every peer message
//! of the cluster passes through one proxy: the one in front of its receiver. A proxy learns
//! the sender of each message from the message itself (the envelope's sender id) and asks the
//! shared [`Links`] table what to do with it on that directed link: deliver it, deliver it
//! late, or drop it. HTTP connections (redirected clients) are relayed untouched: the faults
//! are on the peer network, not between clients and servers.

mod tcp;
mod udp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tokio::sync::watch;

pub use tcp::serve_tcp;
pub use udp::serve_udp;

/// A directed peer link: (sender, receiver).
pub type Link = (u64, u64);

/// What becomes of one message on its link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost.
    Drop,
    /// Delivered after this delay (on TCP, never before the messages sent before it).
    Deliver(Duration),
}

#[derive(Debug, Default)]
struct Rules {
    cut: BTreeSet<Link>,
    delay: BTreeMap<Link, Duration>,
    loss_percent: BTreeMap<Link, u64>,
}

/// The fault state of every peer link, shared by the proxies and changed by the nemesis.
#[derive(Debug)]
pub struct Links {
    rules: Mutex<Rules>,
    rng: Mutex<ChaCha8Rng>,
    resets: watch::Sender<u64>,
}

impl Links {
    /// Links without faults; message loss draws from a stream keyed by `seed`.
    pub fn new(seed: u64) -> Links {
        Links {
            rules: Mutex::new(Rules::default()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            resets: watch::channel(0).0,
        }
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        // Every change is one insert or clear: a panic elsewhere cannot leave half of one.
        self.rules.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops every message on `link` until healed.
    pub fn cut(&self, link: Link) {
        self.rules().cut.insert(link);
    }

    /// Delays every message on `link` by `delay` until healed.
    pub fn delay(&self, link: Link, delay: Duration) {
        self.rules().delay.insert(link, delay);
    }

    /// Drops each message on `link` with probability `percent`/100 until healed.
    pub fn lose(&self, link: Link, percent: u64) {
        self.rules().loss_percent.insert(link, percent.min(100));
    }

    /// Closes every relayed peer connection now (the senders reconnect).
    pub fn reset_connections(&self) {
        self.resets.send_modify(|generation| *generation += 1);
    }

    /// Removes every cut, delay and loss.
    pub fn heal(&self) {
        let mut rules = self.rules();
        *rules = Rules::default();
    }

    /// Whether any fault is in force.
    pub fn is_faulty(&self) -> bool {
        let rules = self.rules();
        !(rules.cut.is_empty() && rules.delay.is_empty() && rules.loss_percent.is_empty())
    }

    /// What happens to the next message on `link`.
    pub fn fate(&self, link: Link) -> Fate {
        let rules = self.rules();
        if rules.cut.contains(&link) {
            return Fate::Drop;
        }
        if let Some(&percent) = rules.loss_percent.get(&link) {
            let draw = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next_u64();
            if draw % 100 < percent {
                return Fate::Drop;
            }
        }
        Fate::Deliver(rules.delay.get(&link).copied().unwrap_or_default())
    }

    fn subscribe_resets(&self) -> watch::Receiver<u64> {
        self.resets.subscribe()
    }
}

/// The sender id of a peer message payload (a `u16` wire version, then the postcard
/// envelope, whose first fields are the cluster id and the sender).
fn sender_of(payload: &[u8]) -> Option<u64> {
    let body = payload.get(2..)?;
    let ((_cluster, from), _) = postcard::take_from_bytes::<(u64, u64)>(body).ok()?;
    Some(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepraft::{Heartbeat, LogIndex, Message, NodeId, Term};
    use stepraft_tokio::codec::{encode_payload, Envelope};

    #[test]
    fn the_sender_is_read_from_a_real_payload() {
        let heartbeat = Heartbeat { term: Term(3), commit: LogIndex(7), round: 4 };
        let envelope = Envelope::<String> {
            cluster_id: 9,
            from: NodeId(300),
            to: NodeId(2),
            message: stepraft_tokio::network::PeerMessage::Raft(Message::Heartbeat(heartbeat)),
        };
        let payload = encode_payload(&envelope).expect("encodes");
        assert_eq!(sender_of(&payload), Some(300));
        assert_eq!(sender_of(&payload[..2]), None);
    }

    #[test]
    fn cuts_delays_and_loss_apply_to_their_link_only_until_healed() {
        let links = Links::new(7);
        links.cut((1, 2));
        links.delay((2, 1), Duration::from_millis(40));
        links.lose((3, 1), 100);
        assert_eq!(links.fate((1, 2)), Fate::Drop);
        assert_eq!(links.fate((2, 1)), Fate::Deliver(Duration::from_millis(40)));
        assert_eq!(links.fate((3, 1)), Fate::Drop);
        assert_eq!(links.fate((1, 3)), Fate::Deliver(Duration::ZERO));
        assert!(links.is_faulty());
        links.heal();
        assert!(!links.is_faulty());
        assert_eq!(links.fate((1, 2)), Fate::Deliver(Duration::ZERO));
    }
}
