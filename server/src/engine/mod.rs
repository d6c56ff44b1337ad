//! The engine: the single writer. Commands queue up; the writer thread takes
//! as many as are waiting (a group), decides and applies each against its
//! state and hands the group to the syncer thread, which appends all their
//! events to the store in one durable write, then publishes the new state
//! to readers, acknowledges each command, and broadcasts the events to
//! watchers, while the writer decides the next group. It owns the clock.
//!
//! Readers never see an event before it is durable: they read the last
//! published snapshot, a cheap clone of the writer's persistent maps.

mod clock;
mod syncer;
mod writer;

use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::domain::{Command, DomainError, LogRecord, Reply, State, Timestamp};
use crate::store::{self, Store, StoreError};

pub use clock::{Clock, ManualClock, SystemClock};

/// Tunables of the writer, each bounded.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Commands that may wait for the writer; beyond this a command is
    /// refused with `RESOURCE_EXHAUSTED` (retry later).
    pub queue_capacity: usize,
    /// Most commands in one group commit.
    pub max_batch: usize,
    /// Committed commands a watcher may fall behind before it must resync.
    pub watch_buffer: usize,
    /// How the dispatcher estimates travel.
    pub dispatch: crate::domain::travel::Settings,
    /// Simulated teams (drills only; `None` in live operations).
    pub simulation: Option<crate::domain::timer::Simulation>,
    /// A snapshot of the state is written (off the writer's thread) every
    /// this many log records, and on a clean stop; 0: never. Restarts and
    /// reads of the past start from the nearest snapshot.
    pub snapshot_every: u64,
}

/// Reads of the past (`as_of`, past digests) that may run at once; more are
/// refused with `RESOURCE_EXHAUSTED`. Each folds up to `snapshot_every`
/// records on a blocking thread: two keep one core for everything else.
pub const MAX_PAST_READS: usize = 2;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            queue_capacity: 4_096,
            max_batch: 512,
            watch_buffer: 2_048,
            dispatch: crate::domain::travel::Settings::default(),
            simulation: None,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
        }
    }
}

/// Log records between snapshots, unless configured otherwise.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

/// Why the engine did not apply a command.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The command was refused; nothing changed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The write queue is full; nothing changed, retry later.
    #[error("the server's write queue is full; retry later")]
    Overloaded,
    /// The engine is shutting down or has stopped after a storage failure;
    /// the command was not applied.
    #[error("the engine is not accepting writes: {0}")]
    Unavailable(String),
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A dispatch planned off the writer found the state changed before it
    /// could commit; nothing changed. The handle plans again (callers see
    /// this only if it reaches them by mistake).
    #[error("the state changed while the dispatch was planned; nothing changed, retry")]
    PlanOutdated,
    /// Too many reads of the past are running; nothing was read, retry later.
    #[error("{MAX_PAST_READS} reads of the past (as_of, past digests) are already running; retry later")]
    PastReadsBusy,
    /// A bug: executing the command failed unexpectedly; nothing changed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One committed command, as watchers see it.
#[derive(Debug)]
pub struct Committed {
    /// Its log records (possibly none).
    pub records: Vec<LogRecord>,
    /// The state right after it.
    pub state: Arc<State>,
}

enum Message {
    Submit(Box<Submission>),
    /// Answers once every timer due by the clock has fired.
    Settle(oneshot::Sender<()>),
    /// Replaces the simulation (drills), in queue order.
    Simulate(Box<Option<crate::domain::timer::Simulation>>),
    Stop,
}

struct Submission {
    command: Command,
    actor: String,
    request_id: Option<String>,
    /// For a `Dispatch`: its plan, made off the writer at this dispatch epoch.
    prepared: Option<Prepared>,
    reply: oneshot::Sender<Result<Reply, EngineError>>,
}

/// A dispatch plan made on a published state, off the writer's thread.
struct Prepared {
    plan: Arc<crate::domain::dispatching::DispatchPlan>,
    epoch: u64,
}

/// How often a dispatch is planned off the writer before, the state having
/// changed under it each time, the writer plans it itself (holding writes
/// up for that one plan rather than never dispatching).
const PLAN_ATTEMPTS: usize = 3;

/// Begins an engine's shutdown: watch streams end, new commands are refused.
#[derive(Clone, Debug)]
pub struct Closer(Arc<watch::Sender<bool>>);

