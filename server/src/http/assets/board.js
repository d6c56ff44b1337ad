// Muster's situation board: draws /situation.json, then follows /events
// (server-sent events). A team update moves its dot in place; any other
// change fetches the picture again, at most once at a time. No library, no
// network beyond this server: the board works with the network unplugged.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["AVAILABLE", "ASSIGNED", "EN_ROUTE", "ON_SCENE", "RETURNING", "OUT_OF_SERVICE"];
const LEVELS = ["I", "II", "III", "IV"];
const WIDTH = 1200;
const HEIGHT = 800;

let situation = null;
let view = null; // the projection, fixed once per picture
let fetching = false;
let again = false;

function el(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function title(node, text) {
  node.append(el("title", {}, text));
  return node;
}

/** The projection of the picture's extent onto the map. */
function projection(s) {
  const points = [];
  for (const t of s.teams) points.push([t.lat, t.lng]);
  for (const d of s.depots) points.push([d.lat, d.lng]);
  for (const i of s.incidents) { points.push([i.lat, i.lng]); for (const p of i.area) points.push(p); }
  for (const z of s.zones) for (const p of z.polygon) points.push(p);
  if (points.length === 0) points.push([0, 0]);
  let south = Infinity, north = -Infinity, west = Infinity, east = -Infinity;
  for (const [lat, lng] of points) {
    south = Math.min(south, lat); north = Math.max(north, lat);
    west = Math.min(west, lng); east = Math.max(east, lng);
  }
  const padLat = Math.max((north - south) * 0.06, 0.005);
  const padLng = Math.max((east - west) * 0.06, 0.005);
  south -= padLat; north += padLat; west -= padLng; east += padLng;
  const squeeze = Math.max(Math.cos(((south + north) / 2) * Math.PI / 180), 0.1);
  const scale = Math.min(WIDTH / ((east - west) * squeeze), HEIGHT / (north - south));
  const offsetX = (WIDTH - (east - west) * squeeze * scale) / 2;
  const offsetY = (HEIGHT - (north - south) * scale) / 2;
  return {
    x: (lng) => offsetX + (lng - west) * squeeze * scale,
    y: (lat) => offsetY + (north - lat) * scale,
  };
}

function points(ring) {
  return ring.map(([lat, lng]) => `${view.x(lng).toFixed(1)},${view.y(lat).toFixed(1)}`).join(" ");
}

function teamDot(team) {
  const dot = el("circle", {
    id: `team-${team.id}`,
    class: `team ${team.status}${team.stale ? " stale" : ""}`,
    cx: view.x(team.lng).toFixed(1), cy: view.y(team.lat).toFixed(1), r: 6,
    "data-status": team.status,
  });
  const age = team.report_age_seconds == null ? "never reported" : `reported ${Math.round(team.report_age_seconds / 60)} min ago`;
  return title(dot, `${team.id} ${team.name}: ${team.status}, ${age}`);
}

function drawMap() {
  const map = document.getElementById("map");
  // The background reaches past the drawing, which the map pane letterboxes.
  map.replaceChildren(el("rect", { class: "sea", x: -WIDTH, y: -HEIGHT, width: 3 * WIDTH, height: 3 * HEIGHT }));
  const s = situation;
  for (const z of s.zones) map.append(title(el("polygon", { class: "zone", points: points(z.polygon) }), `zone ${z.id}: ${z.note}`));
  for (const i of s.incidents) if (i.area.length >= 3) map.append(el("polygon", { class: `area level-${i.level}`, points: points(i.area) }));
  const teams = new Map(s.teams.map((t) => [t.id, t]));
  for (const a of s.assignments) {
    const from = a.team_id && teams.has(a.team_id) ? [teams.get(a.team_id).lat, teams.get(a.team_id).lng] : a.from;
    map.append(title(el("line", {
      id: `assignment-${a.id}`, class: `assignment ${a.status}`, "data-team": a.team_id || "",
      x1: view.x(from[1]).toFixed(1), y1: view.y(from[0]).toFixed(1),
      x2: view.x(a.to[1]).toFixed(1), y2: view.y(a.to[0]).toFixed(1),
    }), `${a.id} ${a.team_id || a.supply + " from " + a.depot_id} → ${a.incident_id}: ${a.status}, ETA ${Math.round(a.eta_minutes)} min`));
  }
  for (const d of s.depots) {
    map.append(title(el("rect", { class: `depot${d.low.length ? " low" : ""}`, x: (view.x(d.lng) - 5).toFixed(1), y: (view.y(d.lat) - 5).toFixed(1), width: 10, height: 10 }), `depot ${d.id} ${d.name}`));
  }
  for (const t of s.teams) map.append(teamDot(t));
  for (const i of s.incidents) {
    const g = el("g", { class: `incident level-${i.level}`, id: `incident-${i.id}` });
    g.append(el("circle", { cx: view.x(i.lng).toFixed(1), cy: view.y(i.lat).toFixed(1), r: 10 }));
    g.append(el("text", { x: (view.x(i.lng) + 14).toFixed(1), y: (view.y(i.lat) + 5).toFixed(1) }, `${i.id} (${i.level})`));
    map.append(title(g, `${i.id}: ${i.title}, level ${i.level}, ${i.status}`));
  }
}

function drawSide() {
  const s = situation;
  const incidents = document.getElementById("incidents");
  incidents.replaceChildren(...[...s.incidents]
    .sort((a, b) => LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) || a.id.localeCompare(b.id))
    .map((i) => html("li", { "data-incident": i.id },
      html("span", { class: `badge ${i.level}` }, i.level),
      html("a", { href: `/incidents/${encodeURIComponent(i.id)}` }, `${i.id}: ${i.title}`),
      ` · ${i.hazard} · ${i.status}`)));
  if (s.incidents.length === 0) incidents.append(html("li", {}, "No open incident."));

  const needs = document.getElementById("needs");
  needs.replaceChildren(...[...s.open_needs]
    .sort((a, b) => LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) || a.incident_id.localeCompare(b.incident_id))
    .map((n) => html("tr", { "data-need": n.id, class: "need" },
      html("td", {}, html("span", { class: `badge ${n.level}` }, n.level)),
      html("td", {}, n.incident_id),
      html("td", {}, `${n.what}`),
      html("td", {}, `${n.filled} / ${n.wanted}`))));
  if (s.open_needs.length === 0) needs.append(html("tr", {}, html("td", { colspan: 4 }, "Every need is filled.")));

  drawCounts();

  const low = document.getElementById("low-stock");
  const rows = [];
  for (const d of s.depots) for (const l of d.low) {
    rows.push(html("tr", { class: l.at_floor ? "at-floor" : "" }, html("td", {}, d.name), html("td", {}, l.item), html("td", {}, `${l.available} / ${l.min_reserve}`)));
  }
  low.replaceChildren(...rows);
  if (rows.length === 0) low.append(html("tr", {}, html("td", { colspan: 3 }, "Every depot is above its floor.")));
}

