//! What generic gRPC tools see: health and reflection.

use muster_client::proto_health::{health_check_response::ServingStatus, HealthCheckRequest};
use muster_tests::TestServer;
use tokio_stream::StreamExt;
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse, ServerReflectionRequest,
};

#[tokio::test]
async fn health_answers_serving() {
    let server = TestServer::start().await;
    let mut health = server.client().await.health();
    let overall = health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(overall.status(), ServingStatus::Serving);
    let roster =
        health.check(HealthCheckRequest { service: "muster.v1.RosterService".into() }).await.unwrap().into_inner();
    assert_eq!(roster.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn reflection_lists_every_service_of_the_contract() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Endpoint::from_shared(server.url.clone()).unwrap().connect().await.unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|service| service.name).collect();
    for expected in [
        "muster.v1.RosterService",
        "muster.v1.ReserveService",
        "muster.v1.PlanService",
        "muster.v1.IncidentService",
        "muster.v1.AuditService",
        "muster.v1.DrillService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|name| name == expected), "{expected} missing from {names:?}");
    }
}