impl Closer {
    /// Begins the shutdown (idempotent).
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

/// A cheap, clonable handle to the engine: submit commands, read snapshots,
/// watch changes, read the log.
#[derive(Clone)]
pub struct EngineHandle {
    queue: mpsc::Sender<Message>,
    snapshot: Arc<ArcSwap<State>>,
    changes: broadcast::Sender<Arc<Committed>>,
    store: Arc<dyn Store>,
    closing: watch::Receiver<bool>,
    clock: Arc<dyn Clock>,
    dispatch: crate::domain::travel::Settings,
    past_reads: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").field("last_sequence", &self.snapshot().last_sequence).finish()
    }
}

/// The running engine: its handle and its writer thread.
pub struct Engine {
    handle: EngineHandle,
    closing: Closer,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Rebuilds the state from `store`'s log and starts the writer thread.
    pub fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: EngineConfig) -> Result<Engine, StoreError> {
        let (state, last_snapshot) = restore(store.as_ref(), u64::MAX, None)?;
        tracing::info!(last_sequence = state.last_sequence, from_snapshot = last_snapshot, "state restored");
        let retention_start =
            clock.now().max(state.last_time).plus_seconds(-crate::domain::limits::REQUEST_ID_RETENTION_SECONDS);
        store.forget_requests_before(retention_start)?;
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let snapshot = Arc::new(ArcSwap::from_pointee(state.clone()));
        let (changes, _) = broadcast::channel(config.watch_buffer.max(1));
        let (closing_sender, closing) = watch::channel(false);
        let position = store.position()?;
        let writer = writer::Writer::new(
            state,
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&snapshot),
            changes.clone(),
            config.max_batch.max(1),
            config.dispatch,
            config.simulation,
            syncer::Snapshots { every: config.snapshot_every, last: last_snapshot },
            position,
        );
        let thread =
            std::thread::Builder::new()
                .name("muster-writer".to_owned())
                .spawn(move || writer.run(receiver))
                .map_err(|source| StoreError::Io { operation: "spawn writer thread", path: String::new(), source })?;
        Ok(Engine {
            handle: EngineHandle {
                queue,
                snapshot,
                changes,
                store,
                closing,
                clock,
                dispatch: config.dispatch,
                past_reads: Arc::new(tokio::sync::Semaphore::new(MAX_PAST_READS)),
            },
            closing: Closer(Arc::new(closing_sender)),
            writer: Some(thread),
        })
    }

    /// A handle for services and tests.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Tells watchers to end their streams and new commands to stay away
    /// (the first step of a shutdown).
    pub fn begin_shutdown(&self) {
        self.closing.close();
    }

    /// Something that can begin the shutdown from elsewhere (a signal handler).
    pub fn closer(&self) -> Closer {
        self.closing.clone()
    }

    /// Stops taking commands, lets the writer commit what is already queued,
    /// and waits for it to finish. Handles still held elsewhere get
    /// `Unavailable` for new commands.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        // The stop marker queues behind every command already submitted, so
        // those are decided and made durable before the writer exits.
        let _ = self.handle.queue.send(Message::Stop).await;
        if let Some(thread) = self.writer.take() {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                _ => tracing::error!("the writer thread panicked during shutdown"),
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Without `shutdown`, ask the writer to stop once the queue drains;
        // what it has acknowledged is durable either way.
        self.begin_shutdown();
        let _ = self.handle.queue.try_send(Message::Stop);
    }
}

impl EngineHandle {
    /// Submits a command and waits until it is durable (or refused).
    ///
    /// A `Dispatch` is planned here, on the last published state, on a
    /// blocking thread, so that status reports never wait behind a large
    /// plan; the writer commits the plan only if the state's dispatch epoch
    /// is unchanged and every proposed team is still free where it now is
    /// (`dispatching::still_sound`), and otherwise it is planned again.
    pub async fn submit(
        &self,
        command: Command,
        actor: &str,
        request_id: Option<String>,
    ) -> Result<Reply, EngineError> {
        // Checked once: a dispatch accepted before the shutdown began is
        // planned and committed like any call in flight.
        if *self.closing.borrow() {
            return Err(EngineError::Unavailable("the server is shutting down".to_owned()));
        }
        if let Command::Dispatch { incident_id, divert } = &command {
            for _ in 0..PLAN_ATTEMPTS {
                let Some(prepared) = self.plan_dispatch(incident_id.clone(), *divert).await? else { break };
                match self.enqueue(command.clone(), actor, request_id.clone(), Some(prepared)).await {
                    Err(EngineError::PlanOutdated) => continue,
                    done => return done,
                }
            }
        }
        self.enqueue(command, actor, request_id, None).await
    }

