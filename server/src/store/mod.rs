//! Storage: the only code that touches sled. It keeps the append-only event
//! log and the idempotency records, and makes an append durable before it
//! returns. The engine sees it only through [`Store`].

mod memory;
mod sled_store;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::{LogRecord, Reply, Timestamp};

pub use memory::MemoryStore;
pub use sled_store::SledStore;

/// Identifies a request for retries: the actor and the `request_id` it chose.
/// Keys are per actor, so two roster apps counting `1, 2, 3` never collide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestKey {
    /// Who sent the request.
    pub actor: String,
    /// The client's `request_id`.
    pub request_id: String,
}

/// What the engine remembers of an applied request: enough to answer a retry
/// with the first answer, and to refuse reuse of the id for another request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The key.
    pub key: RequestKey,
    /// SHA-256 of the command's canonical encoding.
    pub fingerprint: [u8; 32],
    /// When it was applied (engine clock).
    pub time: Timestamp,
    /// The first answer.
    pub reply: Reply,
}

/// One durable append: log records, the request records of the commands
/// that produced them, and expired request records to forget.
#[derive(Debug, Default)]
pub struct Append<'a> {
    /// New log records, in sequence order, continuing the log.
    pub records: &'a [LogRecord],
    /// Request records to keep.
    pub requests: &'a [RequestRecord],
    /// Request records to drop (older than the retention).
    pub expired: &'a [RequestKey],
}

/// A storage failure. Fatal for the writer: what was not made durable was
/// never acknowledged.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("sled failed on {tree} {key}: {source}")]
    Sled {
        /// The tree.
        tree: &'static str,
        /// The key or operation.
        key: String,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// A file operation failed (for example the `fdatasync` after a flush).
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// On which file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored value could not be decoded.
    #[error("corrupt value in {tree} at {key}: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The data directory was written by an incompatible version.
    #[error("unsupported data format {found} (this build reads format {expected})")]
    Format {
        /// What the directory says.
        found: String,
        /// What this build writes.
        expected: u32,
    },
}

/// The log and the idempotency records.
pub trait Store: Send + Sync {
    /// Writes `append` atomically and durably: when this returns `Ok`, the
    /// records survive a crash or a power cut.
    fn append(&self, append: Append<'_>) -> Result<(), StoreError>;

    /// The log records with `sequence >= from`, in order, at most `limit`.
    fn read(&self, from: u64, limit: usize) -> Result<Vec<LogRecord>, StoreError>;

    /// Every request record applied at or after `since`.
    fn requests_since(&self, since: Timestamp) -> Result<Vec<RequestRecord>, StoreError>;

    /// Forgets request records older than `before` (called once at start).
    fn forget_requests_before(&self, before: Timestamp) -> Result<usize, StoreError>;

    /// Keeps a drill run under `number`, durably, in a namespace apart from
    /// the live log (drills never touch live data): a short `summary` for
    /// listings and the whole `run` (script, report and log), both encoded
    /// by the drill module.
    fn put_drill_run(&self, number: u64, summary: &[u8], run: &[u8]) -> Result<(), StoreError>;

    /// The whole drill run stored under `number`, if any.
    fn drill_run(&self, number: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// The summaries of the stored drill runs after `after`, in order, at most `limit`.
    fn drill_runs(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
}

/// Reads the whole log in order, in bounded chunks, calling `visit` on each record.
pub fn for_each_record(
    store: &dyn Store,
    from: u64,
    mut visit: impl FnMut(LogRecord) -> bool,
) -> Result<(), StoreError> {
    const CHUNK: usize = 4_096;
    let mut next = from.max(1);
    loop {
        let chunk = store.read(next, CHUNK)?;
        let done = chunk.len() < CHUNK;
        for record in chunk {
            next = record.sequence + 1;
            if !visit(record) {
                return Ok(());
            }
        }
        if done {
            return Ok(());
        }
    }
}

/// Encodes a value for storage: a format byte, then postcard.
/// Fails loudly rather than store a value that would not decode: the append
/// is refused (and the writer stops taking writes) instead of acknowledging
/// an undecodable record as durable.
fn encode<T: Serialize>(tree: &'static str, key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(value, vec![FORMAT_TAG]).map_err(|error| StoreError::Corrupt {
        tree,
        key: key.to_owned(),
        reason: format!("cannot be encoded: {error}"),
    })
}

/// Decodes a value written by [`encode`].
fn decode<T: for<'de> Deserialize<'de>>(tree: &'static str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_TAG, rest)) => postcard::from_bytes(rest).map_err(|error| StoreError::Corrupt {
            tree,
            key: key.to_owned(),
            reason: error.to_string(),
        }),
        Some((tag, _)) => {
            Err(StoreError::Corrupt { tree, key: key.to_owned(), reason: format!("unknown format tag {tag}") })
        }
        None => Err(StoreError::Corrupt { tree, key: key.to_owned(), reason: "empty value".to_owned() }),
    }
}

/// The encoding version of every stored value (2: log records name their
/// command).
const FORMAT_TAG: u8 = 2;
