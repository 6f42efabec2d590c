//! The simulated world: one seed, an event queue in simulated time, the nodes, the network,
//! the clients, the fault scheduler and the checkers.

use std::panic::{self, AssertUnwindSafe};

use serde::Serialize;
use stepraft::{Config, Entry, LogIndex, Message, NodeId, Output, Role, Term};

use crate::checker::{Property, SafetyChecker, Violation};
use crate::history::Operation;
use crate::host::Host;
use crate::kv::KvCommand;
use crate::linearizability::{check_history, CheckLimits, Verdict};
use crate::network::Network;
use crate::profile::{FaultProfile, ProfileOverrides};
use crate::queue::EventQueue;
use crate::rng::{stream_seed, SimRng, Stream};
use crate::schedule::{Schedule, ScheduledEvent};
use crate::trace::{TraceEvent, Tracer};
use crate::whitebox::{check_log_order, Placed};
use crate::workload::{Client, ClientTiming, Reply, RequestId};

/// Everything that defines one simulation run besides the seed's own draws.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed: it determines the fault profile, the schedule and the workload.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Keys the clients operate on (few keys: more contention, sharper checks).
    pub keys: u64,
    /// Length of the safety phase (faults on), in simulated microseconds.
    pub duration_us: u64,
    /// After faults stop, the cluster must recover within this many simulated microseconds.
    pub liveness_bound_us: u64,
    /// Nominal real length of one tick.
    pub tick_us: u64,
    /// The nodes' `election_ticks`.
    pub election_ticks: u32,
    /// The nodes' `heartbeat_ticks`.
    pub heartbeat_ticks: u32,
    /// Fault profile overrides.
    pub overrides: ProfileOverrides,
    /// Keep every event for a JSONL trace.
    pub keep_trace: bool,
    /// The nodes' `pre_vote`.
    pub pre_vote: bool,
    /// The nodes' `check_quorum`.
    pub check_quorum: bool,
    /// Overrides the seed's snapshot schedule: every this many applied entries (0: never).
    pub snapshot_every: Option<u64>,
    /// Run exactly these events instead of drawing faults and workload from the seed.
    pub schedule: Option<std::sync::Arc<Schedule>>,
    /// A bug planted in the simulated hosts, to show the checkers and the shrinker at work.
    pub plant: Option<PlantedBug>,
    /// The discovery workload: nodes start knowing nobody, one of them the founder, and learn
    /// of each other from announcements delivered in random order, late, lost and repeated
    /// (see [`crate::discovery`]). Replaces the membership-change workload.
    pub discovery: bool,
}

/// Bugs the simulator can plant in its hosts (never in the core), for tests and demos of the
/// checkers and of shrinking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// A crash loses the last log entry the host had made durable (a disk that acknowledged a
    /// write it had not synced): the node restarts with a hard state that promises more than
    /// its log holds, or without an entry it had acknowledged.
    LoseLastEntryOnCrash,
    /// The network silently loses every InstallSnapshot chunk that carries data, as a
    /// datagram transport does with messages larger than a datagram: a follower that needs a
    /// snapshot never catches up.
    DropSnapshotChunks,
    /// Under the discovery workload, every node is a founder: each bootstraps with whatever
    /// nodes it knows once it knows `min_voters` of them, so different nodes write different
    /// first configurations.
    EveryNodeFounds,
}

impl SimConfig {
    /// The defaults for `seed`: 5 nodes, 5 clients, 10 simulated seconds of faults, 10 seconds
    /// to recover, 10 ms ticks, elections after 10–19 ticks, heartbeats every 2.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 5,
            clients: 5,
            keys: 5,
            duration_us: 10_000_000,
            liveness_bound_us: 10_000_000,
            tick_us: 10_000,
            election_ticks: 10,
            heartbeat_ticks: 2,
            overrides: ProfileOverrides::default(),
            keep_trace: false,
            pre_vote: true,
            check_quorum: true,
            snapshot_every: None,
            schedule: None,
            plant: None,
            discovery: false,
        }
    }
}

