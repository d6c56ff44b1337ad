//! `muster bench`: the load generator. It starts its own servers on
//! loopback (a `musterd` as shipped, a `musterd --max-batch 1` that flushes
//! and syncs once per write with no grouping, and a bare tonic echo that
//! answers `RosterService` with a message of the same size and touches no
//! disk), drives each with the same bounded load in alternating rounds, and
//! prints throughput, latency quantiles and the ratios against the
//! baselines measured in the same run. With `--history N` it also builds a
//! city-wide world (10,000 teams, 500 depots x 40 items, 1,000 open needs)
//! with N status reports of history and measures memory, restart, reads of
//! the past and dispatch on it.
//!
//! Everything is bounded in count and time, and only ever talks to
//! 127.0.0.1. Figures are medians over rounds; the machine is whatever runs
//! it, so compare ratios, not absolute numbers, across machines.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use hdrhistogram::Histogram;
use muster_client::{proto as pb, Client, Timestamp};
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

/// What `muster bench` measures.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The `musterd` binary (default: the one beside this `muster`).
    #[arg(long)]
    musterd: Option<PathBuf>,
    /// Seconds each load runs, per round and target.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Rounds; each runs every target once, in a rotating order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Teams on the roster for the write and read loads.
    #[arg(long, default_value_t = 1_000)]
    teams: usize,
    /// Watchers for the fan-out measurement.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Also build the city-wide world with this many status reports of
    /// history and measure memory, restart, reads of the past and dispatch
    /// on it (0: skip; the figure is 1,000,000).
    #[arg(long, default_value_t = 0)]
    history: u64,
    /// Skip the write, read and fan-out loads (with --history: the world only).
    #[arg(long)]
    no_loads: bool,
}

/// `muster bench-echo`: the baseline server, in a process of its own.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

const MARKER: &str = "B-MARK";

/// A team as the bench registers it: a realistic size (four members).
fn bench_team(id: &str, index: usize) -> pb::Team {
    let lat = 28.0 + (index % 500) as f64 * 0.001;
    let lng = 112.7 + (index / 500 % 500) as f64 * 0.001;
    let expires = Some(Timestamp { seconds: 1_900_000_000, nanos: 0 });
    pb::Team {
        id: id.to_owned(),
        name: format!("Search and rescue team {index}"),
        organization: "City emergency management bureau".into(),
        capabilities: vec![
            pb::Capability { code: CAPABILITIES[index % CAPABILITIES.len()].into(), tier: 1 + (index % 4) as u32 },
            pb::Capability { code: CAPABILITIES[(index + 3) % CAPABILITIES.len()].into(), tier: 2 },
        ],
        headcount: 0,
        home: Some(pb::LatLng { lat, lng }),
        speed_kmh: 50.0,
        insurance_expires: expires,
        members: (0..4)
            .map(|member| pb::Member {
                id: format!("m{member}"),
                name: format!("Member {member} of team {index}"),
                role: "rescuer".into(),
                insurance_expires: expires,
                on_duty: true,
                ..pb::Member::default()
            })
            .collect(),
        ..pb::Team::default()
    }
}

const CAPABILITIES: [&str; 8] =
    ["water_rescue", "search_rescue", "firefighting", "hazmat", "medical", "pumping", "power_restoration", "logistics"];

fn team_id(index: usize) -> String {
    format!("B-{index:05}")
}

// ---------------------------------------------------------------------------
// The echo baseline
// ---------------------------------------------------------------------------

/// Answers ReportStatus and GetTeam with a team the size Muster answers
/// with, and ListTeams with a page of 100 of them: tonic, prost and the
/// loopback, and nothing else.
#[derive(Debug)]
struct Echo {
    team: pb::Team,
    page: Vec<pb::Team>,
}

#[tonic::async_trait]
impl pb::roster_service_server::RosterService for Echo {
    async fn report_status(&self, request: Request<pb::ReportStatusRequest>) -> Result<Response<pb::Team>, Status> {
        let request = request.into_inner();
        let mut team = self.team.clone();
        team.id = request.team_id;
        team.position = request.position;
        Ok(Response::new(team))
    }

