//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and for their
//! proptest twins that run in CI on stable. Each takes arbitrary bytes and
//! returns `Err` when a property of the server breaks; a panic is a finding
//! too.
//!
//! - [`api_call`]: the first byte picks a method of the API, the rest is its
//!   request message, sent through the same routes and access layer as the
//!   real server (no socket) to a fresh engine holding a small world. The
//!   properties: no `INTERNAL` or `UNKNOWN` answer, the state's invariants
//!   hold after the call, and a refused call changes nothing (the state's
//!   digest is the one before).
//! - [`scripts`]: fixture and drill-script TOML, parsed; never a panic.
//! - [`records`]: bytes decoded as a stored log record or snapshot; what
//!   decodes encodes back to the same bytes.
//!
//! Each call builds its own runtime, store and engine, so an input's
//! outcome depends on that input alone (libFuzzer replays findings one by
//! one).

use std::sync::{Arc, OnceLock};

use muster_proto::v1 as pb;
use prost::Message as _;
use tonic::Code;
use tower::{Layer as _, Service as _, ServiceExt};

use super::auth::{AccessLayer, Tokens, RULES};
use crate::domain::{invariants, LogRecord, Timestamp};
use crate::engine::{Engine, EngineConfig, ManualClock};
use crate::store::{Append, MemoryStore, Store};

/// The harness clock: 2026-07-01T06:00:00Z.
const START_SECONDS: i64 = 1_782_885_600;

/// The world every call starts from: two depots with pumps, two water
/// rescue teams, a plan-less incident with a team and a supply need, one
/// dispatch. Small, so a call costs little; varied, so most methods have
/// something to find.
const WORLD: &str = r#"
[[item]]
code = "pump"
name = "Pump"
unit = "unit"

[[depot]]
id = "D-1"
name = "Depot one"
position = [28.200, 112.950]

[[depot]]
id = "D-2"
name = "Depot two"
position = [28.300, 112.950]

[[stock]]
depot = "D-1"
item = "pump"
on_hand = 6
min_reserve = 2

[[stock]]
depot = "D-2"
item = "pump"
on_hand = 5
min_reserve = 1

[[team]]
id = "W-1"
name = "Water rescue one"
capabilities = [{ code = "water_rescue", tier = 1 }]
headcount = 8
home = [28.200, 112.950]
speed_kmh = 60
insurance_expires = "2027-06-30T00:00:00Z"

[[team]]
id = "W-2"
name = "Water rescue two"
capabilities = [{ code = "water_rescue", tier = 2 }]
headcount = 6
home = [28.210, 112.900]
speed_kmh = 50
insurance_expires = "2027-06-30T00:00:00Z"
"#;

/// The methods of the API (`muster.v1`), in the table's order: what the
/// first byte of an [`api_call`] input picks from.
pub fn api_methods() -> Vec<&'static str> {
    RULES.iter().map(|(path, _)| *path).filter(|path| path.starts_with("/muster.v1.")).collect()
}

/// The streams among [`api_methods`] (their descriptors say so): they
/// never end by themselves, so the harness reads only how they open.
fn streams(path: &str) -> bool {
    super::auth::method_shape(path).is_some_and(|shape| shape.server_streaming)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|error| error.to_string())
}

