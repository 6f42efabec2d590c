//! Linearizability checker for client histories of the key-value store.
//!
//! Every operation touches exactly one key and linearizability is compositional, so each key
//! is checked on its own. Per key, the checker runs the Wing–Gong search with Lowe's
//! memoization (as in Porcupine): the call and return events form a doubly linked list, a
//! depth-first search linearizes any pending call whose operation has not been overtaken by
//! another's return, and a cache of (set of linearized operations, value) prunes states
//! already known to lead nowhere.
//!
//! Outcomes: an `Ok` operation took effect once within its interval and returned its output;
//! a `Failed` one never took effect and is dropped; an `Unknown` one may take effect at any
//! instant after its invocation, or never. Unknown operations therefore have no return event:
//! they never block the search, and the search succeeds once every `Ok` operation is
//! linearized, which leaves the remaining unknown ones out (they did not take effect).

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fast_hash::{FastHashMap, FastHashSet};
use crate::history::{apply_to_key, Key, KvOp, KvOutput, OpOutcome, Operation, Value};

/// Search budget of the checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckLimits {
    /// The number of distinct search states (linearized set, value) one key may visit before
    /// the checker gives up on it.
    pub max_states: u64,
}

impl Default for CheckLimits {
    fn default() -> Self {
        CheckLimits { max_states: 1_000_000 }
    }
}

/// The result of checking a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations can be ordered consistently with real time and the model.
    Linearizable,
    /// The explanation names the key and the smallest set of operations (indices into the
    /// input slice) that cannot be ordered, in a human-readable sentence.
    NotLinearizable {
        /// The key whose operations cannot be linearized.
        key: Key,
        /// Indices into the checked history of the operations involved, ascending.
        operations: Vec<usize>,
        /// What went wrong, naming those operations.
        explanation: String,
    },
    /// The budget was exhausted on some key before a verdict: say which key and why.
    GaveUp {
        /// The key whose search ran out of budget.
        key: Key,
        /// Why the search stopped.
        reason: String,
    },
}

/// Checks that `history` is linearizable with respect to [`apply_to_key`], key by key.
///
/// A definite violation on any key wins over running out of budget on another, because it is
/// the more useful answer; among keys, the smallest one is reported.
pub fn check_history(history: &[Operation], limits: &CheckLimits) -> Verdict {
    let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    for (index, operation) in history.iter().enumerate() {
        by_key.entry(operation.op.key()).or_default().push(index);
    }
    let mut gave_up = None;
    for (key, indices) in by_key {
        match check_key(history, key, &indices, limits) {
            Verdict::Linearizable => {}
            Verdict::GaveUp { key, reason } => {
                gave_up.get_or_insert(Verdict::GaveUp { key, reason });
            }
            violation => return violation,
        }
    }
    gave_up.unwrap_or(Verdict::Linearizable)
}

/// An operation of one key that may have taken effect.
struct KeyOp<'a> {
    /// Index into the checked history.
    index: usize,
    op: &'a KvOp,
    /// The output it must produce; `None` for an unknown outcome, which may produce anything.
    expected: Option<&'a KvOutput>,
}

/// Interned values of the key, so cache entries and the search stack hold small ids instead of
/// strings that appends can make long.
#[derive(Default)]
struct Values {
    values: Vec<Option<Value>>,
    ids: FastHashMap<Option<Value>, u32>,
    /// (value, operation) -> (value after it, whether its output matches what was observed).
    steps: FastHashMap<(u32, u32), (u32, bool)>,
}

impl Values {
    fn intern(&mut self, value: Option<Value>) -> u32 {
        let next = self.values.len() as u32;
        let values = &mut self.values;
        *self.ids.entry(value).or_insert_with_key(|value| {
            values.push(value.clone());
            next
        })
    }

    fn step(&mut self, state: u32, op_id: u32, op: &KeyOp) -> (u32, bool) {
        if let Some(&known) = self.steps.get(&(state, op_id)) {
            return known;
        }
        let mut value = self.values[state as usize].clone();
        let output = apply_to_key(&mut value, op.op);
        let result = (self.intern(value), op.expected.is_none_or(|e| *e == output));
        self.steps.insert((state, op_id), result);
        result
    }
}

