//! `muster.v1.ReserveService`: items, depots, stock and the ledger.

use std::ops::Bound;

use muster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::auth;
use super::convert::page_token::List;
use super::convert::{self, page, page_token};
use super::{submit_as, TransferReply};
use crate::domain::reserve::stock_level;
use crate::domain::{validate, Command, DomainError, DomainResult, State};
use crate::engine::EngineHandle;

/// One page of the ledger after sequence `after`, in (sequence, depot) order,
/// and whether more follow: a merge of the stock ledgers that starts each at
/// `after` by binary search, so a page costs its own size (and a search per
/// stock), never the length of the ledger. A page holds `page_size` entries,
/// or one more when a transfer's two entries would be split.
fn ledger_page<'s>(
    state: &'s State,
    depot_id: &str,
    item_code: &str,
    after: u64,
    page_size: usize,
) -> (Vec<(&'s str, &'s str, &'s crate::domain::reserve::LedgerEntry)>, bool) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let ledgers: Vec<_> = state
        .stock
        .iter()
        .filter(|(key, _)| (depot_id.is_empty() || key.0 == depot_id) && (item_code.is_empty() || key.1 == item_code))
        .map(|(key, stock)| (key, &stock.ledger))
        .collect();
    // The heap holds the next entry of each ledger: (sequence, depot, ledger, position).
    let mut heap = BinaryHeap::new();
    for (index, (key, ledger)) in ledgers.iter().enumerate() {
        let start = ledger.binary_search_by(|entry| entry.sequence.cmp(&after).then(std::cmp::Ordering::Less));
        let start = start.unwrap_or_else(|position| position);
        if let Some(entry) = ledger.get(start) {
            heap.push(Reverse((entry.sequence, key.0.as_str(), index, start)));
        }
    }
    let mut page: Vec<(&str, &str, &crate::domain::reserve::LedgerEntry)> = Vec::new();
    while let Some(Reverse((sequence, _, index, position))) = heap.peek().copied() {
        let full = page.len() >= page_size;
        // Never split the entries of one sequence (a transfer) across pages.
        if full && page.last().is_none_or(|(_, _, last)| last.sequence != sequence) {
            return (page, true);
        }
        heap.pop();
        let (key, ledger) = ledgers[index];
        if let Some(entry) = ledger.get(position) {
            page.push((key.0.as_str(), key.1.as_str(), entry));
        }
        if let Some(next) = ledger.get(position + 1) {
            heap.push(Reverse((next.sequence, key.0.as_str(), index, position + 1)));
        }
    }
    (page, false)
}

/// The reserve service over the engine.
#[derive(Debug, Clone)]
pub struct ReserveService {
    engine: EngineHandle,
}

impl ReserveService {
    /// A reserve service writing through `engine`.
    pub fn new(engine: EngineHandle) -> Self {
        ReserveService { engine }
    }
}

fn stock_reply(level: crate::domain::reserve::StockLevel) -> Result<Response<pb::StockLevel>, Status> {
    Ok(Response::new(convert::stock_out(&level)))
}

/// Checks optional depot and item filters: well-formed, and naming records that exist.
fn check_filters(state: &State, depot_id: &str, item_code: &str) -> DomainResult<()> {
    if !depot_id.is_empty() {
        validate::id("depot_id", depot_id)?;
        state.depot(depot_id)?;
    }
    if !item_code.is_empty() {
        validate::code("item_code", item_code)?;
        state.item(item_code)?;
    }
    Ok(())
}

/// A stock key as page-token text: depot id and item code, NUL-separated.
fn stock_key_text(key: &(String, String)) -> String {
    format!("{}\u{0}{}", key.0, key.1)
}

fn stock_key_from_text(text: &str) -> DomainResult<(String, String)> {
    text.split_once('\u{0}')
        .map(|(depot, item)| (depot.to_owned(), item.to_owned()))
        .ok_or_else(|| DomainError::invalid("page_token", "is not a token this server issued"))
}

#[tonic::async_trait]
impl pb::reserve_service_server::ReserveService for ReserveService {
    async fn define_item(&self, request: Request<pb::DefineItemRequest>) -> Result<Response<pb::Item>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let item = convert::item_in("item", request.item)?;
        let item: crate::domain::reserve::Item =
            submit_as(&self.engine, &caller, &request.request_id, Command::DefineItem { item }).await?;
        Ok(Response::new(convert::item_out(&item)))
    }

    async fn register_depot(&self, request: Request<pb::RegisterDepotRequest>) -> Result<Response<pb::Depot>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let depot = convert::depot_in("depot", request.depot)?;
        let depot: crate::domain::reserve::Depot =
            submit_as(&self.engine, &caller, &request.request_id, Command::RegisterDepot { depot }).await?;
        Ok(Response::new(convert::depot_out(&depot)))
    }

    async fn adjust_stock(&self, request: Request<pb::AdjustStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let command = Command::AdjustStock {
            reason: convert::ledger_reason_in("reason", request.reason)?,
            depot_id: request.depot_id,
            item_code: request.item_code,
            delta: request.delta,
            note: request.note,
        };
        stock_reply(submit_as(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn set_min_reserve(
        &self,
        request: Request<pb::SetMinReserveRequest>,
    ) -> Result<Response<pb::StockLevel>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let command = Command::SetMinReserve {
            depot_id: request.depot_id,
            item_code: request.item_code,
            min_reserve: request.min_reserve,
        };
        stock_reply(submit_as(&self.engine, &caller, &request.request_id, command).await?)
    }

    async fn transfer_stock(
        &self,
        request: Request<pb::TransferStockRequest>,
    ) -> Result<Response<pb::TransferStockResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let command = Command::TransferStock {
            from_depot_id: request.from_depot_id,
            to_depot_id: request.to_depot_id,
            item_code: request.item_code,
            quantity: request.quantity,
            note: request.note,
        };
        let (from, to): TransferReply = submit_as(&self.engine, &caller, &request.request_id, command).await?;
        Ok(Response::new(pb::TransferStockResponse {
            from: Some(convert::stock_out(&from)),
            to: Some(convert::stock_out(&to)),
        }))
    }

    async fn get_stock(&self, request: Request<pb::GetStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        let request = request.into_inner();
        validate::id("depot_id", &request.depot_id)?;
        validate::code("item_code", &request.item_code)?;
        let level = self.engine.snapshot().stock_level(&request.depot_id, &request.item_code)?;
        Ok(Response::new(convert::stock_out(&level)))
    }

    async fn list_stock(
        &self,
        request: Request<pb::ListStockRequest>,
    ) -> Result<Response<pb::ListStockResponse>, Status> {
        let request = request.into_inner();
        let state = self.engine.snapshot();
        check_filters(&state, &request.depot_id, &request.item_code)?;
        let after =
            page_token::decode(List::Stock, &request.page_token)?.map(|text| stock_key_from_text(&text)).transpose()?;
        let page_size = validate::page_size(request.page_size)?;
        let start = match after {
            Some(key) => Bound::Excluded(key),
            None if !request.depot_id.is_empty() => Bound::Included((request.depot_id.clone(), String::new())),
            None => Bound::Unbounded,
        };
        let mut levels = Vec::new();
        let mut next_page_token = String::new();
        let rows = state
            .stock
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| request.depot_id.is_empty() || key.0 == request.depot_id)
            .filter(|(key, _)| request.item_code.is_empty() || key.1 == request.item_code);
        for (key, stock) in rows {
            if levels.len() == page_size {
                next_page_token = levels
                    .last()
                    .map(|last: &pb::StockLevel| {
                        page_token::encode(
                            List::Stock,
                            &stock_key_text(&(last.depot_id.clone(), last.item_code.clone())),
                        )
                    })
                    .unwrap_or_default();
                break;
            }
            levels.push(convert::stock_out(&stock_level(key, stock)));
        }
        Ok(Response::new(pb::ListStockResponse { levels, next_page_token }))
    }

    async fn list_ledger(
        &self,
        request: Request<pb::ListLedgerRequest>,
    ) -> Result<Response<pb::ListLedgerResponse>, Status> {
        let request = request.into_inner();
        let state = self.engine.snapshot();
        check_filters(&state, &request.depot_id, &request.item_code)?;
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode_sequence(List::Ledger, &request.page_token)?;
        let (page, more) = ledger_page(&state, &request.depot_id, &request.item_code, after, page_size);
        let mut next_page_token = String::new();
        if more {
            if let Some((_, _, last)) = page.last() {
                next_page_token = page_token::encode_sequence(List::Ledger, last.sequence);
            }
        }
        let entries =
            page.into_iter().map(|(depot, item, entry)| convert::ledger_entry_out(depot, item, entry)).collect();
        Ok(Response::new(pb::ListLedgerResponse { entries, next_page_token }))
    }

    async fn list_items(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Result<Response<pb::ListItemsResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(List::Items, &request.page_token)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let (items, next_page_token) = page(
            List::Items,
            state.items.range((start, Bound::Unbounded)),
            page_size,
            String::clone,
            convert::item_out,
        );
        Ok(Response::new(pb::ListItemsResponse { items, next_page_token }))
    }

    async fn list_depots(
        &self,
        request: Request<pb::ListDepotsRequest>,
    ) -> Result<Response<pb::ListDepotsResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(List::Depots, &request.page_token)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let (depots, next_page_token) = page(
            List::Depots,
            state.depots.range((start, Bound::Unbounded)),
            page_size,
            String::clone,
            convert::depot_out,
        );
        Ok(Response::new(pb::ListDepotsResponse { depots, next_page_token }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::reserve::{LedgerEntry, LedgerReason, Stock};
    use crate::domain::Timestamp;

    fn entry(sequence: u64) -> LedgerEntry {
        LedgerEntry {
            sequence,
            delta: 1,
            reason: LedgerReason::Received,
            actor: String::new(),
            note: String::new(),
            time: Timestamp(0),
        }
    }

    /// Every page size, every filter: the merged pages are the ledger in
    /// (sequence, depot) order, each entry once, no transfer split.
    #[test]
    fn ledger_pages_merge_the_stock_ledgers_in_order() {
        let mut state = State::default();
        // Three stocks; sequences 3, 7 and 11 are transfers (two stocks each).
        let ledgers =
            [("A", "pump", vec![1, 3, 4, 7, 9]), ("B", "pump", vec![2, 3, 7, 11]), ("A", "bag", vec![5, 6, 11])];
        for (depot, item, sequences) in &ledgers {
            let stock = Stock {
                ledger: sequences.iter().copied().map(entry).map(std::sync::Arc::new).collect(),
                ..Stock::default()
            };
            state.stock.insert(((*depot).to_owned(), (*item).to_owned()), std::sync::Arc::new(stock));
        }
        for (depot, item) in [("", ""), ("A", ""), ("", "pump"), ("B", "pump")] {
            let mut expected: Vec<(u64, String)> = ledgers
                .iter()
                .filter(|(d, i, _)| (depot.is_empty() || *d == depot) && (item.is_empty() || *i == item))
                .flat_map(|(d, i, sequences)| sequences.iter().map(move |s| (*s, format!("{d}/{i}"))))
                .collect();
            expected.sort();
            for page_size in 1..=expected.len() + 1 {
                let (mut after, mut seen, mut pages) = (0, Vec::new(), 0);
                loop {
                    let (page, more) = ledger_page(&state, depot, item, after, page_size);
                    pages += 1;
                    assert!(page.len() <= page_size + 1, "at most one entry over");
                    seen.extend(page.iter().map(|(d, i, e)| (e.sequence, format!("{d}/{i}"))));
                    if !more {
                        break;
                    }
                    let last = page.last().unwrap().2.sequence;
                    assert!(
                        seen.iter().filter(|(s, _)| *s == last).count()
                            == expected.iter().filter(|(s, _)| *s == last).count(),
                        "a sequence is never split"
                    );
                    after = last;
                    assert!(pages < 100);
                }
                let mut sorted_seen = seen.clone();
                sorted_seen.sort();
                assert_eq!(sorted_seen, expected, "filter {depot:?}/{item:?}, page size {page_size}");
                assert!(seen.windows(2).all(|pair| pair[0].0 <= pair[1].0), "in sequence order");
            }
        }
    }
}
