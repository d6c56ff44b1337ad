//! `muster.v1.IncidentService`: incidents, needs, and (through the
//! dispatcher) assignments and zones.

use std::ops::Bound;
use std::sync::Arc;

use muster_proto::v1 as pb;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::auth;
use super::convert::page_token::List;
use super::convert::{self, page_token};
use super::{status, submit_as, watch, DispatchReply};
use crate::domain::event::Event;
use crate::domain::incident::IncidentStatus;
use crate::domain::reply::IncidentView;
use crate::domain::{validate, Command, DomainError, State};
use crate::engine::{Committed, EngineHandle};

/// The incident service over the engine.
#[derive(Debug, Clone)]
pub struct IncidentService {
    engine: EngineHandle,
    watchers: watch::Watchers,
    /// Dry-run dispatches planning at once (each plans the whole picture).
    dry_runs: Arc<tokio::sync::Semaphore>,
}

/// Most dry-run dispatches planning at once; past it, `RESOURCE_EXHAUSTED`.
pub const MAX_CONCURRENT_DRY_RUNS: usize = 2;

impl IncidentService {
    /// An incident service writing through `engine`, its watch streams
    /// counted in `watchers`.
    pub fn new(engine: EngineHandle, watchers: watch::Watchers) -> Self {
        IncidentService { engine, watchers, dry_runs: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_DRY_RUNS)) }
    }
}

fn incident_reply(view: IncidentView) -> Result<Response<pb::Incident>, Status> {
    Ok(Response::new(convert::incident_out(&view)))
}

fn incident_event(state: &State, id: &str, sequence: u64) -> Option<pb::IncidentEvent> {
    let view = IncidentView::of(state, id).ok()?;
    Some(pb::IncidentEvent {
        change: Some(pb::incident_event::Change::Incident(convert::incident_out(&view))),
        sequence,
    })
}

/// What one committed command changed, as watch events, for `filter` (empty:
/// all): every incident, need and assignment it touched, each once, as it
/// stands after the command, with the sequence of the last record that
/// touched it. A need filled or reopened by an assignment is sent too, so a
/// board following the stream never shows it stale.
fn incident_changes(committed: &Committed, filter: &str) -> Vec<pb::IncidentEvent> {
    let state = &committed.state;
    let mut incidents = Touches::default();
    let mut needs = Touches::default();
    let mut assignments = Touches::default();
    for record in &committed.records {
        let touched = record.event.touched();
        if touched.incident_ids.is_empty()
            || (!filter.is_empty() && !touched.incident_ids.iter().any(|id| id == filter))
        {
            continue;
        }
        let sequence = record.sequence;
        let need_of = |number: &u64| state.assignments.get(number).map(|assignment| assignment.need_number);
        match &record.event {
            Event::NeedRaised { need } => needs.note(need.number, sequence),
            Event::NeedLowered { need_number, .. }
            | Event::NeedCancelled { need_number, .. }
            | Event::TeamExcluded { need_number, .. } => needs.note(*need_number, sequence),
            Event::AssignmentCreated { assignment } => {
                assignments.note(assignment.number, sequence);
                needs.note(assignment.need_number, sequence);
            }
            Event::AssignmentStatusChanged { assignment_number, .. }
            | Event::StockReturned { assignment_number, .. } => {
                assignments.note(*assignment_number, sequence);
                if let Some(need) = need_of(assignment_number) {
                    needs.note(need, sequence);
                }
            }
            Event::DispatchCompleted { .. } => {}
            _ => {
                for id in touched.incident_ids.into_iter().filter(|id| filter.is_empty() || id == filter) {
                    incidents.note(id, sequence);
                }
            }
        }
    }
    let in_filter = |incident_id: &str| filter.is_empty() || incident_id == filter;
    let mut changes: Vec<pb::IncidentEvent> =
        incidents.in_order().filter_map(|(id, sequence)| incident_event(state, id, sequence)).collect();
    changes.extend(
        needs
            .in_order()
            .filter(|(number, _)| state.needs.get(number).is_some_and(|need| in_filter(&need.incident_id)))
            .filter_map(|(number, sequence)| need_event(state, *number, sequence)),
    );
    changes.extend(
        assignments
            .in_order()
            .filter(|(number, _)| {
                state.assignments.get(number).is_some_and(|assignment| in_filter(&assignment.incident_id))
            })
            .filter_map(|(number, sequence)| assignment_event(state, *number, sequence)),
    );
    // Stable: at one sequence, the incident, then its needs, then assignments.
    changes.sort_by_key(|change| change.sequence);
    changes
}

