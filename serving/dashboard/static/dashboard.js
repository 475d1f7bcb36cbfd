// opm-ml planner dashboard: three views over the /v1/dashboard JSON endpoints (or, in a
// self-contained report, over the same JSON embedded as window.OPM_DATA), and a schedule view
// over POST /v1/schedules/risk for an uploaded P6 or MS Project file. Charts: Vega-Lite.

const app = document.getElementById("app");
const EMBEDDED = window.OPM_DATA || null;  // report mode: {portfolio, projects: {id: view}, intake}
const views = {};                          // Vega views by chart id (tests read their data)
window.OPM_VIEWS = views;
const RAG_COLOURS = { red: "#d62728", amber: "#ff9f1c", green: "#2ca02c", grey: "#9e9e9e" };
let portfolioData = null;
let sortState = { key: "probability_late", desc: true };

async function getJSON(path) {
  if (EMBEDDED) {
    if (path === "portfolio") return EMBEDDED.portfolio;
    if (path === "intake") return EMBEDDED.intake;
    if (path === "monitoring") return EMBEDDED.monitoring;
    const id = decodeURIComponent(path.slice("projects/".length));
    if (!(id in EMBEDDED.projects)) throw new Error(`project ${id} is not in this report`);
    return EMBEDDED.projects[id];
  }
  const resp = await fetch(path === "monitoring" ? "/v1/monitoring" : `/v1/dashboard/${path}`);
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.detail || body.message || JSON.stringify(body));
  return body;
}

const num = (v, digits = 0) => v == null ? "–" :
  Number(v).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const pct = (v) => v == null ? "–" : `${num(v * 100, 0)} %`;
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

async function chart(id, spec) {
  const result = await vegaEmbed(`#${id}`, { $schema: "https://vega.github.io/schema/vega-lite/v5.json", ...spec },
    { actions: false, renderer: "svg" });
  views[id] = result.view;
  return result.view;
}

// ---------------------------------------------------------------- portfolio view
const COLUMNS = [
  ["project_id", "Project", (r) => `<a href="#project/${encodeURIComponent(r.project_id)}">${esc(r.project_id)}</a>`, "l"],
  ["project_type", "Type", (r) => esc(r.project_type), "l"],
  ["status_date", "Status date", (r) => r.status_date ?? "intake", "l"],
  ["probability_late", "P(late)", (r) => pct(r.probability_late), "", "rag_probability_late"],
  ["delay_days_p50", "Delay P50 (days)", (r) => num(r.delay_days_p50)],
  ["overrun_pct_p50", "Overrun P50 (%)", (r) => num(r.overrun_pct_p50, 1), "", "rag_overrun_pct_p50"],
  ["overrun_cost_p50", "Overrun P50 (currency)", (r) => num(r.overrun_cost_p50)],
  ["spi", "SPI", (r) => num(r.spi, 2), "", "rag_spi"],
  ["cpi", "CPI", (r) => num(r.cpi, 2), "", "rag_cpi"],
  ["rag", "RAG", (r) => r.rag, "l", "rag"],
];

function tableRows(rows) {
  return rows.map((r) => `<tr data-project="${esc(r.project_id)}">` + COLUMNS.map(([key, , show, cls, ragKey]) =>
    `<td class="${cls || ""} ${ragKey ? "rag-" + r[ragKey] : ""}" data-col="${key}">${show(r)}</td>`).join("") + "</tr>").join("");
}

function sortedProjects() {
  const { key, desc } = sortState;
  const rows = [...portfolioData.projects];
  rows.sort((a, b) => {
    const x = a[key], y = b[key];
    if (x == null) return 1;  // unknown values always last
    if (y == null) return -1;
    const c = typeof x === "string" ? x.localeCompare(y) : x - y;
    return desc ? -c : c;
  });
  return rows;
}

