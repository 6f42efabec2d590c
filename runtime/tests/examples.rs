//! Every example runs to completion (each one checks what it prints about).

#[path = "../examples/election_only.rs"]
mod election_only;
#[path = "../examples/in_process.rs"]
mod in_process;
#[path = "../examples/loopback_cluster.rs"]
#[allow(dead_code)] // its `main` parses the command line; the tests call `run`
mod loopback_cluster;

#[test]
fn three_nodes_in_one_process_replicate_and_read_back_their_log() {
    in_process::main().expect("the example runs");
}

#[test]
fn three_nodes_that_start_knowing_nobody_elect_a_leader_and_replace_it_when_it_stops() {
    election_only::main().expect("the example runs");
}

#[tokio::test]
async fn three_nodes_over_tcp_replicate_a_proposal() {
    loopback_cluster::run("tcp").await.expect("the example runs");
}

#[tokio::test]
async fn three_nodes_over_udp_replicate_a_proposal() {
    loopback_cluster::run("udp").await.expect("the example runs");
}
