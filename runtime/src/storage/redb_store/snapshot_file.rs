//! Snapshot data in a file of its own beside the database, written ahead of the transaction
//! that records it.
//!
//! A snapshot is the whole state machine: megabytes that, written inside a redb transaction,
//! would hold up every write queued behind it (a follower's appended entries, say) for as long
//! as the data takes to reach the disk. So [`Storage::stage_snapshot`](super::Storage) writes
//! the data to `snapshot-<index>-<term>.data` (a temporary name, fsync, rename, fsync of the
//! directory) on a thread of its own, and the `Persist::Snapshot` that follows only records a
//! sealed pointer to it: the file's length and CRC-32, checked whenever it is read back.
//! A file no committed record points to (staged, then superseded or cut off by a crash) is
//! deleted once a later snapshot is recorded.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::storage::StorageError;

/// Deletes the files of stagings a crash interrupted: at open, before anything stages.
pub(super) fn delete_partial(directory: &Path) {
    let Ok(listing) = std::fs::read_dir(directory) else { return };
    for file in listing.flatten() {
        let name = file.file_name();
        let partial = name
            .to_str()
            .is_some_and(|name| name.starts_with("snapshot-") && name.ends_with(".partial"));
        if partial {
            let _ = std::fs::remove_file(file.path());
        }
    }
}

/// How much of a snapshot file is written between two syncs.
const SYNC_SLICE_BYTES: usize = 4 << 20;

/// The pointer a snapshot record keeps to its data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SnapshotFile {
    pub index: u64,
    pub term: u64,
    pub len: u64,
    pub crc: u32,
}

/// The data file of the snapshot at `(index, term)` in `directory`.
pub(super) fn path_of(directory: &Path, index: u64, term: u64) -> PathBuf {
    directory.join(format!("snapshot-{index:020}-{term:020}.data"))
}

/// Writes `data` durably as the file of the snapshot at `(index, term)`.
pub(super) fn write(
    directory: &Path,
    index: u64,
    term: u64,
    data: &[u8],
) -> Result<SnapshotFile, StorageError> {
    let path = path_of(directory, index, term);
    let temporary = path.with_extension("partial");
    let io_error =
        |source| StorageError::Directory { path: temporary.display().to_string(), source };
    {
        let mut file = std::fs::File::create(&temporary).map_err(io_error)?;
        // In slices, each made durable before the next: a filesystem that commits its journal
        // in order (ext4's data=ordered) would otherwise make the log's next fsync wait for all
        // of the snapshot's dirty pages at once.
        for slice in data.chunks(SYNC_SLICE_BYTES) {
            file.write_all(slice).map_err(io_error)?;
            file.sync_data().map_err(io_error)?;
        }
        file.sync_all().map_err(io_error)?;
    }
    std::fs::rename(&temporary, &path).map_err(io_error)?;
    std::fs::File::open(directory).and_then(|dir| dir.sync_all()).map_err(io_error)?;
    Ok(SnapshotFile { index, term, len: data.len() as u64, crc: crc32fast::hash(data) })
}

/// Reads the data `pointer` describes, refusing a missing, short or damaged file.
pub(super) fn read(directory: &Path, pointer: &SnapshotFile) -> Result<Vec<u8>, StorageError> {
    let path = path_of(directory, pointer.index, pointer.term);
    let name = path.display().to_string();
    let data = std::fs::read(&path)
        .map_err(|error| StorageError::Corrupt(format!("snapshot file {name}: {error}")))?;
    if data.len() as u64 != pointer.len || crc32fast::hash(&data) != pointer.crc {
        return Err(StorageError::Corrupt(format!("snapshot file {name}: checksum mismatch")));
    }
    Ok(data)
}

/// Deletes the finished snapshot files of indexes below `index` (best effort: a file left
/// behind is only disk space, deleted next time). A file still being written (`.partial`) is
/// left alone: a staging under way may finish after a newer snapshot was recorded.
pub(super) fn delete_older(directory: &Path, index: u64) {
    let Ok(listing) = std::fs::read_dir(directory) else { return };
    for file in listing.flatten() {
        let name = file.file_name();
        let Some(name) = name.to_str() else { continue };
        let older = name
            .strip_prefix("snapshot-")
            .and_then(|rest| rest.strip_suffix(".data"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|number| number.parse::<u64>().ok())
            .is_some_and(|found| found < index);
        if older {
            let _ = std::fs::remove_file(file.path());
        }
    }
}
