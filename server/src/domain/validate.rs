//! Field validation shared by every command: ids, codes, text, positions,
//! counts. Each check names the field it refuses.

use super::error::{DomainError, DomainResult};
use super::limits::*;
use super::types::LatLng;

/// Counts characters as Unicode scalar values, the way the API's limits do.
pub fn char_count(text: &str) -> usize {
    text.chars().count()
}

/// An id: `[A-Za-z0-9._-]{1,64}`.
pub fn id(field: &str, value: &str) -> DomainResult<()> {
    if value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if char_count(value) > MAX_ID_CHARS {
        return Err(DomainError::invalid(field, format!("is longer than {MAX_ID_CHARS} characters")));
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(DomainError::invalid(field, "may contain only A-Z, a-z, 0-9, '.', '_' and '-'"));
    }
    Ok(())
}

/// An optional `request_id`: empty, or a valid id.
pub fn request_id(value: &str) -> DomainResult<()> {
    if value.is_empty() {
        return Ok(());
    }
    id("request_id", value)
}

/// A capability or item code: `[a-z][a-z0-9_]{0,31}`.
pub fn code(field: &str, value: &str) -> DomainResult<()> {
    let mut chars = value.chars();
    match chars.next() {
        None => return Err(DomainError::invalid(field, "is required")),
        Some(first) if !first.is_ascii_lowercase() => {
            return Err(DomainError::invalid(field, "must start with a lower-case letter a-z"));
        }
        Some(_) => {}
    }
    if char_count(value) > MAX_CODE_CHARS {
        return Err(DomainError::invalid(field, format!("is longer than {MAX_CODE_CHARS} characters")));
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(DomainError::invalid(field, "may contain only a-z, 0-9 and '_'"));
    }
    Ok(())
}

