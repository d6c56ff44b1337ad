//! The invariants of `product.md` as code: [`check`] says which one a state
//! breaks. Tests call it after every step; nothing in production relies on
//! it to be correct.

use std::collections::BTreeMap;

use super::incident::IncidentStatus;
use super::plan::NeedKey;
use super::state::State;

/// Returns a description of the first broken invariant, if any.
pub fn check(state: &State) -> Result<(), String> {
    check_stock(state)?;
    check_incidents(state)?;
    check_assignments(state)
}

/// Invariant 1 (one active assignment per team, and the team points at it),
/// `filled` is the sum of the need's live assignments, `reserved` is the sum
/// of the stock's active assignments not yet issued, and reserve overrides
/// happen at level I only.
fn check_assignments(state: &State) -> Result<(), String> {
    use super::assignment::{AssignedResource, AssignmentStatus};
    let mut active_by_team: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut filled: BTreeMap<u64, i64> = BTreeMap::new();
    let mut reserved: BTreeMap<(String, String), i64> = BTreeMap::new();
    for assignment in state.assignments.values() {
        if !matches!(assignment.status, AssignmentStatus::Cancelled | AssignmentStatus::Declined) {
            *filled.entry(assignment.need_number).or_default() += assignment.amount();
        }
        if assignment.reserve_override && assignment.priority != super::Level::I {
            return Err(format!(
                "invariant 3: {} overrides a reserve at level {}",
                assignment.id(),
                assignment.priority
            ));
        }
        match &assignment.resource {
            AssignedResource::Team { team_id } if assignment.status.is_active() => {
                active_by_team.entry(team_id).or_default().push(assignment.id());
            }
            AssignedResource::Supply { depot_id, item_code, quantity }
                if assignment.status.is_active() && !assignment.issued =>
            {
                *reserved.entry((depot_id.clone(), item_code.clone())).or_default() += quantity;
            }
            _ => {}
        }
    }
    for (team_id, active) in &active_by_team {
        if active.len() > 1 {
            return Err(format!("invariant 1: team {team_id} holds {active:?}"));
        }
        let pointed = state.teams.get(*team_id).and_then(|team| team.assignment_id.clone());
        if pointed.as_ref() != active.first() {
            return Err(format!("team {team_id} points at {pointed:?} but holds {active:?}"));
        }
    }
    for team in state.teams.values() {
        if team.assignment_id.is_some() && !active_by_team.contains_key(team.id.as_str()) {
            return Err(format!("team {} points at {:?}, which is not active", team.id, team.assignment_id));
        }
    }
    for need in state.needs.values() {
        let live = filled.get(&need.number).copied().unwrap_or(0);
        if need.filled != live {
            return Err(format!("need {} says filled {} but its assignments add up to {live}", need.id(), need.filled));
        }
    }
    for (key, stock) in &state.stock {
        let expected = reserved.get(key).copied().unwrap_or(0);
        if stock.reserved != expected {
            return Err(format!(
                "{} at {} has {} reserved but its assignments hold {expected}",
                key.1, key.0, stock.reserved
            ));
        }
    }
    Ok(())
}

