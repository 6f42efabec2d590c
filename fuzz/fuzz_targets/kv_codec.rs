//! The reference runtime's wire decoder on arbitrary bytes: `stepraft_tokio::codec::decode_payload`
//! (version check, then a postcard envelope around a Raft message carrying KV commands) must
//! never panic, and whatever it accepts must encode back to a payload that decodes to the same
//! envelope. CI runs it with `-malloc_limit_mb=64`: a hostile length prefix must not make the
//! decoder allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepraft_tokio::codec::{decode_payload, encode_frame, encode_payload, Envelope};
use stepraft_kv::command::KvCommand;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = decode_payload::<KvCommand>(data) else { return };
    let payload = encode_payload(&envelope).expect("a decoded envelope encodes");
    let again: Envelope<KvCommand> = decode_payload(&payload).expect("its encoding decodes");
    assert_eq!(again, envelope, "decoding is stable under re-encoding");
    // A frame of it is either within the limit or refused, never a panic.
    let _ = encode_frame(&envelope);
});
