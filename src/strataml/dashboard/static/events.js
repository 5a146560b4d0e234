"use strict";
// Events page: every event as a point on a time line, one row per family (dataset, model, alert…).
(async () => {
  const fig = document.getElementById("chart-events");
  if (!fig) return;
  try {
    const d = await Strata.getJSON(fig.dataset.src);
    const rows = d.families.map((_, i) => i);
    Strata.lines(fig, d, {
      xTime: true, yLabel: "", pointsOnly: true, ySize: 110, height: 60 + 28 * Math.max(2, d.families.length),
      yRange: [-0.5, Math.max(0.5, d.families.length - 0.5)], ySplits: () => rows,
      yValues: (u, splits) => splits.map((i) => (d.families[i] === undefined ? "" : d.families[i])),
      empty: "no events yet",
    });
  } catch (err) { Strata.error(fig, err); }
})();
