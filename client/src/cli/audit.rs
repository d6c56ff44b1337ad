//! `muster audit`: the event log, for review.

use clap::Args;
use muster_client::{all_pages, proto as pb, Client, Timestamp};

use super::output::{self, out, Output};
use super::parse;

/// `muster audit` filters.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events about this incident (its needs and assignments included).
    #[arg(long)]
    incident: Option<String>,
    /// Only events about this team.
    #[arg(long)]
    team: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_parser = parse::time)]
    since: Option<Timestamp>,
    /// At most this many events.
    #[arg(long)]
    limit: Option<usize>,
}

/// Runs `muster audit`.
pub async fn run(client: &Client, args: AuditArgs, output: Output) -> anyhow::Result<()> {
    let audit = client.audit();
    let events = all_pages(args.limit, |page_token| {
        let mut audit = audit.clone();
        let request = pb::ListEventsRequest {
            incident_id: args.incident.clone().unwrap_or_default(),
            team_id: args.team.clone().unwrap_or_default(),
            since: args.since,
            page_size: 1_000,
            page_token,
        };
        async move {
            let page = audit.list_events(request).await?.into_inner();
            Ok((page.events, page.next_page_token))
        }
    })
    .await?;
    if output.json {
        return output.json(&events);
    }
    let mut table = output::table(&["seq", "time", "actor", "request", "kind", "what happened"]);
    for event in &events {
        table.add_row(vec![
            event.sequence.to_string(),
            output::time(event.time.as_ref()),
            event.actor.clone(),
            event.request_id.clone(),
            event.kind.clone(),
            event.summary.clone(),
        ]);
    }
    out!("{table}");
    Ok(())
}
