// opm-ml dashboard, monitoring view: drift per feature, realised error over time per model
// version, P(late) reliability and the retrain decision, from GET /v1/monitoring (or, in an
// offline report, the same JSON embedded). A classic script: dashboard.js calls
// window.renderMonitoring(app, report, helpers) with its own chart and formatting helpers.

window.renderMonitoring = async function renderMonitoring(app, r, { chart, esc, num }) {
  const families = Object.entries(r.families);
  const psiLimit = Math.min(...families.map(([, f]) => f.thresholds.psi));
  const decisions = families.map(([name, f]) => `
    <div class="card decision" data-family="${esc(name)}">
      <h3>${esc(name)}: ${esc(f.model.name)} v${esc(f.model.version)}
        <span class="${f.decision.retrain ? "rag-red" : "rag-green"}">${f.decision.retrain ? "retrain" : "keep"}</span></h3>
      <ul>${f.decision.checks.map((c) => `<li class="${c.triggered ? "error" : ""}">${esc(c.detail)}</li>`).join("")}</ul>
    </div>`).join("");
  const requests = Object.entries(r.requests).map(([s, n]) => `${num(n)} ${esc(s)}`).join(", ") || "none";
  app.innerHTML = `
    <h2>Monitoring</h2>
    <p class="note">Forecasts logged since ${esc(r.since.slice(0, 10))}: ${requests};
      ${num(r.judged_forecasts)} forecasts of finished projects judged. Report of ${esc(r.generated_at)}.</p>
    <div class="row">${decisions}</div>
    <div class="row">
      <div class="card"><div id="drift-chart"></div></div>
      <div class="card"><div id="error-chart"></div><div id="reliability-chart"></div></div>
    </div>`;
  const judged = r.drift.filter((d) => d.judged);
  const shownFeatures = new Set([...new Set([...judged].sort((a, b) => b.psi - a.psi).map((d) => d.feature))].slice(0, 30));
  const drift = judged.filter((d) => shownFeatures.has(d.feature));
  const overTime = r.accuracy.filter((a) => a.by === "month")
    .map((a) => ({ ...a, series: `${a.family} v${a.model_version}` }));
  const reliability = families.flatMap(([name, f]) => f.reliability.map((b) => ({ ...b, family: name })));
  const charts = [
    chart("drift-chart", {
      title: { text: "Drift per feature: PSI of recent requests vs training rows",
        subtitle: [`red: drifted (PSI ≥ ${psiLimit} or KS over its threshold); line: PSI threshold`,
          `the ${shownFeatures.size} features with the largest PSI of ${new Set(judged.map((d) => d.feature)).size}`] },
      width: 380, height: { step: 13 }, datasets: { drift },
      layer: [{ data: { name: "drift" }, mark: "bar", encoding: {
        y: { field: "feature", type: "nominal", sort: "-x", title: null },
        x: { field: "psi", type: "quantitative", title: "PSI", scale: { type: "symlog" } },
        yOffset: { field: "stage" },
        color: { condition: { test: "datum.drifted", value: "#d62728" }, field: "stage", type: "nominal", title: "stage" },
        tooltip: [{ field: "stage" }, { field: "feature" }, { field: "psi", format: ".3f" }, { field: "ks", format: ".3f" }, { field: "n", format: "," }] } },
      { mark: { type: "rule", color: "#444", strokeDash: [4, 3] }, data: { values: [{ psi: psiLimit }] }, encoding: { x: { field: "psi", type: "quantitative" } } }],
    }),
    chart("error-chart", {
      title: { text: "Realised error over time per model version", subtitle: "MAPE of the P50 by month of forecast; dashed: held-out MAPE at the same stages" },
      width: 380, height: 200, datasets: { error: overTime }, data: { name: "error" },
      layer: [
        { mark: { type: "line", point: true },
          encoding: { y: { field: "mape", type: "quantitative", title: "MAPE %" } } },
        { mark: { type: "line", strokeDash: [4, 3], point: { filled: false, shape: "diamond" } },
          encoding: { y: { field: "heldout_mape", type: "quantitative" } } }],
      encoding: { x: { field: "group", type: "ordinal", title: "month of forecast" },
        color: { field: "series", type: "nominal", title: "model" },
        tooltip: [{ field: "series" }, { field: "group" }, { field: "n" }, { field: "mape", format: ".2f" }, { field: "heldout_mape", format: ".2f" }, { field: "coverage_80", format: ".2f" }] },
    }),
  ];
  if (reliability.length) {
    charts.push(chart("reliability-chart", {
      title: { text: "P(late) reliability", subtitle: "observed share late vs forecast; diagonal = calibrated" },
      width: 260, height: 220, datasets: { reliability },
      layer: [{ data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] }, mark: { type: "line", color: "#999", strokeDash: [4, 3] },
        encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } } },
      { data: { name: "reliability" }, mark: { type: "line", point: true }, encoding: {
        x: { field: "forecast", type: "quantitative", title: "forecast P(late)", scale: { domain: [0, 1] } },
        y: { field: "observed", type: "quantitative", title: "observed share late", scale: { domain: [0, 1] } },
        color: { field: "family", type: "nominal" }, tooltip: [{ field: "bin" }, { field: "n" }, { field: "observed", format: ".2f" }] } }],
    }));
  }
  await Promise.all(charts);
};