function renderTable() {
  document.querySelector("#portfolio-table tbody").innerHTML = tableRows(sortedProjects());
  document.querySelectorAll("#portfolio-table th").forEach((th) => {
    th.className = (th.dataset.key === sortState.key ? (sortState.desc ? "sorted-desc" : "sorted-asc") : "") + " " + (th.dataset.cls || "");
  });
}

function thresholdsText(t) {
  const rule = (name, label, f) => `${label}: amber ${t[name].worse === "higher" ? "≥" : "<"} ${f(t[name].amber)}, red ${t[name].worse === "higher" ? "≥" : "<"} ${f(t[name].red)}`;
  return [rule("probability_late", "P(late)", (v) => pct(v)), rule("overrun_pct_p50", "overrun P50", (v) => `${v} %`),
    rule("spi", "SPI", String), rule("cpi", "CPI", String)].join("; ") + ". Overall RAG = worst of the four.";
}

const UPLOAD_INPUT = `<input type="file" id="upload" accept=".csv,.parquet,.arff,.txt,.tsv"> <span id="upload-status"></span>`;

async function renderPortfolio() {
  if (!portfolioData) {
    try {
      portfolioData = await getJSON("portfolio");
    } catch (err) {  // e.g. models of an organisation's own profile: no sample history to show
      app.innerHTML = `<h2>Portfolio</h2><p class="note">${esc(err.message)}</p>
        <p>Upload your export (read through the served profile): ${UPLOAD_INPUT}</p>`;
      document.getElementById("upload").addEventListener("change", uploadTable);
      return null;
    }
  }
  const d = portfolioData;
  const rejected = d.rejected_rows ? `<p class="note error">${d.rejected_rows} row(s) of the upload were set aside: ${
    d.rejections.slice(0, 5).map((r) => `row ${r.row} (${esc(r.column)}): ${esc(r.reason)}`).join("; ")}${d.rejections.length > 5 ? "; …" : ""}</p>` : "";
  app.innerHTML = `
    <h2>Portfolio: ${d.count} projects in flight</h2>${rejected}
    ${EMBEDDED ? "" : `<p class="note">Default: the latest snapshot of each unfinished project. Or upload a project table (CSV or Parquet, contract columns plus optional status_date, pv, ev, ac, percent_complete; or your own export when the models read your profile):
      ${UPLOAD_INPUT}</p>`}
    <div class="row">
      <div class="card scroll"><table id="portfolio-table"><thead><tr>${COLUMNS.map(([key, label, , cls]) =>
        `<th data-key="${key}" data-cls="${cls || ""}">${label}</th>`).join("")}</tr></thead><tbody></tbody></table>
        <p class="note">RAG thresholds: ${thresholdsText(d.thresholds)} Click a column to sort.</p></div>
      <div class="card"><h3>Risk matrix: probability of a late finish × cost impact</h3><div id="risk-matrix"></div></div>
    </div>`;
  renderTable();
  document.querySelectorAll("#portfolio-table th").forEach((th) => th.addEventListener("click", () => {
    sortState = { key: th.dataset.key, desc: sortState.key === th.dataset.key ? !sortState.desc : true };
    renderTable();
  }));
  const upload = document.getElementById("upload");
  if (upload) upload.addEventListener("change", uploadTable);
  const t = d.thresholds.probability_late;
  // Symlog axis: ticks at powers of ten (and 0) inside the data's range.
  const impacts = d.projects.map((p) => p.overrun_cost_p50).filter((v) => v != null);
  const [lo, hi] = [Math.min(0, ...impacts), Math.max(0, ...impacts)];
  const impactTicks = [0, ...[5, 6, 7, 8, 9, 10].flatMap((e) => [10 ** e, -(10 ** e)])]
    .filter((v) => v >= lo * 1.5 && v <= hi * 1.5).sort((a, b) => a - b);
  const view = await chart("risk-matrix", {
    width: 440, height: 360,
    layer: [
      { data: { values: [{ x: t.amber }, { x: t.red }] }, mark: { type: "rule", strokeDash: [4, 4], color: "#888" },
        encoding: { x: { field: "x", type: "quantitative" } } },
      { data: { values: d.projects.filter((p) => p.probability_late != null).map((p) => ({ ...p, href: `#project/${encodeURIComponent(p.project_id)}` })), name: "projects" },
        mark: { type: "circle", size: 70, opacity: 0.8, cursor: "pointer" },
        encoding: {
          x: { field: "probability_late", type: "quantitative", scale: { domain: [0, 1] }, axis: { format: ".0%", title: "probability of finishing late" } },
          y: { field: "overrun_cost_p50", type: "quantitative", scale: { type: "symlog", constant: 10000 }, axis: { title: "impact: P50 cost overrun (currency, symlog scale)", values: impactTicks, labelExpr: "format(datum.value, '~s')" } },
          color: { field: "rag", type: "nominal", title: "RAG", scale: { domain: Object.keys(RAG_COLOURS), range: Object.values(RAG_COLOURS) } },
          tooltip: [{ field: "project_id" }, { field: "probability_late", format: ".0%" }, { field: "overrun_cost_p50", format: ",.0f" }],
          href: { field: "href" },
        } },
    ],
  });
  return view;
}

