//! Shared conversions: times, positions, levels, hazards and metrics.

use muster_proto::v1 as pb;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::{LatLng, Timestamp};

/// Earliest and latest times accepted: years 0001 to 9999, as in `google.protobuf.Timestamp`;
/// narrowed to what fits nanoseconds in an i64 (1677 to 2262).
const MIN_SECONDS: i64 = i64::MIN / Timestamp::NANOS_PER_SECOND + 1;
const MAX_SECONDS: i64 = i64::MAX / Timestamp::NANOS_PER_SECOND - 1;

/// A protobuf timestamp as a domain time.
pub fn timestamp_in(field: &str, value: &muster_proto::Timestamp) -> DomainResult<Timestamp> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(DomainError::invalid(format!("{field}.nanos"), "must be between 0 and 999,999,999"));
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&value.seconds) {
        return Err(DomainError::invalid(format!("{field}.seconds"), "must be between the years 1678 and 2261"));
    }
    Ok(Timestamp(value.seconds * Timestamp::NANOS_PER_SECOND + i64::from(value.nanos)))
}

/// An optional protobuf timestamp.
pub fn optional_timestamp_in(field: &str, value: Option<&muster_proto::Timestamp>) -> DomainResult<Option<Timestamp>> {
    value.map(|value| timestamp_in(field, value)).transpose()
}

/// A domain time as a protobuf timestamp.
pub fn timestamp_out(value: Timestamp) -> muster_proto::Timestamp {
    muster_proto::Timestamp { seconds: value.unix_seconds(), nanos: value.subsec_nanos() }
}

/// An optional position (range checks are the domain's).
pub fn position_in(value: Option<&pb::LatLng>) -> Option<LatLng> {
    value.map(|value| LatLng { lat: value.lat, lng: value.lng })
}

/// A required position.
pub fn required_position_in(field: &str, value: Option<&pb::LatLng>) -> DomainResult<LatLng> {
    position_in(value).ok_or_else(|| DomainError::invalid(field, "is required"))
}

/// A domain position as protobuf.
pub fn position_out(value: LatLng) -> pb::LatLng {
    pb::LatLng { lat: value.lat, lng: value.lng }
}

/// A level; unspecified is `None`.
pub fn level_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::Level>> {
    use crate::domain::Level;
    let level =
        pb::Level::try_from(value).map_err(|_| DomainError::invalid(field, format!("{value} is not a Level")))?;
    Ok(match level {
        pb::Level::Unspecified => None,
        pb::Level::I => Some(Level::I),
        pb::Level::Ii => Some(Level::II),
        pb::Level::Iii => Some(Level::III),
        pb::Level::Iv => Some(Level::IV),
    })
}

/// A domain level as protobuf.
pub fn level_out(level: crate::domain::Level) -> pb::Level {
    use crate::domain::Level;
    match level {
        Level::I => pb::Level::I,
        Level::II => pb::Level::Ii,
        Level::III => pb::Level::Iii,
        Level::IV => pb::Level::Iv,
    }
}

/// A hazard; unspecified is `None`.
pub fn hazard_in(field: &str, value: i32) -> DomainResult<Option<crate::domain::Hazard>> {
    use crate::domain::Hazard;
    let hazard =
        pb::Hazard::try_from(value).map_err(|_| DomainError::invalid(field, format!("{value} is not a Hazard")))?;
    Ok(match hazard {
        pb::Hazard::Unspecified => None,
        pb::Hazard::PowerOutage => Some(Hazard::PowerOutage),
        pb::Hazard::Hazmat => Some(Hazard::Hazmat),
        pb::Hazard::Flood => Some(Hazard::Flood),
        pb::Hazard::Fire => Some(Hazard::Fire),
        pb::Hazard::Earthquake => Some(Hazard::Earthquake),
        pb::Hazard::Mine => Some(Hazard::Mine),
        pb::Hazard::ForestFire => Some(Hazard::ForestFire),
        pb::Hazard::Other => Some(Hazard::Other),
    })
}

/// A domain hazard as protobuf.
pub fn hazard_out(hazard: crate::domain::Hazard) -> pb::Hazard {
    use crate::domain::Hazard;
    match hazard {
        Hazard::PowerOutage => pb::Hazard::PowerOutage,
        Hazard::Hazmat => pb::Hazard::Hazmat,
        Hazard::Flood => pb::Hazard::Flood,
        Hazard::Fire => pb::Hazard::Fire,
        Hazard::Earthquake => pb::Hazard::Earthquake,
        Hazard::Mine => pb::Hazard::Mine,
        Hazard::ForestFire => pb::Hazard::ForestFire,
        Hazard::Other => pb::Hazard::Other,
    }
}
