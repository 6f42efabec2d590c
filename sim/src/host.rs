//! One simulated machine: a stepraft node, its disk, and what survives a crash.

use std::collections::BTreeMap;

use stepraft::{Config, DurableState, Input, LogIndex, Node, NodeId, RestoreError, Term};

use crate::workload::SimCommand;

/// A node, its simulated disk, and the host-level state around it.
#[derive(Debug)]
pub struct Host {
    /// The node's id.
    pub id: NodeId,
    /// The configuration it (re)starts with.
    pub config: Config,
    /// The running node; `None` while crashed.
    pub node: Option<Node<SimCommand>>,
    /// What the node was told to persist, and nothing else: all a restart gets back.
    pub disk: DurableState<SimCommand>,
    /// A paused node does not step; inputs wait in `backlog`.
    pub paused: bool,
    /// Inputs that arrived while paused, in arrival order.
    pub backlog: Vec<Input<SimCommand>>,
    /// Simulated microseconds between two ticks of this node's clock (drift included).
    pub tick_period_us: u64,
    /// The next step crashes the node part-way through its outputs.
    pub crash_armed: bool,
    /// Proposals this node accepted, by first index, awaiting their apply.
    pub pending: BTreeMap<LogIndex, (SimCommand, Term)>,
    /// The commit index last reported to the checker in this lifetime.
    pub reported_commit: LogIndex,
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
            paused: false,
            backlog: Vec::new(),
            tick_period_us,
            crash_armed: false,
            pending: BTreeMap::new(),
            reported_commit: LogIndex(0),
        }
    }

    /// Whether the node is running (not crashed).
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// Crashes the node: memory, pending work and backlog are lost; the disk stays.
    pub fn crash(&mut self) {
        self.node = None;
        self.paused = false;
        self.backlog.clear();
        self.pending.clear();
        self.crash_armed = false;
        self.reported_commit = LogIndex(0);
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
