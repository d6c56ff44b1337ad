//! The crash test: `musterd` as a child process takes a few hundred
//! acknowledged mutations from concurrent clients, is killed with SIGKILL at
//! a random moment, and is restarted on the same data directory. Every
//! acknowledged mutation must be there (a retry with its `request_id` gets
//! the very answer that was acknowledged), the live digests seen before the
//! kill must match replays of the log at those sequences, and the restarted
//! state must equal an offline replay of the log (`musterd check`).
//!
//! Seeds come from `MUSTER_CRASH_SEEDS` (comma-separated), default `1,2,3`.
//!
//! `replicated` does the same to two replicas on a three-node NATS
//! JetStream cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster_client::proto as pb;
use muster_client::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "support/nats.rs"]
mod nats;
#[path = "crash/replicated.rs"]
mod replicated;

const CLIENTS: usize = 6;

struct Musterd {
    child: Child,
    url: String,
}

impl Musterd {
    fn start(data_dir: &Path) -> Musterd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_musterd"))
            // Snapshots often, so that the kill may land while one is written
            // and the restart starts from one.
            .args([
                "--listen",
                "127.0.0.1:0",
                "--http",
                "off",
                "--log-format",
                "json",
                "--snapshot-every",
                "50",
                "--data-dir",
            ])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start musterd");
        let (address, _, lines) = serving(&mut child);
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Musterd { child, url: format!("http://{address}") }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    fn terminate(mut self) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY-free: `kill` from the standard library only sends SIGKILL, so
        // ask the shell's `kill` for SIGTERM.
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("reap");
        assert!(exit.success(), "musterd exits cleanly on SIGTERM: {exit:?}");
    }
}

/// Runs `musterd` with `args` to its end: its exit code, what it printed
/// and what it said on stderr.
fn run_musterd<'a>(args: impl IntoIterator<Item = &'a std::ffi::OsStr>) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_musterd")).args(args).output().expect("run musterd");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Reads a `musterd --log-format json` child's log until it serves: its
/// address, the lines before that, and the rest of its log.
fn serving(child: &mut Child) -> (String, Vec<String>, std::io::Lines<BufReader<std::process::ChildStderr>>) {
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        let line = match lines.next() {
            Some(line) => line.expect("read stderr"),
            None => panic!("musterd exited before serving: {}", seen.join("\n")),
        };
        let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        if let Some(parsed) = parsed.filter(|parsed| parsed["fields"]["message"] == "musterd serving") {
            let address = parsed["fields"]["address"].as_str().expect("address field").to_owned();
            return (address, seen, lines);
        }
        seen.push(line);
    }
}

/// One acknowledged mutation: the request as sent and the answer received.
#[derive(Clone, Debug)]
enum Acked {
    Register(pb::RegisterTeamRequest, pb::Team),
    Report(pb::ReportStatusRequest, pb::Team),
    Update(pb::UpdateTeamRequest, pb::Team),
}

fn team(id: &str, rng: &mut StdRng) -> pb::Team {
    pb::Team {
        id: id.to_owned(),
        name: format!("Team {id}"),
        organization: "Fire and rescue".into(),
        capabilities: vec![pb::Capability { code: "search_rescue".into(), tier: rng.random_range(1..=4) }],
        headcount: rng.random_range(1..=30),
        home: Some(pb::LatLng { lat: 28.0 + rng.random::<f64>() * 0.4, lng: 112.8 + rng.random::<f64>() * 0.4 }),
        speed_kmh: 40.0 + rng.random::<f64>() * 40.0,
        insurance_expires: Some(muster_client::Timestamp { seconds: 1_814_313_600, nanos: 0 }),
        ..pb::Team::default()
    }
}

/// One client's workload: register a few teams of its own, then report
/// positions and update them, recording every acknowledgment.
async fn workload(client: Client, worker: usize, seed: u64, acked: Arc<Mutex<Vec<Acked>>>, count: Arc<AtomicUsize>) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000).wrapping_add(worker as u64));
    let mut roster = client.roster();
    let mut teams = Vec::new();
    for step in 0.. {
        let request_id = format!("w{worker}-s{step}");
        let choice = if teams.len() < 3 { 0 } else { rng.random_range(0..10) };
        let outcome = match choice {
            0 => {
                let id = format!("T-{worker}-{}", teams.len());
                let request = pb::RegisterTeamRequest { request_id, team: Some(team(&id, &mut rng)) };
                let result = roster.register_team(request.clone()).await;
                result.map(|reply| {
                    teams.push(id);
                    Acked::Register(request, reply.into_inner())
                })
            }
            1 => {
                let id = teams[rng.random_range(0..teams.len())].clone();
                let request =
                    pb::UpdateTeamRequest { request_id, team: Some(team(&id, &mut rng)), expected_version: 0 };
                roster.update_team(request.clone()).await.map(|reply| Acked::Update(request, reply.into_inner()))
            }
            _ => {
                let id = teams[rng.random_range(0..teams.len())].clone();
                let status =
                    if rng.random_bool(0.2) { pb::TeamStatus::OutOfService } else { pb::TeamStatus::Available };
                let request = pb::ReportStatusRequest {
                    request_id,
                    team_id: id,
                    status: status.into(),
                    position: Some(pb::LatLng { lat: 28.0 + rng.random::<f64>() * 0.4, lng: 112.9 }),
                };
                roster.report_status(request.clone()).await.map(|reply| Acked::Report(request, reply.into_inner()))
            }
        };
        match outcome {
            Ok(record) => {
                acked.lock().unwrap().push(record);
                count.fetch_add(1, Ordering::SeqCst);
            }
            // The server was killed: stop. Anything not acknowledged may or
            // may not have been applied, and that is allowed.
            Err(_) => return,
        }
    }
}

