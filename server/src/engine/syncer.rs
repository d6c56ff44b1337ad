//! The syncer thread: the second stage of the group commit. The writer
//! decides a group and hands it over; the syncer appends it to the store
//! (one flush and one `fdatasync`), and only then publishes the state after
//! it, broadcasts its changes and answers its commands, while the writer is
//! already deciding the next group. Groups are made durable one at a time,
//! in the order they were decided, and the writer is at most one group
//! ahead (the hand-over is a rendezvous), so a failed sync costs at most the
//! group being decided: the writer then goes back to the last durable state.
//!
//! Snapshots are offered here too, since only here is a state known durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::{broadcast, oneshot};

use super::writer::Replies;
use super::{Committed, EngineError};
use crate::domain::{LogRecord, State, Timestamp};
use crate::store::{Append, RequestKey, RequestRecord, Store};

/// A decided group, for the syncer to make durable and answer.
pub(super) struct GroupJob {
    /// Its number, counting from 1.
    pub(super) number: u64,
    /// The log position it was decided at (what its append expects).
    pub(super) after: u64,
    /// Already appended by the writer (a shared log): publish and answer only.
    pub(super) appended: bool,
    pub(super) records: Vec<LogRecord>,
    pub(super) requests: Vec<RequestRecord>,
    pub(super) expired: Vec<(Timestamp, RequestKey)>,
    pub(super) committed: Vec<Arc<Committed>>,
    pub(super) replies: Replies,
    /// The state after the group.
    pub(super) state: Arc<State>,
}

enum Job {
    Group(Box<GroupJob>),
    /// Answered once every group handed over before it is done.
    Barrier(oneshot::Sender<()>),
}

/// The writer's side of the syncer.
pub(super) struct Syncer {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    /// The number of the last group done (durable, or refused after a failure).
    durable: Arc<AtomicU64>,
    /// Why storage failed, once it has.
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    pub(super) fn start(
        store: Arc<dyn Store>,
        published: Arc<ArcSwap<State>>,
        changes: broadcast::Sender<Arc<Committed>>,
        snapshots: Snapshots,
    ) -> Syncer {
        // A rendezvous: the writer waits for the syncer to take a group, so it
        // is never more than one group ahead of the disk.
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(0);
        let durable = Arc::new(AtomicU64::new(0));
        let failure = Arc::new(Mutex::new(None));
        let stage = Stage {
            snapshotter: Snapshotter::start(snapshots, &store),
            store,
            published,
            changes,
            durable: Arc::clone(&durable),
            failure: Arc::clone(&failure),
        };
        let thread = std::thread::Builder::new().name("muster-syncer".to_owned()).spawn(move || stage.run(receiver));
        match thread {
            Ok(thread) => Syncer { jobs: Some(jobs), durable, failure, thread: Some(thread) },
            Err(error) => {
                tracing::error!(%error, "cannot start the syncer thread; the engine refuses writes");
                let failure = Arc::new(Mutex::new(Some(format!("cannot start the syncer thread: {error}"))));
                Syncer { jobs: None, durable, failure, thread: None }
            }
        }
    }

    /// Hands a decided group over (waiting, if need be, for the group before
    /// it to be durable).
    pub(super) fn hand_over(&self, job: GroupJob) {
        let job = Job::Group(Box::new(job));
        let refused = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|error| error.0),
            None => Some(job),
        };
        if let Some(Job::Group(job)) = refused {
            self.set_failure("the syncer has stopped");
            refuse(job.replies, "the syncer has stopped");
        }
    }

    /// Answers `done` once every group handed over so far is done.
    pub(super) fn barrier(&self, done: oneshot::Sender<()>) {
        if let Some(jobs) = &self.jobs {
            // A syncer that has stopped drops `done`: its waiter hears so.
            let _ = jobs.send(Job::Barrier(done));
        }
    }

    /// The number of the last group done.
    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    /// Why storage failed, if it has.
    pub(super) fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_failure(&self, reason: &str) {
        self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert_with(|| reason.to_owned());
    }

    /// Lets the syncer finish what was handed over (and write a last
    /// snapshot), and waits for it.
    pub(super) fn finish(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the syncer thread panicked");
            }
        }
    }
}

fn refuse(replies: Replies, reason: &str) {
    for (reply, _) in replies {
        // A client that gave up waiting is not an error.
        let _ = reply.send(Err(EngineError::Unavailable(format!("storage failed: {reason}"))));
    }
}

/// The syncer thread's side.
struct Stage {
    store: Arc<dyn Store>,
    published: Arc<ArcSwap<State>>,
    changes: broadcast::Sender<Arc<Committed>>,
    durable: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<String>>>,
    snapshotter: Snapshotter,
}

