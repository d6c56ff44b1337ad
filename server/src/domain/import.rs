//! Imports: a whole fixture (items, depots, stock, teams) brought into the
//! state as one command, so a bad file changes nothing and a second import
//! of the same file changes nothing either.
//!
//! Each entry is brought to what the file says: a missing record is
//! created, a different one is replaced, stock is counted to the file's
//! `on_hand` (a `COUNTED` ledger entry for the difference) and its floor set.
//! Every entry carries its `source` (file, line and key), which prefixes
//! every field an error names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::{Event, LogRecord};
use super::limits::MAX_QUANTITY;
use super::plan::{next_version, same_content, Plan};
use super::reserve::{check_on_hand, Depot, Item, LedgerReason};
use super::state::State;
use super::team::{Team, TeamProfile, TeamStatus};
use super::validate;

/// A value and where it came from (`city.toml:12: team[3]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sourced<T> {
    /// File, line and key, used as the prefix of field names in errors.
    pub source: String,
    /// The value.
    pub value: T,
}

/// A stock row of a fixture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockSetting {
    /// The depot.
    pub depot_id: String,
    /// The item.
    pub item_code: String,
    /// Units on hand, as counted.
    pub on_hand: i64,
    /// The strategic floor.
    pub min_reserve: i64,
}

/// A team of a fixture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamSetting {
    /// The team id.
    pub id: String,
    /// Its roster data.
    pub profile: TeamProfile,
}

/// Everything a fixture file holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fixture {
    /// `[[item]]`.
    pub items: Vec<Sourced<Item>>,
    /// `[[depot]]`.
    pub depots: Vec<Sourced<Depot>>,
    /// `[[stock]]`.
    pub stock: Vec<Sourced<StockSetting>>,
    /// `[[team]]`.
    pub teams: Vec<Sourced<TeamSetting>>,
    /// `[[plan]]`.
    pub plans: Vec<Sourced<Plan>>,
}

impl Fixture {
    /// How many entries the fixture holds.
    pub fn entries(&self) -> usize {
        self.items.len() + self.depots.len() + self.stock.len() + self.teams.len() + self.plans.len()
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Records created, as `kind id` (`team WR-01`).
    pub created: Vec<String>,
    /// Records changed, as `kind id`.
    pub changed: Vec<String>,
    /// Entries that already matched.
    pub unchanged: u64,
}

/// Refuses a second entry with the same key.
fn check_unique<'a, T>(entries: &'a [Sourced<T>], key: impl Fn(&T) -> String, field: &str) -> DomainResult<()> {
    let mut seen: BTreeMap<String, &'a str> = BTreeMap::new();
    for entry in entries {
        let key = key(&entry.value);
        if let Some(first) = seen.insert(key.clone(), &entry.source) {
            return Err(DomainError::invalid(
                format!("{}.{field}", entry.source),
                format!("{key:?} is defined twice (first at {first})"),
            ));
        }
    }
    Ok(())
}

/// Validates the whole fixture against the state and returns the events that
/// bring the state to it (none when it already matches).
pub(super) fn decide(state: &State, fixture: &Fixture) -> DomainResult<Vec<Event>> {
    check_unique(&fixture.items, |item| item.code.clone(), "code")?;
    check_unique(&fixture.depots, |depot| depot.id.clone(), "id")?;
    check_unique(&fixture.teams, |team| team.id.clone(), "id")?;
    check_unique(&fixture.stock, |stock| format!("{}/{}", stock.depot_id, stock.item_code), "depot")?;
    check_unique(&fixture.plans, |plan| plan.id.clone(), "id")?;
    let mut events = Vec::new();
    for Sourced { source, value: item } in &fixture.items {
        item.validate(source)?;
        match state.items.get(&item.code) {
            None => events.push(Event::ItemDefined { item: item.clone() }),
            Some(existing) if existing == item => {}
            Some(_) => events.push(Event::ItemUpdated { item: item.clone() }),
        }
    }
    for Sourced { source, value: depot } in &fixture.depots {
        depot.validate(source)?;
        match state.depots.get(&depot.id) {
            None => events.push(Event::DepotRegistered { depot: depot.clone() }),
            Some(existing) if existing == depot => {}
            Some(_) => events.push(Event::DepotUpdated { depot: depot.clone() }),
        }
    }
    for Sourced { source, value: setting } in &fixture.teams {
        validate::id(&format!("{source}.id"), &setting.id)?;
        let profile = setting.profile.clone().validated(source)?;
        match state.teams.get(&setting.id) {
            None => events.push(Event::TeamRegistered {
                team: Team {
                    id: setting.id.clone(),
                    position: profile.home,
                    profile,
                    status: TeamStatus::Available,
                    version: 1,
                    assignment_id: None,
                    last_report_at: None,
                },
            }),
            Some(existing) if existing.profile == profile => {}
            Some(_) => events.push(Event::TeamProfileUpdated { team_id: setting.id.clone(), profile }),
        }
    }
    let fixture_depots: BTreeSet<&str> = fixture.depots.iter().map(|depot| depot.value.id.as_str()).collect();
    let fixture_items: BTreeSet<&str> = fixture.items.iter().map(|item| item.value.code.as_str()).collect();
    for Sourced { source, value: setting } in &fixture.stock {
        events.extend(stock_events(state, source, setting, &fixture_depots, &fixture_items)?);
    }
    for Sourced { source, value: plan } in &fixture.plans {
        plan.validate_keyed(source, crate::domain::plan::PlanKeys::FILE)?;
        let unchanged = state.plan(&plan.id, 0).is_ok_and(|latest| same_content(plan, latest));
        if !unchanged {
            events.push(Event::PlanPut { plan: next_version(state, plan) });
        }
    }
    Ok(events)
}

