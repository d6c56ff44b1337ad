//! Operations as the command center relies on them (`api.md`, "Operations"),
//! each through the client against a real server: de-escalation keeps its
//! word, watchers see needs, arrival before release, stock that comes back,
//! versions per command, bounded incidents and pages, hand assignments,
//! diversion, acknowledgement timeouts on the engine clock, stale positions,
//! returning teams and member insurance.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{check_error, get_incident, team_of, Incidents};

const WORLD: &str = r#"
[[item]]
code = "pump"
name = "Pump, 100 m3/h"
unit = "unit"

[[depot]]
id = "D-A"
name = "Depot A"
position = [28.200, 112.950]

[[stock]]
depot = "D-A"
item = "pump"
on_hand = 10
min_reserve = 2

[[team]]
id = "W1"
name = "Water rescue 1"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 8
home = [28.200, 112.950]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[team]]
id = "W2"
name = "Water rescue 2"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 8
home = [28.205, 112.955]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[team]]
id = "W3"
name = "Water rescue 3"
capabilities = [{ code = "water_rescue", tier = 2 }]
headcount = 8
home = [28.210, 112.960]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[team]]
id = "W4"
name = "Water rescue 4"
capabilities = [{ code = "water_rescue", tier = 2 }]
headcount = 8
home = [28.215, 112.965]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[team]]
id = "W5"
name = "Water rescue 5"
capabilities = [{ code = "water_rescue", tier = 2 }]
headcount = 8
home = [28.300, 112.990]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[plan]]
id = "flood"
name = "Special plan for river flooding"
hazard = "FLOOD"
  [[plan.level]]
  level = "I"
  teams = [{ capability = "water_rescue", min_tier = 2, count = 5 }]
  [[plan.level]]
  level = "II"
  teams = [{ capability = "water_rescue", min_tier = 2, count = 4 }]
  [[plan.level]]
  level = "III"
  teams = [{ capability = "water_rescue", min_tier = 2, count = 2 }]
  [[plan.level]]
  level = "IV"
  teams = [{ capability = "water_rescue", min_tier = 2, count = 1 }]
"#;

async fn world(server: &TestServer) -> Incidents {
    let client = server.client().await;
    client
        .imports()
        .import(pb::ImportRequest { request_id: String::new(), name: "ops.toml".into(), toml: WORLD.into() })
        .await
        .unwrap();
    client.incidents()
}

fn incident(id: &str, level: pb::Level, lat: f64, lng: f64) -> pb::Incident {
    pb::Incident {
        id: id.into(),
        title: format!("flooding at {id}"),
        hazard: pb::Hazard::Flood.into(),
        position: Some(pb::LatLng { lat, lng }),
        level: level.into(),
        ..Default::default()
    }
}

