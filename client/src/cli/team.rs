//! `muster team ...`: register, inspect, update and watch the roster.

use clap::{Args, Subcommand};
use muster_client::{all_pages, new_request_id, proto as pb, Client, Timestamp};
use tokio_stream::StreamExt;

use super::output::{self, out, Output};
use super::parse;

/// Roster subcommands.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Registers a new team.
    Register(RegisterArgs),
    /// Shows one team (optionally as it stood at a past time).
    Get {
        /// Team id.
        id: String,
        /// Show the team as it stood at this time (RFC 3339).
        #[arg(long, value_parser = parse::time)]
        as_of: Option<Timestamp>,
    },
    /// Lists teams, by id.
    List {
        /// Only teams with this capability (any tier).
        #[arg(long)]
        capability: Option<String>,
        /// Only teams in this status.
        #[arg(long, value_parser = parse::team_status)]
        status: Option<pb::TeamStatus>,
        /// Stop after this many teams (default: all).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Changes a team's roster data; fields not given keep their value.
    Update(UpdateArgs),
    /// Reports a team's status and/or position (what the roster app does).
    Status {
        /// Team id.
        id: String,
        /// New status.
        #[arg(long, value_parser = parse::team_status)]
        status: Option<pb::TeamStatus>,
        /// New position, LAT,LNG.
        #[arg(long, value_parser = parse::position)]
        position: Option<pb::LatLng>,
        /// Retry key (default: a fresh one).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Prints the roster, then every change as it happens, until interrupted.
    Watch,
}

/// The roster fields a command may set.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Organization.
    #[arg(long)]
    organization: Option<String>,
    /// A capability as CODE:TIER (repeat for several; replaces the list).
    #[arg(long = "capability", value_parser = parse::capability)]
    capabilities: Vec<pb::Capability>,
    /// Number of people.
    #[arg(long)]
    headcount: Option<u32>,
    /// Home base, LAT,LNG.
    #[arg(long, value_parser = parse::position)]
    home: Option<pb::LatLng>,
    /// Road speed in km/h.
    #[arg(long)]
    speed_kmh: Option<f64>,
    /// Accident insurance expiry (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse::time)]
    insurance_expires: Option<Timestamp>,
}

/// `muster team register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Team id, [A-Za-z0-9._-]{1,64}.
    #[arg(long)]
    id: String,
    #[command(flatten)]
    profile: ProfileArgs,
    /// Initial position (default: home), LAT,LNG.
    #[arg(long, value_parser = parse::position)]
    position: Option<pb::LatLng>,
    /// Initial status: available (default) or out_of_service.
    #[arg(long, value_parser = parse::team_status)]
    status: Option<pb::TeamStatus>,
    /// Retry key (default: a fresh one).
    #[arg(long)]
    request_id: Option<String>,
}

/// `muster team update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Team id.
    id: String,
    #[command(flatten)]
    profile: ProfileArgs,
    /// Refuse unless the team is at this version (default: the version just read).
    #[arg(long)]
    expected_version: Option<u64>,
    /// Retry key (default: a fresh one).
    #[arg(long)]
    request_id: Option<String>,
}

impl ProfileArgs {
    fn apply_to(self, team: &mut pb::Team) {
        if let Some(name) = self.name {
            team.name = name;
        }
        if let Some(organization) = self.organization {
            team.organization = organization;
        }
        if !self.capabilities.is_empty() {
            team.capabilities = self.capabilities;
        }
        if let Some(headcount) = self.headcount {
            team.headcount = headcount;
        }
        if let Some(home) = self.home {
            team.home = Some(home);
        }
        if let Some(speed_kmh) = self.speed_kmh {
            team.speed_kmh = speed_kmh;
        }
        if let Some(expires) = self.insurance_expires {
            team.insurance_expires = Some(expires);
        }
    }
}

