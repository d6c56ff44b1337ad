//! Reasons in words: why each assignment was chosen and what each shortfall
//! lacks. Reviewers read these in the audit log long after the incident.

use std::collections::BTreeMap;

use super::assign::Edge;
use super::{DepotStock, OpenNeed, Unavailable};
use crate::domain::incident::need_id;
use crate::domain::plan::NeedKey;
use crate::domain::team::Team;
use crate::domain::travel::Leg;
use crate::domain::{Level, State};

fn capability_of(open: &OpenNeed<'_>) -> (String, u32) {
    match &open.need.key {
        NeedKey::Team { capability, min_tier } => (capability.clone(), *min_tier),
        NeedKey::Supply { item_code } => (item_code.clone(), 0),
    }
}

/// What the reasons of one team round compare against: the teams, the
/// needs, each need's candidates nearest first, and who serves what.
pub(super) struct TeamExplainer<'r, 'a> {
    pub teams: &'r [&'a Team],
    pub needs: &'r [&'r OpenNeed<'a>],
    /// Per need, its candidates (team index and travel in ms), in team order.
    pub candidates: &'r [Vec<Edge>],
    pub served_by: &'r BTreeMap<usize, usize>,
    /// The leg from a team to a need's incident: (need index, team index).
    pub leg: &'r dyn Fn(usize, usize) -> Leg,
}

impl TeamExplainer<'_, '_> {
    /// Why team `column` serves need `need_index`.
    pub(super) fn reason(&self, need_index: usize, column: usize, leg: &Leg) -> String {
        let (capability, min_tier) = capability_of(self.needs[need_index]);
        let team = self.teams[column];
        let tier = team.tier(&capability).unwrap_or(0);
        // One scan of the need's candidates: how many are nearer than this
        // team (ties to the lower team index), and the nearest of those that
        // serves another need, rather than sorting every need's candidates,
        // most of which no reason ever looks at.
        let chosen = (leg.millis(), column);
        let (mut listed, mut rank) = (false, 0usize);
        let mut nearer_elsewhere: Option<(&Edge, usize)> = None;
        for edge in &self.candidates[need_index] {
            listed |= edge.column == column;
            if (edge.cost, edge.column) >= chosen {
                continue;
            }
            rank += 1;
            let Some(&other) = self.served_by.get(&edge.column).filter(|other| **other != need_index) else { continue };
            if nearer_elsewhere.is_none_or(|(best, _)| (edge.cost, edge.column) < (best.cost, best.column)) {
                nearer_elsewhere = Some((edge, other));
            }
        }
        if !listed {
            rank = 0;
        }
        let detour = if leg.crosses_zone { ", detouring around an impassable zone" } else { "" };
        let head = format!(
            "{} ({capability} tier {tier}, tier {min_tier} or better needed) is {:.1} km, {:.0} min away{detour}",
            team.id, leg.distance_km, leg.minutes
        );
        if rank == 0 {
            return format!("{head}: the nearest available qualifying team");
        }
        match nearer_elsewhere {
            Some((edge, other)) => {
                let (index, nearer_leg) = (edge.column, (self.leg)(need_index, edge.column));
                let other = self.needs[other];
                format!(
                    "{head}: the nearer {} ({:.0} min) serves need {} of {} (level {}), which makes total travel lower",
                    self.teams[index].id,
                    nearer_leg.minutes,
                    need_id(other.need.number),
                    other.incident.id,
                    other.level()
                )
            }
            None => format!("{head}: the {rank} nearer qualifying team(s) serve this need too"),
        }
    }
}

/// Why `team` leaves `source` for `open`: the job it left, named.
pub(super) fn diversion_reason(
    state: &State,
    team: &Team,
    open: &OpenNeed<'_>,
    source: &crate::domain::assignment::Assignment,
    leg: &Leg,
) -> String {
    let job_level = state.incidents.get(&source.incident_id).map(|incident| incident.level.to_string());
    format!(
        "{} is {:.1} km, {:.0} min away{}: no free qualifying team was left for this level-{} need, so it was \
         diverted from {} (need {} of incident {}, level {}), a job at least two levels less severe",
        team.id,
        leg.distance_km,
        leg.minutes,
        if leg.crosses_zone { ", detouring around an impassable zone" } else { "" },
        open.level(),
        source.id(),
        need_id(source.need_number),
        source.incident_id,
        job_level.unwrap_or_else(|| "?".to_owned())
    )
}

