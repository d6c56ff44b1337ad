//! `muster.v1.DrillService`: drills through a running server. A run goes on
//! an engine of its own (never the live one), streams its progress, and is
//! kept, with its script, report and log, in the store's drill namespace so
//! reports and replays survive a restart. The `drill` role may call these
//! methods and nothing else; a commander may too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use muster_proto::v1 as pb;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use super::convert::page_token::List;
use super::convert::{self, page_token};
use super::status;
use crate::domain::{validate, DomainError};
use crate::drill::{self, report, run_id, run_number, DrillError, Report, RunOptions, RunSummary, StoredRun};
use crate::engine::EngineHandle;
use crate::store::Store;

/// Drills that may run at once; more is `RESOURCE_EXHAUSTED` (each runs an
/// engine of its own and takes a core while it runs).
pub const MAX_CONCURRENT_DRILLS: usize = 2;
/// Longest script or fixture text accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 2 * 1024 * 1024;
/// Progress messages a slow client may fall behind by before some are skipped.
const PROGRESS_BUFFER: usize = 64;
/// Past this size a report goes out without its text rendering (the
/// structured fields carry the same), so it stays under the message limit.
const REPORT_TEXT_BUDGET: usize = 1024 * 1024;

/// The drill service.
#[derive(Clone)]
pub struct DrillService {
    engine: EngineHandle,
    store: Arc<dyn Store>,
    running: Arc<Semaphore>,
    next_number: Arc<AtomicU64>,
}

impl std::fmt::Debug for DrillService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrillService").finish_non_exhaustive()
    }
}

impl DrillService {
    /// A drill service keeping its runs in `store`, copying the live world
    /// (for `from_live`) from `engine`'s snapshots.
    pub fn new(engine: EngineHandle, store: Arc<dyn Store>) -> Result<Self, crate::store::StoreError> {
        let mut last = 0;
        loop {
            let page = store.drill_runs(last, 1_000)?;
            match page.last() {
                Some((number, _)) => last = *number,
                None => break,
            }
        }
        Ok(DrillService {
            engine,
            store,
            running: Arc::new(Semaphore::new(MAX_CONCURRENT_DRILLS)),
            next_number: Arc::new(AtomicU64::new(last + 1)),
        })
    }

    async fn load(&self, id: &str) -> Result<StoredRun, Status> {
        validate::id("run_id", id)?;
        let number = run_number(id).ok_or_else(|| status::from_domain(DomainError::not_found("drill run", id)))?;
        let store = Arc::clone(&self.store);
        let bytes = tokio::task::spawn_blocking(move || store.drill_run(number))
            .await
            .map_err(status::from_join)??
            .ok_or_else(|| status::from_domain(DomainError::not_found("drill run", id)))?;
        StoredRun::decode(&bytes).map_err(|error| {
            tracing::error!(%error, run = id, "a stored drill run does not decode");
            Status::internal("internal error")
        })
    }
}

/// Every drill slot is taken: retry later (not a full write queue).
fn drills_busy() -> Status {
    status::retry_later(
        format!("{MAX_CONCURRENT_DRILLS} drills (runs, replays or exports) are already running; retry later"),
        std::time::Duration::from_secs(1),
    )
}

fn script_error(error: DrillError) -> Status {
    match error {
        DrillError::Script(error) => status::from_domain(error),
        DrillError::Engine(error) => {
            tracing::error!(%error, "a drill's engine failed");
            Status::internal("the drill's engine failed")
        }
    }
}

/// A report as protobuf.
pub fn report_out(report: &Report) -> pb::DrillReport {
    let minutes = |value: Option<f64>| value.unwrap_or(-1.0);
    pb::DrillReport {
        run_id: report.run_id.clone(),
        name: report.name.clone(),
        digest: report.digest.clone(),
        events: report.events,
        fill_times: report
            .needs
            .iter()
            .map(|need| pb::NeedFillTime {
                need_id: need.need_id.clone(),
                incident_id: need.incident_id.clone(),
                level: need.level.clone(),
                fill_minutes: minutes(need.fill_minutes),
                reach_minutes: minutes(need.reach_minutes),
                what: need.what.clone(),
                cancelled: need.cancelled,
            })
            .collect(),
        unmet_needs: report
            .unmet
            .iter()
            .map(|need| pb::UnmetNeed {
                need_id: need.need_id.clone(),
                incident_id: need.incident_id.clone(),
                missing: u64::try_from(need.missing).unwrap_or(0),
                reason: need.reason.clone(),
            })
            .collect(),
        total_distance_km: report.total_distance_km,
        reserve_overrides: report
            .reserve_overrides
            .iter()
            .map(|item| pb::ReserveOverride {
                assignment_id: item.assignment_id.clone(),
                depot_id: item.depot_id.clone(),
                item_code: item.item_code.clone(),
                quantity: item.quantity,
            })
            .collect(),
        expectations: report
            .expectations
            .iter()
            .map(|verdict| pb::ExpectationResult {
                description: verdict.description.clone(),
                passed: verdict.passed,
                detail: verdict.detail.clone(),
            })
            .collect(),
        replay_matches: report.replay_matches.unwrap_or(false),
        divergence: report.divergence.clone(),
        injects: report
            .injects
            .iter()
            .map(|inject| pb::InjectResult {
                at: drill::script::format_offset(inject.at_seconds),
                action: inject.action.clone(),
                note: inject.note.clone(),
                objective: inject.objective.clone(),
                error: inject.error.clone().unwrap_or_default(),
                source: inject.source.clone(),
            })
            .collect(),
        seed: report.seed,
        passed: report.passed(),
        text: {
            let text = report::render_text(report);
            if text.len() > REPORT_TEXT_BUDGET {
                "(the report is too large to render here: read its fields, or run `musterd drill run --json`)"
                    .to_owned()
            } else {
                text
            }
        },
    }
}