/// The world's log, built once per process through the API itself.
fn world() -> Result<&'static [LogRecord], String> {
    static WORLD_LOG: OnceLock<Result<Vec<LogRecord>, String>> = OnceLock::new();
    WORLD_LOG
        .get_or_init(|| {
            runtime()?.block_on(async {
                let fresh = Fresh::start(&[])?;
                let setup: Vec<(&str, Vec<u8>)> = vec![
                    (
                        "/muster.v1.ImportService/Import",
                        pb::ImportRequest { request_id: String::new(), name: "world.toml".into(), toml: WORLD.into() }
                            .encode_to_vec(),
                    ),
                    (
                        "/muster.v1.IncidentService/DeclareIncident",
                        pb::DeclareIncidentRequest {
                            request_id: String::new(),
                            incident: Some(pb::Incident {
                                id: "A".into(),
                                title: "flooding at A".into(),
                                hazard: pb::Hazard::Flood.into(),
                                position: Some(pb::LatLng { lat: 28.2, lng: 112.951 }),
                                level: pb::Level::Ii.into(),
                                ..Default::default()
                            }),
                            plan_id: String::new(),
                        }
                        .encode_to_vec(),
                    ),
                    (
                        "/muster.v1.IncidentService/RequestResources",
                        pb::RequestResourcesRequest {
                            request_id: String::new(),
                            incident_id: "A".into(),
                            teams: vec![pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: 1 }],
                            supplies: vec![pb::SupplyNeed { item_code: "pump".into(), quantity: 3 }],
                        }
                        .encode_to_vec(),
                    ),
                    ("/muster.v1.IncidentService/Dispatch", pb::DispatchRequest::default().encode_to_vec()),
                ];
                for (path, message) in setup {
                    let code = fresh.call(path, &message).await?;
                    if code != Code::Ok {
                        return Err(format!("building the world: {path} answered {code:?}"));
                    }
                }
                let log = fresh.store.read(1, usize::MAX).map_err(|error| error.to_string());
                fresh.engine.shutdown().await;
                log
            })
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// A fresh store and engine holding `log`, with the API's routes over it.
struct Fresh {
    store: Arc<MemoryStore>,
    engine: Engine,
    routes: super::auth::AccessService<tonic::service::Routes>,
}

impl Fresh {
    fn start(log: &[LogRecord]) -> Result<Fresh, String> {
        let store = Arc::new(MemoryStore::new());
        store.append(Append { records: log, ..Append::default() }).map_err(|error| error.to_string())?;
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(START_SECONDS)));
        let config = EngineConfig { snapshot_every: 0, ..EngineConfig::default() };
        let engine =
            Engine::start(Arc::clone(&store) as Arc<dyn Store>, clock, config).map_err(|error| error.to_string())?;
        let watchers = super::watch::Watchers::default();
        let routes = crate::server::api_routes(&engine.handle(), Arc::clone(&store) as Arc<dyn Store>, &watchers)
            .map_err(|error| error.to_string())?
            .routes();
        // No tokens: every call is the local commander, who may call anything.
        let routes = AccessLayer::new(Tokens::default()).layer(routes);
        Ok(Fresh { store, engine, routes })
    }

    /// Sends `message` to `path` as one gRPC frame; the answer's code.
    async fn call(&self, path: &str, message: &[u8]) -> Result<Code, String> {
        let mut frame = Vec::with_capacity(5 + message.len());
        frame.push(0);
        frame.extend(u32::try_from(message.len()).map_err(|_| "a message over 4 GiB".to_owned())?.to_be_bytes());
        frame.extend_from_slice(message);
        let body = tonic::body::Body::new(http_body_util::Full::new(prost::bytes::Bytes::from(frame)));
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://muster.fuzz{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(body)
            .map_err(|error| error.to_string())?;
        let mut routes = self.routes.clone();
        let ready = ServiceExt::<http::Request<tonic::body::Body>>::ready(&mut routes).await;
        let response = ready.map_err(|error| format!("{error:?}"))?.call(request).await;
        let response = response.map_err(|error| format!("{error:?}"))?;
        let (parts, body) = response.into_parts();
        if let Some(code) = grpc_status(&parts.headers) {
            return Ok(code);
        }
        if streams(path) {
            return Ok(Code::Ok);
        }
        let collected = http_body_util::BodyExt::collect(body).await.map_err(|error| format!("{error:?}"))?;
        let trailers = collected.trailers().ok_or_else(|| format!("{path}: a reply without trailers"))?;
        grpc_status(trailers).ok_or_else(|| format!("{path}: trailers without grpc-status"))
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(Code::from_i32(value))
}

/// The first byte of an [`api_call`] input that picks the method whose
/// path ends with `method` (for example `"/GetTeam"`).
fn selector(method: &str) -> Option<u8> {
    u8::try_from(api_methods().iter().position(|path| path.ends_with(method))?).ok()
}

