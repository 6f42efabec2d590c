//! A node whose store is damaged does not start: `serve` exits by itself, at once, with the
//! exit status of an error (1, not a panic's 101) and a message naming the damage, and leaves
//! the file as it found it for the operator.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use stepraft_kv::client::KvClient;
use stepraft_kv::launch;

mod common;

use common::{one_node, OneNode, EXECUTABLE};
/// The store's file in a data directory.
const FILE_NAME: &str = "stepraft-kv.redb";
/// How long a refusing `serve` may take to exit: it refuses before binding or electing.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `serve` as node 1 of a one-node cluster at `address` on `data` and waits for it to
/// exit; returns its status and stderr. Kills it and fails when it is still running after
/// [`EXIT_TIMEOUT`].
fn serve_until_exit(data: &Path, address: &str) -> (ExitStatus, String) {
    let mut child = Command::new(EXECUTABLE)
        .args(["serve", "--id", "1", "--listen", address, "--peers", &format!("1={address}")])
        .arg("--data")
        .arg(data)
        // Held open until the child exits, so it cannot outlive a failed test.
        .arg("--exit-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if started.elapsed() > EXIT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve on a damaged store still runs after {EXIT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("reads stderr");
    (status, stderr)
}

#[test]
fn a_node_whose_store_lost_its_last_byte_exits_with_an_error_and_leaves_the_file_alone() {
    let OneNode { mut cluster, address, directory } = one_node("stepraft-kv-damaged-store");
    let mut kv = KvClient::new(vec![address.clone()], Duration::from_secs(5));
    kv.put("kept", "durable").expect("put");
    cluster.kill(1);

    let data = cluster.data_directory(1);
    let file = data.join(FILE_NAME);
    let length = std::fs::metadata(&file).expect("stat").len();
    let handle = std::fs::OpenOptions::new().write(true).open(&file).expect("open");
    handle.set_len(length - 1).expect("truncate");
    drop(handle);
    let damaged = std::fs::read(&file).expect("read");

    let (status, stderr) = serve_until_exit(&data, &address);
    // 1 is `serve`'s status for every error it reports (see ERRORS.md); 101 would be a panic.
    assert_eq!(status.code(), Some(1), "{status}: {stderr}");
    assert!(stderr.contains("stepraft-kv: storage:"), "{stderr}");
    assert!(stderr.contains(&format!("{} is damaged", file.display())), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(std::fs::read(&file).expect("read") == damaged, "the damaged file was modified");
    drop(cluster);
    launch::remove_directory(&directory);
}
