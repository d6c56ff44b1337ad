//! The engine's own timers: time-driven behaviour as commands. Given the
//! state and the settings, [`next`] says which command is due next, when,
//! and for whom; the engine's writer submits it once its clock passes that
//! time, and it is logged like any other command. A replay therefore never
//! runs a timer, and a drill fires them on its virtual clock.
//!
//! Two kinds exist: the acknowledgement timeout of live operations (actor
//! `system`), and, in drills only, simulated teams (actor `simulation`):
//! they acknowledge (or decline) after a delay drawn from the drill's seed,
//! set out, reach the scene at their ETA, are released after a while,
//! return home at their speed and report available again. Supply convoys
//! leave on dispatch and arrive at their ETA.

use std::collections::{BTreeMap, BTreeSet};

use super::assignment::{acknowledgement_due, assignment_id, AssignedResource, Assignment, AssignmentStatus};
use super::command::Command;
use super::state::State;
use super::team::TeamStatus;
use super::types::Timestamp;

/// The actor recorded for the commands of the live timers.
pub const SYSTEM_ACTOR: &str = "system";
/// The actor recorded for what simulated teams do in a drill.
pub const SIMULATION_ACTOR: &str = "simulation";

/// What a timer will do, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Timer {
    /// When the command is due.
    pub due: Timestamp,
    /// The command to submit then.
    pub command: Command,
    /// Who it is recorded as.
    pub actor: &'static str,
}

/// What the timers need to know besides the state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimerSettings {
    /// A team assignment still `DISPATCHED` this long after it was made is
    /// cancelled (0: never).
    pub ack_timeout_seconds: u64,
    /// Simulated teams and convoys (drills only).
    pub simulation: Option<Simulation>,
}

/// How a drill's simulated teams behave (`drills.md`, `[simulation]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Simulation {
    /// Every random choice comes from it.
    pub seed: u64,
    /// A team acknowledges this long after dispatch.
    pub ack_after_seconds: i64,
    /// Plus up to this much, drawn from the seed per assignment.
    pub ack_spread_seconds: i64,
    /// The share of dispatches a team declines, drawn from the seed.
    pub decline_rate: f64,
    /// A team on scene is released after this long (`None`: when the
    /// incident closes).
    pub on_scene_for_seconds: Option<i64>,
    /// Teams whose app stopped answering: they never acknowledge.
    pub silent_teams: BTreeSet<String>,
    /// Travel model for the way home.
    pub travel: crate::domain::travel::Settings,
}

/// The next time-driven command, if any: the earliest deadline, ties broken
/// by kind (the live timeout first) and then by assignment number or team.
pub fn next(state: &State, settings: &TimerSettings) -> Option<Timer> {
    let timeout = acknowledgement_timeout(state, settings.ack_timeout_seconds);
    let simulated = settings.simulation.as_ref().and_then(|simulation| simulation_next(state, simulation));
    match (timeout, simulated) {
        (Some(timeout), Some(simulated)) if simulated.due < timeout.due => Some(simulated),
        (Some(timeout), _) => Some(timeout),
        (None, simulated) => simulated,
    }
}

fn acknowledgement_timeout(state: &State, timeout_seconds: u64) -> Option<Timer> {
    // Team assignments are numbered in the order they were made, and the
    // log's time never goes back, so the lowest number waiting is the one
    // whose deadline comes first.
    let number = *state.awaiting_acknowledgement.iter().next()?;
    let assignment = state.assignments.get(&number)?;
    let due = acknowledgement_due(assignment, timeout_seconds)?;
    Some(Timer {
        due,
        command: Command::AcknowledgementTimeout { assignment_id: assignment_id(number) },
        actor: SYSTEM_ACTOR,
    })
}

/// A number in `0..1` drawn from the seed for one purpose and one
/// assignment. Hand-written (splitmix64) rather than a `rand` generator so
/// that a drill's draws depend only on the seed and the assignment, not on
/// how many draws came before or on a crate's version.
fn draw(seed: u64, purpose: u64, number: u64) -> f64 {
    let mut value = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ number.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^= value >> 31;
    (value >> 11) as f64 / (1u64 << 53) as f64
}

const DRAW_SPREAD: u64 = 1;
const DRAW_DECLINE: u64 = 2;

/// A duration in minutes as whole seconds, bounded (as `travel::Leg::seconds`).
fn seconds_of_minutes(value: f64) -> i64 {
    (value * 60.0).round().clamp(0.0, 1e9) as i64
}

fn step(assignment: &Assignment, to: AssignmentStatus, due: Timestamp, note: String) -> (Timestamp, u64, Command) {
    let command = Command::UpdateAssignment { assignment_id: assignment.id(), status: to, returned_quantity: 0, note };
    (due, assignment.number, command)
}

