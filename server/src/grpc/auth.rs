//! Access: bearer tokens and roles (`api.md`, "Access"). An interceptor turns
//! the `authorization` header into a [`Caller`]; each handler then asks for
//! the access it needs. With no tokens configured every call is the local
//! commander, and the server refuses to listen anywhere but loopback.

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Who is calling: the name the log records and the role that limits them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Recorded as the actor of every event the call causes.
    pub actor: String,
    /// What the caller may do.
    pub role: Role,
}

/// The access a handler needs.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// Any read or watch (not drill tokens).
    Read,
    /// A change that only a commander may make.
    Command,
    /// A change a team may make for itself (its status, its assignments).
    Team(&'a str),
    /// A read about one team: commanders and observers, or that team itself.
    TeamRead(&'a str),
    /// The drill service.
    Drill,
}

impl Caller {
    /// Refuses with `PERMISSION_DENIED` unless the role allows `access`.
    pub fn require(&self, access: Access<'_>) -> Result<(), Status> {
        let allowed = match (&self.role, access) {
            (Role::Commander, _) => true,
            (Role::Observer, Access::Read) => true,
            (Role::Team(_), Access::Read) => true,
            (Role::Team(own), Access::Team(team_id)) => own == team_id,
            (Role::Observer, Access::TeamRead(_)) => true,
            (Role::Team(own), Access::TeamRead(team_id)) => own == team_id,
            (Role::Drill, Access::Drill) => true,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Status::permission_denied(format!("{} may not do this", self.actor)))
        }
    }
}

/// The configured tokens, by token text.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    by_token: Arc<BTreeMap<String, Caller>>,
}

impl Tokens {
    /// Tokens from configuration: `(token, name, role)`.
    pub fn new(entries: impl IntoIterator<Item = (String, Caller)>) -> Self {
        Tokens { by_token: Arc::new(entries.into_iter().collect()) }
    }

    /// True when no token is configured (loopback-only, unauthenticated mode).
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// The interceptor: attaches the [`Caller`] to the request or refuses it.
    pub fn authenticate(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = if self.by_token.is_empty() {
            Caller { actor: "local".to_owned(), role: Role::Commander }
        } else {
            let header = request
                .metadata()
                .get("authorization")
                .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
            let token = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))?;
            self.by_token.get(token.trim()).cloned().ok_or_else(|| Status::unauthenticated("unknown token"))?
        };
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller the interceptor attached. A request without one did not pass
/// the interceptor, which is a wiring bug: refuse it rather than trust it.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| {
        tracing::error!("a request reached a handler without passing authentication");
        Status::internal("internal error")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller { actor: "tester".to_owned(), role }
    }

    #[test]
    fn roles_allow_what_api_md_says_and_nothing_more() {
        assert!(caller(Role::Commander).require(Access::Command).is_ok());
        assert!(caller(Role::Observer).require(Access::Read).is_ok());
        assert!(caller(Role::Observer).require(Access::Command).is_err());
        assert!(caller(Role::Team("WR-01".into())).require(Access::Team("WR-01")).is_ok());
        assert!(caller(Role::Team("WR-01".into())).require(Access::Team("WR-02")).is_err());
        assert!(caller(Role::Team("WR-01".into())).require(Access::Command).is_err());
        assert!(caller(Role::Drill).require(Access::Drill).is_ok());
        assert!(caller(Role::Drill).require(Access::Read).is_err());
    }

    #[test]
    fn role_names_parse() {
        assert_eq!(Role::parse("team:WR-01"), Some(Role::Team("WR-01".into())));
        assert_eq!(Role::parse("team:"), None);
        assert_eq!(Role::parse("admin"), None);
    }
}