async fn declare_planned(incidents: &mut Incidents, id: &str, level: pb::Level) -> pb::Incident {
    incidents
        .declare_incident(pb::DeclareIncidentRequest {
            request_id: String::new(),
            incident: Some(incident(id, level, 28.22, 112.94)),
            plan_id: "flood".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn declare_by_hand(
    incidents: &mut Incidents,
    id: &str,
    level: pb::Level,
    position: (f64, f64),
    teams: u32,
    pumps: i64,
) -> pb::Incident {
    incidents
        .declare_incident(pb::DeclareIncidentRequest {
            request_id: String::new(),
            incident: Some(incident(id, level, position.0, position.1)),
            plan_id: String::new(),
        })
        .await
        .unwrap();
    let teams = (teams > 0)
        .then(|| pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: teams })
        .into_iter()
        .collect();
    let supplies =
        (pumps > 0).then(|| pb::SupplyNeed { item_code: "pump".into(), quantity: pumps }).into_iter().collect();
    incidents
        .request_resources(pb::RequestResourcesRequest {
            request_id: String::new(),
            incident_id: id.into(),
            teams,
            supplies,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn dispatch(incidents: &mut Incidents, incident: &str, divert: bool) -> pb::DispatchResponse {
    incidents
        .dispatch(pb::DispatchRequest { incident_id: incident.into(), divert, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

async fn update(
    incidents: &mut Incidents,
    id: &str,
    status: pb::AssignmentStatus,
    returned_quantity: i64,
) -> Result<pb::Assignment, tonic::Status> {
    incidents
        .update_assignment(pb::UpdateAssignmentRequest {
            assignment_id: id.into(),
            status: status.into(),
            returned_quantity,
            note: format!("test moves {id}"),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn active_assignments(incidents: &mut Incidents, incident: &str) -> Vec<pb::Assignment> {
    incidents
        .list_assignments(pb::ListAssignmentsRequest {
            incident_id: incident.into(),
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .assignments
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

async fn stock(server: &TestServer) -> pb::StockLevel {
    server
        .client()
        .await
        .reserve()
        .get_stock(pb::GetStockRequest { depot_id: "D-A".into(), item_code: "pump".into() })
        .await
        .unwrap()
        .into_inner()
}

fn team_need(incident: &pb::Incident) -> &pb::Need {
    incident.needs.iter().find(|need| matches!(need.resource, Some(pb::need::Resource::Team(_)))).expect("a team need")
}

/// Issue 8, defect 1: plan 4 at II and 2 at III; declared at II and
/// dispatched (4), lowered to III, one team declines: the need must not
/// reopen, and a second dispatch adds nobody.
#[tokio::test]
async fn a_de_escalated_need_does_not_reopen_above_the_plan_when_a_team_declines() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare_planned(&mut incidents, "F", pb::Level::Ii).await;
    let first = dispatch(&mut incidents, "F", false).await;
    assert_eq!(first.assignments.len(), 4);
    incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: "F".into(),
            level: pb::Level::Iii.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    update(&mut incidents, &first.assignments[0].id, pb::AssignmentStatus::Declined, 0).await.unwrap();
    let need = team_need(&get_incident(&mut incidents, "F").await).clone();
    assert_eq!((need.filled, need.status()), (3, pb::NeedStatus::Filled), "{need:?}");
    let again = dispatch(&mut incidents, "F", false).await;
    assert!(again.assignments.is_empty(), "nobody more is sent: {:?}", again.assignments);
    assert_eq!(active_assignments(&mut incidents, "F").await.len(), 3, "3 committed where the plan says 2: at most");
    // Two more declines bring it down to the level's figure, and no further.
    update(&mut incidents, &first.assignments[1].id, pb::AssignmentStatus::Declined, 0).await.unwrap();
    update(&mut incidents, &first.assignments[2].id, pb::AssignmentStatus::Declined, 0).await.unwrap();
    let need = team_need(&get_incident(&mut incidents, "F").await).clone();
    assert_eq!((need.filled, need.status()), (1, pb::NeedStatus::Partial), "the level-III figure is 2: {need:?}");
    let refill = dispatch(&mut incidents, "F", false).await;
    assert_eq!(refill.assignments.len(), 1, "one more brings it to the plan's 2");
}

/// Issue 8, defect 2: a board following WatchIncidents sees the need a
/// dispatch fills, not only the assignment.
#[tokio::test]
async fn watch_incidents_sends_the_need_a_dispatch_fills() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    let declared = declare_by_hand(&mut incidents, "F", pb::Level::Ii, (28.22, 112.94), 2, 0).await;
    let need_id = team_need(&declared).id.clone();
    let mut stream =
        incidents.watch_incidents(pb::WatchIncidentsRequest { incident_id: "F".into() }).await.unwrap().into_inner();
    let initial = stream.next().await.unwrap().unwrap();
    assert!(matches!(initial.change, Some(pb::incident_event::Change::Incident(_))));
    dispatch(&mut incidents, "F", false).await;
    // The dispatch's changes: two assignments and the need they filled, once,
    // in sequence order (the need at the sequence of its last assignment).
    let mut changes = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("open")
            .expect("ok");
        changes.push(event);
    }
    let sequences: Vec<u64> = changes.iter().map(|event| event.sequence).collect();
    assert!(sequences.windows(2).all(|pair| pair[0] <= pair[1]), "in sequence order: {sequences:?}");
    let needs: Vec<&pb::Need> = changes
        .iter()
        .filter_map(|event| match &event.change {
            Some(pb::incident_event::Change::Need(need)) => Some(need),
            _ => None,
        })
        .collect();
    assert_eq!(needs.len(), 1, "the need once, however many filled it: {changes:?}");
    assert_eq!(
        (needs[0].id.as_str(), needs[0].filled, needs[0].status()),
        (need_id.as_str(), 2, pb::NeedStatus::Filled)
    );
    let assignments =
        changes.iter().filter(|event| matches!(event.change, Some(pb::incident_event::Change::Assignment(_)))).count();
    assert_eq!(assignments, 2);
    let first = active_assignments(&mut incidents, "F").await[0].id.clone();
    update(&mut incidents, &first, pb::AssignmentStatus::Cancelled, 0).await.unwrap();
    let reopened = loop {
        let event = stream.next().await.unwrap().unwrap();
        if let Some(pb::incident_event::Change::Need(need)) = event.change {
            break need;
        }
    };
    assert_eq!((reopened.filled, reopened.status()), (1, pb::NeedStatus::Partial), "a cancel reopens it, visibly");
}

/// Issue 8, defect 4: a team that never arrived is not released as if the
/// work were done; it is cancelled, and its need reopens.
#[tokio::test]
async fn a_team_cannot_be_released_before_it_arrives() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare_by_hand(&mut incidents, "F", pb::Level::Ii, (28.22, 112.94), 1, 0).await;
    let assignment = dispatch(&mut incidents, "F", false).await.assignments.remove(0);
    for from in [pb::AssignmentStatus::Dispatched, pb::AssignmentStatus::Acknowledged, pb::AssignmentStatus::EnRoute] {
        if from != pb::AssignmentStatus::Dispatched {
            update(&mut incidents, &assignment.id, from, 0).await.unwrap();
        }
        let refused = check_error(
            update(&mut incidents, &assignment.id, pb::AssignmentStatus::Released, 0).await,
            Code::FailedPrecondition,
            None,
        );
        assert!(refused.message().contains("ON_SCENE"), "{}", refused.message());
    }
    assert_eq!(team(&server, team_of(&assignment)).await.status(), pb::TeamStatus::EnRoute, "nothing changed");
    update(&mut incidents, &assignment.id, pb::AssignmentStatus::OnScene, 0).await.unwrap();
    let released = update(&mut incidents, &assignment.id, pb::AssignmentStatus::Released, 0).await.unwrap();
    assert_eq!(released.status(), pb::AssignmentStatus::Released);
    let need = team_need(&get_incident(&mut incidents, "F").await).clone();
    assert_eq!(need.status(), pb::NeedStatus::Filled, "released after arrival: the work was done");
}

/// Issue 8, defect 5: stock issued and then cancelled comes back to the
/// depot's books; a release returns what came back; the ledger names the
/// assignment and always sums to on hand.
#[tokio::test]
async fn stock_issued_then_cancelled_or_released_comes_back_to_the_ledger() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare_by_hand(&mut incidents, "F", pb::Level::Ii, (28.22, 112.94), 0, 4).await;
    let convoy = dispatch(&mut incidents, "F", false).await.assignments.remove(0);
    let first_convoy = convoy.id.clone();
    update(&mut incidents, &convoy.id, pb::AssignmentStatus::EnRoute, 0).await.unwrap();
    assert_eq!(stock(&server).await.on_hand, 6, "issued");
    let cancelled = update(&mut incidents, &convoy.id, pb::AssignmentStatus::Cancelled, 0).await.unwrap();
    assert_eq!(cancelled.returned_quantity, 4);
    let level = stock(&server).await;
    assert_eq!((level.on_hand, level.reserved), (10, 0), "all 4 pumps are back on the books");
    let second = dispatch(&mut incidents, "F", false).await;
    let convoy = &second.assignments[0];
    assert_eq!(stock(&server).await.available, 6, "the next dispatch reserves from what came back");
    update(&mut incidents, &convoy.id, pb::AssignmentStatus::OnScene, 0).await.unwrap();
    check_error(
        update(&mut incidents, &convoy.id, pb::AssignmentStatus::Released, 5).await,
        Code::InvalidArgument,
        Some("returned_quantity"),
    );
    let released = update(&mut incidents, &convoy.id, pb::AssignmentStatus::Released, 3).await.unwrap();
    assert_eq!(released.returned_quantity, 3);
    assert_eq!(stock(&server).await.on_hand, 9, "4 issued, 3 came back, 1 used up");
    let later = update(&mut incidents, &convoy.id, pb::AssignmentStatus::Released, 1).await.unwrap();
    assert_eq!(later.returned_quantity, 4, "the last pump came back after the release");
    assert_eq!(stock(&server).await.on_hand, 10);
    check_error(
        update(&mut incidents, &convoy.id, pb::AssignmentStatus::Released, 1).await,
        Code::InvalidArgument,
        Some("returned_quantity"),
    );
    let ledger = server
        .client()
        .await
        .reserve()
        .list_ledger(pb::ListLedgerRequest { depot_id: "D-A".into(), item_code: "pump".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let returned: Vec<_> = ledger
        .iter()
        .filter(|entry| entry.reason() == pb::LedgerReason::Returned)
        .map(|entry| (entry.delta, entry.note.clone()))
        .collect();
    assert_eq!(returned.len(), 3, "{returned:?}");
    assert_eq!(returned[0].0, 4);
    assert!(returned[0].1.contains(&format!("assignment {first_convoy} ")), "{:?}", returned[0]);
    assert_eq!(returned[1].0, 3);
    assert!(returned[1].1.contains(&format!("assignment {} ", convoy.id)), "{:?}", returned[1]);
    assert_eq!(ledger.iter().map(|entry| entry.delta).sum::<i64>(), 10, "invariant 4: the ledger sums to on hand");
    check_error(
        update(&mut incidents, &second.assignments[0].id, pb::AssignmentStatus::Cancelled, 2).await,
        Code::InvalidArgument,
        Some("returned_quantity"),
    );
}

/// Issue 8, defect 6: one command moves a record's version by exactly one.
#[tokio::test]
async fn versions_step_once_per_command() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    let declared = declare_planned(&mut incidents, "F", pb::Level::Iv).await;
    assert_eq!(declared.version, 1, "declared with the needs its plan raised: one command");
    let assignment = dispatch(&mut incidents, "F", false).await.assignments.remove(0);
    assert_eq!(get_incident(&mut incidents, "F").await.version, 2, "one dispatch");
    let assigned = team(&server, team_of(&assignment)).await;
    let out = server
        .client()
        .await
        .roster()
        .report_status(pb::ReportStatusRequest {
            team_id: assigned.id.clone(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.version, assigned.version + 1, "out of service while assigned withdraws the job: still one step");
    assert_eq!(get_incident(&mut incidents, "F").await.version, 3);
}

/// Issue 8, defect 7: an incident holds at most 1,000 needs, and a list page
/// ends early, with a token, rather than pass the 4 MiB message limit.
#[tokio::test]
async fn an_incident_holds_at_most_1000_needs_and_list_pages_stay_under_the_message_limit() {
    let server = TestServer::start().await;
    let mut incidents = server.client().await.incidents();
    let capability = "a".repeat(32);
    let many = |count: usize| -> Vec<pb::TeamNeed> {
        (0..count).map(|_| pb::TeamNeed { capability: capability.clone(), min_tier: 4, count: 1 }).collect()
    };
    let ids: Vec<String> = (0..36).map(|index| format!("{index:02}{}", "i".repeat(62))).collect();
    for id in &ids {
        incidents
            .declare_incident(pb::DeclareIncidentRequest {
                incident: Some(incident(id, pb::Level::Iv, 28.2, 112.9)),
                ..Default::default()
            })
            .await
            .unwrap();
        incidents
            .request_resources(pb::RequestResourcesRequest {
                incident_id: id.clone(),
                teams: many(1_000),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let refused = check_error(
        incidents
            .request_resources(pb::RequestResourcesRequest {
                incident_id: ids[0].clone(),
                teams: many(1),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    assert!(refused.message().contains("1000"), "{}", refused.message());
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = incidents
            .list_incidents(pb::ListIncidentsRequest { page_size: 1_000, page_token: token, ..Default::default() })
            .await
            .expect("no page passes the message limit")
            .into_inner();
        assert!(prost::Message::encoded_len(&page) <= 4 * 1024 * 1024);
        pages += 1;
        seen.extend(page.incidents.into_iter().map(|incident| incident.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= 2, "36 incidents of 1,000 needs do not fit one 4 MiB page");
    assert_eq!(seen, ids, "every incident, once, in order");
}

/// `AssignResource`: the operator's choice under the dispatcher's rules; the
/// dispatcher counts it and never moves it.
#[tokio::test]
async fn an_operator_assigns_a_team_and_stock_by_hand_under_the_dispatchers_rules() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    let declared = declare_by_hand(&mut incidents, "F", pb::Level::Ii, (28.22, 112.94), 2, 0).await;
    let need_id = team_need(&declared).id.clone();
    let by_hand = |team: &str, reason: &str| pb::AssignResourceRequest {
        need_id: need_id.clone(),
        resource: Some(pb::assign_resource_request::Resource::TeamId(team.into())),
        reason: reason.into(),
        ..Default::default()
    };
    let chosen = incidents.assign_resource(by_hand("W5", "W5 knows the embankment")).await.unwrap().into_inner();
    assert_eq!((chosen.status(), chosen.by_hand), (pb::AssignmentStatus::Dispatched, true));
    assert!(
        chosen.reason.contains("by hand") && chosen.reason.contains("W5 knows the embankment"),
        "{}",
        chosen.reason
    );
    check_error(incidents.assign_resource(by_hand("W5", "again")).await, Code::FailedPrecondition, None);
    check_error(incidents.assign_resource(by_hand("W1", "")).await, Code::InvalidArgument, Some("reason"));
    check_error(incidents.assign_resource(by_hand("nope", "x")).await, Code::NotFound, None);
    // The dispatcher fills the rest around it, leaving it in place.
    let rest = dispatch(&mut incidents, "F", false).await;
    assert_eq!(rest.assignments.len(), 1, "the hand assignment counts toward the need");
    assert_ne!(team_of(&rest.assignments[0]), "W5");
    check_error(incidents.assign_resource(by_hand("W1", "one more")).await, Code::FailedPrecondition, None);

    let supplies = declare_by_hand(&mut incidents, "S", pb::Level::Ii, (28.22, 112.94), 0, 9).await;
    let supply_need = supplies.needs[0].id.clone();
    let take = |quantity: i64| pb::AssignResourceRequest {
        need_id: supply_need.clone(),
        resource: Some(pb::assign_resource_request::Resource::Supply(pb::SupplyAllocation {
            depot_id: "D-A".into(),
            item_code: String::new(),
            quantity,
        })),
        reason: "the convoy is loaded already".into(),
        ..Default::default()
    };
    check_error(incidents.assign_resource(take(9)).await, Code::FailedPrecondition, None);
    let convoy = incidents.assign_resource(take(8)).await.unwrap().into_inner();
    assert!(!convoy.reserve_override);
    assert_eq!(stock(&server).await.available, 2, "reserved down to the floor, not below it at level II");
    check_error(incidents.assign_resource(take(1)).await, Code::FailedPrecondition, None);
}

/// `Dispatch.divert`: free teams first; a level-I need takes a team from a
/// level-III or IV job that is not on scene yet; both reasons name the other
/// incident; a dry run proposes the same and changes nothing.
#[tokio::test]
async fn dispatch_with_divert_takes_a_team_from_a_minor_job_only_when_free_teams_run_out() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare_by_hand(&mut incidents, "MINOR", pb::Level::Iv, (28.30, 112.99), 3, 0).await;
    declare_by_hand(&mut incidents, "SOMEWHAT", pb::Level::Iii, (28.30, 112.99), 1, 0).await;
    let minor = dispatch(&mut incidents, "", false).await.assignments;
    assert_eq!(minor.len(), 4);
    let on_scene = minor.iter().find(|assignment| assignment.incident_id == "MINOR").unwrap();
    update(&mut incidents, &on_scene.id, pb::AssignmentStatus::OnScene, 0).await.unwrap();
    declare_by_hand(&mut incidents, "MAJOR", pb::Level::I, (28.21, 112.95), 3, 0).await;

    let plain = dispatch(&mut incidents, "MAJOR", false).await;
    assert_eq!(plain.assignments.len(), 1, "without divert only the one free team goes");
    let digest =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    let proposed = incidents
        .dispatch(pb::DispatchRequest {
            incident_id: "MAJOR".into(),
            divert: true,
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let after =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    assert_eq!(digest, after, "a dry run changes nothing");
    let diverted = dispatch(&mut incidents, "MAJOR", true).await;
    let proposed_teams: Vec<_> = proposed.assignments.iter().map(team_of).collect();
    let diverted_teams: Vec<_> = diverted.assignments.iter().map(team_of).collect();
    assert_eq!(proposed_teams, diverted_teams);
    assert_eq!(diverted.assignments.len(), 2, "two teams of level-III/IV jobs not yet on scene");
    assert!(!diverted_teams.contains(&team_of(on_scene)), "never a team on scene");
    for assignment in &diverted.assignments {
        assert!(assignment.reason.contains("diverted from"), "{}", assignment.reason);
        assert!(
            assignment.reason.contains("MINOR") || assignment.reason.contains("SOMEWHAT"),
            "names the job it left: {}",
            assignment.reason
        );
    }
    let old: Vec<pb::Assignment> = incidents
        .list_assignments(pb::ListAssignmentsRequest { ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .assignments
        .into_iter()
        .filter(|assignment| {
            assignment.status() == pb::AssignmentStatus::Cancelled && diverted_teams.contains(&team_of(assignment))
        })
        .collect();
    assert_eq!(old.len(), 2);
    for assignment in &old {
        assert!(
            assignment.note.contains("diverted to need") && assignment.note.contains("MAJOR"),
            "the cancelled assignment itself says where its team went: {:?}",
            assignment.note
        );
    }
    let events = server
        .client()
        .await
        .audit()
        .list_events(pb::ListEventsRequest { incident_id: "MINOR".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        events.iter().any(|event| event.summary.contains("diverted to need") && event.summary.contains("MAJOR")),
        "the old assignment names the incident the team went to"
    );
}

/// The acknowledgement timeout is the engine's own timer on its clock: a
/// dispatched team that does not acknowledge within 600 s is cancelled by
/// `system`, its need reopens, and it is not proposed again for that need.
#[tokio::test]
async fn an_unacknowledged_assignment_times_out_on_the_engine_clock() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    declare_by_hand(&mut incidents, "F", pb::Level::Ii, (28.20, 112.95), 1, 0).await;
    let silent = dispatch(&mut incidents, "F", false).await.assignments.remove(0);
    let mut stream = incidents
        .watch_assignments(pb::WatchAssignmentsRequest { team_id: team_of(&silent).into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().status(), pb::AssignmentStatus::Dispatched);
    server.clock.advance_seconds(599);
    // A write in between: the timer is not due yet, nothing is cancelled.
    server
        .client()
        .await
        .roster()
        .report_status(pb::ReportStatusRequest {
            team_id: "W5".into(),
            position: Some(pb::LatLng { lat: 28.3, lng: 112.99 }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(active_assignments(&mut incidents, "F").await.len(), 1);
    server.clock.advance_seconds(2);
    let cancelled = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .expect("the timer fires once the clock passes the deadline")
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status(), pb::AssignmentStatus::Cancelled);
    assert_eq!(cancelled.note, "not acknowledged within 600 s", "the roster app sees why");
    let events = server
        .client()
        .await
        .audit()
        .list_events(pb::ListEventsRequest { incident_id: "F".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    let timeout = events.iter().find(|event| event.summary.contains("not acknowledged within 600 s")).unwrap();
    assert_eq!(timeout.actor, "system");
    let next = dispatch(&mut incidents, "F", false).await;
    assert_eq!(next.assignments.len(), 1, "the need reopened");
    assert_ne!(team_of(&next.assignments[0]), team_of(&silent), "the silent team is not proposed again");
    // An acknowledged assignment never times out.
    update(&mut incidents, &next.assignments[0].id, pb::AssignmentStatus::Acknowledged, 0).await.unwrap();
    server.clock.advance_seconds(3_600);
    dispatch(&mut incidents, "F", false).await;
    assert_eq!(active_assignments(&mut incidents, "F").await.len(), 1);
}

/// Stale positions are named in the reason; a RETURNING team is dispatched
/// from where it last reported; a member whose insurance ran out does not
/// count as on duty, and a team with no insured member on duty stays home.
#[tokio::test]
async fn stale_positions_returning_teams_and_member_insurance() {
    let server = TestServer::start().await;
    let mut incidents = world(&server).await;
    let mut roster = server.client().await.roster();
    for id in ["W1", "W2", "W3", "W4"] {
        roster
            .report_status(pb::ReportStatusRequest {
                team_id: id.into(),
                status: pb::TeamStatus::OutOfService.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    roster
        .report_status(pb::ReportStatusRequest {
            team_id: "W5".into(),
            position: Some(pb::LatLng { lat: 28.25, lng: 112.95 }),
            ..Default::default()
        })
        .await
        .unwrap();
    server.clock.advance_seconds(2 * 3_600);
    declare_by_hand(&mut incidents, "F", pb::Level::Ii, (28.22, 112.94), 1, 0).await;
    let first = dispatch(&mut incidents, "F", false).await.assignments.remove(0);
    assert_eq!(team_of(&first), "W5");
    assert!(first.reason.contains("stale") && first.reason.contains("120 min"), "{}", first.reason);
    for status in [pb::AssignmentStatus::OnScene, pb::AssignmentStatus::Released] {
        update(&mut incidents, &first.id, status, 0).await.unwrap();
    }
    assert_eq!(team(&server, "W5").await.status(), pb::TeamStatus::Returning);
    roster
        .report_status(pb::ReportStatusRequest {
            team_id: "W5".into(),
            position: Some(pb::LatLng { lat: 28.40, lng: 112.95 }),
            ..Default::default()
        })
        .await
        .unwrap();
    declare_by_hand(&mut incidents, "G", pb::Level::Ii, (28.40, 112.95), 1, 0).await;
    let second = dispatch(&mut incidents, "G", false).await.assignments.remove(0);
    assert_eq!(team_of(&second), "W5", "a returning team is dispatched");
    assert!(second.distance_km < 0.5, "from where it last reported: {} km", second.distance_km);
    assert!(!second.reason.contains("stale"), "a fresh position is not called stale: {}", second.reason);

    // Members: one on duty whose insurance ran out, one off duty.
    let expired = muster_client::Timestamp { seconds: 1_700_000_000, nanos: 0 };
    let valid = muster_client::Timestamp { seconds: 1_814_313_600, nanos: 0 };
    let member = |id: &str, insurance: muster_client::Timestamp, on_duty: bool| pb::Member {
        id: id.into(),
        name: format!("Member {id}"),
        insurance_expires: Some(insurance),
        on_duty,
        ..Default::default()
    };
    let mut medics = crate::support::team("M1");
    medics.capabilities = vec![pb::Capability { code: "medical".into(), tier: 1 }];
    medics.headcount = 0;
    medics.members = vec![member("a", expired, true), member("b", valid, false)];
    roster.register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(medics) }).await.unwrap();
    incidents
        .request_resources(pb::RequestResourcesRequest {
            incident_id: "G".into(),
            teams: vec![pb::TeamNeed { capability: "medical".into(), min_tier: 2, count: 1 }],
            ..Default::default()
        })
        .await
        .unwrap();
    let short = dispatch(&mut incidents, "G", false).await;
    assert!(short.assignments.is_empty());
    assert!(short.shortfalls[0].reason.contains("no insured member on duty"), "{:?}", short.shortfalls);
}
