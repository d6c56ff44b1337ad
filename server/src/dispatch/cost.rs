//! Lexicographic costs. The dispatcher's objective is ordered: fill more of
//! level I, then travel less at level I, then fill more of level II, and so
//! on (supplies add "take less below the strategic minimum" between filling
//! and travelling). Instead of weighting these into one number (which
//! overflows or blurs them), a cost is a vector compared lexicographically.
//! Vectors under lexicographic order form an ordered group, which is all
//! shortest-path and min-cost-flow algorithms need.

use std::ops::{Add, Neg, Sub};

use crate::domain::Level;

/// A cost vector, compared component by component from the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lex<const N: usize>(pub [i64; N]);

impl<const N: usize> Lex<N> {
    /// The zero cost.
    pub const ZERO: Self = Lex([0; N]);

    /// A cost with `value` in component `index` only.
    pub fn unit(index: usize, value: i64) -> Self {
        let mut components = [0; N];
        components[index] = value;
        Lex(components)
    }

    /// True when strictly below zero (lexicographically).
    pub fn is_negative(&self) -> bool {
        *self < Self::ZERO
    }
}

impl<const N: usize> Add for Lex<N> {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        let mut sum = self.0;
        for (component, value) in sum.iter_mut().zip(other.0) {
            *component += value;
        }
        Lex(sum)
    }
}

impl<const N: usize> Sub for Lex<N> {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        let mut difference = self.0;
        for (component, value) in difference.iter_mut().zip(other.0) {
            *component -= value;
        }
        Lex(difference)
    }
}

impl<const N: usize> Neg for Lex<N> {
    type Output = Self;
    fn neg(self) -> Self {
        Lex(self.0.map(|value| -value))
    }
}

/// Team costs: per level, `[unfilled rows, travel ms]`.
pub type TeamCost = Lex<8>;

/// Supply costs per unit: per level, `[unfilled units, units below the floor, travel s]`.
pub type SupplyCost = Lex<12>;

/// Team cost: one row of `level` left unfilled.
pub fn team_unfilled(level: Level) -> TeamCost {
    Lex::unit(level.index() * 2, 1)
}

/// Team cost: one row of `level` served with `travel_ms` of travel.
pub fn team_travel(level: Level, travel_ms: i64) -> TeamCost {
    Lex::unit(team_travel_component(level), travel_ms)
}

/// The component of a team cost that holds travel at `level`.
pub fn team_travel_component(level: Level) -> usize {
    level.index() * 2 + 1
}

/// Supply cost per unit: filled at `level` (a reward, so negative).
pub fn supply_filled(level: Level) -> SupplyCost {
    Lex::unit(level.index() * 3, -1)
}

/// Supply cost per unit: taken below a strategic minimum at `level`.
pub fn supply_override(level: Level) -> SupplyCost {
    Lex::unit(level.index() * 3 + 1, 1)
}

/// Supply cost per unit: `travel_s` seconds of convoy travel at `level`.
pub fn supply_travel(level: Level, travel_s: i64) -> SupplyCost {
    Lex::unit(level.index() * 3 + 2, travel_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filling_a_more_severe_level_outweighs_any_travel() {
        let level_one_far = team_travel(Level::I, 10_000_000);
        let level_one_unfilled = team_unfilled(Level::I);
        assert!(level_one_far < level_one_unfilled);
        let level_two_unfilled = team_unfilled(Level::II);
        assert!(level_two_unfilled < team_travel(Level::I, 1), "a second of level-I travel outweighs a level-II fill");
        assert!((supply_filled(Level::I) + supply_override(Level::I)).is_negative());
        assert_eq!(team_travel(Level::II, 5) - team_travel(Level::II, 5), Lex::ZERO);
    }
}