/// Runs a `muster team` subcommand.
pub async fn run(client: &Client, command: TeamCommand, output: Output) -> anyhow::Result<()> {
    let mut roster = client.roster();
    match command {
        TeamCommand::Register(args) => {
            let mut team = pb::Team { id: args.id, position: args.position, ..pb::Team::default() };
            team.status = args.status.unwrap_or(pb::TeamStatus::Unspecified).into();
            args.profile.apply_to(&mut team);
            let request = pb::RegisterTeamRequest {
                request_id: args.request_id.unwrap_or_else(|| new_request_id("cli")),
                team: Some(team),
            };
            let team = muster_client::retry!(roster, register_team, request)?;
            print_team(&team, output)
        }
        TeamCommand::Get { id, as_of } => {
            let team = roster.get_team(pb::GetTeamRequest { id, as_of }).await?.into_inner();
            print_team(&team, output)
        }
        TeamCommand::List { capability, status, limit } => {
            let teams = all_pages(limit, |page_token| {
                let mut roster = roster.clone();
                let request = pb::ListTeamsRequest {
                    page_size: 1_000,
                    page_token,
                    capability: capability.clone().unwrap_or_default(),
                    status: status.unwrap_or(pb::TeamStatus::Unspecified).into(),
                };
                async move {
                    let page = roster.list_teams(request).await?.into_inner();
                    Ok((page.teams, page.next_page_token))
                }
            })
            .await?;
            print_teams(&teams, output)
        }
        TeamCommand::Update(args) => {
            let mut team = roster.get_team(pb::GetTeamRequest { id: args.id.clone(), as_of: None }).await?.into_inner();
            let expected_version = args.expected_version.unwrap_or(team.version);
            args.profile.apply_to(&mut team);
            let request = pb::UpdateTeamRequest {
                request_id: args.request_id.unwrap_or_else(|| new_request_id("cli")),
                team: Some(team),
                expected_version,
            };
            let team = muster_client::retry!(roster, update_team, request)?;
            print_team(&team, output)
        }
        TeamCommand::Status { id, status, position, request_id } => {
            let request = pb::ReportStatusRequest {
                request_id: request_id.unwrap_or_else(|| new_request_id("cli")),
                team_id: id,
                status: status.unwrap_or(pb::TeamStatus::Unspecified).into(),
                position,
            };
            let team = muster_client::retry!(roster, report_status, request)?;
            print_team(&team, output)
        }
        TeamCommand::Watch => {
            let mut stream = roster.watch_teams(pb::WatchTeamsRequest {}).await?.into_inner();
            while let Some(event) = stream.next().await {
                let event = event?;
                if output.json {
                    output.json_line(&event)?;
                } else if let Some(team) = &event.team {
                    out!(
                        "{:>8}  {:<16} v{:<4} {:<15} {}",
                        event.sequence,
                        team.id,
                        team.version,
                        status_name(team.status),
                        output::position(team.position.as_ref())
                    );
                }
            }
            Ok(())
        }
    }
}

fn status_name(status: i32) -> String {
    let name = pb::TeamStatus::try_from(status).map(|status| status.as_str_name()).unwrap_or("UNKNOWN");
    output::enum_name(name, "TEAM_STATUS_")
}

fn capabilities(team: &pb::Team) -> String {
    team.capabilities
        .iter()
        .map(|capability| format!("{}:{}", capability.code, capability.tier))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_team(team: &pb::Team, output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(team);
    }
    let mut table = output::table(&["field", "value"]);
    table.add_row(vec!["id", &team.id]);
    table.add_row(vec!["name", &team.name]);
    table.add_row(vec!["organization", &team.organization]);
    table.add_row(vec!["status".to_owned(), status_name(team.status)]);
    table.add_row(vec!["capabilities".to_owned(), capabilities(team)]);
    table.add_row(vec!["headcount".to_owned(), team.headcount.to_string()]);
    table.add_row(vec!["home".to_owned(), output::position(team.home.as_ref())]);
    table.add_row(vec!["position".to_owned(), output::position(team.position.as_ref())]);
    table.add_row(vec!["speed_kmh".to_owned(), format!("{}", team.speed_kmh)]);
    table.add_row(vec!["insurance_expires".to_owned(), output::time(team.insurance_expires.as_ref())]);
    table.add_row(vec![
        "assignment".to_owned(),
        if team.assignment_id.is_empty() { "-".to_owned() } else { team.assignment_id.clone() },
    ]);
    table.add_row(vec!["last_report_at".to_owned(), output::time(team.last_report_at.as_ref())]);
    table.add_row(vec!["members".to_owned(), team.members.len().to_string()]);
    table.add_row(vec!["version".to_owned(), team.version.to_string()]);
    out!("{table}");
    Ok(())
}

fn print_teams(teams: &[pb::Team], output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(&teams);
    }
    let mut table =
        output::table(&["id", "name", "status", "capabilities", "people", "position", "insured until", "last report"]);
    for team in teams {
        table.add_row(vec![
            team.id.clone(),
            team.name.clone(),
            status_name(team.status),
            capabilities(team),
            team.headcount.to_string(),
            output::position(team.position.as_ref()),
            output::time(team.insurance_expires.as_ref()),
            output::time(team.last_report_at.as_ref()),
        ]);
    }
    out!("{table}");
    out!("{} team(s)", teams.len());
    Ok(())
}
