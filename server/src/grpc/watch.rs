//! The shape shared by every watch stream: send the current state, then
//! every committed change, resync from a fresh snapshot when the watcher
//! has fallen behind, and end when the client goes away or the server shuts
//! down. A slow watcher only ever holds up itself: the engine's broadcast
//! never waits.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::Status;

use crate::domain::State;
use crate::engine::{Committed, EngineHandle};

/// Messages a watch stream may buffer for a slow client before it waits.
const STREAM_BUFFER: usize = 256;

/// Starts a watch stream. `initial` renders everything the watcher should
/// see now; `change` renders what one committed command changed.
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
        if !send_all(&sender, initial(&snapshot)).await {
            return;
        }
        loop {
            tokio::select! {
                _ = async { closing.wait_for(|closing| *closing).await.map(|_| ()) } => {
                    let _ = sender.send(Err(Status::unavailable("the server is shutting down"))).await;
                    return;
                }
                _ = sender.closed() => return,
                received = changes.recv() => match received {
                    Ok(committed) => {
                        let last = last_sequence(&committed);
                        if last <= seen {
                            continue;
                        }
                        seen = last;
                        if !send_all(&sender, change(&committed)).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a watcher fell behind; resending the current state");
                        let snapshot: Arc<State> = engine.snapshot();
                        seen = snapshot.last_sequence;
                        if !send_all(&sender, initial(&snapshot)).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}

fn last_sequence(committed: &Committed) -> u64 {
    committed.records.last().map(|record| record.sequence).unwrap_or(0)
}

async fn send_all<T>(sender: &mpsc::Sender<Result<T, Status>>, items: Vec<T>) -> bool {
    for item in items {
        if sender.send(Ok(item)).await.is_err() {
            return false;
        }
    }
    true
}
