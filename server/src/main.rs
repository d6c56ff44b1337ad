//! `musterd`: the Muster server. Glue only: flags, logging, signals.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use muster_server::engine::{fold, restore, EngineConfig, SystemClock};
use muster_server::server::{self, FileConfig, ServerConfig};
use muster_server::store::SledStore;

/// mimalloc rather than the system allocator: glibc's malloc keeps what a
/// large command (a city-sized import) used long after it is freed, so the
/// server's resident size would show its largest burst rather than its
/// state; mimalloc gives freed pages back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Muster: emergency-response coordination server.
#[derive(Debug, Parser)]
#[command(name = "musterd", version, about)]
struct Args {
    /// Address to listen on (default 127.0.0.1:50051).
    #[arg(long, global = true)]
    listen: Option<std::net::SocketAddr>,
    /// Directory of the event log (default ./muster-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML): listen, data_dir, log_format, [dispatch], [[token]].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log output format.
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
    /// Write a snapshot of the state every this many log records (0: never;
    /// default 10,000): restarts and reads of the past fold only the records
    /// after the nearest snapshot.
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Most commands in one group commit (default 512). 1 means one
    /// flush and fdatasync per command, with no grouping: the benchmark's
    /// baseline, not a setting for operations.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_batch: Option<u64>,
    /// Address of the HTTP side (situation board, GeoJSON, /metrics;
    /// loopback only), or `off` (default 127.0.0.1:8080).
    #[arg(long)]
    http: Option<String>,
    /// The server's TLS certificate chain (PEM); with --tls-key, serves
    /// TLS only. Overrides [tls] in the configuration file.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Requires every client to present a certificate signed by this
    /// authority (PEM), as well as a token.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    replicated: ReplicatedLog,
    #[command(subcommand)]
    command: Option<Tool>,
}

/// The replicated log's flags (the server's, and `check`'s).
#[derive(Debug, Clone, clap::Args)]
struct ReplicatedLog {
    /// The replicated log: NATS JetStream servers,
    /// `nats://HOST:PORT[,HOST:PORT...]`, instead of the embedded log (the
    /// data directory then holds this replica's copy). Overrides [log].
    #[arg(long, requires = "stream")]
    log: Option<String>,
    /// The JetStream stream on --log (one per jurisdiction).
    #[arg(long, requires = "log")]
    stream: Option<String>,
    /// A NATS credentials file for --log.
    #[arg(long, requires = "log")]
    nats_credentials: Option<PathBuf>,
    /// The authority that signed the NATS servers' certificates (PEM):
    /// --log then uses TLS only.
    #[arg(long, requires = "log")]
    nats_ca: Option<PathBuf>,
    /// How many NATS servers hold the stream when this server creates it (default 3).
    #[arg(long, requires = "log")]
    stream_replicas: Option<usize>,
}

