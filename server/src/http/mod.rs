//! The HTTP side of `musterd` (`--http ADDR`, default `127.0.0.1:8080`,
//! `--http off`): read-only, for people and for other systems.
//!
//! - `/`: the situation board, one page whose assets are all in the
//!   binary (`assets/`): it works with the network unplugged.
//! - `/situation.json`: the picture the board draws; `/events`: what changed
//!   since, as server-sent events fed by the engine's own broadcast (the one
//!   gRPC watchers use), at most a few a second, never a poll.
//! - `/incidents/ID`: one incident, its needs, assignments, level history
//!   and timeline, rendered on the server (`pages.rs`).
//! - `/geo/situation.geojson` and one layer each (`teams`, `depots`,
//!   `incidents`, `zones`, `assignments`), `?incident=ID` to narrow.
//! - `/metrics`: Prometheus text exposition (`metrics.rs`).
//!
//! With tokens configured every page and data path (not the sign-in page
//! and the board's own script and styles) needs an observer or
//! commander token (`Rule::ReadAll`: the board shows every team's
//! assignments), as a bearer header (scrapers, scripts), or signed in
//! (people): `/signin` checks the token once and sets an HttpOnly cookie
//! holding a random session id, never the token and never in a URL (which
//! would end up in logs and browser history); `/signout` ends the session.

pub mod metrics;
pub mod pages;
pub mod view;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use crate::engine::{EngineError, EngineHandle};
use crate::grpc::auth::{digest, Caller, Rule, Tokens};

/// The default address of the HTTP side: loopback only.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
/// The cookie that carries a signed-in person's session id.
pub const SESSION_COOKIE: &str = "muster_session";
/// How long a sign-in lasts, in seconds (a long shift).
pub const SESSION_SECONDS: u64 = 14 * 60 * 60;
/// Most live streams (`/events`) open at once.
pub const MAX_EVENT_STREAMS: usize = 256;
/// The shortest time between two updates a board receives: changes in
/// between are merged into one.
pub const EVENT_EVERY: Duration = Duration::from_millis(250);

const BOARD_HTML: &str = include_str!("assets/board.html");
const BOARD_JS: &str = include_str!("assets/board.js");
const BOARD_CSS: &str = include_str!("assets/board.css");
const SIGNIN_HTML: &str = include_str!("assets/signin.html");

/// Most people signed in at once.
pub const MAX_SESSIONS: usize = 10_000;

type SessionMap = std::collections::HashMap<[u8; 32], (Caller, std::time::Instant)>;

