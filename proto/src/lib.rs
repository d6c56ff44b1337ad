//! The Muster v1 gRPC contract, generated from `muster/v1/*.proto`.
//!
//! This crate holds generated code only; the server and the client library
//! translate between these types and their own.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Package `muster.v1`: every message, enum, client and server of the API.
pub mod v1 {
    tonic::include_proto!("muster.v1");
    include!(concat!(env!("OUT_DIR"), "/muster.v1.serde.rs"));
}

/// `google.protobuf.Timestamp`, with the canonical JSON mapping (RFC 3339).
pub use pbjson_types::Timestamp;

/// The encoded `FileDescriptorSet` of the API, served by server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("muster_descriptor");