function drawCounts() {
  const counts = Object.fromEntries(STATUSES.map((status) => [status, 0]));
  let stale = 0;
  for (const t of situation.teams) { counts[t.status] = (counts[t.status] || 0) + 1; if (t.stale) stale += 1; }
  const list = document.getElementById("team-counts");
  list.replaceChildren(...STATUSES.map((status) => html("li", { "data-status": status },
    html("i", { class: `dot ${status}`, style: "display:inline-block;width:.7rem;height:.7rem;margin-right:.35rem" }),
    `${status.toLowerCase().replaceAll("_", " ")}: `, html("b", {}, String(counts[status])))));
  list.append(html("li", {}, "stale positions: ", html("b", {}, String(stale))));
}

function draw() {
  view = projection(situation);
  drawMap();
  drawSide();
  document.getElementById("clock").textContent = `as of ${situation.now} · log #${situation.sequence}`;
}

async function load() {
  if (fetching) { again = true; return; }
  fetching = true;
  try {
    do {
      again = false;
      const response = await fetch("/situation.json", { cache: "no-store", credentials: "same-origin" });
      if (response.status === 401) { window.location = "/signin"; return; }
      situation = await response.json();
      draw();
    } while (again);
  } catch (error) {
    document.getElementById("live").textContent = "picture unavailable";
  } finally {
    fetching = false;
  }
}

/** A team moved or changed status: update its dot, its line and the counts. */
function updateTeams(teams) {
  if (!situation) return;
  const known = new Map(situation.teams.map((t, index) => [t.id, index]));
  for (const team of teams) {
    if (!known.has(team.id)) { load(); return; }
    situation.teams[known.get(team.id)] = team;
    const old = document.getElementById(`team-${team.id}`);
    if (old) old.replaceWith(teamDot(team));
    for (const line of document.querySelectorAll(`line[data-team="${CSS.escape(team.id)}"]`)) {
      line.setAttribute("x1", view.x(team.lng).toFixed(1));
      line.setAttribute("y1", view.y(team.lat).toFixed(1));
    }
  }
  drawCounts();
}

function follow() {
  const live = document.getElementById("live");
  const source = new EventSource("/events");
  // On every (re)connection, fetch the picture again: what changed while
  // the stream was not open is in it.
  let opened = false;
  source.addEventListener("open", () => {
    live.textContent = "live"; live.className = "live";
    if (opened) load();
    opened = true;
  });
  source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
  source.addEventListener("update", (message) => {
    const update = JSON.parse(message.data);
    if (update.refresh) load(); else updateTeams(update.teams);
  });
}

// Open the stream first, then fetch: nothing between the two is missed.
follow();
load();
