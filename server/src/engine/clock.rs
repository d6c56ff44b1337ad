//! Clocks: the engine's only source of time. The live server uses the
//! system clock; tests and drills use a clock they move themselves.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::domain::Timestamp;

/// Where the engine gets "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX))
    }
}

/// A clock that stands still until told to move: for tests and drills.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock { nanos: Arc::new(AtomicI64::new(start.0)) }
    }

    /// Moves the clock to `time`.
    pub fn set(&self, time: Timestamp) {
        self.nanos.store(time.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance_seconds(&self, seconds: i64) {
        self.nanos.fetch_add(seconds.saturating_mul(Timestamp::NANOS_PER_SECOND), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::SeqCst))
    }
}