/// Valid requests for the world, as [`api_call`] inputs: the seed corpus of
/// the `api` fuzz target, and what the proptest twin mutates.
pub fn api_seeds() -> Vec<Vec<u8>> {
    let seed = |method: &str, message: Vec<u8>| -> Option<Vec<u8>> {
        let mut input = vec![selector(method)?];
        input.extend(message);
        Some(input)
    };
    let position = Some(pb::LatLng { lat: 28.21, lng: 112.96 });
    [
        seed("/GetTeam", pb::GetTeamRequest { id: "W-1".into(), as_of: None }.encode_to_vec()),
        seed("/ListTeams", pb::ListTeamsRequest { page_size: 1, ..Default::default() }.encode_to_vec()),
        seed(
            "/ReportStatus",
            pb::ReportStatusRequest {
                request_id: "r-1".into(),
                team_id: "W-2".into(),
                status: pb::TeamStatus::OutOfService.into(),
                position,
            }
            .encode_to_vec(),
        ),
        seed(
            "/AdjustStock",
            pb::AdjustStockRequest {
                depot_id: "D-2".into(),
                item_code: "pump".into(),
                delta: 2,
                reason: pb::LedgerReason::Received.into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        seed(
            "/TransferStock",
            pb::TransferStockRequest {
                from_depot_id: "D-1".into(),
                to_depot_id: "D-2".into(),
                item_code: "pump".into(),
                quantity: 1,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        seed("/ListLedger", pb::ListLedgerRequest { page_size: 2, ..Default::default() }.encode_to_vec()),
        seed("/GetIncident", pb::GetIncidentRequest { id: "A".into(), ..Default::default() }.encode_to_vec()),
        seed(
            "/UpdateIncident",
            pb::UpdateIncidentRequest { id: "A".into(), level: pb::Level::I.into(), ..Default::default() }
                .encode_to_vec(),
        ),
        seed("/Dispatch", pb::DispatchRequest { dry_run: true, ..Default::default() }.encode_to_vec()),
        seed("/ListAssignments", pb::ListAssignmentsRequest::default().encode_to_vec()),
        seed(
            "/SetZone",
            pb::SetZoneRequest {
                request_id: String::new(),
                zone: Some(pb::Zone {
                    id: "Z-1".into(),
                    note: "flooded underpass".into(),
                    polygon: vec![
                        pb::LatLng { lat: 28.19, lng: 112.94 },
                        pb::LatLng { lat: 28.19, lng: 112.96 },
                        pb::LatLng { lat: 28.21, lng: 112.96 },
                        pb::LatLng { lat: 28.21, lng: 112.94 },
                    ],
                    ..Default::default()
                }),
            }
            .encode_to_vec(),
        ),
        seed("/ListEvents", pb::ListEventsRequest { page_size: 3, ..Default::default() }.encode_to_vec()),
        seed("/GetDigest", pb::GetDigestRequest { sequence: 2 }.encode_to_vec()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The world's log records as the stores encode them: the seed corpus of
/// the `records` target.
pub fn record_seeds() -> Result<Vec<Vec<u8>>, String> {
    world()?.iter().map(|record| crate::store::encode_log_record(record).map_err(|error| error.to_string())).collect()
}

/// One API call from fuzz input (see the module's documentation).
pub fn api_call(input: &[u8]) -> Result<(), String> {
    let Some((selector, message)) = input.split_first() else {
        return Ok(());
    };
    let methods = api_methods();
    let path = methods[usize::from(*selector) % methods.len()];
    let world = world()?;
    runtime()?.block_on(async {
        let fresh = Fresh::start(world)?;
        let handle = fresh.engine.handle();
        let before = handle.snapshot().digest();
        let code = fresh.call(path, message).await?;
        let after = handle.snapshot();
        fresh.engine.shutdown().await;
        invariants::check(&after).map_err(|broken| format!("{path}: an invariant broke: {broken}"))?;
        match code {
            Code::Internal | Code::Unknown => Err(format!("{path} answered {code:?} to client input")),
            Code::Ok => Ok(()),
            refused if after.digest() != before => {
                Err(format!("{path} refused with {refused:?} but changed the state"))
            }
            _ => Ok(()),
        }
    })
}

/// Fixture and drill-script text from fuzz input: parsed, never a panic.
pub fn scripts(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let _fixture = crate::fixture::parse("fuzz.toml", &text);
    let no_fixtures = |name: &str| -> Result<(String, String), String> { Err(format!("no fixture {name}")) };
    let _script = crate::drill::script::parse("fuzz.toml", &text, &no_fixtures);
}

/// Bytes from fuzz input as a stored log record and a stored snapshot:
/// refused or decoded, never a panic; a decoded record's encoding
/// decodes and encodes back to the same bytes.
pub fn records(input: &[u8]) -> Result<(), String> {
    if let Ok(record) = crate::store::decode_log_record(input) {
        // Compared as bytes: a record may hold a NaN, never equal to itself.
        let encoded = crate::store::encode_log_record(&record).map_err(|error| error.to_string())?;
        let again = crate::store::decode_log_record(&encoded).map_err(|error| error.to_string())?;
        let reencoded = crate::store::encode_log_record(&again).map_err(|error| error.to_string())?;
        if reencoded != encoded {
            return Err(format!("a record does not survive its own encoding: {record:?}"));
        }
    }
    let _snapshot = crate::store::decode_stored_snapshot(input);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_world_builds_and_a_good_call_and_a_bad_one_keep_the_properties() {
        assert!(world().unwrap().len() > 5);
        let get_team = selector("/GetTeam").unwrap();
        let mut good = vec![get_team];
        good.extend(pb::GetTeamRequest { id: "W-1".into(), as_of: None }.encode_to_vec());
        api_call(&good).unwrap();
        // Not a GetTeamRequest at all: refused as the client's fault.
        api_call(&[get_team, 0x0a, 0xff, 0xff]).unwrap();
    }

    #[test]
    fn every_method_answers_an_empty_request_within_the_properties() {
        for selector in 0..api_methods().len() {
            api_call(&[u8::try_from(selector).unwrap()]).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_requests_keep_the_properties(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            api_call(&input).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn mutated_valid_requests_keep_the_properties(
            seed in proptest::sample::select(api_seeds()),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut input = seed;
            for (at, byte) in flips {
                // Never the method selector: mutate the message, or grow an
                // empty one.
                match input.len() {
                    1 => input.push(byte),
                    len => input[1 + at.index(len - 1)] = byte,
                }
            }
            api_call(&input).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn arbitrary_text_parses_or_is_refused(text in "[\\[\\]a-z_=\"0-9.,{} \n-]{0,400}") {
            scripts(text.as_bytes());
        }

        #[test]
        fn arbitrary_bytes_decode_as_records_or_are_refused(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            records(&input).map_err(TestCaseError::fail)?;
        }
    }
}