async function uploadTable(event) {
  const file = event.target.files[0];
  const status = document.getElementById("upload-status");
  status.textContent = "scoring…";
  const resp = await fetch(`/v1/dashboard/portfolio?allow_rejects=true&filename=${encodeURIComponent(file.name)}`,
    { method: "POST", body: await file.arrayBuffer(), headers: { "content-type": "application/octet-stream" } });
  const body = await resp.json();
  if (!resp.ok) { status.className = "error"; status.textContent = body.message || body.detail || JSON.stringify(body); return; }
  portfolioData = body;
  await renderPortfolio();
}

// ---------------------------------------------------------------- project view
function waterfallSpec(forecast, title) {
  const e = forecast.explanation;
  const shown = e.contributions.slice(0, 10);
  const rest = e.contributions.slice(10).reduce((s, c) => s + c.contribution, 0) + e.other_features_contribution;
  const steps = [];
  let at = e.base_value;
  steps.push({ label: "base value (training mean)", start: 0, end: at, kind: "total", order: 0 });
  shown.forEach((c, i) => {
    const value = c.value == null ? "unknown" : typeof c.value === "number" ? num(c.value, Math.abs(c.value) < 10 ? 2 : 0) : c.value;
    steps.push({ label: `${c.feature} = ${value}`, start: at, end: at + c.contribution, kind: c.contribution >= 0 ? "up" : "down", order: i + 1 });
    at += c.contribution;
  });
  steps.push({ label: "other features", start: at, end: at + rest, kind: rest >= 0 ? "up" : "down", order: shown.length + 1 });
  at += rest;
  steps.push({ label: "prediction (P50)", start: 0, end: at, kind: "total", order: shown.length + 2 });
  return {
    title: { text: title, subtitle: `SHAP contributions in ${e.output_space}; red raises the forecast, blue lowers it` },
    width: 420, height: { step: 20 },
    data: { values: steps, name: "steps" },
    mark: { type: "bar" },
    encoding: {
      y: { field: "label", type: "nominal", sort: { field: "order" }, axis: { title: null, labelLimit: 260 } },
      x: { field: "start", type: "quantitative", axis: { title: e.output_space } },
      x2: { field: "end" },
      color: { field: "kind", type: "nominal", legend: null, scale: { domain: ["up", "down", "total"], range: ["#d62728", "#1f77b4", "#7f7f7f"] } },
      tooltip: [{ field: "label" }, { field: "start", format: ".3f" }, { field: "end", format: ".3f" }],
    },
  };
}

