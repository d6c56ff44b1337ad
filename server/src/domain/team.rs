//! Rescue teams: the roster record, its validation, and the roster commands
//! (register, update, report status).

use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::Event;
use super::limits::{MAX_HEADCOUNT, MAX_SPEED_KMH, MIN_SPEED_KMH};
use super::state::State;
use super::types::{Capability, LatLng, Timestamp};
use super::validate;

/// A team's live status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TeamStatus {
    /// Ready to be dispatched.
    Available,
    /// Holds an assignment it has not yet set out for.
    Assigned,
    /// Travelling to an incident.
    EnRoute,
    /// At the incident.
    OnScene,
    /// Travelling home after a release.
    Returning,
    /// Not to be dispatched (resting, broken down, ...).
    OutOfService,
}

impl TeamStatus {
    /// The status name as the CLI and drill files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            TeamStatus::Available => "AVAILABLE",
            TeamStatus::Assigned => "ASSIGNED",
            TeamStatus::EnRoute => "EN_ROUTE",
            TeamStatus::OnScene => "ON_SCENE",
            TeamStatus::Returning => "RETURNING",
            TeamStatus::OutOfService => "OUT_OF_SERVICE",
        }
    }

    /// Parses the status name (`"OUT_OF_SERVICE"`, case-insensitive).
    pub fn parse(text: &str) -> Option<TeamStatus> {
        let upper = text.to_ascii_uppercase();
        [
            TeamStatus::Available,
            TeamStatus::Assigned,
            TeamStatus::EnRoute,
            TeamStatus::OnScene,
            TeamStatus::Returning,
            TeamStatus::OutOfService,
        ]
        .into_iter()
        .find(|status| status.as_str() == upper)
    }

    /// True for the statuses that only an active assignment explains.
    pub fn needs_assignment(self) -> bool {
        matches!(self, TeamStatus::Assigned | TeamStatus::EnRoute | TeamStatus::OnScene)
    }
}

/// A member's certification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certification {
    /// What the certificate is for.
    pub code: String,
    /// When it runs out, if it does.
    pub expires: Option<Timestamp>,
}

/// A member of a team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Unique within the team.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Role in the team (leader, diver, driver, ...).
    pub role: String,
    /// Certifications held.
    pub certifications: Vec<Certification>,
    /// When the member's accident insurance runs out.
    pub insurance_expires: Option<Timestamp>,
    /// Whether the member is on duty now.
    pub on_duty: bool,
}

/// The roster data a team's owner maintains; `UpdateTeam` replaces it whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamProfile {
    /// Display name.
    pub name: String,
    /// The organization the team belongs to.
    pub organization: String,
    /// What the team can do, sorted by code, one entry per code.
    pub capabilities: Vec<Capability>,
    /// People in the team (the number on duty when members are listed).
    pub headcount: u32,
    /// Home base.
    pub home: LatLng,
    /// Road speed.
    pub speed_kmh: f64,
    /// When the team's accident insurance runs out.
    pub insurance_expires: Option<Timestamp>,
    /// Members, when the roster app keeps them.
    pub members: Vec<Member>,
}

impl TeamProfile {
    /// Validates the profile and normalises it (capabilities sorted by code,
    /// headcount derived from members on duty). `field` prefixes field names.
    pub fn validated(mut self, field: &str) -> DomainResult<TeamProfile> {
        validate::text(&format!("{field}.name"), &self.name, true)?;
        validate::text(&format!("{field}.organization"), &self.organization, false)?;
        validate::repeated(&format!("{field}.capabilities"), &self.capabilities)?;
        for (index, capability) in self.capabilities.iter().enumerate() {
            validate::code(&format!("{field}.capabilities[{index}].code"), &capability.code)?;
            validate::tier(&format!("{field}.capabilities[{index}].tier"), capability.tier)?;
        }
        self.capabilities.sort();
        if let Some(pair) = self.capabilities.windows(2).find(|pair| pair[0].code == pair[1].code) {
            return Err(DomainError::invalid(
                format!("{field}.capabilities"),
                format!("lists capability {:?} more than once", pair[0].code),
            ));
        }
        validate::position(&format!("{field}.home"), &self.home)?;
        if !self.speed_kmh.is_finite() || !(MIN_SPEED_KMH..=MAX_SPEED_KMH).contains(&self.speed_kmh) {
            return Err(DomainError::invalid(
                format!("{field}.speed_kmh"),
                format!("must be between {MIN_SPEED_KMH} and {MAX_SPEED_KMH}"),
            ));
        }
        self.validate_members(field)?;
        Ok(self)
    }

    fn validate_members(&mut self, field: &str) -> DomainResult<()> {
        validate::repeated(&format!("{field}.members"), &self.members)?;
        if self.members.is_empty() {
            if self.headcount == 0 || self.headcount > MAX_HEADCOUNT {
                return Err(DomainError::invalid(
                    format!("{field}.headcount"),
                    format!("must be between 1 and {MAX_HEADCOUNT} when no members are listed"),
                ));
            }
            return Ok(());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, member) in self.members.iter().enumerate() {
            let member_field = format!("{field}.members[{index}]");
            validate::id(&format!("{member_field}.id"), &member.id)?;
            if !seen.insert(member.id.as_str()) {
                return Err(DomainError::invalid(format!("{member_field}.id"), "is listed twice"));
            }
            validate::text(&format!("{member_field}.name"), &member.name, true)?;
            validate::text(&format!("{member_field}.role"), &member.role, false)?;
            validate::repeated(&format!("{member_field}.certifications"), &member.certifications)?;
            for (cert_index, certification) in member.certifications.iter().enumerate() {
                validate::id(&format!("{member_field}.certifications[{cert_index}].code"), &certification.code)?;
            }
        }
        let on_duty = self.members.iter().filter(|member| member.on_duty).count();
        let on_duty = u32::try_from(on_duty).unwrap_or(u32::MAX);
        if self.headcount != 0 && self.headcount != on_duty {
            return Err(DomainError::invalid(
                format!("{field}.headcount"),
                format!("must be 0 or the number of members on duty ({on_duty}) when members are listed"),
            ));
        }
        self.headcount = on_duty;
        Ok(())
    }
}

