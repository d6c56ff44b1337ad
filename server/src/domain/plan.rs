//! Contingency plans: what each response level of a hazard requires, and
//! which metrics raise the level. Plans are versioned; old versions stay
//! readable, and an incident keeps the version it activated.

use std::collections::{BTreeMap, BTreeSet};

use imbl::Vector;
use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::Event;
use super::limits::MAX_QUANTITY;
use super::state::State;
use super::types::{Hazard, Level, SupplyNeed, TeamNeed};
use super::validate;

/// Most teams one requirement may ask for.
pub const MAX_TEAM_COUNT: u32 = 10_000;

/// A task of a response level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// What to do.
    pub title: String,
    /// Who leads it.
    pub lead: String,
    /// Who supports.
    pub supporting: Vec<String>,
}

/// What one response level requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelRequirement {
    /// The level.
    pub level: Level,
    /// Teams needed.
    pub teams: Vec<TeamNeed>,
    /// Supplies needed.
    pub supplies: Vec<SupplyNeed>,
    /// Tasks.
    pub tasks: Vec<Task>,
}

/// A metric at or above `threshold` means at least `level`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Metric name (`customers_without_power`).
    pub metric: String,
    /// The threshold.
    pub threshold: f64,
    /// The level it means.
    pub level: Level,
}

/// A contingency plan, one version of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Client-chosen id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The hazard it is for.
    pub hazard: Hazard,
    /// Requirements by level.
    pub levels: Vec<LevelRequirement>,
    /// Metric triggers.
    pub triggers: Vec<Trigger>,
    /// 1, 2, ... per put.
    pub version: u32,
}

/// The key a plan-derived need is reconciled by: a team capability at a
/// minimum tier, or an item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NeedKey {
    /// Teams with this capability at this tier or better.
    Team {
        /// Capability code.
        capability: String,
        /// Minimum tier.
        min_tier: u32,
    },
    /// Units of this item.
    Supply {
        /// Item code.
        item_code: String,
    },
}

impl Plan {
    /// The requirement of `level`, if the plan defines it.
    pub fn requirement(&self, level: Level) -> Option<&LevelRequirement> {
        self.levels.iter().find(|requirement| requirement.level == level)
    }

    /// What `level` requires, key by key (empty when the plan does not define it).
    pub fn figures(&self, level: Level) -> BTreeMap<NeedKey, i64> {
        let mut figures = BTreeMap::new();
        if let Some(requirement) = self.requirement(level) {
            for team in &requirement.teams {
                let key = NeedKey::Team { capability: team.capability.clone(), min_tier: team.min_tier };
                figures.insert(key, i64::from(team.count));
            }
            for supply in &requirement.supplies {
                figures.insert(NeedKey::Supply { item_code: supply.item_code.clone() }, supply.quantity);
            }
        }
        figures
    }

    /// The most severe level the metrics trigger, with the trigger and the
    /// metric's value (ties: the first metric by name, then the lower threshold).
    pub fn triggered_level(&self, metrics: &BTreeMap<String, f64>) -> Option<(Level, &Trigger, f64)> {
        let mut best: Option<(Level, &Trigger, f64)> = None;
        let mut triggers: Vec<&Trigger> = self.triggers.iter().collect();
        triggers.sort_by(|left, right| left.metric.cmp(&right.metric).then(left.threshold.total_cmp(&right.threshold)));
        for trigger in triggers {
            let Some(&value) = metrics.get(&trigger.metric) else { continue };
            if value >= trigger.threshold && best.is_none_or(|(level, _, _)| trigger.level.is_more_severe_than(level)) {
                best = Some((trigger.level, trigger, value));
            }
        }
        best
    }

    /// Validates the plan as a whole; `field` prefixes field names. The
    /// version is the server's and is not checked.
    pub fn validate(&self, field: &str) -> DomainResult<()> {
        self.validate_keyed(field, PlanKeys::API)
    }

