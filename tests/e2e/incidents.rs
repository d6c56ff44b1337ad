//! IncidentService end to end: declaring with and without a plan, escalation
//! by level and by trigger, de-escalation, hand requests, containment,
//! closing, as-of reads, the watch stream, and every error code.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::plans::{flood_plan, put};
use crate::support::{check_error, Incidents};

async fn world(client: &muster_client::Client) {
    let item = pb::Item {
        code: "sandbag".into(),
        name: "Sandbag".into(),
        unit: "bag".into(),
        category: "flood_control".into(),
    };
    client.reserve().define_item(pb::DefineItemRequest { request_id: String::new(), item: Some(item) }).await.unwrap();
    put(client, flood_plan()).await;
}

fn declaration(id: &str, level: pb::Level, plan: &str) -> pb::DeclareIncidentRequest {
    pb::DeclareIncidentRequest {
        request_id: String::new(),
        incident: Some(pb::Incident {
            id: id.into(),
            title: "Xiang river overtops embankment".into(),
            hazard: pb::Hazard::Flood.into(),
            position: Some(pb::LatLng { lat: 28.19, lng: 112.96 }),
            level: level.into(),
            ..Default::default()
        }),
        plan_id: plan.into(),
    }
}

/// `(what, amount, status)` of the incident's needs that are not cancelled, and cancelled ones as `cancelled`.
fn needs(incident: &pb::Incident) -> Vec<(String, i64, pb::NeedStatus, bool)> {
    incident
        .needs
        .iter()
        .map(|need| {
            let (what, amount) = match need.resource.as_ref().unwrap() {
                pb::need::Resource::Team(team) => (team.capability.clone(), i64::from(team.count)),
                pb::need::Resource::Supply(supply) => (supply.item_code.clone(), supply.quantity),
            };
            (what, amount, need.status(), need.from_plan)
        })
        .collect()
}

/// Sum of the non-cancelled plan-derived amounts of one resource.
fn planned(incident: &pb::Incident, what: &str) -> i64 {
    needs(incident)
        .into_iter()
        .filter(|(name, _, status, from_plan)| name == what && *from_plan && *status != pb::NeedStatus::Cancelled)
        .map(|(_, amount, _, _)| amount)
        .sum()
}

