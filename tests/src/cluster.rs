//! The in-memory cluster: deliver, drop, isolate, heal, crash, restart, run until.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use stepraft::{
    Config, DurableState, Entry, Input, LogIndex, Message, Node, NodeId, Output, Proposal,
    ProposalId, ProposeError, Role, Term,
};

/// The command type the harness replicates.
pub type Command = u64;

/// A message in the simulated network.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Sender.
    pub from: NodeId,
    /// Destination.
    pub to: NodeId,
    /// Payload.
    pub message: Message<Command>,
}

/// A deterministic cluster of stepraft nodes with a controllable network.
pub struct Cluster {
    configs: BTreeMap<NodeId, Config>,
    /// `None` while a node is crashed.
    nodes: BTreeMap<NodeId, Option<Node<Command>>>,
    disks: BTreeMap<NodeId, DurableState<Command>>,
    /// Entries applied since the node last (re)started or restored a snapshot.
    applied: BTreeMap<NodeId, Vec<Entry<Command>>>,
    /// Each node's state machine: every command it applied, in order, including those it
    /// restored from a snapshot. Snapshots serialize exactly this.
    states: BTreeMap<NodeId, Vec<Command>>,
    network: VecDeque<Envelope>,
    /// Directed links that drop everything: `(from, to)`.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every leader seen, by term, for the election-safety check.
    leaders_by_term: BTreeMap<Term, NodeId>,
    next_proposal: u64,
    /// Outputs of the most recent step of each node, for tests that inspect them.
    last_outputs: BTreeMap<NodeId, Vec<Output<Command>>>,
    /// Every `ReadReady` / `ReadRejected` each node emitted, in order.
    read_outcomes: BTreeMap<NodeId, Vec<Output<Command>>>,
    /// The `(term, leader)` and role each node last announced, to check that every
    /// `LeaderChanged` and `RoleChanged` reports a real change and matches the node.
    announced: BTreeMap<NodeId, ((Term, Option<NodeId>), Role)>,
}

impl Cluster {
    /// `size` nodes with ids `1..=size` and the default configuration.
    pub fn new(size: u64) -> Cluster {
        Cluster::with_config(size, |_| {})
    }

    /// `size` nodes whose default configuration is adjusted by `adjust`.
    pub fn with_config(size: u64, adjust: impl Fn(&mut Config)) -> Cluster {
        let ids: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let mut cluster = Cluster {
            configs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            applied: BTreeMap::new(),
            states: BTreeMap::new(),
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            leaders_by_term: BTreeMap::new(),
            next_proposal: 1,
            last_outputs: BTreeMap::new(),
            read_outcomes: BTreeMap::new(),
            announced: BTreeMap::new(),
        };
        for &id in &ids {
            let mut config = Config::new(id, ids.iter().copied());
            adjust(&mut config);
            cluster.insert_node(config);
        }
        cluster
    }

    /// `size` nodes with ids `1..=size` that start knowing nobody (no voters, no learners);
    /// node `founder` is the founder. `adjust` applies to every configuration.
    pub fn from_nothing(size: u64, founder: NodeId, adjust: impl Fn(&mut Config)) -> Cluster {
        let mut cluster = Cluster::with_config(0, |_| {});
        for id in (1..=size).map(NodeId) {
            let mut config = Config::new(id, []);
            config.founder = id == founder;
            adjust(&mut config);
            cluster.insert_node(config);
        }
        cluster
    }

    /// Starts a node with `config` (a new id).
    pub fn insert_node(&mut self, config: Config) {
        let id = config.id;
        let node = Node::new(config.clone()).expect("test config is valid");
        self.configs.insert(id, config);
        self.nodes.insert(id, Some(node));
        self.disks.insert(id, DurableState::default());
        self.applied.insert(id, Vec::new());
        self.states.insert(id, Vec::new());
    }

    /// Adds node `id` started with no configuration: it stays passive until a leader's log
    /// tells it the membership. It is not a member until a change makes it one.
    pub fn add_passive_node(&mut self, id: NodeId) {
        let mut config = self.configs.values().next().expect("a node").clone();
        config.id = id;
        config.rng_seed = id.0;
        config.voters.clear();
        config.learners.clear();
        config.founder = false;
        self.insert_node(config);
    }

    /// Node `id` snapshots its state machine at its applied index and reports it; returns
    /// the node's answer (nothing when recorded, `SnapshotRejected` otherwise).
    pub fn take_snapshot(&mut self, id: NodeId) -> Vec<Output<Command>> {
        let index = self.node(id).applied_index();
        let data = encode_state(&self.states[&id]);
        self.step(id, Input::SnapshotTaken { index, data: data.into() })
    }

