//! An exact min-cost flow for the supply problem (successive shortest paths
//! with Dijkstra over reduced costs), over lexicographic costs, stopping
//! when no augmenting path has negative cost: the cheapest flow of any size.
//! Supply graphs are small (one item's needs and depots), so the simple
//! algorithm is fast enough; determinism comes from ordering ties by node.
//!
//! Hand-written for the same reasons as `assign`: vector costs and
//! deterministic tie-breaking.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::cost::Lex;

#[derive(Clone, Debug)]
struct Arc<const N: usize> {
    to: usize,
    capacity: i64,
    cost: Lex<N>,
}

/// A flow network under construction and its solution.
#[derive(Debug)]
pub struct Network<const N: usize> {
    arcs: Vec<Arc<N>>,
    outgoing: Vec<Vec<usize>>,
}

impl<const N: usize> Network<N> {
    /// A network of `nodes` nodes and no arcs.
    pub fn new(nodes: usize) -> Self {
        Network { arcs: Vec::new(), outgoing: vec![Vec::new(); nodes] }
    }

    /// Adds an arc; returns its index, for reading its flow later.
    pub fn add_arc(&mut self, from: usize, to: usize, capacity: i64, cost: Lex<N>) -> usize {
        let index = self.arcs.len();
        self.arcs.push(Arc { to, capacity, cost });
        self.arcs.push(Arc { to: from, capacity: 0, cost: -cost });
        self.outgoing[from].push(index);
        self.outgoing[to].push(index + 1);
        index
    }

    /// The flow on an arc (what its reverse arc can send back).
    pub fn flow(&self, arc: usize) -> i64 {
        self.arcs[arc ^ 1].capacity
    }

    /// Sends the cheapest flow from `source` to `sink`, augmenting while a
    /// path of negative cost exists. `order` must list every node so that
    /// each arc with capacity goes forward in it (the graph starts acyclic),
    /// which yields the initial potentials.
    pub fn solve(&mut self, source: usize, sink: usize, order: &[usize]) {
        let nodes = self.outgoing.len();
        let mut potential = vec![None::<Lex<N>>; nodes];
        potential[source] = Some(Lex::ZERO);
        for &node in order {
            let Some(base) = potential[node] else { continue };
            for &arc in &self.outgoing[node] {
                let Arc { to, capacity, cost } = self.arcs[arc];
                if capacity > 0 && potential[to].is_none_or(|current| base + cost < current) {
                    potential[to] = Some(base + cost);
                }
            }
        }
        let mut potential: Vec<Lex<N>> = potential.into_iter().map(Option::unwrap_or_default).collect();
        let mut distance = vec![Lex::<N>::ZERO; nodes];
        let mut reached = vec![false; nodes];
        let mut done = vec![false; nodes];
        let mut via = vec![usize::MAX; nodes];
        // Each augmentation saturates an arc or exhausts the source's supply;
        // bound the loop all the same.
        for _ in 0..=self.arcs.len() * 2 + 1 {
            reached.fill(false);
            done.fill(false);
            let mut heap = BinaryHeap::new();
            distance[source] = Lex::ZERO;
            reached[source] = true;
            heap.push(Reverse((Lex::<N>::ZERO, source)));
            while let Some(Reverse((dist, node))) = heap.pop() {
                if done[node] || dist != distance[node] {
                    continue;
                }
                done[node] = true;
                if node == sink {
                    break;
                }
                let base = dist + potential[node];
                for &arc in &self.outgoing[node] {
                    let Arc { to, capacity, cost } = self.arcs[arc];
                    if capacity <= 0 || done[to] {
                        continue;
                    }
                    let candidate = base + cost - potential[to];
                    if !reached[to] || candidate < distance[to] {
                        reached[to] = true;
                        distance[to] = candidate;
                        via[to] = arc;
                        heap.push(Reverse((candidate, to)));
                    }
                }
            }
            if !done[sink] {
                return;
            }
            let path_cost = distance[sink] + potential[sink] - potential[source];
            if !path_cost.is_negative() {
                return;
            }
            let sink_distance = distance[sink];
            for node in 0..nodes {
                if done[node] {
                    potential[node] = potential[node] + distance[node];
                } else {
                    potential[node] = potential[node] + sink_distance;
                }
            }
            let mut bottleneck = i64::MAX;
            let mut node = sink;
            while node != source {
                let arc = via[node];
                bottleneck = bottleneck.min(self.arcs[arc].capacity);
                node = self.arcs[arc ^ 1].to;
            }
            let mut node = sink;
            while node != source {
                let arc = via[node];
                self.arcs[arc].capacity -= bottleneck;
                self.arcs[arc ^ 1].capacity += bottleneck;
                node = self.arcs[arc ^ 1].to;
            }
        }
    }
}

