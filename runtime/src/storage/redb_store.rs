//! The log, hard state and snapshot in one redb database file.
//!
//! Schema (one file, `stepraft-kv.redb`, in the data directory):
//! * `meta`: `format` (the format marker), `cluster_id` and `node_id` (sealed big-endian
//!   `u64`s) — written once when the store is created and checked on every open, so a
//!   directory of another node, cluster or program is refused instead of silently reused;
//!   `log_start` (a sealed big-endian `u64`), the first index the log holds (1 until a
//!   compaction drops a prefix).
//! * `hard_state`: one record, the sealed postcard-encoded `HardState`.
//! * `log`: index → the sealed postcard-encoded `Entry<T>`. Records below `log_start` are
//!   compacted away and ignored; each transaction deletes up to 512 of them.
//! * `snapshot`: the record `snapshot`, a sealed postcard-encoded [`StoredSnapshot`] written by
//!   `Persist::Snapshot` (with `Persist::Compact { through }` moving `log_start` past the log
//!   prefix it covers); and, when the snapshot's data was staged
//!   ([`Storage::stage_snapshot`]), the record `file`: a sealed pointer (index, term, length,
//!   CRC-32) to the data file `snapshot-<index>-<term>.data` beside the database, the
//!   snapshot record's own data then empty (see `snapshot_file.rs`).
//!
//! A sealed record is `payload ‖ crc`: the payload, then a 4-byte big-endian CRC-32 (IEEE,
//! `crc32fast`) of the record's key followed by the payload. The key is the `&str` key's UTF-8
//! bytes, or the log index as 8 big-endian bytes, so a record is valid only under the key it
//! was written to. Every read checks the crc before decoding and refuses a mismatch with
//! [`StorageError::Corrupt`] naming the record ("log entry 17: checksum mismatch"); a payload
//! that decodes with bytes left over is refused too. Only the `format` marker is stored bare:
//! it is compared whole against [`FORMAT`], so any change to it already refuses the store, and
//! a store of an older format must still be told apart by it (as a foreign store).
//!
//! Each `persist` is one redb write transaction committed with immediate durability (one
//! fsync; redb's two-phase commit is off). redb's commit is atomic, so a `kill -9` leaves
//! either the previous or the new state. A damaged header or a truncated file is refused at
//! open (see `open_existing`). redb verifies its page checksums only when it repairs after an
//! unclean shutdown (a killed or stopped `serve` does not close its store), not on every read:
//! if pages of the newest commit fail them, redb takes it for a torn write and silently rolls
//! back to the previous commit, losing what the newest one persisted; if older pages fail, it
//! refuses the store. Each record's crc is checked wherever the record is read: at open for
//! `meta`; by `load`, `snapshot`, and the entry a `Persist::Snapshot` reads back, for the rest.
//! So a flipped bit that redb's repair does not look at (a store closed cleanly, or damage
//! after the repair) is refused too. A damaged key shows up as a missing record, a hole in
//! the log or a crc mismatch. Damage to redb's own structure around the records (its B-tree
//! pages) is left to redb.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stepraft::{DurableState, Entry, HardState, LogIndex, Persist, Snapshot, SnapshotMeta};

use super::{Storage, StorageError, StoredSnapshot};
use record::{decode, decode_snapshot, encode, encode_u64, log_key, read_u64, require_u64};

mod record;
mod snapshot_file;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HARD_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("hard_state");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

/// The format marker; bump it when the schema changes incompatibly. (2: sealed records; 3:
/// snapshot data may live in a file beside the database, which a reader of format 2 would take
/// for an empty snapshot.)
const FORMAT: &str = "stepraft-kv/3";
/// The format this build upgrades at open: a store of it is one of format 3 without files.
const PREVIOUS_FORMAT: &str = "stepraft-kv/2";
/// redb's page cache (its default is 1 GiB). The store is written far more than read: the core
/// keeps the log it serves in memory, and reads come only at start-up (`load`) and when a
/// snapshot checks the entry at its index. The cache needs to hold the pages that recent
/// transactions touch — the log's right edge and the B-tree's upper levels — not the log.
const CACHE_BYTES: usize = 32 << 20;
/// The database file inside the data directory.
const FILE_NAME: &str = "stepraft-kv.redb";

/// Which node of which cluster a store belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreIdentity {
    /// The cluster id.
    pub cluster_id: u64,
    /// The node id.
    pub node_id: u64,
}

/// Durable storage in a redb database.
pub struct RedbStorage<T> {
    database: Database,
    path: PathBuf,
    /// Snapshot files this process staged and no record points to yet.
    staged: std::sync::Mutex<Vec<snapshot_file::SnapshotFile>>,
    _commands: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for RedbStorage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStorage").field("path", &self.path).finish()
    }
}

