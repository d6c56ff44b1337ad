//! What the domain asks of the dispatcher, and how it records the answer.
//! The dispatcher (`crate::dispatch`) reads the domain's records and
//! returns a [`DispatchPlan`] of proposals; `decide` turns the plan into
//! events here. The arrow points one way: dispatch knows the domain, the
//! domain knows only the [`Planner`] trait it is handed in `Context`. Who
//! may be sent at all ([`team_availability`]) is a domain rule, shared by the
//! dispatcher and hand assignments.

use super::assignment::{AssignedResource, Assignment, AssignmentStatus};
use super::event::{Event, Shortfall};
use super::team::{Team, TeamStatus};
use super::travel::{Settings, Zones};
use super::{DomainError, DomainResult, Level, State, Timestamp};

/// The dispatcher as the domain sees it: given the state, the settings and
/// the time, what it would assign and what it could not fill.
pub trait Planner: Send + Sync + std::fmt::Debug {
    /// Plans a dispatch for `scope`; changes nothing.
    fn plan(&self, state: &State, scope: Scope<'_>, settings: &Settings, now: Timestamp) -> DomainResult<DispatchPlan>;
}

/// The planner of a context that has none (the domain's own tests): every
/// dispatch is refused.
#[derive(Debug)]
pub struct NoPlanner;

impl Planner for NoPlanner {
    fn plan(&self, _: &State, _: Scope<'_>, _: &Settings, _: Timestamp) -> DomainResult<DispatchPlan> {
        Err(DomainError::precondition("this context has no dispatcher"))
    }
}

/// One proposed assignment.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// The need.
    pub need_number: u64,
    /// Its incident.
    pub incident_id: String,
    /// The team or stock.
    pub resource: AssignedResource,
    /// Road distance, km.
    pub distance_km: f64,
    /// Travel time, minutes.
    pub eta_minutes: f64,
    /// Why, in words.
    pub reason: String,
    /// Units taken below the depot's minimum (level I only).
    pub override_quantity: i64,
    /// The incident's level.
    pub priority: Level,
    /// A diversion: the assignment the team leaves for this one.
    pub diverted_from: Option<u64>,
}

/// What a dispatch would do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DispatchPlan {
    /// Assignments to make, in need order.
    pub proposals: Vec<Proposal>,
    /// Needs left short, and why.
    pub shortfalls: Vec<Shortfall>,
}

impl DispatchPlan {
    /// Total team travel in minutes, and total supply travel in unit-minutes
    /// (the dispatcher's objective within each level, summed over levels).
    pub fn total_travel(&self) -> (f64, f64) {
        let mut teams = 0.0;
        let mut units = 0.0;
        for proposal in &self.proposals {
            match &proposal.resource {
                AssignedResource::Team { .. } => teams += proposal.eta_minutes,
                AssignedResource::Supply { quantity, .. } => units += proposal.eta_minutes * *quantity as f64,
            }
        }
        (teams, units)
    }

    /// Teams and units assigned, per level (index 0 is level I).
    pub fn filled_by_level(&self) -> [i64; 4] {
        let mut filled = [0; 4];
        for proposal in &self.proposals {
            filled[proposal.priority.index()] += match &proposal.resource {
                AssignedResource::Team { .. } => 1,
                AssignedResource::Supply { quantity, .. } => *quantity,
            };
        }
        filled
    }
}

/// What a dispatch covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    /// One incident, or every incident (`None`).
    pub incident_id: Option<&'a str>,
    /// Level I and II needs that free teams cannot fill may take teams from
    /// jobs at least two levels less severe.
    pub divert: bool,
}

impl<'a> From<Option<&'a str>> for Scope<'a> {
    fn from(incident_id: Option<&'a str>) -> Self {
        Scope { incident_id, divert: false }
    }
}

/// Why a team is not available for dispatch, if it is not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unavailable {
    Busy,
    OutOfService,
    Uninsured,
    NobodyOnDuty,
    NoInsuredMemberOnDuty,
    InZone(String),
}

impl Unavailable {
    /// In words, after "the team is".
    pub(crate) fn describe(&self) -> String {
        match self {
            Unavailable::Busy => "busy with another assignment".to_owned(),
            Unavailable::OutOfService => "out of service".to_owned(),
            Unavailable::Uninsured => "without valid accident insurance".to_owned(),
            Unavailable::NobodyOnDuty => "with nobody on duty".to_owned(),
            Unavailable::NoInsuredMemberOnDuty => "with no insured member on duty".to_owned(),
            Unavailable::InZone(zone) => format!("inside impassable zone {zone}"),
        }
    }
}