/// What need `need_index` still lacks, and why.
pub(super) fn team_shortfall(
    teams: &[&Team],
    availability: &[Result<(), Unavailable>],
    served_by: &BTreeMap<usize, usize>,
    needs: &[&OpenNeed<'_>],
    need_index: usize,
) -> String {
    let open = needs[need_index];
    let (capability, min_tier) = capability_of(open);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut qualifying = 0;
    for (index, team) in teams.iter().enumerate() {
        if !team.qualifies(&capability, min_tier) {
            continue;
        }
        qualifying += 1;
        let label = if open.need.declined_by.iter().any(|declined| declined == &team.id) {
            "declined or did not acknowledge this need"
        } else {
            match (served_by.get(&index), &availability[index]) {
                (Some(other), _) if *other == need_index => "assigned to this need",
                (Some(_), _) => "assigned in this dispatch to needs of equal or higher priority",
                (None, Ok(())) => "available but unused",
                (None, Err(Unavailable::Busy)) => "busy with other assignments",
                (None, Err(Unavailable::OutOfService)) => "out of service",
                (None, Err(Unavailable::Uninsured)) => "without valid accident insurance",
                (None, Err(Unavailable::NobodyOnDuty)) => "with nobody on duty",
                (None, Err(Unavailable::NoInsuredMemberOnDuty)) => "with no insured member on duty",
                (None, Err(Unavailable::InZone(_))) => "inside an impassable zone",
            }
        };
        *counts.entry(label).or_default() += 1;
    }
    if qualifying == 0 {
        return format!("no team on the roster has {capability} at tier {min_tier} or better");
    }
    let parts: Vec<String> = counts.iter().map(|(label, count)| format!("{count} {label}")).collect();
    format!("{qualifying} team(s) have {capability} at tier {min_tier} or better: {}", parts.join(", "))
}

/// Why `above + below` units come from `depot`.
pub(super) fn supply_reason(
    item_code: &str,
    depot: &DepotStock<'_>,
    leg: &Leg,
    above: i64,
    below: i64,
    legs: &[Leg],
    depots: &[&DepotStock<'_>],
) -> String {
    let nearer = legs.iter().zip(depots).filter(|(other, _)| other.seconds() < leg.seconds()).count();
    let mut text = format!(
        "{} {item_code} from {} ({:.1} km, {:.0} min by convoy{}), {} usable above its strategic minimum of {}",
        above + below,
        depot.depot_id,
        leg.distance_km,
        leg.minutes,
        if leg.crosses_zone { ", detouring around an impassable zone" } else { "" },
        depot.above_floor,
        depot.min_reserve
    );
    if nearer > 0 {
        text.push_str(&format!("; {nearer} nearer depot(s) had no more to spare at this priority"));
    }
    if below > 0 {
        text.push_str(&format!(
            "; level I: {below} taken below the strategic minimum because stock above the minimums does not cover the need"
        ));
    }
    text
}

/// What an item's need still lacks, and why, given every depot holding it.
pub(super) fn supply_shortfall(depots: &[DepotStock<'_>], item_code: &str, level: Level) -> String {
    if depots.iter().all(|depot| depot.above_floor + depot.below_floor == 0) {
        return format!("no depot has {item_code} available");
    }
    let usable: i64 = depots.iter().filter(|depot| depot.zone.is_none()).map(|depot| depot.above_floor).sum();
    let reserve: i64 = depots.iter().filter(|depot| depot.zone.is_none()).map(|depot| depot.below_floor).sum();
    let zoned: i64 =
        depots.iter().filter(|depot| depot.zone.is_some()).map(|depot| depot.above_floor + depot.below_floor).sum();
    let mut parts =
        vec![format!("{usable} usable above the strategic minimums went to needs of equal or higher priority")];
    if reserve > 0 {
        parts.push(if level == Level::I {
            format!("{reserve} held as strategic reserve went to other level-I needs")
        } else {
            format!("{reserve} more are held as strategic reserve, which only level-I incidents may take")
        });
    }
    if zoned > 0 {
        parts.push(format!("{zoned} are in depots inside impassable zones"));
    }
    parts.join("; ")
}
