//! Impassable zones: polygons (a flooded district, a cordon) set and lifted
//! by an operator or a drill. Teams and depots inside an active zone are not
//! dispatched; routes across one cost more (the dispatcher's business).

use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::Event;
use super::state::State;
use super::types::LatLng;
use super::validate;

/// An impassable zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// Client-chosen id.
    pub id: String,
    /// The ring (closes by itself; the boundary counts as inside).
    pub polygon: Vec<LatLng>,
    /// Why it is impassable.
    pub note: String,
    /// False once lifted.
    pub active: bool,
}

/// Sets (or replaces) a zone; it is active from now on.
pub(super) fn set(zone: &Zone) -> DomainResult<Vec<Event>> {
    validate::id("zone.id", &zone.id)?;
    validate::polygon("zone.polygon", &zone.polygon)?;
    validate::text("zone.note", &zone.note, false)?;
    Ok(vec![Event::ZoneSet { zone: Zone { active: true, ..zone.clone() } }])
}

/// Lifts a zone.
pub(super) fn clear(state: &State, id: &str) -> DomainResult<Vec<Event>> {
    validate::id("id", id)?;
    let zone = state.zones.get(id).ok_or_else(|| DomainError::not_found("zone", id))?;
    if !zone.active {
        return Err(DomainError::precondition(format!("zone {id} is already lifted")));
    }
    Ok(vec![Event::ZoneCleared { zone_id: id.to_owned() }])
}