function sCurveSpec(p) {
  const a = p.assessment;
  const lines = p.s_curve.flatMap((s) => [["PV", s.pv], ["EV", s.ev], ["AC", s.ac]].map(([series, value]) => ({ date: s.date, series, value })));
  const finish = a.forecasts.delay.finish_date;
  const cost = a.forecasts.overrun.interval;
  const box = [{ f10: finish.p10, f90: finish.p90, c10: cost.p10, c90: cost.p90, f50: finish.p50, c50: cost.p50 }];
  const bac = p.baseline.budget_at_completion;
  return {
    title: { text: "Earned value S-curves and the forecast finish × cost", subtitle: "shaded: P10–P90 forecast box; dot: P50; dashed: BAC and planned finish" },
    width: 560, height: 320,
    layer: [
      { data: { values: box }, mark: { type: "rect", opacity: 0.18, color: "#d62728" },
        encoding: { x: { field: "f10", type: "temporal" }, x2: { field: "f90" }, y: { field: "c10", type: "quantitative" }, y2: { field: "c90" } } },
      { data: { values: box }, mark: { type: "point", filled: true, size: 80, color: "#d62728" },
        encoding: { x: { field: "f50", type: "temporal" }, y: { field: "c50", type: "quantitative" },
          tooltip: [{ field: "f50", title: "finish P50", type: "temporal" }, { field: "c50", title: "cost P50", format: ",.0f" }] } },
      { data: { values: [{ bac }] }, mark: { type: "rule", strokeDash: [4, 4], color: "#555" }, encoding: { y: { field: "bac", type: "quantitative" } } },
      { data: { values: [{ d: p.baseline.planned_finish_date }] }, mark: { type: "rule", strokeDash: [4, 4], color: "#555" }, encoding: { x: { field: "d", type: "temporal" } } },
      { data: { values: lines, name: "curves" }, mark: { type: "line", point: lines.length < 60 },
        encoding: {
          x: { field: "date", type: "temporal", axis: { title: "status date" } },
          y: { field: "value", type: "quantitative", axis: { title: "cumulative cost (currency)", format: "~s" } },
          color: { field: "series", type: "nominal", title: null, scale: { domain: ["PV", "EV", "AC"], range: ["#7f7f7f", "#2ca02c", "#1f77b4"] } },
          tooltip: [{ field: "series" }, { field: "date", type: "temporal" }, { field: "value", format: ",.0f" }],
        } },
    ],
  };
}

function forecastTable(a) {
  const f = a.forecasts;
  const row = (label, id, i, unit, digits = 0) =>
    `<tr><td class="l">${label}</td>${["p10", "p50", "p90"].map((k) => `<td data-testid="${id}-${k}">${num(i[k], digits)}</td>`).join("")}<td class="l">${unit}</td></tr>`;
  return `<table id="forecast-table"><thead><tr><th class="l">forecast</th><th>P10</th><th>P50</th><th>P90</th><th class="l">unit</th></tr></thead><tbody>
    ${row("duration", "duration", f.delay.interval, "calendar days")}
    ${row("delay", "delay", f.delay.delay_days, "calendar days")}
    <tr><td class="l">finish date</td>${["p10", "p50", "p90"].map((k) => `<td data-testid="finish-${k}">${f.delay.finish_date[k]}</td>`).join("")}<td class="l">date</td></tr>
    ${row("cost", "cost", f.overrun.interval, "currency")}
    ${row("cost overrun", "overrun", f.overrun.overrun_pct, "%", 1)}
    ${row("effort", "effort", f["resource-demand"].interval, "hours")}
    <tr><td class="l">P(late)</td><td></td><td data-testid="probability-late">${pct(f.delay.probability_late)}</td><td></td><td class="l">late = duration ratio > ${f.delay.late_threshold}</td></tr>
  </tbody></table>`;
}

function metricsTable(a) {
  if (!a.opm_metrics) return `<p class="note">No status snapshot: intake forecast only, no OPM metrics.</p>`;
  const m = a.opm_metrics.metrics, why = a.opm_metrics.undefined || {};
  return `<table id="metrics-table"><thead><tr><th class="l">OPM metric</th><th>value</th><th class="l">note</th></tr></thead><tbody>` +
    Object.entries(m).map(([k, v]) => `<tr><td class="l">${k}</td><td data-metric="${k}">${typeof v === "number" ? num(v, Math.abs(v) < 10 ? 3 : 0) : esc(v ?? "–")}</td><td class="l">${esc(why[k] || "")}</td></tr>`).join("") +
    "</tbody></table>";
}

