//! Hostile input, end to end: every method of every service called with what
//! a careless or malicious client may send. Empty and missing fields;
//! coordinates out of range, NaN and infinities; quantities at the i64 edges
//! (`i64::MIN`, `i64::MAX`, -1, 0); ids over 64 characters and text over
//! 256; control characters and odd strings; unknown enum values (99, -1, and
//! the i32 edges); repeated fields of 1,001 entries; polygons of fewer than
//! three vertices, degenerate, self-intersecting, of 1,001 and of 100,000
//! vertices; page tokens forged or taken from another list; page sizes
//! negative or over 1,000; bytes that do not decode as the request at all
//! (not UTF-8 in a string field, truncated varints, nested groups, lengths
//! past the end); and a message over the 4 MiB limit.
//!
//! Each call must get the right code: `INVALID_ARGUMENT` naming the field,
//! in the message and in the `BadRequest` detail, by the field path the
//! server uses (`team.home.lat`, `zone.polygon`, `page_token`, ...);
//! `INVALID_ARGUMENT` with no particular field for bytes that are not the
//! request message; `NOT_FOUND`, `ALREADY_EXISTS`, `FAILED_PRECONDITION`,
//! `ABORTED` or `RESOURCE_EXHAUSTED` where the state decides; never
//! `INTERNAL` or `UNKNOWN`. The server stays up, and no refused call changes
//! the log's digest.
//!
//! One test per group of services, each on its own server with the same
//! small world, each a table of cases. Every case runs; a mismatch (the
//! case and the status the server gave, or the digest it moved) is
//! collected, not asserted at once, so one run shows every one of them. The
//! check is `support::check_error`'s, made to report instead of panic.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use muster_client::proto as pb;
use muster_tests::TestServer;
use prost::Message as _;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::{get_incident, raw_call, team, violations};

// ---------------------------------------------------------------------------
// What a case wants, and how a table of cases runs.
// ---------------------------------------------------------------------------

/// What the server must answer to one case.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// An answer: what the API documents for this input, and a read.
    Answered,
    /// Refused with this code (for `INVALID_ARGUMENT`: no particular field).
    Refused(Code),
    /// `INVALID_ARGUMENT` naming this field in the message and the `BadRequest` detail.
    Field(&'static str),
}

/// `INVALID_ARGUMENT` naming `name`.
fn field(name: &'static str) -> Want {
    Want::Field(name)
}

/// Bytes that are not the request message, or more of them than the 4 MiB
/// limit: `INVALID_ARGUMENT`, with no particular field.
const UNDECODABLE: Want = Want::Refused(Code::InvalidArgument);
/// `INVALID_ARGUMENT`, whichever field it names.
const INVALID: Want = Want::Refused(Code::InvalidArgument);
const NOT_FOUND: Want = Want::Refused(Code::NotFound);
const ALREADY_EXISTS: Want = Want::Refused(Code::AlreadyExists);
const FAILED_PRECONDITION: Want = Want::Refused(Code::FailedPrecondition);
const RESOURCE_EXHAUSTED: Want = Want::Refused(Code::ResourceExhausted);
const ABORTED: Want = Want::Refused(Code::Aborted);
/// A page size above 1,000: every list request documents "At most 1,000
/// (larger values are lowered)", and `api.md` says so too; answered.
const LOWERED: Want = Want::Answered;

/// One call of a case, not yet made.
type Call = Pin<Box<dyn Future<Output = Result<(), Status>>>>;

/// A call as a [`Call`].
fn boxed(call: impl Future<Output = Result<(), Status>> + 'static) -> Call {
    Box::pin(call)
}

/// A typed call as a case's future: `call!(client, method, request)` clones
/// the client and builds the request now, and calls when the case runs.
macro_rules! call {
    ($client:expr, $method:ident, $request:expr) => {{
        let mut client = $client.clone();
        let request = $request;
        async move { client.$method(request).await.map(|_| ()) }
    }};
}

/// One hostile call and what it must get.
struct Case {
    what: String,
    want: Want,
    call: Call,
}

/// The cases of one test, run in order.
#[derive(Default)]
struct Table {
    cases: Vec<Case>,
}

impl Table {
    fn add(&mut self, what: impl Into<String>, want: Want, call: impl Future<Output = Result<(), Status>> + 'static) {
        self.cases.push(Case { what: what.into(), want, call: Box::pin(call) });
    }
}

/// A status in brief (long messages and fields cut).
fn show(status: &Status) -> String {
    let message: String = status.message().chars().take(200).collect();
    let fields: Vec<String> = violations(status).into_iter().map(|field| field.chars().take(80).collect()).collect();
    format!("{:?} {message:?}, BadRequest fields {fields:?}", status.code())
}

fn describe(want: Want) -> String {
    match want {
        Want::Answered => "an answer".to_owned(),
        Want::Refused(Code::InvalidArgument) => "InvalidArgument".to_owned(),
        Want::Refused(code) => format!("{code:?}"),
        Want::Field(name) => format!("InvalidArgument naming {name:?} in the message and the BadRequest detail"),
    }
}

/// Why `result` is not what `want` asks, if it is not.
fn mismatch(result: &Result<(), Status>, want: Want) -> Option<String> {
    let status = match result {
        Ok(()) => {
            return match want {
                Want::Answered => None,
                _ => Some(format!("accepted; wanted {}", describe(want))),
            };
        }
        Err(status) => status,
    };
    let wrong = match want {
        Want::Answered => true,
        Want::Refused(code) => status.code() != code,
        Want::Field(name) => {
            status.code() != Code::InvalidArgument
                || !status.message().contains(name)
                || !violations(status).iter().any(|field| field == name)
        }
    };
    let never = if matches!(status.code(), Code::Internal | Code::Unknown) {
        " (INTERNAL and UNKNOWN are never an answer to a client's input)"
    } else {
        ""
    };
    wrong.then(|| format!("wanted {}, got {}{never}", describe(want), show(status)))
}

type Audit = pb::audit_service_client::AuditServiceClient<muster_client::AuthChannel>;

async fn digest(audit: &mut Audit) -> Result<pb::Digest, Status> {
    audit.get_digest(pb::GetDigestRequest { sequence: 0 }).await.map(tonic::Response::into_inner)
}

