//! Export: a recorded real incident written as a drill script, for
//! after-action review and for "what if" runs. The script holds the world
//! as it stood just before the declaration (items, depots, stock as counted
//! then, the roster, the plans in force), the teams out of service and the
//! zones set at that moment, and the operators' and teams' actions on the
//! incident at their offsets. It has no `[simulation]`: teams do what the
//! record says they did, and the engine's acknowledgement timeouts fire
//! again on their own. Running it reproduces the incident's decisions;
//! editing its `[[plan]]` and running again is the "what if".
//!
//! Not exported (said in the script's header): position-only reports, stock
//! transfers, minimum-reserve and plan changes made during the incident,
//! hand assignments of stock, member lists, and other incidents that held
//! teams at the time. Teams registered during the incident are in the world,
//! out of service until the time they registered.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::script::format_offset;
use crate::domain::assignment::AssignedResource;
use crate::domain::incident::{IncidentStatus, LevelCause};
use crate::domain::plan::NeedKey;
use crate::domain::team::TeamStatus;
use crate::domain::{DomainError, Event, LogRecord, State, Timestamp};

fn text(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

fn pair(position: crate::domain::LatLng) -> String {
    format!("[{}, {}]", position.lat, position.lng)
}

fn time(value: Timestamp) -> String {
    text(&value.to_string())
}

/// Writes the incident `incident_id` of the log `records` as a drill script.
pub fn export_incident(records: &[LogRecord], incident_id: &str) -> Result<String, DomainError> {
    let declared = records
        .iter()
        .position(|record| matches!(&record.event, Event::IncidentDeclared { incident } if incident.id == incident_id))
        .ok_or_else(|| DomainError::not_found("incident", incident_id))?;
    let start = records[declared].time;
    let mut before = State::default();
    for record in &records[..declared] {
        before.apply(record);
    }
    // Teams, items and depots registered while the incident ran are in the
    // world from the start; a team is out of service until it registered.
    let mut world = before.clone();
    let mut registered_later: Vec<(Timestamp, String, crate::domain::LatLng)> = Vec::new();
    for record in &records[declared..] {
        match &record.event {
            Event::TeamRegistered { team } => {
                world.teams.insert(team.id.clone(), std::sync::Arc::new(team.clone()));
                registered_later.push((record.time, team.id.clone(), team.position));
            }
            Event::ItemDefined { item } => {
                world.items.insert(item.code.clone(), item.clone());
            }
            Event::DepotRegistered { depot } => {
                world.depots.insert(depot.id.clone(), depot.clone());
            }
            Event::IncidentClosed { incident_id: id } if id == incident_id => break,
            _ => {}
        }
    }
    let mut injects: Vec<(i64, String)> = Vec::new();
    let offset = |time: Timestamp| time.seconds_since(start);
    for team in before.teams.values() {
        // Where each team stood, and whether it was out of service.
        let status = if team.status == TeamStatus::OutOfService { "OUT_OF_SERVICE" } else { "AVAILABLE" };
        if team.status == TeamStatus::OutOfService || team.position != team.profile.home {
            injects.push((
                0,
                format!(
                    "team_status = {{ team = {}, status = \"{status}\", position = {} }}",
                    text(&team.id),
                    pair(team.position)
                ),
            ));
        }
    }
    for (time, team_id, position) in &registered_later {
        injects.push((0, format!("team_status = {{ team = {}, status = \"OUT_OF_SERVICE\" }}", text(team_id))));
        injects.push((
            offset(*time),
            format!(
                "team_status = {{ team = {}, status = \"AVAILABLE\", position = {} }}",
                text(team_id),
                pair(*position)
            ),
        ));
    }
    for zone in before.zones.values().filter(|zone| zone.active) {
        injects.push((0, zone_inject(zone)));
    }
    // The drill numbers needs and assignments afresh, in the same order.
    let mut needs: BTreeMap<u64, usize> = BTreeMap::new();
    let mut assignments: BTreeMap<u64, usize> = BTreeMap::new();
    let mut last = 0;
    let mut index = declared;
    while index < records.len() {
        let command = records[index].command;
        let end =
            records[index..].iter().position(|record| record.command != command).map_or(records.len(), |n| index + n);
        let group = &records[index..end];
        index = end;
        for record in group {
            match &record.event {
                Event::NeedRaised { need } if need.incident_id == incident_id => {
                    let next = needs.len() + 1;
                    needs.insert(need.number, next);
                }
                Event::AssignmentCreated { assignment } if assignment.incident_id == incident_id => {
                    let next = assignments.len() + 1;
                    assignments.insert(assignment.number, next);
                }
                _ => {}
            }
        }
        let at = offset(group[0].time);
        last = last.max(at);
        let closes = group
            .iter()
            .any(|record| matches!(&record.event, Event::IncidentClosed { incident_id: id } if id == incident_id));
        // The engine's own timers fire again in the drill; nothing to inject.
        if group[0].actor != crate::domain::timer::SYSTEM_ACTOR {
            if let Some(inject) = command_inject(group, incident_id, &needs, &assignments) {
                injects.push((at, inject));
            }
        }
        if closes {
            break;
        }
    }
    if last + 3_600 > super::script::MAX_DRILL_SECONDS || injects.len() > super::script::MAX_INJECTS {
        return Err(DomainError::precondition(format!(
            "incident {incident_id} ran {} h with {} actions: a drill spans at most {} h and {} injects",
            last / 3_600,
            injects.len(),
            super::script::MAX_DRILL_SECONDS / 3_600,
            super::script::MAX_INJECTS
        )));
    }
    injects.sort_by_key(|(at, _)| *at);
    let mut script = String::new();
    let _ = writeln!(script, "# Exported from the log: incident {incident_id}, declared at {start}.");
    let _ = writeln!(script, "# The world as it stood just before the declaration, then the recorded actions at their");
    let _ =
        writeln!(script, "# offsets. No [simulation]: teams do what the record says; acknowledgement timeouts fire");
    let _ = writeln!(script, "# again by themselves. Not exported: position-only reports, stock transfers, minimum-");
    let _ =
        writeln!(script, "# reserve and plan changes during the incident, hand assignments of stock, member lists,");
    let _ = writeln!(script, "# and other incidents that held teams then.");
    let _ = writeln!(script, "# Edit a [[plan]] below and run again to ask \"what if\".");
    let _ = writeln!(script, "name = {}", text(&format!("Review of incident {incident_id}")));
    let sequence = records.last().map(|record| record.sequence).unwrap_or(0);
    let _ = writeln!(script, "description = {}", text(&format!("Exported from the live log at sequence {sequence}")));
    let _ = writeln!(script, "seed = 1");
    let _ = writeln!(script, "start = {}", time(start));
    let _ = writeln!(script, "end = \"{}\"", format_offset(last + 3_600));
    write_world(&mut script, &world);
    for (at, inject) in &injects {
        let _ = writeln!(script, "\n[[inject]]\nat = \"{}\"\n{inject}", format_offset(*at));
    }
    Ok(script)
}

fn zone_inject(zone: &crate::domain::zone::Zone) -> String {
    let ring: Vec<String> = zone.polygon.iter().map(|vertex| pair(*vertex)).collect();
    format!("impassable = {{ id = {}, polygon = [{}], note = {} }}", text(&zone.id), ring.join(", "), text(&zone.note))
}

/// The inject one recorded command of the incident becomes, if any: the
/// command is recognised by the events it produced, most telling first.
fn command_inject(
    group: &[LogRecord],
    incident_id: &str,
    needs: &BTreeMap<u64, usize>,
    assignments: &BTreeMap<u64, usize>,
) -> Option<String> {
    let ours = |id: &str| id == incident_id;
    let events = || group.iter().map(|record| &record.event);
    if let Some(incident) = events().find_map(|event| match event {
        Event::IncidentDeclared { incident } if ours(&incident.id) => Some(incident),
        _ => None,
    }) {
        let plan = incident.plan.as_ref().map(|plan| format!(", plan = {}", text(&plan.id))).unwrap_or_default();
        let area = if incident.area.is_empty() {
            String::new()
        } else {
            format!(", area = [{}]", incident.area.iter().map(|vertex| pair(*vertex)).collect::<Vec<_>>().join(", "))
        };
        return Some(format!(
            "declare_incident = {{ id = {}, hazard = {}, title = {}, position = {}, level = \"{}\"{plan}{area}{} }}",
            text(&incident.id),
            text(incident.hazard.as_str()),
            text(&incident.title),
            pair(incident.position),
            incident.level,
            metrics_field(&incident.metrics)
        ));
    }
    if events().any(|event| matches!(event, Event::IncidentClosed { incident_id: id } if ours(id))) {
        return Some(format!("close_incident = {}", text(incident_id)));
    }
    if events().any(|event| matches!(event, Event::DispatchCompleted { .. })) {
        if !events().any(|event| event.touched().incident_ids.iter().any(|id| ours(id))) {
            return None;
        }
        let divert = events().any(
            |event| matches!(event, Event::AssignmentStatusChanged { note, .. } if note.starts_with("diverted to")),
        );
        return Some(if divert { "dispatch = { divert = true }".to_owned() } else { "dispatch = {}".to_owned() });
    }
    if let Some((team_id, reported, position)) = events().find_map(|event| match event {
        Event::TeamStatusReported { team_id, status: Some(reported), position } => {
            Some((team_id, *reported, *position))
        }
        _ => None,
    }) {
        let position = position.map(|position| format!(", position = {}", pair(position))).unwrap_or_default();
        return matches!(reported, TeamStatus::OutOfService | TeamStatus::Available).then(|| {
            format!("team_status = {{ team = {}, status = \"{}\"{position} }}", text(team_id), reported.as_str())
        });
    }
    if let Some(assignment) = events().find_map(|event| match event {
        Event::AssignmentCreated { assignment } if ours(&assignment.incident_id) && assignment.by_hand => {
            Some(assignment)
        }
        _ => None,
    }) {
        let AssignedResource::Team { team_id } = &assignment.resource else { return None };
        let need = needs.get(&assignment.need_number)?;
        // "by hand (actor): words; distance ..." -> the operator's words.
        let words = assignment.reason.split_once(": ").map(|(_, words)| words).unwrap_or(&assignment.reason);
        let words = words.split("; ").next().unwrap_or(words);
        return Some(format!("assign = {{ need = \"N{need}\", team = {}, reason = {} }}", text(team_id), text(words)));
    }
    let mut requested_teams = Vec::new();
    let mut requested_supplies = Vec::new();
    for event in events() {
        if let Event::NeedRaised { need } = event {
            if !ours(&need.incident_id) || need.from_plan {
                continue;
            }
            match &need.key {
                NeedKey::Team { capability, min_tier } => requested_teams.push(format!(
                    "{{ capability = {}, min_tier = {min_tier}, count = {} }}",
                    text(capability),
                    need.amount
                )),
                NeedKey::Supply { item_code } => {
                    requested_supplies.push(format!("{{ item = {}, quantity = {} }}", text(item_code), need.amount))
                }
            }
        }
    }
    if !requested_teams.is_empty() || !requested_supplies.is_empty() {
        return Some(format!(
            "request_resources = {{ incident = {}, teams = [{}], supplies = [{}] }}",
            text(incident_id),
            requested_teams.join(", "),
            requested_supplies.join(", ")
        ));
    }
    let mut metrics: BTreeMap<String, f64> = BTreeMap::new();
    let mut level = None;
    let mut status = None;
    let mut update = false;
    for event in events() {
        match event {
            Event::IncidentMetricsUpdated { incident_id: id, metrics: values } if ours(id) => {
                update = true;
                metrics.extend(values.iter().map(|(name, value)| (name.clone(), *value)));
            }
            Event::IncidentLevelChanged { incident_id: id, to, cause: LevelCause::Operator, .. } if ours(id) => {
                update = true;
                level = Some(*to);
            }
            Event::IncidentStatusChanged { incident_id: id, status: changed } if ours(id) => {
                update = true;
                status = Some(*changed);
            }
            _ => {}
        }
    }
    if update {
        let mut parts = vec![format!("id = {}", text(incident_id))];
        if let Some(level) = level {
            parts.push(format!("level = \"{level}\""));
        }
        let metrics = metrics_field(&metrics);
        if !metrics.is_empty() {
            parts.push(metrics.trim_start_matches(", ").to_owned());
        }
        if let Some(status) = status.filter(|status| *status != IncidentStatus::Closed) {
            parts.push(format!("status = \"{}\"", status.as_str()));
        }
        return Some(format!("update_incident = {{ {} }}", parts.join(", ")));
    }
    for event in events() {
        match event {
            Event::ZoneSet { zone } => return Some(zone_inject(zone)),
            Event::ZoneCleared { zone_id } => return Some(format!("passable = {}", text(zone_id))),
            Event::StockAdjusted { depot_id, item_code, delta, reason, .. } => {
                return Some(format!(
                    "stock_adjust = {{ depot = {}, item = {}, delta = {delta}, reason = \"{}\" }}",
                    text(depot_id),
                    text(item_code),
                    reason.as_str()
                ));
            }
            Event::AssignmentStatusChanged { incident_id: id, assignment_number, to, .. } if ours(id) => {
                let number = assignments.get(assignment_number)?;
                return Some(format!(
                    "update_assignment = {{ assignment = \"A{number}\", status = \"{}\" }}",
                    to.as_str()
                ));
            }
            _ => {}
        }
    }
    None
}

/// `, metrics = { name = value, ... }`, or nothing without metrics.
fn metrics_field(metrics: &BTreeMap<String, f64>) -> String {
    if metrics.is_empty() {
        return String::new();
    }
    let values: Vec<String> = metrics.iter().map(|(name, value)| format!("{name} = {value:?}")).collect();
    format!(", metrics = {{ {} }}", values.join(", "))
}

/// The world as fixture entries, inline.
fn write_world(script: &mut String, state: &State) {
    for item in state.items.values() {
        let _ = writeln!(
            script,
            "\n[[item]]\ncode = {}\nname = {}\nunit = {}\ncategory = {}",
            text(&item.code),
            text(&item.name),
            text(&item.unit),
            text(&item.category)
        );
    }
    for depot in state.depots.values() {
        let _ = writeln!(
            script,
            "\n[[depot]]\nid = {}\nname = {}\norganization = {}\nposition = {}",
            text(&depot.id),
            text(&depot.name),
            text(&depot.organization),
            pair(depot.position)
        );
    }
    for ((depot_id, item_code), stock) in &state.stock {
        let _ = writeln!(
            script,
            "\n[[stock]]\ndepot = {}\nitem = {}\non_hand = {}\nmin_reserve = {}",
            text(depot_id),
            text(item_code),
            stock.on_hand,
            stock.min_reserve
        );
    }
    for team in state.teams.values() {
        let profile = &team.profile;
        let capabilities: Vec<String> = profile
            .capabilities
            .iter()
            .map(|capability| format!("{{ code = {}, tier = {} }}", text(&capability.code), capability.tier))
            .collect();
        let _ = write!(
            script,
            "\n[[team]]\nid = {}\nname = {}\norganization = {}\ncapabilities = [{}]\nheadcount = {}\nhome = {}\nspeed_kmh = {:?}\n",
            text(&team.id),
            text(&profile.name),
            text(&profile.organization),
            capabilities.join(", "),
            // Members are not exported: the people on duty stand in for them.
            profile.headcount.max(1),
            pair(profile.home),
            profile.speed_kmh
        );
        if let Some(expires) = profile.insurance_expires {
            let _ = writeln!(script, "insurance_expires = {}", time(expires));
        }
    }
    for history in state.plans.values() {
        let Some(plan) = history.latest() else { continue };
        let _ = writeln!(
            script,
            "\n[[plan]]\nid = {}\nname = {}\nhazard = {}",
            text(&plan.id),
            text(&plan.name),
            text(plan.hazard.as_str())
        );
        for requirement in &plan.levels {
            let teams: Vec<String> = requirement
                .teams
                .iter()
                .map(|need| {
                    format!(
                        "{{ capability = {}, min_tier = {}, count = {} }}",
                        text(&need.capability),
                        need.min_tier,
                        need.count
                    )
                })
                .collect();
            let supplies: Vec<String> = requirement
                .supplies
                .iter()
                .map(|need| format!("{{ item = {}, quantity = {} }}", text(&need.item_code), need.quantity))
                .collect();
            let tasks: Vec<String> = requirement
                .tasks
                .iter()
                .map(|task| {
                    let supporting: Vec<String> = task.supporting.iter().map(|name| text(name)).collect();
                    format!(
                        "{{ title = {}, lead = {}, supporting = [{}] }}",
                        text(&task.title),
                        text(&task.lead),
                        supporting.join(", ")
                    )
                })
                .collect();
            let _ = writeln!(
                script,
                "  [[plan.level]]\n  level = \"{}\"\n  teams = [{}]\n  supplies = [{}]\n  tasks = [{}]",
                requirement.level,
                teams.join(", "),
                supplies.join(", "),
                tasks.join(", ")
            );
        }
        for trigger in &plan.triggers {
            let _ = writeln!(
                script,
                "  [[plan.trigger]]\n  metric = {}\n  threshold = {:?}\n  level = \"{}\"",
                text(&trigger.metric),
                trigger.threshold,
                trigger.level
            );
        }
    }
}
