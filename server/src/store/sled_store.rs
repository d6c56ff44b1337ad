//! The durable store: one sled tree holding the log (`l` + sequence), the
//! request records (`r` + actor + NUL + request id, and `t` + time + actor +
//! NUL + request id to find them by age) and the format marker.
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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{decode, encode, Append, RequestKey, RequestRecord, SnapshotMark, Store, StoreError};
use crate::domain::{LogRecord, State, Timestamp};

const TREE: &str = "muster";
/// Drill runs live in a tree of their own: never mixed with the live log.
const DRILL_TREE: &str = "drill-runs";
/// In the drill tree: `s` + number -> a run's summary, `r` + number -> the run.
const DRILL_SUMMARY: u8 = b's';
const DRILL_RUN: u8 = b'r';

fn snapshot_file_name(mark: SnapshotMark) -> String {
    format!("{:020}-{:020}.snapshot", mark.sequence, u64::from_be_bytes(sortable_time(mark.time)))
}

fn parse_snapshot_file_name(name: &str) -> Option<SnapshotMark> {
    let (sequence, time) = name.strip_suffix(".snapshot")?.split_once('-')?;
    Some(SnapshotMark { sequence: sequence.parse().ok()?, time: time_from_sortable(time.parse().ok()?) })
}

/// Serialises every sled batch and flush in the process. sled 0.34's
/// `apply_batch` takes a process-wide lock that waits for every reader, and
/// a flush holds a read of it while it waits for sled's own threads, which
/// then cannot read: a batch on one thread and a flush on another (even of
/// another database, as in tests) deadlock. Only the writer writes often, so
/// this costs nothing; sled's background flusher is off for the same reason
/// (every append flushes and syncs anyway).
static SLED_WRITES: Mutex<()> = Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    SLED_WRITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A key of the drill tree: a prefix byte, then a number.
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
/// Snapshots are files of their own in this folder of the data directory,
/// named `<sequence>-<time>.snapshot` (both 20 digits, the time in
/// nanoseconds offset by 2^63 so that names sort), written to a temporary
/// name, synced and renamed, so a crash leaves a whole snapshot or none.
/// Not in sled: a snapshot is large, and sled's `apply_batch` takes a
/// process-wide lock that a concurrent flush can deadlock with.
const SNAPSHOT_DIR: &str = "snapshots";
/// Snapshots kept however close together (at the default spacing, the last
/// 1.28 million records: reads of any time in them fold at most 10,000);
/// older ones are thinned to one an hour.
const KEEP_LATEST_SNAPSHOTS: usize = 128;
const LOG_PREFIX: u8 = b'l';
const REQUEST_PREFIX: u8 = b'r';
const REQUEST_TIME_PREFIX: u8 = b't';
const FORMAT_KEY: &[u8] = b"mformat";
/// As the local copy of a replicated log: the stream position it holds.
const POSITION_KEY: &[u8] = b"mposition";
/// As the local copy of a replicated log: its first record (a replica that
/// joined from a snapshot holds the records after it only).
const FIRST_KEY: &[u8] = b"mfirst";
/// As the local copy of a replicated log: this replica's name.
const REPLICA_KEY: &[u8] = b"mreplica";
/// As the local copy of a replicated log: `p` + a record's sequence -> the
/// stream position of the append that ended with it.
const POSITION_PREFIX: u8 = b'p';
/// Present once every request record has its `t` key.
const REQUEST_TIMES_KEY: &[u8] = b"mrequest-times";
/// sled's page cache, in bytes: the log is read back only on restarts,
/// reads of the past and the audit, so a small cache keeps the server's
/// memory to its state.
pub const CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// The on-disk format this build writes and reads. Format 2 records which
/// command produced each log record (`LogRecord::command`); a format-1
/// directory is refused rather than misread.
const FORMAT_VERSION: u32 = 2;

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    drills: sled::Tree,
    dir: PathBuf,
    db_file: File,
    known_blobs: Mutex<BTreeSet<std::ffi::OsString>>,
    /// Set when a flush or sync failed, on any thread: after a failed
    /// `fsync` the disk's contents are unknown, and Linux reports the error
    /// only once, so every later append is refused rather than trust a
    /// second `fsync` that says nothing.
    failed: AtomicBool,
    /// The sequence of the last log record: the store's position.
    last: AtomicU64,
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

