//! Write throughput of the engine (`cargo bench -p muster-server --bench commit`).
//!
//! Submits `ReportStatus` commands from 1 and from 64 concurrent submitters
//! to an engine over the durable sled store (flush + fdatasync per group
//! commit), over the in-memory store, and over the replicated log (a
//! three-node NATS JetStream cluster on loopback, started here: Debian's
//! `nats-server`), in the same run, and prints commands per second and the
//! ratios durable / in-memory (what group commit and the sync cost) and
//! replicated / sled (what the quorum write costs). With one submitter,
//! the rate is one over the latency of an acknowledged write. Bounded: a
//! fixed number of commands per case.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use muster_server::domain::import::{Fixture, Sourced, TeamSetting};
use muster_server::domain::team::TeamProfile;
use muster_server::domain::{Capability, Command, LatLng, Timestamp};
use muster_server::engine::{Engine, EngineConfig, SystemClock};
use muster_server::store::{JetStreamConfig, JetStreamStore, MemoryStore, SledStore, Store};

#[path = "../tests/support/nats.rs"]
mod nats;

const COMMANDS: usize = 4_000;

fn world() -> Command {
    let mut fixture = Fixture::default();
    for index in 0..64 {
        let profile = TeamProfile {
            name: format!("Team {index}"),
            organization: String::new(),
            capabilities: vec![Capability { code: "search_rescue".into(), tier: 2 }],
            headcount: 8,
            home: LatLng { lat: 28.2, lng: 112.9 },
            speed_kmh: 50.0,
            insurance_expires: Some(Timestamp::from_unix_seconds(4_000_000_000)),
            members: Vec::new(),
        };
        fixture.teams.push(Sourced { source: String::new(), value: TeamSetting { id: format!("T{index}"), profile } });
    }
    Command::Import { fixture }
}

async fn run(store: Arc<dyn Store>, submitters: usize) -> f64 {
    let engine = Engine::start(store, Arc::new(SystemClock), EngineConfig::default()).unwrap();
    let handle = engine.handle();
    handle.submit(world(), "bench", None).await.unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for submitter in 0..submitters {
        let handle = handle.clone();
        tasks.spawn(async move {
            for step in 0..COMMANDS / submitters {
                let position = LatLng { lat: 28.0 + step as f64 * 1e-5, lng: 112.9 };
                let command =
                    Command::ReportStatus { team_id: format!("T{submitter}"), status: None, position: Some(position) };
                handle.submit(command, "bench", None).await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let rate = (COMMANDS / submitters * submitters) as f64 / started.elapsed().as_secs_f64();
    engine.shutdown().await;
    rate
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!("engine write throughput, {COMMANDS} ReportStatus commands per case");
    let cluster_dir = tempfile::tempdir().unwrap();
    let cluster = nats::Cluster::start(cluster_dir.path());
    for submitters in [1, 64] {
        let directory = tempfile::tempdir().unwrap();
        let durable = run(Arc::new(SledStore::open(directory.path()).unwrap()), submitters).await;
        let memory = run(Arc::new(MemoryStore::new()), submitters).await;
        let copy = tempfile::tempdir().unwrap();
        let config = JetStreamConfig {
            servers: cluster.url().split(',').map(str::to_owned).collect(),
            stream: format!("bench-{submitters}"),
            credentials: None,
            ca: None,
            replicas: 3,
        };
        let path = copy.path().to_owned();
        let store = tokio::task::spawn_blocking(move || JetStreamStore::open(&path, &config)).await.unwrap().unwrap();
        let replicated = run(Arc::new(store), submitters).await;
        println!(
            "  {submitters:>2} submitter(s): sled + fdatasync {durable:>8.0}/s, in-memory {memory:>8.0}/s, \
             JetStream R3 {replicated:>8.0}/s; durable / in-memory {:.3}, JetStream / sled {:.3}",
            durable / memory,
            replicated / durable
        );
    }
}
