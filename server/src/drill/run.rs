//! Running a drill: a fresh engine of its own over an in-memory store, with
//! a manual clock that jumps from one due time to the next. Due times are
//! the script's injects and the engine's own timers (acknowledgement
//! timeouts and the simulated teams of `[simulation]`), so the run goes as
//! fast as the machine allows, or at `pace`, and its log is the same either
//! way. Nothing live is read except, with `from_live`, a copy of the live
//! world taken once at the start; nothing live is ever written.

use std::sync::Arc;

use thiserror::Error;

use super::script::{Action, AssignmentRef, Inject, NeedRef, Script};
use crate::domain::command::HandResource;
use crate::domain::import::{Fixture, Sourced, StockSetting, TeamSetting};
use crate::domain::plan::NeedKey;
use crate::domain::timer::{self, Simulation, TimerSettings};
use crate::domain::{Command, DomainError, LogRecord, State, Timestamp};
use crate::engine::{Engine, EngineConfig, EngineError, EngineHandle, ManualClock};
use crate::store::{self, MemoryStore, Store};

/// Who the injects are recorded as.
pub const DRILL_ACTOR: &str = "drill";
/// Most timer groups the run settles at one instant before it calls the
/// simulation stuck (a bound, so a broken timer cannot spin forever).
const MAX_SETTLES_AT_ONE_TIME: usize = 10_000;
/// The longest real sleep between two virtual instants when paced.
const MAX_PACE_SLEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a drill could not run.
#[derive(Debug, Error)]
pub enum DrillError {
    /// The script (or its world) is broken: nothing ran.
    #[error("{0}")]
    Script(DomainError),
    /// The drill's engine failed (a bug, or out of memory).
    #[error("the drill's engine failed: {0}")]
    Engine(String),
}

impl From<EngineError> for DrillError {
    fn from(error: EngineError) -> Self {
        DrillError::Engine(error.to_string())
    }
}

/// How a run is asked for.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the script's seed (0 or `None`: the script's).
    pub seed: Option<u64>,
    /// Overrides the script's pace.
    pub pace: Option<f64>,
    /// The live world for `from_live` scripts: a copy taken once
    /// ([`live_world`]); the live engine itself is never touched.
    pub live_world: Option<Fixture>,
    /// Travel and timeout settings (the server's `[dispatch]`).
    pub dispatch: crate::domain::travel::Settings,
}

/// One line of the timeline: an inject and what came of it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InjectOutcome {
    /// Seconds after the start.
    pub at_seconds: i64,
    /// `file:line: inject[index]`.
    pub source: String,
    /// The inject's note.
    pub note: String,
    /// The inject's objective.
    pub objective: String,
    /// What it asked, in words.
    pub action: String,
    /// `None`: applied; otherwise why it failed (the run went on).
    pub error: Option<String>,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Run {
    /// The seed used.
    pub seed: u64,
    /// The virtual start.
    pub start: Timestamp,
    /// Where the clock stopped.
    pub end: Timestamp,
    /// The run's whole log.
    pub records: Vec<LogRecord>,
    /// The final state.
    pub state: State,
    /// Every inject and its outcome.
    pub injects: Vec<InjectOutcome>,
}

/// How far a run has come (for progress bars).
#[derive(Clone, Debug)]
pub struct Progress {
    /// The virtual clock.
    pub time: Timestamp,
    /// Injects done.
    pub injects_done: usize,
    /// Injects in the script.
    pub injects_total: usize,
    /// The last inject, in words.
    pub message: String,
}

/// The simulated teams `[simulation]` and the seed describe (none without it).
pub fn simulation_of(script: &Script, seed: u64, dispatch: &crate::domain::travel::Settings) -> Option<Simulation> {
    let spec = script.simulation.as_ref()?;
    Some(Simulation {
        seed,
        ack_after_seconds: spec.ack_after_seconds,
        ack_spread_seconds: spec.ack_spread_seconds,
        decline_rate: spec.decline_rate,
        on_scene_for_seconds: spec.on_scene_for_seconds,
        silent_teams: Default::default(),
        travel: *dispatch,
    })
}

