//! The writer thread: group commit. Everything that changes the state
//! happens here, one command at a time, in queue order. The engine's timers
//! live here too: before each group the writer submits every time-driven
//! command that is due by its clock (`domain::timer`), as the timer's actor,
//! and while idle it waits for the next command or the next deadline,
//! whichever comes first.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest as _, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Clock, Committed, EngineError, Message, Submission};
use crate::domain::limits::REQUEST_ID_RETENTION_SECONDS;
use crate::domain::timer::{self, Simulation, TimerSettings};
use crate::domain::{execute, Command, Context, DomainError, LogRecord, Reply, State, Timestamp};
use crate::store::{Append, RequestKey, RequestRecord, Store, StoreError};

type ReplySender = oneshot::Sender<Result<Reply, EngineError>>;

pub(super) struct Writer {
    state: State,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    snapshot: Arc<ArcSwap<State>>,
    changes: broadcast::Sender<Arc<Committed>>,
    max_batch: usize,
    dispatch: crate::domain::travel::Settings,
    failed: Option<String>,
    /// The sequence at which a timer last failed to make progress.
    timers_stalled_at: Option<u64>,
    /// Simulated teams (drills only).
    simulation: Option<Simulation>,
    snapshots: Snapshotter,
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

/// What one group commit collects before it writes.
#[derive(Default)]
struct Group {
    records: Vec<LogRecord>,
    requests: Vec<RequestRecord>,
    committed: Vec<Arc<Committed>>,
    replies: Vec<(ReplySender, Result<Reply, EngineError>)>,
}

impl Writer {
    #[allow(clippy::too_many_arguments)] // Each is a distinct part the writer owns; a struct would only rename them.
    pub(super) fn new(
        state: State,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        snapshot: Arc<ArcSwap<State>>,
        changes: broadcast::Sender<Arc<Committed>>,
        max_batch: usize,
        dispatch: crate::domain::travel::Settings,
        simulation: Option<Simulation>,
        snapshots: Snapshots,
    ) -> Writer {
        let store_for_snapshots = Arc::clone(&store);
        Writer {
            state,
            store,
            clock,
            snapshot,
            changes,
            max_batch,
            dispatch,
            failed: None,
            timers_stalled_at: None,
            simulation,
            snapshots: Snapshotter::start(snapshots, &store_for_snapshots),
        }
    }

    /// Takes groups of commands off the queue until a stop marker or until
    /// every handle is gone, firing the engine's timers as they fall due.
    pub(super) fn run(self, queue: mpsc::Receiver<Message>) {
        // A runtime of its own, on this thread only, so the writer can wait
        // for "a command or the next deadline" without a busy loop; the
        // writer's store calls block this thread and nothing else.
        match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(runtime) => runtime.block_on(self.run_loop(queue)),
            Err(error) => tracing::error!(%error, "the writer could not start its timer runtime; it stopped"),
        }
    }

    async fn run_loop(mut self, queue: mpsc::Receiver<Message>) {
        self.take_groups(queue).await;
        // Stopped, or every handle is gone: a last snapshot, unless storage
        // failed (then the published state is the last durable one, and the
        // store refuses writes anyway).
        if self.failed.is_none() {
            self.snapshots.finish(&self.state, self.store.as_ref());
        }
    }

