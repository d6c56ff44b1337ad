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
    fn short(&self) -> bool {
        !self.cancelled && self.assigned < self.amount
    }
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
    /// Needs short at the end of the previous command.
    short: BTreeSet<u64>,
    /// Incidents the current command closes.
    closing: Vec<String>,
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
            closed.extend(
                self.short
                    .iter()
                    .copied()
                    .filter(|number| self.needs.get(number).is_some_and(|fill| fill.incident_id == incident_id)),
            );
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
            if fill.short() {
                self.short.insert(number);
            } else {
                self.short.remove(&number);
            }
        }
        for number in closed {
            self.short.remove(&number);
            if let Some(fill) = self.needs.get_mut(&number) {
                fill.filled = None;
                fill.closed_short = true;
            }
        }
    }

    /// The times of need `number`, if it was raised in the records folded.
    pub fn get(&self, number: u64) -> Option<&Fill> {
        self.needs.get(&number)
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
