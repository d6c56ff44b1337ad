//! Travel: great-circle distance (the `geo` crate's haversine) times the
//! road factor, over a speed; impassable zones block what is inside them and
//! make routes that cross them longer.

use geo::{Contains, Haversine, Intersects, Line, LineString, Point, Polygon};

use super::zone::Zone;
use super::LatLng;

/// How travel is estimated and how long the dispatcher waits on teams
/// (server configuration, `[dispatch]`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Road distance over great-circle distance.
    pub road_factor: f64,
    /// Convoy speed for supplies, km/h.
    pub convoy_speed_kmh: f64,
    /// Road distance is multiplied by this when the straight route crosses
    /// an impassable zone (a detour).
    pub zone_detour_factor: f64,
    /// A team assignment still `DISPATCHED` this long after it was made is
    /// cancelled by the server (0: never).
    pub ack_timeout_seconds: u64,
    /// A position reported longer ago than this is called stale in the
    /// reasons of the assignments it leads to.
    pub stale_after_seconds: u64,
}

/// The default acknowledgement timeout: ten minutes.
pub const DEFAULT_ACK_TIMEOUT_SECONDS: u64 = 600;
/// The default age at which a reported position is stale: thirty minutes.
pub const DEFAULT_STALE_AFTER_SECONDS: u64 = 1_800;
/// The longest acknowledgement timeout or staleness age accepted: a week.
pub const MAX_OPERATIONS_SECONDS: u64 = 7 * 24 * 3_600;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            road_factor: 1.3,
            convoy_speed_kmh: 40.0,
            zone_detour_factor: 2.0,
            ack_timeout_seconds: DEFAULT_ACK_TIMEOUT_SECONDS,
            stale_after_seconds: DEFAULT_STALE_AFTER_SECONDS,
        }
    }
}

impl Settings {
    /// Refuses settings that would make travel meaningless.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            ("dispatch.road_factor", self.road_factor, 1.0, 10.0),
            ("dispatch.convoy_speed_kmh", self.convoy_speed_kmh, 1.0, 500.0),
            ("dispatch.zone_detour_factor", self.zone_detour_factor, 1.0, 100.0),
        ];
        for (name, value, low, high) in checks {
            if !value.is_finite() || value < low || value > high {
                return Err(format!("{name} must be between {low} and {high}, not {value}"));
            }
        }
        let durations = [
            ("dispatch.ack_timeout_seconds", self.ack_timeout_seconds),
            ("dispatch.stale_after_seconds", self.stale_after_seconds),
        ];
        for (name, value) in durations {
            if value > MAX_OPERATIONS_SECONDS {
                return Err(format!("{name} must be at most {MAX_OPERATIONS_SECONDS} (a week), not {value}"));
            }
        }
        Ok(())
    }
}

/// A leg's estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Leg {
    /// Road distance, km.
    pub distance_km: f64,
    /// Travel time, minutes.
    pub minutes: f64,
    /// True when the route crosses an impassable zone.
    pub crosses_zone: bool,
}

impl Leg {
    /// Travel time in whole milliseconds (the team cost), bounded.
    pub fn millis(&self) -> i64 {
        (self.minutes * 60_000.0).round().clamp(0.0, 1e13) as i64
    }

    /// Travel time in whole seconds (the per-unit supply cost), bounded.
    pub fn seconds(&self) -> i64 {
        (self.minutes * 60.0).round().clamp(0.0, 1e9) as i64
    }
}

/// The active zones as polygons, ready for repeated tests.
#[derive(Debug, Default)]
pub struct Zones {
    polygons: Vec<(String, Polygon<f64>)>,
}

fn point(position: LatLng) -> Point<f64> {
    Point::new(position.lng, position.lat)
}

impl Zones {
    /// The active zones among `zones`.
    pub fn new<'a>(zones: impl IntoIterator<Item = &'a Zone>) -> Self {
        let polygons = zones
            .into_iter()
            .filter(|zone| zone.active)
            .map(|zone| {
                let ring: Vec<(f64, f64)> = zone.polygon.iter().map(|vertex| (vertex.lng, vertex.lat)).collect();
                (zone.id.clone(), Polygon::new(LineString::from(ring), Vec::new()))
            })
            .collect();
        Zones { polygons }
    }

    /// The zone a position is in (boundary included), if any.
    pub fn containing(&self, position: LatLng) -> Option<&str> {
        let point = point(position);
        self.polygons.iter().find(|(_, polygon)| polygon.intersects(&point)).map(|(id, _)| id.as_str())
    }

    /// True when the straight route crosses a zone that does not contain the
    /// destination (responders going into a flooded area are not detoured
    /// around it; an incident inside a zone is still served).
    pub fn crossed(&self, from: LatLng, to: LatLng) -> bool {
        let line = Line::new(point(from).0, point(to).0);
        let destination = point(to);
        self.polygons.iter().any(|(_, polygon)| {
            !polygon.contains(&destination) && !polygon.intersects(&destination) && polygon.intersects(&line)
        })
    }

    /// True when there are no active zones.
    pub fn is_empty(&self) -> bool {
        self.polygons.is_empty()
    }
}

