//! RosterService end to end: every method, paging, filters, versions,
//! retries, the watch stream and every error code the service returns.

use muster_client::proto as pb;
use muster_server::engine::EngineConfig;
use muster_tests::{Options, TestServer};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::support::{check_error, register, team};

#[tokio::test]
async fn register_then_get_returns_the_team_at_version_1_and_at_home() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let registered = roster.register_team(register("WR-01", "r1")).await.unwrap().into_inner();
    assert_eq!(registered.version, 1);
    assert_eq!(registered.status(), pb::TeamStatus::Available);
    assert_eq!(registered.position, registered.home);
    assert!(registered.assignment_id.is_empty());
    assert!(registered.last_report_at.is_none());
    let fetched = roster.get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!(fetched, registered);
}

#[tokio::test]
async fn register_takes_an_initial_status_and_position_but_never_version_or_assignment() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let mut input = team("MED-01");
    input.status = pb::TeamStatus::OutOfService.into();
    input.position = Some(pb::LatLng { lat: 28.3, lng: 113.0 });
    input.version = 42;
    input.assignment_id = "A-forged".into();
    input.last_report_at = Some(muster_client::Timestamp { seconds: 1, nanos: 0 });
    let registered = roster
        .register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(input) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.status(), pb::TeamStatus::OutOfService);
    assert_eq!(registered.position, Some(pb::LatLng { lat: 28.3, lng: 113.0 }));
    assert_eq!(registered.version, 1);
    assert!(registered.assignment_id.is_empty());
    assert!(registered.last_report_at.is_none());
}

#[tokio::test]
async fn registering_a_taken_id_is_already_exists_but_a_retry_gets_the_first_answer() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let first = roster.register_team(register("WR-01", "req-1")).await.unwrap().into_inner();
    let retry = roster.register_team(register("WR-01", "req-1")).await.unwrap().into_inner();
    assert_eq!(retry, first, "a retry with the same request_id must get the first answer");
    check_error(roster.register_team(register("WR-01", "req-2")).await, Code::AlreadyExists, None);
    check_error(roster.register_team(register("WR-01", "")).await, Code::AlreadyExists, None);
    let events = server
        .client()
        .await
        .audit()
        .list_events(pb::ListEventsRequest { team_id: "WR-01".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events.len(), 1, "the retry must not append anything: {events:?}");
}

#[tokio::test]
async fn a_retry_after_the_team_changed_still_gets_the_first_answer() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let first = roster.register_team(register("WR-01", "req-1")).await.unwrap().into_inner();
    roster
        .report_status(pb::ReportStatusRequest {
            team_id: "WR-01".into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let retry = roster.register_team(register("WR-01", "req-1")).await.unwrap().into_inner();
    assert_eq!(retry, first);
}

#[tokio::test]
async fn reusing_a_request_id_for_another_request_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("WR-01", "same")).await.unwrap();
    check_error(roster.register_team(register("WR-02", "same")).await, Code::InvalidArgument, Some("request_id"));
    check_error(roster.get_team(pb::GetTeamRequest { id: "WR-02".into(), as_of: None }).await, Code::NotFound, None);
}

/// Registers `team` changed by `change` and expects `INVALID_ARGUMENT` naming `field`.
async fn check_invalid_team(roster: &mut RosterClient, field: &str, change: impl FnOnce(&mut pb::Team)) {
    let mut input = team("T-1");
    change(&mut input);
    let result = roster.register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(input) }).await;
    check_error(result, Code::InvalidArgument, Some(field));
}

type RosterClient = pb::roster_service_client::RosterServiceClient<muster_client::AuthChannel>;

