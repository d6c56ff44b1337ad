//! `muster report` and `muster export`: documents the server renders (the
//! after-action report, GeoJSON), written to a file or standard output.

use std::path::PathBuf;

use clap::Subcommand;
use muster_client::proto as pb;
use muster_client::Client;

/// `muster report ...`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// An incident's after-action report: one self-contained HTML file (map,
    /// timeline, time to fill and to arrive per need, shortfalls, reserve
    /// overrides) that opens in any browser, offline.
    Incident {
        /// The incident.
        id: String,
        /// Where to write it.
        #[arg(long)]
        html: PathBuf,
    },
}

/// `muster export ...`
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The open situation as GeoJSON (teams, depots, incidents and areas,
    /// zones, assignments; each feature's `layer` property says which), for
    /// QGIS or any GIS.
    Geojson {
        /// Only this open incident, its assignments and their teams and depots.
        #[arg(long)]
        incident: Option<String>,
        /// Write to this file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs `muster report ...`.
pub async fn report(client: &Client, command: ReportCommand) -> anyhow::Result<()> {
    match command {
        ReportCommand::Incident { id, html } => {
            let document = client
                .exports()
                .incident_report(pb::IncidentReportRequest { incident_id: id.clone() })
                .await?
                .into_inner();
            super::output::write_file(&html, &document.body)?;
            eprintln!("wrote the after-action report of {id} to {}", html.display());
            Ok(())
        }
    }
}

/// Runs `muster export ...`.
pub async fn export(client: &Client, command: ExportCommand) -> anyhow::Result<()> {
    match command {
        ExportCommand::Geojson { incident, out } => {
            let request = pb::SituationGeoJsonRequest { incident_id: incident.unwrap_or_default() };
            let document = client.exports().situation_geo_json(request).await?.into_inner();
            match out {
                Some(path) => super::output::write_file(&path, &document.body),
                None => {
                    super::output::out!("{}", document.body);
                    Ok(())
                }
            }
        }
    }
}
