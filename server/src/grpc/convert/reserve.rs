//! Items, depots, stock and the ledger.

use muster_proto::v1 as pb;

use super::common::{position_out, required_position_in, timestamp_out};
use crate::domain::error::{DomainError, DomainResult};

/// An item from protobuf.
pub fn item_in(field: &str, item: Option<pb::Item>) -> DomainResult<crate::domain::reserve::Item> {
    let item = item.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    Ok(crate::domain::reserve::Item { code: item.code, name: item.name, unit: item.unit, category: item.category })
}

/// A domain item as protobuf.
pub fn item_out(item: &crate::domain::reserve::Item) -> pb::Item {
    pb::Item {
        code: item.code.clone(),
        name: item.name.clone(),
        unit: item.unit.clone(),
        category: item.category.clone(),
    }
}

/// A depot from protobuf.
pub fn depot_in(field: &str, depot: Option<pb::Depot>) -> DomainResult<crate::domain::reserve::Depot> {
    let depot = depot.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    Ok(crate::domain::reserve::Depot {
        position: required_position_in(&format!("{field}.position"), depot.position.as_ref())?,
        id: depot.id,
        name: depot.name,
        organization: depot.organization,
    })
}

/// A domain depot as protobuf.
pub fn depot_out(depot: &crate::domain::reserve::Depot) -> pb::Depot {
    pb::Depot {
        id: depot.id.clone(),
        name: depot.name.clone(),
        organization: depot.organization.clone(),
        position: Some(position_out(depot.position)),
    }
}

/// A domain stock level as protobuf.
pub fn stock_out(level: &crate::domain::reserve::StockLevel) -> pb::StockLevel {
    pb::StockLevel {
        depot_id: level.depot_id.clone(),
        item_code: level.item_code.clone(),
        on_hand: level.on_hand,
        reserved: level.reserved,
        available: level.available,
        min_reserve: level.min_reserve,
    }
}

/// A ledger reason; unspecified is `None`.
pub fn ledger_reason_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::reserve::LedgerReason>> {
    use crate::domain::reserve::LedgerReason;
    let reason = pb::LedgerReason::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a LedgerReason")))?;
    Ok(match reason {
        pb::LedgerReason::Unspecified => None,
        pb::LedgerReason::Received => Some(LedgerReason::Received),
        pb::LedgerReason::Issued => Some(LedgerReason::Issued),
        pb::LedgerReason::Consumed => Some(LedgerReason::Consumed),
        pb::LedgerReason::Returned => Some(LedgerReason::Returned),
        pb::LedgerReason::Transferred => Some(LedgerReason::Transferred),
        pb::LedgerReason::Lost => Some(LedgerReason::Lost),
        pb::LedgerReason::Counted => Some(LedgerReason::Counted),
    })
}

/// A domain ledger reason as protobuf.
pub fn ledger_reason_out(reason: crate::domain::reserve::LedgerReason) -> pb::LedgerReason {
    use crate::domain::reserve::LedgerReason;
    match reason {
        LedgerReason::Received => pb::LedgerReason::Received,
        LedgerReason::Issued => pb::LedgerReason::Issued,
        LedgerReason::Consumed => pb::LedgerReason::Consumed,
        LedgerReason::Returned => pb::LedgerReason::Returned,
        LedgerReason::Transferred => pb::LedgerReason::Transferred,
        LedgerReason::Lost => pb::LedgerReason::Lost,
        LedgerReason::Counted => pb::LedgerReason::Counted,
    }
}

/// A ledger entry as protobuf.
pub fn ledger_entry_out(
    depot_id: &str,
    item_code: &str,
    entry: &crate::domain::reserve::LedgerEntry,
) -> pb::LedgerEntry {
    pb::LedgerEntry {
        sequence: entry.sequence,
        depot_id: depot_id.to_owned(),
        item_code: item_code.to_owned(),
        delta: entry.delta,
        reason: ledger_reason_out(entry.reason).into(),
        actor: entry.actor.clone(),
        note: entry.note.clone(),
        time: Some(timestamp_out(entry.time)),
    }
}