    async fn get_team(&self, request: Request<pb::GetTeamRequest>) -> Result<Response<pb::Team>, Status> {
        let mut team = self.team.clone();
        team.id = request.into_inner().id;
        Ok(Response::new(team))
    }

    async fn list_teams(
        &self,
        _request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        Ok(Response::new(pb::ListTeamsResponse { teams: self.page.clone(), next_page_token: "next".into() }))
    }
}

/// Serves the echo baseline until killed; prints `listening <address>`.
pub async fn serve_echo(args: EchoArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!("--listen: the echo baseline listens on loopback only");
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening {}", listener.local_addr()?);
    let mut team = bench_team(&team_id(0), 0);
    team.status = pb::TeamStatus::Available.into();
    team.position = team.home;
    team.version = 2;
    team.last_report_at = Some(Timestamp { seconds: 1_800_000_000, nanos: 0 });
    let page = (0..100).map(|index| bench_team(&team_id(index), index)).collect();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        // The same socket option as musterd, so the baseline is like for like.
        stream.inspect(|stream| {
            let _ = stream.set_nodelay(true);
        })
    });
    tonic::transport::Server::builder()
        .add_service(pb::roster_service_server::RosterServiceServer::new(Echo { team, page }))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Servers the bench starts
// ---------------------------------------------------------------------------

/// A server process on loopback; killed (and its data removed) on drop.
struct Spawned {
    child: Child,
    url: String,
    data_dir: Option<PathBuf>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Spawned {
    /// Sends SIGTERM and waits: how long a clean stop took.
    fn terminate(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            bail!("musterd exited with {exit} on SIGTERM");
        }
        Ok(started.elapsed())
    }

    fn resident_mib(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status.lines().find(|line| line.starts_with(name)).context("no such field")?;
            let kib: f64 = line.split_whitespace().nth(1).context("no value")?.parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

fn temporary_dir(name: &str) -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("muster-bench-{}-{name}-{count}", std::process::id()))
}

/// Starts `musterd` on 127.0.0.1:0 over `data_dir`; returns once it serves,
/// and how long that took.
fn spawn_musterd(musterd: &Path, data_dir: &Path, extra: &[&str]) -> anyhow::Result<(Spawned, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(musterd)
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--log-format", "json", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        // The "serving" line is logged at info, whatever RUST_LOG says here.
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", musterd.display()))?;
    let stderr = child.stderr.take().context("stderr")?;
    // Owned at once, so that any error below kills it.
    let mut spawned = Spawned { child, url: String::new(), data_dir: None };
    let (sender, lines) = std::sync::mpsc::channel();
    // Reads its log on a thread of its own (and keeps draining it, so the
    // server never blocks on a full pipe).
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let address = loop {
        let left = READY_WITHIN.saturating_sub(started.elapsed());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => bail!("musterd was not serving after {READY_WITHIN:?}"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => bail!("musterd exited before serving"),
        };
        let Ok(parsed) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if parsed["fields"]["message"] == "musterd serving" {
            break parsed["fields"]["address"].as_str().context("address")?.to_owned();
        }
    };
    let ready = started.elapsed();
    std::thread::spawn(move || for _ in lines {});
    spawned.url = format!("http://{address}");
    Ok((spawned, ready))
}

/// How long a server may take to say it serves (a million-event restart
/// takes about two seconds).
const READY_WITHIN: Duration = Duration::from_secs(120);

/// How long one call may take before the bench counts it as failed.
const CALL_WITHIN: Duration = Duration::from_secs(60);

fn spawn_echo() -> anyhow::Result<Spawned> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("bench-echo")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the echo baseline")?;
    let stdout = child.stdout.take().context("stdout")?;
    // Owned at once, so that any error below kills it. It prints its
    // address as soon as it has bound, or exits (end of file).
    let mut spawned = Spawned { child, url: String::new(), data_dir: None };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line.trim().strip_prefix("listening ").context("the echo baseline did not start")?.to_owned();
    spawned.url = format!("http://{address}");
    Ok(spawned)
}

