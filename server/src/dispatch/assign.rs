//! An exact solver for the team problem: a rectangular, sparse assignment
//! of rows (one per team a need still lacks) to columns (available teams),
//! where each row may also stay unfilled at a cost (its private "dummy"
//! column). Shortest augmenting paths with dual potentials, one row at a
//! time (the Jonker-Volgenant / Hungarian scheme): each search is a Dijkstra
//! over reduced costs that usually ends at the nearest free team, so it
//! stays local even with thousands of teams, and the result is optimal for
//! the whole problem, not just for the row being placed.
//!
//! Hand-written because no maintained crate solves sparse assignment over
//! lexicographic (vector) costs with deterministic tie-breaking, and both
//! are part of what the dispatcher promises.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::cost::Lex;

/// One eligible pairing: the row may take `column` at `cost`. Every edge of
/// a row costs in one component of the cost vector, the row's (a team's
/// travel at its need's level), so an edge holds that component's value
/// alone: 16 bytes rather than the whole vector, for matrices of a million
/// edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The column (team index).
    pub column: usize,
    /// The cost of serving the row with it, in the row's component.
    pub cost: i64,
}

/// A sparse assignment problem.
#[derive(Debug)]
pub struct Problem<'a, const N: usize> {
    /// Real columns.
    pub columns: usize,
    /// Per row, its eligible columns (sorted by column).
    pub edges: Vec<&'a [Edge]>,
    /// Per row, the component of the cost vector its edges' costs are in.
    pub component: Vec<usize>,
    /// Per row, the cost of leaving it unfilled.
    pub unfilled: Vec<Lex<N>>,
}

/// Per-search scratch, reset lazily through a generation counter so a
/// search costs what it explores, not the size of the problem.
struct Search<const N: usize> {
    generation: Vec<u32>,
    finalized: Vec<u32>,
    distance: Vec<Lex<N>>,
    predecessor: Vec<usize>,
    heap: BinaryHeap<Reverse<(Lex<N>, usize)>>,
    scanned: Vec<usize>,
    /// The cheapest way found so far to leave some scanned row unfilled
    /// (its private dummy column): kept out of the heap, since every
    /// scanned row has one and they are rarely the answer.
    best_dummy: Option<(Lex<N>, usize)>,
    current: u32,
}

impl<const N: usize> Search<N> {
    fn new(columns: usize) -> Self {
        Search {
            generation: vec![0; columns],
            finalized: vec![0; columns],
            distance: vec![Lex::ZERO; columns],
            predecessor: vec![0; columns],
            heap: BinaryHeap::new(),
            scanned: Vec::new(),
            best_dummy: None,
            current: 0,
        }
    }

    fn start(&mut self) {
        self.current += 1;
        self.heap.clear();
        self.scanned.clear();
        self.best_dummy = None;
    }

    fn offer(&mut self, column: usize, candidate: Lex<N>, from_row: usize) {
        if self.generation[column] != self.current || candidate < self.distance[column] {
            self.generation[column] = self.current;
            self.distance[column] = candidate;
            self.predecessor[column] = from_row;
            self.heap.push(Reverse((candidate, column)));
        }
    }
}

