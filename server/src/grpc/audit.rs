//! `muster.v1.AuditService`: the log, for review, and the state digest, so
//! a replay can be checked against the live server.

use muster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::page_token::List;
use super::convert::{self, page_token};
use super::status;
use crate::domain::{validate, LogRecord};
use crate::engine::EngineHandle;

/// Log records one `ListEvents` call reads at most; a sparse filter returns a
/// short (even empty) page with a token to go on, instead of scanning on.
const MAX_SCANNED_PER_CALL: usize = 50_000;

/// The audit service over the engine.
#[derive(Debug, Clone)]
pub struct AuditService {
    engine: EngineHandle,
}

impl AuditService {
    /// An audit service reading through `engine`.
    pub fn new(engine: EngineHandle) -> Self {
        AuditService { engine }
    }
}

/// A log record as an audit event.
pub fn event_out(record: &LogRecord) -> pb::Event {
    let touched = record.event.touched();
    pb::Event {
        sequence: record.sequence,
        time: Some(convert::timestamp_out(record.time)),
        actor: record.actor.clone(),
        request_id: record.request_id.clone().unwrap_or_default(),
        kind: record.event.kind().to_owned(),
        summary: record.event.summary(),
        team_ids: touched.team_ids,
        incident_ids: touched.incident_ids,
        depot_ids: touched.depot_ids,
        item_codes: touched.item_codes,
        plan_ids: touched.plan_ids,
        need_ids: touched.need_ids,
        assignment_ids: touched.assignment_ids,
        zone_ids: touched.zone_ids,
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditService {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode_sequence(List::Events, &request.page_token)?;
        // Incidents and teams are never removed: one the state does not
        // know never had events, and a typo should not look like silence.
        if !request.incident_id.is_empty() {
            validate::id("incident_id", &request.incident_id)?;
            self.engine.snapshot().incident(&request.incident_id)?;
        }
        if !request.team_id.is_empty() {
            validate::id("team_id", &request.team_id)?;
            self.engine.snapshot().team(&request.team_id)?;
        }
        let since = convert::optional_timestamp_in("since", request.since.as_ref())?;
        let engine = self.engine.clone();
        let (events, next) = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            let mut bytes = convert::PageBytes::default();
            let Some(mut next) = after.checked_add(1) else {
                return Ok((Vec::new(), None));
            };
            let mut scanned = 0;
            loop {
                let chunk = engine.read_log(next, 1_024)?;
                let exhausted = chunk.len() < 1_024;
                for record in chunk {
                    scanned += 1;
                    next = record.sequence + 1;
                    let touched = record.event.touched();
                    let wanted = (request.incident_id.is_empty()
                        || touched.incident_ids.contains(&request.incident_id))
                        && (request.team_id.is_empty() || touched.team_ids.contains(&request.team_id))
                        && since.is_none_or(|since| record.time >= since);
                    if wanted {
                        let event = event_out(&record);
                        if !bytes.take(&event) {
                            // This one starts the next page.
                            return Ok((events, Some(record.sequence - 1)));
                        }
                        events.push(event);
                        if events.len() == page_size {
                            return Ok((events, Some(next - 1)));
                        }
                    }
                    if scanned >= MAX_SCANNED_PER_CALL {
                        return Ok((events, Some(next - 1)));
                    }
                }
                if exhausted {
                    return Ok::<_, crate::store::StoreError>((events, None));
                }
            }
        })
        .await
        .map_err(status::from_join)??;
        let next_page_token = next.map(|last| page_token::encode_sequence(List::Events, last)).unwrap_or_default();
        Ok(Response::new(pb::ListEventsResponse { events, next_page_token }))
    }

    async fn get_digest(&self, request: Request<pb::GetDigestRequest>) -> Result<Response<pb::Digest>, Status> {
        let sequence = request.into_inner().sequence;
        let snapshot = self.engine.snapshot();
        if sequence == 0 || sequence == snapshot.last_sequence {
            return Ok(Response::new(pb::Digest { sequence: snapshot.last_sequence, digest: snapshot.digest() }));
        }
        if sequence > snapshot.last_sequence {
            return Err(status::invalid(
                "sequence",
                &format!("is beyond the last sequence {}", snapshot.last_sequence),
            ));
        }
        let state = self.engine.state_at_sequence(sequence).await.map_err(status::from_engine)?;
        Ok(Response::new(pb::Digest { sequence: state.last_sequence, digest: state.digest() }))
    }
}
