//! The state: the fold of the log. Persistent maps (`imbl`) make a clone
//! cheap, so the engine can publish a consistent snapshot after every commit
//! while the writer goes on. Every map is ordered, so iteration, listing and
//! the digest never depend on hashing. The large records (teams, stock,
//! incidents, needs, assignments) are held behind `Arc`: a persistent map
//! copies a whole node (up to 64 entries) when one entry changes, and
//! copying 64 pointers costs nothing where copying 64 teams with their
//! members cost most of a status report. `Arc` encodes as what it holds,
//! so the digest and the snapshots are unchanged.

use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::error::{DomainError, DomainResult};
use super::event::{Event, LogRecord};
use super::incident::{self, Incident, Need};
use super::plan::PlanHistory;
use super::reserve::{self, Depot, Item, LedgerEntry, LedgerReason, Stock};
use super::team::Team;
use super::types::Timestamp;

/// Everything Muster knows, as of `last_sequence`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The last log sequence folded in (0: none).
    pub last_sequence: u64,
    /// The time of that record.
    pub last_time: Timestamp,
    /// The roster, by team id.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub teams: OrdMap<String, Arc<Team>>,
    /// The item catalog, by code.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub items: OrdMap<String, Item>,
    /// Depots, by id.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub depots: OrdMap<String, Depot>,
    /// Stock, by (depot id, item code).
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub stock: OrdMap<(String, String), Arc<Stock>>,
    /// Plans, every version, by id.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub plans: OrdMap<String, PlanHistory>,
    /// Incidents, by id.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub incidents: OrdMap<String, Arc<Incident>>,
    /// Needs of every incident, by number.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub needs: OrdMap<u64, Arc<Need>>,
    /// Assignments, by number.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub assignments: OrdMap<u64, Arc<super::assignment::Assignment>>,
    /// Impassable zones (active or lifted), by id.
    #[serde(deserialize_with = "super::cautious::ord_map")]
    pub zones: OrdMap<String, super::zone::Zone>,
    /// Counters for server-assigned ids.
    pub counters: Counters,
    /// Team assignments still `DISPATCHED`, by number (so oldest first):
    /// where the acknowledgement timer looks for its next deadline.
    #[serde(deserialize_with = "super::cautious::ord_set")]
    pub awaiting_acknowledgement: imbl::OrdSet<u64>,
    /// Which records the command being applied has already given a new
    /// version. Bookkeeping of the fold, not state: never encoded, never
    /// compared.
    #[serde(skip)]
    versions: VersionMarks,
    /// Moves with every record but a team's report that changes only its
    /// position: a dispatch planned off the writer at one epoch is still
    /// sound at the same epoch (every need, level, stock, zone, assignment
    /// and team status it read is as it was). Bookkeeping, not state: never
    /// encoded, never compared, and only compared within one process.
    #[serde(skip)]
    dispatch_epoch: DispatchEpoch,
}

/// See [`State::dispatch_epoch`].
#[derive(Clone, Copy, Debug, Default)]
struct DispatchEpoch(u64);

impl PartialEq for DispatchEpoch {
    /// Always equal: the epoch says nothing about the state itself.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// The records whose version the current command has already moved, so that
/// a command moves each record's version exactly once (`api.md`,
/// "Operations": versions step once per command).
#[derive(Clone, Debug, Default)]
struct VersionMarks {
    /// The command (its first record's sequence) these marks belong to.
    command: u64,
    /// Teams already moved.
    teams: std::collections::BTreeSet<String>,
    /// Incidents already moved.
    incidents: std::collections::BTreeSet<String>,
}

impl PartialEq for VersionMarks {
    /// Always equal: the marks say nothing about the state itself.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// The last number handed out for each kind of server-assigned id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Incidents declared (for `INC-<n>`).
    pub incidents: u64,
    /// Needs raised (`N<n>`).
    pub needs: u64,
    /// Assignments made (`A<n>`).
    pub assignments: u64,
}

impl State {
    /// What a dispatch planned on this state depends on, but for team
    /// positions: equal epochs (of one engine) mean a plan made on the
    /// first state commits unchanged on the second.
    pub fn dispatch_epoch(&self) -> u64 {
        self.dispatch_epoch.0
    }

    /// A team, or `NotFound`.
    pub fn team(&self, id: &str) -> DomainResult<&Team> {
        self.teams.get(id).map(|team| &**team).ok_or_else(|| DomainError::not_found("team", id))
    }

    /// Moves team `id`'s version by one, unless the command being applied
    /// has already moved it.
    pub(super) fn touch_team(&mut self, id: &str) {
        if self.versions.teams.insert(id.to_owned()) {
            if let Some(team) = self.teams.get_mut(id).map(std::sync::Arc::make_mut) {
                team.version += 1;
            }
        }
    }

    /// Moves incident `id`'s version by one, unless the command being
    /// applied has already moved it.
    pub(super) fn touch_incident(&mut self, id: &str) {
        if self.versions.incidents.insert(id.to_owned()) {
            if let Some(incident) = self.incidents.get_mut(id).map(std::sync::Arc::make_mut) {
                incident.version += 1;
            }
        }
    }

    /// Folds `event` into a scratch copy of the state, as if it were the next
    /// record of the command being decided: for a `decide` whose later events
    /// depend on its earlier ones. The copy is thrown away; only the events
    /// reach the log (and the copy's versions mean nothing).
    pub fn apply_provisionally(&mut self, event: &Event, time: Timestamp) {
        let sequence = self.last_sequence + 1;
        let record = LogRecord {
            sequence,
            time,
            actor: String::new(),
            request_id: None,
            event: event.clone(),
            command: sequence,
        };
        self.apply(&record);
    }

