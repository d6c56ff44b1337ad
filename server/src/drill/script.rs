//! Drill scripts: the TOML format of `docs/drills.md`, parsed into a
//! [`Script`]. Like fixtures (and with the fixture parser's entry types for
//! the world), every error names the file, the line and the key, unknown
//! keys are refused, and nothing runs when the script is broken.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::assignment::AssignmentStatus;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::import::Fixture;
use crate::domain::incident::{Declaration, IncidentStatus, IncidentUpdate};
use crate::domain::reserve::LedgerReason;
use crate::domain::team::TeamStatus;
use crate::domain::zone::Zone;
use crate::domain::{LatLng, Level, SupplyNeed, TeamNeed, Timestamp};
use crate::fixture::{
    self, DepotEntry, Entries, ItemEntry, Locator, PlanEntry, StockEntry, SupplyNeedEntry, TeamEntry, TeamNeedEntry,
    TimeEntry,
};

/// The longest virtual time a drill may span: a week.
pub const MAX_DRILL_SECONDS: i64 = 7 * 24 * 3_600;
/// Most injects in one script (so a report, with every inject's note and
/// objective, stays well under the message limit).
pub const MAX_INJECTS: usize = 2_000;
/// How long a drill goes on after its last inject when it names no `end`,
/// for teams to arrive and come home.
pub const DEFAULT_TAIL_SECONDS: i64 = 12 * 3_600;

/// A parsed drill script.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// The exercise's name.
    pub name: String,
    /// What it exercises.
    pub description: String,
    /// Every random choice of the run comes from it.
    pub seed: u64,
    /// The virtual clock's start.
    pub start: Timestamp,
    /// The world: the fixture it names, then its own entries.
    pub world: Vec<Fixture>,
    /// Start from a copy of the live world.
    pub from_live: bool,
    /// Virtual seconds per real second (0: as fast as possible).
    pub pace: f64,
    /// How simulated teams behave (`None`: no `[simulation]`, so teams do
    /// only what the injects say; the engine's own timeouts still run).
    pub simulation: Option<SimulationSpec>,
    /// When the run stops, in seconds after `start`.
    pub end_seconds: i64,
    /// The timeline, in time order (ties in file order).
    pub injects: Vec<Inject>,
    /// What the exercise is judged by.
    pub expectations: Vec<Expectation>,
}

/// `[simulation]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimulationSpec {
    /// A simulated team acknowledges this long after dispatch.
    pub ack_after_seconds: i64,
    /// Plus up to this much, drawn from the seed.
    pub ack_spread_seconds: i64,
    /// Share of dispatches declined, drawn from the seed.
    pub decline_rate: f64,
    /// Dispatch open needs after every inject.
    pub auto_dispatch: bool,
    /// Auto-dispatch may divert.
    pub divert: bool,
    /// A team on scene is released after this long (`None`: at closing).
    pub on_scene_for_seconds: Option<i64>,
}

/// One inject of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Inject {
    /// `file:line: inject[index]`.
    pub source: String,
    /// Seconds after the start.
    pub at_seconds: i64,
    /// What the inject is, for the timeline.
    pub note: String,
    /// What it tests.
    pub objective: String,
    /// What happens.
    pub action: Action,
}

/// What an inject does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `declare_incident`.
    Declare(Declaration),
    /// `update_incident`.
    Update(IncidentUpdate),
    /// `close_incident`.
    Close {
        /// The incident.
        id: String,
    },
    /// `request_resources`.
    Request {
        /// The incident.
        incident: String,
        /// Teams.
        teams: Vec<TeamNeed>,
        /// Supplies.
        supplies: Vec<SupplyNeed>,
    },
    /// `dispatch`.
    Dispatch {
        /// One incident, or all.
        incident: Option<String>,
        /// May divert.
        divert: bool,
    },
    /// `team_status`.
    TeamStatus {
        /// The team.
        team: String,
        /// Its new status.
        status: TeamStatus,
        /// Its position, if reported.
        position: Option<LatLng>,
    },
    /// `stock_adjust`.
    StockAdjust {
        /// The depot.
        depot: String,
        /// The item.
        item: String,
        /// The change of on hand.
        delta: i64,
        /// Why.
        reason: LedgerReason,
    },
    /// `impassable`.
    Impassable(Zone),
    /// `passable`.
    Passable {
        /// The zone lifted.
        id: String,
    },
    /// `team_silent`: the team's app stops answering.
    TeamSilent {
        /// The team.
        team: String,
    },
    /// `assign`: a hand assignment.
    Assign {
        /// The need, or (with `incident` and `capability`) the first open
        /// team need of that capability when the inject runs.
        need: NeedRef,
        /// The team.
        team: String,
        /// The operator's words.
        reason: String,
    },
    /// `update_assignment`.
    UpdateAssignment {
        /// An assignment id, or a team (its active assignment then).
        target: AssignmentRef,
        /// Where it goes.
        status: AssignmentStatus,
    },
}

