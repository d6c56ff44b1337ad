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
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::domain::limits::{MAX_ID_CHARS, MAX_MESSAGE_BYTES};
use crate::engine::{Clock, Engine, EngineConfig};
use crate::grpc::audit::AuditService;
use crate::grpc::auth::{AccessLayer, Caller, Role, Tokens};
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
    /// Transport security: `cert`, `key`, optional `client_ca` (PEM files).
    pub tls: Option<TlsConfig>,
    /// The HTTP side's address (loopback), or `off`.
    pub http: Option<String>,
    /// How the dispatcher estimates travel (`road_factor`, `convoy_speed_kmh`,
    /// `zone_detour_factor`).
    #[serde(default)]
    pub dispatch: crate::domain::travel::Settings,
    /// The replicated log (`[log]`), instead of the embedded one.
    pub log: Option<LogConfig>,
}

/// `[log]` (or `--log`, `--stream`, ...): a NATS JetStream stream that
/// several `musterd` replicas share, instead of the embedded log. The data
/// directory then holds this replica's local copy of the stream.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `nats://HOST:PORT[,HOST:PORT...]` (`tls://` for TLS): any of the
    /// cluster's servers; the client fails over between them.
    pub url: String,
    /// The stream: one per jurisdiction (letters, digits, `-`, `_`).
    pub stream: String,
    /// A NATS credentials file (`.creds`), if the cluster asks for one.
    pub credentials: Option<PathBuf>,
    /// The authority that signed the NATS servers' certificates (PEM):
    /// given, the connection must use TLS.
    pub ca: Option<PathBuf>,
    /// How many NATS servers hold the stream, when this replica creates
    /// it (default 3).
    pub replicas: Option<usize>,
}

impl LogConfig {
    /// The replicated log's settings, checked: every server a `nats://` or
    /// `tls://` address.
    pub fn jetstream(&self) -> anyhow::Result<crate::store::JetStreamConfig> {
        let mut servers = Vec::new();
        let mut scheme = None;
        for part in self.url.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let server = match part.split_once("://") {
                Some(("nats" | "tls", _)) => part.to_owned(),
                Some((other, _)) => {
                    bail!("--log: {other}:// is not a NATS address (nats://HOST:PORT or tls://HOST:PORT)")
                }
                None => format!("{}://{part}", scheme.unwrap_or("nats")),
            };
            scheme =
                scheme.or(server.split_once("://").map(|(scheme, _)| if scheme == "tls" { "tls" } else { "nats" }));
            servers.push(server);
        }
        if servers.is_empty() {
            bail!("--log: no NATS server named (nats://HOST:PORT[,HOST:PORT...])");
        }
        Ok(crate::store::JetStreamConfig {
            servers,
            stream: self.stream.clone(),
            credentials: self.credentials.clone(),
            ca: self.ca.clone(),
            replicas: self.replicas.unwrap_or(3).clamp(1, 5),
        })
    }
}

/// One access token.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: recorded as the actor of what they do. Unique.
    pub name: String,
    /// `commander`, `observer`, `team:<id>` or `drill`.
    pub role: String,
    /// The bearer token itself. Unique; never logged.
    pub token: String,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Transport security (`[tls]`, or `--tls-cert`, `--tls-key`,
/// `--tls-client-ca`): PEM files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// When given, every client must present a certificate signed by this
    /// authority (mutual TLS), as well as a token.
    pub client_ca: Option<PathBuf>,
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // toml's own message quotes the offending line, which may hold a
        // token: name the place and the reason only.
        toml::from_str(&text).map_err(|error| {
            let line = error.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let place = line.map(|line| format!(":{line}")).unwrap_or_default();
            anyhow::anyhow!("parsing {}{place}: {}", path.display(), error.message())
        })
    }
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where the log lives.
    pub data_dir: PathBuf,
    /// Access tokens.
    pub tokens: Vec<TokenConfig>,
    /// Transport security; none means plain HTTP/2, loopback only.
    pub tls: Option<TlsConfig>,
    /// Writer tunables.
    pub engine: EngineConfig,
    /// The replicated log; `None`: the embedded log in `data_dir`.
    pub log: Option<LogConfig>,
}

/// Names the log uses for its own actors: no token may take them.
pub const RESERVED_ACTORS: &[&str] = &["system", "local", crate::drill::run::DRILL_ACTOR];