/// Records touched by one command, in the order first touched, each with the
/// last sequence that touched it.
struct Touches<K> {
    order: Vec<K>,
    last: std::collections::BTreeMap<K, u64>,
}

impl<K> Default for Touches<K> {
    fn default() -> Self {
        Touches { order: Vec::new(), last: std::collections::BTreeMap::new() }
    }
}

impl<K: Ord + Clone> Touches<K> {
    fn note(&mut self, key: K, sequence: u64) {
        if self.last.insert(key.clone(), sequence).is_none() {
            self.order.push(key);
        }
    }

    fn in_order(&self) -> impl Iterator<Item = (&K, u64)> + '_ {
        self.order.iter().map(|key| (key, self.last.get(key).copied().unwrap_or(0)))
    }
}

fn assignment_event(state: &State, number: u64, sequence: u64) -> Option<pb::IncidentEvent> {
    let assignment = state.assignments.get(&number)?;
    Some(pb::IncidentEvent {
        change: Some(pb::incident_event::Change::Assignment(convert::assignment_out(assignment))),
        sequence,
    })
}

/// The assignments of `team_id` that one committed command changed.
fn team_assignment_changes(committed: &Committed, team_id: &str) -> Vec<pb::Assignment> {
    let mut numbers = Vec::new();
    for record in &committed.records {
        match &record.event {
            Event::AssignmentCreated { assignment } => numbers.push(assignment.number),
            Event::AssignmentStatusChanged { assignment_number, .. } => numbers.push(*assignment_number),
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    numbers.retain(|number| seen.insert(*number));
    numbers
        .into_iter()
        .filter_map(|number| committed.state.assignments.get(&number))
        .filter(|assignment| assignment.team_id() == Some(team_id))
        .map(|assignment| convert::assignment_out(assignment))
        .collect()
}

fn need_event(state: &State, number: u64, sequence: u64) -> Option<pb::IncidentEvent> {
    let need = state.needs.get(&number)?;
    let level = state.incidents.get(&need.incident_id)?.level;
    Some(pb::IncidentEvent { change: Some(pb::incident_event::Change::Need(convert::need_out(need, level))), sequence })
}

#[tonic::async_trait]
impl pb::incident_service_server::IncidentService for IncidentService {
    async fn declare_incident(
        &self,
        request: Request<pb::DeclareIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let request_id = request.request_id.clone();
        let command = Command::try_from(request)?;
        incident_reply(submit_as(&self.engine, &caller, &request_id, command).await?)
    }

    async fn get_incident(&self, request: Request<pb::GetIncidentRequest>) -> Result<Response<pb::Incident>, Status> {
        let request = request.into_inner();
        validate::id("id", &request.id)?;
        let view = match request.as_of {
            None => IncidentView::of(&self.engine.snapshot(), &request.id),
            Some(as_of) => {
                let (state, as_of) = super::state_as_of(&self.engine, &as_of).await?;
                IncidentView::of(&state, &request.id)
                    .map_err(|_| DomainError::not_found("incident", format!("{} (as of {as_of})", request.id)))
            }
        };
        Ok(Response::new(convert::incident_out(&view?)))
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(List::Incidents, &request.page_token)?;
        let wanted = convert::incident_status_in("status", request.status)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let matching = state
            .incidents
            .range((start, Bound::Unbounded))
            .filter(|(_, incident)| wanted.is_none_or(|status| incident.status == status));
        let (incidents, next_page_token) =
            convert::page(List::Incidents, matching, page_size, String::clone, |incident| {
                IncidentView::of(&state, &incident.id).map(|view| convert::incident_out(&view)).unwrap_or_default()
            });
        Ok(Response::new(pb::ListIncidentsResponse { incidents, next_page_token }))
    }

    async fn update_incident(
        &self,
        request: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let request_id = request.request_id.clone();
        let command = Command::try_from(request)?;
        incident_reply(submit_as(&self.engine, &caller, &request_id, command).await?)
    }

    async fn close_incident(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        incident_reply(
            submit_as(&self.engine, &caller, &request.request_id, Command::CloseIncident { id: request.id }).await?,
        )
    }

    async fn request_resources(
        &self,
        request: Request<pb::RequestResourcesRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        validate::repeated("teams", &request.teams)?;
        validate::repeated("supplies", &request.supplies)?;
        let command = Command::RequestResources {
            incident_id: request.incident_id,
            teams: request.teams.iter().map(convert::team_need_in).collect(),
            supplies: request.supplies.iter().map(convert::supply_need_in).collect(),
        };
        incident_reply(submit_as(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn watch_incidents(
        &self,
        request: Request<pb::WatchIncidentsRequest>,
    ) -> Result<Response<BoxStream<pb::IncidentEvent>>, Status> {
        let peer = request.remote_addr();
        let filter = request.into_inner().incident_id;
        if !filter.is_empty() {
            validate::id("incident_id", &filter)?;
            self.engine.snapshot().incident(&filter)?;
        }
        let slot = self.watchers.admit(peer)?;
        let initial_filter = filter.clone();
        let stream = watch::spawn(
            slot,
            &self.engine,
            move |state| {
                state
                    .incidents
                    .values()
                    .filter(|incident| {
                        if initial_filter.is_empty() {
                            incident.status != IncidentStatus::Closed
                        } else {
                            incident.id == initial_filter
                        }
                    })
                    .filter_map(|incident| incident_event(state, &incident.id, 0))
                    .collect()
            },
            move |committed| incident_changes(committed, &filter),
        );
        Ok(Response::new(stream))
    }

    async fn dispatch(&self, request: Request<pb::DispatchRequest>) -> Result<Response<pb::DispatchResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let scope = (!request.incident_id.is_empty()).then(|| request.incident_id.clone());
        let divert = request.divert;
        if request.dry_run {
            let _planning = self.dry_runs.try_acquire().map_err(|_| {
                status::retry_later(
                    format!("{MAX_CONCURRENT_DRY_RUNS} dry-run dispatches are planning already; retry shortly"),
                    status::RETRY_FULL_QUEUE_AFTER,
                )
            })?;
            let (plan, now, _) =
                self.engine.plan_dispatch_on_published(scope, divert).await.map_err(status::from_engine)?;
            let plan = plan?;
            return Ok(Response::new(pb::DispatchResponse {
                assignments: plan.proposals.iter().map(|proposal| convert::proposal_out(proposal, now)).collect(),
                shortfalls: plan.shortfalls.iter().map(convert::shortfall_out).collect(),
            }));
        }
        caller.commands()?;
        let command = Command::Dispatch { incident_id: scope, divert };
        let (assignments, shortfalls): DispatchReply =
            submit_as(&self.engine, &caller, &request.request_id, command).await?;
        Ok(Response::new(pb::DispatchResponse {
            assignments: assignments.iter().map(convert::assignment_out).collect(),
            shortfalls: shortfalls.iter().map(convert::shortfall_out).collect(),
        }))
    }

    async fn assign_resource(
        &self,
        request: Request<pb::AssignResourceRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let resource = convert::hand_resource_in(request.resource)?;
        let command = Command::AssignResource { need_id: request.need_id, resource, reason: request.reason };
        let assignment: crate::domain::assignment::Assignment =
            submit_as(&self.engine, &caller, &request.request_id, command).await?;
        Ok(Response::new(convert::assignment_out(&assignment)))
    }

    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        caller.reads_for(&request.team_id)?;
        let state = self.engine.snapshot();
        if !request.incident_id.is_empty() {
            validate::id("incident_id", &request.incident_id)?;
            state.incident(&request.incident_id)?;
        }
        if !request.team_id.is_empty() {
            validate::id("team_id", &request.team_id)?;
            state.team(&request.team_id)?;
        }
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode_sequence(List::Assignments, &request.page_token)?;
        let matching = state.assignments.range((Bound::Excluded(after), Bound::Unbounded)).filter(|(_, assignment)| {
            (request.incident_id.is_empty() || assignment.incident_id == request.incident_id)
                && (request.team_id.is_empty() || assignment.team_id() == Some(request.team_id.as_str()))
                && (!request.active_only || assignment.status.is_active())
        });
        // Keys are assignment numbers; their text is what `decode_sequence` reads.
        let (assignments, next_page_token) =
            convert::page(List::Assignments, matching, page_size, u64::to_string, |assignment| {
                convert::assignment_out(assignment)
            });
        Ok(Response::new(pb::ListAssignmentsResponse { assignments, next_page_token }))
    }

    async fn update_assignment(
        &self,
        request: Request<pb::UpdateAssignmentRequest>,
    ) -> Result<Response<pb::Assignment>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        if caller.commands().is_err() {
            // A team may change only its own assignments (a supply
            // assignment has no team: only a commander changes it).
            // A team learns nothing of assignments it does not hold, not
            // even whether they exist.
            // One refusal for an assignment that does not exist and one
            // of supplies, so that the answer tells neither apart.
            let state = self.engine.snapshot();
            let team_id = validate::id("assignment_id", &request.assignment_id)
                .ok()
                .and_then(|()| state.assignment(&request.assignment_id).ok())
                .and_then(|assignment| assignment.team_id().map(str::to_owned));
            match team_id {
                Some(team_id) => caller.acts_for(&team_id)?,
                None => return Err(caller.denied("change an assignment its team does not hold")),
            }
        }
        let target = convert::assignment_status_in("status", request.status)?;
        let command = Command::UpdateAssignment {
            assignment_id: request.assignment_id,
            status: target,
            returned_quantity: request.returned_quantity,
            note: request.note,
        };
        let assignment: crate::domain::assignment::Assignment =
            submit_as(&self.engine, &caller, &request.request_id, command).await?;
        Ok(Response::new(convert::assignment_out(&assignment)))
    }

    async fn watch_assignments(
        &self,
        request: Request<pb::WatchAssignmentsRequest>,
    ) -> Result<Response<BoxStream<pb::Assignment>>, Status> {
        let caller = auth::caller(&request)?;
        let peer = request.remote_addr();
        let team_id = request.into_inner().team_id;
        caller.reads_for(&team_id)?;
        validate::id("team_id", &team_id)?;
        self.engine.snapshot().team(&team_id)?;
        let slot = self.watchers.admit(peer)?;
        let initial_team = team_id.clone();
        let stream = watch::spawn(
            slot,
            &self.engine,
            move |state| {
                state
                    .assignments
                    .values()
                    .filter(|assignment| {
                        assignment.status.is_active() && assignment.team_id() == Some(initial_team.as_str())
                    })
                    .map(|assignment| convert::assignment_out(assignment))
                    .collect()
            },
            move |committed| team_assignment_changes(committed, &team_id),
        );
        Ok(Response::new(stream))
    }

    async fn set_zone(&self, request: Request<pb::SetZoneRequest>) -> Result<Response<pb::Zone>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let zone = convert::zone_in("zone", request.zone)?;
        let zone: crate::domain::zone::Zone =
            submit_as(&self.engine, &caller, &request.request_id, Command::SetZone { zone }).await?;
        Ok(Response::new(convert::zone_out(&zone)))
    }

    async fn clear_zone(&self, request: Request<pb::ClearZoneRequest>) -> Result<Response<pb::Zone>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let zone: crate::domain::zone::Zone =
            submit_as(&self.engine, &caller, &request.request_id, Command::ClearZone { id: request.id }).await?;
        Ok(Response::new(convert::zone_out(&zone)))
    }

    async fn list_zones(
        &self,
        request: Request<pb::ListZonesRequest>,
    ) -> Result<Response<pb::ListZonesResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(List::Zones, &request.page_token)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let (zones, next_page_token) = convert::page(
            List::Zones,
            state.zones.range((start, Bound::Unbounded)),
            page_size,
            String::clone,
            convert::zone_out,
        );
        Ok(Response::new(pb::ListZonesResponse { zones, next_page_token }))
    }
}