async fn update(incidents: &mut Incidents, id: &str, level: pb::Level, metrics: &[(&str, f64)]) -> pb::Incident {
    incidents
        .update_incident(pb::UpdateIncidentRequest {
            request_id: String::new(),
            id: id.into(),
            level: level.into(),
            metrics: metrics.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect(),
            status: pb::IncidentStatus::Unspecified.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn declaring_with_a_plan_creates_the_levels_needs_and_records_the_plan_version() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let incident = client
        .incidents()
        .declare_incident(declaration("flood-1", pb::Level::Iii, "flood"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((incident.plan_id.as_str(), incident.plan_version), ("flood", 1));
    assert_eq!(incident.status(), pb::IncidentStatus::Active);
    assert_eq!(incident.level(), pb::Level::Iii);
    assert_eq!(incident.version, 1, "one command, one version, however many needs it raised");
    assert_eq!(planned(&incident, "water_rescue"), 2);
    assert_eq!(planned(&incident, "sandbag"), 5_000);
    assert!(incident
        .needs
        .iter()
        .all(|need| need.status() == pb::NeedStatus::Open && need.priority() == pb::Level::Iii && need.filled == 0));
    assert_eq!(incident.declared_at.map(|time| time.seconds), Some(muster_tests::START_SECONDS));

    let mut newer = flood_plan();
    newer.levels[1].teams[0].count = 5;
    put(&client, newer).await;
    let unchanged = client
        .incidents()
        .get_incident(pb::GetIncidentRequest { id: "flood-1".into(), as_of: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.plan_version, 1, "a new plan version does not change a declared incident");
}

#[tokio::test]
async fn declaring_without_a_plan_creates_no_needs_until_requested_by_hand() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    let incident = incidents.declare_incident(declaration("", pb::Level::Ii, "")).await.unwrap().into_inner();
    assert_eq!(incident.id, "INC-1", "the server assigns an id when none is given");
    assert!(incident.needs.is_empty() && incident.plan_id.is_empty());
    let requested = incidents
        .request_resources(pb::RequestResourcesRequest {
            request_id: String::new(),
            incident_id: "INC-1".into(),
            teams: vec![pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: 3 }],
            supplies: vec![pb::SupplyNeed { item_code: "sandbag".into(), quantity: 800 }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        needs(&requested),
        vec![
            ("water_rescue".into(), 3, pb::NeedStatus::Open, false),
            ("sandbag".into(), 800, pb::NeedStatus::Open, false)
        ]
    );
    let second = incidents.declare_incident(declaration("", pb::Level::Iv, "")).await.unwrap().into_inner();
    assert_eq!(second.id, "INC-2");
}

#[tokio::test]
async fn escalation_adds_the_difference_and_de_escalation_lowers_open_needs_newest_first() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Iv, "flood")).await.unwrap();
    incidents
        .request_resources(pb::RequestResourcesRequest {
            request_id: String::new(),
            incident_id: "flood-1".into(),
            teams: vec![pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: 2 }],
            supplies: vec![],
        })
        .await
        .unwrap();

    let escalated = update(&mut incidents, "flood-1", pb::Level::Ii, &[]).await;
    assert_eq!(escalated.level(), pb::Level::Ii);
    assert_eq!(planned(&escalated, "water_rescue"), 4);
    assert_eq!(planned(&escalated, "sandbag"), 20_000);
    let plan_needs: Vec<_> = needs(&escalated).into_iter().filter(|need| need.3 && need.0 == "water_rescue").collect();
    assert_eq!(plan_needs.iter().map(|need| need.1).collect::<Vec<_>>(), vec![1, 3], "the difference is a new need");

    let top = update(&mut incidents, "flood-1", pb::Level::I, &[]).await;
    assert_eq!(planned(&top, "water_rescue"), 7);

    let lowered = update(&mut incidents, "flood-1", pb::Level::Iii, &[]).await;
    assert_eq!(planned(&lowered, "water_rescue"), 2);
    assert_eq!(planned(&lowered, "sandbag"), 5_000);
    let water: Vec<_> = needs(&lowered).into_iter().filter(|need| need.3 && need.0 == "water_rescue").collect();
    assert_eq!(
        water,
        vec![
            ("water_rescue".into(), 1, pb::NeedStatus::Open, true),
            ("water_rescue".into(), 1, pb::NeedStatus::Open, true),
            ("water_rescue".into(), 3, pb::NeedStatus::Cancelled, true),
        ],
        "newest first: the level-I addition goes, then the level-II one is lowered"
    );
    let hand: Vec<_> = needs(&lowered).into_iter().filter(|need| !need.3).collect();
    assert_eq!(
        hand,
        vec![("water_rescue".into(), 2, pb::NeedStatus::Open, false)],
        "hand requests never follow the level"
    );
    assert!(lowered.needs.iter().all(|need| need.priority() == pb::Level::Iii), "priority follows the level");
}

#[tokio::test]
async fn metrics_escalate_through_triggers_never_de_escalate_and_an_explicit_level_overrides_them() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Iv, "flood")).await.unwrap();
    let raised = update(&mut incidents, "flood-1", pb::Level::Unspecified, &[("water_level_m", 38.4)]).await;
    assert_eq!(raised.level(), pb::Level::Ii);
    assert_eq!(raised.metrics.get("water_level_m"), Some(&38.4));
    assert_eq!(planned(&raised, "water_rescue"), 4);
    let falling = update(&mut incidents, "flood-1", pb::Level::Unspecified, &[("water_level_m", 36.5)]).await;
    assert_eq!(falling.level(), pb::Level::Ii, "triggers never de-escalate");
    let operator = update(&mut incidents, "flood-1", pb::Level::Iii, &[("water_level_m", 39.9)]).await;
    assert_eq!(operator.level(), pb::Level::Iii, "an explicit level overrides triggers");
    let trigger_again = update(&mut incidents, "flood-1", pb::Level::Unspecified, &[("water_level_m", 39.9)]).await;
    assert_eq!(trigger_again.level(), pb::Level::I, "the metric's current value meets the level I trigger");

    let events = client
        .audit()
        .list_events(pb::ListEventsRequest { incident_id: "flood-1".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    let changes: Vec<_> =
        events.iter().filter(|event| event.kind == "IncidentLevelChanged").map(|event| event.summary.clone()).collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(
        changes[0].contains("escalated from level IV to II by trigger water_level_m = 38.4 >= 38"),
        "{}",
        changes[0]
    );
    assert!(changes[1].contains("de-escalated from level II to III by the operator"), "{}", changes[1]);
    assert!(changes[2].contains("to I by trigger water_level_m = 39.9 >= 39.5"), "{}", changes[2]);
    assert!(events.iter().all(|event| event.incident_ids.contains(&"flood-1".to_owned())));
}

#[tokio::test]
async fn a_stored_metric_never_undoes_an_operators_de_escalation() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Iv, "flood")).await.unwrap();
    assert_eq!(
        update(&mut incidents, "flood-1", pb::Level::Unspecified, &[("water_level_m", 38.5)]).await.level(),
        pb::Level::Ii
    );
    assert_eq!(update(&mut incidents, "flood-1", pb::Level::Iii, &[]).await.level(), pb::Level::Iii);
    let contained = incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: "flood-1".into(),
            status: pb::IncidentStatus::Contained.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contained.level(), pb::Level::Iii, "an update without metrics never re-applies triggers");
    let other = update(&mut incidents, "flood-1", pb::Level::Unspecified, &[("people_trapped", 3.0)]).await;
    assert_eq!(other.level(), pb::Level::Iii, "only the metrics an update carries count");
}

