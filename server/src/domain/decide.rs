//! `decide`: validates a command against the state and returns its events.
//! Pure: the same state, command and context always give the same answer.

use super::command::{Command, Context};
use super::error::DomainResult;
use super::event::Event;
use super::state::State;
use super::team;

/// Validates `command` against `state` and returns the events it causes, or
/// why it is refused. An empty list means the command changes nothing.
pub fn decide(state: &State, command: &Command, context: &Context) -> DomainResult<Vec<Event>> {
    let _ = context;
    match command {
        Command::RegisterTeam {
            id,
            profile,
            status,
            position,
        } => team::register(state, id, profile.clone(), *status, *position),
        Command::UpdateTeam {
            id,
            profile,
            expected_version,
        } => team::update(state, id, profile.clone(), *expected_version),
        Command::ReportStatus {
            team_id,
            status,
            position,
        } => team::report_status(state, team_id, *status, *position),
    }
}
