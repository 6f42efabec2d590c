//! Starting `stepraft-kv serve` processes on this machine: the `cluster` command, the
//! benchmark and the crash test all run real servers this way.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::KvClient;

/// A set of local server processes of one cluster.
#[derive(Debug)]
pub struct LocalCluster {
    executable: PathBuf,
    directory: PathBuf,
    addresses: Vec<String>,
    extra_arguments: Vec<String>,
    log_to_files: bool,
    children: Vec<Option<Child>>,
}

impl LocalCluster {
    /// A cluster of `addresses.len()` nodes (ids 1, 2, ...) run by `executable`, with data and
    /// logs under `directory`; `extra_arguments` are passed to every `serve`. Logs go to
    /// `node-N.log` files when `log_to_files`, else to this process's stderr.
    pub fn new(
        executable: PathBuf,
        directory: PathBuf,
        addresses: Vec<String>,
        extra_arguments: Vec<String>,
        log_to_files: bool,
    ) -> LocalCluster {
        let children = addresses.iter().map(|_| None).collect();
        LocalCluster { executable, directory, addresses, extra_arguments, log_to_files, children }
    }

    /// The nodes' addresses; node `i + 1` listens on `addresses()[i]`.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Where node `id` keeps its data.
    pub fn data_directory(&self, id: usize) -> PathBuf {
        self.directory.join(format!("node-{id}"))
    }

    /// Starts node `id` (1-based), or restarts it on its data directory.
    ///
    /// # Errors
    /// The IO error of spawning the process or opening its log.
    pub fn start(&mut self, id: usize) -> std::io::Result<()> {
        let peers: Vec<String> =
            self.addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
        let mut command = Command::new(&self.executable);
        command
            .arg("serve")
            .args(["--id", &id.to_string()])
            .args(["--listen", &self.addresses[id - 1]])
            .args(["--peers", &peers.join(",")])
            .arg("--data")
            .arg(self.data_directory(id))
            .args(&self.extra_arguments)
            // The child exits when this pipe closes, i.e. when this process dies however it
            // dies (even `kill -9`), so a stopped `cluster` or test leaves no server behind.
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        if self.log_to_files {
            std::fs::create_dir_all(&self.directory)?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.directory.join(format!("node-{id}.log")))?;
            command.stderr(log);
        }
        self.children[id - 1] = Some(command.spawn()?);
        Ok(())
    }

    /// Starts a node `id` outside the cluster, with `--join`: it waits, passive, for the
    /// cluster to add it (`POST /members`). It listens on `address`, keeps its data beside the
    /// cluster's, gets `extra_arguments`, and exits when the returned child's stdin closes.
    ///
    /// # Errors
    /// The IO error of spawning the process.
    pub fn spawn_joiner(
        &self,
        id: usize,
        address: &str,
        extra_arguments: &[&str],
    ) -> std::io::Result<Child> {
        let peers: Vec<String> =
            self.addresses.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
        Command::new(&self.executable)
            .args(["serve", "--id", &id.to_string(), "--join", "--exit-with-stdin"])
            .args(extra_arguments)
            .args(["--listen", address, "--peers", &peers.join(",")])
            .arg("--data")
            .arg(self.data_directory(id))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    }

    /// Starts every node.
    ///
    /// # Errors
    /// As [`LocalCluster::start`].
    pub fn start_all(&mut self) -> std::io::Result<()> {
        (1..=self.addresses.len()).try_for_each(|id| self.start(id))
    }

    /// Kills node `id` with SIGKILL (`kill -9`) and reaps it.
    pub fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether some node has exited by itself; returns its id and exit status.
    pub fn exited(&mut self) -> Option<(usize, std::process::ExitStatus)> {
        self.children.iter_mut().enumerate().find_map(|(i, child)| {
            let status = child.as_mut()?.try_wait().ok()??;
            Some((i + 1, status))
        })
    }

    /// Polls `/status` until every running node names the same leader; returns its id.
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let leaders: Vec<Option<u64>> = self
                .addresses
                .iter()
                .zip(&self.children)
                .filter(|(_, child)| child.is_some())
                .map(|(address, _)| {
                    let mut client = KvClient::new(vec![address.clone()], Duration::from_secs(1));
                    client.status().ok().and_then(|status| status["leader"].as_u64())
                })
                .collect();
            if let Some(Some(leader)) = leaders.first() {
                if leaders.iter().all(|l| *l == Some(*leader)) {
                    return Some(*leader);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for id in 1..=self.children.len() {
            self.kill(id);
        }
    }
}

/// `count` loopback addresses with ports the OS reports free right now.
///
/// # Errors
/// The IO error of binding a probe socket.
pub fn free_loopback_addresses(count: usize) -> std::io::Result<Vec<String>> {
    // Hold every probe until all are chosen, so the OS hands out distinct ports.
    let probes: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    probes.iter().map(|probe| probe.local_addr().map(|a| a.to_string())).collect()
}

/// A fresh, empty directory under the system temp directory.
///
/// # Errors
/// The IO error of creating it.
pub fn fresh_directory(prefix: &str) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

/// Removes a directory tree, ignoring errors (cleanup).
pub fn remove_directory(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
}

/// Polls `condition` every 20 ms until it holds.
///
/// # Panics
/// When `timeout` passes first, naming `what` was awaited (for tests and scripts).
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