    /// Plans a dispatch on the last published state, on a blocking thread:
    /// a dry run's answer, and the plan `submit` hands the writer. Returns
    /// the plan (or why the planner refuses), the time it planned for and
    /// the state's dispatch epoch.
    pub async fn plan_dispatch_on_published(
        &self,
        incident_id: Option<String>,
        divert: bool,
    ) -> Result<(crate::domain::DomainResult<crate::domain::dispatching::DispatchPlan>, Timestamp, u64), EngineError>
    {
        let state = self.snapshot();
        let now = self.now();
        let settings = self.dispatch;
        tokio::task::spawn_blocking(move || {
            let scope = crate::domain::dispatching::Scope { incident_id: incident_id.as_deref(), divert };
            let started = std::time::Instant::now();
            let plan = crate::dispatch::plan(&state, scope, &settings, now);
            metrics::histogram!("muster_dispatch_duration_seconds").record(started.elapsed().as_secs_f64());
            (plan, now, state.dispatch_epoch())
        })
        .await
        .map_err(|error| EngineError::Internal(format!("planning a dispatch failed: {error}")))
    }

    /// Plans a dispatch ahead for the writer; `None` when the planner
    /// refuses (the writer then decides, and refuses, in order).
    async fn plan_dispatch(&self, incident_id: Option<String>, divert: bool) -> Result<Option<Prepared>, EngineError> {
        let (plan, _, epoch) = self.plan_dispatch_on_published(incident_id, divert).await?;
        Ok(plan.ok().map(|plan| Prepared { plan: Arc::new(plan), epoch }))
    }

    async fn enqueue(
        &self,
        command: Command,
        actor: &str,
        request_id: Option<String>,
        prepared: Option<Prepared>,
    ) -> Result<Reply, EngineError> {
        let (reply, answer) = oneshot::channel();
        let submission = Submission { command, actor: actor.to_owned(), request_id, prepared, reply };
        match self.queue.try_send(Message::Submit(Box::new(submission))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(EngineError::Overloaded),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(EngineError::Unavailable("the writer has stopped".to_owned()));
            }
        }
        answer.await.unwrap_or_else(|_| Err(EngineError::Unavailable("the writer has stopped".to_owned())))
    }

    /// The engine clock's time now (never before the last committed record):
    /// what a dry-run dispatch plans with.
    pub fn now(&self) -> Timestamp {
        self.clock.now().max(self.snapshot().last_time)
    }

    /// How the dispatcher estimates travel.
    pub fn dispatch_settings(&self) -> crate::domain::travel::Settings {
        self.dispatch
    }

    /// Waits until the writer has fired every timer due by the clock now
    /// (at most a group of them: call again while `timer::next` says one is
    /// still due). Drills call it after each move of their clock.
    pub async fn settle(&self) -> Result<(), EngineError> {
        let (done, settled) = oneshot::channel();
        self.queue
            .send(Message::Settle(done))
            .await
            .map_err(|_| EngineError::Unavailable("the writer has stopped".to_owned()))?;
        settled.await.map_err(|_| EngineError::Unavailable("the writer has stopped".to_owned()))
    }

    /// Replaces the simulated teams' behaviour (drills: a team falls
    /// silent), in order with the commands submitted before and after.
    pub async fn simulate(&self, simulation: Option<crate::domain::timer::Simulation>) -> Result<(), EngineError> {
        self.queue
            .send(Message::Simulate(Box::new(simulation)))
            .await
            .map_err(|_| EngineError::Unavailable("the writer has stopped".to_owned()))
    }

    /// The last committed state.
    pub fn snapshot(&self) -> Arc<State> {
        self.snapshot.load_full()
    }

    /// Every command committed from now on. A receiver that falls more than
    /// `watch_buffer` commands behind gets `Lagged` and must resync from a
    /// snapshot: the writer never waits for a watcher.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.changes.subscribe()
    }

    /// Becomes true when the server begins to shut down; watch streams end then.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.clone()
    }

    /// Runs one expensive read (a read of the past, a report that scans the
    /// log) on a blocking thread, holding one of the [`MAX_PAST_READS`]
    /// places they share; `PastReadsBusy` when none is free. `what` names
    /// the read in the log if its task fails.
    pub async fn heavy<T: Send + 'static>(
        &self,
        what: &'static str,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let permit = Arc::clone(&self.past_reads).try_acquire_owned().map_err(|_| EngineError::PastReadsBusy)?;
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            read()
        });
        read.await.map_err(|error| EngineError::Internal(format!("{what} failed: {error}")))
    }

    /// Committed log records from `from`, at most `limit`. Blocking: call it
    /// from a blocking task.
    pub fn read_log(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        let committed = self.snapshot().last_sequence;
        let mut records = self.store.read(from, limit)?;
        records.retain(|record| record.sequence <= committed);
        Ok(records)
    }

    /// The state as it stood after the last record at or before `time`
    /// (`as_of` reads): the nearest snapshot before it, and the records
    /// after that, folded on a blocking thread. At most [`MAX_PAST_READS`]
    /// run at once; past that, `PastReadsBusy`.
    pub async fn state_as_of(&self, time: Timestamp) -> Result<State, EngineError> {
        let up_to = self.snapshot().last_sequence;
        self.read_past(move |store| restore(store, up_to, Some(time))).await
    }

    /// The state after record `sequence` (past digests), as [`Self::state_as_of`] does.
    pub async fn state_at_sequence(&self, sequence: u64) -> Result<State, EngineError> {
        let up_to = sequence.min(self.snapshot().last_sequence);
        self.read_past(move |store| restore(store, up_to, None)).await
    }

    async fn read_past(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<(State, Option<u64>), StoreError> + Send + 'static,
    ) -> Result<State, EngineError> {
        let store = Arc::clone(&self.store);
        Ok(self.heavy("a read of the past", move || read(store.as_ref())).await??.0)
    }
}