/// The world of a `from_live` script: the live roster, catalog, depots,
/// stock (as counted now) and the latest version of each plan.
pub fn live_world(live: &State) -> Fixture {
    let mut fixture = Fixture::default();
    let source = |kind: &str, id: &str| format!("live: {kind} {id}");
    for item in live.items.values() {
        fixture.items.push(Sourced { source: source("item", &item.code), value: item.clone() });
    }
    for depot in live.depots.values() {
        fixture.depots.push(Sourced { source: source("depot", &depot.id), value: depot.clone() });
    }
    for ((depot_id, item_code), stock) in &live.stock {
        let value = StockSetting {
            depot_id: depot_id.clone(),
            item_code: item_code.clone(),
            on_hand: stock.on_hand,
            min_reserve: stock.min_reserve,
        };
        fixture.stock.push(Sourced { source: source("stock", &format!("{depot_id}/{item_code}")), value });
    }
    for team in live.teams.values() {
        let value = TeamSetting { id: team.id.clone(), profile: team.profile.clone() };
        fixture.teams.push(Sourced { source: source("team", &team.id), value });
    }
    for history in live.plans.values() {
        if let Some(plan) = history.latest() {
            fixture.plans.push(Sourced { source: source("plan", &plan.id), value: plan.clone() });
        }
    }
    fixture
}

/// The drill: its own engine, clock and settings, and the driver's mirror
/// of the simulation (changed only in queue order with the engine's).
struct Driver {
    engine: Engine,
    handle: EngineHandle,
    store: Arc<MemoryStore>,
    clock: ManualClock,
    timers: TimerSettings,
    pace: f64,
}

impl Driver {
    fn now(&self) -> Timestamp {
        crate::engine::Clock::now(&self.clock)
    }

    /// Until no timer is due by the clock.
    async fn settle(&self) -> Result<(), DrillError> {
        for _ in 0..MAX_SETTLES_AT_ONE_TIME {
            self.handle.settle().await?;
            let now = self.now();
            if timer::next(&self.handle.snapshot(), &self.timers).is_none_or(|next| next.due > now) {
                return Ok(());
            }
        }
        Err(DrillError::Engine(format!("timers still due at {} after {MAX_SETTLES_AT_ONE_TIME} rounds", self.now())))
    }

    async fn move_clock(&self, to: Timestamp) {
        let from = self.now();
        if to <= from {
            return;
        }
        if self.pace > 0.0 {
            // Clamped before it becomes a Duration: a tiny pace makes it huge.
            let real = ((to.0 - from.0) as f64 / 1e9 / self.pace).clamp(0.0, MAX_PACE_SLEEP.as_secs_f64());
            tokio::time::sleep(std::time::Duration::from_secs_f64(real)).await;
        }
        self.clock.set(to);
    }

    /// Moves the clock to `target`, stopping at every timer deadline before
    /// it so each fires at its own time.
    async fn advance_to(&self, target: Timestamp) -> Result<(), DrillError> {
        self.settle().await?;
        loop {
            let next = timer::next(&self.handle.snapshot(), &self.timers);
            match next {
                Some(next) if next.due <= target => {
                    self.move_clock(next.due).await;
                    self.settle().await?;
                }
                _ => break,
            }
        }
        self.move_clock(target).await;
        self.settle().await
    }

    async fn submit(&self, command: Command) -> Result<(), String> {
        match self.handle.submit(command, DRILL_ACTOR, None).await {
            Ok(_) => Ok(()),
            Err(EngineError::Domain(error)) => Err(error.to_string()),
            Err(other) => Err(other.to_string()),
        }
    }
}