/// A position with the cosine of its latitude computed once: a dispatch
/// measures hundreds of thousands of legs between a few thousand places.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Site {
    /// The position.
    pub position: LatLng,
    cos_lat: f64,
}

impl Site {
    /// The site at `position`.
    pub fn new(position: LatLng) -> Self {
        Site { position, cos_lat: position.lat.to_radians().cos() }
    }
}

/// Great-circle distance in km: geo's haversine (`Haversine.distance`), the
/// same operations in the same order, so the same bits, but with the
/// latitudes' cosines taken from the sites instead of computed per pair. A
/// property test holds it to geo's.
pub fn great_circle_km(from: &Site, to: &Site) -> f64 {
    let delta_theta = (to.position.lat - from.position.lat).to_radians();
    let delta_lambda = (to.position.lng - from.position.lng).to_radians();
    let a = (delta_theta / 2.0).sin().powi(2) + from.cos_lat * to.cos_lat * (delta_lambda / 2.0).sin().powi(2);
    let c = 2.0 * a.sqrt().asin();
    Haversine.radius() * c / 1000.0
}

/// The leg from `from` to `to` at `speed_kmh`.
pub fn leg(settings: &Settings, zones: &Zones, from: LatLng, to: LatLng, speed_kmh: f64) -> Leg {
    site_leg(settings, zones, &Site::new(from), &Site::new(to), speed_kmh)
}

/// The leg between two sites at `speed_kmh`.
pub fn site_leg(settings: &Settings, zones: &Zones, from: &Site, to: &Site, speed_kmh: f64) -> Leg {
    let great_circle_km = great_circle_km(from, to);
    let crosses_zone = !zones.is_empty() && zones.crossed(from.position, to.position);
    let detour = if crosses_zone { settings.zone_detour_factor } else { 1.0 };
    let distance_km = great_circle_km * settings.road_factor * detour;
    let minutes = if speed_kmh > 0.0 { distance_km / speed_kmh * 60.0 } else { f64::INFINITY };
    Leg { distance_km, minutes, crosses_zone }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Distance;

    fn zone(ring: &[(f64, f64)]) -> Zone {
        Zone {
            id: "orange-isle".into(),
            polygon: ring.iter().map(|(lat, lng)| LatLng { lat: *lat, lng: *lng }).collect(),
            note: String::new(),
            active: true,
        }
    }

    #[test]
    fn distances_follow_the_great_circle_times_the_road_factor() {
        let settings = Settings::default();
        let a = LatLng { lat: 28.0, lng: 113.0 };
        let b = LatLng { lat: 28.1, lng: 113.0 };
        let leg = leg(&settings, &Zones::default(), a, b, 60.0);
        // 0.1 degree of latitude is about 11.1 km.
        assert!((leg.distance_km - 11.12 * 1.3).abs() < 0.05, "{leg:?}");
        assert!((leg.minutes - leg.distance_km).abs() < 1e-9, "60 km/h: a km a minute");
    }

    #[test]
    fn zones_contain_their_boundary_and_detour_crossing_routes() {
        let zones = Zones::new([&zone(&[(28.18, 112.95), (28.20, 112.95), (28.20, 112.96), (28.18, 112.96)])]);
        assert_eq!(zones.containing(LatLng { lat: 28.19, lng: 112.955 }), Some("orange-isle"));
        assert_eq!(
            zones.containing(LatLng { lat: 28.20, lng: 112.955 }),
            Some("orange-isle"),
            "the boundary is inside"
        );
        assert_eq!(zones.containing(LatLng { lat: 28.25, lng: 112.955 }), None);
        let west = LatLng { lat: 28.19, lng: 112.90 };
        let east = LatLng { lat: 28.19, lng: 113.00 };
        assert!(zones.crossed(west, east));
        let settings = Settings::default();
        let detoured = leg(&settings, &zones, west, east, 50.0);
        let direct = leg(&settings, &Zones::default(), west, east, 50.0);
        assert!((detoured.distance_km / direct.distance_km - settings.zone_detour_factor).abs() < 1e-9);
        let inside = LatLng { lat: 28.19, lng: 112.955 };
        assert!(!zones.crossed(west, inside), "a route into the zone's incident is not detoured");
    }

    proptest::proptest! {
        #[test]
        fn great_circle_is_geos_haversine_to_the_bit(
            from_lat in -90.0f64..=90.0, from_lng in -180.0f64..=180.0,
            to_lat in -90.0f64..=90.0, to_lng in -180.0f64..=180.0,
        ) {
            let (from, to) = (LatLng { lat: from_lat, lng: from_lng }, LatLng { lat: to_lat, lng: to_lng });
            let geo = Haversine.distance(point(from), point(to)) / 1000.0;
            let ours = great_circle_km(&Site::new(from), &Site::new(to));
            proptest::prop_assert_eq!(ours.to_bits(), geo.to_bits());
        }
    }
}
