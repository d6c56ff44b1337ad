//! Fixture files: the TOML format of `shared/design/drills.md` (`[[item]]`,
//! `[[depot]]`, `[[stock]]`, `[[team]]`, `[[plan]]`), parsed into domain values. Every
//! entry remembers its file, line and key, so any error names them. Drill
//! scripts reuse the entry types.

use serde::Deserialize;
use toml::Spanned;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::import::{Fixture, Sourced, StockSetting, TeamSetting};
use crate::domain::plan::{LevelRequirement, Plan, Task, Trigger};
use crate::domain::reserve::{Depot, Item};
use crate::domain::team::TeamProfile;
use crate::domain::{Capability, Hazard, LatLng, Level, SupplyNeed, TeamNeed, Timestamp};

/// `[[item]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemEntry {
    code: String,
    name: String,
    unit: String,
    #[serde(default)]
    category: String,
}

/// `[[depot]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepotEntry {
    id: String,
    name: String,
    #[serde(default)]
    organization: String,
    position: [f64; 2],
}

/// `[[stock]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockEntry {
    depot: String,
    item: String,
    on_hand: i64,
    #[serde(default)]
    min_reserve: i64,
}

/// `{ code = "water_rescue", tier = 1 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityEntry {
    code: String,
    tier: u32,
}

/// `[[team]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEntry {
    id: String,
    name: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    capabilities: Vec<CapabilityEntry>,
    headcount: u32,
    home: [f64; 2],
    speed_kmh: f64,
    #[serde(default)]
    insurance_expires: Option<TimeEntry>,
}

/// `[[plan]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    id: String,
    name: String,
    hazard: String,
    #[serde(default)]
    level: Vec<PlanLevelEntry>,
    #[serde(default)]
    trigger: Vec<TriggerEntry>,
}

/// `[[plan.level]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLevelEntry {
    level: String,
    #[serde(default)]
    teams: Vec<TeamNeedEntry>,
    #[serde(default)]
    supplies: Vec<SupplyNeedEntry>,
    #[serde(default)]
    tasks: Vec<TaskEntry>,
}

/// `{ capability = "water_rescue", min_tier = 2, count = 4 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamNeedEntry {
    /// Capability code.
    pub capability: String,
    /// Minimum tier.
    pub min_tier: u32,
    /// How many teams.
    pub count: u32,
}

/// `{ item = "sandbag", quantity = 30000 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyNeedEntry {
    /// Item code.
    pub item: String,
    /// Units.
    pub quantity: i64,
}

/// `{ title = "...", lead = "...", supporting = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEntry {
    title: String,
    #[serde(default)]
    lead: String,
    #[serde(default)]
    supporting: Vec<String>,
}

/// `[[plan.trigger]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerEntry {
    metric: String,
    threshold: f64,
    level: String,
}

/// Parses a level written `"I"` .. `"IV"`.
pub fn level(field: &str, text: &str) -> DomainResult<Level> {
    Level::parse(text).ok_or_else(|| DomainError::invalid(field, format!("{text:?} is not a level (I, II, III or IV)")))
}

/// Parses a hazard written without its prefix (`"FLOOD"`).
pub fn hazard(field: &str, text: &str) -> DomainResult<Hazard> {
    Hazard::parse(text).ok_or_else(|| {
        let names: Vec<_> = Hazard::ALL.iter().map(|hazard| hazard.as_str()).collect();
        DomainError::invalid(field, format!("{text:?} is not a hazard ({})", names.join(", ")))
    })
}

impl TeamNeedEntry {
    /// As a domain need.
    pub fn to_need(&self) -> TeamNeed {
        TeamNeed { capability: self.capability.clone(), min_tier: self.min_tier, count: self.count }
    }
}

impl SupplyNeedEntry {
    /// As a domain need.
    pub fn to_need(&self) -> SupplyNeed {
        SupplyNeed { item_code: self.item.clone(), quantity: self.quantity }
    }
}

