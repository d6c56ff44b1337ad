//! The invariants of `product.md` as code: [`check`] says which one a state
//! breaks. Tests call it after every step; nothing in production relies on
//! it to be correct.

use super::state::State;

/// Returns a description of the first broken invariant, if any.
pub fn check(state: &State) -> Result<(), String> {
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
        let context = Context { time: Timestamp::from_unix_seconds(1_000), actor: "test".into() };
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

    fn units(state: &State, item: &str) -> i64 {
        state.stock.iter().filter(|(key, _)| key.1 == item).map(|(_, stock)| stock.on_hand).sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Invariants 3 and 4 hold after every step of any sequence of stock
        /// commands; a refused command changes nothing; transfers create and
        /// lose no unit.
        #[test]
        fn stock_invariants_hold_after_every_command(commands in prop::collection::vec(stock_command(), 1..60)) {
            let mut state = world();
            for (step, command) in commands.iter().enumerate() {
                let context = Context { time: Timestamp::from_unix_seconds(2_000 + step as i64), actor: "test".into() };
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