async function renderProject(id) {
  if (!id) {
    portfolioData = portfolioData || await getJSON("portfolio");
    const first = [...portfolioData.projects].sort((a, b) => (b.probability_late ?? -1) - (a.probability_late ?? -1))[0];
    if (!first) { app.innerHTML = `<p class="note">No projects.</p>`; return; }
    id = first.project_id;
  }
  const p = await getJSON(`projects/${encodeURIComponent(id)}`);
  const a = p.assessment;
  app.innerHTML = `
    <h2 id="project-title">Project ${esc(p.project_id)} (${esc(p.project_type)})</h2>
    <p class="note">Start ${p.baseline.start_date}, planned finish ${p.baseline.planned_finish_date}, budget at completion ${num(p.baseline.budget_at_completion)}; ${p.s_curve.length} status snapshots${p.finished ? "; finished" : ""}.</p>
    <div class="row">
      <div class="card"><div id="s-curve"></div></div>
      <div class="card"><h3>Forecasts</h3>${forecastTable(a)}<h3>OPM metrics (latest snapshot)</h3>${metricsTable(a)}</div>
    </div>
    <div class="row">
      <div class="card"><div id="waterfall-delay"></div></div>
      <div class="card"><div id="waterfall-overrun"></div></div>
    </div>`;
  await Promise.all([
    chart("s-curve", sCurveSpec(p)),
    chart("waterfall-delay", waterfallSpec(a.forecasts.delay, "Why this duration: SHAP waterfall (delay model)")),
    chart("waterfall-overrun", waterfallSpec(a.forecasts.overrun, "Why this cost: SHAP waterfall (overrun model)")),
  ]);
}

// ---------------------------------------------------------------- intake view
// The criterion whose weight is closest to changing the MoSCoW class: the fragile assumption.
function fragile(c) {
  let best = null;
  for (const [k, s] of Object.entries(c.sensitivity || {})) {
    const margin = Math.min(s.below ? s.weight - s.low : Infinity, s.above ? s.high - s.weight : Infinity);
    if (margin < (best?.margin ?? Infinity)) best = { k, s, margin };
  }
  return best ? `${best.k} ${best.s.low.toFixed(2)}–${best.s.high.toFixed(2)}` : "any weights";
}

