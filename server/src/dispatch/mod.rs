//! The dispatcher: which available team and which depot's stock serve each
//! open need, and why. It serves more severe levels first and, within a
//! level, minimises total travel across every incident at once: teams as an
//! exact assignment problem (`assign`), each item's stock as an exact
//! min-cost flow (`flow`), both over lexicographic costs (`cost`). Level-I
//! needs may take stock below a depot's strategic minimum, but only for what
//! the stock above the minimums cannot cover, and that is flagged.
//!
//! A pure function of the state, the settings and the engine's clock: the
//! same inputs give the same plan, ties going to the lower team or depot id.
//! The engine records what it decides as events, so a replay of the log
//! reproduces every assignment without running the dispatcher again.

mod assign;
pub mod cost;
mod explain;
mod flow;
pub mod greedy;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::assignment::{AssignedResource, Assignment, AssignmentStatus};
use crate::domain::dispatching::{team_availability, team_fit, Planner, Unavailable};
pub use crate::domain::dispatching::{DispatchPlan, Proposal, Scope};
use crate::domain::event::Shortfall;
use crate::domain::incident::{Incident, IncidentStatus, Need};
use crate::domain::plan::NeedKey;
use crate::domain::team::Team;
use crate::domain::travel::{self, Leg, Settings, Site, Zones};
use crate::domain::{validate, DomainError, DomainResult, Level, State, Timestamp};
use cost::{Lex, SupplyCost};

/// An open need the dispatch considers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenNeed<'a> {
    pub need: &'a Need,
    pub incident: &'a Incident,
    pub missing: i64,
}

impl OpenNeed<'_> {
    pub fn level(&self) -> Level {
        self.incident.level
    }
}

/// The open needs in scope, most severe level first, then by incident and need.
pub(crate) fn open_needs<'a>(state: &'a State, scope: Option<&str>) -> DomainResult<Vec<OpenNeed<'a>>> {
    if let Some(id) = scope {
        validate::id("incident_id", id)?;
        let incident = state.incident(id)?;
        if incident.status == IncidentStatus::Closed {
            return Err(DomainError::precondition(format!("incident {id} is closed; there is nothing to dispatch")));
        }
    }
    let mut open: Vec<OpenNeed<'a>> = state
        .incidents
        .values()
        .filter(|incident| incident.status != IncidentStatus::Closed && scope.is_none_or(|id| incident.id == id))
        .flat_map(|incident| {
            state.needs_of(incident).filter(|need| need.missing() > 0).map(move |need| OpenNeed {
                need,
                incident,
                missing: need.missing(),
            })
        })
        .collect();
    open.sort_by(|left, right| {
        (left.level(), &left.incident.id, left.need.number).cmp(&(right.level(), &right.incident.id, right.need.number))
    });
    Ok(open)
}

/// The active assignment a team could be diverted from to serve a need at
/// `level` (`api.md`, "Operations"): made by the dispatcher, not yet on
/// scene, and serving a need at least two levels less severe.
fn diversion_source<'a>(state: &'a State, team: &Team, level: Level) -> Option<&'a Assignment> {
    let assignment = state.assignment(team.assignment_id.as_deref()?).ok()?;
    if assignment.by_hand
        || !matches!(
            assignment.status,
            AssignmentStatus::Dispatched | AssignmentStatus::Acknowledged | AssignmentStatus::EnRoute
        )
    {
        return None;
    }
    let job_level = state.incidents.get(&assignment.incident_id)?.level;
    (job_level.index() >= level.index() + 2).then_some(assignment)
}

