//! Access and overload: tokens and roles, a full write queue, a failed disk.

use std::sync::{Arc, Condvar, Mutex};

use muster_client::proto as pb;
use muster_server::domain::{LogRecord, Timestamp};
use muster_server::engine::EngineConfig;
use muster_server::store::{Append, MemoryStore, RequestKey, RequestRecord, Store, StoreError};
use muster_tests::{Options, TestServer};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{check_error, raw_call, register, secret, token};

#[tokio::test]
async fn tokens_and_roles_limit_what_each_caller_may_do() {
    let tokens = vec![
        token("duty-officer", "commander"),
        token("screen", "observer"),
        token("wr01app", "team:WR-01"),
        token("exercise", "drill"),
    ];
    let server = TestServer::start_with(Options { tokens: tokens.clone(), ..Options::default() }).await;

    let anonymous = server.client().await.roster().list_teams(pb::ListTeamsRequest::default()).await;
    check_error(anonymous, Code::Unauthenticated, None);
    let forged = server
        .client_with_token("not-a-real-token-at-all")
        .await
        .roster()
        .list_teams(pb::ListTeamsRequest::default())
        .await;
    check_error(forged, Code::Unauthenticated, None);

    let mut commander = server.client_with_token(&secret("duty-officer")).await.roster();
    commander.register_team(register("WR-01", "")).await.unwrap();
    commander.register_team(register("WR-02", "")).await.unwrap();

    let mut observer = server.client_with_token(&secret("screen")).await.roster();
    assert_eq!(observer.list_teams(pb::ListTeamsRequest::default()).await.unwrap().into_inner().teams.len(), 2);
    check_error(observer.register_team(register("X", "")).await, Code::PermissionDenied, None);

    let mut app = server.client_with_token(&secret("wr01app")).await.roster();
    let own = pb::ReportStatusRequest {
        team_id: "WR-01".into(),
        status: pb::TeamStatus::OutOfService.into(),
        ..Default::default()
    };
    app.report_status(own).await.unwrap();
    let other = pb::ReportStatusRequest {
        team_id: "WR-02".into(),
        status: pb::TeamStatus::OutOfService.into(),
        ..Default::default()
    };
    check_error(app.report_status(other).await, Code::PermissionDenied, None);
    check_error(app.register_team(register("Y", "")).await, Code::PermissionDenied, None);

    let mut drill = server.client_with_token(&secret("exercise")).await.roster();
    check_error(drill.list_teams(pb::ListTeamsRequest::default()).await, Code::PermissionDenied, None);

    let events = server
        .client_with_token(&secret("screen"))
        .await
        .audit()
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let actors: Vec<_> = events.iter().map(|event| event.actor.as_str()).collect();
    assert_eq!(actors, vec!["duty-officer", "duty-officer", "wr01app"], "the log names the token that did it");
}

/// Who calls, in the matrix below: a letter per configured token, `n` for
/// no token and `b` for a token the server does not know.
const CALLERS: &[(char, Option<&str>)] = &[
    ('c', Some("duty-secret-token-0123456789")),
    ('o', Some("screen-secret-token-0123456789")),
    ('t', Some("near-secret-token-0123456789")),
    ('x', Some("far-secret-token-0123456789")),
    ('d', Some("exercise-secret-token-0123456789")),
    ('n', None),
    ('b', Some("nobody-knows-this-token-0123")),
];

