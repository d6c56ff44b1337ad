//! Access: bearer tokens, roles, and the one table of who may call what
//! (`api.md`, "Access"; `docs/api.md`, "Access").
//!
//! [`RULES`] names every method of the API with the [`Rule`] that guards it.
//! [`AccessLayer`] wraps the whole server: it authenticates the
//! `authorization` header, looks the method up in the table, refuses what
//! the caller's role may never do, and attaches the [`Caller`] to the
//! request. A method missing from the table is refused, so a new method
//! cannot go unguarded. Three rules also depend on the record a call is
//! about (whose team, whose assignment); their handlers finish the check
//! with [`Caller::acts_for`], [`Caller::reads_for`] or [`Caller::commands`],
//! and the table says which.
//!
//! The actor of every event is the token's configured name, never anything
//! the client sends. With no tokens configured every call is the local
//! commander, and the server refuses to listen anywhere but loopback.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Commander,
    /// Reads and watches.
    Observer,
    /// Reads, its own `ReportStatus`, `WatchAssignments` and assignments.
    Team(String),
    /// `DrillService` only.
    Drill,
}

impl Role {
    /// Parses `commander`, `observer`, `team:<id>` or `drill`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "commander" => Some(Role::Commander),
            "observer" => Some(Role::Observer),
            "drill" => Some(Role::Drill),
            other => other
                .strip_prefix("team:")
                .filter(|id| crate::domain::validate::id("role", id).is_ok())
                .map(|id| Role::Team(id.to_owned())),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Commander => f.write_str("commander"),
            Role::Observer => f.write_str("observer"),
            Role::Team(id) => write!(f, "team:{id}"),
            Role::Drill => f.write_str("drill"),
        }
    }
}

/// Who is calling: the name the log records and the role that limits them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's configured name, recorded as the actor of every event
    /// the call causes (and the key space of its `request_id`s).
    pub actor: String,
    /// What the caller may do.
    pub role: Role,
}

/// What guards one method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// No token needed: health checks, for load balancers and probes.
    Open,
    /// Any valid token: server reflection.
    AnyToken,
    /// Reads and watches: commander, observer, team.
    Read,
    /// Reads that show every team's assignments (the incident stream, the
    /// audit log, exports, dry-run proposals, the board): commander and
    /// observer. A team token sees only its own assignments.
    ReadAll,
    /// Changes: commander only.
    Command,
    /// The drill service: drill, commander.
    Drill,
    /// A team's own change (`ReportStatus`): commander, or the team the
    /// request names (`team_id`), checked by [`Caller::acts_for`].
    OwnTeam,
    /// A read of one team's assignments: commander, observer, or the team
    /// the request names (`team_id`), checked by [`Caller::reads_for`].
    OwnTeamRead,
    /// A change to an assignment (`UpdateAssignment`): commander, or the
    /// team that holds it, checked by [`Caller::acts_for`] on its team.
    OwnAssignment,
    /// `Dispatch`: a dry run is a read of every team's proposals (commander,
    /// observer), a real one a command, checked by [`Caller::commands`].
    ReadIfDryRun,
}

impl Rule {
    /// Whether `role` may call a method under this rule at all. For the
    /// record-scoped rules the handler then checks the record.
    pub fn admits(self, role: &Role) -> bool {
        match self {
            Rule::Open | Rule::AnyToken => true,
            Rule::Read | Rule::OwnTeamRead => matches!(role, Role::Commander | Role::Observer | Role::Team(_)),
            Rule::ReadAll | Rule::ReadIfDryRun => matches!(role, Role::Commander | Role::Observer),
            Rule::Command => matches!(role, Role::Commander),
            Rule::Drill => matches!(role, Role::Commander | Role::Drill),
            Rule::OwnTeam | Rule::OwnAssignment => matches!(role, Role::Commander | Role::Team(_)),
        }
    }
}

