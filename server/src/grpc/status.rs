//! Errors to gRPC status codes, in one exhaustive match per error type.
//! Internal failures are logged and reach the client as a plain `INTERNAL`
//! or `UNAVAILABLE` without details.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::DomainError;
use crate::engine::EngineError;

/// How long a client is told to wait before retrying when the write queue
/// is full (`RetryInfo`).
pub const RETRY_FULL_QUEUE_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

impl From<DomainError> for Status {
    fn from(error: DomainError) -> Status {
        from_domain(error)
    }
}

impl From<EngineError> for Status {
    fn from(error: EngineError) -> Status {
        from_engine(error)
    }
}

impl From<crate::store::StoreError> for Status {
    fn from(error: crate::store::StoreError) -> Status {
        from_engine(error.into())
    }
}

/// Longest field name a refusal names, in characters: a field name can
/// carry client text (a metric's or a file's name), and the status travels
/// in a response header that must stay small.
const MAX_FIELD_CHARS: usize = 160;
/// Longest refusal message, in characters, for the same reason.
const MAX_MESSAGE_CHARS: usize = 1_024;

/// `text` cut to `limit` characters, marked when cut.
fn bounded(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The status for a refused command.
pub fn from_domain(error: DomainError) -> Status {
    let error = match error {
        DomainError::InvalidArgument { field, reason } => DomainError::InvalidArgument {
            field: bounded(&field, MAX_FIELD_CHARS),
            reason: bounded(&reason, MAX_MESSAGE_CHARS),
        },
        other => other,
    };
    let message = bounded(&error.to_string(), MAX_MESSAGE_CHARS);
    match error {
        DomainError::InvalidArgument { field, reason } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(field, reason),
        ),
        DomainError::NotFound { kind, id } => Status::with_error_details(
            Code::NotFound,
            message,
            ErrorDetails::with_resource_info(kind, id, "", "not found"),
        ),
        DomainError::AlreadyExists { kind, id } => Status::with_error_details(
            Code::AlreadyExists,
            message,
            ErrorDetails::with_resource_info(kind, id, "", "already exists"),
        ),
        DomainError::FailedPrecondition(_) => Status::failed_precondition(message),
        DomainError::VersionMismatch { .. } => Status::aborted(message),
        DomainError::ResourceExhausted(_) => Status::resource_exhausted(message),
    }
}

/// The status for an engine failure.
pub fn from_engine(error: EngineError) -> Status {
    match error {
        EngineError::Domain(error) => from_domain(error),
        EngineError::Overloaded => Status::with_error_details(
            Code::ResourceExhausted,
            error.to_string(),
            ErrorDetails::with_retry_info(Some(RETRY_FULL_QUEUE_AFTER)),
        ),
        EngineError::PlanOutdated => Status::aborted(error.to_string()),
        EngineError::PastReadsBusy => Status::with_error_details(
            Code::ResourceExhausted,
            error.to_string(),
            ErrorDetails::with_retry_info(Some(RETRY_FULL_QUEUE_AFTER)),
        ),
        EngineError::Unavailable(reason) => {
            tracing::warn!(%reason, "write refused: engine unavailable");
            Status::unavailable("the server is not accepting writes now; retry later")
        }
        EngineError::Store(error) => {
            tracing::error!(%error, "reading the log failed");
            Status::internal("internal error")
        }
        EngineError::Internal(reason) => {
            tracing::error!(%reason, "internal error");
            Status::internal("internal error")
        }
    }
}

/// The status for a failed blocking read task.
pub fn from_join(error: tokio::task::JoinError) -> Status {
    tracing::error!(%error, "a blocking read task failed");
    Status::internal("internal error")
}

/// `INVALID_ARGUMENT` naming `field`, with a `BadRequest` detail.
pub fn invalid(field: &str, reason: &str) -> Status {
    from_domain(DomainError::invalid(field, reason))
}