#[tokio::test]
async fn malformed_teams_are_invalid_argument_naming_the_field_and_change_nothing() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    check_invalid_team(&mut roster, "team.id", |team| team.id = String::new()).await;
    check_invalid_team(&mut roster, "team.id", |team| team.id = "has space".into()).await;
    check_invalid_team(&mut roster, "team.id", |team| team.id = "x".repeat(65)).await;
    check_invalid_team(&mut roster, "team.name", |team| team.name = String::new()).await;
    check_invalid_team(&mut roster, "team.name", |team| team.name = "救".repeat(257)).await;
    check_invalid_team(&mut roster, "team.organization", |team| team.organization = "o".repeat(257)).await;
    check_invalid_team(&mut roster, "team.capabilities[0].code", |team| team.capabilities[0].code = "Water".into())
        .await;
    check_invalid_team(&mut roster, "team.capabilities[0].tier", |team| team.capabilities[0].tier = 0).await;
    check_invalid_team(&mut roster, "team.capabilities[0].tier", |team| team.capabilities[0].tier = 5).await;
    check_invalid_team(&mut roster, "team.capabilities", |team| {
        team.capabilities.push(pb::Capability { code: "water_rescue".into(), tier: 1 })
    })
    .await;
    check_invalid_team(&mut roster, "team.capabilities", |team| {
        team.capabilities = (0..1_001).map(|index| pb::Capability { code: format!("c{index}"), tier: 1 }).collect()
    })
    .await;
    check_invalid_team(&mut roster, "team.home", |team| team.home = None).await;
    check_invalid_team(&mut roster, "team.home.lat", |team| team.home = Some(pb::LatLng { lat: 91.0, lng: 0.0 })).await;
    check_invalid_team(&mut roster, "team.home.lng", |team| team.home = Some(pb::LatLng { lat: 0.0, lng: f64::NAN }))
        .await;
    check_invalid_team(&mut roster, "team.position.lat", |team| {
        team.position = Some(pb::LatLng { lat: -90.5, lng: 0.0 })
    })
    .await;
    check_invalid_team(&mut roster, "team.speed_kmh", |team| team.speed_kmh = 0.0).await;
    check_invalid_team(&mut roster, "team.speed_kmh", |team| team.speed_kmh = f64::INFINITY).await;
    check_invalid_team(&mut roster, "team.headcount", |team| team.headcount = 0).await;
    check_invalid_team(&mut roster, "team.status", |team| team.status = pb::TeamStatus::Assigned.into()).await;
    check_invalid_team(&mut roster, "team.status", |team| team.status = 99).await;
    check_invalid_team(&mut roster, "team.insurance_expires.nanos", |team| {
        team.insurance_expires = Some(muster_client::Timestamp { seconds: 0, nanos: -1 })
    })
    .await;
    check_invalid_team(&mut roster, "team.members[1].id", |team| {
        let member = pb::Member { id: "m1".into(), name: "Li Wei".into(), on_duty: true, ..Default::default() };
        team.members = vec![member.clone(), member];
        team.headcount = 0;
    })
    .await;
    check_invalid_team(&mut roster, "team.headcount", |team| {
        team.members = vec![pb::Member { id: "m1".into(), name: "Li Wei".into(), on_duty: true, ..Default::default() }];
        team.headcount = 5;
    })
    .await;
    check_error(
        roster.register_team(pb::RegisterTeamRequest { request_id: "bad id!".into(), team: Some(team("T-1")) }).await,
        Code::InvalidArgument,
        Some("request_id"),
    );
    check_error(
        roster.register_team(pb::RegisterTeamRequest { request_id: String::new(), team: None }).await,
        Code::InvalidArgument,
        Some("team"),
    );
    let listed = roster.list_teams(pb::ListTeamsRequest::default()).await.unwrap().into_inner();
    assert!(listed.teams.is_empty(), "nothing of a refused request may be applied: {:?}", listed.teams);
}

#[tokio::test]
async fn a_256_character_chinese_name_is_allowed_and_members_set_the_headcount() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let mut input = team("VOL-01");
    input.name = "蓝天救援队".repeat(51) + "救";
    input.headcount = 0;
    input.members = vec![
        pb::Member {
            id: "m1".into(), name: "王芳".into(), role: "leader".into(), on_duty: true, ..Default::default()
        },
        pb::Member {
            id: "m2".into(), name: "李强".into(), role: "diver".into(), on_duty: false, ..Default::default()
        },
        pb::Member {
            id: "m3".into(), name: "张伟".into(), role: "medic".into(), on_duty: true, ..Default::default()
        },
    ];
    let registered = roster
        .register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(input.clone()) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(registered.name.chars().count(), 256);
    assert_eq!(registered.headcount, 2, "headcount is the number of members on duty");
    assert_eq!(registered.members, input.members);
}