fn db_error(error: impl Into<redb::Error>) -> StorageError {
    StorageError::Backend(Box::new(error.into()))
}

/// Opens an existing database file, turning a panic inside redb into an error.
///
/// redb 2.x reports most damage as errors, but asserts on some of its header's fields while
/// opening: a file shorter than the layout its header records (truncated by even one byte)
/// fails `assert!(raw_file_len >= layout.len)`, and a header whose page size differs from the
/// one opened with fails an `assert_eq!`. Both assertions run before redb writes anything, so
/// catching the unwind leaves the file as it was. `catch_unwind` is the only way to keep them
/// from killing the process: the fields are redb's internal format, which this crate does
/// not parse, and no open option skips the checks. Nothing is shared across the unwind but
/// the path, so no broken state can be observed afterwards.
fn open_existing(path: &Path) -> Result<Database, StorageError> {
    let hook = std::panic::take_hook();
    // Start-up only: the message becomes the error instead of a panic report on stderr.
    let message = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let captured = std::sync::Arc::clone(&message);
    std::panic::set_hook(Box::new(move |info| {
        let text = match info.payload().downcast_ref::<&str>() {
            Some(text) => (*text).to_owned(),
            None => info.payload().downcast_ref::<String>().cloned().unwrap_or_default(),
        };
        if let Ok(mut slot) = captured.lock() {
            *slot = Some(text);
        }
    }));
    let opened =
        std::panic::catch_unwind(|| redb::Builder::new().set_cache_size(CACHE_BYTES).open(path));
    std::panic::set_hook(hook);
    match opened {
        Ok(result) => result.map_err(db_error),
        Err(_) => {
            let detail = message.lock().ok().and_then(|mut slot| slot.take()).unwrap_or_default();
            Err(StorageError::Damaged { path: path.display().to_string(), detail })
        }
    }
}

impl<T> RedbStorage<T> {
    /// Opens the store in `directory`, creating both when the directory is missing or empty.
    ///
    /// # Errors
    /// [`StorageError::ForeignDirectory`] for a non-empty directory without a store,
    /// [`StorageError::ForeignStore`] / [`StorageError::WrongIdentity`] for someone else's
    /// store, [`StorageError::Backend`] for an unreadable or corrupt file.
    pub fn open(directory: &Path, identity: StoreIdentity) -> Result<RedbStorage<T>, StorageError> {
        let directory_error =
            |source| StorageError::Directory { path: directory.display().to_string(), source };
        std::fs::create_dir_all(directory).map_err(directory_error)?;
        let path = directory.join(FILE_NAME);
        if path.exists() {
            snapshot_file::delete_partial(directory);
            let database = open_existing(&path)?;
            let storage =
                RedbStorage { database, path, staged: Default::default(), _commands: PhantomData };
            storage.check_identity(identity)?;
            return Ok(storage);
        }
        let mut listing = std::fs::read_dir(directory).map_err(directory_error)?;
        if listing.next().is_some() {
            return Err(StorageError::ForeignDirectory { path: directory.display().to_string() });
        }
        let database =
            redb::Builder::new().set_cache_size(CACHE_BYTES).create(&path).map_err(db_error)?;
        let storage =
            RedbStorage { database, path, staged: Default::default(), _commands: PhantomData };
        storage.initialise(identity)?;
        Ok(storage)
    }

    /// Writes the identity and creates every table, in one durable transaction.
    fn initialise(&self, identity: StoreIdentity) -> Result<(), StorageError> {
        let transaction = self.database.begin_write().map_err(db_error)?;
        {
            let mut meta = transaction.open_table(META).map_err(db_error)?;
            meta.insert("format", FORMAT.as_bytes()).map_err(db_error)?;
            let cluster = encode_u64("cluster_id", identity.cluster_id);
            meta.insert("cluster_id", &cluster[..]).map_err(db_error)?;
            let node = encode_u64("node_id", identity.node_id);
            meta.insert("node_id", &node[..]).map_err(db_error)?;
            meta.insert("log_start", &encode_u64("log_start", 1)[..]).map_err(db_error)?;
            transaction.open_table(HARD_STATE).map_err(db_error)?;
            transaction.open_table(LOG).map_err(db_error)?;
            transaction.open_table(SNAPSHOT).map_err(db_error)?;
        }
        transaction.commit().map_err(db_error)
    }