/// Replication limits drawn per seed, so that small batches and tight flow-control windows
/// (which split a leader's catch-up into many messages and expose commit-rule bugs such as
/// Figure 8's) are explored as well as the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicationLimits {
    /// `Config::entries_per_message_max`.
    pub entries_per_message_max: usize,
    /// `Config::in_flight_messages_max`.
    pub in_flight_messages_max: usize,
    /// `Config::bytes_per_message_max`.
    pub bytes_per_message_max: usize,
    /// `Config::lease_reads` (half the seeds serve reads under a leader lease).
    pub lease_reads: bool,
    /// `Config::leader_persist_acks` (half the seeds use parallel leader writes).
    pub leader_persist_acks: bool,
    /// Each node snapshots its state machine every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// `Config::compaction_tail_entries`.
    pub compaction_tail_entries: u64,
    /// `Config::snapshot_chunk_bytes`.
    pub snapshot_chunk_bytes: usize,
}

impl ReplicationLimits {
    /// The limits of `seed`, from their own random stream.
    pub fn draw(seed: u64) -> ReplicationLimits {
        let mut rng = SimRng::new(seed, Stream::Tuning);
        ReplicationLimits {
            entries_per_message_max: *rng.pick(&[1, 2, 3, 16, 1024]).expect("non-empty"),
            in_flight_messages_max: *rng.pick(&[1, 2, 8, 256]).expect("non-empty"),
            bytes_per_message_max: *rng.pick(&[20, 100, 1 << 20]).expect("non-empty"),
            lease_reads: rng.chance(0.5),
            leader_persist_acks: rng.chance(0.5),
            // Compaction is on for four seeds in five, from very frequent (every 8 entries,
            // so lagging and restarted nodes need snapshots all the time) to occasional.
            snapshot_every: *rng.pick(&[0, 8, 32, 128, 512]).expect("non-empty"),
            compaction_tail_entries: *rng.pick(&[0, 4, 64]).expect("non-empty"),
            snapshot_chunk_bytes: *rng.pick(&[64, 512, 1 << 16]).expect("non-empty"),
        }
    }

    fn apply(&self, config: &mut Config, clock_drift: f64) {
        config.entries_per_message_max = self.entries_per_message_max;
        config.in_flight_messages_max = self.in_flight_messages_max;
        config.bytes_per_message_max = self.bytes_per_message_max;
        config.lease_reads = self.lease_reads && config.check_quorum;
        config.lease_margin_ticks = lease_margin_ticks(config.election_ticks, clock_drift);
        config.leader_persist_acks = self.leader_persist_acks;
        config.compaction_tail_entries = self.compaction_tail_entries;
        config.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
    }
}

