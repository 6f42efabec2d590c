//! The servers under test: real `stepraft-kv serve` processes on loopback, each behind its
//! proxy, and what the nemesis does to them (kill, restart, pause, stall the disk, add,
//! remove).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use stepraft_kv::client::KvClient;

use crate::proxy::{serve_tcp, serve_udp, Links};

/// The peer transport of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Length-delimited frames over TCP.
    Tcp,
    /// One datagram per message.
    Udp,
}

impl Transport {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// How the servers of a cluster are started.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The `stepraft-kv` executable.
    pub executable: PathBuf,
    /// Where data directories, logs and stall files go.
    pub directory: PathBuf,
    /// The founding members, ids `1..=nodes`.
    pub nodes: u64,
    /// The peer transport.
    pub transport: Transport,
    /// Whether the servers serve reads under a leader lease.
    pub lease_reads: bool,
    /// Milliseconds per tick (elections after 10-19 ticks).
    pub tick_ms: u64,
    /// Seeds the proxies' message loss.
    pub seed: u64,
}

#[derive(Debug)]
struct Server {
    /// The server's own address: clients talk to it directly.
    address: String,
    /// The proxy in front of it: the address its peers know it by.
    proxy: String,
    /// The `--peers` it was first started with.
    peers: String,
    joined: bool,
    child: Option<Child>,
    paused: bool,
}

/// A cluster of server processes behind proxies.
#[derive(Debug)]
pub struct Cluster {
    options: ClusterOptions,
    servers: BTreeMap<u64, Server>,
    links: Arc<Links>,
    /// Addresses of the current members, for the clients (updated on membership changes).
    client_addresses: Arc<RwLock<Vec<String>>>,
    next_id: u64,
    runtime: tokio::runtime::Runtime,
}

