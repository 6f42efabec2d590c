//! The application task: applies committed entries to the key-value map, and answers the HTTP
//! handlers' requests once the driver has answered or the entry is applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stepraft::{Entry, LogIndex, MembershipChange, NodeId, Payload, Snapshot};
use tokio::sync::{mpsc, oneshot, watch};

use super::error::ApiError;
use crate::command::{KvCommand, KvOp, KvOutcome, KvState, Tag};
use stepraft_tokio::driver::{
    Applied, Committed, Leadership, NodeClient, NodeStatus, Request, RequestError, Response,
};
use stepraft_tokio::metrics::NodeMetrics;
use stepraft_tokio::network::PeerBook;

/// A reply channel.
pub type Reply<V> = oneshot::Sender<Result<V, ApiError>>;

/// A committed write: where it landed and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Its log index.
    pub index: LogIndex,
    /// Its outcome.
    pub outcome: KvOutcome,
}

/// What an HTTP handler asks the application.
#[derive(Debug)]
pub enum AppRequest {
    /// Replicate a write; answered once applied.
    Write(KvOp, Reply<Written>),
    /// Read a key; linearizable (ReadIndex) unless `stale`.
    Read {
        /// The key.
        key: String,
        /// Serve from local state without confirming leadership.
        stale: bool,
        /// Where the answer goes.
        reply: Reply<Option<String>>,
    },
    /// Change the membership; answered once committed.
    Membership(MembershipChange, Reply<LogIndex>),
    /// Transfer leadership.
    Transfer(NodeId, Reply<()>),
    /// The node's state.
    Status(Reply<NodeStatus>),
    /// Committed log entries.
    Range(LogIndex, LogIndex, Reply<Vec<Entry<KvCommand>>>),
}

/// What a snapshot of the application holds: the map and the peer addresses learned from the
/// log (both are rebuilt from applied entries, so both must survive compaction).
#[derive(Debug, Serialize, Deserialize)]
struct AppSnapshot {
    state: KvState,
    peers: BTreeMap<NodeId, String>,
}

/// A linearizable read of a key, confirmed, waiting for its index to be applied.
type WaitingRead = (String, Reply<Option<String>>);

enum Waiter {
    /// The application's own snapshot request.
    Snapshot,
    Write(Reply<Written>),
    Read(String, Reply<Option<String>>),
    Membership(Reply<LogIndex>),
    Transfer(Reply<()>),
    Status(Reply<NodeStatus>),
    Range(Reply<Vec<Entry<KvCommand>>>),
}

/// The application's state.
pub struct App {
    me: NodeId,
    /// Distinguishes this process's tags from those of an earlier run of the same node, whose
    /// entries are re-applied after a restart.
    incarnation: u64,
    next_request: u64,
    state: KvState,
    applied: LogIndex,
    waiters: HashMap<u64, Waiter>,
    /// Linearizable reads whose read index this application has not applied yet.
    reads_waiting: BTreeMap<LogIndex, Vec<WaitingRead>>,
    book: PeerBook,
    driver: NodeClient<KvCommand>,
    /// The driver's answers, tagged with the request number they answer.
    answers: mpsc::UnboundedSender<(u64, Result<Response<KvCommand>, RequestError>)>,
    answered: mpsc::UnboundedReceiver<(u64, Result<Response<KvCommand>, RequestError>)>,
    /// Snapshot every this many applied entries (0: never).
    snapshot_every: u64,
    /// The index of the latest snapshot, taken or restored.
    snapshot_index: LogIndex,
    /// Whether a snapshot request is with the driver.
    snapshot_pending: bool,
    /// Command bytes applied since the last snapshot was requested.
    applied_bytes: u64,
    /// The encoded size of the latest snapshot (set by the task that encodes it).
    snapshot_bytes: Arc<AtomicU64>,
    /// Where the applied index is reported (the apply lag of `/metrics`).
    metrics: Option<NodeMetrics>,
}