/// Plans a dispatch for one incident or all, without changing anything.
pub fn plan<'a>(
    state: &State,
    scope: impl Into<Scope<'a>>,
    settings: &Settings,
    now: Timestamp,
) -> DomainResult<DispatchPlan> {
    let scope = scope.into();
    let open = open_needs(state, scope.incident_id)?;
    let zones = Zones::new(state.zones.values());
    let mut plan = DispatchPlan::default();
    plan_teams(state, &open, scope.divert, settings, &zones, now, &mut plan);
    plan_supplies(state, &open, settings, &zones, &mut plan);
    let order: BTreeMap<u64, usize> = open.iter().enumerate().map(|(index, open)| (open.need.number, index)).collect();
    plan.proposals.sort_by(|left, right| {
        let rank = |proposal: &Proposal| order.get(&proposal.need_number).copied().unwrap_or(usize::MAX);
        fn resource(proposal: &Proposal) -> &str {
            match &proposal.resource {
                AssignedResource::Team { team_id } => team_id,
                AssignedResource::Supply { depot_id, .. } => depot_id,
            }
        }
        (rank(left), resource(left)).cmp(&(rank(right), resource(right)))
    });
    plan.shortfalls.sort_by_key(|shortfall| order.get(&shortfall.need_number).copied().unwrap_or(usize::MAX));
    Ok(plan)
}

/// The dispatcher, as the engine hands it to the domain.
#[derive(Debug)]
pub struct Dispatcher;

/// The one dispatcher.
pub static DISPATCHER: Dispatcher = Dispatcher;

impl Planner for Dispatcher {
    fn plan(&self, state: &State, scope: Scope<'_>, settings: &Settings, now: Timestamp) -> DomainResult<DispatchPlan> {
        plan(state, scope, settings, now)
    }
}

/// The assignment problem of one round, owned: per need its candidate
/// edges (team index and travel in ms, in team order), and the rows (one
/// per team a need is missing, no more than it has candidates).
pub struct Round {
    columns: usize,
    edges: Candidates,
    /// Per need, the cost component its travel is counted in (its level's).
    component: Vec<usize>,
    row_need: Vec<usize>,
    unfilled: Vec<cost::TeamCost>,
}

