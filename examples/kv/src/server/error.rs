//! What the HTTP API answers when a request is not served, and with which status.

use serde_json::json;
use stepraft::{NodeId, ProposeError, ReadError};

use crate::driver::RequestError;
use crate::http::server::Response;
use crate::network::PeerBook;

/// A request the API did not serve.
///
/// Statuses carry a promise the crash test relies on: `503` means the request **did not** take
/// effect (safe to retry), `504` means its outcome is **unknown**.
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
    /// Refused before reaching the log (no leader, transfer in progress, overloaded, a read
    /// that could not be confirmed, an entry overwritten by another leader).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// No answer in time, or the node stopped: the request may or may not take effect.
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

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> ApiError {
        match error {
            RequestError::Propose(ProposeError::NotLeader { leader, .. }) => {
                ApiError::NotLeader { leader }
            }
            RequestError::Propose(
                error @ (ProposeError::ConditionFailed { .. }
                | ProposeError::Membership(_)
                | ProposeError::Empty),
            ) => ApiError::Conflict(error.to_string()),
            RequestError::Read(ReadError::NoLeader { .. }) => ApiError::NotLeader { leader: None },
            RequestError::Range(error) => ApiError::BadRequest(error.to_string()),
            RequestError::Transfer(error) => ApiError::Conflict(error.to_string()),
            error @ RequestError::TooManyLearners { .. } => ApiError::Conflict(error.to_string()),
            other => ApiError::Unavailable(other.to_string()),
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