impl ReplicatedLog {
    /// The flags over the file's `[log]`.
    fn over(self, file: Option<&server::LogConfig>) -> Option<server::LogConfig> {
        match (self.log, self.stream) {
            (Some(url), Some(stream)) => Some(server::LogConfig {
                url,
                stream,
                credentials: self.nats_credentials.or(file.and_then(|log| log.credentials.clone())),
                ca: self.nats_ca.or(file.and_then(|log| log.ca.clone())),
                replicas: self.stream_replicas.or(file.and_then(|log| log.replicas)),
            }),
            _ => file.cloned(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Tool {
    /// Restores the state in --data-dir (the server must be stopped) from
    /// its latest snapshot and the log after it, and prints its last
    /// sequence and state digest.
    Check {
        /// Restore only up to this sequence.
        #[arg(long)]
        upto: Option<u64>,
        /// Fold the whole log from the start instead, and check every
        /// snapshot on the way against it (exit status 1 if one differs or cannot be read).
        #[arg(long)]
        full: bool,
        /// Checks a replicated log instead: folds the stream from its
        /// first message (into a throwaway copy) and checks the invariants.
        #[command(flatten)]
        replicated: ReplicatedLog,
    },
    /// Drills in-process, with no server: run a script, replay a run.
    #[command(subcommand)]
    Drill(DrillTool),
}

#[derive(Debug, Subcommand)]
enum DrillTool {
    /// Runs a drill script and prints its report. Exit status: 0 when every
    /// expectation passed, 1 when one failed, 2 when the script is broken.
    Run {
        /// The script (TOML).
        file: PathBuf,
        /// Overrides the script's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Overrides the script's pace (virtual seconds per real second; 0: as fast as possible).
        #[arg(long)]
        pace: Option<f64>,
        /// Prints the report as JSON.
        #[arg(long)]
        json: bool,
        /// Writes the run's log (JSON Lines) here, for `drill replay`.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Replays a recorded run: folds its log, runs the script again with its
    /// seed and compares. Exit status: 0 when they match, 1 when they differ
    /// (the first record that differs is named), 2 when a file is broken.
    Replay {
        /// The script the run came from.
        file: PathBuf,
        /// The run's log, written by `drill run --log`.
        #[arg(long)]
        log: PathBuf,
        /// Prints the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let log_format = match (args.log_format, file.log_format.as_deref()) {
        (Some(format), _) => format,
        (None, Some("json")) => LogFormat::Json,
        (None, Some("text") | None) => LogFormat::Text,
        (None, Some(other)) => anyhow::bail!("log_format: {other:?} is not text or json"),
    };
    let quiet = matches!(args.command, Some(Tool::Drill(_) | Tool::Check { .. }));
    init_logging(log_format, if quiet { "warn" } else { "info" });
    // `check --data-dir DIR` checks that directory, whatever [log] says.
    let data_dir_given = args.data_dir.is_some();
    let data_dir = args.data_dir.or(file.data_dir.clone()).unwrap_or_else(|| PathBuf::from(server::DEFAULT_DATA_DIR));
    let log = args.replicated.clone().over(file.log.as_ref());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    match args.command {
        Some(Tool::Check { upto, full, replicated }) => match replicated.over(log.as_ref().filter(|_| !data_dir_given))
        {
            None => check(&data_dir, upto, full),
            Some(log) => check_stream(&log, upto),
        },
        Some(Tool::Drill(tool)) => {
            let code = runtime.block_on(drill(tool, file.dispatch))?;
            std::process::exit(code);
        }
        None => {
            let listen = match (args.listen, file.listen) {
                (Some(listen), _) | (None, Some(listen)) => listen,
                (None, None) => server::DEFAULT_LISTEN.parse().context("default address")?,
            };
            let engine = EngineConfig {
                dispatch: file.dispatch,
                snapshot_every: args.snapshot_every.unwrap_or(muster_server::engine::DEFAULT_SNAPSHOT_EVERY),
                ..EngineConfig::default()
            };
            let engine = match args.max_batch {
                Some(max_batch) => EngineConfig { max_batch: max_batch as usize, ..engine },
                None => engine,
            };
            let tls = match (args.tls_cert, args.tls_key) {
                (Some(cert), Some(key)) => {
                    // A new certificate on the command line keeps the file's client authority.
                    let client_ca = args.tls_client_ca.or(file.tls.as_ref().and_then(|tls| tls.client_ca.clone()));
                    Some(server::TlsConfig { cert, key, client_ca })
                }
                _ => file.tls,
            };
            let http =
                match args.http.as_deref().or(file.http.as_deref()) {
                    Some("off") => None,
                    Some(address) => Some(address.parse::<std::net::SocketAddr>().with_context(|| {
                        format!("--http: {address:?} is neither an address (127.0.0.1:8080) nor off")
                    })?),
                    None => Some(muster_server::http::DEFAULT_HTTP_LISTEN.parse().context("default HTTP address")?),
                };
            let config = ServerConfig { data_dir, tokens: file.tokens, tls, engine, log };
            runtime.block_on(async move {
                let shutdown = shutdown_signal()?;
                let listener =
                    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
                let http =
                    match http {
                        Some(address) => Some(tokio::net::TcpListener::bind(address).await.with_context(|| {
                            format!("binding the HTTP side to {address} (--http off to go without)")
                        })?),
                        None => None,
                    };
                server::serve_with_http(config, listener, http, Arc::new(SystemClock), shutdown).await
            })
        }
    }
}

/// `musterd check --log ... --stream ...`: folds the whole stream from its
/// first message into a throwaway local copy (never from a snapshot: this
/// checks the log itself) and checks the product's invariants on the result.
fn check_stream(log: &server::LogConfig, upto: Option<u64>) -> anyhow::Result<()> {
    let config = log.jetstream()?;
    let dir = std::env::temp_dir().join(format!("muster-check-{}-{}", config.stream, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let checked = (|| {
        let store = muster_server::store::JetStreamStore::open_from_start(&dir, &config)
            .with_context(|| format!("reading stream {}", config.stream))?;
        let state =
            muster_server::engine::replay(&store, upto.unwrap_or(u64::MAX), None).context("replaying the stream")?;
        println!("from the start of stream {}", config.stream);
        Ok::<_, anyhow::Error>(holds(&state))
    })();
    // The copy goes, whatever the verdict (it is the whole stream).
    let _ = std::fs::remove_dir_all(&dir);
    if !checked? {
        std::process::exit(1);
    }
    Ok(())
}

/// [`holds`], exiting with status 1 when an invariant is broken.
fn report(state: &muster_server::domain::State) -> anyhow::Result<()> {
    if !holds(state) {
        std::process::exit(1);
    }
    Ok(())
}

/// Prints a restored state's sequence and digest, and whether the
/// product's invariants hold in it; true when they do.
fn holds(state: &muster_server::domain::State) -> bool {
    println!("sequence {}", state.last_sequence);
    println!("digest {}", state.digest());
    match muster_server::domain::invariants::check(state) {
        Ok(()) => {
            println!("invariants hold");
            true
        }
        Err(broken) => {
            println!("invariant broken: {broken}");
            false
        }
    }
}

fn check(data_dir: &std::path::Path, upto: Option<u64>, full: bool) -> anyhow::Result<()> {
    use muster_server::store::Store as _;
    let store = SledStore::open(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let up_to = upto.unwrap_or(u64::MAX);
    if let Some(first) = store.joined_at()? {
        // A replica's copy that joined from a snapshot holds the records
        // after it only: it is checked from that snapshot (the stream, with
        // --log, is checked from its first message).
        if full {
            anyhow::bail!(
                "{} is a replica's copy that starts at record {first}: check the stream from its start with --log and --stream",
                data_dir.display()
            );
        }
        let joined = store.snapshot(first - 1)?.context("the snapshot the copy joined from is missing")?;
        println!("a replica's copy, from the snapshot it joined from ({})", first - 1);
        return report(&fold(&store, joined, up_to, None).context("replaying the log")?);
    }
    if !full {
        let (state, snapshot) = restore(&store, up_to, None).context("restoring the state")?;
        match snapshot {
            Some(sequence) => println!("from snapshot {sequence}"),
            None => println!("from the start (no snapshot)"),
        }
        return report(&state);
    }
    // The whole log, stopping at each snapshot to compare it with the fold.
    let mut state = muster_server::domain::State::default();
    let mut differ = 0;
    let marks = store.snapshot_marks().context("reading the snapshot marks")?;
    for mark in marks.iter().filter(|mark| mark.sequence <= up_to) {
        state = fold(&store, state, mark.sequence, None).context("replaying the log")?;
        // A damaged snapshot is a finding, not the end of the check: the
        // server steps over it too, to an older one or the log.
        let verdict = match store.snapshot(mark.sequence) {
            Ok(Some(snapshot)) if snapshot.digest() == state.digest() => "matches the log".to_owned(),
            Ok(Some(_)) => {
                differ += 1;
                "DIFFERS from the log".to_owned()
            }
            Ok(None) => "is missing".to_owned(),
            Err(error) => {
                differ += 1;
                format!("is unreadable ({error}); the server uses an older one or the log")
            }
        };
        println!("snapshot {} {verdict}", mark.sequence);
    }
    state = fold(&store, state, up_to, None).context("replaying the log")?;
    if differ > 0 {
        println!("sequence {}", state.last_sequence);
        println!("digest {}", state.digest());
        eprintln!("musterd: {differ} snapshot(s) differ from the log they summarise or cannot be read");
        std::process::exit(1);
    }
    report(&state)
}

/// Reads a drill script and the fixture it names (relative to the script).
fn load_script(file: &std::path::Path) -> Result<muster_server::drill::Script, String> {
    let text = std::fs::read_to_string(file).map_err(|error| format!("{}: {error}", file.display()))?;
    let folder = file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let read_fixture = |path: &str| {
        let full = folder.join(path);
        // Named as the script names it, wherever the script is run from: the
        // name reaches the log (ledger notes name file:line), so it must not
        // depend on the working directory.
        std::fs::read_to_string(&full)
            .map(|text| (path.to_owned(), text))
            .map_err(|error| format!("cannot read fixture {}: {error}", full.display()))
    };
    // The file's own name, as the CLI sends it: inline [[stock]] entries put
    // it in ledger notes, so it must not depend on the directory either.
    let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    muster_server::drill::script::parse(&name, &text, &read_fixture).map_err(|error| error.to_string())
}

/// Says why a drill did not run; the exit status: 2 for a broken script,
/// 3 when the run itself failed.
fn drill_failure(error: &muster_server::drill::DrillError) -> i32 {
    eprintln!("musterd: {error}");
    match error {
        muster_server::drill::DrillError::Script(_) => 2,
        muster_server::drill::DrillError::Engine(_) => 3,
    }
}

/// `musterd drill ...`: returns the exit status.
async fn drill(tool: DrillTool, dispatch: muster_server::domain::travel::Settings) -> anyhow::Result<i32> {
    use muster_server::drill::{self, replay, report, RunOptions};
    // Exit statuses: 0 passed / matches, 1 an expectation failed / differs,
    // 2 a broken script or file, 3 the run itself could not complete.
    match tool {
        DrillTool::Run { file, seed, pace, json, log } => {
            let script = match load_script(&file) {
                Ok(script) => script,
                Err(error) => {
                    eprintln!("musterd: {error}");
                    return Ok(2);
                }
            };
            let options = RunOptions { seed, pace, live_world: None, dispatch };
            let (run, report) = match drill::run_and_report(&script, &options, &|_| {}).await {
                Ok(done) => done,
                Err(error) => return Ok(drill_failure(&error)),
            };
            if let Some(path) = log {
                let header = replay::LogHeader {
                    drill: report.name.clone(),
                    seed: run.seed,
                    digest: report.digest.clone(),
                    events: report.events,
                    dispatch,
                };
                std::fs::write(&path, replay::write_log(&header, &run.records)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report::render_text(&report));
            }
            Ok(if report.passed() { 0 } else { 1 })
        }
        DrillTool::Replay { file, log, json } => {
            let script = match load_script(&file) {
                Ok(script) => script,
                Err(error) => {
                    eprintln!("musterd: {error}");
                    return Ok(2);
                }
            };
            let text = match std::fs::read_to_string(&log) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("musterd: {}: {error}", log.display());
                    return Ok(2);
                }
            };
            let (header, records) = match replay::read_log(&text) {
                Ok(read) => read,
                Err(error) => {
                    eprintln!("musterd: {}: {error}", log.display());
                    return Ok(2);
                }
            };
            // The settings it ran with, not today's configuration.
            let options =
                RunOptions { seed: Some(header.seed), pace: Some(0.0), live_world: None, dispatch: header.dispatch };
            let outcome = match replay::replay(&script, &records, &header.digest, &options).await {
                Ok(outcome) => outcome,
                Err(error) => return Ok(drill_failure(&error)),
            };
            if json {
                let value = serde_json::json!({
                    "drill": header.drill,
                    "seed": header.seed,
                    "recorded_digest": header.digest,
                    "replayed_digest": outcome.digest,
                    "replay_matches": outcome.matches,
                    "divergence": outcome.divergence,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else if outcome.matches {
                println!("replay matches: {} records, digest {}", records.len(), outcome.digest);
            } else {
                println!("replay DIFFERS: {}", outcome.divergence);
                println!("recorded digest {}, the recorded log folds to {}", header.digest, outcome.digest);
            }
            Ok(if outcome.matches { 0 } else { 1 })
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives as
/// soon as the server says it is serving must still shut it down cleanly.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
