"use strict";
// Quality page: per metric, realised (from labels) and estimated quality over time per version.
(async () => {
  const root = document.getElementById("quality");
  if (!root) return;
  const figs = Array.from(root.querySelectorAll("figure.chart"));
  try {
    const d = await Strata.getJSON(root.dataset.src);
    figs.forEach((fig) => {
      const series = (d.charts[fig.dataset.metric] || []).map((s) => ({ ...s, dash: s.label.endsWith("estimated") ? [6, 3] : undefined }));
      Strata.lines(fig, { x: d.x, series: series }, { xTime: true, yLabel: fig.dataset.metric });
    });
  } catch (err) { figs.forEach((f) => Strata.error(f, err)); }
})();