async function renderIntake() {
  const d = await getJSON("intake");
  const selected = new Set(d.portfolio.selected);
  const criteria = Object.keys(d.candidates[0]?.points || {});
  app.innerHTML = `
    <h2>Intake: ${d.candidates.length} candidates ranked; portfolio ${esc(d.portfolio.status)}, risk-adjusted value ${num(d.portfolio.total_value)}</h2>
    <p class="note" data-testid="scorecard">Scorecard ${esc(d.scorecard.scorecard_version)} (${esc(d.scorecard.scorecard_digest.slice(0, 19))}…): fixed scales, so a candidate's score is the same in any batch. "Class holds" is the weight range of the criterion closest to changing the candidate's MoSCoW class.</p>
    <div class="row">
      <div class="card scroll"><table id="intake-table"><thead><tr><th>rank</th><th class="l">candidate</th><th class="l">MoSCoW</th><th>score</th>
        ${criteria.map((c) => `<th>${esc(c)}</th>`).join("")}<th class="l">class holds</th><th>NPV</th><th>risk-adj. NPV</th><th>P(late)</th><th class="l">selected</th></tr></thead><tbody>
        ${d.candidates.map((c) => `<tr><td>${c.rank}</td><td class="l">${esc(c.project_id)} ${esc(c.name)}</td><td class="l">${c.moscow}</td><td data-testid="score">${num(c.score, 1)}</td>
          ${criteria.map((k) => `<td>${num(c.points[k], 1)}</td>`).join("")}<td class="l" data-testid="fragile">${esc(fragile(c))}</td><td>${num(c.finance.npv)}</td><td>${num(c.risk.risk_adjusted_npv)}</td>
          <td>${pct(c.risk.probability_late)}</td><td class="l">${selected.has(c.project_id) ? "yes" : "no"}</td></tr>`).join("")}
      </tbody></table></div>
      <div class="card"><div id="score-breakdown"></div></div>
    </div>
    <div class="row">
      <div class="card"><div id="resource-heatmap"></div></div>
      <div class="card"><div id="frontier"></div></div>
    </div>`;
  const points = d.candidates.flatMap((c) => criteria.map((k) => ({ candidate: `${c.rank}. ${c.project_id}`, rank: c.rank, criterion: k, points: c.points[k] })));
  await Promise.all([
    chart("score-breakdown", {
      title: { text: "Score breakdown: weighted points per criterion" }, width: 360, height: { step: 18 },
      data: { values: points }, mark: "bar",
      encoding: { y: { field: "candidate", type: "nominal", sort: { field: "rank" }, title: null },
        x: { field: "points", type: "quantitative", aggregate: "sum", title: "scorecard points" },
        color: { field: "criterion", type: "nominal", title: "criterion" }, tooltip: [{ field: "criterion" }, { field: "points", format: ".1f" }] },
    }),
    chart("resource-heatmap", {
      title: { text: "Selected portfolio: load / capacity per role and month", subtitle: "1.0 = the role's monthly capacity is fully used" },
      width: { step: 22 }, height: { step: 26 },
      data: { values: d.portfolio.resource_load }, mark: "rect",
      encoding: { x: { field: "month", type: "ordinal", title: "month" }, y: { field: "role", type: "nominal", title: "role" },
        color: { field: "utilisation", type: "quantitative", title: "load / capacity", scale: { scheme: "yelloworangered", domain: [0, 1] } },
        tooltip: [{ field: "role" }, { field: "month" }, { field: "load_hours", format: ",.0f", title: "load (h)" }, { field: "capacity_hours", format: ",.0f", title: "capacity (h)" }, { field: "utilisation", format: ".0%" }] },
    }),
    chart("frontier", {
      title: { text: "Efficient frontier", subtitle: "best risk-adjusted value at each budget level" }, width: 360, height: 260,
      data: { values: d.portfolio.frontier.filter((f) => f.total_value != null) },
      layer: [{ mark: { type: "line", point: true } },
        { mark: { type: "text", dx: 14, dy: -8 }, encoding: { text: { field: "budget_scale", format: ".2~f" } } }],
      encoding: { x: { field: "budget_total", type: "quantitative", title: "total budget over the horizon (currency)", axis: { format: "~s" }, scale: { zero: false } },
        y: { field: "total_value", type: "quantitative", title: "risk-adjusted value selected (currency)", axis: { format: "~s" } },
        tooltip: [{ field: "budget_scale" }, { field: "selected" }, { field: "total_value", format: ",.0f" }] },
    }),
  ]);
}

// ---------------------------------------------------------------- schedule view
// An uploaded P6 (.xer, P6 XML) or MS Project (.xml) file through POST /v1/schedules/risk:
// the finish S-curve, the tornado of what drives the P80, and the critical path.
let scheduleData = null;
const stamp = (s) => s == null ? "–" : s.replace("T", " ");

async function renderSchedule() {
  if (EMBEDDED) { app.innerHTML = `<p class="note">The schedule view analyses an uploaded file: open the dashboard served by opm-ml serve.</p>`; return; }
  app.innerHTML = `
    <h2>Schedule risk: Monte Carlo over a P6 or MS Project file</h2>
    <p class="note">Upload a Primavera P6 XER or XML export, or an MS Project XML (MSPDI) file. Each remaining activity gets a duration distribution from the served activity-duration model, or the default template when none is served; the page says which.
      <input type="file" id="schedule-upload" accept=".xer,.xml">
      iterations <input type="number" id="schedule-iterations" min="100" max="100000" step="100" value="5000">
      <span id="schedule-status"></span></p>
    <div id="schedule-result"></div>`;
  document.getElementById("schedule-upload").addEventListener("change", uploadSchedule);
  if (scheduleData) await renderScheduleResult(scheduleData);
}

