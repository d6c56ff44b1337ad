//! `decide`: validates a command against the state and returns its events.
//! Pure: the same state, command and context always give the same answer.

use super::command::{Command, Context};
use super::dispatching::DispatchPlan;
use super::error::DomainResult;
use super::event::Event;
use super::event::LogRecord;
use super::state::State;
use super::{assignment, import, incident, plan, reserve, team, zone};

/// Validates `command` against `state` and returns the events it causes, or
/// why it is refused. An empty list means the command changes nothing.
pub fn decide(state: &State, command: &Command, context: &Context) -> DomainResult<Vec<Event>> {
    match command {
        Command::RegisterTeam { id, profile, status, position } => {
            team::register(state, id, profile.clone(), *status, *position)
        }
        Command::UpdateTeam { id, profile, expected_version } => {
            team::update(state, id, profile.clone(), *expected_version)
        }
        Command::ReportStatus { team_id, status, position } => team::report_status(state, team_id, *status, *position),
        Command::DefineItem { item } => reserve::define_item(state, item),
        Command::RegisterDepot { depot } => reserve::register_depot(state, depot),
        Command::AdjustStock { depot_id, item_code, delta, reason, note } => {
            reserve::adjust_stock(state, depot_id, item_code, *delta, *reason, note)
        }
        Command::SetMinReserve { depot_id, item_code, min_reserve } => {
            reserve::set_min_reserve(state, depot_id, item_code, *min_reserve)
        }
        Command::TransferStock { from_depot_id, to_depot_id, item_code, quantity, note } => {
            reserve::transfer_stock(state, from_depot_id, to_depot_id, item_code, *quantity, note)
        }
        Command::Import { fixture } => import::decide(state, fixture),
        Command::PutPlan { plan } => plan::put(state, plan),
        Command::DeclareIncident { declaration } => incident::declare(state, declaration, context.time),
        Command::UpdateIncident { update } => incident::update(state, update, context.time),
        Command::CloseIncident { id } => incident::close(state, id),
        Command::RequestResources { incident_id, teams, supplies } => {
            incident::request(state, incident_id, teams, supplies, context.time)
        }
        Command::Dispatch { incident_id, divert } => {
            let scope = super::dispatching::Scope { incident_id: incident_id.as_deref(), divert: *divert };
            let plan = match &context.prepared {
                Some(plan) => DispatchPlan::clone(plan),
                None => context.planner.plan(state, scope, &context.settings, context.time)?,
            };
            super::dispatching::commit(state, scope, plan, context.time)
        }
        Command::AssignResource { need_id, resource, reason } => {
            super::hand::assign(state, need_id, resource, reason, context)
        }
        Command::UpdateAssignment { assignment_id, status, returned_quantity, note } => {
            assignment::update(state, assignment_id, *status, *returned_quantity, note)
        }
        Command::AcknowledgementTimeout { assignment_id } => assignment::acknowledgement_timeout(
            state,
            assignment_id,
            context.settings.ack_timeout_seconds,
            context.time,
        ),
        Command::SetZone { zone } => zone::set(zone),
        Command::ClearZone { id } => zone::clear(state, id),
    }
}

/// Decides `command` and applies its events to `state`, numbering them after
/// the state's last sequence: what the engine's writer does for each command,
/// and what tests do without an engine. On refusal the state is
/// untouched.
pub fn execute(
    state: &mut State,
    command: &Command,
    context: &Context,
    request_id: Option<&str>,
) -> DomainResult<Vec<LogRecord>> {
    let events = decide(state, command, context)?;
    let mut records = Vec::with_capacity(events.len());
    let first = state.last_sequence + 1;
    for event in events {
        let record = LogRecord {
            sequence: state.last_sequence + 1,
            time: context.time,
            actor: context.actor.clone(),
            request_id: request_id.map(str::to_owned),
            event,
            command: first,
        };
        state.apply(&record);
        records.push(record);
    }
    Ok(records)
}
