//! Drills through a running server: isolation from live data (also with
//! `from_live`), the drill role, stored runs across a restart, and a
//! recorded incident exported as a script whose run reproduces its
//! decisions.

use std::collections::HashMap;
use std::path::Path;

use muster_client::proto as pb;
use muster_tests::{Options, TestServer};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{check_error, register, secret, token};

fn drills_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../drills")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(drills_dir().join(name)).unwrap()
}

/// The flood drill as a client sends it, with its fixtures.
fn flood_request() -> pb::RunDrillRequest {
    let files: HashMap<String, String> =
        ["fixtures/city.toml", "fixtures/plans.toml"].into_iter().map(|name| (name.to_owned(), read(name))).collect();
    pb::RunDrillRequest { script: read("flood.toml"), seed: 0, files, name: "flood.toml".into() }
}

async fn run(client: &muster_client::Client, request: pb::RunDrillRequest) -> Result<pb::DrillReport, tonic::Status> {
    let mut stream = client.drills().run_drill(request).await?.into_inner();
    let mut report = None;
    let mut progress = 0;
    while let Some(update) = stream.next().await {
        match update?.update {
            Some(pb::drill_progress::Update::Progress(_)) => progress += 1,
            Some(pb::drill_progress::Update::Report(done)) => report = Some(done),
            None => {}
        }
    }
    assert!(progress > 0, "a run streams its progress before the report");
    Ok(report.expect("a report ends the stream"))
}

async fn live_world(server: &TestServer) -> muster_client::Client {
    let client = server.client().await;
    for name in ["fixtures/city.toml", "fixtures/plans.toml"] {
        client
            .imports()
            .import(pb::ImportRequest { request_id: String::new(), name: name.into(), toml: read(name) })
            .await
            .unwrap();
    }
    client
}

async fn digest(client: &muster_client::Client) -> pb::Digest {
    client.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner()
}

