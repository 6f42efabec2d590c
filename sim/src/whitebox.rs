//! The white-box oracle: the simulator knows the commit order, so it replays the cluster's
//! applied log against the reference model and checks every completed operation against it in
//! O(n log n) — independently of the black-box linearizability search (TigerBeetle's approach).
//!
//! Each completed operation is *placed* in the log order: a write (or a read through the log)
//! at the index of its entry, a ReadIndex read just after the entry it was served at. The
//! history is accepted when every output equals the model's at its place and places respect
//! real time (an operation that completed before another was invoked is placed no later).

use crate::history::{OpOutcome, Operation};
use crate::kv::{KvCommand, KvStore};
use stepraft::Entry;

/// Where a completed operation sits in the log order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Its position in the history.
    pub operation: usize,
    /// The log index of its entry, or the applied index a read was served at.
    pub index: u64,
    /// `true` for a read served after entry `index` (ReadIndex), `false` for an entry.
    pub after_entry: bool,
}

impl Placed {
    fn position(&self) -> (u64, bool) {
        (self.index, self.after_entry)
    }
}

/// Checks `placed` operations of `history` against the replay of `log` (the cluster's applied
/// entries, from index 1).
///
/// # Errors
/// A sentence naming the first operation whose output or place is impossible.
pub fn check_log_order(
    history: &[Operation],
    placed: &[Placed],
    log: &[Entry<KvCommand>],
) -> Result<(), String> {
    check_outputs(history, placed, log)?;
    check_real_time(history, placed)
}

fn check_outputs(
    history: &[Operation],
    placed: &[Placed],
    log: &[Entry<KvCommand>],
) -> Result<(), String> {
    let mut reads_after: Vec<&Placed> = placed.iter().filter(|p| p.after_entry).collect();
    reads_after.sort_by_key(|p| p.index);
    let mut next_read = 0;
    let mut store = KvStore::default();
    let mut outputs = Vec::with_capacity(log.len());
    for applied in 0..=log.len() {
        if applied > 0 {
            outputs.push(store.apply(&log[applied - 1]));
        }
        while let Some(read) = reads_after.get(next_read).filter(|r| r.index == applied as u64) {
            let operation = &history[read.operation];
            let seen = store.read(&operation.op);
            if operation.outcome != OpOutcome::Ok(seen.clone()) {
                return Err(format!(
                    "{operation:?} was served after entry {applied}, where the log gives {seen:?}"
                ));
            }
            next_read += 1;
        }
    }
    if let Some(read) = reads_after.get(next_read) {
        return Err(format!("a read was served after entry {}, beyond the log", read.index));
    }
    for entry_op in placed.iter().filter(|p| !p.after_entry) {
        let operation = &history[entry_op.operation];
        let expected = outputs.get((entry_op.index as usize).wrapping_sub(1)).cloned().flatten();
        if expected.as_ref().map(|output| OpOutcome::Ok(output.clone()))
            != Some(operation.outcome.clone())
        {
            return Err(format!(
                "{operation:?} is acknowledged at entry {}, where the log gives {expected:?}",
                entry_op.index
            ));
        }
    }
    Ok(())
}

/// An operation that completed before another was invoked must not be placed after it.
fn check_real_time(history: &[Operation], placed: &[Placed]) -> Result<(), String> {
    let mut by_invocation: Vec<&Placed> = placed.iter().collect();
    by_invocation.sort_by_key(|p| history[p.operation].invoked_us);
    let mut by_completion: Vec<&Placed> = placed.iter().collect();
    by_completion.sort_by_key(|p| history[p.operation].completed_us);
    let mut latest: Option<&Placed> = None;
    let mut completed = 0;
    for later in by_invocation {
        let invoked = history[later.operation].invoked_us;
        while let Some(done) = by_completion.get(completed) {
            if history[done.operation].completed_us >= invoked {
                break;
            }
            if latest.is_none_or(|l| done.position() > l.position()) {
                latest = Some(done);
            }
            completed += 1;
        }
        if let Some(earlier) = latest {
            if earlier.position() > later.position() {
                return Err(format!(
                    "{:?} completed before {:?} was invoked, but is ordered after it \
                     (positions {:?} > {:?})",
                    history[earlier.operation],
                    history[later.operation],
                    earlier.position(),
                    later.position()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{KvOp, KvOutput};
    use crate::workload::RequestId;
    use stepraft::{LogIndex, Payload, Term};

    fn put(index: u64, client: u64, value: &str) -> Entry<KvCommand> {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: Payload::Command(KvCommand::new(
                RequestId { client, request: index },
                KvOp::Put { key: 1, value: value.into() },
            )),
        }
    }

    fn op(op: KvOp, invoked_us: u64, completed_us: u64, output: KvOutput) -> Operation {
        Operation { client: 0, op, invoked_us, completed_us, outcome: OpOutcome::Ok(output) }
    }

    fn get(value: Option<&str>, invoked: u64, completed: u64) -> Operation {
        op(KvOp::Get { key: 1 }, invoked, completed, KvOutput::Value(value.map(Into::into)))
    }

    fn write(value: &str, invoked: u64, completed: u64) -> Operation {
        op(KvOp::Put { key: 1, value: value.into() }, invoked, completed, KvOutput::Done)
    }

    #[test]
    fn accepts_a_history_consistent_with_the_log() {
        let log = [put(1, 1, "a"), put(2, 2, "b")];
        let history =
            [write("a", 0, 10), get(Some("a"), 11, 12), write("b", 13, 20), get(Some("b"), 21, 22)];
        let placed = [
            Placed { operation: 0, index: 1, after_entry: false },
            Placed { operation: 1, index: 1, after_entry: true },
            Placed { operation: 2, index: 2, after_entry: false },
            Placed { operation: 3, index: 2, after_entry: true },
        ];
        assert_eq!(check_log_order(&history, &placed, &log), Ok(()));
    }

    #[test]
    fn rejects_a_read_whose_value_is_not_the_logs() {
        let log = [put(1, 1, "a")];
        let history = [get(Some("z"), 0, 1)];
        let placed = [Placed { operation: 0, index: 1, after_entry: true }];
        assert!(check_log_order(&history, &placed, &log).is_err());
    }

    #[test]
    fn rejects_a_stale_read_placed_before_a_completed_write() {
        let log = [put(1, 1, "a"), put(2, 2, "b")];
        // The read was invoked after "b" was acknowledged, yet served at entry 1.
        let history = [write("b", 0, 10), get(Some("a"), 11, 12)];
        let placed = [
            Placed { operation: 0, index: 2, after_entry: false },
            Placed { operation: 1, index: 1, after_entry: true },
        ];
        let error = check_log_order(&history, &placed, &log).unwrap_err();
        assert!(error.contains("ordered after"), "{error}");
    }

    #[test]
    fn rejects_a_write_acknowledged_with_the_wrong_output() {
        let log = [put(1, 1, "a")];
        let history = [op(KvOp::Put { key: 1, value: "a".into() }, 0, 1, KvOutput::Swapped(true))];
        let placed = [Placed { operation: 0, index: 1, after_entry: false }];
        assert!(check_log_order(&history, &placed, &log).is_err());
    }
}