/// Signed-in people: a random session id (in the cookie) for each, never
/// the token itself, so signing out ends the session on the server and a
/// copied cookie dies with it. Kept in memory: a restart signs everyone out.
#[derive(Default)]
struct Sessions {
    /// By the SHA-256 of the session id.
    by_digest: std::sync::Mutex<SessionMap>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionMap> {
        self.by_digest.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for `caller`: its id, or `None` when full or when the
    /// system has no randomness to give.
    fn open(&self, caller: Caller) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let id = hex::encode(bytes);
        let now = std::time::Instant::now();
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, (_, expires)| *expires > now);
        }
        if sessions.len() >= MAX_SESSIONS {
            return None;
        }
        sessions.insert(digest(&id), (caller, now + Duration::from_secs(SESSION_SECONDS)));
        Some(id)
    }

    fn caller(&self, id: &str) -> Option<Caller> {
        let mut sessions = self.lock();
        let digest = digest(id);
        match sessions.get(&digest) {
            Some((caller, expires)) if *expires > std::time::Instant::now() => Some(caller.clone()),
            Some(_) => {
                sessions.remove(&digest);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }
}

/// What every handler shares.
#[derive(Clone)]
struct Shared {
    engine: EngineHandle,
    tokens: Tokens,
    sessions: Arc<Sessions>,
    streams: Arc<Semaphore>,
    watchers: crate::grpc::watch::Watchers,
    secure_cookie: bool,
}

/// The HTTP side's routes over `engine`. `secure_cookie` marks the sign-in
/// cookie `Secure` (set it when the board is reached over TLS).
pub fn router(
    engine: EngineHandle,
    tokens: Tokens,
    watchers: crate::grpc::watch::Watchers,
    secure_cookie: bool,
) -> Router {
    let shared = Shared {
        engine,
        tokens,
        sessions: Arc::default(),
        streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
        watchers,
        secure_cookie,
    };
    Router::new()
        .route("/", get(board))
        .route("/board.js", get(|| async { asset("text/javascript; charset=utf-8", BOARD_JS) }))
        .route("/board.css", get(|| async { asset("text/css; charset=utf-8", BOARD_CSS) }))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", axum::routing::post(signout))
        .route("/situation.json", get(situation_json))
        .route("/events", get(events))
        .route("/incidents/{id}", get(incident_page))
        .route("/geo/{file}", get(geo))
        .route("/metrics", get(metrics_text))
        .with_state(shared)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Why a request is not let in.
enum Refusal {
    /// No (known) token: people go to the sign-in page, programs get 401.
    Unauthenticated,
    /// A token whose role may not read (a drill token).
    Forbidden(String),
}

impl Shared {
    /// The caller of a request, from its bearer header or its cookie.
    fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        if self.tokens.is_empty() {
            // Open on loopback: only to requests addressed to loopback, so a
            // web page that rebinds its own name to 127.0.0.1 cannot read it.
            if !loopback_host(headers) {
                return Err(Refusal::Forbidden(
                    "with no tokens configured the board answers only requests to localhost or a loopback address"
                        .to_owned(),
                ));
            }
            return Ok(Caller { actor: "local".to_owned(), role: crate::grpc::auth::Role::Commander });
        }
        let caller = if headers.contains_key(header::AUTHORIZATION) {
            self.tokens.authenticate(headers).map_err(|_| Refusal::Unauthenticated)?
        } else {
            let session = cookie(headers, SESSION_COOKIE).ok_or(Refusal::Unauthenticated)?;
            self.sessions.caller(&session).ok_or(Refusal::Unauthenticated)?
        };
        if Rule::ReadAll.admits(&caller.role) {
            Ok(caller)
        } else {
            Err(Refusal::Forbidden(format!("{} ({}) may not read the board", caller.actor, caller.role)))
        }
    }

    /// For a page people open: the sign-in page when not signed in.
    fn page(&self, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
        self.caller(headers).map_err(|refusal| {
            Box::new(match refusal {
                Refusal::Unauthenticated => Redirect::to("/signin").into_response(),
                Refusal::Forbidden(why) => (StatusCode::FORBIDDEN, why).into_response(),
            })
        })
    }

    /// For what programs read: 401 or 403.
    fn api(&self, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
        self.caller(headers).map_err(|refusal| {
            Box::new(match refusal {
                Refusal::Unauthenticated => {
                    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a token is required\n")
                        .into_response()
                }
                Refusal::Forbidden(why) => (StatusCode::FORBIDDEN, why).into_response(),
            })
        })
    }

    fn situation(&self) -> view::Situation {
        view::live(&self.engine, &self.engine.snapshot())
    }
}

/// True when the request's `Host` names loopback (`localhost`, 127.0.0.1, [::1]).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|value| value.to_str().ok()) else { return false };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// True when a form post comes from this board's own pages: its `Origin`
/// (browsers send it on every POST) names the host the request went to.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    match (headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()), host) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
    }
}

/// The value of cookie `name`, if the request carries it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    })
}

async fn board(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    match shared.page(&headers) {
        Ok(_) => ([(header::CACHE_CONTROL, "no-cache")], Html(BOARD_HTML)).into_response(),
        Err(refused) => *refused,
    }
}

async fn signin_page() -> Html<&'static str> {
    Html(SIGNIN_HTML)
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn signin(Extract(shared): Extract<Shared>, headers: HeaderMap, Form(form): Form<SignIn>) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "sign in from the board's own page\n").into_response();
    }
    let token = form.token.trim();
    let caller = match shared.tokens.authenticate_token(token) {
        Ok(caller) if Rule::ReadAll.admits(&caller.role) => caller,
        Ok(caller) => {
            return (StatusCode::FORBIDDEN, format!("{} ({}) may not read the board", caller.actor, caller.role))
                .into_response()
        }
        Err(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(SIGNIN_HTML.replace("<!--error-->", "<p class=\"error\">Unknown token.</p>")),
            )
                .into_response()
        }
    };
    let actor = caller.actor.clone();
    let Some(session) = shared.sessions.open(caller) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many people are signed in; retry later\n").into_response();
    };
    tracing::info!(%actor, "signed in to the board");
    let secure = if shared.secure_cookie { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECONDS}{secure}");
    match HeaderValue::from_str(&cookie) {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "the token is not valid header text").into_response(),
    }
}

