//! AuditService end to end: the log as reviewers read it, and the digest.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tonic::Code;

use crate::support::{check_error, register};

/// A page token for "after this sequence" as an older server wrote them (no
/// list tag, no check): no longer accepted.
fn hex_token(sequence: u64) -> String {
    sequence.to_string().bytes().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn list_events_shows_actor_time_request_id_and_a_summary_filtered_by_team_and_time() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut roster = client.roster();
    roster.register_team(register("WR-01", "reg-1")).await.unwrap();
    server.clock.advance_seconds(120);
    roster.register_team(register("WR-02", "reg-2")).await.unwrap();
    roster
        .report_status(pb::ReportStatusRequest {
            request_id: "st-1".into(),
            team_id: "WR-01".into(),
            status: pb::TeamStatus::OutOfService.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut audit = client.audit();

    let all = audit.list_events(pb::ListEventsRequest::default()).await.unwrap().into_inner().events;
    assert_eq!(all.iter().map(|event| event.sequence).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(all[0].kind, "TeamRegistered");
    assert_eq!(all[0].actor, "local");
    assert_eq!(all[0].request_id, "reg-1");
    assert_eq!(all[0].team_ids, vec!["WR-01"]);
    assert_eq!(all[0].time.map(|time| time.seconds), Some(muster_tests::START_SECONDS));
    assert!(all[2].summary.contains("WR-01") && all[2].summary.contains("OUT_OF_SERVICE"), "{}", all[2].summary);

    let wr01 = audit
        .list_events(pb::ListEventsRequest { team_id: "WR-01".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(wr01.iter().map(|event| event.sequence).collect::<Vec<_>>(), vec![1, 3]);

    let since = muster_client::Timestamp { seconds: muster_tests::START_SECONDS + 60, nanos: 0 };
    let later = audit
        .list_events(pb::ListEventsRequest { since: Some(since), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(later.iter().map(|event| event.sequence).collect::<Vec<_>>(), vec![2, 3]);

    let first_page =
        audit.list_events(pb::ListEventsRequest { page_size: 2, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(first_page.events.len(), 2);
    let second_page = audit
        .list_events(pb::ListEventsRequest {
            page_size: 2,
            page_token: first_page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.events.iter().map(|event| event.sequence).collect::<Vec<_>>(), vec![3]);
    assert!(second_page.next_page_token.is_empty());

    // A token the server did not make (here: the bare sequence) is refused,
    // not read as a position past the end.
    check_error(
        audit.list_events(pb::ListEventsRequest { page_token: hex_token(u64::MAX), ..Default::default() }).await,
        Code::InvalidArgument,
        Some("page_token"),
    );
    check_error(
        audit.list_events(pb::ListEventsRequest { team_id: "bad id".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        Some("team_id"),
    );
}

#[tokio::test]
async fn the_digest_at_a_past_sequence_matches_the_digest_the_server_had_then() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut roster = client.roster();
    let mut audit = client.audit();
    let mut seen = Vec::new();
    for index in 0..5 {
        roster.register_team(register(&format!("T-{index}"), "")).await.unwrap();
        seen.push(audit.get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner());
    }
    assert_eq!(seen.iter().map(|digest| digest.sequence).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    let distinct: std::collections::BTreeSet<_> = seen.iter().map(|digest| digest.digest.clone()).collect();
    assert_eq!(distinct.len(), 5, "every change changes the digest");
    for digest in &seen {
        let replayed = audit.get_digest(pb::GetDigestRequest { sequence: digest.sequence }).await.unwrap().into_inner();
        assert_eq!(&replayed, digest);
    }
    check_error(audit.get_digest(pb::GetDigestRequest { sequence: 99 }).await, Code::InvalidArgument, Some("sequence"));
}
