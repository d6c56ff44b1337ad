//! Plans and the needs they (or operators) ask for.

use muster_proto::v1 as pb;

use super::common::{hazard_in, hazard_out, level_in, level_out};
use crate::domain::error::{DomainError, DomainResult};

/// A team need from protobuf.
pub fn team_need_in(need: &pb::TeamNeed) -> crate::domain::TeamNeed {
    crate::domain::TeamNeed { capability: need.capability.clone(), min_tier: need.min_tier, count: need.count }
}

/// A supply need from protobuf.
pub fn supply_need_in(need: &pb::SupplyNeed) -> crate::domain::SupplyNeed {
    crate::domain::SupplyNeed { item_code: need.item_code.clone(), quantity: need.quantity }
}

/// A plan from protobuf (its version is ignored: the server assigns it).
pub fn plan_in(field: &str, plan: Option<pb::Plan>) -> DomainResult<crate::domain::plan::Plan> {
    use crate::domain::plan::{LevelRequirement, Plan, Task, Trigger};
    let plan = plan.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    crate::domain::validate::repeated(&format!("{field}.levels"), &plan.levels)?;
    crate::domain::validate::repeated(&format!("{field}.triggers"), &plan.triggers)?;
    let mut levels = Vec::with_capacity(plan.levels.len());
    for (index, requirement) in plan.levels.iter().enumerate() {
        let level_field = format!("{field}.levels[{index}]");
        crate::domain::validate::repeated(&format!("{level_field}.teams"), &requirement.teams)?;
        crate::domain::validate::repeated(&format!("{level_field}.supplies"), &requirement.supplies)?;
        crate::domain::validate::repeated(&format!("{level_field}.tasks"), &requirement.tasks)?;
        levels.push(LevelRequirement {
            level: level_in(&format!("{level_field}.level"), requirement.level)?
                .ok_or_else(|| DomainError::invalid(format!("{level_field}.level"), "is required"))?,
            teams: requirement.teams.iter().map(team_need_in).collect(),
            supplies: requirement.supplies.iter().map(supply_need_in).collect(),
            tasks: requirement
                .tasks
                .iter()
                .map(|task| Task {
                    title: task.title.clone(),
                    lead: task.lead.clone(),
                    supporting: task.supporting.clone(),
                })
                .collect(),
        });
    }
    let mut triggers = Vec::with_capacity(plan.triggers.len());
    for (index, trigger) in plan.triggers.iter().enumerate() {
        let trigger_field = format!("{field}.triggers[{index}]");
        triggers.push(Trigger {
            metric: trigger.metric.clone(),
            threshold: trigger.threshold,
            level: level_in(&format!("{trigger_field}.level"), trigger.level)?
                .ok_or_else(|| DomainError::invalid(format!("{trigger_field}.level"), "is required"))?,
        });
    }
    Ok(Plan {
        hazard: hazard_in(&format!("{field}.hazard"), plan.hazard)?
            .ok_or_else(|| DomainError::invalid(format!("{field}.hazard"), "is required"))?,
        id: plan.id,
        name: plan.name,
        levels,
        triggers,
        version: 0,
    })
}

/// A domain plan as protobuf.
pub fn plan_out(plan: &crate::domain::plan::Plan) -> pb::Plan {
    pb::Plan {
        id: plan.id.clone(),
        name: plan.name.clone(),
        hazard: hazard_out(plan.hazard).into(),
        levels: plan
            .levels
            .iter()
            .map(|requirement| pb::LevelRequirement {
                level: level_out(requirement.level).into(),
                teams: requirement
                    .teams
                    .iter()
                    .map(|team| pb::TeamNeed {
                        capability: team.capability.clone(),
                        min_tier: team.min_tier,
                        count: team.count,
                    })
                    .collect(),
                supplies: requirement
                    .supplies
                    .iter()
                    .map(|supply| pb::SupplyNeed { item_code: supply.item_code.clone(), quantity: supply.quantity })
                    .collect(),
                tasks: requirement
                    .tasks
                    .iter()
                    .map(|task| pb::Task {
                        title: task.title.clone(),
                        lead: task.lead.clone(),
                        supporting: task.supporting.clone(),
                    })
                    .collect(),
            })
            .collect(),
        triggers: plan
            .triggers
            .iter()
            .map(|trigger| pb::Trigger {
                metric: trigger.metric.clone(),
                threshold: trigger.threshold,
                level: level_out(trigger.level).into(),
            })
            .collect(),
        version: plan.version,
    }
}
