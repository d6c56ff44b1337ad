//! The durable store: one sled tree holding the log (`l` + sequence), the
//! request records (`r` + actor + NUL + request id) and the format marker.
//!
//! Durability: on Linux, sled's `flush()` writes with `sync_file_range`,
//! which neither empties the disk's write cache nor syncs metadata, and sled
//! writes large values to `blobs/` with no sync at all. So every append ends
//! with `flush()`, then `fdatasync` of the `db` file, then an `fsync` of any
//! new blob file and of the `blobs` directory. One append is one group commit.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use std::sync::atomic::{AtomicBool, Ordering};

use super::{decode, encode, Append, RequestKey, RequestRecord, SnapshotMark, Store, StoreError};
use crate::domain::{LogRecord, State, Timestamp};

const TREE: &str = "muster";
/// Drill runs live in a tree of their own: never mixed with the live log.
const DRILL_TREE: &str = "drill-runs";
/// In the drill tree: `s` + number -> a run's summary, `r` + number -> the run.
const DRILL_SUMMARY: u8 = b's';
const DRILL_RUN: u8 = b'r';

/// A key of the drill and snapshot trees: a prefix byte, then a number.
fn drill_key(prefix: u8, number: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&number.to_be_bytes());
    key
}

fn untag(number: u64, value: &[u8]) -> Result<Vec<u8>, StoreError> {
    match value.split_first() {
        Some((&super::FORMAT_TAG, rest)) => Ok(rest.to_vec()),
        _ => Err(StoreError::Corrupt {
            tree: DRILL_TREE,
            key: number.to_string(),
            reason: "unknown format tag".to_owned(),
        }),
    }
}
/// Snapshots of the state live in a tree of their own: `m` + sequence -> the
/// snapshot's mark (small, for finding one), `s` + sequence -> the snapshot.
const SNAPSHOT_TREE: &str = "snapshots";
const SNAPSHOT_MARK: u8 = b'm';
const SNAPSHOT_STATE: u8 = b's';
const LOG_PREFIX: u8 = b'l';
const REQUEST_PREFIX: u8 = b'r';
const FORMAT_KEY: &[u8] = b"mformat";
/// sled's page cache, in bytes.
pub const CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// The on-disk format this build writes and reads. Format 2 records which
/// command produced each log record (`LogRecord::command`); a format-1
/// directory is refused rather than misread.
const FORMAT_VERSION: u32 = 2;

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    drills: sled::Tree,
    snapshots: sled::Tree,
    dir: PathBuf,
    db_file: File,
    known_blobs: Mutex<BTreeSet<std::ffi::OsString>>,
    /// Set when a flush or sync failed, on any thread: after a failed
    /// `fsync` the disk's contents are unknown, and Linux reports the error
    /// only once, so every later append is refused rather than trust a
    /// second `fsync` that says nothing.
    failed: AtomicBool,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn sled_error(key: impl Into<String>) -> impl FnOnce(sled::Error) -> StoreError {
    let key = key.into();
    move |source| StoreError::Sled { tree: TREE, key, source }
}

fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.display().to_string();
    move |source| StoreError::Io { operation, path, source }
}

fn log_key(sequence: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = LOG_PREFIX;
    key[1..].copy_from_slice(&sequence.to_be_bytes());
    key
}

fn request_key(key: &RequestKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + key.actor.len() + key.request_id.len());
    bytes.push(REQUEST_PREFIX);
    bytes.extend_from_slice(key.actor.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.request_id.as_bytes());
    bytes
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        let db = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open().map_err(sled_error("open"))?;
        let tree = db.open_tree(TREE).map_err(sled_error("open tree"))?;
        let drills = db.open_tree(DRILL_TREE).map_err(sled_error("open drill tree"))?;
        let snapshots = db.open_tree(SNAPSHOT_TREE).map_err(sled_error("open snapshot tree"))?;
        match tree.get(FORMAT_KEY).map_err(sled_error("format"))? {
            None => {
                tree.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes()).map_err(sled_error("format"))?;
            }
            Some(found) if found.as_ref() == FORMAT_VERSION.to_be_bytes() => {}
            Some(found) => {
                return Err(StoreError::Format { found: hex::encode(found), expected: FORMAT_VERSION });
            }
        }
        let db_path = dir.join("db");
        let db_file = File::open(&db_path).map_err(io_error("open", &db_path))?;
        let store = SledStore {
            db,
            tree,
            drills,
            snapshots,
            dir: dir.to_owned(),
            db_file,
            known_blobs: Mutex::new(BTreeSet::new()),
            failed: AtomicBool::new(false),
        };
        store.sync()?;
        let directory = File::open(dir).map_err(io_error("open", dir))?;
        directory.sync_all().map_err(io_error("fsync", dir))?;
        Ok(store)
    }

    /// Makes everything written so far durable: sled's flush, then fdatasync.
    /// Refuses to write once a sync has failed (see `failed`).
    fn check_not_failed(&self) -> Result<(), StoreError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                operation: "refuse to write after an earlier failed sync of",
                path: self.dir.display().to_string(),
                source: std::io::Error::other("an earlier flush or fsync failed"),
            });
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let synced = self
            .db
            .flush()
            .map_err(sled_error("flush"))
            .and_then(|_| self.db_file.sync_data().map_err(io_error("fdatasync", &self.dir.join("db"))))
            .and_then(|()| self.sync_new_blobs());
        if synced.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        synced
    }

    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let blobs = self.dir.join("blobs");
        let entries = match std::fs::read_dir(&blobs) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error("read directory", &blobs)(error)),
        };
        let mut known = self.known_blobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut current = BTreeSet::new();
        let mut synced_any = false;
        for entry in entries {
            let entry = entry.map_err(io_error("read directory", &blobs))?;
            let name = entry.file_name();
            if !known.contains(&name) {
                let path = entry.path();
                // A blob that sled has already collected is gone: nothing to sync.
                match File::open(&path) {
                    Ok(file) => file.sync_all().map_err(io_error("fsync", &path))?,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(io_error("open", &path)(error)),
                }
                synced_any = true;
            }
            current.insert(name);
        }
        if synced_any {
            let directory = File::open(&blobs).map_err(io_error("open", &blobs))?;
            directory.sync_all().map_err(io_error("fsync", &blobs))?;
        }
        *known = current;
        Ok(())
    }
}

