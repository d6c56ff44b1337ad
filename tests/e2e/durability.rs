//! Restarts: the state and the retry keys survive a restart on the same data
//! directory, and the state is the fold of the log.

use muster_client::proto as pb;
use muster_tests::TestServer;

use crate::support::register;

#[tokio::test]
async fn state_and_request_ids_survive_a_restart() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    let first = roster.register_team(register("WR-01", "reg-1")).await.unwrap().into_inner();
    roster
        .report_status(pb::ReportStatusRequest {
            request_id: "st-1".into(),
            team_id: "WR-01".into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let digest_before =
        server.client().await.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();

    let server = server.restart().await;
    let client = server.client().await;
    let digest_after = client.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    assert_eq!(digest_after, digest_before, "the restarted server folds the log to the same state");
    let mut roster = client.roster();
    let team = roster.get_team(pb::GetTeamRequest { id: "WR-01".into(), as_of: None }).await.unwrap().into_inner();
    assert_eq!((team.status(), team.version), (pb::TeamStatus::OutOfService, 2));
    let retry = roster.register_team(register("WR-01", "reg-1")).await.unwrap().into_inner();
    assert_eq!(retry, first, "a retry after a restart still gets the first answer");
}

#[tokio::test]
async fn request_ids_are_forgotten_only_after_24_hours() {
    let server = TestServer::start().await;
    let mut roster = server.client().await.roster();
    roster.register_team(register("WR-01", "reg-1")).await.unwrap();
    server.clock.advance_seconds(23 * 3600);
    roster.register_team(register("WR-01", "reg-1")).await.expect("within 24 h a retry gets the first answer");
    server.clock.advance_seconds(2 * 3600);
    // Any write lets the writer expire old keys.
    roster.register_team(register("WR-02", "")).await.unwrap();
    let late = roster.register_team(register("WR-01", "reg-1")).await;
    assert_eq!(late.map(|_| ()).unwrap_err().code(), tonic::Code::AlreadyExists, "after 25 h the key is gone");
}