    /// [`Plan::validate`], naming the levels and triggers by `keys` (a
    /// fixture file says `level` and `trigger` where the API says `levels`
    /// and `triggers`).
    pub fn validate_keyed(&self, field: &str, keys: PlanKeys) -> DomainResult<()> {
        let field_levels = format!("{field}.{}", keys.levels);
        validate::id(&format!("{field}.id"), &self.id)?;
        validate::text(&format!("{field}.name"), &self.name, true)?;
        if self.levels.is_empty() {
            return Err(DomainError::invalid(field_levels, "must define at least one level"));
        }
        validate::repeated(&field_levels, &self.levels)?;
        let mut levels = BTreeSet::new();
        for (index, requirement) in self.levels.iter().enumerate() {
            let level_field = format!("{field_levels}[{index}]");
            if !levels.insert(requirement.level) {
                return Err(DomainError::invalid(
                    format!("{level_field}.level"),
                    format!("level {} is defined twice", requirement.level),
                ));
            }
            validate_requirement(&level_field, requirement)?;
        }
        validate_triggers(&format!("{field}.{}", keys.triggers), &self.triggers, &levels)
    }
}

/// How a plan's repeated parts are named where it came from.
#[derive(Clone, Copy, Debug)]
pub struct PlanKeys {
    /// The levels: `levels` in the API.
    pub levels: &'static str,
    /// The triggers: `triggers` in the API.
    pub triggers: &'static str,
}

impl PlanKeys {
    /// The API's names.
    pub const API: PlanKeys = PlanKeys { levels: "levels", triggers: "triggers" };
    /// A fixture file's keys (`[[plan.level]]`, `[[plan.trigger]]`).
    pub const FILE: PlanKeys = PlanKeys { levels: "level", triggers: "trigger" };
}

fn validate_requirement(field: &str, requirement: &LevelRequirement) -> DomainResult<()> {
    validate::repeated(&format!("{field}.teams"), &requirement.teams)?;
    validate::repeated(&format!("{field}.supplies"), &requirement.supplies)?;
    validate::repeated(&format!("{field}.tasks"), &requirement.tasks)?;
    let mut team_keys = BTreeSet::new();
    for (index, team) in requirement.teams.iter().enumerate() {
        validate_team_need(&format!("{field}.teams[{index}]"), team)?;
        if !team_keys.insert((team.capability.as_str(), team.min_tier)) {
            return Err(DomainError::invalid(
                format!("{field}.teams[{index}]"),
                format!("{} at min_tier {} is listed twice in this level", team.capability, team.min_tier),
            ));
        }
    }
    let mut items = BTreeSet::new();
    for (index, supply) in requirement.supplies.iter().enumerate() {
        validate_supply_need(&format!("{field}.supplies[{index}]"), supply)?;
        if !items.insert(supply.item_code.as_str()) {
            return Err(DomainError::invalid(
                format!("{field}.supplies[{index}].item_code"),
                format!("{} is listed twice in this level", supply.item_code),
            ));
        }
    }
    for (index, task) in requirement.tasks.iter().enumerate() {
        let task_field = format!("{field}.tasks[{index}]");
        validate::text(&format!("{task_field}.title"), &task.title, true)?;
        validate::text(&format!("{task_field}.lead"), &task.lead, false)?;
        validate::repeated(&format!("{task_field}.supporting"), &task.supporting)?;
        for (support_index, supporting) in task.supporting.iter().enumerate() {
            validate::text(&format!("{task_field}.supporting[{support_index}]"), supporting, true)?;
        }
    }
    Ok(())
}

/// Validates a team need (plans and hand requests).
pub fn validate_team_need(field: &str, team: &TeamNeed) -> DomainResult<()> {
    validate::code(&format!("{field}.capability"), &team.capability)?;
    validate::tier(&format!("{field}.min_tier"), team.min_tier)?;
    if team.count == 0 || team.count > MAX_TEAM_COUNT {
        return Err(DomainError::invalid(format!("{field}.count"), format!("must be between 1 and {MAX_TEAM_COUNT}")));
    }
    Ok(())
}

