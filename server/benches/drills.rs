//! How long each shipped drill takes to run and to replay
//! (`cargo bench -p muster-server --bench drills`), with criterion.
//!
//! Each drill covers about a day of virtual time; the target is under 10 s
//! per run and per replay (more than 8,640 times real time). Printed beside
//! the timings: the virtual time covered, the events, and the speed-up over
//! real time of the median run. The replay folds the recorded log and runs
//! the script again to compare, as `musterd drill replay` does.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use muster_server::drill::{self, RunOptions};

fn drills_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../drills")
}

fn load(name: &str) -> drill::Script {
    let text = std::fs::read_to_string(drills_dir().join(name)).unwrap();
    let read = |path: &str| {
        std::fs::read_to_string(drills_dir().join(path))
            .map(|text| (path.to_owned(), text))
            .map_err(|error| error.to_string())
    };
    drill::script::parse(name, &text, &read).unwrap()
}

fn drills(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let options = RunOptions { pace: Some(0.0), ..RunOptions::default() };
    let mut group = criterion.benchmark_group("drill");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for name in ["flood.toml", "hazmat.toml", "power-outage.toml"] {
        let script = load(name);
        let (run, report) = runtime.block_on(drill::run_and_report(&script, &options, &|_| {})).unwrap();
        let virtual_seconds = (run.end.0 - run.start.0) as f64 / 1e9;
        let started = Instant::now();
        runtime.block_on(drill::run::run(&script, &options, &|_| {})).unwrap();
        let once = started.elapsed().as_secs_f64();
        println!(
            "{name}: {:.1} h of virtual time, {} events, one run {:.3} s = {:.0}x real time",
            virtual_seconds / 3_600.0,
            report.events,
            once,
            virtual_seconds / once
        );
        group.bench_function(format!("run {name}"), |bencher| {
            bencher.iter(|| runtime.block_on(drill::run::run(&script, &options, &|_| {})).unwrap())
        });
        group.bench_function(format!("replay {name}"), |bencher| {
            bencher.iter(|| {
                let replay =
                    runtime.block_on(drill::replay::replay(&script, &run.records, &report.digest, &options)).unwrap();
                assert!(replay.matches, "{}", replay.divergence);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, drills);
criterion_main!(benches);
