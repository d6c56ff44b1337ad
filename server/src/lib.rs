//! Muster's server: an emergency-response coordination engine behind gRPC.
//!
//! The map, from the inside out:
//!
//! - [`domain`]: records, commands, events and the pure `decide`/`apply`
//!   functions, the engine's timers; knows nothing of I/O.
//! - [`dispatch`]: the optimiser: which team and which depot serve each
//!   need, and why; a pure function of the state, settings and time.
//! - [`fixture`]: the fixture file format, parsed into domain values.
//! - [`store`]: the sled-backed append-only log (the only code that touches sled).
//! - [`engine`]: the single writer with group commit; owns the clock;
//!   publishes snapshots and changes.
//! - [`drill`]: scripted exercises on a virtual clock, reports and replays.
//! - [`grpc`]: thin tonic services translating between protobuf and the domain.
//! - [`http`]: the HTTP side: the situation board, GeoJSON, metrics.
//! - [`listen`]: accepting connections under limits.
//! - [`server`]: wiring: configuration, health, reflection, shutdown.
//!
//! `layers` (tests only) reads these sources and keeps the layers apart.

pub mod dispatch;
pub mod domain;
pub mod drill;
pub mod engine;
pub mod fixture;
pub mod grpc;
pub mod http;
mod layers;
pub mod listen;
pub mod server;
pub mod store;