impl<const N: usize> Default for Lex<N> {
    fn default() -> Self {
        Lex::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two needs, two depots: closest-first would take the near depot for
    /// the first need and leave the second far away.
    #[test]
    fn splits_quantities_where_that_is_cheaper() {
        // nodes: 0 source, 1 sink, 2 need A, 3 need B, 4 depot X, 5 depot Y
        let mut network = Network::<2>::new(6);
        let fill = Lex([-1, 0]);
        network.add_arc(0, 2, 5, fill);
        network.add_arc(0, 3, 5, fill);
        let a_x = network.add_arc(2, 4, i64::MAX / 4, Lex([0, 1]));
        let a_y = network.add_arc(2, 5, i64::MAX / 4, Lex([0, 2]));
        let b_x = network.add_arc(3, 4, i64::MAX / 4, Lex([0, 1]));
        let b_y = network.add_arc(3, 5, i64::MAX / 4, Lex([0, 9]));
        network.add_arc(4, 1, 6, Lex::ZERO);
        network.add_arc(5, 1, 10, Lex::ZERO);
        network.solve(0, 1, &[0, 2, 3, 4, 5, 1]);
        assert_eq!(network.flow(b_x), 5, "B has no good alternative to X");
        assert_eq!(network.flow(a_x) + network.flow(a_y), 5);
        assert_eq!(network.flow(a_x), 1);
        assert_eq!(network.flow(b_y), 0);
    }

    proptest::proptest! {
        /// Against brute force over every split of small quantities.
        #[test]
        fn matches_brute_force_on_small_transport_problems(
            demand in proptest::collection::vec(0i64..4, 2),
            supply in proptest::collection::vec(0i64..4, 2),
            travel in proptest::collection::vec(1i64..20, 4),
        ) {
            let mut network = Network::<2>::new(6);
            network.add_arc(0, 2, demand[0], Lex([-1, 0]));
            network.add_arc(0, 3, demand[1], Lex([-1, 0]));
            let arcs = [
                network.add_arc(2, 4, 100, Lex([0, travel[0]])),
                network.add_arc(2, 5, 100, Lex([0, travel[1]])),
                network.add_arc(3, 4, 100, Lex([0, travel[2]])),
                network.add_arc(3, 5, 100, Lex([0, travel[3]])),
            ];
            network.add_arc(4, 1, supply[0], Lex::ZERO);
            network.add_arc(5, 1, supply[1], Lex::ZERO);
            network.solve(0, 1, &[0, 2, 3, 4, 5, 1]);
            let flows: Vec<i64> = arcs.iter().map(|arc| network.flow(*arc)).collect();
            let value = |flows: &[i64]| Lex([-flows.iter().sum::<i64>(), flows.iter().zip(&travel).map(|(flow, cost)| flow * cost).sum()]);
            let mut best = Lex([0, 0]);
            for a in 0..=3 { for b in 0..=3 { for c in 0..=3 { for d in 0..=3 {
                let candidate = [a, b, c, d];
                if a + b <= demand[0] && c + d <= demand[1] && a + c <= supply[0] && b + d <= supply[1] {
                    best = best.min(value(&candidate));
                }
            }}}}
            proptest::prop_assert_eq!(value(&flows), best);
        }
    }
}
