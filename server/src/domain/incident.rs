//! Incidents and their needs: declaring one (with the needs its plan's level
//! requires), escalating and de-escalating it (bringing each plan-derived
//! need to the new level's figure), requests by hand, containment and closing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::Event;
use super::limits::{MAX_METRICS, MAX_NEEDS_PER_INCIDENT};
use super::plan::{validate_supply_need, validate_team_need, NeedKey, Plan};
use super::state::State;
use super::types::{Hazard, LatLng, Level, SupplyNeed, TeamNeed, Timestamp};
use super::validate;

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IncidentStatus {
    /// Being responded to.
    Active,
    /// Under control; resources may still be held.
    Contained,
    /// Over: holds nothing and accepts no change.
    Closed,
}

impl IncidentStatus {
    /// The status name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Active => "ACTIVE",
            IncidentStatus::Contained => "CONTAINED",
            IncidentStatus::Closed => "CLOSED",
        }
    }
}

/// The plan version an incident activated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    /// Plan id.
    pub id: String,
    /// The version in force when the incident was declared.
    pub version: u32,
}

/// An incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Client-chosen or assigned id.
    pub id: String,
    /// What is happening.
    pub title: String,
    /// The hazard.
    pub hazard: Hazard,
    /// Where.
    pub position: LatLng,
    /// The affected area (a polygon), if known.
    pub area: Vec<LatLng>,
    /// The response level.
    pub level: Level,
    /// Metrics reported so far (latest value of each).
    pub metrics: BTreeMap<String, f64>,
    /// Active, contained or closed.
    pub status: IncidentStatus,
    /// The plan it activated, if any.
    pub plan: Option<PlanRef>,
    /// When it was declared.
    pub declared_at: Timestamp,
    /// When it was closed.
    pub closed_at: Option<Timestamp>,
    /// 1 at declaration, +1 with every change of the incident or its needs.
    pub version: u64,
    /// Its needs, by number, oldest first.
    pub needs: Vec<u64>,
}

/// An open need of an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Need {
    /// Global number; the id is `N<number>`.
    pub number: u64,
    /// The incident.
    pub incident_id: String,
    /// What is needed: teams of a capability and tier, or an item.
    pub key: NeedKey,
    /// How many teams or units (the current target).
    pub amount: i64,
    /// Teams or units assigned (assignments not cancelled or declined).
    pub filled: i64,
    /// From the plan (true) or requested by hand.
    pub from_plan: bool,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// Cancelled needs stay for the record.
    pub cancelled: bool,
    /// Teams that declined an assignment for this need: not proposed again.
    pub declined_by: Vec<String>,
}

/// Where a need stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NeedStatus {
    /// Nothing assigned.
    Open,
    /// Some assigned.
    Partial,
    /// All assigned.
    Filled,
    /// No longer needed.
    Cancelled,
}

impl Need {
    /// `N<number>`.
    pub fn id(&self) -> String {
        need_id(self.number)
    }

    /// Open, partial, filled or cancelled.
    pub fn status(&self) -> NeedStatus {
        if self.cancelled {
            NeedStatus::Cancelled
        } else if self.filled >= self.amount {
            NeedStatus::Filled
        } else if self.filled > 0 {
            NeedStatus::Partial
        } else {
            NeedStatus::Open
        }
    }

    /// What is still missing (0 when filled or cancelled).
    pub fn missing(&self) -> i64 {
        if self.cancelled {
            0
        } else {
            (self.amount - self.filled).max(0)
        }
    }

    /// The need as the API describes it.
    pub fn describe(&self) -> String {
        match &self.key {
            NeedKey::Team { capability, min_tier } => {
                format!("{} x {capability} (tier {min_tier} or better)", self.amount)
            }
            NeedKey::Supply { item_code } => format!("{} {item_code}", self.amount),
        }
    }
}

/// `N<number>`.
pub fn need_id(number: u64) -> String {
    format!("N{number}")
}

/// The number of a need id, if it is one.
pub fn need_number(id: &str) -> Option<u64> {
    id.strip_prefix('N').filter(|digits| !digits.starts_with('0')).and_then(|digits| digits.parse().ok())
}

