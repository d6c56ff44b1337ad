//! `muster`: the command center's CLI. Glue only: flags in, calls through
//! the client library, tables or JSON out, one clear line on error.

mod cli;

use clap::{Parser, Subcommand};
use muster_client::Client;

use cli::output::Output;

/// Muster's command-line client for the command center and for scripts.
#[derive(Debug, Parser)]
#[command(name = "muster", version, about)]
struct Args {
    /// Server URL.
    #[arg(long, global = true, env = "MUSTER_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token (when the server has tokens configured).
    #[arg(long, global = true, env = "MUSTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The authority that signed the server's certificate (PEM), for an
    /// https:// server (default: the system's trusted roots).
    #[arg(long, global = true, env = "MUSTER_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// A client certificate (PEM), for a server that requires one.
    #[arg(long, global = true, env = "MUSTER_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<std::path::PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, global = true, env = "MUSTER_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<std::path::PathBuf>,
    /// Print JSON (protobuf's canonical mapping) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Asks the server whether it is serving.
    Health,
    /// The team roster.
    #[command(subcommand)]
    Team(Box<cli::team::TeamCommand>),
    /// The item catalog.
    #[command(subcommand)]
    Item(cli::reserve::ItemCommand),
    /// Supply depots.
    #[command(subcommand)]
    Depot(cli::reserve::DepotCommand),
    /// Stock, minimums, transfers and the ledger.
    #[command(subcommand)]
    Stock(cli::reserve::StockCommand),
    /// Contingency plans.
    #[command(subcommand)]
    Plan(cli::plan::PlanCommand),
    /// Incidents and their needs.
    #[command(subcommand)]
    Incident(Box<cli::incident::IncidentCommand>),
    /// Assigns available teams and stock to open needs (optimal across incidents).
    Dispatch {
        /// Only this incident's needs (default: every open need).
        #[arg(long)]
        incident: Option<String>,
        /// Propose only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Level I and II needs that free teams cannot fill may take teams
        /// from jobs at least two levels less severe (not yet on scene).
        #[arg(long)]
        divert: bool,
    },
    /// Assignments: assign by hand, list, acknowledge, advance, release, cancel, decline, watch.
    #[command(subcommand)]
    Assignment(cli::assignment::AssignmentCommand),
    /// Impassable zones.
    #[command(subcommand)]
    Zone(cli::assignment::ZoneCommand),
    /// The event log: who did what, and when.
    Audit(cli::audit::AuditArgs),
    /// Drills: run a script on the server's drill engine, replay, report, list, export, compare.
    #[command(subcommand)]
    Drill(cli::drill::DrillCommand),
    /// Reports rendered by the server: `report incident ID --html FILE`.
    #[command(subcommand)]
    Report(cli::export::ReportCommand),
    /// Exports for other tools: `export geojson [--incident ID] [--out FILE]`.
    #[command(subcommand)]
    Export(cli::export::ExportCommand),
    /// Loads a fixture file (items, depots, stock, teams, plans) into the server, all or nothing.
    Import {
        /// The TOML file.
        file: std::path::PathBuf,
    },
    /// Load generator: starts its own servers on loopback (musterd, musterd
    /// with one fdatasync per write, a bare tonic echo) and prints
    /// throughput, latency quantiles and the ratios between them
    /// (`--server` is not used).
    Bench(cli::bench::BenchArgs),
    /// The bench's echo baseline (started by `muster bench`).
    #[command(hide = true)]
    BenchEcho(cli::bench::EchoArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let output = Output { json: args.json };
    match run(args, output).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("muster: {}", cli::describe_error(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    match args.command {
        Command::Bench(bench) => return cli::bench::run(bench).await,
        Command::BenchEcho(echo) => return cli::bench::serve_echo(echo).await,
        _ => {}
    }
    let identity = args.client_cert.as_deref().zip(args.client_key.as_deref());
    let tls = match (&args.ca_cert, identity) {
        (None, None) => None,
        (ca_cert, identity) => Some(muster_client::Tls::from_files(ca_cert.as_deref(), identity)?),
    };
    let client = Client::connect_with(&args.server, args.token.as_deref(), tls.as_ref()).await?;
    match args.command {
        Command::Health => cli::health(&client, output).await,
        Command::Team(command) => cli::team::run(&client, *command, output).await,
        Command::Item(command) => cli::reserve::item(&client, command, output).await,
        Command::Depot(command) => cli::reserve::depot(&client, command, output).await,
        Command::Stock(command) => cli::reserve::stock(&client, command, output).await,
        Command::Import { file } => cli::import(&client, &file, output).await,
        Command::Plan(command) => cli::plan::run(&client, command, output).await,
        Command::Incident(command) => cli::incident::run(&client, *command, output).await,
        Command::Audit(args) => cli::audit::run(&client, args, output).await,
        Command::Dispatch { incident, dry_run, divert } => {
            cli::assignment::dispatch(&client, incident, dry_run, divert, output).await
        }
        Command::Assignment(command) => cli::assignment::run(&client, command, output).await,
        Command::Zone(command) => cli::assignment::zone(&client, command, output).await,
        Command::Drill(command) => cli::drill::run(&client, command, output).await,
        Command::Report(command) => cli::export::report(&client, command).await,
        Command::Export(command) => cli::export::export(&client, command).await,
        Command::Bench(_) | Command::BenchEcho(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Args;

    /// Every command line the README shows parses (clap checks argument
    /// types only when a command is used, so each is tried).
    #[test]
    fn the_readme_command_lines_parse() {
        Args::command().debug_assert();
        // Continued lines (`\` at the end) join the next one.
        let readme = include_str!("../../README.md").replace("\\\n", " ");
        let mut checked = 0;
        for line in readme.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("muster ") else { continue };
            let command = rest.split(" #").next().unwrap_or_default().trim();
            if command.contains('$') {
                continue;
            }
            let words = shell_words(command);
            let parsed = Args::try_parse_from(std::iter::once("muster".to_owned()).chain(words));
            assert!(parsed.is_ok(), "README line does not parse: {line}: {:?}", parsed.err());
            checked += 1;
        }
        assert!(checked > 30, "only {checked} README command lines found");
    }

    /// Splits on spaces outside double quotes (enough for the README).
    fn shell_words(text: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        for character in text.chars() {
            match character {
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                    }
                }
                other => current.push(other),
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        words
    }
}
