//! The writer on a shared log, deterministically: two engines over one
//! in-memory "stream" (positions, conflicts and following as the JetStream
//! store has them), where a replica can be held back so that it has not
//! followed the other's appends when it decides. The cluster tests
//! (`tests/crash/replicated.rs`) do the same over real NATS, where such
//! races are rare.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::tests::{consume, on_hand, world};
use super::*;
use crate::domain::{DomainError, State};
use crate::store::{Append, Followed, MemoryStore, RequestKey, RequestRecord, SnapshotMark};

/// One append as the stream holds it.
type Message = (Vec<LogRecord>, Vec<RequestRecord>);

/// The shared log: its messages, in order; position = how many.
struct Stream {
    messages: Mutex<Vec<Message>>,
    changed: watch::Sender<u64>,
}

/// One replica's view: a local copy (a `MemoryStore`) at a position.
struct Replica {
    stream: Arc<Stream>,
    local: MemoryStore,
    position: AtomicU64,
    /// Held back: follows nothing unless asked to reach a position.
    lagging: AtomicBool,
    /// Follows at most one message at a time unless asked to reach a
    /// position (the real store hands over at most a helping at a time).
    one_at_a_time: AtomicBool,
}

impl Replica {
    fn new(stream: &Arc<Stream>) -> Arc<Replica> {
        Arc::new(Replica {
            stream: Arc::clone(stream),
            local: MemoryStore::new(),
            position: AtomicU64::new(0),
            lagging: AtomicBool::new(false),
            one_at_a_time: AtomicBool::new(false),
        })
    }

    fn keep(&self, records: &[LogRecord], requests: &[RequestRecord], expired: &[(Timestamp, RequestKey)]) {
        let after = self.local.position().unwrap();
        self.local.append(Append { after, records, requests, expired }).unwrap();
    }
}

impl Store for Replica {
    fn append(&self, append: Append<'_>) -> Result<u64, StoreError> {
        let mut messages = self.stream.messages.lock().unwrap();
        let latest = messages.len() as u64;
        if append.after != latest {
            return Err(StoreError::Conflict { latest });
        }
        self.keep(append.records, append.requests, append.expired);
        if append.records.is_empty() && append.requests.is_empty() {
            return Ok(latest);
        }
        messages.push((append.records.to_vec(), append.requests.to_vec()));
        self.position.store(latest + 1, Ordering::SeqCst);
        self.stream.changed.send_replace(latest + 1);
        Ok(latest + 1)
    }

    fn position(&self) -> Result<u64, StoreError> {
        Ok(self.position.load(Ordering::SeqCst))
    }

    fn shared(&self) -> bool {
        true
    }

    fn follow(&self, after: u64, through: Option<u64>) -> Result<Vec<Followed>, StoreError> {
        assert_eq!(after, self.position.load(Ordering::SeqCst), "the writer and its copy agree");
        let messages = self.stream.messages.lock().unwrap();
        let end = match through {
            Some(through) => through.min(messages.len() as u64),
            None if self.lagging.load(Ordering::SeqCst) => after,
            None if self.one_at_a_time.load(Ordering::SeqCst) => (after + 1).min(messages.len() as u64),
            None => messages.len() as u64,
        };
        let mut followed = Vec::new();
        for position in after + 1..=end {
            let (records, requests) = &messages[position as usize - 1];
            self.keep(records, requests, &[]);
            self.position.store(position, Ordering::SeqCst);
            followed.push(Followed { position, records: records.clone() });
        }
        Ok(followed)
    }

    fn confirm(&self, position: u64) -> Result<(), StoreError> {
        let latest = self.stream.messages.lock().unwrap().len() as u64;
        if latest == position {
            Ok(())
        } else {
            Err(StoreError::Conflict { latest })
        }
    }

    fn follow_changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.stream.changed.subscribe())
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
        self.local.read(from, limit)
    }
    fn request(&self, key: &RequestKey) -> Result<Option<RequestRecord>, StoreError> {
        self.local.request(key)
    }
    fn requests_before(&self, before: Timestamp, limit: usize) -> Result<Vec<(Timestamp, RequestKey)>, StoreError> {
        self.local.requests_before(before, limit)
    }
    fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.local.forget_requests_before(before)
    }
    fn put_drill_run(&self, number: u64, summary: &[u8], run: &[u8]) -> Result<(), StoreError> {
        self.local.put_drill_run(number, summary, run)
    }
    fn put_snapshot(&self, state: &State) -> Result<(), StoreError> {
        self.local.put_snapshot(state)
    }
    fn snapshot_marks(&self) -> Result<Vec<SnapshotMark>, StoreError> {
        self.local.snapshot_marks()
    }
    fn snapshot(&self, sequence: u64) -> Result<Option<State>, StoreError> {
        self.local.snapshot(sequence)
    }
    fn drill_run(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.local.drill_run(number)
    }
    fn drill_runs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.local.drill_runs(after, limit)
    }
}