/// Free text of at most 256 characters; `required` refuses the empty string.
pub fn text(field: &str, value: &str, required: bool) -> DomainResult<()> {
    if required && value.trim().is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if char_count(value) > MAX_TEXT_CHARS {
        return Err(DomainError::invalid(field, format!("is longer than {MAX_TEXT_CHARS} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(DomainError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// A position with finite coordinates in range.
pub fn position(field: &str, value: &LatLng) -> DomainResult<()> {
    if !value.lat.is_finite() || !(-90.0..=90.0).contains(&value.lat) {
        return Err(DomainError::invalid(format!("{field}.lat"), "must be between -90 and 90"));
    }
    if !value.lng.is_finite() || !(-180.0..=180.0).contains(&value.lng) {
        return Err(DomainError::invalid(format!("{field}.lng"), "must be between -180 and 180"));
    }
    Ok(())
}

/// A repeated field of at most 1,000 entries.
pub fn repeated<T>(field: &str, values: &[T]) -> DomainResult<()> {
    if values.len() > MAX_REPEATED {
        return Err(DomainError::invalid(field, format!("has more than {MAX_REPEATED} entries")));
    }
    Ok(())
}

/// A tier, 1..=4.
pub fn tier(field: &str, value: u32) -> DomainResult<()> {
    if !TIER_RANGE.contains(&value) {
        return Err(DomainError::invalid(field, "must be between 1 (most capable) and 4"));
    }
    Ok(())
}

/// A quantity of units: 1..=MAX_QUANTITY.
pub fn positive_quantity(field: &str, value: i64) -> DomainResult<()> {
    if value <= 0 {
        return Err(DomainError::invalid(field, "must be positive"));
    }
    if value > MAX_QUANTITY {
        return Err(DomainError::invalid(field, format!("must be at most {MAX_QUANTITY}")));
    }
    Ok(())
}

/// A polygon ring of 3..=1,000 valid vertices (it closes by itself) that
/// encloses an area and does not cross itself.
pub fn polygon(field: &str, ring: &[LatLng]) -> DomainResult<()> {
    if ring.len() < 3 {
        return Err(DomainError::invalid(field, "needs at least 3 vertices"));
    }
    if ring.len() > MAX_POLYGON_VERTICES {
        return Err(DomainError::invalid(field, format!("has more than {MAX_POLYGON_VERTICES} vertices")));
    }
    for (index, vertex) in ring.iter().enumerate() {
        position(&format!("{field}[{index}]"), vertex)?;
    }
    // Edges are straight in longitude and latitude: one that spans more
    // than half the globe is a shape that crosses the antimeridian, which
    // would be read as a belt around the world. The edge from the last
    // corner back to the first counts too.
    for (index, from) in ring.iter().enumerate() {
        let next = (index + 1) % ring.len();
        if (ring[next].lng - from.lng).abs() > 180.0 {
            return Err(DomainError::invalid(
                format!("{field}[{next}]"),
                "crosses the antimeridian: split the area at longitude 180",
            ));
        }
    }
    // An area a dispatcher can reason about: three distinct corners, some
    // area, and a boundary that does not cross itself (a bow tie has no
    // inside that means anything). geo's validation checks the ring.
    use geo::{Area as _, Validation as _};
    let mut corners: Vec<geo::Coord> = ring.iter().map(|vertex| geo::coord! { x: vertex.lng, y: vertex.lat }).collect();
    corners.dedup();
    if corners.len() > 1 && corners.first() == corners.last() {
        corners.pop();
    }
    if corners.len() < 3 {
        return Err(DomainError::invalid(field, "needs at least 3 distinct vertices"));
    }
    let shape = geo::Polygon::new(geo::LineString::from(corners), vec![]);
    // Less than about a square metre (1e-10 square degrees): a line drawn
    // as a polygon, whatever rounding left of its area.
    if shape.unsigned_area() < 1e-10 {
        return Err(DomainError::invalid(field, "encloses no area: its vertices lie on one line"));
    }
    if !shape.is_valid() {
        return Err(DomainError::invalid(field, "crosses itself: give the boundary in order around the area"));
    }
    Ok(())
}

/// A polygon's vertex count, checked before its vertices are converted.
pub fn polygon_size<T>(field: &str, ring: &[T]) -> DomainResult<()> {
    if ring.len() > MAX_POLYGON_VERTICES {
        return Err(DomainError::invalid(field, format!("has more than {MAX_POLYGON_VERTICES} vertices")));
    }
    Ok(())
}

/// Clamps a requested page size: 0 means the default; above the maximum is lowered.
pub fn page_size(requested: i32) -> DomainResult<usize> {
    if requested < 0 {
        return Err(DomainError::invalid("page_size", "must not be negative"));
    }
    let requested = usize::try_from(requested).unwrap_or(MAX_PAGE_SIZE);
    Ok(match requested {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_polygon_across_the_antimeridian_is_refused_and_real_shapes_pass() {
        let ring = |points: &[(f64, f64)]| points.iter().map(|&(lat, lng)| LatLng { lat, lng }).collect::<Vec<_>>();
        let across = ring(&[(10.0, 179.9), (10.0, -179.9), (10.1, -179.9), (10.1, 179.9)]);
        let refused = polygon("zone.polygon", &across).unwrap_err().to_string();
        assert!(refused.contains("antimeridian"), "{refused}");
        let clockwise = ring(&[(28.19, 112.97), (28.20, 112.97), (28.20, 112.98), (28.19, 112.98)]);
        assert!(polygon("zone.polygon", &clockwise).is_ok());
        let closed = ring(&[(28.19, 112.97), (28.19, 112.98), (28.20, 112.98), (28.19, 112.97)]);
        assert!(polygon("zone.polygon", &closed).is_ok(), "a ring given closed is the same ring");
    }

    #[test]
    fn a_polygon_whose_closing_edge_crosses_the_antimeridian_is_refused() {
        // Each listed edge spans less than 180 degrees of longitude; the edge
        // from the last corner back to the first spans 359.8.
        let ring = [(10.0, -179.9), (20.0, 0.0), (10.0, 179.9)].map(|(lat, lng)| LatLng { lat, lng });
        let refused = polygon("zone.polygon", &ring).unwrap_err().to_string();
        assert!(refused.contains("antimeridian"), "{refused}");
        assert!(refused.contains("zone.polygon[0]"), "the corner the closing edge returns to: {refused}");
    }

    #[test]
    fn ids_accept_the_documented_alphabet_only() {
        assert!(id("id", "WR-01.a_b").is_ok());
        assert!(id("id", "").is_err());
        assert!(id("id", "has space").is_err());
        assert!(id("id", &"x".repeat(64)).is_ok());
        assert!(id("id", &"x".repeat(65)).is_err());
        assert!(id("id", "队").is_err());
    }

    #[test]
    fn codes_start_with_a_letter_and_stay_short() {
        assert!(code("code", "water_rescue").is_ok());
        assert!(code("code", "a").is_ok());
        assert!(code("code", "1abc").is_err());
        assert!(code("code", "Water").is_err());
        assert!(code("code", &format!("a{}", "b".repeat(31))).is_ok());
        assert!(code("code", &format!("a{}", "b".repeat(32))).is_err());
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let chinese = "救".repeat(256);
        assert!(text("name", &chinese, true).is_ok());
        assert!(text("name", &"救".repeat(257), true).is_err());
        assert!(text("name", "  ", true).is_err());
        assert!(text("note", "", false).is_ok());
    }

    #[test]
    fn positions_must_be_finite_and_in_range() {
        assert!(position("p", &LatLng { lat: 28.2, lng: 112.9 }).is_ok());
        assert!(position("p", &LatLng { lat: 90.5, lng: 0.0 }).is_err());
        assert!(position("p", &LatLng { lat: f64::NAN, lng: 0.0 }).is_err());
        assert!(position("p", &LatLng { lat: 0.0, lng: -180.5 }).is_err());
    }

    #[test]
    fn page_sizes_default_and_clamp() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(5_000), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_size(7), Ok(7));
        assert!(page_size(-1).is_err());
    }
}
