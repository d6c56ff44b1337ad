//! Stored log records and snapshots: decoded or refused, never a panic; a
//! decoded record encodes back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Err(broken) = muster_server::grpc::fuzzing::records(input) {
        panic!("{broken}");
    }
});