impl Round {
    fn new(team_needs: &[&OpenNeed<'_>], missing: &[i64], edges: Candidates, columns: usize) -> Self {
        let component = team_needs.iter().map(|open| cost::team_travel_component(open.level())).collect();
        let mut row_need = Vec::new();
        for (need_index, wanted) in missing.iter().enumerate() {
            let rows = (*wanted).min(i64::try_from(edges[need_index].len()).unwrap_or(i64::MAX));
            for _ in 0..rows {
                row_need.push(need_index);
            }
        }
        let unfilled = row_need.iter().map(|need_index| cost::team_unfilled(team_needs[*need_index].level())).collect();
        Round { columns, edges, component, row_need, unfilled }
    }

    /// The exact assignment: per row, its column (team), if any.
    pub fn solve(&self) -> Vec<Option<usize>> {
        if self.row_need.is_empty() {
            return Vec::new();
        }
        let problem = assign::Problem {
            columns: self.columns,
            edges: self.row_need.iter().map(|need_index| self.edges[*need_index].as_slice()).collect(),
            component: self.row_need.iter().map(|need_index| self.component[*need_index]).collect(),
            unfilled: self.unfilled.clone(),
        };
        assign::solve(&problem)
    }

    /// Solves the round: (need index, team index) per team taken.
    fn taken(&self) -> Vec<(usize, usize)> {
        let solution = self.solve();
        solution
            .iter()
            .enumerate()
            .filter_map(|(row, column)| column.map(|column| (self.row_need[row], column)))
            .collect()
    }

    /// Rows and candidate edges (each need's edges count once per row).
    pub fn size(&self) -> (usize, usize) {
        (self.row_need.len(), self.row_need.iter().map(|need_index| self.edges[*need_index].len()).sum())
    }
}

/// The first round of a dispatch over every open need, exactly as `plan`
/// builds it: what the benchmark times the bare solver on, beside the whole
/// plan (candidates, legs, explanations, supplies). `None` when no team
/// need is open.
pub fn first_round(state: &State, settings: &Settings, now: Timestamp) -> Option<Round> {
    let open = open_needs(state, None).ok()?;
    let zones = Zones::new(state.zones.values());
    Some(TeamProblem::new(state, &open, settings, &zones, now)?.free_round())
}

/// The team side of a dispatch: every team and whether it is free, the
/// team needs in scope, and the travel times between them (each computed
/// once).
struct TeamProblem<'a, 'o> {
    state: &'a State,
    teams: Vec<&'a Team>,
    /// Per team, where it is and its speed, side by side: the travel times
    /// read nothing else of the team.
    team_sites: Vec<(Site, f64)>,
    availability: Vec<Result<(), Unavailable>>,
    needs: Vec<&'o OpenNeed<'a>>,
    /// Per need, its incident's index (incidents by first appearance).
    incident_of: Vec<usize>,
    /// Per incident, where it is.
    incident_sites: Vec<Site>,
    settings: &'o Settings,
    zones: &'o Zones,
    now: Timestamp,
}

/// A travel time not computed yet (real ones are never negative).
const UNKNOWN: i64 = -1;

/// Who the rounds so far have sent where: team index -> need index, and how
/// many teams each need got.
struct Served {
    by_team: BTreeMap<usize, usize>,
    filled: Vec<i64>,
}

impl Served {
    fn take(&mut self, need_index: usize, team_index: usize) {
        self.by_team.insert(team_index, need_index);
        self.filled[need_index] += 1;
    }
}

/// Per need, the teams that could serve it and their travel, in team order.
type Candidates = Vec<Vec<assign::Edge>>;

impl<'a, 'o> TeamProblem<'a, 'o> {
    /// `None` when no team need is in scope.
    fn new(
        state: &'a State,
        open: &'o [OpenNeed<'a>],
        settings: &'o Settings,
        zones: &'o Zones,
        now: Timestamp,
    ) -> Option<Self> {
        let needs: Vec<&OpenNeed<'_>> =
            open.iter().filter(|open| matches!(open.need.key, NeedKey::Team { .. })).collect();
        if needs.is_empty() {
            return None;
        }
        let teams: Vec<&Team> = state.teams.values().map(|team| &**team).collect();
        let team_sites = teams.iter().map(|team| (Site::new(team.position), team.profile.speed_kmh)).collect();
        let availability = teams.iter().map(|team| team_availability(team, zones, now)).collect();
        let mut incident_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut incident_sites = Vec::new();
        let incident_of = needs
            .iter()
            .map(|open| {
                *incident_index.entry(open.incident.id.as_str()).or_insert_with(|| {
                    incident_sites.push(Site::new(open.incident.position));
                    incident_sites.len() - 1
                })
            })
            .collect();
        Some(TeamProblem {
            state,
            teams,
            team_sites,
            availability,
            needs,
            incident_of,
            incident_sites,
            settings,
            zones,
            now,
        })
    }

    /// The leg from a team to a need's incident.
    fn leg(&self, need_index: usize, team_index: usize) -> Leg {
        let (site, speed_kmh) = &self.team_sites[team_index];
        let incident = &self.incident_sites[self.incident_of[need_index]];
        travel::site_leg(self.settings, self.zones, site, incident, *speed_kmh)
    }

