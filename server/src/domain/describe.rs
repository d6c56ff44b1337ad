//! Events in words, and what each touched: the audit's summaries and
//! filters, and how watch streams route a change. Kept apart from the log
//! schema (`event.rs`), which only ever grows.

use super::assignment::AssignedResource;
use super::event::Event;

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
