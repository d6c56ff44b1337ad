//! Conversions between protobuf messages (`pb::`) and domain types. Input
//! conversions validate shape (enums, timestamps, required messages) and name
//! the field they refuse; business rules are the domain's.

use muster_proto::v1 as pb;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::limits::MAX_MESSAGE_BYTES;
use crate::domain::team::{Certification, Member, Team, TeamProfile, TeamStatus};
use crate::domain::{Capability, LatLng, Timestamp};

/// Earliest and latest times accepted: years 0001 to 9999, as in `google.protobuf.Timestamp`;
/// narrowed to what fits nanoseconds in an i64 (1677 to 2262).
const MIN_SECONDS: i64 = i64::MIN / Timestamp::NANOS_PER_SECOND + 1;
const MAX_SECONDS: i64 = i64::MAX / Timestamp::NANOS_PER_SECOND - 1;

/// A protobuf timestamp as a domain time.
pub fn timestamp_in(field: &str, value: &muster_proto::Timestamp) -> DomainResult<Timestamp> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(DomainError::invalid(format!("{field}.nanos"), "must be between 0 and 999,999,999"));
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&value.seconds) {
        return Err(DomainError::invalid(format!("{field}.seconds"), "must be between the years 1678 and 2261"));
    }
    Ok(Timestamp(value.seconds * Timestamp::NANOS_PER_SECOND + i64::from(value.nanos)))
}

/// An optional protobuf timestamp.
pub fn optional_timestamp_in(field: &str, value: Option<&muster_proto::Timestamp>) -> DomainResult<Option<Timestamp>> {
    value.map(|value| timestamp_in(field, value)).transpose()
}

/// A domain time as a protobuf timestamp.
pub fn timestamp_out(value: Timestamp) -> muster_proto::Timestamp {
    muster_proto::Timestamp { seconds: value.unix_seconds(), nanos: value.subsec_nanos() }
}

/// An optional position (range checks are the domain's).
pub fn position_in(value: Option<&pb::LatLng>) -> Option<LatLng> {
    value.map(|value| LatLng { lat: value.lat, lng: value.lng })
}

/// A required position.
pub fn required_position_in(field: &str, value: Option<&pb::LatLng>) -> DomainResult<LatLng> {
    position_in(value).ok_or_else(|| DomainError::invalid(field, "is required"))
}

/// A domain position as protobuf.
pub fn position_out(value: LatLng) -> pb::LatLng {
    pb::LatLng { lat: value.lat, lng: value.lng }
}

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

/// Opaque page tokens: the hex of the last key returned.
pub mod page_token {
    use crate::domain::error::{DomainError, DomainResult};

    /// The token that continues after `last_key`.
    pub fn encode(last_key: &str) -> String {
        hex::encode(last_key.as_bytes())
    }

    /// The key to continue after, or `None` for the first page.
    pub fn decode(token: &str) -> DomainResult<Option<String>> {
        if token.is_empty() {
            return Ok(None);
        }
        hex::decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| DomainError::invalid("page_token", "is not a token this server issued"))
    }

    /// The token after a sequence number.
    pub fn encode_sequence(last: u64) -> String {
        encode(&last.to_string())
    }

    /// The sequence to continue after (0 for the first page).
    pub fn decode_sequence(token: &str) -> DomainResult<u64> {
        match decode(token)? {
            None => Ok(0),
            Some(text) => {
                text.parse().map_err(|_| DomainError::invalid("page_token", "is not a token this server issued"))
            }
        }
    }
}

/// Room for one page's items: the message limit less a margin for the page
/// token and framing, so no list response exceeds [`MAX_MESSAGE_BYTES`].
pub const PAGE_BYTES: usize = MAX_MESSAGE_BYTES - 64 * 1024;

/// Counts the bytes of a page as it fills (`api.md`, "Operations": a page
/// ends early, with a token, rather than exceed the message limit).
#[derive(Debug, Default)]
pub struct PageBytes {
    used: usize,
}

