//! `muster item|depot|stock ...`: the supply reserves.

use clap::Subcommand;
use muster_client::{all_pages, new_request_id, proto as pb, Client};

use super::output::{self, out, Output};
use super::parse;

/// Catalog subcommands.
#[derive(Debug, Subcommand)]
pub enum ItemCommand {
    /// Adds an item to the catalog.
    Define {
        /// Code, [a-z][a-z0-9_]{0,31}.
        #[arg(long)]
        code: String,
        /// What it is.
        #[arg(long)]
        name: String,
        /// Unit it is counted in.
        #[arg(long)]
        unit: String,
        /// Category (flood_control, power, hazmat, shelter, medical, ...).
        #[arg(long, default_value = "")]
        category: String,
    },
    /// Lists the catalog.
    List,
}

/// Depot subcommands.
#[derive(Debug, Subcommand)]
pub enum DepotCommand {
    /// Registers a depot.
    Register {
        /// Depot id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Who runs it.
        #[arg(long, default_value = "")]
        organization: String,
        /// Position, LAT,LNG.
        #[arg(long, value_parser = parse::position)]
        position: pb::LatLng,
    },
    /// Lists depots.
    List,
}

/// Stock subcommands.
#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// Stock per depot and item, with totals.
    List {
        /// Only this depot.
        #[arg(long)]
        depot: Option<String>,
        /// Only this item.
        #[arg(long)]
        item: Option<String>,
    },
    /// Changes on-hand stock by DELTA (positive in, negative out).
    Adjust {
        /// Depot id.
        #[arg(long)]
        depot: String,
        /// Item code.
        #[arg(long)]
        item: String,
        /// Change of on-hand units.
        #[arg(long, allow_hyphen_values = true)]
        delta: i64,
        /// received, issued, consumed, returned, lost or counted.
        #[arg(long, value_parser = parse::ledger_reason)]
        reason: pb::LedgerReason,
        /// Free text for the ledger.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Moves stock between depots (both sides or neither).
    Transfer {
        /// Source depot.
        #[arg(long)]
        from: String,
        /// Destination depot.
        #[arg(long)]
        to: String,
        /// Item code.
        #[arg(long)]
        item: String,
        /// Units to move.
        #[arg(long)]
        quantity: i64,
        /// Free text for the ledger.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The ledger: every change of on-hand stock.
    Ledger {
        /// Only this depot.
        #[arg(long)]
        depot: Option<String>,
        /// Only this item.
        #[arg(long)]
        item: Option<String>,
    },
    /// Sets the strategic minimum of an item at a depot.
    MinReserve {
        /// Depot id.
        #[arg(long)]
        depot: String,
        /// Item code.
        #[arg(long)]
        item: String,
        /// The floor dispatch keeps available stock above (but for level I).
        #[arg(long)]
        min_reserve: i64,
    },
}

/// Runs a `muster item` subcommand.
pub async fn item(client: &Client, command: ItemCommand, output: Output) -> anyhow::Result<()> {
    let reserve = client.reserve();
    match command {
        ItemCommand::Define { code, name, unit, category } => {
            let request = pb::DefineItemRequest {
                request_id: new_request_id("cli"),
                item: Some(pb::Item { code, name, unit, category }),
            };
            let item = muster_client::retry!(reserve, define_item, request)?;
            print_items(&[item], output)
        }
        ItemCommand::List => {
            let items = all_pages(None, |page_token| {
                let mut reserve = reserve.clone();
                async move {
                    let page =
                        reserve.list_items(pb::ListItemsRequest { page_size: 1_000, page_token }).await?.into_inner();
                    Ok((page.items, page.next_page_token))
                }
            })
            .await?;
            print_items(&items, output)
        }
    }
}

fn print_items(items: &[pb::Item], output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(&items);
    }
    let mut table = output::table(&["code", "name", "unit", "category"]);
    for item in items {
        table.add_row(vec![&item.code, &item.name, &item.unit, &item.category]);
    }
    out!("{table}");
    Ok(())
}

/// Runs a `muster depot` subcommand.
pub async fn depot(client: &Client, command: DepotCommand, output: Output) -> anyhow::Result<()> {
    let reserve = client.reserve();
    match command {
        DepotCommand::Register { id, name, organization, position } => {
            let request = pb::RegisterDepotRequest {
                request_id: new_request_id("cli"),
                depot: Some(pb::Depot { id, name, organization, position: Some(position) }),
            };
            let depot = muster_client::retry!(reserve, register_depot, request)?;
            print_depots(&[depot], output)
        }
        DepotCommand::List => {
            let depots = all_pages(None, |page_token| {
                let mut reserve = reserve.clone();
                async move {
                    let page =
                        reserve.list_depots(pb::ListDepotsRequest { page_size: 1_000, page_token }).await?.into_inner();
                    Ok((page.depots, page.next_page_token))
                }
            })
            .await?;
            print_depots(&depots, output)
        }
    }
}

