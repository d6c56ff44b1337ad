//! The HTTP side: the board's page and picture, an incident's page, the
//! GeoJSON layers (parsed back), Prometheus metrics (parsed as exposition
//! text; counters move after calls), live updates, and sign-in.

use std::collections::BTreeMap;

use muster_client::proto as pb;
use muster_tests::{Options, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::{team_of, token};

const CITY: &str = include_str!("../../drills/fixtures/city.toml");

/// One HTTP/1.1 answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// A plain HTTP/1.1 request to the test server (a helper of a few lines
/// rather than an HTTP client crate: the tests need GET and one form POST).
pub async fn request(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect to the HTTP side");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {address}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).expect("a text answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let chunked =
        headers.iter().any(|(name, value)| name.eq_ignore_ascii_case("transfer-encoding") && value == "chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Answer { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

pub async fn get(base: &str, path: &str) -> Answer {
    request(base, "GET", path, &[], "").await
}

/// Prometheus text exposition, parsed: every sample by its name and labels.
/// Refuses a line that is not a comment, a blank or `name{labels} value`.
fn exposition(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(!line.starts_with('#'), "an unknown comment line: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "not a metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

pub(crate) async fn city(server: &TestServer) -> pb::DispatchResponse {
    let client = server.client().await;
    client
        .imports()
        .import(pb::ImportRequest { request_id: String::new(), name: "city.toml".into(), toml: CITY.into() })
        .await
        .unwrap();
    let mut incidents = client.incidents();
    incidents
        .declare_incident(pb::DeclareIncidentRequest {
            request_id: String::new(),
            incident: Some(pb::Incident {
                id: "FLOOD-1".into(),
                title: "Xiang river over the embankment".into(),
                hazard: pb::Hazard::Flood.into(),
                position: Some(pb::LatLng { lat: 28.195, lng: 112.975 }),
                level: pb::Level::Ii.into(),
                area: vec![
                    pb::LatLng { lat: 28.19, lng: 112.97 },
                    pb::LatLng { lat: 28.19, lng: 112.98 },
                    pb::LatLng { lat: 28.20, lng: 112.98 },
                    pb::LatLng { lat: 28.20, lng: 112.97 },
                ],
                ..Default::default()
            }),
            plan_id: String::new(),
        })
        .await
        .unwrap();
    incidents
        .request_resources(pb::RequestResourcesRequest {
            request_id: String::new(),
            incident_id: "FLOOD-1".into(),
            teams: vec![
                pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: 2 },
                pb::TeamNeed { capability: "firefighting".into(), min_tier: 1, count: 200 },
            ],
            supplies: vec![pb::SupplyNeed { item_code: "sandbag".into(), quantity: 500 }],
        })
        .await
        .unwrap();
    incidents
        .dispatch(pb::DispatchRequest { incident_id: "FLOOD-1".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn the_board_its_picture_an_incident_page_and_the_geojson_show_the_city() {
    let server = TestServer::start_with(Options { http: true, ..Options::default() }).await;
    let http = server.http_url.clone().unwrap();
    let dispatched = city(&server).await;
    assert!(dispatched.assignments.len() >= 3, "{dispatched:?}");
    let team_assignment = dispatched
        .assignments
        .iter()
        .find(|assignment| !team_of(assignment).is_empty())
        .map(|assignment| (assignment.id.clone(), team_of(assignment).to_owned()))
        .unwrap();

    let board = get(&http, "/").await;
    assert_eq!(board.status, 200);
    assert!(board.body.contains("<script src=\"/board.js\">") && board.body.contains("id=\"map\""));
    for asset in ["/board.js", "/board.css"] {
        let answer = get(&http, asset).await;
        assert_eq!(answer.status, 200, "{asset}");
        // The SVG namespace is a name, not an address anything fetches.
        let body = answer.body.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!body.contains("http://") && !body.contains("https://"), "{asset} fetches nothing from outside");
    }
    assert!(!board.body.contains("https://"), "the page names nothing outside the server");

    let picture: serde_json::Value = serde_json::from_str(&get(&http, "/situation.json").await.body).unwrap();
    assert_eq!(picture["teams"].as_array().unwrap().len(), 38, "every team of the city");
    let incident = &picture["incidents"][0];
    assert_eq!((incident["id"].as_str(), incident["level"].as_str()), (Some("FLOOD-1"), Some("II")));
    let open: Vec<&str> =
        picture["open_needs"].as_array().unwrap().iter().map(|need| need["what"].as_str().unwrap()).collect();
    assert!(open.contains(&"firefighting tier <= 1"), "200 firefighting teams cannot all be found: {open:?}");
    let assigned_team =
        picture["teams"].as_array().unwrap().iter().find(|team| team["id"] == team_assignment.1.as_str()).unwrap();
    assert_eq!(assigned_team["status"], "ASSIGNED");

    let page = get(&http, "/incidents/FLOOD-1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Xiang river over the embankment"));
    assert!(page.body.contains(&team_assignment.0), "the assignment is listed");
    assert!(page.body.contains("IncidentDeclared") && page.body.contains("AssignmentCreated"), "the timeline");
    assert!(page.body.contains("<svg class=\"map\""), "the incident's map");
    assert_eq!(get(&http, "/incidents/NOPE").await.status, 404);

    let collection: geojson::FeatureCollection =
        get(&http, "/geo/situation.geojson").await.body.parse::<geojson::GeoJson>().unwrap().try_into().unwrap();
    let layer = |feature: &geojson::Feature| {
        feature.property("layer").and_then(|value| value.as_str()).unwrap_or("").to_owned()
    };
    let count = |name: &str| collection.features.iter().filter(|feature| layer(feature) == name).count();
    assert_eq!(count("teams"), 38);
    assert_eq!(count("incidents"), 1);
    assert_eq!(count("incident-areas"), 1);
    assert_eq!(count("assignments"), dispatched.assignments.len());
    let point = collection.features.iter().find(|feature| layer(feature) == "incidents").unwrap();
    match &point.geometry.as_ref().unwrap().value {
        geojson::Value::Point(position) => assert_eq!(position, &vec![112.975, 28.195], "GeoJSON is [lng, lat]"),
        other => panic!("an incident is a point: {other:?}"),
    }
    let area = collection.features.iter().find(|feature| layer(feature) == "incident-areas").unwrap();
    match &area.geometry.as_ref().unwrap().value {
        geojson::Value::Polygon(rings) => {
            assert_eq!(rings[0].len(), 5, "a closed ring");
            assert_eq!(rings[0].first(), rings[0].last());
        }
        other => panic!("an area is a polygon: {other:?}"),
    }
    let teams: geojson::FeatureCollection = get(&http, "/geo/teams.geojson?incident=FLOOD-1")
        .await
        .body
        .parse::<geojson::GeoJson>()
        .unwrap()
        .try_into()
        .unwrap();
    let team_features = dispatched
        .assignments
        .iter()
        .filter(|assignment| matches!(assignment.resource, Some(pb::assignment::Resource::TeamId(_))))
        .count();
    assert_eq!(teams.features.len(), team_features, "only the incident's teams");
    assert_eq!(get(&http, "/geo/nothing.geojson").await.status, 404);
    // RFC 7946: exterior rings run counter-clockwise.
    if let Some(geojson::Value::Polygon(rings)) = area.geometry.as_ref().map(|geometry| &geometry.value) {
        let twice_area: f64 = rings[0].windows(2).map(|pair| pair[0][0] * pair[1][1] - pair[1][0] * pair[0][1]).sum();
        assert!(twice_area > 0.0, "counter-clockwise");
    }
    // With no tokens the board answers only requests addressed to loopback.
    let rebound = request(&http, "GET", "/situation.json", &[("Host", "attacker.example")], "").await;
    assert_eq!(rebound.status, 403);
    assert_eq!(get(&http, "/geo/teams.geojson?incident=NOPE").await.status, 404);
}

#[tokio::test]
async fn metrics_are_exposition_text_and_counters_move_after_calls() {
    let server = TestServer::start_with(Options { http: true, ..Options::default() }).await;
    let http = server.http_url.clone().unwrap();
    city(&server).await;
    let key = "muster_grpc_requests_total{method=\"muster.v1.RosterService/ListTeams\",code=\"Ok\"}";
    let before = exposition(&get(&http, "/metrics").await.body);
    let mut roster = server.client().await.roster();
    for _ in 0..3 {
        roster.list_teams(pb::ListTeamsRequest::default()).await.unwrap();
    }
    let answer = get(&http, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let after = exposition(&answer.body);
    assert!(
        after[key] >= before.get(key).copied().unwrap_or(0.0) + 3.0,
        "{key}: {:?} then {}",
        before.get(key),
        after[key]
    );
    assert!(after.keys().any(|series| series.starts_with("muster_grpc_request_duration_seconds_bucket{")));
    assert!(after.keys().any(|series| series.starts_with("muster_sync_duration_seconds_bucket{")));
    assert!(after.keys().any(|series| series.starts_with("muster_commands_per_group_bucket{")));
    assert!(after.keys().any(|series| series.starts_with("muster_dispatch_duration_seconds_bucket{")));
    assert!(after["muster_log_sequence"] >= 4.0);
    assert_eq!(
        after["muster_teams{status=\"ASSIGNED\"}"]
            + after["muster_teams{status=\"AVAILABLE\"}"]
            + after["muster_teams{status=\"OUT_OF_SERVICE\"}"]
            + after["muster_teams{status=\"EN_ROUTE\"}"]
            + after["muster_teams{status=\"ON_SCENE\"}"]
            + after["muster_teams{status=\"RETURNING\"}"],
        38.0
    );
    assert!(after["muster_open_needs{level=\"II\"}"] >= 1.0);
    // A refused call is counted with its code.
    let refused = roster.get_team(pb::GetTeamRequest { id: "NOPE".into(), ..Default::default() }).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::NotFound);
    let after = exposition(&get(&http, "/metrics").await.body);
    assert!(after["muster_grpc_requests_total{method=\"muster.v1.RosterService/GetTeam\",code=\"NotFound\"}"] >= 1.0);
}

#[tokio::test]
async fn a_change_over_grpc_reaches_the_live_stream() {
    let server = TestServer::start_with(Options { http: true, ..Options::default() }).await;
    let http = server.http_url.clone().unwrap();
    city(&server).await;
    let address = http.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("GET /events HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(read).lines();
    // The head first.
    let status = lines.next_line().await.unwrap().unwrap();
    assert!(status.contains(" 200 "), "{status}");
    let team = "VOL-01";
    server
        .client()
        .await
        .roster()
        .report_status(pb::ReportStatusRequest {
            request_id: String::new(),
            team_id: team.into(),
            status: pb::TeamStatus::Unspecified.into(),
            position: Some(pb::LatLng { lat: 28.2001, lng: 112.9601 }),
        })
        .await
        .unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("data:") && line.contains(team) {
                return line;
            }
        }
        panic!("the stream ended");
    })
    .await
    .expect("the update arrives");
    let update: serde_json::Value = serde_json::from_str(seen.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(update["teams"][0]["id"], team);
    assert_eq!(update["teams"][0]["lat"], 28.2001);
    assert_eq!(update["refresh"], false, "a position report moves a dot; nothing else to fetch");
}

#[tokio::test]
async fn with_tokens_the_board_wants_a_sign_in_and_keeps_the_token_out_of_urls() {
    let tokens = vec![
        token("duty", "commander"),
        token("wall", "observer"),
        token("exercise", "drill"),
        token("phone", "team:VOL-01"),
    ];
    let server = TestServer::start_with(Options { tokens, http: true, ..Options::default() }).await;
    let http = server.http_url.clone().unwrap();

    let anonymous = get(&http, "/").await;
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some("/signin")));
    assert_eq!(get(&http, "/situation.json").await.status, 401);
    assert_eq!(get(&http, "/metrics").await.status, 401);
    assert_eq!(get(&http, "/signin").await.status, 200);

    let form = "token=wall-secret-token-0123456789";
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let signed_in = request(&http, "POST", "/signin", &form_type, form).await;
    assert_eq!(signed_in.status, 303);
    let cookie = signed_in.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!signed_in.header("location").unwrap().contains("secret"), "never the token in a URL");
    let session = cookie.split(';').next().unwrap().to_owned();
    assert!(!cookie.contains("wall-secret"), "the cookie holds a session id, not the token: {cookie}");
    let board = request(&http, "GET", "/", &[("Cookie", &session)], "").await;
    assert_eq!(board.status, 200);
    assert_eq!(request(&http, "GET", "/situation.json", &[("Cookie", &session)], "").await.status, 200);
    // Signing out ends the session on the server: the same cookie no longer works.
    assert_eq!(request(&http, "POST", "/signout", &[("Cookie", &session)], "").await.status, 303);
    assert_eq!(request(&http, "GET", "/situation.json", &[("Cookie", &session)], "").await.status, 401);

    let wrong = request(&http, "POST", "/signin", &form_type, "token=not-a-token-anyone-has").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let drill = request(&http, "POST", "/signin", &form_type, "token=exercise-secret-token-0123456789").await;
    assert_eq!(drill.status, 403, "a drill token does not read the live board");
    let team = request(&http, "POST", "/signin", &form_type, "token=phone-secret-token-0123456789").await;
    assert_eq!(team.status, 403, "the board shows every team's assignments: not for a team token");
    let elsewhere = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "http://evil.example")];
    let forged = request(&http, "POST", "/signin", &elsewhere, form).await;
    assert_eq!(forged.status, 403, "a sign-in posted from another site");
    assert!(forged.header("set-cookie").is_none());

    let scrape =
        request(&http, "GET", "/metrics", &[("Authorization", "Bearer wall-secret-token-0123456789")], "").await;
    assert_eq!(scrape.status, 200, "scrapers use a bearer token");
}

