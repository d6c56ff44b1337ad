//! The drill report: the timeline of injects and decisions, per need when it
//! was raised, filled and reached, what stayed unmet, distance travelled,
//! reserve overrides, and every expectation passed or failed with why. Built
//! from the run's log alone (folded again here), so a stored run's report
//! can be rebuilt and checked at any time. Text for people, JSON for tools.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::run::{InjectOutcome, Run};
use super::script::{format_offset, Check, Script};
use crate::domain::assignment::{AssignedResource, AssignmentStatus};
use crate::domain::fills::{Fill, Fills};
use crate::domain::incident::need_id;
use crate::domain::{Event, Level, State, Timestamp};

/// One need's times, in minutes after it was raised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeedTimes {
    /// `N<number>`.
    pub need_id: String,
    /// Its incident.
    pub incident_id: String,
    /// What it asks, in words.
    pub what: String,
    /// The incident's level when it was raised.
    pub level: String,
    /// When it was raised, as an offset from the start (`+HH:MM:SS`).
    pub raised: String,
    /// Minutes from raised to filled (`None`: never filled).
    pub fill_minutes: Option<f64>,
    /// Minutes from raised to the first arrival on scene (`None`: nobody arrived).
    pub reach_minutes: Option<f64>,
    /// Cancelled before it was filled (no longer needed).
    pub cancelled: bool,
}

/// A need still short when the drill ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unmet {
    /// `N<number>`.
    pub need_id: String,
    /// Its incident.
    pub incident_id: String,
    /// Teams or units still missing.
    pub missing: i64,
    /// The last shortfall reason the dispatcher gave, if any.
    pub reason: String,
}

/// Stock taken below a strategic minimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The assignment.
    pub assignment_id: String,
    /// The depot.
    pub depot_id: String,
    /// The item.
    pub item_code: String,
    /// Units below the minimum.
    pub quantity: i64,
}

/// One expectation's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// In the controller's words.
    pub description: String,
    /// Where it is written.
    pub source: String,
    /// Passed or not.
    pub passed: bool,
    /// Why, in words.
    pub detail: String,
}

/// One decision of the run, for the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Offset from the start.
    pub at: String,
    /// Log sequence.
    pub sequence: u64,
    /// Who decided.
    pub actor: String,
    /// What happened.
    pub summary: String,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The stored run's id (empty for `musterd drill run`).
    pub run_id: String,
    /// The drill's name.
    pub name: String,
    /// What it exercises.
    pub description: String,
    /// The seed used.
    pub seed: u64,
    /// The virtual start (RFC 3339).
    pub start: String,
    /// Where the clock stopped, as an offset.
    pub end: String,
    /// Hex SHA-256 of the final state.
    pub digest: String,
    /// Log records.
    pub events: u64,
    /// Every inject and its outcome.
    pub injects: Vec<InjectOutcome>,
    /// The decisions that matter to a reviewer, in order.
    pub decisions: Vec<Decision>,
    /// Per need.
    pub needs: Vec<NeedTimes>,
    /// Still short at the end.
    pub unmet: Vec<Unmet>,
    /// Distance of every assignment that set out, km.
    pub total_distance_km: f64,
    /// Reserve overrides.
    pub reserve_overrides: Vec<Override>,
    /// Every expectation.
    pub expectations: Vec<Verdict>,
    /// Set by a replay: whether it reproduced the run (`None`: not replayed).
    pub replay_matches: Option<bool>,
    /// Set by a replay: the first record that differs, in words.
    pub divergence: String,
}

impl Report {
    /// True when every expectation passed.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|verdict| verdict.passed)
    }
}

/// Per-need facts gathered while folding the log.
#[derive(Default)]
struct NeedFacts {
    raised: Option<Timestamp>,
    level: Option<Level>,
    /// What it asked when raised (a later lowering does not rewrite it).
    what: String,
    team: bool,
}