/// Every method the server serves, by gRPC path, and what guards it. A test
/// checks it against the compiled descriptor set, so it names every method
/// of every service and nothing else.
pub const RULES: &[(&str, Rule)] = &[
    ("/grpc.health.v1.Health/Check", Rule::Open),
    ("/grpc.health.v1.Health/Watch", Rule::Open),
    ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Rule::AnyToken),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Rule::AnyToken),
    ("/muster.v1.RosterService/RegisterTeam", Rule::Command),
    ("/muster.v1.RosterService/GetTeam", Rule::Read),
    ("/muster.v1.RosterService/ListTeams", Rule::Read),
    ("/muster.v1.RosterService/UpdateTeam", Rule::Command),
    ("/muster.v1.RosterService/ReportStatus", Rule::OwnTeam),
    ("/muster.v1.RosterService/WatchTeams", Rule::Read),
    ("/muster.v1.ReserveService/DefineItem", Rule::Command),
    ("/muster.v1.ReserveService/RegisterDepot", Rule::Command),
    ("/muster.v1.ReserveService/AdjustStock", Rule::Command),
    ("/muster.v1.ReserveService/SetMinReserve", Rule::Command),
    ("/muster.v1.ReserveService/TransferStock", Rule::Command),
    ("/muster.v1.ReserveService/GetStock", Rule::Read),
    ("/muster.v1.ReserveService/ListStock", Rule::Read),
    ("/muster.v1.ReserveService/ListLedger", Rule::Read),
    ("/muster.v1.ReserveService/ListItems", Rule::Read),
    ("/muster.v1.ReserveService/ListDepots", Rule::Read),
    ("/muster.v1.ImportService/Import", Rule::Command),
    ("/muster.v1.PlanService/PutPlan", Rule::Command),
    ("/muster.v1.PlanService/GetPlan", Rule::Read),
    ("/muster.v1.PlanService/ListPlans", Rule::Read),
    ("/muster.v1.IncidentService/DeclareIncident", Rule::Command),
    ("/muster.v1.IncidentService/GetIncident", Rule::Read),
    ("/muster.v1.IncidentService/ListIncidents", Rule::Read),
    ("/muster.v1.IncidentService/UpdateIncident", Rule::Command),
    ("/muster.v1.IncidentService/CloseIncident", Rule::Command),
    ("/muster.v1.IncidentService/RequestResources", Rule::Command),
    ("/muster.v1.IncidentService/Dispatch", Rule::ReadIfDryRun),
    ("/muster.v1.IncidentService/AssignResource", Rule::Command),
    ("/muster.v1.IncidentService/ListAssignments", Rule::OwnTeamRead),
    ("/muster.v1.IncidentService/UpdateAssignment", Rule::OwnAssignment),
    ("/muster.v1.IncidentService/WatchIncidents", Rule::ReadAll),
    ("/muster.v1.IncidentService/WatchAssignments", Rule::OwnTeamRead),
    ("/muster.v1.IncidentService/SetZone", Rule::Command),
    ("/muster.v1.IncidentService/ClearZone", Rule::Command),
    ("/muster.v1.IncidentService/ListZones", Rule::Read),
    ("/muster.v1.AuditService/ListEvents", Rule::ReadAll),
    ("/muster.v1.AuditService/GetDigest", Rule::Read),
    ("/muster.v1.ExportService/IncidentReport", Rule::ReadAll),
    ("/muster.v1.ExportService/SituationGeoJson", Rule::ReadAll),
    ("/muster.v1.DrillService/RunDrill", Rule::Drill),
    ("/muster.v1.DrillService/GetDrillReport", Rule::Drill),
    ("/muster.v1.DrillService/ReplayDrill", Rule::Drill),
    ("/muster.v1.DrillService/ListDrillRuns", Rule::Drill),
    ("/muster.v1.DrillService/ExportIncidentAsDrill", Rule::Drill),
    ("/muster.v1.DrillService/RenderDrillReport", Rule::Drill),
];

/// Which way a method streams, as its descriptor says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodShape {
    /// The client sends a stream of requests.
    pub client_streaming: bool,
    /// The server answers with a stream.
    pub server_streaming: bool,
}

/// Every method the server serves, by gRPC path, with its shape: read once
/// from the compiled descriptor sets of its services, health and reflection.
fn method_shapes() -> &'static std::collections::BTreeMap<String, MethodShape> {
    static SHAPES: std::sync::OnceLock<std::collections::BTreeMap<String, MethodShape>> = std::sync::OnceLock::new();
    SHAPES.get_or_init(|| {
        use prost::Message as _;
        let mut shapes = std::collections::BTreeMap::new();
        for set in [
            muster_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            // Compiled into the binary: a set that does not decode is a build bug.
            let Ok(files) = prost_types::FileDescriptorSet::decode(set) else { continue };
            for file in files.file {
                for service in &file.service {
                    for method in &service.method {
                        let shape = MethodShape {
                            client_streaming: method.client_streaming(),
                            server_streaming: method.server_streaming(),
                        };
                        shapes.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()), shape);
                    }
                }
            }
        }
        shapes
    })
}

/// Every method the server serves, as gRPC paths (what tests hold
/// [`RULES`] and the access matrix to).
pub fn served_methods() -> std::collections::BTreeSet<String> {
    method_shapes().keys().cloned().collect()
}