async fn connect(url: &str) -> anyhow::Result<Client> {
    for _ in 0..200 {
        if let Ok(client) = Client::connect(url, None).await {
            return Ok(client);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("cannot connect to {url}")
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// One load's outcome: requests answered, refused, and their latencies (µs).
struct Load {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Histogram<u64>,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1_000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant digits: the bounds are constants.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Runs `call(n)` from `in_flight` tasks until `duration` has passed or
/// `limit` calls were made, whichever comes first.
async fn load<F, Fut>(in_flight: usize, duration: Duration, limit: u64, call: F) -> Load
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight.max(1) {
        let (call, next) = (call.clone(), Arc::clone(&next));
        tasks.spawn(async move {
            let (mut ok, mut errors, mut latencies) = (0, 0, histogram());
            while Instant::now() < deadline {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= limit {
                    break;
                }
                let sent = Instant::now();
                match tokio::time::timeout(CALL_WITHIN, call(index))
                    .await
                    .unwrap_or_else(|_| Err(Status::deadline_exceeded("bench")))
                {
                    Ok(()) => {
                        ok += 1;
                        let _ = latencies.record(sent.elapsed().as_micros().max(1) as u64);
                    }
                    Err(_) => errors += 1,
                }
            }
            (ok, errors, latencies)
        });
    }
    let mut total = Load { ok: 0, errors: 0, elapsed: Duration::ZERO, latencies: histogram() };
    while let Some(done) = tasks.join_next().await {
        if let Ok((ok, errors, latencies)) = done {
            total.ok += ok;
            total.errors += errors;
            let _ = total.latencies.add(&latencies);
        }
    }
    total.elapsed = started.elapsed();
    total
}

fn report_request(index: u64, teams: usize, name: fn(usize) -> String, prefix: &str) -> pb::ReportStatusRequest {
    let team = (index as usize) % teams;
    pb::ReportStatusRequest {
        request_id: format!("{prefix}-{index}"),
        team_id: name(team),
        status: pb::TeamStatus::Unspecified.into(),
        position: Some(pb::LatLng {
            lat: 28.0 + (index % 10_000) as f64 * 1e-5,
            lng: 112.7 + (team % 1_000) as f64 * 1e-4,
        }),
    }
}

async fn report_load(client: &Client, args: &BenchArgs, teams: usize, prefix: &str) -> Load {
    reports(client, args.in_flight, Duration::from_secs_f64(args.seconds), u64::MAX, (teams, team_id), prefix).await
}

/// `ReportStatus` over `teams` teams named by `name`, from `in_flight`
/// tasks, for `duration` or `limit` calls, request ids `<prefix>-<n>`.
fn reports(
    client: &Client,
    in_flight: usize,
    duration: Duration,
    limit: u64,
    (teams, name): (usize, fn(usize) -> String),
    prefix: &str,
) -> impl Future<Output = Load> + Send + 'static {
    let roster = client.roster();
    let prefix = prefix.to_owned();
    load(in_flight, duration, limit, move |index| {
        let (mut roster, request) = (roster.clone(), report_request(index, teams, name, &prefix));
        async move { roster.report_status(request).await.map(drop) }
    })
}

async fn get_load(client: &Client, args: &BenchArgs) -> Load {
    let roster = client.roster();
    let teams = args.teams;
    load(args.in_flight, Duration::from_secs_f64(args.seconds), u64::MAX, move |index| {
        let mut roster = roster.clone();
        let request = pb::GetTeamRequest { id: team_id(index as usize % teams), as_of: None };
        async move { roster.get_team(request).await.map(drop) }
    })
    .await
}

async fn list_load(client: &Client, args: &BenchArgs) -> Load {
    let roster = client.roster();
    load(args.in_flight, Duration::from_secs_f64(args.seconds), u64::MAX, move |_| {
        let mut roster = roster.clone();
        let request = pb::ListTeamsRequest { page_size: 100, ..pb::ListTeamsRequest::default() };
        async move { roster.list_teams(request).await.map(drop) }
    })
    .await
}

async fn register_teams(client: &Client, count: usize) -> anyhow::Result<()> {
    let roster = client.roster();
    let done = load(32, Duration::from_secs(600), count as u64, move |index| {
        let mut roster = roster.clone();
        let team = bench_team(&team_id(index as usize), index as usize);
        async move {
            roster
                .register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(team) })
                .await
                .map(drop)
        }
    })
    .await;
    if done.ok != count as u64 {
        bail!("registered {} of {count} teams ({} refused)", done.ok, done.errors);
    }
    let mut marker = bench_team(MARKER, 0);
    marker.id = MARKER.into();
    client.roster().register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(marker) }).await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        length => values[length / 2],
    }
}