/// Where the search got stuck deepest: the explanation of a violation.
struct Stuck {
    /// How good a dead end this is: more `Ok` operations linearized first, then fewer unknown
    /// ones, because unknown effects applied on the way make the story harder to follow.
    rank: (usize, Reverse<usize>),
    /// How many operations the longest linearizable prefix orders.
    depth: usize,
    /// The value after that prefix.
    state: u32,
    /// The last operation of the prefix that changed the value, if any.
    writer: Option<u32>,
    /// Up to three operations of the prefix after `writer` (or its last three, without one).
    since: Vec<u32>,
    /// The pending operations, none of which could come next.
    candidates: Vec<u32>,
}

enum Search {
    Linearizable,
    Stuck(Stuck),
    GaveUp,
}

fn check_key(history: &[Operation], key: Key, indices: &[usize], limits: &CheckLimits) -> Verdict {
    let (mut ops, mut failed) = (Vec::new(), Vec::new());
    for &index in indices {
        let (op, expected) = match &history[index].outcome {
            OpOutcome::Ok(output) => (&history[index].op, Some(output)),
            OpOutcome::Failed => {
                failed.push(index);
                continue;
            }
            // An unknown read has no effect and no constrained output: it cannot matter.
            OpOutcome::Unknown if history[index].op.is_read() => continue,
            OpOutcome::Unknown => (&history[index].op, None),
        };
        ops.push(KeyOp { index, op, expected });
    }
    // Operation ids follow invocation order, which keeps cache keys short (see `cache_key`).
    ops.sort_by_key(|op| (history[op.index].invoked_us, op.index));
    // Each event is (time, is return, operation): at equal times calls sort before returns, so
    // an operation completing at the instant another is invoked counts as concurrent with it.
    let mut events = Vec::new();
    for (id, op) in ops.iter().enumerate() {
        let operation = &history[op.index];
        events.push((operation.invoked_us, false, id as u32));
        if op.expected.is_some() {
            // A completion recorded before the invocation would be a clock bug; clamp it.
            events.push((operation.completed_us.max(operation.invoked_us), true, id as u32));
        }
    }
    events.sort_unstable();
    match search(&ops, &events, limits) {
        (Search::Linearizable, _) => Verdict::Linearizable,
        (Search::GaveUp, values) => {
            let unknown = ops.iter().filter(|op| op.expected.is_none()).count();
            let (n, max, distinct) = (ops.len(), limits.max_states, values.values.len());
            let reason = format!(
                "key {key}: visited the budget of {max} search states over its {n} operations \
                 that may have taken effect ({unknown} of unknown outcome, {distinct} distinct \
                 values) without a verdict; raise CheckLimits::max_states or check less history"
            );
            Verdict::GaveUp { key, reason }
        }
        (Search::Stuck(stuck), values) => {
            let (operations, explanation) = explain(history, key, &ops, &failed, &stuck, &values);
            Verdict::NotLinearizable { key, operations, explanation }
        }
    }
}