/// Why a level changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LevelCause {
    /// An operator set it.
    Operator,
    /// A metric met a plan trigger.
    Trigger {
        /// The metric.
        metric: String,
        /// Its value.
        value: f64,
        /// The trigger's threshold.
        threshold: f64,
    },
}

impl std::fmt::Display for LevelCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LevelCause::Operator => f.write_str("by the operator"),
            LevelCause::Trigger { metric, value, threshold } => {
                write!(f, "by trigger {metric} = {value} >= {threshold}")
            }
        }
    }
}

/// What a client sends to declare an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Declaration {
    /// Empty: the server assigns `INC-<n>`.
    pub id: String,
    /// What is happening.
    pub title: String,
    /// The hazard (required).
    pub hazard: Option<Hazard>,
    /// Where (required).
    pub position: Option<LatLng>,
    /// Affected area, optional.
    pub area: Vec<LatLng>,
    /// The level (required).
    pub level: Option<Level>,
    /// Initial metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The plan to activate, if any.
    pub plan_id: Option<String>,
}

impl State {
    /// An incident, or `NotFound`.
    pub fn incident(&self, id: &str) -> DomainResult<&Incident> {
        self.incidents.get(id).map(|incident| &**incident).ok_or_else(|| DomainError::not_found("incident", id))
    }

    /// A need by id, or `NotFound`.
    pub fn need(&self, id: &str) -> DomainResult<&Need> {
        need_number(id)
            .and_then(|number| self.needs.get(&number).map(|need| &**need))
            .ok_or_else(|| DomainError::not_found("need", id))
    }

    /// An incident's needs, oldest first.
    pub fn needs_of<'a>(&'a self, incident: &'a Incident) -> impl Iterator<Item = &'a Need> + 'a {
        incident.needs.iter().filter_map(|number| self.needs.get(number).map(|need| &**need))
    }

    /// The plan version an incident activated.
    pub fn incident_plan(&self, incident: &Incident) -> Option<&Plan> {
        incident.plan.as_ref().and_then(|plan| self.plan(&plan.id, plan.version).ok())
    }
}

fn validate_metrics(field: &str, metrics: &BTreeMap<String, f64>) -> DomainResult<()> {
    if metrics.len() > MAX_METRICS {
        return Err(DomainError::invalid(field, format!("has more than {MAX_METRICS} metrics")));
    }
    for (name, value) in metrics {
        validate::code(&format!("{field}[{name}]"), name)?;
        if !value.is_finite() {
            return Err(DomainError::invalid(format!("{field}[{name}]"), "must be a finite number"));
        }
    }
    Ok(())
}

fn open_incident<'a>(state: &'a State, id: &str) -> DomainResult<&'a Incident> {
    validate::id("id", id)?;
    let incident = state.incident(id)?;
    if incident.status == IncidentStatus::Closed {
        return Err(DomainError::precondition(format!("incident {id} is closed and accepts no further changes")));
    }
    Ok(incident)
}

/// The id for a new incident without one: `INC-<n>`, the first free.
fn new_incident_id(state: &State) -> String {
    let mut number = state.counters.incidents + 1;
    loop {
        let id = format!("INC-{number}");
        if !state.incidents.contains_key(&id) {
            return id;
        }
        number += 1;
    }
}

