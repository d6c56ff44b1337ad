//! Conversions between protobuf messages (`pb::`) and domain types, one
//! file per area. Input conversions validate shape (enums, timestamps,
//! required messages) and name the field they refuse; business rules are
//! the domain's.

mod common;
mod incident;
mod paging;
mod plan;
mod reserve;
mod roster;

pub use common::*;
pub use incident::*;
pub use paging::*;
pub use plan::*;
pub use reserve::*;
pub use roster::*;