    async fn take_groups(&mut self, mut queue: mpsc::Receiver<Message>) {
        loop {
            let first = match self.next_deadline() {
                Some(due) if due <= self.now() => {
                    self.commit_group(Vec::new());
                    continue;
                }
                Some(due) => {
                    let clock = Arc::clone(&self.clock);
                    tokio::select! {
                        message = queue.recv() => message,
                        () = clock.wait_until(due) => continue,
                    }
                }
                None => queue.recv().await,
            };
            let Some(first) = first else { return };
            let mut submissions = Vec::new();
            let mut control = None;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Submit(submission) => submissions.push(*submission),
                    other => {
                        // A control message ends the group: it acts after
                        // what was queued before it and before what follows.
                        control = Some(other);
                        break;
                    }
                }
                if submissions.len() < self.max_batch {
                    next = queue.try_recv().ok();
                }
            }
            if !submissions.is_empty() || matches!(control, Some(Message::Settle(_))) {
                self.commit_group(submissions);
            }
            match control {
                None | Some(Message::Submit(_)) => {}
                Some(Message::Settle(done)) => {
                    // The caller gave up waiting: not an error.
                    let _ = done.send(());
                }
                Some(Message::Simulate(simulation)) => {
                    self.simulation = *simulation;
                    self.timers_stalled_at = None;
                }
                Some(Message::Stop) => {
                    tracing::info!(last_sequence = self.state.last_sequence, "writer stopped");
                    return;
                }
            }
        }
    }

    /// The engine clock's time now, never before the last record.
    fn now(&self) -> crate::domain::Timestamp {
        self.clock.now().max(self.state.last_time)
    }

    fn timer_settings(&self) -> TimerSettings {
        TimerSettings { ack_timeout_seconds: self.dispatch.ack_timeout_seconds, simulation: self.simulation.clone() }
    }

    /// When the next timer falls due, if any (none while writes are refused,
    /// or after a timer failed to make progress at this state).
    fn next_deadline(&self) -> Option<crate::domain::Timestamp> {
        if self.failed.is_some() || self.timers_stalled_at == Some(self.state.last_sequence) {
            return None;
        }
        timer::next(&self.state, &self.timer_settings()).map(|timer| timer.due)
    }

    /// Decides every timer due by now, as the timer's actor, into `group`.
    /// Bounded: at most `max_batch` per group, and a timer that changes
    /// nothing (a bug) stops the timers until the state moves on, rather
    /// than spin.
    fn fire_timers(&mut self, group: &mut Group) {
        let settings = self.timer_settings();
        for _ in 0..self.max_batch {
            if self.failed.is_some() || self.timers_stalled_at == Some(self.state.last_sequence) {
                return;
            }
            let now = self.now();
            let Some(due) = timer::next(&self.state, &settings).filter(|timer| timer.due <= now) else {
                return;
            };
            let before = self.state.last_sequence;
            let result = self.execute(&due.command, due.actor, None, None, group);
            if let Err(error) = &result {
                tracing::error!(%error, command = due.command.name(), "a timer's command was refused");
            }
            if self.state.last_sequence == before {
                tracing::error!(
                    command = due.command.name(),
                    "a timer made no progress; timers wait for the next change"
                );
                self.timers_stalled_at = Some(before);
                return;
            }
        }
    }

    fn commit_group(&mut self, submissions: Vec<Submission>) {
        let mut group = Group::default();
        let (cutoff, expired) = match self.expired_requests() {
            Ok(expired) => expired,
            Err(error) => {
                // Reading the request records failed: refuse this group
                // rather than risk applying a retry twice.
                tracing::error!(%error, "reading the request records failed; the group is refused");
                for submission in submissions {
                    let refusal = format!("reading the request records failed: {error}");
                    let _ = submission.reply.send(Err(EngineError::Unavailable(refusal)));
                }
                return;
            }
        };
        self.fire_timers(&mut group);
        let mut pending: BTreeMap<RequestKey, RequestRecord> = BTreeMap::new();
        for submission in submissions {
            let result = self.process(&submission, cutoff, &mut pending, &mut group);
            group.replies.push((submission.reply, result));
        }
        group.requests = pending.into_values().collect();
        // A key that expired and was used again in this very group must not
        // be removed after its new record is written.
        let expired: Vec<(Timestamp, RequestKey)> =
            expired.into_iter().filter(|(_, key)| !group.requests.iter().any(|record| &record.key == key)).collect();
        if group.records.is_empty() && group.requests.is_empty() && expired.is_empty() {
            Self::answer(group.replies);
            return;
        }
        let append = Append { records: &group.records, requests: &group.requests, expired: &expired };
        if let Err(error) = self.store.append(append) {
            // Nothing of this group was acknowledged; go back to the last
            // durable state and refuse all further writes: after a failed
            // sync the disk's contents are unknown (fsyncgate).
            tracing::error!(%error, "storage failed; the engine refuses further writes");
            self.failed = Some(error.to_string());
            self.state = State::clone(&self.snapshot.load_full());
            for (reply, _) in group.replies {
                let _ = reply.send(Err(EngineError::Unavailable(format!("storage failed: {error}"))));
            }
            return;
        }
        // Postconditions of every durable group, in debug builds (the tests):
        // the log continues without a gap and product.md's invariants hold.
        debug_assert!(
            group.records.windows(2).all(|pair| pair[1].sequence == pair[0].sequence + 1),
            "a group's records continue each other"
        );
        #[cfg(debug_assertions)]
        if let Err(broken) = crate::domain::invariants::check(&self.state) {
            panic!("after the group ending at sequence {}: {broken}", self.state.last_sequence);
        }
        let published = Arc::new(self.state.clone());
        self.snapshot.store(Arc::clone(&published));
        self.snapshots.offer(&published);
        for committed in group.committed {
            // No receiver is not an error: nobody is watching.
            let _ = self.changes.send(committed);
        }
        Self::answer(group.replies);
    }

    fn answer(replies: Vec<(ReplySender, Result<Reply, EngineError>)>) {
        for (reply, result) in replies {
            // A client that gave up waiting is not an error.
            let _ = reply.send(result);
        }
    }

    /// The retention's cutoff now, and request records older than it (a
    /// bounded batch per group), for the store to drop in the same write.
    fn expired_requests(&self) -> Result<(Timestamp, Vec<(Timestamp, RequestKey)>), StoreError> {
        let cutoff = self.clock.now().max(self.state.last_time).plus_seconds(-REQUEST_ID_RETENTION_SECONDS);
        let expired = self.store.requests_before(cutoff, self.max_batch.saturating_mul(4))?;
        Ok((cutoff, expired))
    }

    fn process(
        &mut self,
        submission: &Submission,
        cutoff: Timestamp,
        pending: &mut BTreeMap<RequestKey, RequestRecord>,
        group: &mut Group,
    ) -> Result<Reply, EngineError> {
        if let Some(reason) = &self.failed {
            return Err(EngineError::Unavailable(format!("storage failed earlier: {reason}")));
        }
        let key = match &submission.request_id {
            Some(request_id) => Some((
                RequestKey { actor: submission.actor.clone(), request_id: request_id.clone() },
                fingerprint(&submission.command)?,
            )),
            None => None,
        };
        if let Some((key, fingerprint)) = &key {
            let first = match pending.get(key) {
                Some(first) => Some(first.clone()),
                // Past the retention it is forgotten, even if the store
                // has not dropped it yet.
                None => self.store.request(key)?.filter(|first| first.time >= cutoff),
            };
            if let Some(first) = first {
                if first.fingerprint != *fingerprint {
                    return Err(DomainError::invalid(
                        "request_id",
                        "was already used for a different request; use a new request_id",
                    )
                    .into());
                }
                return Ok(first.reply);
            }
        }
        let time = self.now();
        let prepared = match &submission.prepared {
            Some(prepared) => {
                let sound = prepared.epoch == self.state.dispatch_epoch()
                    && crate::domain::dispatching::still_sound(&self.state, &prepared.plan, time);
                if !sound {
                    return Err(EngineError::PlanOutdated);
                }
                Some(Arc::clone(&prepared.plan))
            }
            None => None,
        };
        let reply =
            self.execute(&submission.command, &submission.actor, submission.request_id.as_deref(), prepared, group)?;
        if let Some((key, fingerprint)) = key {
            pending.insert(key.clone(), RequestRecord { key, fingerprint, time, reply: reply.clone() });
        }
        Ok(reply)
    }

    /// Decides and applies one command into `group`; on refusal or panic the
    /// state is left exactly as it was.
    fn execute(
        &mut self,
        command: &Command,
        actor: &str,
        request_id: Option<&str>,
        prepared: Option<Arc<crate::domain::dispatching::DispatchPlan>>,
        group: &mut Group,
    ) -> Result<Reply, EngineError> {
        let context = Context {
            time: self.now(),
            actor: actor.to_owned(),
            settings: self.dispatch,
            planner: &crate::dispatch::DISPATCHER,
            prepared,
        };
        // Persistent maps make this copy cheap; it lets any failure below
        // leave the state exactly as it was, so no event is ever applied
        // without being logged.
        let before = self.state.clone();
        let state = &mut self.state;
        let executed = catch_unwind(AssertUnwindSafe(|| {
            let records = execute(state, command, &context, request_id)?;
            let reply = Reply::build(command, state, &records)?;
            Ok::<_, DomainError>((records, reply))
        }));
        let (records, reply) = match executed {
            Ok(Ok(done)) => done,
            Ok(Err(refusal)) => {
                self.state = before;
                return Err(refusal.into());
            }
            Err(_) => {
                self.state = before;
                tracing::error!(command = command.name(), "executing a command panicked; it was refused");
                return Err(EngineError::Internal(format!("executing {} failed", command.name())));
            }
        };
        if !records.is_empty() {
            group.records.extend(records.iter().cloned());
            group.committed.push(Arc::new(Committed { records, state: Arc::new(self.state.clone()) }));
        }
        Ok(reply)
    }
}

/// SHA-256 of the command's canonical encoding: a retry must be the same
/// request. Computed only for commands that carry a `request_id`.
fn fingerprint(command: &Command) -> Result<[u8; 32], EngineError> {
    // A command that cannot be encoded cannot be told apart from another:
    // refuse it rather than let every such request share one fingerprint.
    let bytes = postcard::to_allocvec(command)
        .map_err(|error| EngineError::Internal(format!("encoding {} for its fingerprint: {error}", command.name())))?;
    Ok(Sha256::digest(&bytes).into())
}
