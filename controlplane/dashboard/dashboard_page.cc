// The dashboard page: one file, no external resources (works offline), hand-drawn SVG.
#include "controlplane/dashboard/dashboard.h"

namespace switchboard::controlplane {

const char kDashboardPage[] = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard fleet</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2430; }
  header { background: #1d2430; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  #status { font-size: 12px; opacity: .8; }
  main { padding: 12px 20px; max-width: 1400px; }
  section.pool { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; margin-bottom: 16px; padding: 10px 14px; }
  section.pool h2 { font-size: 16px; margin: 0 0 6px; }
  .meta { color: #5a6472; font-size: 12px; margin-left: 8px; font-weight: normal; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
  th { color: #5a6472; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .CLOSED { color: #1a7f37; } .OPEN { color: #cf222e; font-weight: 600; } .HALF_OPEN { color: #9a6700; }
  .bar { display: inline-block; height: 8px; background: #4c8dde; vertical-align: middle; border-radius: 2px; }
  .charts { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 8px; }
  .chart { flex: 1 1 300px; min-width: 280px; }
  .chart h3 { font-size: 12px; color: #5a6472; margin: 4px 0; font-weight: 600; }
  svg { width: 100%; height: 120px; background: #fbfcfd; border: 1px solid #eef0f3; }
  .legend { font-size: 11px; color: #5a6472; }
  .legend span { margin-right: 10px; }
  .empty { color: #5a6472; font-style: italic; }
</style>
</head>
<body>
<header><h1>Switchboard fleet</h1><span id="status">loading…</span></header>
<main id="pools"><p class="empty">Loading…</p></main>
<script>
"use strict";
const COLORS = ["#4c8dde", "#e07b39", "#2da44e", "#a371f7", "#cf222e", "#9a6700", "#0a8080", "#6e7781"];
const HOURS = 3;
const short = (s, prefix) => (s || "").replace(prefix, "");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const secs = (d) => d ? (parseFloat(d) || 0) : 0;

function poolSection(pool) {
  let sec = document.querySelector('section.pool[data-pool="' + CSS.escape(pool.name) + '"]');
  if (!sec) {
    sec = document.createElement("section");
    sec.className = "pool";
    sec.dataset.pool = pool.name;
    sec.innerHTML = '<h2></h2><table><thead><tr><th>Endpoint</th><th>Node</th><th>State</th><th>Circuit</th>' +
      '<th>Weight</th><th>Slots busy/total</th><th>Queue</th><th>KV</th><th>TTFT p95</th><th>Tok/s</th>' +
      '<th>Reason</th></tr></thead><tbody></tbody></table><div class="charts">' +
      '<div class="chart" data-chart="weight"><h3>Weights (last ' + HOURS + ' h)</h3><svg></svg><div class="legend"></div></div>' +
      '<div class="chart" data-chart="demand"><h3>Demand: slots busy + queued</h3><svg></svg><div class="legend"></div></div>' +
      '<div class="chart" data-chart="replicas"><h3>Replicas: current and desired</h3><svg></svg><div class="legend"></div></div>' +
      '</div>';
    document.getElementById("pools").appendChild(sec);
  }
  return sec;
}

function renderFleet(fleet) {
  const pools = fleet.pools || [];
  const main = document.getElementById("pools");
  const empty = main.querySelector("p.empty");
  if (pools.length === 0) {
    main.innerHTML = '<p class="empty">No pools yet: no agent has reported an endpoint with a model.</p>';
    return;
  }
  if (empty) empty.remove();
  const names = new Set(pools.map((p) => p.name));
  main.querySelectorAll("section.pool").forEach((s) => { if (!names.has(s.dataset.pool)) s.remove(); });
  for (const pool of pools) {
    const sec = poolSection(pool);
    const stale = pool.assignment && pool.assignment.stale ? " · stale (restored)" : "";
    sec.querySelector("h2").innerHTML = esc(pool.name) + '<span class="meta">version ' + esc(pool.version) +
      " · " + esc(short(pool.lb_policy, "LB_POLICY_")) + " · desired replicas " + pool.desired_replicas + stale + "</span>";
    const rows = (pool.endpoints || []).map((ep) => {
      const circuit = short(ep.circuit, "CIRCUIT_STATE_");
      const busy = ep.slots_busy || 0, total = ep.slots_total || 0;
      const width = total ? Math.round(60 * busy / total) : 0;
      return '<tr data-endpoint="' + esc(ep.address) + '"><td>' + esc(ep.address) + "</td><td>" + esc(ep.node_id) +
        "</td><td>" + esc(short(ep.state, "ENDPOINT_STATE_")) + '</td><td class="' + esc(circuit) + '">' + esc(circuit) +
        '</td><td class="num weight">' + (ep.weight || 0) + '</td><td><span class="bar" style="width:' + width +
        'px"></span> ' + busy + "/" + total + '</td><td class="num">' + (ep.queue_depth || 0) + '</td><td class="num">' +
        Math.round(100 * (ep.kv_cache_usage || 0)) + '%</td><td class="num">' + Math.round(1000 * (ep.ttft_p95_seconds || 0)) +
        ' ms</td><td class="num">' + Math.round(ep.tokens_per_second || 0) + "</td><td>" + esc(ep.reason) + "</td></tr>";
    });
    sec.querySelector("tbody").innerHTML = rows.join("") || '<tr><td colspan="11" class="empty">no endpoints</td></tr>';
  }
}

// A line chart of `series` ([{label, points: [[t_ms, v]]}]) over the last HOURS hours.
function drawChart(box, series) {
  const svg = box.querySelector("svg"), legend = box.querySelector(".legend");
  const W = 600, H = 120, pad = 24;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("preserveAspectRatio", "none");
  const now = Date.now(), t0 = now - HOURS * 3600e3;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => pad + (W - pad - 4) * (t - t0) / (now - t0);
  const y = (v) => H - 14 - (H - 22) * v / max;
  let out = '<line x1="' + pad + '" y1="' + y(0) + '" x2="' + W + '" y2="' + y(0) + '" stroke="#ccd" />' +
    '<text x="2" y="12" font-size="10" fill="#667">' + (+max.toPrecision(3)) + "</text>" +
    '<text x="2" y="' + (H - 4) + '" font-size="10" fill="#667">-' + HOURS + 'h</text>' +
    '<text x="' + (W - 24) + '" y="' + (H - 4) + '" font-size="10" fill="#667">now</text>';
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map(([t, v], j) => (j ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1)).join(" ");
    out += '<path d="' + d + '" fill="none" stroke-width="1.5" stroke="' + COLORS[i % COLORS.length] + '" />';
  });
  svg.innerHTML = out;
  legend.innerHTML = series.length ? series.map((s, i) => '<span style="color:' + COLORS[i % COLORS.length] + '">■ ' +
    esc(s.label) + "</span>").join("") : '<span class="empty">no history yet</span>';
}

async function history(pool, metric) {
  const step = Math.max(10, Math.round(HOURS * 3600 / 300));
  const r = await fetch("/api/history?pool=" + encodeURIComponent(pool) + "&metric=" + metric + "&since_s=" +
                        HOURS * 3600 + "&step_s=" + step);
  if (!r.ok) return [];
  const h = await r.json();
  return (h.series || []).map((s) => ({
    label: s.address ? s.address : metric,
    points: (s.points || []).map((p) => [Date.parse(p.time), p.value || 0]),
  }));
}

async function refreshCharts() {
  for (const sec of document.querySelectorAll("section.pool")) {
    const pool = sec.dataset.pool;
    drawChart(sec.querySelector('[data-chart="weight"]'), await history(pool, "weight"));
    drawChart(sec.querySelector('[data-chart="demand"]'), await history(pool, "demand"));
    const replicas = await history(pool, "replicas"), desired = await history(pool, "desired");
    drawChart(sec.querySelector('[data-chart="replicas"]'), replicas.concat(desired));
  }
}

let lastChart = 0, polls = 0;
async function poll() {
  try {
    const r = await fetch("/api/fleet", {cache: "no-store"});
    renderFleet(await r.json());
    document.body.dataset.polls = ++polls;  // How many live updates rendered (tests read it).
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
    if (Date.now() - lastChart > 10000) {
      lastChart = Date.now();
      await refreshCharts();
    }
  } catch (e) {
    document.getElementById("status").textContent = "control plane unreachable, retrying…";
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
)HTML";

}  // namespace switchboard::controlplane
