//! When each need was filled and reached, read from the log alone: the
//! after-action report of a live incident and the report of a drill both
//! answer "how long did this need wait", and must answer it the same way.
//!
//! A need is filled when what is assigned to it covers its amount, at the
//! end of the command that made it so. It stops being filled when it
//! reopens (a team declined, an assignment was cancelled or timed out), so
//! only the last fill counts; a cancelled need keeps the fill it had. A
//! need still short when its incident closed was never filled, although the
//! closing lowers or cancels it. A need is reached when the first resource
//! sent to it went `ON_SCENE`.
//!
//! The fold reads only the records about needs and assignments, so it gives
//! the same answer over a whole log or over the records of one incident.

use std::collections::{BTreeMap, BTreeSet};

use super::assignment::AssignmentStatus;
use super::event::{Event, LogRecord};
use super::Timestamp;

/// One need's times.
#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    /// When it was raised.
    pub raised: Timestamp,
    /// When it last became filled whole, if it is (or was, when cancelled).
    pub filled: Option<Timestamp>,
    /// When its first resource arrived on scene.
    pub reached: Option<Timestamp>,
    /// Still short when its incident closed.
    pub closed_short: bool,
    incident_id: String,
    amount: i64,
    assigned: i64,
    cancelled: bool,
}

impl Fill {
    /// What it still lacks (0 when covered or cancelled).
    fn missing(&self) -> i64 {
        if self.cancelled {
            0
        } else {
            (self.amount - self.assigned).max(0)
        }
    }
}

/// A need still short when its incident closed.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedShort {
    /// The need.
    pub need_number: u64,
    /// Its incident.
    pub incident_id: String,
    /// What it lacked just before the closing.
    pub missing: i64,
}

/// The fold: feed it every record in order, with whether the record is the
/// last of its command.
#[derive(Debug, Default)]
pub struct Fills {
    needs: BTreeMap<u64, Fill>,
    /// Assignment number -> (need number, amount).
    assignments: BTreeMap<u64, (u64, i64)>,
    /// Needs the current command touched.
    touched: BTreeSet<u64>,
    /// Needs short at the end of the previous command, and what they lacked.
    short: BTreeMap<u64, i64>,
    /// Incidents the current command closes.
    closing: Vec<String>,
    /// Needs short when their incident closed, in the order of the closings.
    closed_short: Vec<ClosedShort>,
}

impl Fills {
    /// Folds `record`; `command_ends` when the next record belongs to
    /// another command (or there is none).
    pub fn fold(&mut self, record: &LogRecord, command_ends: bool) {
        match &record.event {
            Event::NeedRaised { need } => {
                let fill = Fill {
                    raised: record.time,
                    filled: None,
                    reached: None,
                    closed_short: false,
                    incident_id: need.incident_id.clone(),
                    amount: need.amount,
                    assigned: need.filled,
                    cancelled: need.cancelled,
                };
                self.needs.insert(need.number, fill);
                self.touched.insert(need.number);
            }
            Event::NeedLowered { need_number, amount, .. } => {
                if let Some(fill) = self.needs.get_mut(need_number) {
                    fill.amount = *amount;
                    self.touched.insert(*need_number);
                }
            }
            Event::NeedCancelled { need_number, .. } => {
                if let Some(fill) = self.needs.get_mut(need_number) {
                    fill.cancelled = true;
                    self.touched.insert(*need_number);
                }
            }
            Event::AssignmentCreated { assignment } => {
                self.assignments.insert(assignment.number, (assignment.need_number, assignment.amount()));
                if let Some(fill) = self.needs.get_mut(&assignment.need_number) {
                    fill.assigned += assignment.amount();
                    self.touched.insert(assignment.need_number);
                }
            }
            Event::AssignmentStatusChanged { assignment_number, to, .. } => {
                let Some(&(need_number, amount)) = self.assignments.get(assignment_number) else { return };
                let Some(fill) = self.needs.get_mut(&need_number) else { return };
                match to {
                    // What the domain takes back from the need (`apply_status`).
                    AssignmentStatus::Cancelled | AssignmentStatus::Declined => {
                        fill.assigned -= amount;
                        self.touched.insert(need_number);
                    }
                    AssignmentStatus::OnScene => {
                        fill.reached.get_or_insert(record.time);
                    }
                    _ => {}
                }
            }
            Event::IncidentClosed { incident_id } => self.closing.push(incident_id.clone()),
            _ => {}
        }
        if command_ends {
            self.end_command(record.time);
        }
    }