fn stock_events(
    state: &State,
    source: &str,
    setting: &StockSetting,
    fixture_depots: &BTreeSet<&str>,
    fixture_items: &BTreeSet<&str>,
) -> DomainResult<Vec<Event>> {
    validate::id(&format!("{source}.depot"), &setting.depot_id)?;
    validate::code(&format!("{source}.item"), &setting.item_code)?;
    if !fixture_depots.contains(setting.depot_id.as_str()) && !state.depots.contains_key(&setting.depot_id) {
        return Err(DomainError::invalid(
            format!("{source}.depot"),
            format!("no depot {:?} in the file or on the server", setting.depot_id),
        ));
    }
    if !fixture_items.contains(setting.item_code.as_str()) && !state.items.contains_key(&setting.item_code) {
        return Err(DomainError::invalid(
            format!("{source}.item"),
            format!("no item {:?} in the file or on the server", setting.item_code),
        ));
    }
    for (key, value) in [("on_hand", setting.on_hand), ("min_reserve", setting.min_reserve)] {
        if !(0..=MAX_QUANTITY).contains(&value) {
            return Err(DomainError::invalid(
                format!("{source}.{key}"),
                format!("must be between 0 and {MAX_QUANTITY}"),
            ));
        }
    }
    let key = (setting.depot_id.clone(), setting.item_code.clone());
    let current = state.stock.get(&key).cloned().unwrap_or_default();
    let mut events = Vec::new();
    let delta = setting.on_hand - current.on_hand;
    if delta != 0 {
        check_on_hand(&format!("{source}.on_hand"), &setting.depot_id, &setting.item_code, &current, setting.on_hand)
            .map_err(|error| DomainError::exhausted(format!("{source}.on_hand: {error}")))?;
        events.push(Event::StockAdjusted {
            depot_id: setting.depot_id.clone(),
            item_code: setting.item_code.clone(),
            delta,
            reason: LedgerReason::Counted,
            note: format!("import: {source}"),
        });
    }
    if setting.min_reserve != current.min_reserve || !state.stock.contains_key(&key) {
        events.push(Event::MinReserveSet {
            depot_id: setting.depot_id.clone(),
            item_code: setting.item_code.clone(),
            min_reserve: setting.min_reserve,
        });
    }
    Ok(events)
}

/// What the import's records created and changed, for its reply.
/// A stock row counts as created when the import set its floor and every
/// ledger entry it has is the import's own (a row that only ever had a floor
/// set by hand before also counts as created: the label is for people).
pub(super) fn summarize(fixture: &Fixture, state: &State, records: &[LogRecord]) -> ImportSummary {
    let mut created = BTreeSet::new();
    let mut changed = BTreeSet::new();
    let first_sequence = records.first().map(|record| record.sequence).unwrap_or(u64::MAX);
    let new_rows: BTreeSet<(String, String)> = records
        .iter()
        .filter_map(|record| match &record.event {
            Event::MinReserveSet { depot_id, item_code, .. } => Some((depot_id.clone(), item_code.clone())),
            _ => None,
        })
        .filter(|key| {
            state.stock.get(key).is_some_and(|stock| stock.ledger.iter().all(|entry| entry.sequence >= first_sequence))
        })
        .collect();
    for record in records {
        match &record.event {
            Event::ItemDefined { item } => {
                created.insert(format!("item {}", item.code));
            }
            Event::DepotRegistered { depot } => {
                created.insert(format!("depot {}", depot.id));
            }
            Event::TeamRegistered { team } => {
                created.insert(format!("team {}", team.id));
            }
            Event::PlanPut { plan } if plan.version == 1 => {
                created.insert(format!("plan {} version 1", plan.id));
            }
            Event::PlanPut { plan } => {
                changed.insert(format!("plan {} version {}", plan.id, plan.version));
            }
            Event::ItemUpdated { item } => {
                changed.insert(format!("item {}", item.code));
            }
            Event::DepotUpdated { depot } => {
                changed.insert(format!("depot {}", depot.id));
            }
            Event::TeamProfileUpdated { team_id, .. } => {
                changed.insert(format!("team {team_id}"));
            }
            Event::StockAdjusted { depot_id, item_code, .. } | Event::MinReserveSet { depot_id, item_code, .. } => {
                let label = format!("stock {depot_id}/{item_code}");
                if new_rows.contains(&(depot_id.clone(), item_code.clone())) {
                    created.insert(label);
                } else {
                    changed.insert(label);
                }
            }
            _ => {}
        }
    }
    let touched = u64::try_from(created.len() + changed.len()).unwrap_or(u64::MAX);
    ImportSummary {
        unchanged: u64::try_from(fixture.entries()).unwrap_or(u64::MAX).saturating_sub(touched),
        created: created.into_iter().collect(),
        changed: changed.into_iter().collect(),
    }
}
