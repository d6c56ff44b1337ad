//! The shape shared by every watch stream: send the current state, then
//! every committed change, resync from a fresh snapshot when the watcher
//! has fallen behind, and end when the client goes away or the server shuts
//! down. A slow watcher only ever holds up itself: the engine's broadcast
//! never waits.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::Status;

use crate::domain::State;
use crate::engine::{Committed, EngineHandle};

/// Messages a watch stream may buffer for a slow client before it waits.
const STREAM_BUFFER: usize = 256;

/// Starts a watch stream. `initial` renders everything the watcher should
/// see now; `change` renders what one committed command changed.
///
/// Every wait of the stream's task, for the broadcast or for room in a slow
/// client's buffer, also watches for the server's shutdown, so a client that
/// stops reading never holds the server up.
pub(crate) fn spawn<T, I, C>(engine: &EngineHandle, initial: I, change: C) -> BoxStream<T>
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
