//! What the board shows, built from the published state: the situation as
//! JSON for the board's script, and as GeoJSON for GIS tools. One reading
//! of the state serves both, so the map a duty officer sees and the layer
//! QGIS opens cannot disagree.

use serde::Serialize;

use crate::domain::assignment::{AssignedResource, Assignment};
use crate::domain::incident::{Incident, IncidentStatus, Need, NeedStatus};
use crate::domain::plan::NeedKey;
use crate::domain::team::Team;
use crate::domain::{LatLng, State, Timestamp};
use crate::engine::EngineHandle;

/// A stock level counts as near its floor when what is available above the
/// strategic minimum is at most this share of the minimum (or nothing).
pub const NEAR_FLOOR_SHARE: f64 = 0.25;

/// The whole picture, as the board's script reads it.
#[derive(Clone, Debug, Serialize)]
pub struct Situation {
    /// The log sequence this picture is of.
    pub sequence: u64,
    /// The server's time, RFC 3339.
    pub now: String,
    /// Every team.
    pub teams: Vec<TeamView>,
    /// Incidents not closed.
    pub incidents: Vec<IncidentView>,
    /// Needs of open incidents that are not filled or cancelled.
    pub open_needs: Vec<NeedView>,
    /// Every depot, with its stock at or near the floor.
    pub depots: Vec<DepotView>,
    /// Active impassable zones.
    pub zones: Vec<ZoneView>,
    /// Active assignments.
    pub assignments: Vec<AssignmentView>,
}

/// One team on the board.
#[derive(Clone, Debug, Serialize)]
pub struct TeamView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `AVAILABLE`, `EN_ROUTE`, ...
    pub status: &'static str,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// True when its last report is older than the stale limit (or it never reported).
    pub stale: bool,
    /// Seconds since its last report, when it reported.
    pub report_age_seconds: Option<i64>,
    /// Its active assignment.
    pub assignment_id: Option<String>,
}

/// One incident.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `FLOOD`, ...
    pub hazard: &'static str,
    /// `I` (most severe) to `IV`.
    pub level: &'static str,
    /// `ACTIVE`, `CONTAINED`.
    pub status: &'static str,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Its area, `[lat, lng]` vertices (may be empty).
    pub area: Vec<[f64; 2]>,
}

/// One need.
#[derive(Clone, Debug, Serialize)]
pub struct NeedView {
    /// Id.
    pub id: String,
    /// Its incident.
    pub incident_id: String,
    /// The incident's level.
    pub level: &'static str,
    /// What is needed, in words (`water_rescue tier <= 2`, `pump`).
    pub what: String,
    /// `team` or `supply`.
    pub kind: &'static str,
    /// How many (teams or units).
    pub wanted: i64,
    /// How many are assigned.
    pub filled: i64,
    /// `OPEN` or `PARTIAL`.
    pub status: &'static str,
}

/// One depot.
#[derive(Clone, Debug, Serialize)]
pub struct DepotView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// Its stock at or near the strategic minimum.
    pub low: Vec<LowStock>,
}

/// A stock level at or near its floor.
#[derive(Clone, Debug, Serialize)]
pub struct LowStock {
    /// Item code.
    pub item: String,
    /// On hand less reserved.
    pub available: i64,
    /// The strategic minimum.
    pub min_reserve: i64,
    /// True when available is at or below the minimum.
    pub at_floor: bool,
}

/// One impassable zone.
#[derive(Clone, Debug, Serialize)]
pub struct ZoneView {
    /// Id.
    pub id: String,
    /// Note.
    pub note: String,
    /// `[lat, lng]` vertices.
    pub polygon: Vec<[f64; 2]>,
}

