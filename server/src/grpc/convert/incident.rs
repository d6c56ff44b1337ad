//! Incidents, needs, assignments, zones, and the incident requests.

use muster_proto::v1 as pb;

use super::common::{hazard_in, hazard_out, level_in, level_out, position_in, position_out, timestamp_out};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::LatLng;

/// An incident status; unspecified is `None`.
pub fn incident_status_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::incident::IncidentStatus>> {
    use crate::domain::incident::IncidentStatus;
    let status = pb::IncidentStatus::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not an IncidentStatus")))?;
    Ok(match status {
        pb::IncidentStatus::Unspecified => None,
        pb::IncidentStatus::Active => Some(IncidentStatus::Active),
        pb::IncidentStatus::Contained => Some(IncidentStatus::Contained),
        pb::IncidentStatus::Closed => Some(IncidentStatus::Closed),
    })
}

/// A domain incident status as protobuf.
pub fn incident_status_out(status: crate::domain::incident::IncidentStatus) -> pb::IncidentStatus {
    use crate::domain::incident::IncidentStatus;
    match status {
        IncidentStatus::Active => pb::IncidentStatus::Active,
        IncidentStatus::Contained => pb::IncidentStatus::Contained,
        IncidentStatus::Closed => pb::IncidentStatus::Closed,
    }
}

/// Metrics from protobuf, ordered.
pub fn metrics_in(metrics: std::collections::HashMap<String, f64>) -> std::collections::BTreeMap<String, f64> {
    metrics.into_iter().collect()
}

/// A need as protobuf; its priority follows its incident's level.
pub fn need_out(need: &crate::domain::incident::Need, priority: crate::domain::Level) -> pb::Need {
    use crate::domain::incident::NeedStatus;
    use crate::domain::plan::NeedKey;
    let resource = match &need.key {
        NeedKey::Team { capability, min_tier } => pb::need::Resource::Team(pb::TeamNeed {
            capability: capability.clone(),
            min_tier: *min_tier,
            count: u32::try_from(need.amount).unwrap_or(u32::MAX),
        }),
        NeedKey::Supply { item_code } => {
            pb::need::Resource::Supply(pb::SupplyNeed { item_code: item_code.clone(), quantity: need.amount })
        }
    };
    pb::Need {
        id: need.id(),
        incident_id: need.incident_id.clone(),
        resource: Some(resource),
        priority: level_out(priority).into(),
        filled: u64::try_from(need.filled).unwrap_or(0),
        status: match need.status() {
            NeedStatus::Open => pb::NeedStatus::Open,
            NeedStatus::Partial => pb::NeedStatus::Partial,
            NeedStatus::Filled => pb::NeedStatus::Filled,
            NeedStatus::Cancelled => pb::NeedStatus::Cancelled,
        }
        .into(),
        from_plan: need.from_plan,
        raised_at: Some(timestamp_out(need.raised_at)),
    }
}

/// An incident with its needs as protobuf.
pub fn incident_out(view: &crate::domain::reply::IncidentView) -> pb::Incident {
    let incident = &view.incident;
    pb::Incident {
        id: incident.id.clone(),
        title: incident.title.clone(),
        hazard: hazard_out(incident.hazard).into(),
        position: Some(position_out(incident.position)),
        area: incident.area.iter().copied().map(position_out).collect(),
        level: level_out(incident.level).into(),
        metrics: incident.metrics.iter().map(|(name, value)| (name.clone(), *value)).collect(),
        status: incident_status_out(incident.status).into(),
        plan_id: incident.plan.as_ref().map(|plan| plan.id.clone()).unwrap_or_default(),
        plan_version: incident.plan.as_ref().map(|plan| plan.version).unwrap_or(0),
        needs: view.needs.iter().map(|need| need_out(need, incident.level)).collect(),
        declared_at: Some(timestamp_out(incident.declared_at)),
        closed_at: incident.closed_at.map(timestamp_out),
        version: incident.version,
    }
}

