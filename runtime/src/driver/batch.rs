//! One batch of steps, split into what must be durable first and what follows it.
//!
//! The driver steps every input that is ready (up to a bound) before touching the disk, then
//! persists the whole batch with one write and one fsync, then executes the sends, answers and
//! applies in the order the steps produced them. (A batch whose persists need not be durable
//! first — the leader's own appends under parallel leader writes, commit-index updates — is
//! written in the background instead: see `writer.rs`.) This only moves persists *earlier* relative
//! to later steps' sends and applies, never later relative to their own step's — so every
//! output still runs after the persists that preceded it, which is the core's ordering
//! contract; what group commit changes is only that a message or answer may leave a little
//! later, which the protocol tolerates as network delay.

use stepraft::{LogIndex, NodeId, Output, Persist, Term};
use tokio::sync::oneshot;

use super::api::Response;

/// Where one request's answer goes.
#[derive(Debug)]
pub(super) enum Reply<T> {
    /// To a caller of this node.
    Local(oneshot::Sender<Response<T>>),
    /// To the follower that forwarded the request, as its `id`.
    Remote { peer: NodeId, id: u64 },
}

/// An output or an answer to execute once the batch is durable.
#[derive(Debug)]
pub(super) enum Action<T> {
    /// An output of a step other than a persist.
    Output(Output<T>),
    /// An answer computed while stepping (index-range reads, status, transfer outcomes).
    Respond(Reply<T>, Response<T>),
}

/// The outputs of several steps, ready to execute.
#[derive(Debug)]
pub(super) struct Batch<T> {
    /// Every persist of the batch, in step order: one transaction.
    pub persists: Vec<Persist<T>>,
    /// Everything else, in step order.
    pub actions: Vec<Action<T>>,
    /// The last entry of a background append (`PersistAsync`), acknowledged with
    /// `Input::Persisted` once the batch is durable.
    pub async_last: Option<(LogIndex, Term)>,
    /// Whether a persist other than a hard state must be durable before the actions run
    /// (hard states are sorted by the driver: see `Driver::execute`).
    pub must_wait: bool,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch { persists: Vec::new(), actions: Vec::new(), async_last: None, must_wait: false }
    }
}

impl<T> Batch<T> {
    /// Sorts one step's outputs into the batch.
    pub fn add_outputs(&mut self, outputs: impl IntoIterator<Item = Output<T>>) {
        for output in outputs {
            match output {
                Output::Persist(change) => {
                    self.must_wait |= !matches!(change, Persist::HardState(_));
                    self.persists.push(change);
                }
                // Parallel leader writes: written in the background unless the batch must wait
                // anyway, and reported with `Input::Persisted` once durable.
                Output::PersistAsync(change) => {
                    if let Persist::Append(entries) = &change {
                        if let Some(last) = entries.last() {
                            self.async_last = Some((last.index, last.term));
                        }
                    }
                    self.persists.push(change);
                }
                other => self.actions.push(Action::Output(other)),
            }
        }
    }
}