fn plan_from_entry(source: &str, entry: PlanEntry) -> DomainResult<Plan> {
    let mut levels = Vec::with_capacity(entry.level.len());
    for (index, requirement) in entry.level.into_iter().enumerate() {
        levels.push(LevelRequirement {
            level: level(&format!("{source}.level[{index}].level"), &requirement.level)?,
            teams: requirement.teams.iter().map(TeamNeedEntry::to_need).collect(),
            supplies: requirement.supplies.iter().map(SupplyNeedEntry::to_need).collect(),
            tasks: requirement
                .tasks
                .into_iter()
                .map(|task| Task { title: task.title, lead: task.lead, supporting: task.supporting })
                .collect(),
        });
    }
    let mut triggers = Vec::with_capacity(entry.trigger.len());
    for (index, trigger) in entry.trigger.into_iter().enumerate() {
        triggers.push(Trigger {
            level: level(&format!("{source}.trigger[{index}].level"), &trigger.level)?,
            metric: trigger.metric,
            threshold: trigger.threshold,
        });
    }
    Ok(Plan {
        hazard: hazard(&format!("{source}.hazard"), &entry.hazard)?,
        id: entry.id,
        name: entry.name,
        levels,
        triggers,
        version: 0,
    })
}

/// A time: an RFC 3339 string or a TOML date-time.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TimeEntry {
    /// `"2027-06-30T00:00:00Z"`.
    Text(String),
    /// `2027-06-30T00:00:00Z` (unquoted).
    Toml(toml::value::Datetime),
}

impl TimeEntry {
    /// The time, or an error naming `field`.
    pub fn to_timestamp(&self, field: &str) -> DomainResult<Timestamp> {
        let text = match self {
            TimeEntry::Text(text) => text.clone(),
            TimeEntry::Toml(datetime) => datetime.to_string(),
        };
        parse_time(&text).ok_or_else(|| {
            DomainError::invalid(field, format!("{text:?} is not an RFC 3339 time such as 2027-06-30T00:00:00Z"))
        })
    }
}

/// Parses an RFC 3339 time, or a bare date as midnight UTC.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let parsed =
        chrono::DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&chrono::Utc)).or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
                .map(|time| time.and_utc())
        })?;
    let nanos = parsed.timestamp_nanos_opt()?;
    Some(Timestamp(nanos))
}

/// The whole fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    #[serde(default)]
    item: Vec<Spanned<ItemEntry>>,
    #[serde(default)]
    depot: Vec<Spanned<DepotEntry>>,
    #[serde(default)]
    stock: Vec<Spanned<StockEntry>>,
    #[serde(default)]
    team: Vec<Spanned<TeamEntry>>,
    #[serde(default)]
    plan: Vec<Spanned<PlanEntry>>,
}

/// Where an entry starts: `name:line: key[index]`.
pub struct Locator<'a> {
    name: &'a str,
    text: &'a str,
}

impl<'a> Locator<'a> {
    /// A locator over the file `name` with contents `text`.
    pub fn new(name: &'a str, text: &'a str) -> Self {
        Locator { name, text }
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.text.get(..offset).map(|before| before.matches('\n').count() + 1).unwrap_or(1)
    }

    /// The source label of the `index`th entry of `key`, spanning `span`.
    pub fn source(&self, key: &str, index: usize, span: std::ops::Range<usize>) -> String {
        format!("{}:{}: {key}[{index}]", self.name, self.line(span.start))
    }

    /// A TOML syntax or shape error as an `INVALID_ARGUMENT` naming file, line and key.
    pub fn syntax_error(&self, error: &toml::de::Error) -> DomainError {
        let line = error.span().map(|span| self.line(span.start)).unwrap_or(1);
        let message = error.message().trim().to_owned();
        DomainError::invalid(format!("{}:{line}", self.name), message)
    }
}

fn position(field: String, pair: [f64; 2]) -> (String, LatLng) {
    (field, LatLng { lat: pair[0], lng: pair[1] })
}

/// The entries of a world, as fixtures and drill scripts write them.
#[derive(Debug, Default)]
pub struct Entries {
    /// `[[item]]`.
    pub items: Vec<Spanned<ItemEntry>>,
    /// `[[depot]]`.
    pub depots: Vec<Spanned<DepotEntry>>,
    /// `[[stock]]`.
    pub stock: Vec<Spanned<StockEntry>>,
    /// `[[team]]`.
    pub teams: Vec<Spanned<TeamEntry>>,
    /// `[[plan]]`.
    pub plans: Vec<Spanned<PlanEntry>>,
}

