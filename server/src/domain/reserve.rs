//! Supply reserves: the item catalog, depots, stock with its strategic
//! minimum, and the ledger in which every change of `on_hand` is an entry.
//!
//! Invariants (product.md 3 and 4), checked after every command by tests:
//! `0 <= reserved <= on_hand` and `on_hand` is the sum of the ledger.

use imbl::Vector;
use serde::{Deserialize, Serialize};

use super::error::{DomainError, DomainResult};
use super::event::Event;
use super::limits::MAX_QUANTITY;
use super::state::State;
use super::types::{LatLng, Timestamp};
use super::validate;

/// A catalog item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// `[a-z][a-z0-9_]{0,31}`.
    pub code: String,
    /// What it is, in words.
    pub name: String,
    /// The unit it is counted in (bag, set, unit, case).
    pub unit: String,
    /// Its category (flood_control, power, hazmat, shelter, medical, ...).
    pub category: String,
}

impl Item {
    /// Validates an item; `field` prefixes field names.
    pub fn validate(&self, field: &str) -> DomainResult<()> {
        validate::code(&format!("{field}.code"), &self.code)?;
        validate::text(&format!("{field}.name"), &self.name, true)?;
        validate::text(&format!("{field}.unit"), &self.unit, true)?;
        validate::text(&format!("{field}.category"), &self.category, false)
    }
}

/// A reserve warehouse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Depot {
    /// Client-chosen id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Who runs it.
    pub organization: String,
    /// Where it is.
    pub position: LatLng,
}

impl Depot {
    /// Validates a depot; `field` prefixes field names.
    pub fn validate(&self, field: &str) -> DomainResult<()> {
        validate::id(&format!("{field}.id"), &self.id)?;
        validate::text(&format!("{field}.name"), &self.name, true)?;
        validate::text(&format!("{field}.organization"), &self.organization, false)?;
        validate::position(&format!("{field}.position"), &self.position)
    }
}

/// Why `on_hand` changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LedgerReason {
    /// Delivered to the depot.
    Received,
    /// Sent out to an incident.
    Issued,
    /// Used up.
    Consumed,
    /// Came back from an incident.
    Returned,
    /// Moved between depots.
    Transferred,
    /// Lost or destroyed.
    Lost,
    /// Corrected by a stock count.
    Counted,
}

impl LedgerReason {
    /// The reason's name as the CLI writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerReason::Received => "RECEIVED",
            LedgerReason::Issued => "ISSUED",
            LedgerReason::Consumed => "CONSUMED",
            LedgerReason::Returned => "RETURNED",
            LedgerReason::Transferred => "TRANSFERRED",
            LedgerReason::Lost => "LOST",
            LedgerReason::Counted => "COUNTED",
        }
    }

    /// Parses a reason name, case-insensitive.
    pub fn parse(text: &str) -> Option<LedgerReason> {
        let upper = text.to_ascii_uppercase();
        [
            LedgerReason::Received,
            LedgerReason::Issued,
            LedgerReason::Consumed,
            LedgerReason::Returned,
            LedgerReason::Transferred,
            LedgerReason::Lost,
            LedgerReason::Counted,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == upper)
    }

    /// Checks that `delta` has the sign the reason implies: stock comes in
    /// (received, returned), goes out (issued, consumed, lost), or is
    /// corrected either way (counted). Transfers have their own command.
    pub fn check_delta(self, field: &str, delta: i64) -> DomainResult<()> {
        match self {
            LedgerReason::Received | LedgerReason::Returned if delta < 0 => {
                Err(DomainError::invalid(field, format!("{} must be positive", self.as_str())))
            }
            LedgerReason::Issued | LedgerReason::Consumed | LedgerReason::Lost if delta > 0 => {
                Err(DomainError::invalid(field, format!("{} must be negative", self.as_str())))
            }
            LedgerReason::Transferred => Err(DomainError::invalid(
                "reason",
                "TRANSFERRED entries come from TransferStock, which moves both sides at once",
            )),
            _ => Ok(()),
        }
    }
}

/// One change of `on_hand` at one depot for one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The log sequence of the event that made it.
    pub sequence: u64,
    /// The change, positive in, negative out.
    pub delta: i64,
    /// Why.
    pub reason: LedgerReason,
    /// Who.
    pub actor: String,
    /// Free text.
    pub note: String,
    /// When (engine clock).
    pub time: Timestamp,
}