/// Whether a team could take a job now, leaving aside what it is doing:
/// in service, insured, someone insured on duty, not cut off by a zone.
pub(crate) fn team_fit(team: &Team, zones: &Zones, now: Timestamp) -> Result<(), Unavailable> {
    if team.status == TeamStatus::OutOfService {
        return Err(Unavailable::OutOfService);
    }
    if !team.insured_at(now) {
        return Err(Unavailable::Uninsured);
    }
    if team.on_duty_at(now) == 0 {
        return Err(if team.profile.members.is_empty() {
            Unavailable::NobodyOnDuty
        } else {
            Unavailable::NoInsuredMemberOnDuty
        });
    }
    if let Some(zone) = zones.containing(team.position) {
        return Err(Unavailable::InZone(zone.to_owned()));
    }
    Ok(())
}

/// Whether a team can be dispatched now: free (`AVAILABLE`, or `RETURNING`
/// from its last reported position) and fit for a job.
pub(crate) fn team_availability(team: &Team, zones: &Zones, now: Timestamp) -> Result<(), Unavailable> {
    if team.status == TeamStatus::OutOfService {
        return Err(Unavailable::OutOfService);
    }
    if !matches!(team.status, TeamStatus::Available | TeamStatus::Returning) || team.assignment_id.is_some() {
        return Err(Unavailable::Busy);
    }
    team_fit(team, zones, now)
}

/// Whether `plan`, made on an earlier state of the same dispatch epoch, is
/// still sound on `state`: the epoch says nothing but team positions moved,
/// and a move can only matter here by taking a proposed team into an
/// impassable zone, so each proposed team is checked again where it now is.
pub fn still_sound(state: &State, plan: &DispatchPlan, now: Timestamp) -> bool {
    let zones = Zones::new(state.zones.values());
    plan.proposals.iter().all(|proposal| match &proposal.resource {
        AssignedResource::Team { team_id } => {
            state.teams.get(team_id).is_some_and(|team| match proposal.diverted_from {
                None => team_availability(team, &zones, now).is_ok(),
                Some(_) => team_fit(team, &zones, now).is_ok(),
            })
        }
        AssignedResource::Supply { .. } => true,
    })
}

/// Turns a dispatcher's plan into events: for each diversion the old
/// assignment's cancellation (and the lowering that keeps its need at its
/// level's figure), one `AssignmentCreated` per proposal, and a
/// `DispatchCompleted` with the shortfalls. Nothing to do: no events.
pub(crate) fn commit(state: &State, scope: Scope<'_>, plan: DispatchPlan, now: Timestamp) -> DomainResult<Vec<Event>> {
    if plan.proposals.is_empty() && plan.shortfalls.is_empty() {
        return Ok(Vec::new());
    }
    let mut events = Vec::with_capacity(plan.proposals.len() + 1);
    // Diversions cancel the old assignments one after another, each need's
    // lowering seeing the ones before it.
    let mut after_diversions: Option<State> = None;
    for proposal in &plan.proposals {
        let Some(old) = proposal.diverted_from.and_then(|number| state.assignments.get(&number)) else { continue };
        let scratch = after_diversions.get_or_insert_with(|| state.clone());
        let note = format!(
            "diverted to need {} of incident {} (level {})",
            super::incident::need_id(proposal.need_number),
            proposal.incident_id,
            proposal.priority
        );
        let cancel = super::assignment::status_event(old, AssignmentStatus::Cancelled, &note, false);
        let lowering = super::assignment::hold_to_figure(scratch, old.need_number, old.amount());
        for event in std::iter::once(cancel).chain(lowering) {
            scratch.apply_provisionally(&event, now);
            events.push(event);
        }
    }
    for (number, proposal) in (state.counters.assignments + 1..).zip(&plan.proposals) {
        events.push(Event::AssignmentCreated {
            assignment: Assignment {
                number,
                incident_id: proposal.incident_id.clone(),
                need_number: proposal.need_number,
                resource: proposal.resource.clone(),
                status: AssignmentStatus::Dispatched,
                distance_km: proposal.distance_km,
                eta_minutes: proposal.eta_minutes,
                reason: proposal.reason.clone(),
                reserve_override: proposal.override_quantity > 0,
                override_quantity: proposal.override_quantity,
                priority: proposal.priority,
                created_at: now,
                updated_at: now,
                issued: false,
                by_hand: false,
                returned_quantity: 0,
                note: String::new(),
            },
        });
    }
    events.push(Event::DispatchCompleted {
        incident_id: scope.incident_id.map(str::to_owned),
        assignments: u64::try_from(plan.proposals.len()).unwrap_or(u64::MAX),
        shortfalls: plan.shortfalls,
    });
    Ok(events)
}

/// How old a team's position is, when it is older than the staleness age
/// (a team that never reported stands at the position it registered with).
pub(crate) fn stale_position(team: &Team, settings: &Settings, now: Timestamp) -> Option<String> {
    let reported = team.last_report_at?;
    let age_minutes = now.minutes_since(reported);
    let stale_minutes = settings.stale_after_seconds as f64 / 60.0;
    (settings.stale_after_seconds > 0 && age_minutes > stale_minutes).then(|| {
        format!(
            "position is stale: last reported {:.0} min ago, at {reported} (stale after {:.0} min)",
            age_minutes, stale_minutes
        )
    })
}