fn stream() -> Arc<Stream> {
    Arc::new(Stream { messages: Mutex::new(Vec::new()), changed: watch::channel(0).0 })
}

/// Two engines on one stream: `first` over one replica, `second` over
/// `two`, the replica the tests hold back.
struct Pair {
    stream: Arc<Stream>,
    two: Arc<Replica>,
    first: EngineHandle,
    second: EngineHandle,
    engines: [Engine; 2],
}

impl Pair {
    fn start() -> Pair {
        let stream = stream();
        let (one, two) = (Replica::new(&stream), Replica::new(&stream));
        let engines = [start(&one), start(&two)];
        let (first, second) = (engines[0].handle(), engines[1].handle());
        Pair { stream, two, first, second, engines }
    }

    async fn stop(self) {
        for engine in self.engines {
            engine.shutdown().await;
        }
    }
}

fn start(replica: &Arc<Replica>) -> Engine {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(1_000_000)));
    let config = EngineConfig { snapshot_every: 0, ..EngineConfig::default() };
    Engine::start(Arc::clone(replica) as Arc<dyn Store>, clock, config).unwrap()
}

/// Regression (review): a command that the lagging replica would refuse
/// (the depot is not in its state yet) is not refused on that stale state:
/// the writer confirms the log's end before answering, follows and decides
/// again.
#[tokio::test]
async fn a_refusal_is_decided_again_on_the_whole_log() {
    let pair = Pair::start();
    pair.two.lagging.store(true, Ordering::SeqCst);
    pair.first.submit(world(), "commander", None).await.unwrap();
    assert_eq!(pair.second.snapshot().last_sequence, 0, "the second replica has not followed");
    pair.second.submit(consume(-5), "commander", None).await.unwrap();
    assert_eq!(on_hand(&pair.second), 95);
    pair.stop().await;
}

/// Two replicas each decide on the stock they see; the one that has not
/// followed the other's issue loses the race, follows, and is refused
/// rather than overdraw.
#[tokio::test]
async fn the_replica_that_lost_the_race_decides_again_and_never_overdraws() {
    let pair = Pair::start();
    pair.first.submit(world(), "commander", None).await.unwrap();
    pair.second.submit(consume(0), "commander", None).await.ok();
    assert_eq!(on_hand(&pair.second), 100, "followed the world");
    pair.two.lagging.store(true, Ordering::SeqCst);
    pair.first.submit(consume(-60), "commander", None).await.unwrap();
    assert_eq!(on_hand(&pair.second), 100, "has not followed the issue");
    let refused = pair.second.submit(consume(-60), "commander", None).await;
    assert!(matches!(refused, Err(EngineError::Domain(DomainError::ResourceExhausted(_)))), "{refused:?}");
    assert_eq!(on_hand(&pair.second), 40);
    assert_eq!(pair.second.snapshot().digest(), pair.first.snapshot().digest());
    pair.stop().await;
}

/// A retry with the same request id on the other replica, before it has
/// followed the first attempt, gets the first answer: the append conflicts,
/// the request record comes with what it follows.
#[tokio::test]
async fn a_retry_on_the_other_replica_is_answered_once() {
    let pair = Pair::start();
    pair.first.submit(world(), "commander", None).await.unwrap();
    pair.two.lagging.store(true, Ordering::SeqCst);
    let answer = pair.first.submit(consume(-7), "commander", Some("r-1".into())).await.unwrap();
    let again = pair.second.submit(consume(-7), "commander", Some("r-1".into())).await.unwrap();
    assert_eq!(again, answer);
    assert_eq!(on_hand(&pair.second), 93, "applied once");
    assert_eq!(pair.stream.messages.lock().unwrap().len(), 2, "the retry appended nothing");
    pair.stop().await;
}

/// A replica that was cut off catches up in helpings, publishing as it goes,
/// with no command to wake it: the writer comes back for more as long as
/// the log has moved past it.
#[tokio::test]
async fn a_replica_cut_off_catches_up_in_helpings_by_itself() {
    let pair = Pair::start();
    pair.two.lagging.store(true, Ordering::SeqCst);
    pair.first.submit(world(), "commander", None).await.unwrap();
    for _ in 0..5 {
        pair.first.submit(consume(-1), "commander", None).await.unwrap();
    }
    assert_eq!(pair.second.snapshot().last_sequence, 0);
    pair.two.one_at_a_time.store(true, Ordering::SeqCst);
    pair.two.lagging.store(false, Ordering::SeqCst);
    // One more append wakes it; from there it must follow all seven.
    pair.first.submit(consume(-1), "commander", None).await.unwrap();
    let mut waited = 0;
    while pair.second.snapshot().digest() != pair.first.snapshot().digest() {
        assert!(waited < 200, "the replica stopped after {} records", pair.second.snapshot().last_sequence);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(on_hand(&pair.second), 94);
    pair.stop().await;
}
