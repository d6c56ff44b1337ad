//! Events: the facts the log records. `decide` produces them, `State::apply`
//! folds them, the audit reads them.
//!
//! The log stores events with postcard, which encodes an enum variant by its
//! position: append new variants and fields at the end only, never reorder
//! or remove one, or old logs stop replaying.

use serde::{Deserialize, Serialize};

use super::assignment::{AssignedResource, Assignment, AssignmentStatus};
use super::incident::{Incident, IncidentStatus, LevelCause, Need};
use super::plan::Plan;
use super::reserve::{Depot, Item, LedgerReason};
use super::team::{Team, TeamProfile, TeamStatus};
use super::types::Level;
use super::types::{LatLng, Timestamp};
use super::zone::Zone;

/// One fact of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A team joined the roster.
    TeamRegistered {
        /// The team as registered (version 1).
        team: Team,
    },
    /// A team's roster data was replaced.
    TeamProfileUpdated {
        /// The team.
        team_id: String,
        /// Its new roster data.
        profile: TeamProfile,
    },
    /// The roster app reported status and/or position (or only a heartbeat).
    TeamStatusReported {
        /// The team.
        team_id: String,
        /// The new status, when it changed.
        status: Option<TeamStatus>,
        /// The new position, when reported.
        position: Option<LatLng>,
    },
    /// An item joined the catalog.
    ItemDefined {
        /// The item.
        item: Item,
    },
    /// A depot was registered.
    DepotRegistered {
        /// The depot.
        depot: Depot,
    },
    /// `on_hand` changed by `delta` (one ledger entry).
    StockAdjusted {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// The change.
        delta: i64,
        /// Why.
        reason: LedgerReason,
        /// Free text.
        note: String,
    },
    /// The strategic floor of an item at a depot was set.
    MinReserveSet {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// The new floor.
        min_reserve: i64,
    },
    /// Stock moved between depots: two ledger entries, one event.
    StockTransferred {
        /// Where it left.
        from_depot_id: String,
        /// Where it arrived.
        to_depot_id: String,
        /// The item.
        item_code: String,
        /// Units moved.
        quantity: i64,
        /// Free text.
        note: String,
    },
    /// An item's catalog entry was replaced (by an import).
    ItemUpdated {
        /// The item as it is now.
        item: Item,
    },
    /// A depot's record was replaced (by an import).
    DepotUpdated {
        /// The depot as it is now.
        depot: Depot,
    },
    /// A new version of a plan was stored.
    PlanPut {
        /// The plan, with its version.
        plan: Plan,
    },
    /// An incident was declared (its needs follow as `NeedRaised`).
    IncidentDeclared {
        /// The incident at version 1.
        incident: Incident,
    },
    /// A need was raised, by the plan or by hand.
    NeedRaised {
        /// The need.
        need: Need,
    },
    /// An open need was lowered (its level dropped).
    NeedLowered {
        /// Its incident.
        incident_id: String,
        /// The need.
        need_number: u64,
        /// Its new amount.
        amount: i64,
    },
    /// A need was cancelled.
    NeedCancelled {
        /// Its incident.
        incident_id: String,
        /// The need.
        need_number: u64,
    },
    /// An incident's level changed.
    IncidentLevelChanged {
        /// The incident.
        incident_id: String,
        /// The old level.
        from: Level,
        /// The new level.
        to: Level,
        /// Operator, or trigger with metric and value.
        cause: LevelCause,
    },
    /// Metric values were recorded.
    IncidentMetricsUpdated {
        /// The incident.
        incident_id: String,
        /// The values that changed.
        metrics: std::collections::BTreeMap<String, f64>,
    },
    /// An incident moved between active and contained.
    IncidentStatusChanged {
        /// The incident.
        incident_id: String,
        /// The new status.
        status: IncidentStatus,
    },
    /// An incident was closed.
    IncidentClosed {
        /// The incident.
        incident_id: String,
    },
    /// The dispatcher (or an operator) assigned a team or stock to a need.
    AssignmentCreated {
        /// The assignment, `DISPATCHED`.
        assignment: Assignment,
    },
    /// An assignment moved on.
    AssignmentStatusChanged {
        /// Its incident.
        incident_id: String,
        /// The assignment.
        assignment_number: u64,
        /// Where it was.
        from: AssignmentStatus,
        /// Where it is.
        to: AssignmentStatus,
        /// Supplies: issue the stock through the ledger now.
        issue: bool,
        /// Why, when not the caller's plain request.
        note: String,
        /// The team or stock it concerns (for watchers and the audit).
        resource: AssignedResource,
    },
    /// A dispatch finished: what it could not fill, and why.
    DispatchCompleted {
        /// The incident dispatched for (`None`: every incident).
        incident_id: Option<String>,
        /// Assignments it made.
        assignments: u64,
        /// Needs it could not fill.
        shortfalls: Vec<Shortfall>,
    },
    /// An impassable zone was set (or replaced).
    ZoneSet {
        /// The zone, active.
        zone: Zone,
    },
    /// An impassable zone was lifted.
    ZoneCleared {
        /// The zone.
        zone_id: String,
    },
    /// Stock issued for a supply assignment came back to its depot: one
    /// `RETURNED` ledger entry naming the assignment.
    StockReturned {
        /// Its incident.
        incident_id: String,
        /// The assignment the stock was issued for.
        assignment_number: u64,
        /// The depot it returns to.
        depot_id: String,
        /// The item.
        item_code: String,
        /// Units returned (at most what was issued).
        quantity: i64,
        /// Why, in words.
        note: String,
    },
    /// A team is not to be proposed again for a need (it declined, or it
    /// never acknowledged an assignment for it).
    TeamExcluded {
        /// Its incident.
        incident_id: String,
        /// The need.
        need_number: u64,
        /// The team.
        team_id: String,
        /// Why, in words.
        reason: String,
    },
}