    fn check_identity(&self, identity: StoreIdentity) -> Result<(), StorageError> {
        let foreign = |found: Option<String>| StorageError::ForeignStore {
            path: self.path.display().to_string(),
            expected: FORMAT.to_owned(),
            found,
        };
        let transaction = self.database.begin_read().map_err(db_error)?;
        let meta = match transaction.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Err(foreign(None)),
            Err(error) => return Err(db_error(error)),
        };
        // The marker is stored bare (see the module doc): any store, of any format, names it.
        let format = meta
            .get("format")
            .map_err(db_error)?
            .map(|record| String::from_utf8_lossy(record.value()).into_owned());
        let upgrade = format.as_deref() == Some(PREVIOUS_FORMAT);
        if format.as_deref() != Some(FORMAT) && !upgrade {
            return Err(foreign(format));
        }
        let found_cluster = require_u64(&meta, "cluster_id")?;
        let found_node = require_u64(&meta, "node_id")?;
        if (found_cluster, found_node) != (identity.cluster_id, identity.node_id) {
            return Err(StorageError::WrongIdentity {
                node: identity.node_id,
                cluster: identity.cluster_id,
                found_node,
                found_cluster,
            });
        }
        require_u64(&meta, "log_start")?;
        drop(meta);
        drop(transaction);
        if upgrade {
            let transaction = self.database.begin_write().map_err(db_error)?;
            transaction
                .open_table(META)
                .map_err(db_error)?
                .insert("format", FORMAT.as_bytes())
                .map_err(db_error)?;
            transaction.commit().map_err(db_error)?;
        }
        Ok(())
    }

    /// The directory the database file is in, where snapshot data files go too.
    fn directory(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The stored snapshot with its data, read from its data file when it has one.
    fn read_snapshot(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
    ) -> Result<Option<StoredSnapshot>, StorageError> {
        let Some(record) = table.get("snapshot").map_err(db_error)? else { return Ok(None) };
        let mut stored = decode_snapshot(record.value())?;
        if let Some(record) = table.get("file").map_err(db_error)? {
            let pointer: snapshot_file::SnapshotFile =
                decode(b"file", record.value(), &"snapshot file record")?;
            if (pointer.index, pointer.term) == (stored.index.0, stored.term.0) {
                stored.data = snapshot_file::read(self.directory(), &pointer)?;
            }
        }
        Ok(Some(stored))
    }

    /// The stored snapshot, if any.
    ///
    /// # Errors
    /// [`StorageError`] when it cannot be read or decoded.
    pub fn snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let transaction = self.database.begin_read().map_err(db_error)?;
        let table = transaction.open_table(SNAPSHOT).map_err(db_error)?;
        self.read_snapshot(&table)
    }
}

