//! Conversions between protobuf messages (`pb::`) and domain types. Input
//! conversions validate shape (enums, timestamps, required messages) and name
//! the field they refuse; business rules are the domain's.

use muster_proto::v1 as pb;

use crate::domain::error::{DomainError, DomainResult};
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

/// Takes up to `page_size` items after `after` from an ordered iterator of
/// `(key, item)`, and the token for the next page (empty when there is none).
pub fn page<'a, K, V, I>(items: I, page_size: usize, key_text: impl Fn(&K) -> String) -> (Vec<&'a V>, String)
where
    I: Iterator<Item = (&'a K, &'a V)>,
    K: 'a,
    V: 'a,
{
    let mut page = Vec::with_capacity(page_size.min(1_000));
    let mut last_key = None;
    let mut more = false;
    for (key, value) in items {
        if page.len() == page_size {
            more = true;
            break;
        }
        last_key = Some(key_text(key));
        page.push(value);
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