#[tokio::test]
async fn get_team_refuses_unknown_and_malformed_ids() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    check_error(roster.get_team(pb::GetTeamRequest { id: "nobody".into(), as_of: None }).await, Code::NotFound, None);
    check_error(
        roster.get_team(pb::GetTeamRequest { id: String::new(), as_of: None }).await,
        Code::InvalidArgument,
        Some("id"),
    );
}

async fn register_many(
    server: &TestServer,
    ids: impl IntoIterator<Item = String>,
    change: impl Fn(&str, &mut pb::Team),
) {
    let client = server.client().await;
    let mut calls = tokio::task::JoinSet::new();
    for id in ids {
        let mut input = team(&id);
        change(&id, &mut input);
        let mut roster = client.roster();
        calls.spawn(async move {
            roster.register_team(pb::RegisterTeamRequest { request_id: String::new(), team: Some(input) }).await
        });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
    }
}

#[tokio::test]
async fn list_teams_pages_in_id_order_and_filters_by_capability_and_status() {
    let server = TestServer::start().await;
    let ids: Vec<String> = (0..25).map(|index| format!("T-{index:02}")).collect();
    register_many(&server, ids.clone(), |id, team| {
        let index: usize = id[2..].parse().unwrap();
        if index.is_multiple_of(3) {
            team.capabilities.push(pb::Capability { code: "hazmat".into(), tier: 1 });
        }
        if index.is_multiple_of(5) {
            team.status = pb::TeamStatus::OutOfService.into();
        }
    })
    .await;
    let mut roster = server.client().await.roster();

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = roster
            .list_teams(pb::ListTeamsRequest { page_size: 10, page_token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.teams.len() <= 10);
        seen.extend(page.teams.into_iter().map(|team| team.id));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every team once, in id order");

    let hazmat = roster
        .list_teams(pb::ListTeamsRequest { capability: "hazmat".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let expected: Vec<String> =
        ids.iter().enumerate().filter(|(index, _)| index % 3 == 0).map(|(_, id)| id.clone()).collect();
    assert_eq!(hazmat.teams.iter().map(|team| team.id.clone()).collect::<Vec<_>>(), expected);

    let out = roster
        .list_teams(pb::ListTeamsRequest {
            status: pb::TeamStatus::OutOfService.into(),
            capability: "hazmat".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.teams.iter().map(|team| team.id.as_str()).collect::<Vec<_>>(), vec!["T-00", "T-15"]);

    check_error(
        roster.list_teams(pb::ListTeamsRequest { page_token: "not-a-token".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        Some("page_token"),
    );
    check_error(
        roster.list_teams(pb::ListTeamsRequest { page_size: -1, ..Default::default() }).await,
        Code::InvalidArgument,
        Some("page_size"),
    );
    check_error(
        roster.list_teams(pb::ListTeamsRequest { capability: "Not A Code".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        Some("capability"),
    );
    check_error(
        roster.list_teams(pb::ListTeamsRequest { status: 77, ..Default::default() }).await,
        Code::InvalidArgument,
        Some("status"),
    );
}

#[tokio::test]
async fn list_teams_defaults_to_100_and_lowers_page_sizes_above_1000() {
    let server = TestServer::start().await;
    register_many(&server, (0..1_005).map(|index| format!("T-{index:04}")), |_, _| {}).await;
    let mut roster = server.client().await.roster();
    let default_page = roster.list_teams(pb::ListTeamsRequest::default()).await.unwrap().into_inner();
    assert_eq!(default_page.teams.len(), 100);
    let big =
        roster.list_teams(pb::ListTeamsRequest { page_size: 50_000, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(big.teams.len(), 1_000);
    assert!(!big.next_page_token.is_empty());
    let rest = roster
        .list_teams(pb::ListTeamsRequest { page_size: 50_000, page_token: big.next_page_token, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.teams.len(), 5);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn update_team_replaces_roster_data_checks_versions_and_never_takes_status() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("WR-01", "")).await.unwrap();

    let mut changed = team("WR-01");
    changed.name = "Water rescue squad one".into();
    changed.capabilities = vec![pb::Capability { code: "boat".into(), tier: 1 }];
    changed.status = pb::TeamStatus::OutOfService.into();
    changed.position = Some(pb::LatLng { lat: 1.0, lng: 1.0 });
    changed.version = 99;
    let updated = roster
        .update_team(pb::UpdateTeamRequest {
            request_id: "u1".into(),
            team: Some(changed.clone()),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.name, "Water rescue squad one");
    assert_eq!(updated.capabilities, changed.capabilities);
    assert_eq!(updated.status(), pb::TeamStatus::Available, "status changes only through ReportStatus");
    assert_eq!(updated.position, updated.home, "position changes only through ReportStatus");

    let stale = roster
        .update_team(pb::UpdateTeamRequest {
            request_id: String::new(),
            team: Some(team("WR-01")),
            expected_version: 1,
        })
        .await;
    check_error(stale, Code::Aborted, None);

    let unchanged = roster
        .update_team(pb::UpdateTeamRequest {
            request_id: String::new(),
            team: Some(changed.clone()),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.version, 2, "an update that changes nothing does not bump the version");

    check_error(
        roster
            .update_team(pb::UpdateTeamRequest {
                request_id: String::new(),
                team: Some(team("ghost")),
                expected_version: 0,
            })
            .await,
        Code::NotFound,
        None,
    );
    let mut bad = team("WR-01");
    bad.capabilities[0].tier = 9;
    check_error(
        roster
            .update_team(pb::UpdateTeamRequest { request_id: String::new(), team: Some(bad), expected_version: 0 })
            .await,
        Code::InvalidArgument,
        Some("team.capabilities[0].tier"),
    );
    let now = roster.get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!(now, updated, "refused updates change nothing");
}

#[tokio::test]
async fn report_status_moves_status_and_position_and_refuses_assignment_statuses() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("WR-01", "")).await.unwrap();
    server.clock.advance_seconds(60);

    let report = |status: pb::TeamStatus, position: Option<pb::LatLng>| pb::ReportStatusRequest {
        request_id: String::new(),
        team_id: "WR-01".into(),
        status: status.into(),
        position,
    };
    let out = roster.report_status(report(pb::TeamStatus::OutOfService, None)).await.unwrap().into_inner();
    assert_eq!(out.status(), pb::TeamStatus::OutOfService);
    assert_eq!(out.version, 2);
    assert_eq!(out.last_report_at.map(|time| time.seconds), Some(muster_tests::START_SECONDS + 60));

    let moved = roster
        .report_status(report(pb::TeamStatus::Unspecified, Some(pb::LatLng { lat: 28.25, lng: 112.99 })))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.status(), pb::TeamStatus::OutOfService, "unspecified status leaves it unchanged");
    assert_eq!(moved.position, Some(pb::LatLng { lat: 28.25, lng: 112.99 }));
    assert_eq!(moved.version, 3);

    server.clock.advance_seconds(30);
    let heartbeat = roster.report_status(report(pb::TeamStatus::Unspecified, None)).await.unwrap().into_inner();
    assert_eq!(heartbeat.version, 4);
    assert_eq!(heartbeat.last_report_at.map(|time| time.seconds), Some(muster_tests::START_SECONDS + 90));

    for status in [pb::TeamStatus::Assigned, pb::TeamStatus::EnRoute, pb::TeamStatus::OnScene] {
        check_error(roster.report_status(report(status, None)).await, Code::FailedPrecondition, None);
    }
    let back = roster.report_status(report(pb::TeamStatus::Available, None)).await.unwrap().into_inner();
    assert_eq!(back.status(), pb::TeamStatus::Available);

    check_error(
        roster.report_status(pb::ReportStatusRequest { team_id: "ghost".into(), ..Default::default() }).await,
        Code::NotFound,
        None,
    );
    check_error(
        roster.report_status(report(pb::TeamStatus::Unspecified, Some(pb::LatLng { lat: 0.0, lng: 200.0 }))).await,
        Code::InvalidArgument,
        Some("position.lng"),
    );
    check_error(
        roster
            .report_status(pb::ReportStatusRequest { team_id: "WR-01".into(), status: 42, ..Default::default() })
            .await,
        Code::InvalidArgument,
        Some("status"),
    );
}

#[tokio::test]
async fn report_status_retries_over_a_weak_link_apply_once() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("WR-01", "")).await.unwrap();
    let request = pb::ReportStatusRequest {
        request_id: "app-17".into(),
        team_id: "WR-01".into(),
        status: pb::TeamStatus::OutOfService.into(),
        position: Some(pb::LatLng { lat: 28.3, lng: 112.9 }),
    };
    let first = roster.report_status(request.clone()).await.unwrap().into_inner();
    for _ in 0..3 {
        let again = roster.report_status(request.clone()).await.unwrap().into_inner();
        assert_eq!(again, first);
    }
    let now = roster.get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!(now.version, 2, "three retries applied nothing");
}

#[tokio::test]
async fn get_team_as_of_returns_the_team_as_it_stood_then() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let before = muster_client::Timestamp { seconds: muster_tests::START_SECONDS - 1, nanos: 0 };
    roster.register_team(register("WR-01", "")).await.unwrap();
    server.clock.advance_seconds(600);
    let registered_at = muster_client::Timestamp { seconds: muster_tests::START_SECONDS + 300, nanos: 0 };
    roster
        .report_status(pb::ReportStatusRequest {
            team_id: "WR-01".into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let then = roster
        .get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: Some(registered_at) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.version, 1);
    assert_eq!(then.status(), pb::TeamStatus::Available);
    let now = roster.get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!(now.status(), pb::TeamStatus::OutOfService);
    check_error(
        roster.get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: Some(before) }).await,
        Code::NotFound,
        None,
    );
    check_error(
        roster
            .get_team(pb::GetTeamRequest {
                id: "WR-01".into(),
                as_of: Some(muster_client::Timestamp { seconds: 0, nanos: 2_000_000_000 }),
            })
            .await,
        Code::InvalidArgument,
        Some("as_of.nanos"),
    );
}

async fn next_event(stream: &mut tonic::Streaming<pb::TeamEvent>) -> pb::TeamEvent {
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the stream is open")
        .expect("no error")
}

#[tokio::test]
async fn watch_teams_sends_the_roster_then_every_change_in_order() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("A", "")).await.unwrap();
    roster.register_team(register("B", "")).await.unwrap();
    let mut stream = roster.watch_teams(pb::WatchTeamsRequest {}).await.unwrap().into_inner();
    let first = next_event(&mut stream).await;
    let second = next_event(&mut stream).await;
    assert_eq!((first.sequence, second.sequence), (0, 0), "the initial roster carries sequence 0");
    assert_eq!((first.team.unwrap().id, second.team.unwrap().id), ("A".to_owned(), "B".to_owned()));

    roster.register_team(register("C", "")).await.unwrap();
    roster
        .report_status(pb::ReportStatusRequest {
            team_id: "A".into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let registered = next_event(&mut stream).await;
    assert_eq!(registered.team.as_ref().unwrap().id, "C");
    assert_eq!(registered.sequence, 3);
    let reported = next_event(&mut stream).await;
    assert_eq!(reported.sequence, 4);
    let team = reported.team.unwrap();
    assert_eq!((team.id.as_str(), team.status(), team.version), ("A", pb::TeamStatus::OutOfService, 2));
}

#[tokio::test]
async fn a_watcher_that_never_reads_does_not_hold_up_the_writer_and_resyncs_when_it_does() {
    let server = TestServer::start_with(Options {
        engine: Some(EngineConfig { watch_buffer: 16, ..EngineConfig::default() }),
        ..Options::default()
    })
    .await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("WR-01", "")).await.unwrap();
    let mut stalled = roster.watch_teams(pb::WatchTeamsRequest {}).await.unwrap().into_inner();

    let writes = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        for index in 0..600 {
            let position = pb::LatLng { lat: 28.0 + f64::from(index) * 1e-4, lng: 112.9 };
            roster
                .report_status(pb::ReportStatusRequest {
                    team_id: "WR-01".into(),
                    position: Some(position),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    })
    .await;
    assert!(writes.is_ok(), "600 writes must complete while a watcher reads nothing");

    let mut last_version = 0;
    while last_version < 601 {
        let event = next_event(&mut stalled).await;
        last_version = last_version.max(event.team.unwrap().version);
    }
    assert_eq!(last_version, 601, "after catching up the watcher sees the latest version");
}