async fn signout(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    if let Some(session) = cookie(&headers, SESSION_COOKIE) {
        shared.sessions.close(&session);
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    match HeaderValue::from_str(&cookie) {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/signin")).into_response(),
        Err(_) => Redirect::to("/signin").into_response(),
    }
}

async fn situation_json(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared.api(&headers) {
        return *refused;
    }
    ([(header::CACHE_CONTROL, "no-cache")], axum::Json(shared.situation())).into_response()
}

/// What one update of `/events` carries: the teams that changed, and
/// whether anything else did (the board then fetches the picture again).
#[derive(serde::Serialize)]
struct Update {
    sequence: u64,
    teams: Vec<view::TeamView>,
    refresh: bool,
}

async fn events(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared.api(&headers) {
        return *refused;
    }
    let Ok(slot) = Arc::clone(&shared.streams).try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live boards; retry shortly\n").into_response();
    };
    let mut changes = shared.engine.subscribe();
    let mut closing = shared.engine.closing();
    let (sender, receiver) = mpsc::channel::<Result<SseEvent, Infallible>>(16);
    let engine = shared.engine.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let stale_after = engine.dispatch_settings().stale_after_seconds;
        loop {
            // Wait for a change, then take every other one already there.
            let mut teams = std::collections::BTreeSet::new();
            let mut refresh = false;
            let received = tokio::select! {
                () = sender.closed() => return,
                _ = closing.wait_for(|closing| *closing) => return,
                received = changes.recv() => received,
            };
            match received {
                Ok(committed) => refresh |= take(&committed, &mut teams),
                Err(broadcast::error::RecvError::Lagged(_)) => refresh = true,
                Err(broadcast::error::RecvError::Closed) => return,
            }
            tokio::time::sleep(EVENT_EVERY).await;
            loop {
                match changes.try_recv() {
                    Ok(committed) => refresh |= take(&committed, &mut teams),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => refresh = true,
                    Err(_) => break,
                }
            }
            let state = engine.snapshot();
            let now = engine.now();
            let update = Update {
                sequence: state.last_sequence,
                teams: teams
                    .iter()
                    .filter_map(|id| state.teams.get(id))
                    .map(|team| view::team_view(team, now, stale_after))
                    .collect(),
                refresh,
            };
            let Ok(event) = SseEvent::default().event("update").json_data(&update) else { continue };
            tokio::select! {
                _ = closing.wait_for(|closing| *closing) => return,
                sent = sender.send(Ok(event)) => if sent.is_err() { return },
            }
        }
    });
    Sse::new(ReceiverStream::new(receiver))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

async fn incident_page(Extract(shared): Extract<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = shared.page(&headers) {
        return *refused;
    }
    let engine = shared.engine.clone();
    let rendered = shared.engine.heavy("rendering an incident page", move || pages::incident_page(&engine, &id)).await;
    match rendered {
        Err(EngineError::PastReadsBusy) => {
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "too many reports at once; retry shortly\n")
                .into_response()
        }
        Ok(Ok(html)) => ([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Ok(Err(pages::PageError::NotFound(what))) => {
            (StatusCode::NOT_FOUND, Html(pages::not_found(&what))).into_response()
        }
        Ok(Err(pages::PageError::Store(error))) => {
            tracing::error!(%error, "reading the log for an incident page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the log could not be read\n").into_response()
        }
        Err(error) => {
            tracing::error!(%error, "rendering an incident page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

#[derive(Deserialize)]
struct GeoQuery {
    incident: Option<String>,
}

async fn geo(
    Extract(shared): Extract<Shared>,
    headers: HeaderMap,
    Path(file): Path<String>,
    Query(query): Query<GeoQuery>,
) -> Response {
    if let Err(refused) = shared.api(&headers) {
        return *refused;
    }
    let Some(layer) = file.strip_suffix(".geojson").and_then(view::Layer::parse) else {
        return (StatusCode::NOT_FOUND, "layers: situation, teams, depots, incidents, zones, assignments (.geojson)\n")
            .into_response();
    };
    let state = shared.engine.snapshot();
    if let Some(incident) = &query.incident {
        if !view::is_open_incident(&state, incident) {
            return (StatusCode::NOT_FOUND, format!("no open incident {incident:?}\n")).into_response();
        }
    }
    let situation = view::live(&shared.engine, &state);
    let collection = view::geojson(&situation, layer, query.incident.as_deref());
    ([(header::CONTENT_TYPE, "application/geo+json")], collection.to_string()).into_response()
}

async fn metrics_text(Extract(shared): Extract<Shared>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared.api(&headers) {
        return *refused;
    }
    let text = metrics::render(&shared.engine.snapshot(), shared.watchers.open());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Adds the teams `committed` changed to `teams`; true when it changed
/// anything else (incidents, needs, assignments, stock, zones, plans).
fn take(committed: &crate::engine::Committed, teams: &mut std::collections::BTreeSet<String>) -> bool {
    let mut other = false;
    for record in &committed.records {
        let touched = record.event.touched();
        other |= touched.team_ids.is_empty() || !touched.incident_ids.is_empty();
        teams.extend(touched.team_ids);
    }
    other
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