/// `t` + the time (big-endian, sign bit flipped, so keys sort by time) +
/// actor + NUL + request id: the request records in the order they expire.
fn request_time_key(time: Timestamp, key: &RequestKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(10 + key.actor.len() + key.request_id.len());
    bytes.push(REQUEST_TIME_PREFIX);
    bytes.extend_from_slice(&sortable_time(time));
    bytes.extend_from_slice(key.actor.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.request_id.as_bytes());
    bytes
}

fn sortable_time(time: Timestamp) -> [u8; 8] {
    ((time.0 as u64) ^ (1 << 63)).to_be_bytes()
}

/// The time [`sortable_time`] wrote, read back as a number.
fn time_from_sortable(bits: u64) -> Timestamp {
    Timestamp((bits ^ (1 << 63)) as i64)
}

/// Reads a key written by [`request_time_key`] back.
fn parse_request_time_key(bytes: &[u8]) -> Option<(Timestamp, RequestKey)> {
    let time = time_from_sortable(u64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?));
    let rest = bytes.get(9..)?;
    let split = rest.iter().position(|byte| *byte == 0)?;
    let actor = String::from_utf8(rest[..split].to_vec()).ok()?;
    let request_id = String::from_utf8(rest[split + 1..].to_vec()).ok()?;
    Some((time, RequestKey { actor, request_id }))
}

/// Directories written before request records were indexed by time have
/// `r` keys without their `t` keys: add them once, so those records expire too.
fn index_request_times(tree: &sled::Tree) -> Result<(), StoreError> {
    if tree.get(REQUEST_TIMES_KEY).map_err(sled_error("request times marker"))?.is_some() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for entry in tree.scan_prefix([REQUEST_PREFIX]) {
        let (key, value) = entry.map_err(sled_error("requests"))?;
        let record: RequestRecord = decode("requests", &String::from_utf8_lossy(&key), &value)?;
        batch.insert(request_time_key(record.time, &record.key), &[]);
    }
    batch.insert(REQUEST_TIMES_KEY, &[1]);
    tree.apply_batch(batch).map_err(sled_error("index request times"))
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        let exclusive_open = exclusive();
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None)
            .open()
            .map_err(sled_error("open"))?;
        let tree = db.open_tree(TREE).map_err(sled_error("open tree"))?;
        let drills = db.open_tree(DRILL_TREE).map_err(sled_error("open drill tree"))?;
        match tree.get(FORMAT_KEY).map_err(sled_error("format"))? {
            None => {
                tree.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes()).map_err(sled_error("format"))?;
            }
            Some(found) if found.as_ref() == FORMAT_VERSION.to_be_bytes() => {}
            Some(found) => {
                return Err(StoreError::Format { found: hex::encode(found), expected: FORMAT_VERSION });
            }
        }
        index_request_times(&tree)?;
        drop(exclusive_open);
        let last = match tree.range(log_key(0)..=log_key(u64::MAX)).next_back() {
            Some(entry) => {
                let (key, _) = entry.map_err(sled_error("last record"))?;
                key.get(1..).and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map(u64::from_be_bytes).unwrap_or(0)
            }
            None => 0,
        };
        let db_path = dir.join("db");
        let db_file = File::open(&db_path).map_err(io_error("open", &db_path))?;
        let store = SledStore {
            db,
            tree,
            drills,
            dir: dir.to_owned(),
            db_file,
            known_blobs: Mutex::new(BTreeSet::new()),
            failed: AtomicBool::new(false),
            last: AtomicU64::new(last),
        };
        {
            let _exclusive = exclusive();
            store.sync()?;
        }
        let directory = File::open(dir).map_err(io_error("open", dir))?;
        directory.sync_all().map_err(io_error("fsync", dir))?;
        // A snapshot a crash left half-written is of no use.
        if let Ok(entries) = std::fs::read_dir(dir.join(SNAPSHOT_DIR)) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".partial") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(store)
    }

    /// Keeps the latest `KEEP_LATEST_SNAPSHOTS` snapshots and, of the older
    /// ones, the first of each hour: reads of the past stay fast for recent
    /// times and possible for old ones, and the folder stays bounded by the
    /// hours of history.
    fn prune_snapshots(&self) -> Result<(), StoreError> {
        let marks = self.snapshot_marks()?;
        let older = marks.len().saturating_sub(KEEP_LATEST_SNAPSHOTS);
        let mut kept_hour = None;
        for mark in &marks[..older] {
            let hour = mark.time.0.div_euclid(3_600 * crate::domain::Timestamp::NANOS_PER_SECOND);
            if kept_hour == Some(hour) {
                let path = self.dir.join(SNAPSHOT_DIR).join(snapshot_file_name(*mark));
                std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
            } else {
                kept_hour = Some(hour);
            }
        }
        Ok(())
    }

    /// When the stored record of `key`, if any, was applied.
    /// `Err(())` when the stored record does not decode: its age is
    /// unknown, and it must neither stop writes nor be kept forever.
    fn stored_request_time(&self, key: &RequestKey) -> Result<Result<Option<Timestamp>, ()>, StoreError> {
        match self.request(key) {
            Ok(record) => Ok(Ok(record.map(|record| record.time))),
            Err(StoreError::Corrupt { .. }) => Ok(Err(())),
            Err(other) => Err(other),
        }
    }

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

    /// Makes everything written so far durable: sled's flush, then
    /// fdatasync. Call it holding [`exclusive`].
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

