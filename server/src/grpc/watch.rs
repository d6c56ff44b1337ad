//! The shape shared by every watch stream: send the current state, then
//! every committed change, resync from a fresh snapshot when the watcher
//! has fallen behind, and end when the client goes away or the server shuts
//! down. A slow watcher only ever holds up itself: the engine's broadcast
//! never waits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::Status;

use crate::domain::State;
use crate::engine::{Committed, EngineHandle};

/// Messages a watch stream may buffer for a slow client before it waits.
const STREAM_BUFFER: usize = 256;
/// Most watch streams open at once on one connection (a board watches a
/// handful; a roster app one).
pub const MAX_WATCHERS_PER_CONNECTION: usize = 16;
/// Most watch streams open at once on the server.
pub const MAX_WATCHERS: usize = 4_096;

/// The open watch streams, counted per connection and in all, so no
/// client can hold an unbounded number of stream tasks and buffers.
#[derive(Clone, Debug)]
pub struct Watchers {
    counts: Arc<Mutex<WatcherCounts>>,
    per_connection: usize,
    total: usize,
}

#[derive(Debug, Default)]
struct WatcherCounts {
    total: usize,
    by_peer: HashMap<SocketAddr, usize>,
}

impl Default for Watchers {
    fn default() -> Self {
        Watchers::new(MAX_WATCHERS_PER_CONNECTION, MAX_WATCHERS)
    }
}

/// One watch stream's place under the limits; given back when dropped.
#[derive(Debug)]
pub struct WatchSlot {
    watchers: Watchers,
    peer: Option<SocketAddr>,
}

impl Watchers {
    /// Limits of `per_connection` streams per connection and `total` in all.
    pub fn new(per_connection: usize, total: usize) -> Self {
        Watchers { counts: Arc::default(), per_connection, total }
    }

    /// How many watch streams are open.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).total
    }

    /// A place for one more stream from `peer` (a connection is known by
    /// its peer address while it is open), or `RESOURCE_EXHAUSTED`.
    pub fn admit(&self, peer: Option<SocketAddr>) -> Result<WatchSlot, Status> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.total >= self.total {
            return Err(Status::resource_exhausted(format!(
                "the server has {} watch streams open, its limit; retry later",
                self.total
            )));
        }
        if let Some(peer) = peer {
            let open = counts.by_peer.entry(peer).or_default();
            if *open >= self.per_connection {
                return Err(Status::resource_exhausted(format!(
                    "this connection has {} watch streams open, its limit",
                    self.per_connection
                )));
            }
            *open += 1;
        }
        counts.total += 1;
        Ok(WatchSlot { watchers: self.clone(), peer })
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut counts = self.watchers.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(peer) = self.peer {
            if let Some(open) = counts.by_peer.get_mut(&peer) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    counts.by_peer.remove(&peer);
                }
            }
        }
    }
}

/// Starts a watch stream. `initial` renders everything the watcher should
/// see now; `change` renders what one committed command changed.
///
/// Every wait of the stream's task, for the broadcast or for room in a slow
/// client's buffer, also watches for the server's shutdown, so a client that
/// stops reading never holds the server up.
pub(crate) fn spawn<T, I, C>(slot: WatchSlot, engine: &EngineHandle, initial: I, change: C) -> BoxStream<T>
where
    T: Send + 'static,
    I: Fn(&State) -> Vec<T> + Send + 'static,
    C: Fn(&Committed) -> Vec<T> + Send + 'static,
{
    let mut changes = engine.subscribe();
    let snapshot = engine.snapshot();
    let mut closing = engine.closing();
    let engine = engine.clone();
    let (sender, receiver) = mpsc::channel::<Result<T, Status>>(STREAM_BUFFER);
    tokio::spawn(async move {
        // Held for as long as the stream's task runs.
        let _slot = slot;
        let mut seen = snapshot.last_sequence;
        if !send_all(&sender, initial(&snapshot), &mut closing).await {
            return end(&sender);
        }
        loop {
            let received = tokio::select! {
                () = shutting_down(&mut closing) => return end(&sender),
                () = sender.closed() => return,
                received = changes.recv() => received,
            };
            let items = match received {
                Ok(committed) => {
                    let last = last_sequence(&committed);
                    if last <= seen {
                        continue;
                    }
                    seen = last;
                    change(&committed)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a watcher fell behind; resending the current state");
                    let snapshot: Arc<State> = engine.snapshot();
                    seen = snapshot.last_sequence;
                    initial(&snapshot)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !send_all(&sender, items, &mut closing).await {
                return end(&sender);
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}

/// Completes when the server begins to shut down.
async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        // The engine is gone: as good as shut down.
    }
}

/// Ends a stream: tells the client why if there is room, never waits.
fn end<T>(sender: &mpsc::Sender<Result<T, Status>>) {
    let _ = sender.try_send(Err(Status::unavailable("the server is shutting down")));
}

fn last_sequence(committed: &Committed) -> u64 {
    committed.records.last().map(|record| record.sequence).unwrap_or(0)
}

/// Sends `items` in order; false when the client went away or the server
/// began to shut down before they all fitted.
async fn send_all<T>(
    sender: &mpsc::Sender<Result<T, Status>>,
    items: Vec<T>,
    closing: &mut watch::Receiver<bool>,
) -> bool {
    for item in items {
        let sent = tokio::select! {
            () = shutting_down(closing) => false,
            sent = sender.send(Ok(item)) => sent.is_ok(),
        };
        if !sent {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn watchers_are_bounded_per_connection_and_in_all_and_slots_come_back() {
        let watchers = Watchers::new(2, 3);
        let phone: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let board: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let first = watchers.admit(Some(phone)).unwrap();
        let _second = watchers.admit(Some(phone)).unwrap();
        assert_eq!(watchers.admit(Some(phone)).unwrap_err().code(), tonic::Code::ResourceExhausted);
        let _third = watchers.admit(Some(board)).unwrap();
        assert_eq!(watchers.admit(Some(board)).unwrap_err().code(), tonic::Code::ResourceExhausted, "total");
        drop(first);
        assert!(watchers.admit(Some(phone)).is_ok(), "a closed stream gives its place back");
    }
}