/// Declares an incident, with the needs its plan requires at its level.
pub(super) fn declare(state: &State, declaration: &Declaration, time: Timestamp) -> DomainResult<Vec<Event>> {
    let id = if declaration.id.is_empty() { new_incident_id(state) } else { declaration.id.clone() };
    validate::id("incident.id", &id)?;
    validate::text("incident.title", &declaration.title, true)?;
    let hazard = declaration.hazard.ok_or_else(|| DomainError::invalid("incident.hazard", "is required"))?;
    let position = declaration.position.ok_or_else(|| DomainError::invalid("incident.position", "is required"))?;
    validate::position("incident.position", &position)?;
    if !declaration.area.is_empty() {
        validate::polygon("incident.area", &declaration.area)?;
    }
    let level = declaration.level.ok_or_else(|| DomainError::invalid("incident.level", "is required"))?;
    validate_metrics("incident.metrics", &declaration.metrics)?;
    let plan = match &declaration.plan_id {
        None => None,
        Some(plan_id) => {
            validate::id("plan_id", plan_id)?;
            let plan = state.plan(plan_id, 0)?;
            if plan.hazard != hazard && plan.hazard != Hazard::Other {
                return Err(DomainError::invalid(
                    "plan_id",
                    format!("plan {plan_id} is for {}, the incident is {hazard}", plan.hazard),
                ));
            }
            Some(plan)
        }
    };
    if state.incidents.contains_key(&id) {
        return Err(DomainError::already_exists("incident", &id));
    }
    let incident = Incident {
        id: id.clone(),
        title: declaration.title.clone(),
        hazard,
        position,
        area: declaration.area.clone(),
        level,
        metrics: declaration.metrics.clone(),
        status: IncidentStatus::Active,
        plan: plan.map(|plan| PlanRef { id: plan.id.clone(), version: plan.version }),
        declared_at: time,
        closed_at: None,
        version: 1,
        needs: Vec::new(),
    };
    let mut events = vec![Event::IncidentDeclared { incident: incident.clone() }];
    let mut final_level = level;
    if let Some((triggered, trigger, value)) = plan.and_then(|plan| plan.triggered_level(&incident.metrics)) {
        if triggered.is_more_severe_than(level) {
            final_level = triggered;
            events.push(Event::IncidentLevelChanged {
                incident_id: id.clone(),
                from: level,
                to: triggered,
                cause: LevelCause::Trigger { metric: trigger.metric.clone(), value, threshold: trigger.threshold },
            });
        }
    }
    if let Some(plan) = plan {
        events.extend(reconcile(state, &incident, plan, final_level, time));
    }
    check_need_count(&incident, &events)?;
    Ok(events)
}

/// Brings each plan-derived need of `incident` to `level`'s figure: adds
/// when short; lowers or cancels open ones, newest first, when over; never
/// takes back what is assigned. Hand requests are untouched.
fn reconcile(state: &State, incident: &Incident, plan: &Plan, level: Level, time: Timestamp) -> Vec<Event> {
    let figures = plan.figures(level);
    let mut current: BTreeMap<NeedKey, Vec<&Need>> = BTreeMap::new();
    for need in state.needs_of(incident).filter(|need| need.from_plan && !need.cancelled) {
        current.entry(need.key.clone()).or_default().push(need);
    }
    let mut keys: Vec<&NeedKey> = figures.keys().chain(current.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut events = Vec::new();
    let mut next_number = state.counters.needs;
    for key in keys {
        let target = figures.get(key).copied().unwrap_or(0);
        let needs = current.get(key).map(Vec::as_slice).unwrap_or_default();
        let total: i64 = needs.iter().map(|need| need.amount).sum();
        if total < target {
            next_number += 1;
            events.push(Event::NeedRaised {
                need: Need {
                    number: next_number,
                    incident_id: incident.id.clone(),
                    key: key.clone(),
                    amount: target - total,
                    filled: 0,
                    from_plan: true,
                    raised_at: time,
                    cancelled: false,
                    declined_by: Vec::new(),
                },
            });
        }
        let mut excess = total - target;
        for need in needs.iter().rev() {
            if excess <= 0 {
                break;
            }
            let cut = (need.amount - need.filled).clamp(0, excess);
            if cut == 0 {
                continue;
            }
            excess -= cut;
            let amount = need.amount - cut;
            events.push(if amount == 0 {
                Event::NeedCancelled { incident_id: incident.id.clone(), need_number: need.number }
            } else {
                Event::NeedLowered { incident_id: incident.id.clone(), need_number: need.number, amount }
            });
        }
    }
    events
}

/// Refuses events that would give `incident` more than
/// [`MAX_NEEDS_PER_INCIDENT`] needs (so no incident outgrows a message).
fn check_need_count(incident: &Incident, events: &[Event]) -> DomainResult<()> {
    let raised = events.iter().filter(|event| matches!(event, Event::NeedRaised { .. })).count();
    if incident.needs.len() + raised > MAX_NEEDS_PER_INCIDENT {
        return Err(DomainError::precondition(format!(
            "incident {} holds {} needs; {raised} more would pass the limit of {MAX_NEEDS_PER_INCIDENT} \
             (raise fewer, larger needs)",
            incident.id,
            incident.needs.len()
        )));
    }
    Ok(())
}

/// What `UpdateIncident` asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    /// The incident.
    pub id: String,
    /// An explicit level (overrides triggers).
    pub level: Option<Level>,
    /// Metric values to record.
    pub metrics: BTreeMap<String, f64>,
    /// Active or contained.
    pub status: Option<IncidentStatus>,
}

