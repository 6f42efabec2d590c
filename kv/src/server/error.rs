//! What the HTTP API answers when a request is not served, and with which status.
//!
#![doc = include_str!("../../ERRORS.md")]

use serde_json::json;
use stepraft::{NodeId, ProposeError, ReadError};

use crate::http::server::Response;
use stepraft_tokio::driver::RequestError;
use stepraft_tokio::network::PeerBook;

/// A request the API did not serve.
///
/// Statuses carry a promise clients rely on: `503` (and every other 4xx/5xx but `504`) means
/// the request **did not** take effect and never will (safe to retry), `504` means its outcome
/// is **unknown** (read before retrying a write that is not idempotent).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// This node does not lead; `leader` is its best guess (a redirect when its address is
    /// known).
    #[error("not the leader")]
    NotLeader {
        /// The leader hint.
        leader: Option<NodeId>,
    },
    /// No effect, and none later: refused before reaching the log (no leader, transfer in
    /// progress, overloaded, node stopped before taking the request), a read that could not
    /// be confirmed, or an entry overwritten by another leader. Answered `503`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request may or may not take effect: no answer in time, the node stopped while the
    /// request was with it, or a snapshot covered a pending write. Answered `504`.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// A conditional or membership request that cannot apply to the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such route.
    #[error("not found")]
    NotFound,
    /// The route exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed,
}

/// The driver's refusals, each with the promise its status makes (the table in `ERRORS.md`).
impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> ApiError {
        match error {
            // The core's `Rejected` means "not appended": every proposal refusal is no effect.
            RequestError::Propose(ProposeError::NotLeader { leader, .. }) => {
                ApiError::NotLeader { leader }
            }
            RequestError::Propose(
                error @ (ProposeError::ConditionFailed { .. }
                | ProposeError::Membership(_)
                | ProposeError::Empty),
            ) => ApiError::Conflict(error.to_string()),
            RequestError::Propose(error) => ApiError::Unavailable(error.to_string()),
            // A read changes nothing, so a refused read is always no effect.
            RequestError::Read(ReadError::NoLeader { .. }) => ApiError::NotLeader { leader: None },
            RequestError::Read(error) => ApiError::Unavailable(error.to_string()),
            RequestError::Range(error) => ApiError::BadRequest(error.to_string()),
            RequestError::Transfer(error) => ApiError::Conflict(error.to_string()),
            error @ RequestError::TooManyLearners { .. } => ApiError::Conflict(error.to_string()),
            // Another entry committed at the proposal's index (§5.3 Log Matching): it never
            // will.
            error @ RequestError::Lost { .. } => ApiError::Unavailable(error.to_string()),
            // The snapshot holds the state past the proposal's index without saying which
            // entries made it: the proposal may have committed.
            error @ RequestError::CoveredBySnapshot { .. } => ApiError::Unknown(error.to_string()),
            error @ RequestError::Snapshot(_) => ApiError::Unavailable(error.to_string()),
            // A refusal of a later runtime version: its own promise decides.
            error if error.took_no_effect() => ApiError::Unavailable(error.to_string()),
            error => ApiError::Unknown(error.to_string()),
        }
    }
}

impl ApiError {
    /// The HTTP response: a redirect to the leader when its address is known, else a status
    /// and a JSON body `{"error": ..., "leader": ...}`.
    pub fn into_response(self, book: &PeerBook, path_and_query: &str) -> Response {
        let (status, leader) = match &self {
            ApiError::NotLeader { leader } => {
                if let Some(address) = leader.and_then(|leader| book.address(leader)) {
                    let mut response = Response::json(
                        307,
                        &json!({ "error": self.to_string(), "leader": leader.map(|l| l.0) }),
                    );
                    response.location = Some(format!("http://{address}{path_and_query}"));
                    return response;
                }
                (503, leader.map(|l| l.0))
            }
            ApiError::Unavailable(_) => (503, None),
            ApiError::Unknown(_) => (504, None),
            ApiError::Conflict(_) => (409, None),
            ApiError::BadRequest(_) => (400, None),
            ApiError::NotFound => (404, None),
            ApiError::MethodNotAllowed => (405, None),
        };
        Response::json(status, &json!({ "error": self.to_string(), "leader": leader }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepraft::{LogIndex, MembershipError, RangeError, SnapshotError, Term, TransferError};

    /// Every driver refusal and the status it gets: `504` only where the outcome is unknown.
    #[test]
    fn every_driver_refusal_gets_the_status_of_its_promise() {
        let term = Term(3);
        let index = LogIndex(7);
        let cases: Vec<(RequestError, u16)> = vec![
            (ProposeError::NotLeader { leader: None, term }.into(), 503),
            (ProposeError::NotLeader { leader: Some(NodeId(2)), term }.into(), 307),
            (ProposeError::NotLeader { leader: Some(NodeId(9)), term }.into(), 503),
            (ProposeError::TransferInProgress { target: NodeId(2) }.into(), 503),
            (ProposeError::TooManyUncommittedBytes { would_be: 2, limit: 1 }.into(), 503),
            (ProposeError::Empty.into(), 409),
            (ProposeError::Membership(MembershipError::LeaderNotReady).into(), 409),
            (
                ProposeError::ConditionFailed {
                    expected_index: index,
                    expected_term: term,
                    last_index: index,
                    last_term: Term(4),
                }
                .into(),
                409,
            ),
            (ReadError::NoLeader { term }.into(), 503),
            (ReadError::LeadershipLost { term }.into(), 503),
            (ReadError::RefusedByLeader.into(), 503),
            (ReadError::TimedOut.into(), 503),
            (RangeError::StartsAtZero.into(), 400),
            (TransferError::AlreadyLeader.into(), 409),
            (SnapshotError::NotApplied { index, applied: LogIndex(1) }.into(), 503),
            (RequestError::TooManyLearners { learners: 2, max: 1 }, 409),
            (RequestError::Lost { index }, 503),
            (RequestError::CoveredBySnapshot { index }, 504),
            (RequestError::NotRunning, 503),
            (RequestError::Overloaded, 503),
            (RequestError::Stopped, 504),
            (RequestError::ForwardRefused { leader: NodeId(2), reason: "full".into() }, 503),
            (RequestError::ForwardUnknown { leader: NodeId(2), reason: "timeout".into() }, 504),
        ];
        let book = PeerBook::new([(NodeId(2), "127.0.0.1:7002".to_owned())]);
        for (error, status) in cases {
            let text = error.to_string();
            let response = ApiError::from(error).into_response(&book, "/kv/a");
            assert_eq!(response.status, status, "{text}");
        }
    }

    #[test]
    fn a_write_a_snapshot_covered_is_unknown_and_says_so() {
        let error = ApiError::from(RequestError::CoveredBySnapshot { index: LogIndex(7) });
        assert!(matches!(error, ApiError::Unknown(_)), "{error:?}");
        assert!(error.to_string().starts_with("outcome unknown"), "{error}");
    }
}
