//! What several of the server's process tests share.

use std::path::PathBuf;
use std::time::Duration;

use stepraft_kv::launch::{self, LocalCluster};

/// The server binary under test.
pub const EXECUTABLE: &str = env!("CARGO_BIN_EXE_stepraft-kv");

/// A one-node cluster that has elected itself.
pub struct OneNode {
    /// The running server.
    pub cluster: LocalCluster,
    /// Its address.
    pub address: String,
    /// Its data and log directory.
    pub directory: PathBuf,
}

/// Starts a one-node cluster (10 ms ticks) in a fresh directory named after `prefix`, and
/// waits until it leads.
pub fn one_node(prefix: &str) -> OneNode {
    let directory = launch::fresh_directory(prefix).expect("temp dir");
    let addresses = launch::free_loopback_addresses(1).expect("port");
    let mut cluster = LocalCluster::new(
        EXECUTABLE.into(),
        directory.clone(),
        addresses.clone(),
        ["--tick-ms", "10"].map(str::to_owned).to_vec(),
        true,
    );
    cluster.start_all().expect("starts");
    assert_eq!(cluster.wait_for_leader(Duration::from_secs(20)), Some(1));
    OneNode { cluster, address: addresses[0].clone(), directory }
}