    /// Asks node `id` to change the membership; returns the index of the configuration entry.
    ///
    /// # Errors
    /// The node's [`ProposeError`].
    pub fn change_membership(
        &mut self,
        id: NodeId,
        change: stepraft::MembershipChange,
    ) -> Result<LogIndex, ProposeError> {
        let proposal = ProposalId(self.next_proposal);
        self.next_proposal += 1;
        let outputs = self.step(id, Input::ChangeMembership { id: proposal, change });
        for output in outputs {
            match output {
                Output::Accepted { proposal: p, first, .. } if p == proposal => return Ok(first),
                Output::Rejected { proposal: p, error } if p == proposal => return Err(error),
                _ => {}
            }
        }
        panic!("a membership change is always answered in the same step");
    }

    /// All node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The running node `id`.
    ///
    /// # Panics
    /// If the node is crashed.
    pub fn node(&self, id: NodeId) -> &Node<Command> {
        self.nodes[&id].as_ref().expect("node is running")
    }

    /// Whether node `id` is running.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.nodes[&id].is_some()
    }

    /// What node `id` has made durable.
    pub fn disk(&self, id: NodeId) -> &DurableState<Command> {
        &self.disks[&id]
    }

    /// Everything node `id` applied since it last (re)started.
    pub fn applied(&self, id: NodeId) -> &[Entry<Command>] {
        &self.applied[&id]
    }

    /// Node `id`'s state machine: the commands it applied (without no-ops), including those
    /// restored from a snapshot.
    pub fn applied_commands(&self, id: NodeId) -> Vec<Command> {
        self.states[&id].clone()
    }

    /// The outputs of node `id`'s most recent step.
    pub fn last_outputs(&self, id: NodeId) -> &[Output<Command>] {
        self.last_outputs.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every `ReadReady` / `ReadRejected` node `id` emitted so far, in order.
    pub fn read_outcomes(&self, id: NodeId) -> &[Output<Command>] {
        self.read_outcomes.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Asks node `id` for a linearizable read point with `read` as its id.
    pub fn read_index(&mut self, id: NodeId, read: u64) {
        self.step(id, Input::ReadIndex(stepraft::ReadId(read)));
    }

    /// Messages waiting in the network.
    pub fn in_flight(&self) -> &VecDeque<Envelope> {
        &self.network
    }

    /// Feeds `input` to node `id` (if running) and executes its outputs in order.
    pub fn step(&mut self, id: NodeId, input: Input<Command>) -> Vec<Output<Command>> {
        let Some(node) = self.nodes.get_mut(&id).and_then(Option::as_mut) else {
            return Vec::new();
        };
        let outputs = node.step_in_place(input);
        let now = ((node.term(), node.leader()), node.role());
        self.check_notices(id, &outputs, now);
        let acks = self.execute(id, &outputs);
        self.last_outputs.insert(id, outputs.clone());
        // Background writes complete at once here; report them as a runtime would.
        for (index, term) in acks {
            self.step(id, Input::Persisted { index, term });
        }
        outputs
    }

    /// Checks the step's leadership and role notices: each reports a change from the last one
    /// and the node's state after the step, and no change goes unreported.
    fn check_notices(
        &mut self,
        id: NodeId,
        outputs: &[Output<Command>],
        now: ((Term, Option<NodeId>), Role),
    ) {
        let announced = self.announced.entry(id).or_insert(((Term(0), None), Role::Follower));
        for output in outputs {
            match *output {
                Output::LeaderChanged { term, leader } => {
                    assert_ne!(announced.0, (term, leader), "{id}: a repeated LeaderChanged");
                    announced.0 = (term, leader);
                }
                Output::RoleChanged { role, .. } => {
                    assert_ne!(announced.1, role, "{id}: a repeated RoleChanged");
                    announced.1 = role;
                }
                _ => {}
            }
        }
        assert_eq!(*announced, now, "{id}: the notices must follow the node's state");
    }

    /// Executes outputs in order; returns the `(index, term)` of background writes to
    /// acknowledge.
    fn execute(&mut self, id: NodeId, outputs: &[Output<Command>]) -> Vec<(LogIndex, Term)> {
        let mut acks = Vec::new();
        for output in outputs {
            match output {
                Output::Persist(persist) => {
                    self.disks.get_mut(&id).expect("known node").apply(persist)
                }
                Output::PersistAsync(persist) => {
                    self.disks.get_mut(&id).expect("known node").apply(persist);
                    if let stepraft::Persist::Append(entries) = persist {
                        if let Some(last) = entries.last() {
                            acks.push((last.index, last.term));
                        }
                    }
                }
                Output::Send { to, message } => {
                    self.network.push_back(Envelope { from: id, to: *to, message: message.clone() })
                }
                Output::Apply(entries) => {
                    self.applied.get_mut(&id).expect("known node").extend(entries.iter().cloned());
                    let state = self.states.get_mut(&id).expect("known node");
                    state.extend(entries.iter().filter_map(|entry| entry.command().copied()));
                }
                Output::RestoreSnapshot(snapshot) => {
                    self.states.insert(id, decode_state(&snapshot.data));
                    self.applied.insert(id, Vec::new());
                }
                Output::ReadReady { .. } | Output::ReadRejected { .. } => {
                    self.read_outcomes.entry(id).or_default().push(output.clone())
                }
                Output::RoleChanged { term, role: Role::Leader } => {
                    if let Some(previous) = self.leaders_by_term.insert(*term, id) {
                        assert_eq!(previous, id, "election safety: two leaders in {term:?}");
                    }
                }
                _ => {}
            }
        }
        acks
    }

    /// One tick on node `id`.
    pub fn tick(&mut self, id: NodeId) -> Vec<Output<Command>> {
        self.step(id, Input::Tick)
    }

    /// One tick on every running node.
    pub fn tick_all(&mut self) {
        for id in self.ids() {
            self.tick(id);
        }
    }

    /// Makes node `id` start an election now.
    pub fn campaign(&mut self, id: NodeId) {
        self.step(id, Input::Campaign);
    }

    /// Proposes `command` on node `id`; returns the index it was appended at.
    ///
    /// # Errors
    /// The node's [`ProposeError`].
    pub fn propose(&mut self, id: NodeId, command: Command) -> Result<LogIndex, ProposeError> {
        self.propose_batch(id, vec![command]).map(|(first, _)| first)
    }

    /// Proposes several commands at once on node `id`; returns their first and last index.
    ///
    /// # Errors
    /// The node's [`ProposeError`].
    pub fn propose_batch(
        &mut self,
        id: NodeId,
        commands: Vec<Command>,
    ) -> Result<(LogIndex, LogIndex), ProposeError> {
        let proposal = ProposalId(self.next_proposal);
        self.next_proposal += 1;
        let outputs = self.step(id, Input::Propose(Proposal::batch(proposal, commands)));
        for output in outputs {
            match output {
                Output::Accepted { proposal: p, first, last, .. } if p == proposal => {
                    return Ok((first, last))
                }
                Output::Rejected { proposal: p, error } if p == proposal => return Err(error),
                _ => {}
            }
        }
        panic!("a proposal is always answered in the same step");
    }

    /// Delivers the oldest message in flight, unless its link is cut or its destination is
    /// down (then it is dropped). Returns `false` when the network is empty.
    pub fn deliver_one(&mut self) -> bool {
        let Some(envelope) = self.network.pop_front() else { return false };
        if !self.cut.contains(&(envelope.from, envelope.to)) {
            let input = Input::Receive { from: envelope.from, message: envelope.message };
            self.step(envelope.to, input);
        }
        true
    }

    /// Delivers messages until the network is empty (including those sent in reaction).
    ///
    /// # Panics
    /// If the cluster keeps talking after a million messages: a message storm is a bug.
    pub fn deliver_all(&mut self) {
        for _ in 0..1_000_000 {
            if !self.deliver_one() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Delivers requests until only responses (votes, append and heartbeat answers) remain in
    /// flight; those stay queued for the test to inspect, hold back or replay.
    pub fn deliver_all_but_responses(&mut self) {
        let is_response = |envelope: &Envelope| {
            matches!(
                envelope.message,
                Message::RequestVoteResponse(_)
                    | Message::AppendEntriesResponse(_)
                    | Message::HeartbeatResponse(_)
                    | Message::ReadIndexResponse(_)
                    | Message::InstallSnapshotResponse(_)
            )
        };
        let mut held = VecDeque::new();
        while let Some(envelope) = self.network.pop_front() {
            if is_response(&envelope) {
                held.push_back(envelope);
            } else if !self.cut.contains(&(envelope.from, envelope.to)) {
                let input = Input::Receive { from: envelope.from, message: envelope.message };
                self.step(envelope.to, input);
            }
        }
        self.network = held;
    }

    /// Drops every message in flight.
    pub fn drop_all(&mut self) {
        self.network.clear();
    }

    /// Removes and returns every message in flight, for a test to inspect or replay.
    pub fn take_in_flight(&mut self) -> Vec<Envelope> {
        self.network.drain(..).collect()
    }

    /// Puts a message into the network, as if sent.
    pub fn inject(&mut self, envelope: Envelope) {
        self.network.push_back(envelope);
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    /// Cuts the one-way link `from -> to`.
    pub fn cut_link(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes node `id`: its in-memory state is lost, its disk is kept.
    pub fn crash(&mut self, id: NodeId) {
        self.nodes.insert(id, None);
    }

    /// Restarts a crashed node from its disk; its applied record starts over.
    ///
    /// # Panics
    /// If the disk cannot be restored from, which would be a bug in the core.
    pub fn restart(&mut self, id: NodeId) {
        let node = Node::restore(self.configs[&id].clone(), self.disks[&id].clone())
            .expect("a disk written by the core restores");
        self.announced.insert(id, ((node.term(), None), Role::Follower));
        self.nodes.insert(id, Some(node));
        self.applied.insert(id, Vec::new());
        self.states.insert(id, Vec::new());
    }

    /// Ticks every node and delivers all messages, one round at a time, until `done` holds
    /// or `rounds_max` rounds have passed. Returns whether `done` held.
    pub fn run_until(&mut self, rounds_max: u32, done: impl Fn(&Cluster) -> bool) -> bool {
        for _ in 0..rounds_max {
            if done(self) {
                return true;
            }
            self.tick_all();
            self.deliver_all();
        }
        done(self)
    }

    /// Like [`Cluster::run_until`], with `meddle` called on the network before each round's
    /// deliveries (to drop, duplicate or reorder messages).
    pub fn run_until_with(
        &mut self,
        rounds_max: u32,
        mut meddle: impl FnMut(&mut Cluster),
        done: impl Fn(&Cluster) -> bool,
    ) -> bool {
        for _ in 0..rounds_max {
            if done(self) {
                return true;
            }
            self.tick_all();
            meddle(self);
            self.deliver_all();
        }
        done(self)
    }

    /// The leader of the highest term among running nodes, if there is one.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .flatten()
            .filter(|node| node.role() == Role::Leader)
            .max_by_key(|node| node.term())
            .map(|node| node.id())
    }

    /// Runs until some node leads and all running nodes agree on it; returns it.
    ///
    /// # Panics
    /// If no stable leader emerges within `rounds_max` rounds.
    pub fn elect(&mut self, rounds_max: u32) -> NodeId {
        let agreed = self.run_until(rounds_max, |cluster| {
            let Some(leader) = cluster.leader() else { return false };
            cluster
                .nodes
                .values()
                .flatten()
                .filter(|node| !cluster.cut.iter().any(|&(from, _)| from == node.id()))
                .all(|node| node.leader() == Some(leader))
        });
        assert!(agreed, "no stable leader within {rounds_max} rounds");
        self.leader().expect("checked above")
    }

    /// Checks the safety properties that can be read off the current state: logs that share an
    /// (index, term) share the prefix (Log Matching), applied sequences are prefixes of each
    /// other (State Machine Safety), and committed prefixes agree.
    ///
    /// # Panics
    /// On the first violation.
    pub fn assert_safety(&self) {
        let running: Vec<&Node<Command>> = self.nodes.values().flatten().collect();
        for (i, a) in running.iter().enumerate() {
            for b in &running[i + 1..] {
                assert_logs_match(a, b);
            }
        }
        let states: Vec<&Vec<Command>> = self.states.values().collect();
        for (i, a) in states.iter().enumerate() {
            for b in &states[i + 1..] {
                let common = a.len().min(b.len());
                assert_eq!(a[..common], b[..common], "state machine safety");
            }
        }
    }
}

/// A snapshot of the harness's state machine: its commands, little-endian.
fn encode_state(state: &[Command]) -> Vec<u8> {
    state.iter().flat_map(|command| command.to_le_bytes()).collect()
}

fn decode_state(data: &[u8]) -> Vec<Command> {
    data.chunks_exact(8)
        .map(|bytes| Command::from_le_bytes(bytes.try_into().expect("8 bytes")))
        .collect()
}

fn assert_logs_match(a: &Node<Command>, b: &Node<Command>) {
    // Compare the indexes both logs still hold (snapshots compact different prefixes).
    let first = a.first_index().max(b.first_index());
    let last = a.last_index().min(b.last_index());
    if first > last {
        return;
    }
    let held = |node: &Node<Command>| {
        let offset = (first.0 - node.first_index().0) as usize;
        node.log_entries()[offset..offset + (last.0 - first.0 + 1) as usize].to_vec()
    };
    let (log_a, log_b) = (held(a), held(b));
    // Log Matching: find the last index where both have the same term; everything before
    // must be identical.
    if let Some(last_same) = (0..log_a.len()).rev().find(|&i| log_a[i].term == log_b[i].term) {
        assert_eq!(
            log_a[..=last_same],
            log_b[..=last_same],
            "log matching between {} and {}",
            a.id(),
            b.id()
        );
    }
    let committed = a.commit_index().min(b.commit_index());
    let committed = committed.0.saturating_sub(first.0 - 1).min(log_a.len() as u64) as usize;
    assert_eq!(log_a[..committed], log_b[..committed], "committed prefixes differ");
}
