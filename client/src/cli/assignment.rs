//! `muster dispatch`, `muster assignment ...` and `muster zone ...`: who
//! serves which need, their progress, and the impassable zones.

use clap::Subcommand;
use muster_client::{all_pages, new_request_id, proto as pb, Client};
use tokio_stream::StreamExt;

use super::output::{self, out, Output};
use super::parse;
use super::plan::level_name;

/// An assignment status's name: `DISPATCHED`.
pub fn status_name(status: i32) -> String {
    let name = pb::AssignmentStatus::try_from(status).map(|status| status.as_str_name()).unwrap_or("?");
    output::enum_name(name, "ASSIGNMENT_STATUS_")
}

fn resource(assignment: &pb::Assignment) -> String {
    match &assignment.resource {
        Some(pb::assignment::Resource::TeamId(team_id)) => format!("team {team_id}"),
        Some(pb::assignment::Resource::Supply(supply)) => {
            format!("{} {} from {}", supply.quantity, supply.item_code, supply.depot_id)
        }
        None => "-".to_owned(),
    }
}

/// `muster dispatch`.
pub async fn dispatch(
    client: &Client,
    incident: Option<String>,
    dry_run: bool,
    divert: bool,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::DispatchRequest {
        request_id: new_request_id("cli"),
        incident_id: incident.unwrap_or_default(),
        dry_run,
        divert,
    };
    let incidents = client.incidents();
    let response = muster_client::retry!(incidents, dispatch, request)?;
    if output.json {
        return output.json(&response);
    }
    if response.assignments.is_empty() && response.shortfalls.is_empty() {
        out!("nothing to dispatch: no open needs");
        return Ok(());
    }
    let mut table = output::table(&["assignment", "level", "incident", "need", "resource", "km", "ETA min", "reason"]);
    for assignment in &response.assignments {
        let id = if assignment.id.is_empty() { "(proposed)".to_owned() } else { assignment.id.clone() };
        let flag = if assignment.reserve_override { " [RESERVE OVERRIDE]" } else { "" };
        table.add_row(vec![
            id,
            level_name(assignment.priority),
            assignment.incident_id.clone(),
            assignment.need_id.clone(),
            format!("{}{flag}", resource(assignment)),
            format!("{:.1}", assignment.distance_km),
            format!("{:.0}", assignment.eta_minutes),
            assignment.reason.clone(),
        ]);
    }
    if !response.assignments.is_empty() {
        out!("{table}");
    }
    if !response.shortfalls.is_empty() {
        let mut table = output::table(&["incident", "need", "missing", "why"]);
        for shortfall in &response.shortfalls {
            table.add_row(vec![
                shortfall.incident_id.clone(),
                shortfall.need_id.clone(),
                shortfall.missing.to_string(),
                shortfall.reason.clone(),
            ]);
        }
        out!("shortfalls:\n{table}");
    }
    out!(
        "{} assignment(s){}, {} shortfall(s)",
        response.assignments.len(),
        if dry_run { " proposed (dry run: nothing changed)" } else { "" },
        response.shortfalls.len()
    );
    Ok(())
}

