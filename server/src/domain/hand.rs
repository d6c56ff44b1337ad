//! Assignments made by hand (`AssignResource`): the duty officer puts a
//! chosen team, or a quantity from a chosen depot, on a need. The rules are
//! the dispatcher's own (capability and tier, insurance, someone insured on
//! duty, free, outside impassable zones, strategic floors but for level I),
//! checked here with the same functions; only the choice is the operator's.
//! The dispatcher counts such an assignment toward its need and never moves
//! or diverts it.

use super::assignment::{AssignedResource, Assignment, AssignmentStatus};
use super::command::HandResource;
use super::dispatching::{stale_position, team_availability, Unavailable};
use super::event::Event;
use super::incident::{IncidentStatus, Need};
use super::limits::MAX_QUANTITY;
use super::plan::NeedKey;
use super::travel::{self, Zones};
use super::{validate, Context, DomainError, DomainResult, Level, State};

/// Decides an `AssignResource` command: one `AssignmentCreated`, or why not.
pub(crate) fn assign(
    state: &State,
    need_id: &str,
    resource: &HandResource,
    reason: &str,
    context: &Context,
) -> DomainResult<Vec<Event>> {
    validate::id("need_id", need_id)?;
    validate::text("reason", reason, true)?;
    let need = state.need(need_id)?;
    let incident = state.incident(&need.incident_id)?;
    if incident.status == IncidentStatus::Closed {
        return Err(DomainError::precondition(format!("incident {} is closed", incident.id)));
    }
    if need.cancelled {
        return Err(DomainError::precondition(format!("need {need_id} is cancelled")));
    }
    if need.missing() == 0 {
        return Err(DomainError::precondition(format!(
            "need {need_id} is filled ({} of {}); request more by hand first",
            need.filled, need.amount
        )));
    }
    let zones = Zones::new(state.zones.values());
    let settings = &context.settings;
    let words = format!("by hand ({}): {reason}", context.actor);
    let (resource, leg, reason, override_quantity) = match resource {
        HandResource::Team { team_id } => {
            validate::id("team_id", team_id)?;
            let team = state.team(team_id)?;
            let NeedKey::Team { capability, min_tier } = &need.key else {
                return Err(DomainError::invalid("team_id", format!("need {need_id} asks for stock, not a team")));
            };
            if !team.qualifies(capability, *min_tier) {
                return Err(DomainError::precondition(format!(
                    "team {team_id} does not have {capability} at tier {min_tier} or better"
                )));
            }
            if need.declined_by.contains(team_id) {
                return Err(DomainError::precondition(format!(
                    "team {team_id} declined (or never acknowledged) need {need_id} and is not assigned to it again"
                )));
            }
            team_availability(team, &zones, context.time).map_err(|why| unavailable(team_id, &why))?;
            let leg = travel::leg(settings, &zones, team.position, incident.position, team.profile.speed_kmh);
            let mut reason = format!(
                "{words}; {team_id} is {:.1} km, {:.0} min away{}",
                leg.distance_km,
                leg.minutes,
                if leg.crosses_zone { ", detouring around an impassable zone" } else { "" }
            );
            if let Some(stale) = stale_position(team, settings, context.time) {
                reason.push_str("; ");
                reason.push_str(&stale);
            }
            (AssignedResource::Team { team_id: team_id.clone() }, leg, reason, 0)
        }
        HandResource::Supply { depot_id, item_code, quantity } => {
            validate::id("supply.depot_id", depot_id)?;
            let NeedKey::Supply { item_code: needed } = &need.key else {
                return Err(DomainError::invalid("supply", format!("need {need_id} asks for a team, not stock")));
            };
            if !item_code.is_empty() && item_code != needed {
                return Err(DomainError::invalid(
                    "supply.item_code",
                    format!("need {need_id} asks for {needed}, not {item_code}"),
                ));
            }
            if !(1..=MAX_QUANTITY).contains(quantity) {
                return Err(DomainError::invalid("supply.quantity", format!("must be between 1 and {MAX_QUANTITY}")));
            }
            let depot = state.depot(depot_id)?;
            let override_quantity = check_stock(state, need, depot_id, needed, *quantity, incident.level)?;
            if let Some(zone) = zones.containing(depot.position) {
                return Err(DomainError::precondition(format!(
                    "depot {depot_id} is inside impassable zone {zone}; nothing can leave it"
                )));
            }
            let leg = travel::leg(settings, &zones, depot.position, incident.position, settings.convoy_speed_kmh);
            let mut reason = format!(
                "{words}; {quantity} {needed} from {depot_id}, {:.1} km, {:.0} min by convoy",
                leg.distance_km, leg.minutes
            );
            if override_quantity > 0 {
                reason.push_str(&format!("; level I: {override_quantity} taken below the strategic minimum"));
            }
            let resource =
                AssignedResource::Supply { depot_id: depot_id.clone(), item_code: needed.clone(), quantity: *quantity };
            (resource, leg, reason, override_quantity)
        }
    };
    let assignment = Assignment {
        number: state.counters.assignments + 1,
        incident_id: incident.id.clone(),
        need_number: need.number,
        resource,
        status: AssignmentStatus::Dispatched,
        distance_km: leg.distance_km,
        eta_minutes: leg.minutes,
        reason,
        reserve_override: override_quantity > 0,
        override_quantity,
        priority: incident.level,
        created_at: context.time,
        updated_at: context.time,
        issued: false,
        by_hand: true,
        returned_quantity: 0,
        note: String::new(),
    };
    Ok(vec![Event::AssignmentCreated { assignment }])
}

/// The units of `quantity` that would come from below the depot's floor;
/// refuses what the need does not ask for, what the depot does not have
/// (`RESOURCE_EXHAUSTED`) and a broken floor below level I.
fn check_stock(
    state: &State,
    need: &Need,
    depot_id: &str,
    item_code: &str,
    quantity: i64,
    level: Level,
) -> DomainResult<i64> {
    if quantity > need.missing() {
        return Err(DomainError::precondition(format!(
            "need {} asks for {} more {item_code}, not {quantity}",
            need.id(),
            need.missing()
        )));
    }
    let stock = state.stock.get(&(depot_id.to_owned(), item_code.to_owned())).cloned().unwrap_or_default();
    if quantity > stock.available() {
        return Err(DomainError::ResourceExhausted(format!(
            "depot {depot_id} has {} {item_code} available, not {quantity}",
            stock.available()
        )));
    }
    let below_floor = (quantity - stock.above_floor()).max(0);
    if below_floor > 0 && level != Level::I {
        return Err(DomainError::precondition(format!(
            "{quantity} {item_code} from {depot_id} would take {below_floor} below its strategic minimum of {}; \
             only a level-I incident may break a reserve",
            stock.min_reserve
        )));
    }
    Ok(below_floor)
}

fn unavailable(team_id: &str, why: &Unavailable) -> DomainError {
    DomainError::precondition(format!("team {team_id} cannot be assigned: it is {}", why.describe()))
}
