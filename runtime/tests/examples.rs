//! Every example runs to completion (each one checks what it prints about).

#[path = "../examples/in_process.rs"]
mod in_process;
#[cfg(feature = "tcp")]
#[path = "../examples/tcp_cluster.rs"]
mod tcp_cluster;
#[cfg(feature = "udp")]
#[path = "../examples/udp_cluster.rs"]
mod udp_cluster;

#[test]
fn three_nodes_in_one_process_replicate_and_read_back_their_log() {
    in_process::main().expect("the example runs");
}

#[cfg(feature = "tcp")]
#[test]
fn three_nodes_over_tcp_replicate_a_proposal() {
    tcp_cluster::main().expect("the example runs");
}

#[cfg(feature = "udp")]
#[test]
fn three_nodes_over_udp_replicate_a_proposal() {
    udp_cluster::main().expect("the example runs");
}