/// Validates a supply need (plans and hand requests).
pub fn validate_supply_need(field: &str, supply: &SupplyNeed) -> DomainResult<()> {
    validate::code(&format!("{field}.item_code"), &supply.item_code)?;
    validate::positive_quantity(&format!("{field}.quantity"), supply.quantity)
}

fn validate_triggers(field: &str, triggers: &[Trigger], levels: &BTreeSet<Level>) -> DomainResult<()> {
    validate::repeated(field, triggers)?;
    let mut by_metric: BTreeMap<&str, Vec<(usize, &Trigger)>> = BTreeMap::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let trigger_field = format!("{field}[{index}]");
        validate::code(&format!("{trigger_field}.metric"), &trigger.metric)?;
        if !trigger.threshold.is_finite() {
            return Err(DomainError::invalid(format!("{trigger_field}.threshold"), "must be a finite number"));
        }
        if !levels.contains(&trigger.level) {
            return Err(DomainError::invalid(
                format!("{trigger_field}.level"),
                format!("the plan defines no level {}", trigger.level),
            ));
        }
        by_metric.entry(&trigger.metric).or_default().push((index, trigger));
    }
    for (metric, mut entries) in by_metric {
        entries.sort_by(|left, right| left.1.threshold.total_cmp(&right.1.threshold));
        for pair in entries.windows(2) {
            let ((_, lower), (index, higher)) = (pair[0], pair[1]);
            if lower.threshold == higher.threshold {
                return Err(DomainError::invalid(
                    format!("{field}[{index}].threshold"),
                    format!("{metric} >= {} is listed twice", higher.threshold),
                ));
            }
            if lower.level.is_more_severe_than(higher.level) {
                return Err(DomainError::invalid(
                    format!("{field}[{index}].level"),
                    format!(
                        "{metric} >= {} maps to level {} but the lower threshold {} maps to the more severe level {}",
                        higher.threshold, higher.level, lower.threshold, lower.level
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every version of one plan, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanHistory {
    /// Versions 1, 2, ...
    #[serde(deserialize_with = "super::cautious::vector")]
    pub versions: Vector<Plan>,
}

impl PlanHistory {
    /// The latest version.
    pub fn latest(&self) -> Option<&Plan> {
        self.versions.last()
    }

    /// One version, 1-based.
    pub fn version(&self, version: u32) -> Option<&Plan> {
        let index = usize::try_from(version).ok()?.checked_sub(1)?;
        self.versions.get(index)
    }
}

impl State {
    /// A plan's latest version (`version == 0`) or a given one, or `NotFound`.
    pub fn plan(&self, id: &str, version: u32) -> DomainResult<&Plan> {
        let history = self.plans.get(id).ok_or_else(|| DomainError::not_found("plan", id))?;
        let plan = if version == 0 { history.latest() } else { history.version(version) };
        plan.ok_or_else(|| DomainError::not_found("plan", format!("{id} version {version}")))
    }
}

/// Stores a new version of a plan.
pub(super) fn put(state: &State, plan: &Plan) -> DomainResult<Vec<Event>> {
    plan.validate("plan")?;
    Ok(vec![Event::PlanPut { plan: next_version(state, plan) }])
}

/// The plan as its next version.
pub(super) fn next_version(state: &State, plan: &Plan) -> Plan {
    let latest = state.plans.get(&plan.id).map(|history| history.versions.len()).unwrap_or(0);
    Plan { version: u32::try_from(latest + 1).unwrap_or(u32::MAX), ..plan.clone() }
}

/// True when `plan` says what `existing` says (versions aside).
pub fn same_content(plan: &Plan, existing: &Plan) -> bool {
    Plan { version: existing.version, ..plan.clone() } == *existing
}

/// Limits on one need's amount (team count or units).
pub fn max_amount(key: &NeedKey) -> i64 {
    match key {
        NeedKey::Team { .. } => i64::from(MAX_TEAM_COUNT),
        NeedKey::Supply { .. } => MAX_QUANTITY,
    }
}
