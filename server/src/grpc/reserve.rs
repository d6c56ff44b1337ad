//! `muster.v1.ReserveService`: items, depots, stock and the ledger.

use std::ops::Bound;

use muster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::auth::{self, Access};
use super::convert::{self, page, page_token};
use super::{submit_as, TransferReply};
use crate::domain::reserve::stock_level;
use crate::domain::{validate, Command, DomainError, DomainResult, State};
use crate::engine::EngineHandle;

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
        caller.require(Access::Command)?;
        let request = request.into_inner();
        let item = convert::item_in("item", request.item)?;
        let item: crate::domain::reserve::Item =
            submit_as(&self.engine, &caller, &request.request_id, Command::DefineItem { item }).await?;
        Ok(Response::new(convert::item_out(&item)))
    }

    async fn register_depot(&self, request: Request<pb::RegisterDepotRequest>) -> Result<Response<pb::Depot>, Status> {
        let caller = auth::caller(&request)?;
        caller.require(Access::Command)?;
        let request = request.into_inner();
        let depot = convert::depot_in("depot", request.depot)?;
        let depot: crate::domain::reserve::Depot =
            submit_as(&self.engine, &caller, &request.request_id, Command::RegisterDepot { depot }).await?;
        Ok(Response::new(convert::depot_out(&depot)))
    }

    async fn adjust_stock(&self, request: Request<pb::AdjustStockRequest>) -> Result<Response<pb::StockLevel>, Status> {
        let caller = auth::caller(&request)?;
        caller.require(Access::Command)?;
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
        caller.require(Access::Command)?;
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
        caller.require(Access::Command)?;
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
        auth::caller(&request)?.require(Access::Read)?;
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
        auth::caller(&request)?.require(Access::Read)?;
        let request = request.into_inner();
        let state = self.engine.snapshot();
        check_filters(&state, &request.depot_id, &request.item_code)?;
        let after = page_token::decode(&request.page_token)?.map(|text| stock_key_from_text(&text)).transpose()?;
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
                        page_token::encode(&stock_key_text(&(last.depot_id.clone(), last.item_code.clone())))
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
        auth::caller(&request)?.require(Access::Read)?;
        let request = request.into_inner();
        let state = self.engine.snapshot();
        check_filters(&state, &request.depot_id, &request.item_code)?;
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode_sequence(&request.page_token)?;
        let mut entries: Vec<pb::LedgerEntry> = state
            .stock
            .iter()
            .filter(|(key, _)| {
                (request.depot_id.is_empty() || key.0 == request.depot_id)
                    && (request.item_code.is_empty() || key.1 == request.item_code)
            })
            .flat_map(|(key, stock)| {
                stock
                    .ledger
                    .iter()
                    .filter(|entry| entry.sequence > after)
                    .map(move |entry| convert::ledger_entry_out(&key.0, &key.1, entry))
            })
            .collect();
        // One event may write two entries (a transfer): order by sequence, then depot.
        entries.sort_by(|left, right| (left.sequence, &left.depot_id).cmp(&(right.sequence, &right.depot_id)));
        let mut next_page_token = String::new();
        if entries.len() > page_size {
            // Never split the entries of one sequence across pages.
            let mut cut = page_size;
            while cut > 0 && entries[cut].sequence == entries[cut - 1].sequence {
                cut -= 1;
            }
            let cut = if cut == 0 { page_size + 1 } else { cut };
            entries.truncate(cut);
            if let Some(last) = entries.last() {
                next_page_token = page_token::encode_sequence(last.sequence);
            }
        }
        Ok(Response::new(pb::ListLedgerResponse { entries, next_page_token }))
    }

    async fn list_items(
        &self,
        request: Request<pb::ListItemsRequest>,
    ) -> Result<Response<pb::ListItemsResponse>, Status> {
        auth::caller(&request)?.require(Access::Read)?;
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(&request.page_token)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let (items, next_page_token) =
            page(state.items.range((start, Bound::Unbounded)), page_size, String::clone, convert::item_out);
        Ok(Response::new(pb::ListItemsResponse { items, next_page_token }))
    }

    async fn list_depots(
        &self,
        request: Request<pb::ListDepotsRequest>,
    ) -> Result<Response<pb::ListDepotsResponse>, Status> {
        auth::caller(&request)?.require(Access::Read)?;
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(&request.page_token)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let (depots, next_page_token) =
            page(state.depots.range((start, Bound::Unbounded)), page_size, String::clone, convert::depot_out);
        Ok(Response::new(pb::ListDepotsResponse { depots, next_page_token }))
    }
}
