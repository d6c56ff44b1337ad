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

/// Longest field name a refusal names, in bytes: a field name can carry
/// client text (a metric's or a file's name), and the status travels in a
/// response header that must stay small (it is sent twice: as the message
/// and inside the rich details).
const MAX_FIELD_BYTES: usize = 160;
/// Longest refusal message, in bytes, for the same reason.
const MAX_MESSAGE_BYTES: usize = 1_024;

/// `text` cut to at most `limit` bytes on a character boundary, marked when cut.
fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `message` cut to what a refusal may carry ([`MAX_MESSAGE_BYTES`]): it
/// goes out in a response header, and one that echoes a huge request field
/// would be refused by the client's HTTP/2 layer instead of read.
pub(crate) fn bounded_message(message: &str) -> String {
    bounded(message, MAX_MESSAGE_BYTES)
}

/// The status for a refused command.
pub fn from_domain(error: DomainError) -> Status {
    let error = match error {
        DomainError::InvalidArgument { field, reason } => DomainError::InvalidArgument {
            field: bounded(&field, MAX_FIELD_BYTES),
            reason: bounded(&reason, MAX_MESSAGE_BYTES),
        },
        other => other,
    };
    let message = bounded(&error.to_string(), MAX_MESSAGE_BYTES);
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
        EngineError::Overloaded => retry_later(error.to_string(), RETRY_FULL_QUEUE_AFTER),
        EngineError::PlanOutdated => Status::aborted(error.to_string()),
        EngineError::PastReadsBusy => retry_later(error.to_string(), RETRY_FULL_QUEUE_AFTER),
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

/// `RESOURCE_EXHAUSTED` with a `RetryInfo` saying when to try again: a
/// bound was reached, nothing changed.
pub fn retry_later(message: String, after: std::time::Duration) -> Status {
    Status::with_error_details(Code::ResourceExhausted, message, ErrorDetails::with_retry_info(Some(after)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_echoing_client_text_stays_small_in_bytes() {
        let wide = "😀".repeat(2_000);
        let status = from_domain(DomainError::invalid(format!("metrics[{wide}]"), format!("{wide} is not a code")));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES, "{} bytes", status.message().len());
        assert!(status.message().ends_with('…'));
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("ééééé", 5), "é…", "cut on a character boundary");
    }
}
