//! `muster.v1.IncidentService`: incidents, needs, and (through the
//! dispatcher) assignments and zones.

use std::ops::Bound;

use muster_proto::v1 as pb;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::auth::{self, Access};
use super::convert::{self, page_token};
use super::{status, submit, unexpected_reply, watch};
use crate::domain::event::Event;
use crate::domain::incident::{Declaration, IncidentStatus, IncidentUpdate};
use crate::domain::reply::IncidentView;
use crate::domain::{validate, Command, DomainError, Reply, State};
use crate::engine::{Committed, EngineHandle};

/// The incident service over the engine.
#[derive(Debug, Clone)]
pub struct IncidentService {
    engine: EngineHandle,
}

impl IncidentService {
    /// An incident service writing through `engine`.
    pub fn new(engine: EngineHandle) -> Self {
        IncidentService { engine }
    }
}

fn incident_reply(reply: Reply) -> Result<Response<pb::Incident>, Status> {
    match reply {
        Reply::Incident(view) => Ok(Response::new(convert::incident_out(&view))),
        other => Err(unexpected_reply(&other)),
    }
}

fn incident_event(state: &State, id: &str, sequence: u64) -> Option<pb::IncidentEvent> {
    let view = IncidentView::of(state, id).ok()?;
    Some(pb::IncidentEvent {
        change: Some(pb::incident_event::Change::Incident(convert::incident_out(&view))),
        sequence,
    })
}