impl Drop for SledStore {
    /// Flushes under the lock: dropping sled's last handle flushes too.
    fn drop(&mut self) {
        let _exclusive = exclusive();
        if let Err(error) = self.db.flush() {
            tracing::error!(%error, "flushing the store on close failed");
        }
    }
}

impl SledStore {
    /// The batch that writes `append`.
    fn batch(&self, append: &Append<'_>) -> Result<sled::Batch, StoreError> {
        let mut batch = sled::Batch::default();
        for record in append.records {
            batch.insert(&log_key(record.sequence), encode("log", &record.sequence.to_string(), record)?);
        }
        for (time, key) in append.expired {
            batch.remove(request_time_key(*time, key));
            // The record goes only if it is still the one of that age: a
            // request id used again since has a new record to keep.
            // (An undecodable record listed as expired goes too.)
            let stored = self.stored_request_time(key)?;
            if stored.is_err() || stored == Ok(Some(*time)) {
                batch.remove(request_key(key));
            }
        }
        for request in append.requests {
            let key = format!("{}/{}", request.key.actor, request.key.request_id);
            // A reused id: its old age goes, so it is never listed to expire.
            if let Ok(Some(old)) = self.stored_request_time(&request.key)? {
                batch.remove(request_time_key(old, &request.key));
            }
            batch.insert(request_key(&request.key), encode("requests", &key, request)?);
            batch.insert(request_time_key(request.time, &request.key), &[]);
        }
        Ok(batch)
    }

    /// Writes `batch` and makes it durable.
    fn write_durably(&self, batch: sled::Batch) -> Result<(), StoreError> {
        let _exclusive = exclusive();
        self.tree.apply_batch(batch).map_err(sled_error("append"))?;
        self.sync()
    }