/// The tokens of a configuration, checked: known roles, long enough,
/// names and tokens unique, names that are not the server's own actors.
pub fn tokens(config: &[TokenConfig]) -> anyhow::Result<Tokens> {
    let mut entries = Vec::new();
    let mut names = std::collections::BTreeMap::new();
    let mut secrets = std::collections::BTreeSet::new();
    for (index, token) in config.iter().enumerate() {
        let Some(role) = Role::parse(&token.role) else {
            bail!("token[{index}].role: {:?} is not commander, observer, team:<id> or drill", token.role);
        };
        let name = token.name.trim();
        if name.is_empty() || name.chars().count() > MAX_ID_CHARS || name.chars().any(char::is_control) {
            bail!("token[{index}].name: must be 1 to {MAX_ID_CHARS} characters, none of them control characters");
        }
        if RESERVED_ACTORS.contains(&name) {
            bail!("token[{index}].name: {name:?} is reserved for the server's own actions");
        }
        if let Some(first) = names.insert(name.to_owned(), index) {
            bail!(
                "token[{index}].name: {name:?} is also token[{first}]'s; names must be unique (each is the actor in the log and its own request_id space)"
            );
        }
        if token.token.len() < MIN_TOKEN_CHARS {
            bail!("token[{index}].token: must be at least {MIN_TOKEN_CHARS} characters");
        }
        // Letters, digits and `-._~+/=` (base64 and base64url): it travels
        // in a header and in the board's cookie, where `;`, `,`, `"` and `\`
        // would cut it.
        if !token.token.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/=".contains(&byte)) {
            bail!("token[{index}].token: use letters, digits and -._~+/= only (openssl rand -base64 32 gives one)");
        }
        if token.token.starts_with("REPLACE") {
            bail!("token[{index}].token: still the example's placeholder; generate a secret");
        }
        if !secrets.insert(token.token.clone()) {
            bail!("token[{index}].token: the same token is configured twice");
        }
        entries.push((token.token.clone(), Caller { actor: name.to_owned(), role }));
    }
    Ok(Tokens::new(entries))
}

/// The configured tokens; refuses to expose the server off loopback
/// without both tokens and TLS.
fn access_tokens(config: &ServerConfig, listener: &TcpListener) -> anyhow::Result<(Tokens, SocketAddr)> {
    let address = listener.local_addr().context("reading the listener's address")?;
    let tokens = tokens(&config.tokens)?;
    check_exposure(address, &tokens, config.tls.is_some())?;
    Ok((tokens, address))
}

/// Loopback may be served bare; any other address needs tokens (who may
/// do what) and TLS (so the tokens do not cross the network in clear).
pub fn check_exposure(address: SocketAddr, tokens: &Tokens, tls: bool) -> anyhow::Result<()> {
    if address.ip().is_loopback() {
        return Ok(());
    }
    if tokens.is_empty() {
        bail!("refusing to listen on {address} without access tokens: configure [[token]] or listen on loopback");
    }
    if !tls {
        bail!(
            "refusing to listen on {address} without TLS: tokens would cross the network in clear; configure [tls] (or --tls-cert and --tls-key) or listen on loopback"
        );
    }
    Ok(())
}

/// The TLS settings from the PEM files, read now so a bad file stops the
/// start rather than the first call.
fn tls_settings(tls: &TlsConfig) -> anyhow::Result<ServerTlsConfig> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path).with_context(|| format!("tls.{what}: reading {}", path.display()))
    };
    let identity = Identity::from_pem(read("cert", &tls.cert)?, read("key", &tls.key)?);
    let mut settings = ServerTlsConfig::new().identity(identity).timeout(TLS_HANDSHAKE_WITHIN);
    if let Some(client_ca) = &tls.client_ca {
        settings = settings.client_ca_root(Certificate::from_pem(read("client_ca", client_ca)?));
    }
    Ok(settings)
}

/// The shortest bearer token accepted, in bytes.
pub const MIN_TOKEN_CHARS: usize = 16;
/// How often an idle HTTP/2 connection is pinged.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is dropped.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Most calls and streams open at once on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// Largest block of request headers, in bytes (a token is well under it).
pub const MAX_HEADER_BYTES: u32 = 16 * 1024;
/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// Serves Muster on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight calls finish, and makes every acknowledged
/// change durable before returning.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_http(config, listener, None, clock, shutdown).await
}

