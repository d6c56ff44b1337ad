//! Pages rendered on the server: one incident (`/incidents/ID`), and the
//! after-action report of an incident, one self-contained HTML file (its
//! map as inline SVG, the timeline of every event with actor and time, per
//! need the time to fill and to arrive as an SVG chart, shortfalls and
//! reserve overrides). The board and these pages share the map drawing in
//! `map_svg`, so what an operator saw and what the report shows agree.

use std::fmt::Write as _;

use crate::domain::assignment::AssignedResource;
use crate::domain::event::{Event, LogRecord};
use crate::domain::incident::{Incident, LevelCause};
use crate::domain::{State, Timestamp};
use crate::engine::EngineHandle;
use crate::store::StoreError;

use super::view;

/// Most log records one page reads for an incident's timeline.
pub const MAX_TIMELINE_SCAN: u64 = 200_000;

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// No such incident.
    NotFound(String),
    /// The log could not be read.
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        PageError::Store(error)
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page saying what was not found.
pub fn not_found(what: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Not found</title><body><p>{}</p><p><a href=\"/\">Back to the board</a></p></body></html>",
        escape(what)
    )
}

/// The log records about `incident` up to record `last` (the state the
/// page draws), in order: found by time from its declaration (a binary
/// search over the log), read forward, at most [`MAX_TIMELINE_SCAN`]
/// records. The second value is true when the scan stopped at that bound.
pub fn timeline(engine: &EngineHandle, incident: &Incident, last: u64) -> Result<(Vec<LogRecord>, bool), StoreError> {
    // The first record at or after the declaration.
    let (mut low, mut high) = (1u64, last.max(1));
    while low < high {
        let middle = low + (high - low) / 2;
        match engine.read_log(middle, 1)?.first() {
            Some(record) if record.time < incident.declared_at => low = middle + 1,
            _ => high = middle,
        }
    }
    let mut records = Vec::new();
    let mut next = low;
    let mut scanned = 0;
    while next <= last {
        let chunk = engine.read_log(next, 1_024)?;
        if chunk.is_empty() {
            break;
        }
        for record in chunk {
            next = record.sequence + 1;
            scanned += 1;
            if record.event.touched().incident_ids.iter().any(|id| id == &incident.id) {
                records.push(record);
            }
            if scanned >= MAX_TIMELINE_SCAN {
                return Ok((records, next <= last));
            }
        }
    }
    Ok((records, false))
}

/// Per need: when it was raised, when it was first filled whole, and when
/// the first assigned resource arrived (went `ON_SCENE`).
struct NeedTimes {
    id: String,
    what: String,
    raised: Timestamp,
    filled: Option<Timestamp>,
    arrived: Option<Timestamp>,
}

fn need_times(state: &State, incident: &Incident, records: &[LogRecord]) -> Vec<NeedTimes> {
    let fills = crate::domain::fills::Fills::of(records);
    state
        .needs_of(incident)
        .map(|need| {
            let fill = fills.get(need.number);
            NeedTimes {
                id: need.id(),
                what: view::need_words(need).0,
                raised: need.raised_at,
                filled: fill.and_then(|fill| fill.filled),
                arrived: fill.and_then(|fill| fill.reached),
            }
        })
        .collect()
}

