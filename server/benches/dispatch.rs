//! Dispatch benchmark on generated worlds (`cargo bench -p muster-server --bench dispatch`).
//!
//! Prints, for each world, the dispatcher's fill per level and total travel
//! against the closest-first baseline on the same world (the ratio
//! greedy / optimal), then times one full dispatch with criterion:
//!
//! - 200 needs over 200 teams;
//! - 1,000 needs over 5,000 teams, 300 depots and 40 items.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use muster_server::dispatch::{first_round, greedy, plan, DispatchPlan};
use muster_server::domain::import::{Fixture, Sourced, StockSetting, TeamSetting};
use muster_server::domain::incident::Declaration;
use muster_server::domain::reserve::{Depot, Item};
use muster_server::domain::team::TeamProfile;
use muster_server::domain::travel::Settings;
use muster_server::domain::{
    execute, Capability, Command, Context, Hazard, LatLng, Level, State, SupplyNeed, TeamNeed, Timestamp,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::Digest;

// The allocator musterd runs with, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_782_885_600;
const CAPABILITIES: [&str; 8] =
    ["water_rescue", "search_rescue", "firefighting", "hazmat", "medical", "pumping", "power_restoration", "logistics"];

/// The shape of a generated world.
pub struct Shape {
    pub name: &'static str,
    pub teams: usize,
    pub depots: usize,
    pub items: usize,
    pub team_needs: usize,
    pub supply_needs: usize,
    pub needs_per_incident: usize,
}

fn position(rng: &mut StdRng) -> LatLng {
    LatLng { lat: 28.0 + rng.random::<f64>() * 0.5, lng: 112.7 + rng.random::<f64>() * 0.5 }
}

/// A reproducible world: teams spread over a 50 km square, depots holding a
/// quarter of the items each, incidents with a mix of team and supply needs
/// at random levels.
pub fn world(shape: &Shape, seed: u64) -> State {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fixture = Fixture::default();
    for index in 0..shape.teams {
        let count = rng.random_range(1..=3);
        let mut capabilities: Vec<Capability> = Vec::new();
        while capabilities.len() < count {
            let code = CAPABILITIES[rng.random_range(0..CAPABILITIES.len())];
            if !capabilities.iter().any(|capability| capability.code == code) {
                capabilities.push(Capability { code: code.into(), tier: rng.random_range(1..=4) });
            }
        }
        let profile = TeamProfile {
            name: format!("Team {index}"),
            organization: String::new(),
            capabilities,
            headcount: rng.random_range(4..30),
            home: position(&mut rng),
            speed_kmh: rng.random_range(30.0..70.0),
            insurance_expires: Some(Timestamp::from_unix_seconds(NOW + 86_400 * 365)),
            members: Vec::new(),
        };
        fixture
            .teams
            .push(Sourced { source: String::new(), value: TeamSetting { id: format!("T{index:05}"), profile } });
    }
    for index in 0..shape.items {
        let value = Item {
            code: format!("item_{index:02}"),
            name: format!("Item {index}"),
            unit: "unit".into(),
            category: String::new(),
        };
        fixture.items.push(Sourced { source: String::new(), value });
    }
    for index in 0..shape.depots {
        let value = Depot {
            id: format!("D{index:03}"),
            name: format!("Depot {index}"),
            organization: String::new(),
            position: position(&mut rng),
        };
        fixture.depots.push(Sourced { source: String::new(), value });
        for item in 0..shape.items {
            if rng.random_bool(0.25) {
                let on_hand = rng.random_range(10..500);
                let value = StockSetting {
                    depot_id: format!("D{index:03}"),
                    item_code: format!("item_{item:02}"),
                    on_hand,
                    min_reserve: on_hand * rng.random_range(1..4) / 10,
                };
                fixture.stock.push(Sourced { source: String::new(), value });
            }
        }
    }
    let mut state = State::default();
    let context =
        Context::new(Timestamp::from_unix_seconds(NOW), "bench").with_planner(&muster_server::dispatch::DISPATCHER);
    execute(&mut state, &Command::Import { fixture }, &context, None).expect("import");
    let total = shape.team_needs + shape.supply_needs;
    let incidents = total.div_ceil(shape.needs_per_incident);
    let levels = [Level::I, Level::II, Level::II, Level::III, Level::III, Level::IV];
    let (mut team_needs, mut supply_needs) = (shape.team_needs, shape.supply_needs);
    for index in 0..incidents {
        let declaration = Declaration {
            id: format!("INC-{index:04}"),
            title: "generated".into(),
            hazard: Some(Hazard::Other),
            position: Some(position(&mut rng)),
            area: Vec::new(),
            level: Some(levels[rng.random_range(0..levels.len())]),
            metrics: Default::default(),
            plan_id: None,
        };
        execute(&mut state, &Command::DeclareIncident { declaration }, &context, None).expect("declare");
        let mut teams = Vec::new();
        let mut supplies = Vec::new();
        for _ in 0..shape.needs_per_incident {
            let pick_team =
                team_needs > 0 && (supply_needs == 0 || rng.random_range(0..team_needs + supply_needs) < team_needs);
            if pick_team {
                team_needs -= 1;
                let capability = CAPABILITIES[rng.random_range(0..CAPABILITIES.len())].into();
                teams.push(TeamNeed { capability, min_tier: rng.random_range(2..=4), count: rng.random_range(1..=2) });
            } else if supply_needs > 0 {
                supply_needs -= 1;
                supplies.push(SupplyNeed {
                    item_code: format!("item_{:02}", rng.random_range(0..shape.items)),
                    quantity: rng.random_range(5..200),
                });
            }
        }
        if teams.is_empty() && supplies.is_empty() {
            continue;
        }
        // One request per resource key keeps the needs distinct.
        let command = Command::RequestResources { incident_id: format!("INC-{index:04}"), teams, supplies };
        execute(&mut state, &command, &context, None).expect("request");
    }
    state
}

fn describe(label: &str, plan: &DispatchPlan) -> String {
    let (team_minutes, unit_minutes) = plan.total_travel();
    format!(
        "{label}: filled per level I-IV {:?}, team travel {:.0} min, supply travel {:.0} unit-min",
        plan.filled_by_level(),
        team_minutes,
        unit_minutes
    )
}

fn compare(shape: &Shape, state: &State) {
    let settings = Settings::default();
    let now = Timestamp::from_unix_seconds(NOW);
    let optimal = plan(state, None, &settings, now).unwrap();
    let baseline = greedy::plan(state, None, &settings, now).unwrap();
    let (optimal_teams, optimal_units) = optimal.total_travel();
    let (greedy_teams, greedy_units) = baseline.total_travel();
    println!(
        "world {}: {} needs, {} teams, {} depots, {} items",
        shape.name,
        shape.team_needs + shape.supply_needs,
        shape.teams,
        shape.depots,
        shape.items
    );
    println!("  {}", describe("dispatcher", &optimal));
    // Every decision and every reason, fingerprinted: a change meant only
    // to be faster must leave this line as it was.
    let fingerprint = sha2::Sha256::digest(format!("{:?}", optimal).as_bytes());
    println!("  dispatcher plan fingerprint: {}", hex::encode(&fingerprint[..8]));
    println!("  {}", describe("closest-first", &baseline));
    println!(
        "  greedy / dispatcher travel: teams {:.3}, supplies {:.3} (fill per level: dispatcher {:?} vs greedy {:?})",
        greedy_teams / optimal_teams.max(f64::MIN_POSITIVE),
        if optimal_units > 0.0 { greedy_units / optimal_units } else { 1.0 },
        optimal.filled_by_level(),
        baseline.filled_by_level()
    );
}

fn bench(c: &mut Criterion) {
    let shapes = [
        Shape {
            name: "200x200",
            teams: 200,
            depots: 0,
            items: 1,
            team_needs: 200,
            supply_needs: 0,
            needs_per_incident: 10,
        },
        Shape {
            name: "1000x5000x300x40",
            teams: 5_000,
            depots: 300,
            items: 40,
            team_needs: 600,
            supply_needs: 400,
            needs_per_incident: 10,
        },
    ];
    let settings = Settings::default();
    let now = Timestamp::from_unix_seconds(NOW);
    for shape in &shapes {
        let state = world(shape, 7);
        compare(shape, &state);
        let mut group = c.benchmark_group("dispatch");
        group.sample_size(if shape.teams > 1_000 { 10 } else { 50 });
        group.bench_function(shape.name, |bencher| {
            bencher.iter(|| plan(black_box(&state), None, &settings, now).unwrap())
        });
        group.bench_function(format!("{}-closest-first", shape.name), |bencher| {
            bencher.iter(|| greedy::plan(black_box(&state), None, &settings, now).unwrap())
        });
        // The baseline the issue sets: the exact sparse assignment solver
        // alone, on the candidate matrix the dispatch builds (no legs, no
        // supplies, no explanations).
        if let Some(round) = first_round(&state, &settings, now) {
            let (rows, edges) = round.size();
            println!("  {}: first round {rows} rows x {} teams, {edges} candidate edges", shape.name, shape.teams);
            group.bench_function(format!("{}-solver-alone", shape.name), |bencher| {
                bencher.iter(|| black_box(&round).solve())
            });
            group.bench_function(format!("{}-matrix", shape.name), |bencher| {
                bencher.iter(|| first_round(black_box(&state), &settings, now))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