/// Plan-derived needs match the level's figures key by key (over only by
/// what is assigned and could not be taken back); closed incidents hold nothing.
fn check_incidents(state: &State) -> Result<(), String> {
    for incident in state.incidents.values() {
        let needs: Vec<_> = state.needs_of(incident).collect();
        if needs.len() != incident.needs.len() {
            return Err(format!("incident {} lists needs that do not exist", incident.id));
        }
        for need in &needs {
            if need.incident_id != incident.id {
                return Err(format!(
                    "need {} is listed by {} but belongs to {}",
                    need.id(),
                    incident.id,
                    need.incident_id
                ));
            }
            if !need.cancelled && (need.amount <= 0 || need.filled < 0) {
                return Err(format!("need {} has amount {} and filled {}", need.id(), need.amount, need.filled));
            }
            if need.filled > need.amount {
                return Err(format!(
                    "need {} is committed above its figure: {} assigned for {}",
                    need.id(),
                    need.filled,
                    need.amount
                ));
            }
        }
        if incident.status == IncidentStatus::Closed {
            if let Some(open) = needs.iter().find(|need| need.missing() > 0) {
                return Err(format!("closed incident {} still needs {}", incident.id, open.describe()));
            }
            continue;
        }
        let Some(plan) = state.incident_plan(incident) else { continue };
        let figures = plan.figures(incident.level);
        let mut by_key: BTreeMap<&NeedKey, Vec<_>> = BTreeMap::new();
        for need in needs.iter().filter(|need| need.from_plan && !need.cancelled) {
            by_key.entry(&need.key).or_default().push(*need);
        }
        for key in figures.keys() {
            by_key.entry(key).or_default();
        }
        for (key, needs) in by_key {
            let target = figures.get(key).copied().unwrap_or(0);
            let total: i64 = needs.iter().map(|need| need.amount).sum();
            if total < target {
                return Err(format!(
                    "incident {} at level {} needs {target} of {key:?} but has {total}",
                    incident.id, incident.level
                ));
            }
            if total > target && needs.iter().any(|need| need.missing() > 0) {
                return Err(format!(
                    "incident {} at level {} asks {total} of {key:?} (figure {target}) with open needs that should have been lowered",
                    incident.id, incident.level
                ));
            }
        }
    }
    Ok(())
}