#[tokio::test]
async fn the_after_action_report_and_the_geojson_export_come_through_the_api() {
    let server = TestServer::start_with(Options { http: true, ..Options::default() }).await;
    let http = server.http_url.clone().unwrap();
    let dispatched = city(&server).await;
    let mut exports = server.client().await.exports();
    let report = exports
        .incident_report(pb::IncidentReportRequest { incident_id: "FLOOD-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.content_type, "text/html; charset=utf-8");
    let html = report.body;
    assert!(html.starts_with("<!doctype html>") && html.contains("<style>"), "one self-contained file");
    assert!(!html.contains("src=") && !html.contains("<link"), "it loads nothing");
    assert!(html.contains("After-action report"));
    assert!(html.contains("<svg class=\"map\"") && html.contains("<svg class=\"chart\""), "its map and its chart");
    for assignment in &dispatched.assignments {
        assert!(html.contains(&assignment.id), "{} is in the report", assignment.id);
    }
    assert!(html.contains("short for"), "the firefighting shortfall is listed");
    assert!(html.contains("<td>local</td>"), "the timeline names the actor");

    let missing = exports.incident_report(pb::IncidentReportRequest { incident_id: "NOPE".into() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    let exported = exports
        .situation_geo_json(pb::SituationGeoJsonRequest { incident_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exported.content_type, "application/geo+json");
    let through_grpc: geojson::FeatureCollection =
        exported.body.parse::<geojson::GeoJson>().unwrap().try_into().unwrap();
    let through_http: geojson::FeatureCollection =
        get(&http, "/geo/situation.geojson").await.body.parse::<geojson::GeoJson>().unwrap().try_into().unwrap();
    assert_eq!(through_grpc.features.len(), through_http.features.len(), "one renderer");
    let scoped = exports
        .situation_geo_json(pb::SituationGeoJsonRequest { incident_id: "FLOOD-1".into() })
        .await
        .unwrap()
        .into_inner();
    let scoped: geojson::FeatureCollection = scoped.body.parse::<geojson::GeoJson>().unwrap().try_into().unwrap();
    assert!(scoped.features.len() < through_grpc.features.len());
    assert!(scoped.features.len() > dispatched.assignments.len(), "the incident and its assignments");
}