/// The map of `situation`, limited to `incident` when given, as inline SVG.
pub fn map_svg(situation: &view::Situation, incident: Option<&str>, width: u32, height: u32) -> String {
    let in_scope = |id: &str| incident.is_none_or(|wanted| wanted == id);
    let assignments: Vec<&view::AssignmentView> =
        situation.assignments.iter().filter(|assignment| in_scope(&assignment.incident_id)).collect();
    let mut points: Vec<[f64; 2]> = Vec::new();
    for view in situation.incidents.iter().filter(|view| in_scope(&view.id)) {
        points.push([view.lat, view.lng]);
        points.extend(view.area.iter().copied());
    }
    for assignment in &assignments {
        points.push(assignment.from);
    }
    if incident.is_none() {
        points.extend(situation.teams.iter().map(|team| [team.lat, team.lng]));
        points.extend(situation.depots.iter().map(|depot| [depot.lat, depot.lng]));
    }
    if points.is_empty() {
        return format!("<svg class=\"map\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"map\"><text x=\"20\" y=\"40\">Nothing to draw yet.</text></svg>");
    }
    let (mut south, mut north, mut west, mut east) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for [lat, lng] in &points {
        south = south.min(*lat);
        north = north.max(*lat);
        west = west.min(*lng);
        east = east.max(*lng);
    }
    // A margin, and at least ~1 km across, so one point is not a singularity.
    let pad_lat = ((north - south) * 0.08).max(0.005);
    let pad_lng = ((east - west) * 0.08).max(0.005);
    let (south, north, west, east) = (south - pad_lat, north + pad_lat, west - pad_lng, east + pad_lng);
    // Equirectangular, with longitude shrunk by cos(latitude): true to shape at city scale.
    let squeeze = ((south + north) / 2.0).to_radians().cos().max(0.1);
    let span_x = (east - west) * squeeze;
    let span_y = north - south;
    let scale = (f64::from(width) / span_x).min(f64::from(height) / span_y);
    // Centred in the frame.
    let offset_x = (f64::from(width) - span_x * scale) / 2.0;
    let offset_y = (f64::from(height) - span_y * scale) / 2.0;
    let x = |lng: f64| offset_x + (lng - west) * squeeze * scale;
    let y = |lat: f64| offset_y + (north - lat) * scale;
    let mut svg = String::new();
    let _ =
        write!(svg, "<svg class=\"map\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"situation map\">");
    svg.push_str("<rect class=\"sea\" x=\"0\" y=\"0\" width=\"100%\" height=\"100%\"/>");
    if incident.is_none() {
        for zone in &situation.zones {
            let path: Vec<String> =
                zone.polygon.iter().map(|[lat, lng]| format!("{:.1},{:.1}", x(*lng), y(*lat))).collect();
            let _ = write!(
                svg,
                "<polygon class=\"zone\" points=\"{}\"><title>zone {}: {}</title></polygon>",
                path.join(" "),
                escape(&zone.id),
                escape(&zone.note)
            );
        }
    }
    for view in situation.incidents.iter().filter(|view| in_scope(&view.id)) {
        if view.area.len() >= 3 {
            let path: Vec<String> =
                view.area.iter().map(|[lat, lng]| format!("{:.1},{:.1}", x(*lng), y(*lat))).collect();
            let _ = write!(svg, "<polygon class=\"area level-{}\" points=\"{}\"/>", view.level, path.join(" "));
        }
    }
    for assignment in &assignments {
        let _ = write!(
            svg,
            "<line class=\"assignment {}\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"><title>{} {}</title></line>",
            assignment.status,
            x(assignment.from[1]),
            y(assignment.from[0]),
            x(assignment.to[1]),
            y(assignment.to[0]),
            escape(&assignment.id),
            assignment.status
        );
    }
    if incident.is_none() {
        for depot in &situation.depots {
            let low = if depot.low.is_empty() { "" } else { " low" };
            let _ = write!(svg, "<rect class=\"depot{low}\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\"><title>depot {}</title></rect>", x(depot.lng) - 4.5, y(depot.lat) - 4.5, escape(&depot.name));
        }
        for team in &situation.teams {
            let stale = if team.stale { " stale" } else { "" };
            let _ = write!(
                svg,
                "<circle class=\"team {}{stale}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{} {}</title></circle>",
                team.status,
                x(team.lng),
                y(team.lat),
                escape(&team.id),
                team.status
            );
        }
    } else {
        for assignment in &assignments {
            let _ = write!(
                svg,
                "<circle class=\"team {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\"><title>{}</title></circle>",
                assignment.status,
                x(assignment.from[1]),
                y(assignment.from[0]),
                escape(assignment.team_id.as_deref().or(assignment.depot_id.as_deref()).unwrap_or(""))
            );
        }
    }
    for view in situation.incidents.iter().filter(|view| in_scope(&view.id)) {
        let _ = write!(svg, "<g class=\"incident level-{}\"><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"9\"/><text x=\"{:.1}\" y=\"{:.1}\">{} ({})</text><title>{}</title></g>", view.level, x(view.lng), y(view.lat), x(view.lng) + 12.0, y(view.lat) + 4.0, escape(&view.id), view.level, escape(&view.title));
    }
    svg.push_str("</svg>");
    svg
}

