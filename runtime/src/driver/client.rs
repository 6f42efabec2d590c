//! The request side of a node's handle: every request carries its own reply channel.

use stepraft::{Entry, LogIndex, MembershipChange, NodeId, Term};
use tokio::sync::{mpsc, oneshot};

use super::api::{Committed, NodeStatus, Request, RequestError, Response};

/// A request and where its answer goes, as the driver receives it.
#[derive(Debug)]
pub struct Call<T> {
    /// The request.
    pub request: Request<T>,
    /// Where its answer goes.
    pub reply: oneshot::Sender<Response<T>>,
}

/// Sends requests to a node's driver and awaits their answers. Cheap to clone: every clone
/// talks to the same node, and each request is answered on its own channel, so callers never
/// see each other's answers. Dropping every clone (and the handle) stops the driver.
#[derive(Debug)]
pub struct NodeClient<T> {
    pub(super) calls: mpsc::Sender<Call<T>>,
}

impl<T> Clone for NodeClient<T> {
    fn clone(&self) -> Self {
        NodeClient { calls: self.calls.clone() }
    }
}

/// The answer a typed method did not expect: the driver answers each request kind with its
/// own response kind, so this cannot happen; it is reported as an unknown outcome.
fn unexpected<V, T>(_: Response<T>) -> Result<V, RequestError> {
    Err(RequestError::Stopped)
}

impl<T> NodeClient<T> {
    /// A client whose calls arrive on the returned queue instead of at a driver: for testing
    /// code that talks to a node, by answering (or dropping) the calls by hand.
    pub fn channel(capacity: usize) -> (NodeClient<T>, mpsc::Receiver<Call<T>>) {
        let (calls, queue) = mpsc::channel(capacity);
        (NodeClient { calls }, queue)
    }

    /// Sends `request`, waiting for room in the driver's queue, and awaits its answer.
    ///
    /// # Errors
    /// [`RequestError::NotRunning`] when the driver is gone before taking it,
    /// [`RequestError::Stopped`] when it stopped before answering.
    pub async fn call(&self, request: Request<T>) -> Result<Response<T>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.calls.send(Call { request, reply }).await.map_err(|_| RequestError::NotRunning)?;
        answer.await.map_err(|_| RequestError::Stopped)
    }

    /// Hands `request` to the driver without waiting (for event loops that must never block)
    /// and returns where its answer will arrive.
    ///
    /// # Errors
    /// [`RequestError::Overloaded`] when the queue is full, [`RequestError::NotRunning`] when
    /// the driver is gone: either way the request was not taken.
    pub fn try_call(
        &self,
        request: Request<T>,
    ) -> Result<oneshot::Receiver<Response<T>>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.calls.try_send(Call { request, reply }).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => RequestError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => RequestError::NotRunning,
        })?;
        Ok(answer)
    }

    async fn committed(&self, request: Request<T>) -> Result<Committed, RequestError> {
        match self.call(request).await? {
            Response::Committed(committed) => Ok(committed),
            Response::Failed(error) => Err(error),
            other => unexpected(other),
        }
    }

    /// Appends `commands` (on the leader) and answers once they are committed and delivered
    /// on the applied stream.
    ///
    /// # Errors
    /// See [`Request::Propose`].
    pub async fn propose(&self, commands: Vec<T>) -> Result<Committed, RequestError> {
        self.committed(Request::Propose(commands)).await
    }

    /// Appends `commands` only if the leader's last entry is `(last_index, last_term)`.
    ///
    /// # Errors
    /// As [`NodeClient::propose`], and `ConditionFailed` when another entry is last.
    pub async fn append_if_last(
        &self,
        commands: Vec<T>,
        last_index: LogIndex,
        last_term: Term,
    ) -> Result<Committed, RequestError> {
        self.committed(Request::ConditionalAppend { commands, last_index, last_term }).await
    }

    /// Changes the membership; answers once the change is committed.
    ///
    /// # Errors
    /// As [`NodeClient::propose`].
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<Committed, RequestError> {
        self.committed(Request::ChangeMembership(change)).await
    }

    /// The committed entries `start..=end`; with `commands_only`, without the log's own
    /// entries (no-ops, configuration changes).
    ///
    /// # Errors
    /// [`RequestError::Range`] for a range not (or no longer) in the log.
    pub async fn read_range(
        &self,
        start: LogIndex,
        end: LogIndex,
        commands_only: bool,
    ) -> Result<Vec<Entry<T>>, RequestError> {
        match self.call(Request::ReadRange { start, end, commands_only }).await? {
            Response::Entries(entries) => Ok(entries),
            Response::Failed(error) => Err(error),
            other => unexpected(other),
        }
    }

    /// A linearizable read point: reading the state machine once it has applied up to the
    /// returned index is linearizable.
    ///
    /// # Errors
    /// [`RequestError::Read`] when leadership cannot be confirmed.
    pub async fn read_index(&self) -> Result<LogIndex, RequestError> {
        match self.call(Request::LinearizableRead).await? {
            Response::ReadReady { index } => Ok(index),
            Response::Failed(error) => Err(error),
            other => unexpected(other),
        }
    }

    /// Starts handing leadership to `target`.
    ///
    /// # Errors
    /// [`RequestError::Transfer`] when the transfer is refused.
    pub async fn transfer_leadership(&self, target: NodeId) -> Result<(), RequestError> {
        match self.call(Request::TransferLeadership(target)).await? {
            Response::TransferStarted => Ok(()),
            Response::Failed(error) => Err(error),
            other => unexpected(other),
        }
    }

    /// The node's state.
    ///
    /// # Errors
    /// [`RequestError::NotRunning`] or [`RequestError::Stopped`].
    pub async fn status(&self) -> Result<NodeStatus, RequestError> {
        match self.call(Request::Status).await? {
            Response::Status(status) => Ok(*status),
            Response::Failed(error) => Err(error),
            other => unexpected(other),
        }
    }

    /// Records the application's serialized state as of the applied `index` as a snapshot and
    /// compacts the log.
    ///
    /// # Errors
    /// [`RequestError::Snapshot`] when the core refuses it.
    pub async fn snapshot(&self, index: LogIndex, data: Vec<u8>) -> Result<LogIndex, RequestError> {
        match self.call(Request::Snapshot { index, data }).await? {
            Response::SnapshotTaken { index } => Ok(index),
            Response::Failed(error) => Err(error),
            other => unexpected(other),
        }
    }
}
