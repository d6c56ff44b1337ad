//! Prometheus metrics (`/metrics`): counters and histograms recorded with
//! the `metrics` crate as things happen (gRPC calls by the tower layer
//! below, group commits and syncs by the engine, dispatch planning), and
//! gauges read from the published state when scraped (log sequence, open
//! needs by level, teams by status, watchers), so they are never stale.
//!
//! The recorder is process-wide (`metrics` has one global recorder): one
//! `musterd` is one process. Tests that start several servers in one
//! process share its counters, which only ever grow.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::{Level, State};

/// Latency buckets, in seconds: a loopback read is well under a
/// millisecond, a durable write a few, a large dispatch a few hundred.
const SECONDS_BUCKETS: &[f64] =
    &[0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Commands per group commit.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(SECONDS_BUCKETS).and_then(|builder| {
                builder.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("muster_commands_per_group".into()),
                    GROUP_BUCKETS,
                )
            });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    tracing::warn!(%error, "metrics are off: the buckets were refused");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are off: another recorder is installed");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::Unit;
    metrics::describe_counter!("muster_grpc_requests_total", "gRPC calls answered, by method and status code");
    metrics::describe_histogram!(
        "muster_grpc_request_duration_seconds",
        Unit::Seconds,
        "time to answer a gRPC call (to its first message, for streams)"
    );
    metrics::describe_histogram!("muster_commands_per_group", "commands decided together in one group commit");
    metrics::describe_histogram!(
        "muster_sync_duration_seconds",
        Unit::Seconds,
        "time to make one group durable (append and fdatasync)"
    );
    metrics::describe_gauge!("muster_writer_queue_depth", "commands waiting for the writer");
    metrics::describe_histogram!("muster_dispatch_duration_seconds", Unit::Seconds, "time to plan one dispatch");
}

/// Installs the recorder (`musterd` calls it at start, so the first scrape
/// already has every described metric).
pub fn install() {
    let _ = handle();
}

/// The exposition text: the recorded metrics, then the gauges of `state`.
pub fn render(state: &State, watchers: usize) -> String {
    let mut text = handle().map(PrometheusHandle::render).unwrap_or_default();
    let mut line = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{labels} {value}");
        }
    };
    line("muster_log_sequence", "the last sequence in the log", &[(String::new(), state.last_sequence as f64)]);
    let mut open = [0u64; 4];
    for (_, incident) in super::view::open_needs(state) {
        open[incident.level.index()] += 1;
    }
    let needs: Vec<(String, f64)> =
        Level::ALL.iter().zip(open).map(|(level, count)| (format!("{{level=\"{level}\"}}"), count as f64)).collect();
    line("muster_open_needs", "needs not yet filled, by their incident's level", &needs);
    let mut by_status = std::collections::BTreeMap::<&str, u64>::new();
    {
        use crate::domain::team::TeamStatus::*;
        for status in [Available, Assigned, EnRoute, OnScene, Returning, OutOfService] {
            by_status.insert(status.as_str(), 0);
        }
    }
    for team in state.teams.values() {
        *by_status.entry(team.status.as_str()).or_default() += 1;
    }
    let teams: Vec<(String, f64)> =
        by_status.iter().map(|(status, count)| (format!("{{status=\"{status}\"}}"), *count as f64)).collect();
    line("muster_teams", "teams, by status", &teams);
    line("muster_watchers", "gRPC watch streams open", &[(String::new(), watchers as f64)]);
    text
}

/// The tower layer that counts and times every gRPC call.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// [`GrpcMetricsLayer`]'s service.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Only methods the server serves, so a client cannot grow the label set.
        let method =
            crate::grpc::auth::served_path(request.uri().path()).map_or("unknown", |path| path.trim_start_matches('/'));
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // The code of the response's head: errors travel there; a call
            // that fails after its first message is counted as it began.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i32>().ok())
                .map(tonic::Code::from_i32)
                .unwrap_or(tonic::Code::Ok);
            let code = format!("{code:?}");
            metrics::counter!("muster_grpc_requests_total", "method" => method, "code" => code).increment(1);
            metrics::histogram!("muster_grpc_request_duration_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}
