//! Teams: roster data, statuses and capabilities.

use muster_proto::v1 as pb;

use super::common::{optional_timestamp_in, position_in, position_out, required_position_in, timestamp_out};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::team::{Certification, Member, Team, TeamProfile, TeamStatus};
use crate::domain::{Capability, LatLng};

/// A team status; unspecified is `None`.
pub fn team_status_in(field: &str, value: i32) -> DomainResult<Option<TeamStatus>> {
    let status = pb::TeamStatus::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a TeamStatus")))?;
    Ok(match status {
        pb::TeamStatus::Unspecified => None,
        pb::TeamStatus::Available => Some(TeamStatus::Available),
        pb::TeamStatus::Assigned => Some(TeamStatus::Assigned),
        pb::TeamStatus::EnRoute => Some(TeamStatus::EnRoute),
        pb::TeamStatus::OnScene => Some(TeamStatus::OnScene),
        pb::TeamStatus::Returning => Some(TeamStatus::Returning),
        pb::TeamStatus::OutOfService => Some(TeamStatus::OutOfService),
    })
}

/// A domain team status as protobuf.
pub fn team_status_out(value: TeamStatus) -> pb::TeamStatus {
    match value {
        TeamStatus::Available => pb::TeamStatus::Available,
        TeamStatus::Assigned => pb::TeamStatus::Assigned,
        TeamStatus::EnRoute => pb::TeamStatus::EnRoute,
        TeamStatus::OnScene => pb::TeamStatus::OnScene,
        TeamStatus::Returning => pb::TeamStatus::Returning,
        TeamStatus::OutOfService => pb::TeamStatus::OutOfService,
    }
}

/// A capability from protobuf.
pub fn capability_in(value: &pb::Capability) -> Capability {
    Capability { code: value.code.clone(), tier: value.tier }
}

/// What a client sends of a team: its id, roster data, and the initial
/// status and position (registration only). Version, assignment and last
/// report are never taken from a client.
#[derive(Debug)]
pub struct TeamInput {
    /// The team id.
    pub id: String,
    /// Roster data.
    pub profile: TeamProfile,
    /// Initial status, if given.
    pub status: Option<TeamStatus>,
    /// Initial position, if given.
    pub position: Option<LatLng>,
}

/// A team from protobuf; `field` is its path in the request (`team`).
pub fn team_in(field: &str, team: Option<pb::Team>) -> DomainResult<TeamInput> {
    let team = team.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    let mut members = Vec::with_capacity(team.members.len().min(crate::domain::limits::MAX_REPEATED));
    crate::domain::validate::repeated(&format!("{field}.members"), &team.members)?;
    for (index, member) in team.members.iter().enumerate() {
        let member_field = format!("{field}.members[{index}]");
        crate::domain::validate::repeated(&format!("{member_field}.certifications"), &member.certifications)?;
        let mut certifications = Vec::with_capacity(member.certifications.len());
        for (cert_index, certification) in member.certifications.iter().enumerate() {
            certifications.push(Certification {
                code: certification.code.clone(),
                expires: optional_timestamp_in(
                    &format!("{member_field}.certifications[{cert_index}].expires"),
                    certification.expires.as_ref(),
                )?,
            });
        }
        members.push(Member {
            id: member.id.clone(),
            name: member.name.clone(),
            role: member.role.clone(),
            certifications,
            insurance_expires: optional_timestamp_in(
                &format!("{member_field}.insurance_expires"),
                member.insurance_expires.as_ref(),
            )?,
            on_duty: member.on_duty,
        });
    }
    crate::domain::validate::repeated(&format!("{field}.capabilities"), &team.capabilities)?;
    let profile = TeamProfile {
        name: team.name,
        organization: team.organization,
        capabilities: team.capabilities.iter().map(capability_in).collect(),
        headcount: team.headcount,
        home: required_position_in(&format!("{field}.home"), team.home.as_ref())?,
        speed_kmh: team.speed_kmh,
        insurance_expires: optional_timestamp_in(
            &format!("{field}.insurance_expires"),
            team.insurance_expires.as_ref(),
        )?,
        members,
    };
    Ok(TeamInput {
        id: team.id,
        profile,
        status: team_status_in(&format!("{field}.status"), team.status)?,
        position: position_in(team.position.as_ref()),
    })
}

/// A domain team as protobuf.
pub fn team_out(team: &Team) -> pb::Team {
    let profile = &team.profile;
    pb::Team {
        id: team.id.clone(),
        name: profile.name.clone(),
        organization: profile.organization.clone(),
        capabilities: profile
            .capabilities
            .iter()
            .map(|capability| pb::Capability { code: capability.code.clone(), tier: capability.tier })
            .collect(),
        headcount: profile.headcount,
        home: Some(position_out(profile.home)),
        position: Some(position_out(team.position)),
        speed_kmh: profile.speed_kmh,
        insurance_expires: profile.insurance_expires.map(timestamp_out),
        status: team_status_out(team.status).into(),
        version: team.version,
        assignment_id: team.assignment_id.clone().unwrap_or_default(),
        last_report_at: team.last_report_at.map(timestamp_out),
        members: profile
            .members
            .iter()
            .map(|member| pb::Member {
                id: member.id.clone(),
                name: member.name.clone(),
                role: member.role.clone(),
                certifications: member
                    .certifications
                    .iter()
                    .map(|certification| pb::Certification {
                        code: certification.code.clone(),
                        expires: certification.expires.map(timestamp_out),
                    })
                    .collect(),
                insurance_expires: member.insurance_expires.map(timestamp_out),
                on_duty: member.on_duty,
            })
            .collect(),
    }
}