/// Assignment subcommands.
#[derive(Debug, Subcommand)]
pub enum AssignmentCommand {
    /// Lists assignments.
    List {
        /// Only this incident's.
        #[arg(long)]
        incident: Option<String>,
        /// Only this team's.
        #[arg(long)]
        team: Option<String>,
        /// Only active ones (dispatched, acknowledged, en route, on scene).
        #[arg(long)]
        active: bool,
    },
    /// Assigns a chosen team, or a quantity from a chosen depot, to a need by
    /// hand (the dispatcher's rules apply; your reason is recorded).
    Assign {
        /// Need id (N<number>).
        need: String,
        /// The team to send (team needs).
        #[arg(long, conflicts_with_all = ["depot", "quantity"], required_unless_present = "depot")]
        team: Option<String>,
        /// The depot to take stock from (supply needs).
        #[arg(long, requires = "quantity")]
        depot: Option<String>,
        /// Units from the depot.
        #[arg(long)]
        quantity: Option<i64>,
        /// Why, in your words (recorded in the assignment's reason).
        #[arg(long)]
        reason: String,
    },
    /// The team acknowledges.
    Ack {
        /// Assignment id.
        id: String,
    },
    /// Moves an assignment forward: en_route or on_scene (steps may be skipped).
    Advance {
        /// Assignment id.
        id: String,
        /// acknowledged, en_route, on_scene or released.
        #[arg(long, value_parser = parse::assignment_status)]
        to: pb::AssignmentStatus,
    },
    /// Releases an assignment on scene (the work is done; the team returns).
    Release {
        /// Assignment id.
        id: String,
        /// Supplies: units that came back to the depot (entered as RETURNED).
        #[arg(long, default_value_t = 0)]
        returned: i64,
        /// A note for the log.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Cancels an assignment before arrival; that part of the need opens
    /// again, and stock already issued returns to its depot.
    Cancel {
        /// Assignment id.
        id: String,
        /// A note for the log.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The team declines a dispatched assignment; it is not proposed again for that need.
    Decline {
        /// Assignment id.
        id: String,
    },
    /// Prints a team's active assignments, then every change (what the roster app shows).
    Watch {
        /// Team id.
        #[arg(long)]
        team: String,
    },
}

/// Runs a `muster assignment` subcommand.
pub async fn run(client: &Client, command: AssignmentCommand, output: Output) -> anyhow::Result<()> {
    let incidents = client.incidents();
    let (id, status, returned_quantity, note) = match command {
        AssignmentCommand::List { incident, team, active } => {
            let list = all_pages(None, |page_token| {
                let mut incidents = incidents.clone();
                let request = pb::ListAssignmentsRequest {
                    incident_id: incident.clone().unwrap_or_default(),
                    team_id: team.clone().unwrap_or_default(),
                    active_only: active,
                    page_size: 1_000,
                    page_token,
                };
                async move {
                    let page = incidents.list_assignments(request).await?.into_inner();
                    Ok((page.assignments, page.next_page_token))
                }
            })
            .await?;
            return print_assignments(&list, output);
        }
        AssignmentCommand::Watch { team } => {
            let mut stream =
                incidents.clone().watch_assignments(pb::WatchAssignmentsRequest { team_id: team }).await?.into_inner();
            while let Some(assignment) = stream.next().await {
                let assignment = assignment?;
                if output.json {
                    output.json_line(&assignment)?;
                } else {
                    out!(
                        "{} {} for need {} of {}: {} ({:.1} km, {:.0} min)",
                        assignment.id,
                        status_name(assignment.status),
                        assignment.need_id,
                        assignment.incident_id,
                        resource(&assignment),
                        assignment.distance_km,
                        assignment.eta_minutes
                    );
                }
            }
            return Ok(());
        }
        AssignmentCommand::Assign { need, team, depot, quantity, reason } => {
            let resource = match (team, depot) {
                (Some(team), _) => pb::assign_resource_request::Resource::TeamId(team),
                (None, Some(depot_id)) => pb::assign_resource_request::Resource::Supply(pb::SupplyAllocation {
                    depot_id,
                    item_code: String::new(),
                    quantity: quantity.unwrap_or_default(),
                }),
                (None, None) => anyhow::bail!("give --team, or --depot with --quantity"),
            };
            let request = pb::AssignResourceRequest {
                request_id: new_request_id("cli"),
                need_id: need,
                resource: Some(resource),
                reason,
            };
            let assignment = muster_client::retry!(incidents, assign_resource, request)?;
            if !output.json {
                out!("{}", assignment.reason);
            }
            return print_assignments(&[assignment], output);
        }
        AssignmentCommand::Ack { id } => (id, pb::AssignmentStatus::Acknowledged, 0, String::new()),
        AssignmentCommand::Advance { id, to } => (id, to, 0, String::new()),
        AssignmentCommand::Release { id, returned, note } => (id, pb::AssignmentStatus::Released, returned, note),
        AssignmentCommand::Cancel { id, note } => (id, pb::AssignmentStatus::Cancelled, 0, note),
        AssignmentCommand::Decline { id } => (id, pb::AssignmentStatus::Declined, 0, String::new()),
    };
    let request = pb::UpdateAssignmentRequest {
        request_id: new_request_id("cli"),
        assignment_id: id,
        status: status.into(),
        returned_quantity,
        note,
    };
    let assignment = muster_client::retry!(incidents, update_assignment, request)?;
    print_assignments(&[assignment], output)
}

fn print_assignments(assignments: &[pb::Assignment], output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(&assignments);
    }
    let mut table =
        output::table(&["assignment", "status", "level", "incident", "need", "resource", "km", "ETA min", "updated"]);
    for assignment in assignments {
        let flag = if assignment.reserve_override { " [RESERVE OVERRIDE]" } else { "" };
        table.add_row(vec![
            assignment.id.clone(),
            status_name(assignment.status),
            level_name(assignment.priority),
            assignment.incident_id.clone(),
            assignment.need_id.clone(),
            format!("{}{flag}", resource(assignment)),
            format!("{:.1}", assignment.distance_km),
            format!("{:.0}", assignment.eta_minutes),
            output::time(assignment.updated_at.as_ref()),
        ]);
    }
    out!("{table}");
    Ok(())
}

/// Zone subcommands.
#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Sets (or replaces) an impassable zone.
    Set {
        /// Zone id.
        id: String,
        /// The polygon as LAT,LNG;LAT,LNG;... (closes by itself).
        #[arg(long, value_parser = parse::polygon)]
        polygon: parse::Ring,
        /// Why it is impassable.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Lifts a zone.
    Clear {
        /// Zone id.
        id: String,
    },
    /// Lists zones, active and lifted.
    List,
}

/// Runs a `muster zone` subcommand.
pub async fn zone(client: &Client, command: ZoneCommand, output: Output) -> anyhow::Result<()> {
    let incidents = client.incidents();
    let zones = match command {
        ZoneCommand::Set { id, polygon, note } => {
            let request = pb::SetZoneRequest {
                request_id: new_request_id("cli"),
                zone: Some(pb::Zone { id, polygon: polygon.0, note, active: true }),
            };
            vec![muster_client::retry!(incidents, set_zone, request)?]
        }
        ZoneCommand::Clear { id } => {
            let request = pb::ClearZoneRequest { request_id: new_request_id("cli"), id };
            vec![muster_client::retry!(incidents, clear_zone, request)?]
        }
        ZoneCommand::List => {
            all_pages(None, |page_token| {
                let mut incidents = incidents.clone();
                async move {
                    let page =
                        incidents.list_zones(pb::ListZonesRequest { page_size: 1_000, page_token }).await?.into_inner();
                    Ok((page.zones, page.next_page_token))
                }
            })
            .await?
        }
    };
    if output.json {
        return output.json(&zones);
    }
    let mut table = output::table(&["zone", "active", "vertices", "note"]);
    for zone in &zones {
        table.add_row(vec![
            zone.id.clone(),
            zone.active.to_string(),
            zone.polygon.len().to_string(),
            zone.note.clone(),
        ]);
    }
    out!("{table}");
    Ok(())
}
