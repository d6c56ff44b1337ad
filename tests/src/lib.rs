//! The end-to-end test harness: starts a real server in-process on
//! `127.0.0.1:0` with its own data directory and a clock the test moves,
//! and hands out real clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use muster_client::Client;
use muster_server::engine::{EngineConfig, ManualClock};
use muster_server::server::{self, ServerConfig, TokenConfig};
use muster_server::store::{SledStore, Store};
use tokio::sync::oneshot;

pub use muster_server::domain::Timestamp as DomainTime;

/// 2026-07-01T06:00:00Z, the harness clock's start.
pub const START_SECONDS: i64 = 1_782_885_600;

/// A server running in this process.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The clock the server's engine reads.
    pub clock: ManualClock,
    /// Where its log lives.
    pub data_dir: PathBuf,
    /// How the harness's clients connect over TLS, when the server serves it.
    pub client_tls: Option<muster_client::Tls>,
    /// `http://127.0.0.1:PORT` of the HTTP side, when it serves one.
    pub http_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _temp: Option<tempfile::TempDir>,
}

/// How to start a test server.
#[derive(Clone, Default)]
pub struct Options {
    /// Access tokens (none: unauthenticated loopback).
    pub tokens: Vec<TokenConfig>,
    /// Writer tunables.
    pub engine: Option<EngineConfig>,
    /// A store to use instead of sled in the data directory.
    pub store: Option<Arc<dyn Store>>,
    /// Serve TLS with these files; the harness's own clients then connect
    /// with `client_tls`.
    pub tls: Option<server::TlsConfig>,
    /// How the harness's clients check a TLS server.
    pub client_tls: Option<muster_client::Tls>,
    /// Serve the HTTP side (board, GeoJSON, metrics) too, on its own port.
    pub http: bool,
}

impl TestServer {
    /// A server on a fresh data directory.
    pub async fn start() -> TestServer {
        Self::start_with(Options::default()).await
    }

    /// A server with options, on a fresh data directory.
    pub async fn start_with(options: Options) -> TestServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server =
            Self::start_in(&data_dir, options, ManualClock::new(DomainTime::from_unix_seconds(START_SECONDS))).await;
        server._temp = Some(temp);
        server
    }

    /// A server on `data_dir` (which may hold a log already) with `clock`.
    pub async fn start_in(data_dir: &Path, options: Options, clock: ManualClock) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        let http = if options.http {
            Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the HTTP side"))
        } else {
            None
        };
        let http_url = http.as_ref().map(|listener| format!("http://{}", listener.local_addr().expect("address")));
        let url = format!("{scheme}://{}", listener.local_addr().expect("address"));
        let config = ServerConfig {
            data_dir: data_dir.to_owned(),
            tokens: options.tokens,
            tls: options.tls,
            engine: options.engine.unwrap_or_default(),
            log: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let store: Arc<dyn Store> = match options.store {
            Some(store) => store,
            None => Arc::new(SledStore::open(data_dir).expect("open store")),
        };
        let engine_clock = Arc::new(clock.clone());
        let task = tokio::spawn(server::serve_all(config, store, listener, http, engine_clock, shutdown));
        let server = TestServer {
            url,
            clock,
            data_dir: data_dir.to_owned(),
            client_tls: options.client_tls,
            http_url,
            stop: Some(stop),
            task: Some(task),
            _temp: None,
        };
        server.wait_until_serving().await;
        server
    }

    async fn wait_until_serving(&self) {
        for _ in 0..200 {
            if let Ok(client) = Client::connect_with(&self.url, None, self.client_tls.as_ref()).await {
                let check = client.health().check(tonic_health_request()).await;
                if check.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the test server did not come up at {}", self.url);
    }

    /// A client without a token.
    pub async fn client(&self) -> Client {
        Client::connect_with(&self.url, None, self.client_tls.as_ref()).await.expect("connect")
    }

    /// A bare gRPC channel to the server (plain HTTP/2), for calls the
    /// client library does not make: raw bytes, health, reflection.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone()).expect("a URL").connect().await.expect("connect")
    }

    /// A client with a bearer token.
    pub async fn client_with_token(&self, token: &str) -> Client {
        Client::connect_with(&self.url, Some(token), self.client_tls.as_ref()).await.expect("connect")
    }

    /// Stops the server gracefully and waits; keeps the data directory.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.shutdown().await;
        self._temp.take()
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
    }

    /// Stops the server and starts a new one on the same data directory
    /// with the same clock, as after a restart.
    pub async fn restart(mut self) -> TestServer {
        self.shutdown().await;
        let temp = self._temp.take();
        let data_dir = self.data_dir.clone();
        // sled releases its file lock when the last handle drops; give the
        // stopped server's blocking tasks a moment to let go.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut server = Self::start_in(&data_dir, Options::default(), self.clock.clone()).await;
        server._temp = temp;
        server
    }
}

fn tonic_health_request() -> muster_client::proto_health::HealthCheckRequest {
    muster_client::proto_health::HealthCheckRequest { service: String::new() }
}