/// Converts the `[[item]]`, `[[depot]]`, `[[stock]]`, `[[team]]` and
/// `[[plan]]` entries (shared by fixtures and drill scripts) into a domain fixture.
pub fn entries_to_fixture(locator: &Locator<'_>, entries: Entries) -> DomainResult<Fixture> {
    let Entries { items, depots, stock, teams, plans } = entries;
    let mut fixture = Fixture::default();
    for (index, entry) in items.into_iter().enumerate() {
        let source = locator.source("item", index, entry.span());
        let entry = entry.into_inner();
        let value = Item { code: entry.code, name: entry.name, unit: entry.unit, category: entry.category };
        fixture.items.push(Sourced { source, value });
    }
    for (index, entry) in depots.into_iter().enumerate() {
        let source = locator.source("depot", index, entry.span());
        let entry = entry.into_inner();
        let (_, position) = position(format!("{source}.position"), entry.position);
        let value = Depot { id: entry.id, name: entry.name, organization: entry.organization, position };
        fixture.depots.push(Sourced { source, value });
    }
    for (index, entry) in stock.into_iter().enumerate() {
        let source = locator.source("stock", index, entry.span());
        let entry = entry.into_inner();
        let value = StockSetting {
            depot_id: entry.depot,
            item_code: entry.item,
            on_hand: entry.on_hand,
            min_reserve: entry.min_reserve,
        };
        fixture.stock.push(Sourced { source, value });
    }
    for (index, entry) in teams.into_iter().enumerate() {
        let source = locator.source("team", index, entry.span());
        let entry = entry.into_inner();
        let insurance_expires = entry
            .insurance_expires
            .as_ref()
            .map(|time| time.to_timestamp(&format!("{source}.insurance_expires")))
            .transpose()?;
        let profile = TeamProfile {
            name: entry.name,
            organization: entry.organization,
            capabilities: entry
                .capabilities
                .into_iter()
                .map(|capability| Capability { code: capability.code, tier: capability.tier })
                .collect(),
            headcount: entry.headcount,
            home: LatLng { lat: entry.home[0], lng: entry.home[1] },
            speed_kmh: entry.speed_kmh,
            insurance_expires,
            members: Vec::new(),
        };
        fixture.teams.push(Sourced { source, value: TeamSetting { id: entry.id, profile } });
    }
    for (index, entry) in plans.into_iter().enumerate() {
        let source = locator.source("plan", index, entry.span());
        let value = plan_from_entry(&source, entry.into_inner())?;
        fixture.plans.push(Sourced { source, value });
    }
    Ok(fixture)
}

/// Parses a fixture file. Errors name the file, the line and the key.
pub fn parse(name: &str, text: &str) -> DomainResult<Fixture> {
    let locator = Locator::new(name, text);
    let file: FixtureFile = toml::from_str(text).map_err(|error| locator.syntax_error(&error))?;
    let entries =
        Entries { items: file.item, depots: file.depot, stock: file.stock, teams: file.team, plans: file.plan };
    entries_to_fixture(&locator, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[item]]
code = "sandbag"
name = "Sandbag, woven, 50 kg"
unit = "bag"
category = "flood_control"

[[depot]]
id = "D-YUELU"
name = "Yuelu district reserve"
organization = "City emergency management bureau"
position = [28.1950, 112.9380]

[[stock]]
depot = "D-YUELU"
item = "sandbag"
on_hand = 20000
min_reserve = 5000

[[team]]
id = "WR-01"
name = "Water rescue squad 1"
organization = "Fire and rescue detachment"
capabilities = [{ code = "water_rescue", tier = 1 }, { code = "search_rescue", tier = 2 }]
headcount = 12
home = [28.2100, 112.9700]
speed_kmh = 50
insurance_expires = "2027-06-30T00:00:00Z"
"#;

    #[test]
    fn parses_the_documented_example_with_sources() {
        let fixture = parse("city.toml", SAMPLE).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(fixture.items[0].value.code, "sandbag");
        assert_eq!(fixture.items[0].source, "city.toml:2: item[0]");
        assert_eq!(fixture.depots[0].value.position, LatLng { lat: 28.195, lng: 112.938 });
        assert_eq!(fixture.stock[0].value.on_hand, 20_000);
        assert_eq!(fixture.stock[0].source, "city.toml:14: stock[0]");
        let team = &fixture.teams[0].value;
        assert_eq!(team.profile.capabilities.len(), 2);
        assert_eq!(team.profile.insurance_expires, parse_time("2027-06-30"));
    }

    #[test]
    fn an_unknown_key_names_the_file_and_line() {
        let text = SAMPLE.replace("min_reserve = 5000", "min_reserve = 5000\nfloor = 3");
        let error = parse("city.toml", &text).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error.starts_with("city.toml:19"), "{error}");
        assert!(error.contains("floor"), "{error}");
    }

    #[test]
    fn a_bad_time_names_the_entry_and_key() {
        let text = SAMPLE.replace("2027-06-30T00:00:00Z", "next summer");
        let error = parse("city.toml", &text).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error.starts_with("city.toml:20: team[0].insurance_expires"), "{error}");
    }
}