    /// As the local copy of a replicated log: writes what the log's append
    /// at stream `position` holds, atomically with that position, without
    /// syncing (the replicated log is the truth; after a crash the copy
    /// resumes from the position it kept). `first`, when given, is the
    /// first record the copy holds (it joined from a snapshot).
    /// `last` is the copy's last record after it.
    pub(super) fn write_copy(
        &self,
        append: &Append<'_>,
        position: u64,
        first: Option<u64>,
        last: u64,
    ) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let mut batch = self.batch(append)?;
        batch.insert(POSITION_KEY, &position.to_be_bytes());
        if let Some(first) = first {
            batch.insert(FIRST_KEY, &first.to_be_bytes());
        }
        let mut key = vec![POSITION_PREFIX];
        key.extend_from_slice(&last.to_be_bytes());
        batch.insert(key, &position.to_be_bytes());
        let _exclusive = exclusive();
        self.tree.apply_batch(batch).map_err(sled_error("append"))?;
        self.last.store(last, Ordering::SeqCst);
        Ok(())
    }

    /// As the local copy of a replicated log: keeps request records read
    /// back from the stream (a replica that joined from a snapshot), without
    /// syncing and without moving the copy's position.
    pub(super) fn write_requests(&self, requests: &[RequestRecord]) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let batch = self.batch(&Append { requests, ..Append::default() })?;
        let _exclusive = exclusive();
        self.tree.apply_batch(batch).map_err(sled_error("request records"))
    }

    /// Makes the local copy durable (on a clean stop, and before a snapshot
    /// names its position).
    pub(super) fn sync_copy(&self) -> Result<(), StoreError> {
        let _exclusive = exclusive();
        self.sync()
    }

    /// As the local copy of a replicated log: the stream position it holds
    /// and its first record (1 unless it joined from a snapshot).
    pub(super) fn copy_position(&self) -> Result<(u64, u64), StoreError> {
        let number = |key: &[u8], default: u64| -> Result<u64, StoreError> {
            Ok(match self.tree.get(key).map_err(sled_error("copy position"))? {
                Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref()).map(u64::from_be_bytes).unwrap_or(default),
                None => default,
            })
        };
        Ok((number(POSITION_KEY, 0)?, number(FIRST_KEY, 1)?))
    }

    /// Whether this directory is a replica's copy of a replicated log
    /// (it records a stream position): the embedded log refuses to run on
    /// one, since what it appended would never reach the stream.
    pub fn is_copy(&self) -> Result<bool, StoreError> {
        Ok(self.tree.get(POSITION_KEY).map_err(sled_error("copy position"))?.is_some())
    }

    /// As the local copy of a replicated log: this replica's own name, made
    /// up once (random) and kept, so that what it writes beside the stream
    /// (its snapshots in the bucket) is told apart from other replicas'.
    pub(super) fn replica_id(&self) -> Result<String, StoreError> {
        if let Some(id) = self.tree.get(REPLICA_KEY).map_err(sled_error("replica id"))? {
            return Ok(String::from_utf8_lossy(&id).into_owned());
        }
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|error| StoreError::Io {
            operation: "draw a replica id for",
            path: self.dir.display().to_string(),
            source: std::io::Error::other(error.to_string()),
        })?;
        let id = hex::encode(bytes);
        let _exclusive = exclusive();
        self.tree.insert(REPLICA_KEY, id.as_bytes()).map_err(sled_error("replica id"))?;
        Ok(id)
    }

    /// For a replica's copy that joined from a snapshot: the first record it
    /// holds (the snapshot's sequence + 1).
    pub fn joined_at(&self) -> Result<Option<u64>, StoreError> {
        let (_, first) = self.copy_position()?;
        Ok((first > 1).then_some(first))
    }

    /// As the local copy of a replicated log: the stream position of the
    /// append that ended with record `sequence`.
    pub(super) fn position_of(&self, sequence: u64) -> Result<Option<u64>, StoreError> {
        let mut key = vec![POSITION_PREFIX];
        key.extend_from_slice(&sequence.to_be_bytes());
        Ok(self
            .tree
            .get(key)
            .map_err(sled_error("position of a record"))?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map(u64::from_be_bytes))
    }
}

impl Store for SledStore {
    fn append(&self, append: Append<'_>) -> Result<u64, StoreError> {
        self.check_not_failed()?;
        let last = self.last.load(Ordering::SeqCst);
        let continues = append.records.first().is_none_or(|record| record.sequence == last + 1);
        if append.after != last || !continues {
            return Err(StoreError::Conflict { latest: last });
        }
        let batch = self.batch(&append)?;
        self.write_durably(batch)?;
        let last = append.records.last().map_or(last, |record| record.sequence);
        self.last.store(last, Ordering::SeqCst);
        Ok(last)
    }