/// Every method of the server, called by every kind of caller: allowed
/// where `api.md` says so, `PERMISSION_DENIED` for a known token's role
/// elsewhere, `UNAUTHENTICATED` without a known token (health is open).
/// Letters: c commander, o observer, t the team the call is about
/// (W-NEAR), x another team (W-FAR), d drill; `n` marks an open method.
#[tokio::test]
async fn every_method_with_every_role_is_allowed_or_refused_as_the_access_table_says() {
    use prost::Message as _;
    let tokens = vec![
        token("duty", "commander"),
        token("screen", "observer"),
        token("near", "team:W-NEAR"),
        token("far", "team:W-FAR"),
        token("exercise", "drill"),
    ];
    let server = TestServer::start_with(Options { tokens, ..Options::default() }).await;
    let commander = server.client_with_token(&secret("duty")).await;
    commander
        .imports()
        .import(pb::ImportRequest {
            request_id: String::new(),
            name: "world.toml".into(),
            toml: crate::dispatch::WORLD.into(),
        })
        .await
        .unwrap();
    let mut incidents = commander.incidents();
    crate::dispatch::declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 0).await;
    let dispatched = incidents
        .dispatch(pb::DispatchRequest { incident_id: "A".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let assignment = dispatched.assignments[0].clone();
    assert_eq!(assignment.resource, Some(pb::assignment::Resource::TeamId("W-NEAR".into())));

    let near = || "W-NEAR".to_owned();
    let rows: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/grpc.health.v1.Health/Check", vec![], "cotxdnb"),
        ("/grpc.health.v1.Health/Watch", vec![], "cotxdnb"),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", vec![], "cotxd"),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", vec![], "cotxd"),
        ("/muster.v1.RosterService/RegisterTeam", vec![], "c"),
        (
            "/muster.v1.RosterService/GetTeam",
            pb::GetTeamRequest { id: near(), ..Default::default() }.encode_to_vec(),
            "cotx",
        ),
        ("/muster.v1.RosterService/ListTeams", vec![], "cotx"),
        ("/muster.v1.RosterService/UpdateTeam", vec![], "c"),
        (
            "/muster.v1.RosterService/ReportStatus",
            pb::ReportStatusRequest { team_id: near(), ..Default::default() }.encode_to_vec(),
            "ct",
        ),
        ("/muster.v1.RosterService/WatchTeams", vec![], "cotx"),
        ("/muster.v1.ReserveService/DefineItem", vec![], "c"),
        ("/muster.v1.ReserveService/RegisterDepot", vec![], "c"),
        ("/muster.v1.ReserveService/AdjustStock", vec![], "c"),
        ("/muster.v1.ReserveService/SetMinReserve", vec![], "c"),
        ("/muster.v1.ReserveService/TransferStock", vec![], "c"),
        ("/muster.v1.ReserveService/GetStock", vec![], "cotx"),
        ("/muster.v1.ReserveService/ListStock", vec![], "cotx"),
        ("/muster.v1.ReserveService/ListLedger", vec![], "cotx"),
        ("/muster.v1.ReserveService/ListItems", vec![], "cotx"),
        ("/muster.v1.ReserveService/ListDepots", vec![], "cotx"),
        ("/muster.v1.ImportService/Import", vec![], "c"),
        ("/muster.v1.PlanService/PutPlan", vec![], "c"),
        ("/muster.v1.PlanService/GetPlan", vec![], "cotx"),
        ("/muster.v1.PlanService/ListPlans", vec![], "cotx"),
        ("/muster.v1.IncidentService/DeclareIncident", vec![], "c"),
        (
            "/muster.v1.IncidentService/GetIncident",
            pb::GetIncidentRequest { id: "A".into(), ..Default::default() }.encode_to_vec(),
            "cotx",
        ),
        ("/muster.v1.IncidentService/ListIncidents", vec![], "cotx"),
        ("/muster.v1.IncidentService/UpdateIncident", vec![], "c"),
        ("/muster.v1.IncidentService/CloseIncident", vec![], "c"),
        ("/muster.v1.IncidentService/RequestResources", vec![], "c"),
        (
            "/muster.v1.IncidentService/Dispatch",
            pb::DispatchRequest { incident_id: "A".into(), ..Default::default() }.encode_to_vec(),
            "c",
        ),
        (
            "/muster.v1.IncidentService/Dispatch",
            pb::DispatchRequest { dry_run: true, ..Default::default() }.encode_to_vec(),
            "co",
        ),
        ("/muster.v1.IncidentService/AssignResource", vec![], "c"),
        (
            "/muster.v1.IncidentService/ListAssignments",
            pb::ListAssignmentsRequest { team_id: near(), ..Default::default() }.encode_to_vec(),
            "cot",
        ),
        ("/muster.v1.IncidentService/ListAssignments", vec![], "co"),
        (
            "/muster.v1.IncidentService/UpdateAssignment",
            pb::UpdateAssignmentRequest { assignment_id: assignment.id.clone(), ..Default::default() }.encode_to_vec(),
            "ct",
        ),
        ("/muster.v1.IncidentService/WatchIncidents", vec![], "co"),
        (
            "/muster.v1.IncidentService/WatchAssignments",
            pb::WatchAssignmentsRequest { team_id: near() }.encode_to_vec(),
            "cot",
        ),
        ("/muster.v1.IncidentService/SetZone", vec![], "c"),
        ("/muster.v1.IncidentService/ClearZone", vec![], "c"),
        ("/muster.v1.IncidentService/ListZones", vec![], "cotx"),
        ("/muster.v1.AuditService/ListEvents", vec![], "co"),
        ("/muster.v1.AuditService/GetDigest", vec![], "cotx"),
        ("/muster.v1.ExportService/IncidentReport", vec![], "co"),
        ("/muster.v1.ExportService/SituationGeoJson", vec![], "co"),
        ("/muster.v1.DrillService/RunDrill", vec![], "cd"),
        ("/muster.v1.DrillService/GetDrillReport", vec![], "cd"),
        ("/muster.v1.DrillService/ReplayDrill", vec![], "cd"),
        ("/muster.v1.DrillService/ListDrillRuns", vec![], "cd"),
        ("/muster.v1.DrillService/ExportIncidentAsDrill", vec![], "cd"),
        ("/muster.v1.DrillService/RenderDrillReport", vec![], "cd"),
    ];

    // The rows name every method served, no more.
    // A team asking about an assignment it does not hold learns nothing,
    // not even whether it exists.
    let channel = server.channel().await;
    for assignment_id in ["A999", "not an id"] {
        let body = pb::UpdateAssignmentRequest { assignment_id: assignment_id.into(), ..Default::default() };
        let far = raw_call(
            &channel,
            Some("far-secret-token-0123456789"),
            "/muster.v1.IncidentService/UpdateAssignment",
            body.encode_to_vec(),
        )
        .await;
        assert_eq!(far.unwrap_err().code(), Code::PermissionDenied, "{assignment_id}");
    }

    let served = muster_server::grpc::auth::served_methods();
    let called: std::collections::BTreeSet<String> = rows.iter().map(|row| row.0.to_owned()).collect();
    assert_eq!(called, served, "the matrix must call every method");

    let mut wrong = Vec::new();
    for (path, body, allowed) in &rows {
        for (who, token) in CALLERS {
            let result = raw_call(&channel, *token, path, body.clone()).await;
            let code = result.as_ref().err().map(tonic::Status::code);
            let expected_allowed = allowed.contains(*who) || (allowed.contains('n') && *who == 'b');
            let ok = if expected_allowed {
                !matches!(code, Some(Code::PermissionDenied | Code::Unauthenticated))
            } else if matches!(who, 'n' | 'b') {
                code == Some(Code::Unauthenticated)
            } else {
                code == Some(Code::PermissionDenied)
            };
            if !ok {
                wrong.push(format!("{path} as {who}: {:?}", result.err()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn two_phones_of_one_team_are_two_actors_with_their_own_request_ids() {
    let tokens = vec![token("duty", "commander"), token("phone-a", "team:WR-01"), token("phone-b", "team:WR-01")];
    let server = TestServer::start_with(Options { tokens, ..Options::default() }).await;
    let mut commander = server.client_with_token(&secret("duty")).await.roster();
    commander.register_team(register("WR-01", "")).await.unwrap();
    let report = |status: pb::TeamStatus| pb::ReportStatusRequest {
        request_id: "report-1".into(),
        team_id: "WR-01".into(),
        status: status.into(),
        ..Default::default()
    };
    let mut phone_a = server.client_with_token(&secret("phone-a")).await.roster();
    let mut phone_b = server.client_with_token(&secret("phone-b")).await.roster();
    phone_a.report_status(report(pb::TeamStatus::OutOfService)).await.unwrap();
    // The same request_id from another phone is another request, not a retry.
    let second = phone_b.report_status(report(pb::TeamStatus::Available)).await.unwrap().into_inner();
    assert_eq!(second.status(), pb::TeamStatus::Available);
    let events = server
        .client_with_token(&secret("duty"))
        .await
        .audit()
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let actors: Vec<_> = events.iter().map(|event| event.actor.as_str()).collect();
    assert_eq!(actors, vec!["duty", "phone-a", "phone-b"]);
}

/// The read side of a fault-injecting store: straight to its in-memory `inner`.
macro_rules! delegate_reads {
    () => {
        fn position(&self) -> Result<u64, StoreError> {
            self.inner.position()
        }
        fn read(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError> {
            self.inner.read(from, limit)
        }
        fn request(&self, key: &RequestKey) -> Result<Option<RequestRecord>, StoreError> {
            self.inner.request(key)
        }
        fn requests_before(&self, before: Timestamp, limit: usize) -> Result<Vec<(Timestamp, RequestKey)>, StoreError> {
            self.inner.requests_before(before, limit)
        }
        fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError> {
            self.inner.forget_requests_before(before)
        }
        fn put_drill_run(&self, number: u64, summary: &[u8], run: &[u8]) -> Result<(), StoreError> {
            self.inner.put_drill_run(number, summary, run)
        }
        fn drill_run(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.drill_run(number)
        }
        fn drill_runs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
            self.inner.drill_runs(after, limit)
        }
        fn put_snapshot(&self, state: &muster_server::domain::State) -> Result<(), StoreError> {
            self.inner.put_snapshot(state)
        }
        fn snapshot_marks(&self) -> Result<Vec<muster_server::store::SnapshotMark>, StoreError> {
            self.inner.snapshot_marks()
        }
        fn snapshot(&self, sequence: u64) -> Result<Option<muster_server::domain::State>, StoreError> {
            self.inner.snapshot(sequence)
        }
    };
}

/// A store whose appends wait at a gate, to hold the writer mid-commit.
#[derive(Default)]
struct GateStore {
    inner: MemoryStore,
    gate: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    open: bool,
    waiting: usize,
}

impl GateStore {
    fn open(&self) {
        self.gate.lock().unwrap().open = true;
        self.changed.notify_all();
    }

    fn wait_for_writer(&self) {
        let mut state = self.gate.lock().unwrap();
        while state.waiting == 0 {
            state = self.changed.wait(state).unwrap();
        }
    }
}

impl Store for GateStore {
    fn append(&self, append: Append<'_>) -> Result<u64, StoreError> {
        let mut state = self.gate.lock().unwrap();
        state.waiting += 1;
        self.changed.notify_all();
        while !state.open {
            state = self.changed.wait(state).unwrap();
        }
        drop(state);
        self.inner.append(append)
    }
    delegate_reads!();
}

#[tokio::test]
async fn a_full_write_queue_is_resource_exhausted_with_retry_info_and_applies_nothing() {
    let store = Arc::new(GateStore::default());
    let server = TestServer::start_with(Options {
        store: Some(store.clone()),
        engine: Some(EngineConfig { queue_capacity: 1, max_batch: 1, ..EngineConfig::default() }),
        ..Options::default()
    })
    .await;
    let client = server.client().await;
    let mut first = client.roster();
    let held = tokio::spawn(async move { first.register_team(register("T-1", "")).await });
    let waiting = store.clone();
    tokio::task::spawn_blocking(move || waiting.wait_for_writer()).await.unwrap();
    // T-1 is held in its sync. Room remains for one group being decided
    // (waiting to be synced) and one command in the queue: of three more
    // sent at once, at least one finds everything full.
    let mut contenders = tokio::task::JoinSet::new();
    for id in ["T-2", "T-3", "T-4"] {
        let mut roster = client.roster();
        contenders.spawn(async move { (id, roster.register_team(register(id, "")).await) });
    }
    let (refused_id, refused) = contenders.join_next().await.unwrap().unwrap();
    let status = refused.expect_err("a command must be refused while the queue is full");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().is_some(), "the refusal says to retry: {status:?}");
    assert!(muster_client::is_retryable(&status));
    store.open();
    held.await.unwrap().unwrap();
    let mut accepted = Vec::new();
    while let Some(done) = contenders.join_next().await {
        let (id, result) = done.unwrap();
        match result {
            Ok(_) => accepted.push(id),
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }
    assert!(!accepted.contains(&refused_id));
    assert!(accepted.len() <= 2, "at most a decided group and a queued command wait: {accepted:?}");
    accepted.sort_unstable();
    let teams = client.roster().list_teams(pb::ListTeamsRequest::default()).await.unwrap().into_inner().teams;
    let expected: Vec<&str> = std::iter::once("T-1").chain(accepted.iter().copied()).collect();
    assert_eq!(
        teams.iter().map(|team| team.id.as_str()).collect::<Vec<_>>(),
        expected,
        "a refused command applied nothing"
    );
}

/// The writer decides the next group while the previous one syncs: a retry
/// that arrives then finds the first request (not yet on disk) and applies
/// nothing, and neither is answered before that request is durable.
#[tokio::test]
async fn a_retry_while_the_first_request_syncs_waits_for_it_and_applies_nothing() {
    let store = Arc::new(GateStore::default());
    let server = TestServer::start_with(Options { store: Some(store.clone()), ..Options::default() }).await;
    let client = server.client().await;
    let mut first = client.roster();
    let held = tokio::spawn(async move { first.register_team(register("T-1", "r-1")).await });
    let waiting = store.clone();
    tokio::task::spawn_blocking(move || waiting.wait_for_writer()).await.unwrap();
    let mut again = client.roster();
    let retry = tokio::spawn(async move { again.register_team(register("T-1", "r-1")).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!held.is_finished() && !retry.is_finished(), "nothing is answered before it is on disk");
    store.open();
    let first = held.await.unwrap().unwrap().into_inner();
    let retried = retry.await.unwrap().expect("the retry gets the first answer, not ALREADY_EXISTS").into_inner();
    assert_eq!(retried, first);
    let events = client.audit().list_events(pb::ListEventsRequest::default()).await.unwrap().into_inner().events;
    assert_eq!(events.len(), 1, "the retry applied nothing: {events:?}");
}

/// A store whose disk has failed: every append is an I/O error.
#[derive(Default)]
struct FailingStore {
    inner: MemoryStore,
    failing: std::sync::atomic::AtomicBool,
}

impl Store for FailingStore {
    fn append(&self, append: Append<'_>) -> Result<u64, StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Io {
                operation: "fdatasync",
                path: "db".into(),
                source: std::io::Error::other("injected disk failure"),
            });
        }
        self.inner.append(append)
    }
    delegate_reads!();
}

#[tokio::test]
async fn a_failed_sync_is_unavailable_nothing_unsynced_is_visible_and_writes_stay_refused() {
    let store = Arc::new(FailingStore::default());
    let server = TestServer::start_with(Options { store: Some(store.clone()), ..Options::default() }).await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("T-1", "")).await.unwrap();
    store.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    check_error(roster.register_team(register("T-2", "")).await, Code::Unavailable, None);
    let teams = roster.list_teams(pb::ListTeamsRequest::default()).await.unwrap().into_inner().teams;
    assert_eq!(teams.len(), 1, "a change that was not made durable is not visible");
    store.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    check_error(roster.register_team(register("T-3", "")).await, Code::Unavailable, None);
    assert_eq!(store.inner.read(1, 100).unwrap().len(), 1, "only the acknowledged change is in the log");
}

#[tokio::test]
async fn one_connection_may_hold_only_so_many_watch_streams() {
    use muster_server::grpc::watch::MAX_WATCHERS_PER_CONNECTION;
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut open = Vec::new();
    for _ in 0..MAX_WATCHERS_PER_CONNECTION {
        open.push(client.roster().watch_teams(pb::WatchTeamsRequest {}).await.unwrap().into_inner());
    }
    let refused = client.incidents().watch_incidents(pb::WatchIncidentsRequest::default()).await;
    check_error(refused, Code::ResourceExhausted, None);
    // Another connection has its own allowance.
    let other = server.client().await;
    other.roster().watch_teams(pb::WatchTeamsRequest {}).await.unwrap();
    // A stream the client drops gives its place back once the server
    // notices (its task ends when the client's side closes).
    drop(open.pop());
    let mut admitted = None;
    for _ in 0..200 {
        match client.roster().watch_teams(pb::WatchTeamsRequest {}).await {
            Ok(stream) => {
                admitted = Some(stream);
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    assert!(admitted.is_some(), "the dropped stream's place came back");
}

#[tokio::test]
async fn a_refusal_that_names_a_huge_team_id_stays_a_short_permission_denied() {
    let server =
        TestServer::start_with(Options { tokens: vec![token("wr01app", "team:WR-01")], ..Options::default() }).await;
    let mut app = server.client_with_token(&secret("wr01app")).await.incidents();
    let huge = "W".repeat(100_000);
    let listed = app.list_assignments(pb::ListAssignmentsRequest { team_id: huge.clone(), ..Default::default() }).await;
    let watched = app.watch_assignments(pb::WatchAssignmentsRequest { team_id: huge }).await.map(|_| ());
    for refused in [listed.map(|_| ()), watched] {
        let status = check_error(refused, Code::PermissionDenied, None);
        assert!(status.message().len() <= 1_024, "a refusal of {} bytes", status.message().len());
    }
}
