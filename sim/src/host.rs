//! One simulated machine: a stepraft node, its disk, its state machine, and what survives a
//! crash.

use std::collections::BTreeMap;

use stepraft::{
    Config, DurableState, Input, LogIndex, Node, NodeId, ReadId, RestoreError, Role, Term,
};

use crate::history::KvOp;
use crate::kv::{KvCommand, KvStore};
use crate::workload::RequestId;

/// A ReadIndex read the host is serving for a client.
#[derive(Clone, Debug)]
pub struct HostRead {
    /// The client request.
    pub id: RequestId,
    /// The read.
    pub op: KvOp,
    /// The read index, once the node released it.
    pub ready_at: Option<LogIndex>,
}

/// A node, its simulated disk, and the host-level state around it.
#[derive(Debug)]
pub struct Host {
    /// The node's id.
    pub id: NodeId,
    /// The configuration it (re)starts with.
    pub config: Config,
    /// The running node; `None` while crashed.
    pub node: Option<Node<KvCommand>>,
    /// What the node was told to persist, and nothing else: all a restart gets back.
    pub disk: DurableState<KvCommand>,
    /// The key-value state machine, rebuilt from the log after a restart.
    pub store: KvStore,
    /// The last index applied to `store`.
    pub applied: LogIndex,
    /// A paused node does not step; inputs wait in `backlog`.
    pub paused: bool,
    /// When the current pause began.
    pub paused_at_us: u64,
    /// Inputs that arrived while paused, in arrival order.
    pub backlog: Vec<Input<KvCommand>>,
    /// Simulated microseconds between two ticks of this node's clock (drift included).
    pub tick_period_us: u64,
    /// The next step crashes the node part-way through its outputs.
    pub crash_armed: bool,
    /// How long the node stays down after that armed crash.
    pub crash_down_us: u64,
    /// Proposals this node accepted, by first index, awaiting their apply.
    pub pending: BTreeMap<LogIndex, (RequestId, Term)>,
    /// Reads in progress on this node.
    pub reads: BTreeMap<ReadId, HostRead>,
    /// The commit index last reported to the checker in this lifetime.
    pub reported_commit: LogIndex,
    /// Background writes not yet on disk, in order, by sequence number.
    pub background_writes: std::collections::VecDeque<(u64, stepraft::Persist<KvCommand>)>,
    /// The sequence number of the last background write.
    pub write_sequence: u64,
    /// Counts restarts, so that a disk completion from a previous life is ignored.
    pub incarnation: u64,
    /// The `(role, term, leader)` last written to the trace, so that a step reporting both a
    /// role and a leadership change traces one event.
    pub traced_role: Option<(Role, Term, Option<NodeId>)>,
}

impl Host {
    /// A fresh host running a new node.
    pub fn new(config: Config, tick_period_us: u64) -> Host {
        let node = Node::new(config.clone()).expect("simulator configs are valid");
        Host {
            id: config.id,
            config,
            node: Some(node),
            disk: DurableState::default(),
            store: KvStore::default(),
            applied: LogIndex(0),
            paused: false,
            paused_at_us: 0,
            backlog: Vec::new(),
            tick_period_us,
            crash_armed: false,
            crash_down_us: 0,
            pending: BTreeMap::new(),
            reads: BTreeMap::new(),
            reported_commit: LogIndex(0),
            background_writes: std::collections::VecDeque::new(),
            write_sequence: 0,
            incarnation: 0,
            traced_role: None,
        }
    }

    /// Whether the node is running (not crashed).
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// Crashes the node: memory, state machine, pending work and backlog are lost; the disk
    /// stays.
    pub fn crash(&mut self) {
        self.node = None;
        self.store = KvStore::default();
        self.applied = LogIndex(0);
        self.paused = false;
        self.backlog.clear();
        self.pending.clear();
        self.reads.clear();
        self.crash_armed = false;
        self.reported_commit = LogIndex(0);
        // Writes still in the disk queue are lost with the process.
        self.background_writes.clear();
        self.incarnation += 1;
        self.traced_role = None;
    }

    /// Restarts a crashed node from its disk.
    ///
    /// # Errors
    /// When the core refuses the disk it wrote itself — a bug the caller reports.
    pub fn restart(&mut self) -> Result<(), RestoreError> {
        let node = Node::restore(self.config.clone(), self.disk.clone())?;
        self.node = Some(node);
        Ok(())
    }
}
