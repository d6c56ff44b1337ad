//! The domain: Muster's records, the commands that change them, the events
//! those commands produce, and the pure functions between them.
//!
//! `decide` validates a [`Command`] against the current [`State`] and returns
//! the [`Event`]s it causes (or a [`DomainError`]); `State::apply` folds one
//! event into the state and cannot fail. Nothing here knows tokio, tonic,
//! sled or prost: time comes in through [`Context`], storage and transport
//! are the engine's and the gRPC layer's business.

pub mod assignment;
pub mod cautious;
pub mod command;
pub mod decide;
pub mod describe;
pub mod dispatching;
pub mod error;
pub mod event;
pub mod fills;
pub mod hand;
pub mod import;
pub mod incident;
pub mod invariants;
pub mod limits;
pub mod plan;
pub mod reply;
pub mod reserve;
pub mod state;
pub mod team;
pub mod timer;
pub mod travel;
pub mod types;
pub mod validate;
pub mod zone;

pub use command::{Command, Context};
pub use decide::{decide, execute};
pub use error::{DomainError, DomainResult};
pub use event::{Event, LogRecord};
pub use reply::Reply;
pub use state::State;
pub use types::*;