/// The lease margin that honours the clock assumption under `clock_drift`: a follower whose
/// ticks are `1 - drift` long stays sticky for `election_ticks · (1 - drift) / (1 + drift)` of a
/// leader whose ticks are `1 + drift` long; one more tick covers tick granularity.
pub fn lease_margin_ticks(election_ticks: u32, clock_drift: f64) -> u32 {
    let sticky = f64::from(election_ticks) * (1.0 - clock_drift) / (1.0 + clock_drift);
    let lease = (sticky.floor() as u32).saturating_sub(1).max(1);
    election_ticks.saturating_sub(lease).clamp(1, election_ticks - 1)
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end, in microseconds.
    pub sim_time_us: u64,
    /// Messages the nodes sent.
    pub messages_sent: u64,
    /// Messages lost (loss, partitions, down nodes).
    pub messages_dropped: u64,
    /// Messages delivered twice.
    pub messages_duplicated: u64,
    /// Elections started (all nodes).
    pub elections: u64,
    /// Highest term reached.
    pub max_term: u64,
    /// Times a node became leader.
    pub leader_changes: u64,
    /// Entries committed cluster-wide.
    pub committed_entries: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Node pauses.
    pub pauses: u64,
    /// Client requests acknowledged.
    pub client_ok: u64,
    /// Client requests given up on (outcome unknown).
    pub client_unknown: u64,
    /// Time from the end of faults until the cluster recovered, when it did.
    pub recovery_us: Option<u64>,
    /// Time from the end of faults until every member's log reached the leader's commit,
    /// when it did.
    pub catch_up_us: Option<u64>,
    /// Reads acknowledged to clients.
    pub reads_ok: u64,
    /// Writes acknowledged to clients.
    pub writes_ok: u64,
    /// The black-box linearizability verdict: `linearizable`, `violation`, `gave-up`, or
    /// `not-checked` (the run failed before).
    pub linearizability: &'static str,
    /// Wall-clock microseconds both oracles took (not part of the deterministic trace).
    pub checker_us: u64,
    /// Leaders that lost leadership while healthy: no partition touched them and they were
    /// not transferring leadership (crashed and paused leaders cannot step down).
    pub leader_disruptions: u64,
    /// Leadership transfers requested by the workload.
    pub transfers: u64,
    /// Reads a leader served under its lease, without a heartbeat round.
    pub lease_reads: u64,
    /// Membership changes the leader accepted.
    pub membership_accepted: u64,
    /// Membership changes committed (applied cluster-wide).
    pub membership_committed: u64,
    /// Membership changes refused.
    pub membership_rejected: u64,
    /// Snapshots the nodes took and recorded.
    pub snapshots_taken: u64,
    /// Snapshot transfers leaders started.
    pub snapshots_sent: u64,
    /// Snapshots followers installed from a leader.
    pub snapshots_installed: u64,
    /// Snapshot bytes sent in InstallSnapshot chunks.
    pub snapshot_chunk_bytes: u64,
    /// The most log entries any node held in memory at once (bounded under compaction).
    pub max_log_entries: u64,
    /// Announcements the discovery workload delivered to a running node.
    pub announcements: u64,
    /// Announcements it lost (faults, or a node that was down).
    pub announcements_lost: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            events: 0,
            sim_time_us: 0,
            messages_sent: 0,
            messages_dropped: 0,
            messages_duplicated: 0,
            elections: 0,
            max_term: 0,
            leader_changes: 0,
            committed_entries: 0,
            crashes: 0,
            partitions: 0,
            pauses: 0,
            client_ok: 0,
            client_unknown: 0,
            recovery_us: None,
            catch_up_us: None,
            reads_ok: 0,
            writes_ok: 0,
            linearizability: "not-checked",
            checker_us: 0,
            leader_disruptions: 0,
            transfers: 0,
            lease_reads: 0,
            membership_accepted: 0,
            membership_committed: 0,
            membership_rejected: 0,
            snapshots_taken: 0,
            snapshots_sent: 0,
            snapshots_installed: 0,
            snapshot_chunk_bytes: 0,
            max_log_entries: 0,
            announcements: 0,
            announcements_lost: 0,
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every property held and the cluster recovered.
    Passed,
    /// A checker fired.
    Violated(Violation),
    /// The core panicked (an internal invariant failed).
    Panicked(String),
}

/// The result of one seed.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// The fault profile it drew.
    pub profile: FaultProfile,
    /// How it ended.
    pub outcome: Outcome,
    /// Counters.
    pub stats: Stats,
    /// The last events before the end, formatted.
    pub recent: Vec<String>,
    /// The full JSONL trace, when kept.
    pub trace: Option<String>,
    /// For each time the leader was crashed, paused or cut off from a majority: how long,
    /// in simulated microseconds, until a leader of a later term was elected.
    pub time_to_new_leader_us: Vec<u64>,
    /// What happened, as a schedule: running it reproduces this run.
    pub schedule: Schedule,
    /// Each acknowledged write, from invocation to acknowledgement, in simulated microseconds.
    pub write_latencies_us: Vec<u64>,
}