/// What a simulated team or convoy does next with `assignment`, if anything.
fn simulated_step(
    state: &State,
    assignment: &Assignment,
    simulation: &Simulation,
) -> Option<(Timestamp, u64, Command)> {
    let since = assignment.updated_at;
    let travel = seconds_of_minutes(assignment.eta_minutes);
    match (&assignment.resource, assignment.status) {
        (AssignedResource::Team { team_id }, AssignmentStatus::Dispatched) => {
            if simulation.silent_teams.contains(team_id) {
                return None;
            }
            let spread = simulation.ack_spread_seconds.max(0);
            let extra = (draw(simulation.seed, DRAW_SPREAD, assignment.number) * (spread + 1) as f64) as i64;
            let due = assignment.created_at.plus_seconds(simulation.ack_after_seconds.max(0) + extra.min(spread));
            if draw(simulation.seed, DRAW_DECLINE, assignment.number) < simulation.decline_rate {
                return Some(step(assignment, AssignmentStatus::Declined, due, "simulated: the team declines".into()));
            }
            Some(step(assignment, AssignmentStatus::Acknowledged, due, "simulated: the team acknowledges".into()))
        }
        (AssignedResource::Team { .. }, AssignmentStatus::Acknowledged) => {
            Some(step(assignment, AssignmentStatus::EnRoute, since, "simulated: the team sets out".into()))
        }
        (AssignedResource::Supply { .. }, AssignmentStatus::Dispatched | AssignmentStatus::Acknowledged) => {
            Some(step(assignment, AssignmentStatus::EnRoute, since, "simulated: the convoy leaves".into()))
        }
        (_, AssignmentStatus::EnRoute) => Some(step(
            assignment,
            AssignmentStatus::OnScene,
            since.plus_seconds(travel),
            format!("simulated: arrives after {:.0} min", assignment.eta_minutes),
        )),
        (AssignedResource::Team { .. }, AssignmentStatus::OnScene) => {
            let stay = simulation.on_scene_for_seconds?;
            let incident = state.incidents.get(&assignment.incident_id)?;
            if incident.status == super::incident::IncidentStatus::Closed {
                return None;
            }
            Some(step(
                assignment,
                AssignmentStatus::Released,
                since.plus_seconds(stay.max(0)),
                format!("simulated: released after {:.0} min on scene", stay as f64 / 60.0),
            ))
        }
        _ => None,
    }
}

/// The earliest thing a simulated team or convoy does, if any.
fn simulation_next(state: &State, simulation: &Simulation) -> Option<Timer> {
    // Ordered by (due, phase, number, team): at one instant a team on scene
    // reports its position (phase 0) before its assignment moves on (phase
    // 1), and teams come home (phase 2) last.
    let mut best: Option<((Timestamp, u8, u64, String), Command)> = None;
    let mut offer = |due: Timestamp, phase: u8, number: u64, team: String, command: Command| {
        let key = (due, phase, number, team);
        if best.as_ref().is_none_or(|(best_key, _)| key < *best_key) {
            best = Some((key, command));
        }
    };
    // The last assignment each team finished, for the way home.
    let mut finished: BTreeMap<&str, &Assignment> = BTreeMap::new();
    for assignment in state.assignments.values() {
        if assignment.status.is_active() {
            if let Some((due, number, command)) = simulated_step(state, assignment, simulation) {
                offer(due, 1, number, String::new(), command);
            }
        } else if let Some(team_id) = assignment.team_id() {
            finished.insert(team_id, assignment);
        }
    }
    for team in state.teams.values() {
        match team.status {
            TeamStatus::OnScene => {
                // Once on scene, the team's app reports it there.
                let Some(assignment) = team.assignment_id.as_deref().and_then(|id| state.assignment(id).ok()) else {
                    continue;
                };
                let Some(incident) = state.incidents.get(&assignment.incident_id) else { continue };
                if team.position != incident.position {
                    let command = Command::ReportStatus {
                        team_id: team.id.clone(),
                        status: None,
                        position: Some(incident.position),
                    };
                    offer(assignment.updated_at, 0, assignment.number, team.id.clone(), command);
                }
            }
            TeamStatus::Returning => {
                let Some(last) = finished.get(team.id.as_str()) else { continue };
                let leg = crate::domain::travel::leg(
                    &simulation.travel,
                    &crate::domain::travel::Zones::default(),
                    team.position,
                    team.profile.home,
                    team.profile.speed_kmh,
                );
                let command = Command::ReportStatus {
                    team_id: team.id.clone(),
                    status: Some(TeamStatus::Available),
                    position: Some(team.profile.home),
                };
                offer(last.updated_at.plus_seconds(leg.seconds()), 2, last.number, team.id.clone(), command);
            }
            _ => {}
        }
    }
    best.map(|((due, ..), command)| Timer { due, command, actor: SIMULATION_ACTOR })
}
