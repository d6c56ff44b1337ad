//! Fixture and drill-script TOML: parsed or refused, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    muster_server::grpc::fuzzing::scripts(input);
});
