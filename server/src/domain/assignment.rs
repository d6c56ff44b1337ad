//! Assignments: one team, or one quantity of one item from one depot,
//! serving one need. Their lifecycle (`DISPATCHED -> ACKNOWLEDGED -> EN_ROUTE
//! -> ON_SCENE -> RELEASED`, or `CANCELLED`, or `DECLINED`) drives the
//! team's status, the need's `filled`, and the stock: reserved on dispatch,
//! issued through the ledger when the convoy leaves, unreserved when
//! cancelled before that.

use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::Event;
use super::incident::need_id;
use super::state::State;
use super::team::TeamStatus;
use super::types::{Level, Timestamp};
use super::validate;

/// Where an assignment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AssignmentStatus {
    /// Decided; the team or depot has been told.
    Dispatched,
    /// The team confirmed.
    Acknowledged,
    /// On the way (supplies: issued from the depot).
    EnRoute,
    /// Arrived.
    OnScene,
    /// Done; the team returns.
    Released,
    /// Withdrawn before arrival; that part of the need is open again.
    Cancelled,
    /// Refused by the team; it is not proposed again for this need.
    Declined,
}

impl AssignmentStatus {
    /// True while the assignment holds its team or stock.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Dispatched | Self::Acknowledged | Self::EnRoute | Self::OnScene)
    }

    /// The position in the forward sequence (terminal states are not in it).
    fn step(self) -> Option<u8> {
        match self {
            Self::Dispatched => Some(0),
            Self::Acknowledged => Some(1),
            Self::EnRoute => Some(2),
            Self::OnScene => Some(3),
            Self::Released => Some(4),
            Self::Cancelled | Self::Declined => None,
        }
    }

    /// The status name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispatched => "DISPATCHED",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::EnRoute => "EN_ROUTE",
            Self::OnScene => "ON_SCENE",
            Self::Released => "RELEASED",
            Self::Cancelled => "CANCELLED",
            Self::Declined => "DECLINED",
        }
    }
}

/// What is assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignedResource {
    /// A team.
    Team {
        /// The team.
        team_id: String,
    },
    /// Stock from a depot.
    Supply {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// Units.
        quantity: i64,
    },
}

/// One resource serving one need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Global number; the id is `A<number>`.
    pub number: u64,
    /// The incident.
    pub incident_id: String,
    /// The need served.
    pub need_number: u64,
    /// The team or the stock.
    pub resource: AssignedResource,
    /// Where it stands.
    pub status: AssignmentStatus,
    /// Road distance to the incident, in km.
    pub distance_km: f64,
    /// Travel time, in minutes.
    pub eta_minutes: f64,
    /// Why it was chosen, in words.
    pub reason: String,
    /// True when stock was taken below its depot's minimum (level I only).
    pub reserve_override: bool,
    /// Units taken below the minimum.
    pub override_quantity: i64,
    /// The incident's level when it was made.
    pub priority: Level,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Supplies: issued through the ledger already.
    pub issued: bool,
    /// Made by an operator (`AssignResource`), not by the dispatcher: the
    /// dispatcher never moves or diverts it.
    pub by_hand: bool,
    /// Supplies: units returned to the depot after they were issued.
    pub returned_quantity: i64,
    /// Why it last changed, when that was not the caller's plain request
    /// (diverted, not acknowledged in time, the team went out of service, a
    /// note given with the update).
    pub note: String,
}

impl Assignment {
    /// `A<number>`.
    pub fn id(&self) -> String {
        assignment_id(self.number)
    }

    /// How much of its need it fills: 1 team, or its units.
    pub fn amount(&self) -> i64 {
        match &self.resource {
            AssignedResource::Team { .. } => 1,
            AssignedResource::Supply { quantity, .. } => *quantity,
        }
    }

    /// The team, for team assignments.
    pub fn team_id(&self) -> Option<&str> {
        match &self.resource {
            AssignedResource::Team { team_id } => Some(team_id),
            AssignedResource::Supply { .. } => None,
        }
    }
}

/// `A<number>`.
pub fn assignment_id(number: u64) -> String {
    format!("A{number}")
}

/// The number of an assignment id, if it is one.
pub fn assignment_number(id: &str) -> Option<u64> {
    id.strip_prefix('A').filter(|digits| !digits.starts_with('0')).and_then(|digits| digits.parse().ok())
}

impl State {
    /// An assignment by id, or `NotFound`.
    pub fn assignment(&self, id: &str) -> DomainResult<&Assignment> {
        assignment_number(id)
            .and_then(|number| self.assignments.get(&number).map(|assignment| &**assignment))
            .ok_or_else(|| DomainError::not_found("assignment", id))
    }
}

