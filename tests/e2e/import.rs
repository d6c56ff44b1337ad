//! `ImportService` and `muster import` end to end: the city fixture loads,
//! loads again without changes, and a bad file applies nothing.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tonic::Code;

use crate::support::check_error;

fn city() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../drills/fixtures/city.toml");
    std::fs::read_to_string(path).expect("drills/fixtures/city.toml")
}

fn import(name: &str, toml: String) -> pb::ImportRequest {
    pb::ImportRequest { request_id: String::new(), name: name.into(), toml }
}

#[tokio::test]
async fn the_city_fixture_imports_once_and_a_second_import_changes_nothing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut imports = client.imports();
    let first = imports.import(import("city.toml", city())).await.unwrap().into_inner();
    assert!(first.created.iter().any(|created| created == "team WR-01"), "{:?}", first.created);
    assert!(first.changed.is_empty(), "a fresh server has nothing to change: {:?}", first.changed);

    let depots = client.reserve().list_depots(pb::ListDepotsRequest::default()).await.unwrap().into_inner().depots;
    assert!(depots.len() >= 8, "at least 8 depots, got {}", depots.len());
    let items = client.reserve().list_items(pb::ListItemsRequest::default()).await.unwrap().into_inner().items;
    assert!(items.len() >= 20, "at least 20 items, got {}", items.len());
    let teams = client.roster().list_teams(pb::ListTeamsRequest::default()).await.unwrap().into_inner().teams;
    assert!(teams.len() >= 30, "at least 30 teams, got {}", teams.len());
    let stock = client
        .reserve()
        .list_stock(pb::ListStockRequest { page_size: 1_000, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .levels;
    let rows = city().lines().filter(|line| line.trim() == "[[stock]]").count();
    assert_eq!(stock.len(), rows, "every [[stock]] row is a stock level");
    assert!(stock.iter().all(|level| level.on_hand >= level.min_reserve && level.reserved == 0));

    let digest = client.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    let second = imports.import(import("city.toml", city())).await.unwrap().into_inner();
    assert!(second.created.is_empty() && second.changed.is_empty(), "{second:?}");
    assert_eq!(second.unchanged as usize, depots.len() + items.len() + teams.len() + rows);
    let after = client.audit().get_digest(pb::GetDigestRequest { sequence: 0 }).await.unwrap().into_inner();
    assert_eq!(after, digest, "the second import appended nothing");
}

#[tokio::test]
async fn a_changed_file_brings_records_to_what_it_says_counting_stock_differences() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut imports = client.imports();
    imports.import(import("city.toml", city())).await.unwrap();
    let mut reserve = client.reserve();
    let before = reserve
        .get_stock(pb::GetStockRequest { depot_id: "D-YUELU".into(), item_code: "sandbag".into() })
        .await
        .unwrap()
        .into_inner();
    let changed_text =
        city().replacen(&format!("on_hand = {}", before.on_hand), &format!("on_hand = {}", before.on_hand + 111), 1);
    let response = imports.import(import("city.toml", changed_text)).await.unwrap().into_inner();
    assert!(!response.changed.is_empty(), "{response:?}");
    let ledger = reserve
        .list_ledger(pb::ListLedgerRequest { item_code: "sandbag".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let counted = ledger.last().unwrap();
    assert_eq!(counted.reason(), pb::LedgerReason::Counted);
    assert_eq!(counted.delta, 111);
    assert!(counted.note.contains("city.toml:"), "the ledger says which line: {}", counted.note);
}

async fn check_bad_file(server: &TestServer, text: &str, expected: &[&str]) {
    let client = server.client().await;
    let status =
        check_error(client.imports().import(import("bad.toml", text.to_owned())).await, Code::InvalidArgument, None);
    for part in expected {
        assert!(status.message().contains(part), "{:?} should mention {part:?}", status.message());
    }
    let items = client.reserve().list_items(pb::ListItemsRequest::default()).await.unwrap().into_inner().items;
    assert!(items.is_empty(), "nothing of a bad file may be applied: {items:?}");
}

const GOOD_HEAD: &str = r#"[[item]]
code = "sandbag"
name = "Sandbag"
unit = "bag"

[[depot]]
id = "D-1"
name = "Depot one"
position = [28.1, 112.9]
"#;

#[tokio::test]
async fn a_bad_file_names_file_line_and_key_and_applies_nothing() {
    let server = TestServer::start().await;
    check_bad_file(
        &server,
        &format!("{GOOD_HEAD}\n[[stock]]\ndepot = \"D-1\"\nitem = \"sandbag\"\non_hand = 5\nfloor = 2\n"),
        &["bad.toml:15", "floor"],
    )
    .await;
    check_bad_file(
        &server,
        &format!("{GOOD_HEAD}\n[[stock]]\ndepot = \"D-9\"\nitem = \"sandbag\"\non_hand = 5\n"),
        &["bad.toml:11", "stock[0].depot", "D-9"],
    )
    .await;
    check_bad_file(
        &server,
        &format!("{GOOD_HEAD}\n[[stock]]\ndepot = \"D-1\"\nitem = \"sandbag\"\non_hand = -5\n"),
        &["bad.toml:11", "stock[0].on_hand"],
    )
    .await;
    check_bad_file(
        &server,
        &format!("{GOOD_HEAD}\n[[item]]\ncode = \"sandbag\"\nname = \"x\"\nunit = \"bag\"\n"),
        &["bad.toml:11", "item[1].code", "bad.toml:1"],
    )
    .await;
    check_bad_file(
        &server,
        &format!("{GOOD_HEAD}\n[[team]]\nid = \"T-1\"\nname = \"T\"\ncapabilities = [{{ code = \"swim\", tier = 7 }}]\nheadcount = 3\nhome = [28.1, 112.9]\nspeed_kmh = 40\n"),
        &["bad.toml:11", "team[0].capabilities[0].tier"],
    )
    .await;
    check_bad_file(
        &server,
        &format!("{GOOD_HEAD}\n[[depot]]\nid = \"D-2\"\nname = \"Two\"\nposition = [128.1, 112.9]\n"),
        &["bad.toml:11", "depot[1].position.lat"],
    )
    .await;
    check_bad_file(&server, "[[item]\ncode = 1", &["bad.toml:1"]).await;
}