/// The median, over rounds, of throughput and of each latency quantile.
#[derive(Clone, Copy, Debug)]
struct Figures {
    per_second: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    errors: u64,
}

fn figures(loads: &[Load]) -> Figures {
    Figures {
        per_second: median(loads.iter().map(Load::per_second).collect()),
        p50: median(loads.iter().map(|load| load.quantile_ms(0.50)).collect()),
        p99: median(loads.iter().map(|load| load.quantile_ms(0.99)).collect()),
        p999: median(loads.iter().map(|load| load.quantile_ms(0.999)).collect()),
        errors: loads.iter().map(|load| load.errors).sum(),
    }
}

fn row(name: &str, figures: Figures) {
    println!(
        "  {name:<44} {:>9.0}/s   p50 {:>7.2} ms   p99 {:>7.2} ms   p999 {:>7.2} ms{}",
        figures.per_second,
        figures.p50,
        figures.p99,
        figures.p999,
        if figures.errors > 0 { format!("   ({} errors)", figures.errors) } else { String::new() }
    );
}

fn ratio(name: &str, numerator: f64, denominator: f64, target: &str) {
    println!("  {name:<60} {:>6.2}   (target {target})", numerator / denominator);
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// `muster bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let musterd = match &args.musterd {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("musterd"),
    };
    if !musterd.exists() {
        bail!("{} not found: build it (cargo build --release) or pass --musterd", musterd.display());
    }
    println!(
        "muster bench: {} s per load, {} in flight, {} rounds, {} teams, on {} cores",
        args.seconds,
        args.in_flight,
        args.rounds,
        args.teams,
        std::thread::available_parallelism().map(usize::from).unwrap_or(1)
    );
    println!("(medians over rounds; baselines measured in the same run)\n");
    if !args.no_loads {
        loads(&musterd, &args).await?;
    }
    if args.history > 0 {
        city(&musterd, &args).await?;
    }
    Ok(())
}