/// An assignment status as protobuf.
pub fn assignment_status_out(status: crate::domain::assignment::AssignmentStatus) -> pb::AssignmentStatus {
    use crate::domain::assignment::AssignmentStatus;
    match status {
        AssignmentStatus::Dispatched => pb::AssignmentStatus::Dispatched,
        AssignmentStatus::Acknowledged => pb::AssignmentStatus::Acknowledged,
        AssignmentStatus::EnRoute => pb::AssignmentStatus::EnRoute,
        AssignmentStatus::OnScene => pb::AssignmentStatus::OnScene,
        AssignmentStatus::Released => pb::AssignmentStatus::Released,
        AssignmentStatus::Cancelled => pb::AssignmentStatus::Cancelled,
        AssignmentStatus::Declined => pb::AssignmentStatus::Declined,
    }
}

/// A target status for `UpdateAssignment` (proposed and unspecified are not targets).
pub fn assignment_status_in(field: &str, value: i32) -> DomainResult<crate::domain::assignment::AssignmentStatus> {
    use crate::domain::assignment::AssignmentStatus;
    let status = pb::AssignmentStatus::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not an AssignmentStatus")))?;
    match status {
        pb::AssignmentStatus::Unspecified => Err(DomainError::invalid(field, "is required")),
        pb::AssignmentStatus::Proposed => Err(DomainError::invalid(field, "PROPOSED is for dry runs only")),
        pb::AssignmentStatus::Dispatched => Ok(AssignmentStatus::Dispatched),
        pb::AssignmentStatus::Acknowledged => Ok(AssignmentStatus::Acknowledged),
        pb::AssignmentStatus::EnRoute => Ok(AssignmentStatus::EnRoute),
        pb::AssignmentStatus::OnScene => Ok(AssignmentStatus::OnScene),
        pb::AssignmentStatus::Released => Ok(AssignmentStatus::Released),
        pb::AssignmentStatus::Cancelled => Ok(AssignmentStatus::Cancelled),
        pb::AssignmentStatus::Declined => Ok(AssignmentStatus::Declined),
    }
}

fn resource_out(resource: &crate::domain::assignment::AssignedResource) -> pb::assignment::Resource {
    use crate::domain::assignment::AssignedResource;
    match resource {
        AssignedResource::Team { team_id } => pb::assignment::Resource::TeamId(team_id.clone()),
        AssignedResource::Supply { depot_id, item_code, quantity } => {
            pb::assignment::Resource::Supply(pb::SupplyAllocation {
                depot_id: depot_id.clone(),
                item_code: item_code.clone(),
                quantity: *quantity,
            })
        }
    }
}

/// A stored assignment as protobuf.
pub fn assignment_out(assignment: &crate::domain::assignment::Assignment) -> pb::Assignment {
    pb::Assignment {
        id: assignment.id(),
        incident_id: assignment.incident_id.clone(),
        need_id: crate::domain::incident::need_id(assignment.need_number),
        resource: Some(resource_out(&assignment.resource)),
        status: assignment_status_out(assignment.status).into(),
        distance_km: assignment.distance_km,
        eta_minutes: assignment.eta_minutes,
        reason: assignment.reason.clone(),
        reserve_override: assignment.reserve_override,
        priority: level_out(assignment.priority).into(),
        created_at: Some(timestamp_out(assignment.created_at)),
        updated_at: Some(timestamp_out(assignment.updated_at)),
        by_hand: assignment.by_hand,
        returned_quantity: assignment.returned_quantity,
        note: assignment.note.clone(),
    }
}

/// A dry run's proposal as protobuf: status `PROPOSED`, no id.
pub fn proposal_out(proposal: &crate::dispatch::Proposal, now: crate::domain::Timestamp) -> pb::Assignment {
    pb::Assignment {
        id: String::new(),
        incident_id: proposal.incident_id.clone(),
        need_id: crate::domain::incident::need_id(proposal.need_number),
        resource: Some(resource_out(&proposal.resource)),
        status: pb::AssignmentStatus::Proposed.into(),
        distance_km: proposal.distance_km,
        eta_minutes: proposal.eta_minutes,
        reason: proposal.reason.clone(),
        reserve_override: proposal.override_quantity > 0,
        priority: level_out(proposal.priority).into(),
        created_at: Some(timestamp_out(now)),
        updated_at: Some(timestamp_out(now)),
        by_hand: false,
        returned_quantity: 0,
        note: String::new(),
    }
}

