//! ExportService: the after-action report and the GeoJSON situation, drawn
//! by the HTTP side's renderer (`http::pages`, `http::view`) so a file from
//! the CLI and the page on the wall are the same document.

use muster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::status;
use crate::domain::limits::MAX_MESSAGE_BYTES;
use crate::domain::{validate, DomainError};
use crate::engine::EngineHandle;
use crate::http::{pages, view};

/// The export service.
#[derive(Clone, Debug)]
pub struct ExportService {
    engine: EngineHandle,
}

impl ExportService {
    /// An export service reading through `engine`.
    pub fn new(engine: EngineHandle) -> Self {
        ExportService { engine }
    }
}

/// Room for a document in a reply: the message limit less framing (every
/// rendered document goes out through [`document`], the drill reports too).
const MAX_DOCUMENT_BYTES: usize = MAX_MESSAGE_BYTES - 16 * 1024;

/// `body` as a reply, or `FAILED_PRECONDITION` past the message limit,
/// saying what it was and (`elsewhere`) where to read it whole instead.
pub(crate) fn document(
    content_type: &str,
    body: String,
    what: &str,
    elsewhere: &str,
) -> Result<Response<pb::Document>, Status> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(Status::failed_precondition(format!(
            "{what} is {} bytes, past the {MAX_MESSAGE_BYTES}-byte message limit{elsewhere}",
            body.len()
        )));
    }
    Ok(Response::new(pb::Document { content_type: content_type.to_owned(), body }))
}

#[tonic::async_trait]
impl pb::export_service_server::ExportService for ExportService {
    async fn incident_report(
        &self,
        request: Request<pb::IncidentReportRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        let id = request.into_inner().incident_id;
        validate::id("incident_id", &id)?;
        let engine = self.engine.clone();
        let report_id = id.clone();
        let rendered = self
            .engine
            .heavy("rendering an incident report", move || pages::incident_report(&engine, &report_id))
            .await
            .map_err(status::from_engine)?;
        match rendered {
            Ok(html) => document(
                "text/html; charset=utf-8",
                html,
                "the report",
                "; the HTTP side's /incidents/ID shows the incident",
            ),
            Err(pages::PageError::NotFound(_)) => Err(DomainError::not_found("incident", &id).into()),
            Err(pages::PageError::Store(error)) => Err(error.into()),
        }
    }

    async fn situation_geo_json(
        &self,
        request: Request<pb::SituationGeoJsonRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        let incident = request.into_inner().incident_id;
        let state = self.engine.snapshot();
        let scope = if incident.is_empty() {
            None
        } else {
            validate::id("incident_id", &incident)?;
            if !view::is_open_incident(&state, &incident) {
                return Err(DomainError::not_found("open incident", &incident).into());
            }
            Some(incident.as_str())
        };
        let situation = view::live(&self.engine, &state);
        let collection = view::geojson(&situation, view::Layer::All, scope);
        document("application/geo+json", collection.to_string(), "the GeoJSON", "; the HTTP side serves it whole")
    }
}
