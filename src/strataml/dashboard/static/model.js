"use strict";
// Model page: each metric across the model's versions.
(async () => {
  const fig = document.getElementById("chart-model");
  if (!fig) return;
  try {
    const data = await Strata.getJSON(fig.dataset.src);
    Strata.lines(fig, data, { xLabel: "version", yLabel: "metric", xValues: (u, splits) => splits.map((v) => (Number.isInteger(v) ? "v" + v : "")) });
  } catch (err) { Strata.error(fig, err); }
})();