    fn position(&self) -> Result<u64, StoreError> {
        Ok(self.last.load(Ordering::SeqCst))
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

    fn request(&self, key: &RequestKey) -> Result<Option<RequestRecord>, StoreError> {
        let name = format!("{}/{}", key.actor, key.request_id);
        match self.tree.get(request_key(key)).map_err(sled_error(format!("request {name}")))? {
            Some(value) => decode("requests", &name, &value).map(Some),
            None => Ok(None),
        }
    }

    fn requests_before(&self, before: Timestamp, limit: usize) -> Result<Vec<(Timestamp, RequestKey)>, StoreError> {
        let mut from = vec![REQUEST_TIME_PREFIX];
        from.extend_from_slice(&sortable_time(Timestamp(i64::MIN)));
        let mut to = vec![REQUEST_TIME_PREFIX];
        to.extend_from_slice(&sortable_time(before));
        let mut old = Vec::new();
        for entry in self.tree.range(from..to).take(limit) {
            let (key, _) = entry.map_err(sled_error("request times"))?;
            let parsed = parse_request_time_key(&key).ok_or_else(|| StoreError::Corrupt {
                tree: TREE,
                key: hex::encode(&key),
                reason: "a request time key is not time, actor, NUL, request id".to_owned(),
            })?;
            old.push(parsed);
        }
        Ok(old)
    }

    fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut count = 0;
        loop {
            let old = self.requests_before(before, 4_096)?;
            if old.is_empty() {
                return Ok(count);
            }
            count += old.len();
            let batch = self.batch(&Append { expired: &old, ..Append::default() })?;
            self.write_durably(batch)?;
        }
    }

    fn put_snapshot(&self, state: &State) -> Result<(), StoreError> {
        self.check_not_failed()?;
        let folder = self.dir.join(SNAPSHOT_DIR);
        std::fs::create_dir_all(&folder).map_err(io_error("create directory", &folder))?;
        let mark = SnapshotMark { sequence: state.last_sequence, time: state.last_time };
        let path = folder.join(snapshot_file_name(mark));
        let temporary = path.with_extension("partial");
        let bytes = super::encode_snapshot(state)?;
        let mut file = File::create(&temporary).map_err(io_error("create", &temporary))?;
        if let Err(error) = std::io::Write::write_all(&mut file, &bytes) {
            // A full disk, say: a cache lost, nothing more.
            let _ = std::fs::remove_file(&temporary);
            return Err(io_error("write", &temporary)(error));
        }
        let synced = file
            .sync_all()
            .map_err(io_error("fsync", &temporary))
            .and_then(|()| std::fs::rename(&temporary, &path).map_err(io_error("rename", &temporary)))
            .and_then(|()| {
                let directory = File::open(&folder).map_err(io_error("open", &folder))?;
                directory.sync_all().map_err(io_error("fsync", &folder))
            });
        if let Err(error) = synced {
            let _ = std::fs::remove_file(&temporary);
            // A failed fsync says the disk is in trouble (and Linux reports
            // it once): refuse later writes, as after a failed log sync.
            if matches!(&error, StoreError::Io { operation: "fsync", .. }) {
                self.failed.store(true, Ordering::SeqCst);
            }
            return Err(error);
        }
        self.prune_snapshots()
    }

