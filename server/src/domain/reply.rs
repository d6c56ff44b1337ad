//! Replies: what a successful command answers, built from the state right
//! after its events were applied. The engine keeps the reply of every
//! command that carried a `request_id`, so a retry gets the first answer.

use serde::{Deserialize, Serialize};

use super::command::Command;
use super::error::DomainResult;
use super::state::State;
use super::team::Team;

/// The answer to a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A team as it stands after the command.
    Team(Team),
}

impl Reply {
    /// Builds the reply to `command` from the state after its events.
    pub fn build(command: &Command, state: &State) -> DomainResult<Reply> {
        match command {
            Command::RegisterTeam { id, .. } | Command::UpdateTeam { id, .. } => {
                Ok(Reply::Team(state.team(id)?.clone()))
            }
            Command::ReportStatus { team_id, .. } => Ok(Reply::Team(state.team(team_id)?.clone())),
        }
    }
}
