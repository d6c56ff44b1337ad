//! Replies: what a successful command answers, built from the state right
//! after its events were applied. The engine keeps the reply of every
//! command that carried a `request_id`, so a retry gets the first answer.

use serde::{Deserialize, Serialize};

use super::command::Command;
use super::error::DomainResult;
use super::import::ImportSummary;
use super::incident::{Incident, Need};
use super::plan::Plan;
use super::reserve::{Depot, Item, StockLevel};
use super::state::State;
use super::team::Team;

/// The answer to a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A team as it stands after the command.
    Team(Team),
    /// A catalog item.
    Item(Item),
    /// A depot.
    Depot(Depot),
    /// A stock level after the change.
    Stock(StockLevel),
    /// Both sides of a transfer.
    Transfer {
        /// The source depot's level.
        from: StockLevel,
        /// The destination depot's level.
        to: StockLevel,
    },
    /// What an import created and changed.
    Import(ImportSummary),
    /// A plan version.
    Plan(Plan),
    /// An incident with its needs.
    Incident(IncidentView),
    /// What a dispatch assigned and could not fill.
    Dispatch {
        /// The assignments made.
        assignments: Vec<super::assignment::Assignment>,
        /// What is still missing, and why.
        shortfalls: Vec<super::event::Shortfall>,
    },
    /// An assignment after the change.
    Assignment(super::assignment::Assignment),
    /// A zone after the change.
    Zone(super::zone::Zone),
}

/// An incident with its needs, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    /// The incident.
    pub incident: Incident,
    /// Its needs.
    pub needs: Vec<Need>,
}

impl IncidentView {
    /// The view of incident `id` in `state`.
    pub fn of(state: &State, id: &str) -> DomainResult<IncidentView> {
        let incident = state.incident(id)?;
        Ok(IncidentView { incident: incident.clone(), needs: state.needs_of(incident).cloned().collect() })
    }
}

impl Reply {
    /// Builds the reply to `command` from the state after its events.
    pub fn build(command: &Command, state: &State, records: &[super::event::LogRecord]) -> DomainResult<Reply> {
        match command {
            Command::RegisterTeam { id, .. } | Command::UpdateTeam { id, .. } => {
                Ok(Reply::Team(state.team(id)?.clone()))
            }
            Command::ReportStatus { team_id, .. } => Ok(Reply::Team(state.team(team_id)?.clone())),
            Command::DefineItem { item } => Ok(Reply::Item(state.item(&item.code)?.clone())),
            Command::RegisterDepot { depot } => Ok(Reply::Depot(state.depot(&depot.id)?.clone())),
            Command::AdjustStock { depot_id, item_code, .. } | Command::SetMinReserve { depot_id, item_code, .. } => {
                Ok(Reply::Stock(state.stock_level(depot_id, item_code)?))
            }
            Command::TransferStock { from_depot_id, to_depot_id, item_code, .. } => Ok(Reply::Transfer {
                from: state.stock_level(from_depot_id, item_code)?,
                to: state.stock_level(to_depot_id, item_code)?,
            }),
            Command::Import { fixture } => Ok(Reply::Import(super::import::summarize(fixture, state, records))),
            Command::PutPlan { plan } => Ok(Reply::Plan(state.plan(&plan.id, 0)?.clone())),
            Command::DeclareIncident { .. } => {
                let id = records
                    .iter()
                    .find_map(|record| match &record.event {
                        super::event::Event::IncidentDeclared { incident } => Some(incident.id.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                Ok(Reply::Incident(IncidentView::of(state, &id)?))
            }
            Command::UpdateIncident { update } => Ok(Reply::Incident(IncidentView::of(state, &update.id)?)),
            Command::CloseIncident { id } => Ok(Reply::Incident(IncidentView::of(state, id)?)),
            Command::RequestResources { incident_id, .. } => Ok(Reply::Incident(IncidentView::of(state, incident_id)?)),
            Command::Dispatch { .. } => {
                let mut assignments = Vec::new();
                let mut shortfalls = Vec::new();
                for record in records {
                    match &record.event {
                        super::event::Event::AssignmentCreated { assignment } => {
                            assignments.push(
                                state
                                    .assignments
                                    .get(&assignment.number)
                                    .map(|now| super::assignment::Assignment::clone(now))
                                    .unwrap_or_else(|| assignment.clone()),
                            );
                        }
                        super::event::Event::DispatchCompleted { shortfalls: missing, .. } => {
                            shortfalls.clone_from(missing)
                        }
                        _ => {}
                    }
                }
                Ok(Reply::Dispatch { assignments, shortfalls })
            }
            Command::UpdateAssignment { assignment_id, .. } | Command::AcknowledgementTimeout { assignment_id } => {
                Ok(Reply::Assignment(state.assignment(assignment_id)?.clone()))
            }
            Command::AssignResource { need_id, .. } => {
                let created = records.iter().find_map(|record| match &record.event {
                    super::event::Event::AssignmentCreated { assignment } => Some(assignment.number),
                    _ => None,
                });
                let assignment = created.and_then(|number| state.assignments.get(&number)).ok_or_else(|| {
                    super::DomainError::precondition(format!("nothing was assigned to need {need_id}"))
                })?;
                Ok(Reply::Assignment(super::assignment::Assignment::clone(assignment)))
            }
            Command::SetZone { zone } => Ok(Reply::Zone(
                state.zones.get(&zone.id).cloned().ok_or_else(|| super::DomainError::not_found("zone", &zone.id))?,
            )),
            Command::ClearZone { id } => {
                Ok(Reply::Zone(state.zones.get(id).cloned().ok_or_else(|| super::DomainError::not_found("zone", id))?))
            }
        }
    }
}
