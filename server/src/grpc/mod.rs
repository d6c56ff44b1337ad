//! The gRPC layer: one file per service, each handler thin: authorize,
//! convert the message into a domain command (`convert`), call the engine,
//! convert back, and map errors to status codes (`status`). Only this layer
//! knows protobuf types.

pub mod audit;
pub mod auth;
pub mod convert;
pub mod drill;
pub mod import;
pub mod incident;
pub mod plan;
pub mod reserve;
pub mod roster;
pub mod status;
mod watch;

use tonic::Status;

use crate::domain::{validate, Command, Reply};
use crate::engine::EngineHandle;
use auth::Caller;

/// Submits a command on behalf of `caller` and waits for its durable answer.
pub(crate) async fn submit(
    engine: &EngineHandle,
    caller: &Caller,
    request_id: &str,
    command: Command,
) -> Result<Reply, Status> {
    validate::request_id(request_id).map_err(status::from_domain)?;
    let request_id = (!request_id.is_empty()).then(|| request_id.to_owned());
    engine.submit(command, &caller.actor, request_id).await.map_err(status::from_engine)
}

/// The state as it stood at a client's `as_of` time (field `as_of`), replayed
/// from the log on a blocking thread, and that time.
pub(crate) async fn state_as_of(
    engine: &EngineHandle,
    as_of: &muster_proto::Timestamp,
) -> Result<(crate::domain::State, crate::domain::Timestamp), Status> {
    let as_of = convert::timestamp_in("as_of", as_of).map_err(status::from_domain)?;
    let engine = engine.clone();
    let state = tokio::task::spawn_blocking(move || engine.state_as_of(as_of))
        .await
        .map_err(status::from_join)?
        .map_err(|error| status::from_engine(error.into()))?;
    Ok((state, as_of))
}

/// The answer a handler expected from the engine did not come: a wiring bug.
pub(crate) fn unexpected_reply(reply: &Reply) -> Status {
    tracing::error!(?reply, "the engine answered with an unexpected reply type");
    Status::internal("internal error")
}