fn print_depots(depots: &[pb::Depot], output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(&depots);
    }
    let mut table = output::table(&["id", "name", "organization", "position"]);
    for depot in depots {
        table.add_row(vec![
            depot.id.clone(),
            depot.name.clone(),
            depot.organization.clone(),
            output::position(depot.position.as_ref()),
        ]);
    }
    out!("{table}");
    Ok(())
}

/// Runs a `muster stock` subcommand.
pub async fn stock(client: &Client, command: StockCommand, output: Output) -> anyhow::Result<()> {
    let reserve = client.reserve();
    match command {
        StockCommand::List { depot, item } => {
            let levels = all_pages(None, |page_token| {
                let mut reserve = reserve.clone();
                let request = pb::ListStockRequest {
                    depot_id: depot.clone().unwrap_or_default(),
                    item_code: item.clone().unwrap_or_default(),
                    page_size: 1_000,
                    page_token,
                };
                async move {
                    let page = reserve.list_stock(request).await?.into_inner();
                    Ok((page.levels, page.next_page_token))
                }
            })
            .await?;
            print_levels(&levels, output)
        }
        StockCommand::Adjust { depot, item, delta, reason, note } => {
            let request = pb::AdjustStockRequest {
                request_id: new_request_id("cli"),
                depot_id: depot,
                item_code: item,
                delta,
                reason: reason.into(),
                note,
            };
            let level = muster_client::retry!(reserve, adjust_stock, request)?;
            print_levels(&[level], output)
        }
        StockCommand::Transfer { from, to, item, quantity, note } => {
            let request = pb::TransferStockRequest {
                request_id: new_request_id("cli"),
                from_depot_id: from,
                to_depot_id: to,
                item_code: item,
                quantity,
                note,
            };
            let response = muster_client::retry!(reserve, transfer_stock, request)?;
            if output.json {
                return output.json(&response);
            }
            let levels: Vec<_> = response.from.into_iter().chain(response.to).collect();
            print_levels(&levels, output)
        }
        StockCommand::Ledger { depot, item } => {
            let entries = all_pages(None, |page_token| {
                let mut reserve = reserve.clone();
                let request = pb::ListLedgerRequest {
                    depot_id: depot.clone().unwrap_or_default(),
                    item_code: item.clone().unwrap_or_default(),
                    page_size: 1_000,
                    page_token,
                };
                async move {
                    let page = reserve.list_ledger(request).await?.into_inner();
                    Ok((page.entries, page.next_page_token))
                }
            })
            .await?;
            if output.json {
                return output.json(&entries);
            }
            let mut table = output::table(&["seq", "time", "depot", "item", "delta", "reason", "actor", "note"]);
            for entry in &entries {
                let reason = pb::LedgerReason::try_from(entry.reason).map(|reason| reason.as_str_name()).unwrap_or("?");
                table.add_row(vec![
                    entry.sequence.to_string(),
                    output::time(entry.time.as_ref()),
                    entry.depot_id.clone(),
                    entry.item_code.clone(),
                    format!("{:+}", entry.delta),
                    output::enum_name(reason, "LEDGER_REASON_"),
                    entry.actor.clone(),
                    entry.note.clone(),
                ]);
            }
            out!("{table}");
            Ok(())
        }
        StockCommand::MinReserve { depot, item, min_reserve } => {
            let request = pb::SetMinReserveRequest {
                request_id: new_request_id("cli"),
                depot_id: depot,
                item_code: item,
                min_reserve,
            };
            let level = muster_client::retry!(reserve, set_min_reserve, request)?;
            print_levels(&[level], output)
        }
    }
}

fn print_levels(levels: &[pb::StockLevel], output: Output) -> anyhow::Result<()> {
    if output.json {
        return output.json(&levels);
    }
    let mut table =
        output::table(&["depot", "item", "on hand", "reserved", "available", "minimum", "usable above minimum"]);
    let mut totals = [0i64; 5];
    for level in levels {
        let usable = (level.available - level.min_reserve).max(0);
        for (total, value) in
            totals.iter_mut().zip([level.on_hand, level.reserved, level.available, level.min_reserve, usable])
        {
            *total += value;
        }
        table.add_row(vec![
            level.depot_id.clone(),
            level.item_code.clone(),
            level.on_hand.to_string(),
            level.reserved.to_string(),
            level.available.to_string(),
            level.min_reserve.to_string(),
            usable.to_string(),
        ]);
    }
    if levels.len() > 1 {
        let mut row = vec!["total".to_owned(), String::new()];
        row.extend(totals.iter().map(i64::to_string));
        table.add_row(row);
    }
    out!("{table}");
    Ok(())
}
