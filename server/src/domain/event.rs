//! Events: the facts the log records, and nothing else. `decide` produces
//! them, `State::apply` folds them; their words and the ids they touch are in
//! `describe.rs`.
//!
//! APPEND ONLY. NEVER REORDER, RENAME THE TYPE OF, OR REMOVE A VARIANT OR A
//! FIELD. The log stores events with postcard, which encodes an enum variant
//! by its position and a struct by its fields in order: a new variant goes
//! at the end of its enum, and a change to any type below (or to a record
//! type an event carries, such as `Team` or `Assignment`) is a new data
//! format (`store::FORMAT_TAG`). `store::tests::records_written_by_format_2_still_decode`
//! decodes records written by an earlier build, byte for byte.

use serde::{Deserialize, Serialize};

use super::assignment::{AssignedResource, Assignment, AssignmentStatus};
use super::incident::{Incident, IncidentStatus, LevelCause, Need};
use super::plan::Plan;
use super::reserve::{Depot, Item, LedgerReason};
use super::team::{Team, TeamProfile, TeamStatus};
use super::types::Level;
use super::types::{LatLng, Timestamp};
use super::zone::Zone;

/// One fact of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A team joined the roster.
    TeamRegistered {
        /// The team as registered (version 1).
        team: Team,
    },
    /// A team's roster data was replaced.
    TeamProfileUpdated {
        /// The team.
        team_id: String,
        /// Its new roster data.
        profile: TeamProfile,
    },
    /// The roster app reported status and/or position (or only a heartbeat).
    TeamStatusReported {
        /// The team.
        team_id: String,
        /// The new status, when it changed.
        status: Option<TeamStatus>,
        /// The new position, when reported.
        position: Option<LatLng>,
    },
    /// An item joined the catalog.
    ItemDefined {
        /// The item.
        item: Item,
    },
    /// A depot was registered.
    DepotRegistered {
        /// The depot.
        depot: Depot,
    },
    /// `on_hand` changed by `delta` (one ledger entry).
    StockAdjusted {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// The change.
        delta: i64,
        /// Why.
        reason: LedgerReason,
        /// Free text.
        note: String,
    },
    /// The strategic floor of an item at a depot was set.
    MinReserveSet {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// The new floor.
        min_reserve: i64,
    },
    /// Stock moved between depots: two ledger entries, one event.
    StockTransferred {
        /// Where it left.
        from_depot_id: String,
        /// Where it arrived.
        to_depot_id: String,
        /// The item.
        item_code: String,
        /// Units moved.
        quantity: i64,
        /// Free text.
        note: String,
    },
    /// An item's catalog entry was replaced (by an import).
    ItemUpdated {
        /// The item as it is now.
        item: Item,
    },
    /// A depot's record was replaced (by an import).
    DepotUpdated {
        /// The depot as it is now.
        depot: Depot,
    },
    /// A new version of a plan was stored.
    PlanPut {
        /// The plan, with its version.
        plan: Plan,
    },
    /// An incident was declared (its needs follow as `NeedRaised`).
    IncidentDeclared {
        /// The incident at version 1.
        incident: Incident,
    },
    /// A need was raised, by the plan or by hand.
    NeedRaised {
        /// The need.
        need: Need,
    },
    /// An open need was lowered (its level dropped).
    NeedLowered {
        /// Its incident.
        incident_id: String,
        /// The need.
        need_number: u64,
        /// Its new amount.
        amount: i64,
    },
    /// A need was cancelled.
    NeedCancelled {
        /// Its incident.
        incident_id: String,
        /// The need.
        need_number: u64,
    },
    /// An incident's level changed.
    IncidentLevelChanged {
        /// The incident.
        incident_id: String,
        /// The old level.
        from: Level,
        /// The new level.
        to: Level,
        /// Operator, or trigger with metric and value.
        cause: LevelCause,
    },
    /// Metric values were recorded.
    IncidentMetricsUpdated {
        /// The incident.
        incident_id: String,
        /// The values that changed.
        metrics: std::collections::BTreeMap<String, f64>,
    },
    /// An incident moved between active and contained.
    IncidentStatusChanged {
        /// The incident.
        incident_id: String,
        /// The new status.
        status: IncidentStatus,
    },
    /// An incident was closed.
    IncidentClosed {
        /// The incident.
        incident_id: String,
    },
    /// The dispatcher (or an operator) assigned a team or stock to a need.
    AssignmentCreated {
        /// The assignment, `DISPATCHED`.
        assignment: Assignment,
    },
    /// An assignment moved on.
    AssignmentStatusChanged {
        /// Its incident.
        incident_id: String,
        /// The assignment.
        assignment_number: u64,
        /// Where it was.
        from: AssignmentStatus,
        /// Where it is.
        to: AssignmentStatus,
        /// Supplies: issue the stock through the ledger now.
        issue: bool,
        /// Why, when not the caller's plain request.
        note: String,
        /// The team or stock it concerns (for watchers and the audit).
        resource: AssignedResource,
    },
    /// A dispatch finished: what it could not fill, and why.
    DispatchCompleted {
        /// The incident dispatched for (`None`: every incident).
        incident_id: Option<String>,
        /// Assignments it made.
        assignments: u64,
        /// Needs it could not fill.
        shortfalls: Vec<Shortfall>,
    },
    /// An impassable zone was set (or replaced).
    ZoneSet {
        /// The zone, active.
        zone: Zone,
    },
    /// An impassable zone was lifted.
    ZoneCleared {
        /// The zone.
        zone_id: String,
    },
    /// Stock issued for a supply assignment came back to its depot: one
    /// `RETURNED` ledger entry naming the assignment.
    StockReturned {
        /// Its incident.
        incident_id: String,
        /// The assignment the stock was issued for.
        assignment_number: u64,
        /// The depot it returns to.
        depot_id: String,
        /// The item.
        item_code: String,
        /// Units returned (at most what was issued).
        quantity: i64,
        /// Why, in words.
        note: String,
    },
    /// A team is not to be proposed again for a need (it declined, or it
    /// never acknowledged an assignment for it).
    TeamExcluded {
        /// Its incident.
        incident_id: String,
        /// The need.
        need_number: u64,
        /// The team.
        team_id: String,
        /// Why, in words.
        reason: String,
    },
}

/// What a dispatch could not fill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    /// The need.
    pub need_number: u64,
    /// Its incident.
    pub incident_id: String,
    /// Teams or units still missing.
    pub missing: i64,
    /// Why, in words.
    pub reason: String,
}

/// An event as the log keeps it: numbered, timed and attributed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// 1, 2, 3, ... without gaps.
    pub sequence: u64,
    /// The engine clock's time of the command.
    pub time: Timestamp,
    /// Who issued the command (`commander`, `team:WR-01`, `import`, ...).
    pub actor: String,
    /// The command's `request_id`, when it had one.
    pub request_id: Option<String>,
    /// The fact.
    pub event: Event,
    /// The sequence of the first record of the command that produced this
    /// one: the records of one command share it. A record's version moves
    /// once per command however many of its events touch it.
    pub command: u64,
}