/// The event that moves `assignment` to `to`, with its stock effect decided
/// here: `issue` when the move passes `EN_ROUTE` with stock not yet issued
/// (a skip forward counts); an incident's closing releases without issuing,
/// so what was only reserved is unreserved.
pub(crate) fn status_event(assignment: &Assignment, to: AssignmentStatus, note: &str, closing: bool) -> Event {
    let passes_en_route = to.step().is_some_and(|step| step >= 2);
    let issue = matches!(assignment.resource, AssignedResource::Supply { .. })
        && !assignment.issued
        && passes_en_route
        && !closing;
    Event::AssignmentStatusChanged {
        incident_id: assignment.incident_id.clone(),
        assignment_number: assignment.number,
        from: assignment.status,
        to,
        issue,
        note: note.to_owned(),
        resource: assignment.resource.clone(),
    }
}

/// `UpdateAssignment`: moves an assignment forward, cancels or declines it;
/// returns issued stock that comes back; keeps a de-escalated need at its
/// level's figure when a cancel or decline would reopen it above that.
pub(super) fn update(
    state: &State,
    id: &str,
    to: AssignmentStatus,
    returned_quantity: i64,
    note: &str,
) -> DomainResult<Vec<Event>> {
    validate::id("assignment_id", id)?;
    validate::text("note", note, false)?;
    let assignment = state.assignment(id)?;
    let from = assignment.status;
    let is_supply = matches!(assignment.resource, AssignedResource::Supply { .. });
    if returned_quantity != 0 {
        if !is_supply || to != AssignmentStatus::Released {
            return Err(DomainError::invalid(
                "returned_quantity",
                "is given only when a supply assignment is RELEASED (units that came back)",
            ));
        }
        let issued = if assignment.issued { assignment.amount() } else { 0 };
        let returnable = issued - assignment.returned_quantity;
        if !(0..=returnable).contains(&returned_quantity) {
            return Err(DomainError::invalid(
                "returned_quantity",
                format!("must be between 0 and {returnable}, the units issued for {id}"),
            ));
        }
    }
    if from == to {
        // Stock may come back after the release was recorded (say, once the
        // incident closed with the convoy still out).
        return Ok(if to == AssignmentStatus::Released {
            stock_return(assignment, returned_quantity, "came back after the release").into_iter().collect()
        } else {
            Vec::new()
        });
    }
    if !from.is_active() {
        return Err(DomainError::precondition(format!("assignment {id} is {} and cannot change", from.as_str())));
    }
    let allowed = match to {
        AssignmentStatus::Declined => {
            if assignment.team_id().is_none() {
                return Err(DomainError::precondition(format!("assignment {id} is stock; only a team can decline")));
            }
            from == AssignmentStatus::Dispatched
        }
        AssignmentStatus::Cancelled => from != AssignmentStatus::OnScene,
        AssignmentStatus::Released => from == AssignmentStatus::OnScene,
        _ => matches!((from.step(), to.step()), (Some(from), Some(to)) if to > from),
    };
    if !allowed {
        let rule = match to {
            AssignmentStatus::Declined => "a team may decline only a DISPATCHED assignment",
            AssignmentStatus::Cancelled => "an assignment on scene is released, not cancelled",
            AssignmentStatus::Released => {
                "only an assignment ON_SCENE is released; one that never arrived is CANCELLED, which reopens its need"
            }
            _ => "assignment steps may skip forward but never go back",
        };
        return Err(DomainError::precondition(format!(
            "assignment {id} cannot go from {} to {}: {rule}",
            from.as_str(),
            to.as_str()
        )));
    }
    let mut events = vec![status_event(assignment, to, note, false)];
    match to {
        AssignmentStatus::Cancelled if assignment.issued => {
            let quantity = assignment.amount() - assignment.returned_quantity;
            events.extend(stock_return(assignment, quantity, "cancelled after the stock left the depot"));
        }
        AssignmentStatus::Released if returned_quantity > 0 => {
            events.extend(stock_return(assignment, returned_quantity, "released; units came back"));
        }
        _ => {}
    }
    if matches!(to, AssignmentStatus::Cancelled | AssignmentStatus::Declined) {
        events.extend(hold_to_figure(state, assignment.need_number, assignment.amount()));
    }
    Ok(events)
}

/// The `StockReturned` event for `quantity` units of a supply assignment
/// (none for a team, or for nothing to return).
fn stock_return(assignment: &Assignment, quantity: i64, why: &str) -> Option<Event> {
    let AssignedResource::Supply { depot_id, item_code, .. } = &assignment.resource else { return None };
    (quantity > 0).then(|| Event::StockReturned {
        incident_id: assignment.incident_id.clone(),
        assignment_number: assignment.number,
        depot_id: depot_id.clone(),
        item_code: item_code.clone(),
        quantity,
        note: format!(
            "assignment {} for need {} of {}: {why}",
            assignment.id(),
            need_id(assignment.need_number),
            assignment.incident_id
        ),
    })
}

