//! Commands: what a client asks the engine to change, already translated
//! from the wire into domain types but not yet validated.

use serde::{Deserialize, Serialize};

use super::assignment::AssignmentStatus;
use super::import::Fixture;
use super::incident::{Declaration, IncidentUpdate};
use super::plan::Plan;
use super::reserve::{Depot, Item, LedgerReason};
use super::team::{TeamProfile, TeamStatus};
use super::types::{LatLng, Timestamp};
use super::types::{SupplyNeed, TeamNeed};
use super::zone::Zone;

/// Everything `decide` may know besides the state and the command: the time
/// from the engine's clock, who is asking, the settings, and the dispatcher
/// it may ask for a plan. No wall clock is read anywhere in the domain.
#[derive(Clone, Debug)]
pub struct Context {
    /// The engine clock's time for this command.
    pub time: Timestamp,
    /// Who issued the command.
    pub actor: String,
    /// Travel, acknowledgement timeout and staleness (`[dispatch]`).
    pub settings: super::travel::Settings,
    /// Plans dispatches (the engine hands it `dispatch::DISPATCHER`).
    pub planner: &'static dyn super::dispatching::Planner,
    /// A plan made ahead for this `Dispatch`, off the writer, on a state
    /// whose `dispatch_epoch` the engine has checked is still this one's:
    /// `decide` commits it instead of asking the planner.
    pub prepared: Option<std::sync::Arc<super::dispatching::DispatchPlan>>,
}

impl Context {
    /// A context at `time` for `actor`, with default settings and no
    /// dispatcher (dispatches are refused).
    pub fn new(time: Timestamp, actor: impl Into<String>) -> Self {
        Context {
            time,
            actor: actor.into(),
            settings: super::travel::Settings::default(),
            planner: &super::dispatching::NoPlanner,
            prepared: None,
        }
    }

    /// The same context with `planner` as its dispatcher.
    pub fn with_planner(self, planner: &'static dyn super::dispatching::Planner) -> Self {
        Context { planner, ..self }
    }
}

/// What an operator assigns by hand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HandResource {
    /// A team.
    Team {
        /// The team.
        team_id: String,
    },
    /// Stock of the need's item from a depot.
    Supply {
        /// The depot.
        depot_id: String,
        /// The item (empty: the need's).
        item_code: String,
        /// Units.
        quantity: i64,
    },
}

/// A request to change the state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// `RosterService.RegisterTeam`.
    RegisterTeam {
        /// Client-chosen id.
        id: String,
        /// Roster data.
        profile: TeamProfile,
        /// Initial status (unset: available).
        status: Option<TeamStatus>,
        /// Initial position (unset: home).
        position: Option<LatLng>,
    },
    /// `RosterService.UpdateTeam`.
    UpdateTeam {
        /// The team.
        id: String,
        /// New roster data.
        profile: TeamProfile,
        /// 0: no check.
        expected_version: u64,
    },
    /// `RosterService.ReportStatus`.
    ReportStatus {
        /// The team.
        team_id: String,
        /// New status (unset: unchanged).
        status: Option<TeamStatus>,
        /// New position (unset: unchanged).
        position: Option<LatLng>,
    },
    /// `ReserveService.DefineItem`.
    DefineItem {
        /// The item.
        item: Item,
    },
    /// `ReserveService.RegisterDepot`.
    RegisterDepot {
        /// The depot.
        depot: Depot,
    },
    /// `ReserveService.AdjustStock`.
    AdjustStock {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// The change of on_hand.
        delta: i64,
        /// Why (required).
        reason: Option<LedgerReason>,
        /// Free text.
        note: String,
    },
    /// `ReserveService.SetMinReserve`.
    SetMinReserve {
        /// The depot.
        depot_id: String,
        /// The item.
        item_code: String,
        /// The strategic floor.
        min_reserve: i64,
    },
    /// `ReserveService.TransferStock`.
    TransferStock {
        /// Source depot.
        from_depot_id: String,
        /// Destination depot.
        to_depot_id: String,
        /// The item.
        item_code: String,
        /// Units to move.
        quantity: i64,
        /// Free text.
        note: String,
    },
    /// `ImportService.Import`: a whole fixture, applied atomically.
    Import {
        /// What the file holds.
        fixture: Fixture,
    },
    /// `PlanService.PutPlan`.
    PutPlan {
        /// The plan (its version is the server's).
        plan: Plan,
    },
    /// `IncidentService.DeclareIncident`.
    DeclareIncident {
        /// What was declared.
        declaration: Declaration,
    },
    /// `IncidentService.UpdateIncident`.
    UpdateIncident {
        /// What changes.
        update: IncidentUpdate,
    },
    /// `IncidentService.CloseIncident`.
    CloseIncident {
        /// The incident.
        id: String,
    },
    /// `IncidentService.RequestResources`.
    RequestResources {
        /// The incident.
        incident_id: String,
        /// Teams requested.
        teams: Vec<TeamNeed>,
        /// Supplies requested.
        supplies: Vec<SupplyNeed>,
    },
    /// `IncidentService.Dispatch` (committed; dry runs never reach the engine).
    Dispatch {
        /// One incident, or every incident.
        incident_id: Option<String>,
        /// May take teams from jobs at least two levels less severe.
        divert: bool,
    },
    /// `IncidentService.AssignResource`: an operator's choice.
    AssignResource {
        /// The need.
        need_id: String,
        /// The team, or the depot and quantity.
        resource: HandResource,
        /// The operator's words.
        reason: String,
    },
    /// `IncidentService.UpdateAssignment`.
    UpdateAssignment {
        /// The assignment.
        assignment_id: String,
        /// Where it goes.
        status: AssignmentStatus,
        /// Supplies released: units that came back to the depot.
        returned_quantity: i64,
        /// Free text for the log.
        note: String,
    },
    /// The engine's acknowledgement timer: never sent by a client.
    AcknowledgementTimeout {
        /// The assignment that was not acknowledged in time.
        assignment_id: String,
    },
    /// `IncidentService.SetZone`.
    SetZone {
        /// The zone.
        zone: Zone,
    },
    /// `IncidentService.ClearZone`.
    ClearZone {
        /// The zone.
        id: String,
    },
}

impl Command {
    /// The method's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterTeam { .. } => "RegisterTeam",
            Command::UpdateTeam { .. } => "UpdateTeam",
            Command::ReportStatus { .. } => "ReportStatus",
            Command::DefineItem { .. } => "DefineItem",
            Command::RegisterDepot { .. } => "RegisterDepot",
            Command::AdjustStock { .. } => "AdjustStock",
            Command::SetMinReserve { .. } => "SetMinReserve",
            Command::TransferStock { .. } => "TransferStock",
            Command::Import { .. } => "Import",
            Command::PutPlan { .. } => "PutPlan",
            Command::DeclareIncident { .. } => "DeclareIncident",
            Command::UpdateIncident { .. } => "UpdateIncident",
            Command::CloseIncident { .. } => "CloseIncident",
            Command::RequestResources { .. } => "RequestResources",
            Command::Dispatch { .. } => "Dispatch",
            Command::AssignResource { .. } => "AssignResource",
            Command::AcknowledgementTimeout { .. } => "AcknowledgementTimeout",
            Command::UpdateAssignment { .. } => "UpdateAssignment",
            Command::SetZone { .. } => "SetZone",
            Command::ClearZone { .. } => "ClearZone",
        }
    }
}