/// A live flood at Orange Isle, declared with the flood plan.
async fn declare_flood(
    incidents: &mut pb::incident_service_client::IncidentServiceClient<muster_client::AuthChannel>,
    id: &str,
    title: &str,
    level: pb::Level,
) {
    incidents
        .declare_incident(pb::DeclareIncidentRequest {
            incident: Some(pb::Incident {
                id: id.into(),
                title: title.into(),
                hazard: pb::Hazard::Flood.into(),
                position: Some(pb::LatLng { lat: 28.19, lng: 112.96 }),
                level: level.into(),
                ..Default::default()
            }),
            plan_id: "flood".into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_drill_against_a_server_with_live_data_changes_nothing_live() {
    let server = TestServer::start().await;
    let client = live_world(&server).await;
    let mut incidents = client.incidents();
    declare_flood(&mut incidents, "live-flood", "The real one", pb::Level::Iii).await;
    incidents.dispatch(pb::DispatchRequest { incident_id: "live-flood".into(), ..Default::default() }).await.unwrap();
    let before = digest(&client).await;

    let report = run(&client, flood_request()).await.unwrap();
    assert!(report.passed, "{}", report.text);
    assert!(report.run_id.starts_with('R'));
    // A from_live script starts from a copy of this world: the live teams
    // are busy at live-flood, so the copy's teams are as they are now.
    let from_live = r#"
name = "What the live roster can do now"
start = "2026-07-01T06:00:00Z"
from_live = true
[simulation]
ack_after = "00:01:00"
auto_dispatch = true
[[inject]]
at = "+00:00:00"
declare_incident = { id = "copy-flood", hazard = "FLOOD", title = "A second flood", position = [28.25, 112.92], level = "II", plan = "flood" }
[[inject]]
at = "+00:30:00"
team_status = { team = "WR-02", status = "OUT_OF_SERVICE" }
[[expect]]
description = "something is sent"
team_assigned = { team = "WR-01", incident = "copy-flood" }
"#;
    let copy =
        run(&client, pb::RunDrillRequest { script: from_live.into(), name: "copy.toml".into(), ..Default::default() })
            .await
            .unwrap();
    assert!(copy.injects.iter().all(|inject| inject.error.is_empty()), "{}", copy.text);
    let after = digest(&client).await;
    assert_eq!(after, before, "the live log and state are exactly as they were");
    let live_team = client.roster().get_team(pb::GetTeamRequest { id: "WR-02".into(), as_of: None }).await.unwrap();
    assert_ne!(live_team.into_inner().status(), pb::TeamStatus::OutOfService, "the drill's report stayed in the drill");
    let incidents = client.incidents().list_incidents(pb::ListIncidentsRequest::default()).await.unwrap().into_inner();
    assert_eq!(incidents.incidents.iter().map(|incident| incident.id.as_str()).collect::<Vec<_>>(), vec!["live-flood"]);
}

#[tokio::test]
async fn a_drill_token_runs_drills_and_cannot_touch_live_data() {
    let tokens = vec![token("controller", "drill"), token("screen", "observer"), token("officer", "commander")];
    let server = TestServer::start_with(Options { tokens, ..Options::default() }).await;
    let drill = server.client_with_token(&secret("controller")).await;
    let observer = server.client_with_token(&secret("screen")).await;
    let officer = server.client_with_token(&secret("officer")).await;
    officer.roster().register_team(register("WR-01", "")).await.unwrap();
    let before = digest(&officer).await;

    let report = run(&drill, flood_request()).await.unwrap();
    assert!(report.passed);
    check_error(drill.roster().register_team(register("X", "")).await, Code::PermissionDenied, None);
    let status = pb::ReportStatusRequest {
        team_id: "WR-01".into(),
        status: pb::TeamStatus::OutOfService.into(),
        ..Default::default()
    };
    check_error(drill.roster().report_status(status).await, Code::PermissionDenied, None);
    check_error(
        drill.incidents().dispatch(pb::DispatchRequest { ..Default::default() }).await,
        Code::PermissionDenied,
        None,
    );
    check_error(
        drill.roster().get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: None }).await,
        Code::PermissionDenied,
        None,
    );
    check_error(run(&observer, flood_request()).await, Code::PermissionDenied, None);
    check_error(
        observer.drills().list_drill_runs(pb::ListDrillRunsRequest::default()).await,
        Code::PermissionDenied,
        None,
    );
    assert_eq!(digest(&officer).await, before, "nothing live changed");
    let listed = officer.drills().list_drill_runs(pb::ListDrillRunsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.runs.len(), 1, "a commander may read the drills too");
}

#[tokio::test]
async fn stored_runs_survive_a_restart_and_replay_to_their_digest() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let first = run(&client, flood_request()).await.unwrap();
    let server = server.restart().await;
    let client = server.client().await;
    let mut drills = client.drills();
    let stored = drills.get_drill_report(pb::GetDrillReportRequest { run_id: first.run_id.clone() }).await.unwrap();
    let stored = stored.into_inner();
    assert_eq!((stored.digest.as_str(), stored.events), (first.digest.as_str(), first.events));
    let replayed = drills.replay_drill(pb::ReplayDrillRequest { run_id: first.run_id.clone() }).await.unwrap();
    let replayed = replayed.into_inner();
    assert!(replayed.replay_matches, "{}", replayed.divergence);
    let second = run(&client, flood_request()).await.unwrap();
    assert_ne!(second.run_id, first.run_id, "numbering goes on after the restart");
    assert_eq!(second.digest, first.digest, "same script, same seed, same build: same digest");
    let listed = drills.list_drill_runs(pb::ListDrillRunsRequest { page_size: 1, ..Default::default() }).await.unwrap();
    let listed = listed.into_inner();
    assert_eq!(listed.runs.len(), 1);
    assert!(!listed.next_page_token.is_empty(), "a second page");
    check_error(
        drills.get_drill_report(pb::GetDrillReportRequest { run_id: "R999".into() }).await,
        Code::NotFound,
        None,
    );
    check_error(
        drills.run_drill(pb::RunDrillRequest { script: "name = 3".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        None,
    );
}

#[tokio::test]
async fn an_exported_incident_runs_to_the_same_decisions_and_answers_what_if() {
    let server = TestServer::start().await;
    let client = live_world(&server).await;
    let mut incidents = client.incidents();
    declare_flood(&mut incidents, "real-1", "Seepage at the Orange Isle levee", pb::Level::Iv).await;
    let dispatch = pb::DispatchRequest { incident_id: "real-1".into(), ..Default::default() };
    incidents.dispatch(dispatch.clone()).await.unwrap();
    server.clock.advance_seconds(300);
    incidents
        .update_assignment(pb::UpdateAssignmentRequest {
            assignment_id: "A1".into(),
            status: pb::AssignmentStatus::Acknowledged.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    server.clock.advance_seconds(900);
    incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: "real-1".into(),
            metrics: [("water_level_m".to_owned(), 37.4)].into_iter().collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    incidents.dispatch(dispatch).await.unwrap();
    server.clock.advance_seconds(3_600);
    incidents.close_incident(pb::CloseIncidentRequest { id: "real-1".into(), ..Default::default() }).await.unwrap();
    let live: Vec<(String, String)> = incidents
        .list_assignments(pb::ListAssignmentsRequest { incident_id: "real-1".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .assignments
        .iter()
        .map(|assignment| (format!("{:?}", assignment.resource), assignment.status().as_str_name().to_owned()))
        .collect();

    let exported = client
        .drills()
        .export_incident_as_drill(pb::ExportIncidentAsDrillRequest { incident_id: "real-1".into() })
        .await
        .unwrap()
        .into_inner()
        .script;
    let script = muster_server::drill::parse_with_files("real-1.toml", &exported, &Default::default())
        .unwrap_or_else(|error| panic!("{error}\n{exported}"));
    let options = muster_server::drill::RunOptions::default();
    let (run, report) = muster_server::drill::run_and_report(&script, &options, &|_| {}).await.unwrap();
    assert!(report.injects.iter().all(|inject| inject.error.is_none()), "{:?}", report.injects);
    let drilled: Vec<(String, String)> = run
        .state
        .assignments
        .values()
        .map(|assignment| {
            let resource = match &assignment.resource {
                muster_server::domain::assignment::AssignedResource::Team { team_id } => {
                    format!("{:?}", Some(pb::assignment::Resource::TeamId(team_id.clone())))
                }
                muster_server::domain::assignment::AssignedResource::Supply { depot_id, item_code, quantity } => {
                    format!(
                        "{:?}",
                        Some(pb::assignment::Resource::Supply(pb::SupplyAllocation {
                            depot_id: depot_id.clone(),
                            item_code: item_code.clone(),
                            quantity: *quantity,
                        }))
                    )
                }
            };
            (resource, format!("ASSIGNMENT_STATUS_{}", assignment.status.as_str()))
        })
        .collect();
    assert_eq!(drilled, live, "the exported script reproduces the incident's decisions");

    // What if the plan had asked for three water-rescue teams at level III?
    let what_if = exported.replacen(
        "{ capability = \"water_rescue\", min_tier = 2, count = 2 }",
        "{ capability = \"water_rescue\", min_tier = 2, count = 3 }",
        1,
    );
    assert_ne!(what_if, exported, "the level-III figure is in the exported plan");
    let script = muster_server::drill::parse_with_files("what-if.toml", &what_if, &Default::default()).unwrap();
    let (other, _) = muster_server::drill::run_and_report(&script, &options, &|_| {}).await.unwrap();
    assert_eq!(other.state.assignments.len(), run.state.assignments.len() + 1, "one more team is sent");
}

#[tokio::test]
async fn a_drill_report_and_two_runs_side_by_side_render_as_one_html_file() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let first = run(&client, flood_request()).await.unwrap();
    let second = run(&client, pb::RunDrillRequest { seed: 7, ..flood_request() }).await.unwrap();
    let mut drills = client.drills();
    let html = drills
        .render_drill_report(pb::RenderDrillReportRequest { run_id: first.run_id.clone(), compare_with: String::new() })
        .await
        .unwrap()
        .into_inner()
        .body;
    assert!(html.starts_with("<!doctype html>") && !html.contains("src=") && !html.contains("<link"));
    assert!(html.contains(&first.run_id) && html.contains("Expectations"));
    assert!(html.contains("<svg class=\"map\"") && html.contains("<svg class=\"chart\""));
    assert!(html.contains(&format!("seed {}", first.seed)));
    let side_by_side = drills
        .render_drill_report(pb::RenderDrillReportRequest {
            run_id: first.run_id.clone(),
            compare_with: second.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .body;
    assert!(side_by_side.contains("side-by-side"));
    assert!(side_by_side.contains(&first.run_id) && side_by_side.contains(&second.run_id));
    assert_eq!(side_by_side.matches("<svg class=\"map\"").count(), 2);
    let missing = drills
        .render_drill_report(pb::RenderDrillReportRequest { run_id: "R999".into(), compare_with: String::new() })
        .await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
}
