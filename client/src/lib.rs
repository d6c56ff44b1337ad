//! The Muster client library: a typed connection to a Muster server, used by
//! the `muster` CLI and the reference for the roster app.
//!
//! It adds the bearer token to every call, makes `request_id`s for safe
//! retries, and retries a mutation with the *same* `request_id` when the
//! link drops, so a weak mobile link never applies a change twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use muster_proto::v1 as pb;
use thiserror::Error;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

pub use muster_proto::v1 as proto;
pub use muster_proto::Timestamp;
/// `grpc.health.v1`, for health checks.
pub use tonic_health::pb as proto_health;

/// Why the client could not connect.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server URL is malformed.
    #[error("invalid server address {url:?}: {source}")]
    Address {
        /// The URL given.
        url: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The token is not valid header text.
    #[error("the token contains characters not allowed in a header")]
    Token,
    /// A TLS file could not be read.
    #[error("reading {path}: {source}")]
    TlsFile {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Plain HTTP/2 where it would be unsafe.
    #[error("refusing {url}: {why}")]
    Insecure {
        /// The URL given.
        url: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The connection failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    header: Option<MetadataValue<Ascii>>,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// The channel every generated client of this library runs over.
pub type AuthChannel = InterceptedService<Channel, Auth>;

/// How to check the server (and show who we are) over TLS: used with
/// `https://` addresses.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// The authority that signed the server's certificate (PEM). Without
    /// one, the system's trusted roots are used.
    pub ca_cert: Option<Vec<u8>>,
    /// A client certificate and its key (PEM), for servers that require
    /// one (`--tls-client-ca`).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the server's certificate must carry, when it is not the
    /// host of the address.
    pub domain: Option<String>,
}

impl Tls {
    /// Reads the PEM files the CLI's `--ca-cert`, `--client-cert` and
    /// `--client-key` name.
    pub fn from_files(
        ca_cert: Option<&std::path::Path>,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Tls, ClientError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| ClientError::TlsFile { path: path.display().to_string(), source })
        };
        Ok(Tls {
            ca_cert: ca_cert.map(read).transpose()?,
            identity: match identity {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            },
            domain: None,
        })
    }

    fn settings(&self) -> ClientTlsConfig {
        let mut settings = ClientTlsConfig::new();
        settings = match &self.ca_cert {
            Some(ca) => settings.ca_certificate(Certificate::from_pem(ca)),
            None => settings.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            settings = settings.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            settings = settings.domain_name(domain.clone());
        }
        settings
    }
}

/// True when `url`'s host is a loopback address (or `localhost`).
fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<tonic::codegen::http::Uri>() else { return false };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A connection to a Muster server.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    auth: Auth,
}

impl Client {
    /// Connects to `url` (for example `http://127.0.0.1:50051`), with an
    /// optional bearer token.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Client, ClientError> {
        Client::connect_with(url, token, None).await
    }

    /// [`Client::connect`] with TLS settings (an `https://` address uses
    /// TLS even without them, trusting the system's roots).
    pub async fn connect_with(url: &str, token: Option<&str>, tls: Option<&Tls>) -> Result<Client, ClientError> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|source| ClientError::Address { url: url.to_owned(), source })?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let secure = url.starts_with("https://");
        if !secure && tls.is_some() {
            return Err(ClientError::Insecure {
                url: url.to_owned(),
                why: "TLS settings were given: use an https:// address",
            });
        }
        if !secure && token.is_some() && !is_loopback(url) {
            return Err(ClientError::Insecure {
                url: url.to_owned(),
                why: "a token would cross the network in clear: use an https:// address",
            });
        }
        let default_tls = Tls::default();
        let tls = tls.or(secure.then_some(&default_tls));
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls.settings())
                .map_err(|source| ClientError::Address { url: url.to_owned(), source })?;
        }
        let channel =
            endpoint.connect().await.map_err(|source| ClientError::Connect { url: url.to_owned(), source })?;
        Client::from_channel(channel, token)
    }

    /// Wraps an existing channel.
    pub fn from_channel(channel: Channel, token: Option<&str>) -> Result<Client, ClientError> {
        let header = token
            .map(|token| {
                let mut header =
                    format!("Bearer {token}").parse::<MetadataValue<Ascii>>().map_err(|_| ClientError::Token)?;
                // Kept out of HPACK's tables and of debug output.
                header.set_sensitive(true);
                Ok(header)
            })
            .transpose()?;
        Ok(Client { channel, auth: Auth { header } })
    }

    fn authed(&self) -> AuthChannel {
        InterceptedService::new(self.channel.clone(), self.auth.clone())
    }

    /// `muster.v1.RosterService`.
    pub fn roster(&self) -> pb::roster_service_client::RosterServiceClient<AuthChannel> {
        pb::roster_service_client::RosterServiceClient::new(self.authed())
    }

    /// `muster.v1.ReserveService`.
    pub fn reserve(&self) -> pb::reserve_service_client::ReserveServiceClient<AuthChannel> {
        pb::reserve_service_client::ReserveServiceClient::new(self.authed())
    }

    /// `muster.v1.ImportService`.
    pub fn imports(&self) -> pb::import_service_client::ImportServiceClient<AuthChannel> {
        pb::import_service_client::ImportServiceClient::new(self.authed())
    }

    /// `muster.v1.PlanService`.
    pub fn plans(&self) -> pb::plan_service_client::PlanServiceClient<AuthChannel> {
        pb::plan_service_client::PlanServiceClient::new(self.authed())
    }

    /// `muster.v1.IncidentService`.
    pub fn incidents(&self) -> pb::incident_service_client::IncidentServiceClient<AuthChannel> {
        pb::incident_service_client::IncidentServiceClient::new(self.authed())
    }

    /// `muster.v1.AuditService`.
    pub fn audit(&self) -> pb::audit_service_client::AuditServiceClient<AuthChannel> {
        pb::audit_service_client::AuditServiceClient::new(self.authed())
    }

    /// `muster.v1.DrillService`.
    pub fn drills(&self) -> pb::drill_service_client::DrillServiceClient<AuthChannel> {
        pb::drill_service_client::DrillServiceClient::new(self.authed())
    }

    /// `muster.v1.ExportService`.
    pub fn exports(&self) -> pb::export_service_client::ExportServiceClient<AuthChannel> {
        pb::export_service_client::ExportServiceClient::new(self.authed())
    }

    /// `grpc.health.v1.Health`.
    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<AuthChannel> {
        tonic_health::pb::health_client::HealthClient::new(self.authed())
    }
}

