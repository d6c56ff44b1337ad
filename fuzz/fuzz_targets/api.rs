//! One API call per input: the first byte picks the method, the rest is its
//! request (see `muster_server::grpc::fuzzing::api_call` for the properties).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Err(broken) = muster_server::grpc::fuzzing::api_call(input) {
        panic!("{broken}");
    }
});