/// Stock of one item at one depot, with its ledger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stock {
    /// Units in the depot.
    pub on_hand: i64,
    /// Units promised to assignments and not yet issued.
    pub reserved: i64,
    /// The strategic floor that dispatch keeps `available` above (but for level I).
    pub min_reserve: i64,
    /// Every change of `on_hand`, oldest first. Entries are behind `Arc`
    /// because a persistent vector allocates whole chunks of 64 of what it
    /// holds: 64 pointers for a stock with one entry, not 64 entries (5 KiB
    /// for each of a city's 20,000 stock levels).
    #[serde(deserialize_with = "super::cautious::vector")]
    pub ledger: Vector<std::sync::Arc<LedgerEntry>>,
}

impl Stock {
    /// `on_hand - reserved`: what may still be promised.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Units that may be promised without going below the strategic floor.
    pub fn above_floor(&self) -> i64 {
        (self.available() - self.min_reserve).max(0)
    }
}

/// Stock as clients see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StockLevel {
    /// The depot.
    pub depot_id: String,
    /// The item.
    pub item_code: String,
    /// Units in the depot.
    pub on_hand: i64,
    /// Units promised.
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
    /// The strategic floor.
    pub min_reserve: i64,
}

impl State {
    /// An item, or `NotFound`.
    pub fn item(&self, code: &str) -> DomainResult<&Item> {
        self.items.get(code).ok_or_else(|| DomainError::not_found("item", code))
    }

    /// A depot, or `NotFound`.
    pub fn depot(&self, id: &str) -> DomainResult<&Depot> {
        self.depots.get(id).ok_or_else(|| DomainError::not_found("depot", id))
    }

    /// The stock level of an item at a depot (zero when nothing was ever held).
    pub fn stock_level(&self, depot_id: &str, item_code: &str) -> DomainResult<StockLevel> {
        self.depot(depot_id)?;
        self.item(item_code)?;
        let key = (depot_id.to_owned(), item_code.to_owned());
        let stock = self.stock.get(&key).cloned().unwrap_or_default();
        Ok(stock_level(&key, &stock))
    }
}

/// A stock row as a level.
pub fn stock_level(key: &(String, String), stock: &Stock) -> StockLevel {
    StockLevel {
        depot_id: key.0.clone(),
        item_code: key.1.clone(),
        on_hand: stock.on_hand,
        reserved: stock.reserved,
        available: stock.available(),
        min_reserve: stock.min_reserve,
    }
}

fn current(state: &State, depot_id: &str, item_code: &str) -> Stock {
    state.stock.get(&(depot_id.to_owned(), item_code.to_owned())).map(|stock| Stock::clone(stock)).unwrap_or_default()
}

/// Adds an item to the catalog.
pub(super) fn define_item(state: &State, item: &Item) -> DomainResult<Vec<Event>> {
    item.validate("item")?;
    if state.items.contains_key(&item.code) {
        return Err(DomainError::already_exists("item", &item.code));
    }
    Ok(vec![Event::ItemDefined { item: item.clone() }])
}

/// Registers a depot.
pub(super) fn register_depot(state: &State, depot: &Depot) -> DomainResult<Vec<Event>> {
    depot.validate("depot")?;
    if state.depots.contains_key(&depot.id) {
        return Err(DomainError::already_exists("depot", &depot.id));
    }
    Ok(vec![Event::DepotRegistered { depot: depot.clone() }])
}

/// Checks a quantity-changing command's ids and returns the current stock.
fn existing_stock(state: &State, depot_field: &str, depot_id: &str, item_code: &str) -> DomainResult<Stock> {
    validate::id(depot_field, depot_id)?;
    validate::code("item_code", item_code)?;
    state.depot(depot_id)?;
    state.item(item_code)?;
    Ok(current(state, depot_id, item_code))
}

