//! Compiles `muster/v1/*.proto` with protox (a pure-Rust protobuf compiler, so
//! no system `protoc` is needed), generates the prost types and tonic stubs, and
//! writes the encoded descriptor set that server reflection serves, and
//! generates serde implementations in protobuf's canonical JSON mapping (pbjson).

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTO_FILES: &[&str] = &[
    "muster/v1/common.proto",
    "muster/v1/roster.proto",
    "muster/v1/reserve.proto",
    "muster/v1/plan.proto",
    "muster/v1/incident.proto",
    "muster/v1/audit.proto",
    "muster/v1/drill.proto",
    "muster/v1/import.proto",
    "muster/v1/export.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(PROTO_FILES, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let encoded = descriptors.encode_to_vec();
    fs::write(out_dir.join("muster_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    // The canonical protobuf JSON mapping, for the CLI's `--json` output.
    pbjson_build::Builder::new().register_descriptors(&encoded)?.build(&[".muster"])?;
    Ok(())
}