#[tonic::async_trait]
impl pb::drill_service_server::DrillService for DrillService {
    async fn run_drill(
        &self,
        request: Request<pb::RunDrillRequest>,
    ) -> Result<Response<BoxStream<pb::DrillProgress>>, Status> {
        let request = request.into_inner();
        validate::text("name", &request.name, false)?;
        validate::repeated("files", &request.files.iter().collect::<Vec<_>>())?;
        let within = |field: String, text: &str| {
            if text.len() > MAX_SCRIPT_BYTES {
                return Err(status::from_domain(DomainError::invalid(
                    field,
                    format!("is larger than {MAX_SCRIPT_BYTES} bytes"),
                )));
            }
            Ok(())
        };
        within("script".to_owned(), &request.script)?;
        for (file, text) in &request.files {
            validate::text("files", file, true)?;
            within(format!("files[{file}]"), text)?;
        }
        let name = if request.name.is_empty() { "script".to_owned() } else { request.name.clone() };
        let files: std::collections::BTreeMap<String, String> = request.files.into_iter().collect();
        let script = drill::parse_with_files(&name, &request.script, &files)?;
        let permit = Arc::clone(&self.running).try_acquire_owned().map_err(|_| drills_busy())?;
        let live_world = script.from_live.then(|| drill::run::live_world(&self.engine.snapshot()));
        let options = RunOptions {
            seed: Some(request.seed),
            pace: None,
            live_world: live_world.clone(),
            dispatch: self.engine.dispatch_settings(),
        };
        let (sender, receiver) = mpsc::channel::<Result<pb::DrillProgress, Status>>(PROGRESS_BUFFER);
        let service = self.clone();
        let text = request.script;
        tokio::spawn(async move {
            let progress_sender = sender.clone();
            let progress = move |progress: drill::run::Progress| {
                let update = pb::DrillProgress {
                    update: Some(pb::drill_progress::Update::Progress(pb::Progress {
                        virtual_time: Some(convert::timestamp_out(progress.time)),
                        injects_done: u32::try_from(progress.injects_done).unwrap_or(u32::MAX),
                        injects_total: u32::try_from(progress.injects_total).unwrap_or(u32::MAX),
                        message: progress.message,
                    })),
                };
                // A slow client misses progress, never the report.
                let _ = progress_sender.try_send(Ok(update));
            };
            let outcome = drill::run_and_report(&script, &options, &progress).await;
            let (run, mut report) = match outcome {
                Ok(done) => done,
                Err(error) => {
                    let _ = sender.send(Err(script_error(error))).await;
                    return;
                }
            };
            let number = service.next_number.fetch_add(1, Ordering::SeqCst);
            report.run_id = run_id(number);
            let stored = StoredRun {
                number,
                script_name: name,
                script: text,
                files,
                live_world: options.live_world.clone(),
                seed: run.seed,
                dispatch: options.dispatch,
                report: report.clone(),
                records: run.records,
            };
            let store = Arc::clone(&service.store);
            let saved = tokio::task::spawn_blocking(move || {
                let corrupt =
                    |reason| crate::store::StoreError::Corrupt { tree: "drill-runs", key: stored.id(), reason };
                let summary = stored.summary().encode().map_err(corrupt)?;
                let bytes = stored.encode().map_err(corrupt)?;
                store.put_drill_run(number, &summary, &bytes)
            })
            .await;
            // The drill is done: its slot is free even if the client is slow
            // to take the report.
            drop(permit);
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, "a drill run could not be stored");
                    let _ =
                        sender.send(Err(Status::unavailable(format!("the run could not be stored: {error}")))).await;
                    return;
                }
                Err(error) => {
                    let _ = sender.send(Err(status::from_join(error))).await;
                    return;
                }
            }
            let update = pb::DrillProgress { update: Some(pb::drill_progress::Update::Report(report_out(&report))) };
            let _ = sender.send(Ok(update)).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn render_drill_report(
        &self,
        request: Request<pb::RenderDrillReportRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        let request = request.into_inner();
        let run = self.load(&request.run_id).await?;
        let beside = if request.compare_with.is_empty() { None } else { Some(self.load(&request.compare_with).await?) };
        let html = self
            .engine
            .heavy("rendering a drill report", move || crate::http::pages::drill_report(&run, beside.as_ref()))
            .await
            .map_err(status::from_engine)?;
        super::export::document("text/html; charset=utf-8", html, "the drill report", "")
    }