/// A rescue team as the roster keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Team {
    /// Client-chosen id.
    pub id: String,
    /// The roster data.
    pub profile: TeamProfile,
    /// Where the team is now.
    pub position: LatLng,
    /// What the team is doing now.
    pub status: TeamStatus,
    /// 1 at registration, +1 on every change.
    pub version: u64,
    /// The active assignment, if any.
    pub assignment_id: Option<String>,
    /// The roster app's last report.
    pub last_report_at: Option<Timestamp>,
}

impl Team {
    /// The team's tier for a capability, if it has it.
    pub fn tier(&self, capability: &str) -> Option<u32> {
        self.profile.capabilities.iter().find(|candidate| candidate.code == capability).map(|candidate| candidate.tier)
    }

    /// True when the team has `capability` at `min_tier` or better.
    pub fn qualifies(&self, capability: &str, min_tier: u32) -> bool {
        self.tier(capability).is_some_and(|tier| tier <= min_tier)
    }

    /// True when the team's accident insurance is on record and runs past `now`.
    pub fn insured_at(&self, now: Timestamp) -> bool {
        self.profile.insurance_expires.is_some_and(|expires| expires > now)
    }

    /// The people who may be sent at `now`: without a member list, the
    /// headcount; with one, the members on duty whose own accident
    /// insurance is on record and runs past `now` (rescuers must be insured).
    pub fn on_duty_at(&self, now: Timestamp) -> u32 {
        if self.profile.members.is_empty() {
            return self.profile.headcount;
        }
        let insured = self
            .profile
            .members
            .iter()
            .filter(|member| member.on_duty && member.insurance_expires.is_some_and(|expires| expires > now))
            .count();
        u32::try_from(insured).unwrap_or(u32::MAX)
    }
}

/// Registers a new team.
pub(super) fn register(
    state: &State,
    id: &str,
    profile: TeamProfile,
    status: Option<TeamStatus>,
    position: Option<LatLng>,
) -> DomainResult<Vec<Event>> {
    validate::id("team.id", id)?;
    let profile = profile.validated("team")?;
    let status = status.unwrap_or(TeamStatus::Available);
    if !matches!(status, TeamStatus::Available | TeamStatus::OutOfService) {
        return Err(DomainError::invalid(
            "team.status",
            "a new team is AVAILABLE or OUT_OF_SERVICE; other statuses come from assignments",
        ));
    }
    if let Some(position) = &position {
        validate::position("team.position", position)?;
    }
    if state.teams.contains_key(id) {
        return Err(DomainError::already_exists("team", id));
    }
    let team = Team {
        id: id.to_owned(),
        position: position.unwrap_or(profile.home),
        profile,
        status,
        version: 1,
        assignment_id: None,
        last_report_at: None,
    };
    Ok(vec![Event::TeamRegistered { team }])
}

/// Replaces a team's roster data.
pub(super) fn update(state: &State, id: &str, profile: TeamProfile, expected_version: u64) -> DomainResult<Vec<Event>> {
    validate::id("team.id", id)?;
    let profile = profile.validated("team")?;
    let team = state.team(id)?;
    if expected_version != 0 && expected_version != team.version {
        return Err(DomainError::VersionMismatch {
            kind: "team",
            id: id.to_owned(),
            expected: expected_version,
            actual: team.version,
        });
    }
    if team.profile == profile {
        return Ok(Vec::new());
    }
    Ok(vec![Event::TeamProfileUpdated { team_id: id.to_owned(), profile }])
}

/// The roster app's report of status and/or position (a report with neither
/// is a heartbeat: it only refreshes `last_report_at`).
pub(super) fn report_status(
    state: &State,
    team_id: &str,
    status: Option<TeamStatus>,
    position: Option<LatLng>,
) -> DomainResult<Vec<Event>> {
    validate::id("team_id", team_id)?;
    if let Some(position) = &position {
        validate::position("position", position)?;
    }
    let team = state.team(team_id)?;
    let status = status.filter(|status| *status != team.status);
    if let Some(new_status) = status {
        if new_status.needs_assignment() {
            return Err(DomainError::precondition(format!(
                "team {team_id:?} cannot report {}: that status follows its assignment \
                 (use UpdateAssignment)",
                new_status.as_str()
            )));
        }
        if let Some(assignment_id) = &team.assignment_id {
            if new_status != TeamStatus::OutOfService {
                return Err(DomainError::precondition(format!(
                    "team {team_id:?} holds assignment {assignment_id:?}; its status follows the \
                     assignment (use UpdateAssignment)"
                )));
            }
        }
    }
    let mut events = Vec::new();
    if let (Some(TeamStatus::OutOfService), Some(assignment_id)) = (status, &team.assignment_id) {
        // A team that breaks down or is hurt cannot go on: its assignment is
        // withdrawn and that part of the need is open again.
        events.extend(super::assignment::withdraw(state, assignment_id, team_id)?);
    }
    events.push(Event::TeamStatusReported { team_id: team_id.to_owned(), status, position });
    Ok(events)
}
