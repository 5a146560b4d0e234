"use strict";
// Dataset page: rows kept and rows quarantined by each rule, per version.
(async () => {
  const fig = document.getElementById("chart-dataset");
  if (!fig) return;
  try {
    const data = await Strata.getJSON(fig.dataset.src);
    Strata.lines(fig, data, { xLabel: "version", yLabel: "rows", xValues: (u, splits) => splits.map((v) => (Number.isInteger(v) ? "v" + v : "")) });
  } catch (err) { Strata.error(fig, err); }
})();