    async fn get_drill_report(
        &self,
        request: Request<pb::GetDrillReportRequest>,
    ) -> Result<Response<pb::DrillReport>, Status> {
        let stored = self.load(&request.into_inner().run_id).await?;
        Ok(Response::new(report_out(&stored.report)))
    }

    async fn replay_drill(
        &self,
        request: Request<pb::ReplayDrillRequest>,
    ) -> Result<Response<pb::DrillReport>, Status> {
        let stored = self.load(&request.into_inner().run_id).await?;
        let script = stored.script().map_err(|error| {
            Status::failed_precondition(format!("the stored script no longer parses with this build: {error}"))
        })?;
        let _permit = Arc::clone(&self.running).try_acquire_owned().map_err(|_| drills_busy())?;
        let options = RunOptions {
            seed: Some(stored.seed),
            pace: Some(0.0),
            live_world: stored.live_world.clone(),
            // The settings it ran with, not today's configuration.
            dispatch: stored.dispatch,
        };
        let outcome = drill::replay::replay(&script, &stored.records, &stored.report.digest, &options)
            .await
            .map_err(script_error)?;
        let mut report = stored.report.clone();
        report.replay_matches = Some(outcome.matches);
        report.divergence = outcome.divergence;
        Ok(Response::new(report_out(&report)))
    }

    async fn list_drill_runs(
        &self,
        request: Request<pb::ListDrillRunsRequest>,
    ) -> Result<Response<pb::ListDrillRunsResponse>, Status> {
        let request = request.into_inner();
        let page_size = validate::page_size(request.page_size)?;
        let after = page_token::decode_sequence(List::DrillRuns, &request.page_token)?;
        let store = Arc::clone(&self.store);
        let (runs, more) = tokio::task::spawn_blocking(move || {
            let page = store.drill_runs(after, page_size + 1)?;
            let more = page.len() > page_size;
            let mut runs = Vec::new();
            for (number, bytes) in page.into_iter().take(page_size) {
                runs.push(RunSummary::decode(&bytes).map_err(|reason| crate::store::StoreError::Corrupt {
                    tree: "drill-runs",
                    key: number.to_string(),
                    reason,
                })?);
            }
            Ok::<_, crate::store::StoreError>((runs, more))
        })
        .await
        .map_err(status::from_join)??;
        let next_page_token = match (more, runs.last()) {
            (true, Some(last)) => page_token::encode_sequence(List::DrillRuns, last.number),
            _ => String::new(),
        };
        let runs = runs
            .iter()
            .map(|run| pb::DrillRunSummary {
                run_id: run_id(run.number),
                name: run.name.clone(),
                digest: run.digest.clone(),
                passed: run.passed,
                seed: run.seed,
                events: run.events,
            })
            .collect();
        Ok(Response::new(pb::ListDrillRunsResponse { runs, next_page_token }))
    }

    async fn export_incident_as_drill(
        &self,
        request: Request<pb::ExportIncidentAsDrillRequest>,
    ) -> Result<Response<pb::DrillScript>, Status> {
        let incident_id = request.into_inner().incident_id;
        validate::id("incident_id", &incident_id)?;
        self.engine.snapshot().incident(&incident_id)?;
        // An export reads the whole log: it takes a drill slot.
        let _permit = Arc::clone(&self.running).try_acquire_owned().map_err(|_| drills_busy())?;
        let engine = self.engine.clone();
        let script = tokio::task::spawn_blocking(move || {
            let mut records = Vec::new();
            let mut next = 1;
            loop {
                let chunk = engine.read_log(next, 4_096)?;
                let done = chunk.len() < 4_096;
                next = chunk.last().map(|record| record.sequence + 1).unwrap_or(next);
                records.extend(chunk);
                if done {
                    break;
                }
            }
            Ok::<_, crate::store::StoreError>(drill::export::export_incident(&records, &incident_id))
        })
        .await
        .map_err(status::from_join)???;
        Ok(Response::new(pb::DrillScript { script }))
    }
}