/// Records metrics, changes the level (explicitly or by trigger) and the status.
pub(super) fn update(state: &State, update: &IncidentUpdate, time: Timestamp) -> DomainResult<Vec<Event>> {
    validate_metrics("metrics", &update.metrics)?;
    if update.status == Some(IncidentStatus::Closed) {
        return Err(DomainError::invalid("status", "use CloseIncident to close an incident"));
    }
    let incident = open_incident(state, &update.id)?;
    let mut merged = incident.metrics.clone();
    merged.extend(update.metrics.iter().map(|(name, value)| (name.clone(), *value)));
    if merged.len() > MAX_METRICS {
        return Err(DomainError::invalid(
            "metrics",
            format!("the incident would carry more than {MAX_METRICS} metrics"),
        ));
    }
    let mut events = Vec::new();
    let changed_metrics: BTreeMap<String, f64> = update
        .metrics
        .iter()
        .filter(|(name, value)| incident.metrics.get(*name).is_none_or(|old| old.to_bits() != value.to_bits()))
        .map(|(name, value)| (name.clone(), *value))
        .collect();
    if !changed_metrics.is_empty() {
        events.push(Event::IncidentMetricsUpdated { incident_id: incident.id.clone(), metrics: changed_metrics });
    }
    let plan = state.incident_plan(incident);
    // Triggers act on the metrics this update carries, and only without an
    // explicit level: de-escalation is always an operator's decision, so a
    // stored metric never raises the level again by itself.
    let new_level = match update.level {
        Some(level) => Some((level, LevelCause::Operator)),
        None if update.metrics.is_empty() => None,
        None => plan
            .and_then(|plan| plan.triggered_level(&update.metrics))
            .filter(|(level, _, _)| level.is_more_severe_than(incident.level))
            .map(|(level, trigger, value)| {
                (level, LevelCause::Trigger { metric: trigger.metric.clone(), value, threshold: trigger.threshold })
            }),
    };
    if let Some((level, cause)) = new_level.filter(|(level, _)| *level != incident.level) {
        events.push(Event::IncidentLevelChanged {
            incident_id: incident.id.clone(),
            from: incident.level,
            to: level,
            cause,
        });
        if let Some(plan) = plan {
            events.extend(reconcile(state, incident, plan, level, time));
        }
        check_need_count(incident, &events)?;
    }
    if let Some(status) = update.status.filter(|status| *status != incident.status) {
        events.push(Event::IncidentStatusChanged { incident_id: incident.id.clone(), status });
    }
    Ok(events)
}

/// Raises needs by hand (never changed by level changes).
pub(super) fn request(
    state: &State,
    incident_id: &str,
    teams: &[TeamNeed],
    supplies: &[SupplyNeed],
    time: Timestamp,
) -> DomainResult<Vec<Event>> {
    validate::id("incident_id", incident_id)?;
    validate::repeated("teams", teams)?;
    validate::repeated("supplies", supplies)?;
    if teams.is_empty() && supplies.is_empty() {
        return Err(DomainError::invalid("teams", "a request needs at least one team or supply"));
    }
    for (index, team) in teams.iter().enumerate() {
        validate_team_need(&format!("teams[{index}]"), team)?;
    }
    for (index, supply) in supplies.iter().enumerate() {
        validate_supply_need(&format!("supplies[{index}]"), supply)?;
    }
    let incident = open_incident(state, incident_id)?;
    for supply in supplies {
        state.item(&supply.item_code)?;
    }
    let mut number = state.counters.needs;
    let mut raise = |key: NeedKey, amount: i64| {
        number += 1;
        Event::NeedRaised {
            need: Need {
                number,
                incident_id: incident.id.clone(),
                key,
                amount,
                filled: 0,
                from_plan: false,
                raised_at: time,
                cancelled: false,
                declined_by: Vec::new(),
            },
        }
    };
    let mut events = Vec::new();
    for team in teams {
        let key = NeedKey::Team { capability: team.capability.clone(), min_tier: team.min_tier };
        events.push(raise(key, i64::from(team.count)));
    }
    for supply in supplies {
        events.push(raise(NeedKey::Supply { item_code: supply.item_code.clone() }, supply.quantity));
    }
    check_need_count(incident, &events)?;
    Ok(events)
}

