//! `musterd`: the Muster server. Glue only: flags, logging, signals.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use muster_server::engine::{replay, EngineConfig, SystemClock};
use muster_server::server::{self, FileConfig, ServerConfig};
use muster_server::store::SledStore;

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
    #[command(subcommand)]
    command: Option<Tool>,
}

#[derive(Debug, Subcommand)]
enum Tool {
    /// Replays the log in --data-dir (the server must be stopped) and prints
    /// its last sequence and state digest.
    Check {
        /// Replay only up to this sequence.
        #[arg(long)]
        upto: Option<u64>,
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
    init_logging(log_format);
    let data_dir = args.data_dir.or(file.data_dir.clone()).unwrap_or_else(|| PathBuf::from(server::DEFAULT_DATA_DIR));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    match args.command {
        Some(Tool::Check { upto }) => check(&data_dir, upto),
        None => {
            let listen = match (args.listen, file.listen) {
                (Some(listen), _) | (None, Some(listen)) => listen,
                (None, None) => server::DEFAULT_LISTEN.parse().context("default address")?,
            };
            let engine = EngineConfig { dispatch: file.dispatch, ..EngineConfig::default() };
            let config = ServerConfig { data_dir, tokens: file.tokens, engine };
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
                server::serve(config, listener, Arc::new(SystemClock), shutdown_signal()).await
            })
        }
    }
}

fn check(data_dir: &std::path::Path, upto: Option<u64>) -> anyhow::Result<()> {
    let store = SledStore::open(data_dir).with_context(|| format!("opening {}", data_dir.display()))?;
    let state = replay(&store, upto.unwrap_or(u64::MAX), None).context("replaying the log")?;
    println!("sequence {}", state.last_sequence);
    println!("digest {}", state.digest());
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
