//! Builders and checks shared by the end-to-end tests.

use muster_client::proto as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A valid team with one capability, insured until 2027-06-30.
pub fn team(id: &str) -> pb::Team {
    pb::Team {
        id: id.to_owned(),
        name: format!("Team {id}"),
        organization: "Fire and rescue detachment".to_owned(),
        capabilities: vec![pb::Capability { code: "water_rescue".to_owned(), tier: 2 }],
        headcount: 8,
        home: Some(pb::LatLng { lat: 28.21, lng: 112.97 }),
        speed_kmh: 50.0,
        insurance_expires: Some(muster_client::Timestamp { seconds: 1_814_313_600, nanos: 0 }),
        ..pb::Team::default()
    }
}

/// A `RegisterTeamRequest` for `team(id)`.
pub fn register(id: &str, request_id: &str) -> pb::RegisterTeamRequest {
    pb::RegisterTeamRequest { request_id: request_id.to_owned(), team: Some(team(id)) }
}

/// Asserts that `result` failed with `code`, and, for `INVALID_ARGUMENT`,
/// that the message and the `BadRequest` detail name `field`.
pub fn check_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, field: Option<&str>) -> Status {
    let status = result.expect_err("the call should have failed");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    if let Some(field) = field {
        assert!(status.message().contains(field), "message {:?} does not name {field}", status.message());
        let violations = status.get_details_bad_request().map(|details| details.field_violations).unwrap_or_default();
        assert!(
            violations.iter().any(|violation| violation.field == field),
            "no BadRequest violation for {field}: {violations:?}"
        );
    }
    status
}