/// One active assignment, with the line the map draws for it.
#[derive(Clone, Debug, Serialize)]
pub struct AssignmentView {
    /// Id.
    pub id: String,
    /// Its incident.
    pub incident_id: String,
    /// Its need.
    pub need_id: String,
    /// The team, for a team assignment.
    pub team_id: Option<String>,
    /// The depot, for a supply assignment.
    pub depot_id: Option<String>,
    /// What it carries, for a supply assignment (`3 pump`).
    pub supply: Option<String>,
    /// `DISPATCHED`, `EN_ROUTE`, ...
    pub status: &'static str,
    /// Where the resource is (the team's position, the depot).
    pub from: [f64; 2],
    /// The incident.
    pub to: [f64; 2],
    /// Estimated minutes to arrive, when it was made.
    pub eta_minutes: f64,
    /// Why this resource.
    pub reason: String,
}

fn point(position: &LatLng) -> [f64; 2] {
    [position.lat, position.lng]
}

/// The team as the board shows it at `now`, stale past `stale_after`.
pub fn team_view(team: &Team, now: Timestamp, stale_after_seconds: u64) -> TeamView {
    let age = team.last_report_at.map(|at| now.seconds_since(at));
    TeamView {
        id: team.id.clone(),
        name: team.profile.name.clone(),
        status: team.status.as_str(),
        lat: team.position.lat,
        lng: team.position.lng,
        stale: age.is_none_or(|age| age > i64::try_from(stale_after_seconds).unwrap_or(i64::MAX)),
        report_age_seconds: age,
        assignment_id: team.assignment_id.clone(),
    }
}

/// The incident as the board shows it.
pub fn incident_view(incident: &Incident) -> IncidentView {
    IncidentView {
        id: incident.id.clone(),
        title: incident.title.clone(),
        hazard: incident.hazard.as_str(),
        level: incident.level.as_str(),
        status: incident.status.as_str(),
        lat: incident.position.lat,
        lng: incident.position.lng,
        area: incident.area.iter().map(point).collect(),
    }
}

/// The need in words and its kind.
pub fn need_words(need: &Need) -> (String, &'static str) {
    match &need.key {
        NeedKey::Team { capability, min_tier } => (format!("{capability} tier <= {min_tier}"), "team"),
        NeedKey::Supply { item_code } => (item_code.clone(), "supply"),
    }
}

/// A need's status in the API's words.
pub fn need_status(need: &Need) -> &'static str {
    match need.status() {
        NeedStatus::Open => "OPEN",
        NeedStatus::Partial => "PARTIAL",
        NeedStatus::Filled => "FILLED",
        NeedStatus::Cancelled => "CANCELLED",
    }
}

fn need_view(need: &Need, incident: &Incident) -> NeedView {
    let (what, kind) = need_words(need);
    NeedView {
        id: need.id(),
        incident_id: need.incident_id.clone(),
        level: incident.level.as_str(),
        what,
        kind,
        wanted: need.amount,
        filled: need.filled,
        status: need_status(need),
    }
}

/// The assignment with the line the map draws for it.
pub fn assignment_view(state: &State, assignment: &Assignment) -> AssignmentView {
    let to = state.incidents.get(&assignment.incident_id).map(|incident| point(&incident.position)).unwrap_or_default();
    let (team_id, depot_id, supply, from) = match &assignment.resource {
        AssignedResource::Team { team_id } => {
            let from = state.teams.get(team_id).map(|team| point(&team.position)).unwrap_or(to);
            (Some(team_id.clone()), None, None, from)
        }
        AssignedResource::Supply { depot_id, item_code, quantity } => {
            let from = state.depots.get(depot_id).map(|depot| point(&depot.position)).unwrap_or(to);
            (None, Some(depot_id.clone()), Some(format!("{quantity} {item_code}")), from)
        }
    };
    AssignmentView {
        id: assignment.id(),
        incident_id: assignment.incident_id.clone(),
        need_id: crate::domain::incident::need_id(assignment.need_number),
        team_id,
        depot_id,
        supply,
        status: assignment.status.as_str(),
        from,
        to,
        eta_minutes: assignment.eta_minutes,
        reason: assignment.reason.clone(),
    }
}

