//! Clocks: the engine's only source of time. The live server uses the
//! system clock; tests and drills use a clock they move themselves.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::Timestamp;

/// A future that completes when a clock may have reached a time.
pub type Wait<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where the engine gets "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Completes once `now()` may have reached `due` (the caller checks
    /// again: it may also complete early). The engine's timers wait on it.
    fn wait_until(&self, due: Timestamp) -> Wait<'_>;
}

/// The longest the system clock's wait sleeps before the writer looks at
/// the time again (a wall clock can be stepped while it sleeps).
const SYSTEM_WAIT_CAP: Duration = Duration::from_secs(10);

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX))
    }

    fn wait_until(&self, due: Timestamp) -> Wait<'_> {
        let nanos = u64::try_from(due.0.saturating_sub(self.now().0)).unwrap_or(0);
        let sleep = Duration::from_nanos(nanos).min(SYSTEM_WAIT_CAP);
        Box::pin(tokio::time::sleep(sleep))
    }
}

/// A clock that stands still until told to move: for tests and drills.
/// Moving it wakes whoever waits on it, so a test or a drill that moves the
/// clock past a deadline makes the engine's timers fire.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
    moved: Arc<Notify>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock { nanos: Arc::new(AtomicI64::new(start.0)), moved: Arc::new(Notify::new()) }
    }

    /// Moves the clock to `time`.
    pub fn set(&self, time: Timestamp) {
        self.nanos.store(time.0, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance_seconds(&self, seconds: i64) {
        self.nanos.fetch_add(seconds.saturating_mul(Timestamp::NANOS_PER_SECOND), Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::SeqCst))
    }

    fn wait_until(&self, due: Timestamp) -> Wait<'_> {
        Box::pin(async move {
            loop {
                // Registered before the check, so a move in between is not missed.
                let moved = self.moved.notified();
                if self.now() >= due {
                    return;
                }
                moved.await;
            }
        })
    }
}