impl PageBytes {
    /// Takes `message` into the page if it fits; the first item always fits
    /// (a request of that size was accepted, so one answer of it is sent).
    pub fn take(&mut self, message: &impl prost::Message) -> bool {
        // The field tag and the length prefix of a repeated message.
        let size = message.encoded_len() + 1 + prost::length_delimiter_len(message.encoded_len());
        if self.used > 0 && self.used + size > PAGE_BYTES {
            return false;
        }
        self.used += size;
        true
    }
}

/// Takes up to `page_size` items from an ordered iterator of `(key, item)`,
/// rendered by `render`, stopping early before the page would pass
/// [`PAGE_BYTES`]; returns them and the token for the next page (empty when
/// there is none).
pub fn page<'a, K, V, P, I>(
    items: I,
    page_size: usize,
    key_text: impl Fn(&K) -> String,
    render: impl Fn(&V) -> P,
) -> (Vec<P>, String)
where
    I: Iterator<Item = (&'a K, &'a V)>,
    K: 'a,
    V: 'a,
    P: prost::Message,
{
    let mut page = Vec::with_capacity(page_size.min(1_000));
    let mut bytes = PageBytes::default();
    let mut last_key = None;
    let mut more = false;
    for (key, value) in items {
        if page.len() == page_size {
            more = true;
            break;
        }
        let rendered = render(value);
        if !bytes.take(&rendered) {
            more = true;
            break;
        }
        last_key = Some(key_text(key));
        page.push(rendered);
    }
    let token = match (more, last_key) {
        (true, Some(last)) => page_token::encode(&last),
        _ => String::new(),
    };
    (page, token)
}

/// An item from protobuf.
pub fn item_in(field: &str, item: Option<pb::Item>) -> DomainResult<crate::domain::reserve::Item> {
    let item = item.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    Ok(crate::domain::reserve::Item { code: item.code, name: item.name, unit: item.unit, category: item.category })
}

/// A domain item as protobuf.
pub fn item_out(item: &crate::domain::reserve::Item) -> pb::Item {
    pb::Item {
        code: item.code.clone(),
        name: item.name.clone(),
        unit: item.unit.clone(),
        category: item.category.clone(),
    }
}

/// A depot from protobuf.
pub fn depot_in(field: &str, depot: Option<pb::Depot>) -> DomainResult<crate::domain::reserve::Depot> {
    let depot = depot.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    Ok(crate::domain::reserve::Depot {
        position: required_position_in(&format!("{field}.position"), depot.position.as_ref())?,
        id: depot.id,
        name: depot.name,
        organization: depot.organization,
    })
}

/// A domain depot as protobuf.
pub fn depot_out(depot: &crate::domain::reserve::Depot) -> pb::Depot {
    pb::Depot {
        id: depot.id.clone(),
        name: depot.name.clone(),
        organization: depot.organization.clone(),
        position: Some(position_out(depot.position)),
    }
}

/// A domain stock level as protobuf.
pub fn stock_out(level: &crate::domain::reserve::StockLevel) -> pb::StockLevel {
    pb::StockLevel {
        depot_id: level.depot_id.clone(),
        item_code: level.item_code.clone(),
        on_hand: level.on_hand,
        reserved: level.reserved,
        available: level.available,
        min_reserve: level.min_reserve,
    }
}

/// A ledger reason; unspecified is `None`.
pub fn ledger_reason_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::reserve::LedgerReason>> {
    use crate::domain::reserve::LedgerReason;
    let reason = pb::LedgerReason::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a LedgerReason")))?;
    Ok(match reason {
        pb::LedgerReason::Unspecified => None,
        pb::LedgerReason::Received => Some(LedgerReason::Received),
        pb::LedgerReason::Issued => Some(LedgerReason::Issued),
        pb::LedgerReason::Consumed => Some(LedgerReason::Consumed),
        pb::LedgerReason::Returned => Some(LedgerReason::Returned),
        pb::LedgerReason::Transferred => Some(LedgerReason::Transferred),
        pb::LedgerReason::Lost => Some(LedgerReason::Lost),
        pb::LedgerReason::Counted => Some(LedgerReason::Counted),
    })
}

