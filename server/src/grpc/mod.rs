//! The gRPC layer: one file per service, each handler thin: authorize,
//! convert the message into a domain command (`convert`), call the engine,
//! convert back, and map errors to status codes (`status`). Only this layer
//! knows protobuf types.

pub mod audit;
pub mod auth;
pub mod convert;
pub mod drill;
pub mod export;
pub mod fuzzing;
pub mod import;
pub mod incident;
pub mod plan;
pub mod reserve;
pub mod roster;
pub mod status;
pub mod watch;

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
    validate::request_id(request_id)?;
    let request_id = (!request_id.is_empty()).then(|| request_id.to_owned());
    engine.submit(command, &caller.actor, request_id).await.map_err(status::from_engine)
}

/// The state as it stood at a client's `as_of` time (field `as_of`), folded
/// from the nearest snapshot and the log after it, and that time.
pub(crate) async fn state_as_of(
    engine: &EngineHandle,
    as_of: &muster_proto::Timestamp,
) -> Result<(crate::domain::State, crate::domain::Timestamp), Status> {
    let as_of = convert::timestamp_in("as_of", as_of)?;
    let state = engine.state_as_of(as_of).await.map_err(status::from_engine)?;
    Ok((state, as_of))
}

/// What a dispatch answers: the assignments made and the shortfalls.
pub(crate) type DispatchReply = (Vec<crate::domain::assignment::Assignment>, Vec<crate::domain::event::Shortfall>);
/// What a transfer answers: both depots' levels.
pub(crate) type TransferReply = (crate::domain::reserve::StockLevel, crate::domain::reserve::StockLevel);

/// A reply's payload, taken out of the engine's [`Reply`]. Each command has
/// one reply shape; the one place that checks it is [`submit_as`].
pub(crate) trait FromReply: Sized {
    /// The payload, or `None` when the reply has another shape.
    fn from_reply(reply: Reply) -> Option<Self>;
}

macro_rules! from_reply {
    ($type:ty, $variant:ident) => {
        impl FromReply for $type {
            fn from_reply(reply: Reply) -> Option<Self> {
                match reply {
                    Reply::$variant(value) => Some(value),
                    _ => None,
                }
            }
        }
    };
}

from_reply!(crate::domain::team::Team, Team);
from_reply!(crate::domain::reserve::Item, Item);
from_reply!(crate::domain::reserve::Depot, Depot);
from_reply!(crate::domain::reserve::StockLevel, Stock);
from_reply!(crate::domain::import::ImportSummary, Import);
from_reply!(crate::domain::plan::Plan, Plan);
from_reply!(crate::domain::reply::IncidentView, Incident);
from_reply!(crate::domain::assignment::Assignment, Assignment);
from_reply!(crate::domain::zone::Zone, Zone);

impl FromReply for DispatchReply {
    fn from_reply(reply: Reply) -> Option<Self> {
        match reply {
            Reply::Dispatch { assignments, shortfalls } => Some((assignments, shortfalls)),
            _ => None,
        }
    }
}

impl FromReply for TransferReply {
    fn from_reply(reply: Reply) -> Option<Self> {
        match reply {
            Reply::Transfer { from, to } => Some((from, to)),
            _ => None,
        }
    }
}

/// [`submit`], with the reply's payload of the type the command answers.
pub(crate) async fn submit_as<T: FromReply>(
    engine: &EngineHandle,
    caller: &Caller,
    request_id: &str,
    command: Command,
) -> Result<T, Status> {
    let name = command.name();
    let reply = submit(engine, caller, request_id, command).await?;
    T::from_reply(reply).ok_or_else(|| {
        // A wiring bug: the command answered with another shape.
        tracing::error!(command = name, "the engine answered with an unexpected reply type");
        Status::internal("internal error")
    })
}
