//! Writes the fuzz targets' seed corpora under `fuzz/corpus/`: valid
//! requests for `api`, the repository's fixtures and drill scripts for
//! `scripts`, and the stored records of a small world for `records`.
//! `cargo run -p muster-server --example fuzz_seeds` from the repository.

use std::path::Path;

fn write(dir: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("fuzz/corpus").join(dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    for (index, seed) in muster_server::grpc::fuzzing::api_seeds().iter().enumerate() {
        write("api", &format!("seed-{index:02}"), seed)?;
    }
    for folder in ["drills", "drills/fixtures"] {
        let Ok(entries) = std::fs::read_dir(folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|extension| extension == "toml") {
                let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
                write("scripts", &name, &std::fs::read(&path)?)?;
            }
        }
    }
    for (index, record) in muster_server::grpc::fuzzing::record_seeds()?.iter().enumerate() {
        write("records", &format!("record-{index:02}"), record)?;
    }
    println!("wrote fuzz/corpus/api, fuzz/corpus/scripts and fuzz/corpus/records");
    Ok(())
}