/// The styles the server-rendered pages use (the board has its own file).
const PAGE_CSS: &str = include_str!("assets/page.css");

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{PAGE_CSS}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

fn cause(cause: &LevelCause) -> String {
    match cause {
        LevelCause::Operator => "by an operator".to_owned(),
        LevelCause::Trigger { metric, value, threshold } => format!("trigger: {metric} = {value} >= {threshold}"),
    }
}

/// The body shared by the incident page and its after-action report.
fn incident_body(engine: &EngineHandle, id: &str, report: bool) -> Result<(String, String), PageError> {
    let state = engine.snapshot();
    let incident =
        state.incidents.get(id).cloned().ok_or_else(|| PageError::NotFound(format!("no incident {id:?}")))?;
    let (records, truncated) = timeline(engine, &incident, state.last_sequence)?;
    let now = engine.now();
    let mut body = String::new();
    let title = format!("{}: {}", incident.id, incident.title);
    let _ = write!(
        body,
        "<header><h1>{}</h1><p class=\"facts\"><span class=\"level level-{}\">level {}</span> {} · {} · declared {}{}</p>{}</header>",
        escape(&title),
        incident.level.as_str(),
        incident.level.as_str(),
        incident.hazard.as_str(),
        incident.status.as_str(),
        incident.declared_at,
        incident.closed_at.map(|at| format!(" · closed {at}")).unwrap_or_default(),
        if report { format!("<p class=\"facts\">After-action report, written {now}.</p>") } else { "<p><a href=\"/\">Back to the board</a></p>".to_owned() }
    );
    // The map: this incident, its area and every assignment it had.
    // Drawn scoped to the incident, the map needs only the incident and its
    // assignments: no view of the whole roster is built for it.
    let scoped = view::Situation {
        sequence: state.last_sequence,
        now: now.to_string(),
        teams: Vec::new(),
        incidents: vec![view::incident_view(&incident)],
        open_needs: Vec::new(),
        depots: Vec::new(),
        zones: Vec::new(),
        assignments: state
            .assignments
            .values()
            .filter(|assignment| assignment.incident_id == incident.id && (report || assignment.status.is_active()))
            .map(|assignment| view::assignment_view(&state, assignment))
            .collect(),
    };
    let _ = write!(body, "<section><h2>Map</h2>{}</section>", map_svg(&scoped, Some(&incident.id), 900, 420));

    body.push_str("<section><h2>Needs</h2><table><thead><tr><th>need</th><th>what</th><th>wanted</th><th>filled</th><th>status</th></tr></thead><tbody>");
    for need in state.needs_of(&incident) {
        let (what, _) = view::need_words(need);
        let _ = write!(
            body,
            "<tr class=\"need\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&need.id()),
            escape(&what),
            need.amount,
            need.filled,
            view::need_status(need)
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str("<section><h2>Assignments</h2><table><thead><tr><th>assignment</th><th>resource</th><th>need</th><th>status</th><th>ETA</th><th>distance</th><th>reason</th></tr></thead><tbody>");
    let mut overrides = Vec::new();
    for assignment in state.assignments.values().filter(|assignment| assignment.incident_id == incident.id) {
        let resource = match &assignment.resource {
            AssignedResource::Team { team_id } => format!("team {team_id}"),
            AssignedResource::Supply { depot_id, item_code, quantity } => {
                format!("{quantity} {item_code} from {depot_id}")
            }
        };
        if assignment.reserve_override {
            overrides.push(format!(
                "{}: {} ({} below the floor)",
                assignment.id(),
                resource,
                assignment.override_quantity
            ));
        }
        let _ = write!(
            body,
            "<tr class=\"assignment\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} min</td><td>{:.1} km</td><td>{}</td></tr>",
            escape(&assignment.id()),
            escape(&resource),
            escape(&crate::domain::incident::need_id(assignment.need_number)),
            assignment.status.as_str(),
            assignment.eta_minutes,
            assignment.distance_km,
            escape(&assignment.reason)
        );
    }
    body.push_str("</tbody></table></section>");

    body.push_str("<section><h2>Level history</h2><ul class=\"levels\">");
    let _ = write!(
        body,
        "<li>{}: declared at level {}</li>",
        incident.declared_at,
        records
            .iter()
            .find_map(|record| match &record.event {
                Event::IncidentDeclared { incident } => Some(incident.level.as_str()),
                _ => None,
            })
            .unwrap_or(incident.level.as_str())
    );
    for record in &records {
        if let Event::IncidentLevelChanged { from, to, cause: why, .. } = &record.event {
            let _ = write!(
                body,
                "<li>{}: {} → {} ({}), {}</li>",
                record.time,
                from.as_str(),
                to.as_str(),
                escape(&cause(why)),
                escape(&record.actor)
            );
        }
    }
    body.push_str("</ul>");
    if let Some(plan) = state.incident_plan(&incident) {
        let _ = write!(body, "<p>Plan {} v{}; triggers:</p><ul>", escape(&plan.id), plan.version);
        for trigger in &plan.triggers {
            let _ = write!(
                body,
                "<li>{} >= {} → level {}</li>",
                escape(&trigger.metric),
                trigger.threshold,
                trigger.level.as_str()
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");

    if report {
        let times = need_times(&state, &incident, &records);
        body.push_str("<section><h2>Time to fill and to arrive</h2>");
        body.push_str(&need_chart(&chart_rows(&times)));
        body.push_str("</section>");
        let shortfalls: Vec<String> = records
            .iter()
            .filter_map(|record| match &record.event {
                Event::DispatchCompleted { shortfalls, .. } => Some(
                    shortfalls
                        .iter()
                        .filter(|shortfall| shortfall.incident_id == incident.id)
                        .map(|shortfall| {
                            format!(
                                "{}: {} short for {} ({})",
                                record.time,
                                shortfall.missing,
                                escape(&crate::domain::incident::need_id(shortfall.need_number)),
                                escape(&shortfall.reason)
                            )
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        body.push_str("<section><h2>Shortfalls</h2>");
        body.push_str(&bullets(shortfalls, "None recorded."));
        body.push_str("<h2>Reserve overrides</h2>");
        body.push_str(&bullets(overrides.iter().map(|line| escape(line)), "None."));
        body.push_str("</section>");
    }

    body.push_str("<section><h2>Timeline</h2><table class=\"timeline\"><thead><tr><th>time</th><th>actor</th><th>event</th><th>what</th></tr></thead><tbody>");
    for record in &records {
        let _ = write!(
            body,
            "<tr class=\"event\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            record.time,
            escape(&record.actor),
            record.event.kind(),
            escape(&record.event.summary())
        );
    }
    body.push_str("</tbody></table>");
    if truncated {
        let _ = write!(body, "<p class=\"note\">The timeline stops after {MAX_TIMELINE_SCAN} log records; `muster audit --incident {}` lists them all.</p>", escape(&incident.id));
    }
    body.push_str("</section>");
    Ok((title, body))
}

/// One bar of the chart: a need, minutes to fill it and to arrive.
pub struct ChartRow {
    /// The need, in words.
    pub label: String,
    /// Minutes from raised to filled whole, if it was.
    pub fill: Option<f64>,
    /// Minutes from raised to the first arrival, if any.
    pub arrive: Option<f64>,
}

fn chart_rows(times: &[NeedTimes]) -> Vec<ChartRow> {
    times
        .iter()
        .map(|need| ChartRow {
            label: format!("{} {}", need.id, need.what),
            fill: need.filled.map(|at| at.minutes_since(need.raised)),
            arrive: need.arrived.map(|at| at.minutes_since(need.raised)),
        })
        .collect()
}

/// Horizontal bars per need: raised → filled (dark) and → arrived (light), in minutes.
pub fn need_chart(rows: &[ChartRow]) -> String {
    if rows.is_empty() {
        return "<p>No needs.</p>".to_owned();
    }
    let longest = rows.iter().flat_map(|row| [row.fill, row.arrive].into_iter().flatten()).fold(1.0_f64, f64::max);
    let row = 26.0;
    let height = row * rows.len() as f64 + 30.0;
    let (left, width) = (260.0, 560.0);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"time to fill and to arrive\">",
        left + width + 80.0
    );
    for (index, need) in rows.iter().enumerate() {
        let y = 10.0 + row * index as f64;
        let label: String = need.label.chars().take(40).collect();
        let _ = write!(svg, "<text x=\"0\" y=\"{:.1}\">{}</text>", y + 14.0, escape(&label));
        if let Some(arrived) = need.arrive {
            let length = arrived / longest * width;
            let _ = write!(svg, "<rect class=\"arrive\" x=\"{left}\" y=\"{y:.1}\" width=\"{length:.1}\" height=\"18\"><title>arrived after {arrived:.0} min</title></rect>");
        }
        match need.fill {
            Some(filled) => {
                let length = filled / longest * width;
                let reach = need.arrive.map_or(0.0, |arrived| arrived / longest * width);
                let words = match need.arrive {
                    Some(arrived) => format!("filled {filled:.0} min · arrived {arrived:.0} min"),
                    None => format!("filled {filled:.0} min · no arrival yet"),
                };
                let _ = write!(svg, "<rect class=\"fill\" x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\"><title>filled after {filled:.0} min</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{words}</text>", y + 4.0, length.max(1.0), left + length.max(reach).max(1.0) + 6.0, y + 14.0);
            }
            None => {
                let _ = write!(svg, "<text class=\"unfilled\" x=\"{left}\" y=\"{:.1}\">never filled</text>", y + 14.0);
            }
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\">0</text><text x=\"{:.1}\" y=\"{:.1}\">{longest:.0} min</text></svg>",
        height - 4.0,
        left + width - 40.0,
        height - 4.0
    );
    svg
}

/// `items` (HTML already) as a bulleted list, or `<p>{none}</p>` when
/// there are none.
fn bullets(items: impl IntoIterator<Item = String>, none: &str) -> String {
    let items: String = items.into_iter().map(|item| format!("<li>{item}</li>")).collect();
    if items.is_empty() {
        format!("<p>{none}</p>")
    } else {
        format!("<ul>{items}</ul>")
    }
}

/// `/incidents/ID`.
pub fn incident_page(engine: &EngineHandle, id: &str) -> Result<String, PageError> {
    let (title, body) = incident_body(engine, id, false)?;
    Ok(page(&title, &body))
}

/// The after-action report of incident `id`: one self-contained HTML file.
pub fn incident_report(engine: &EngineHandle, id: &str) -> Result<String, PageError> {
    let (title, body) = incident_body(engine, id, true)?;
    Ok(page(&format!("After-action report {title}"), &body))
}

/// The drill run's world at its end: its log folded.
fn drill_world(run: &crate::drill::StoredRun) -> State {
    let mut state = State::default();
    for record in &run.records {
        state.apply(record);
    }
    state
}

/// One drill run's report body.
fn drill_body(run: &crate::drill::StoredRun) -> String {
    let report = &run.report;
    let state = drill_world(run);
    let mut situation = view::situation(&state, state.last_time, run.dispatch.stale_after_seconds);
    // Every incident of the drill, closed ones too: the report is of the whole exercise.
    situation.incidents = state.incidents.values().map(|incident| view::incident_view(incident)).collect();
    situation.assignments =
        state.assignments.values().map(|assignment| view::assignment_view(&state, assignment)).collect();
    let passed = report.expectations.iter().filter(|verdict| verdict.passed).count();
    let mut body = String::new();
    let _ = write!(
        body,
        "<h2>{} · {}</h2><p class=\"facts\">seed {} · {} → {} · {} events · {:.1} km travelled · digest {}</p>",
        escape(&report.run_id),
        escape(&report.name),
        report.seed,
        escape(&report.start),
        escape(&report.end),
        report.events,
        report.total_distance_km,
        escape(&report.digest.chars().take(16).collect::<String>())
    );
    if !report.description.is_empty() {
        let _ = write!(body, "<p>{}</p>", escape(&report.description));
    }
    let _ = write!(body, "<h3>Expectations: {passed} of {} passed</h3><table><tbody>", report.expectations.len());
    for verdict in &report.expectations {
        let _ = write!(
            body,
            "<tr class=\"verdict {}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            if verdict.passed { "passed" } else { "failed" },
            if verdict.passed { "passed" } else { "FAILED" },
            escape(&verdict.description),
            escape(&verdict.detail)
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(body, "<h3>Map at the end</h3>{}", map_svg(&situation, None, 900, 520));
    let rows: Vec<ChartRow> = report
        .needs
        .iter()
        .map(|need| ChartRow {
            label: format!("{} {} ({})", need.incident_id, need.what, need.level),
            fill: need.fill_minutes,
            arrive: need.reach_minutes,
        })
        .collect();
    let _ = write!(body, "<h3>Time to fill and to arrive</h3>{}", need_chart(&rows));
    body.push_str("<h3>Unmet needs</h3>");
    let unmet = report.unmet.iter().map(|unmet| {
        format!(
            "{} {}: {} missing ({})",
            escape(&unmet.incident_id),
            escape(&unmet.need_id),
            unmet.missing,
            escape(&unmet.reason)
        )
    });
    body.push_str(&bullets(unmet, "None."));
    body.push_str("<h3>Reserve overrides</h3>");
    let overrides = report.reserve_overrides.iter().map(|over| {
        format!(
            "{}: {} {} from {}",
            escape(&over.assignment_id),
            over.quantity,
            escape(&over.item_code),
            escape(&over.depot_id)
        )
    });
    body.push_str(&bullets(overrides, "None."));
    body.push_str("<h3>Decisions</h3><table class=\"timeline\"><tbody>");
    for decision in &report.decisions {
        let _ = write!(
            body,
            "<tr class=\"event\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&decision.at),
            escape(&decision.actor),
            escape(&decision.summary)
        );
    }
    body.push_str("</tbody></table>");
    body
}

/// A drill run's report, or two side by side, as one self-contained HTML file.
pub fn drill_report(run: &crate::drill::StoredRun, beside: Option<&crate::drill::StoredRun>) -> String {
    match beside {
        None => page(&format!("Drill report {}", run.report.run_id), &format!("<header><h1>Drill report</h1></header>{}", drill_body(run))),
        Some(other) => page(
            &format!("Drills {} and {}", run.report.run_id, other.report.run_id),
            &format!(
                "<header><h1>Two drill runs side by side</h1></header><div class=\"side-by-side\"><section>{}</section><section>{}</section></div>",
                drill_body(run),
                drill_body(other)
            ),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::assignment::AssignmentStatus;
    use crate::domain::fills::testing::{assign, at, flood, minute, update};

    #[test]
    fn the_incident_report_times_a_need_by_its_last_fill_not_a_declined_one() {
        let (state, records) = flood(|state, records| {
            at(state, records, 5, assign("BOAT-1"));
            at(state, records, 12, update("A1", AssignmentStatus::Declined));
            at(state, records, 20, assign("BOAT-2"));
            at(state, records, 45, update("A2", AssignmentStatus::OnScene));
        });
        let incident = state.incident("FLOOD-1").expect("declared");
        let times = need_times(&state, incident, &records);
        assert_eq!(times.len(), 1);
        assert_eq!(times[0].filled, Some(minute(20)), "filled when BOAT-2 was sent");
        assert_eq!(times[0].arrived, Some(minute(45)));
    }
}
