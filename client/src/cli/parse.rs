//! Parsers for command-line values: positions, capabilities, times, enums.

use muster_client::{proto as pb, Timestamp};

/// `"28.21,112.97"` as a position.
pub fn position(text: &str) -> Result<pb::LatLng, String> {
    let (lat, lng) = text.split_once(',').ok_or_else(|| format!("{text:?}: expected LAT,LNG"))?;
    let lat = lat.trim().parse().map_err(|_| format!("{lat:?} is not a latitude"))?;
    let lng = lng.trim().parse().map_err(|_| format!("{lng:?} is not a longitude"))?;
    Ok(pb::LatLng { lat, lng })
}

/// `"water_rescue:1"` as a capability.
pub fn capability(text: &str) -> Result<pb::Capability, String> {
    let (code, tier) =
        text.split_once(':').ok_or_else(|| format!("{text:?}: expected CODE:TIER, e.g. water_rescue:1"))?;
    let tier = tier.trim().parse().map_err(|_| format!("{tier:?} is not a tier 1-4"))?;
    Ok(pb::Capability { code: code.trim().to_owned(), tier })
}

/// An RFC 3339 time (`2027-06-30T00:00:00Z`) or a date (`2027-06-30`, midnight UTC).
pub fn time(text: &str) -> Result<Timestamp, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|date| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| format!("{text:?} is not an RFC 3339 time such as 2027-06-30T00:00:00Z"))?;
    Ok(Timestamp { seconds: parsed.timestamp(), nanos: i32::try_from(parsed.timestamp_subsec_nanos()).unwrap_or(0) })
}

/// A team status name (`available`, `OUT_OF_SERVICE`, ...).
pub fn team_status(text: &str) -> Result<pb::TeamStatus, String> {
    let name = format!("TEAM_STATUS_{}", text.trim().to_ascii_uppercase().replace('-', "_"));
    pb::TeamStatus::from_str_name(&name).filter(|status| *status != pb::TeamStatus::Unspecified).ok_or_else(|| {
        format!("{text:?} is not a team status (available, assigned, en_route, on_scene, returning, out_of_service)")
    })
}

/// A ledger reason name (`received`, `LOST`, ...).
pub fn ledger_reason(text: &str) -> Result<pb::LedgerReason, String> {
    let name = format!("LEDGER_REASON_{}", text.trim().to_ascii_uppercase());
    pb::LedgerReason::from_str_name(&name)
        .filter(|reason| *reason != pb::LedgerReason::Unspecified)
        .ok_or_else(|| format!("{text:?} is not a ledger reason (received, issued, consumed, returned, lost, counted)"))
}

/// A level: `I`, `II`, `III` or `IV`.
pub fn level(text: &str) -> Result<pb::Level, String> {
    let name = format!("LEVEL_{}", text.trim().to_ascii_uppercase());
    pb::Level::from_str_name(&name)
        .filter(|level| *level != pb::Level::Unspecified)
        .ok_or_else(|| format!("{text:?} is not a level (I, II, III or IV)"))
}

/// A hazard name (`flood`, `POWER_OUTAGE`, `hazmat`, ...).
pub fn hazard(text: &str) -> Result<pb::Hazard, String> {
    let name = format!("HAZARD_{}", text.trim().to_ascii_uppercase().replace('-', "_"));
    pb::Hazard::from_str_name(&name).filter(|hazard| *hazard != pb::Hazard::Unspecified).ok_or_else(|| {
        format!("{text:?} is not a hazard (power_outage, hazmat, flood, fire, earthquake, mine, forest_fire, other)")
    })
}

/// An incident status name (`active`, `contained`, `closed`).
pub fn incident_status(text: &str) -> Result<pb::IncidentStatus, String> {
    let name = format!("INCIDENT_STATUS_{}", text.trim().to_ascii_uppercase());
    pb::IncidentStatus::from_str_name(&name)
        .filter(|status| *status != pb::IncidentStatus::Unspecified)
        .ok_or_else(|| format!("{text:?} is not an incident status (active, contained, closed)"))
}

