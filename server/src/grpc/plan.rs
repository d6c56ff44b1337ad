//! `muster.v1.PlanService`: versioned contingency plans.

use std::ops::Bound;

use muster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::auth;
use super::convert::page_token::List;
use super::convert::{self, page_token};
use super::submit_as;
use crate::domain::{validate, Command};
use crate::engine::EngineHandle;

/// The plan service over the engine.
#[derive(Debug, Clone)]
pub struct PlanService {
    engine: EngineHandle,
}

impl PlanService {
    /// A plan service writing through `engine`.
    pub fn new(engine: EngineHandle) -> Self {
        PlanService { engine }
    }
}

#[tonic::async_trait]
impl pb::plan_service_server::PlanService for PlanService {
    async fn put_plan(&self, request: Request<pb::PutPlanRequest>) -> Result<Response<pb::Plan>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let plan = convert::plan_in("plan", request.plan)?;
        let plan: crate::domain::plan::Plan =
            submit_as(&self.engine, &caller, &request.request_id, Command::PutPlan { plan }).await?;
        Ok(Response::new(convert::plan_out(&plan)))
    }

    async fn get_plan(&self, request: Request<pb::GetPlanRequest>) -> Result<Response<pb::Plan>, Status> {
        let request = request.into_inner();
        validate::id("id", &request.id)?;
        let state = self.engine.snapshot();
        let plan = state.plan(&request.id, request.version)?;
        Ok(Response::new(convert::plan_out(plan)))
    }

    async fn list_plans(
        &self,
        request: Request<pb::ListPlansRequest>,
    ) -> Result<Response<pb::ListPlansResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode(List::Plans, &request.page_token)?;
        let hazard = convert::hazard_in("hazard", request.hazard)?;
        let state = self.engine.snapshot();
        let start = after.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let matching = state
            .plans
            .range((start, Bound::Unbounded))
            .filter_map(|(id, history)| history.latest().map(|plan| (id, plan)))
            .filter(|(_, plan)| hazard.is_none_or(|hazard| plan.hazard == hazard));
        let (plans, next_page_token) =
            convert::page(List::Plans, matching, page_size, String::clone, convert::plan_out);
        Ok(Response::new(pb::ListPlansResponse { plans, next_page_token }))
    }
}
