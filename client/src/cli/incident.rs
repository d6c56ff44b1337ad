//! `muster incident ...`: declare, escalate, request, close and watch incidents.

use clap::{Args, Subcommand};
use muster_client::{all_pages, new_request_id, proto as pb, Client, Timestamp};
use tokio_stream::StreamExt;

use super::output::{self, out, Output};
use super::parse;
use super::plan::{hazard_name, level_name};

/// Incident subcommands.
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Declares an incident, optionally activating a plan.
    Declare(DeclareArgs),
    /// Shows an incident and its needs (optionally as it stood at a past time).
    Get {
        /// Incident id.
        id: String,
        /// Show it as it stood at this time (RFC 3339).
        #[arg(long, value_parser = parse::time)]
        as_of: Option<Timestamp>,
    },
    /// Lists incidents.
    List {
        /// Only incidents in this status (active, contained, closed).
        #[arg(long, value_parser = parse::incident_status)]
        status: Option<pb::IncidentStatus>,
    },
    /// Changes the level (escalate or de-escalate), records metrics (which may
    /// escalate through the plan's triggers), or marks it contained/active.
    Update {
        /// Incident id.
        id: String,
        /// New level: I, II, III or IV.
        #[arg(long, value_parser = parse::level)]
        level: Option<pb::Level>,
        /// A metric as NAME=VALUE (repeat).
        #[arg(long = "metric", value_parser = parse::metric)]
        metrics: Vec<(String, f64)>,
        /// active or contained.
        #[arg(long, value_parser = parse::incident_status)]
        status: Option<pb::IncidentStatus>,
    },
    /// Closes an incident: releases what it holds and cancels open needs.
    Close {
        /// Incident id.
        id: String,
    },
    /// The incident's needs: what, how many, filled, status.
    Needs {
        /// Incident id.
        id: String,
    },
    /// Requests resources by hand (never changed by level changes).
    Request {
        /// Incident id.
        id: String,
        /// Teams as CAPABILITY:MIN_TIER:COUNT (repeat).
        #[arg(long = "team", value_parser = parse::team_need)]
        teams: Vec<pb::TeamNeed>,
        /// Supplies as ITEM:QUANTITY (repeat).
        #[arg(long = "supply", value_parser = parse::supply_need)]
        supplies: Vec<pb::SupplyNeed>,
    },
    /// Prints incidents, then every change to an incident, need or assignment.
    Watch {
        /// Only this incident.
        id: Option<String>,
    },
}

/// `muster incident declare`.
#[derive(Debug, Args)]
pub struct DeclareArgs {
    /// Incident id (default: assigned by the server).
    #[arg(long, default_value = "")]
    id: String,
    /// What is happening.
    #[arg(long)]
    title: String,
    /// flood, hazmat, power_outage, fire, earthquake, mine, forest_fire, other.
    #[arg(long, value_parser = parse::hazard)]
    hazard: pb::Hazard,
    /// Position, LAT,LNG.
    #[arg(long, value_parser = parse::position)]
    position: pb::LatLng,
    /// Response level: I, II, III or IV.
    #[arg(long, value_parser = parse::level)]
    level: pb::Level,
    /// The plan to activate.
    #[arg(long)]
    plan: Option<String>,
    /// A metric as NAME=VALUE (repeat).
    #[arg(long = "metric", value_parser = parse::metric)]
    metrics: Vec<(String, f64)>,
    /// Affected area as LAT,LNG;LAT,LNG;... (three points or more).
    #[arg(long, value_parser = parse::polygon)]
    area: Option<parse::Ring>,
}