/// What one committed command changed, as watch events, for `filter` (empty: all).
fn incident_changes(committed: &Committed, filter: &str) -> Vec<pb::IncidentEvent> {
    let state = &committed.state;
    let mut changes = Vec::new();
    for record in &committed.records {
        let touched = record.event.touched();
        if touched.incident_ids.is_empty()
            || (!filter.is_empty() && !touched.incident_ids.iter().any(|id| id == filter))
        {
            continue;
        }
        let sequence = record.sequence;
        match &record.event {
            Event::NeedRaised { need } => {
                changes.extend(need_event(state, need.number, sequence));
            }
            Event::NeedLowered { need_number, .. } | Event::NeedCancelled { need_number, .. } => {
                changes.extend(need_event(state, *need_number, sequence));
            }
            _ => {
                for id in &touched.incident_ids {
                    changes.extend(incident_event(state, id, sequence));
                }
            }
        }
    }
    changes
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
        caller.require(Access::Command)?;
        let request = request.into_inner();
        let declaration = (|| {
            let incident = request.incident.ok_or_else(|| DomainError::invalid("incident", "is required"))?;
            let plan_id = match (request.plan_id.is_empty(), incident.plan_id.is_empty()) {
                (true, true) => None,
                (false, true) => Some(request.plan_id.clone()),
                (true, false) => Some(incident.plan_id.clone()),
                (false, false) if request.plan_id == incident.plan_id => Some(request.plan_id.clone()),
                (false, false) => {
                    return Err(DomainError::invalid("plan_id", "differs from incident.plan_id; give one of them"));
                }
            };
            crate::domain::validate::polygon_size("incident.area", &incident.area)?;
            Ok(Declaration {
                id: incident.id,
                title: incident.title,
                hazard: convert::hazard_in("incident.hazard", incident.hazard)?,
                position: convert::position_in(incident.position.as_ref()),
                area: incident
                    .area
                    .iter()
                    .map(|vertex| crate::domain::LatLng { lat: vertex.lat, lng: vertex.lng })
                    .collect(),
                level: convert::level_in("incident.level", incident.level)?,
                metrics: convert::metrics_in(incident.metrics),
                plan_id,
            })
        })()
        .map_err(status::from_domain)?;
        incident_reply(
            submit(&self.engine, &caller, &request.request_id, Command::DeclareIncident { declaration }).await?,
        )
    }

    async fn get_incident(&self, request: Request<pb::GetIncidentRequest>) -> Result<Response<pb::Incident>, Status> {
        auth::caller(&request)?.require(Access::Read)?;
        let request = request.into_inner();
        validate::id("id", &request.id).map_err(status::from_domain)?;
        let view = match request.as_of {
            None => IncidentView::of(&self.engine.snapshot(), &request.id),
            Some(as_of) => {
                let as_of = convert::timestamp_in("as_of", &as_of).map_err(status::from_domain)?;
                let engine = self.engine.clone();
                let state = tokio::task::spawn_blocking(move || engine.state_as_of(as_of))
                    .await
                    .map_err(status::from_join)?
                    .map_err(|error| status::from_engine(error.into()))?;
                IncidentView::of(&state, &request.id)
                    .map_err(|_| DomainError::not_found("incident", format!("{} (as of {as_of})", request.id)))
            }
        };
        Ok(Response::new(convert::incident_out(&view.map_err(status::from_domain)?)))
    }

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        auth::caller(&request)?.require(Access::Read)?;
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size).map_err(status::from_domain)?;
        let after = page_token::decode(&request.page_token).map_err(status::from_domain)?;
        let wanted = convert::incident_status_in("status", request.status).map_err(status::from_domain)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let matching = state
            .incidents
            .range((start, Bound::Unbounded))
            .filter(|(_, incident)| wanted.is_none_or(|status| incident.status == status));
        let (incidents, next_page_token) = convert::page(matching, page_size, String::clone);
        let incidents = incidents
            .into_iter()
            .filter_map(|incident| IncidentView::of(&state, &incident.id).ok())
            .map(|view| convert::incident_out(&view))
            .collect();
        Ok(Response::new(pb::ListIncidentsResponse { incidents, next_page_token }))
    }

    async fn update_incident(
        &self,
        request: Request<pb::UpdateIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        caller.require(Access::Command)?;
        let request = request.into_inner();
        let update = (|| {
            Ok::<_, DomainError>(IncidentUpdate {
                level: convert::level_in("level", request.level)?,
                status: convert::incident_status_in("status", request.status)?,
                metrics: convert::metrics_in(request.metrics),
                id: request.id,
            })
        })()
        .map_err(status::from_domain)?;
        if update.status == Some(IncidentStatus::Closed) {
            return Err(status::invalid("status", "use CloseIncident to close an incident"));
        }
        incident_reply(submit(&self.engine, &caller, &request.request_id, Command::UpdateIncident { update }).await?)
    }

    async fn close_incident(
        &self,
        request: Request<pb::CloseIncidentRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        caller.require(Access::Command)?;
        let request = request.into_inner();
        incident_reply(
            submit(&self.engine, &caller, &request.request_id, Command::CloseIncident { id: request.id }).await?,
        )
    }

    async fn request_resources(
        &self,
        request: Request<pb::RequestResourcesRequest>,
    ) -> Result<Response<pb::Incident>, Status> {
        let caller = auth::caller(&request)?;
        caller.require(Access::Command)?;
        let request = request.into_inner();
        validate::repeated("teams", &request.teams).map_err(status::from_domain)?;
        validate::repeated("supplies", &request.supplies).map_err(status::from_domain)?;
        let command = Command::RequestResources {
            incident_id: request.incident_id,
            teams: request.teams.iter().map(convert::team_need_in).collect(),
            supplies: request.supplies.iter().map(convert::supply_need_in).collect(),
        };
        incident_reply(submit(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn watch_incidents(
        &self,
        request: Request<pb::WatchIncidentsRequest>,
    ) -> Result<Response<BoxStream<pb::IncidentEvent>>, Status> {
        auth::caller(&request)?.require(Access::Read)?;
        let filter = request.into_inner().incident_id;
        if !filter.is_empty() {
            validate::id("incident_id", &filter).map_err(status::from_domain)?;
            self.engine.snapshot().incident(&filter).map_err(status::from_domain)?;
        }
        let initial_filter = filter.clone();
        let stream = watch::spawn(
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
}
