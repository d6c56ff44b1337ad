//! The writer thread: the first stage of the group commit. Everything that
//! changes the state happens here, one command at a time, in queue order;
//! the syncer (`syncer.rs`) makes each decided group durable and answers it
//! while the writer decides the next. The engine's timers
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

use super::syncer::{GroupJob, Snapshots, Syncer};
use super::{Clock, Committed, EngineError, Message, Submission};
use crate::domain::limits::REQUEST_ID_RETENTION_SECONDS;
use crate::domain::timer::{self, Simulation, TimerSettings};
use crate::domain::{execute, Command, Context, DomainError, LogRecord, Reply, State, Timestamp};
use crate::store::{RequestKey, RequestRecord, Store, StoreError};

type ReplySender = oneshot::Sender<Result<Reply, EngineError>>;

pub(super) struct Writer {
    /// The state after every group decided so far, durable or not yet:
    /// what the next command is decided against. Readers never see it; they
    /// see what the syncer publishes once a group is durable.
    state: State,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The last durable state (published by the syncer).
    snapshot: Arc<ArcSwap<State>>,
    max_batch: usize,
    dispatch: crate::domain::travel::Settings,
    failed: Option<String>,
    /// The sequence at which a timer last failed to make progress.
    timers_stalled_at: Option<u64>,
    /// Simulated teams (drills only).
    simulation: Option<Simulation>,
    /// Makes decided groups durable, in order, while the next is decided.
    syncer: Syncer,
    /// The number of the next group handed to the syncer.
    next_group: u64,
    /// Request records of groups handed to the syncer and not yet known
    /// durable, with their group's number: a retry in a later group must
    /// find them before the store has them.
    in_flight: BTreeMap<RequestKey, (u64, RequestRecord)>,
}

/// What one group commit collects before it writes.
#[derive(Default)]
struct Group {
    records: Vec<LogRecord>,
    requests: Vec<RequestRecord>,
    committed: Vec<Arc<Committed>>,
    replies: Replies,
}

/// Each command's answer, to be sent once its group is durable.
pub(super) type Replies = Vec<(ReplySender, Result<Reply, EngineError>)>;

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
        let syncer = Syncer::start(Arc::clone(&store), Arc::clone(&snapshot), changes, snapshots);
        Writer {
            state,
            store,
            clock,
            snapshot,
            max_batch,
            dispatch,
            failed: None,
            timers_stalled_at: None,
            simulation,
            syncer,
            next_group: 1,
            in_flight: BTreeMap::new(),
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
        // Stopped, or every handle is gone: the syncer makes what was
        // decided durable, answers it and writes a last snapshot.
        self.syncer.finish();
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
            metrics::gauge!("muster_writer_queue_depth").set(queue.len() as f64);
            if !submissions.is_empty() {
                metrics::histogram!("muster_commands_per_group").record(submissions.len() as f64);
            }
            if !submissions.is_empty() || matches!(control, Some(Message::Settle(_))) {
                self.commit_group(submissions);
            }
            match control {
                None | Some(Message::Submit(_)) => {}
                Some(Message::Settle(done)) => {
                    // Answered once what was decided before it is durable.
                    self.syncer.barrier(done);
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
        self.catch_up();
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
        // A key that expired and was used again in this very group, or in
        // a group not yet durable, must not be removed after its new record
        // is written.
        let expired: Vec<(Timestamp, RequestKey)> = expired
            .into_iter()
            .filter(|(_, key)| !pending.contains_key(key) && !self.in_flight.contains_key(key))
            .collect();
        group.requests = pending.into_values().collect();
        // Postconditions of every group, in debug builds (the tests): the
        // log continues without a gap and product.md's invariants hold.
        debug_assert!(
            group.records.windows(2).all(|pair| pair[1].sequence == pair[0].sequence + 1),
            "a group's records continue each other"
        );
        #[cfg(debug_assertions)]
        if !group.records.is_empty() {
            if let Err(broken) = crate::domain::invariants::check(&self.state) {
                panic!("after the group ending at sequence {}: {broken}", self.state.last_sequence);
            }
        }
        let number = self.next_group;
        self.next_group += 1;
        for record in &group.requests {
            self.in_flight.insert(record.key.clone(), (number, record.clone()));
        }
        // Every group goes through the syncer, even one that wrote nothing:
        // its answers (a retry's first reply, say) must not overtake the
        // durability of the groups before it.
        let job = GroupJob {
            number,
            records: group.records,
            requests: group.requests,
            expired,
            committed: group.committed,
            replies: group.replies,
            state: Arc::new(self.state.clone()),
        };
        self.syncer.hand_over(job);
    }

    /// Catches up with the syncer: forgets in-flight request records that are
    /// now durable, and if a sync failed, goes back to the last durable
    /// state and refuses all further writes (after a failed sync the disk's
    /// contents are unknown: fsyncgate).
    fn catch_up(&mut self) {
        let durable = self.syncer.durable();
        self.in_flight.retain(|_, (group, _)| *group > durable);
        if self.failed.is_none() {
            if let Some(reason) = self.syncer.failure() {
                tracing::error!(%reason, "storage failed; the engine refuses further writes");
                self.failed = Some(reason);
                self.state = State::clone(&self.snapshot.load_full());
                self.in_flight.clear();
            }
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
            let first = match pending.get(key).or_else(|| self.in_flight.get(key).map(|(_, record)| record)) {
                Some(first) => Some(first.clone()).filter(|first| first.time >= cutoff),
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