/// The write, read and fan-out loads against their baselines.
async fn loads(musterd: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    let echo = spawn_echo()?;
    let grouped_dir = temporary_dir("grouped");
    let (mut grouped, _) = spawn_musterd(musterd, &grouped_dir, &[])?;
    grouped.data_dir = Some(grouped_dir);
    let ungrouped_dir = temporary_dir("ungrouped");
    let (mut ungrouped, _) = spawn_musterd(musterd, &ungrouped_dir, &["--max-batch", "1"])?;
    ungrouped.data_dir = Some(ungrouped_dir);
    let echo_client = connect(&echo.url).await?;
    let grouped_client = connect(&grouped.url).await?;
    let ungrouped_client = connect(&ungrouped.url).await?;
    register_teams(&grouped_client, args.teams).await?;
    register_teams(&ungrouped_client, args.teams).await?;

    // Writes: durable ReportStatus, grouped and not, against the echo.
    let (mut echo_writes, mut grouped_writes, mut ungrouped_writes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => echo_writes.push(report_load(&echo_client, args, args.teams, &format!("e{round}")).await),
                1 => grouped_writes.push(report_load(&grouped_client, args, args.teams, &format!("g{round}")).await),
                _ => {
                    ungrouped_writes.push(report_load(&ungrouped_client, args, args.teams, &format!("u{round}")).await)
                }
            }
        }
    }
    let (echo_w, grouped_w, ungrouped_w) =
        (figures(&echo_writes), figures(&grouped_writes), figures(&ungrouped_writes));
    println!("ReportStatus (each with a request_id, as the roster app sends it)");
    row("bare tonic echo, same message size", echo_w);
    row("musterd, durable, group commit", grouped_w);
    row("musterd --max-batch 1 (one fdatasync per write)", ungrouped_w);
    drop(ungrouped_client);
    drop(ungrouped);

    // Reads: GetTeam and ListTeams against the echo.
    let (mut echo_gets, mut gets, mut echo_lists, mut lists) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        if round % 2 == 0 {
            echo_gets.push(get_load(&echo_client, args).await);
            gets.push(get_load(&grouped_client, args).await);
            echo_lists.push(list_load(&echo_client, args).await);
            lists.push(list_load(&grouped_client, args).await);
        } else {
            gets.push(get_load(&grouped_client, args).await);
            echo_gets.push(get_load(&echo_client, args).await);
            lists.push(list_load(&grouped_client, args).await);
            echo_lists.push(list_load(&echo_client, args).await);
        }
    }
    let (echo_g, get_f, echo_l, list_f) = (figures(&echo_gets), figures(&gets), figures(&echo_lists), figures(&lists));
    println!("\nReads");
    row("GetTeam, bare tonic echo", echo_g);
    row("GetTeam, musterd", get_f);
    row("ListTeams (100 a page), bare tonic echo", echo_l);
    row("ListTeams (100 a page), musterd", list_f);
    drop(echo_client);
    drop(echo);

    println!("\nWatchTeams fan-out under full ReportStatus load");
    let fanout = fan_out(&grouped, &grouped_client, args).await?;
    println!(
        "  {} watchers, {} changes: all watchers saw a change after p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.watchers, fanout.0, fanout.1, fanout.2, fanout.3
    );
    drop(grouped_client);
    drop(grouped);

    println!("\nRatios (higher is better for throughput)");
    ratio("durable ReportStatus / echo, throughput", grouped_w.per_second, echo_w.per_second, ">= 0.40");
    ratio("group commit / one fdatasync per write, throughput", grouped_w.per_second, ungrouped_w.per_second, "> 1");
    ratio("GetTeam / echo, throughput", get_f.per_second, echo_g.per_second, ">= 0.80");
    ratio("ListTeams / echo, throughput", list_f.per_second, echo_l.per_second, "none set");
    println!("  durable ReportStatus p99 {:.2} ms (target < 10 ms)", grouped_w.p99);
    Ok(())
}