impl App {
    /// An application for node `me`, sending to `driver`, snapshotting its state every
    /// `snapshot_every` applied entries (0: never) so that the log can be compacted.
    pub fn new(
        me: NodeId,
        book: PeerBook,
        driver: NodeClient<KvCommand>,
        snapshot_every: u64,
    ) -> App {
        let (answers, answered) = mpsc::unbounded_channel();
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        App {
            me,
            incarnation,
            next_request: 1,
            state: KvState::default(),
            applied: LogIndex(0),
            waiters: HashMap::new(),
            reads_waiting: BTreeMap::new(),
            book,
            driver,
            answers,
            answered,
            snapshot_every,
            snapshot_index: LogIndex(0),
            snapshot_pending: false,
            applied_bytes: 0,
            snapshot_bytes: Arc::new(AtomicU64::new(0)),
            metrics: None,
        }
    }

    /// Reports the applied index to `metrics` after every delivery.
    pub fn report_applied_to(mut self, metrics: NodeMetrics) -> App {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until the driver stops.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<AppRequest>,
        mut applied: mpsc::UnboundedReceiver<Applied<KvCommand>>,
        mut leadership: watch::Receiver<Leadership>,
    ) {
        loop {
            tokio::select! {
                delivered = applied.recv() => match delivered {
                    Some(delivered) => self.on_applied(delivered),
                    None => return,
                },
                Some((number, answer)) = self.answered.recv() => self.on_answer(number, answer),
                Some(request) = requests.recv() => self.on_request(request),
                Ok(()) = leadership.changed() => {
                    let Leadership { term, leader, role } = *leadership.borrow_and_update();
                    // Debug only: the driver logs every change at info, with these fields.
                    tracing::debug!(
                        node = self.me.0,
                        "{role:?} in term {}, leader {:?}",
                        term.0,
                        leader.map(|l| l.0)
                    );
                }
            }
        }
    }

    fn on_request(&mut self, request: AppRequest) {
        let number = self.next_request;
        self.next_request += 1;
        if number % 1024 == 0 {
            // Handlers that timed out dropped their receivers.
            self.waiters.retain(|_, waiter| !waiter.is_closed());
        }
        let (driver_request, waiter) = match request {
            AppRequest::Write(op, reply) => {
                let tag = Tag { node: self.me, incarnation: self.incarnation, request: number };
                (Request::Propose(vec![KvCommand { tag, op }]), Waiter::Write(reply))
            }
            AppRequest::Read { key, stale: true, reply } => {
                let _ = reply.send(Ok(self.state.get(&key).cloned()));
                return;
            }
            AppRequest::Read { key, stale: false, reply } => {
                (Request::LinearizableRead, Waiter::Read(key, reply))
            }
            AppRequest::Membership(change, reply) => {
                (Request::ChangeMembership(change), Waiter::Membership(reply))
            }
            AppRequest::Transfer(target, reply) => {
                (Request::TransferLeadership(target), Waiter::Transfer(reply))
            }
            AppRequest::Status(reply) => (Request::Status, Waiter::Status(reply)),
            AppRequest::Range(start, end, reply) => {
                let request = Request::ReadRange { start, end, commands_only: false };
                (request, Waiter::Range(reply))
            }
        };
        if self.call(number, driver_request) {
            self.waiters.insert(number, waiter);
        } else {
            waiter.fail(ApiError::Unavailable("node overloaded or stopped".into()));
        }
    }

