//! Every bound the server enforces on input, as named constants (`api.md`,
//! "Limits"). Nothing that comes from a client is unbounded.

/// Longest id, in characters.
pub const MAX_ID_CHARS: usize = 64;
/// Longest name, note, title or other free text, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Most entries in any repeated field of a request.
pub const MAX_REPEATED: usize = 1_000;
/// Largest page a list returns.
pub const MAX_PAGE_SIZE: usize = 1_000;
/// The page size when a request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest gRPC message, either way, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Longest capability or item code, in characters.
pub const MAX_CODE_CHARS: usize = 32;
/// Least and most capable tiers.
pub const TIER_RANGE: std::ops::RangeInclusive<u32> = 1..=4;
/// Slowest team speed that still gives finite travel times, in km/h.
pub const MIN_SPEED_KMH: f64 = 1.0;
/// Fastest plausible team speed (a helicopter), in km/h.
pub const MAX_SPEED_KMH: f64 = 1_000.0;
/// Largest headcount a team may declare without listing members.
pub const MAX_HEADCOUNT: u32 = 100_000;
/// Largest single stock quantity or delta, in units.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000;
/// Most metrics an incident may carry.
pub const MAX_METRICS: usize = 100;
/// Most vertices of a zone or incident area polygon.
pub const MAX_POLYGON_VERTICES: usize = 1_000;
/// How long a `request_id` is remembered, at least, in seconds.
pub const REQUEST_ID_RETENTION_SECONDS: i64 = 24 * 60 * 60;
/// Most needs one incident may hold (`api.md`, "Operations": sizes).
pub const MAX_NEEDS_PER_INCIDENT: usize = 1_000;