impl<T> Storage<T> for RedbStorage<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn load(&self) -> Result<DurableState<T>, StorageError> {
        let transaction = self.database.begin_read().map_err(db_error)?;
        let hard_state = match transaction
            .open_table(HARD_STATE)
            .map_err(db_error)?
            .get("hard_state")
            .map_err(db_error)?
        {
            Some(record) => decode(b"hard_state", record.value(), &"hard state")?,
            None => HardState::default(),
        };
        let log_start = require_u64(&transaction.open_table(META).map_err(db_error)?, "log_start")?;
        let snapshot = {
            let table = transaction.open_table(SNAPSHOT).map_err(db_error)?;
            match self.read_snapshot(&table)? {
                Some(stored) => Some(Snapshot {
                    meta: SnapshotMeta {
                        index: stored.index,
                        term: stored.term,
                        membership: stored.membership.into(),
                    },
                    data: stored.data.into(),
                }),
                None => None,
            }
        };
        let log = transaction.open_table(LOG).map_err(db_error)?;
        let mut entries = Vec::new();
        // Records below `log_start` are compacted ones not deleted yet (see `drop_stale`).
        for record in log.range(log_start..).map_err(db_error)? {
            let (key, value) = record.map_err(db_error)?;
            let index = key.value();
            let expected = log_start + entries.len() as u64;
            if index != expected {
                return Err(StorageError::Corrupt(format!(
                    "log has a hole: found index {index} where {expected} was expected"
                )));
            }
            let entry: Entry<T> =
                decode(&log_key(index), value.value(), &format_args!("log entry {index}"))?;
            if entry.index != LogIndex(index) {
                return Err(StorageError::Corrupt(format!(
                    "log record {index} holds entry {}",
                    entry.index.0
                )));
            }
            entries.push(entry);
        }
        Ok(DurableState { hard_state, snapshot, entries })
    }

    fn stage_snapshot(&self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let (index, term) = (snapshot.meta.index.0, snapshot.meta.term.0);
        let pointer = snapshot_file::write(self.directory(), index, term, &snapshot.data)?;
        let mut staged = self.staged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        staged.retain(|file| (file.index, file.term) != (index, term));
        staged.push(pointer);
        Ok(())
    }

    fn persist(&self, changes: &[Persist<T>]) -> Result<(), StorageError> {
        // Default durability is `Immediate`: the commit returns after an fsync.
        let transaction = self.database.begin_write().map_err(db_error)?;
        let mut recorded_snapshot = None;
        {
            let mut hard_state = transaction.open_table(HARD_STATE).map_err(db_error)?;
            let mut log = transaction.open_table(LOG).map_err(db_error)?;
            let mut meta = transaction.open_table(META).map_err(db_error)?;
            let mut snapshots = transaction.open_table(SNAPSHOT).map_err(db_error)?;
            for change in changes {
                match change {
                    Persist::HardState(state) => {
                        let record = encode(b"hard_state", state)?;
                        hard_state.insert("hard_state", &record[..]).map_err(db_error)?;
                    }
                    Persist::Append(entries) => {
                        for entry in entries {
                            let record = encode(&log_key(entry.index.0), entry)?;
                            log.insert(entry.index.0, &record[..]).map_err(db_error)?;
                        }
                    }
                    Persist::Truncate { from } => {
                        log.retain_in(from.0.., |_, _| false).map_err(db_error)?;
                    }
                    Persist::Snapshot(snapshot) => {
                        let SnapshotMeta { index, term, membership } = snapshot.meta.clone();
                        // Data this process staged stays in its file; the record points to it.
                        let pointer = snapshot_file::SnapshotFile {
                            index: index.0,
                            term: term.0,
                            len: snapshot.data.len() as u64,
                            crc: crc32fast::hash(&snapshot.data),
                        };
                        let staged = self
                            .staged
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .contains(&pointer);
                        let stored = StoredSnapshot {
                            index,
                            term,
                            membership: stepraft::Membership::clone(&membership),
                            data: if staged { Vec::new() } else { snapshot.data.to_vec() },
                        };
                        let record = encode(b"snapshot", &stored)?;
                        snapshots.insert("snapshot", &record[..]).map_err(db_error)?;
                        if staged {
                            let record = encode(b"file", &pointer)?;
                            snapshots.insert("file", &record[..]).map_err(db_error)?;
                        } else {
                            snapshots.remove("file").map_err(db_error)?;
                        }
                        recorded_snapshot = Some(index.0);
                        // The log stays if it holds the snapshot's last entry; otherwise it is
                        // replaced by the snapshot and continues after it.
                        let held = match log.get(index.0).map_err(db_error)? {
                            Some(record) => {
                                let entry: Entry<T> = decode(
                                    &log_key(index.0),
                                    record.value(),
                                    &format_args!("log entry {}", index.0),
                                )?;
                                entry.term == term
                            }
                            None => false,
                        };
                        if !held {
                            log.retain(|_, _| false).map_err(db_error)?;
                            let start = encode_u64("log_start", index.0 + 1);
                            meta.insert("log_start", &start[..]).map_err(db_error)?;
                        }
                    }
                    Persist::Compact { through } => {
                        // Only the start moves here; the records below it are deleted a bounded
                        // number per transaction, so that compacting thousands of entries
                        // never makes one write long.
                        let current = read_u64(&meta, "log_start")?.unwrap_or(1);
                        let start = encode_u64("log_start", current.max(through.0 + 1));
                        meta.insert("log_start", &start[..]).map_err(db_error)?;
                    }
                    // An instruction newer than this runtime stops the node rather than being
                    // skipped: skipping a persist would break durability.
                    _ => {
                        return Err(StorageError::Unsupported(
                            "a persist kind newer than this runtime (snapshot or compaction)"
                                .to_owned(),
                        ));
                    }
                }
            }
            let log_start = read_u64(&meta, "log_start")?.unwrap_or(1);
            drop_stale(&mut log, log_start)?;
        }
        transaction.commit().map_err(db_error)?;
        if let Some(index) = recorded_snapshot {
            snapshot_file::delete_older(self.directory(), index);
            let mut staged = self.staged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            staged.retain(|file| file.index > index);
        }
        Ok(())
    }
}

/// Most compacted log records one transaction deletes.
const STALE_DELETES_MAX: usize = 512;