    fn end_command(&mut self, time: Timestamp) {
        // Short before this command, in an incident it closes: never filled,
        // whatever the closing does to the need.
        let mut closed = Vec::new();
        for incident_id in std::mem::take(&mut self.closing) {
            for (&need_number, &missing) in &self.short {
                if self.needs.get(&need_number).is_some_and(|fill| fill.incident_id == incident_id) {
                    closed.push(ClosedShort { need_number, incident_id: incident_id.clone(), missing });
                }
            }
        }
        for number in std::mem::take(&mut self.touched) {
            let Some(fill) = self.needs.get_mut(&number) else { continue };
            if fill.closed_short {
                continue;
            }
            let filled_now = fill.assigned >= fill.amount && fill.assigned > 0;
            match (fill.filled, filled_now, fill.cancelled) {
                (None, true, _) => fill.filled = Some(time),
                (Some(_), false, false) => fill.filled = None,
                _ => {}
            }
            match fill.missing() {
                0 => self.short.remove(&number),
                missing => self.short.insert(number, missing),
            };
        }
        for closed in closed {
            self.short.remove(&closed.need_number);
            if let Some(fill) = self.needs.get_mut(&closed.need_number) {
                fill.filled = None;
                fill.closed_short = true;
            }
            self.closed_short.push(closed);
        }
    }

    /// The times of need `number`, if it was raised in the records folded.
    pub fn get(&self, number: u64) -> Option<&Fill> {
        self.needs.get(&number)
    }

    /// The needs still short when their incident closed, in the order of
    /// the closings (by need within one).
    pub fn closed_short(&self) -> &[ClosedShort] {
        &self.closed_short
    }

    /// Folds `records`, in order, finding each command's end.
    pub fn of(records: &[LogRecord]) -> Fills {
        let mut fills = Fills::default();
        for (index, record) in records.iter().enumerate() {
            let ends = records.get(index + 1).is_none_or(|next| next.command != record.command);
            fills.fold(record, ends);
        }
        fills
    }
}