/// The state after record `up_to` (and, when given, only records at or
/// before `until`), starting from the latest snapshot that lies before both
/// and folding the log after it. Also returns that snapshot's sequence. A
/// snapshot that cannot be read is passed over (and logged): the log is the
/// truth, a snapshot only saves folding it.
pub fn restore(store: &dyn Store, up_to: u64, until: Option<Timestamp>) -> Result<(State, Option<u64>), StoreError> {
    let marks = store.snapshot_marks()?;
    let usable =
        marks.iter().rev().filter(|mark| mark.sequence <= up_to && until.is_none_or(|until| mark.time <= until));
    for mark in usable {
        // A snapshot beyond the log (a data directory put back from an older
        // backup beside newer snapshots) must not be resumed from.
        let in_the_log = store
            .read(mark.sequence, 1)?
            .first()
            .is_some_and(|record| record.sequence == mark.sequence && record.time == mark.time);
        if !in_the_log {
            tracing::warn!(sequence = mark.sequence, "a snapshot does not match the log; using an older one");
            continue;
        }
        match store.snapshot(mark.sequence) {
            Ok(Some(state)) if state.last_sequence == mark.sequence => {
                return Ok((fold(store, state, up_to, until)?, Some(mark.sequence)));
            }
            Ok(_) => tracing::warn!(sequence = mark.sequence, "a snapshot is missing; using an older one"),
            Err(error) => {
                tracing::warn!(%error, sequence = mark.sequence, "a snapshot is unreadable; using an older one")
            }
        }
    }
    Ok((fold(store, State::default(), up_to, until)?, None))
}

/// Folds the whole log into a fresh state, up to sequence `up_to` and, when
/// given, only records at or before `until`, with no snapshot: what
/// `musterd check --full` compares the snapshots with. Refuses a log with a gap.
pub fn replay(store: &dyn Store, up_to: u64, until: Option<Timestamp>) -> Result<State, StoreError> {
    fold(store, State::default(), up_to, until)
}