/// Runs `script`. A broken script (or world) is `DrillError::Script` and
/// nothing runs; an inject that fails is recorded and the run goes on.
pub async fn run(
    script: &Script,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Run, DrillError> {
    let seed = options.seed.filter(|seed| *seed != 0).unwrap_or(script.seed);
    let simulation = simulation_of(script, seed, &options.dispatch);
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(script.start);
    // No snapshots: a drill's engine lives for one run, in memory, and is never restarted.
    let config = EngineConfig {
        dispatch: options.dispatch,
        simulation: simulation.clone(),
        snapshot_every: 0,
        ..EngineConfig::default()
    };
    let shared: Arc<dyn Store> = store.clone();
    let engine = Engine::start(shared, Arc::new(clock.clone()), config)
        .map_err(|error| DrillError::Engine(error.to_string()))?;
    let handle = engine.handle();
    let timers = TimerSettings { ack_timeout_seconds: options.dispatch.ack_timeout_seconds, simulation };
    let mut driver = Driver { engine, handle, store, clock, timers, pace: options.pace.unwrap_or(script.pace) };
    let outcome = drive(&mut driver, script, options, progress).await;
    let Driver { engine, store, clock, .. } = driver;
    engine.shutdown().await;
    let injects = outcome?;
    let records = read_all(store.as_ref())?;
    let state =
        crate::engine::replay(store.as_ref(), u64::MAX, None).map_err(|error| DrillError::Engine(error.to_string()))?;
    Ok(Run { seed, start: script.start, end: crate::engine::Clock::now(&clock), records, state, injects })
}

fn read_all(store: &dyn Store) -> Result<Vec<LogRecord>, DrillError> {
    let mut records = Vec::new();
    store::for_each_record(store, 1, |record| {
        records.push(record);
        true
    })
    .map_err(|error| DrillError::Engine(error.to_string()))?;
    Ok(records)
}

async fn drive(
    driver: &mut Driver,
    script: &Script,
    options: &RunOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<InjectOutcome>, DrillError> {
    let mut world = Vec::new();
    if script.from_live {
        let live = options.live_world.clone().ok_or_else(|| {
            DrillError::Script(DomainError::invalid(
                "from_live",
                "this run has no live world to copy (run it through a server: muster drill run)",
            ))
        })?;
        world.push(live);
    }
    world.extend(script.world.iter().cloned());
    for fixture in world.into_iter().filter(|fixture| fixture.entries() > 0) {
        driver.handle.submit(Command::Import { fixture }, DRILL_ACTOR, None).await.map_err(|error| match error {
            EngineError::Domain(error) => DrillError::Script(error),
            other => DrillError::Engine(other.to_string()),
        })?;
    }
    check_references(script, &driver.handle.snapshot()).map_err(DrillError::Script)?;
    let mut outcomes = Vec::with_capacity(script.injects.len());
    for (index, inject) in script.injects.iter().enumerate() {
        driver.advance_to(script.start.plus_seconds(inject.at_seconds)).await?;
        let (action, result) = apply(driver, inject).await?;
        let auto = script.simulation.as_ref().filter(|spec| spec.auto_dispatch);
        if let Some(spec) = auto.filter(|_| !matches!(inject.action, Action::Dispatch { .. })) {
            // Nothing to dispatch is not an error; a refusal is only logged.
            if let Err(error) = driver.submit(Command::Dispatch { incident_id: None, divert: spec.divert }).await {
                tracing::debug!(%error, "auto-dispatch after an inject was refused");
            }
        }
        outcomes.push(InjectOutcome {
            at_seconds: inject.at_seconds,
            source: inject.source.clone(),
            note: inject.note.clone(),
            objective: inject.objective.clone(),
            action,
            error: result.err(),
        });
        progress(Progress {
            time: driver.now(),
            injects_done: index + 1,
            injects_total: script.injects.len(),
            message: outcomes.last().map(|outcome| outcome.action.clone()).unwrap_or_default(),
        });
    }
    driver.advance_to(script.start.plus_seconds(script.end_seconds)).await?;
    Ok(outcomes)
}

/// Carries out one inject; returns it in words and whether it applied.
async fn apply(driver: &mut Driver, inject: &Inject) -> Result<(String, Result<(), String>), DrillError> {
    let state = driver.handle.snapshot();
    let (words, command) = match &inject.action {
        Action::TeamSilent { team } => {
            let words = format!("team {team}'s app falls silent: it will not acknowledge");
            let Some(simulation) = driver.timers.simulation.as_mut() else {
                return Ok((words, Err("the script has no [simulation]: no team acknowledges by itself".to_owned())));
            };
            simulation.silent_teams.insert(team.clone());
            driver.handle.simulate(driver.timers.simulation.clone()).await?;
            return Ok((words, Ok(())));
        }
        action => describe(action, &state),
    };
    let result = match command {
        Ok(command) => driver.submit(command).await,
        Err(error) => Err(error),
    };
    Ok((words, result))
}

/// An inject in words, and the command it becomes against `state`.
fn describe(action: &Action, state: &State) -> (String, Result<Command, String>) {
    match action {
        Action::Declare(declaration) => (
            format!(
                "declare incident {} at level {}{}",
                declaration.id,
                declaration.level.map(|level| level.to_string()).unwrap_or_default(),
                declaration.plan_id.as_deref().map(|plan| format!(" with plan {plan}")).unwrap_or_default()
            ),
            Ok(Command::DeclareIncident { declaration: declaration.clone() }),
        ),
        Action::Update(update) => {
            let mut parts = Vec::new();
            if let Some(level) = update.level {
                parts.push(format!("level {level}"));
            }
            for (name, value) in &update.metrics {
                parts.push(format!("{name} = {value}"));
            }
            if let Some(status) = update.status {
                parts.push(status.as_str().to_owned());
            }
            (
                format!("update incident {}: {}", update.id, parts.join(", ")),
                Ok(Command::UpdateIncident { update: update.clone() }),
            )
        }
        Action::Close { id } => (format!("close incident {id}"), Ok(Command::CloseIncident { id: id.clone() })),
        Action::Request { incident, teams, supplies } => (
            format!("request {} team need(s) and {} supply need(s) for {incident}", teams.len(), supplies.len()),
            Ok(Command::RequestResources {
                incident_id: incident.clone(),
                teams: teams.clone(),
                supplies: supplies.clone(),
            }),
        ),
        Action::Dispatch { incident, divert } => (
            format!(
                "dispatch {}{}",
                incident.as_deref().map(|id| format!("incident {id}")).unwrap_or_else(|| "every open need".to_owned()),
                if *divert { ", diverting if needed" } else { "" }
            ),
            Ok(Command::Dispatch { incident_id: incident.clone(), divert: *divert }),
        ),
        Action::TeamStatus { team, status, position } => (
            format!("team {team} reports {}", status.as_str()),
            Ok(Command::ReportStatus { team_id: team.clone(), status: Some(*status), position: *position }),
        ),
        Action::StockAdjust { depot, item, delta, reason } => (
            format!("{delta:+} {item} at {depot} ({})", reason.as_str()),
            Ok(Command::AdjustStock {
                depot_id: depot.clone(),
                item_code: item.clone(),
                delta: *delta,
                reason: Some(*reason),
                note: "drill inject".to_owned(),
            }),
        ),
        Action::Impassable(zone) => {
            (format!("zone {} becomes impassable", zone.id), Ok(Command::SetZone { zone: zone.clone() }))
        }
        Action::Passable { id } => (format!("zone {id} is passable again"), Ok(Command::ClearZone { id: id.clone() })),
        Action::TeamSilent { team } => {
            (format!("team {team}'s app falls silent"), Err("handled by the driver".to_owned()))
        }
        Action::Assign { need, team, reason } => {
            let resolved = match need {
                NeedRef::Id(id) => Ok(id.clone()),
                NeedRef::Capability { incident, capability } => state
                    .incidents
                    .get(incident)
                    .and_then(|found| {
                        state.needs_of(found).find(|open| {
                            open.missing() > 0
                                && matches!(&open.key, NeedKey::Team { capability: code, .. } if code == capability)
                        })
                    })
                    .map(|open| open.id())
                    .ok_or_else(|| format!("incident {incident} has no open {capability} need")),
            };
            let words = format!("assign team {team} by hand: {reason}");
            (
                words,
                resolved.map(|need_id| Command::AssignResource {
                    need_id,
                    resource: HandResource::Team { team_id: team.clone() },
                    reason: reason.clone(),
                }),
            )
        }
        Action::UpdateAssignment { target, status } => {
            let resolved = match target {
                AssignmentRef::Id(id) => Ok(id.clone()),
                AssignmentRef::Team(team) => state
                    .teams
                    .get(team)
                    .and_then(|found| found.assignment_id.clone())
                    .ok_or_else(|| format!("team {team} holds no active assignment")),
            };
            let who = match target {
                AssignmentRef::Id(id) => format!("assignment {id}"),
                AssignmentRef::Team(team) => format!("team {team}'s assignment"),
            };
            (
                format!("{who} goes {}", status.as_str()),
                resolved.map(|assignment_id| Command::UpdateAssignment {
                    assignment_id,
                    status: *status,
                    returned_quantity: 0,
                    note: "drill inject".to_owned(),
                }),
            )
        }
    }
}

/// Refuses a script whose injects or expectations name teams, depots,
/// items, plans, zones or incidents that neither its world nor an earlier
/// inject provides: nothing runs then.
pub fn check_references(script: &Script, world: &State) -> Result<(), DomainError> {
    let mut incidents: std::collections::BTreeSet<String> = Default::default();
    let mut zones: std::collections::BTreeSet<String> = world.zones.keys().cloned().collect();
    let team = |source: &str, key: &str, id: &str| {
        if world.teams.contains_key(id) {
            Ok(())
        } else {
            Err(DomainError::invalid(format!("{source}.{key}"), format!("team {id:?} is not in the drill's world")))
        }
    };
    for inject in &script.injects {
        let source = inject.source.as_str();
        let incident = |incidents: &std::collections::BTreeSet<String>, key: &str, id: &str| {
            if incidents.contains(id) {
                Ok(())
            } else {
                Err(DomainError::invalid(
                    format!("{source}.{key}"),
                    format!("incident {id:?} is not declared by an earlier inject"),
                ))
            }
        };
        match &inject.action {
            Action::Declare(declaration) => {
                if let Some(plan) = &declaration.plan_id {
                    if !world.plans.contains_key(plan) {
                        return Err(DomainError::invalid(
                            format!("{source}.declare_incident.plan"),
                            format!("plan {plan:?} is not in the drill's world"),
                        ));
                    }
                }
                if declaration.id.is_empty() {
                    return Err(DomainError::invalid(
                        format!("{source}.declare_incident.id"),
                        "a drill names its incidents",
                    ));
                }
                incidents.insert(declaration.id.clone());
            }
            Action::Update(update) => incident(&incidents, "update_incident.id", &update.id)?,
            Action::Close { id } => incident(&incidents, "close_incident", id)?,
            Action::Request { incident: id, .. } => incident(&incidents, "request_resources.incident", id)?,
            Action::Dispatch { incident: Some(id), .. } => incident(&incidents, "dispatch.incident", id)?,
            Action::Dispatch { incident: None, .. } => {}
            Action::TeamStatus { team: id, .. } => team(source, "team_status.team", id)?,
            Action::StockAdjust { depot, item, .. } => {
                if !world.depots.contains_key(depot) {
                    return Err(DomainError::invalid(
                        format!("{source}.stock_adjust.depot"),
                        format!("depot {depot:?} is not in the drill's world"),
                    ));
                }
                if !world.items.contains_key(item) {
                    return Err(DomainError::invalid(
                        format!("{source}.stock_adjust.item"),
                        format!("item {item:?} is not in the drill's world"),
                    ));
                }
            }
            Action::Impassable(zone) => {
                zones.insert(zone.id.clone());
            }
            Action::Passable { id } => {
                if !zones.contains(id) {
                    return Err(DomainError::invalid(
                        format!("{source}.passable"),
                        format!("zone {id:?} is not set by an earlier inject"),
                    ));
                }
            }
            Action::TeamSilent { team: id } => team(source, "team_silent", id)?,
            Action::Assign { need, team: id, .. } => {
                team(source, "assign.team", id)?;
                if let NeedRef::Capability { incident: id, .. } = need {
                    incident(&incidents, "assign.incident", id)?;
                }
            }
            Action::UpdateAssignment { target: AssignmentRef::Team(id), .. } => {
                team(source, "update_assignment.team", id)?
            }
            Action::UpdateAssignment { .. } => {}
        }
    }
    for expectation in &script.expectations {
        use super::script::Check;
        let source = expectation.source.as_str();
        let (team_id, incident_id) = match &expectation.check {
            Check::TeamAssigned { team, incident } => (Some(team), Some(incident)),
            Check::TeamNotAssigned { team, incident } => (Some(team), incident.as_ref()),
            Check::FilledWithin { incident, .. } | Check::ReachedWithin { incident, .. } => (None, incident.as_ref()),
            _ => (None, None),
        };
        if let Some(id) = team_id {
            team(source, "team", id)?;
        }
        if let Some(id) = incident_id {
            if !incidents.contains(id) {
                return Err(DomainError::invalid(
                    format!("{source}.incident"),
                    format!("incident {id:?} is never declared"),
                ));
            }
        }
    }
    Ok(())
}
