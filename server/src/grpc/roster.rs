//! `muster.v1.RosterService`: the team roster.

use std::collections::BTreeSet;

use muster_proto::v1 as pb;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::auth;
use super::convert::page_token::List;
use super::convert::{self, page, page_token};
use super::{submit_as, watch};
use crate::domain::{validate, Command, DomainError, State};
use crate::engine::EngineHandle;

/// The roster service over the engine.
#[derive(Debug, Clone)]
pub struct RosterService {
    engine: EngineHandle,
    watchers: watch::Watchers,
}

impl RosterService {
    /// A roster service writing through `engine`, its watch streams
    /// counted in `watchers`.
    pub fn new(engine: EngineHandle, watchers: watch::Watchers) -> Self {
        RosterService { engine, watchers }
    }
}

fn team_reply(team: crate::domain::team::Team) -> Result<Response<pb::Team>, Status> {
    Ok(Response::new(convert::team_out(&team)))
}

fn team_events(state: &State, team_ids: impl IntoIterator<Item = String>, sequence: u64) -> Vec<pb::TeamEvent> {
    team_ids
        .into_iter()
        .filter_map(|id| {
            state.teams.get(&id).map(|team| pb::TeamEvent { team: Some(convert::team_out(team)), sequence })
        })
        .collect()
}

#[tonic::async_trait]
impl pb::roster_service_server::RosterService for RosterService {
    async fn register_team(&self, request: Request<pb::RegisterTeamRequest>) -> Result<Response<pb::Team>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let team = convert::team_in("team", request.team)?;
        let command =
            Command::RegisterTeam { id: team.id, profile: team.profile, status: team.status, position: team.position };
        team_reply(submit_as(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn get_team(&self, request: Request<pb::GetTeamRequest>) -> Result<Response<pb::Team>, Status> {
        let request = request.into_inner();
        validate::id("id", &request.id)?;
        let team = match request.as_of {
            None => self.engine.snapshot().team(&request.id).cloned(),
            Some(as_of) => {
                let (state, as_of) = super::state_as_of(&self.engine, &as_of).await?;
                state
                    .team(&request.id)
                    .cloned()
                    .map_err(|_| DomainError::not_found("team", format!("{} (as of {as_of})", request.id)))
            }
        };
        Ok(Response::new(convert::team_out(&team?)))
    }

    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(List::Teams, &request.page_token)?;
        if !request.capability.is_empty() {
            validate::code("capability", &request.capability)?;
        }
        let wanted_status = convert::team_status_in("status", request.status)?;
        let state = self.engine.snapshot();
        let start = match &after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let matching = state.teams.range((start, std::ops::Bound::Unbounded)).filter(|(_, team)| {
            (request.capability.is_empty() || team.tier(&request.capability).is_some())
                && wanted_status.is_none_or(|status| team.status == status)
        });
        let (teams, next_page_token) =
            page(List::Teams, matching, page_size, |id: &String| id.clone(), |team| convert::team_out(team));
        Ok(Response::new(pb::ListTeamsResponse { teams, next_page_token }))
    }

    async fn update_team(&self, request: Request<pb::UpdateTeamRequest>) -> Result<Response<pb::Team>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let team = convert::team_in("team", request.team)?;
        let command =
            Command::UpdateTeam { id: team.id, profile: team.profile, expected_version: request.expected_version };
        team_reply(submit_as(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn report_status(&self, request: Request<pb::ReportStatusRequest>) -> Result<Response<pb::Team>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        caller.acts_for(&request.team_id)?;
        let command = Command::ReportStatus {
            team_id: request.team_id,
            status: convert::team_status_in("status", request.status)?,
            position: convert::position_in(request.position.as_ref()),
        };
        team_reply(submit_as(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn watch_teams(
        &self,
        request: Request<pb::WatchTeamsRequest>,
    ) -> Result<Response<BoxStream<pb::TeamEvent>>, Status> {
        let slot = self.watchers.admit(request.remote_addr())?;
        let stream = watch::spawn(
            slot,
            &self.engine,
            |state| team_events(state, state.teams.keys().cloned(), 0),
            |committed| {
                let mut touched = BTreeSet::new();
                for record in &committed.records {
                    touched.extend(record.event.touched().team_ids);
                }
                let sequence = committed.records.last().map(|record| record.sequence).unwrap_or(0);
                team_events(&committed.state, touched, sequence)
            },
        );
        Ok(Response::new(stream))
    }
}
