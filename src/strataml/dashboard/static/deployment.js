"use strict";
// Deployment page: request rate, errors, latency percentiles and degraded answers per version over time.
(async () => {
  const root = document.getElementById("slo");
  if (!root) return;
  const figs = ["rate", "errors", "latency", "degraded"].map((k) => document.getElementById("chart-" + k));
  try {
    const d = await Strata.getJSON(root.dataset.src);
    const one = (m) => ({ x: d.x, series: d.charts[m] });
    Strata.lines(figs[0], one("rate"), { xTime: true, yLabel: "req/s", empty: "no requests in this window" });
    Strata.lines(figs[1], one("errors"), { xTime: true, yLabel: "errors", empty: "no requests in this window" });
    const dashes = { p50: undefined, p95: [6, 3], p99: [2, 3] };
    const latency = [];
    d.versions.forEach((v, i) => {
      ["p50", "p95", "p99"].forEach((p) => {
        const s = d.charts[p][i];
        latency.push({ label: s.label + " " + p, values: s.values, color: Strata.palette[i % Strata.palette.length], dash: dashes[p] });
      });
    });
    Strata.lines(figs[2], { x: d.x, series: latency }, { xTime: true, yLabel: "ms", empty: "no requests in this window" });
    Strata.lines(figs[3], one("degraded"), { xTime: true, yLabel: "degraded", empty: "no requests in this window" });
  } catch (err) { figs.forEach((f) => Strata.error(f, err)); }
})();