/// What a dispatch could not fill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    /// The need.
    pub need_number: u64,
    /// Its incident.
    pub incident_id: String,
    /// Teams or units still missing.
    pub missing: i64,
    /// Why, in words.
    pub reason: String,
}

/// What an event touched, for the audit's filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Teams.
    pub team_ids: Vec<String>,
    /// Incidents.
    pub incident_ids: Vec<String>,
    /// Depots.
    pub depot_ids: Vec<String>,
    /// Items.
    pub item_codes: Vec<String>,
    /// Plans.
    pub plan_ids: Vec<String>,
    /// Needs.
    pub need_ids: Vec<String>,
    /// Assignments.
    pub assignment_ids: Vec<String>,
    /// Zones.
    pub zone_ids: Vec<String>,
}

impl Event {
    /// The variant's name, for the audit.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::TeamRegistered { .. } => "TeamRegistered",
            Event::TeamProfileUpdated { .. } => "TeamProfileUpdated",
            Event::TeamStatusReported { .. } => "TeamStatusReported",
            Event::ItemDefined { .. } => "ItemDefined",
            Event::DepotRegistered { .. } => "DepotRegistered",
            Event::StockAdjusted { .. } => "StockAdjusted",
            Event::MinReserveSet { .. } => "MinReserveSet",
            Event::StockTransferred { .. } => "StockTransferred",
            Event::ItemUpdated { .. } => "ItemUpdated",
            Event::DepotUpdated { .. } => "DepotUpdated",
            Event::PlanPut { .. } => "PlanPut",
            Event::IncidentDeclared { .. } => "IncidentDeclared",
            Event::NeedRaised { .. } => "NeedRaised",
            Event::NeedLowered { .. } => "NeedLowered",
            Event::NeedCancelled { .. } => "NeedCancelled",
            Event::IncidentLevelChanged { .. } => "IncidentLevelChanged",
            Event::IncidentMetricsUpdated { .. } => "IncidentMetricsUpdated",
            Event::IncidentStatusChanged { .. } => "IncidentStatusChanged",
            Event::IncidentClosed { .. } => "IncidentClosed",
            Event::AssignmentCreated { .. } => "AssignmentCreated",
            Event::AssignmentStatusChanged { .. } => "AssignmentStatusChanged",
            Event::DispatchCompleted { .. } => "DispatchCompleted",
            Event::ZoneSet { .. } => "ZoneSet",
            Event::ZoneCleared { .. } => "ZoneCleared",
            Event::StockReturned { .. } => "StockReturned",
            Event::TeamExcluded { .. } => "TeamExcluded",
        }
    }

    /// The ids the event touched.
    pub fn touched(&self) -> Touched {
        match self {
            Event::TeamRegistered { team } => Touched { team_ids: vec![team.id.clone()], ..Touched::default() },
            Event::TeamProfileUpdated { team_id, .. } | Event::TeamStatusReported { team_id, .. } => {
                Touched { team_ids: vec![team_id.clone()], ..Touched::default() }
            }
            Event::ItemDefined { item } | Event::ItemUpdated { item } => {
                Touched { item_codes: vec![item.code.clone()], ..Touched::default() }
            }
            Event::DepotRegistered { depot } | Event::DepotUpdated { depot } => {
                Touched { depot_ids: vec![depot.id.clone()], ..Touched::default() }
            }
            Event::StockAdjusted { depot_id, item_code, .. } | Event::MinReserveSet { depot_id, item_code, .. } => {
                Touched { depot_ids: vec![depot_id.clone()], item_codes: vec![item_code.clone()], ..Touched::default() }
            }
            Event::StockTransferred { from_depot_id, to_depot_id, item_code, .. } => Touched {
                depot_ids: vec![from_depot_id.clone(), to_depot_id.clone()],
                item_codes: vec![item_code.clone()],
                ..Touched::default()
            },
            Event::PlanPut { plan } => Touched { plan_ids: vec![plan.id.clone()], ..Touched::default() },
            Event::IncidentDeclared { incident } => Touched {
                incident_ids: vec![incident.id.clone()],
                plan_ids: incident.plan.iter().map(|plan| plan.id.clone()).collect(),
                ..Touched::default()
            },
            Event::NeedRaised { need } => Touched {
                incident_ids: vec![need.incident_id.clone()],
                need_ids: vec![need.id()],
                item_codes: match &need.key {
                    super::plan::NeedKey::Supply { item_code } => vec![item_code.clone()],
                    super::plan::NeedKey::Team { .. } => Vec::new(),
                },
                ..Touched::default()
            },
            Event::NeedLowered { incident_id, need_number, .. } | Event::NeedCancelled { incident_id, need_number } => {
                Touched {
                    incident_ids: vec![incident_id.clone()],
                    need_ids: vec![super::incident::need_id(*need_number)],
                    ..Touched::default()
                }
            }
            Event::IncidentLevelChanged { incident_id, .. }
            | Event::IncidentMetricsUpdated { incident_id, .. }
            | Event::IncidentStatusChanged { incident_id, .. }
            | Event::IncidentClosed { incident_id } => {
                Touched { incident_ids: vec![incident_id.clone()], ..Touched::default() }
            }
            Event::AssignmentCreated { assignment } => {
                let mut touched = Touched {
                    incident_ids: vec![assignment.incident_id.clone()],
                    need_ids: vec![super::incident::need_id(assignment.need_number)],
                    assignment_ids: vec![assignment.id()],
                    ..Touched::default()
                };
                match &assignment.resource {
                    AssignedResource::Team { team_id } => touched.team_ids.push(team_id.clone()),
                    AssignedResource::Supply { depot_id, item_code, .. } => {
                        touched.depot_ids.push(depot_id.clone());
                        touched.item_codes.push(item_code.clone());
                    }
                }
                touched
            }
            Event::AssignmentStatusChanged { incident_id, assignment_number, resource, .. } => {
                let mut touched = Touched {
                    incident_ids: vec![incident_id.clone()],
                    assignment_ids: vec![super::assignment::assignment_id(*assignment_number)],
                    ..Touched::default()
                };
                match resource {
                    AssignedResource::Team { team_id } => touched.team_ids.push(team_id.clone()),
                    AssignedResource::Supply { depot_id, item_code, .. } => {
                        touched.depot_ids.push(depot_id.clone());
                        touched.item_codes.push(item_code.clone());
                    }
                }
                touched
            }
            Event::DispatchCompleted { incident_id, shortfalls, .. } => {
                let mut incident_ids: Vec<String> =
                    shortfalls.iter().map(|shortfall| shortfall.incident_id.clone()).collect();
                incident_ids.extend(incident_id.iter().cloned());
                incident_ids.sort();
                incident_ids.dedup();
                Touched {
                    incident_ids,
                    need_ids: shortfalls
                        .iter()
                        .map(|shortfall| super::incident::need_id(shortfall.need_number))
                        .collect(),
                    ..Touched::default()
                }
            }
            Event::ZoneSet { zone } => Touched { zone_ids: vec![zone.id.clone()], ..Touched::default() },
            Event::ZoneCleared { zone_id } => Touched { zone_ids: vec![zone_id.clone()], ..Touched::default() },
            Event::StockReturned { incident_id, assignment_number, depot_id, item_code, .. } => Touched {
                incident_ids: vec![incident_id.clone()],
                assignment_ids: vec![super::assignment::assignment_id(*assignment_number)],
                depot_ids: vec![depot_id.clone()],
                item_codes: vec![item_code.clone()],
                ..Touched::default()
            },
            Event::TeamExcluded { incident_id, need_number, team_id, .. } => Touched {
                incident_ids: vec![incident_id.clone()],
                need_ids: vec![super::incident::need_id(*need_number)],
                team_ids: vec![team_id.clone()],
                ..Touched::default()
            },
        }
    }

    /// What happened, in words, for a reviewer.
    pub fn summary(&self) -> String {
        match self {
            Event::TeamRegistered { team } => format!(
                "team {} ({}, {}) registered with {} people, capabilities {}, status {}",
                team.id,
                team.profile.name,
                team.profile.organization,
                team.profile.headcount,
                describe_capabilities(&team.profile.capabilities),
                team.status.as_str()
            ),
            Event::TeamProfileUpdated { team_id, profile } => format!(
                "team {team_id} roster data replaced: {} people, capabilities {}",
                profile.headcount,
                describe_capabilities(&profile.capabilities)
            ),
            Event::TeamStatusReported { team_id, status, position } => match (status, position) {
                (Some(status), Some(position)) => {
                    format!("team {team_id} reported {} at {position}", status.as_str())
                }
                (Some(status), None) => format!("team {team_id} reported {}", status.as_str()),
                (None, Some(position)) => {
                    format!("team {team_id} reported its position {position}")
                }
                (None, None) => format!("team {team_id} checked in"),
            },
            Event::ItemDefined { item } => {
                format!("item {} ({}, counted in {}) added to the catalog", item.code, item.name, item.unit)
            }
            Event::ItemUpdated { item } => {
                format!("item {} now reads {} (counted in {})", item.code, item.name, item.unit)
            }
            Event::DepotRegistered { depot } => {
                format!("depot {} ({}, {}) registered at {}", depot.id, depot.name, depot.organization, depot.position)
            }
            Event::DepotUpdated { depot } => format!("depot {} ({}) now at {}", depot.id, depot.name, depot.position),
            Event::StockAdjusted { depot_id, item_code, delta, reason, note } => {
                let note = if note.is_empty() { String::new() } else { format!(": {note}") };
                format!("{delta:+} {item_code} at {depot_id}, {}{note}", reason.as_str())
            }
            Event::MinReserveSet { depot_id, item_code, min_reserve } => {
                format!("strategic minimum of {item_code} at {depot_id} set to {min_reserve}")
            }
            Event::StockTransferred { from_depot_id, to_depot_id, item_code, quantity, note } => {
                let note = if note.is_empty() { String::new() } else { format!(": {note}") };
                format!("{quantity} {item_code} transferred from {from_depot_id} to {to_depot_id}{note}")
            }
            Event::PlanPut { plan } => format!(
                "plan {} ({}, {}) stored as version {} with levels {}",
                plan.id,
                plan.name,
                plan.hazard,
                plan.version,
                plan.levels.iter().map(|level| level.level.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Event::IncidentDeclared { incident } => format!(
                "incident {} declared: {} ({}) at level {} at {}{}",
                incident.id,
                incident.title,
                incident.hazard,
                incident.level,
                incident.position,
                match &incident.plan {
                    Some(plan) => format!(", activating plan {} version {}", plan.id, plan.version),
                    None => String::new(),
                }
            ),
            Event::NeedRaised { need } => format!(
                "need {} of incident {} raised {}: {}",
                need.id(),
                need.incident_id,
                if need.from_plan { "by the plan" } else { "by hand" },
                need.describe()
            ),
            Event::NeedLowered { incident_id, need_number, amount } => {
                format!("need {} of incident {incident_id} lowered to {amount}", super::incident::need_id(*need_number))
            }
            Event::NeedCancelled { incident_id, need_number } => {
                format!("need {} of incident {incident_id} cancelled", super::incident::need_id(*need_number))
            }
            Event::IncidentLevelChanged { incident_id, from, to, cause } => {
                let direction = if to.is_more_severe_than(*from) { "escalated" } else { "de-escalated" };
                format!("incident {incident_id} {direction} from level {from} to {to} {cause}")
            }
            Event::IncidentMetricsUpdated { incident_id, metrics } => format!(
                "incident {incident_id} reported {}",
                metrics.iter().map(|(name, value)| format!("{name} = {value}")).collect::<Vec<_>>().join(", ")
            ),
            Event::IncidentStatusChanged { incident_id, status } => {
                format!("incident {incident_id} is now {}", status.as_str())
            }
            Event::IncidentClosed { incident_id } => format!("incident {incident_id} closed"),
            Event::AssignmentCreated { assignment } => {
                let what = match &assignment.resource {
                    AssignedResource::Team { team_id } => format!("team {team_id}"),
                    AssignedResource::Supply { depot_id, item_code, quantity } => {
                        format!("{quantity} {item_code} from {depot_id}")
                    }
                };
                let override_note = if assignment.reserve_override {
                    format!(" (reserve override: {} below the strategic minimum)", assignment.override_quantity)
                } else {
                    String::new()
                };
                format!(
                    "{} dispatched {what} to need {} of incident {} ({:.1} km, {:.0} min){override_note}: {}",
                    assignment.id(),
                    super::incident::need_id(assignment.need_number),
                    assignment.incident_id,
                    assignment.distance_km,
                    assignment.eta_minutes,
                    assignment.reason
                )
            }
            Event::AssignmentStatusChanged { assignment_number, from, to, issue, note, resource, .. } => {
                let what = match resource {
                    AssignedResource::Team { team_id } => format!("team {team_id}"),
                    AssignedResource::Supply { depot_id, item_code, quantity } => {
                        format!("{quantity} {item_code} from {depot_id}")
                    }
                };
                let mut text = format!(
                    "{} ({what}) {} -> {}",
                    super::assignment::assignment_id(*assignment_number),
                    from.as_str(),
                    to.as_str()
                );
                if *issue {
                    text.push_str("; stock issued through the ledger");
                }
                if !note.is_empty() {
                    text.push_str(&format!(" ({note})"));
                }
                text
            }
            Event::DispatchCompleted { incident_id, assignments, shortfalls } => {
                let scope = incident_id
                    .as_deref()
                    .map(|id| format!("incident {id}"))
                    .unwrap_or_else(|| "every incident".to_owned());
                let mut text = format!("dispatch for {scope}: {assignments} assignment(s)");
                for shortfall in shortfalls {
                    text.push_str(&format!(
                        "; need {} of {} short by {}: {}",
                        super::incident::need_id(shortfall.need_number),
                        shortfall.incident_id,
                        shortfall.missing,
                        shortfall.reason
                    ));
                }
                text
            }
            Event::ZoneSet { zone } => {
                format!(
                    "impassable zone {} set ({} vertices){}",
                    zone.id,
                    zone.polygon.len(),
                    if zone.note.is_empty() { String::new() } else { format!(": {}", zone.note) }
                )
            }
            Event::ZoneCleared { zone_id } => format!("impassable zone {zone_id} lifted"),
            Event::StockReturned { assignment_number, depot_id, item_code, quantity, note, .. } => format!(
                "{quantity} {item_code} returned to {depot_id} from {} ({note})",
                super::assignment::assignment_id(*assignment_number)
            ),
            Event::TeamExcluded { need_number, team_id, reason, .. } => format!(
                "team {team_id} is not proposed again for need {}: {reason}",
                super::incident::need_id(*need_number)
            ),
        }
    }
}

fn describe_capabilities(capabilities: &[super::types::Capability]) -> String {
    if capabilities.is_empty() {
        return "none".to_owned();
    }
    capabilities
        .iter()
        .map(|capability| format!("{} tier {}", capability.code, capability.tier))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An event as the log keeps it: numbered, timed and attributed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// 1, 2, 3, ... without gaps.
    pub sequence: u64,
    /// The engine clock's time of the command.
    pub time: Timestamp,
    /// Who issued the command (`commander`, `team:WR-01`, `import`, ...).
    pub actor: String,
    /// The command's `request_id`, when it had one.
    pub request_id: Option<String>,
    /// The fact.
    pub event: Event,
    /// The sequence of the first record of the command that produced this
    /// one: the records of one command share it. A record's version moves
    /// once per command however many of its events touch it.
    pub command: u64,
}
