//! Why a command was refused, grouped by what the caller can do about it.
//! The gRPC layer maps each variant to one status code.

use thiserror::Error;

/// A command that was refused. A refused command changes nothing.
#[derive(Clone, Debug, PartialEq, Error, serde::Serialize, serde::Deserialize)]
pub enum DomainError {
    /// Malformed or out-of-range input; `field` names it (for example `team.capabilities[2].tier`).
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The offending field, as a path into the request.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The named record does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// What kind of record: `team`, `depot`, `item`, ...
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// A record with this id exists already.
    #[error("{kind} {id:?} already exists")]
    AlreadyExists {
        /// What kind of record.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The current state forbids the command.
    #[error("{0}")]
    FailedPrecondition(String),
    /// `expected_version` did not match.
    #[error("{kind} {id:?} is at version {actual}, not the expected {expected}")]
    VersionMismatch {
        /// What kind of record.
        kind: &'static str,
        /// Its id.
        id: String,
        /// The version the client expected.
        expected: u64,
        /// The version it is at.
        actual: u64,
    },
    /// Not enough stock (or another quantity would be exhausted).
    #[error("{0}")]
    ResourceExhausted(String),
}

impl DomainError {
    /// An `InvalidArgument` for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DomainError::InvalidArgument { field: field.into(), reason: reason.into() }
    }

    /// A `NotFound` for a record of `kind`.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        DomainError::NotFound { kind, id: id.into() }
    }

    /// An `AlreadyExists` for a record of `kind`.
    pub fn already_exists(kind: &'static str, id: impl Into<String>) -> Self {
        DomainError::AlreadyExists { kind, id: id.into() }
    }

    /// A `FailedPrecondition` with a message in words.
    pub fn precondition(message: impl Into<String>) -> Self {
        DomainError::FailedPrecondition(message.into())
    }

    /// A `ResourceExhausted` with a message in words.
    pub fn exhausted(message: impl Into<String>) -> Self {
        DomainError::ResourceExhausted(message.into())
    }
}

/// The result of domain validation.
pub type DomainResult<T> = Result<T, DomainError>;
