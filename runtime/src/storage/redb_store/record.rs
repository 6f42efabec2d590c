//! Sealed records: every record of the redb store but the format marker is its payload
//! followed by a crc (the layout is described in the parent module's doc).

use redb::ReadableTable;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::db_error;
use crate::storage::{StorageError, StoredSnapshot};

/// The bytes of the crc at the end of a sealed record.
const CHECKSUM_BYTES: usize = 4;

/// The crc of a record stored under `key`: CRC-32 of the key's bytes, then the payload.
fn checksum(key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key);
    hasher.update(payload);
    hasher.finalize()
}

/// `payload` sealed for storage under `key`: followed by its crc.
fn seal(key: &[u8], mut payload: Vec<u8>) -> Vec<u8> {
    let crc = checksum(key, &payload);
    payload.extend_from_slice(&crc.to_be_bytes());
    payload
}

/// The payload of the sealed `record` read from under `key`.
///
/// # Errors
/// [`StorageError::Corrupt`] naming `what` when the record is too short to be sealed or its
/// crc does not match.
fn unseal<'a>(
    key: &[u8],
    record: &'a [u8],
    what: &dyn std::fmt::Display,
) -> Result<&'a [u8], StorageError> {
    let Some(length) = record.len().checked_sub(CHECKSUM_BYTES) else {
        let bytes = record.len();
        return Err(StorageError::Corrupt(format!(
            "{what}: {bytes} bytes, too short to be sealed"
        )));
    };
    let (payload, crc) = record.split_at(length);
    let crc: [u8; CHECKSUM_BYTES] = crc.try_into().expect("invariant: split off CHECKSUM_BYTES");
    if checksum(key, payload) != u32::from_be_bytes(crc) {
        return Err(StorageError::Corrupt(format!("{what}: checksum mismatch")));
    }
    Ok(payload)
}

/// `value` postcard-encoded and sealed for storage under `key`.
pub(super) fn encode<V: Serialize>(key: &[u8], value: &V) -> Result<Vec<u8>, StorageError> {
    let payload = postcard::to_stdvec(value)
        .map_err(|error| StorageError::Corrupt(format!("encode: {error}")))?;
    Ok(seal(key, payload))
}

/// The value of the sealed postcard `record` read from under `key`.
///
/// # Errors
/// [`StorageError::Corrupt`] naming `what` when the record fails [`unseal`], does not decode,
/// or has bytes left over.
pub(super) fn decode<V: DeserializeOwned>(
    key: &[u8],
    record: &[u8],
    what: &dyn std::fmt::Display,
) -> Result<V, StorageError> {
    let payload = unseal(key, record, what)?;
    let (value, rest) = postcard::take_from_bytes(payload)
        .map_err(|error| StorageError::Corrupt(format!("{what}: {error}")))?;
    if !rest.is_empty() {
        let extra = rest.len();
        return Err(StorageError::Corrupt(format!("{what}: {extra} bytes after the value")));
    }
    Ok(value)
}

/// A `u64` sealed for the `meta` table under `key`.
pub(super) fn encode_u64(key: &str, value: u64) -> Vec<u8> {
    seal(key.as_bytes(), value.to_be_bytes().to_vec())
}

/// The sealed `u64` stored in `meta` under `key`, if there is one.
///
/// # Errors
/// [`StorageError::Backend`] when it cannot be read; [`StorageError::Corrupt`] when it fails
/// [`unseal`] or is not 8 bytes.
pub(super) fn read_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, StorageError> {
    let Some(record) = meta.get(key).map_err(db_error)? else { return Ok(None) };
    let payload = unseal(key.as_bytes(), record.value(), &format_args!("meta {key}"))?;
    let bytes: [u8; 8] = payload
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("meta {key}: not 8 bytes")))?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

/// The sealed `u64` stored in `meta` under `key`.
///
/// # Errors
/// As [`read_u64`], and [`StorageError::Corrupt`] when there is none.
pub(super) fn require_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64, StorageError> {
    read_u64(meta, key)?.ok_or_else(|| StorageError::Corrupt(format!("no {key}")))
}

/// The key a log entry's record is sealed under: its index, big-endian.
pub(super) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The stored snapshot of a `snapshot` record.
pub(super) fn decode_snapshot(record: &[u8]) -> Result<StoredSnapshot, StorageError> {
    decode(b"snapshot", record, &"snapshot")
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepraft::{Entry, LogIndex, Payload, Term};

    fn entry(index: u64, command: &str) -> Entry<String> {
        Entry { term: Term(1), index: LogIndex(index), payload: Payload::Command(command.into()) }
    }

    #[test]
    fn a_record_is_valid_only_whole_and_under_its_own_key() {
        let record = encode(&log_key(5), &entry(5, "x")).expect("encodes");
        let decoded: Entry<String> = decode(&log_key(5), &record, &"log entry 5").expect("valid");
        assert_eq!(decoded, entry(5, "x"));
        let error =
            decode::<Entry<String>>(&log_key(6), &record, &"log entry 6").expect_err("moved");
        assert_eq!(error.to_string(), "corrupt store: log entry 6: checksum mismatch");
        let error = unseal(b"hard_state", &record[..3], &"hard state").expect_err("short");
        assert_eq!(error.to_string(), "corrupt store: hard state: 3 bytes, too short to be sealed");
        // A sealed payload with a byte after the value: the crc holds, the decoding refuses.
        let mut payload = postcard::to_stdvec(&entry(5, "x")).expect("encodes");
        payload.push(0);
        let error =
            decode::<Entry<String>>(&log_key(5), &seal(&log_key(5), payload), &"log entry 5")
                .expect_err("trailing");
        assert_eq!(error.to_string(), "corrupt store: log entry 5: 1 bytes after the value");
    }
}