    /// Hands `request` to the driver without waiting, its answer to come back tagged with
    /// `number`; false when the driver did not take it (so it took no effect).
    fn call(&mut self, number: u64, request: Request<KvCommand>) -> bool {
        let Ok(answer) = self.driver.try_call(request) else { return false };
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let answer = answer.await.map_err(|_| RequestError::Stopped);
            let _ = answers.send((number, answer));
        });
        true
    }

    fn on_applied(&mut self, delivered: Applied<KvCommand>) {
        match delivered {
            Applied::Entries(entries) => {
                for entry in entries {
                    self.apply(entry);
                }
                self.maybe_snapshot();
            }
            Applied::Restore(snapshot) => self.restore(&snapshot),
        }
        if let Some(metrics) = &self.metrics {
            metrics.set_application_applied(self.applied);
        }
        self.release_reads();
    }

    fn on_answer(&mut self, number: u64, answer: Result<Response<KvCommand>, RequestError>) {
        let Some(waiter) = self.waiters.remove(&number) else { return };
        match (waiter, answer.unwrap_or_else(Response::Failed)) {
            // The entry is on the applied stream, maybe not applied here yet: the write is
            // answered, with its outcome, when it is.
            (Waiter::Write(reply), Response::Committed(_)) => {
                self.waiters.insert(number, Waiter::Write(reply));
            }
            (waiter, response) => self.answer(waiter, response),
        }
    }

    /// Answers the linearizable reads whose read index is applied.
    fn release_reads(&mut self) {
        while let Some(entry) = self.reads_waiting.first_entry() {
            if *entry.key() > self.applied {
                return;
            }
            for (key, reply) in entry.remove() {
                let _ = reply.send(Ok(self.state.get(&key).cloned()));
            }
        }
    }

    /// Asks the driver to record a snapshot once `snapshot_every` entries were applied since
    /// the last, and at least as many command bytes as the last snapshot held (thesis §5.1.1):
    /// a snapshot then never writes more than the log it replaces, so a large map is
    /// snapshotted less often instead of being rewritten every few thousand writes.
    ///
    /// The state is copied here, where it is consistent with `applied` (an O(1) copy of the
    /// persistent map), and encoded on a blocking thread: neither this task (which answers
    /// reads and writes) nor the driver waits for it. The driver writes it in the background.
    fn maybe_snapshot(&mut self) {
        let due = self.applied.0 >= self.snapshot_index.0.saturating_add(self.snapshot_every)
            && self.applied_bytes >= self.snapshot_bytes.load(Ordering::Relaxed);
        if self.snapshot_every == 0 || self.snapshot_pending || !due {
            return;
        }
        self.applied_bytes = 0;
        let snapshot = AppSnapshot { state: self.state.clone(), peers: self.book.all() };
        let number = self.next_request;
        self.next_request += 1;
        self.snapshot_pending = true;
        self.waiters.insert(number, Waiter::Snapshot);
        let (index, driver, answers) = (self.applied, self.driver.clone(), self.answers.clone());
        let size = Arc::clone(&self.snapshot_bytes);
        tokio::spawn(async move {
            let encoded = tokio::task::spawn_blocking(move || postcard::to_stdvec(&snapshot)).await;
            let answer = match encoded {
                Ok(Ok(data)) => {
                    size.store(data.len() as u64, Ordering::Relaxed);
                    driver.call(Request::Snapshot { index, data }).await
                }
                // Not taken: the next apply tries again.
                _ => Err(RequestError::Stopped),
            };
            let _ = answers.send((number, answer));
        });
    }

    /// Replaces the state with a snapshot's (installed from the leader, or after a restart).
    fn restore(&mut self, snapshot: &Snapshot) {
        match postcard::from_bytes::<AppSnapshot>(&snapshot.data) {
            Ok(restored) => {
                self.state = restored.state;
                for (node, address) in restored.peers {
                    self.book.insert(node, address);
                }
            }
            // Every node of a cluster runs this code: undecodable data means a snapshot from
            // another build. Keep serving what we have, loudly.
            Err(error) => tracing::error!(
                node = self.me.0,
                index = snapshot.meta.index.0,
                "cannot decode the snapshot at {}: {error}",
                snapshot.meta.index.0
            ),
        }
        self.applied = snapshot.meta.index;
        self.snapshot_index = snapshot.meta.index;
        self.snapshot_bytes.store(snapshot.data.len() as u64, Ordering::Relaxed);
        self.applied_bytes = 0;
    }

    fn apply(&mut self, entry: Entry<KvCommand>) {
        self.applied = entry.index;
        let Payload::Command(command) = entry.payload else { return };
        self.applied_bytes += stepraft::Command::size_bytes(&command) as u64;
        let outcome = self.state.apply(&command.op);
        if let KvOp::SetPeerAddress { node, address } = &command.op {
            self.book.insert(*node, address.clone());
        }
        let tag = command.tag;
        if tag.node == self.me && tag.incarnation == self.incarnation {
            if let Some(Waiter::Write(reply)) = self.waiters.remove(&tag.request) {
                let _ = reply.send(Ok(Written { index: entry.index, outcome }));
            }
        }
    }

    fn answer(&mut self, waiter: Waiter, response: Response<KvCommand>) {
        match (waiter, response) {
            (Waiter::Snapshot, response) => {
                self.snapshot_pending = false;
                if let Response::SnapshotTaken { index } = response {
                    self.snapshot_index = self.snapshot_index.max(index);
                }
            }
            (waiter, Response::Failed(error)) => waiter.fail(error.into()),
            // The entries up to the read index are on their way on the applied stream; the
            // read is served once this application has applied them.
            (Waiter::Read(key, reply), Response::ReadReady { index }) => {
                self.reads_waiting.entry(index).or_default().push((key, reply));
                self.release_reads();
            }
            (Waiter::Membership(reply), Response::Committed(Committed { last, .. })) => {
                let _ = reply.send(Ok(last));
            }
            (Waiter::Transfer(reply), Response::TransferStarted) => {
                let _ = reply.send(Ok(()));
            }
            (Waiter::Status(reply), Response::Status(mut status)) => {
                status.applied = self.applied;
                let _ = reply.send(Ok(*status));
            }
            (Waiter::Range(reply), Response::Entries(entries)) => {
                let _ = reply.send(Ok(entries));
            }
            // Any other pairing cannot happen.
            (waiter, response) => {
                waiter.fail(ApiError::Unknown(format!("unexpected driver answer {response:?}")))
            }
        }
    }
}