impl Store for SledStore {
    fn append(&self, append: Append<'_>) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let mut batch = sled::Batch::default();
        for record in append.records {
            batch.insert(&log_key(record.sequence), encode("log", &record.sequence.to_string(), record)?);
        }
        for request in append.requests {
            let key = format!("{}/{}", request.key.actor, request.key.request_id);
            batch.insert(request_key(&request.key), encode("requests", &key, request)?);
        }
        for key in append.expired {
            batch.remove(request_key(key));
        }
        self.tree.apply_batch(batch).map_err(sled_error("append"))?;
        self.sync()
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        let mut records = Vec::new();
        for entry in self.tree.range(log_key(from)..=log_key(u64::MAX)).take(limit) {
            let (key, value) = entry.map_err(sled_error(format!("log from {from}")))?;
            let key_text = hex::encode(&key);
            records.push(decode("log", &key_text, &value)?);
        }
        Ok(records)
    }

    fn requests_since(&self, since: Timestamp) -> Result<Vec<RequestRecord>, StoreError> {
        let mut records = Vec::new();
        for entry in self.tree.scan_prefix([REQUEST_PREFIX]) {
            let (key, value) = entry.map_err(sled_error("requests"))?;
            let record: RequestRecord = decode("requests", &String::from_utf8_lossy(&key), &value)?;
            if record.time >= since {
                records.push(record);
            }
        }
        Ok(records)
    }

    fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut count = 0;
        for entry in self.tree.scan_prefix([REQUEST_PREFIX]) {
            let (key, value) = entry.map_err(sled_error("requests"))?;
            let record: RequestRecord = decode("requests", &String::from_utf8_lossy(&key), &value)?;
            if record.time < before {
                batch.remove(key);
                count += 1;
            }
        }
        if count > 0 {
            self.tree.apply_batch(batch).map_err(sled_error("forget requests"))?;
            self.sync()?;
        }
        Ok(count)
    }

    fn put_snapshot(&self, state: &State) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let sequence = state.last_sequence;
        let mark = SnapshotMark { sequence, time: state.last_time };
        let mut mark_value = vec![super::SNAPSHOT_VERSION];
        mark_value.extend(encode(SNAPSHOT_TREE, &sequence.to_string(), &mark)?);
        let mut batch = sled::Batch::default();
        batch.insert(&drill_key(SNAPSHOT_STATE, sequence), super::encode_snapshot(state)?);
        batch.insert(&drill_key(SNAPSHOT_MARK, sequence), mark_value);
        self.snapshots.apply_batch(batch).map_err(sled_error(format!("snapshot {sequence}")))?;
        self.sync()
    }

    fn snapshot_marks(&self) -> Result<Vec<SnapshotMark>, StoreError> {
        let mut marks = Vec::new();
        for entry in self.snapshots.scan_prefix([SNAPSHOT_MARK]) {
            let (key, value) = entry.map_err(sled_error("snapshot marks"))?;
            if let Some((&super::SNAPSHOT_VERSION, rest)) = value.split_first() {
                marks.push(decode(SNAPSHOT_TREE, &hex::encode(&key), rest)?);
            }
        }
        Ok(marks)
    }

    fn snapshot(&self, sequence: u64) -> Result<Option<State>, StoreError> {
        let value = self
            .snapshots
            .get(drill_key(SNAPSHOT_STATE, sequence))
            .map_err(sled_error(format!("snapshot {sequence}")))?;
        match value {
            Some(bytes) => super::decode_snapshot(sequence, &bytes),
            None => Ok(None),
        }
    }

    fn put_drill_run(&self, number: u64, summary: &[u8], run: &[u8]) -> Result<(), StoreError> {
        let tagged = |bytes: &[u8]| {
            let mut value = vec![super::FORMAT_TAG];
            value.extend_from_slice(bytes);
            value
        };
        let mut batch = sled::Batch::default();
        batch.insert(&drill_key(DRILL_SUMMARY, number), tagged(summary));
        batch.insert(&drill_key(DRILL_RUN, number), tagged(run));
        self.drills.apply_batch(batch).map_err(sled_error(format!("drill run {number}")))?;
        self.sync()
    }

    fn drill_run(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.drills.get(drill_key(DRILL_RUN, number)).map_err(sled_error(format!("drill run {number}")))?;
        value.map(|value| untag(number, &value)).transpose()
    }

    fn drill_runs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut summaries = Vec::new();
        let from = drill_key(DRILL_SUMMARY, after.saturating_add(1));
        let to = drill_key(DRILL_SUMMARY, u64::MAX);
        for entry in self.drills.range(from..=to).take(limit) {
            let (key, value) = entry.map_err(sled_error("drill runs"))?;
            let number =
                key.get(1..).and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map(u64::from_be_bytes).ok_or_else(
                    || StoreError::Corrupt {
                        tree: DRILL_TREE,
                        key: hex::encode(&key),
                        reason: "a drill run key is not a prefix and 8 bytes".to_owned(),
                    },
                )?;
            summaries.push((number, untag(number, &value)?));
        }
        Ok(summaries)
    }
}
