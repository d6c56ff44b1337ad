//! End-to-end tests: the real client against a real server on loopback.
//! One binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod access;
mod audit;
mod board;
mod browser;
mod dispatch;
mod drills;
mod durability;
mod hostile;
mod import;
mod incidents;
mod operations;
mod plans;
mod reserve;
mod roster;
mod service;
mod support;
mod tls;