/// The services of the API over `handle` (drill runs kept in
/// `drill_store`), with their message limits, not yet guarded: the server
/// puts [`AccessLayer`] around them (and health and reflection beside
/// them); the fuzz targets call them without a socket.
pub fn api_routes(
    handle: &crate::engine::EngineHandle,
    drill_store: Arc<dyn Store>,
    watchers: &crate::grpc::watch::Watchers,
) -> anyhow::Result<tonic::service::RoutesBuilder> {
    // Every service: size limits both ways.
    macro_rules! service {
        ($server:ty, $implementation:expr) => {
            <$server>::new($implementation)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        };
    }
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(service!(
            pb::roster_service_server::RosterServiceServer<_>,
            RosterService::new(handle.clone(), watchers.clone())
        ))
        .add_service(service!(pb::reserve_service_server::ReserveServiceServer<_>, ReserveService::new(handle.clone())))
        .add_service(service!(pb::import_service_server::ImportServiceServer<_>, ImportService::new(handle.clone())))
        .add_service(service!(pb::plan_service_server::PlanServiceServer<_>, PlanService::new(handle.clone())))
        .add_service(service!(
            pb::incident_service_server::IncidentServiceServer<_>,
            IncidentService::new(handle.clone(), watchers.clone())
        ))
        .add_service(service!(pb::audit_service_server::AuditServiceServer<_>, AuditService::new(handle.clone())))
        .add_service(service!(
            pb::export_service_server::ExportServiceServer<_>,
            crate::grpc::export::ExportService::new(handle.clone())
        ))
        .add_service(service!(
            pb::drill_service_server::DrillServiceServer<_>,
            DrillService::new(handle.clone(), drill_store).context("reading the stored drill runs")?
        ));
    Ok(routes)
}

/// [`serve`], with the HTTP side on `http` when given.
pub async fn serve_with_http(
    config: ServerConfig,
    listener: TcpListener,
    http: Option<TcpListener>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    access_tokens(&config, &listener)?;
    let data_dir = config.data_dir.clone();
    let store: Arc<dyn Store> = match &config.log {
        None => {
            let store = tokio::task::spawn_blocking(move || SledStore::open(&data_dir))
                .await
                .context("opening the store")?
                .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
            if store.is_copy()? {
                bail!(
                    "{} is a replica's copy of a replicated log: start musterd with its --log and --stream (what the embedded log appended here would never reach the stream)",
                    config.data_dir.display()
                );
            }
            Arc::new(store)
        }
        Some(log) => {
            let jetstream = log.jetstream()?;
            let stream = jetstream.stream.clone();
            tracing::info!(servers = %jetstream.servers.join(","), %stream, "opening the replicated log");
            Arc::new(
                tokio::task::spawn_blocking(move || crate::store::JetStreamStore::open(&data_dir, &jetstream))
                    .await
                    .context("opening the replicated log")?
                    .with_context(|| {
                        format!("opening stream {stream} (local copy in {})", config.data_dir.display())
                    })?,
            )
        }
    };
    serve_all(config, store, listener, http, clock, shutdown).await
}

/// [`serve`] over a store the caller opened (tests use it to inject faults).
pub async fn serve_store(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_all(config, store, listener, None, clock, shutdown).await
}