/// Which need an `assign` inject names.
#[derive(Clone, Debug, PartialEq)]
pub enum NeedRef {
    /// By id (`N12`).
    Id(String),
    /// The first open team need of `capability` in `incident`.
    Capability {
        /// The incident.
        incident: String,
        /// The capability code.
        capability: String,
    },
}

/// Which assignment an `update_assignment` inject names.
#[derive(Clone, Debug, PartialEq)]
pub enum AssignmentRef {
    /// By id (`A7`).
    Id(String),
    /// The team's active assignment.
    Team(String),
}

/// One expectation: its words and what is checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// `file:line: expect[index]`.
    pub source: String,
    /// In the controller's words.
    pub description: String,
    /// The check.
    pub check: Check,
}

/// What an expectation checks.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// Every matching need filled within `seconds` of being raised.
    FilledWithin {
        /// The bound.
        seconds: i64,
        /// Only needs raised at this level.
        level: Option<Level>,
        /// Only this incident's needs.
        incident: Option<String>,
    },
    /// The first team of every matching team need on scene within `seconds`.
    ReachedWithin {
        /// The bound.
        seconds: i64,
        /// Only needs raised at this level.
        level: Option<Level>,
        /// Only this incident's needs.
        incident: Option<String>,
    },
    /// No assignment took stock below a strategic minimum.
    NoReserveOverride,
    /// At most this many needs unmet at the end.
    UnmetAtMost(u64),
    /// Total distance of assignments that set out, at most this.
    MaxTotalDistanceKm(f64),
    /// The team was assigned to the incident at some point.
    TeamAssigned {
        /// The team.
        team: String,
        /// The incident.
        incident: String,
    },
    /// The team was never assigned (to the incident, or at all).
    TeamNotAssigned {
        /// The team.
        team: String,
        /// The incident, if only that one.
        incident: Option<String>,
    },
}

/// Reads the fixture a script names: its path as written, relative to the
/// script, gives `(name for errors, text)`.
pub type FixtureReader<'a> = dyn Fn(&str) -> Result<(String, String), String> + 'a;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: u64,
    start: Spanned<TimeEntry>,
    #[serde(default)]
    fixture: Option<Spanned<FixtureNames>>,
    #[serde(default)]
    from_live: bool,
    #[serde(default)]
    pace: Option<Spanned<f64>>,
    #[serde(default)]
    end: Option<Spanned<String>>,
    #[serde(default)]
    simulation: Option<Spanned<SimulationEntry>>,
    #[serde(default)]
    item: Vec<Spanned<ItemEntry>>,
    #[serde(default)]
    depot: Vec<Spanned<DepotEntry>>,
    #[serde(default)]
    stock: Vec<Spanned<StockEntry>>,
    #[serde(default)]
    team: Vec<Spanned<TeamEntry>>,
    #[serde(default)]
    plan: Vec<Spanned<PlanEntry>>,
    #[serde(default)]
    inject: Vec<Spanned<InjectEntry>>,
    #[serde(default)]
    expect: Vec<Spanned<ExpectEntry>>,
}