/// How the method at `path` streams, if the server serves it.
pub fn method_shape(path: &str) -> Option<MethodShape> {
    method_shapes().get(path).copied()
}

/// The rule for a gRPC path, if the server serves it.
pub fn rule_for(path: &str) -> Option<Rule> {
    RULES.iter().find(|(method, _)| *method == path).map(|(_, rule)| *rule)
}

/// `path` as the table holds it, when the server serves it: a label that
/// costs no allocation and that a client cannot invent.
pub fn served_path(path: &str) -> Option<&'static str> {
    RULES.iter().find(|(method, _)| *method == path).map(|(method, _)| *method)
}

impl Caller {
    /// `PERMISSION_DENIED`: this caller may not do `what`.
    pub(crate) fn denied(&self, what: impl std::fmt::Display) -> Status {
        let message = format!("{} ({}) may not {what}", self.actor, self.role);
        Status::permission_denied(super::status::bounded_message(&message))
    }

    /// For [`Rule::OwnTeam`] and [`Rule::OwnAssignment`]: a commander, or
    /// the team itself.
    pub fn acts_for(&self, team_id: &str) -> Result<(), Status> {
        match &self.role {
            Role::Commander => Ok(()),
            Role::Team(own) if own == team_id => Ok(()),
            _ => Err(self.denied(format_args!("act for team {team_id:?}"))),
        }
    }

    /// For [`Rule::OwnTeamRead`]: commanders and observers read any team;
    /// a team token reads only its own, and must name it (`team_id`).
    pub fn reads_for(&self, team_id: &str) -> Result<(), Status> {
        match &self.role {
            Role::Commander | Role::Observer => Ok(()),
            Role::Team(own) if own == team_id => Ok(()),
            Role::Team(own) if team_id.is_empty() => {
                Err(self.denied(format_args!("read every team's assignments: set team_id to {own:?}")))
            }
            _ => Err(self.denied(format_args!("read team {team_id:?}'s assignments"))),
        }
    }

    /// For [`Rule::ReadIfDryRun`] when the call is not a dry run.
    pub fn commands(&self) -> Result<(), Status> {
        match self.role {
            Role::Commander => Ok(()),
            _ => Err(self.denied("change the picture: only a commander may")),
        }
    }
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    /// SHA-256 of each token, with who holds it. Only digests are kept:
    /// comparing digests of equal length in constant time tells a timing
    /// observer nothing about how much of a guess was right.
    entries: Arc<Vec<([u8; 32], Caller)>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens, nor their digests.
        f.debug_list().entries(self.entries.iter().map(|(_, caller)| &caller.actor)).finish()
    }
}

impl Tokens {
    /// Tokens from configuration: `(token, caller)`. The configuration's
    /// checks (unique names and tokens) are the caller's.
    pub fn new(entries: impl IntoIterator<Item = (String, Caller)>) -> Self {
        let entries = entries.into_iter().map(|(token, caller)| (digest(&token), caller)).collect();
        Tokens { entries: Arc::new(entries) }
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no token is configured (loopback-only, unauthenticated mode).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Who the `authorization` header says is calling.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, Status> {
        if self.entries.is_empty() {
            return Ok(Caller { actor: "local".to_owned(), role: Role::Commander });
        }
        let header = headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))?;
        self.authenticate_token(token)
    }

    /// Who holds `token` (from the board's sign-in cookie, say).
    pub fn authenticate_token(&self, token: &str) -> Result<Caller, Status> {
        if self.entries.is_empty() {
            return Ok(Caller { actor: "local".to_owned(), role: Role::Commander });
        }
        let presented = digest(token.trim());
        // Every entry is compared, whatever matched first.
        let mut found = None;
        for (known, caller) in self.entries.iter() {
            if bool::from(known.ct_eq(&presented)) {
                found = Some(caller);
            }
        }
        found.cloned().ok_or_else(|| Status::unauthenticated("unknown token"))
    }

    /// The access decision for one call: the caller, or why not.
    fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Option<Caller>, Status> {
        let Some(rule) = rule_for(path) else {
            return Err(Status::unimplemented(format!("{path} is not a method of this server")));
        };
        if rule == Rule::Open {
            return Ok(None);
        }
        let caller = self.authenticate(headers)?;
        if rule.admits(&caller.role) {
            Ok(Some(caller))
        } else {
            Err(caller.denied(format_args!("call {path}")))
        }
    }
}

/// The SHA-256 of a secret (a token, a board session id): what is kept in
/// memory and compared, never the secret itself.
pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The tower layer that enforces [`RULES`] on every call.
#[derive(Clone, Debug)]
pub struct AccessLayer {
    tokens: Tokens,
}