/// A domain ledger reason as protobuf.
pub fn ledger_reason_out(reason: crate::domain::reserve::LedgerReason) -> pb::LedgerReason {
    use crate::domain::reserve::LedgerReason;
    match reason {
        LedgerReason::Received => pb::LedgerReason::Received,
        LedgerReason::Issued => pb::LedgerReason::Issued,
        LedgerReason::Consumed => pb::LedgerReason::Consumed,
        LedgerReason::Returned => pb::LedgerReason::Returned,
        LedgerReason::Transferred => pb::LedgerReason::Transferred,
        LedgerReason::Lost => pb::LedgerReason::Lost,
        LedgerReason::Counted => pb::LedgerReason::Counted,
    }
}

/// A ledger entry as protobuf.
pub fn ledger_entry_out(
    depot_id: &str,
    item_code: &str,
    entry: &crate::domain::reserve::LedgerEntry,
) -> pb::LedgerEntry {
    pb::LedgerEntry {
        sequence: entry.sequence,
        depot_id: depot_id.to_owned(),
        item_code: item_code.to_owned(),
        delta: entry.delta,
        reason: ledger_reason_out(entry.reason).into(),
        actor: entry.actor.clone(),
        note: entry.note.clone(),
        time: Some(timestamp_out(entry.time)),
    }
}

/// A level; unspecified is `None`.
pub fn level_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::Level>> {
    use crate::domain::Level;
    let level =
        pb::Level::try_from(value).map_err(|_| DomainError::invalid(field, format!("{value} is not a Level")))?;
    Ok(match level {
        pb::Level::Unspecified => None,
        pb::Level::I => Some(Level::I),
        pb::Level::Ii => Some(Level::II),
        pb::Level::Iii => Some(Level::III),
        pb::Level::Iv => Some(Level::IV),
    })
}

/// A domain level as protobuf.
pub fn level_out(level: crate::domain::Level) -> pb::Level {
    use crate::domain::Level;
    match level {
        Level::I => pb::Level::I,
        Level::II => pb::Level::Ii,
        Level::III => pb::Level::Iii,
        Level::IV => pb::Level::Iv,
    }
}

/// A hazard; unspecified is `None`.
pub fn hazard_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::Hazard>> {
    use crate::domain::Hazard;
    let hazard =
        pb::Hazard::try_from(value).map_err(|_| DomainError::invalid(field, format!("{value} is not a Hazard")))?;
    Ok(match hazard {
        pb::Hazard::Unspecified => None,
        pb::Hazard::PowerOutage => Some(Hazard::PowerOutage),
        pb::Hazard::Hazmat => Some(Hazard::Hazmat),
        pb::Hazard::Flood => Some(Hazard::Flood),
        pb::Hazard::Fire => Some(Hazard::Fire),
        pb::Hazard::Earthquake => Some(Hazard::Earthquake),
        pb::Hazard::Mine => Some(Hazard::Mine),
        pb::Hazard::ForestFire => Some(Hazard::ForestFire),
        pb::Hazard::Other => Some(Hazard::Other),
    })
}

/// A domain hazard as protobuf.
pub fn hazard_out(hazard: crate::domain::Hazard) -> pb::Hazard {
    use crate::domain::Hazard;
    match hazard {
        Hazard::PowerOutage => pb::Hazard::PowerOutage,
        Hazard::Hazmat => pb::Hazard::Hazmat,
        Hazard::Flood => pb::Hazard::Flood,
        Hazard::Fire => pb::Hazard::Fire,
        Hazard::Earthquake => pb::Hazard::Earthquake,
        Hazard::Mine => pb::Hazard::Mine,
        Hazard::ForestFire => pb::Hazard::ForestFire,
        Hazard::Other => pb::Hazard::Other,
    }
}

/// A team need from protobuf.
pub fn team_need_in(need: &pb::TeamNeed) -> crate::domain::TeamNeed {
    crate::domain::TeamNeed { capability: need.capability.clone(), min_tier: need.min_tier, count: need.count }
}