/// When `freed` teams or units of need `need_number` stop counting (a cancel
/// or a decline), a plan-derived need whose level was lowered below what was
/// assigned must not reopen above the level's figure: the need is lowered
/// (or cancelled) by what its key holds over the figure. `None` when the
/// need may simply reopen (a hand request, or a key at or under its figure).
pub(crate) fn hold_to_figure(state: &State, need_number: u64, freed: i64) -> Option<Event> {
    let need = state.needs.get(&need_number)?;
    if !need.from_plan || need.cancelled {
        return None;
    }
    let incident = state.incidents.get(&need.incident_id)?;
    let plan = state.incident_plan(incident)?;
    let figure = plan.figures(incident.level).get(&need.key).copied().unwrap_or(0);
    let total: i64 = state
        .needs_of(incident)
        .filter(|other| other.from_plan && !other.cancelled && other.key == need.key)
        .map(|other| other.amount)
        .sum();
    let filled_after = need.filled - freed;
    let cut = (need.amount - filled_after).min(total - figure);
    if cut <= 0 {
        return None;
    }
    let amount = need.amount - cut;
    Some(if amount == 0 {
        Event::NeedCancelled { incident_id: incident.id.clone(), need_number }
    } else {
        Event::NeedLowered { incident_id: incident.id.clone(), need_number, amount }
    })
}

/// Ends a team's active assignment because the team went out of service:
/// cancelled before arrival (that part of the need opens again, up to its
/// level's figure), released once on scene (a release after arrival does not
/// reopen the need).
pub(super) fn withdraw(state: &State, assignment_id: &str, team_id: &str) -> DomainResult<Vec<Event>> {
    let assignment = state.assignment(assignment_id)?;
    let note = format!("team {team_id} reported OUT_OF_SERVICE");
    if assignment.status == AssignmentStatus::OnScene {
        return Ok(vec![status_event(assignment, AssignmentStatus::Released, &note, false)]);
    }
    let mut events = vec![status_event(assignment, AssignmentStatus::Cancelled, &note, false)];
    events.extend(hold_to_figure(state, assignment.need_number, assignment.amount()));
    Ok(events)
}

/// The acknowledgement timer's command: a team assignment still
/// `DISPATCHED` `timeout_seconds` after it was made is cancelled, its need
/// reopens (up to its level's figure) and that team is not proposed again
/// for that need. Nothing happens when the assignment has moved on or the
/// deadline has not passed (a timer that fired late or twice is harmless).
pub(super) fn acknowledgement_timeout(
    state: &State,
    assignment_id: &str,
    timeout_seconds: u64,
    now: Timestamp,
) -> DomainResult<Vec<Event>> {
    let assignment = state.assignment(assignment_id)?;
    let Some(team_id) = assignment.team_id() else { return Ok(Vec::new()) };
    let due = acknowledgement_due(assignment, timeout_seconds);
    if assignment.status != AssignmentStatus::Dispatched || due.is_none_or(|due| now < due) {
        return Ok(Vec::new());
    }
    let why = format!("not acknowledged within {timeout_seconds} s");
    let mut events = vec![status_event(assignment, AssignmentStatus::Cancelled, &why, false)];
    events.push(Event::TeamExcluded {
        incident_id: assignment.incident_id.clone(),
        need_number: assignment.need_number,
        team_id: team_id.to_owned(),
        reason: format!("assignment {assignment_id} was {why}"),
    });
    events.extend(hold_to_figure(state, assignment.need_number, assignment.amount()));
    Ok(events)
}

/// When an unacknowledged team assignment times out (`None`: never, with a
/// timeout of 0).
pub fn acknowledgement_due(assignment: &Assignment, timeout_seconds: u64) -> Option<Timestamp> {
    let seconds = i64::try_from(timeout_seconds).ok().filter(|seconds| *seconds > 0)?;
    Some(assignment.created_at.plus_seconds(seconds))
}

/// Releases every active assignment of a closing incident.
pub(super) fn release_for_close(state: &State, incident_id: &str) -> Vec<Event> {
    state
        .assignments
        .values()
        .filter(|assignment| assignment.incident_id == incident_id && assignment.status.is_active())
        .map(|assignment| status_event(assignment, AssignmentStatus::Released, "incident closed", true))
        .collect()
}

