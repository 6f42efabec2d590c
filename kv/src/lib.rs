//! # stepraft-kv
//!
//! A replicated key-value server on the [`stepraft`] core and its tokio runtime
//! [`stepraft_tokio`], and its client:
//!
//! * [`server`]: the `stepraft-kv serve` node — runtime driver, storage and transport, the
//!   key-value application, and the HTTP JSON API, all on one port;
//! * [`client`] and [`http`]: a blocking client of that API;
//! * [`launch`] and [`mod@bench`]: local clusters of server processes, and the benchmark (of stepraft-kv or etcd).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod client;
pub mod command;
pub mod http;
pub mod launch;
pub mod server;