/// The stock of `depot_id` at or near its floor.
fn low_stock(state: &State, depot_id: &str) -> Vec<LowStock> {
    let from = (depot_id.to_owned(), String::new());
    state
        .stock
        .range(from..)
        .take_while(|((depot, _), _)| depot == depot_id)
        .filter_map(|((_, item), stock)| {
            let available = stock.available();
            let margin = available - stock.min_reserve;
            let near = stock.min_reserve > 0 && (margin as f64) <= NEAR_FLOOR_SHARE * stock.min_reserve as f64;
            let empty = stock.min_reserve == 0 && available <= 0 && stock.on_hand > 0;
            (near || empty).then(|| LowStock {
                item: item.clone(),
                available,
                min_reserve: stock.min_reserve,
                at_floor: available <= stock.min_reserve,
            })
        })
        .collect()
}

/// The picture of `state` as the engine draws it now (its clock, its
/// staleness setting): what the board, its stream and the GeoJSON show.
pub fn live(engine: &EngineHandle, state: &State) -> Situation {
    situation(state, engine.now(), engine.dispatch_settings().stale_after_seconds)
}

/// True when `id` names an incident that is not closed: the only ones the
/// picture draws.
pub fn is_open_incident(state: &State, id: &str) -> bool {
    state.incidents.get(id).is_some_and(|incident| incident.status != IncidentStatus::Closed)
}

/// The needs not yet filled of incidents not closed, with their incident,
/// by need number: the board's open needs and the metric that counts them.
pub fn open_needs(state: &State) -> impl Iterator<Item = (&Need, &Incident)> {
    state.needs.values().filter_map(|need| {
        let incident = state.incidents.get(&need.incident_id)?;
        let unfilled = matches!(need.status(), NeedStatus::Open | NeedStatus::Partial);
        (unfilled && incident.status != IncidentStatus::Closed).then_some((&**need, &**incident))
    })
}

/// The situation at `now`.
pub fn situation(state: &State, now: Timestamp, stale_after_seconds: u64) -> Situation {
    let open = |incident: &&std::sync::Arc<Incident>| incident.status != IncidentStatus::Closed;
    let incidents: Vec<IncidentView> = state.incidents.values().filter(open).map(|i| incident_view(i)).collect();
    let open_needs = open_needs(state).map(|(need, incident)| need_view(need, incident)).collect();
    Situation {
        sequence: state.last_sequence,
        now: now.to_string(),
        teams: state.teams.values().map(|team| team_view(team, now, stale_after_seconds)).collect(),
        incidents,
        open_needs,
        depots: state
            .depots
            .values()
            .map(|depot| DepotView {
                id: depot.id.clone(),
                name: depot.name.clone(),
                lat: depot.position.lat,
                lng: depot.position.lng,
                low: low_stock(state, &depot.id),
            })
            .collect(),
        zones: state
            .zones
            .values()
            .filter(|zone| zone.active)
            .map(|zone| ZoneView {
                id: zone.id.clone(),
                note: zone.note.clone(),
                polygon: zone.polygon.iter().map(point).collect(),
            })
            .collect(),
        assignments: state
            .assignments
            .values()
            .filter(|assignment| assignment.status.is_active())
            .map(|assignment| assignment_view(state, assignment))
            .collect(),
    }
}

/// The GeoJSON layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Every layer in one collection.
    All,
    /// Teams (points).
    Teams,
    /// Depots (points).
    Depots,
    /// Incidents (points, and their areas as polygons).
    Incidents,
    /// Active impassable zones (polygons).
    Zones,
    /// Active assignments (lines from the resource to the incident).
    Assignments,
}

impl Layer {
    /// The layer of a `/geo/NAME.geojson` path.
    pub fn parse(name: &str) -> Option<Layer> {
        match name {
            "situation" => Some(Layer::All),
            "teams" => Some(Layer::Teams),
            "depots" => Some(Layer::Depots),
            "incidents" => Some(Layer::Incidents),
            "zones" => Some(Layer::Zones),
            "assignments" => Some(Layer::Assignments),
            _ => None,
        }
    }

    fn has(self, layer: Layer) -> bool {
        self == Layer::All || self == layer
    }
}

