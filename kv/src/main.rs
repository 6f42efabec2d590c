//! `stepraft-kv`: a replicated key-value server on the stepraft core, and its client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use stepraft::NodeId;
use stepraft_kv::bench;
use stepraft_kv::client::{ClientError, KvClient};
use stepraft_kv::launch::{self, LocalCluster};
use stepraft_kv::server::{serve, ServeOptions, TransportKind};

/// The addresses of the cluster that `stepraft-kv cluster` starts.
const LOCAL_NODES: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

#[derive(Parser)]
#[command(name = "stepraft-kv", version, about = "A replicated key-value store on stepraft")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run one node. It logs to stderr; RUST_LOG filters (default `info`, e.g. `debug` or
    /// `info,stepraft_tokio=debug`).
    Serve(ServeArgs),
    /// Start a local 3-node cluster on 127.0.0.1:7001-7003 (Ctrl-C stops it).
    Cluster {
        /// Where the nodes keep their data.
        #[arg(long, default_value = "stepraft-kv-data")]
        dir: PathBuf,
        /// Peer transport.
        #[arg(long, value_enum, default_value_t = Transport::Tcp)]
        transport: Transport,
    },
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        #[command(flatten)]
        target: Target,
    },
    /// Read a key (linearizable unless --stale).
    Get {
        /// The key.
        key: String,
        /// Read the node's local state without confirming leadership.
        #[arg(long)]
        stale: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Set a key to NEW only if it holds EXPECTED (or is absent with --absent).
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold.
        #[arg(long, required_unless_present = "absent")]
        expected: Option<String>,
        /// Require the key to be absent.
        #[arg(long)]
        absent: bool,
        /// The new value.
        #[arg(long)]
        new: String,
        #[command(flatten)]
        target: Target,
    },
    /// Print every node's status.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Benchmark writes (fsync'd) and linearizable reads with concurrent clients, each with one
    /// keep-alive connection: a 3-node cluster it starts, or running nodes (--nodes), also
    /// etcd's (--target etcd).
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Concurrency levels of the write levels (0: none).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Concurrency levels of the linearizable-read levels, run after the writes (0: none).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    reads: Vec<usize>,
    /// Seconds per level (with --writes: the most a write level may take).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// End each write level once this many writes were acknowledged (or --seconds passed).
    #[arg(long)]
    writes: Option<u64>,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Benchmark a running cluster at these addresses (HOST:PORT) instead of starting one.
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// The system at --nodes: stepraft-kv, or etcd through its v3 JSON gateway (/v3/kv/put,
    /// /v3/kv/range) on its client port.
    #[arg(long, value_enum, default_value_t = BenchTarget::Stepraft)]
    target: BenchTarget,
    /// Which node each client starts with: every client the first of --nodes, client i node
    /// i mod n, or every client the leader when the level starts.
    #[arg(long, value_enum, default_value_t = BenchConnect::First)]
    connect: BenchConnect,
    /// Print one JSON object per level (JSON lines) instead of a table.
    #[arg(long)]
    json: bool,
    /// Wait (up to 15 s) until a node leads, print its address, and run no level.
    #[arg(long)]
    print_leader: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchTarget {
    Stepraft,
    Etcd,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchConnect {
    First,
    Spread,
    Leader,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: u64,
    /// Address for the HTTP API and peer traffic.
    #[arg(long)]
    listen: SocketAddr,
    /// The cluster's nodes as ID=HOST:PORT, comma-separated (this node may be included).
    #[arg(long, value_delimiter = ',', value_parser = parse_peer)]
    peers: Vec<(NodeId, String)>,
    /// Data directory (created if missing; must be empty or hold this node's store).
    #[arg(long)]
    data: PathBuf,
    /// Cluster id: stores and messages of another cluster are refused.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// Start with no configuration and wait to be added (POST /members on the leader).
    #[arg(long)]
    join: bool,
    /// Milliseconds per logical tick (heartbeat every tick, elections after 10-19 ticks).
    #[arg(long, default_value_t = 50)]
    tick_ms: u64,
    /// Peer transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    transport: Transport,
    /// Serve linearizable reads under a leader lease (assumes bounded clock drift).
    #[arg(long)]
    lease_reads: bool,
    /// Milliseconds an HTTP request waits for the cluster before answering 504.
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Snapshot the key-value state and compact the log once N entries, and at least as many
    /// command bytes as the last snapshot held, were applied since it (0: never).
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// Entries kept in the log before a snapshot's index, for followers that lag a little.
    #[arg(long, default_value_t = 128)]
    compaction_tail: u64,
    /// Most voters of a configuration (default: no limit over TCP, 9 over UDP).
    #[arg(long)]
    voters_max: Option<usize>,
    /// Most learners of a configuration (default: no limit over TCP, 9 over UDP).
    #[arg(long)]
    learners_max: Option<usize>,
    /// Fault injection for tests: every storage write waits while this file exists.
    #[arg(long, hide = true)]
    stall_storage_while: Option<PathBuf>,
    /// Exit when standard input closes (set by `cluster`, so that its nodes stop with it).
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
}

#[derive(clap::Args)]
struct Target {
    /// Node addresses to try, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = LOCAL_NODES)]
    nodes: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Transport {
    Tcp,
    Udp,
}

fn parse_peer(text: &str) -> Result<(NodeId, String), String> {
    let (id, address) = text.split_once('=').ok_or("expected ID=HOST:PORT")?;
    let id = id.parse().map_err(|_| format!("bad node id {id:?}"))?;
    Ok((NodeId(id), address.to_owned()))
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Commands::Serve(args) => run_serve(args),
        Commands::Cluster { dir, transport } => run_cluster(dir, transport),
        Commands::Put { key, value, target } => with_retries(&target, |kv| {
            kv.put(&key, &value).map(|index| format!("ok (index {index})"))
        }),
        Commands::Get { key, stale, target } => with_retries(&target, |kv| {
            kv.get(&key, stale).map(|value| value.unwrap_or_else(|| "(absent)".into()))
        }),
        Commands::Delete { key, target } => {
            with_retries(&target, |kv| kv.delete(&key).map(|index| format!("ok (index {index})")))
        }
        Commands::Cas { key, expected, absent, new, target } => with_retries(&target, |kv| {
            let expected = if absent { None } else { expected.as_deref() };
            kv.cas(&key, expected, &new)
                .map(|swapped| if swapped { "swapped" } else { "not swapped" }.into())
        }),
        Commands::Status { target } => print_status(&target),
        Commands::Bench(args) => run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stepraft-kv: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the server's and the runtime's events to stderr, filtered by `RUST_LOG` (`info`
/// when it is unset or does not parse).
fn install_log_subscriber() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
}

fn run_serve(args: ServeArgs) -> Result<(), String> {
    install_log_subscriber();
    if args.exit_with_stdin {
        std::thread::spawn(|| {
            // Exiting at any moment is safe: nothing is acknowledged before it is durable.
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let options = ServeOptions {
        id: NodeId(args.id),
        listen: args.listen,
        peers: args.peers.into_iter().filter(|(id, _)| id.0 != args.id).collect(),
        data: args.data,
        cluster_id: args.cluster_id,
        join: args.join,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        transport: match args.transport {
            Transport::Tcp => TransportKind::Tcp,
            Transport::Udp => TransportKind::Udp,
        },
        lease_reads: args.lease_reads,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        snapshot_every: args.snapshot_every,
        compaction_tail: args.compaction_tail,
        voters_max: args.voters_max,
        learners_max: args.learners_max,
        stall_storage_while: args.stall_storage_while,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(serve(options)).map_err(|error| error.to_string())
}

fn run_cluster(dir: PathBuf, transport: Transport) -> Result<(), String> {
    let executable = std::env::current_exe().map_err(|error| error.to_string())?;
    let addresses: Vec<String> = LOCAL_NODES.split(',').map(str::to_owned).collect();
    let transport = match transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    };
    let arguments = vec!["--transport".to_owned(), transport.to_owned()];
    let mut cluster = LocalCluster::new(executable, dir.clone(), addresses, arguments, false);
    cluster.start_all().map_err(|error| format!("cannot start a node: {error}"))?;
    match cluster.wait_for_leader(Duration::from_secs(15)) {
        Some(leader) => eprintln!(
            "\ncluster up (data in {}), leader: node {leader}. Try:\n  stepraft-kv put greeting hello\n  stepraft-kv get greeting\n  stepraft-kv status\nCtrl-C stops the cluster.\n",
            dir.display()
        ),
        None => eprintln!("no leader yet; see the nodes' messages above"),
    }
    loop {
        if let Some((id, status)) = cluster.exited() {
            return Err(format!("node {id} exited ({status}); stopping the cluster"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a client command, moving to another node while none answers, and retrying while the
/// cluster has no leader (a `503` promises the request took no effect).
fn with_retries(
    target: &Target,
    mut operation: impl FnMut(&mut KvClient) -> Result<String, ClientError>,
) -> Result<(), String> {
    let mut kv = KvClient::new(target.nodes.clone(), Duration::from_secs(5));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let error = match operation(&mut kv) {
            Ok(output) => {
                println!("{output}");
                return Ok(());
            }
            Err(error) => error,
        };
        let retry = match &error {
            ClientError::Http(_) => {
                kv.next_node();
                true
            }
            ClientError::Status { status: 503, .. } => true,
            _ => false,
        };
        if !retry || std::time::Instant::now() > deadline {
            return Err(error.to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_status(target: &Target) -> Result<(), String> {
    let mut reached = 0;
    for address in &target.nodes {
        let mut kv = KvClient::new(vec![address.clone()], Duration::from_secs(2));
        match kv.status() {
            Ok(status) => {
                reached += 1;
                println!("{status}");
            }
            Err(error) => println!("{{\"address\":\"{address}\",\"error\":\"{error}\"}}"),
        }
    }
    if reached == 0 {
        return Err("no node answered".into());
    }
    Ok(())
}

fn run_bench(mut args: BenchArgs) -> Result<(), String> {
    let target = match args.target {
        BenchTarget::Stepraft => bench::Target::Stepraft,
        BenchTarget::Etcd => bench::Target::Etcd,
    };
    if target == bench::Target::Etcd && args.nodes.is_empty() {
        return Err(
            "--target etcd needs --nodes: the client addresses of running etcd members".into()
        );
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err(format!("--seconds must be positive, not {}", args.seconds));
    }
    let io = |error: std::io::Error| error.to_string();
    let (addresses, cluster, directory) = if args.nodes.is_empty() {
        let executable = std::env::current_exe().map_err(io)?;
        let directory = launch::fresh_directory("stepraft-kv-bench").map_err(io)?;
        let addresses = launch::free_loopback_addresses(3).map_err(io)?;
        let mut cluster =
            LocalCluster::new(executable, directory.clone(), addresses.clone(), Vec::new(), true);
        cluster.start_all().map_err(io)?;
        eprintln!("3-node cluster on loopback, data in {} (fsync per batch)", directory.display());
        (addresses, Some(cluster), Some(directory))
    } else {
        (std::mem::take(&mut args.nodes), None, None)
    };
    let result = run_levels(target, &addresses, &args);
    drop(cluster);
    if let Some(directory) = directory {
        launch::remove_directory(&directory);
    }
    result
}

/// The write levels, then the read levels, each reported as soon as it ends.
fn run_levels(target: bench::Target, addresses: &[String], args: &BenchArgs) -> Result<(), String> {
    let view = bench::ClusterView::wait_for_leader(target, addresses, Duration::from_secs(15))
        .ok_or("no node reports that it leads")?;
    let leader = view.leader().map(|i| addresses[i].as_str()).unwrap_or("?");
    if args.print_leader {
        println!("{leader}");
        return Ok(());
    }
    eprintln!(
        "{} at {}, leader {leader} (term {})",
        target.name(),
        addresses.join(","),
        view.term().unwrap_or(0)
    );
    let connect = match args.connect {
        BenchConnect::First => bench::Connect::First,
        BenchConnect::Spread => bench::Connect::Spread,
        BenchConnect::Leader => bench::Connect::Leader,
    };
    let writes = args.clients.iter().map(|&clients| (bench::Operation::Write, clients));
    let reads = args.reads.iter().map(|&clients| (bench::Operation::LinearizableRead, clients));
    if !args.json {
        println!(
            "{:<17} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>6}",
            "operation",
            "clients",
            "ops",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "gap ms",
            "leader chg",
            "errors"
        );
    }
    for (operation, clients) in writes.chain(reads).filter(|&(_, clients)| clients > 0) {
        let level = bench::Level {
            target,
            operation,
            clients,
            duration: Duration::from_secs_f64(args.seconds),
            max_operations: args.writes.filter(|_| operation == bench::Operation::Write),
            value_bytes: args.value_bytes,
            connect,
        };
        let result = bench::run_level(addresses, level);
        if args.json {
            println!("{}", result.to_json(addresses));
        } else {
            print_level(&result);
        }
    }
    Ok(())
}

fn print_level(result: &bench::BenchResult) {
    let ms = |value: Option<f64>| value.map_or("-".to_owned(), |ms| format!("{ms:.2}"));
    let latency = &result.latency;
    println!(
        "{:<17} {:>7} {:>9} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>8.1} {:>10} {:>6}",
        result.level.operation.name(),
        result.level.clients,
        result.operations,
        result.per_second(),
        ms(latency.p50_ms),
        ms(latency.p99_ms),
        ms(latency.p999_ms),
        ms(latency.max_ms),
        result.longest_gap.as_secs_f64() * 1000.0,
        result.leader_changes().map_or("?".to_owned(), |changes| changes.to_string()),
        result.errors
    );
    if let Some(error) = &result.first_error {
        println!("  first error: {error}");
    }
}
