//! A blocking client of the HTTP API, used by the CLI, the crash test and the benchmark.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http::client::{HttpClient, HttpError, HttpResponse};

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No response (connection refused or reset, timeout): a write's outcome is unknown.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with an error status. `503`: the request did not take effect;
    /// `504`: outcome unknown; `4xx`: the request is wrong.
    #[error("{status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `error` text.
        message: String,
    },
}

impl ClientError {
    /// Whether the request certainly did not take effect, so retrying cannot apply it twice.
    pub fn is_definite_failure(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status != 504,
            ClientError::Http(HttpError::Connect { .. }) => true,
            _ => false,
        }
    }
}

/// A client of a cluster, talking to one node at a time and following redirects to the
/// leader.
#[derive(Debug)]
pub struct KvClient {
    nodes: Vec<String>,
    current: usize,
    http: HttpClient,
}

impl KvClient {
    /// A client of the cluster whose nodes listen on `nodes` (`host:port`), starting with the
    /// first; each request waits at most `timeout`.
    ///
    /// # Panics
    /// If `nodes` is empty.
    pub fn new(nodes: Vec<String>, timeout: Duration) -> KvClient {
        assert!(!nodes.is_empty(), "a client needs at least one node address");
        let http = HttpClient::new(nodes[0].clone(), timeout);
        KvClient { nodes, current: 0, http }
    }

    /// The node the client talks to now.
    pub fn node(&self) -> &str {
        self.http.address()
    }

    /// Moves to the next node of the list (after a node stopped answering).
    pub fn next_node(&mut self) {
        self.current = (self.current + 1) % self.nodes.len();
        self.http.set_address(self.nodes[self.current].clone());
    }

    /// Sets `key` to `value`; returns the log index of the write.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn put(&mut self, key: &str, value: &str) -> Result<u64, ClientError> {
        let body = json!({ "value": value });
        let answer = self.call("PUT", &format!("/kv/{key}"), Some(&body))?;
        Ok(answer["index"].as_u64().unwrap_or_default())
    }

    /// Reads `key`: linearizable, or from the node's local state when `stale`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn get(&mut self, key: &str, stale: bool) -> Result<Option<String>, ClientError> {
        let consistency = if stale { "stale" } else { "linearizable" };
        let answer = self.call("GET", &format!("/kv/{key}?consistency={consistency}"), None)?;
        Ok(answer["value"].as_str().map(str::to_owned))
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn delete(&mut self, key: &str) -> Result<u64, ClientError> {
        let answer = self.call("DELETE", &format!("/kv/{key}"), None)?;
        Ok(answer["index"].as_u64().unwrap_or_default())
    }

    /// Sets `key` to `new` if it holds `expected` (`None`: absent); returns whether it did.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, ClientError> {
        let body = json!({ "expected": expected, "new": new });
        let answer = self.call("POST", &format!("/kv/{key}/cas"), Some(&body))?;
        Ok(answer["swapped"].as_bool().unwrap_or_default())
    }

    /// The `/status` of the node the client talks to.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn status(&mut self) -> Result<Value, ClientError> {
        self.call("GET", "/status", None)
    }

    /// Any request of the API; the JSON answer of a `200`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let body = body.map(|body| body.to_string().into_bytes());
        let HttpResponse { status, body, .. } = self.http.request(method, path, body.as_deref())?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status == 200 {
            Ok(answer)
        } else {
            let message = answer["error"].as_str().unwrap_or("no error text").to_owned();
            Err(ClientError::Status { status, message })
        }
    }
}