fn check_stock(state: &State) -> Result<(), String> {
    for ((depot_id, item_code), stock) in &state.stock {
        let place = format!("{item_code} at {depot_id}");
        if stock.reserved < 0 || stock.reserved > stock.on_hand {
            return Err(format!("invariant 3: {place} has reserved {} of {} on hand", stock.reserved, stock.on_hand));
        }
        if stock.min_reserve < 0 {
            return Err(format!("{place} has a negative minimum {}", stock.min_reserve));
        }
        let ledger_sum: i64 = stock.ledger.iter().map(|entry| entry.delta).sum();
        if ledger_sum != stock.on_hand {
            return Err(format!(
                "invariant 4: {place} has {} on hand but its ledger sums to {ledger_sum}",
                stock.on_hand
            ));
        }
        if !stock
            .ledger
            .iter()
            .zip(stock.ledger.iter().skip(1))
            .all(|(earlier, later)| earlier.sequence < later.sequence)
        {
            return Err(format!("the ledger of {place} is out of order"));
        }
        if !state.depots.contains_key(depot_id) || !state.items.contains_key(item_code) {
            return Err(format!("stock {place} names a depot or item that does not exist"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::check;
    use crate::domain::reserve::{Depot, Item, LedgerReason};
    use crate::domain::{execute, Command, Context, LatLng, State, Timestamp};

    const DEPOTS: [&str; 3] = ["D-A", "D-B", "D-C"];
    const ITEMS: [&str; 2] = ["pump", "sandbag"];

    fn world() -> State {
        let mut state = State::default();
        let context = Context::new(Timestamp::from_unix_seconds(1_000), "test");
        for id in DEPOTS {
            let depot =
                Depot { id: id.into(), name: id.into(), organization: String::new(), position: LatLng::default() };
            execute(&mut state, &Command::RegisterDepot { depot }, &context, None).unwrap_or_default();
        }
        for code in ITEMS {
            let item = Item { code: code.into(), name: code.into(), unit: "unit".into(), category: String::new() };
            execute(&mut state, &Command::DefineItem { item }, &context, None).unwrap_or_default();
        }
        state
    }

    fn stock_command() -> impl Strategy<Value = Command> {
        let depot = (0..DEPOTS.len()).prop_map(|index| DEPOTS[index].to_owned());
        let item = (0..ITEMS.len()).prop_map(|index| ITEMS[index].to_owned());
        let reason = prop_oneof![
            Just(LedgerReason::Received),
            Just(LedgerReason::Issued),
            Just(LedgerReason::Consumed),
            Just(LedgerReason::Returned),
            Just(LedgerReason::Lost),
            Just(LedgerReason::Counted),
            Just(LedgerReason::Transferred),
        ];
        prop_oneof![
            4 => (depot.clone(), item.clone(), -60i64..60, reason).prop_map(|(depot_id, item_code, delta, reason)| {
                Command::AdjustStock { depot_id, item_code, delta, reason: Some(reason), note: String::new() }
            }),
            3 => (depot.clone(), depot.clone(), item.clone(), -5i64..80).prop_map(|(from, to, item_code, quantity)| {
                Command::TransferStock { from_depot_id: from, to_depot_id: to, item_code, quantity, note: String::new() }
            }),
            1 => (depot, item, -2i64..40).prop_map(|(depot_id, item_code, min_reserve)| {
                Command::SetMinReserve { depot_id, item_code, min_reserve }
            }),
        ]
    }

    fn plan_world_plan() -> crate::domain::plan::Plan {
        use crate::domain::plan::{LevelRequirement, Plan, Trigger};
        use crate::domain::{Level, SupplyNeed, TeamNeed};
        let level = |level: Level, boats: u32, medics: u32, sandbags: i64| LevelRequirement {
            level,
            teams: [("water_rescue", 2, boats), ("medical", 3, medics)]
                .into_iter()
                .filter(|(_, _, count)| *count > 0)
                .map(|(capability, min_tier, count)| TeamNeed { capability: capability.into(), min_tier, count })
                .collect(),
            supplies: vec![SupplyNeed { item_code: "sandbag".into(), quantity: sandbags }],
            tasks: Vec::new(),
        };
        Plan {
            id: "flood".into(),
            name: "Flood plan".into(),
            hazard: crate::domain::Hazard::Flood,
            levels: vec![
                level(Level::IV, 1, 0, 1_000),
                level(Level::III, 2, 1, 5_000),
                level(Level::II, 4, 2, 20_000),
                level(Level::I, 7, 4, 50_000),
            ],
            triggers: vec![
                Trigger { metric: "water_level_m".into(), threshold: 37.0, level: Level::III },
                Trigger { metric: "water_level_m".into(), threshold: 38.0, level: Level::II },
                Trigger { metric: "water_level_m".into(), threshold: 39.5, level: Level::I },
            ],
            version: 0,
        }
    }

    fn incident_world() -> State {
        let mut state = world();
        let context = Context::new(Timestamp::from_unix_seconds(1_000), "test");
        execute(&mut state, &Command::PutPlan { plan: plan_world_plan() }, &context, None).unwrap_or_default();
        state
    }

    fn incident_command() -> impl Strategy<Value = Command> {
        use crate::domain::incident::{Declaration, IncidentStatus, IncidentUpdate};
        use crate::domain::{Hazard, Level, SupplyNeed, TeamNeed};
        let id = prop_oneof![Just("F-1".to_owned()), Just("F-2".to_owned()), Just("H-1".to_owned())];
        let level = prop_oneof![Just(Level::I), Just(Level::II), Just(Level::III), Just(Level::IV)];
        let water = prop::option::of(35.0f64..41.0);
        prop_oneof![
            2 => (id.clone(), level.clone(), prop::bool::ANY, water.clone()).prop_map(|(id, level, with_plan, water)| Command::DeclareIncident {
                declaration: Declaration {
                    id,
                    title: "River overtops embankment".into(),
                    hazard: Some(Hazard::Flood),
                    position: Some(LatLng { lat: 28.2, lng: 112.96 }),
                    area: Vec::new(),
                    level: Some(level),
                    metrics: water.map(|value| [("water_level_m".to_owned(), value)].into_iter().collect()).unwrap_or_default(),
                    plan_id: with_plan.then(|| "flood".to_owned()),
                },
            }),
            5 => (id.clone(), prop::option::of(level), water, prop::option::of(prop::bool::ANY)).prop_map(|(id, level, water, contained)| Command::UpdateIncident {
                update: IncidentUpdate {
                    id,
                    level,
                    metrics: water.map(|value| [("water_level_m".to_owned(), value)].into_iter().collect()).unwrap_or_default(),
                    status: contained.map(|contained| if contained { IncidentStatus::Contained } else { IncidentStatus::Active }),
                },
            }),
            2 => (id.clone(), 1u32..4, 1i64..500).prop_map(|(incident_id, count, quantity)| Command::RequestResources {
                incident_id,
                teams: vec![TeamNeed { capability: "water_rescue".into(), min_tier: 2, count }],
                supplies: vec![SupplyNeed { item_code: "sandbag".into(), quantity }],
            }),
            1 => id.prop_map(|id| Command::CloseIncident { id }),
        ]
    }

    fn units(state: &State, item: &str) -> i64 {
        state.stock.iter().filter(|(key, _)| key.1 == item).map(|(_, stock)| stock.on_hand).sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Over random sequences of declare, update, request and close, each
        /// incident's plan-derived needs follow its level key by key, hand
        /// requests never change with the level, and a closed incident holds
        /// nothing.
        #[test]
        fn plan_needs_follow_the_level_and_hand_requests_stay(commands in prop::collection::vec(incident_command(), 1..40)) {
            let mut state = incident_world();
            let mut hand: std::collections::BTreeMap<u64, i64> = std::collections::BTreeMap::new();
            for (step, command) in commands.iter().enumerate() {
                let context = Context::new(Timestamp::from_unix_seconds(5_000 + step as i64 * 60), "test");
                let before = state.clone();
                match execute(&mut state, command, &context, None) {
                    Ok(records) => {
                        for record in &records {
                            if let crate::domain::Event::NeedRaised { need } = &record.event {
                                if !need.from_plan {
                                    hand.insert(need.number, need.amount);
                                }
                            }
                        }
                    }
                    Err(_) => prop_assert_eq!(&state, &before, "step {}: a refused command changed the state", step),
                }
                for (number, amount) in &hand {
                    let need = state.needs.get(number).cloned();
                    let Some(need) = need else { prop_assert!(false, "hand need {} vanished", number); continue };
                    let closed = state.incidents.get(&need.incident_id).map(|incident| incident.status) == Some(crate::domain::incident::IncidentStatus::Closed);
                    if !closed {
                        prop_assert_eq!(need.amount, *amount, "step {}: hand request {} changed", step, need.id());
                        prop_assert!(!need.cancelled, "step {}: hand request {} cancelled", step, need.id());
                    }
                }
                if let Err(broken) = check(&state) {
                    prop_assert!(false, "step {}: {:?} broke {}", step, command, broken);
                }
            }
        }

        /// Invariants 3 and 4 hold after every step of any sequence of stock
        /// commands; a refused command changes nothing; transfers create and
        /// lose no unit.
        #[test]
        fn stock_invariants_hold_after_every_command(commands in prop::collection::vec(stock_command(), 1..60)) {
            let mut state = world();
            for (step, command) in commands.iter().enumerate() {
                let context = Context::new(Timestamp::from_unix_seconds(2_000 + step as i64), "test");
                let before = state.clone();
                let totals_before: Vec<i64> = ITEMS.iter().map(|item| units(&state, item)).collect();
                match execute(&mut state, command, &context, None) {
                    Ok(_) => {
                        let totals_after: Vec<i64> = ITEMS.iter().map(|item| units(&state, item)).collect();
                        match command {
                            Command::TransferStock { .. } | Command::SetMinReserve { .. } => {
                                prop_assert_eq!(totals_after, totals_before, "step {}: {:?} changed the total", step, command);
                            }
                            Command::AdjustStock { item_code, delta, .. } => {
                                let index = ITEMS.iter().position(|item| item == item_code).unwrap_or_default();
                                prop_assert_eq!(totals_after[index], totals_before[index] + delta);
                            }
                            _ => {}
                        }
                    }
                    Err(_) => prop_assert_eq!(&state, &before, "step {}: a refused command changed the state", step),
                }
                if let Err(broken) = check(&state) {
                    prop_assert!(false, "step {}: {:?} broke {}", step, command, broken);
                }
            }
        }
    }
}