/// A small world for the fold's tests and its users': a flood needing one
/// boat team, two boat teams on the roster, and commands at chosen minutes.
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) mod testing {
    use crate::domain::assignment::AssignmentStatus;
    use crate::domain::command::HandResource;
    use crate::domain::import::{Fixture, Sourced, TeamSetting};
    use crate::domain::incident::Declaration;
    use crate::domain::team::TeamProfile;
    use crate::domain::{
        execute, Capability, Command, Context, Hazard, LatLng, Level, LogRecord, State, TeamNeed, Timestamp,
    };

    const T0: i64 = 1_782_885_600;

    /// The time `minutes` after the flood was declared.
    pub(crate) fn minute(minutes: i64) -> Timestamp {
        Timestamp::from_unix_seconds(T0 + minutes * 60)
    }

    /// Runs `command` at `minute(minutes)`, keeping its records.
    pub(crate) fn at(state: &mut State, records: &mut Vec<LogRecord>, minutes: i64, command: Command) {
        let context = Context::new(minute(minutes), "duty officer");
        records.extend(execute(state, &command, &context, None).expect("accepted"));
    }

    fn team(id: &str) -> Sourced<TeamSetting> {
        let profile = TeamProfile {
            name: id.into(),
            organization: String::new(),
            capabilities: vec![Capability { code: "water_rescue".into(), tier: 1 }],
            headcount: 6,
            home: LatLng { lat: 28.2, lng: 112.9 },
            speed_kmh: 60.0,
            insurance_expires: Some(minute(365 * 24 * 60)),
            members: Vec::new(),
        };
        Sourced { source: id.into(), value: TeamSetting { id: id.into(), profile } }
    }

    /// FLOOD-1 needing one boat team (need N1), BOAT-1 and BOAT-2 free, then
    /// `script`; the state and every record.
    pub(crate) fn flood(script: impl FnOnce(&mut State, &mut Vec<LogRecord>)) -> (State, Vec<LogRecord>) {
        let (mut state, mut records) = (State::default(), Vec::new());
        let fixture = Fixture { teams: vec![team("BOAT-1"), team("BOAT-2")], ..Fixture::default() };
        at(&mut state, &mut records, 0, Command::Import { fixture });
        let declaration = Declaration {
            id: "FLOOD-1".into(),
            title: "river flood".into(),
            hazard: Some(Hazard::Flood),
            position: Some(LatLng { lat: 28.25, lng: 112.95 }),
            area: Vec::new(),
            level: Some(Level::II),
            metrics: Default::default(),
            plan_id: None,
        };
        at(&mut state, &mut records, 0, Command::DeclareIncident { declaration });
        let teams = vec![TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: 1 }];
        let request = Command::RequestResources { incident_id: "FLOOD-1".into(), teams, supplies: Vec::new() };
        at(&mut state, &mut records, 0, request);
        script(&mut state, &mut records);
        (state, records)
    }

    /// The operator sends `team_id` to N1.
    pub(crate) fn assign(team_id: &str) -> Command {
        Command::AssignResource {
            need_id: "N1".into(),
            resource: HandResource::Team { team_id: team_id.into() },
            reason: "nearest boat".into(),
        }
    }

    /// Assignment `assignment_id` goes to `status`.
    pub(crate) fn update(assignment_id: &str, status: AssignmentStatus) -> Command {
        Command::UpdateAssignment {
            assignment_id: assignment_id.into(),
            status,
            returned_quantity: 0,
            note: String::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::testing::{assign, at, flood, minute, update};
    use super::*;
    use crate::domain::Command;

    fn need_one(records: &[LogRecord]) -> Fill {
        Fills::of(records).get(1).cloned().expect("N1 was raised")
    }

    #[test]
    fn a_declined_team_does_not_count_as_filling_the_need() {
        let (_, records) = flood(|state, records| {
            at(state, records, 5, assign("BOAT-1"));
            at(state, records, 12, update("A1", AssignmentStatus::Declined));
            at(state, records, 20, assign("BOAT-2"));
            at(state, records, 45, update("A2", AssignmentStatus::OnScene));
        });
        let fill = need_one(&records);
        assert_eq!(fill.raised, minute(0));
        assert_eq!(fill.filled, Some(minute(20)), "filled when BOAT-2 was sent");
        assert_eq!(fill.reached, Some(minute(45)));
    }

    #[test]
    fn a_cancelled_assignment_leaves_the_need_unfilled() {
        let (_, records) = flood(|state, records| {
            at(state, records, 5, assign("BOAT-1"));
            at(state, records, 9, update("A1", AssignmentStatus::Cancelled));
        });
        assert_eq!(need_one(&records).filled, None, "nobody is on the way");
    }

    #[test]
    fn a_need_short_when_its_incident_closed_was_never_filled() {
        let (state, records) = flood(|state, records| {
            at(state, records, 30, Command::CloseIncident { id: "FLOOD-1".into() });
        });
        assert!(state.needs.get(&1).is_some_and(|need| need.missing() == 0), "the closing lowers or cancels it");
        let fills = Fills::of(&records);
        let fill = fills.get(1).expect("N1 was raised");
        assert_eq!(fill.filled, None);
        assert!(fill.closed_short);
        assert_eq!(
            fills.closed_short(),
            [ClosedShort { need_number: 1, incident_id: "FLOOD-1".into(), missing: 1 }],
            "what it lacked before the closing"
        );
    }

    #[test]
    fn a_need_filled_when_its_incident_closed_keeps_its_fill() {
        let (_, records) = flood(|state, records| {
            at(state, records, 5, assign("BOAT-1"));
            at(state, records, 30, Command::CloseIncident { id: "FLOOD-1".into() });
        });
        let fills = Fills::of(&records);
        assert_eq!(fills.get(1).and_then(|fill| fill.filled), Some(minute(5)));
        assert!(fills.closed_short().is_empty());
    }
}