    /// The free teams that qualify for each need (and did not decline it),
    /// with their travel in ms, each computed once per incident and team.
    fn free_candidates(&self) -> Candidates {
        // Free teams by capability, with their tier, in team order.
        let mut by_capability: BTreeMap<&str, Vec<(usize, u32)>> = BTreeMap::new();
        for (index, team) in self.teams.iter().enumerate() {
            if self.availability[index].is_ok() {
                for capability in &team.profile.capabilities {
                    by_capability.entry(capability.code.as_str()).or_default().push((index, capability.tier));
                }
            }
        }
        // The needs incident by incident, so that one row of travel times,
        // cleared after each incident, serves all of an incident's needs
        // and stays in cache.
        let mut by_incident: Vec<Vec<usize>> = vec![Vec::new(); self.incident_sites.len()];
        for (need_index, incident) in self.incident_of.iter().enumerate() {
            by_incident[*incident].push(need_index);
        }
        let mut row = vec![UNKNOWN; self.teams.len()];
        let mut touched = Vec::new();
        let mut candidates = vec![Vec::new(); self.needs.len()];
        for needs in &by_incident {
            for &need_index in needs {
                let open = self.needs[need_index];
                let NeedKey::Team { capability, min_tier } = &open.need.key else { continue };
                let holders = by_capability.get(capability.as_str()).map(Vec::as_slice).unwrap_or_default();
                let mut eligible = Vec::with_capacity(holders.len());
                for &(index, tier) in holders {
                    if tier <= *min_tier && !open.need.declined_by.contains(&self.teams[index].id) {
                        if row[index] == UNKNOWN {
                            row[index] = self.leg(need_index, index).millis();
                            touched.push(index);
                        }
                        eligible.push(assign::Edge { column: index, cost: row[index] });
                    }
                }
                candidates[need_index] = eligible;
            }
            for index in touched.drain(..) {
                row[index] = UNKNOWN;
            }
        }
        candidates
    }

    /// The first round: every need's missing teams over the free teams.
    fn free_round(&self) -> Round {
        let missing: Vec<i64> = self.needs.iter().map(|open| open.missing).collect();
        Round::new(&self.needs, &missing, self.free_candidates(), self.teams.len())
    }

    /// For each need still `missing` teams, the busy teams that may be
    /// diverted to it.
    fn divertible_candidates(&self, missing: &[i64]) -> Candidates {
        // Travel per (incident, team), computed once: the few busy teams
        // this round considers, so a map rather than rows.
        let mut known: BTreeMap<(usize, usize), i64> = BTreeMap::new();
        let mut candidates = Vec::with_capacity(self.needs.len());
        for need_index in 0..self.needs.len() {
            let open = self.needs[need_index];
            let NeedKey::Team { capability, min_tier } = &open.need.key else { continue };
            let mut eligible = Vec::new();
            if missing.get(need_index).is_some_and(|missing| *missing > 0) {
                for index in 0..self.teams.len() {
                    let team = self.teams[index];
                    if team.qualifies(capability, *min_tier)
                        && !open.need.declined_by.contains(&team.id)
                        && team_fit(team, self.zones, self.now).is_ok()
                        && diversion_source(self.state, team, open.level()).is_some()
                    {
                        let cost = *known
                            .entry((self.incident_of[need_index], index))
                            .or_insert_with(|| self.leg(need_index, index).millis());
                        eligible.push(assign::Edge { column: index, cost });
                    }
                }
            }
            candidates.push(eligible);
        }
        candidates
    }

    /// What is still missing per need after `served`, at levels I and II only
    /// (the levels a diversion may serve).
    fn missing_at_severe_levels(&self, served: &Served) -> Vec<i64> {
        self.needs
            .iter()
            .zip(&served.filled)
            .map(|(open, filled)| if open.level().index() <= 1 { open.missing - filled } else { 0 })
            .collect()
    }

    /// The shortfall of every need left short, with why.
    fn shortfalls(&self, served: &Served) -> Vec<Shortfall> {
        self.needs
            .iter()
            .enumerate()
            .filter(|(need_index, open)| open.missing > served.filled[*need_index])
            .map(|(need_index, open)| {
                let why =
                    explain::team_shortfall(&self.teams, &self.availability, &served.by_team, &self.needs, need_index);
                shortfall(open, open.missing - served.filled[need_index], why)
            })
            .collect()
    }
}