/// Applies `AssignmentCreated`.
pub(super) fn apply_created(state: &mut State, assignment: &Assignment) {
    state.counters.assignments = state.counters.assignments.max(assignment.number);
    if let Some(need) = state.needs.get_mut(&assignment.need_number).map(std::sync::Arc::make_mut) {
        need.filled += assignment.amount();
    }
    match &assignment.resource {
        AssignedResource::Team { team_id } => {
            if let Some(team) = state.teams.get_mut(team_id).map(std::sync::Arc::make_mut) {
                team.status = TeamStatus::Assigned;
                team.assignment_id = Some(assignment.id());
            }
            state.touch_team(team_id);
            state.awaiting_acknowledgement.insert(assignment.number);
        }
        AssignedResource::Supply { depot_id, item_code, quantity } => {
            let key = (depot_id.clone(), item_code.clone());
            if let Some(stock) = state.stock.get_mut(&key).map(std::sync::Arc::make_mut) {
                stock.reserved += quantity;
            }
        }
    }
    state.touch_incident(&assignment.incident_id);
    state.assignments.insert(assignment.number, std::sync::Arc::new(assignment.clone()));
}

/// Applies `AssignmentStatusChanged`.
pub(super) fn apply_status(
    state: &mut State,
    record: &super::event::LogRecord,
    number: u64,
    to: AssignmentStatus,
    issue: bool,
    note: &str,
) {
    let (sequence, time, actor) = (record.sequence, record.time, record.actor.as_str());
    let Some(mut assignment) = state.assignments.get(&number).map(|assignment| Assignment::clone(assignment)) else {
        return;
    };
    let from = assignment.status;
    assignment.status = to;
    assignment.updated_at = time;
    if !note.is_empty() {
        note.clone_into(&mut assignment.note);
    }
    if matches!(to, AssignmentStatus::Cancelled | AssignmentStatus::Declined) {
        if let Some(need) = state.needs.get_mut(&assignment.need_number).map(std::sync::Arc::make_mut) {
            need.filled -= assignment.amount();
            if let (AssignmentStatus::Declined, Some(team_id)) = (to, assignment.team_id()) {
                need.declined_by.push(team_id.to_owned());
            }
        }
    }
    match assignment.resource.clone() {
        AssignedResource::Team { team_id } => {
            if let Some(team) = state.teams.get_mut(&team_id).map(std::sync::Arc::make_mut) {
                team.status = match to {
                    _ if team.status == TeamStatus::OutOfService => TeamStatus::OutOfService,
                    AssignmentStatus::Dispatched | AssignmentStatus::Acknowledged => TeamStatus::Assigned,
                    AssignmentStatus::EnRoute => TeamStatus::EnRoute,
                    AssignmentStatus::OnScene => TeamStatus::OnScene,
                    AssignmentStatus::Released
                        if matches!(from, AssignmentStatus::Dispatched | AssignmentStatus::Acknowledged) =>
                    {
                        TeamStatus::Available
                    }
                    AssignmentStatus::Released => TeamStatus::Returning,
                    AssignmentStatus::Cancelled | AssignmentStatus::Declined => {
                        if matches!(from, AssignmentStatus::EnRoute | AssignmentStatus::OnScene) {
                            TeamStatus::Returning
                        } else {
                            TeamStatus::Available
                        }
                    }
                };
                if !to.is_active() {
                    team.assignment_id = None;
                }
            }
            state.touch_team(&team_id);
        }
        AssignedResource::Supply { depot_id, item_code, quantity } => {
            let key = (depot_id.clone(), item_code.clone());
            if issue {
                if let Some(stock) = state.stock.get_mut(&key).map(std::sync::Arc::make_mut) {
                    stock.reserved -= quantity;
                }
                let note = format!(
                    "assignment {} for need {} of {}",
                    assignment.id(),
                    need_id(assignment.need_number),
                    assignment.incident_id
                );
                let entry = super::reserve::LedgerEntry {
                    sequence,
                    delta: -quantity,
                    reason: super::reserve::LedgerReason::Issued,
                    actor: actor.to_owned(),
                    note,
                    time,
                };
                super::reserve::apply_ledger(state, &depot_id, &item_code, entry);
                assignment.issued = true;
            } else if !to.is_active() && !assignment.issued {
                if let Some(stock) = state.stock.get_mut(&key).map(std::sync::Arc::make_mut) {
                    stock.reserved -= quantity;
                }
            }
        }
    }
    if to != AssignmentStatus::Dispatched {
        state.awaiting_acknowledgement.remove(&number);
    }
    state.touch_incident(&assignment.incident_id);
    state.assignments.insert(number, std::sync::Arc::new(assignment));
}