/// The Wing–Gong depth-first search over the event list, with Lowe's cache.
fn search(ops: &[KeyOp], events: &[(u64, bool, u32)], limits: &CheckLimits) -> (Search, Values) {
    // Node 0 is the list's head sentinel; event `i` is node `i + 1`.
    const HEAD: usize = 0;
    let nodes = events.len() + 1;
    let mut next: Vec<usize> = (1..=nodes).map(|n| n % nodes).collect();
    let mut prev: Vec<usize> = (0..nodes).map(|n| (n + nodes - 1) % nodes).collect();
    // The node of each operation's return; HEAD for an unknown outcome, which has none.
    let mut return_node = vec![HEAD; ops.len()];
    for (i, &(_, is_return, id)) in events.iter().enumerate() {
        if is_return {
            return_node[id as usize] = i + 1;
        }
    }
    let node_op = |node: usize| events[node - 1].2;
    let mut values = Values::default();
    let mut state = values.intern(None);
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut cache: FastHashSet<Box<[u32]>> = FastHashSet::default();
    let (mut scratch, mut states) = (Vec::new(), 0u64);
    let total = ops.iter().filter(|op| op.expected.is_some()).count();
    let mut remaining = total;
    // The linearized calls, each with the value before it.
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut deepest: Option<Stuck> = None;
    let mut entry = next[HEAD];
    // Lifting unlinks an operation's call and return; unlifting relinks them in reverse.
    let unlink = |next: &mut [usize], prev: &mut [usize], n: usize| {
        next[prev[n]] = next[n];
        prev[next[n]] = prev[n];
    };
    let relink = |next: &mut [usize], prev: &mut [usize], n: usize| {
        next[prev[n]] = n;
        prev[next[n]] = n;
    };
    loop {
        if remaining == 0 {
            return (Search::Linearizable, values);
        }
        // Some `Ok` operation is unlinearized, so its return lies ahead before the list ends.
        debug_assert_ne!(entry, HEAD);
        let id = node_op(entry);
        if events[entry - 1].1 {
            // A return: its operation had to be linearized before anything after it, and no
            // candidate worked. Remember the best dead end, then undo the last choice.
            let done = total - remaining;
            let rank = (done, Reverse(stack.len() - done));
            if deepest.as_ref().is_none_or(|d| rank > d.rank) {
                let after = |i: usize| stack.get(i + 1).map_or(state, |&(_, before)| before);
                let changed = (0..stack.len()).rev().find(|&i| stack[i].1 != after(i));
                let since = changed.map_or(0, |i| i + 1).max(stack.len().saturating_sub(3));
                let mut candidates = Vec::new();
                let mut node = next[HEAD];
                while node != entry {
                    candidates.push(node_op(node));
                    node = next[node];
                }
                deepest = Some(Stuck {
                    rank,
                    depth: stack.len(),
                    state,
                    writer: changed.map(|i| node_op(stack[i].0)),
                    since: stack[since..].iter().map(|&(call, _)| node_op(call)).collect(),
                    candidates,
                });
            }
            let Some((call, before)) = stack.pop() else {
                return (Search::Stuck(deepest.expect("recorded just above")), values);
            };
            let id = node_op(call) as usize;
            linearized[id / 64] &= !(1 << (id % 64));
            state = before;
            if return_node[id] != HEAD {
                relink(&mut next, &mut prev, return_node[id]);
                remaining += 1;
            }
            relink(&mut next, &mut prev, call);
            entry = next[call];
            continue;
        }
        let op = &ops[id as usize];
        let (after, fits) = values.step(state, id, op);
        // Applying an unknown operation that changes nothing is never better than leaving it
        // out, which keeps the option to apply it later: skip that branch.
        if fits && (op.expected.is_some() || after != state) {
            linearized[id as usize / 64] |= 1 << (id % 64);
            cache_key(&linearized, after, &mut scratch);
            // Looking up the borrowed key first allocates only for new states.
            if !cache.contains(&scratch[..]) {
                cache.insert(scratch.as_slice().into());
                states += 1;
                if states > limits.max_states {
                    return (Search::GaveUp, values);
                }
                stack.push((entry, state));
                state = after;
                unlink(&mut next, &mut prev, entry);
                if return_node[id as usize] != HEAD {
                    unlink(&mut next, &mut prev, return_node[id as usize]);
                    remaining -= 1;
                }
                entry = next[HEAD];
                continue;
            }
            linearized[id as usize / 64] &= !(1 << (id % 64));
        }
        entry = next[entry];
    }
}

/// A compact cache key: the value id, one past the highest linearized operation, and the
/// operations below it left out. Ids follow invocation order and real time forces old
/// operations to be linearized, so the holes are only the few concurrent or unknown ones —
/// far smaller than the bitset on long histories.
fn cache_key(linearized: &[u64], state: u32, key: &mut Vec<u32>) {
    let top = linearized.iter().rposition(|&word| word != 0);
    let end = top.map_or(0, |w| w * 64 + 64 - linearized[w].leading_zeros() as usize);
    key.clear();
    key.extend([state, end as u32]);
    for (w, &word) in linearized.iter().enumerate().take(end.div_ceil(64)) {
        let mut holes = !word;
        if (w + 1) * 64 > end {
            holes &= (1u64 << (end - w * 64)) - 1;
        }
        while holes != 0 {
            key.push((w * 64) as u32 + holes.trailing_zeros());
            holes &= holes - 1;
        }
    }
}