    fn snapshot_marks(&self) -> Result<Vec<SnapshotMark>, StoreError> {
        let folder = self.dir.join(SNAPSHOT_DIR);
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error("read directory", &folder)(error)),
        };
        let mut marks = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("read directory", &folder))?;
            if let Some(mark) = parse_snapshot_file_name(&entry.file_name().to_string_lossy()) {
                marks.push(mark);
            }
        }
        marks.sort_by_key(|mark| mark.sequence);
        Ok(marks)
    }

    fn snapshot(&self, sequence: u64) -> Result<Option<State>, StoreError> {
        let Some(mark) = self.snapshot_marks()?.into_iter().find(|mark| mark.sequence == sequence) else {
            return Ok(None);
        };
        let path = self.dir.join(SNAPSHOT_DIR).join(snapshot_file_name(mark));
        let bytes = std::fs::read(&path).map_err(io_error("read", &path))?;
        super::decode_snapshot(sequence, &bytes)
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
        let _exclusive = exclusive();
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::Reply;

    fn record(actor: &str, request_id: &str, seconds: i64) -> RequestRecord {
        RequestRecord {
            key: RequestKey { actor: actor.into(), request_id: request_id.into() },
            fingerprint: [7; 32],
            time: Timestamp::from_unix_seconds(seconds),
            reply: Reply::Item(crate::domain::reserve::Item {
                code: "pump".into(),
                name: "Pump".into(),
                unit: "unit".into(),
                category: String::new(),
            }),
        }
    }

    /// The latest 128 snapshots stay; older ones are thinned to the first of
    /// each hour; a half-written one is removed when the store opens.
    #[test]
    fn old_snapshots_are_thinned_to_one_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for index in 1..=KEEP_LATEST_SNAPSHOTS as u64 + 16 {
            let mut state = State::default();
            state.last_sequence = index * 10;
            state.last_time = Timestamp::from_unix_seconds(index as i64 * 1_200);
            store.put_snapshot(&state).unwrap();
        }
        let kept: Vec<u64> = store.snapshot_marks().unwrap().iter().map(|mark| mark.sequence).collect();
        // Older than the latest ones (sequences 10..=160, 20 minutes apart):
        // the first of each hour, at 20, 50, 80, 110 and 140 (hours 0..=4
        // begin at 1,200 s, 3,600 s, ...; 10 is in hour 0 with 20 and 30).
        let older: Vec<u64> = kept.iter().copied().filter(|sequence| *sequence <= 160).collect();
        assert_eq!(older, [10, 30, 60, 90, 120, 150]);
        assert_eq!(kept.iter().filter(|sequence| **sequence > 160).count(), KEEP_LATEST_SNAPSHOTS);
        let partial = dir.path().join(SNAPSHOT_DIR).join("00000000000000000999-00000000000000000000.partial");
        std::fs::write(&partial, b"half").unwrap();
        drop(store);
        let _store = SledStore::open(dir.path()).unwrap();
        assert!(!partial.exists());
    }

    /// Regression (review): a request id reused after it expired must keep
    /// its new record when the old record's age is listed again, and the old
    /// age must not be listed at all.
    #[test]
    fn a_reused_request_id_keeps_its_new_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let old = record("team:A", "x", 100);
        store.append(Append { after: 0, records: &[], requests: std::slice::from_ref(&old), expired: &[] }).unwrap();
        let new = record("team:A", "x", 100_000);
        store.append(Append { after: 0, records: &[], requests: std::slice::from_ref(&new), expired: &[] }).unwrap();
        assert_eq!(store.requests_before(Timestamp::from_unix_seconds(50_000), 10).unwrap(), Vec::new());
        // Expiring the old age anyway (a listing made before the reuse) keeps the new record.
        store
            .append(Append { after: 0, records: &[], requests: &[], expired: &[(old.time, old.key.clone())] })
            .unwrap();
        assert_eq!(store.request(&new.key).unwrap(), Some(new));
    }

    /// Request records are found by key and listed by age, oldest first
    /// (times before 1970 included), and dropped with their time key, across
    /// a reopen.
    #[test]
    fn request_records_are_found_by_key_and_expire_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let records = [record("team:A", "1", 500), record("commander", "x", -20), record("team:A", "2", 100)];
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.append(Append { after: 0, records: &[], requests: &records, expired: &[] }).unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.request(&records[0].key).unwrap(), Some(records[0].clone()));
        assert_eq!(store.request(&RequestKey { actor: "team:A".into(), request_id: "3".into() }).unwrap(), None);
        let old = store.requests_before(Timestamp::from_unix_seconds(500), 10).unwrap();
        let keys: Vec<_> = old.iter().map(|(_, key)| key.request_id.as_str()).collect();
        assert_eq!(keys, ["x", "2"], "oldest first, and only those before the cutoff");
        assert_eq!(store.requests_before(Timestamp::from_unix_seconds(500), 1).unwrap().len(), 1, "at most limit");
        assert_eq!(store.forget_requests_before(Timestamp::from_unix_seconds(500)).unwrap(), 2);
        assert_eq!(store.request(&records[1].key).unwrap(), None);
        assert_eq!(store.requests_before(Timestamp(i64::MAX), 10).unwrap().len(), 1, "the time keys went too");
    }
}