/// Something that happens at a simulated instant.
#[derive(Debug)]
pub(crate) enum Event {
    Tick(NodeId),
    Deliver {
        from: NodeId,
        to: NodeId,
        message: Message<KvCommand>,
        sent_us: u64,
    },
    ClientSend {
        id: RequestId,
        to: NodeId,
    },
    ClientReply {
        id: RequestId,
        reply: Reply,
    },
    ClientWake {
        client: u64,
    },
    ClientTimeout {
        id: RequestId,
        attempt: u32,
    },
    FaultDecision,
    Restart(NodeId),
    Resume(NodeId),
    Heal,
    StartLiveness,
    /// The schedule's event at this position.
    Scripted(usize),
    DiskDone {
        node: NodeId,
        incarnation: u64,
        sequence: u64,
    },
    PersistedAck {
        node: NodeId,
        incarnation: u64,
        index: LogIndex,
        term: Term,
    },
    /// The discovery workload tells `to` about `about`.
    Announce {
        to: NodeId,
        about: NodeId,
        gossip: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Safety,
    Liveness { since_us: u64 },
    Done,
}

/// The whole simulated world of one seed.
pub(crate) struct Simulation {
    pub(crate) config: SimConfig,
    pub(crate) profile: FaultProfile,
    pub(crate) now_us: u64,
    queue: EventQueue<Event>,
    pub(crate) ids: Vec<NodeId>,
    /// Indexed by `id - 1`.
    pub(crate) hosts: Vec<Host>,
    pub(crate) network: Network,
    /// Fault and workload decisions (recorded; unused when running a schedule).
    pub(crate) fault_rng: SimRng,
    /// Mechanics that are not decisions: clock skews, tick phases, disk latencies, where a
    /// mid-step crash strikes.
    pub(crate) mechanics_rng: SimRng,
    /// Client operations and think times (recorded; unused when running a schedule).
    pub(crate) client_rng: SimRng,
    /// Which node a client retries at.
    pub(crate) routing_rng: SimRng,
    /// The schedule being run, if any.
    pub(crate) script: Option<std::sync::Arc<Schedule>>,
    /// Every decision taken so far, as schedule events.
    pub(crate) recorded: Vec<ScheduledEvent>,
    pub(crate) clients: Vec<Client>,
    pub(crate) timing: ClientTiming,
    pub(crate) checker: SafetyChecker,
    pub(crate) tracer: Tracer,
    pub(crate) stats: Stats,
    phase: Phase,
    /// The highest index of a write acknowledged to a client.
    pub(crate) acknowledged_max: u64,
    /// Every client operation, invocation to completion.
    pub(crate) history: Vec<Operation>,
    /// Where each acknowledged operation sits in the log order (for the white-box oracle).
    pub(crate) placed: Vec<Placed>,
    /// The cluster's applied log: entry i-1 is what every node applies at index i.
    pub(crate) applied_log: Vec<Entry<KvCommand>>,
    /// When the leader of `Term` was lost to a fault, awaiting a successor.
    pub(crate) leader_lost: Option<(u64, Term)>,
    /// Measured leader replacement times.
    pub(crate) time_to_new_leader_us: Vec<u64>,
    /// Membership changes requested so far (numbers their proposal ids).
    pub(crate) membership_requests: u64,
    /// Nodes snapshot every this many applied entries (0: never).
    pub(crate) snapshot_every: u64,
    /// Emptied output vectors for `Node::step_into`, so that a step allocates none. A pool,
    /// not one buffer: executing one step's outputs may step a node again.
    pub(crate) output_buffers: Vec<Vec<Output<KvCommand>>>,
    /// The discovery workload, when on.
    pub(crate) discovery: Option<crate::discovery::Discovery>,
}

/// Runs one seed to completion.
///
/// A passing run records no trace unless `keep_trace` asks for one: nobody reads it, and
/// building it cost about 4% of a campaign. A failing run is run again with a tracer for the
/// report's last events; the simulator is deterministic, so the second run is the same run
/// (and if it ended otherwise, that is reported as a failure of determinism).
pub fn run(config: &SimConfig) -> RunResult {
    let first = run_traced(config, config.keep_trace);
    if config.keep_trace || first.outcome == Outcome::Passed {
        return first;
    }
    let mut again = run_traced(config, true);
    if again.outcome != first.outcome {
        again.outcome = Outcome::Panicked(format!(
            "nondeterminism: seed {} ended {:?}, then {:?} when run again",
            config.seed, first.outcome, again.outcome
        ));
    }
    again
}

/// How `config`'s run ends, without the report's trace: for callers that only need the
/// outcome of many runs (the shrinker).
pub(crate) fn run_outcome(config: &SimConfig) -> Outcome {
    run_traced(config, false).outcome
}

fn run_traced(config: &SimConfig, traced: bool) -> RunResult {
    let tracer = if traced { Tracer::new(config.keep_trace) } else { Tracer::disabled() };
    let mut simulation = Simulation::new(config.clone(), tracer);
    let result = panic::catch_unwind(AssertUnwindSafe(|| simulation.run_events()));
    let result = match result {
        Ok(Ok(())) => Ok(simulation.check_history()),
        other => other,
    };
    let outcome = match result {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(violation)) => {
            let event = TraceEvent::Violation {
                property: violation.property.to_string(),
                detail: violation.detail.clone(),
            };
            simulation.tracer.record(simulation.now_us, event);
            Outcome::Violated(violation)
        }
        Err(payload) => Outcome::Panicked(panic_message(payload.as_ref())),
    };
    simulation.stats.sim_time_us = simulation.now_us;
    simulation.stats.committed_entries = simulation.checker.committed_len();
    RunResult {
        seed: config.seed,
        profile: simulation.profile.clone(),
        outcome,
        stats: simulation.stats,
        recent: simulation.tracer.recent().map(ToString::to_string).collect(),
        trace: config.keep_trace.then(|| simulation.tracer.to_jsonl()),
        schedule: simulation.recorded_schedule(),
        time_to_new_leader_us: simulation.time_to_new_leader_us,
        write_latencies_us: crate::report::write_latencies_us(&simulation.history),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

impl Simulation {
    fn new(config: SimConfig, tracer: Tracer) -> Simulation {
        let drawn = FaultProfile::draw(config.seed).with_overrides(&config.overrides);
        let profile = match &config.schedule {
            Some(schedule) => drawn.scripted(schedule),
            None => drawn,
        };
        let voters: Vec<NodeId> = (1..=config.nodes).map(NodeId).collect();
        // Seeds with membership changes get two spare nodes that start empty (passive). Under
        // discovery every node starts empty, and the leader changes membership by itself.
        let has_spares = match &config.schedule {
            Some(schedule) => schedule.spares,
            None => profile.membership_rate > 0.0 && !config.discovery,
        };
        let spares = if has_spares { 2 } else { 0 };
        let ids: Vec<NodeId> = (1..=config.nodes + spares).map(NodeId).collect();
        let mut mechanics_rng = SimRng::new(config.seed, Stream::Mechanics);
        let limits = ReplicationLimits::draw(config.seed);
        let hosts = ids
            .iter()
            .map(|&id| {
                let initial = if id.0 <= config.nodes && !config.discovery {
                    voters.clone()
                } else {
                    Vec::new()
                };
                let mut node_config = Config::new(id, initial);
                if config.discovery {
                    crate::discovery::configure(&config, &mut node_config);
                }
                node_config.election_ticks = config.election_ticks;
                node_config.heartbeat_ticks = config.heartbeat_ticks;
                node_config.rng_seed = stream_seed(config.seed, Stream::Node(id.0));
                node_config.pre_vote = config.pre_vote;
                node_config.check_quorum = config.check_quorum;
                limits.apply(&mut node_config, profile.clock_drift);
                // Clock drift: this node's tick lasts up to ±clock_drift of nominal.
                let skew = (mechanics_rng.unit() * 2.0 - 1.0) * profile.clock_drift;
                let period = (config.tick_us as f64 * (1.0 + skew)).max(1.0) as u64;
                Host::new(node_config, period)
            })
            .collect();
        let mut client_rng = SimRng::new(config.seed, Stream::Clients);
        let clients = (0..config.clients)
            .map(|client| Client::new(client, *client_rng.pick(&ids).expect("nodes exist")))
            .collect();
        let timing = ClientTiming {
            think_max_us: 50_000,
            timeout_us: 500_000,
            attempts_max: 20,
            retry_backoff_us: 50_000,
        };
        Simulation {
            network: Network::new(config.seed, &ids, &profile),
            tracer,
            profile,
            now_us: 0,
            queue: EventQueue::default(),
            ids,
            hosts,
            fault_rng: SimRng::new(config.seed, Stream::Faults),
            mechanics_rng,
            client_rng,
            routing_rng: SimRng::new(config.seed, Stream::Routing),
            script: config.schedule.clone(),
            recorded: Vec::new(),
            clients,
            timing,
            checker: SafetyChecker::new(),
            stats: Stats::default(),
            phase: Phase::Safety,
            acknowledged_max: 0,
            history: Vec::new(),
            placed: Vec::new(),
            applied_log: Vec::new(),
            leader_lost: None,
            time_to_new_leader_us: Vec::new(),
            membership_requests: 0,
            snapshot_every: config.snapshot_every.unwrap_or(limits.snapshot_every),
            output_buffers: Vec::new(),
            discovery: config.discovery.then(|| crate::discovery::Discovery::new(&config)),
            config,
        }
    }

    pub(crate) fn schedule(&mut self, delay_us: u64, event: Event) {
        self.queue.push(self.now_us.saturating_add(delay_us), event);
    }

    pub(crate) fn host(&mut self, id: NodeId) -> &mut Host {
        &mut self.hosts[(id.0 - 1) as usize]
    }

    pub(crate) fn trace(&mut self, event: TraceEvent) {
        self.tracer.record(self.now_us, event);
    }

    pub(crate) fn in_safety_phase(&self) -> bool {
        self.phase == Phase::Safety
    }

    fn run_events(&mut self) -> Result<(), Violation> {
        for index in 0..self.ids.len() {
            let (id, period) = (self.ids[index], self.hosts[index].tick_period_us);
            let offset = self.mechanics_rng.below(period);
            self.schedule(offset, Event::Tick(id));
        }
        match self.script.clone() {
            Some(script) => {
                for (position, event) in script.events.iter().enumerate() {
                    self.schedule(event.at_us, Event::Scripted(position));
                }
            }
            None => {
                self.record_conditions();
                for client in 0..self.config.clients {
                    let delay = self.client_rng.below(self.timing.think_max_us);
                    self.schedule(delay, Event::ClientWake { client });
                }
                self.schedule(100_000, Event::FaultDecision);
            }
        }
        self.start_discovery();
        self.schedule(self.config.duration_us, Event::StartLiveness);
        self.trace(TraceEvent::Phase { phase: "safety" });
        while let Some((time_us, event)) = self.queue.pop() {
            self.now_us = time_us;
            self.stats.events += 1;
            self.handle(event)?;
            if let Phase::Liveness { since_us } = self.phase {
                if self.stats.catch_up_us.is_none() && self.lagging_members().is_empty() {
                    self.stats.catch_up_us = Some(self.now_us - since_us);
                }
                if self.has_recovered() {
                    self.stats.recovery_us = Some(self.now_us - since_us);
                    self.phase = Phase::Done;
                    return Ok(());
                }
                if self.now_us - since_us > self.config.liveness_bound_us {
                    return Err(self.liveness_failure());
                }
            }
        }
        Err(Violation {
            property: Property::Liveness,
            detail: "the event queue ran dry".to_string(),
        })
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick(id) => {
                let period = self.host(id).tick_period_us;
                self.schedule(period, Event::Tick(id));
                self.tick_node(id)
            }
            Event::Deliver { from, to, message, sent_us } => {
                self.deliver(from, to, message, sent_us)
            }
            Event::ClientSend { id, to } => self.client_request_arrives(id, to),
            Event::ClientReply { id, reply } => {
                self.client_reply_arrives(id, reply);
                Ok(())
            }
            Event::ClientWake { client } => {
                self.client_wakes(client);
                Ok(())
            }
            Event::ClientTimeout { id, attempt } => {
                self.client_times_out(id, attempt);
                Ok(())
            }
            Event::FaultDecision => {
                if self.in_safety_phase() {
                    self.decide_faults()?;
                    self.schedule(100_000, Event::FaultDecision);
                    self.decide_transfer()?;
                    self.decide_membership_change()?;
                }
                Ok(())
            }
            Event::Restart(id) => self.restart_node(id),
            Event::Resume(id) => self.resume_node(id),
            Event::Heal => {
                if self.network.is_partitioned() {
                    self.network.heal();
                    self.trace(TraceEvent::Heal);
                    self.forget_leader_loss_if_recovered();
                }
                Ok(())
            }
            Event::StartLiveness => self.start_liveness(),
            Event::Scripted(position) => self.run_scripted(position),
            Event::DiskDone { node, incarnation, sequence } => {
                if self.host(node).incarnation != incarnation {
                    return Ok(()); // the write died with an earlier life of the node
                }
                self.complete_background_writes(node, sequence)
            }
            Event::PersistedAck { node, incarnation, index, term } => {
                if self.host(node).incarnation != incarnation {
                    return Ok(());
                }
                self.step_node(node, stepraft::Input::Persisted { index, term })
            }
            Event::Announce { to, about, gossip } => self.announce(to, about, gossip),
        }
    }

    /// Faults stop: the network heals and loses nothing more, crashed nodes restart, paused
    /// nodes resume. From now on the cluster must recover within the bound.
    fn start_liveness(&mut self) -> Result<(), Violation> {
        self.phase = Phase::Liveness { since_us: self.now_us };
        self.trace(TraceEvent::Phase { phase: "liveness" });
        self.network.stop_faults();
        if self.network.is_partitioned() {
            self.network.heal();
            self.trace(TraceEvent::Heal);
        }
        for id in self.ids.clone() {
            self.host(id).crash_armed = false;
            if !self.host(id).is_up() {
                self.restart_node(id)?;
            }
            if self.host(id).paused {
                self.resume_node(id)?;
            }
        }
        Ok(())
    }

    /// The leader of the highest term, if every member of its configuration runs, follows
    /// it and is in its term.
    fn followed_leader(&self) -> Option<&stepraft::Node<KvCommand>> {
        let nodes: Vec<_> = self.hosts.iter().filter_map(|host| host.node.as_ref()).collect();
        if nodes.len() != self.hosts.len() {
            return None;
        }
        let leader =
            nodes.iter().filter(|node| node.role() == Role::Leader).max_by_key(|node| node.term());
        let leader = *leader?;
        // Members of the leader's configuration must follow it; removed or never-added
        // nodes are not part of the cluster any more.
        let members = leader.membership().members();
        let followed = nodes
            .iter()
            .filter(|node| members.contains(&node.id()))
            .all(|node| node.leader() == Some(leader.id()) && node.term() == leader.term());
        followed.then_some(leader)
    }

    /// Catch-up: the members whose log does not reach the followed leader's commit (every
    /// member, as far as anyone knows, while no leader is followed).
    fn lagging_members(&self) -> Vec<NodeId> {
        let Some(leader) = self.followed_leader() else { return self.ids.clone() };
        let commit = leader.commit_index();
        let members = leader.membership().members();
        self.hosts
            .iter()
            .filter_map(|host| host.node.as_ref())
            .filter(|node| members.contains(&node.id()) && node.last_index() < commit)
            .map(|node| node.id())
            .collect()
    }

    /// Recovered: one leader that every node follows in its term, every member's log at the
    /// leader's commit, every acknowledged write committed on every node, and no client left
    /// waiting.
    fn has_recovered(&self) -> bool {
        let Some(leader) = self.followed_leader() else { return false };
        let members = leader.membership().members();
        let acknowledged = self
            .hosts
            .iter()
            .filter_map(|host| host.node.as_ref())
            .filter(|node| members.contains(&node.id()))
            .all(|node| node.commit_index().0 >= self.acknowledged_max);
        let formed = !self.config.discovery
            || (members.len() == self.hosts.len()
                && leader.voters().count() == crate::discovery::expected_voters(&self.config));
        acknowledged
            && formed
            && self.lagging_members().is_empty()
            && self.clients.iter().all(|client| client.outstanding.is_none())
    }

    /// Runs both linearizability oracles on the finished history: the black-box search and
    /// the white-box replay of the log. A history one accepts and the other rejects means a
    /// bug in a checker, and fails the run as such.
    fn check_history(&mut self) -> Result<(), Violation> {
        let started = std::time::Instant::now();
        let verdict = check_history(&self.history, &CheckLimits::default());
        let white_box = check_log_order(&self.history, &self.placed, &self.applied_log);
        self.stats.checker_us = started.elapsed().as_micros() as u64;
        self.stats.linearizability = match verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable { .. } => "violation",
            Verdict::GaveUp { .. } => "gave-up",
        };
        match (verdict, white_box) {
            (Verdict::Linearizable, Ok(())) | (Verdict::GaveUp { .. }, Ok(())) => Ok(()),
            (Verdict::NotLinearizable { explanation, .. }, Err(white_box)) => Err(Violation {
                property: Property::Linearizability,
                detail: format!("{explanation}; white-box: {white_box}"),
            }),
            (Verdict::GaveUp { reason, .. }, Err(white_box)) => Err(Violation {
                property: Property::Linearizability,
                detail: format!("white-box: {white_box} (black-box gave up: {reason})"),
            }),
            (Verdict::Linearizable, Err(white_box)) => Err(Violation {
                property: Property::OracleAgreement,
                detail: format!("black-box accepts the history, white-box rejects it: {white_box}"),
            }),
            (Verdict::NotLinearizable { explanation, .. }, Ok(())) => Err(Violation {
                property: Property::OracleAgreement,
                detail: format!(
                    "white-box accepts the history, black-box rejects it: {explanation}"
                ),
            }),
        }
    }

