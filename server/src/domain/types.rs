//! Small value types shared by every part of the domain: time, positions,
//! levels, hazards and capabilities.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time, in nanoseconds since the Unix epoch (UTC).
///
/// The domain never reads a clock: every time it sees comes from the engine's
/// injected clock through [`crate::domain::Context`], so drills and replays
/// see exactly the times the live run saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Nanoseconds in one second.
    pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

    /// The time `seconds` after the epoch.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds.saturating_mul(Self::NANOS_PER_SECOND))
    }

    /// Whole seconds since the epoch (rounded towards minus infinity).
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SECOND)
    }

    /// The nanoseconds past [`Timestamp::unix_seconds`], 0..1e9.
    pub fn subsec_nanos(self) -> i32 {
        // The remainder is in 0..1e9, which always fits an i32.
        i32::try_from(self.0.rem_euclid(Self::NANOS_PER_SECOND)).unwrap_or(0)
    }

    /// This time plus a number of seconds (saturating).
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(Self::NANOS_PER_SECOND)))
    }

    /// Whole seconds from `earlier` to `self` (negative when `self` is earlier).
    pub fn seconds_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0) / Self::NANOS_PER_SECOND
    }

    /// Minutes from `earlier` to `self`, as a float (negative when `self` is earlier).
    pub fn minutes_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 60e9
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.unix_seconds(), self.subsec_nanos() as u32) {
            Some(time) => write!(f, "{}", time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => write!(f, "{}ns", self.0),
        }
    }
}

/// A position in degrees (WGS 84).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lng: f64,
}

impl fmt::Display for LatLng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:.5}, {:.5})", self.lat, self.lng)
    }
}

/// A response level. `I` is the most severe.
///
/// The derived order runs from the most severe to the least (`I < II`), so
/// "more severe" is "smaller"; use [`Level::is_more_severe_than`] to say it in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Most severe.
    I,
    /// Severe.
    II,
    /// Serious.
    III,
    /// Least severe.
    IV,
}

impl Level {
    /// Every level, from the most severe.
    pub const ALL: [Level; 4] = [Level::I, Level::II, Level::III, Level::IV];

    /// True when `self` is strictly more severe than `other`.
    pub fn is_more_severe_than(self, other: Level) -> bool {
        self < other
    }

    /// 0 for `I` up to 3 for `IV`: an index into per-level arrays.
    pub fn index(self) -> usize {
        match self {
            Level::I => 0,
            Level::II => 1,
            Level::III => 2,
            Level::IV => 3,
        }
    }

    /// The roman numeral, as written in plans and drill scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::I => "I",
            Level::II => "II",
            Level::III => "III",
            Level::IV => "IV",
        }
    }

    /// Parses `"I"` .. `"IV"`.
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "I" => Some(Level::I),
            "II" => Some(Level::II),
            "III" => Some(Level::III),
            "IV" => Some(Level::IV),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of hazard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Hazard {
    PowerOutage,
    Hazmat,
    Flood,
    Fire,
    Earthquake,
    Mine,
    ForestFire,
    Other,
}

impl Hazard {
    /// Every hazard, in enum order.
    pub const ALL: [Hazard; 8] = [
        Hazard::PowerOutage,
        Hazard::Hazmat,
        Hazard::Flood,
        Hazard::Fire,
        Hazard::Earthquake,
        Hazard::Mine,
        Hazard::ForestFire,
        Hazard::Other,
    ];

    /// The name used in files: `"FLOOD"` for `HAZARD_FLOOD`.
    pub fn as_str(self) -> &'static str {
        match self {
            Hazard::PowerOutage => "POWER_OUTAGE",
            Hazard::Hazmat => "HAZMAT",
            Hazard::Flood => "FLOOD",
            Hazard::Fire => "FIRE",
            Hazard::Earthquake => "EARTHQUAKE",
            Hazard::Mine => "MINE",
            Hazard::ForestFire => "FOREST_FIRE",
            Hazard::Other => "OTHER",
        }
    }

    /// Parses the name used in files.
    pub fn parse(text: &str) -> Option<Hazard> {
        Hazard::ALL.into_iter().find(|hazard| hazard.as_str() == text)
    }
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a team can do, and how well (tier 1 is the most capable).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Capability {
    /// `[a-z][a-z0-9_]{0,31}`.
    pub code: String,
    /// 1..=4.
    pub tier: u32,
}

/// A need for `count` teams with `capability` at `min_tier` or better.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TeamNeed {
    /// Capability code.
    pub capability: String,
    /// A team qualifies with `tier <= min_tier`.
    pub min_tier: u32,
    /// How many teams.
    pub count: u32,
}

/// A need for `quantity` units of one catalog item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SupplyNeed {
    /// Catalog item code.
    pub item_code: String,
    /// Units.
    pub quantity: i64,
}