/// A fresh `request_id`: unique per process and call (time, process id and a
/// counter), within the API's `[A-Za-z0-9._-]{1,64}`.
pub fn new_request_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
    format!("{prefix}-{nanos:x}-{:x}-{count:x}", std::process::id())
}

/// True for failures where the request may or may not have been applied and
/// a retry with the same `request_id` is safe and useful.
/// `RESOURCE_EXHAUSTED` is retried only when the server says so with a
/// `RetryInfo` detail (its write queue was full), not for missing stock.
pub fn is_retryable(status: &Status) -> bool {
    use tonic_types::StatusExt;
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => true,
        Code::ResourceExhausted => status.get_details_retry_info().is_some(),
        _ => false,
    }
}

/// How to retry a mutation.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, first_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5) }
    }
}

/// Runs `call` until it succeeds, fails for good, or the attempts run out.
/// The caller builds every attempt with the same `request_id`, so the server
/// applies the change at most once and every attempt gets the first answer.
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let mut backoff = policy.first_backoff;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(status) if attempt < policy.attempts && is_retryable(&status) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(policy.max_backoff);
                attempt += 1;
            }
            Err(status) => return Err(status),
        }
    }
}

/// Fetches every page of a list call: `fetch(page_token)` returns one page
/// and the next token; stops at an empty token or after `limit` items.
pub async fn all_pages<T, F, Fut>(limit: Option<usize>, mut fetch: F) -> Result<Vec<T>, Status>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (page, next) = fetch(page_token).await?;
        items.extend(page);
        page_token = next;
        if page_token.is_empty() || limit.is_some_and(|limit| items.len() >= limit) {
            break;
        }
    }
    if let Some(limit) = limit {
        items.truncate(limit);
    }
    Ok(items)
}

/// Calls `$client.$method($request)` with [`with_retry`] and the default
/// policy, cloning the client and the request for each attempt (the same
/// `request_id` every time), and returns the response's message.
#[macro_export]
macro_rules! retry {
    ($client:expr, $method:ident, $request:expr) => {{
        let request = $request;
        $crate::with_retry($crate::RetryPolicy::default(), || {
            let mut client = $client.clone();
            let request = request.clone();
            async move { client.$method(request).await }
        })
        .await
        .map(tonic::Response::into_inner)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_or_tls_settings_never_go_out_over_plain_http_off_loopback() {
        let refused = Client::connect_with("http://10.1.2.3:50051", Some("secret-token-0123456789"), None).await;
        assert!(matches!(refused, Err(ClientError::Insecure { .. })), "{refused:?}");
        let tls = Tls::default();
        let refused = Client::connect_with("http://127.0.0.1:50051", None, Some(&tls)).await;
        assert!(matches!(refused, Err(ClientError::Insecure { .. })), "TLS settings want https://");
        assert!(
            is_loopback("http://127.0.0.1:50051") && is_loopback("http://[::1]:1") && is_loopback("http://localhost:2")
        );
        assert!(!is_loopback("http://10.1.2.3:50051") && !is_loopback("http://muster.city.example:50051"));
    }

    #[test]
    fn request_ids_are_unique_and_valid() {
        let first = new_request_id("cli");
        let second = new_request_id("cli");
        assert_ne!(first, second);
        assert!(first.len() <= 64, "{first}");
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{first}");
    }

    #[tokio::test]
    async fn retries_stop_at_a_permanent_error() {
        let mut calls = 0;
        let result: Result<(), Status> =
            with_retry(RetryPolicy { attempts: 4, first_backoff: Duration::ZERO, ..RetryPolicy::default() }, || {
                calls += 1;
                let status =
                    if calls < 3 { Status::unavailable("link down") } else { Status::not_found("no such team") };
                async move { Err(status) }
            })
            .await;
        assert_eq!(result.map_err(|status| status.code()), Err(Code::NotFound));
        assert_eq!(calls, 3);
    }
}