/// A shortfall of `missing` for `open`, with why.
fn shortfall(open: &OpenNeed<'_>, missing: i64, reason: String) -> Shortfall {
    Shortfall { need_number: open.need.number, incident_id: open.incident.id.clone(), missing, reason }
}

/// The team side: build the problem, solve it exactly over the free teams,
/// then (with `divert`) once more over divertible teams for what levels I
/// and II still miss, read the proposals, and explain what stays short.
fn plan_teams<'a>(
    state: &'a State,
    open: &[OpenNeed<'a>],
    divert: bool,
    settings: &Settings,
    zones: &Zones,
    now: Timestamp,
    plan: &mut DispatchPlan,
) {
    let Some(problem) = TeamProblem::new(state, open, settings, zones, now) else { return };
    let round = problem.free_round();
    let taken = round.taken();
    let mut served = Served { by_team: BTreeMap::new(), filled: vec![0; problem.needs.len()] };
    for (need_index, column) in &taken {
        served.take(*need_index, *column);
    }
    let leg = |need_index: usize, team_index: usize| problem.leg(need_index, team_index);
    let explainer = explain::TeamExplainer {
        teams: &problem.teams,
        needs: &problem.needs,
        candidates: &round.edges,
        served_by: &served.by_team,
        leg: &leg,
    };
    for (need_index, column) in &taken {
        let leg = problem.leg(*need_index, *column);
        let reason = explainer.reason(*need_index, *column, &leg);
        plan.proposals.push(team_proposal(
            problem.needs[*need_index],
            problem.teams[*column],
            &leg,
            reason,
            None,
            settings,
            now,
        ));
    }
    if divert {
        // Free teams first: only what they left open at levels I and II may
        // take a team from a job at least two levels less severe.
        let still_missing = problem.missing_at_severe_levels(&served);
        if still_missing.iter().any(|missing| *missing > 0) {
            let divertible = problem.divertible_candidates(&still_missing);
            let round = Round::new(&problem.needs, &still_missing, divertible, problem.teams.len());
            for (need_index, column) in round.taken() {
                let (open, team) = (problem.needs[need_index], problem.teams[column]);
                let Some(source) = diversion_source(state, team, open.level()) else { continue };
                served.take(need_index, column);
                let leg = problem.leg(need_index, column);
                let reason = explain::diversion_reason(state, team, open, source, &leg);
                plan.proposals.push(team_proposal(open, team, &leg, reason, Some(source.number), settings, now));
            }
        }
    }
    plan.shortfalls.extend(problem.shortfalls(&served));
}

/// A team proposal, its reason completed with the age of a stale position.
fn team_proposal(
    open: &OpenNeed<'_>,
    team: &Team,
    leg: &Leg,
    mut reason: String,
    diverted_from: Option<u64>,
    settings: &Settings,
    now: Timestamp,
) -> Proposal {
    if let Some(stale) = crate::domain::dispatching::stale_position(team, settings, now) {
        reason.push_str("; ");
        reason.push_str(&stale);
    }
    Proposal {
        need_number: open.need.number,
        incident_id: open.incident.id.clone(),
        resource: AssignedResource::Team { team_id: team.id.clone() },
        distance_km: leg.distance_km,
        eta_minutes: leg.minutes,
        reason,
        override_quantity: 0,
        priority: open.level(),
        diverted_from,
    }
}

/// One depot's stock of an item, as the supply problem sees it.
pub(crate) struct DepotStock<'a> {
    pub depot_id: &'a str,
    pub position: crate::domain::LatLng,
    /// Units that may be promised without breaking the floor.
    pub above_floor: i64,
    /// Units between the floor and zero: level I only.
    pub below_floor: i64,
    /// The strategic minimum.
    pub min_reserve: i64,
    /// The zone the depot is in, if any (then it is not used).
    pub zone: Option<String>,
}

/// Every depot holding `item_code`, by depot id.
pub(crate) fn depot_stock<'a>(state: &'a State, item_code: &str, zones: &Zones) -> Vec<DepotStock<'a>> {
    stock_by_item(state, &[item_code].into(), zones).remove(item_code).unwrap_or_default()
}

