//! The writer thread: group commit. Everything that changes the state
//! happens here, one command at a time, in queue order.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest as _, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Clock, Committed, EngineError, Message, Submission};
use crate::domain::limits::REQUEST_ID_RETENTION_SECONDS;
use crate::domain::{execute, Command, Context, DomainError, LogRecord, Reply, State};
use crate::store::{Append, RequestKey, RequestRecord, Store};

type ReplySender = oneshot::Sender<Result<Reply, EngineError>>;

pub(super) struct Writer {
    state: State,
    requests: BTreeMap<RequestKey, RequestRecord>,
    expiry: VecDeque<(crate::domain::Timestamp, RequestKey)>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    snapshot: Arc<ArcSwap<State>>,
    changes: broadcast::Sender<Arc<Committed>>,
    max_batch: usize,
    dispatch: crate::dispatch::travel::Settings,
    failed: Option<String>,
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
        requests: Vec<RequestRecord>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        snapshot: Arc<ArcSwap<State>>,
        changes: broadcast::Sender<Arc<Committed>>,
        max_batch: usize,
        dispatch: crate::dispatch::travel::Settings,
    ) -> Writer {
        let mut ordered: Vec<_> = requests.into_iter().map(|record| (record.time, record)).collect();
        ordered.sort_by(|left, right| (left.0, &left.1.key).cmp(&(right.0, &right.1.key)));
        let expiry = ordered.iter().map(|(time, record)| (*time, record.key.clone())).collect();
        let requests = ordered.into_iter().map(|(_, record)| (record.key.clone(), record)).collect();
        Writer { state, requests, expiry, store, clock, snapshot, changes, max_batch, dispatch, failed: None }
    }

    /// Takes groups of commands off the queue until a stop marker or until
    /// every handle is gone.
    pub(super) fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        while let Some(first) = queue.blocking_recv() {
            let mut submissions = Vec::new();
            let mut stop = false;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Submit(submission) => submissions.push(*submission),
                    Message::Stop => {
                        stop = true;
                        break;
                    }
                }
                if submissions.len() < self.max_batch {
                    next = queue.try_recv().ok();
                }
            }
            self.commit_group(submissions);
            if stop {
                tracing::info!(last_sequence = self.state.last_sequence, "writer stopped");
                return;
            }
        }
    }

    fn commit_group(&mut self, submissions: Vec<Submission>) {
        let mut group = Group::default();
        let expired = self.expire_requests();
        let mut pending: BTreeMap<RequestKey, RequestRecord> = BTreeMap::new();
        for submission in submissions {
            let result = self.process(&submission, &mut pending, &mut group);
            group.replies.push((submission.reply, result));
        }
        group.requests = pending.into_values().collect();
        // A key that expired and was used again in this very group must not
        // be removed after its new record is written.
        let expired: Vec<RequestKey> =
            expired.into_iter().filter(|key| !group.requests.iter().any(|record| &record.key == key)).collect();
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
        for record in group.requests {
            self.expiry.push_back((record.time, record.key.clone()));
            self.requests.insert(record.key.clone(), record);
        }
        self.snapshot.store(Arc::new(self.state.clone()));
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

    /// Forgets request records past the retention; returns their keys so the
    /// store drops them in the same write.
    fn expire_requests(&mut self) -> Vec<RequestKey> {
        let cutoff = self.clock.now().max(self.state.last_time).plus_seconds(-REQUEST_ID_RETENTION_SECONDS);
        let mut expired = Vec::new();
        while let Some((time, _)) = self.expiry.front() {
            if *time >= cutoff {
                break;
            }
            if let Some((_, key)) = self.expiry.pop_front() {
                self.requests.remove(&key);
                expired.push(key);
            }
        }
        expired
    }

    fn process(
        &mut self,
        submission: &Submission,
        pending: &mut BTreeMap<RequestKey, RequestRecord>,
        group: &mut Group,
    ) -> Result<Reply, EngineError> {
        if let Some(reason) = &self.failed {
            return Err(EngineError::Unavailable(format!("storage failed earlier: {reason}")));
        }
        let key = submission.request_id.as_ref().map(|request_id| {
            (
                RequestKey { actor: submission.actor.clone(), request_id: request_id.clone() },
                fingerprint(&submission.command),
            )
        });
        if let Some((key, fingerprint)) = &key {
            if let Some(first) = pending.get(key).or_else(|| self.requests.get(key)) {
                if first.fingerprint != *fingerprint {
                    return Err(DomainError::invalid(
                        "request_id",
                        "was already used for a different request; use a new request_id",
                    )
                    .into());
                }
                return Ok(first.reply.clone());
            }
        }
        let time = self.clock.now().max(self.state.last_time);
        let context = Context { time, actor: submission.actor.clone(), settings: self.dispatch };
        // Persistent maps make this copy cheap; it lets any failure below
        // leave the state exactly as it was, so no event is ever applied
        // without being logged.
        let before = self.state.clone();
        let state = &mut self.state;
        let executed = catch_unwind(AssertUnwindSafe(|| {
            let records = execute(state, &submission.command, &context, submission.request_id.as_deref())?;
            let reply = Reply::build(&submission.command, state, &records)?;
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
                tracing::error!(command = submission.command.name(), "executing a command panicked; it was refused");
                return Err(EngineError::Internal(format!("executing {} failed", submission.command.name())));
            }
        };
        if let Some((key, fingerprint)) = key {
            pending.insert(key.clone(), RequestRecord { key, fingerprint, time, reply: reply.clone() });
        }
        if !records.is_empty() {
            group.records.extend(records.iter().cloned());
            group.committed.push(Arc::new(Committed { records, state: Arc::new(self.state.clone()) }));
        }
        Ok(reply)
    }
}

/// SHA-256 of the command's canonical encoding: a retry must be the same
/// request. Computed only for commands that carry a `request_id`.
fn fingerprint(command: &Command) -> [u8; 32] {
    let bytes = postcard::to_allocvec(command).unwrap_or_default();
    Sha256::digest(&bytes).into()
}
