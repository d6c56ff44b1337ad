//! ReserveService end to end: every method and error code, and concurrent
//! adjustments and transfers that must neither create nor lose a unit.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tonic::Code;

use crate::support::check_error;

type Reserve = pb::reserve_service_client::ReserveServiceClient<muster_client::AuthChannel>;

async fn world(reserve: &mut Reserve) {
    for (code, name, unit) in [("pump", "Pump, 100 m3/h", "unit"), ("sandbag", "Sandbag, 50 kg", "bag")] {
        let item =
            pb::Item { code: code.into(), name: name.into(), unit: unit.into(), category: "flood_control".into() };
        reserve.define_item(pb::DefineItemRequest { request_id: String::new(), item: Some(item) }).await.unwrap();
    }
    for (id, lat) in [("D-A", 28.1), ("D-B", 28.2), ("D-C", 28.3)] {
        let depot = pb::Depot {
            id: id.into(),
            name: format!("Depot {id}"),
            organization: "Emergency bureau".into(),
            position: Some(pb::LatLng { lat, lng: 112.9 }),
        };
        reserve
            .register_depot(pb::RegisterDepotRequest { request_id: String::new(), depot: Some(depot) })
            .await
            .unwrap();
    }
}

fn adjust(depot: &str, item: &str, delta: i64, reason: pb::LedgerReason) -> pb::AdjustStockRequest {
    pb::AdjustStockRequest {
        request_id: String::new(),
        depot_id: depot.into(),
        item_code: item.into(),
        delta,
        reason: reason.into(),
        note: "test".into(),
    }
}

fn transfer(from: &str, to: &str, item: &str, quantity: i64) -> pb::TransferStockRequest {
    pb::TransferStockRequest {
        request_id: String::new(),
        from_depot_id: from.into(),
        to_depot_id: to.into(),
        item_code: item.into(),
        quantity,
        note: String::new(),
    }
}