/// Solves the problem: for each row, the column it takes, or `None` when it
/// stays unfilled. Rows are placed in the order given; ties between equally
/// cheap choices go to the lower column index.
pub fn solve<const N: usize>(problem: &Problem<'_, N>) -> Vec<Option<usize>> {
    let rows = problem.edges.len();
    let total_columns = problem.columns + rows;
    let mut row_potential = vec![Lex::<N>::ZERO; rows];
    let mut column_potential = vec![Lex::<N>::ZERO; total_columns];
    let mut owner: Vec<Option<usize>> = vec![None; total_columns];
    let mut taken: Vec<Option<usize>> = vec![None; rows];
    let mut search = Search::<N>::new(total_columns);

    for row in 0..rows {
        // A row identical to the previous one (the same need's next team)
        // cannot do better than it: if that one stayed unfilled, so does
        // this one. Copying its potentials keeps the duals feasible and
        // tight, so optimality is untouched and the search is saved.
        if row > 0 {
            let previous = row - 1;
            let identical = std::ptr::eq(problem.edges[row], problem.edges[previous])
                && problem.component[row] == problem.component[previous]
                && problem.unfilled[row] == problem.unfilled[previous];
            if identical && taken[previous] == Some(problem.columns + previous) {
                row_potential[row] = row_potential[previous];
                column_potential[problem.columns + row] = column_potential[problem.columns + previous];
                owner[problem.columns + row] = Some(row);
                taken[row] = Some(problem.columns + row);
                continue;
            }
        }
        search.start();
        let expand = |search: &mut Search<N>, from_row: usize, base: Lex<N>| {
            // distance = base + (cost - row potential - column potential)
            let offset = base - row_potential[from_row];
            // All ones in the row's component, zero elsewhere: the edge's
            // cost goes in through a mask rather than a store at a computed
            // index, which keeps the sum in vector registers.
            debug_assert!(problem.component[from_row] < N, "a row's cost component is in the vector");
            let mask: [i64; N] = std::array::from_fn(|index| -i64::from(index == problem.component[from_row]));
            for edge in problem.edges[from_row] {
                if search.finalized[edge.column] != search.current {
                    let potential = &column_potential[edge.column].0;
                    let candidate = Lex(std::array::from_fn(|index| {
                        offset.0[index] - potential[index] + (mask[index] & edge.cost)
                    }));
                    search.offer(edge.column, candidate, from_row);
                }
            }
            let dummy = problem.columns + from_row;
            let candidate = offset + problem.unfilled[from_row] - column_potential[dummy];
            if search.best_dummy.is_none_or(|(best, column)| (candidate, dummy) < (best, column)) {
                search.generation[dummy] = search.current;
                search.distance[dummy] = candidate;
                search.predecessor[dummy] = from_row;
                search.best_dummy = Some((candidate, dummy));
            }
        };
        expand(&mut search, row, Lex::ZERO);
        let (target, target_distance) = loop {
            let next = search.heap.peek().map(|Reverse(entry)| *entry);
            let column = match (next, search.best_dummy) {
                (Some(entry), Some(dummy)) if dummy < entry => break (dummy.1, dummy.0),
                (None, Some(dummy)) => break (dummy.1, dummy.0),
                (None, None) => break (problem.columns + row, Lex::ZERO),
                (Some(_), _) => {
                    let Some(Reverse((dist, column))) = search.heap.pop() else { continue };
                    if search.finalized[column] == search.current || dist != search.distance[column] {
                        continue;
                    }
                    column
                }
            };
            search.finalized[column] = search.current;
            let dist = search.distance[column];
            match owner[column] {
                None => break (column, dist),
                Some(next_row) => {
                    search.scanned.push(column);
                    expand(&mut search, next_row, dist);
                }
            }
        };
        // Dual update: keeps every reduced cost >= 0 and makes the path tight.
        for &column in &search.scanned {
            let slack = target_distance - search.distance[column];
            column_potential[column] = column_potential[column] - slack;
            if let Some(matched) = owner[column] {
                row_potential[matched] = row_potential[matched] + slack;
            }
        }
        row_potential[row] = row_potential[row] + target_distance;
        // Augment along the predecessor chain.
        let mut column = target;
        loop {
            let from_row = search.predecessor[column];
            let previous = taken[from_row];
            owner[column] = Some(from_row);
            taken[from_row] = Some(column);
            match previous {
                Some(previous_column) if from_row != row => column = previous_column,
                _ => break,
            }
        }
    }
    taken.into_iter().map(|column| column.filter(|column| *column < problem.columns)).collect()
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::dispatch::cost::Lex;

    fn edge(column: usize, cost: i64) -> Edge {
        Edge { column, cost }
    }

    /// Every test row costs its travel in component 1.
    fn problem<'a>(columns: usize, rows: &'a [Vec<Edge>], unfilled: Vec<Lex<2>>) -> Problem<'a, 2> {
        Problem { columns, edges: rows.iter().map(Vec::as_slice).collect(), component: vec![1; rows.len()], unfilled }
    }

    fn brute_force(problem: &Problem<'_, 2>) -> Lex<2> {
        fn go(problem: &Problem<'_, 2>, row: usize, used: &mut Vec<bool>) -> Lex<2> {
            if row == problem.edges.len() {
                return Lex::ZERO;
            }
            let mut best = problem.unfilled[row] + go(problem, row + 1, used);
            for edge in problem.edges[row] {
                if !used[edge.column] {
                    used[edge.column] = true;
                    let candidate = Lex::unit(problem.component[row], edge.cost) + go(problem, row + 1, used);
                    used[edge.column] = false;
                    best = best.min(candidate);
                }
            }
            best
        }
        go(problem, 0, &mut vec![false; problem.columns])
    }

    fn value(problem: &Problem<'_, 2>, solution: &[Option<usize>]) -> Lex<2> {
        let mut total = Lex::ZERO;
        let mut used = vec![false; problem.columns];
        for (row, column) in solution.iter().enumerate() {
            match column {
                None => total = total + problem.unfilled[row],
                Some(column) => {
                    assert!(!used[*column], "column {column} used twice");
                    used[*column] = true;
                    let edge =
                        problem.edges[row].iter().find(|edge| edge.column == *column).expect("an eligible column");
                    total = total + Lex::unit(problem.component[row], edge.cost);
                }
            }
        }
        total
    }

    #[test]
    fn the_nearest_team_to_both_needs_goes_where_it_saves_most() {
        // Team 0 is nearest to both rows; closest-first gives it to row 0
        // (cost 1) and leaves row 1 with team 1 (cost 10): 11. The optimum
        // sends team 0 to row 1 (2) and team 1 to row 0 (3): 5.
        let rows: Vec<Vec<Edge>> = vec![vec![edge(0, 1), edge(1, 3)], vec![edge(0, 2), edge(1, 10)]];
        let problem = problem(2, &rows, vec![Lex([1, 0]); 2]);
        let solution = solve(&problem);
        assert_eq!(solution, vec![Some(1), Some(0)]);
        assert_eq!(value(&problem, &solution), Lex([0, 5]));
    }

    #[test]
    fn a_row_stays_unfilled_only_when_nothing_is_left() {
        let rows: Vec<Vec<Edge>> = vec![vec![edge(0, 5)], vec![edge(0, 1)], vec![]];
        let problem = problem(1, &rows, vec![Lex([1, 0]); 3]);
        let solution = solve(&problem);
        assert_eq!(solution.iter().filter(|column| column.is_some()).count(), 1);
        assert_eq!(solution[1], Some(0), "the cheaper row keeps the only column");
    }

    proptest::proptest! {
        #[test]
        fn matches_brute_force_on_small_problems(
            costs in proptest::collection::vec(proptest::collection::vec(proptest::option::of(0i64..50), 4), 1..5),
            penalty in proptest::collection::vec(0i64..2, 4),
        ) {
            let rows: Vec<Vec<Edge>> = costs
                .iter()
                .map(|row| row.iter().enumerate().filter_map(|(column, cost)| cost.map(|cost| edge(column, cost))).collect())
                .collect();
            let unfilled: Vec<Lex<2>> = (0..rows.len()).map(|row| if penalty[row % 4] == 0 { Lex([1, 0]) } else { Lex([0, 60]) }).collect();
            let problem = problem(4, &rows, unfilled);
            let solution = solve(&problem);
            proptest::prop_assert_eq!(value(&problem, &solution), brute_force(&problem));
        }
    }
}