/// Builds the report of `run` of `script`.
pub fn build(script: &Script, run: &Run) -> Report {
    let mut state = State::default();
    let mut facts: BTreeMap<u64, NeedFacts> = BTreeMap::new();
    // When each need was filled and reached: the same fold as the live
    // incident report's.
    let mut fills = Fills::default();
    let mut decisions = Vec::new();
    let mut set_out: BTreeSet<u64> = BTreeSet::new();
    let mut assigned: BTreeSet<(String, String)> = BTreeSet::new();
    let mut shortfalls: BTreeMap<u64, String> = BTreeMap::new();
    let offset = |time: Timestamp| format_offset(time.seconds_since(run.start));
    for (index, record) in run.records.iter().enumerate() {
        state.apply(record);
        let command_ends = run.records.get(index + 1).is_none_or(|next| next.command != record.command);
        fills.fold(record, command_ends);
        match &record.event {
            Event::NeedRaised { need } => {
                let level = state.incidents.get(&need.incident_id).map(|incident| incident.level);
                let team = matches!(need.key, crate::domain::plan::NeedKey::Team { .. });
                let what = need.describe();
                facts.insert(need.number, NeedFacts { raised: Some(record.time), level, what, team });
            }
            Event::AssignmentCreated { assignment } => {
                if let Some(team) = assignment.team_id() {
                    assigned.insert((team.to_owned(), assignment.incident_id.clone()));
                }
            }
            Event::AssignmentStatusChanged { assignment_number, from, to, .. } => {
                let passes =
                    |status: AssignmentStatus| matches!(status, AssignmentStatus::EnRoute | AssignmentStatus::OnScene);
                if passes(*to) || (*to == AssignmentStatus::Released && *from == AssignmentStatus::OnScene) {
                    set_out.insert(*assignment_number);
                }
            }
            Event::DispatchCompleted { shortfalls: missing, .. } => {
                for shortfall in missing {
                    shortfalls.insert(shortfall.need_number, shortfall.reason.clone());
                }
            }
            _ => {}
        }
        if is_decision(&record.event) {
            decisions.push(Decision {
                at: offset(record.time),
                sequence: record.sequence,
                actor: record.actor.clone(),
                summary: record.event.summary(),
            });
        }
    }
    let minutes = |from: Option<Timestamp>, to: Option<Timestamp>| match (from, to) {
        (Some(from), Some(to)) => Some(to.minutes_since(from)),
        _ => None,
    };
    let needs: Vec<NeedTimes> = state
        .needs
        .values()
        .map(|need| {
            let fact = facts.get(&need.number);
            NeedTimes {
                need_id: need.id(),
                incident_id: need.incident_id.clone(),
                what: fact.map(|fact| fact.what.clone()).unwrap_or_else(|| need.describe()),
                level: fact.and_then(|fact| fact.level).map(|level| level.to_string()).unwrap_or_default(),
                raised: fact.and_then(|fact| fact.raised).map(offset).unwrap_or_default(),
                fill_minutes: fact.and_then(|fact| minutes(fact.raised, fills.get(need.number)?.filled)),
                reach_minutes: fact.and_then(|fact| minutes(fact.raised, fills.get(need.number)?.reached)),
                cancelled: need.cancelled,
            }
        })
        .collect();
    let mut unmet: Vec<Unmet> = state
        .needs
        .values()
        .filter(|need| need.missing() > 0)
        .map(|need| Unmet {
            need_id: need.id(),
            incident_id: need.incident_id.clone(),
            missing: need.missing(),
            reason: shortfalls.get(&need.number).cloned().unwrap_or_default(),
        })
        .collect();
    // Needs still short when their incident closed stay unmet, although
    // the closing cancelled or lowered them. A closed incident is never
    // dispatched again, so its needs' last shortfalls are those at closing.
    unmet.extend(fills.closed_short().iter().map(|closed| Unmet {
        need_id: need_id(closed.need_number),
        incident_id: closed.incident_id.clone(),
        missing: closed.missing,
        reason: format!(
            "short when the incident closed{}",
            shortfalls.get(&closed.need_number).map(|why| format!(": {why}")).unwrap_or_default()
        ),
    }));
    let total_distance_km: f64 = set_out
        .iter()
        .filter_map(|number| state.assignments.get(number))
        .map(|assignment| assignment.distance_km)
        .sum();
    let reserve_overrides: Vec<Override> = state
        .assignments
        .values()
        .filter(|assignment| assignment.reserve_override)
        .filter_map(|assignment| match &assignment.resource {
            AssignedResource::Supply { depot_id, item_code, .. } => Some(Override {
                assignment_id: assignment.id(),
                depot_id: depot_id.clone(),
                item_code: item_code.clone(),
                quantity: assignment.override_quantity,
            }),
            AssignedResource::Team { .. } => None,
        })
        .collect();
    let end_minutes_after = |raised: Option<Timestamp>| raised.map(|raised| run.end.minutes_since(raised));
    let expectations = script
        .expectations
        .iter()
        .map(|expectation| {
            let (passed, detail) = match &expectation.check {
                Check::FilledWithin { seconds, level, incident } => within(
                    &facts,
                    &fills,
                    &state,
                    *seconds,
                    *level,
                    incident.as_deref(),
                    false,
                    |fill| fill.filled,
                    &end_minutes_after,
                ),
                Check::ReachedWithin { seconds, level, incident } => within(
                    &facts,
                    &fills,
                    &state,
                    *seconds,
                    *level,
                    incident.as_deref(),
                    true,
                    |fill| fill.reached,
                    &end_minutes_after,
                ),
                Check::NoReserveOverride => match reserve_overrides.as_slice() {
                    [] => (true, "no stock was taken below a strategic minimum".to_owned()),
                    overrides => (
                        false,
                        overrides
                            .iter()
                            .map(|o| {
                                format!(
                                    "{} took {} {} below the minimum at {}",
                                    o.assignment_id, o.quantity, o.item_code, o.depot_id
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                },
                Check::UnmetAtMost(most) => {
                    let count = unmet.len() as u64;
                    let list: Vec<String> = unmet
                        .iter()
                        .take(5)
                        .map(|need| format!("{} short by {}", need.need_id, need.missing))
                        .collect();
                    (
                        count <= *most,
                        format!(
                            "{count} need(s) unmet at the end (at most {most}){}",
                            if list.is_empty() { String::new() } else { format!(": {}", list.join(", ")) }
                        ),
                    )
                }
                Check::MaxTotalDistanceKm(most) => {
                    (total_distance_km <= *most, format!("{total_distance_km:.1} km travelled (at most {most:.1})"))
                }
                Check::TeamAssigned { team, incident } => {
                    let yes = assigned.contains(&(team.clone(), incident.clone()));
                    (yes, format!("team {team} was {}assigned to {incident}", if yes { "" } else { "never " }))
                }
                Check::TeamNotAssigned { team, incident } => {
                    let to: Vec<&String> = assigned
                        .iter()
                        .filter(|(who, _)| who == team)
                        .map(|(_, to)| to)
                        .filter(|to| incident.as_ref().is_none_or(|only| only == *to))
                        .collect();
                    (
                        to.is_empty(),
                        if to.is_empty() {
                            format!(
                                "team {team} was not assigned{}",
                                incident.as_ref().map(|id| format!(" to {id}")).unwrap_or_default()
                            )
                        } else {
                            format!(
                                "team {team} was assigned to {}",
                                to.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(", ")
                            )
                        },
                    )
                }
            };
            Verdict { description: expectation.description.clone(), source: expectation.source.clone(), passed, detail }
        })
        .collect();
    Report {
        run_id: String::new(),
        name: script.name.clone(),
        description: script.description.clone(),
        seed: run.seed,
        start: run.start.to_string(),
        end: offset(run.end),
        digest: state.digest(),
        events: run.records.len() as u64,
        injects: run.injects.clone(),
        decisions,
        needs,
        unmet,
        total_distance_km,
        reserve_overrides,
        expectations,
        replay_matches: None,
        divergence: String::new(),
    }
}

/// The records a reviewer wants in the timeline (not every heartbeat).
fn is_decision(event: &Event) -> bool {
    match event {
        Event::IncidentDeclared { .. }
        | Event::IncidentLevelChanged { .. }
        | Event::IncidentClosed { .. }
        | Event::AssignmentCreated { .. }
        | Event::TeamExcluded { .. }
        | Event::ZoneSet { .. }
        | Event::ZoneCleared { .. }
        | Event::StockReturned { .. } => true,
        Event::AssignmentStatusChanged { to, .. } => {
            matches!(to, AssignmentStatus::Cancelled | AssignmentStatus::Declined | AssignmentStatus::OnScene)
        }
        Event::DispatchCompleted { shortfalls, .. } => !shortfalls.is_empty(),
        _ => false,
    }
}

/// Checks "every matching need within `seconds`" for one kind of time.
#[allow(clippy::too_many_arguments)] // One call site per expectation kind; a struct would only rename them.
fn within(
    facts: &BTreeMap<u64, NeedFacts>,
    fills: &Fills,
    state: &State,
    seconds: i64,
    level: Option<Level>,
    incident: Option<&str>,
    teams_only: bool,
    time: impl Fn(&Fill) -> Option<Timestamp>,
    end_minutes_after: &dyn Fn(Option<Timestamp>) -> Option<f64>,
) -> (bool, String) {
    let limit = seconds as f64 / 60.0;
    let mut checked = 0;
    let mut cancelled = 0;
    let mut late = Vec::new();
    for (number, fact) in facts {
        let Some(need) = state.needs.get(number) else { continue };
        if level.is_some_and(|level| fact.level != Some(level))
            || incident.is_some_and(|id| need.incident_id != id)
            || (teams_only && !fact.team)
        {
            continue;
        }
        let fill = fills.get(*number);
        let took = match (fact.raised, fill.and_then(&time)) {
            (Some(raised), Some(done)) => Some(done.minutes_since(raised)),
            _ => None,
        };
        if took.is_none() && need.cancelled && !fill.is_some_and(|fill| fill.closed_short) {
            // No longer needed before it was served.
            cancelled += 1;
            continue;
        }
        checked += 1;
        match took {
            Some(minutes) if minutes <= limit => {}
            Some(minutes) => late.push(format!("{} of {} after {minutes:.0} min", need_id(*number), need.incident_id)),
            None => late.push(format!(
                "{} of {} never ({:.0} min until the end)",
                need_id(*number),
                need.incident_id,
                end_minutes_after(fact.raised).unwrap_or(0.0)
            )),
        }
    }
    if checked == 0 {
        let why = if cancelled > 0 {
            format!("the {cancelled} matching need(s) were all cancelled before they were served")
        } else {
            "no need matched this expectation (check its level and incident)".to_owned()
        };
        return (false, why);
    }
    if late.is_empty() {
        (true, format!("all {checked} matching need(s) within {limit:.0} min"))
    } else {
        let shown: Vec<&String> = late.iter().take(5).collect();
        (
            false,
            format!(
                "{} of {checked} late: {}{}",
                late.len(),
                shown.iter().map(|text| text.as_str()).collect::<Vec<_>>().join("; "),
                if late.len() > shown.len() { "; ..." } else { "" }
            ),
        )
    }
}

/// The report in words, for people.
pub fn render_text(report: &Report) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "Drill: {}", report.name);
    if !report.description.is_empty() {
        let _ = writeln!(text, "{}", report.description.trim());
    }
    if !report.run_id.is_empty() {
        let _ = writeln!(text, "Run {}", report.run_id);
    }
    let _ = writeln!(
        text,
        "Seed {}; virtual start {}; ran to {}; {} events",
        report.seed, report.start, report.end, report.events
    );
    let _ = writeln!(text, "\nTimeline of injects:");
    for inject in &report.injects {
        let outcome = match &inject.error {
            None => "done".to_owned(),
            Some(error) => format!("FAILED: {error}"),
        };
        let _ = writeln!(text, "  {}  {}  [{outcome}]", format_offset(inject.at_seconds), inject.action);
        if !inject.note.is_empty() {
            let _ = writeln!(text, "             note: {}", inject.note);
        }
        if !inject.objective.is_empty() {
            let _ = writeln!(text, "             objective: {}", inject.objective);
        }
    }
    let _ = writeln!(text, "\nDecisions ({}):", report.decisions.len());
    for decision in report.decisions.iter().take(200) {
        let _ = writeln!(text, "  {}  #{} {}: {}", decision.at, decision.sequence, decision.actor, decision.summary);
    }
    if report.decisions.len() > 200 {
        let _ = writeln!(text, "  ... {} more (see --json)", report.decisions.len() - 200);
    }
    let _ = writeln!(text, "\nNeeds:");
    for need in &report.needs {
        let show =
            |value: Option<f64>| value.map(|minutes| format!("{minutes:.0} min")).unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(
            text,
            "  {:<6} {:<10} level {:<4} raised {}  filled {:<8} reached {:<8} {}{}",
            need.need_id,
            need.incident_id,
            need.level,
            need.raised,
            show(need.fill_minutes),
            show(need.reach_minutes),
            need.what,
            if need.cancelled { " (cancelled)" } else { "" }
        );
    }
    let _ = writeln!(text, "\nUnmet at the end: {}", report.unmet.len());
    for need in &report.unmet {
        let _ = writeln!(text, "  {} of {} short by {}: {}", need.need_id, need.incident_id, need.missing, need.reason);
    }
    let _ = writeln!(text, "Total distance: {:.1} km", report.total_distance_km);
    let _ = writeln!(text, "Reserve overrides: {}", report.reserve_overrides.len());
    for item in &report.reserve_overrides {
        let _ = writeln!(
            text,
            "  {} took {} {} below the minimum at {}",
            item.assignment_id, item.quantity, item.item_code, item.depot_id
        );
    }
    let _ = writeln!(text, "\nExpectations:");
    for verdict in &report.expectations {
        let _ = writeln!(
            text,
            "  [{}] {}: {}",
            if verdict.passed { "PASS" } else { "FAIL" },
            verdict.description,
            verdict.detail
        );
    }
    let passed = report.expectations.iter().filter(|verdict| verdict.passed).count();
    let _ = writeln!(text, "\nExpectations met: {passed} of {}", report.expectations.len());
    let _ = writeln!(text, "Digest {}", report.digest);
    if let Some(matches) = report.replay_matches {
        let _ = writeln!(
            text,
            "Replay: {}",
            if matches { "matches".to_owned() } else { format!("DIFFERS: {}", report.divergence) }
        );
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SCRIPT: &str = r#"
name = "A silent team and a short close"
start = "2026-07-01T06:00:00Z"
end = "+03:00:00"

[simulation]
ack_after = "00:01:00"
auto_dispatch = true

[[team]]
id = "NEAR"
name = "Near"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 6
home = [28.20, 112.95]
speed_kmh = 60
insurance_expires = "2030-01-01T00:00:00Z"

[[team]]
id = "FAR"
name = "Far"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 6
home = [28.30, 112.95]
speed_kmh = 60
insurance_expires = "2030-01-01T00:00:00Z"

[[inject]]
at = "+00:00:00"
team_silent = "NEAR"

[[inject]]
at = "+00:00:00"
declare_incident = { id = "X", hazard = "FLOOD", title = "x", position = [28.21, 112.95], level = "II" }

[[inject]]
at = "+00:00:00"
request_resources = { incident = "X", teams = [{ capability = "water_rescue", min_tier = 2, count = 1 }] }

[[inject]]
at = "+00:30:00"
dispatch = {}

[[inject]]
at = "+01:00:00"
request_resources = { incident = "X", teams = [{ capability = "medical", min_tier = 4, count = 1 }] }

[[inject]]
at = "+02:00:00"
close_incident = "X"

[[expect]]
description = "filled within 20 minutes"
needs_filled_within = "00:20:00"
incident = "X"

[[expect]]
description = "nothing unmet"
unmet_needs_at_most = 0

[[expect]]
description = "filled within an hour"
needs_filled_within = "01:00:00"
incident = "X"
"#;

    async fn report() -> Report {
        let script = crate::drill::script::parse("t.toml", SCRIPT, &|_| Err("none".to_owned())).unwrap();
        let options = crate::drill::RunOptions::default();
        crate::drill::run_and_report(&script, &options, &|_| {}).await.unwrap().1
    }

    /// Regression: a need filled by a team that never acknowledged counted
    /// as filled from that moment; it is filled when the second team came.
    #[tokio::test]
    async fn a_fill_undone_by_a_timeout_does_not_count() {
        let report = report().await;
        let water = report.needs.iter().find(|need| need.what.contains("water_rescue")).unwrap();
        let minutes = water.fill_minutes.unwrap();
        assert!((minutes - 30.0).abs() < 0.01, "filled when FAR was sent at +00:30, not at 0: {minutes}");
        assert!(!report.expectations[0].passed, "{:?}", report.expectations[0]);
    }

    /// Regression: closing an incident cancelled its short needs, and the
    /// report then said nothing was unmet.
    #[tokio::test]
    async fn a_need_short_when_its_incident_closed_is_unmet() {
        let report = report().await;
        assert_eq!(report.unmet.len(), 1, "{:?}", report.unmet);
        assert!(report.unmet[0].reason.starts_with("short when the incident closed"), "{:?}", report.unmet);
        assert!(!report.expectations[1].passed);
        let medical = report.needs.iter().find(|need| need.what.contains("medical")).unwrap();
        assert!(medical.cancelled && medical.what.starts_with("1 x medical"), "{medical:?}");
    }

    /// Regression: a need the closing cancelled while short was skipped as
    /// "no longer needed", so "filled within" passed.
    #[tokio::test]
    async fn a_need_short_at_closing_was_never_filled() {
        let report = report().await;
        let verdict = &report.expectations[2];
        assert!(!verdict.passed, "the medical need was never filled: {verdict:?}");
        assert!(verdict.detail.contains("never"), "{verdict:?}");
    }
}
