//! Builders and checks shared by the end-to-end tests.

use muster_client::proto as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The token the tests give caller `name`: long enough and base64url, as
/// the server demands.
pub fn secret(name: &str) -> String {
    format!("{name}-secret-token-0123456789")
}

/// A token for `name` in `role`, its secret [`secret`]`(name)`.
pub fn token(name: &str, role: &str) -> muster_server::server::TokenConfig {
    muster_server::server::TokenConfig { name: name.to_owned(), role: role.to_owned(), token: secret(name) }
}

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

/// The team an assignment sends ("" for supplies).
pub fn team_of(assignment: &pb::Assignment) -> &str {
    match &assignment.resource {
        Some(pb::assignment::Resource::TeamId(team)) => team,
        _ => "",
    }
}

/// The incident service's client, as the tests hold it.
pub type Incidents = pb::incident_service_client::IncidentServiceClient<muster_client::AuthChannel>;

/// Incident `id` as it stands now.
pub async fn get_incident(incidents: &mut Incidents, id: &str) -> pb::Incident {
    incidents.get_incident(pb::GetIncidentRequest { id: id.into(), as_of: None }).await.unwrap().into_inner()
}

/// Asserts that `result` failed with `code`, and, for `INVALID_ARGUMENT`,
/// that the message and the `BadRequest` detail name `field`.
pub fn check_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, field: Option<&str>) -> Status {
    let status = result.expect_err("the call should have failed");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    if let Some(field) = field {
        assert!(status.message().contains(field), "message {:?} does not name {field}", status.message());
        let violations = violations(&status);
        assert!(violations.iter().any(|named| named == field), "no BadRequest violation for {field}: {violations:?}");
    }
    status
}

/// The fields a status's `BadRequest` detail names.
pub fn violations(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|details| details.field_violations.into_iter().map(|violation| violation.field).collect())
        .unwrap_or_default()
}

/// A codec of raw message bytes, so one helper can call any method.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; prost::bytes::Buf::remaining(src)];
        prost::bytes::Buf::copy_to_slice(src, &mut out);
        Ok(Some(out))
    }
}

/// Calls the method at `path` (`/package.Service/Method`) with an encoded
/// request, as `token`. A unary call answers its reply's bytes; a stream
/// answers once it is open (empty bytes), or with the status that refused it.
pub async fn raw_call(
    channel: &tonic::transport::Channel,
    token: Option<&str>,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    // How to call it, as the server's own descriptors say.
    let shape = muster_server::grpc::auth::method_shape(path).expect("a method the server serves");
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|error| Status::unavailable(error.to_string()))?;
    let path: http::uri::PathAndQuery = path.parse().expect("a gRPC path");
    let authorize = |metadata: &mut tonic::metadata::MetadataMap| {
        if let Some(token) = token {
            metadata.insert("authorization", format!("Bearer {token}").parse().expect("header text"));
        }
    };
    match (shape.client_streaming, shape.server_streaming) {
        (false, false) => {
            let mut request = tonic::Request::new(body);
            authorize(request.metadata_mut());
            grpc.unary(request, path, RawCodec).await.map(tonic::Response::into_inner)
        }
        (false, true) => {
            let mut request = tonic::Request::new(body);
            authorize(request.metadata_mut());
            grpc.server_streaming(request, path, RawCodec).await.map(|_| Vec::new())
        }
        (true, _) => {
            let mut request = tonic::Request::new(tokio_stream::once(body));
            authorize(request.metadata_mut());
            let mut replies = grpc.streaming(request, path, RawCodec).await?.into_inner();
            // Reflection answers (or refuses) the first message.
            replies.message().await.map(Option::unwrap_or_default)
        }
    }
}