/// Closes an incident: releases its active assignments (teams return,
/// reserved stock is unreserved, issued stock stays issued), cancels what is
/// still open of its needs (what was assigned stays on record) and marks it
/// closed.
pub(super) fn close(state: &State, id: &str) -> DomainResult<Vec<Event>> {
    let incident = open_incident(state, id)?;
    let mut events = super::assignment::release_for_close(state, id);
    for need in state.needs_of(incident).filter(|need| !need.cancelled && need.missing() > 0) {
        events.push(if need.filled == 0 {
            Event::NeedCancelled { incident_id: incident.id.clone(), need_number: need.number }
        } else {
            Event::NeedLowered { incident_id: incident.id.clone(), need_number: need.number, amount: need.filled }
        });
    }
    events.push(Event::IncidentClosed { incident_id: incident.id.clone() });
    Ok(events)
}

/// Applies the incident and need events.
pub(super) fn apply(state: &mut State, event: &Event, time: Timestamp) {
    let touched_incident = match event {
        Event::IncidentDeclared { incident } => {
            // Marks the incident as moved by this command before it exists:
            // it starts at version 1 whatever else the declaration raises.
            state.touch_incident(&incident.id);
            state.counters.incidents += 1;
            state.incidents.insert(incident.id.clone(), std::sync::Arc::new(incident.clone()));
            return;
        }
        Event::NeedRaised { need } => {
            state.counters.needs = state.counters.needs.max(need.number);
            state.needs.insert(need.number, std::sync::Arc::new(need.clone()));
            if let Some(incident) = state.incidents.get_mut(&need.incident_id).map(std::sync::Arc::make_mut) {
                incident.needs.push(need.number);
            }
            need.incident_id.clone()
        }
        Event::NeedLowered { need_number, amount, .. } => {
            match state.needs.get_mut(need_number).map(std::sync::Arc::make_mut) {
                Some(need) => {
                    need.amount = *amount;
                    need.incident_id.clone()
                }
                None => return,
            }
        }
        Event::NeedCancelled { need_number, .. } => {
            match state.needs.get_mut(need_number).map(std::sync::Arc::make_mut) {
                Some(need) => {
                    need.cancelled = true;
                    need.incident_id.clone()
                }
                None => return,
            }
        }
        Event::IncidentLevelChanged { incident_id, to, .. } => {
            if let Some(incident) = state.incidents.get_mut(incident_id).map(std::sync::Arc::make_mut) {
                incident.level = *to;
            }
            incident_id.clone()
        }
        Event::IncidentMetricsUpdated { incident_id, metrics } => {
            if let Some(incident) = state.incidents.get_mut(incident_id).map(std::sync::Arc::make_mut) {
                incident.metrics.extend(metrics.iter().map(|(name, value)| (name.clone(), *value)));
            }
            incident_id.clone()
        }
        Event::IncidentStatusChanged { incident_id, status } => {
            if let Some(incident) = state.incidents.get_mut(incident_id).map(std::sync::Arc::make_mut) {
                incident.status = *status;
            }
            incident_id.clone()
        }
        Event::IncidentClosed { incident_id } => {
            if let Some(incident) = state.incidents.get_mut(incident_id).map(std::sync::Arc::make_mut) {
                incident.status = IncidentStatus::Closed;
                incident.closed_at = Some(time);
            }
            incident_id.clone()
        }
        _ => return,
    };
    state.touch_incident(&touched_incident);
}
