//! Dispatch end to end: a world where closest-first is wrong, dry runs,
//! the assignment lifecycle with stock and team status, declines, cancels,
//! out-of-service teams, closing, zones, the roster app's watch, and errors.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{check_error, team_of, Incidents};

pub(crate) const WORLD: &str = r#"
[[item]]
code = "pump"
name = "Pump, 100 m3/h"
unit = "unit"

[[depot]]
id = "D-NEAR"
name = "Near depot"
position = [28.200, 112.950]

[[depot]]
id = "D-FAR"
name = "Far depot"
position = [28.300, 112.950]

[[stock]]
depot = "D-NEAR"
item = "pump"
on_hand = 4
min_reserve = 3

[[stock]]
depot = "D-FAR"
item = "pump"
on_hand = 5
min_reserve = 2

[[team]]
id = "W-NEAR"
name = "Water rescue near"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 8
home = [28.200, 112.950]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[team]]
id = "W-FAR"
name = "Water rescue far"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 8
home = [28.200, 112.900]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"
"#;

async fn world(server: &TestServer) -> Incidents {
    let client = server.client().await;
    client
        .imports()
        .import(pb::ImportRequest { request_id: String::new(), name: "world.toml".into(), toml: WORLD.into() })
        .await
        .unwrap();
    client.incidents()
}

pub(crate) async fn declare(
    incidents: &mut Incidents,
    id: &str,
    lat: f64,
    lng: f64,
    level: pb::Level,
    teams: u32,
    pumps: i64,
) {
    incidents
        .declare_incident(pb::DeclareIncidentRequest {
            request_id: String::new(),
            incident: Some(pb::Incident {
                id: id.into(),
                title: format!("flooding at {id}"),
                hazard: pb::Hazard::Flood.into(),
                position: Some(pb::LatLng { lat, lng }),
                level: level.into(),
                ..Default::default()
            }),
            plan_id: String::new(),
        })
        .await
        .unwrap();
    let teams = if teams > 0 {
        vec![pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: teams }]
    } else {
        vec![]
    };
    let supplies = if pumps > 0 { vec![pb::SupplyNeed { item_code: "pump".into(), quantity: pumps }] } else { vec![] };
    incidents
        .request_resources(pb::RequestResourcesRequest {
            request_id: String::new(),
            incident_id: id.into(),
            teams,
            supplies,
        })
        .await
        .unwrap();
}