/// What an on_hand change to `new_on_hand` would break, if anything.
pub fn check_on_hand(
    field: &str,
    depot_id: &str,
    item_code: &str,
    stock: &Stock,
    new_on_hand: i64,
) -> DomainResult<()> {
    if new_on_hand < 0 {
        return Err(DomainError::exhausted(format!(
            "not enough {item_code} at {depot_id}: {} on hand, the change would leave {new_on_hand}",
            stock.on_hand
        )));
    }
    if new_on_hand < stock.reserved {
        return Err(DomainError::exhausted(format!(
            "not enough {item_code} at {depot_id}: {} of {} on hand are reserved for assignments, \
             the change would leave {new_on_hand}",
            stock.reserved, stock.on_hand
        )));
    }
    if new_on_hand > MAX_QUANTITY {
        return Err(DomainError::invalid(field, format!("on_hand would exceed {MAX_QUANTITY}")));
    }
    Ok(())
}

/// Changes `on_hand` by `delta`, as one ledger entry.
pub(super) fn adjust_stock(
    state: &State,
    depot_id: &str,
    item_code: &str,
    delta: i64,
    reason: Option<LedgerReason>,
    note: &str,
) -> DomainResult<Vec<Event>> {
    let reason = reason.ok_or_else(|| DomainError::invalid("reason", "is required"))?;
    if delta == 0 {
        return Err(DomainError::invalid("delta", "must not be zero"));
    }
    if delta.unsigned_abs() > MAX_QUANTITY.unsigned_abs() {
        return Err(DomainError::invalid("delta", format!("must be at most {MAX_QUANTITY} either way")));
    }
    reason.check_delta("delta", delta)?;
    validate::text("note", note, false)?;
    let stock = existing_stock(state, "depot_id", depot_id, item_code)?;
    check_on_hand("delta", depot_id, item_code, &stock, stock.on_hand + delta)?;
    Ok(vec![Event::StockAdjusted {
        depot_id: depot_id.to_owned(),
        item_code: item_code.to_owned(),
        delta,
        reason,
        note: note.to_owned(),
    }])
}

/// Sets the strategic floor of an item at a depot.
pub(super) fn set_min_reserve(
    state: &State,
    depot_id: &str,
    item_code: &str,
    min_reserve: i64,
) -> DomainResult<Vec<Event>> {
    if !(0..=MAX_QUANTITY).contains(&min_reserve) {
        return Err(DomainError::invalid("min_reserve", format!("must be between 0 and {MAX_QUANTITY}")));
    }
    let stock = existing_stock(state, "depot_id", depot_id, item_code)?;
    if stock.min_reserve == min_reserve && state.stock.contains_key(&(depot_id.to_owned(), item_code.to_owned())) {
        return Ok(Vec::new());
    }
    Ok(vec![Event::MinReserveSet { depot_id: depot_id.to_owned(), item_code: item_code.to_owned(), min_reserve }])
}

/// Moves stock from one depot to another: both sides or neither.
pub(super) fn transfer_stock(
    state: &State,
    from_depot_id: &str,
    to_depot_id: &str,
    item_code: &str,
    quantity: i64,
    note: &str,
) -> DomainResult<Vec<Event>> {
    validate::positive_quantity("quantity", quantity)?;
    validate::text("note", note, false)?;
    let from = existing_stock(state, "from_depot_id", from_depot_id, item_code)?;
    let to = existing_stock(state, "to_depot_id", to_depot_id, item_code)?;
    if from_depot_id == to_depot_id {
        return Err(DomainError::invalid("to_depot_id", "must differ from from_depot_id"));
    }
    check_on_hand("quantity", from_depot_id, item_code, &from, from.on_hand - quantity)?;
    check_on_hand("quantity", to_depot_id, item_code, &to, to.on_hand + quantity)?;
    Ok(vec![Event::StockTransferred {
        from_depot_id: from_depot_id.to_owned(),
        to_depot_id: to_depot_id.to_owned(),
        item_code: item_code.to_owned(),
        quantity,
        note: note.to_owned(),
    }])
}

/// Applies a change of `on_hand` with its ledger entry.
pub(super) fn apply_ledger(state: &mut State, depot_id: &str, item_code: &str, entry: LedgerEntry) {
    let key = (depot_id.to_owned(), item_code.to_owned());
    let stock = std::sync::Arc::make_mut(state.stock.entry(key.clone()).or_default());
    stock.on_hand += entry.delta;
    stock.ledger.push_back(std::sync::Arc::new(entry));
    debug_assert!(stock.on_hand >= stock.reserved && stock.reserved >= 0, "invariant 3 broken at {key:?}");
}