/// A supply need from protobuf.
pub fn supply_need_in(need: &pb::SupplyNeed) -> crate::domain::SupplyNeed {
    crate::domain::SupplyNeed { item_code: need.item_code.clone(), quantity: need.quantity }
}

/// A plan from protobuf (its version is ignored: the server assigns it).
pub fn plan_in(field: &str, plan: Option<pb::Plan>) -> DomainResult<crate::domain::plan::Plan> {
    use crate::domain::plan::{LevelRequirement, Plan, Task, Trigger};
    let plan = plan.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    crate::domain::validate::repeated(&format!("{field}.levels"), &plan.levels)?;
    crate::domain::validate::repeated(&format!("{field}.triggers"), &plan.triggers)?;
    let mut levels = Vec::with_capacity(plan.levels.len());
    for (index, requirement) in plan.levels.iter().enumerate() {
        let level_field = format!("{field}.levels[{index}]");
        crate::domain::validate::repeated(&format!("{level_field}.teams"), &requirement.teams)?;
        crate::domain::validate::repeated(&format!("{level_field}.supplies"), &requirement.supplies)?;
        crate::domain::validate::repeated(&format!("{level_field}.tasks"), &requirement.tasks)?;
        levels.push(LevelRequirement {
            level: level_in(&format!("{level_field}.level"), requirement.level)?
                .ok_or_else(|| DomainError::invalid(format!("{level_field}.level"), "is required"))?,
            teams: requirement.teams.iter().map(team_need_in).collect(),
            supplies: requirement.supplies.iter().map(supply_need_in).collect(),
            tasks: requirement
                .tasks
                .iter()
                .map(|task| Task {
                    title: task.title.clone(),
                    lead: task.lead.clone(),
                    supporting: task.supporting.clone(),
                })
                .collect(),
        });
    }
    let mut triggers = Vec::with_capacity(plan.triggers.len());
    for (index, trigger) in plan.triggers.iter().enumerate() {
        let trigger_field = format!("{field}.triggers[{index}]");
        triggers.push(Trigger {
            metric: trigger.metric.clone(),
            threshold: trigger.threshold,
            level: level_in(&format!("{trigger_field}.level"), trigger.level)?
                .ok_or_else(|| DomainError::invalid(format!("{trigger_field}.level"), "is required"))?,
        });
    }
    Ok(Plan {
        hazard: hazard_in(&format!("{field}.hazard"), plan.hazard)?
            .ok_or_else(|| DomainError::invalid(format!("{field}.hazard"), "is required"))?,
        id: plan.id,
        name: plan.name,
        levels,
        triggers,
        version: 0,
    })
}

/// A domain plan as protobuf.
pub fn plan_out(plan: &crate::domain::plan::Plan) -> pb::Plan {
    pb::Plan {
        id: plan.id.clone(),
        name: plan.name.clone(),
        hazard: hazard_out(plan.hazard).into(),
        levels: plan
            .levels
            .iter()
            .map(|requirement| pb::LevelRequirement {
                level: level_out(requirement.level).into(),
                teams: requirement
                    .teams
                    .iter()
                    .map(|team| pb::TeamNeed {
                        capability: team.capability.clone(),
                        min_tier: team.min_tier,
                        count: team.count,
                    })
                    .collect(),
                supplies: requirement
                    .supplies
                    .iter()
                    .map(|supply| pb::SupplyNeed { item_code: supply.item_code.clone(), quantity: supply.quantity })
                    .collect(),
                tasks: requirement
                    .tasks
                    .iter()
                    .map(|task| pb::Task {
                        title: task.title.clone(),
                        lead: task.lead.clone(),
                        supporting: task.supporting.clone(),
                    })
                    .collect(),
            })
            .collect(),
        triggers: plan
            .triggers
            .iter()
            .map(|trigger| pb::Trigger {
                metric: trigger.metric.clone(),
                threshold: trigger.threshold,
                level: level_out(trigger.level).into(),
            })
            .collect(),
        version: plan.version,
    }
}

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