/// `fixture = "fixtures/city.toml"`, or several: `["a.toml", "b.toml"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FixtureNames {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulationEntry {
    #[serde(default)]
    ack_after: Option<String>,
    #[serde(default)]
    ack_spread: Option<String>,
    #[serde(default)]
    decline_rate: Option<f64>,
    #[serde(default)]
    auto_dispatch: Option<bool>,
    #[serde(default)]
    divert: Option<bool>,
    #[serde(default)]
    on_scene_for: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectEntry {
    at: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    objective: String,
    #[serde(default)]
    declare_incident: Option<DeclareEntry>,
    #[serde(default)]
    update_incident: Option<UpdateEntry>,
    #[serde(default)]
    close_incident: Option<IdOrTable>,
    #[serde(default)]
    request_resources: Option<RequestEntry>,
    #[serde(default)]
    dispatch: Option<DispatchEntry>,
    #[serde(default)]
    team_status: Option<TeamStatusEntry>,
    #[serde(default)]
    stock_adjust: Option<StockAdjustEntry>,
    #[serde(default)]
    impassable: Option<ZoneEntry>,
    #[serde(default)]
    passable: Option<IdOrTable>,
    #[serde(default)]
    team_silent: Option<TeamOrTable>,
    #[serde(default)]
    assign: Option<AssignEntry>,
    #[serde(default)]
    update_assignment: Option<UpdateAssignmentEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclareEntry {
    #[serde(default)]
    id: String,
    hazard: String,
    #[serde(default)]
    title: String,
    position: [f64; 2],
    level: String,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    area: Vec<[f64; 2]>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateEntry {
    id: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdOrTable {
    Id(String),
    Table(IdEntry),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdEntry {
    id: String,
}

impl IdOrTable {
    fn id(self) -> String {
        match self {
            IdOrTable::Id(id) | IdOrTable::Table(IdEntry { id }) => id,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TeamOrTable {
    Team(String),
    Table(TeamRefEntry),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamRefEntry {
    team: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestEntry {
    incident: String,
    #[serde(default)]
    teams: Vec<TeamNeedEntry>,
    #[serde(default)]
    supplies: Vec<SupplyNeedEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchEntry {
    #[serde(default)]
    incident: Option<String>,
    #[serde(default)]
    divert: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamStatusEntry {
    team: String,
    status: String,
    #[serde(default)]
    position: Option<[f64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StockAdjustEntry {
    depot: String,
    item: String,
    delta: i64,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneEntry {
    id: String,
    polygon: Vec<[f64; 2]>,
    #[serde(default)]
    note: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignEntry {
    #[serde(default)]
    need: Option<String>,
    #[serde(default)]
    incident: Option<String>,
    #[serde(default)]
    capability: Option<String>,
    team: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAssignmentEntry {
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    assignment: Option<String>,
    status: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectEntry {
    description: String,
    #[serde(default)]
    needs_filled_within: Option<String>,
    #[serde(default)]
    needs_reached_within: Option<String>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    incident: Option<String>,
    #[serde(default)]
    no_reserve_override: Option<bool>,
    #[serde(default)]
    unmet_needs_at_most: Option<u64>,
    #[serde(default)]
    max_total_distance_km: Option<f64>,
    #[serde(default)]
    team_assigned: Option<TeamIncidentEntry>,
    #[serde(default)]
    team_not_assigned: Option<TeamMaybeIncidentEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamIncidentEntry {
    team: String,
    incident: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamMaybeIncidentEntry {
    team: String,
    #[serde(default)]
    incident: Option<String>,
}

/// Parses `HH:MM:SS` (hours may pass 24), optionally with a leading `+`,
/// into seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let body = text.strip_prefix('+').unwrap_or(text);
    let parts: Vec<&str> = body.split(':').collect();
    let [hours, minutes, seconds] = parts.as_slice() else { return None };
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty();
    if !digits(hours) || !digits(minutes) || !digits(seconds) || minutes.len() != 2 || seconds.len() != 2 {
        return None;
    }
    let (hours, minutes, seconds): (i64, i64, i64) =
        (hours.parse().ok()?, minutes.parse().ok()?, seconds.parse().ok()?);
    if minutes >= 60 || seconds >= 60 || hours > MAX_DRILL_SECONDS / 3_600 {
        return None;
    }
    Some(hours * 3_600 + minutes * 60 + seconds)
}

/// Writes seconds as `+HH:MM:SS`.
pub fn format_offset(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "+" };
    let seconds = seconds.abs();
    format!("{sign}{:02}:{:02}:{:02}", seconds / 3_600, seconds / 60 % 60, seconds % 60)
}

fn duration(field: String, text: &str) -> DomainResult<i64> {
    parse_duration(text).ok_or_else(|| {
        DomainError::invalid(field, format!("{text:?} is not a duration such as \"00:30:00\" (HH:MM:SS)"))
    })
}

fn level(field: String, text: &str) -> DomainResult<Level> {
    fixture::level(&field, text)
}

fn point(pair: [f64; 2]) -> LatLng {
    LatLng { lat: pair[0], lng: pair[1] }
}

fn team_status(field: String, text: &str) -> DomainResult<TeamStatus> {
    // The other statuses follow assignments (update_assignment).
    TeamStatus::parse(text)
        .filter(|status| matches!(status, TeamStatus::Available | TeamStatus::OutOfService))
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("{text:?} is not AVAILABLE or OUT_OF_SERVICE (other statuses follow assignments)"),
            )
        })
}

fn assignment_status(field: String, text: &str) -> DomainResult<AssignmentStatus> {
    let upper = text.to_ascii_uppercase();
    [
        AssignmentStatus::Acknowledged,
        AssignmentStatus::EnRoute,
        AssignmentStatus::OnScene,
        AssignmentStatus::Released,
        AssignmentStatus::Cancelled,
        AssignmentStatus::Declined,
    ]
    .into_iter()
    .find(|status| status.as_str() == upper)
    .ok_or_else(|| {
        DomainError::invalid(
            field,
            format!("{text:?} is not ACKNOWLEDGED, EN_ROUTE, ON_SCENE, RELEASED, CANCELLED or DECLINED"),
        )
    })
}

fn ledger_reason(field: String, text: &str) -> DomainResult<LedgerReason> {
    LedgerReason::parse(text).ok_or_else(|| {
        DomainError::invalid(
            field,
            format!("{text:?} is not a ledger reason (RECEIVED, ISSUED, CONSUMED, RETURNED, LOST, COUNTED)"),
        )
    })
}

/// Parses a drill script named `name`; `read_fixture` reads the fixture it
/// names. Errors name the file, the line and the key.
pub fn parse(name: &str, text: &str, read_fixture: &FixtureReader<'_>) -> DomainResult<Script> {
    let locator = Locator::new(name, text);
    let file: ScriptFile = toml::from_str(text).map_err(|error| locator.syntax_error(&error))?;
    let at = |key: &str, span: std::ops::Range<usize>| format!("{name}:{}: {key}", locator.line(span.start));
    let start = file.start.get_ref().to_timestamp(&at("start", file.start.span()))?;
    let mut world = Vec::new();
    if let Some(names) = &file.fixture {
        let paths = match names.get_ref() {
            FixtureNames::One(path) => std::slice::from_ref(path),
            FixtureNames::Many(paths) => paths.as_slice(),
        };
        for path in paths {
            let (fixture_name, fixture_text) =
                read_fixture(path).map_err(|reason| DomainError::invalid(at("fixture", names.span()), reason))?;
            world.push(fixture::parse(&fixture_name, &fixture_text)?);
        }
    }
    let entries =
        Entries { items: file.item, depots: file.depot, stock: file.stock, teams: file.team, plans: file.plan };
    world.push(fixture::entries_to_fixture(&locator, entries)?);
    let pace = match &file.pace {
        None => 0.0,
        Some(pace) if pace.get_ref().is_finite() && *pace.get_ref() >= 0.0 => *pace.get_ref(),
        Some(pace) => return Err(DomainError::invalid(at("pace", pace.span()), "must be 0 or a positive number")),
    };
    let simulation = match file.simulation {
        None => None,
        Some(entry) => Some(simulation(&at("simulation", entry.span()), entry.into_inner())?),
    };
    if file.inject.len() > MAX_INJECTS {
        return Err(DomainError::invalid(format!("{name}: inject"), format!("more than {MAX_INJECTS} injects")));
    }
    let mut injects = Vec::with_capacity(file.inject.len());
    for (index, entry) in file.inject.into_iter().enumerate() {
        let source = locator.source("inject", index, entry.span());
        injects.push(inject(source, entry.into_inner())?);
    }
    // Stable: injects at the same time keep their order in the file.
    injects.sort_by_key(|inject| inject.at_seconds);
    let mut expectations = Vec::with_capacity(file.expect.len());
    for (index, entry) in file.expect.into_iter().enumerate() {
        let source = locator.source("expect", index, entry.span());
        expectations.push(expectation(source, entry.into_inner())?);
    }
    let last = injects.last().map(|inject| inject.at_seconds).unwrap_or(0);
    let end_seconds = match &file.end {
        None => (last + DEFAULT_TAIL_SECONDS).min(MAX_DRILL_SECONDS),
        Some(end) => {
            let seconds = duration(at("end", end.span()), end.get_ref())?;
            if seconds < last {
                return Err(DomainError::invalid(
                    at("end", end.span()),
                    format!("comes before the last inject ({})", format_offset(last)),
                ));
            }
            seconds
        }
    };
    Ok(Script {
        name: file.name,
        description: file.description,
        seed: file.seed,
        start,
        world,
        from_live: file.from_live,
        pace,
        simulation,
        end_seconds,
        injects,
        expectations,
    })
}

fn simulation(field: &str, entry: SimulationEntry) -> DomainResult<SimulationSpec> {
    let optional = |key: &str, text: &Option<String>| {
        text.as_deref().map(|text| duration(format!("{field}.{key}"), text)).transpose()
    };
    let decline_rate = entry.decline_rate.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&decline_rate) {
        return Err(DomainError::invalid(format!("{field}.decline_rate"), "must be between 0 and 1"));
    }
    Ok(SimulationSpec {
        ack_after_seconds: optional("ack_after", &entry.ack_after)?.unwrap_or(0),
        ack_spread_seconds: optional("ack_spread", &entry.ack_spread)?.unwrap_or(0),
        decline_rate,
        auto_dispatch: entry.auto_dispatch.unwrap_or(false),
        divert: entry.divert.unwrap_or(false),
        on_scene_for_seconds: optional("on_scene_for", &entry.on_scene_for)?,
    })
}

fn inject(source: String, entry: InjectEntry) -> DomainResult<Inject> {
    let at_seconds = duration(format!("{source}.at"), &entry.at)?;
    let field = |key: &str| format!("{source}.{key}");
    let mut actions = Vec::new();
    if let Some(declare) = entry.declare_incident {
        actions.push(Action::Declare(Declaration {
            id: declare.id,
            title: declare.title,
            hazard: Some(fixture::hazard(&field("declare_incident.hazard"), &declare.hazard)?),
            position: Some(point(declare.position)),
            area: declare.area.into_iter().map(point).collect(),
            level: Some(level(field("declare_incident.level"), &declare.level)?),
            metrics: declare.metrics,
            plan_id: declare.plan,
        }));
    }
    if let Some(update) = entry.update_incident {
        let status = match update.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None => None,
            Some("ACTIVE") => Some(IncidentStatus::Active),
            Some("CONTAINED") => Some(IncidentStatus::Contained),
            Some(other) => {
                return Err(DomainError::invalid(
                    field("update_incident.status"),
                    format!("{other:?} is not ACTIVE or CONTAINED (close with close_incident)"),
                ));
            }
        };
        actions.push(Action::Update(IncidentUpdate {
            id: update.id,
            level: update.level.map(|text| level(field("update_incident.level"), &text)).transpose()?,
            metrics: update.metrics,
            status,
        }));
    }
    if let Some(close) = entry.close_incident {
        actions.push(Action::Close { id: close.id() });
    }
    if let Some(request) = entry.request_resources {
        actions.push(Action::Request {
            incident: request.incident,
            teams: request.teams.iter().map(TeamNeedEntry::to_need).collect(),
            supplies: request.supplies.iter().map(SupplyNeedEntry::to_need).collect(),
        });
    }
    if let Some(dispatch) = entry.dispatch {
        actions.push(Action::Dispatch { incident: dispatch.incident, divert: dispatch.divert });
    }
    if let Some(status) = entry.team_status {
        actions.push(Action::TeamStatus {
            status: team_status(field("team_status.status"), &status.status)?,
            team: status.team,
            position: status.position.map(point),
        });
    }
    if let Some(adjust) = entry.stock_adjust {
        actions.push(Action::StockAdjust {
            reason: ledger_reason(field("stock_adjust.reason"), &adjust.reason)?,
            depot: adjust.depot,
            item: adjust.item,
            delta: adjust.delta,
        });
    }
    if let Some(zone) = entry.impassable {
        actions.push(Action::Impassable(Zone {
            id: zone.id,
            polygon: zone.polygon.into_iter().map(point).collect(),
            note: zone.note,
            active: true,
        }));
    }
    if let Some(passable) = entry.passable {
        actions.push(Action::Passable { id: passable.id() });
    }
    if let Some(silent) = entry.team_silent {
        let team = match silent {
            TeamOrTable::Team(team) | TeamOrTable::Table(TeamRefEntry { team }) => team,
        };
        actions.push(Action::TeamSilent { team });
    }
    if let Some(assign) = entry.assign {
        let need = match (assign.need, assign.incident, assign.capability) {
            (Some(need), None, None) => NeedRef::Id(need),
            (None, Some(incident), Some(capability)) => NeedRef::Capability { incident, capability },
            _ => {
                return Err(DomainError::invalid(
                    field("assign"),
                    "names a need either by `need` or by `incident` and `capability`",
                ));
            }
        };
        let reason =
            if assign.reason.is_empty() { "assigned by the exercise script".to_owned() } else { assign.reason };
        actions.push(Action::Assign { need, team: assign.team, reason });
    }
    if let Some(update) = entry.update_assignment {
        let target = match (update.assignment, update.team) {
            (Some(id), None) => AssignmentRef::Id(id),
            (None, Some(team)) => AssignmentRef::Team(team),
            _ => {
                return Err(DomainError::invalid(
                    field("update_assignment"),
                    "names either an `assignment` or a `team`",
                ));
            }
        };
        actions.push(Action::UpdateAssignment {
            target,
            status: assignment_status(field("update_assignment.status"), &update.status)?,
        });
    }
    let action = match actions.len() {
        1 => actions.remove(0),
        0 => {
            return Err(DomainError::invalid(
                source,
                "needs one inject kind: declare_incident, update_incident, close_incident, request_resources, \
                 dispatch, team_status, stock_adjust, impassable, passable, team_silent, assign or update_assignment",
            ));
        }
        _ => return Err(DomainError::invalid(source, "has more than one inject kind; write one inject each")),
    };
    crate::domain::validate::text(&field("note"), &entry.note, false)?;
    crate::domain::validate::text(&field("objective"), &entry.objective, false)?;
    Ok(Inject { source, at_seconds, note: entry.note, objective: entry.objective, action })
}

fn expectation(source: String, entry: ExpectEntry) -> DomainResult<Expectation> {
    let field = |key: &str| format!("{source}.{key}");
    let level = entry.level.as_deref().map(|text| level(field("level"), text)).transpose()?;
    let mut checks = Vec::new();
    if let Some(within) = &entry.needs_filled_within {
        let seconds = duration(field("needs_filled_within"), within)?;
        checks.push(Check::FilledWithin { seconds, level, incident: entry.incident.clone() });
    }
    if let Some(within) = &entry.needs_reached_within {
        let seconds = duration(field("needs_reached_within"), within)?;
        checks.push(Check::ReachedWithin { seconds, level, incident: entry.incident.clone() });
    }
    let scoped = !checks.is_empty();
    if entry.no_reserve_override == Some(true) {
        checks.push(Check::NoReserveOverride);
    } else if entry.no_reserve_override == Some(false) {
        return Err(DomainError::invalid(field("no_reserve_override"), "only `true` is an expectation"));
    }
    if let Some(count) = entry.unmet_needs_at_most {
        checks.push(Check::UnmetAtMost(count));
    }
    if let Some(km) = entry.max_total_distance_km {
        if !km.is_finite() || km < 0.0 {
            return Err(DomainError::invalid(field("max_total_distance_km"), "must be a number of km, 0 or more"));
        }
        checks.push(Check::MaxTotalDistanceKm(km));
    }
    if let Some(assigned) = entry.team_assigned {
        checks.push(Check::TeamAssigned { team: assigned.team, incident: assigned.incident });
    }
    if let Some(not) = entry.team_not_assigned {
        checks.push(Check::TeamNotAssigned { team: not.team, incident: not.incident });
    }
    if !scoped && (level.is_some() || entry.incident.is_some()) {
        let key = if level.is_some() { "level" } else { "incident" };
        return Err(DomainError::invalid(field(key), "narrows only needs_filled_within and needs_reached_within"));
    }
    let check = match checks.len() {
        1 => checks.remove(0),
        0 => {
            return Err(DomainError::invalid(
                source,
                "needs one expectation kind: needs_filled_within, needs_reached_within, no_reserve_override, \
                 unmet_needs_at_most, max_total_distance_km, team_assigned or team_not_assigned",
            ));
        }
        _ => return Err(DomainError::invalid(source, "has more than one expectation kind; write one each")),
    };
    Ok(Expectation { source, description: entry.description, check })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_fixture(path: &str) -> Result<(String, String), String> {
        Err(format!("no fixture {path} in this test"))
    }

    const SCRIPT: &str = r#"
name = "Flood"
seed = 7
start = "2026-07-01T06:00:00Z"

[simulation]
ack_after = "00:02:00"
auto_dispatch = true

[[team]]
id = "WR-01"
name = "Water rescue squad 1"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 12
home = [28.21, 112.97]
speed_kmh = 50
insurance_expires = "2027-06-30T00:00:00Z"

[[inject]]
at = "+00:40:00"
update_incident = { id = "flood-1", level = "II" }

[[inject]]
at = "+00:00:00"
note = "STARTEX"
declare_incident = { id = "flood-1", hazard = "FLOOD", title = "Overtopping", position = [28.19, 112.96], level = "III" }

[[expect]]
description = "level II filled in 30 minutes"
needs_filled_within = "00:30:00"
level = "II"
"#;

    fn error(text: &str) -> String {
        parse("flood.toml", text, &no_fixture).err().map(|error| error.to_string()).unwrap_or_default()
    }

    #[test]
    fn parses_injects_in_time_order_with_their_sources() {
        let script = parse("flood.toml", SCRIPT, &no_fixture).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(script.injects.len(), 2);
        assert_eq!(script.injects[0].at_seconds, 0);
        assert_eq!(script.injects[0].note, "STARTEX");
        assert_eq!(script.injects[0].source, "flood.toml:23: inject[1]");
        assert_eq!(script.injects[1].at_seconds, 40 * 60);
        let simulation = script.simulation.clone().unwrap_or_default();
        assert_eq!(simulation.ack_after_seconds, 120);
        assert!(simulation.auto_dispatch);
        assert_eq!(script.end_seconds, 40 * 60 + DEFAULT_TAIL_SECONDS);
        assert_eq!(script.world[0].teams.len(), 1);
        assert!(matches!(
            script.expectations[0].check,
            Check::FilledWithin { seconds: 1800, level: Some(Level::II), .. }
        ));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let broken = SCRIPT.replace("note = \"STARTEX\"", "note = \"STARTEX\"\nwhen = 3");
        let message = error(&broken);
        assert!(message.starts_with("flood.toml:26"), "{message}");
        assert!(message.contains("when"), "{message}");
    }

    #[test]
    fn a_bad_time_names_the_inject_and_key() {
        let message = error(&SCRIPT.replace("+00:40:00", "forty minutes in"));
        assert!(message.starts_with("flood.toml:19: inject[0].at"), "{message}");
        let message = error(&SCRIPT.replace("level = \"II\" }", "level = \"V\" }"));
        assert!(message.starts_with("flood.toml:19: inject[0].update_incident.level"), "{message}");
        let message = error(&SCRIPT.replace("\"00:30:00\"", "\"half an hour\""));
        assert!(message.contains("expect[0].needs_filled_within"), "{message}");
    }

    #[test]
    fn an_inject_has_exactly_one_kind() {
        let both = SCRIPT.replace(
            "update_incident = { id = \"flood-1\", level = \"II\" }",
            "update_incident = { id = \"flood-1\", level = \"II\" }\nclose_incident = \"flood-1\"",
        );
        assert!(error(&both).contains("more than one inject kind"), "{}", error(&both));
        let none = SCRIPT.replace("update_incident = { id = \"flood-1\", level = \"II\" }", "");
        assert!(error(&none).contains("needs one inject kind"), "{}", error(&none));
    }

    #[test]
    fn durations_are_hours_minutes_seconds() {
        assert_eq!(parse_duration("+00:15:00"), Some(900));
        assert_eq!(parse_duration("26:30:05"), Some(26 * 3_600 + 30 * 60 + 5));
        assert_eq!(parse_duration("00:60:00"), None);
        assert_eq!(parse_duration("15:00"), None);
        assert_eq!(parse_duration("-00:01:00"), None);
        assert_eq!(format_offset(26 * 3_600 + 65), "+26:01:05");
    }
}
