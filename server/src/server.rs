//! Wiring: configuration, the store and engine, the gRPC services with
//! authentication, health and reflection, and graceful shutdown. Tests call
//! [`serve`] with their own listener, clock and shutdown future.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use muster_proto::v1 as pb;
use serde::Deserialize;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;

use crate::domain::limits::MAX_MESSAGE_BYTES;
use crate::engine::{Clock, Engine, EngineConfig};
use crate::grpc::audit::AuditService;
use crate::grpc::auth::{Caller, Role, Tokens};
use crate::grpc::drill::DrillService;
use crate::grpc::import::ImportService;
use crate::grpc::incident::IncidentService;
use crate::grpc::plan::PlanService;
use crate::grpc::reserve::ReserveService;
use crate::grpc::roster::RosterService;
use crate::store::{SledStore, Store};

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./muster-data";
/// How long a shutdown waits for open calls and streams to finish before it
/// drops their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The configuration file (`musterd --config FILE`), TOML. Command-line
/// flags override it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// Where the log lives.
    pub data_dir: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Access tokens; none means unauthenticated, loopback only.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenConfig>,
    /// How the dispatcher estimates travel (`road_factor`, `convoy_speed_kmh`,
    /// `zone_detour_factor`).
    #[serde(default)]
    pub dispatch: crate::domain::travel::Settings,
}

/// One access token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: recorded as the actor of what they do.
    pub name: String,
    /// `commander`, `observer`, `team:<id>` or `drill`.
    pub role: String,
    /// The bearer token itself.
    pub token: String,
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where the log lives.
    pub data_dir: PathBuf,
    /// Access tokens.
    pub tokens: Vec<TokenConfig>,
    /// Writer tunables.
    pub engine: EngineConfig,
}

fn tokens(config: &[TokenConfig]) -> anyhow::Result<Tokens> {
    let mut entries = Vec::new();
    for (index, token) in config.iter().enumerate() {
        let Some(role) = Role::parse(&token.role) else {
            bail!("token[{index}].role: {:?} is not commander, observer, team:<id> or drill", token.role);
        };
        if token.token.len() < MIN_TOKEN_CHARS {
            bail!("token[{index}].token: must be at least {MIN_TOKEN_CHARS} characters");
        }
        let actor = match &role {
            Role::Team(id) => format!("team:{id}"),
            _ => token.name.clone(),
        };
        entries.push((token.token.clone(), Caller { actor, role }));
    }
    Ok(Tokens::new(entries))
}

/// The configured tokens; refuses an unauthenticated server off loopback.
fn access_tokens(config: &ServerConfig, listener: &TcpListener) -> anyhow::Result<(Tokens, SocketAddr)> {
    let address = listener.local_addr().context("reading the listener's address")?;
    let tokens = tokens(&config.tokens)?;
    if tokens.is_empty() && !address.ip().is_loopback() {
        bail!("refusing to listen on {address} without access tokens: configure [[token]] or listen on loopback");
    }
    Ok((tokens, address))
}

/// The shortest bearer token accepted, in bytes.
pub const MIN_TOKEN_CHARS: usize = 16;
/// How often an idle HTTP/2 connection is pinged.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is dropped.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an idle connection waits before TCP keepalive probes start.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The accepted connections, with the socket options the server wants
/// (the builder's own TCP options apply only to addresses it binds itself).
fn incoming(listener: TcpListener) -> TcpIncoming {
    // Replies go out at once: with Nagle on, the last small frame of a
    // reply larger than a segment waits for the client's delayed ACK,
    // about 40 ms a call.
    TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE))
}

/// Serves Muster on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight calls finish, and makes every acknowledged
/// change durable before returning.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    access_tokens(&config, &listener)?;
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&data_dir))
        .await
        .context("opening the store")?
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    serve_store(config, Arc::new(store), listener, clock, shutdown).await
}

/// [`serve`] over a store the caller opened (tests use it to inject faults).
pub async fn serve_store(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tokens, address) = access_tokens(&config, &listener)?;
    config.engine.dispatch.validate().map_err(anyhow::Error::msg)?;
    let drill_store = Arc::clone(&store);
    let engine = tokio::task::spawn_blocking(move || Engine::start(store, clock, config.engine))
        .await
        .context("starting the engine")?
        .context("replaying the log")?;
    let handle = engine.handle();
    tracing::info!(%address, last_sequence = handle.snapshot().last_sequence, "musterd serving");

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<pb::roster_service_server::RosterServiceServer<RosterService>>().await;
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(muster_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building reflection")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(muster_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection")?;

    let interceptor = {
        let tokens = tokens.clone();
        move |request| tokens.authenticate(request)
    };
    // Every service: size limits both ways, then authentication.
    macro_rules! service {
        ($server:ty, $implementation:expr) => {
            InterceptedService::new(
                <$server>::new($implementation)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
                interceptor.clone(),
            )
        };
    }
    let roster = service!(pb::roster_service_server::RosterServiceServer<_>, RosterService::new(handle.clone()));
    let reserve = service!(pb::reserve_service_server::ReserveServiceServer<_>, ReserveService::new(handle.clone()));
    let import = service!(pb::import_service_server::ImportServiceServer<_>, ImportService::new(handle.clone()));
    let plans = service!(pb::plan_service_server::PlanServiceServer<_>, PlanService::new(handle.clone()));
    let incidents =
        service!(pb::incident_service_server::IncidentServiceServer<_>, IncidentService::new(handle.clone()));
    let audit = service!(pb::audit_service_server::AuditServiceServer<_>, AuditService::new(handle.clone()));
    let drills = service!(
        pb::drill_service_server::DrillServiceServer<_>,
        DrillService::new(handle.clone(), drill_store).context("reading the stored drill runs")?
    );

    let closer = engine.closer();
    let stopping_health = health.clone();
    let (began, grace) = tokio::sync::oneshot::channel::<()>();
    let on_shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: no new calls; finishing in-flight work");
        stopping_health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
        closer.close();
        let _ = began.send(());
    };

    let serving = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(roster)
        .add_service(reserve)
        .add_service(import)
        .add_service(plans)
        .add_service(incidents)
        .add_service(audit)
        .add_service(drills)
        .serve_with_incoming_shutdown(incoming(listener), on_shutdown);
    // A graceful shutdown waits for every open stream to finish, and a client
    // that stopped reading never lets its stream finish: past the grace
    // period the server stops waiting for them. (Their connection tasks end
    // with the process; in-process servers in tests leave them to the
    // runtime.)
    let deadline = async {
        if grace.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = tokio::select! {
        served = serving => served,
        () = deadline => {
            tracing::warn!(grace_seconds = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; dropping them");
            Ok(())
        }
    };
    engine.shutdown().await;
    tracing::info!(last_sequence = handle.snapshot().last_sequence, "musterd stopped; the log is durable");
    served.context("serving gRPC")
}
