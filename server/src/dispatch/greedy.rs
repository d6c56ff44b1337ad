//! The closest-first baseline: what today's dispatch systems do, one need
//! at a time in priority order, each taking the nearest free team or the
//! nearest depot with stock. Kept only to measure the dispatcher against;
//! never used to decide anything.

use std::collections::BTreeSet;

use super::{depot_stock, open_needs, team_availability, DispatchPlan, Proposal};
use crate::domain::assignment::AssignedResource;
use crate::domain::plan::NeedKey;
use crate::domain::travel::{self, Settings, Zones};
use crate::domain::{DomainResult, Level, State, Timestamp};

/// Plans closest-first for one incident or all.
pub fn plan(state: &State, scope: Option<&str>, settings: &Settings, now: Timestamp) -> DomainResult<DispatchPlan> {
    let open = open_needs(state, scope)?;
    let zones = Zones::new(state.zones.values());
    let mut taken_teams = BTreeSet::new();
    let mut remaining: std::collections::BTreeMap<(String, String), (i64, i64)> = std::collections::BTreeMap::new();
    let mut plan = DispatchPlan::default();
    for need in &open {
        match &need.need.key {
            NeedKey::Team { capability, min_tier } => {
                let mut candidates: Vec<(i64, &str, travel::Leg)> = state
                    .teams
                    .values()
                    .filter(|team| {
                        !taken_teams.contains(team.id.as_str())
                            && team_availability(team, &zones, now).is_ok()
                            && team.qualifies(capability, *min_tier)
                            && !need.need.declined_by.contains(&team.id)
                    })
                    .map(|team| {
                        let leg = travel::leg(
                            settings,
                            &zones,
                            team.position,
                            need.incident.position,
                            team.profile.speed_kmh,
                        );
                        (leg.millis(), team.id.as_str(), leg)
                    })
                    .collect();
                candidates.sort_by(|left, right| (left.0, left.1).cmp(&(right.0, right.1)));
                for (_, team_id, leg) in
                    candidates.into_iter().take(usize::try_from(need.missing).unwrap_or(usize::MAX))
                {
                    taken_teams.insert(team_id);
                    plan.proposals.push(Proposal {
                        need_number: need.need.number,
                        incident_id: need.incident.id.clone(),
                        resource: AssignedResource::Team { team_id: team_id.to_owned() },
                        distance_km: leg.distance_km,
                        eta_minutes: leg.minutes,
                        reason: "closest-first baseline".to_owned(),
                        override_quantity: 0,
                        priority: need.level(),
                        diverted_from: None,
                    });
                }
            }
            NeedKey::Supply { item_code } => {
                let mut depots: Vec<_> = depot_stock(state, item_code, &zones)
                    .into_iter()
                    .filter(|depot| depot.zone.is_none())
                    .map(|depot| {
                        let leg = travel::leg(
                            settings,
                            &zones,
                            depot.position,
                            need.incident.position,
                            settings.convoy_speed_kmh,
                        );
                        (leg.seconds(), depot, leg)
                    })
                    .collect();
                depots.sort_by(|left, right| (left.0, left.1.depot_id).cmp(&(right.0, right.1.depot_id)));
                let mut missing = need.missing;
                for allow_below in [false, true] {
                    if allow_below && need.level() != Level::I {
                        break;
                    }
                    for (_, depot, leg) in &depots {
                        if missing == 0 {
                            break;
                        }
                        let key = (depot.depot_id.to_owned(), item_code.clone());
                        let left = remaining.entry(key).or_insert((depot.above_floor, depot.below_floor));
                        let pool = if allow_below { &mut left.1 } else { &mut left.0 };
                        let quantity = missing.min(*pool);
                        if quantity <= 0 {
                            continue;
                        }
                        *pool -= quantity;
                        missing -= quantity;
                        plan.proposals.push(Proposal {
                            need_number: need.need.number,
                            incident_id: need.incident.id.clone(),
                            resource: AssignedResource::Supply {
                                depot_id: depot.depot_id.to_owned(),
                                item_code: item_code.clone(),
                                quantity,
                            },
                            distance_km: leg.distance_km,
                            eta_minutes: leg.minutes,
                            reason: "closest-first baseline".to_owned(),
                            override_quantity: if allow_below { quantity } else { 0 },
                            priority: need.level(),
                            diverted_from: None,
                        });
                    }
                }
            }
        }
    }
    Ok(plan)
}
