"use strict";
// Drift page: clicking a feature draws its reference and current distributions, overlaid.
(() => {
  const fig = document.getElementById("chart-distribution");
  if (!fig) return;
  const buttons = Array.from(document.querySelectorAll("button.feature"));

  function stats(s) {
    const dl = fig.querySelector("dl.stats");
    dl.replaceChildren();
    for (const side of ["reference", "current"]) {
      const dt = document.createElement("dt");
      dt.textContent = side;
      const dd = document.createElement("dd");
      dd.textContent = Object.entries(s[side] || {}).map(([k, v]) => k + " " + (typeof v === "number" ? +v.toPrecision(4) : v)).join(" · ");
      dl.append(dt, dd);
    }
  }

  async function show(button) {
    buttons.forEach((b) => b.closest("tr").classList.toggle("selected", b === button));
    const name = button.dataset.feature;
    fig.querySelector("figcaption").textContent = name + ": reference (blue) and current (red), share of rows";
    const q = new URLSearchParams({ column: name });
    if (fig.dataset.since) q.set("since", fig.dataset.since);
    try {
      const d = await Strata.getJSON(fig.dataset.src + "?" + q.toString());
      const series = [{ label: "reference", values: d.reference }, { label: "current", values: d.current }];
      if (d.kind === "categorical") {
        const idx = d.categories.map((_, i) => i);
        Strata.bars(fig, idx, series, {
          xLabel: name, xRange: [-0.5, idx.length - 0.5], xSplits: () => idx, barSize: 0.8,
          xValues: (u, splits) => splits.map((i) => (d.categories[i] === undefined ? "" : d.categories[i])),
        });
      } else {
        const lo = d.edges[0], hi = d.edges[d.edges.length - 1];
        Strata.bars(fig, d.x, series, { xLabel: name, xRange: [lo, hi], barSize: 1 });
      }
      stats(d.stats || {});
      fig.dataset.shown = name;
    } catch (err) { Strata.error(fig, err); }
  }

  buttons.forEach((b) => b.addEventListener("click", () => show(b)));
  if (buttons.length) show(buttons[0]);
})();
