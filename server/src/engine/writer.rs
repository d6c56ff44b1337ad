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
use crate::store::{Append, RequestKey, RequestRecord, Store, StoreError};

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
    /// The log position `state` stands at: what the next append expects.
    position: u64,
    /// Other servers append to the log too (`Store::shared`).
    shared: bool,
    /// Moves when a shared log may have records to follow.
    follow_changes: Option<tokio::sync::watch::Receiver<u64>>,
    /// After timers alone could not be appended to a shared log: not again
    /// before this time.
    timers_back_off_until: Option<Timestamp>,
    /// The last follow of a shared log applied something.
    followed_some: bool,
}

/// How often one group is decided again because another server appended
/// first, before its commands are refused as unavailable (retry later).
/// Each round applies what the others wrote, so this bounds only a storm.
pub(super) const MAX_CONFLICTS: usize = 16;

/// Request records to drop with an append, each with the time it was applied.
type Expired = Vec<(Timestamp, RequestKey)>;

/// Why the idle writer woke.
enum Woken {
    Message(Option<Message>),
    Deadline,
    Followed,
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
        position: u64,
    ) -> Writer {
        let syncer = Syncer::start(Arc::clone(&store), Arc::clone(&snapshot), changes, snapshots);
        let shared = store.shared();
        let follow_changes = store.follow_changes();
        Writer {
            position,
            shared,
            follow_changes,
            timers_back_off_until: None,
            followed_some: false,
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
            if self.behind() {
                self.commit_group(Vec::new());
                continue;
            }
            let deadline = match self.next_deadline() {
                Some(due) if due <= self.now() => {
                    self.commit_group(Vec::new());
                    continue;
                }
                deadline => deadline,
            };
            let clock = Arc::clone(&self.clock);
            let mut follow_changes = self.follow_changes.take();
            let woken = tokio::select! {
                message = queue.recv() => Woken::Message(message),
                () = async {
                    match deadline {
                        Some(due) => clock.wait_until(due).await,
                        None => std::future::pending().await,
                    }
                } => Woken::Deadline,
                // Another server appended to a shared log.
                () = async {
                    let changed = match follow_changes.as_mut() {
                        Some(changes) => changes.changed().await.is_ok(),
                        None => false,
                    };
                    if !changed {
                        std::future::pending::<()>().await;
                    }
                } => Woken::Followed,
            };
            self.follow_changes = follow_changes;
            let first = match woken {
                Woken::Message(message) => message,
                Woken::Deadline => continue,
                Woken::Followed => {
                    // Follow it and publish what it changed (not this
                    // writer's own appends coming back).
                    let received = self.follow_changes.as_ref().map_or(0, |changes| *changes.borrow());
                    if received > self.position {
                        self.commit_group(Vec::new());
                    }
                    continue;
                }
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
        let due = timer::next(&self.state, &self.timer_settings()).map(|timer| timer.due)?;
        Some(self.timers_back_off_until.map_or(due, |until| due.max(until)))
    }

    /// Decides every timer due by now, as the timer's actor, into `group`.
    /// Bounded: at most `max_batch` per group, and a timer that changes
    /// nothing (a bug) stops the timers until the state moves on, rather
    /// than spin.
    fn fire_timers(&mut self, group: &mut Group) {
        let settings = self.timer_settings();
        // Timers wait while the back-off lasts, and while a shared log has
        // more to follow: a timer decided on a state that misses records
        // would only conflict (and pull the whole backlog in at once).
        if self.timers_back_off_until.is_some_and(|until| self.now() < until) || self.behind() {
            return;
        }
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
        if self.shared {
            self.commit_shared(submissions);
            return;
        }
        let Some((cutoff, expired)) = self.expired_or_refuse(&submissions) else {
            for submission in submissions {
                let _ =
                    submission.reply.send(Err(EngineError::Unavailable("reading the request records failed".into())));
            }
            return;
        };
        let (mut group, results, expired) = self.decide(&submissions, cutoff, expired);
        group.replies = submissions.into_iter().map(|submission| submission.reply).zip(results).collect();
        let after = self.position;
        // A log with one writer stands at its last record.
        self.position = self.state.last_sequence;
        self.hand_over(group, expired, after, false);
    }

    /// The retention's cutoff and the request records to drop with the next
    /// append; `None` (logged) when the request records cannot be read: the
    /// group is then refused rather than risk applying a retry twice.
    fn expired_or_refuse(&self, submissions: &[Submission]) -> Option<(Timestamp, Vec<(Timestamp, RequestKey)>)> {
        match self.expired_requests() {
            Ok(expired) => Some(expired),
            Err(error) => {
                tracing::error!(%error, commands = submissions.len(), "reading the request records failed; the group is refused");
                None
            }
        }
    }

    /// Decides every timer due and then every submission, in order, into
    /// a group; returns it, each submission's answer, and the expired
    /// request records still to drop.
    fn decide(
        &mut self,
        submissions: &[Submission],
        cutoff: Timestamp,
        expired: Vec<(Timestamp, RequestKey)>,
    ) -> (Group, Vec<Result<Reply, EngineError>>, Expired) {
        let mut group = Group::default();
        self.fire_timers(&mut group);
        let mut pending: BTreeMap<RequestKey, RequestRecord> = BTreeMap::new();
        let results =
            submissions.iter().map(|submission| self.process(submission, cutoff, &mut pending, &mut group)).collect();
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
        (group, results, expired)
    }

    /// Hands a decided group to the syncer: every group goes through it,
    /// even one that wrote nothing, since its answers (a retry's first
    /// reply, say) must not overtake the durability of the groups before
    /// it. `appended`: the writer has already appended it (a shared log).
    fn hand_over(&mut self, group: Group, expired: Vec<(Timestamp, RequestKey)>, after: u64, appended: bool) {
        let number = self.next_group;
        self.next_group += 1;
        if !appended {
            for record in &group.requests {
                self.in_flight.insert(record.key.clone(), (number, record.clone()));
            }
        }
        let job = GroupJob {
            number,
            after,
            appended,
            records: group.records,
            requests: group.requests,
            expired,
            committed: group.committed,
            replies: group.replies,
            state: Arc::new(self.state.clone()),
        };
        self.syncer.hand_over(job);
    }

    /// A group on a log other servers append to: follow what they wrote,
    /// decide, append expecting the position decided at; when another
    /// server appended first, go back, follow it and decide again
    /// (at most [`MAX_CONFLICTS`] times). Appending here rather than in
    /// the syncer means deciding waits for the replicated log, but a
    /// conflict never has a later group decided on top of the lost one.
    fn commit_shared(&mut self, submissions: Vec<Submission>) {
        let mut followed = Vec::new();
        if let Err(error) = self.follow(None, &mut followed) {
            self.shared_failed(&error, submissions.is_empty());
            self.refuse_shared(submissions, followed, &error);
            return;
        }
        if self.failed.is_some() {
            let results = submissions.iter().map(|_| Err(self.unavailable())).collect();
            self.finish_shared(submissions, results, Group::default(), followed);
            return;
        }
        if submissions.is_empty() && self.behind() {
            // Catching up: publish this helping and come back for the next.
            self.finish_shared(submissions, Vec::new(), Group::default(), followed);
            return;
        }
        let mut conflicts = 0;
        loop {
            let Some((cutoff, expired)) = self.expired_or_refuse(&submissions) else {
                let error = StoreError::Unavailable("reading the request records failed".into());
                self.refuse_shared(submissions, followed, &error);
                return;
            };
            let before = self.state.clone();
            let (group, results, expired) = self.decide(&submissions, cutoff, expired);
            let appended = if group.records.is_empty() && group.requests.is_empty() {
                // Nothing to append: refusals and changes that changed
                // nothing. They too must have been decided on the whole
                // log, so the writer confirms where it ends before it
                // answers (one round trip), and decides again if it moved.
                let confirmed = if submissions.is_empty() { Ok(()) } else { self.store.confirm(self.position) };
                confirmed.and_then(|()| {
                    if expired.is_empty() {
                        return Ok(self.position);
                    }
                    // Expired request records are each replica's own to drop.
                    self.store.append(Append { after: self.position, expired: &expired, ..Append::default() })
                })
            } else {
                let append = Append {
                    after: self.position,
                    records: &group.records,
                    requests: &group.requests,
                    expired: &expired,
                };
                let started = std::time::Instant::now();
                let appended = self.store.append(append);
                metrics::histogram!("muster_sync_duration_seconds").record(started.elapsed().as_secs_f64());
                appended
            };
            match appended {
                Ok(position) => {
                    self.position = position;
                    self.timers_back_off_until = None;
                    self.finish_shared(submissions, results, group, followed);
                    return;
                }
                Err(StoreError::Conflict { latest }) if conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    metrics::counter!("muster_log_conflicts_total").increment(1);
                    tracing::debug!(latest, position = self.position, "another server appended first; deciding again");
                    self.state = before;
                    if let Err(error) = self.follow(Some(latest), &mut followed) {
                        self.shared_failed(&error, submissions.is_empty());
                        self.refuse_shared(submissions, followed, &error);
                        return;
                    }
                }
                Err(StoreError::TooLarge { .. }) if submissions.len() > 1 => {
                    // One command at a time, each in an append of its own.
                    self.state = before;
                    self.finish_shared(Vec::new(), Vec::new(), Group::default(), followed);
                    for submission in submissions {
                        self.commit_shared(vec![submission]);
                    }
                    return;
                }
                Err(error) => {
                    self.state = before;
                    self.shared_failed(&error, submissions.is_empty());
                    self.refuse_shared(submissions, followed, &error);
                    return;
                }
            }
        }
    }

    /// After a shared log refused a group: a failure of the local copy, or
    /// a message that cannot be followed, stops writes (as a failed sync
    /// does on the embedded log); anything else refuses this group only,
    /// and a group of timers alone is tried again a second later rather
    /// than at once.
    fn shared_failed(&mut self, error: &StoreError, timers_only: bool) {
        if matches!(error, StoreError::Sled { .. } | StoreError::Io { .. } | StoreError::Corrupt { .. }) {
            tracing::error!(%error, "the replicated log's local copy failed; the engine refuses further writes");
            if self.failed.is_none() {
                self.failed = Some(error.to_string());
            }
        } else {
            tracing::warn!(%error, "the shared log did not take a group; its commands are refused");
        }
        if timers_only {
            self.timers_back_off_until = Some(self.now().plus_seconds(1));
        }
    }

    fn unavailable(&self) -> EngineError {
        EngineError::Unavailable(format!("storage failed earlier: {}", self.failed.as_deref().unwrap_or("")))
    }

    /// Answers every submission with `error`, publishing what was followed.
    fn refuse_shared(&mut self, submissions: Vec<Submission>, followed: Vec<Arc<Committed>>, error: &StoreError) {
        let answer = |error: &StoreError| match error {
            StoreError::TooLarge { .. } => EngineError::Domain(DomainError::ResourceExhausted(error.to_string())),
            other => EngineError::Unavailable(format!(
                "{other}; nothing was acknowledged (a retry with the same request_id is applied at most once)"
            )),
        };
        let results = submissions.iter().map(|_| Err(answer(error))).collect();
        self.finish_shared(submissions, results, Group::default(), followed);
    }

    /// Hands a shared log's group (already appended, or nothing to append)
    /// to the syncer with what was followed before it, to publish and answer.
    fn finish_shared(
        &mut self,
        submissions: Vec<Submission>,
        results: Vec<Result<Reply, EngineError>>,
        mut group: Group,
        mut followed: Vec<Arc<Committed>>,
    ) {
        followed.append(&mut group.committed);
        group.committed = followed;
        group.replies = submissions.into_iter().map(|submission| submission.reply).zip(results).collect();
        let after = self.position;
        self.hand_over(group, Vec::new(), after, true);
    }

    /// Applies what other servers appended to the shared log after
    /// `self.position` (with `through`, at least that far), one committed
    /// command at a time, for `followed` to publish and broadcast.
    /// Without `through`, at most one helping of the store's: the writer
    /// publishes it and comes back for more (`behind`), so a replica
    /// catching up after a long cut publishes as it goes.
    fn follow(&mut self, through: Option<u64>, followed: &mut Vec<Arc<Committed>>) -> Result<(), StoreError> {
        self.followed_some = false;
        loop {
            let batches = self.store.follow(self.position, through.filter(|through| *through > self.position))?;
            if batches.is_empty() {
                return Ok(());
            }
            self.followed_some = true;
            for batch in batches {
                let mut command: Vec<LogRecord> = Vec::new();
                for record in batch.records {
                    if record.sequence != self.state.last_sequence + 1 {
                        return Err(StoreError::Corrupt {
                            tree: "log",
                            key: record.sequence.to_string(),
                            reason: format!(
                                "followed out of order: expected sequence {}",
                                self.state.last_sequence + 1
                            ),
                        });
                    }
                    if command.last().is_some_and(|last| last.command != record.command) {
                        let records = std::mem::take(&mut command);
                        followed.push(Arc::new(Committed { records, state: Arc::new(self.state.clone()) }));
                    }
                    self.state.apply(&record);
                    command.push(record);
                }
                if !command.is_empty() {
                    followed.push(Arc::new(Committed { records: command, state: Arc::new(self.state.clone()) }));
                }
                self.position = batch.position;
            }
            if through.is_none() {
                return Ok(());
            }
        }
    }

    /// A shared log has more to follow than the last helping took.
    fn behind(&self) -> bool {
        self.shared
            && self.failed.is_none()
            && self.followed_some
            && self.follow_changes.as_ref().is_some_and(|changes| *changes.borrow() > self.position)
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
        if self.failed.is_some() {
            return Err(self.unavailable());
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