#[tokio::test]
async fn declared_metrics_can_trigger_a_higher_level_at_once() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut request = declaration("flood-1", pb::Level::Iv, "flood");
    request.incident.as_mut().unwrap().metrics.insert("water_level_m".into(), 38.1);
    let incident = client.incidents().declare_incident(request).await.unwrap().into_inner();
    assert_eq!(incident.level(), pb::Level::Ii);
    assert_eq!(planned(&incident, "water_rescue"), 4);
}

#[tokio::test]
async fn containment_and_closing_release_open_needs_and_a_closed_incident_refuses_changes() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Ii, "flood")).await.unwrap();
    let contained = incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: "flood-1".into(),
            status: pb::IncidentStatus::Contained.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contained.status(), pb::IncidentStatus::Contained);
    check_error(
        incidents
            .update_incident(pb::UpdateIncidentRequest {
                id: "flood-1".into(),
                status: pb::IncidentStatus::Closed.into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("status"),
    );
    let closed = incidents
        .close_incident(pb::CloseIncidentRequest { request_id: String::new(), id: "flood-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status(), pb::IncidentStatus::Closed);
    assert_eq!(closed.closed_at.map(|time| time.seconds), Some(muster_tests::START_SECONDS));
    assert!(closed.needs.iter().all(|need| need.status() == pb::NeedStatus::Cancelled), "{:?}", closed.needs);

    check_error(
        incidents.close_incident(pb::CloseIncidentRequest { request_id: String::new(), id: "flood-1".into() }).await,
        Code::FailedPrecondition,
        None,
    );
    check_error(
        incidents
            .update_incident(pb::UpdateIncidentRequest {
                id: "flood-1".into(),
                level: pb::Level::I.into(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    check_error(
        incidents
            .request_resources(pb::RequestResourcesRequest {
                incident_id: "flood-1".into(),
                supplies: vec![pb::SupplyNeed { item_code: "sandbag".into(), quantity: 1 }],
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        None,
    );
    let closed_list = incidents
        .list_incidents(pb::ListIncidentsRequest { status: pb::IncidentStatus::Closed.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed_list.incidents.len(), 1);
    let active_list = incidents
        .list_incidents(pb::ListIncidentsRequest { status: pb::IncidentStatus::Active.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(active_list.incidents.is_empty());
}

#[tokio::test]
async fn get_incident_as_of_shows_the_level_and_needs_as_they_stood() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Iii, "flood")).await.unwrap();
    server.clock.advance_seconds(1_800);
    update(&mut incidents, "flood-1", pb::Level::I, &[]).await;
    let at = |offset: i64| Some(muster_client::Timestamp { seconds: muster_tests::START_SECONDS + offset, nanos: 0 });
    let then = incidents
        .get_incident(pb::GetIncidentRequest { id: "flood-1".into(), as_of: at(600) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.level(), pb::Level::Iii);
    assert_eq!(planned(&then, "water_rescue"), 2);
    let now = incidents
        .get_incident(pb::GetIncidentRequest { id: "flood-1".into(), as_of: at(1_800) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.level(), pb::Level::I);
    check_error(
        incidents.get_incident(pb::GetIncidentRequest { id: "flood-1".into(), as_of: at(-10) }).await,
        Code::NotFound,
        None,
    );
}

async fn next(stream: &mut tonic::Streaming<pb::IncidentEvent>) -> pb::IncidentEvent {
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await;
    event.expect("an event within 10 s").expect("open").expect("ok")
}

#[tokio::test]
async fn watch_incidents_sends_current_incidents_then_needs_and_changes() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Iv, "flood")).await.unwrap();
    incidents.declare_incident(declaration("flood-2", pb::Level::Iv, "")).await.unwrap();
    let mut stream = incidents
        .watch_incidents(pb::WatchIncidentsRequest { incident_id: "flood-1".into() })
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    let Some(pb::incident_event::Change::Incident(initial)) = first.change else { panic!("{first:?}") };
    assert_eq!((initial.id.as_str(), first.sequence), ("flood-1", 0));

    update(&mut incidents, "flood-2", pb::Level::Ii, &[]).await;
    update(&mut incidents, "flood-1", pb::Level::Iii, &[]).await;
    let level = next(&mut stream).await;
    let Some(pb::incident_event::Change::Incident(changed)) = level.change else { panic!("{level:?}") };
    assert_eq!((changed.id.as_str(), changed.level()), ("flood-1", pb::Level::Iii), "flood-2 is filtered out");
    let mut raised = Vec::new();
    for _ in 0..2 {
        let event = next(&mut stream).await;
        let Some(pb::incident_event::Change::Need(need)) = event.change else { panic!("{event:?}") };
        assert!(event.sequence > level.sequence);
        raised.push(need.incident_id);
    }
    assert_eq!(raised, vec!["flood-1", "flood-1"]);
    check_error(
        incidents.watch_incidents(pb::WatchIncidentsRequest { incident_id: "nope".into() }).await,
        Code::NotFound,
        None,
    );
}

#[tokio::test]
async fn malformed_or_conflicting_incident_requests_are_refused_with_the_right_code() {
    let server = TestServer::start().await;
    let client = server.client().await;
    world(&client).await;
    let mut incidents = client.incidents();
    incidents.declare_incident(declaration("flood-1", pb::Level::Iii, "flood")).await.unwrap();
    check_error(
        incidents.declare_incident(declaration("flood-1", pb::Level::Iii, "")).await,
        Code::AlreadyExists,
        None,
    );
    check_error(incidents.declare_incident(declaration("flood-9", pb::Level::Iii, "nope")).await, Code::NotFound, None);
    let mut wrong_hazard = declaration("fire-1", pb::Level::Iii, "flood");
    wrong_hazard.incident.as_mut().unwrap().hazard = pb::Hazard::Fire.into();
    check_error(incidents.declare_incident(wrong_hazard).await, Code::InvalidArgument, Some("plan_id"));
    let change = |edit: fn(&mut pb::Incident)| {
        let mut request = declaration("x-1", pb::Level::Iii, "");
        edit(request.incident.as_mut().unwrap());
        request
    };
    check_error(
        incidents.declare_incident(change(|incident| incident.title.clear())).await,
        Code::InvalidArgument,
        Some("incident.title"),
    );
    check_error(
        incidents.declare_incident(change(|incident| incident.hazard = 0)).await,
        Code::InvalidArgument,
        Some("incident.hazard"),
    );
    check_error(
        incidents.declare_incident(change(|incident| incident.position = None)).await,
        Code::InvalidArgument,
        Some("incident.position"),
    );
    check_error(
        incidents.declare_incident(change(|incident| incident.level = 0)).await,
        Code::InvalidArgument,
        Some("incident.level"),
    );
    check_error(
        incidents.declare_incident(change(|incident| incident.level = 9)).await,
        Code::InvalidArgument,
        Some("incident.level"),
    );
    check_error(
        incidents
            .declare_incident(change(|incident| {
                incident.metrics.insert("Water Level".into(), 1.0);
            }))
            .await,
        Code::InvalidArgument,
        Some("incident.metrics[Water Level]"),
    );
    check_error(
        incidents.declare_incident(change(|incident| incident.area = vec![pb::LatLng { lat: 1.0, lng: 1.0 }])).await,
        Code::InvalidArgument,
        Some("incident.area"),
    );
    check_error(
        incidents.declare_incident(pb::DeclareIncidentRequest::default()).await,
        Code::InvalidArgument,
        Some("incident"),
    );
    check_error(
        incidents.get_incident(pb::GetIncidentRequest { id: "nope".into(), as_of: None }).await,
        Code::NotFound,
        None,
    );
    check_error(
        incidents
            .update_incident(pb::UpdateIncidentRequest {
                id: "nope".into(),
                level: pb::Level::I.into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        None,
    );
    check_error(
        incidents
            .update_incident(pb::UpdateIncidentRequest {
                id: "flood-1".into(),
                metrics: [("x".to_owned(), f64::INFINITY)].into_iter().collect(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        Some("metrics[x]"),
    );
    let request = |teams: Vec<pb::TeamNeed>, supplies: Vec<pb::SupplyNeed>| pb::RequestResourcesRequest {
        request_id: String::new(),
        incident_id: "flood-1".into(),
        teams,
        supplies,
    };
    check_error(incidents.request_resources(request(vec![], vec![])).await, Code::InvalidArgument, Some("teams"));
    check_error(
        incidents
            .request_resources(request(vec![pb::TeamNeed { capability: "boat".into(), min_tier: 1, count: 0 }], vec![]))
            .await,
        Code::InvalidArgument,
        Some("teams[0].count"),
    );
    check_error(
        incidents
            .request_resources(request(vec![], vec![pb::SupplyNeed { item_code: "helicopter".into(), quantity: 1 }]))
            .await,
        Code::NotFound,
        None,
    );
    check_error(
        incidents
            .request_resources(request(vec![], vec![pb::SupplyNeed { item_code: "sandbag".into(), quantity: 0 }]))
            .await,
        Code::InvalidArgument,
        Some("supplies[0].quantity"),
    );
    let unchanged = incidents
        .get_incident(pb::GetIncidentRequest { id: "flood-1".into(), as_of: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.version, 1, "refused requests changed nothing");
}
