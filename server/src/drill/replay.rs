//! Replaying a drill: the recorded log is folded again and its digest
//! compared with the recorded one, and the script is run again with the
//! recorded seed and its log compared record by record with the recorded
//! log. Same script, seed and build give the same log; when they do not,
//! the replay names the first record that differs, with both versions.

use serde::{Deserialize, Serialize};

use super::run::{self, DrillError, RunOptions};
use super::script::Script;
use crate::domain::{LogRecord, State};

/// What a replay found.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    /// The digest of the recorded log's fold.
    pub digest: String,
    /// True when the fold gives the recorded digest and the run gives the
    /// recorded log.
    pub matches: bool,
    /// The first difference, in words (empty when it matches).
    pub divergence: String,
}

/// The first line of a run's log file: what the records are of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogHeader {
    /// The drill's name.
    pub drill: String,
    /// The seed it ran with.
    pub seed: u64,
    /// The final state's digest.
    pub digest: String,
    /// How many records follow.
    pub events: u64,
    /// The `[dispatch]` settings it ran with; a replay uses them.
    pub dispatch: crate::domain::travel::Settings,
}

/// Folds `records` into a fresh state, refusing gaps.
pub fn fold(records: &[LogRecord]) -> Result<State, String> {
    let mut state = State::default();
    for record in records {
        if record.sequence != state.last_sequence + 1 {
            return Err(format!("the log skips from sequence {} to {}", state.last_sequence, record.sequence));
        }
        state.apply(record);
    }
    Ok(state)
}

fn describe(record: &LogRecord) -> String {
    format!("{} by {} at {}: {}", record.event.kind(), record.actor, record.time, record.event.summary())
}

/// The first record where `recorded` and `rerun` differ, in words.
pub fn first_difference(recorded: &[LogRecord], rerun: &[LogRecord]) -> Option<String> {
    let index = recorded.iter().zip(rerun).position(|(left, right)| left != right);
    match index {
        Some(index) => {
            let (left, right) = (&recorded[index], &rerun[index]);
            let detail = if left.event.kind() == right.event.kind() && left.event.summary() == right.event.summary() {
                format!(" (they differ in a field the summary does not show: recorded {left:?}, run {right:?})")
            } else {
                String::new()
            };
            Some(format!(
                "sequence {}: the recorded log has {} where the run gives {}{detail}",
                left.sequence,
                describe(left),
                describe(right)
            ))
        }
        None if recorded.len() > rerun.len() => Some(format!(
            "sequence {}: the recorded log goes on with {} where the run has ended",
            recorded[rerun.len()].sequence,
            describe(&recorded[rerun.len()])
        )),
        None if rerun.len() > recorded.len() => Some(format!(
            "sequence {}: the recorded log ends where the run goes on with {}",
            rerun[recorded.len()].sequence,
            describe(&rerun[recorded.len()])
        )),
        None => None,
    }
}

/// Replays a recorded run of `script`.
pub async fn replay(
    script: &Script,
    recorded: &[LogRecord],
    recorded_digest: &str,
    options: &RunOptions,
) -> Result<Replay, DrillError> {
    let folded = fold(recorded).map_err(DrillError::Engine);
    let digest = match &folded {
        Ok(state) => state.digest(),
        Err(_) => String::new(),
    };
    let rerun = run::run(script, options, &|_| {}).await?;
    let mut divergence = first_difference(recorded, &rerun.records).unwrap_or_default();
    if let Err(error) = folded {
        divergence = format!("the recorded log does not fold: {error}; {divergence}");
    } else if divergence.is_empty() && digest != recorded_digest {
        divergence = format!("the recorded digest {recorded_digest} differs from its log's fold {digest}");
    }
    Ok(Replay { matches: divergence.is_empty(), digest, divergence })
}

/// Writes a run's log as JSON Lines: a [`LogHeader`], then one record a line.
pub fn write_log(header: &LogHeader, records: &[LogRecord]) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string(header)?;
    text.push('\n');
    for record in records {
        text.push_str(&serde_json::to_string(record)?);
        text.push('\n');
    }
    Ok(text)
}

/// Reads a log written by [`write_log`]; errors name the line.
pub fn read_log(text: &str) -> Result<(LogHeader, Vec<LogRecord>), String> {
    let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    let (_, first) = lines.next().ok_or("the log file is empty")?;
    let header: LogHeader =
        serde_json::from_str(first).map_err(|error| format!("line 1: not a drill log header: {error}"))?;
    let mut records = Vec::new();
    for (index, line) in lines {
        let record = serde_json::from_str(line).map_err(|error| format!("line {}: {error}", index + 1))?;
        records.push(record);
    }
    Ok((header, records))
}