/// Every acknowledged mutation is present: a retry of it (the `i`th on
/// `clients[i % clients.len()]`) gets the acknowledged answer, and every
/// team is, on every client's server, at least at the version last
/// acknowledged. `case` names the case in failures.
async fn assert_acknowledged_present(clients: &[&Client], acked: &[Acked], case: &str) {
    let mut latest: BTreeMap<String, u64> = BTreeMap::new();
    for (index, record) in acked.iter().enumerate() {
        let mut roster = clients[index % clients.len()].roster();
        let (again, first) = match record {
            Acked::Register(request, reply) => (roster.register_team(request.clone()).await, reply),
            Acked::Report(request, reply) => (roster.report_status(request.clone()).await, reply),
            Acked::Update(request, reply) => (roster.update_team(request.clone()).await, reply),
        };
        let again = again.unwrap_or_else(|status| panic!("{case}: retry of {record:?} failed: {status:?}"));
        assert_eq!(&again.into_inner(), first, "{case}: an acknowledged answer changed");
        let version = latest.entry(first.id.clone()).or_default();
        *version = (*version).max(first.version);
    }
    for client in clients {
        for (id, version) in &latest {
            let request = pb::GetTeamRequest { id: id.clone(), as_of: None };
            let team = client.roster().get_team(request).await.unwrap().into_inner();
            assert!(team.version >= *version, "{case}: {id} lost acknowledged changes ({} < {version})", team.version);
        }
    }
}