/// Watchers on their own connections; the marker team reports every 50 ms
/// while the rest of the roster reports at full load. For each marker
/// report: the time from its acknowledgement until the last watcher saw it.
/// Returns (changes, p50 ms, p99 ms, max ms).
async fn fan_out(server: &Spawned, client: &Client, args: &BenchArgs) -> anyhow::Result<(u64, f64, f64, f64)> {
    let (seen_sender, mut seen) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let mut watchers = Vec::new();
    for _ in 0..args.watchers {
        let watcher = connect(&server.url).await?;
        let mut stream = watcher.roster().watch_teams(pb::WatchTeamsRequest {}).await?.into_inner();
        let sender = seen_sender.clone();
        watchers.push(tokio::spawn(async move {
            let _keep = watcher;
            let mut last = 0;
            while let Some(Ok(event)) = stream.next().await {
                if let Some(team) = event.team.filter(|team| team.id == MARKER && team.version > last) {
                    last = team.version;
                    if sender.send((team.version, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }));
    }
    drop(seen_sender);
    let background = tokio::spawn(reports(
        client,
        args.in_flight,
        Duration::from_secs_f64(args.seconds + 0.5),
        u64::MAX,
        (args.teams, team_id),
        "f",
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut acknowledged: Vec<(u64, Instant)> = Vec::new();
    let mut roster = client.roster();
    let started = Instant::now();
    let mut index = 0;
    while started.elapsed().as_secs_f64() < args.seconds {
        index += 1;
        let request = pb::ReportStatusRequest {
            request_id: format!("mark-{index}"),
            team_id: MARKER.into(),
            status: pb::TeamStatus::Unspecified.into(),
            position: Some(pb::LatLng { lat: 28.1 + index as f64 * 1e-5, lng: 112.8 }),
        };
        let team = roster.report_status(request).await?.into_inner();
        acknowledged.push((team.version, Instant::now()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = background.await;
    // Give the last change a moment to reach everyone, then stop watching.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for watcher in &watchers {
        watcher.abort();
    }
    let mut arrivals: std::collections::BTreeMap<u64, (usize, Instant)> = std::collections::BTreeMap::new();
    while let Some((version, at)) = seen.recv().await {
        let entry = arrivals.entry(version).or_insert((0, at));
        entry.0 += 1;
        entry.1 = entry.1.max(at);
    }
    let mut latencies = histogram();
    let mut changes = 0;
    for (version, acknowledged_at) in &acknowledged {
        // A watcher that fell behind resyncs and may skip a version: count
        // the first later version every watcher saw.
        if let Some((_, (_, last))) = arrivals.range(version..).find(|(_, (count, _))| *count >= args.watchers) {
            let _ = latencies.record(last.saturating_duration_since(*acknowledged_at).as_micros().max(1) as u64);
            changes += 1;
        }
    }
    let ms = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1_000.0;
    Ok((changes, ms(0.5), ms(0.99), latencies.max() as f64 / 1_000.0))
}

// ---------------------------------------------------------------------------
// The city-wide world
// ---------------------------------------------------------------------------

const CITY_TEAMS: usize = 10_000;
const CITY_DEPOTS: usize = 500;
const CITY_ITEMS: usize = 40;
const CITY_INCIDENTS: usize = 100;
const NEEDS_PER_INCIDENT: usize = 10;

fn city_team_id(index: usize) -> String {
    format!("C-{index:05}")
}

fn city_fixtures() -> Vec<String> {
    use std::fmt::Write as _;
    let mut reserves = String::new();
    for item in 0..CITY_ITEMS {
        let _ = writeln!(reserves, "[[item]]\ncode = \"item_{item:02}\"\nname = \"Item {item}\"\nunit = \"unit\"\n");
    }
    for depot in 0..CITY_DEPOTS {
        let (lat, lng) = (28.0 + (depot % 25) as f64 * 0.02, 112.7 + (depot / 25) as f64 * 0.025);
        let _ = writeln!(
            reserves,
            "[[depot]]\nid = \"D-{depot:03}\"\nname = \"Depot {depot}\"\nposition = [{lat}, {lng}]\n"
        );
    }
    let mut fixtures = vec![reserves];
    let mut stock = String::new();
    for depot in 0..CITY_DEPOTS {
        for item in 0..CITY_ITEMS {
            let _ = writeln!(
                stock,
                "[[stock]]\ndepot = \"D-{depot:03}\"\nitem = \"item_{item:02}\"\non_hand = {}\nmin_reserve = 10\n",
                50 + (depot * 7 + item * 13) % 200
            );
        }
        if stock.len() > 2_000_000 {
            fixtures.push(std::mem::take(&mut stock));
        }
    }
    fixtures.push(stock);
    let mut teams = String::new();
    for index in 0..CITY_TEAMS {
        let team = bench_team(&city_team_id(index), index);
        let home = team.home.unwrap_or_default();
        let capabilities: Vec<String> = team
            .capabilities
            .iter()
            .map(|capability| format!("{{ code = \"{}\", tier = {} }}", capability.code, capability.tier))
            .collect();
        let _ = writeln!(
            teams,
            "[[team]]\nid = \"{}\"\nname = \"{}\"\norganization = \"{}\"\ncapabilities = [{}]\nheadcount = 8\n\
             home = [{}, {}]\nspeed_kmh = 50\ninsurance_expires = \"2030-01-01T00:00:00Z\"\n",
            team.id,
            team.name,
            team.organization,
            capabilities.join(", "),
            home.lat,
            home.lng
        );
        if teams.len() > 2_000_000 {
            fixtures.push(std::mem::take(&mut teams));
        }
    }
    fixtures.push(teams);
    fixtures
}

async fn build_city(client: &Client) -> anyhow::Result<()> {
    for (index, toml) in city_fixtures().into_iter().enumerate() {
        let request = pb::ImportRequest { request_id: String::new(), name: format!("city-{index}.toml"), toml };
        client.imports().import(request).await.with_context(|| format!("importing city fixture {index}"))?;
    }
    let mut incidents = client.incidents();
    for index in 0..CITY_INCIDENTS {
        let incident = pb::Incident {
            id: format!("INC-C{index:03}"),
            title: format!("Blackout sector {index}"),
            hazard: pb::Hazard::PowerOutage.into(),
            position: Some(pb::LatLng {
                lat: 28.0 + (index % 10) as f64 * 0.05,
                lng: 112.7 + (index / 10) as f64 * 0.05,
            }),
            level: [pb::Level::I, pb::Level::Ii, pb::Level::Iii, pb::Level::Iv][index % 4].into(),
            ..pb::Incident::default()
        };
        incidents
            .declare_incident(pb::DeclareIncidentRequest {
                request_id: String::new(),
                incident: Some(incident),
                plan_id: String::new(),
            })
            .await?;
        let teams = (0..NEEDS_PER_INCIDENT - 2)
            .map(|need| pb::TeamNeed {
                capability: CAPABILITIES[(index + need) % CAPABILITIES.len()].into(),
                min_tier: 1 + ((index + need) % 4) as u32,
                count: 1,
            })
            .collect();
        let supplies = (0..2)
            .map(|need| pb::SupplyNeed {
                item_code: format!("item_{:02}", (index * 2 + need) % CITY_ITEMS),
                quantity: 20,
            })
            .collect();
        incidents
            .request_resources(pb::RequestResourcesRequest {
                request_id: String::new(),
                incident_id: format!("INC-C{index:03}"),
                teams,
                supplies,
            })
            .await?;
    }
    Ok(())
}

async fn last_sequence(client: &Client) -> anyhow::Result<u64> {
    Ok(client.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await?.into_inner().sequence)
}

async fn city(musterd: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    println!(
        "\nThe city-wide world: {CITY_TEAMS} teams, {CITY_DEPOTS} depots x {CITY_ITEMS} items, {} open needs, {} status reports of history",
        CITY_INCIDENTS * NEEDS_PER_INCIDENT,
        args.history
    );
    let dir = temporary_dir("city");
    let (mut server, _) = spawn_musterd(musterd, &dir, &[])?;
    server.data_dir = Some(dir.clone());
    let client = connect(&server.url).await?;
    let built = Instant::now();
    build_city(&client).await?;
    println!("  built in {:.1} s", built.elapsed().as_secs_f64());
    let (start, _) = server.resident_mib()?;
    let history_started = Instant::now();
    let city_teams = (CITY_TEAMS, city_team_id as fn(usize) -> String);
    let history = reports(&client, args.in_flight, Duration::from_secs(3_600), args.history, city_teams, "h").await;
    let history_time = history_started.elapsed();
    let events = last_sequence(&client).await?;
    let (resident, peak) = server.resident_mib()?;
    println!(
        "  history: {} reports in {:.1} s ({:.0}/s, p99 {:.2} ms); the log holds {events} events",
        history.ok,
        history_time.as_secs_f64(),
        history.per_second(),
        history.quantile_ms(0.99)
    );
    println!("  resident memory: {start:.0} MiB before the history, {resident:.0} MiB after (peak {peak:.0} MiB); target < 200 MiB");

    // Reads of the past: GetTeam as_of times spread over the history,
    // one at a time, against GetTeam now.
    let history_start = Timestamp { seconds: now_seconds() - history_time.as_secs() as i64, nanos: 0 };
    let mut roster = client.roster();
    let (mut past, mut present) = (histogram(), histogram());
    for index in 0..40_i64 {
        let as_of =
            Timestamp { seconds: history_start.seconds + index * history_time.as_secs().max(1) as i64 / 40, nanos: 0 };
        let id = city_team_id(index as usize * 97 % CITY_TEAMS);
        let sent = Instant::now();
        roster.get_team(pb::GetTeamRequest { id: id.clone(), as_of: Some(as_of) }).await?;
        let _ = past.record(sent.elapsed().as_micros().max(1) as u64);
        let sent = Instant::now();
        roster.get_team(pb::GetTeamRequest { id, as_of: None }).await?;
        let _ = present.record(sent.elapsed().as_micros().max(1) as u64);
    }
    let ms = |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1_000.0;
    println!(
        "  GetTeam as_of a past time: p50 {:.1} ms, p99 {:.1} ms (target < 100 ms); GetTeam now p50 {:.2} ms",
        ms(&past, 0.5),
        ms(&past, 0.99),
        ms(&present, 0.5)
    );
    let burst = {
        let mut calls = tokio::task::JoinSet::new();
        for index in 0..8_i64 {
            let mut roster = client.roster();
            let as_of = Timestamp { seconds: history_start.seconds + index, nanos: 0 };
            calls.spawn(async move {
                roster.get_team(pb::GetTeamRequest { id: city_team_id(1), as_of: Some(as_of) }).await
            });
        }
        let mut exhausted = 0;
        while let Some(Ok(result)) = calls.join_next().await {
            if matches!(&result, Err(status) if status.code() == tonic::Code::ResourceExhausted) {
                exhausted += 1;
            }
        }
        exhausted
    };
    println!("  8 reads of the past at once: {burst} refused with RESOURCE_EXHAUSTED (at most 2 run at once)");

    // Dispatch: dry runs through gRPC, then a real one under status load.
    let mut incidents = client.incidents();
    let mut dry = Vec::new();
    let mut proposals = 0;
    for _ in 0..3 {
        let sent = Instant::now();
        let plan = incidents
            .dispatch(pb::DispatchRequest { dry_run: true, ..pb::DispatchRequest::default() })
            .await?
            .into_inner();
        dry.push(sent.elapsed().as_secs_f64() * 1_000.0);
        proposals = plan.assignments.len();
    }
    println!(
        "  dry-run dispatch, {} needs x {CITY_TEAMS} teams through gRPC: median {:.0} ms ({proposals} proposals)",
        CITY_INCIDENTS * NEEDS_PER_INCIDENT,
        median(dry)
    );
    let quiet = reports(&client, args.in_flight, Duration::from_secs(2), u64::MAX, city_teams, "q").await;
    let during = {
        let background =
            tokio::spawn(reports(&client, args.in_flight, Duration::from_secs(2), u64::MAX, city_teams, "d"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = Instant::now();
        let made = incidents.dispatch(pb::DispatchRequest::default()).await?.into_inner();
        println!(
            "  dispatch (committed) under full status load: {:.0} ms, {} assignments",
            sent.elapsed().as_secs_f64() * 1_000.0,
            made.assignments.len()
        );
        background.await?
    };
    println!(
        "  ReportStatus p99 while that dispatch ran: {:.2} ms (target < 20 ms); with no dispatch: {:.2} ms",
        during.quantile_ms(0.99),
        quiet.quantile_ms(0.99)
    );

    // Restart: from the latest snapshot, and from the whole log.
    let events = last_sequence(&client).await?;
    drop(client);
    let stopped = server.terminate()?;
    let (mut restarted, from_snapshot) = spawn_musterd(musterd, &dir, &[])?;
    let (resident_after_restart, _) = restarted.resident_mib()?;
    restarted.terminate()?;
    let aside = Aside(dir.with_extension("snapshots-aside"));
    std::fs::rename(dir.join("snapshots"), &aside.0).context("moving the snapshots aside")?;
    let (mut full, from_log) = spawn_musterd(musterd, &dir, &["--snapshot-every", "0"])?;
    full.terminate()?;
    drop(aside);
    println!(
        "  restart with {events} events: {:.2} s from the latest snapshot, {:.2} s folding the whole log (ratio {:.2}; target < 5 s); clean stop took {:.2} s; resident after restart {resident_after_restart:.0} MiB",
        from_snapshot.as_secs_f64(),
        from_log.as_secs_f64(),
        from_snapshot.as_secs_f64() / from_log.as_secs_f64(),
        stopped.as_secs_f64()
    );
    Ok(())
}

/// The snapshots moved aside for the full-fold restart; removed however the run ends.
struct Aside(PathBuf);

impl Drop for Aside {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}
