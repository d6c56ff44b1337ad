//! The engine's own timers: time-driven behaviour as commands. Given the
//! state and the settings, [`next`] says which command is due next and
//! when; the engine's writer submits it (actor `system`) once its clock
//! passes that time, and it is logged like any other command. A replay
//! therefore never runs a timer, and a drill fires them on its virtual clock.

use super::assignment::{acknowledgement_due, assignment_id};
use super::command::Command;
use super::state::State;
use super::types::Timestamp;

/// The actor recorded for the commands timers submit.
pub const SYSTEM_ACTOR: &str = "system";

/// What a timer will do, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Timer {
    /// When the command is due.
    pub due: Timestamp,
    /// The command to submit then.
    pub command: Command,
}

/// What the timers need to know besides the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerSettings {
    /// A team assignment still `DISPATCHED` this long after it was made is
    /// cancelled (0: never).
    pub ack_timeout_seconds: u64,
}

/// The next time-driven command, if any: the earliest deadline among the
/// timers, ties broken by the lower assignment number.
pub fn next(state: &State, settings: &TimerSettings) -> Option<Timer> {
    // Team assignments are numbered in the order they were made, and the
    // log's time never goes back, so the lowest number waiting is the one
    // whose deadline comes first.
    let number = *state.awaiting_acknowledgement.iter().next()?;
    let assignment = state.assignments.get(&number)?;
    let due = acknowledgement_due(assignment, settings.ack_timeout_seconds)?;
    Some(Timer { due, command: Command::AcknowledgementTimeout { assignment_id: assignment_id(number) } })
}