    fn liveness_failure(&self) -> Violation {
        let bound_ms = self.config.liveness_bound_us / 1000;
        if let Some(leader) = self.followed_leader() {
            let lagging = self.lagging_members();
            if !lagging.is_empty() {
                let stuck: Vec<String> =
                    lagging.iter().map(|&id| self.describe_lagging(leader, id)).collect();
                return Violation {
                    property: Property::CatchUp,
                    detail: format!(
                        "not caught up {bound_ms} ms after faults stopped: {}",
                        stuck.join("; ")
                    ),
                };
            }
        }
        let states: Vec<String> = self
            .hosts
            .iter()
            .map(|host| match &host.node {
                Some(node) => format!(
                    "{} {:?} {} leader={:?} commit={}",
                    node.id(),
                    node.role(),
                    node.term(),
                    node.leader(),
                    node.commit_index().0
                ),
                None => format!("{} down", host.id),
            })
            .collect();
        let waiting = self.clients.iter().filter(|client| client.outstanding.is_some()).count();
        Violation {
            property: Property::Liveness,
            detail: format!(
                "not recovered {bound_ms} ms after faults stopped (acknowledged up to {}, {} \
                 clients waiting): {}",
                self.acknowledged_max,
                waiting,
                states.join("; ")
            ),
        }
    }

    /// A lagging member and its replication state as the leader sees it.
    fn describe_lagging(&self, leader: &stepraft::Node<KvCommand>, id: NodeId) -> String {
        let node = self.hosts[(id.0 - 1) as usize].node.as_ref().expect("lagging nodes run");
        let behind = format!(
            "{id} log ends at {} (commit {}), leader {} commit {}",
            node.last_index().0,
            node.commit_index().0,
            leader.id(),
            leader.commit_index().0
        );
        let Some(progress) = leader.progress(id) else {
            return format!("{behind}; the leader keeps no progress for it");
        };
        let snapshot = match (progress.pending_snapshot(), progress.snapshot_offset()) {
            (Some(index), Some(offset)) => format!(
                " snapshot={} offset={offset} attempt={}",
                index.0,
                progress.snapshot_attempt().unwrap_or_default()
            ),
            _ => String::new(),
        };
        format!(
            "{behind}; the leader sees state={:?} match={} next={}{snapshot} in_flight={}",
            progress.state(),
            progress.match_index().0,
            progress.next_index().0,
            progress.in_flight()
        )
    }
}