/// GeoJSON positions are `[longitude, latitude]`.
fn position([lat, lng]: [f64; 2]) -> Vec<f64> {
    vec![lng, lat]
}

fn ring(vertices: &[[f64; 2]]) -> Vec<Vec<f64>> {
    let mut ring: Vec<Vec<f64>> = vertices.iter().copied().map(position).collect();
    // RFC 7946: an exterior ring runs counter-clockwise (shoelace sign).
    let twice_area: f64 = ring.iter().zip(ring.iter().cycle().skip(1)).map(|(a, b)| a[0] * b[1] - b[0] * a[1]).sum();
    if twice_area < 0.0 {
        ring.reverse();
    }
    // A GeoJSON ring closes on its first position.
    if let (Some(first), Some(last)) = (ring.first().cloned(), ring.last()) {
        if &first != last {
            ring.push(first);
        }
    }
    ring
}

fn feature(
    layer: &str,
    id: &str,
    geometry: geojson::Value,
    mut properties: serde_json::Map<String, serde_json::Value>,
) -> geojson::Feature {
    properties.insert("layer".into(), layer.into());
    geojson::Feature {
        bbox: None,
        geometry: Some(geojson::Geometry::new(geometry)),
        id: Some(geojson::feature::Id::String(format!("{layer}/{id}"))),
        properties: Some(properties),
        foreign_members: None,
    }
}

fn properties(value: impl Serialize) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// The situation's `layer` as a GeoJSON feature collection, limited to
/// `incident` (its incident, needs' assignments and their teams and depots)
/// when given.
pub fn geojson(situation: &Situation, layer: Layer, incident: Option<&str>) -> geojson::FeatureCollection {
    let in_scope = |incident_id: &str| incident.is_none_or(|wanted| wanted == incident_id);
    let assignments: Vec<&AssignmentView> =
        situation.assignments.iter().filter(|assignment| in_scope(&assignment.incident_id)).collect();
    let mut features = Vec::new();
    if layer.has(Layer::Incidents) {
        for view in situation.incidents.iter().filter(|view| in_scope(&view.id)) {
            let mut props = properties(view);
            props.remove("area");
            features.push(feature(
                "incidents",
                &view.id,
                geojson::Value::Point(position([view.lat, view.lng])),
                props.clone(),
            ));
            if view.area.len() >= 3 {
                features.push(feature(
                    "incident-areas",
                    &view.id,
                    geojson::Value::Polygon(vec![ring(&view.area)]),
                    props,
                ));
            }
        }
    }
    if layer.has(Layer::Teams) {
        let assigned: std::collections::BTreeSet<&str> =
            assignments.iter().filter_map(|assignment| assignment.team_id.as_deref()).collect();
        for view in situation.teams.iter().filter(|view| incident.is_none() || assigned.contains(view.id.as_str())) {
            features.push(feature(
                "teams",
                &view.id,
                geojson::Value::Point(position([view.lat, view.lng])),
                properties(view),
            ));
        }
    }
    if layer.has(Layer::Depots) {
        let supplying: std::collections::BTreeSet<&str> =
            assignments.iter().filter_map(|assignment| assignment.depot_id.as_deref()).collect();
        for view in situation.depots.iter().filter(|view| incident.is_none() || supplying.contains(view.id.as_str())) {
            features.push(feature(
                "depots",
                &view.id,
                geojson::Value::Point(position([view.lat, view.lng])),
                properties(view),
            ));
        }
    }
    if layer.has(Layer::Zones) && incident.is_none() {
        for view in &situation.zones {
            let mut props = properties(view);
            props.remove("polygon");
            features.push(feature("zones", &view.id, geojson::Value::Polygon(vec![ring(&view.polygon)]), props));
        }
    }
    if layer.has(Layer::Assignments) {
        for view in assignments {
            let line = geojson::Value::LineString(vec![position(view.from), position(view.to)]);
            features.push(feature("assignments", &view.id, line, properties(view)));
        }
    }
    geojson::FeatureCollection { bbox: None, features, foreign_members: None }
}