async fn connect(url: &str) -> Client {
    for _ in 0..500 {
        if let Ok(client) = Client::connect(url, None).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("cannot connect to {url}");
}

async fn crash_and_recover(seed: u64) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut rng = StdRng::seed_from_u64(seed);
    let kill_after_acks = rng.random_range(200..400);
    let extra_delay_ms = rng.random_range(0..20);

    let server = Musterd::start(&data_dir);
    let client = connect(&server.url).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CLIENTS {
        workers.spawn(workload(client.clone(), worker, seed, acked.clone(), count.clone()));
    }
    // Watch live digests while the load runs: each is the state the server
    // had published, which must be the fold of the log up to its sequence.
    let digests = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let mut audit = client.audit();
        let digests = digests.clone();
        tokio::spawn(async move {
            while let Ok(digest) = audit.get_digest(pb::GetDigestRequest { sequence: 0 }).await {
                digests.lock().unwrap().push(digest.into_inner());
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    while count.load(Ordering::SeqCst) < kill_after_acks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(extra_delay_ms)).await;
    server.kill();
    while workers.join_next().await.is_some() {}
    let _ = watcher.await;
    let acked = acked.lock().unwrap().clone();
    let digests = digests.lock().unwrap().clone();
    assert!(acked.len() >= kill_after_acks, "seed {seed}: {} acknowledged", acked.len());

    let server = Musterd::start(&data_dir);
    let client = connect(&server.url).await;
    let mut audit = client.audit();
    let now = audit.get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();

    // Every acknowledged mutation is present: its retry gets the same answer.
    assert_acknowledged_present(&[&client], &acked, &format!("seed {seed}")).await;
    // What the server showed before the kill is a prefix of the log.
    for digest in digests.iter().filter(|digest| digest.sequence > 0) {
        assert!(digest.sequence <= now.sequence, "seed {seed}: published sequence {} was lost", digest.sequence);
        let replayed = audit.get_digest(pb::GetDigestRequest { sequence: digest.sequence }).await.unwrap().into_inner();
        assert_eq!(&replayed, digest, "seed {seed}: the live state at {} differs from the log's fold", digest.sequence);
    }
    let retried = audit.get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    assert_eq!(retried, now, "seed {seed}: retries of acknowledged requests changed the state");
    server.terminate();

    // An offline replay of the log gives the state the restarted server had,
    // from the latest snapshot and from the start, and every snapshot
    // written (some of them just before the kill) is the fold of the log.
    // `musterd check [--full]`: its exit code and what it printed.
    let run_check = |full: bool| {
        let mut args = vec!["check".as_ref(), "--data-dir".as_ref(), data_dir.as_os_str()];
        args.extend(full.then_some(std::ffi::OsStr::new("--full")));
        run_musterd(args)
    };
    let check = |full: bool| {
        let (code, stdout, stderr) = run_check(full);
        assert_eq!(code, Some(0), "musterd check failed: {stderr}");
        stdout
    };
    let restored = check(false);
    assert!(restored.contains("from snapshot "), "seed {seed}: {restored}");
    let full = check(true);
    assert!(!full.contains("DIFFERS") && !full.contains("missing"), "seed {seed}: {full}");
    let snapshots = full.lines().filter(|line| line.ends_with("matches the log")).count();
    assert!(snapshots >= 4, "seed {seed}: snapshots every 50 records: {full}");
    for text in [restored, full] {
        assert!(text.contains(&format!("sequence {}", now.sequence)), "seed {seed}: {text}");
        assert!(text.contains(&format!("digest {}", now.digest)), "seed {seed}: {text}");
    }

    // A damaged snapshot is reported, and the check goes on to the end of
    // the log (exit status 1); the restore steps over it to an older one.
    let mut files: Vec<_> = std::fs::read_dir(data_dir.join("snapshots"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "snapshot"))
        .collect();
    files.sort();
    let damaged = files.last().unwrap();
    let mut bytes = std::fs::read(damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(damaged, bytes).unwrap();
    let (code, text, _) = run_check(true);
    assert_eq!(code, Some(1), "seed {seed}: a damaged snapshot fails the check: {text}");
    assert!(text.contains("is unreadable"), "seed {seed}: {text}");
    assert!(text.contains(&format!("digest {}", now.digest)), "seed {seed}: the check still folds to the end: {text}");
    let restored = check(false);
    assert!(restored.contains(&format!("digest {}", now.digest)), "seed {seed}: {restored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_mutations_survive_sigkill() {
    let seeds: Vec<u64> = std::env::var("MUSTER_CRASH_SEEDS")
        .unwrap_or_else(|_| "1,2,3".to_owned())
        .split(',')
        .map(|seed| seed.trim().parse().expect("MUSTER_CRASH_SEEDS holds numbers"))
        .collect();
    for seed in seeds {
        crash_and_recover(seed).await;
    }
}

/// Issue 8, defect 3: a watcher that stopped reading must not hold up a
/// shutdown. WatchTeams on a team with a few hundred members, never read,
/// while 1,500 status reports fill every buffer on the way; SIGTERM must end
/// the server within a few seconds, and every acknowledged report is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_server_while_a_watcher_has_stopped_reading() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let server = Musterd::start(&data_dir);
    let client = connect(&server.url).await;
    let mut roster = client.roster();
    let mut rng = StdRng::seed_from_u64(8);
    let mut big = team("BIG", &mut rng);
    big.headcount = 0;
    big.members = (0..400)
        .map(|index| pb::Member {
            id: format!("m{index}"),
            name: format!("Member number {index} of the big team"),
            role: "rescuer".into(),
            insurance_expires: Some(muster_client::Timestamp { seconds: 1_814_313_600, nanos: 0 }),
            on_duty: true,
            ..pb::Member::default()
        })
        .collect();
    roster.register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(big) }).await.unwrap();
    // Its own connection, never read: its windows and buffers fill up.
    let watcher = connect(&server.url).await;
    let stalled = watcher.roster().watch_teams(pb::WatchTeamsRequest::default()).await.unwrap().into_inner();
    let reports = 1_500;
    for index in 0..reports {
        let request = pb::ReportStatusRequest {
            request_id: String::new(),
            team_id: "BIG".into(),
            status: pb::TeamStatus::Unspecified.into(),
            position: Some(pb::LatLng { lat: 28.0 + f64::from(index) * 1e-5, lng: 112.9 }),
        };
        roster.report_status(request).await.unwrap();
    }
    let pid = server.child.id().to_string();
    let started = std::time::Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut child = server.child;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        // A bound on a liveness check, not a measurement: before the fix the
        // server never exited at all.
        if started.elapsed() > Duration::from_secs(15) {
            child.kill().unwrap();
            panic!("musterd had not exited 15 s after SIGTERM with a stalled watcher");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "musterd exits cleanly: {exit:?}");
    drop(stalled);
    let (_, text, _) = run_musterd(["check".as_ref(), "--data-dir".as_ref(), data_dir.as_os_str()]);
    assert!(text.contains(&format!("sequence {}", reports + 1)), "every acknowledged report is durable: {text}");
}