impl AccessLayer {
    /// Guards a server with `tokens`.
    pub fn new(tokens: Tokens) -> Self {
        AccessLayer { tokens }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessService { inner, tokens: self.tokens.clone() }
    }
}

/// [`AccessLayer`]'s service.
#[derive(Clone, Debug)]
pub struct AccessService<S> {
    inner: S,
    tokens: Tokens,
}

impl<S, B, R> tower::Service<http::Request<B>> for AccessService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.tokens.admit(request.uri().path(), request.headers()) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                let answer = self.inner.call(request);
                Box::pin(async move { answer.await.map(client_faults) })
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

/// tonic answers a request it cannot decode with `INTERNAL`, and one over
/// the message limit with `OUT_OF_RANGE`, following gRPC's conventions for
/// libraries. Muster's contract (`api.md`, "Errors") calls both the
/// client's `INVALID_ARGUMENT`: an `INTERNAL` must mean a fault of the
/// server, worth waking an operator for, and garbage from a client is not.
fn client_faults<R: Default>(response: http::Response<R>) -> http::Response<R> {
    let Some(status) = response.extensions().get::<Status>() else {
        return response;
    };
    let message = status.message();
    let rewritten = match status.code() {
        tonic::Code::Internal if message.starts_with("failed to decode Protobuf message") => {
            Status::invalid_argument(format!("request: not a valid message: {message}"))
        }
        tonic::Code::OutOfRange if message.contains("message length too large") => Status::invalid_argument(format!(
            "request: larger than the {} MiB message limit",
            crate::domain::limits::MAX_MESSAGE_BYTES / (1024 * 1024)
        )),
        _ => return response,
    };
    rewritten.into_http()
}

/// The caller [`AccessLayer`] attached. A request without one did not pass
/// it, which is a wiring bug: refuse it rather than trust it.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| {
        tracing::error!("a request reached a handler without passing authentication");
        Status::internal("internal error")
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn caller(role: Role) -> Caller {
        Caller { actor: "tester".to_owned(), role }
    }

    #[test]
    fn roles_allow_what_api_md_says_and_nothing_more() {
        let team = || Role::Team("WR-01".into());
        assert!(Rule::Command.admits(&Role::Commander));
        assert!(Rule::Read.admits(&Role::Observer));
        assert!(!Rule::Command.admits(&Role::Observer));
        assert!(!Rule::Command.admits(&team()));
        assert!(!Rule::OwnTeam.admits(&Role::Observer));
        assert!(Rule::Drill.admits(&Role::Drill));
        assert!(!Rule::Read.admits(&Role::Drill));
        assert!(caller(team()).acts_for("WR-01").is_ok());
        assert!(caller(team()).acts_for("WR-02").is_err());
        assert!(caller(Role::Observer).acts_for("WR-01").is_err());
        assert!(caller(team()).reads_for("").is_err(), "an unfiltered list is every team's");
        assert!(caller(Role::Observer).reads_for("").is_ok());
        assert!(caller(team()).commands().is_err());
    }

    #[test]
    fn role_names_parse() {
        assert_eq!(Role::parse("team:WR-01"), Some(Role::Team("WR-01".into())));
        assert_eq!(Role::parse("team:"), None);
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn a_token_is_known_by_its_digest_and_never_printed() {
        let tokens = Tokens::new([(
            "0123456789abcdef-secret".to_owned(),
            Caller { actor: "duty".into(), role: Role::Commander },
        )]);
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, "Bearer 0123456789abcdef-secret".parse().unwrap());
        assert_eq!(tokens.authenticate(&headers).unwrap().actor, "duty");
        headers.insert(http::header::AUTHORIZATION, "Bearer 0123456789abcdef-secreT".parse().unwrap());
        assert_eq!(tokens.authenticate(&headers).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert!(!format!("{tokens:?}").contains("secret"));
    }

    #[test]
    fn the_table_names_every_method_served_and_nothing_else() {
        let served = served_methods();
        let table: std::collections::BTreeSet<String> = RULES.iter().map(|(path, _)| (*path).to_owned()).collect();
        assert_eq!(table.len(), RULES.len(), "a method is listed twice");
        assert_eq!(table, served);
    }

    #[test]
    fn a_method_missing_from_the_table_is_refused() {
        let tokens = Tokens::default();
        let refused = tokens.admit("/muster.v1.RosterService/DeleteEverything", &http::HeaderMap::new());
        assert_eq!(refused.unwrap_err().code(), tonic::Code::Unimplemented);
    }
}
