//! `muster.v1.ImportService`: fixture files into a live server.

use muster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::auth;
use super::{status, submit_as};
use crate::domain::limits::MAX_ID_CHARS;
use crate::domain::{Command, DomainError};
use crate::engine::EngineHandle;
use crate::fixture;

/// The import service over the engine.
#[derive(Debug, Clone)]
pub struct ImportService {
    engine: EngineHandle,
}

impl ImportService {
    /// An import service writing through `engine`.
    pub fn new(engine: EngineHandle) -> Self {
        ImportService { engine }
    }
}

/// Longest file name an import may give (it prefixes every error and ledger note).
pub const MAX_FILE_NAME_CHARS: usize = 4 * MAX_ID_CHARS;

#[tonic::async_trait]
impl pb::import_service_server::ImportService for ImportService {
    async fn import(&self, request: Request<pb::ImportRequest>) -> Result<Response<pb::ImportResponse>, Status> {
        let caller = auth::caller(&request)?;
        let request = request.into_inner();
        let name = if request.name.is_empty() { "fixture".to_owned() } else { request.name.clone() };
        if name.chars().count() > MAX_FILE_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(status::from_domain(DomainError::invalid("name", "must be a short file name")));
        }
        let parsed = fixture::parse(&name, &request.toml)?;
        let command = Command::Import { fixture: parsed };
        let summary: crate::domain::import::ImportSummary =
            submit_as(&self.engine, &caller, &request.request_id, command).await?;
        Ok(Response::new(pb::ImportResponse {
            created: summary.created,
            changed: summary.changed,
            unchanged: summary.unchanged,
        }))
    }
}