async fn dispatch(incidents: &mut Incidents, incident: &str, dry_run: bool) -> pb::DispatchResponse {
    incidents
        .dispatch(pb::DispatchRequest { incident_id: incident.into(), dry_run, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

async fn advance(
    incidents: &mut Incidents,
    id: &str,
    status: pb::AssignmentStatus,
) -> Result<pb::Assignment, tonic::Status> {
    incidents
        .update_assignment(pb::UpdateAssignmentRequest {
            request_id: String::new(),
            assignment_id: id.into(),
            status: status.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn team(server: &TestServer, id: &str) -> pb::Team {
    server
        .client()
        .await
        .roster()
        .get_team(pb::GetTeamRequest { id: id.into(), as_of: None })
        .await
        .unwrap()
        .into_inner()
}

async fn stock(server: &TestServer, depot: &str) -> pb::StockLevel {
    server
        .client()
        .await
        .reserve()
        .get_stock(pb::GetStockRequest { depot_id: depot.into(), item_code: "pump".into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn the_dispatcher_beats_closest_first_and_a_dry_run_changes_nothing() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "A", 28.200, 112.927, pb::Level::Ii, 1, 0).await;
    declare(&mut incidents, "B", 28.200, 112.975, pb::Level::Ii, 1, 0).await;
    let digest =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    let proposed = dispatch(&mut incidents, "", true).await;
    assert!(proposed
        .assignments
        .iter()
        .all(|assignment| assignment.status() == pb::AssignmentStatus::Proposed && assignment.id.is_empty()));
    let pairs: Vec<_> =
        proposed.assignments.iter().map(|assignment| (assignment.incident_id.as_str(), team_of(assignment))).collect();
    assert_eq!(pairs, vec![("A", "W-FAR"), ("B", "W-NEAR")], "W-NEAR is nearer to both; it goes where it saves most");
    let after =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    assert_eq!(after, digest, "a dry run changes nothing");

    let committed = dispatch(&mut incidents, "", false).await;
    let pairs: Vec<_> =
        committed.assignments.iter().map(|assignment| (assignment.incident_id.as_str(), team_of(assignment))).collect();
    assert_eq!(pairs, vec![("A", "W-FAR"), ("B", "W-NEAR")], "the commit does what the dry run proposed");
    assert!(committed.assignments.iter().all(|assignment| assignment.status() == pb::AssignmentStatus::Dispatched));
    assert!(committed.assignments.iter().all(|assignment| assignment.distance_km > 0.0
        && assignment.eta_minutes > 0.0
        && !assignment.reason.is_empty()));
    let near = team(&server, "W-NEAR").await;
    assert_eq!(near.status(), pb::TeamStatus::Assigned);
    assert_eq!(near.assignment_id, committed.assignments[1].id);
    let team_events = server
        .client()
        .await
        .audit()
        .list_events(pb::ListEventsRequest { team_id: "W-NEAR".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(team_events.last().map(|event| event.kind.as_str()), Some("AssignmentCreated"));
    let again = dispatch(&mut incidents, "", false).await;
    assert!(again.assignments.is_empty() && again.shortfalls.is_empty(), "nothing left to do is OK with empty lists");
}

#[tokio::test]
async fn supplies_reserve_then_issue_through_the_ledger_and_level_i_overrides_only_what_it_must() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "LOW", 28.21, 112.95, pb::Level::Iii, 0, 5).await;
    let low = dispatch(&mut incidents, "LOW", false).await;
    let units: i64 = low
        .assignments
        .iter()
        .map(|assignment| match &assignment.resource {
            Some(pb::assignment::Resource::Supply(supply)) => supply.quantity,
            _ => 0,
        })
        .sum();
    assert_eq!(units, 1 + 3, "only what lies above the floors (1 near, 3 far)");
    assert!(low.assignments.iter().all(|assignment| !assignment.reserve_override));
    assert_eq!(low.shortfalls.len(), 1);
    assert_eq!(low.shortfalls[0].missing, 1);
    assert!(low.shortfalls[0].reason.contains("only level-I incidents"), "{}", low.shortfalls[0].reason);
    let near = stock(&server, "D-NEAR").await;
    assert_eq!((near.on_hand, near.reserved, near.available), (4, 1, 3), "reserved on dispatch");

    declare(&mut incidents, "HIGH", 28.21, 112.95, pb::Level::I, 0, 3).await;
    let high = dispatch(&mut incidents, "HIGH", false).await;
    assert!(high.assignments.iter().all(|assignment| assignment.reserve_override), "{:?}", high.assignments);
    let near = stock(&server, "D-NEAR").await;
    assert_eq!(near.reserved, 4, "level I takes the near depot's reserve first (nearest below-floor stock)");

    let first = low.assignments.iter().find(|assignment| matches!(&assignment.resource, Some(pb::assignment::Resource::Supply(supply)) if supply.depot_id == "D-NEAR")).unwrap();
    let moved = advance(&mut incidents, &first.id, pb::AssignmentStatus::EnRoute).await.unwrap();
    assert_eq!(moved.status(), pb::AssignmentStatus::EnRoute);
    let near = stock(&server, "D-NEAR").await;
    assert_eq!((near.on_hand, near.reserved), (3, 3), "issued: on hand and reserved both drop");
    let ledger = server
        .client()
        .await
        .reserve()
        .list_ledger(pb::ListLedgerRequest {
            depot_id: "D-NEAR".into(),
            item_code: "pump".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let issued = ledger.last().unwrap();
    assert_eq!((issued.reason(), issued.delta), (pb::LedgerReason::Issued, -1));
    assert!(issued.note.contains(&first.id), "{}", issued.note);

    let far = low.assignments.iter().find(|assignment| matches!(&assignment.resource, Some(pb::assignment::Resource::Supply(supply)) if supply.depot_id == "D-FAR")).unwrap();
    advance(&mut incidents, &far.id, pb::AssignmentStatus::Cancelled).await.unwrap();
    let far_stock = stock(&server, "D-FAR").await;
    assert_eq!((far_stock.on_hand, far_stock.reserved), (5, 0), "cancelled before leaving: unreserved");
}

#[tokio::test]
async fn the_team_lifecycle_moves_forward_only_and_cancel_or_decline_reopen_the_need() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 0).await;
    let first = dispatch(&mut incidents, "A", false).await.assignments.remove(0);
    assert_eq!(team_of(&first), "W-NEAR");

    let declined = advance(&mut incidents, &first.id, pb::AssignmentStatus::Declined).await.unwrap();
    assert_eq!(declined.status(), pb::AssignmentStatus::Declined);
    assert_eq!(team(&server, "W-NEAR").await.status(), pb::TeamStatus::Available);
    let second = dispatch(&mut incidents, "A", false).await.assignments.remove(0);
    assert_eq!(team_of(&second), "W-FAR", "a declining team is not proposed again for that need");

    check_error(
        advance(&mut incidents, &second.id, pb::AssignmentStatus::Proposed).await,
        Code::InvalidArgument,
        Some("status"),
    );
    let acknowledged = advance(&mut incidents, &second.id, pb::AssignmentStatus::Acknowledged).await.unwrap();
    assert_eq!(acknowledged.status(), pb::AssignmentStatus::Acknowledged);
    check_error(
        advance(&mut incidents, &second.id, pb::AssignmentStatus::Declined).await,
        Code::FailedPrecondition,
        None,
    );
    check_error(
        advance(&mut incidents, &second.id, pb::AssignmentStatus::Dispatched).await,
        Code::FailedPrecondition,
        None,
    );
    let on_scene = advance(&mut incidents, &second.id, pb::AssignmentStatus::OnScene).await.unwrap();
    assert_eq!(on_scene.status(), pb::AssignmentStatus::OnScene, "a weak link may skip EN_ROUTE");
    assert_eq!(team(&server, "W-FAR").await.status(), pb::TeamStatus::OnScene);
    check_error(
        advance(&mut incidents, &second.id, pb::AssignmentStatus::Cancelled).await,
        Code::FailedPrecondition,
        None,
    );
    let released = advance(&mut incidents, &second.id, pb::AssignmentStatus::Released).await.unwrap();
    assert_eq!(released.status(), pb::AssignmentStatus::Released);
    let far = team(&server, "W-FAR").await;
    assert_eq!((far.status(), far.assignment_id.as_str()), (pb::TeamStatus::Returning, ""));
    check_error(
        advance(&mut incidents, &second.id, pb::AssignmentStatus::OnScene).await,
        Code::FailedPrecondition,
        None,
    );
    let incident =
        incidents.get_incident(pb::GetIncidentRequest { id: "A".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!(
        (incident.needs[0].filled, incident.needs[0].status()),
        (1, pb::NeedStatus::Filled),
        "a release after arrival does not reopen"
    );
    check_error(advance(&mut incidents, "A999", pb::AssignmentStatus::Acknowledged).await, Code::NotFound, None);
}

#[tokio::test]
async fn a_team_going_out_of_service_gives_its_need_back_and_closing_releases_everything() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 2).await;
    let dispatched = dispatch(&mut incidents, "A", false).await;
    let team_assignment =
        dispatched.assignments.iter().find(|assignment| !team_of(assignment).is_empty()).unwrap().clone();
    let mut roster = server.client().await.roster();
    roster
        .report_status(pb::ReportStatusRequest {
            team_id: "W-NEAR".into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let list = incidents
        .list_assignments(pb::ListAssignmentsRequest { incident_id: "A".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .assignments;
    let withdrawn = list.iter().find(|assignment| assignment.id == team_assignment.id).unwrap();
    assert_eq!(withdrawn.status(), pb::AssignmentStatus::Cancelled);
    assert_eq!(team(&server, "W-NEAR").await.status(), pb::TeamStatus::OutOfService);
    let redispatched = dispatch(&mut incidents, "A", false).await;
    assert_eq!(redispatched.assignments.iter().map(team_of).collect::<Vec<_>>(), vec!["W-FAR"]);

    let closed = incidents
        .close_incident(pb::CloseIncidentRequest { request_id: String::new(), id: "A".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status(), pb::IncidentStatus::Closed);
    let active = incidents
        .list_assignments(pb::ListAssignmentsRequest {
            incident_id: "A".into(),
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assignments;
    assert!(active.is_empty(), "a closed incident holds nothing: {active:?}");
    assert_eq!(
        team(&server, "W-FAR").await.status(),
        pb::TeamStatus::Available,
        "dispatched but not yet left: back to available"
    );
    let near = stock(&server, "D-NEAR").await;
    assert_eq!(near.reserved, 0, "reserved stock is unreserved on close");
    check_error(
        incidents.dispatch(pb::DispatchRequest { incident_id: "A".into(), ..Default::default() }).await,
        Code::FailedPrecondition,
        None,
    );
    check_error(
        incidents.dispatch(pb::DispatchRequest { incident_id: "nope".into(), ..Default::default() }).await,
        Code::NotFound,
        None,
    );
}

#[tokio::test]
async fn a_team_going_out_of_service_on_scene_is_released_and_the_need_stays_filled() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 0).await;
    let assignment = dispatch(&mut incidents, "A", false).await.assignments.remove(0);
    advance(&mut incidents, &assignment.id, pb::AssignmentStatus::OnScene).await.unwrap();
    server
        .client()
        .await
        .roster()
        .report_status(pb::ReportStatusRequest {
            team_id: team_of(&assignment).into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = incidents
        .list_assignments(pb::ListAssignmentsRequest { incident_id: "A".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .assignments;
    assert_eq!(after[0].status(), pb::AssignmentStatus::Released, "a release after arrival: the work was done");
    let incident =
        incidents.get_incident(pb::GetIncidentRequest { id: "A".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!(incident.needs[0].status(), pb::NeedStatus::Filled);
}

#[tokio::test]
async fn zones_block_teams_inside_them_and_lift_again() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 0).await;
    let square = |lat: f64, lng: f64| {
        vec![
            pb::LatLng { lat: lat - 0.01, lng: lng - 0.01 },
            pb::LatLng { lat: lat - 0.01, lng: lng + 0.01 },
            pb::LatLng { lat: lat + 0.01, lng: lng + 0.01 },
            pb::LatLng { lat: lat + 0.01, lng: lng - 0.01 },
        ]
    };
    let zone = incidents
        .set_zone(pb::SetZoneRequest {
            request_id: String::new(),
            zone: Some(pb::Zone {
                id: "flooded-quay".into(),
                polygon: square(28.20, 112.95),
                note: "quay under water".into(),
                active: false,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(zone.active);
    let proposed = dispatch(&mut incidents, "A", true).await;
    assert_eq!(
        proposed.assignments.iter().map(team_of).collect::<Vec<_>>(),
        vec!["W-FAR"],
        "W-NEAR sits inside the zone"
    );
    let listed = incidents.list_zones(pb::ListZonesRequest::default()).await.unwrap().into_inner().zones;
    assert_eq!(listed.len(), 1);
    let lifted = incidents
        .clear_zone(pb::ClearZoneRequest { request_id: String::new(), id: "flooded-quay".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(!lifted.active);
    let proposed = dispatch(&mut incidents, "A", true).await;
    assert_eq!(proposed.assignments.iter().map(team_of).collect::<Vec<_>>(), vec!["W-NEAR"]);
    check_error(
        incidents.clear_zone(pb::ClearZoneRequest { request_id: String::new(), id: "flooded-quay".into() }).await,
        Code::FailedPrecondition,
        None,
    );
    check_error(
        incidents.clear_zone(pb::ClearZoneRequest { request_id: String::new(), id: "nope".into() }).await,
        Code::NotFound,
        None,
    );
    check_error(
        incidents
            .set_zone(pb::SetZoneRequest {
                request_id: String::new(),
                zone: Some(pb::Zone {
                    id: "z".into(),
                    polygon: square(28.2, 112.9)[..2].to_vec(),
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
        Some("zone.polygon"),
    );
}

#[tokio::test]
async fn the_roster_app_watches_its_assignments_and_may_only_touch_its_own() {
    let tokens = vec![
        muster_server::server::TokenConfig {
            name: "duty".into(),
            role: "commander".into(),
            token: "duty-officer-token-0123456789".into(),
        },
        muster_server::server::TokenConfig {
            name: "near".into(),
            role: "team:W-NEAR".into(),
            token: "w-near-app-token-0123456789".into(),
        },
        muster_server::server::TokenConfig {
            name: "far".into(),
            role: "team:W-FAR".into(),
            token: "w-far-app-token-0123456789".into(),
        },
    ];
    let server = TestServer::start_with(muster_tests::Options { tokens, ..Default::default() }).await;
    let commander = server.client_with_token("duty-officer-token-0123456789").await;
    commander
        .imports()
        .import(pb::ImportRequest { request_id: String::new(), name: "world.toml".into(), toml: WORLD.into() })
        .await
        .unwrap();
    let mut incidents = commander.incidents();
    declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 0).await;

    let app = server.client_with_token("w-near-app-token-0123456789").await;
    let mut feed = app
        .incidents()
        .watch_assignments(pb::WatchAssignmentsRequest { team_id: "W-NEAR".into() })
        .await
        .unwrap()
        .into_inner();
    check_error(
        app.incidents().watch_assignments(pb::WatchAssignmentsRequest { team_id: "W-FAR".into() }).await,
        Code::PermissionDenied,
        None,
    );
    let assignment = dispatch(&mut incidents, "A", false).await.assignments.remove(0);
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), feed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((seen.id.as_str(), seen.status()), (assignment.id.as_str(), pb::AssignmentStatus::Dispatched));

    let other_app = server.client_with_token("w-far-app-token-0123456789").await;
    check_error(
        advance(&mut other_app.incidents(), &assignment.id, pb::AssignmentStatus::Acknowledged).await,
        Code::PermissionDenied,
        None,
    );
    advance(&mut app.incidents(), &assignment.id, pb::AssignmentStatus::Acknowledged).await.unwrap();
    let acknowledged =
        tokio::time::timeout(std::time::Duration::from_secs(10), feed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(acknowledged.status(), pb::AssignmentStatus::Acknowledged);
    check_error(app.incidents().dispatch(pb::DispatchRequest::default()).await, Code::PermissionDenied, None);
}

#[tokio::test]
async fn a_replay_of_the_log_reproduces_every_assignment_without_dispatching_again() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare(&mut incidents, "A", 28.200, 112.927, pb::Level::Ii, 1, 3).await;
    declare(&mut incidents, "B", 28.200, 112.975, pb::Level::I, 1, 5).await;
    dispatch(&mut incidents, "", false).await;
    let before = incidents.list_assignments(pb::ListAssignmentsRequest::default()).await.unwrap().into_inner();
    let digest =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    let server = server.restart().await;
    let mut incidents = server.client().await.incidents();
    let after = incidents.list_assignments(pb::ListAssignmentsRequest::default()).await.unwrap().into_inner();
    assert_eq!(after, before);
    let replayed =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    assert_eq!(replayed, digest);
    let events = server
        .client()
        .await
        .audit()
        .list_events(pb::ListEventsRequest { incident_id: "B".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        events.iter().any(|event| event.kind == "AssignmentCreated" && event.summary.contains("reserve override")),
        "{events:?}"
    );
}