/// Folds the records after `state` into it, up to `up_to` and `until`.
pub fn fold(store: &dyn Store, mut state: State, up_to: u64, until: Option<Timestamp>) -> Result<State, StoreError> {
    let mut failure = None;
    let from = state.last_sequence + 1;
    store::for_each_record(store, from, |record| {
        if record.sequence > up_to || until.is_some_and(|until| record.time > until) {
            return false;
        }
        if record.sequence != state.last_sequence + 1 {
            failure = Some(StoreError::Corrupt {
                tree: "log",
                key: record.sequence.to_string(),
                reason: format!("expected sequence {}", state.last_sequence + 1),
            });
            return false;
        }
        state.apply(&record);
        true
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(state),
    }
}

#[cfg(test)]
mod shared_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::import::{Fixture, Sourced};
    use crate::domain::reserve::{Depot, Item, LedgerReason};
    use crate::domain::LatLng;
    use crate::store::MemoryStore;

    pub(super) fn world() -> Command {
        let mut fixture = Fixture::default();
        let item = Item { code: "pump".into(), name: "Pump".into(), unit: "unit".into(), category: String::new() };
        fixture.items.push(Sourced { source: String::new(), value: item });
        let depot =
            Depot { id: "D".into(), name: "Depot".into(), organization: String::new(), position: LatLng::default() };
        fixture.depots.push(Sourced { source: String::new(), value: depot });
        fixture.stock.push(Sourced {
            source: String::new(),
            value: crate::domain::import::StockSetting {
                depot_id: "D".into(),
                item_code: "pump".into(),
                on_hand: 100,
                min_reserve: 0,
            },
        });
        Command::Import { fixture }
    }

    pub(super) fn consume(delta: i64) -> Command {
        Command::AdjustStock {
            depot_id: "D".into(),
            item_code: "pump".into(),
            delta,
            reason: Some(LedgerReason::Consumed),
            note: String::new(),
        }
    }

    pub(super) fn on_hand(engine: &EngineHandle) -> i64 {
        engine.snapshot().stock_level("D", "pump").unwrap().on_hand
    }

    /// Regression: a request id that expired and was used again in the very
    /// group that expired it must keep its new record across a restart.
    #[tokio::test]
    async fn a_reused_expired_request_id_survives_a_restart() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp::from_unix_seconds(1_000_000));
        let engine = Engine::start(Arc::clone(&store), Arc::new(clock.clone()), EngineConfig::default()).unwrap();
        let handle = engine.handle();
        handle.submit(world(), "commander", None).await.unwrap();
        handle.submit(consume(-5), "commander", Some("x".into())).await.unwrap();
        clock.advance_seconds(25 * 3600);
        handle.submit(consume(-7), "commander", Some("x".into())).await.unwrap();
        assert_eq!(on_hand(&handle), 88);
        engine.shutdown().await;

        let engine = Engine::start(Arc::clone(&store), Arc::new(clock.clone()), EngineConfig::default()).unwrap();
        let handle = engine.handle();
        handle.submit(consume(-7), "commander", Some("x".into())).await.unwrap();
        assert_eq!(on_hand(&handle), 88, "the retry after a restart must not apply again");
        engine.shutdown().await;
    }

    /// Snapshots every 3 records: a restart, and a read of every past
    /// sequence and time, give exactly the state a fold of the whole log gives.
    #[tokio::test]
    async fn snapshots_give_the_state_a_full_fold_gives() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp::from_unix_seconds(1_000_000));
        let config = EngineConfig { snapshot_every: 3, ..EngineConfig::default() };
        let engine = Engine::start(Arc::clone(&store), Arc::new(clock.clone()), config.clone()).unwrap();
        let handle = engine.handle();
        handle.submit(world(), "commander", None).await.unwrap();
        for step in 1..=20 {
            clock.advance_seconds(60);
            handle.submit(consume(-1), "commander", Some(format!("step-{step}"))).await.unwrap();
        }
        let last = handle.snapshot().last_sequence;
        for sequence in 1..=last {
            let full = replay(store.as_ref(), sequence, None).unwrap();
            let from_snapshot = handle.state_at_sequence(sequence).await.unwrap();
            assert_eq!(from_snapshot.digest(), full.digest(), "state after record {sequence}");
        }
        for minute in 0..=21 {
            let time = Timestamp::from_unix_seconds(1_000_000 + minute * 60 + 30);
            let full = replay(store.as_ref(), u64::MAX, Some(time)).unwrap();
            let from_snapshot = handle.state_as_of(time).await.unwrap();
            assert_eq!(from_snapshot, full, "state as of minute {minute}");
        }
        engine.shutdown().await;
        let marks = store.snapshot_marks().unwrap();
        assert!(marks.len() >= 5, "snapshots were written along the way: {marks:?}");
        assert_eq!(marks.last().map(|mark| mark.sequence), Some(last), "and one at the clean stop");

        let (restored, from) = restore(store.as_ref(), u64::MAX, None).unwrap();
        assert_eq!(from, Some(last));
        assert_eq!(restored, replay(store.as_ref(), u64::MAX, None).unwrap());
        let engine = Engine::start(Arc::clone(&store), Arc::new(clock.clone()), config).unwrap();
        let handle = engine.handle();
        handle.submit(consume(-1), "commander", None).await.unwrap();
        assert_eq!(on_hand(&handle), 79, "the restart went on from the snapshot");
        engine.shutdown().await;
    }

    /// Reads of the past are bounded: past `MAX_PAST_READS` at once, the
    /// next is refused at once rather than queue another fold of the log.
    #[tokio::test]
    async fn reads_of_the_past_are_bounded() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let engine = Engine::start(store, Arc::new(ManualClock::new(Timestamp(0))), EngineConfig::default()).unwrap();
        let handle = engine.handle();
        handle.submit(world(), "commander", None).await.unwrap();
        let held: Vec<_> =
            (0..MAX_PAST_READS).map(|_| Arc::clone(&handle.past_reads).try_acquire_owned().unwrap()).collect();
        assert!(matches!(handle.state_at_sequence(1).await, Err(EngineError::PastReadsBusy)));
        assert!(matches!(handle.state_as_of(Timestamp(0)).await, Err(EngineError::PastReadsBusy)));
        drop(held);
        assert_eq!(handle.state_at_sequence(1).await.unwrap().last_sequence, 1);
        engine.shutdown().await;
    }

    fn register(id: &str, lat: f64) -> Command {
        Command::RegisterTeam {
            id: id.into(),
            profile: crate::domain::team::TeamProfile {
                name: id.into(),
                organization: String::new(),
                capabilities: vec![crate::domain::Capability { code: "search_rescue".into(), tier: 1 }],
                headcount: 4,
                home: LatLng { lat, lng: 112.9 },
                speed_kmh: 50.0,
                insurance_expires: Some(Timestamp::from_unix_seconds(4_000_000_000)),
                members: Vec::new(),
            },
            status: None,
            position: None,
        }
    }

    fn report(id: &str, status: Option<crate::domain::team::TeamStatus>, lat: f64) -> Command {
        Command::ReportStatus { team_id: id.into(), status, position: Some(LatLng { lat, lng: 112.9 }) }
    }

    /// Two teams and an incident needing one of them.
    async fn dispatch_world(handle: &EngineHandle) {
        handle.submit(register("T-NEAR", 28.20), "commander", None).await.unwrap();
        handle.submit(register("T-FAR", 28.40), "commander", None).await.unwrap();
        let declaration = crate::domain::incident::Declaration {
            id: "F".into(),
            title: "Flood".into(),
            hazard: Some(crate::domain::Hazard::Flood),
            position: Some(LatLng { lat: 28.19, lng: 112.9 }),
            area: Vec::new(),
            level: Some(crate::domain::Level::II),
            metrics: Default::default(),
            plan_id: None,
        };
        handle.submit(Command::DeclareIncident { declaration }, "commander", None).await.unwrap();
        let need = crate::domain::TeamNeed { capability: "search_rescue".into(), min_tier: 1, count: 1 };
        let request = Command::RequestResources { incident_id: "F".into(), teams: vec![need], supplies: Vec::new() };
        handle.submit(request, "commander", None).await.unwrap();
    }

    fn dispatch() -> Command {
        Command::Dispatch { incident_id: None, divert: false }
    }

    /// A dispatch planned off the writer commits exactly what the writer
    /// would have decided on the same state.
    #[tokio::test]
    async fn a_dispatch_planned_off_the_writer_decides_what_the_writer_would() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp::from_unix_seconds(1_782_885_600));
        let engine = Engine::start(store, Arc::new(clock.clone()), EngineConfig::default()).unwrap();
        let handle = engine.handle();
        dispatch_world(&handle).await;
        let mut on_the_writer = State::clone(&handle.snapshot());
        let context = crate::domain::Context::new(handle.now(), "commander").with_planner(&crate::dispatch::DISPATCHER);
        let expected = crate::domain::execute(&mut on_the_writer, &dispatch(), &context, None).unwrap();
        handle.submit(dispatch(), "commander", None).await.unwrap();
        let committed = handle.read_log(expected[0].sequence, 100).unwrap();
        assert_eq!(committed, expected);
        assert_eq!(handle.snapshot().digest(), on_the_writer.digest());
        engine.shutdown().await;
    }

    /// A plan made before the state changed is refused by the writer (and
    /// planned again by `submit`); one made before a team only moved still
    /// commits, unless the move took a proposed team into a closed zone.
    #[tokio::test]
    async fn the_writer_commits_a_prepared_plan_only_on_the_state_it_was_made_for() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp::from_unix_seconds(1_782_885_600));
        let engine = Engine::start(store, Arc::new(clock.clone()), EngineConfig::default()).unwrap();
        let handle = engine.handle();
        dispatch_world(&handle).await;
        let prepared = || async { handle.plan_dispatch(None, false).await.unwrap().unwrap() };

        let before_a_status_change = prepared().await;
        let busy = Some(crate::domain::team::TeamStatus::OutOfService);
        handle.submit(report("T-NEAR", busy, 28.20), "team:T-NEAR", None).await.unwrap();
        let refused = handle.enqueue(dispatch(), "commander", None, Some(before_a_status_change)).await;
        assert!(matches!(refused, Err(EngineError::PlanOutdated)), "{refused:?}");
        assert!(handle.snapshot().assignments.is_empty(), "nothing was committed");
        let back = Some(crate::domain::team::TeamStatus::Available);
        handle.submit(report("T-NEAR", back, 28.20), "team:T-NEAR", None).await.unwrap();

        let zone = crate::domain::zone::Zone {
            id: "Z".into(),
            polygon: vec![
                LatLng { lat: 28.25, lng: 112.8 },
                LatLng { lat: 28.25, lng: 113.0 },
                LatLng { lat: 28.30, lng: 113.0 },
                LatLng { lat: 28.30, lng: 112.8 },
            ],
            note: String::new(),
            active: true,
        };
        handle.submit(Command::SetZone { zone }, "commander", None).await.unwrap();
        let before_moving_into_the_zone = prepared().await;
        assert!(before_moving_into_the_zone
            .plan
            .proposals
            .iter()
            .any(|p| p.resource == crate::domain::assignment::AssignedResource::Team { team_id: "T-NEAR".into() }));
        handle.submit(report("T-NEAR", None, 28.27), "team:T-NEAR", None).await.unwrap();
        let refused = handle.enqueue(dispatch(), "commander", None, Some(before_moving_into_the_zone)).await;
        assert!(matches!(refused, Err(EngineError::PlanOutdated)), "a team now in a closed zone: {refused:?}");

        handle.submit(report("T-NEAR", None, 28.21), "team:T-NEAR", None).await.unwrap();
        let before_a_move = prepared().await;
        handle.submit(report("T-NEAR", None, 28.22), "team:T-NEAR", None).await.unwrap();
        let expected = before_a_move.plan.proposals.clone();
        handle.enqueue(dispatch(), "commander", None, Some(before_a_move)).await.unwrap();
        let made: Vec<_> = handle.snapshot().assignments.values().map(|a| a.resource.clone()).collect();
        assert_eq!(made, expected.iter().map(|p| p.resource.clone()).collect::<Vec<_>>());
        engine.shutdown().await;
    }

    /// A refused command leaves the state exactly as it was.
    #[tokio::test]
    async fn a_refused_command_changes_nothing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let engine = Engine::start(store, Arc::new(ManualClock::new(Timestamp(0))), EngineConfig::default()).unwrap();
        let handle = engine.handle();
        handle.submit(world(), "commander", None).await.unwrap();
        let before = handle.snapshot();
        let refused = handle.submit(consume(-500), "commander", Some("y".into())).await;
        assert!(matches!(refused, Err(EngineError::Domain(DomainError::ResourceExhausted(_)))));
        assert_eq!(*handle.snapshot(), *before);
        handle.submit(consume(-1), "commander", None).await.unwrap();
        assert_eq!(handle.snapshot().last_sequence, before.last_sequence + 1, "no gap in the log");
        engine.shutdown().await;
    }
}