/// `NAME=VALUE`, a metric.
pub fn metric(text: &str) -> Result<(String, f64), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("{text:?}: expected NAME=VALUE"))?;
    let value = value.trim().parse().map_err(|_| format!("{value:?} is not a number"))?;
    Ok((name.trim().to_owned(), value))
}

/// `CAPABILITY:MIN_TIER:COUNT`, a team need.
pub fn team_need(text: &str) -> Result<pb::TeamNeed, String> {
    let parts: Vec<_> = text.split(':').collect();
    let [capability, min_tier, count] = parts.as_slice() else {
        return Err(format!("{text:?}: expected CAPABILITY:MIN_TIER:COUNT, e.g. water_rescue:2:3"));
    };
    Ok(pb::TeamNeed {
        capability: capability.trim().to_owned(),
        min_tier: min_tier.trim().parse().map_err(|_| format!("{min_tier:?} is not a tier"))?,
        count: count.trim().parse().map_err(|_| format!("{count:?} is not a count"))?,
    })
}

/// `ITEM:QUANTITY`, a supply need.
pub fn supply_need(text: &str) -> Result<pb::SupplyNeed, String> {
    let (item, quantity) =
        text.split_once(':').ok_or_else(|| format!("{text:?}: expected ITEM:QUANTITY, e.g. sandbag:5000"))?;
    Ok(pb::SupplyNeed {
        item_code: item.trim().to_owned(),
        quantity: quantity.trim().parse().map_err(|_| format!("{quantity:?} is not a quantity"))?,
    })
}

/// A polygon ring given on the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Ring(pub Vec<pb::LatLng>);

/// `LAT,LNG;LAT,LNG;...`, a polygon.
pub fn polygon(text: &str) -> Result<Ring, String> {
    text.split(';').filter(|vertex| !vertex.trim().is_empty()).map(position).collect::<Result<_, _>>().map(Ring)
}

/// An assignment status name (`acknowledged`, `en_route`, `on_scene`, `released`).
pub fn assignment_status(text: &str) -> Result<pb::AssignmentStatus, String> {
    let name = format!("ASSIGNMENT_STATUS_{}", text.trim().to_ascii_uppercase().replace('-', "_"));
    pb::AssignmentStatus::from_str_name(&name)
        .filter(|status| !matches!(status, pb::AssignmentStatus::Unspecified | pb::AssignmentStatus::Proposed))
        .ok_or_else(|| format!("{text:?} is not an assignment status (acknowledged, en_route, on_scene, released, cancelled, declined)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_operators_type() {
        assert_eq!(position("28.2, 112.9").map(|p| (p.lat, p.lng)), Ok((28.2, 112.9)));
        assert!(position("28.2").is_err());
        assert_eq!(capability("hazmat:2").map(|c| (c.code, c.tier)), Ok(("hazmat".to_owned(), 2)));
        assert_eq!(time("2027-06-30").map(|t| t.seconds), Ok(1_814_313_600));
        assert_eq!(team_status("out-of-service"), Ok(pb::TeamStatus::OutOfService));
        assert!(team_status("sleeping").is_err());
        assert_eq!(level("ii"), Ok(pb::Level::Ii));
        assert_eq!(hazard("power-outage"), Ok(pb::Hazard::PowerOutage));
        assert_eq!(metric("water_level_m=38.4"), Ok(("water_level_m".to_owned(), 38.4)));
        assert_eq!(team_need("hazmat:2:3").map(|need| need.count), Ok(3));
        assert_eq!(supply_need("sandbag:500").map(|need| need.quantity), Ok(500));
        assert_eq!(polygon("28.2,112.9;28.2,113.0;28.1,113.0").map(|ring| ring.0.len()), Ok(3));
    }
}
