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
    let channel = server.channel().await;
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

/// Every service, method, message, field and enum value of the contract has
/// a comment in the descriptor set that reflection serves, so `grpcurl
/// describe` explains each one.
#[test]
fn every_element_of_the_contract_is_described() {
    use prost::Message as _;
    use prost_types::{DescriptorProto, FileDescriptorSet};
    let set = FileDescriptorSet::decode(muster_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut missing = Vec::new();
    for file in set.file.iter().filter(|file| file.name().starts_with("muster/")) {
        let described: std::collections::BTreeSet<Vec<i32>> = file
            .source_code_info
            .as_ref()
            .map(|info| {
                info.location
                    .iter()
                    .filter(|location| !location.leading_comments().trim().is_empty())
                    .map(|location| location.path.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut check = |path: Vec<i32>, what: String| {
            if !described.contains(&path) {
                missing.push(format!("{}: {what}", file.name()));
            }
        };
        fn messages(
            prefix: Vec<i32>,
            message: &DescriptorProto,
            name: String,
            check: &mut dyn FnMut(Vec<i32>, String),
        ) {
            if message.options.as_ref().is_some_and(|options| options.map_entry()) {
                return;
            }
            check(prefix.clone(), name.clone());
            for (index, field) in message.field.iter().enumerate() {
                check([prefix.as_slice(), &[2, index as i32]].concat(), format!("{name}.{}", field.name()));
            }
            for (index, nested) in message.nested_type.iter().enumerate() {
                messages(
                    [prefix.as_slice(), &[3, index as i32]].concat(),
                    nested,
                    format!("{name}.{}", nested.name()),
                    check,
                );
            }
            for (index, oneof) in message.oneof_decl.iter().enumerate() {
                check([prefix.as_slice(), &[8, index as i32]].concat(), format!("{name}.{} (oneof)", oneof.name()));
            }
            for (index, enumeration) in message.enum_type.iter().enumerate() {
                let path = [prefix.as_slice(), &[4, index as i32]].concat();
                check(path.clone(), format!("{name}.{}", enumeration.name()));
                for (value_index, value) in enumeration.value.iter().enumerate() {
                    check([path.as_slice(), &[2, value_index as i32]].concat(), format!("{name}.{}", value.name()));
                }
            }
        }
        for (index, message) in file.message_type.iter().enumerate() {
            messages(vec![4, index as i32], message, message.name().to_owned(), &mut check);
        }
        for (index, enumeration) in file.enum_type.iter().enumerate() {
            check(vec![5, index as i32], enumeration.name().to_owned());
            for (value_index, value) in enumeration.value.iter().enumerate() {
                check(vec![5, index as i32, 2, value_index as i32], value.name().to_owned());
            }
        }
        for (index, service) in file.service.iter().enumerate() {
            check(vec![6, index as i32], service.name().to_owned());
            for (method_index, method) in service.method.iter().enumerate() {
                check(vec![6, index as i32, 2, method_index as i32], format!("{}.{}", service.name(), method.name()));
            }
        }
    }
    assert!(missing.is_empty(), "{} element(s) without a comment: {missing:#?}", missing.len());
}
