//! Drills: scripted exercises through the very engine and dispatcher of live
//! operations, on a virtual clock, isolated from live data, replayable to
//! the same digest.
//!
//! `script` parses the drill format (`docs/drills.md`); `run` drives a fresh
//! engine of the drill's own (in-memory log, manual clock jumping from one
//! due time to the next: injects and the engine's timers, simulated teams
//! among them); `report` turns the run's log into the timeline, fill and
//! arrival times, unmet needs, distance, reserve overrides and expectation
//! verdicts; `replay` checks a recorded run against its script and digest;
//! `export` writes a recorded real incident as a script.
//!
//! A drill never reads the live engine except for one snapshot of the world
//! when a script asks `from_live`, and never writes to it.

pub mod export;
pub mod replay;
pub mod report;
pub mod run;
pub mod script;

pub use report::Report;
pub use run::{DrillError, RunOptions};
pub use script::Script;

use serde::{Deserialize, Serialize};

/// A run as the server keeps it (in the store's drill namespace), with all
/// it takes to report on it again and to replay it after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The run's number (`R<number>`).
    pub number: u64,
    /// The script's file name, as the client gave it.
    pub script_name: String,
    /// The script's text.
    pub script: String,
    /// The files it names, as the client sent them.
    pub files: std::collections::BTreeMap<String, String>,
    /// The copy of the live world a `from_live` script started from.
    pub live_world: Option<crate::domain::import::Fixture>,
    /// The seed it ran with.
    pub seed: u64,
    /// The server's `[dispatch]` settings it ran with (a replay uses them,
    /// not today's).
    pub dispatch: crate::domain::travel::Settings,
    /// Its report.
    pub report: Report,
    /// Its whole log.
    pub records: Vec<crate::domain::LogRecord>,
}

/// What a listing shows of a stored run (kept apart from the run itself, so
/// a listing never reads whole logs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run's number.
    pub number: u64,
    /// The drill's name.
    pub name: String,
    /// The final digest.
    pub digest: String,
    /// Every expectation passed.
    pub passed: bool,
    /// The seed.
    pub seed: u64,
    /// Log records.
    pub events: u64,
}

impl RunSummary {
    /// Encodes for the store.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(self).map_err(|error| format!("encoding a drill run summary: {error}"))
    }

    /// Decodes what [`RunSummary::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<RunSummary, String> {
        postcard::from_bytes(bytes).map_err(|error| format!("decoding a drill run summary: {error}"))
    }
}

impl StoredRun {
    /// `R<number>`.
    pub fn id(&self) -> String {
        run_id(self.number)
    }

    /// What a listing shows of it.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            number: self.number,
            name: self.report.name.clone(),
            digest: self.report.digest.clone(),
            passed: self.report.passed(),
            seed: self.seed,
            events: self.report.events,
        }
    }

    /// Encodes for the store.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(self).map_err(|error| format!("encoding drill run {}: {error}", self.id()))
    }

    /// Decodes what [`StoredRun::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<StoredRun, String> {
        postcard::from_bytes(bytes).map_err(|error| format!("decoding a stored drill run: {error}"))
    }

    /// Parses the stored script again, with the stored files.
    pub fn script(&self) -> Result<Script, crate::domain::DomainError> {
        parse_with_files(&self.script_name, &self.script, &self.files)
    }
}

/// `R<number>`.
pub fn run_id(number: u64) -> String {
    format!("R{number}")
}

/// The number of a run id, if it is one.
pub fn run_number(id: &str) -> Option<u64> {
    id.strip_prefix('R').filter(|digits| !digits.starts_with('0')).and_then(|digits| digits.parse().ok())
}

/// Parses a script whose fixtures come from `files` (by the name the script
/// gives them), as the server does for a client's script.
pub fn parse_with_files(
    name: &str,
    text: &str,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<Script, crate::domain::DomainError> {
    let read = |path: &str| {
        files
            .get(path)
            .map(|text| (path.to_owned(), text.clone()))
            .ok_or_else(|| format!("the fixture {path:?} was not sent with the script"))
    };
    script::parse(name, text, &read)
}

/// Runs `script` and reports on it.
pub async fn run_and_report(
    script: &Script,
    options: &RunOptions,
    progress: &(dyn Fn(run::Progress) + Send + Sync),
) -> Result<(run::Run, Report), DrillError> {
    let run = run::run(script, options, progress).await?;
    let report = report::build(script, &run);
    Ok((run, report))
}