/// Turns a dead end into the reported operations and a sentence describing them.
fn explain(
    history: &[Operation],
    key: Key,
    ops: &[KeyOp],
    failed: &[usize],
    stuck: &Stuck,
    values: &Values,
) -> (Vec<usize>, String) {
    let value = &values.values[stuck.state as usize];
    let global = |id: &u32| ops[*id as usize].index;
    let mut involved: Vec<usize> = stuck.writer.iter().chain(&stuck.since).map(global).collect();
    let mut text = format!("key {key}: no linearization of its operations exists. ");
    if stuck.depth == 0 {
        text.push_str("From the initial absent value");
    } else {
        let (depth, shown, n) = (stuck.depth, show_value(value), ops.len());
        let _ = write!(text, "The longest linearizable prefix orders {depth} of the {n} that may ");
        let _ = write!(text, "have taken effect and leaves the value {shown}");
        if let Some(writer) = stuck.writer {
            let _ = write!(text, ", written by {}", describe(history, global(&writer)));
        }
        if !stuck.since.is_empty() {
            let since: Vec<_> =
                stuck.since.iter().map(|id| describe(history, global(id))).collect();
            let _ = write!(text, ", followed by {}", since.join(", "));
        }
    }
    let next = if stuck.depth == 0 { "first" } else { "next" };
    let _ = write!(text, ", the {next} operation cannot be any of: ");
    let mut notes = String::new();
    // Unknown operations stay pending forever and would swamp the list; only count them.
    let known: Vec<(&KeyOp, &KvOutput)> = (stuck.candidates.iter())
        .filter_map(|&id| Some((&ops[id as usize], ops[id as usize].expected?)))
        .collect();
    for (n, &(op, expected)) in known.iter().enumerate() {
        involved.push(op.index);
        let output = apply_to_key(&mut value.clone(), op.op);
        let reason = if output == *expected {
            "it fits here, but no order of the rest follows".to_string()
        } else {
            // A failed operation invoked before this one returned whose effect would explain
            // its output is the likely culprit: a write reported failed that took effect.
            let culprit = failed.iter().copied().find(|&f| {
                let mut with_failed = value.clone();
                apply_to_key(&mut with_failed, &history[f].op);
                history[f].invoked_us <= history[op.index].completed_us
                    && apply_to_key(&mut with_failed, op.op) == *expected
            });
            if let Some(f) = culprit {
                involved.push(f);
                let (failed, index) = (describe(history, f), op.index);
                let _ = write!(notes, " Yet {failed} would explain #{index}, had it taken effect.");
            }
            format!("here it would return {}", show_output(&output))
        };
        let separator = if n == 0 { "" } else { "; " };
        let _ = write!(text, "{separator}{} ({reason})", describe(history, op.index));
    }
    if known.len() < stuck.candidates.len() {
        let unknown = stuck.candidates.len() - known.len();
        let _ = write!(text, "; nor any of {unknown} pending operations of unknown outcome");
    }
    text.push('.');
    text.push_str(&notes);
    involved.sort_unstable();
    involved.dedup();
    (involved, text)
}

/// One operation as `#index (client c: op -> outcome, [invoked, completed] us)`.
fn describe(history: &[Operation], index: usize) -> String {
    let operation = &history[index];
    let op = match &operation.op {
        KvOp::Put { value, .. } => format!("put {value:?}"),
        KvOp::Get { .. } => "get".to_string(),
        KvOp::Append { value, .. } => format!("append {value:?}"),
        KvOp::Cas { expected, new, .. } => format!("cas {} -> {new:?}", show_value(expected)),
        KvOp::Delete { .. } => "delete".to_string(),
    };
    let outcome = match &operation.outcome {
        OpOutcome::Ok(output) => show_output(output),
        OpOutcome::Failed => "failed".to_string(),
        OpOutcome::Unknown => "unknown outcome".to_string(),
    };
    let (client, from, to) = (operation.client, operation.invoked_us, operation.completed_us);
    format!("#{index} (client {client}: {op} -> {outcome}, [{from}, {to}] us)")
}