impl Cluster {
    /// Starts the founding members, each behind its proxy.
    ///
    /// # Errors
    /// The IO error of binding a port or spawning a server.
    pub fn start(options: ClusterOptions) -> std::io::Result<Cluster> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let links = Arc::new(Links::new(options.seed));
        let mut cluster = Cluster {
            links,
            servers: BTreeMap::new(),
            client_addresses: Arc::new(RwLock::new(Vec::new())),
            next_id: options.nodes + 1,
            runtime,
            options,
        };
        let mut placed = Vec::new();
        for id in 1..=cluster.options.nodes {
            placed.push((id, cluster.place(id)?));
        }
        let peers: Vec<String> =
            placed.iter().map(|(id, (_, proxy))| format!("{id}={proxy}")).collect();
        for (id, (address, proxy)) in placed {
            let server = Server {
                address,
                proxy,
                peers: peers.join(","),
                joined: false,
                child: None,
                paused: false,
            };
            cluster.servers.insert(id, server);
            cluster.spawn(id)?;
        }
        cluster.publish_addresses();
        Ok(cluster)
    }

    /// Chooses a server address and starts its proxy; returns (address, proxy address).
    fn place(&self, id: u64) -> std::io::Result<(String, String)> {
        let (server_tcp, server_udp) = free_port_pair()?;
        let address = server_tcp.local_addr()?;
        drop((server_tcp, server_udp)); // the server binds them
        let (proxy_tcp, proxy_udp) = free_port_pair()?;
        let proxy = proxy_tcp.local_addr()?;
        proxy_tcp.set_nonblocking(true)?;
        proxy_udp.set_nonblocking(true)?;
        let _guard = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(proxy_tcp)?;
        let socket = tokio::net::UdpSocket::from_std(proxy_udp)?;
        self.runtime.spawn(serve_tcp(listener, id, address, Arc::clone(&self.links)));
        self.runtime.spawn(serve_udp(socket, id, address, Arc::clone(&self.links)));
        Ok((address.to_string(), proxy.to_string()))
    }

    fn spawn(&mut self, id: u64) -> std::io::Result<()> {
        let data = self.data_directory(id);
        let stall = self.stall_file(id);
        let _ = std::fs::remove_file(&stall);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.options.directory.join(format!("node-{id}.log")))?;
        let options = &self.options;
        let server = self.servers.get_mut(&id).expect("invariant: spawn is called for known ids");
        let mut command = Command::new(&options.executable);
        command
            .args(["serve", "--id", &id.to_string(), "--listen", &server.address])
            .args(["--peers", &server.peers, "--transport", options.transport.name()])
            .args(["--tick-ms", &options.tick_ms.to_string(), "--request-timeout-ms", "2000"])
            // Snapshots and compaction happen within a run, and followers that fell behind
            // catch up from a snapshot.
            .args(["--snapshot-every", "500", "--compaction-tail", "50"])
            .arg("--data")
            .arg(&data)
            .arg("--stall-storage-while")
            .arg(&stall)
            // The server exits when this pipe closes, so a nemesis that dies leaves none.
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log);
        if options.lease_reads {
            command.arg("--lease-reads");
        }
        if server.joined {
            command.arg("--join");
        }
        server.child = Some(command.spawn()?);
        server.paused = false;
        Ok(())
    }

    fn publish_addresses(&self) {
        let addresses = self.servers.values().map(|server| server.address.clone()).collect();
        *self.client_addresses.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = addresses;
    }

    /// The addresses clients should use, kept current across membership changes.
    pub fn client_addresses(&self) -> Arc<RwLock<Vec<String>>> {
        Arc::clone(&self.client_addresses)
    }

    /// The peer links' fault table.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Where server `id` keeps its data.
    pub fn data_directory(&self, id: u64) -> PathBuf {
        self.options.directory.join(format!("node-{id}"))
    }

    fn stall_file(&self, id: u64) -> PathBuf {
        self.options.directory.join(format!("node-{id}.stall"))
    }

    /// The ids of the servers that belong to the cluster (running or not).
    pub fn ids(&self) -> Vec<u64> {
        self.servers.keys().copied().collect()
    }

    /// The ids of the servers whose process runs and is not paused.
    pub fn live(&self) -> Vec<u64> {
        let live = |server: &&Server| server.child.is_some() && !server.paused;
        self.servers.iter().filter(|(_, server)| live(server)).map(|(id, _)| *id).collect()
    }

    /// Server `id`'s own address.
    pub fn address(&self, id: u64) -> Option<&str> {
        self.servers.get(&id).map(|server| server.address.as_str())
    }

    /// Kills server `id` with SIGKILL and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.servers.get_mut(&id).and_then(|server| server.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `id` again on its data directory, unless it runs.
    ///
    /// # Errors
    /// The IO error of spawning it.
    pub fn restart(&mut self, id: u64) -> std::io::Result<()> {
        match self.servers.get(&id) {
            Some(server) if server.child.is_none() => self.spawn(id),
            _ => Ok(()),
        }
    }

    /// Freezes server `id` (SIGSTOP).
    pub fn pause(&mut self, id: u64) {
        if let Some(server) = self.servers.get_mut(&id) {
            if let Some(child) = &server.child {
                server.paused = signal(child, Signal::SIGSTOP);
            }
        }
    }

    /// Lets a frozen server `id` go on (SIGCONT).
    pub fn resume(&mut self, id: u64) {
        if let Some(server) = self.servers.get_mut(&id) {
            if let Some(child) = &server.child {
                signal(child, Signal::SIGCONT);
            }
            server.paused = false;
        }
    }

    /// Makes every storage write of server `id` wait until [`Cluster::unstall_disk`].
    pub fn stall_disk(&self, id: u64) {
        let _ = std::fs::write(self.stall_file(id), b"");
    }

    /// Ends a disk stall of server `id`.
    pub fn unstall_disk(&self, id: u64) {
        let _ = std::fs::remove_file(self.stall_file(id));
    }

    /// Starts a new server with `--join`, passive until the cluster adds it, and returns its
    /// id; it knows the current members' proxies.
    ///
    /// # Errors
    /// The IO error of binding a port or spawning it.
    pub fn spawn_joiner(&mut self) -> std::io::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let (address, proxy) = self.place(id)?;
        let peers: Vec<String> = self
            .servers
            .iter()
            .map(|(id, server)| format!("{id}={}", server.proxy))
            .chain([format!("{id}={proxy}")])
            .collect();
        let server = Server {
            address,
            proxy,
            peers: peers.join(","),
            joined: true,
            child: None,
            paused: false,
        };
        self.servers.insert(id, server);
        self.spawn(id)?;
        self.publish_addresses();
        Ok(id)
    }

    /// The proxy address of server `id`: what its peers and membership changes use.
    pub fn proxy(&self, id: u64) -> Option<&str> {
        self.servers.get(&id).map(|server| server.proxy.as_str())
    }

    /// Stops server `id` for good and forgets it (after the cluster removed it).
    pub fn forget(&mut self, id: u64) {
        self.kill(id);
        self.unstall_disk(id);
        self.servers.remove(&id);
        self.publish_addresses();
    }

    /// Undoes every fault: heals the links, resumes paused servers, ends disk stalls and
    /// restarts killed servers.
    ///
    /// # Errors
    /// The IO error of restarting a server.
    pub fn heal(&mut self) -> std::io::Result<()> {
        self.links.heal();
        for id in self.ids() {
            self.unstall_disk(id);
            self.resume(id);
            self.restart(id)?;
        }
        Ok(())
    }

    /// Servers whose process exited without being killed, and how.
    pub fn exited(&mut self) -> Vec<(u64, ExitStatus)> {
        let mut exited = Vec::new();
        for (id, server) in &mut self.servers {
            if let Some(child) = &mut server.child {
                if let Ok(Some(status)) = child.try_wait() {
                    exited.push((*id, status));
                    server.child = None;
                }
            }
        }
        exited
    }

    /// The `/status` of server `id`, if it answers within a second.
    pub fn status(&self, id: u64) -> Option<Value> {
        let address = self.address(id)?.to_owned();
        KvClient::new(vec![address], Duration::from_secs(1)).status().ok()
    }

    /// The server that says it leads in the highest term, among the live ones.
    pub fn leader(&self) -> Option<u64> {
        self.live()
            .into_iter()
            .filter_map(|id| {
                let status = self.status(id)?;
                let term = status["term"].as_u64()?;
                (status["role"] == "leader").then_some((term, id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Waits until some live server leads; returns it.
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The directory the run keeps its files in.
    pub fn directory(&self) -> &Path {
        &self.options.directory
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }
}

fn signal(child: &Child, signal: Signal) -> bool {
    i32::try_from(child.id()).is_ok_and(|pid| kill(Pid::from_raw(pid), signal).is_ok())
}

/// A loopback port free for both TCP and UDP (a server listens on both with one number).
fn free_port_pair() -> std::io::Result<(TcpListener, UdpSocket)> {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if let Ok(udp) = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], port))) {
            return Ok((tcp, udp));
        }
    }
    Err(std::io::Error::other("no port free for both TCP and UDP"))
}
