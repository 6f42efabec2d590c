//! The wire format shared by the TCP and UDP transports.
//!
//! A TCP connection starts with [`MAGIC`] (which also lets one port serve both the peer
//! protocol and HTTP), then carries frames: a big-endian `u32` payload length, then the
//! payload. A UDP datagram is [`MAGIC`] followed by one payload. Every payload starts with a
//! big-endian `u16` [`WIRE_VERSION`], read before anything else is decoded, so a peer speaking
//! another version is recognised and refused instead of being misread; the rest is a postcard
//! [`Envelope`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stepraft::NodeId;

use crate::network::PeerMessage;

/// The first four bytes of every peer connection and datagram.
pub const MAGIC: [u8; 4] = *b"SRFT";

/// The version of the envelope and message encoding this build speaks.
pub const WIRE_VERSION: u16 = 2;

/// The largest payload a frame may announce; larger ones close the connection. Generous
/// against the 1 MiB of commands an AppendEntries carries by default, small enough that a
/// hostile length prefix cannot make a node allocate gigabytes.
pub const FRAME_BYTES_MAX: usize = 8 << 20;

/// Who a message is from and for, and in which cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The cluster both nodes belong to; a mismatch means a misconfigured peer.
    pub cluster_id: u64,
    /// The sender.
    pub from: NodeId,
    /// The intended receiver.
    pub to: NodeId,
    /// The message.
    pub message: PeerMessage<T>,
}

/// A payload or frame that cannot be accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The payload is too short to hold a version.
    #[error("payload of {0} bytes is too short for a version header")]
    Truncated(usize),
    /// The peer speaks another version of the wire format.
    #[error("peer speaks wire version {found}, this node speaks {expected}")]
    Version {
        /// The version in the payload.
        found: u16,
        /// [`WIRE_VERSION`].
        expected: u16,
    },
    /// The payload is not a valid envelope.
    #[error("undecodable message: {0}")]
    Decode(postcard::Error),
    /// The message could not be encoded.
    #[error("unencodable message: {0}")]
    Encode(postcard::Error),
    /// A frame announced or reached more bytes than allowed.
    #[error("frame of {length} bytes exceeds the limit of {limit}")]
    Oversized {
        /// The announced or encoded length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The connection did not start with [`MAGIC`].
    #[error("not a stepraft peer connection (bad magic)")]
    BadMagic,
}

/// Encodes a payload: version, then the postcard envelope.
///
/// # Errors
/// [`WireError::Encode`] if serialisation fails.
pub fn encode_payload<T: Serialize>(envelope: &Envelope<T>) -> Result<Vec<u8>, WireError> {
    let buffer = WIRE_VERSION.to_be_bytes().to_vec();
    postcard::to_extend(envelope, buffer).map_err(WireError::Encode)
}

/// Encodes a length-prefixed TCP frame.
///
/// # Errors
/// [`WireError::Encode`], or [`WireError::Oversized`] past [`FRAME_BYTES_MAX`].
pub fn encode_frame<T: Serialize>(envelope: &Envelope<T>) -> Result<Vec<u8>, WireError> {
    let mut frame = vec![0; 4];
    frame.extend_from_slice(&WIRE_VERSION.to_be_bytes());
    let mut frame = postcard::to_extend(envelope, frame).map_err(WireError::Encode)?;
    let length = frame.len() - 4;
    if length > FRAME_BYTES_MAX {
        return Err(WireError::Oversized { length, limit: FRAME_BYTES_MAX });
    }
    frame[..4].copy_from_slice(&(length as u32).to_be_bytes());
    Ok(frame)
}

/// Decodes a payload, checking its version first.
///
/// # Errors
/// [`WireError::Truncated`], [`WireError::Version`] or [`WireError::Decode`].
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<Envelope<T>, WireError> {
    let Some((version, body)) = payload.split_first_chunk::<2>() else {
        return Err(WireError::Truncated(payload.len()));
    };
    let found = u16::from_be_bytes(*version);
    if found != WIRE_VERSION {
        return Err(WireError::Version { found, expected: WIRE_VERSION });
    }
    postcard::from_bytes(body).map_err(WireError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepraft::{Heartbeat, LogIndex, Term};

    fn envelope() -> Envelope<String> {
        let heartbeat = Heartbeat { term: Term(3), commit: LogIndex(7), round: 4 };
        Envelope {
            cluster_id: 9,
            from: NodeId(1),
            to: NodeId(2),
            message: crate::network::PeerMessage::Raft(stepraft::Message::Heartbeat(heartbeat)),
        }
    }

    #[test]
    fn a_frame_round_trips() {
        let frame = encode_frame(&envelope()).expect("encodes");
        let length = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(length, frame.len() - 4);
        let decoded: Envelope<String> = decode_payload(&frame[4..]).expect("decodes");
        assert_eq!(decoded, envelope());
    }

    #[test]
    fn another_version_is_refused_before_decoding() {
        let mut payload = encode_payload(&envelope()).expect("encodes");
        // Version 1 is the previous one (its envelopes held bare Raft messages).
        payload[..2].copy_from_slice(&1u16.to_be_bytes());
        let error = decode_payload::<String>(&payload).expect_err("refused");
        assert!(matches!(error, WireError::Version { found: 1, expected: 2 }), "{error}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for payload in [&[][..], &[0], &[0, 1], &[0, 1, 0xff, 0xff, 0xff], &[0, 1, 200, 1, 2, 3]] {
            assert!(decode_payload::<String>(payload).is_err(), "{payload:?}");
        }
    }
}