impl Waiter {
    fn is_closed(&self) -> bool {
        match self {
            Waiter::Snapshot => false,
            Waiter::Write(reply) => reply.is_closed(),
            Waiter::Read(_, reply) => reply.is_closed(),
            Waiter::Membership(reply) => reply.is_closed(),
            Waiter::Transfer(reply) => reply.is_closed(),
            Waiter::Status(reply) => reply.is_closed(),
            Waiter::Range(reply) => reply.is_closed(),
        }
    }

    fn fail(self, error: ApiError) {
        let _ = match self {
            Waiter::Snapshot => false,
            Waiter::Write(reply) => reply.send(Err(error)).is_ok(),
            Waiter::Read(_, reply) => reply.send(Err(error)).is_ok(),
            Waiter::Membership(reply) => reply.send(Err(error)).is_ok(),
            Waiter::Transfer(reply) => reply.send(Err(error)).is_ok(),
            Waiter::Status(reply) => reply.send(Err(error)).is_ok(),
            Waiter::Range(reply) => reply.send(Err(error)).is_ok(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepraft_tokio::driver::Call;

    fn put() -> KvOp {
        KvOp::Put { key: "k".into(), value: "v".into() }
    }

    fn write(app: &mut App) -> oneshot::Receiver<Result<Written, ApiError>> {
        let (reply, answer) = oneshot::channel();
        app.on_request(AppRequest::Write(put(), reply));
        answer
    }

    fn app_with_queue(capacity: usize) -> (App, mpsc::Receiver<Call<KvCommand>>) {
        let (driver, queue) = NodeClient::channel(capacity);
        (App::new(NodeId(1), PeerBook::new([]), driver, 0), queue)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_the_driver_never_took_is_no_effect() {
        // The driver stopped.
        let (mut app, queue) = app_with_queue(1);
        drop(queue);
        let answer = write(&mut app).try_recv().expect("answered at once");
        assert!(matches!(answer, Err(ApiError::Unavailable(_))), "{answer:?}");
        // The driver's queue is full.
        let (mut app, _queue) = app_with_queue(1);
        let mut first = write(&mut app);
        let answer = write(&mut app).try_recv().expect("answered at once");
        assert!(matches!(answer, Err(ApiError::Unavailable(_))), "{answer:?}");
        assert!(first.try_recv().is_err(), "the first write is with the driver, unanswered");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn driver_refusals_keep_their_promise_through_the_application() {
        let (mut app, mut queue) = app_with_queue(16);
        let cases = [
            (Some(RequestError::CoveredBySnapshot { index: LogIndex(3) }), 504),
            (Some(RequestError::Lost { index: LogIndex(3) }), 503),
            // The driver stopped holding the write: its outcome is unknown.
            (None, 504),
        ];
        for (error, status) in cases {
            let mut answer = write(&mut app);
            let call = queue.recv().await.expect("the write reached the driver");
            match error {
                Some(error) => call.reply.send(Response::Failed(error)).expect("app listens"),
                None => drop(call),
            }
            let (number, driver_answer) = app.answered.recv().await.expect("an answer");
            app.on_answer(number, driver_answer);
            let error = answer.try_recv().expect("answered").expect_err("failed");
            let response = error.into_response(&PeerBook::new([]), "/kv/k");
            assert_eq!(response.status, status);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_linearizable_read_waits_until_its_read_index_is_applied() {
        let (mut app, mut queue) = app_with_queue(16);
        let (reply, mut answer) = oneshot::channel();
        app.on_request(AppRequest::Read { key: "k".into(), stale: false, reply });
        let call = queue.recv().await.expect("the read reached the driver");
        call.reply.send(Response::ReadReady { index: LogIndex(1) }).expect("app listens");
        let (number, driver_answer) = app.answered.recv().await.expect("an answer");
        app.on_answer(number, driver_answer);
        assert!(answer.try_recv().is_err(), "not answered before index 1 is applied");
        let tag = Tag { node: NodeId(2), incarnation: 0, request: 1 };
        let entry = Entry {
            term: stepraft::Term(1),
            index: LogIndex(1),
            payload: Payload::Command(KvCommand { tag, op: put() }),
        };
        app.on_applied(Applied::Entries(vec![entry]));
        assert_eq!(answer.try_recv().expect("answered").expect("read"), Some("v".into()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_committed_before_this_application_applied_it_is_answered_when_applied() {
        let (mut app, mut queue) = app_with_queue(16);
        let mut answer = write(&mut app);
        let call = queue.recv().await.expect("the write reached the driver");
        let Request::Propose(commands) = call.request else { panic!("a proposal") };
        let committed =
            Committed { first: LogIndex(1), last: LogIndex(1), term: stepraft::Term(1) };
        call.reply.send(Response::Committed(committed)).expect("app listens");
        let (number, driver_answer) = app.answered.recv().await.expect("an answer");
        app.on_answer(number, driver_answer);
        assert!(answer.try_recv().is_err(), "not answered before it is applied here");
        let command = commands.into_iter().next().expect("one command");
        let entry = Entry {
            term: stepraft::Term(1),
            index: LogIndex(1),
            payload: Payload::Command(command),
        };
        app.on_applied(Applied::Entries(vec![entry]));
        let written = answer.try_recv().expect("answered").expect("written");
        assert_eq!(written.index, LogIndex(1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_pending_when_the_application_stops_is_never_answered_no_effect() {
        let (mut app, _queue) = app_with_queue(16);
        let mut answer = write(&mut app);
        drop(app);
        // The handler sees its reply channel closed: `ask` answers that `504`.
        assert!(matches!(answer.try_recv(), Err(oneshot::error::TryRecvError::Closed)));
    }
}