/// Runs a `muster incident` subcommand.
pub async fn run(client: &Client, command: IncidentCommand, output: Output) -> anyhow::Result<()> {
    let incidents = client.incidents();
    match command {
        IncidentCommand::Declare(args) => {
            let request = pb::DeclareIncidentRequest {
                request_id: new_request_id("cli"),
                incident: Some(pb::Incident {
                    id: args.id,
                    title: args.title,
                    hazard: args.hazard.into(),
                    position: Some(args.position),
                    area: args.area.map(|ring| ring.0).unwrap_or_default(),
                    level: args.level.into(),
                    metrics: args.metrics.into_iter().collect(),
                    ..pb::Incident::default()
                }),
                plan_id: args.plan.unwrap_or_default(),
            };
            let incident = muster_client::retry!(incidents, declare_incident, request)?;
            print_incident(&incident, output)
        }
        IncidentCommand::Get { id, as_of } => {
            let incident = incidents.clone().get_incident(pb::GetIncidentRequest { id, as_of }).await?.into_inner();
            print_incident(&incident, output)
        }
        IncidentCommand::List { status } => {
            let status = status.unwrap_or(pb::IncidentStatus::Unspecified);
            let list = all_pages(None, |page_token| {
                let mut incidents = incidents.clone();
                let request = pb::ListIncidentsRequest { status: status.into(), page_size: 1_000, page_token };
                async move {
                    let page = incidents.list_incidents(request).await?.into_inner();
                    Ok((page.incidents, page.next_page_token))
                }
            })
            .await?;
            if output.json {
                return output.json(&list);
            }
            let mut table =
                output::table(&["id", "title", "hazard", "level", "status", "plan", "open needs", "declared"]);
            for incident in &list {
                let open = incident.needs.iter().filter(|need| is_open(need)).count();
                table.add_row(vec![
                    incident.id.clone(),
                    incident.title.clone(),
                    hazard_name(incident.hazard),
                    level_name(incident.level),
                    status_name(incident.status),
                    plan_label(incident),
                    open.to_string(),
                    output::time(incident.declared_at.as_ref()),
                ]);
            }
            out!("{table}");
            Ok(())
        }
        IncidentCommand::Update { id, level, metrics, status } => {
            let request = pb::UpdateIncidentRequest {
                request_id: new_request_id("cli"),
                id,
                level: level.unwrap_or(pb::Level::Unspecified).into(),
                metrics: metrics.into_iter().collect(),
                status: status.unwrap_or(pb::IncidentStatus::Unspecified).into(),
            };
            let incident = muster_client::retry!(incidents, update_incident, request)?;
            print_incident(&incident, output)
        }
        IncidentCommand::Close { id } => {
            let request = pb::CloseIncidentRequest { request_id: new_request_id("cli"), id };
            let incident = muster_client::retry!(incidents, close_incident, request)?;
            print_incident(&incident, output)
        }
        IncidentCommand::Needs { id } => {
            let incident =
                incidents.clone().get_incident(pb::GetIncidentRequest { id, as_of: None }).await?.into_inner();
            if output.json {
                return output.json(&incident.needs);
            }
            print_needs(&incident.needs);
            Ok(())
        }
        IncidentCommand::Request { id, teams, supplies } => {
            let request =
                pb::RequestResourcesRequest { request_id: new_request_id("cli"), incident_id: id, teams, supplies };
            let incident = muster_client::retry!(incidents, request_resources, request)?;
            print_incident(&incident, output)
        }
        IncidentCommand::Watch { id } => {
            let request = pb::WatchIncidentsRequest { incident_id: id.unwrap_or_default() };
            let mut stream = incidents.clone().watch_incidents(request).await?.into_inner();
            while let Some(event) = stream.next().await {
                let event = event?;
                if output.json {
                    output.json_line(&event)?;
                    continue;
                }
                match &event.change {
                    Some(pb::incident_event::Change::Incident(incident)) => out!(
                        "{:>8}  incident {} level {} {} v{} ({} open needs)",
                        event.sequence,
                        incident.id,
                        level_name(incident.level),
                        status_name(incident.status),
                        incident.version,
                        incident.needs.iter().filter(|need| is_open(need)).count()
                    ),
                    Some(pb::incident_event::Change::Need(need)) => out!(
                        "{:>8}  need {} of {}: {} filled {} {}",
                        event.sequence,
                        need.id,
                        need.incident_id,
                        describe_need(need),
                        need.filled,
                        need_status_name(need.status)
                    ),
                    Some(pb::incident_event::Change::Assignment(assignment)) => out!(
                        "{:>8}  assignment {} of {} for need {}: {}",
                        event.sequence,
                        assignment.id,
                        assignment.incident_id,
                        assignment.need_id,
                        super::assignment::status_name(assignment.status)
                    ),
                    None => {}
                }
            }
            Ok(())
        }
    }
}

fn is_open(need: &pb::Need) -> bool {
    matches!(pb::NeedStatus::try_from(need.status), Ok(pb::NeedStatus::Open | pb::NeedStatus::Partial))
}

fn status_name(status: i32) -> String {
    let name = pb::IncidentStatus::try_from(status).map(|status| status.as_str_name()).unwrap_or("?");
    output::enum_name(name, "INCIDENT_STATUS_")
}

fn need_status_name(status: i32) -> String {
    let name = pb::NeedStatus::try_from(status).map(|status| status.as_str_name()).unwrap_or("?");
    output::enum_name(name, "NEED_STATUS_")
}

fn plan_label(incident: &pb::Incident) -> String {
    if incident.plan_id.is_empty() {
        "-".to_owned()
    } else {
        format!("{} v{}", incident.plan_id, incident.plan_version)
    }
}

/// What a need asks for, in words.
pub fn describe_need(need: &pb::Need) -> String {
    match &need.resource {
        Some(pb::need::Resource::Team(team)) => {
            format!("{} x {} (tier <= {})", team.count, team.capability, team.min_tier)
        }
        Some(pb::need::Resource::Supply(supply)) => format!("{} {}", supply.quantity, supply.item_code),
        None => "-".to_owned(),
    }
}

fn print_needs(needs: &[pb::Need]) {
    let mut table = output::table(&["need", "what", "filled", "status", "source", "raised"]);
    for need in needs {
        table.add_row(vec![
            need.id.clone(),
            describe_need(need),
            need.filled.to_string(),
            need_status_name(need.status),
            if need.from_plan { "plan".to_owned() } else { "request".to_owned() },
            output::time(need.raised_at.as_ref()),
        ]);
    }
    out!("{table}");
}

fn print_incident(incident: &pb::Incident, output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(incident);
    }
    out!(
        "{}: {} [{}] level {} {} (plan {}) at {}, declared {}, version {}",
        incident.id,
        incident.title,
        hazard_name(incident.hazard),
        level_name(incident.level),
        status_name(incident.status),
        plan_label(incident),
        output::position(incident.position.as_ref()),
        output::time(incident.declared_at.as_ref()),
        incident.version
    );
    if !incident.metrics.is_empty() {
        let mut metrics: Vec<_> = incident.metrics.iter().collect();
        metrics.sort_by(|left, right| left.0.cmp(right.0));
        let text: Vec<_> = metrics.iter().map(|(name, value)| format!("{name} = {value}")).collect();
        out!("metrics: {}", text.join(", "));
    }
    print_needs(&incident.needs);
    Ok(())
}