impl Stage {
    fn run(mut self, jobs: std::sync::mpsc::Receiver<Job>) {
        for job in jobs {
            match job {
                // The caller gave up waiting: not an error.
                Job::Barrier(done) => drop(done.send(())),
                Job::Group(group) => self.sync(*group),
            }
        }
        // Every group is done: a last snapshot, unless storage failed (then
        // the store refuses writes anyway).
        if self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_none() {
            let last = self.published.load_full();
            self.snapshotter.finish(&last, self.store.as_ref());
        }
    }

    fn sync(&mut self, group: GroupJob) {
        let failed = self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(reason) = failed {
            // Decided on top of a group that never became durable.
            refuse(group.replies, &reason);
            self.durable.store(group.number, Ordering::SeqCst);
            return;
        }
        let wrote_nothing = group.records.is_empty() && group.requests.is_empty() && group.expired.is_empty();
        if !wrote_nothing && !group.appended {
            let append = Append {
                after: group.after,
                records: &group.records,
                requests: &group.requests,
                expired: &group.expired,
            };
            let started = std::time::Instant::now();
            let appended = self.store.append(append);
            metrics::histogram!("muster_sync_duration_seconds").record(started.elapsed().as_secs_f64());
            if let Err(error) = appended {
                // Nothing of this group was acknowledged; the writer goes
                // back to the last durable state when it next looks.
                tracing::error!(%error, "storage failed; the engine refuses further writes");
                *self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
                refuse(group.replies, &error.to_string());
                self.durable.store(group.number, Ordering::SeqCst);
                return;
            }
        }
        self.published.store(Arc::clone(&group.state));
        self.snapshotter.offer(&group.state);
        for committed in group.committed {
            // No receiver is not an error: nobody is watching.
            let _ = self.changes.send(committed);
        }
        self.durable.store(group.number, Ordering::SeqCst);
        for (reply, result) in group.replies {
            // A client that gave up waiting is not an error.
            let _ = reply.send(result);
        }
    }
}

/// When to snapshot the state: every `every` records (0: never), the last
/// one at `last`.
pub(super) struct Snapshots {
    pub(super) every: u64,
    pub(super) last: Option<u64>,
}

/// Writes snapshots on a thread of its own, so encoding and syncing a large
/// state never holds up a group commit. The writer hands it a published
/// (durable) state and never waits: if a snapshot is still being written,
/// the next group tries again.
struct Snapshotter {
    every: u64,
    /// The sequence of the last snapshot written or handed over.
    last: u64,
    sender: Option<std::sync::mpsc::SyncSender<Arc<State>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Snapshotter {
    fn start(settings: Snapshots, store: &Arc<dyn Store>) -> Snapshotter {
        let last = settings.last.unwrap_or(0);
        if settings.every == 0 {
            return Snapshotter { every: 0, last, sender: None, thread: None };
        }
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Arc<State>>(1);
        let store = Arc::clone(store);
        let thread = std::thread::Builder::new().name("muster-snapshots".to_owned()).spawn(move || {
            for state in receiver {
                match store.put_snapshot(&state) {
                    Ok(()) => tracing::debug!(sequence = state.last_sequence, "snapshot written"),
                    Err(error) => tracing::error!(%error, sequence = state.last_sequence, "a snapshot failed"),
                }
            }
        });
        match thread {
            Ok(thread) => Snapshotter { every: settings.every, last, sender: Some(sender), thread: Some(thread) },
            Err(error) => {
                tracing::error!(%error, "cannot start the snapshot thread; restarts will fold the whole log");
                Snapshotter { every: 0, last, sender: None, thread: None }
            }
        }
    }

    /// Hands `state` (durable) over if a snapshot is due and the thread is free.
    fn offer(&mut self, state: &Arc<State>) {
        if self.every == 0 || state.last_sequence < self.last.saturating_add(self.every) {
            return;
        }
        if let Some(sender) = &self.sender {
            if sender.try_send(Arc::clone(state)).is_ok() {
                self.last = state.last_sequence;
            }
        }
    }

    /// On a clean stop: waits for the snapshot being written, then writes
    /// one of `state` if it is newer.
    fn finish(&mut self, state: &State, store: &dyn Store) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the snapshot thread panicked");
            }
        }
        if self.every > 0 && state.last_sequence > self.last {
            match store.put_snapshot(state) {
                Ok(()) => self.last = state.last_sequence,
                Err(error) => tracing::error!(%error, "the snapshot at shutdown failed"),
            }
        }
    }
}