async function uploadSchedule(event) {
  const file = event.target.files[0];
  const status = document.getElementById("schedule-status");
  const iterations = document.getElementById("schedule-iterations").value || "5000";
  status.className = ""; status.textContent = "simulating…";
  document.body.dataset.ready = "schedule-busy";
  let resp, body;
  try {
    resp = await fetch(`/v1/schedules/risk?filename=${encodeURIComponent(file.name)}&iterations=${encodeURIComponent(iterations)}`,
      { method: "POST", body: await file.arrayBuffer(), headers: { "content-type": "application/octet-stream" } });
    body = await resp.json();
  } catch (err) {
    resp = { ok: false }; body = { message: `the upload failed: ${err.message}` };
  }
  if (!resp.ok) {
    status.className = "error"; status.textContent = body.message || JSON.stringify(body);
    document.body.dataset.ready = "schedule-error";
    return;
  }
  status.textContent = "";
  scheduleData = body;
  await renderScheduleResult(body);
}

async function renderScheduleResult(d) {
  const s = d.schedule, f = d.finish, u = d.uncertainty;
  const counts = Object.entries(u.activities).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ");
  document.getElementById("schedule-result").innerHTML = `
    <h3 id="schedule-title">${esc(s.name)} (${esc(s.format)}): ${s.activities} activities, ${s.relationships} relationships, data date ${stamp(s.data_date)}</h3>
    <p class="note" data-testid="uncertainty">Uncertainty: ${esc(u.description)} (${esc(counts)} activities)${u.note ? `; ${esc(u.note)}` : ""}. ${d.iterations.toLocaleString("en-US")} iterations, copula correlation ${u.correlation} by ${esc(u.group_by)}.</p>
    ${d.warnings.length ? `<p class="note">${d.warnings.map(esc).join("<br>")}</p>` : ""}
    <table id="schedule-finish"><thead><tr><th class="l">finish</th><th>deterministic</th><th>P10</th><th>P50</th><th>P80</th><th>P90</th></tr></thead><tbody>
      <tr><td class="l">date</td>${["deterministic", "p10", "p50", "p80", "p90"].map((k) => `<td data-testid="finish-${k}">${stamp(f[k])}</td>`).join("")}</tr>
      <tr><td class="l">working days</td>${["deterministic", "p10", "p50", "p80", "p90"].map((k) => `<td>${num(d.duration_working_days[k], 1)}</td>`).join("")}</tr>
    </tbody></table>
    <div class="row">
      <div class="card"><div id="schedule-s-curve"></div></div>
      <div class="card"><div id="schedule-tornado"></div></div>
    </div>
    <div class="row">
      <div class="card"><div id="schedule-gantt"></div></div>
      <div class="card scroll"><h3>Critical path (deterministic CPM)</h3><table id="critical-path-table"><thead><tr><th class="l">activity</th><th class="l">name</th><th class="l">start</th><th class="l">finish</th><th>total float (h)</th><th>criticality</th></tr></thead><tbody>
        ${d.critical_path.map((a) => `<tr><td class="l">${esc(a.activity_id)}</td><td class="l">${esc(a.name)}</td><td class="l">${stamp(a.start)}</td><td class="l">${stamp(a.finish)}</td><td>${num(a.total_float_hours, 1)}</td><td data-testid="criticality">${pct(a.criticality_index)}</td></tr>`).join("")}
      </tbody></table></div>
    </div>`;
  const marks = [["deterministic", f.deterministic], ["P80", f.p80]].map(([label, date]) => ({ label, date }));
  await Promise.all([
    chart("schedule-s-curve", {
      title: { text: "Finish S-curve", subtitle: "probability of finishing by each date; dashed: deterministic finish and P80" },
      width: 460, height: 280,
      layer: [
        { data: { values: d.s_curve, name: "s_curve" }, mark: { type: "line", interpolate: "step-after" },
          encoding: { x: { field: "finish", type: "temporal", title: "project finish" },
            y: { field: "probability", type: "quantitative", axis: { format: ".0%", title: "probability of finishing by then" } },
            tooltip: [{ field: "finish", type: "temporal", format: "%Y-%m-%d %H:%M" }, { field: "probability", format: ".0%" }] } },
        { data: { values: marks }, mark: { type: "rule", strokeDash: [4, 4], color: "#555" },
          encoding: { x: { field: "date", type: "temporal" }, tooltip: [{ field: "label" }, { field: "date", type: "temporal", format: "%Y-%m-%d %H:%M" }] } },
      ],
    }),
    chart("schedule-tornado", {
      title: { text: "Tornado: what drives the P80 finish", subtitle: "P80 when the input is high (top decile / risk occurred) minus when low, days" },
      width: 380, height: { step: 18 },
      data: { values: d.tornado.map((t) => ({ ...t, label: t.kind === "risk" ? `risk: ${t.name}` : `${t.input} ${t.name}` })), name: "tornado" },
      mark: "bar",
      encoding: { y: { field: "label", type: "nominal", sort: "-x", title: null, axis: { labelLimit: 240 } },
        x: { field: "p80_swing_days", type: "quantitative", title: "swing of the P80 finish (days)" },
        color: { field: "kind", type: "nominal", title: null, scale: { domain: ["activity", "risk"], range: ["#1f77b4", "#d62728"] } },
        tooltip: [{ field: "label" }, { field: "p80_swing_days", format: ".1f", title: "P80 swing (days)" }, { field: "correlation", format: ".2f" }] },
    }),
    chart("schedule-gantt", {
      title: { text: "Critical path", subtitle: "deterministic CPM dates; colour: criticality index across the iterations" },
      width: 460, height: { step: 14 },
      data: { values: d.critical_path.map((a, i) => ({ ...a, order: i, label: `${a.activity_id} ${a.name}` })), name: "critical_path" },
      mark: { type: "bar", cornerRadius: 2 },
      encoding: { y: { field: "label", type: "nominal", sort: { field: "order" }, title: null, axis: { labelLimit: 220 } },
        x: { field: "start", type: "temporal", title: null }, x2: { field: "finish" },
        color: { field: "criticality_index", type: "quantitative", title: "criticality", scale: { domain: [0, 1], scheme: "orangered" } },
        tooltip: [{ field: "activity_id" }, { field: "name" }, { field: "start" }, { field: "finish" }, { field: "criticality_index", format: ".0%" }] },
    }),
  ]);
  document.body.dataset.ready = "schedule-result";  // tests wait for this
}

// ---------------------------------------------------------------- routing
// A report holds some views only (`opm-ml monitor` writes the monitoring view alone).
const HAS = (view) => !EMBEDDED || (view === "project" ? "projects" : view) in EMBEDDED;
document.querySelectorAll("nav a").forEach((a) => { a.hidden = !HAS(a.id.slice(4)); });

async function route() {
  const [view, ...rest] = (location.hash.slice(1) || (HAS("portfolio") ? "portfolio" : "monitoring")).split("/");
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.id === `nav-${view}`));
  document.body.dataset.ready = "";
  try {
    if (view === "project") await renderProject(rest.join("/") ? decodeURIComponent(rest.join("/")) : null);
    else if (view === "intake") await renderIntake();
    else if (view === "monitoring") await window.renderMonitoring(app, await getJSON("monitoring"), { chart, esc, num });
    else if (view === "schedule") await renderSchedule();
    else await renderPortfolio();
  } catch (err) {
    app.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
  document.body.dataset.ready = view;  // tests wait for this
  performance.mark(`opm-rendered-${view}`);
}

window.addEventListener("hashchange", route);
route();