#[tokio::test]
async fn items_and_depots_are_defined_listed_and_refused_when_malformed_or_taken() {
    let server = TestServer::start().await;
    let mut reserve = server.client().await.reserve();
    world(&mut reserve).await;
    let items = reserve.list_items(pb::ListItemsRequest::default()).await.unwrap().into_inner().items;
    assert_eq!(items.iter().map(|item| item.code.as_str()).collect::<Vec<_>>(), vec!["pump", "sandbag"]);
    let depots =
        reserve.list_depots(pb::ListDepotsRequest { page_size: 2, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(depots.depots.len(), 2);
    let rest = reserve
        .list_depots(pb::ListDepotsRequest { page_size: 2, page_token: depots.next_page_token })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.depots.iter().map(|depot| depot.id.as_str()).collect::<Vec<_>>(), vec!["D-C"]);

    let item = |code: &str, name: &str| pb::DefineItemRequest {
        request_id: String::new(),
        item: Some(pb::Item { code: code.into(), name: name.into(), unit: "unit".into(), category: String::new() }),
    };
    check_error(reserve.define_item(item("pump", "again")).await, Code::AlreadyExists, None);
    check_error(reserve.define_item(item("Pump", "x")).await, Code::InvalidArgument, Some("item.code"));
    check_error(reserve.define_item(item("boat", "")).await, Code::InvalidArgument, Some("item.name"));
    check_error(reserve.define_item(pb::DefineItemRequest::default()).await, Code::InvalidArgument, Some("item"));
    let depot = |id: &str, position: Option<pb::LatLng>| pb::RegisterDepotRequest {
        request_id: String::new(),
        depot: Some(pb::Depot { id: id.into(), name: "Depot".into(), organization: String::new(), position }),
    };
    let somewhere = Some(pb::LatLng { lat: 28.0, lng: 112.0 });
    check_error(reserve.register_depot(depot("D-A", somewhere)).await, Code::AlreadyExists, None);
    check_error(reserve.register_depot(depot("D X", somewhere)).await, Code::InvalidArgument, Some("depot.id"));
    check_error(reserve.register_depot(depot("D-Z", None)).await, Code::InvalidArgument, Some("depot.position"));
    check_error(
        reserve.register_depot(depot("D-Z", Some(pb::LatLng { lat: 100.0, lng: 0.0 }))).await,
        Code::InvalidArgument,
        Some("depot.position.lat"),
    );
}

#[tokio::test]
async fn adjust_min_reserve_and_get_stock_keep_available_and_the_ledger_straight() {
    let server = TestServer::start().await;
    let mut reserve = server.client().await.reserve();
    world(&mut reserve).await;
    let zero = reserve
        .get_stock(pb::GetStockRequest { depot_id: "D-A".into(), item_code: "pump".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((zero.on_hand, zero.available, zero.min_reserve), (0, 0, 0));

    let level = reserve.adjust_stock(adjust("D-A", "pump", 10, pb::LedgerReason::Received)).await.unwrap().into_inner();
    assert_eq!((level.on_hand, level.reserved, level.available), (10, 0, 10));
    let level = reserve
        .set_min_reserve(pb::SetMinReserveRequest {
            request_id: String::new(),
            depot_id: "D-A".into(),
            item_code: "pump".into(),
            min_reserve: 4,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(level.min_reserve, 4);
    let level = reserve.adjust_stock(adjust("D-A", "pump", -3, pb::LedgerReason::Issued)).await.unwrap().into_inner();
    assert_eq!((level.on_hand, level.available), (7, 7));
    let level = reserve.adjust_stock(adjust("D-A", "pump", -2, pb::LedgerReason::Counted)).await.unwrap().into_inner();
    assert_eq!(level.on_hand, 5);

    let ledger = reserve
        .list_ledger(pb::ListLedgerRequest { depot_id: "D-A".into(), item_code: "pump".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(ledger.iter().map(|entry| entry.delta).collect::<Vec<_>>(), vec![10, -3, -2]);
    assert_eq!(ledger.iter().map(|entry| entry.delta).sum::<i64>(), 5, "on_hand is the sum of the ledger");
    assert_eq!(ledger[1].reason(), pb::LedgerReason::Issued);
    assert_eq!((ledger[1].actor.as_str(), ledger[1].note.as_str()), ("local", "test"));
    assert!(ledger[0].sequence < ledger[1].sequence && ledger[0].time.is_some());

    let refused = reserve.adjust_stock(adjust("D-A", "pump", -6, pb::LedgerReason::Lost)).await;
    let status = check_error(refused, Code::ResourceExhausted, None);
    assert!(status.message().contains("pump") && status.message().contains("D-A"), "{}", status.message());
    check_error(
        reserve.adjust_stock(adjust("D-A", "pump", 0, pb::LedgerReason::Counted)).await,
        Code::InvalidArgument,
        Some("delta"),
    );
    check_error(
        reserve.adjust_stock(adjust("D-A", "pump", 5, pb::LedgerReason::Issued)).await,
        Code::InvalidArgument,
        Some("delta"),
    );
    check_error(
        reserve.adjust_stock(adjust("D-A", "pump", -5, pb::LedgerReason::Received)).await,
        Code::InvalidArgument,
        Some("delta"),
    );
    check_error(
        reserve.adjust_stock(adjust("D-A", "pump", 5, pb::LedgerReason::Transferred)).await,
        Code::InvalidArgument,
        Some("reason"),
    );
    check_error(
        reserve.adjust_stock(adjust("D-A", "pump", 5, pb::LedgerReason::Unspecified)).await,
        Code::InvalidArgument,
        Some("reason"),
    );
    check_error(
        reserve.adjust_stock(adjust("D-A", "pump", i64::MAX, pb::LedgerReason::Received)).await,
        Code::InvalidArgument,
        Some("delta"),
    );
    check_error(reserve.adjust_stock(adjust("D-Q", "pump", 5, pb::LedgerReason::Received)).await, Code::NotFound, None);
    check_error(reserve.adjust_stock(adjust("D-A", "boat", 5, pb::LedgerReason::Received)).await, Code::NotFound, None);
    check_error(
        reserve.adjust_stock(adjust("D-A", "Boat", 5, pb::LedgerReason::Received)).await,
        Code::InvalidArgument,
        Some("item_code"),
    );
    let mut long_note = adjust("D-A", "pump", 1, pb::LedgerReason::Received);
    long_note.note = "n".repeat(257);
    check_error(reserve.adjust_stock(long_note).await, Code::InvalidArgument, Some("note"));
    check_error(
        reserve
            .set_min_reserve(pb::SetMinReserveRequest {
                request_id: String::new(),
                depot_id: "D-A".into(),
                item_code: "pump".into(),
                min_reserve: -1,
            })
            .await,
        Code::InvalidArgument,
        Some("min_reserve"),
    );
    check_error(
        reserve.get_stock(pb::GetStockRequest { depot_id: "D-A".into(), item_code: "boat".into() }).await,
        Code::NotFound,
        None,
    );
    check_error(
        reserve.get_stock(pb::GetStockRequest { depot_id: String::new(), item_code: "pump".into() }).await,
        Code::InvalidArgument,
        Some("depot_id"),
    );

    let after = reserve
        .get_stock(pb::GetStockRequest { depot_id: "D-A".into(), item_code: "pump".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((after.on_hand, after.min_reserve), (5, 4), "refused commands changed nothing");
}

#[tokio::test]
async fn transfers_move_both_sides_in_one_event_or_nothing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut reserve = client.reserve();
    world(&mut reserve).await;
    reserve.adjust_stock(adjust("D-A", "sandbag", 1_000, pb::LedgerReason::Received)).await.unwrap();
    let moved = reserve.transfer_stock(transfer("D-A", "D-B", "sandbag", 400)).await.unwrap().into_inner();
    assert_eq!((moved.from.unwrap().on_hand, moved.to.unwrap().on_hand), (600, 400));
    let events = client.audit().list_events(pb::ListEventsRequest::default()).await.unwrap().into_inner().events;
    let last = events.last().unwrap();
    assert_eq!(last.kind, "StockTransferred");
    assert_eq!(last.depot_ids, vec!["D-A", "D-B"]);
    let ledger = reserve
        .list_ledger(pb::ListLedgerRequest { item_code: "sandbag".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let transferred: Vec<_> = ledger.iter().filter(|entry| entry.reason() == pb::LedgerReason::Transferred).collect();
    assert_eq!(transferred.len(), 2);
    assert_eq!(transferred[0].sequence, transferred[1].sequence, "one event writes both entries");
    assert_eq!(transferred.iter().map(|entry| entry.delta).sum::<i64>(), 0);

    check_error(reserve.transfer_stock(transfer("D-A", "D-B", "sandbag", 601)).await, Code::ResourceExhausted, None);
    check_error(
        reserve.transfer_stock(transfer("D-A", "D-A", "sandbag", 1)).await,
        Code::InvalidArgument,
        Some("to_depot_id"),
    );
    check_error(
        reserve.transfer_stock(transfer("D-A", "D-B", "sandbag", 0)).await,
        Code::InvalidArgument,
        Some("quantity"),
    );
    check_error(reserve.transfer_stock(transfer("D-A", "D-Q", "sandbag", 1)).await, Code::NotFound, None);
    check_error(
        reserve.transfer_stock(transfer("", "D-B", "sandbag", 1)).await,
        Code::InvalidArgument,
        Some("from_depot_id"),
    );
    let levels = reserve
        .list_stock(pb::ListStockRequest { item_code: "sandbag".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .levels;
    assert_eq!(
        levels.iter().map(|level| (level.depot_id.as_str(), level.on_hand)).collect::<Vec<_>>(),
        vec![("D-A", 600), ("D-B", 400)]
    );
}

#[tokio::test]
async fn list_stock_filters_pages_and_refuses_unknown_filters() {
    let server = TestServer::start().await;
    let mut reserve = server.client().await.reserve();
    world(&mut reserve).await;
    for depot in ["D-A", "D-B", "D-C"] {
        for item in ["pump", "sandbag"] {
            reserve.adjust_stock(adjust(depot, item, 7, pb::LedgerReason::Received)).await.unwrap();
        }
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = reserve
            .list_stock(pb::ListStockRequest { page_size: 4, page_token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.levels.into_iter().map(|level| format!("{}/{}", level.depot_id, level.item_code)));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, vec!["D-A/pump", "D-A/sandbag", "D-B/pump", "D-B/sandbag", "D-C/pump", "D-C/sandbag"]);
    let at_b = reserve
        .list_stock(pb::ListStockRequest { depot_id: "D-B".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(at_b.levels.len(), 2);
    let pumps = reserve
        .list_stock(pb::ListStockRequest { item_code: "pump".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pumps.levels.iter().map(|level| level.depot_id.as_str()).collect::<Vec<_>>(), vec!["D-A", "D-B", "D-C"]);
    check_error(
        reserve.list_stock(pb::ListStockRequest { depot_id: "D-Q".into(), ..Default::default() }).await,
        Code::NotFound,
        None,
    );
    check_error(
        reserve.list_stock(pb::ListStockRequest { item_code: "Pump".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        Some("item_code"),
    );
    check_error(
        reserve.list_stock(pb::ListStockRequest { page_token: "zz".into(), ..Default::default() }).await,
        Code::InvalidArgument,
        Some("page_token"),
    );
    check_error(
        reserve.list_ledger(pb::ListLedgerRequest { depot_id: "D-Q".into(), ..Default::default() }).await,
        Code::NotFound,
        None,
    );
}

#[tokio::test]
async fn the_ledger_pages_by_sequence_without_splitting_a_transfer() {
    let server = TestServer::start().await;
    let mut reserve = server.client().await.reserve();
    world(&mut reserve).await;
    reserve.adjust_stock(adjust("D-A", "pump", 50, pb::LedgerReason::Received)).await.unwrap();
    for _ in 0..5 {
        reserve.transfer_stock(transfer("D-A", "D-B", "pump", 1)).await.unwrap();
    }
    let mut pages = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = reserve
            .list_ledger(pb::ListLedgerRequest {
                item_code: "pump".into(),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(page.entries.iter().map(|entry| entry.sequence).collect::<Vec<_>>());
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    let all: Vec<u64> = pages.iter().flatten().copied().collect();
    assert_eq!(all.len(), 11, "one receipt and two entries per transfer: {pages:?}");
    for page in &pages {
        for other in &pages {
            if !std::ptr::eq(page, other) {
                assert!(
                    page.iter().all(|sequence| !other.contains(sequence)),
                    "a sequence split across pages: {pages:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn concurrent_adjustments_and_transfers_create_and_lose_no_unit() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut reserve = client.reserve();
    world(&mut reserve).await;
    for depot in ["D-A", "D-B", "D-C"] {
        reserve.adjust_stock(adjust(depot, "sandbag", 500, pb::LedgerReason::Received)).await.unwrap();
    }
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..8u64 {
        let mut reserve = client.reserve();
        workers.spawn(async move {
            let depots = ["D-A", "D-B", "D-C"];
            let mut applied_delta = 0i64;
            for step in 0..40u64 {
                let pick = (worker * 7 + step * 13) as usize;
                let (from, to) = (depots[pick % 3], depots[(pick + 1 + step as usize % 2) % 3]);
                if step % 3 == 0 {
                    let delta = if step % 2 == 0 { 25 } else { -90 };
                    let reason = if delta > 0 { pb::LedgerReason::Received } else { pb::LedgerReason::Consumed };
                    match reserve.adjust_stock(adjust(from, "sandbag", delta, reason)).await {
                        Ok(_) => applied_delta += delta,
                        Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
                    }
                } else {
                    match reserve.transfer_stock(transfer(from, to, "sandbag", 60)).await {
                        Ok(_) => {}
                        Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
                    }
                }
            }
            applied_delta
        });
    }
    let mut applied = 0;
    while let Some(result) = workers.join_next().await {
        applied += result.unwrap();
    }
    let levels = reserve
        .list_stock(pb::ListStockRequest { item_code: "sandbag".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .levels;
    let total: i64 = levels.iter().map(|level| level.on_hand).sum();
    assert_eq!(total, 1_500 + applied, "transfers created or lost units");
    for level in &levels {
        assert!(level.on_hand >= 0);
        let ledger = reserve
            .list_ledger(pb::ListLedgerRequest {
                depot_id: level.depot_id.clone(),
                item_code: "sandbag".into(),
                page_size: 1_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries;
        assert_eq!(
            ledger.iter().map(|entry| entry.delta).sum::<i64>(),
            level.on_hand,
            "{} drifted from its ledger",
            level.depot_id
        );
    }
}