/// What `AssignResource` names: a team, or a quantity from a depot.
pub fn hand_resource_in(
    resource: Option<pb::assign_resource_request::Resource>,
) -> DomainResult<crate::domain::command::HandResource> {
    use crate::domain::command::HandResource;
    match resource {
        Some(pb::assign_resource_request::Resource::TeamId(team_id)) => Ok(HandResource::Team { team_id }),
        Some(pb::assign_resource_request::Resource::Supply(supply)) => Ok(HandResource::Supply {
            depot_id: supply.depot_id,
            item_code: supply.item_code,
            quantity: supply.quantity,
        }),
        None => Err(DomainError::invalid("team_id", "is required (or supply, for a supply need)")),
    }
}

/// A shortfall as protobuf.
pub fn shortfall_out(shortfall: &crate::domain::event::Shortfall) -> pb::Shortfall {
    pb::Shortfall {
        need_id: crate::domain::incident::need_id(shortfall.need_number),
        missing: u64::try_from(shortfall.missing).unwrap_or(0),
        reason: shortfall.reason.clone(),
        incident_id: shortfall.incident_id.clone(),
    }
}

/// A zone from protobuf.
pub fn zone_in(field: &str, zone: Option<pb::Zone>) -> DomainResult<crate::domain::zone::Zone> {
    let zone = zone.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    crate::domain::validate::polygon_size(&format!("{field}.polygon"), &zone.polygon)?;
    Ok(crate::domain::zone::Zone {
        id: zone.id,
        polygon: zone.polygon.iter().map(|vertex| LatLng { lat: vertex.lat, lng: vertex.lng }).collect(),
        note: zone.note,
        active: true,
    })
}

/// A zone as protobuf.
pub fn zone_out(zone: &crate::domain::zone::Zone) -> pb::Zone {
    pb::Zone {
        id: zone.id.clone(),
        polygon: zone.polygon.iter().copied().map(position_out).collect(),
        note: zone.note.clone(),
        active: zone.active,
    }
}

impl TryFrom<pb::DeclareIncidentRequest> for crate::domain::Command {
    type Error = DomainError;

    /// `DeclareIncident`: the plan may be named on the request or on the
    /// incident, not differently on both.
    fn try_from(request: pb::DeclareIncidentRequest) -> DomainResult<Self> {
        let incident = request.incident.ok_or_else(|| DomainError::invalid("incident", "is required"))?;
        let plan_id = match (request.plan_id.is_empty(), incident.plan_id.is_empty()) {
            (true, true) => None,
            (false, true) => Some(request.plan_id),
            (true, false) => Some(incident.plan_id.clone()),
            (false, false) if request.plan_id == incident.plan_id => Some(request.plan_id),
            (false, false) => {
                return Err(DomainError::invalid("plan_id", "differs from incident.plan_id; give one of them"));
            }
        };
        crate::domain::validate::polygon_size("incident.area", &incident.area)?;
        let declaration = crate::domain::incident::Declaration {
            id: incident.id,
            title: incident.title,
            hazard: hazard_in("incident.hazard", incident.hazard)?,
            position: position_in(incident.position.as_ref()),
            area: incident.area.iter().map(|vertex| LatLng { lat: vertex.lat, lng: vertex.lng }).collect(),
            level: level_in("incident.level", incident.level)?,
            metrics: metrics_in(incident.metrics),
            plan_id,
        };
        Ok(crate::domain::Command::DeclareIncident { declaration })
    }
}

impl TryFrom<pb::UpdateIncidentRequest> for crate::domain::Command {
    type Error = DomainError;

    /// `UpdateIncident`: unspecified level and status leave them unchanged.
    fn try_from(request: pb::UpdateIncidentRequest) -> DomainResult<Self> {
        let update = crate::domain::incident::IncidentUpdate {
            level: level_in("level", request.level)?,
            status: incident_status_in("status", request.status)?,
            metrics: metrics_in(request.metrics),
            id: request.id,
        };
        Ok(crate::domain::Command::UpdateIncident { update })
    }
}