fn show_output(output: &KvOutput) -> String {
    match output {
        KvOutput::Done => "done".to_string(),
        KvOutput::Value(value) => show_value(value),
        KvOutput::Swapped(swapped) => if *swapped { "swapped" } else { "not swapped" }.to_string(),
    }
}

/// A value for a sentence; long ones (appends) are cut so one line stays readable.
fn show_value(value: &Option<Value>) -> String {
    match value {
        None => "absent".to_string(),
        Some(v) if v.len() > 40 => {
            let head: String = v.chars().take(32).collect();
            format!("{head:?}... ({} bytes)", v.len())
        }
        Some(v) => format!("{v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::KvModel;

    /// Parses `;`-separated operations `client verb key [args] invoked completed outcome`:
    /// `1 put 7 a 0 10 ok`, `2 get 7 20 30 a` (`-` is absent), `3 cas 7 - b 0 9 yes` (or `no`),
    /// `4 append 7 x 5 6 unknown`, `5 del 7 1 2 failed`.
    fn h(text: &str) -> Vec<Operation> {
        let parse = |line: &str| {
            let t: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| t[i].parse::<u64>().unwrap();
            let value = |s: &str| (s != "-").then(|| Value::from(s));
            let key = num(2);
            let (op, at) = match t[1] {
                "put" => (KvOp::Put { key, value: t[3].into() }, 4),
                "append" => (KvOp::Append { key, value: t[3].into() }, 4),
                "cas" => (KvOp::Cas { key, expected: value(t[3]), new: t[4].into() }, 5),
                "get" => (KvOp::Get { key }, 3),
                "del" => (KvOp::Delete { key }, 3),
                verb => panic!("unknown verb {verb}"),
            };
            let outcome = match t[at + 2] {
                "failed" => OpOutcome::Failed,
                "unknown" => OpOutcome::Unknown,
                "ok" => OpOutcome::Ok(KvOutput::Done),
                "yes" | "no" => OpOutcome::Ok(KvOutput::Swapped(t[at + 2] == "yes")),
                seen => OpOutcome::Ok(KvOutput::Value(value(seen))),
            };
            let (invoked_us, completed_us) = (num(at), num(at + 1));
            Operation { client: num(0), op, invoked_us, completed_us, outcome }
        };
        text.split(';').map(parse).collect()
    }

    fn check(history: &[Operation]) -> Verdict {
        check_history(history, &CheckLimits::default())
    }

    /// Asserts a violation on `key` that names `culprits` among a few operations.
    fn rejected(history: &[Operation], key: Key, culprits: &[usize]) -> String {
        let Verdict::NotLinearizable { key: k, operations, explanation } = check(history) else {
            panic!("expected a violation, got {:?}", check(history));
        };
        assert_eq!(k, key, "{explanation}");
        for c in culprits {
            assert!(operations.contains(c), "#{c} missing from {operations:?}: {explanation}");
        }
        assert!(operations.len() <= 5, "not minimal: {operations:?}: {explanation}");
        explanation
    }

    macro_rules! accepts {
        ($($name:ident: $history:expr;)*) => {$(
            #[test]
            fn $name() {
                let history = h($history);
                assert_eq!(check(&history), Verdict::Linearizable, "{history:#?}");
            }
        )*};
    }

    macro_rules! rejects {
        ($($name:ident: key $key:literal, culprits $culprits:expr, $history:expr;)*) => {$(
            #[test]
            fn $name() {
                rejected(&h($history), $key, &$culprits);
            }
        )*};
    }

    accepts! {
        sequential_put_get: "1 get 1 0 5 -; 1 put 1 a 10 20 ok; 2 get 1 30 40 a; \
            1 put 1 b 50 60 ok; 2 get 1 70 80 b";
        concurrent_writes_read_sees_first: "1 put 1 x 0 10 ok; 2 put 1 y 0 10 ok; \
            3 get 1 5 8 -; 3 get 1 20 30 x; 1 get 1 40 50 x";
        concurrent_writes_read_sees_second: "1 put 1 x 0 10 ok; 2 put 1 y 0 10 ok; \
            3 get 1 5 8 -; 3 get 1 20 30 y; 1 get 1 40 50 y";
        read_during_write_sees_old: "1 put 1 old 0 10 ok; 1 put 1 new 20 40 ok; \
            2 get 1 25 30 old; 2 get 1 50 60 new";
        read_during_write_sees_new: "1 put 1 old 0 10 ok; 1 put 1 new 20 40 ok; \
            2 get 1 25 30 new; 2 get 1 50 60 new";
        touching_intervals_are_concurrent: "1 put 1 a 0 10 ok; 2 get 1 10 20 -";
        unknown_write_observed_later: "1 put 1 1 0 10 ok; 2 put 1 2 20 25 unknown; \
            3 get 1 30 40 1; 3 get 1 100 110 2; 1 get 1 120 130 2";
        unknown_write_never_observed: "1 put 1 1 0 10 ok; 2 append 1 x 20 25 unknown; \
            2 get 1 26 27 unknown; 3 get 1 100 110 1";
        failed_writes_ignored: "1 put 1 1 0 10 ok; 2 put 1 2 20 30 failed; \
            2 append 1 3 31 32 failed; 3 get 1 40 50 1";
        cas_success_and_failure: "1 cas 1 - a 0 10 yes; 1 cas 1 - b 20 30 no; \
            1 cas 1 a c 40 50 yes; 1 cas 1 c d 60 80 no; 2 cas 1 c e 60 80 yes; 3 get 1 90 100 e";
        append_sequences: "1 append 1 a 0 10 ok; 1 append 1 b 20 30 ok; 2 get 1 40 50 ab; \
            1 append 1 c 60 80 ok; 2 append 1 d 60 80 ok; 3 get 1 70 75 abd; 3 get 1 90 100 abdc";
        deletes_read_before: "1 del 1 0 5 ok; 1 put 1 1 10 20 ok; 1 del 1 30 50 ok; \
            2 get 1 35 40 1; 2 get 1 60 70 -; 2 append 1 z 80 90 ok; 3 get 1 95 99 z";
        deletes_read_after: "1 del 1 0 5 ok; 1 put 1 1 10 20 ok; 1 del 1 30 50 ok; \
            2 get 1 35 40 -; 2 get 1 60 70 -";
        multiple_keys_interleaved: "1 put 1 x 0 10 ok; 2 put 2 y 5 15 ok; 3 get 1 20 30 x; \
            1 get 2 20 30 y; 2 get 3 25 35 -; 3 append 2 z 40 50 ok; 1 get 2 60 70 yz; \
            2 get 1 60 70 x";
    }

    rejects! {
        rejects_stale_read: key 7, culprits [2, 4], "1 put 3 z 0 10 ok; 1 put 7 1 0 10 ok; \
            2 put 7 2 20 30 ok; 3 get 3 35 45 z; 3 get 7 40 50 1";
        rejects_lost_write: key 1, culprits [1, 3], "1 put 1 1 0 10 ok; 2 put 1 2 15 40 ok; \
            3 get 1 20 25 1; 3 get 1 50 60 1";
        rejects_duplicated_append: key 1, culprits [0, 1], "1 append 1 a 0 10 ok; 2 get 1 20 30 aa";
        rejects_real_time_violation: key 1, culprits [2, 3], "1 put 1 old 0 10 ok; \
            1 put 1 new 20 100 ok; 2 get 1 30 40 new; 2 get 1 50 60 old";
        rejects_value_never_written: key 1, culprits [1], "1 put 1 1 0 10 ok; 2 get 1 20 30 7";
        rejects_read_of_nothing: key 5, culprits [0], "2 get 5 20 30 7";
        rejects_observed_failed_write: key 1, culprits [1, 2], "1 put 1 1 0 10 ok; \
            2 put 1 2 20 30 failed; 3 get 1 40 50 2";
        rejects_unknown_write_before_its_invocation: key 1, culprits [1], "1 put 1 1 0 10 ok; \
            2 get 1 20 30 2; 3 put 1 2 50 60 unknown";
    }

    #[test]
    fn explanation_describes_the_operations() {
        let history = h("1 put 7 1 0 10 ok; 2 put 7 2 20 30 ok; 3 get 7 40 50 1; \
            4 put 7 3 45 55 failed; 4 append 7 x 46 47 unknown");
        let explanation = rejected(&history, 7, &[1, 2]);
        for part in [
            "key 7",
            "leaves the value \"2\"",
            "#1 (client 2: put \"2\" -> done, [20, 30] us)",
            "#2 (client 3: get -> \"1\", [40, 50] us) (here it would return \"2\")",
            "nor any of 1 pending operations of unknown outcome",
        ] {
            assert!(explanation.contains(part), "{part:?} missing from {explanation}");
        }
    }

    #[test]
    fn gives_up_when_out_of_budget() {
        let history = h("1 put 1 ok 0 1 ok; 1 put 4 1 0 10 ok; 2 put 4 2 0 10 ok; 3 get 4 20 30 1");
        let verdict = check_history(&history, &CheckLimits { max_states: 1 });
        let Verdict::GaveUp { key: 4, reason } = verdict else { panic!("{verdict:?}") };
        assert!(reason.contains("key 4"), "{reason}");
        assert_eq!(check(&history), Verdict::Linearizable);
    }

    /// A tiny deterministic PRNG (splitmix64), so generated histories need no dependency.
    struct SplitMix(u64);
    impl SplitMix {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }
    }

    /// A linearizable history: each client runs operations back to back, each taking effect
    /// at a random instant of its interval, replayed through the model in effect order. A few
    /// fail (no effect) or end unknown (with or without an effect, maybe after giving up).
    fn generate(seed: u64, count: usize, keys: u64, clients: u64) -> Vec<Operation> {
        let mut rng = SplitMix(seed);
        let mut clocks = vec![0u64; clients as usize];
        let mut planned = Vec::with_capacity(count);
        for i in 0..count {
            let client = i as u64 % clients;
            let invoked = clocks[client as usize] + rng.below(20);
            let (key, value) = (rng.below(keys), ["a", "b", "c"][rng.below(3) as usize].into());
            let op = match rng.below(10) {
                0..=3 => KvOp::Get { key },
                4 | 5 => KvOp::Put { key, value },
                6 => KvOp::Append { key, value },
                7 | 8 => {
                    let expected =
                        ["a", "b", "c"].get(rng.below(4) as usize).map(|v| Value::from(*v));
                    KvOp::Cas { key, expected, new: value }
                }
                _ => KvOp::Delete { key },
            };
            // 0..=2: failed; 3..=5: unknown, took effect; 6..=7: unknown, did not.
            let fate = rng.below(100);
            let effect = invoked + rng.below(if fate < 8 { 200 } else { 50 });
            let completed = if fate < 8 { invoked + rng.below(30) } else { effect + rng.below(50) };
            clocks[client as usize] = completed + 1;
            planned.push((client, op, invoked, effect, completed, fate));
        }
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by_key(|&i| (planned[i].3, i));
        let mut outputs = vec![None; count];
        let mut model = KvModel::default();
        for i in order.into_iter().filter(|&i| !matches!(planned[i].5, 0..=2 | 6..=7)) {
            outputs[i] = Some(model.apply(&planned[i].1));
        }
        let operation = |((client, op, invoked_us, _, completed_us, fate), output)| {
            let outcome = match fate {
                0..=2 => OpOutcome::Failed,
                3..=7 => OpOutcome::Unknown,
                _ => OpOutcome::Ok(Option::unwrap(output)),
            };
            Operation { client, op, invoked_us, completed_us, outcome }
        };
        planned.into_iter().zip(outputs).map(operation).collect()
    }

    #[test]
    fn generated_history_is_accepted_and_a_corrupted_read_rejected() {
        let mut history = generate(7, 2_000, 20, 5);
        assert_eq!(check(&history), Verdict::Linearizable);
        let last_read =
            history.iter().rposition(|o| o.op.is_read() && o.outcome != OpOutcome::Unknown);
        let read = &mut history[last_read.unwrap()];
        read.outcome = OpOutcome::Ok(KvOutput::Value(Some("never written".into())));
        let key = read.op.key();
        rejected(&history, key, &[last_read.unwrap()]);
    }

    #[test]
    fn ten_thousand_operations_over_a_hundred_keys() {
        let history = generate(11, 10_000, 100, 5);
        let start = std::time::Instant::now();
        assert_eq!(check(&history), Verdict::Linearizable);
        println!("checked 10,000 operations over 100 keys in {:?}", start.elapsed());
    }
}
