//! An in-memory store, for drills (which must never touch live data) and
//! for tests. Nothing survives the process, by design.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Append, RequestKey, RequestRecord, SnapshotMark, Store, StoreError};
use crate::domain::{LogRecord, State, Timestamp};

/// A store that keeps everything in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    log: Vec<LogRecord>,
    requests: BTreeMap<RequestKey, RequestRecord>,
    /// The request records by the time they were applied.
    request_times: std::collections::BTreeSet<(Timestamp, RequestKey)>,
    drill_runs: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
    /// Encoded, as the sled store keeps them, so tests exercise the encoding.
    snapshots: BTreeMap<u64, (SnapshotMark, Vec<u8>)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-append; the
        // data is still a valid prefix, so keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn append(&self, append: Append<'_>) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let last = inner.log.last().map_or(0, |record| record.sequence);
        let continues = append.records.first().is_none_or(|record| record.sequence == last + 1);
        if append.after != last || !continues {
            return Err(StoreError::Conflict { latest: last });
        }
        inner.log.extend_from_slice(append.records);
        for (time, key) in append.expired {
            inner.request_times.remove(&(*time, key.clone()));
            // Only if it is still the record of that age (not a reuse since).
            if inner.requests.get(key).is_some_and(|record| record.time == *time) {
                inner.requests.remove(key);
            }
        }
        for record in append.requests {
            if let Some(old) = inner.requests.insert(record.key.clone(), record.clone()) {
                inner.request_times.remove(&(old.time, old.key));
            }
            inner.request_times.insert((record.time, record.key.clone()));
        }
        Ok(inner.log.last().map_or(0, |record| record.sequence))
    }

    fn position(&self) -> Result<u64, StoreError> {
        Ok(self.lock().log.last().map_or(0, |record| record.sequence))
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        let inner = self.lock();
        let start = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX).min(inner.log.len());
        Ok(inner.log[start..].iter().take(limit).cloned().collect())
    }

    fn request(&self, key: &RequestKey) -> Result<Option<RequestRecord>, StoreError> {
        Ok(self.lock().requests.get(key).cloned())
    }

    fn requests_before(&self, before: Timestamp, limit: usize) -> Result<Vec<(Timestamp, RequestKey)>, StoreError> {
        let inner = self.lock();
        Ok(inner.request_times.iter().take_while(|(time, _)| *time < before).take(limit).cloned().collect())
    }

    fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        let old = self.requests_before(before, usize::MAX)?;
        let count = old.len();
        let after = self.position()?;
        self.append(Append { after, expired: &old, ..Append::default() })?;
        Ok(count)
    }

    fn put_snapshot(&self, state: &State) -> Result<(), StoreError> {
        let bytes = super::encode_snapshot(state)?;
        let mark = SnapshotMark { sequence: state.last_sequence, time: state.last_time };
        self.lock().snapshots.insert(state.last_sequence, (mark, bytes));
        Ok(())
    }

    fn snapshot_marks(&self) -> Result<Vec<SnapshotMark>, StoreError> {
        Ok(self.lock().snapshots.values().map(|(mark, _)| *mark).collect())
    }

    fn snapshot(&self, sequence: u64) -> Result<Option<State>, StoreError> {
        let bytes = self.lock().snapshots.get(&sequence).map(|(_, bytes)| bytes.clone());
        match bytes {
            Some(bytes) => super::decode_snapshot(sequence, &bytes),
            None => Ok(None),
        }
    }

    fn put_drill_run(&self, number: u64, summary: &[u8], run: &[u8]) -> Result<(), StoreError> {
        self.lock().drill_runs.insert(number, (summary.to_vec(), run.to_vec()));
        Ok(())
    }

    fn drill_run(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().drill_runs.get(&number).map(|(_, run)| run.clone()))
    }

    fn drill_runs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .drill_runs
            .range(after.saturating_add(1)..)
            .map(|(number, (summary, _))| (*number, summary.clone()))
            .take(limit)
            .collect())
    }
}