    /// Folds one record into the state. Records must come in sequence order;
    /// `apply` never fails, because `decide` has already checked everything.
    pub fn apply(&mut self, record: &LogRecord) {
        debug_assert!(record.sequence == self.last_sequence + 1, "log records must be applied in order");
        debug_assert!(record.command <= record.sequence, "a record's command starts at or before it");
        self.last_sequence = record.sequence;
        self.last_time = record.time;
        if record.command != self.versions.command {
            self.versions = VersionMarks { command: record.command, ..VersionMarks::default() };
        }
        let moves_only_a_team = match &record.event {
            Event::TeamStatusReported { team_id, status, .. } => {
                status.is_none() || self.teams.get(team_id).is_some_and(|team| Some(team.status) == *status)
            }
            _ => false,
        };
        if !moves_only_a_team {
            self.dispatch_epoch.0 += 1;
        }
        match &record.event {
            Event::TeamRegistered { team } => {
                self.versions.teams.insert(team.id.clone());
                self.teams.insert(team.id.clone(), Arc::new(team.clone()));
            }
            Event::TeamProfileUpdated { team_id, profile } => {
                if let Some(team) = self.teams.get_mut(team_id).map(std::sync::Arc::make_mut) {
                    team.profile = profile.clone();
                }
                self.touch_team(team_id);
            }
            Event::TeamStatusReported { team_id, status, position } => {
                if let Some(team) = self.teams.get_mut(team_id).map(std::sync::Arc::make_mut) {
                    if let Some(status) = status {
                        team.status = *status;
                    }
                    if let Some(position) = position {
                        team.position = *position;
                    }
                    team.last_report_at = Some(record.time);
                }
                self.touch_team(team_id);
            }
            Event::ItemDefined { item } | Event::ItemUpdated { item } => {
                self.items.insert(item.code.clone(), item.clone());
            }
            Event::DepotRegistered { depot } | Event::DepotUpdated { depot } => {
                self.depots.insert(depot.id.clone(), depot.clone());
            }
            Event::StockAdjusted { depot_id, item_code, delta, reason, note } => {
                let entry = ledger_entry(record, *delta, *reason, note);
                reserve::apply_ledger(self, depot_id, item_code, entry);
            }
            Event::MinReserveSet { depot_id, item_code, min_reserve } => {
                let key = (depot_id.clone(), item_code.clone());
                Arc::make_mut(self.stock.entry(key).or_default()).min_reserve = *min_reserve;
            }
            Event::StockTransferred { from_depot_id, to_depot_id, item_code, quantity, note } => {
                let out = ledger_entry(record, -*quantity, LedgerReason::Transferred, note);
                reserve::apply_ledger(self, from_depot_id, item_code, out);
                let into = ledger_entry(record, *quantity, LedgerReason::Transferred, note);
                reserve::apply_ledger(self, to_depot_id, item_code, into);
            }
            Event::PlanPut { plan } => {
                let mut history = self.plans.get(&plan.id).cloned().unwrap_or_default();
                history.versions.push_back(plan.clone());
                self.plans.insert(plan.id.clone(), history);
            }
            Event::IncidentDeclared { .. }
            | Event::NeedRaised { .. }
            | Event::NeedLowered { .. }
            | Event::NeedCancelled { .. }
            | Event::IncidentLevelChanged { .. }
            | Event::IncidentMetricsUpdated { .. }
            | Event::IncidentStatusChanged { .. }
            | Event::IncidentClosed { .. } => incident::apply(self, &record.event, record.time),
            Event::AssignmentCreated { assignment } => super::assignment::apply_created(self, assignment),
            Event::AssignmentStatusChanged { assignment_number, to, issue, note, .. } => {
                super::assignment::apply_status(self, record, *assignment_number, *to, *issue, note)
            }
            Event::DispatchCompleted { .. } => {}
            Event::ZoneSet { zone } => {
                self.zones.insert(zone.id.clone(), zone.clone());
            }
            Event::ZoneCleared { zone_id } => {
                if let Some(zone) = self.zones.get_mut(zone_id) {
                    zone.active = false;
                }
            }
            Event::StockReturned { assignment_number, depot_id, item_code, quantity, note, .. } => {
                let entry = ledger_entry(record, *quantity, LedgerReason::Returned, note);
                reserve::apply_ledger(self, depot_id, item_code, entry);
                if let Some(assignment) = self.assignments.get_mut(assignment_number).map(std::sync::Arc::make_mut) {
                    assignment.returned_quantity += quantity;
                    let incident_id = assignment.incident_id.clone();
                    self.touch_incident(&incident_id);
                }
            }
            Event::TeamExcluded { need_number, team_id, .. } => {
                if let Some(need) = self.needs.get_mut(need_number).map(std::sync::Arc::make_mut) {
                    if !need.declined_by.contains(team_id) {
                        need.declined_by.push(team_id.clone());
                    }
                    let incident_id = need.incident_id.clone();
                    self.touch_incident(&incident_id);
                }
            }
        }
    }

    /// The SHA-256 of the state's canonical encoding, in hex. Two states with
    /// the same digest are the same state; a replay of the log must give the
    /// live server's digest.
    #[allow(clippy::expect_used)] // An impossibility: fail loudly, never hash an error text.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        // Every field is plain data postcard encodes, and the hasher's writes
        // cannot fail: a failure is a bug every test would show at once.
        postcard::to_io(self, HashWriter(&mut hasher)).expect("the state always encodes");
        hex::encode(hasher.finalize())
    }
}

fn ledger_entry(record: &LogRecord, delta: i64, reason: LedgerReason, note: &str) -> LedgerEntry {
    LedgerEntry {
        sequence: record.sequence,
        delta,
        reason,
        actor: record.actor.clone(),
        note: note.to_owned(),
        time: record.time,
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