/// [`serve_store`], with the HTTP side (board, GeoJSON, metrics) on
/// `http` when given.
pub async fn serve_all(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: TcpListener,
    http: Option<TcpListener>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tokens, address) = access_tokens(&config, &listener)?;
    if let Some(http) = &http {
        let http_address = http.local_addr().context("reading the HTTP listener's address")?;
        if !http_address.ip().is_loopback() {
            bail!(
                "refusing to serve the HTTP side on {http_address}: it has no TLS of its own, so tokens would cross the network in clear; keep --http on loopback (behind a TLS proxy) or turn it off"
            );
        }
    }
    crate::http::metrics::install();
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

    let watchers = crate::grpc::watch::Watchers::default();
    let mut routes = api_routes(&handle, drill_store, &watchers)?;
    let http_task = http.map(|listener| {
        let board = crate::http::router(handle.clone(), tokens.clone(), watchers.clone(), false);
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "serving the board, GeoJSON and metrics over HTTP");
        }
        let mut closing = handle.closing();
        tokio::spawn(crate::http::serve(listener, board, async move {
            let _ = closing.wait_for(|closing| *closing).await;
        }))
    });
    routes.add_service(health_service).add_service(reflection_v1).add_service(reflection_v1alpha);

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

    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls_settings(tls)?).context("configuring TLS")?;
    }
    let serving = builder
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_max_header_list_size(MAX_HEADER_BYTES)
        .layer(
            tower::ServiceBuilder::new().layer(crate::http::metrics::GrpcMetricsLayer).layer(AccessLayer::new(tokens)),
        )
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(crate::listen::incoming(listener), on_shutdown);
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
    if let Some(task) = http_task {
        // The board's streams end as the engine closes; past the grace
        // period the HTTP side is aborted, its connections with it.
        let abort = task.abort_handle();
        match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP side stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "the HTTP side failed"),
            Ok(Ok(Ok(()))) => {}
            Err(_) => abort.abort(),
        }
    }
    tracing::info!(last_sequence = handle.snapshot().last_sequence, "musterd stopped; the log is durable");
    served.context("serving gRPC")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn token(name: &str, role: &str, token: &str) -> TokenConfig {
        TokenConfig { name: name.into(), role: role.into(), token: token.into() }
    }

    fn refusal(config: &[TokenConfig]) -> String {
        super::tokens(config).unwrap_err().to_string()
    }

    #[test]
    fn a_configuration_with_ambiguous_tokens_is_refused() {
        let duty = token("duty", "commander", "duty-token-0123456789");
        assert!(super::tokens(std::slice::from_ref(&duty)).is_ok());
        let same_name = refusal(&[duty.clone(), token("duty", "observer", "other-token-0123456789")]);
        assert!(same_name.contains("token[1].name") && same_name.contains("unique"), "{same_name}");
        let same_token = refusal(&[duty.clone(), token("screen", "observer", "duty-token-0123456789")]);
        assert!(same_token.contains("token[1].token"), "{same_token}");
        assert!(refusal(&[token("system", "commander", "duty-token-0123456789")]).contains("reserved"));
        assert!(refusal(&[token("", "commander", "duty-token-0123456789")]).contains("token[0].name"));
        assert!(refusal(&[token("duty", "commander", "short")]).contains("at least"));
        assert!(refusal(&[token("duty", "commander", "a token with spaces in it")]).contains("letters, digits"));
        assert!(refusal(&[token("duty", "commander", "semicolon;cuts-the-cookie")]).contains("letters, digits"));
        assert!(refusal(&[token("duty", "root", "duty-token-0123456789")]).contains("token[0].role"));
    }

    #[test]
    fn only_loopback_may_be_served_without_tokens_and_tls() {
        let tokens = super::tokens(&[token("duty", "commander", "duty-token-0123456789")]).unwrap();
        let anywhere: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        assert!(check_exposure(loopback, &Tokens::default(), false).is_ok());
        assert!(check_exposure(anywhere, &Tokens::default(), true).unwrap_err().to_string().contains("tokens"));
        assert!(check_exposure(anywhere, &tokens, false).unwrap_err().to_string().contains("TLS"));
        assert!(check_exposure(anywhere, &tokens, true).is_ok());
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let text = include_str!("../../examples/musterd.toml");
        let example: FileConfig = toml::from_str(text).unwrap();
        assert!(
            super::tokens(&example.tokens).unwrap_err().to_string().contains("placeholder"),
            "placeholders refused"
        );
        let filled: FileConfig = toml::from_str(&text.replace("REPLACE-with", "generated")).unwrap();
        assert_eq!(super::tokens(&filled.tokens).unwrap().len(), 5);
        assert!(example.tls.is_some_and(|tls| tls.client_ca.is_some()));
        example.dispatch.validate().unwrap();
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let config = ServerConfig {
            data_dir: PathBuf::from("x"),
            tokens: vec![token("duty", "commander", "duty-token-0123456789")],
            tls: None,
            engine: EngineConfig::default(),
            log: None,
        };
        let printed = format!("{config:?}");
        assert!(printed.contains("duty") && !printed.contains("duty-token"), "{printed}");
    }
}
