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