/// Runs every case of `table`, checking the answer and that the log's
/// digest did not move (after each case, so the one that moved it is
/// named), then that the server still serves; asserts once, at the end,
/// with every mismatch.
async fn run(server: &TestServer, table: Table) {
    // A connection of its own, so no hostile call can get in the way of the checks.
    let observer = server.client().await;
    let mut audit = observer.audit();
    let before = digest(&mut audit).await.expect("the digest before the hostile calls");
    let mut last = before.clone();
    let total = table.cases.len();
    let mut wrong = Vec::new();
    for case in table.cases {
        let result = case.call.await;
        if let Some(why) = mismatch(&result, case.want) {
            wrong.push(format!("{}: {why}", case.what));
        }
        match digest(&mut audit).await {
            Ok(now) if now == last => {}
            Ok(now) => {
                wrong.push(format!(
                    "{}: changed the log (sequence {} to {}, digest {} to {})",
                    case.what, last.sequence, now.sequence, last.digest, now.digest
                ));
                last = now;
            }
            Err(status) => {
                wrong.push(format!(
                    "{}: afterwards the server does not answer GetDigest: {}",
                    case.what,
                    show(&status)
                ));
                break;
            }
        }
    }
    let health =
        observer.health().check(muster_client::proto_health::HealthCheckRequest { service: String::new() }).await;
    let serving = muster_client::proto_health::health_check_response::ServingStatus::Serving;
    match health {
        Ok(reply) if reply.get_ref().status() == serving => {}
        other => wrong.push(format!("after the hostile calls the server is not serving: {other:?}")),
    }
    match digest(&mut audit).await {
        Ok(after) if after == before => {}
        after => wrong.push(format!("the digest moved over the whole table: from {before:?} to {after:?}")),
    }
    assert!(wrong.is_empty(), "{} problems in {total} hostile calls:\n{}", wrong.len(), wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// The world every test starts from.
// ---------------------------------------------------------------------------

/// The `request_id` the world's import used (reused with another file: refused).
const WORLD_REQUEST: &str = "hostile-world";

/// What the hostile calls aim at.
struct World {
    /// The hostile calls' client (the checks use another connection).
    client: muster_client::Client,
    /// A plain channel, for raw bytes.
    channel: Channel,
    /// A real `ListTeams` page token.
    teams_token: String,
    /// A real `ListIncidents` page token.
    incidents_token: String,
    /// A real `ListEvents` page token.
    events_token: String,
    /// The assignment the dispatcher made for incident A: DISPATCHED.
    assignment: String,
    /// The team that holds it.
    busy_team: String,
    /// The other team, free.
    free_team: String,
    /// A's team need, filled by `assignment`.
    filled_need: String,
    /// B's team need (one water_rescue team), open.
    team_need: String,
    /// B's supply need (10 pumps), open.
    supply_need: String,
    /// C's team need, cancelled when C was closed.
    cancelled_need: String,
    /// The log's last sequence once the world is set up.
    last_sequence: u64,
}

/// The `dispatch` world (depots D-NEAR with 4 pumps, floor 3, and D-FAR with
/// 5, floor 2; teams W-NEAR and W-FAR), a flood plan P-FLOOD, incident A
/// (level II) served by one team, incident B (level III) with an open team
/// need and an open need of 10 pumps, incident C closed, and zone Z-LIFTED
/// set and lifted.
async fn world(server: &TestServer) -> World {
    let client = server.client().await;
    client
        .imports()
        .import(pb::ImportRequest {
            request_id: WORLD_REQUEST.into(),
            name: "world.toml".into(),
            toml: crate::dispatch::WORLD.into(),
        })
        .await
        .unwrap();
    client
        .plans()
        .put_plan(pb::PutPlanRequest { request_id: String::new(), plan: Some(plan("P-FLOOD")) })
        .await
        .unwrap();
    let mut incidents = client.incidents();
    crate::dispatch::declare(&mut incidents, "A", 28.200, 112.951, pb::Level::Ii, 1, 0).await;
    let dispatched = incidents
        .dispatch(pb::DispatchRequest { incident_id: "A".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let assignment = dispatched.assignments.first().expect("a team is sent to A").clone();
    let Some(pb::assignment::Resource::TeamId(busy_team)) = assignment.resource.clone() else {
        panic!("A's need is served by a team: {assignment:?}");
    };
    let free_team = if busy_team == "W-NEAR" { "W-FAR" } else { "W-NEAR" }.to_owned();
    crate::dispatch::declare(&mut incidents, "B", 28.250, 112.950, pb::Level::Iii, 1, 10).await;
    crate::dispatch::declare(&mut incidents, "C", 28.210, 112.960, pb::Level::Iv, 1, 0).await;
    incidents.close_incident(pb::CloseIncidentRequest { request_id: String::new(), id: "C".into() }).await.unwrap();
    incidents.set_zone(set_zone("Z-LIFTED", triangle(), "")).await.unwrap();
    incidents.clear_zone(pb::ClearZoneRequest { request_id: String::new(), id: "Z-LIFTED".into() }).await.unwrap();

    let a = get_incident(&mut incidents, "A").await;
    let b = get_incident(&mut incidents, "B").await;
    let c = get_incident(&mut incidents, "C").await;
    let teams_token = client
        .roster()
        .list_teams(pb::ListTeamsRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let incidents_token = incidents
        .list_incidents(pb::ListIncidentsRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let events_token = client
        .audit()
        .list_events(pb::ListEventsRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(
        !teams_token.is_empty() && !incidents_token.is_empty() && !events_token.is_empty(),
        "every list used for tokens has a second page"
    );
    let last_sequence =
        client.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner().sequence;
    let channel = server.channel().await;
    World {
        client,
        channel,
        teams_token,
        incidents_token,
        events_token,
        assignment: assignment.id,
        busy_team,
        free_team,
        filled_need: need_id(&a, false),
        team_need: need_id(&b, false),
        supply_need: need_id(&b, true),
        cancelled_need: need_id(&c, false),
        last_sequence,
    }
}

/// The id of `incident`'s team need, or of its supply need.
fn need_id(incident: &pb::Incident, supply: bool) -> String {
    incident
        .needs
        .iter()
        .find(|need| matches!(need.resource, Some(pb::need::Resource::Supply(_))) == supply)
        .map(|need| need.id.clone())
        .expect("the incident's need")
}

// ---------------------------------------------------------------------------
// Hostile values.
// ---------------------------------------------------------------------------

/// One character over the API's 64 for an id.
fn long_id() -> String {
    "x".repeat(65)
}

/// One character over the API's 256 for free text.
fn long_text() -> String {
    "x".repeat(257)
}

/// One entry over the API's 1,000 for a repeated field.
const OVER_REPEATED: usize = 1_001;
/// One byte over the 4 MiB message limit.
const OVER_MESSAGE: usize = 4 * 1024 * 1024 + 1;
/// One byte over `RunDrill`'s 2 MiB for a script or a file.
const OVER_SCRIPT: usize = 2 * 1024 * 1024 + 1;
/// The most units of stock in one quantity: 10^12.
const MAX_QUANTITY: i64 = 1_000_000_000_000;
/// Enough characters that an error echoing them passes a client's 16 KiB of
/// response headers (message and `BadRequest` detail both carry them), and
/// little enough to stay under four times that.
const ECHO_CHARS: usize = 10_000;

/// `request_id`s that are not `[A-Za-z0-9._-]{1,64}`.
fn bad_request_ids() -> [(&'static str, String); 3] {
    [("65 characters", long_id()), ("a space", "retry 1".to_owned()), ("Cyrillic letters", "ключ-1".to_owned())]
}

/// Page tokens no list issues.
fn junk_tokens() -> Vec<(&'static str, String)> {
    vec![
        ("a page token with punctuation", "not a token!".to_owned()),
        ("a base64 page token", "V0FURVItTkVBUg==".to_owned()),
        ("a hex page token that is not UTF-8", "c328ff".to_owned()),
        ("a hex page token of odd length", "abc".to_owned()),
        ("a 100,000-character page token", "z".repeat(100_000)),
    ]
}

/// The hex of `text`'s bytes: how this server's tokens look, so a forged one
/// looks the same.
fn hex(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn at(lat: f64, lng: f64) -> Option<pb::LatLng> {
    Some(pb::LatLng { lat, lng })
}

fn time(seconds: i64, nanos: i32) -> Option<muster_client::Timestamp> {
    Some(muster_client::Timestamp { seconds, nanos })
}

fn ring(points: &[(f64, f64)]) -> Vec<pb::LatLng> {
    points.iter().map(|&(lat, lng)| pb::LatLng { lat, lng }).collect()
}

/// A valid triangle far from the world's teams and depots.
fn triangle() -> Vec<pb::LatLng> {
    ring(&[(10.0, 10.0), (10.0, 11.0), (11.0, 10.0)])
}

/// Three points, the last the first again: two distinct vertices, no area.
fn closed_on_itself() -> Vec<pb::LatLng> {
    ring(&[(10.0, 10.0), (10.0, 11.0), (10.0, 10.0)])
}

/// Three points on one line: no area.
fn collinear() -> Vec<pb::LatLng> {
    ring(&[(10.0, 10.0), (10.0, 10.5), (10.0, 11.0)])
}

/// A bow tie: its first and third edges cross.
fn bow_tie() -> Vec<pb::LatLng> {
    ring(&[(10.0, 10.0), (11.0, 11.0), (10.0, 11.0), (11.0, 10.0)])
}

/// `count` valid vertices on a small circle far from the world.
fn circle(count: usize) -> Vec<pb::LatLng> {
    (0..count)
        .map(|index| {
            let angle = index as f64 * std::f64::consts::TAU / count as f64;
            pb::LatLng { lat: 10.0 + 0.5 * angle.sin(), lng: 10.0 + 0.5 * angle.cos() }
        })
        .collect()
}

/// A TOML value nested 1,000 arrays deep.
fn nested_toml() -> String {
    format!("x = {}{}", "[".repeat(1_000), "]".repeat(1_000))
}

// ---------------------------------------------------------------------------
// Request builders: a valid request, then one thing made hostile.
// ---------------------------------------------------------------------------

/// `support::team(id)`, edited.
fn with_team(id: &str, edit: impl FnOnce(&mut pb::Team)) -> Option<pb::Team> {
    let mut built = team(id);
    edit(&mut built);
    Some(built)
}

/// One insured member on duty, edited.
fn member(edit: impl FnOnce(&mut pb::Member)) -> Vec<pb::Member> {
    let mut built = pb::Member {
        id: "M-1".into(),
        name: "Ann".into(),
        role: "diver".into(),
        insurance_expires: time(1_814_313_600, 0),
        on_duty: true,
        ..Default::default()
    };
    edit(&mut built);
    vec![built]
}

fn get_team(id: &str, as_of: Option<muster_client::Timestamp>) -> pb::GetTeamRequest {
    pb::GetTeamRequest { id: id.into(), as_of }
}

fn update_team(team: Option<pb::Team>, expected_version: u64) -> pb::UpdateTeamRequest {
    pb::UpdateTeamRequest { request_id: String::new(), team, expected_version }
}

fn report(team_id: &str, status: i32, position: Option<pb::LatLng>) -> pb::ReportStatusRequest {
    pb::ReportStatusRequest { request_id: String::new(), team_id: team_id.into(), status, position }
}

fn import(name: &str, toml: &str) -> pb::ImportRequest {
    pb::ImportRequest { request_id: String::new(), name: name.into(), toml: toml.into() }
}

/// A sandbag (not yet in the catalog), edited.
fn item(edit: impl FnOnce(&mut pb::Item)) -> pb::DefineItemRequest {
    let mut built = pb::Item {
        code: "sandbag".into(),
        name: "Sandbag".into(),
        unit: "bag".into(),
        category: "flood_control".into(),
    };
    edit(&mut built);
    pb::DefineItemRequest { request_id: String::new(), item: Some(built) }
}

/// A new depot D-NEW, edited.
fn depot(edit: impl FnOnce(&mut pb::Depot)) -> pb::RegisterDepotRequest {
    let mut built = pb::Depot {
        id: "D-NEW".into(),
        name: "New depot".into(),
        organization: String::new(),
        position: at(28.22, 112.93),
    };
    edit(&mut built);
    pb::RegisterDepotRequest { request_id: String::new(), depot: Some(built) }
}

/// One pump received at D-NEAR (valid as it stands), edited.
fn adjust(edit: impl FnOnce(&mut pb::AdjustStockRequest)) -> pb::AdjustStockRequest {
    let mut built = pb::AdjustStockRequest {
        request_id: String::new(),
        depot_id: "D-NEAR".into(),
        item_code: "pump".into(),
        delta: 1,
        reason: pb::LedgerReason::Received.into(),
        note: String::new(),
    };
    edit(&mut built);
    built
}

/// D-NEAR's pump floor at 3, as it is, edited.
fn floor(edit: impl FnOnce(&mut pb::SetMinReserveRequest)) -> pb::SetMinReserveRequest {
    let mut built = pb::SetMinReserveRequest {
        request_id: String::new(),
        depot_id: "D-NEAR".into(),
        item_code: "pump".into(),
        min_reserve: 3,
    };
    edit(&mut built);
    built
}

/// One pump from D-NEAR to D-FAR (valid as it stands), edited.
fn transfer(edit: impl FnOnce(&mut pb::TransferStockRequest)) -> pb::TransferStockRequest {
    let mut built = pb::TransferStockRequest {
        request_id: String::new(),
        from_depot_id: "D-NEAR".into(),
        to_depot_id: "D-FAR".into(),
        item_code: "pump".into(),
        quantity: 1,
        note: String::new(),
    };
    edit(&mut built);
    built
}

fn stock(depot_id: &str, item_code: &str) -> pb::GetStockRequest {
    pb::GetStockRequest { depot_id: depot_id.into(), item_code: item_code.into() }
}

/// A flood plan asking, at level II, one water_rescue team and 2 pumps, with
/// one trigger.
fn plan(id: &str) -> pb::Plan {
    pb::Plan {
        id: id.into(),
        name: format!("Flood plan {id}"),
        hazard: pb::Hazard::Flood.into(),
        levels: vec![pb::LevelRequirement {
            level: pb::Level::Ii.into(),
            teams: vec![pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: 1 }],
            supplies: vec![pb::SupplyNeed { item_code: "pump".into(), quantity: 2 }],
            tasks: vec![pb::Task {
                title: "Evacuate the quay".into(),
                lead: "District government".into(),
                supporting: vec!["Fire brigade".into()],
            }],
        }],
        triggers: vec![pb::Trigger { metric: "water_level_m".into(), threshold: 38.0, level: pb::Level::Ii.into() }],
        version: 0,
    }
}

/// `plan("P-HOSTILE")`, edited, to put.
fn put_plan(edit: impl FnOnce(&mut pb::Plan)) -> pb::PutPlanRequest {
    let mut built = plan("P-HOSTILE");
    edit(&mut built);
    pb::PutPlanRequest { request_id: String::new(), plan: Some(built) }
}

/// A level II flood at 28.22, 112.95 (valid unless the id is taken).
fn base_incident(id: &str) -> pb::Incident {
    pb::Incident {
        id: id.into(),
        title: format!("Hostile incident {id}"),
        hazard: pb::Hazard::Flood.into(),
        position: at(28.22, 112.95),
        level: pb::Level::Ii.into(),
        ..Default::default()
    }
}

fn declare_request(incident: pb::Incident) -> pb::DeclareIncidentRequest {
    pb::DeclareIncidentRequest { request_id: String::new(), incident: Some(incident), plan_id: String::new() }
}

/// `base_incident(id)`, edited, to declare.
fn declare(id: &str, edit: impl FnOnce(&mut pb::Incident)) -> pb::DeclareIncidentRequest {
    let mut built = base_incident(id);
    edit(&mut built);
    declare_request(built)
}

/// An update of incident `id` that changes nothing, edited.
fn update_incident(id: &str, edit: impl FnOnce(&mut pb::UpdateIncidentRequest)) -> pb::UpdateIncidentRequest {
    let mut built = pb::UpdateIncidentRequest { id: id.into(), ..Default::default() };
    edit(&mut built);
    built
}

fn close(id: &str) -> pb::CloseIncidentRequest {
    pb::CloseIncidentRequest { request_id: String::new(), id: id.into() }
}

fn request(incident_id: &str, teams: Vec<pb::TeamNeed>, supplies: Vec<pb::SupplyNeed>) -> pb::RequestResourcesRequest {
    pb::RequestResourcesRequest { request_id: String::new(), incident_id: incident_id.into(), teams, supplies }
}

fn water(count: u32, min_tier: u32) -> pb::TeamNeed {
    pb::TeamNeed { capability: "water_rescue".into(), min_tier, count }
}

fn pumps(quantity: i64) -> pb::SupplyNeed {
    pb::SupplyNeed { item_code: "pump".into(), quantity }
}

fn dispatch(incident_id: &str, dry_run: bool) -> pb::DispatchRequest {
    pb::DispatchRequest { incident_id: incident_id.into(), dry_run, ..Default::default() }
}

type Resource = pb::assign_resource_request::Resource;

fn assign(need_id: &str, resource: Option<Resource>, reason: &str) -> pb::AssignResourceRequest {
    pb::AssignResourceRequest { request_id: String::new(), need_id: need_id.into(), resource, reason: reason.into() }
}

fn by_team(team_id: &str) -> Option<Resource> {
    Some(Resource::TeamId(team_id.into()))
}

fn by_supply(depot_id: &str, item_code: &str, quantity: i64) -> Option<Resource> {
    Some(Resource::Supply(pb::SupplyAllocation { depot_id: depot_id.into(), item_code: item_code.into(), quantity }))
}

fn advance(assignment_id: &str, status: i32, returned_quantity: i64, note: &str) -> pb::UpdateAssignmentRequest {
    pb::UpdateAssignmentRequest {
        request_id: String::new(),
        assignment_id: assignment_id.into(),
        status,
        returned_quantity,
        note: note.into(),
    }
}

fn set_zone(id: &str, polygon: Vec<pb::LatLng>, note: &str) -> pb::SetZoneRequest {
    pb::SetZoneRequest {
        request_id: String::new(),
        zone: Some(pb::Zone { id: id.into(), polygon, note: note.into(), active: true }),
    }
}

fn clear_zone(id: &str) -> pb::ClearZoneRequest {
    pb::ClearZoneRequest { request_id: String::new(), id: id.into() }
}

fn list_events(edit: impl FnOnce(&mut pb::ListEventsRequest)) -> pb::ListEventsRequest {
    let mut built = pb::ListEventsRequest::default();
    edit(&mut built);
    built
}

fn run_drill(name: &str, script: &str) -> pb::RunDrillRequest {
    pb::RunDrillRequest { script: script.into(), name: name.into(), ..Default::default() }
}

/// A script naming a fixture, `world.toml`.
const SCRIPT_WITH_FIXTURE: &str =
    "name = \"needs a fixture\"\nstart = \"2026-07-01T06:00:00Z\"\nfixture = \"world.toml\"\n";

/// The page size and page token cases of one list: `list(page_size,
/// page_token)` makes the call; `tokens` are tokens of other lists, and
/// forged ones, that this list must refuse too.
fn paging(table: &mut Table, method: &str, tokens: Vec<(&'static str, String)>, list: impl Fn(i32, String) -> Call) {
    for (what, page_size) in [("-1", -1), ("i32::MIN", i32::MIN)] {
        table.add(format!("{method} with page_size {what}"), field("page_size"), list(page_size, String::new()));
    }
    for (what, page_size) in [("1,001", 1_001), ("i32::MAX", i32::MAX)] {
        table.add(
            format!("{method} with page_size {what} (lowered to 1,000)"),
            LOWERED,
            list(page_size, String::new()),
        );
    }
    for (what, token) in junk_tokens().into_iter().chain(tokens) {
        table.add(format!("{method} with {what}"), field("page_token"), list(0, token));
    }
}

/// One case per malformed `request_id` of [`bad_request_ids`] for
/// `method`, each refused naming the field.
fn request_ids<F>(table: &mut Table, method: &str, call: impl Fn(String) -> F)
where
    F: Future<Output = Result<(), Status>> + 'static,
{
    for (what, request_id) in bad_request_ids() {
        table.add(format!("{method} with a request_id of {what}"), field("request_id"), call(request_id));
    }
}

// ---------------------------------------------------------------------------
// Raw protobuf.
// ---------------------------------------------------------------------------

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let low = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// Field `field`, length-delimited, holding `bytes`.
fn length_delimited(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint((u64::from(field) << 3) | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

/// 200 groups of field 15, each inside the one before, all closed.
fn nested_groups() -> Vec<u8> {
    let mut bytes = vec![0x7B; 200];
    bytes.extend([0x7C; 200]);
    bytes
}

/// Bytes that do not decode as any request message. Field 15 is unknown to
/// every request of the API, so most of these exercise how the decoder
/// skips what it does not know; `string_field` is a string field of the
/// request, if it has one.
fn junk_messages(string_field: Option<u32>) -> Vec<(&'static str, Vec<u8>)> {
    let mut eleven_bytes = vec![0x78];
    eleven_bytes.extend([0xFF; 10]);
    eleven_bytes.push(0x01);
    let mut junk = vec![
        ("a varint that never ends", vec![0x78, 0xFF, 0xFF]),
        ("a varint of eleven bytes", eleven_bytes),
        ("a length past the end of the message", vec![0x7A, 0x7F, 0x01, 0x02]),
        ("200 start-group tags, never closed", vec![0x7B; 200]),
        ("200 nested groups", nested_groups()),
        ("an end-group tag outside any group", vec![0x7C]),
        ("field number 0", vec![0x00, 0x00]),
        ("wire type 7", vec![0x7F, 0x00]),
    ];
    if let Some(string_field) = string_field {
        junk.push(("bytes that are not UTF-8 in a string field", length_delimited(string_field, &[0xC3, 0x28, 0xFF])));
    }
    junk
}

/// A raw call as a case's future.
fn raw(channel: &Channel, path: &'static str, body: Vec<u8>) -> Call {
    let channel = channel.clone();
    boxed(async move { raw_call(&channel, None, path, body).await.map(|_| ()) })
}

/// Every method of the API: its path and the number of a string field of
/// its request (none for the two requests without one).
const METHODS: &[(&str, Option<u32>)] = &[
    ("/muster.v1.RosterService/RegisterTeam", Some(1)),
    ("/muster.v1.RosterService/GetTeam", Some(1)),
    ("/muster.v1.RosterService/ListTeams", Some(2)),
    ("/muster.v1.RosterService/UpdateTeam", Some(1)),
    ("/muster.v1.RosterService/ReportStatus", Some(2)),
    ("/muster.v1.RosterService/WatchTeams", None),
    ("/muster.v1.ReserveService/DefineItem", Some(1)),
    ("/muster.v1.ReserveService/RegisterDepot", Some(1)),
    ("/muster.v1.ReserveService/AdjustStock", Some(2)),
    ("/muster.v1.ReserveService/SetMinReserve", Some(2)),
    ("/muster.v1.ReserveService/TransferStock", Some(2)),
    ("/muster.v1.ReserveService/GetStock", Some(1)),
    ("/muster.v1.ReserveService/ListStock", Some(1)),
    ("/muster.v1.ReserveService/ListLedger", Some(1)),
    ("/muster.v1.ReserveService/ListItems", Some(2)),
    ("/muster.v1.ReserveService/ListDepots", Some(2)),
    ("/muster.v1.ImportService/Import", Some(3)),
    ("/muster.v1.PlanService/PutPlan", Some(1)),
    ("/muster.v1.PlanService/GetPlan", Some(1)),
    ("/muster.v1.PlanService/ListPlans", Some(3)),
    ("/muster.v1.IncidentService/DeclareIncident", Some(3)),
    ("/muster.v1.IncidentService/GetIncident", Some(1)),
    ("/muster.v1.IncidentService/ListIncidents", Some(3)),
    ("/muster.v1.IncidentService/UpdateIncident", Some(2)),
    ("/muster.v1.IncidentService/CloseIncident", Some(2)),
    ("/muster.v1.IncidentService/RequestResources", Some(2)),
    ("/muster.v1.IncidentService/Dispatch", Some(2)),
    ("/muster.v1.IncidentService/AssignResource", Some(3)),
    ("/muster.v1.IncidentService/ListAssignments", Some(2)),
    ("/muster.v1.IncidentService/UpdateAssignment", Some(2)),
    ("/muster.v1.IncidentService/WatchIncidents", Some(1)),
    ("/muster.v1.IncidentService/WatchAssignments", Some(1)),
    ("/muster.v1.IncidentService/SetZone", Some(1)),
    ("/muster.v1.IncidentService/ClearZone", Some(2)),
    ("/muster.v1.IncidentService/ListZones", Some(2)),
    ("/muster.v1.AuditService/ListEvents", Some(2)),
    ("/muster.v1.AuditService/GetDigest", None),
    ("/muster.v1.ExportService/IncidentReport", Some(1)),
    ("/muster.v1.ExportService/SituationGeoJson", Some(1)),
    ("/muster.v1.DrillService/RunDrill", Some(1)),
    ("/muster.v1.DrillService/GetDrillReport", Some(1)),
    ("/muster.v1.DrillService/ReplayDrill", Some(1)),
    ("/muster.v1.DrillService/ListDrillRuns", Some(2)),
    ("/muster.v1.DrillService/ExportIncidentAsDrill", Some(1)),
    ("/muster.v1.DrillService/RenderDrillReport", Some(1)),
];

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn roster_and_import_refuse_hostile_input_with_the_right_code() {
    let server = TestServer::start().await;
    let world = world(&server).await;
    let roster = world.client.roster();
    let imports = world.client.imports();
    let free = world.free_team.clone();
    let busy = world.busy_team.clone();
    let start = muster_tests::START_SECONDS;
    let mut table = Table::default();

    // RegisterTeam.
    let three_mib = "x".repeat(3 * 1024 * 1024);
    for (what, want, team) in [
        ("without a team", field("team"), None),
        ("with an empty id", field("team.id"), with_team("", |_| {})),
        ("with a 65-character id", field("team.id"), with_team(&long_id(), |_| {})),
        ("with a space in its id", field("team.id"), with_team("H 1", |_| {})),
        ("with a NUL in its id", field("team.id"), with_team("H\u{0}1", |_| {})),
        ("with a Chinese id", field("team.id"), with_team("队-1", |_| {})),
        ("with a right-to-left override in its id", field("team.id"), with_team("\u{202e}H-1", |_| {})),
        ("with an empty name", field("team.name"), with_team("H-1", |t| t.name.clear())),
        ("with a blank name", field("team.name"), with_team("H-1", |t| t.name = " \t ".into())),
        ("with a 257-character name", field("team.name"), with_team("H-1", |t| t.name = long_text())),
        ("with a 3 MiB name", field("team.name"), with_team("H-1", move |t| t.name = three_mib)),
        ("with a NUL in its name", field("team.name"), with_team("H-1", |t| t.name = "Team\u{0}".into())),
        (
            "with terminal escapes in its name",
            field("team.name"),
            with_team("H-1", |t| t.name = "\u{1b}[2J\u{1b}[31mTeam".into()),
        ),
        ("with a carriage return in its name", field("team.name"), with_team("H-1", |t| t.name = "Team\rone".into())),
        ("with a DEL in its name", field("team.name"), with_team("H-1", |t| t.name = "Team\u{7f}".into())),
        (
            "with a 257-character organization",
            field("team.organization"),
            with_team("H-1", |t| t.organization = long_text()),
        ),
        (
            "with a bell in its organization",
            field("team.organization"),
            with_team("H-1", |t| t.organization = "Fire\u{7}".into()),
        ),
        ("without a home", field("team.home"), with_team("H-1", |t| t.home = None)),
        ("at home latitude 91", field("team.home.lat"), with_team("H-1", |t| t.home = at(91.0, 112.97))),
        ("at home latitude -90.000001", field("team.home.lat"), with_team("H-1", |t| t.home = at(-90.000_001, 112.97))),
        ("at home latitude NaN", field("team.home.lat"), with_team("H-1", |t| t.home = at(f64::NAN, 112.97))),
        ("at home latitude +inf", field("team.home.lat"), with_team("H-1", |t| t.home = at(f64::INFINITY, 112.97))),
        ("at home longitude 181", field("team.home.lng"), with_team("H-1", |t| t.home = at(28.21, 181.0))),
        ("at home longitude -inf", field("team.home.lng"), with_team("H-1", |t| t.home = at(28.21, f64::NEG_INFINITY))),
        ("at home longitude NaN", field("team.home.lng"), with_team("H-1", |t| t.home = at(28.21, f64::NAN))),
        ("at speed NaN", field("team.speed_kmh"), with_team("H-1", |t| t.speed_kmh = f64::NAN)),
        ("at speed +inf", field("team.speed_kmh"), with_team("H-1", |t| t.speed_kmh = f64::INFINITY)),
        ("at speed -inf", field("team.speed_kmh"), with_team("H-1", |t| t.speed_kmh = f64::NEG_INFINITY)),
        ("at speed -1", field("team.speed_kmh"), with_team("H-1", |t| t.speed_kmh = -1.0)),
        ("at speed 0", field("team.speed_kmh"), with_team("H-1", |t| t.speed_kmh = 0.0)),
        ("at speed 1e308", field("team.speed_kmh"), with_team("H-1", |t| t.speed_kmh = 1e308)),
        ("with headcount 0 and no members", field("team.headcount"), with_team("H-1", |t| t.headcount = 0)),
        ("with headcount u32::MAX", field("team.headcount"), with_team("H-1", |t| t.headcount = u32::MAX)),
        (
            "with 1,001 capabilities",
            field("team.capabilities"),
            with_team("H-1", |t| {
                t.capabilities = vec![pb::Capability { code: "water_rescue".into(), tier: 1 }; OVER_REPEATED];
            }),
        ),
        (
            "with a capability at tier 0",
            field("team.capabilities[0].tier"),
            with_team("H-1", |t| t.capabilities[0].tier = 0),
        ),
        (
            "with a capability at tier u32::MAX",
            field("team.capabilities[0].tier"),
            with_team("H-1", |t| t.capabilities[0].tier = u32::MAX),
        ),
        (
            "with an empty capability code",
            field("team.capabilities[0].code"),
            with_team("H-1", |t| t.capabilities[0].code.clear()),
        ),
        (
            "with an upper-case capability code",
            field("team.capabilities[0].code"),
            with_team("H-1", |t| t.capabilities[0].code = "Water_rescue".into()),
        ),
        (
            "with a 33-character capability code",
            field("team.capabilities[0].code"),
            with_team("H-1", |t| t.capabilities[0].code = format!("a{}", "b".repeat(32))),
        ),
        (
            "with a NUL in a capability code",
            field("team.capabilities[0].code"),
            with_team("H-1", |t| t.capabilities[0].code = "water\u{0}rescue".into()),
        ),
        (
            "with a capability listed twice",
            field("team.capabilities"),
            with_team("H-1", |t| t.capabilities.push(pb::Capability { code: "water_rescue".into(), tier: 1 })),
        ),
        (
            "with 1,001 members",
            field("team.members"),
            with_team("H-1", |t| t.members = vec![pb::Member::default(); OVER_REPEATED]),
        ),
        (
            "with a member of 1,001 certifications",
            field("team.members[0].certifications"),
            with_team("H-1", |t| {
                t.members = member(|m| m.certifications = vec![pb::Certification::default(); OVER_REPEATED])
            }),
        ),
        (
            "with a member without an id",
            field("team.members[0].id"),
            with_team("H-1", |t| t.members = member(|m| m.id.clear())),
        ),
        (
            "with a member whose name holds a NUL",
            field("team.members[0].name"),
            with_team("H-1", |t| t.members = member(|m| m.name = "Ann\u{0}".into())),
        ),
        (
            "with a member's certification expiring at nanos 1e9",
            field("team.members[0].certifications[0].expires.nanos"),
            with_team("H-1", |t| {
                t.members = member(|m| {
                    m.certifications =
                        vec![pb::Certification { code: "diver".into(), expires: time(1_814_313_600, 1_000_000_000) }];
                });
            }),
        ),
        (
            "with a member insured until seconds i64::MIN",
            field("team.members[0].insurance_expires.seconds"),
            with_team("H-1", |t| t.members = member(|m| m.insurance_expires = time(i64::MIN, 0))),
        ),
        (
            "insured until nanos -1",
            field("team.insurance_expires.nanos"),
            with_team("H-1", |t| t.insurance_expires = time(1_814_313_600, -1)),
        ),
        (
            "insured until seconds i64::MAX",
            field("team.insurance_expires.seconds"),
            with_team("H-1", |t| t.insurance_expires = time(i64::MAX, 0)),
        ),
        (
            "insured until seconds i64::MIN",
            field("team.insurance_expires.seconds"),
            with_team("H-1", |t| t.insurance_expires = time(i64::MIN, 0)),
        ),
        ("with status 99", field("team.status"), with_team("H-1", |t| t.status = 99)),
        ("with status -1", field("team.status"), with_team("H-1", |t| t.status = -1)),
        ("with status i32::MIN", field("team.status"), with_team("H-1", |t| t.status = i32::MIN)),
        ("registered ASSIGNED", field("team.status"), with_team("H-1", |t| t.status = pb::TeamStatus::Assigned.into())),
        ("registered ON_SCENE", field("team.status"), with_team("H-1", |t| t.status = pb::TeamStatus::OnScene.into())),
        ("positioned at latitude 91", field("team.position.lat"), with_team("H-1", |t| t.position = at(91.0, 112.9))),
        (
            "positioned at latitude -inf",
            field("team.position.lat"),
            with_team("H-1", |t| t.position = at(f64::NEG_INFINITY, 112.9)),
        ),
        (
            "positioned at longitude NaN",
            field("team.position.lng"),
            with_team("H-1", |t| t.position = at(28.2, f64::NAN)),
        ),
        ("with the id of a registered team", ALREADY_EXISTS, with_team(&free, |_| {})),
    ] {
        table.add(
            format!("RegisterTeam {what}"),
            want,
            call!(roster, register_team, pb::RegisterTeamRequest { request_id: String::new(), team }),
        );
    }
    request_ids(&mut table, "RegisterTeam", |request_id| {
        call!(roster, register_team, pb::RegisterTeamRequest { request_id, team: with_team(&free, |_| {}) })
    });

    // GetTeam.
    for (what, want, request) in [
        ("without an id", field("id"), pb::GetTeamRequest::default()),
        ("with a 65-character id", field("id"), get_team(&long_id(), None)),
        ("with a path for an id", field("id"), get_team("../W-NEAR", None)),
        ("with a NUL after the id", field("id"), get_team(&format!("{free}\u{0}"), None)),
        ("with a newline after the id", field("id"), get_team(&format!("{free}\n"), None)),
        ("of a team that does not exist", NOT_FOUND, get_team("NOPE", None)),
        ("as of nanos -1", field("as_of.nanos"), get_team(&free, time(start, -1))),
        ("as of nanos 1e9", field("as_of.nanos"), get_team(&free, time(start, 1_000_000_000))),
        ("as of seconds i64::MIN", field("as_of.seconds"), get_team(&free, time(i64::MIN, 0))),
        ("as of seconds i64::MAX", field("as_of.seconds"), get_team(&free, time(i64::MAX, 0))),
        ("as of 1970, before it was registered", NOT_FOUND, get_team(&free, time(0, 0))),
    ] {
        table.add(format!("GetTeam {what}"), want, call!(roster, get_team, request));
    }

    // ListTeams.
    paging(
        &mut table,
        "ListTeams",
        vec![
            ("a ListIncidents page token", world.incidents_token.clone()),
            ("a ListEvents page token", world.events_token.clone()),
            ("a forged page token", hex("zzz-forged")),
        ],
        |page_size, page_token| {
            boxed(call!(roster, list_teams, pb::ListTeamsRequest { page_size, page_token, ..Default::default() }))
        },
    );
    for (what, want, request) in [
        (
            "for a capability with a space",
            field("capability"),
            pb::ListTeamsRequest { capability: "water rescue".into(), ..Default::default() },
        ),
        (
            "for an upper-case capability",
            field("capability"),
            pb::ListTeamsRequest { capability: "Water_rescue".into(), ..Default::default() },
        ),
        (
            "for a 33-character capability",
            field("capability"),
            pb::ListTeamsRequest { capability: format!("a{}", "b".repeat(32)), ..Default::default() },
        ),
        (
            "for a capability with a NUL",
            field("capability"),
            pb::ListTeamsRequest { capability: "water\u{0}".into(), ..Default::default() },
        ),
        ("in status 99", field("status"), pb::ListTeamsRequest { status: 99, ..Default::default() }),
        ("in status -1", field("status"), pb::ListTeamsRequest { status: -1, ..Default::default() }),
    ] {
        table.add(format!("ListTeams {what}"), want, call!(roster, list_teams, request));
    }

    // UpdateTeam.
    for (what, want, request) in [
        ("without a team", field("team"), pb::UpdateTeamRequest::default()),
        ("of a team that does not exist", NOT_FOUND, update_team(with_team("NOPE", |_| {}), 0)),
        ("with an empty id", field("team.id"), update_team(with_team("", |_| {}), 0)),
        ("with a 65-character id", field("team.id"), update_team(with_team(&long_id(), |_| {}), 0)),
        ("without a home", field("team.home"), update_team(with_team(&free, |t| t.home = None), 0)),
        (
            "at home latitude NaN",
            field("team.home.lat"),
            update_team(with_team(&free, |t| t.home = at(f64::NAN, 112.9)), 0),
        ),
        (
            "at home longitude 181",
            field("team.home.lng"),
            update_team(with_team(&free, |t| t.home = at(28.2, 181.0)), 0),
        ),
        (
            "at speed -inf",
            field("team.speed_kmh"),
            update_team(with_team(&free, |t| t.speed_kmh = f64::NEG_INFINITY), 0),
        ),
        ("at speed NaN", field("team.speed_kmh"), update_team(with_team(&free, |t| t.speed_kmh = f64::NAN), 0)),
        (
            "with 1,001 capabilities",
            field("team.capabilities"),
            update_team(
                with_team(&free, |t| {
                    t.capabilities = vec![pb::Capability { code: "water_rescue".into(), tier: 1 }; OVER_REPEATED]
                }),
                0,
            ),
        ),
        (
            "with 1,001 members",
            field("team.members"),
            update_team(with_team(&free, |t| t.members = vec![pb::Member::default(); OVER_REPEATED]), 0),
        ),
        ("with a 257-character name", field("team.name"), update_team(with_team(&free, |t| t.name = long_text()), 0)),
        ("with status 99", field("team.status"), update_team(with_team(&free, |t| t.status = 99), 0)),
        (
            "with headcount 0 and no members",
            field("team.headcount"),
            update_team(with_team(&free, |t| t.headcount = 0), 0),
        ),
        ("expecting version u64::MAX", ABORTED, update_team(with_team(&free, |_| {}), u64::MAX)),
    ] {
        table.add(format!("UpdateTeam {what}"), want, call!(roster, update_team, request));
    }
    request_ids(&mut table, "UpdateTeam", |request_id| {
        call!(roster, update_team, pb::UpdateTeamRequest { request_id, ..update_team(with_team("NOPE", |_| {}), 0) })
    });

    // ReportStatus.
    let available = i32::from(pb::TeamStatus::Available);
    let en_route = i32::from(pb::TeamStatus::EnRoute);
    let on_scene = i32::from(pb::TeamStatus::OnScene);
    let out_of_service = i32::from(pb::TeamStatus::OutOfService);
    for (what, want, request) in [
        ("without a team_id", field("team_id"), pb::ReportStatusRequest::default()),
        ("with a 65-character team_id", field("team_id"), report(&long_id(), 0, None)),
        ("with a space in its team_id", field("team_id"), report("W FAR", 0, None)),
        ("for a team that does not exist", NOT_FOUND, report("NOPE", out_of_service, None)),
        ("with status 99", field("status"), report(&free, 99, None)),
        ("with status -1", field("status"), report(&free, -1, None)),
        ("with status i32::MAX", field("status"), report(&free, i32::MAX, None)),
        ("at latitude 91", field("position.lat"), report(&free, 0, at(91.0, 112.9))),
        ("at latitude NaN", field("position.lat"), report(&free, 0, at(f64::NAN, 112.9))),
        ("at latitude -inf", field("position.lat"), report(&free, 0, at(f64::NEG_INFINITY, 112.9))),
        ("at longitude -181", field("position.lng"), report(&free, 0, at(28.2, -181.0))),
        ("at longitude +inf", field("position.lng"), report(&free, 0, at(28.2, f64::INFINITY))),
        ("at longitude NaN", field("position.lng"), report(&free, 0, at(28.2, f64::NAN))),
        ("EN_ROUTE without an assignment", FAILED_PRECONDITION, report(&free, en_route, None)),
        ("ON_SCENE without an assignment", FAILED_PRECONDITION, report(&free, on_scene, None)),
        ("AVAILABLE while it holds an assignment", FAILED_PRECONDITION, report(&busy, available, None)),
    ] {
        table.add(format!("ReportStatus {what}"), want, call!(roster, report_status, request));
    }
    request_ids(&mut table, "ReportStatus", |request_id| {
        call!(roster, report_status, pb::ReportStatusRequest { request_id, ..report("NOPE", out_of_service, None) })
    });

    // WatchTeams has no fields: its hostile input is raw bytes (the sweep).

    // Import. Fixtures of one line, so every error is on line 1.
    let world_toml = crate::dispatch::WORLD;
    for (what, want, request) in [
        ("named with a NUL", field("name"), import("world\u{0}.toml", world_toml)),
        ("named with a newline", field("name"), import("world\n.toml", world_toml)),
        ("with a 257-character name", field("name"), import(&long_text(), world_toml)),
        ("of text that is not TOML", field("bad.toml:1"), import("bad.toml", "this is = = not toml")),
        ("of text that is not TOML, unnamed", field("fixture:1"), import("", "this is = = not toml")),
        ("of 1,000 nested arrays", field("deep.toml:1"), import("deep.toml", &nested_toml())),
        ("of an empty file (nothing to apply)", Want::Answered, import("empty.toml", "")),
        (
            "with an item code holding a space",
            field("hostile.toml:1: item[0].code"),
            import("hostile.toml", r#"item = [{ code = "bad code", name = "X", unit = "u" }]"#),
        ),
        (
            "with a NUL in an item's name",
            field("hostile.toml:1: item[0].name"),
            import("hostile.toml", r#"item = [{ code = "nul", name = "a\u0000b", unit = "u" }]"#),
        ),
        (
            "with a depot at latitude nan",
            field("hostile.toml:1: depot[0].position.lat"),
            import("hostile.toml", r#"depot = [{ id = "D-NAN", name = "NaN", position = [nan, 112.9] }]"#),
        ),
        (
            "with a depot at longitude inf",
            field("hostile.toml:1: depot[0].position.lng"),
            import("hostile.toml", r#"depot = [{ id = "D-INF", name = "Inf", position = [28.1, inf] }]"#),
        ),
        (
            "with a team at latitude 91",
            field("hostile.toml:1: team[0].home.lat"),
            import(
                "hostile.toml",
                r#"team = [{ id = "T-91", name = "North", headcount = 3, home = [91.0, 112.9], speed_kmh = 40 }]"#,
            ),
        ),
        (
            "with a team at speed inf",
            field("hostile.toml:1: team[0].speed_kmh"),
            import(
                "hostile.toml",
                r#"team = [{ id = "T-INF", name = "Fast", headcount = 3, home = [28.1, 112.9], speed_kmh = inf }]"#,
            ),
        ),
        (
            "with on_hand i64::MAX",
            field("hostile.toml:1: stock[0].on_hand"),
            import("hostile.toml", r#"stock = [{ depot = "D-NEAR", item = "pump", on_hand = 9223372036854775807 }]"#),
        ),
        (
            "with on_hand i64::MIN",
            field("hostile.toml:1: stock[0].on_hand"),
            import("hostile.toml", r#"stock = [{ depot = "D-NEAR", item = "pump", on_hand = -9223372036854775808 }]"#),
        ),
        (
            "with on_hand past i64",
            field("hostile.toml:1"),
            import("hostile.toml", r#"stock = [{ depot = "D-NEAR", item = "pump", on_hand = 9223372036854775808 }]"#),
        ),
        (
            "with min_reserve -1",
            field("hostile.toml:1: stock[0].min_reserve"),
            import("hostile.toml", r#"stock = [{ depot = "D-NEAR", item = "pump", on_hand = 4, min_reserve = -1 }]"#),
        ),
        (
            "with a plan of no level (the file's key is `level`)",
            field("hostile.toml:1: plan[0].level"),
            import("hostile.toml", r#"plan = [{ id = "P-EMPTY", name = "Empty", hazard = "FLOOD" }]"#),
        ),
        (
            "with a plan for an unknown hazard",
            field("hostile.toml:1: plan[0].hazard"),
            import("hostile.toml", r#"plan = [{ id = "P-LAVA", name = "Lava", hazard = "LAVA" }]"#),
        ),
        (
            "reusing the world's request_id for another file",
            field("request_id"),
            pb::ImportRequest {
                request_id: WORLD_REQUEST.into(),
                name: "other.toml".into(),
                toml: r#"item = [{ code = "sandbag", name = "Sandbag", unit = "bag" }]"#.into(),
            },
        ),
    ] {
        table.add(format!("Import {what}"), want, call!(imports, import, request));
    }
    let refused_anyway = r#"stock = [{ depot = "D-NEAR", item = "pump", on_hand = 9223372036854775807 }]"#;
    request_ids(&mut table, "Import", |request_id| {
        call!(imports, import, pb::ImportRequest { request_id, ..import("hostile.toml", refused_anyway) })
    });

    run(&server, table).await;
}

#[tokio::test]
async fn reserve_refuses_hostile_input_with_the_right_code() {
    let server = TestServer::start().await;
    let world = world(&server).await;
    let reserve = world.client.reserve();
    let mut table = Table::default();

    // DefineItem.
    for (what, want, request) in [
        ("without an item", field("item"), pb::DefineItemRequest::default()),
        ("with an empty code", field("item.code"), item(|i| i.code.clear())),
        ("with an upper-case code", field("item.code"), item(|i| i.code = "Sandbag".into())),
        ("with a code starting with a digit", field("item.code"), item(|i| i.code = "1sandbag".into())),
        ("with a 33-character code", field("item.code"), item(|i| i.code = format!("a{}", "b".repeat(32)))),
        ("with a space in its code", field("item.code"), item(|i| i.code = "sand bag".into())),
        ("with a NUL in its code", field("item.code"), item(|i| i.code = "sandbag\u{0}".into())),
        ("with an empty name", field("item.name"), item(|i| i.name.clear())),
        ("with a 257-character name", field("item.name"), item(|i| i.name = long_text())),
        ("with terminal escapes in its name", field("item.name"), item(|i| i.name = "\u{1b}[2JSandbag".into())),
        ("with an empty unit", field("item.unit"), item(|i| i.unit.clear())),
        ("with a 257-character unit", field("item.unit"), item(|i| i.unit = long_text())),
        ("with a 257-character category", field("item.category"), item(|i| i.category = long_text())),
        ("with a NUL in its category", field("item.category"), item(|i| i.category = "flood\u{0}".into())),
        ("with the code of a catalog item", ALREADY_EXISTS, item(|i| i.code = "pump".into())),
    ] {
        table.add(format!("DefineItem {what}"), want, call!(reserve, define_item, request));
    }
    request_ids(&mut table, "DefineItem", |request_id| {
        call!(reserve, define_item, pb::DefineItemRequest { request_id, ..item(|i| i.code = "pump".into()) })
    });

    // RegisterDepot.
    for (what, want, request) in [
        ("without a depot", field("depot"), pb::RegisterDepotRequest::default()),
        ("without a position", field("depot.position"), depot(|d| d.position = None)),
        ("at latitude 91", field("depot.position.lat"), depot(|d| d.position = at(91.0, 112.9))),
        ("at latitude NaN", field("depot.position.lat"), depot(|d| d.position = at(f64::NAN, 112.9))),
        ("at latitude -inf", field("depot.position.lat"), depot(|d| d.position = at(f64::NEG_INFINITY, 112.9))),
        ("at longitude 181", field("depot.position.lng"), depot(|d| d.position = at(28.2, 181.0))),
        ("at longitude NaN", field("depot.position.lng"), depot(|d| d.position = at(28.2, f64::NAN))),
        ("at longitude +inf", field("depot.position.lng"), depot(|d| d.position = at(28.2, f64::INFINITY))),
        ("with an empty id", field("depot.id"), depot(|d| d.id.clear())),
        ("with a 65-character id", field("depot.id"), depot(|d| d.id = long_id())),
        ("with a slash in its id", field("depot.id"), depot(|d| d.id = "D/NEW".into())),
        ("with an empty name", field("depot.name"), depot(|d| d.name.clear())),
        ("with a 257-character name", field("depot.name"), depot(|d| d.name = long_text())),
        (
            "with a bell in its organization",
            field("depot.organization"),
            depot(|d| d.organization = "Bureau\u{7}".into()),
        ),
        ("with the id of a registered depot", ALREADY_EXISTS, depot(|d| d.id = "D-NEAR".into())),
    ] {
        table.add(format!("RegisterDepot {what}"), want, call!(reserve, register_depot, request));
    }
    request_ids(&mut table, "RegisterDepot", |request_id| {
        call!(reserve, register_depot, pb::RegisterDepotRequest { request_id, ..depot(|d| d.id = "D-NEAR".into()) })
    });

    // AdjustStock.
    let reason = |reason: pb::LedgerReason| i32::from(reason);
    for (what, want, request) in [
        ("with nothing set", field("reason"), pb::AdjustStockRequest::default()),
        ("with reason 99", field("reason"), adjust(|a| a.reason = 99)),
        ("with reason -1", field("reason"), adjust(|a| a.reason = -1)),
        ("with reason i32::MIN", field("reason"), adjust(|a| a.reason = i32::MIN)),
        ("without a reason", field("reason"), adjust(|a| a.reason = 0)),
        (
            "TRANSFERRED (TransferStock's own)",
            field("reason"),
            adjust(|a| a.reason = reason(pb::LedgerReason::Transferred)),
        ),
        ("by 0", field("delta"), adjust(|a| a.delta = 0)),
        (
            "by i64::MIN",
            field("delta"),
            adjust(|a| (a.delta, a.reason) = (i64::MIN, reason(pb::LedgerReason::Counted))),
        ),
        ("by i64::MAX", field("delta"), adjust(|a| a.delta = i64::MAX)),
        (
            "by -i64::MAX",
            field("delta"),
            adjust(|a| (a.delta, a.reason) = (-i64::MAX, reason(pb::LedgerReason::Counted))),
        ),
        ("by 10^12 + 1", field("delta"), adjust(|a| a.delta = MAX_QUANTITY + 1)),
        ("by 10^12 onto 4 on hand", field("delta"), adjust(|a| a.delta = MAX_QUANTITY)),
        ("RECEIVED by -1", field("delta"), adjust(|a| a.delta = -1)),
        ("ISSUED by +1", field("delta"), adjust(|a| a.reason = reason(pb::LedgerReason::Issued))),
        ("LOST by +1", field("delta"), adjust(|a| a.reason = reason(pb::LedgerReason::Lost))),
        ("with a 257-character note", field("note"), adjust(|a| a.note = long_text())),
        ("with an escape in its note", field("note"), adjust(|a| a.note = "\u{1b}[2J".into())),
        ("without a depot_id", field("depot_id"), adjust(|a| a.depot_id.clear())),
        ("with a 65-character depot_id", field("depot_id"), adjust(|a| a.depot_id = long_id())),
        ("without an item_code", field("item_code"), adjust(|a| a.item_code.clear())),
        ("with an upper-case item_code", field("item_code"), adjust(|a| a.item_code = "PUMP".into())),
        ("at a depot that does not exist", NOT_FOUND, adjust(|a| a.depot_id = "D-NONE".into())),
        ("of an item that does not exist", NOT_FOUND, adjust(|a| a.item_code = "nothing".into())),
        (
            "CONSUMED by -5 of 4 on hand",
            RESOURCE_EXHAUSTED,
            adjust(|a| (a.delta, a.reason) = (-5, reason(pb::LedgerReason::Consumed))),
        ),
    ] {
        table.add(format!("AdjustStock {what}"), want, call!(reserve, adjust_stock, request));
    }
    request_ids(&mut table, "AdjustStock", |request_id| {
        call!(reserve, adjust_stock, pb::AdjustStockRequest { request_id, ..adjust(|a| a.depot_id = "D-NONE".into()) })
    });

    // SetMinReserve.
    for (what, want, request) in [
        ("with nothing set", field("depot_id"), pb::SetMinReserveRequest::default()),
        ("to -1", field("min_reserve"), floor(|f| f.min_reserve = -1)),
        ("to i64::MIN", field("min_reserve"), floor(|f| f.min_reserve = i64::MIN)),
        ("to i64::MAX", field("min_reserve"), floor(|f| f.min_reserve = i64::MAX)),
        ("to 10^12 + 1", field("min_reserve"), floor(|f| f.min_reserve = MAX_QUANTITY + 1)),
        ("without a depot_id", field("depot_id"), floor(|f| (f.depot_id, f.min_reserve) = (String::new(), 1))),
        ("with a 65-character depot_id", field("depot_id"), floor(|f| (f.depot_id, f.min_reserve) = (long_id(), 1))),
        ("without an item_code", field("item_code"), floor(|f| (f.item_code, f.min_reserve) = (String::new(), 1))),
        (
            "with an upper-case item_code",
            field("item_code"),
            floor(|f| (f.item_code, f.min_reserve) = ("Pump".to_owned(), 1)),
        ),
        (
            "at a depot that does not exist",
            NOT_FOUND,
            floor(|f| (f.depot_id, f.min_reserve) = ("D-NONE".to_owned(), 1)),
        ),
        (
            "of an item that does not exist",
            NOT_FOUND,
            floor(|f| (f.item_code, f.min_reserve) = ("nothing".to_owned(), 1)),
        ),
    ] {
        table.add(format!("SetMinReserve {what}"), want, call!(reserve, set_min_reserve, request));
    }
    request_ids(&mut table, "SetMinReserve", |request_id| {
        call!(
            reserve,
            set_min_reserve,
            pb::SetMinReserveRequest { request_id, ..floor(|f| f.depot_id = "D-NONE".into()) }
        )
    });

    // TransferStock.
    for (what, want, request) in [
        ("with nothing set", field("quantity"), pb::TransferStockRequest::default()),
        ("of 0", field("quantity"), transfer(|t| t.quantity = 0)),
        ("of -1", field("quantity"), transfer(|t| t.quantity = -1)),
        ("of i64::MIN", field("quantity"), transfer(|t| t.quantity = i64::MIN)),
        ("of i64::MAX", field("quantity"), transfer(|t| t.quantity = i64::MAX)),
        ("of 10^12 + 1", field("quantity"), transfer(|t| t.quantity = MAX_QUANTITY + 1)),
        ("with a 257-character note", field("note"), transfer(|t| t.note = long_text())),
        ("with a NUL in its note", field("note"), transfer(|t| t.note = "moved\u{0}".into())),
        ("without a from_depot_id", field("from_depot_id"), transfer(|t| t.from_depot_id.clear())),
        ("with a 65-character from_depot_id", field("from_depot_id"), transfer(|t| t.from_depot_id = long_id())),
        ("without a to_depot_id", field("to_depot_id"), transfer(|t| t.to_depot_id.clear())),
        ("with a space in its to_depot_id", field("to_depot_id"), transfer(|t| t.to_depot_id = "D FAR".into())),
        ("without an item_code", field("item_code"), transfer(|t| t.item_code.clear())),
        ("with an upper-case item_code", field("item_code"), transfer(|t| t.item_code = "Pump".into())),
        ("from a depot to itself", field("to_depot_id"), transfer(|t| t.to_depot_id = "D-NEAR".into())),
        ("from a depot that does not exist", NOT_FOUND, transfer(|t| t.from_depot_id = "D-NONE".into())),
        ("to a depot that does not exist", NOT_FOUND, transfer(|t| t.to_depot_id = "D-NONE".into())),
        ("of an item that does not exist", NOT_FOUND, transfer(|t| t.item_code = "nothing".into())),
        ("of 5 from 4 on hand", RESOURCE_EXHAUSTED, transfer(|t| t.quantity = 5)),
        ("of 10^12 from 4 on hand", RESOURCE_EXHAUSTED, transfer(|t| t.quantity = MAX_QUANTITY)),
    ] {
        table.add(format!("TransferStock {what}"), want, call!(reserve, transfer_stock, request));
    }
    request_ids(&mut table, "TransferStock", |request_id| {
        call!(
            reserve,
            transfer_stock,
            pb::TransferStockRequest { request_id, ..transfer(|t| t.from_depot_id = "D-NONE".into()) }
        )
    });

    // GetStock.
    for (what, want, request) in [
        ("with nothing set", field("depot_id"), pb::GetStockRequest::default()),
        ("with a 65-character depot_id", field("depot_id"), stock(&long_id(), "pump")),
        ("with a NUL in its depot_id", field("depot_id"), stock("D-NEAR\u{0}", "pump")),
        ("without an item_code", field("item_code"), stock("D-NEAR", "")),
        ("with an upper-case item_code", field("item_code"), stock("D-NEAR", "PUMP")),
        ("at a depot that does not exist", NOT_FOUND, stock("D-NONE", "pump")),
        ("of an item that does not exist", NOT_FOUND, stock("D-NEAR", "nothing")),
    ] {
        table.add(format!("GetStock {what}"), want, call!(reserve, get_stock, request));
    }

    // ListStock.
    for (what, want, request) in [
        (
            "at a depot_id with a space",
            field("depot_id"),
            pb::ListStockRequest { depot_id: "D NEAR".into(), ..Default::default() },
        ),
        (
            "at a depot that does not exist",
            NOT_FOUND,
            pb::ListStockRequest { depot_id: "D-NONE".into(), ..Default::default() },
        ),
        (
            "of an upper-case item_code",
            field("item_code"),
            pb::ListStockRequest { item_code: "Pump".into(), ..Default::default() },
        ),
        (
            "of an item that does not exist",
            NOT_FOUND,
            pb::ListStockRequest { item_code: "nothing".into(), ..Default::default() },
        ),
    ] {
        table.add(format!("ListStock {what}"), want, call!(reserve, list_stock, request));
    }
    paging(
        &mut table,
        "ListStock",
        vec![("a ListTeams page token", world.teams_token.clone()), ("a forged page token", hex("D-NEAR\u{0}pump"))],
        |page_size, page_token| {
            boxed(call!(reserve, list_stock, pb::ListStockRequest { page_size, page_token, ..Default::default() }))
        },
    );

    // ListLedger.
    for (what, want, request) in [
        (
            "at a depot_id with a space",
            field("depot_id"),
            pb::ListLedgerRequest { depot_id: "D NEAR".into(), ..Default::default() },
        ),
        (
            "at a depot that does not exist",
            NOT_FOUND,
            pb::ListLedgerRequest { depot_id: "D-NONE".into(), ..Default::default() },
        ),
        (
            "of an item that does not exist",
            NOT_FOUND,
            pb::ListLedgerRequest { item_code: "nothing".into(), ..Default::default() },
        ),
    ] {
        table.add(format!("ListLedger {what}"), want, call!(reserve, list_ledger, request));
    }
    paging(
        &mut table,
        "ListLedger",
        vec![
            ("a ListTeams page token", world.teams_token.clone()),
            ("a ListIncidents page token", world.incidents_token.clone()),
            ("a ListEvents page token", world.events_token.clone()),
            ("a page token of sequence -1", hex("-1")),
            ("a page token of sequence 2^64", hex("18446744073709551616")),
            ("a forged page token of sequence u64::MAX", hex("18446744073709551615")),
        ],
        |page_size, page_token| {
            boxed(call!(reserve, list_ledger, pb::ListLedgerRequest { page_size, page_token, ..Default::default() }))
        },
    );

    // ListItems and ListDepots.
    paging(
        &mut table,
        "ListItems",
        vec![("a ListTeams page token", world.teams_token.clone()), ("a forged page token", hex("zzz-forged"))],
        |page_size, page_token| boxed(call!(reserve, list_items, pb::ListItemsRequest { page_size, page_token })),
    );
    paging(
        &mut table,
        "ListDepots",
        vec![("a ListTeams page token", world.teams_token.clone()), ("a forged page token", hex("zzz-forged"))],
        |page_size, page_token| boxed(call!(reserve, list_depots, pb::ListDepotsRequest { page_size, page_token })),
    );

    run(&server, table).await;
}

#[tokio::test]
async fn incidents_and_zones_refuse_hostile_input_with_the_right_code() {
    let server = TestServer::start().await;
    let world = world(&server).await;
    let incidents = world.client.incidents();
    let start = muster_tests::START_SECONDS;
    let mut table = Table::default();
    let triangle_area = ring(&[(28.1, 112.9), (28.2, 112.9), (28.2, 113.0)]);

    // DeclareIncident. Cases the server might accept have ids of their own.
    for (what, want, request) in [
        ("without an incident", field("incident"), pb::DeclareIncidentRequest::default()),
        ("with a 65-character id", field("incident.id"), declare(&long_id(), |_| {})),
        ("with a space in its id", field("incident.id"), declare("H INC", |_| {})),
        ("with a NUL in its id", field("incident.id"), declare("H-INC\u{0}", |_| {})),
        ("without a title", field("incident.title"), declare("H-INC", |i| i.title.clear())),
        ("with a blank title", field("incident.title"), declare("H-INC", |i| i.title = "  ".into())),
        ("with a 257-character title", field("incident.title"), declare("H-INC", |i| i.title = long_text())),
        ("with a NUL in its title", field("incident.title"), declare("H-INC", |i| i.title = "Flood\u{0}".into())),
        (
            "with terminal escapes in its title",
            field("incident.title"),
            declare("H-INC", |i| i.title = "\u{1b}[31mFlood".into()),
        ),
        ("without a hazard", field("incident.hazard"), declare("H-INC", |i| i.hazard = 0)),
        ("with hazard 99", field("incident.hazard"), declare("H-INC", |i| i.hazard = 99)),
        ("with hazard -1", field("incident.hazard"), declare("H-INC", |i| i.hazard = -1)),
        ("without a level", field("incident.level"), declare("H-INC", |i| i.level = 0)),
        ("with level 99", field("incident.level"), declare("H-INC", |i| i.level = 99)),
        ("with level -1", field("incident.level"), declare("H-INC", |i| i.level = -1)),
        ("with level i32::MAX", field("incident.level"), declare("H-INC", |i| i.level = i32::MAX)),
        ("without a position", field("incident.position"), declare("H-INC", |i| i.position = None)),
        ("at latitude 91", field("incident.position.lat"), declare("H-INC", |i| i.position = at(91.0, 112.95))),
        ("at latitude NaN", field("incident.position.lat"), declare("H-INC", |i| i.position = at(f64::NAN, 112.95))),
        (
            "at latitude -inf",
            field("incident.position.lat"),
            declare("H-INC", |i| i.position = at(f64::NEG_INFINITY, 112.95)),
        ),
        ("at longitude 181", field("incident.position.lng"), declare("H-INC", |i| i.position = at(28.2, 181.0))),
        ("at longitude NaN", field("incident.position.lng"), declare("H-INC", |i| i.position = at(28.2, f64::NAN))),
        (
            "at longitude +inf",
            field("incident.position.lng"),
            declare("H-INC", |i| i.position = at(28.2, f64::INFINITY)),
        ),
        ("with an area of 1 vertex", field("incident.area"), declare("H-INC", |i| i.area = ring(&[(28.1, 112.9)]))),
        (
            "with an area of 2 vertices",
            field("incident.area"),
            declare("H-INC", |i| i.area = ring(&[(28.1, 112.9), (28.2, 113.0)])),
        ),
        (
            "with an area of 3 points closing on the first",
            field("incident.area"),
            declare("H-AREA-CLOSED", |i| i.area = ring(&[(28.1, 112.9), (28.2, 113.0), (28.1, 112.9)])),
        ),
        (
            "with an area of 3 points on a line",
            field("incident.area"),
            declare("H-AREA-LINE", |i| i.area = ring(&[(28.1, 112.9), (28.15, 112.95), (28.2, 113.0)])),
        ),
        (
            "with a self-intersecting area",
            field("incident.area"),
            declare("H-AREA-BOWTIE", |i| i.area = ring(&[(28.1, 112.9), (28.2, 113.0), (28.1, 113.0), (28.2, 112.9)])),
        ),
        (
            "with an area of 1,001 vertices",
            field("incident.area"),
            declare("H-INC", |i| i.area = circle(OVER_REPEATED)),
        ),
        (
            "with an area vertex at latitude NaN",
            field("incident.area[1].lat"),
            declare("H-INC", |i| {
                i.area = triangle_area.clone();
                i.area[1].lat = f64::NAN;
            }),
        ),
        (
            "with an area vertex at longitude 181",
            field("incident.area[2].lng"),
            declare("H-INC", |i| {
                i.area = triangle_area.clone();
                i.area[2].lng = 181.0;
            }),
        ),
        (
            "with 101 metrics",
            field("incident.metrics"),
            declare("H-INC", |i| i.metrics = (0..101).map(|n| (format!("m{n}"), 1.0)).collect()),
        ),
        (
            "with a metric named with a space",
            field("incident.metrics[Water Level]"),
            declare("H-INC", |i| i.metrics = [("Water Level".to_owned(), 1.0)].into_iter().collect()),
        ),
        (
            "with a metric of NaN",
            field("incident.metrics[water_level_m]"),
            declare("H-INC", |i| i.metrics = [("water_level_m".to_owned(), f64::NAN)].into_iter().collect()),
        ),
        (
            "with a metric of +inf",
            field("incident.metrics[water_level_m]"),
            declare("H-INC", |i| i.metrics = [("water_level_m".to_owned(), f64::INFINITY)].into_iter().collect()),
        ),
        (
            "with a metric of -inf",
            field("incident.metrics[water_level_m]"),
            declare("H-INC", |i| i.metrics = [("water_level_m".to_owned(), f64::NEG_INFINITY)].into_iter().collect()),
        ),
        ("with a plan that does not exist", NOT_FOUND, declare("H-INC", |i| i.plan_id = "P-NONE".into())),
        ("with a plan_id holding a space", field("plan_id"), declare("H-INC", |i| i.plan_id = "P FLOOD".into())),
        (
            "naming one plan on the request and another on the incident",
            field("plan_id"),
            pb::DeclareIncidentRequest {
                plan_id: "P-OTHER".into(),
                ..declare("H-INC", |i| i.plan_id = "P-FLOOD".into())
            },
        ),
        (
            "of a fire with the flood plan",
            field("plan_id"),
            declare("H-INC", |i| (i.hazard, i.plan_id) = (i32::from(pb::Hazard::Fire), "P-FLOOD".to_owned())),
        ),
        ("with the id of a declared incident", ALREADY_EXISTS, declare("A", |_| {})),
    ] {
        table.add(format!("DeclareIncident {what}"), want, call!(incidents, declare_incident, request));
    }
    request_ids(&mut table, "DeclareIncident", |request_id| {
        call!(incidents, declare_incident, pb::DeclareIncidentRequest { request_id, ..declare("A", |_| {}) })
    });

    // GetIncident.
    for (what, want, request) in [
        ("without an id", field("id"), pb::GetIncidentRequest::default()),
        ("with a 65-character id", field("id"), pb::GetIncidentRequest { id: long_id(), as_of: None }),
        ("with a newline after the id", field("id"), pb::GetIncidentRequest { id: "A\n".into(), as_of: None }),
        ("of an incident that does not exist", NOT_FOUND, pb::GetIncidentRequest { id: "NOPE".into(), as_of: None }),
        ("as of nanos -1", field("as_of.nanos"), pb::GetIncidentRequest { id: "A".into(), as_of: time(start, -1) }),
        (
            "as of seconds i64::MAX",
            field("as_of.seconds"),
            pb::GetIncidentRequest { id: "A".into(), as_of: time(i64::MAX, 0) },
        ),
        (
            "as of seconds i64::MIN",
            field("as_of.seconds"),
            pb::GetIncidentRequest { id: "A".into(), as_of: time(i64::MIN, 0) },
        ),
        ("as of 1970, before it was declared", NOT_FOUND, pb::GetIncidentRequest { id: "A".into(), as_of: time(0, 0) }),
    ] {
        table.add(format!("GetIncident {what}"), want, call!(incidents, get_incident, request));
    }

    // ListIncidents.
    for (what, want, request) in [
        ("in status 99", field("status"), pb::ListIncidentsRequest { status: 99, ..Default::default() }),
        ("in status -1", field("status"), pb::ListIncidentsRequest { status: -1, ..Default::default() }),
    ] {
        table.add(format!("ListIncidents {what}"), want, call!(incidents, list_incidents, request));
    }
    paging(
        &mut table,
        "ListIncidents",
        vec![("a ListTeams page token", world.teams_token.clone()), ("a forged page token", hex("zzz-forged"))],
        |page_size, page_token| {
            boxed(call!(
                incidents,
                list_incidents,
                pb::ListIncidentsRequest { page_size, page_token, ..Default::default() }
            ))
        },
    );

    // UpdateIncident.
    let level_i = i32::from(pb::Level::I);
    let metric = |name: &str, value: f64| -> std::collections::HashMap<String, f64> {
        [(name.to_owned(), value)].into_iter().collect()
    };
    for (what, want, request) in [
        ("with nothing set", field("id"), pb::UpdateIncidentRequest::default()),
        ("to level 99", field("level"), update_incident("A", |u| u.level = 99)),
        ("to level -1", field("level"), update_incident("A", |u| u.level = -1)),
        ("to status 99", field("status"), update_incident("A", |u| u.status = 99)),
        ("to status -1", field("status"), update_incident("A", |u| u.status = -1)),
        ("to status CLOSED", field("status"), update_incident("A", |u| u.status = pb::IncidentStatus::Closed.into())),
        (
            "with a metric of NaN",
            field("metrics[water_level_m]"),
            update_incident("A", |u| u.metrics = metric("water_level_m", f64::NAN)),
        ),
        (
            "with a metric of +inf",
            field("metrics[water_level_m]"),
            update_incident("A", |u| u.metrics = metric("water_level_m", f64::INFINITY)),
        ),
        (
            "with a metric of -inf",
            field("metrics[water_level_m]"),
            update_incident("A", |u| u.metrics = metric("water_level_m", f64::NEG_INFINITY)),
        ),
        ("with a metric of no name", field("metrics[]"), update_incident("A", |u| u.metrics = metric("", 1.0))),
        (
            "with a metric named with a space",
            field("metrics[Water Level]"),
            update_incident("A", |u| u.metrics = metric("Water Level", 1.0)),
        ),
        (
            "with a metric named with 10,000 characters",
            INVALID,
            update_incident("A", |u| u.metrics = metric(&"m".repeat(ECHO_CHARS), 1.0)),
        ),
        (
            "with 101 metrics",
            field("metrics"),
            update_incident("A", |u| u.metrics = (0..101).map(|n| (format!("m{n}"), 1.0)).collect()),
        ),
        ("with a 65-character id", field("id"), update_incident(&long_id(), |u| u.level = level_i)),
        ("with a space in its id", field("id"), update_incident("A B", |u| u.level = level_i)),
        ("of an incident that does not exist", NOT_FOUND, update_incident("NOPE", |u| u.level = level_i)),
        ("of a closed incident", FAILED_PRECONDITION, update_incident("C", |u| u.level = level_i)),
    ] {
        table.add(format!("UpdateIncident {what}"), want, call!(incidents, update_incident, request));
    }
    request_ids(&mut table, "UpdateIncident", |request_id| {
        call!(
            incidents,
            update_incident,
            pb::UpdateIncidentRequest { request_id, ..update_incident("NOPE", |u| u.level = level_i) }
        )
    });

    // CloseIncident.
    for (what, want, request) in [
        ("without an id", field("id"), pb::CloseIncidentRequest::default()),
        ("with a 65-character id", field("id"), close(&long_id())),
        ("with a NUL in its id", field("id"), close("C\u{0}")),
        ("of an incident that does not exist", NOT_FOUND, close("NOPE")),
        ("of a closed incident", FAILED_PRECONDITION, close("C")),
    ] {
        table.add(format!("CloseIncident {what}"), want, call!(incidents, close_incident, request));
    }
    request_ids(&mut table, "CloseIncident", |request_id| {
        call!(incidents, close_incident, pb::CloseIncidentRequest { request_id, ..close("NOPE") })
    });

    // RequestResources.
    for (what, want, request) in [
        ("with nothing set", field("incident_id"), pb::RequestResourcesRequest::default()),
        ("of nothing", field("teams"), request("B", vec![], vec![])),
        ("of 1,001 team needs", field("teams"), request("B", vec![water(1, 2); OVER_REPEATED], vec![])),
        ("of 1,001 supply needs", field("supplies"), request("B", vec![], vec![pumps(1); OVER_REPEATED])),
        ("with a 65-character incident_id", field("incident_id"), request(&long_id(), vec![water(1, 2)], vec![])),
        ("with a space in its incident_id", field("incident_id"), request("B B", vec![water(1, 2)], vec![])),
        ("for an incident that does not exist", NOT_FOUND, request("NOPE", vec![water(1, 2)], vec![])),
        ("for a closed incident", FAILED_PRECONDITION, request("C", vec![water(1, 2)], vec![])),
        ("of 0 teams", field("teams[0].count"), request("B", vec![water(0, 2)], vec![])),
        ("of u32::MAX teams", field("teams[0].count"), request("B", vec![water(u32::MAX, 2)], vec![])),
        ("of teams at min_tier 0", field("teams[0].min_tier"), request("B", vec![water(1, 0)], vec![])),
        ("of teams at min_tier 99", field("teams[0].min_tier"), request("B", vec![water(1, 99)], vec![])),
        (
            "of teams of no capability",
            field("teams[0].capability"),
            request("B", vec![pb::TeamNeed { capability: String::new(), min_tier: 2, count: 1 }], vec![]),
        ),
        (
            "of teams of an upper-case capability",
            field("teams[0].capability"),
            request("B", vec![pb::TeamNeed { capability: "Water".into(), min_tier: 2, count: 1 }], vec![]),
        ),
        ("of i64::MIN pumps", field("supplies[0].quantity"), request("B", vec![], vec![pumps(i64::MIN)])),
        ("of i64::MAX pumps", field("supplies[0].quantity"), request("B", vec![], vec![pumps(i64::MAX)])),
        ("of -1 pumps", field("supplies[0].quantity"), request("B", vec![], vec![pumps(-1)])),
        ("of 0 pumps", field("supplies[0].quantity"), request("B", vec![], vec![pumps(0)])),
        ("of 10^12 + 1 pumps", field("supplies[0].quantity"), request("B", vec![], vec![pumps(MAX_QUANTITY + 1)])),
        (
            "of an item of no code",
            field("supplies[0].item_code"),
            request("B", vec![], vec![pb::SupplyNeed { item_code: String::new(), quantity: 1 }]),
        ),
        (
            "of an item of an upper-case code",
            field("supplies[0].item_code"),
            request("B", vec![], vec![pb::SupplyNeed { item_code: "Pump".into(), quantity: 1 }]),
        ),
        (
            "of an item that does not exist",
            NOT_FOUND,
            request("B", vec![], vec![pb::SupplyNeed { item_code: "nothing".into(), quantity: 1 }]),
        ),
        (
            "of 1,000 more needs for an incident that holds one",
            FAILED_PRECONDITION,
            request("A", vec![water(1, 2); 1_000], vec![]),
        ),
    ] {
        table.add(format!("RequestResources {what}"), want, call!(incidents, request_resources, request));
    }
    request_ids(&mut table, "RequestResources", |request_id| {
        call!(
            incidents,
            request_resources,
            pb::RequestResourcesRequest { request_id, ..request("NOPE", vec![water(1, 2)], vec![]) }
        )
    });

    // Dispatch, dry and not. (An empty incident_id would dispatch B's needs.)
    for (what, want, request) in [
        ("(dry run) with a space in its incident_id", field("incident_id"), dispatch("B B", true)),
        ("(dry run) with a 65-character incident_id", field("incident_id"), dispatch(&long_id(), true)),
        ("(dry run) of an incident that does not exist", NOT_FOUND, dispatch("NOPE", true)),
        ("(dry run) of a closed incident", FAILED_PRECONDITION, dispatch("C", true)),
        ("with a space in its incident_id", field("incident_id"), dispatch("B B", false)),
        ("with a 65-character incident_id", field("incident_id"), dispatch(&long_id(), false)),
        ("of an incident that does not exist", NOT_FOUND, dispatch("NOPE", false)),
        ("of a closed incident", FAILED_PRECONDITION, dispatch("C", false)),
    ] {
        table.add(format!("Dispatch {what}"), want, call!(incidents, dispatch, request));
    }
    request_ids(&mut table, "Dispatch", |request_id| {
        call!(incidents, dispatch, pb::DispatchRequest { request_id, ..dispatch("NOPE", false) })
    });

    // AssignResource. A hand assignment of the free team to B's team need
    // would be accepted: every case breaks one thing.
    let (free, busy) = (world.free_team.as_str(), world.busy_team.as_str());
    let (team_need, supply_need) = (world.team_need.as_str(), world.supply_need.as_str());
    for (what, want, request) in [
        ("with nothing set", field("team_id"), pb::AssignResourceRequest::default()),
        ("without a resource", field("team_id"), assign(team_need, None, "hostile")),
        ("without a need_id", field("need_id"), assign("", by_team(free), "hostile")),
        ("with a 65-character need_id", field("need_id"), assign(&long_id(), by_team(free), "hostile")),
        ("with a space in its need_id", field("need_id"), assign("N 2", by_team(free), "hostile")),
        ("to a need that does not exist", NOT_FOUND, assign("N999", by_team(free), "hostile")),
        ("to need N0", NOT_FOUND, assign("N0", by_team(free), "hostile")),
        ("to need N2^64", NOT_FOUND, assign("N18446744073709551616", by_team(free), "hostile")),
        ("without a reason", field("reason"), assign(team_need, by_team(free), "")),
        ("with a blank reason", field("reason"), assign(team_need, by_team(free), "   ")),
        ("with a 257-character reason", field("reason"), assign(team_need, by_team(free), &long_text())),
        ("with a NUL in its reason", field("reason"), assign(team_need, by_team(free), "because\u{0}")),
        ("to a filled need", FAILED_PRECONDITION, assign(&world.filled_need, by_team(free), "hostile")),
        (
            "to a need of a closed incident",
            FAILED_PRECONDITION,
            assign(&world.cancelled_need, by_team(free), "hostile"),
        ),
        ("of a team of no id", field("team_id"), assign(team_need, by_team(""), "hostile")),
        ("of a team of a 65-character id", field("team_id"), assign(team_need, by_team(&long_id()), "hostile")),
        ("of a team that does not exist", NOT_FOUND, assign(team_need, by_team("NOPE"), "hostile")),
        ("of a team that is busy", FAILED_PRECONDITION, assign(team_need, by_team(busy), "hostile")),
        ("of a team to a supply need", field("team_id"), assign(supply_need, by_team(free), "hostile")),
        ("of stock to a team need", field("supply"), assign(team_need, by_supply("D-FAR", "", 1), "hostile")),
        ("of stock from no depot", field("supply.depot_id"), assign(supply_need, by_supply("", "", 1), "hostile")),
        (
            "of stock from a depot_id with a space",
            field("supply.depot_id"),
            assign(supply_need, by_supply("D FAR", "", 1), "hostile"),
        ),
        (
            "of another item",
            field("supply.item_code"),
            assign(supply_need, by_supply("D-FAR", "sandbag", 1), "hostile"),
        ),
        ("of 0 units", field("supply.quantity"), assign(supply_need, by_supply("D-FAR", "", 0), "hostile")),
        ("of -1 units", field("supply.quantity"), assign(supply_need, by_supply("D-FAR", "", -1), "hostile")),
        (
            "of i64::MIN units",
            field("supply.quantity"),
            assign(supply_need, by_supply("D-FAR", "", i64::MIN), "hostile"),
        ),
        (
            "of i64::MAX units",
            field("supply.quantity"),
            assign(supply_need, by_supply("D-FAR", "", i64::MAX), "hostile"),
        ),
        (
            "of 10^12 + 1 units",
            field("supply.quantity"),
            assign(supply_need, by_supply("D-FAR", "", MAX_QUANTITY + 1), "hostile"),
        ),
        (
            "of stock from a depot that does not exist",
            NOT_FOUND,
            assign(supply_need, by_supply("D-NONE", "", 1), "hostile"),
        ),
        (
            "of 11 units to a need of 10",
            FAILED_PRECONDITION,
            assign(supply_need, by_supply("D-FAR", "", 11), "hostile"),
        ),
        ("of 6 units from 4 available", RESOURCE_EXHAUSTED, assign(supply_need, by_supply("D-NEAR", "", 6), "hostile")),
        (
            "of 2 units below a level III floor",
            FAILED_PRECONDITION,
            assign(supply_need, by_supply("D-NEAR", "", 2), "hostile"),
        ),
    ] {
        table.add(format!("AssignResource {what}"), want, call!(incidents, assign_resource, request));
    }
    request_ids(&mut table, "AssignResource", |request_id| {
        call!(
            incidents,
            assign_resource,
            pb::AssignResourceRequest { request_id, ..assign("N999", by_team(free), "hostile") }
        )
    });

    // ListAssignments.
    for (what, want, request) in [
        (
            "of an incident_id with a space",
            field("incident_id"),
            pb::ListAssignmentsRequest { incident_id: "A A".into(), ..Default::default() },
        ),
        (
            "of an incident that does not exist",
            NOT_FOUND,
            pb::ListAssignmentsRequest { incident_id: "NOPE".into(), ..Default::default() },
        ),
        (
            "of a 65-character team_id",
            field("team_id"),
            pb::ListAssignmentsRequest { team_id: long_id(), ..Default::default() },
        ),
        (
            "of a team that does not exist",
            NOT_FOUND,
            pb::ListAssignmentsRequest { team_id: "NOPE".into(), ..Default::default() },
        ),
    ] {
        table.add(format!("ListAssignments {what}"), want, call!(incidents, list_assignments, request));
    }
    paging(
        &mut table,
        "ListAssignments",
        vec![
            ("a ListTeams page token", world.teams_token.clone()),
            ("a ListEvents page token", world.events_token.clone()),
            ("a forged page token", hex("999999")),
        ],
        |page_size, page_token| {
            boxed(call!(
                incidents,
                list_assignments,
                pb::ListAssignmentsRequest { page_size, page_token, ..Default::default() }
            ))
        },
    );

    // UpdateAssignment. The world's assignment is DISPATCHED; moving it
    // forward would be accepted: every case breaks one thing.
    let assignment = world.assignment.as_str();
    let acknowledged = i32::from(pb::AssignmentStatus::Acknowledged);
    let released = i32::from(pb::AssignmentStatus::Released);
    for (what, want, request) in [
        ("with nothing set", field("status"), pb::UpdateAssignmentRequest::default()),
        ("to status 99", field("status"), advance(assignment, 99, 0, "")),
        ("to status -1", field("status"), advance(assignment, -1, 0, "")),
        ("to no status", field("status"), advance(assignment, 0, 0, "")),
        ("to PROPOSED", field("status"), advance(assignment, pb::AssignmentStatus::Proposed.into(), 0, "")),
        ("without an assignment_id", field("assignment_id"), advance("", acknowledged, 0, "")),
        ("with a 65-character assignment_id", field("assignment_id"), advance(&long_id(), acknowledged, 0, "")),
        ("of an assignment that does not exist", NOT_FOUND, advance("A999", acknowledged, 0, "")),
        ("of assignment A0", NOT_FOUND, advance("A0", acknowledged, 0, "")),
        ("of assignment A-1", NOT_FOUND, advance("A-1", acknowledged, 0, "")),
        ("with a 257-character note", field("note"), advance(assignment, acknowledged, 0, &long_text())),
        ("with an escape in its note", field("note"), advance(assignment, acknowledged, 0, "\u{1b}[2J")),
        ("returning i64::MIN units", field("returned_quantity"), advance(assignment, released, i64::MIN, "")),
        ("returning i64::MAX units", field("returned_quantity"), advance(assignment, released, i64::MAX, "")),
        ("returning -1 units", field("returned_quantity"), advance(assignment, acknowledged, -1, "")),
        ("RELEASED before it is on scene", FAILED_PRECONDITION, advance(assignment, released, 0, "")),
    ] {
        table.add(format!("UpdateAssignment {what}"), want, call!(incidents, update_assignment, request));
    }
    request_ids(&mut table, "UpdateAssignment", |request_id| {
        call!(
            incidents,
            update_assignment,
            pb::UpdateAssignmentRequest { request_id, ..advance("A999", acknowledged, 0, "") }
        )
    });

    // WatchIncidents and WatchAssignments.
    for (what, want, incident_id) in [
        ("of an incident_id with a space", field("incident_id"), "A A".to_owned()),
        ("of a 65-character incident_id", field("incident_id"), long_id()),
        ("of an incident that does not exist", NOT_FOUND, "NOPE".to_owned()),
    ] {
        table.add(
            format!("WatchIncidents {what}"),
            want,
            call!(incidents, watch_incidents, pb::WatchIncidentsRequest { incident_id }),
        );
    }
    for (what, want, team_id) in [
        ("without a team_id", field("team_id"), String::new()),
        ("of a team_id with a space", field("team_id"), "W NEAR".to_owned()),
        ("of a 65-character team_id", field("team_id"), long_id()),
        ("of a team that does not exist", NOT_FOUND, "NOPE".to_owned()),
    ] {
        table.add(
            format!("WatchAssignments {what}"),
            want,
            call!(incidents, watch_assignments, pb::WatchAssignmentsRequest { team_id }),
        );
    }

    // SetZone. Cases the server might accept have ids of their own.
    let mut vertex_nan = triangle();
    vertex_nan[1].lat = f64::NAN;
    let mut vertex_north = triangle();
    vertex_north[0].lat = 91.0;
    let mut vertex_east = triangle();
    vertex_east[2].lng = 181.0;
    let mut vertex_west = triangle();
    vertex_west[2].lng = f64::NEG_INFINITY;
    for (what, want, request) in [
        ("without a zone", field("zone"), pb::SetZoneRequest::default()),
        ("without an id", field("zone.id"), set_zone("", triangle(), "")),
        ("with a 65-character id", field("zone.id"), set_zone(&long_id(), triangle(), "")),
        ("with a space in its id", field("zone.id"), set_zone("Z H", triangle(), "")),
        ("without a polygon", field("zone.polygon"), set_zone("Z-H", vec![], "")),
        ("of 1 vertex", field("zone.polygon"), set_zone("Z-H", ring(&[(10.0, 10.0)]), "")),
        ("of 2 vertices", field("zone.polygon"), set_zone("Z-H", ring(&[(10.0, 10.0), (10.0, 11.0)]), "")),
        ("of 3 points closing on the first", field("zone.polygon"), set_zone("Z-CLOSED", closed_on_itself(), "")),
        ("of 3 points on a line", field("zone.polygon"), set_zone("Z-LINE", collinear(), "")),
        ("that intersects itself", field("zone.polygon"), set_zone("Z-BOWTIE", bow_tie(), "")),
        ("of 1,001 vertices", field("zone.polygon"), set_zone("Z-H", circle(OVER_REPEATED), "")),
        ("of 100,000 vertices", field("zone.polygon"), set_zone("Z-H", circle(100_000), "")),
        ("with a vertex at latitude NaN", field("zone.polygon[1].lat"), set_zone("Z-H", vertex_nan, "")),
        ("with a vertex at latitude 91", field("zone.polygon[0].lat"), set_zone("Z-H", vertex_north, "")),
        ("with a vertex at longitude 181", field("zone.polygon[2].lng"), set_zone("Z-H", vertex_east, "")),
        ("with a vertex at longitude -inf", field("zone.polygon[2].lng"), set_zone("Z-H", vertex_west, "")),
        ("with a 257-character note", field("zone.note"), set_zone("Z-H", triangle(), &long_text())),
        ("with a NUL in its note", field("zone.note"), set_zone("Z-H", triangle(), "flooded\u{0}")),
    ] {
        table.add(format!("SetZone {what}"), want, call!(incidents, set_zone, request));
    }
    request_ids(&mut table, "SetZone", |request_id| {
        call!(incidents, set_zone, pb::SetZoneRequest { request_id, ..set_zone("", triangle(), "") })
    });

    // ClearZone.
    for (what, want, request) in [
        ("without an id", field("id"), pb::ClearZoneRequest::default()),
        ("with a 65-character id", field("id"), clear_zone(&long_id())),
        ("with a space in its id", field("id"), clear_zone("Z LIFTED")),
        ("of a zone that does not exist", NOT_FOUND, clear_zone("NOPE")),
        ("of a zone already lifted", FAILED_PRECONDITION, clear_zone("Z-LIFTED")),
    ] {
        table.add(format!("ClearZone {what}"), want, call!(incidents, clear_zone, request));
    }
    request_ids(&mut table, "ClearZone", |request_id| {
        call!(incidents, clear_zone, pb::ClearZoneRequest { request_id, ..clear_zone("NOPE") })
    });

    // ListZones.
    paging(
        &mut table,
        "ListZones",
        vec![("a ListTeams page token", world.teams_token.clone()), ("a forged page token", hex("zzz-forged"))],
        |page_size, page_token| boxed(call!(incidents, list_zones, pb::ListZonesRequest { page_size, page_token })),
    );

    run(&server, table).await;
}

#[tokio::test]
async fn plans_audit_and_drills_refuse_hostile_input_with_the_right_code() {
    let server = TestServer::start().await;
    let world = world(&server).await;
    let plans = world.client.plans();
    let audit = world.client.audit();
    let drills = world.client.drills();
    let mut table = Table::default();

    // PutPlan (of a new plan, P-HOSTILE).
    let level = |level: pb::Level| i32::from(level);
    for (what, want, request) in [
        ("without a plan", field("plan"), pb::PutPlanRequest::default()),
        ("without a hazard", field("plan.hazard"), put_plan(|p| p.hazard = 0)),
        ("for hazard 99", field("plan.hazard"), put_plan(|p| p.hazard = 99)),
        ("for hazard -1", field("plan.hazard"), put_plan(|p| p.hazard = -1)),
        ("without an id", field("plan.id"), put_plan(|p| p.id.clear())),
        ("with a 65-character id", field("plan.id"), put_plan(|p| p.id = long_id())),
        ("with a space in its id", field("plan.id"), put_plan(|p| p.id = "P H".into())),
        ("without a name", field("plan.name"), put_plan(|p| p.name.clear())),
        ("with a 257-character name", field("plan.name"), put_plan(|p| p.name = long_text())),
        ("with a NUL in its name", field("plan.name"), put_plan(|p| p.name = "Plan\u{0}".into())),
        ("of no level", field("plan.levels"), put_plan(|p| p.levels.clear())),
        (
            "of 1,001 levels",
            field("plan.levels"),
            put_plan(|p| p.levels = vec![pb::LevelRequirement::default(); OVER_REPEATED]),
        ),
        ("for no level", field("plan.levels[0].level"), put_plan(|p| p.levels[0].level = 0)),
        ("for level 99", field("plan.levels[0].level"), put_plan(|p| p.levels[0].level = 99)),
        ("for level -1", field("plan.levels[0].level"), put_plan(|p| p.levels[0].level = -1)),
        ("defining a level twice", field("plan.levels[1].level"), put_plan(|p| p.levels.push(p.levels[0].clone()))),
        (
            "asking 1,001 team needs",
            field("plan.levels[0].teams"),
            put_plan(|p| p.levels[0].teams = vec![water(1, 2); OVER_REPEATED]),
        ),
        (
            "asking 1,001 supply needs",
            field("plan.levels[0].supplies"),
            put_plan(|p| p.levels[0].supplies = vec![pumps(1); OVER_REPEATED]),
        ),
        (
            "of 1,001 tasks",
            field("plan.levels[0].tasks"),
            put_plan(|p| p.levels[0].tasks = vec![pb::Task::default(); OVER_REPEATED]),
        ),
        (
            "of a task with 1,001 supporters",
            field("plan.levels[0].tasks[0].supporting"),
            put_plan(|p| p.levels[0].tasks[0].supporting = vec!["Police".to_owned(); OVER_REPEATED]),
        ),
        ("asking 0 teams", field("plan.levels[0].teams[0].count"), put_plan(|p| p.levels[0].teams[0].count = 0)),
        (
            "asking u32::MAX teams",
            field("plan.levels[0].teams[0].count"),
            put_plan(|p| p.levels[0].teams[0].count = u32::MAX),
        ),
        (
            "asking teams at min_tier 0",
            field("plan.levels[0].teams[0].min_tier"),
            put_plan(|p| p.levels[0].teams[0].min_tier = 0),
        ),
        (
            "asking teams of no capability",
            field("plan.levels[0].teams[0].capability"),
            put_plan(|p| p.levels[0].teams[0].capability.clear()),
        ),
        (
            "asking i64::MIN pumps",
            field("plan.levels[0].supplies[0].quantity"),
            put_plan(|p| p.levels[0].supplies[0].quantity = i64::MIN),
        ),
        (
            "asking i64::MAX pumps",
            field("plan.levels[0].supplies[0].quantity"),
            put_plan(|p| p.levels[0].supplies[0].quantity = i64::MAX),
        ),
        (
            "asking 0 pumps",
            field("plan.levels[0].supplies[0].quantity"),
            put_plan(|p| p.levels[0].supplies[0].quantity = 0),
        ),
        (
            "asking -1 pumps",
            field("plan.levels[0].supplies[0].quantity"),
            put_plan(|p| p.levels[0].supplies[0].quantity = -1),
        ),
        (
            "asking an item of an upper-case code",
            field("plan.levels[0].supplies[0].item_code"),
            put_plan(|p| p.levels[0].supplies[0].item_code = "Pump".into()),
        ),
        (
            "of a task without a title",
            field("plan.levels[0].tasks[0].title"),
            put_plan(|p| p.levels[0].tasks[0].title.clear()),
        ),
        (
            "of a task titled with an escape",
            field("plan.levels[0].tasks[0].title"),
            put_plan(|p| p.levels[0].tasks[0].title = "\u{1b}[2J".into()),
        ),
        (
            "of 1,001 triggers",
            field("plan.triggers"),
            put_plan(|p| {
                p.triggers =
                    vec![pb::Trigger { metric: "m".into(), threshold: 1.0, level: level(pb::Level::Ii) }; OVER_REPEATED]
            }),
        ),
        (
            "with a trigger at NaN",
            field("plan.triggers[0].threshold"),
            put_plan(|p| p.triggers[0].threshold = f64::NAN),
        ),
        (
            "with a trigger at +inf",
            field("plan.triggers[0].threshold"),
            put_plan(|p| p.triggers[0].threshold = f64::INFINITY),
        ),
        (
            "with a trigger at -inf",
            field("plan.triggers[0].threshold"),
            put_plan(|p| p.triggers[0].threshold = f64::NEG_INFINITY),
        ),
        ("with a trigger to level 99", field("plan.triggers[0].level"), put_plan(|p| p.triggers[0].level = 99)),
        ("with a trigger to no level", field("plan.triggers[0].level"), put_plan(|p| p.triggers[0].level = 0)),
        (
            "with a trigger to a level it does not define",
            field("plan.triggers[0].level"),
            put_plan(|p| p.triggers[0].level = level(pb::Level::I)),
        ),
        (
            "with a trigger on a metric named with a space",
            field("plan.triggers[0].metric"),
            put_plan(|p| p.triggers[0].metric = "Water Level".into()),
        ),
    ] {
        table.add(format!("PutPlan {what}"), want, call!(plans, put_plan, request));
    }
    request_ids(&mut table, "PutPlan", |request_id| {
        call!(plans, put_plan, pb::PutPlanRequest { request_id, ..put_plan(|p| p.id.clear()) })
    });

    // GetPlan.
    for (what, want, request) in [
        ("without an id", field("id"), pb::GetPlanRequest::default()),
        ("with a 65-character id", field("id"), pb::GetPlanRequest { id: long_id(), version: 0 }),
        ("with a space in its id", field("id"), pb::GetPlanRequest { id: "P FLOOD".into(), version: 0 }),
        ("of a plan that does not exist", NOT_FOUND, pb::GetPlanRequest { id: "NOPE".into(), version: 0 }),
        ("at version 2 of a plan at version 1", NOT_FOUND, pb::GetPlanRequest { id: "P-FLOOD".into(), version: 2 }),
        ("at version u32::MAX", NOT_FOUND, pb::GetPlanRequest { id: "P-FLOOD".into(), version: u32::MAX }),
    ] {
        table.add(format!("GetPlan {what}"), want, call!(plans, get_plan, request));
    }

    // ListPlans.
    for (what, want, request) in [
        ("for hazard 99", field("hazard"), pb::ListPlansRequest { hazard: 99, ..Default::default() }),
        ("for hazard -1", field("hazard"), pb::ListPlansRequest { hazard: -1, ..Default::default() }),
    ] {
        table.add(format!("ListPlans {what}"), want, call!(plans, list_plans, request));
    }
    paging(
        &mut table,
        "ListPlans",
        vec![("a ListTeams page token", world.teams_token.clone()), ("a forged page token", hex("zzz-forged"))],
        |page_size, page_token| {
            boxed(call!(plans, list_plans, pb::ListPlansRequest { page_size, page_token, ..Default::default() }))
        },
    );

    // ListEvents.
    let start = muster_tests::START_SECONDS;
    for (what, want, request) in [
        ("of an incident_id with a space", field("incident_id"), list_events(|e| e.incident_id = "A A".into())),
        ("of a 65-character incident_id", field("incident_id"), list_events(|e| e.incident_id = long_id())),
        ("of a team_id with a space", field("team_id"), list_events(|e| e.team_id = "W NEAR".into())),
        ("of a 65-character team_id", field("team_id"), list_events(|e| e.team_id = long_id())),
        ("since nanos -1", field("since.nanos"), list_events(|e| e.since = time(start, -1))),
        ("since nanos 1e9", field("since.nanos"), list_events(|e| e.since = time(start, 1_000_000_000))),
        ("since seconds i64::MIN", field("since.seconds"), list_events(|e| e.since = time(i64::MIN, 0))),
        ("since seconds i64::MAX", field("since.seconds"), list_events(|e| e.since = time(i64::MAX, 0))),
        ("of an incident that does not exist", NOT_FOUND, list_events(|e| e.incident_id = "NOPE".into())),
        ("of a team that does not exist", NOT_FOUND, list_events(|e| e.team_id = "NOPE".into())),
    ] {
        table.add(format!("ListEvents {what}"), want, call!(audit, list_events, request));
    }
    paging(
        &mut table,
        "ListEvents",
        vec![
            ("a ListTeams page token", world.teams_token.clone()),
            ("a ListIncidents page token", world.incidents_token.clone()),
            ("a forged page token far past the log", hex("999999")),
            ("a forged page token of sequence u64::MAX", hex("18446744073709551615")),
        ],
        |page_size, page_token| {
            boxed(call!(audit, list_events, pb::ListEventsRequest { page_size, page_token, ..Default::default() }))
        },
    );

    // GetDigest.
    for (what, sequence) in [("past the end of the log", world.last_sequence + 1), ("at u64::MAX", u64::MAX)] {
        table.add(
            format!("GetDigest {what}"),
            field("sequence"),
            call!(audit, get_digest, pb::GetDigestRequest { sequence }),
        );
    }

    // ExportService.
    let exports = world.client.exports();
    for (what, incident_id, want) in [
        ("of no incident", String::new(), field("incident_id")),
        ("of an over-long id", long_id(), field("incident_id")),
        ("of an id with a control character", "A\u{7}".to_owned(), field("incident_id")),
        ("of an incident that does not exist", "NO-SUCH".to_owned(), NOT_FOUND),
    ] {
        table.add(
            format!("IncidentReport {what}"),
            want,
            call!(exports, incident_report, pb::IncidentReportRequest { incident_id: incident_id.clone() }),
        );
    }
    for (what, incident_id, want) in [
        ("of an over-long id", long_id(), field("incident_id")),
        ("of an incident that does not exist", "NO-SUCH".to_owned(), NOT_FOUND),
        ("of a closed incident", "C".to_owned(), NOT_FOUND),
    ] {
        table.add(
            format!("SituationGeoJson {what}"),
            want,
            call!(exports, situation_geo_json, pb::SituationGeoJsonRequest { incident_id }),
        );
    }

    // RunDrill: broken scripts, refused before anything runs.
    let fixture_files = |text: String| -> std::collections::HashMap<String, String> {
        [("world.toml".to_owned(), text)].into_iter().collect()
    };
    for (what, want, request) in [
        ("with nothing set", field("script:1"), pb::RunDrillRequest::default()),
        ("of a script that is not TOML", field("broken.toml:1"), run_drill("broken.toml", "[[inject]")),
        ("of a script whose name is a number", field("script:1"), run_drill("", "name = 3")),
        ("of a script of 1,000 nested arrays", field("deep.toml:1"), run_drill("deep.toml", &nested_toml())),
        ("of a script over 2 MiB", field("script"), run_drill("big.toml", &"#".repeat(OVER_SCRIPT))),
        (
            "with a fixture file over 2 MiB",
            field("files[world.toml]"),
            pb::RunDrillRequest {
                files: fixture_files("#".repeat(OVER_SCRIPT)),
                ..run_drill("drill.toml", SCRIPT_WITH_FIXTURE)
            },
        ),
        (
            "naming a fixture it does not send",
            field("drill.toml:3: fixture"),
            run_drill("drill.toml", SCRIPT_WITH_FIXTURE),
        ),
        (
            "with a fixture file that is not TOML",
            field("world.toml:1"),
            pb::RunDrillRequest {
                files: fixture_files("this is = = not toml".to_owned()),
                ..run_drill("drill.toml", SCRIPT_WITH_FIXTURE)
            },
        ),
        ("named with terminal escapes", field("name"), run_drill("\u{1b}[2J.toml", "[[inject]")),
        ("named with 10,000 characters", field("name"), run_drill(&"n".repeat(ECHO_CHARS), "[[inject]")),
    ] {
        table.add(format!("RunDrill {what}"), want, call!(drills, run_drill, request));
    }

    // GetDrillReport and ReplayDrill.
    for (what, want, run_id) in [
        ("without a run_id", field("run_id"), String::new()),
        ("with a 65-character run_id", field("run_id"), long_id()),
        ("with a space in its run_id", field("run_id"), "R 1".to_owned()),
        ("of run R0", NOT_FOUND, "R0".to_owned()),
        ("of a run that does not exist", NOT_FOUND, "R999".to_owned()),
        ("of run R2^64", NOT_FOUND, "R18446744073709551616".to_owned()),
        ("of run R-1", NOT_FOUND, "R-1".to_owned()),
    ] {
        table.add(
            format!("GetDrillReport {what}"),
            want,
            call!(drills, get_drill_report, pb::GetDrillReportRequest { run_id: run_id.clone() }),
        );
        table.add(format!("ReplayDrill {what}"), want, call!(drills, replay_drill, pb::ReplayDrillRequest { run_id }));
    }

    // ListDrillRuns.
    paging(
        &mut table,
        "ListDrillRuns",
        vec![
            ("a ListTeams page token", world.teams_token.clone()),
            ("a ListEvents page token", world.events_token.clone()),
            ("a forged page token", hex("999999")),
        ],
        |page_size, page_token| {
            boxed(call!(drills, list_drill_runs, pb::ListDrillRunsRequest { page_size, page_token }))
        },
    );

    // ExportIncidentAsDrill.
    for (what, want, incident_id) in [
        ("without an incident_id", field("incident_id"), String::new()),
        ("of an incident_id with a space", field("incident_id"), "A A".to_owned()),
        ("of a 65-character incident_id", field("incident_id"), long_id()),
        ("of an incident that does not exist", NOT_FOUND, "NOPE".to_owned()),
    ] {
        table.add(
            format!("ExportIncidentAsDrill {what}"),
            want,
            call!(drills, export_incident_as_drill, pb::ExportIncidentAsDrillRequest { incident_id }),
        );
    }

    run(&server, table).await;
}

#[tokio::test]
async fn bytes_that_are_not_the_request_are_invalid_argument_on_every_method() {
    let served: BTreeSet<String> = muster_server::grpc::auth::served_methods()
        .into_iter()
        .filter(|path| path.starts_with("/muster.v1."))
        .collect();
    let swept: BTreeSet<String> = METHODS.iter().map(|(path, _)| (*path).to_owned()).collect();
    assert_eq!(swept, served, "the sweep must reach every method of the API, and only those");

    let server = TestServer::start().await;
    let world = world(&server).await;
    let channel = &world.channel;
    let mut table = Table::default();

    // Controls: the raw channel works, and unknown fields are ignored, as proto3 says.
    table.add(
        "GetDigest as an empty message (control)",
        Want::Answered,
        raw(channel, "/muster.v1.AuditService/GetDigest", Vec::new()),
    );
    table.add(
        "WatchTeams with an unknown field (control)",
        Want::Answered,
        raw(channel, "/muster.v1.RosterService/WatchTeams", length_delimited(15, b"junk")),
    );

    // Every method, every kind of junk.
    for &(path, string_field) in METHODS {
        for (what, body) in junk_messages(string_field) {
            table.add(format!("{path} with {what}"), UNDECODABLE, raw(channel, path, body));
        }
    }

    // Junk inside the request's own messages.
    let entry = |key: &[u8], value: Vec<u8>| [length_delimited(1, key), value].concat();
    for (what, path, body) in [
        (
            "RegisterTeam with a team name that is not UTF-8",
            "/muster.v1.RosterService/RegisterTeam",
            length_delimited(2, &length_delimited(2, &[0xC3, 0x28])),
        ),
        (
            "SetZone with a vertex latitude cut short",
            "/muster.v1.IncidentService/SetZone",
            length_delimited(2, &length_delimited(2, &[0x09, 0x00, 0x00, 0x00])),
        ),
        (
            "DeclareIncident with a metric sent as a varint",
            "/muster.v1.IncidentService/DeclareIncident",
            length_delimited(2, &length_delimited(7, &entry(b"water_level_m", vec![0x10, 0x01]))),
        ),
        (
            "PutPlan with 200 nested groups inside a level",
            "/muster.v1.PlanService/PutPlan",
            length_delimited(2, &length_delimited(4, &nested_groups())),
        ),
        (
            "RunDrill with a file that is not UTF-8",
            "/muster.v1.DrillService/RunDrill",
            length_delimited(3, &entry(b"world.toml", length_delimited(2, &[0xFF]))),
        ),
        (
            "RegisterTeam over the 4 MiB message limit",
            "/muster.v1.RosterService/RegisterTeam",
            pb::RegisterTeamRequest {
                request_id: String::new(),
                team: Some(pb::Team { name: "x".repeat(OVER_MESSAGE), ..team("H-BIG") }),
            }
            .encode_to_vec(),
        ),
        (
            "RunDrill over the 4 MiB message limit",
            "/muster.v1.DrillService/RunDrill",
            pb::RunDrillRequest { script: "#".repeat(OVER_MESSAGE), ..Default::default() }.encode_to_vec(),
        ),
    ] {
        table.add(what, UNDECODABLE, raw(channel, path, body));
    }

    // Unknown enum values, as raw bytes on the wire.
    for (what, want, path, body) in [
        (
            "ListIncidents with status 99, raw",
            field("status"),
            "/muster.v1.IncidentService/ListIncidents",
            pb::ListIncidentsRequest { status: 99, ..Default::default() }.encode_to_vec(),
        ),
        (
            "AdjustStock with reason -1, raw",
            field("reason"),
            "/muster.v1.ReserveService/AdjustStock",
            adjust(|a| a.reason = -1).encode_to_vec(),
        ),
        (
            "ReportStatus with status i32::MAX, raw",
            field("status"),
            "/muster.v1.RosterService/ReportStatus",
            report(&world.free_team, i32::MAX, None).encode_to_vec(),
        ),
        (
            "DeclareIncident with level -1, raw",
            field("incident.level"),
            "/muster.v1.IncidentService/DeclareIncident",
            declare("H-RAW", |i| i.level = -1).encode_to_vec(),
        ),
    ] {
        table.add(what, want, raw(channel, path, body));
    }

    run(&server, table).await;
}