/// Per item among `items`, every depot holding it, by depot id: one pass
/// over the stock, however many items are asked for.
fn stock_by_item<'a>(
    state: &'a State,
    items: &BTreeSet<&str>,
    zones: &Zones,
) -> BTreeMap<&'a str, Vec<DepotStock<'a>>> {
    let mut by_item: BTreeMap<&'a str, Vec<DepotStock<'a>>> = BTreeMap::new();
    for ((depot_id, item_code), stock) in state.stock.iter() {
        if !items.contains(item_code.as_str()) {
            continue;
        }
        let Some(depot) = state.depots.get(depot_id) else { continue };
        by_item.entry(item_code.as_str()).or_default().push(DepotStock {
            depot_id: &depot.id,
            position: depot.position,
            above_floor: stock.above_floor(),
            below_floor: stock.available() - stock.above_floor(),
            min_reserve: stock.min_reserve,
            zone: zones.containing(depot.position).map(str::to_owned),
        });
    }
    by_item
}

fn plan_supplies(state: &State, open: &[OpenNeed<'_>], settings: &Settings, zones: &Zones, plan: &mut DispatchPlan) {
    let mut by_item: BTreeMap<&str, Vec<&OpenNeed<'_>>> = BTreeMap::new();
    for need in open {
        if let NeedKey::Supply { item_code } = &need.need.key {
            by_item.entry(item_code.as_str()).or_default().push(need);
        }
    }
    let mut stock = stock_by_item(state, &by_item.keys().copied().collect(), zones);
    for (item_code, needs) in by_item {
        if !state.items.contains_key(item_code) {
            for open in needs {
                plan.shortfalls.push(shortfall(
                    open,
                    open.missing,
                    format!("item {item_code} is not in the catalog yet"),
                ));
            }
            continue;
        }
        let all = stock.remove(item_code).unwrap_or_default();
        plan_item(item_code, &needs, &all, settings, zones, plan);
    }
}

/// One item's transport problem: source -> need (its missing units) ->
/// depot above or below its floor -> sink, with the legs and arc ids kept
/// to read the solution back.
struct SupplyNetwork {
    network: flow::Network<12>,
    /// Per need, per depot: the convoy's leg.
    legs: Vec<Vec<Leg>>,
    /// Per need: (depot, arc above the floor, arc below it).
    arcs: Vec<Vec<DepotArcs>>,
    order: Vec<usize>,
}

/// A need's arcs to one depot: (depot, arc above the floor, arc below it).
type DepotArcs = (usize, Option<usize>, Option<usize>);
/// Units each (need, depot) pair takes: (above the floor, below it).
type Taken = BTreeMap<(usize, usize), (i64, i64)>;

const SOURCE: usize = 0;
const SINK: usize = 1;

impl SupplyNetwork {
    /// Builds the network: every need may draw above the floors; level-I
    /// needs may also draw below them, at a cost that uses the floors only
    /// for what the stock above them cannot cover.
    fn build(needs: &[&OpenNeed<'_>], depots: &[&DepotStock<'_>], settings: &Settings, zones: &Zones) -> SupplyNetwork {
        let need_node = |index: usize| 2 + index;
        let above_node = |index: usize| 2 + needs.len() + index;
        let below_node = |index: usize| 2 + needs.len() + depots.len() + index;
        let mut network = flow::Network::<12>::new(2 + needs.len() + 2 * depots.len());
        let mut legs = Vec::with_capacity(needs.len());
        let mut arcs = Vec::with_capacity(needs.len());
        for (need_index, open) in needs.iter().enumerate() {
            let level = open.level();
            network.add_arc(SOURCE, need_node(need_index), open.missing, cost::supply_filled(level));
            let mut need_legs = Vec::with_capacity(depots.len());
            let mut need_arcs = Vec::with_capacity(depots.len());
            for (depot_index, depot) in depots.iter().enumerate() {
                let leg =
                    travel::leg(settings, zones, depot.position, open.incident.position, settings.convoy_speed_kmh);
                let travel_cost = cost::supply_travel(level, leg.seconds());
                let above = (depot.above_floor > 0).then(|| {
                    network.add_arc(need_node(need_index), above_node(depot_index), open.missing, travel_cost)
                });
                let below = (level == Level::I && depot.below_floor > 0).then(|| {
                    let per_unit: SupplyCost = travel_cost + cost::supply_override(level);
                    network.add_arc(need_node(need_index), below_node(depot_index), open.missing, per_unit)
                });
                need_legs.push(leg);
                need_arcs.push((depot_index, above, below));
            }
            legs.push(need_legs);
            arcs.push(need_arcs);
        }
        for (depot_index, depot) in depots.iter().enumerate() {
            if depot.above_floor > 0 {
                network.add_arc(above_node(depot_index), SINK, depot.above_floor, Lex::ZERO);
            }
            if depot.below_floor > 0 {
                network.add_arc(below_node(depot_index), SINK, depot.below_floor, Lex::ZERO);
            }
        }
        let order = (0..2 + needs.len() + 2 * depots.len()).filter(|node| *node != SINK).chain([SINK]).collect();
        SupplyNetwork { network, legs, arcs, order }
    }

    /// Solves it exactly; returns the units each (need, depot) pair takes,
    /// (above the floor, below it), in need then depot order.
    fn solve(mut self) -> (Taken, Vec<Vec<Leg>>) {
        self.network.solve(SOURCE, SINK, &self.order);
        let mut taken = BTreeMap::new();
        for (need_index, need_arcs) in self.arcs.iter().enumerate() {
            for (depot_index, above, below) in need_arcs {
                let above = above.map(|arc| self.network.flow(arc)).unwrap_or(0);
                let below = below.map(|arc| self.network.flow(arc)).unwrap_or(0);
                if above + below > 0 {
                    taken.insert((need_index, *depot_index), (above, below));
                }
            }
        }
        (taken, self.legs)
    }
}

/// One item: build its network, solve, read the proposals, explain what
/// stays short.
fn plan_item(
    item_code: &str,
    needs: &[&OpenNeed<'_>],
    all: &[DepotStock<'_>],
    settings: &Settings,
    zones: &Zones,
    plan: &mut DispatchPlan,
) {
    // Depots inside an impassable zone send nothing (the shortfall says so).
    let depots: Vec<&DepotStock<'_>> = all.iter().filter(|depot| depot.zone.is_none()).collect();
    let (taken, legs) = SupplyNetwork::build(needs, &depots, settings, zones).solve();
    let mut filled = vec![0i64; needs.len()];
    for ((need_index, depot_index), (above, below)) in &taken {
        let open = needs[*need_index];
        let depot = &depots[*depot_index];
        let leg = legs[*need_index][*depot_index];
        filled[*need_index] += above + below;
        plan.proposals.push(Proposal {
            need_number: open.need.number,
            incident_id: open.incident.id.clone(),
            resource: AssignedResource::Supply {
                depot_id: depot.depot_id.to_owned(),
                item_code: item_code.to_owned(),
                quantity: above + below,
            },
            distance_km: leg.distance_km,
            eta_minutes: leg.minutes,
            reason: explain::supply_reason(item_code, depot, &leg, *above, *below, &legs[*need_index], &depots),
            override_quantity: *below,
            priority: open.level(),
            diverted_from: None,
        });
    }
    for (need_index, open) in needs.iter().enumerate() {
        let missing = open.missing - filled[need_index];
        if missing > 0 {
            plan.shortfalls.push(shortfall(open, missing, explain::supply_shortfall(all, item_code, open.level())));
        }
    }
}
