//! `muster plan ...`: contingency plans.

use std::collections::BTreeMap;

use clap::Subcommand;
use muster_client::{all_pages, proto as pb, Client};

use super::output::{self, out, Output};
use super::parse;

/// Plan subcommands.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Loads plans from a TOML file (`[[plan]]` entries); a changed plan gets a new version.
    Put {
        /// The TOML file.
        file: std::path::PathBuf,
    },
    /// Shows a plan (the latest version unless --version).
    Get {
        /// Plan id.
        id: String,
        /// A specific version.
        #[arg(long, default_value_t = 0)]
        version: u32,
    },
    /// Lists plans (their latest versions).
    List {
        /// Only plans for this hazard (flood, hazmat, power_outage, ...).
        #[arg(long, value_parser = parse::hazard)]
        hazard: Option<pb::Hazard>,
    },
    /// What changed between two versions of a plan.
    Diff {
        /// Plan id.
        id: String,
        /// The older version.
        from: u32,
        /// The newer version.
        to: u32,
    },
}

/// Runs a `muster plan` subcommand.
pub async fn run(client: &Client, command: PlanCommand, output: Output) -> anyhow::Result<()> {
    let plans = client.plans();
    match command {
        PlanCommand::Put { file } => super::import(client, &file, output).await,
        PlanCommand::Get { id, version } => {
            let plan = plans.clone().get_plan(pb::GetPlanRequest { id, version }).await?.into_inner();
            if output.json {
                return output.json(&plan);
            }
            print_plan(&plan);
            Ok(())
        }
        PlanCommand::List { hazard } => {
            let hazard = hazard.unwrap_or(pb::Hazard::Unspecified);
            let list = all_pages(None, |page_token| {
                let mut plans = plans.clone();
                let request = pb::ListPlansRequest { hazard: hazard.into(), page_size: 1_000, page_token };
                async move {
                    let page = plans.list_plans(request).await?.into_inner();
                    Ok((page.plans, page.next_page_token))
                }
            })
            .await?;
            if output.json {
                return output.json(&list);
            }
            let mut table = output::table(&["id", "name", "hazard", "version", "levels", "triggers"]);
            for plan in &list {
                table.add_row(vec![
                    plan.id.clone(),
                    plan.name.clone(),
                    hazard_name(plan.hazard),
                    plan.version.to_string(),
                    plan.levels.iter().map(|level| level_name(level.level)).collect::<Vec<_>>().join(" "),
                    plan.triggers.len().to_string(),
                ]);
            }
            out!("{table}");
            Ok(())
        }
        PlanCommand::Diff { id, from, to } => {
            let older =
                plans.clone().get_plan(pb::GetPlanRequest { id: id.clone(), version: from }).await?.into_inner();
            let newer = plans.clone().get_plan(pb::GetPlanRequest { id, version: to }).await?.into_inner();
            let lines = diff(&older, &newer);
            if output.json {
                return output.json(&lines);
            }
            if lines.is_empty() {
                out!("versions {from} and {to} say the same");
            }
            for line in lines {
                out!("{line}");
            }
            Ok(())
        }
    }
}

/// A level's name: `I` .. `IV`.
pub fn level_name(level: i32) -> String {
    let name = pb::Level::try_from(level).map(|level| level.as_str_name()).unwrap_or("?");
    output::enum_name(name, "LEVEL_")
}

/// A hazard's name: `FLOOD`.
pub fn hazard_name(hazard: i32) -> String {
    let name = pb::Hazard::try_from(hazard).map(|hazard| hazard.as_str_name()).unwrap_or("?");
    output::enum_name(name, "HAZARD_")
}

fn print_plan(plan: &pb::Plan) {
    out!("{} (version {}): {} [{}]", plan.id, plan.version, plan.name, hazard_name(plan.hazard));
    for requirement in &plan.levels {
        out!("\nlevel {}", level_name(requirement.level));
        let mut table = output::table(&["need", "amount"]);
        for team in &requirement.teams {
            table.add_row(vec![
                format!("{} (tier {} or better)", team.capability, team.min_tier),
                format!("{} teams", team.count),
            ]);
        }
        for supply in &requirement.supplies {
            table.add_row(vec![supply.item_code.clone(), supply.quantity.to_string()]);
        }
        out!("{table}");
        for task in &requirement.tasks {
            let supporting = if task.supporting.is_empty() {
                String::new()
            } else {
                format!("; with {}", task.supporting.join(", "))
            };
            out!("  task: {} (lead: {}{supporting})", task.title, task.lead);
        }
    }
    if !plan.triggers.is_empty() {
        out!("\ntriggers");
        for trigger in &plan.triggers {
            out!("  {} >= {} -> level {}", trigger.metric, trigger.threshold, level_name(trigger.level));
        }
    }
}

/// Every requirement of a plan as `level: what = amount` lines, keyed for comparison.
fn requirement_lines(plan: &pb::Plan) -> BTreeMap<String, String> {
    let mut lines = BTreeMap::new();
    for requirement in &plan.levels {
        let level = level_name(requirement.level);
        for team in &requirement.teams {
            lines.insert(
                format!("level {level}: {} (tier <= {})", team.capability, team.min_tier),
                format!("{} teams", team.count),
            );
        }
        for supply in &requirement.supplies {
            lines.insert(format!("level {level}: {}", supply.item_code), supply.quantity.to_string());
        }
        for task in &requirement.tasks {
            lines.insert(
                format!("level {level}: task {:?}", task.title),
                format!("lead {}; with {}", task.lead, task.supporting.join(", ")),
            );
        }
    }
    for trigger in &plan.triggers {
        lines.insert(
            format!("trigger {} >= {}", trigger.metric, trigger.threshold),
            format!("level {}", level_name(trigger.level)),
        );
    }
    lines
}

/// The differences between two plan versions, one line each.
pub fn diff(older: &pb::Plan, newer: &pb::Plan) -> Vec<String> {
    let mut lines = Vec::new();
    if older.name != newer.name {
        lines.push(format!("~ name: {:?} -> {:?}", older.name, newer.name));
    }
    if older.hazard != newer.hazard {
        lines.push(format!("~ hazard: {} -> {}", hazard_name(older.hazard), hazard_name(newer.hazard)));
    }
    let (before, after) = (requirement_lines(older), requirement_lines(newer));
    for (key, value) in &before {
        match after.get(key) {
            None => lines.push(format!("- {key} = {value}")),
            Some(new_value) if new_value != value => lines.push(format!("~ {key} = {value} -> {new_value}")),
            Some(_) => {}
        }
    }
    for (key, value) in &after {
        if !before.contains_key(key) {
            lines.push(format!("+ {key} = {value}"));
        }
    }
    lines
}