/// Deletes up to [`STALE_DELETES_MAX`] log records below `log_start`: a compaction's records go
/// over the next transactions, each a little longer, rather than in one long one.
fn drop_stale(log: &mut redb::Table<u64, &[u8]>, log_start: u64) -> Result<(), StorageError> {
    for _ in 0..STALE_DELETES_MAX {
        let first = log.first().map_err(db_error)?.map(|(index, _)| index.value());
        match first {
            Some(index) if index < log_start => {
                log.remove(index).map_err(db_error)?;
            }
            _ => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;
    use stepraft::{NodeId, Payload, Term};

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stepraft-kv-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    const ME: StoreIdentity = StoreIdentity { cluster_id: 7, node_id: 1 };

    fn entry(index: u64, term: u64, command: &str) -> Entry<String> {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: Payload::Command(command.into()),
        }
    }

    #[test]
    fn persisted_state_survives_reopening() {
        let dir = temp_dir("reopen");
        {
            let store = RedbStorage::<String>::open(&dir, ME).expect("creates");
            let hard_state =
                HardState { term: Term(2), voted_for: Some(NodeId(1)), commit: LogIndex(1) };
            store
                .persist(&[
                    Persist::HardState(hard_state),
                    Persist::Append(vec![entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 2, "c")]),
                    Persist::Truncate { from: LogIndex(3) },
                    Persist::Append(vec![entry(3, 2, "d")]),
                ])
                .expect("persists");
        }
        let store = RedbStorage::<String>::open(&dir, ME).expect("reopens");
        let state = store.load().expect("loads");
        assert_eq!(state.hard_state.term, Term(2));
        assert_eq!(state.hard_state.voted_for, Some(NodeId(1)));
        let commands: Vec<_> = state.entries.iter().filter_map(|e| e.command().cloned()).collect();
        assert_eq!(commands, ["a", "b", "d"]);
        assert_eq!(store.snapshot().expect("reads"), None);
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    /// A staged snapshot's data lives in its file: the store reads it back from there, refuses
    /// a damaged file, and deletes the file once a newer snapshot is recorded.
    #[test]
    fn a_staged_snapshot_is_kept_in_its_own_file() {
        let dir = temp_dir("staged-snapshot");
        let snapshot = |index: u64, data: &[u8]| Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(index),
                term: Term(1),
                membership: stepraft::Membership::with_voters([NodeId(1)]).into(),
            },
            data: std::sync::Arc::from(data),
        };
        let files = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .expect("lists")
                .filter_map(|file| file.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with("snapshot-"))
                .collect();
            names.sort();
            names
        };
        let store = RedbStorage::<String>::open(&dir, ME).expect("creates");
        store.persist(&[Persist::Append((1..=10).map(|i| entry(i, 1, "x")).collect())]).unwrap();
        let first = snapshot(5, b"state at five");
        store.stage_snapshot(&first).expect("stages");
        store.persist(&[Persist::Snapshot(first.clone())]).expect("records");
        assert_eq!(files(&dir), [format!("snapshot-{:020}-{:020}.data", 5, 1)]);
        drop(store);
        let store = RedbStorage::<String>::open(&dir, ME).expect("reopens");
        assert_eq!(store.load().expect("loads").snapshot, Some(first.clone()));

        // A newer snapshot, installed inline, replaces it and its file goes; a staging still
        // under way (an older index, say) is left alone.
        let partial = dir.join(format!("snapshot-{:020}-{:020}.partial", 7, 1));
        std::fs::write(&partial, b"half").expect("a staging under way");
        let second = snapshot(8, b"state at eight");
        store.persist(&[Persist::Snapshot(second.clone())]).expect("records");
        assert_eq!(files(&dir), [format!("snapshot-{:020}-{:020}.partial", 7, 1)]);
        std::fs::remove_file(&partial).expect("the staging ends");
        assert_eq!(store.load().expect("loads").snapshot, Some(second));

        // A damaged data file is refused, naming the file.
        let third = snapshot(9, b"state at nine");
        store.stage_snapshot(&third).expect("stages");
        store.persist(&[Persist::Snapshot(third)]).expect("records");
        let path = dir.join(format!("snapshot-{:020}-{:020}.data", 9, 1));
        std::fs::write(&path, b"state at nino").expect("damages");
        let error = store.load().expect_err("refused");
        assert!(error.to_string().contains("checksum mismatch"), "{error}");
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    /// A compaction of thousands of entries moves the log's start at once and deletes the
    /// records a bounded number per transaction; the store never shows the stale ones.
    #[test]
    fn a_large_compaction_is_deleted_over_several_transactions() {
        let dir = temp_dir("bounded-compaction");
        let store = RedbStorage::<String>::open(&dir, ME).expect("creates");
        store.persist(&[Persist::Append((1..=2000).map(|i| entry(i, 1, "x")).collect())]).unwrap();
        let snapshot = Persist::Snapshot(Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(1900),
                term: Term(1),
                membership: stepraft::Membership::with_voters([NodeId(1)]).into(),
            },
            data: std::sync::Arc::from(&b"state"[..]),
        });
        store.persist(&[snapshot, Persist::Compact { through: LogIndex(1900) }]).unwrap();
        let records = |store: &RedbStorage<String>| {
            let transaction = store.database.begin_read().expect("reads");
            transaction.open_table(LOG).expect("log").len().expect("counts")
        };
        assert_eq!(records(&store), 2000 - STALE_DELETES_MAX as u64, "one bounded batch");
        let first = |store: &RedbStorage<String>| store.load().expect("loads").entries[0].index;
        assert_eq!(first(&store), LogIndex(1901), "the stale records are not part of the log");
        let hard_state = HardState { term: Term(1), voted_for: None, commit: LogIndex(2000) };
        for _ in 0..3 {
            store.persist(&[Persist::HardState(hard_state)]).unwrap();
        }
        assert_eq!(records(&store), 100, "every later transaction deletes another batch");
        drop(store);
        let store = RedbStorage::<String>::open(&dir, ME).expect("reopens");
        assert_eq!(first(&store), LogIndex(1901));
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_snapshot_and_compaction_survive_reopening_like_the_in_memory_store() {
        let dir = temp_dir("snapshot");
        let snapshot = |index: u64, term: u64| {
            Persist::Snapshot(Snapshot {
                meta: SnapshotMeta {
                    index: LogIndex(index),
                    term: Term(term),
                    membership: stepraft::Membership::with_voters([NodeId(1)]).into(),
                },
                data: std::sync::Arc::from(&b"state"[..]),
            })
        };
        let changes = [
            Persist::Append((1..=5).map(|i| entry(i, 1, "x")).collect()),
            snapshot(3, 1),
            Persist::Compact { through: LogIndex(2) },
            Persist::Append(vec![entry(6, 1, "y")]),
        ];
        let mut expected = DurableState::default();
        {
            let store = RedbStorage::<String>::open(&dir, ME).expect("creates");
            store.persist(&changes).expect("persists");
            changes.iter().for_each(|change| expected.apply(change));
        }
        let store = RedbStorage::<String>::open(&dir, ME).expect("reopens");
        assert_eq!(store.load().expect("loads"), expected);
        assert_eq!(expected.first_index(), LogIndex(3));
        // A snapshot whose last entry the log does not hold replaces the log.
        let more = [snapshot(9, 2)];
        store.persist(&more).expect("persists");
        more.iter().for_each(|change| expected.apply(change));
        let loaded = store.load().expect("loads");
        assert_eq!(loaded, expected);
        assert!(loaded.entries.is_empty());
        assert_eq!(loaded.first_index(), LogIndex(10));
        drop(store);
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn another_nodes_store_is_refused() {
        let dir = temp_dir("identity");
        drop(RedbStorage::<String>::open(&dir, ME).expect("creates"));
        let other = StoreIdentity { cluster_id: 7, node_id: 2 };
        let error = RedbStorage::<String>::open(&dir, other).expect_err("refused");
        assert!(matches!(error, StorageError::WrongIdentity { found_node: 1, .. }), "{error}");
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_foreign_or_corrupt_directory_is_refused_not_reset() {
        let dir = temp_dir("foreign");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("notes.txt"), "not ours").expect("write");
        let error = RedbStorage::<String>::open(&dir, ME).expect_err("refused");
        assert!(matches!(error, StorageError::ForeignDirectory { .. }), "{error}");

        std::fs::write(dir.join(FILE_NAME), vec![0xAB; 4096]).expect("write");
        let error = RedbStorage::<String>::open(&dir, ME).expect_err("refused");
        assert!(matches!(error, StorageError::Backend(_)), "{error}");
        // Nothing was reset: the garbage is still there for the operator to inspect.
        assert_eq!(std::fs::read(dir.join(FILE_NAME)).expect("read"), vec![0xAB; 4096]);
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    /// A store of node 1 holding a few entries, closed; returns its file.
    fn closed_store(dir: &Path) -> PathBuf {
        let store = RedbStorage::<String>::open(dir, ME).expect("creates");
        let entries = (1..=20).map(|i| entry(i, 1, "recognisable-command")).collect();
        store.persist(&[Persist::Append(entries)]).expect("persists");
        drop(store);
        dir.join(FILE_NAME)
    }

    /// Opening and loading the damaged store fails with an error, and leaves it as it was.
    fn assert_refused_untouched(dir: &Path, identity: StoreIdentity) -> StorageError {
        let before = std::fs::read(dir.join(FILE_NAME)).expect("read");
        let error = RedbStorage::<String>::open(dir, identity)
            .and_then(|store| store.load().map(drop))
            .expect_err("refused");
        assert!(before == std::fs::read(dir.join(FILE_NAME)).expect("read"), "modified: {error}");
        error
    }

    #[test]
    fn a_truncated_store_is_refused_with_an_error_and_left_as_it_is() {
        let dir = temp_dir("truncated");
        let file = closed_store(&dir);
        let length = std::fs::metadata(&file).expect("stat").len();
        for cut in [1, 4096, length / 2] {
            let handle = std::fs::OpenOptions::new().write(true).open(&file).expect("open");
            handle.set_len(length - cut).expect("truncate");
            drop(handle);
            let error = assert_refused_untouched(&dir, ME);
            assert!(error.to_string().contains("damaged"), "{error}");
        }
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_bit_flipped_store_is_refused_with_an_error_and_left_as_it_is() {
        let dir = temp_dir("flipped");
        let file = closed_store(&dir);
        let pristine = std::fs::read(&file).expect("read");
        // Every copy of a record: pages of earlier transactions may still hold old ones.
        let every = |needle: &[u8], at: usize| -> Vec<usize> {
            let windows = pristine.windows(needle.len()).enumerate();
            windows.filter(|(_, w)| *w == needle).map(|(i, _)| i + at).collect()
        };
        // The header's magic and the format marker. (A flip inside a record is refused by its
        // crc: see `a_flipped_bit_in_any_record_is_refused_naming_the_record`.)
        let flips = [vec![0], every(FORMAT.as_bytes(), 3)];
        for offsets in flips {
            let mut bytes = pristine.clone();
            offsets.iter().for_each(|&offset| bytes[offset] ^= 0x10);
            std::fs::write(&file, &bytes).expect("write");
            assert_refused_untouched(&dir, ME);
        }
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_store_of_another_node_or_cluster_is_refused_and_left_as_it_is() {
        let dir = temp_dir("others");
        closed_store(&dir);
        for identity in [
            StoreIdentity { cluster_id: 7, node_id: 2 },
            StoreIdentity { cluster_id: 8, node_id: 1 },
        ] {
            let error = assert_refused_untouched(&dir, identity);
            assert!(matches!(error, StorageError::WrongIdentity { .. }), "{error}");
        }
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    /// The command of log entry 17 in `store_of_every_record`, easy to find in the file.
    const ENTRY_17: &str = "the-seventeenth-entry";

    /// A closed store of node 1 with a record in every table; returns its hard state and
    /// snapshot.
    fn store_of_every_record(dir: &Path) -> (HardState, StoredSnapshot) {
        let hard_state =
            HardState { term: Term(0x1234_5678), voted_for: Some(NodeId(1)), commit: LogIndex(5) };
        let membership = stepraft::Membership::with_voters([NodeId(1)]);
        let snapshot = StoredSnapshot {
            index: LogIndex(3),
            term: Term(1),
            membership: membership.clone(),
            data: b"the-snapshot-data".to_vec(),
        };
        let store = RedbStorage::<String>::open(dir, ME).expect("creates");
        let entries = (1..=20)
            .map(|i| entry(i, 1, if i == 17 { ENTRY_17 } else { "another-command" }))
            .collect();
        store
            .persist(&[
                Persist::HardState(hard_state),
                Persist::Append(entries),
                // The log holds entry 3 of term 1, so it stays whole.
                Persist::Snapshot(Snapshot {
                    meta: SnapshotMeta {
                        index: snapshot.index,
                        term: snapshot.term,
                        membership: membership.into(),
                    },
                    data: std::sync::Arc::from(&snapshot.data[..]),
                }),
            ])
            .expect("persists");
        drop(store);
        (hard_state, snapshot)
    }

    /// Where `needle` starts in `haystack`, every time.
    fn offsets_of(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
        let windows = haystack.windows(needle.len()).enumerate();
        windows.filter(|(_, window)| *window == needle).map(|(offset, _)| offset).collect()
    }

    /// `file` with one bit flipped at `at` inside every copy of `record` (pages of earlier
    /// transactions may still hold old copies, so the live one is among them).
    fn flip_in_record(file: &[u8], record: &[u8], at: usize) -> Vec<u8> {
        let copies = offsets_of(file, record);
        assert!(!copies.is_empty(), "record not found in the file");
        let mut bytes = file.to_vec();
        copies.iter().for_each(|&offset| bytes[offset + at] ^= 0x10);
        bytes
    }

    /// Offset of the middle of `part` inside `record`.
    fn middle_of(record: &[u8], part: &[u8]) -> usize {
        offsets_of(record, part)[0] + part.len() / 2
    }

    #[test]
    fn a_flipped_bit_in_any_record_is_refused_naming_the_record() {
        let dir = temp_dir("record-flip");
        let (hard_state, snapshot) = store_of_every_record(&dir);
        let file = dir.join(FILE_NAME);
        let pristine = std::fs::read(&file).expect("read");
        // Each record as the store writes it, the offset of the flipped bit inside it, and the
        // text the refusal must hold. Before records carried a crc, the payload flips were
        // taken for other values: a changed command ('e' became 'u'), term or snapshot byte
        // loaded silently; cluster 23 or node 17 was refused as another node's store; a
        // `log_start` of 17 was reported as a hole in the log.
        let entry_17 = encode(&log_key(17), &entry(17, 1, ENTRY_17)).expect("encodes");
        let hard_state = encode(b"hard_state", &hard_state).expect("encodes");
        let snapshot = encode(b"snapshot", &snapshot).expect("encodes");
        let cases = [
            (
                &entry_17,
                middle_of(&entry_17, ENTRY_17.as_bytes()),
                "log entry 17: checksum mismatch",
            ),
            (&entry_17, entry_17.len() - 1, "log entry 17: checksum mismatch"),
            (&hard_state, 1, "hard state: checksum mismatch"),
            (&snapshot, middle_of(&snapshot, b"the-snapshot-data"), "snapshot: checksum mismatch"),
            (&encode_u64("cluster_id", 7), 7, "meta cluster_id: checksum mismatch"),
            (&encode_u64("node_id", 1), 7, "meta node_id: checksum mismatch"),
            (&encode_u64("log_start", 1), 7, "meta log_start: checksum mismatch"),
        ];
        for (record, at, expected) in cases {
            std::fs::write(&file, flip_in_record(&pristine, record, at)).expect("write");
            let error = assert_refused_untouched(&dir, ME);
            assert!(matches!(error, StorageError::Corrupt(_)), "{expected}: {error}");
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
        std::fs::write(&file, &pristine).expect("restore");
        RedbStorage::<String>::open(&dir, ME).expect("opens").load().expect("the pristine loads");
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn records_read_by_snapshot_and_persist_are_checked_too() {
        let dir = temp_dir("record-reads");
        let (_, snapshot) = store_of_every_record(&dir);
        let file = dir.join(FILE_NAME);
        let pristine = std::fs::read(&file).expect("read");

        let record = encode(b"snapshot", &snapshot).expect("encodes");
        let at = middle_of(&record, b"the-snapshot-data");
        std::fs::write(&file, flip_in_record(&pristine, &record, at)).expect("write");
        let store = RedbStorage::<String>::open(&dir, ME).expect("the identity is intact");
        let error = store.snapshot().expect_err("refused");
        assert!(error.to_string().contains("snapshot: checksum mismatch"), "{error}");
        drop(store);

        // A snapshot at 17 reads entry 17 back to decide whether the log stays.
        let record = encode(&log_key(17), &entry(17, 1, ENTRY_17)).expect("encodes");
        let at = middle_of(&record, ENTRY_17.as_bytes());
        std::fs::write(&file, flip_in_record(&pristine, &record, at)).expect("write");
        let store = RedbStorage::<String>::open(&dir, ME).expect("the identity is intact");
        assert_eq!(store.snapshot().expect("intact"), Some(snapshot));
        let error = store
            .persist(&[Persist::Snapshot(Snapshot {
                meta: SnapshotMeta {
                    index: LogIndex(17),
                    term: Term(1),
                    membership: stepraft::Membership::with_voters([NodeId(1)]).into(),
                },
                data: std::sync::Arc::from(&b"later"[..]),
            })])
            .expect_err("refused");
        assert!(error.to_string().contains("log entry 17: checksum mismatch"), "{error}");
        drop(store);
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    #[test]
    fn a_store_of_the_format_before_sealed_records_is_refused_as_foreign() {
        let dir = temp_dir("old-format");
        let file = closed_store(&dir);
        {
            let database = Database::open(&file).expect("opens");
            let transaction = database.begin_write().expect("writes");
            {
                let mut meta = transaction.open_table(META).expect("meta");
                meta.insert("format", "stepraft-kv/1".as_bytes()).expect("inserts");
            }
            transaction.commit().expect("commits");
        }
        let error = assert_refused_untouched(&dir, ME);
        let found = Some("stepraft-kv/1".to_owned());
        assert!(
            matches!(error, StorageError::ForeignStore { found: ref f, .. } if *f == found),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }

    /// A store of the previous format (every snapshot inline) opens, and is marked with the
    /// current one, which a build of the previous format refuses.
    #[test]
    fn a_store_of_the_previous_format_is_upgraded_at_open() {
        let dir = temp_dir("previous-format");
        let file = closed_store(&dir);
        {
            let database = Database::open(&file).expect("opens");
            let transaction = database.begin_write().expect("writes");
            {
                let mut meta = transaction.open_table(META).expect("meta");
                meta.insert("format", PREVIOUS_FORMAT.as_bytes()).expect("inserts");
            }
            transaction.commit().expect("commits");
        }
        drop(RedbStorage::<String>::open(&dir, ME).expect("opens a store of the previous format"));
        let database = Database::open(&file).expect("opens");
        let transaction = database.begin_read().expect("reads");
        let meta = transaction.open_table(META).expect("meta");
        let format = meta.get("format").expect("reads").expect("a marker");
        assert_eq!(format.value(), FORMAT.as_bytes());
        drop((format, meta, transaction, database));
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }
}
