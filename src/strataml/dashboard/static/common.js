"use strict";
// Charts are drawn with uPlot (vendored here with its LICENSE, so the dashboard works
// offline): ~50 kB minified with no dependencies, canvas-based and fast for thousands of
// points, MIT-licensed and actively maintained. It writes no inline <script> or markup
// (labels go in as text), so the dashboard's strict Content-Security-Policy holds.
// Every string from the server is set with textContent, never parsed as HTML.
window.Strata = (() => {
  const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
    let doc = null;
    try { doc = await r.json(); } catch (e) { doc = null; }
    if (!r.ok) throw new Error(doc && doc.error ? doc.error.message : r.status + " " + r.statusText);
    return doc;
  }

  function note(el, text, cls) {
    const p = document.createElement("p");
    p.className = cls || "note";
    p.textContent = text;
    el.replaceChildren(p);
  }

  function plotBox(fig) {
    return fig.querySelector(".plot") || fig;
  }

  function width(el) {
    return Math.max(320, Math.min(1100, (el.parentElement || el).clientWidth || 800));
  }

  // A line chart: x shared by every series, one line per {label, values}.
  function lines(fig, data, opts) {
    opts = opts || {};
    const box = plotBox(fig);
    if (!data.x || data.x.length === 0 || !data.series || data.series.length === 0) {
      note(box, opts.empty || "no data yet");
      return null;
    }
    const series = [{ label: opts.xLabel || data.x_label || "time" }].concat(data.series.map((s, i) => ({
      label: s.label,
      stroke: s.color || palette[i % palette.length],
      width: 2,
      dash: s.dash,
      spanGaps: false,
      paths: opts.pointsOnly ? () => null : undefined,
      points: { show: opts.points !== false, size: opts.pointsOnly ? 8 : 5 },
    })));
    const axes = [{ label: opts.xTime ? undefined : (opts.xLabel || data.x_label) }, { label: opts.yLabel, size: opts.ySize || 60 }];
    if (opts.xValues) axes[0].values = opts.xValues;
    if (opts.yValues) { axes[1].values = opts.yValues; axes[1].splits = opts.ySplits; }
    // one x value alone would make uPlot span years (or versions) around it: pad it instead
    const pad = opts.xTime ? 300 : 1;
    const scales = { x: { time: !!opts.xTime } };
    if (data.x.length === 1) scales.x = { time: !!opts.xTime, auto: false, range: [data.x[0] - pad, data.x[0] + pad] };
    if (opts.yRange) scales.y = { range: opts.yRange };
    box.replaceChildren();
    return new uPlot({
      width: width(fig), height: opts.height || 260, scales: scales, axes: axes, series: series,
      cursor: { points: { size: 7 } }, legend: { live: true },
    }, [data.x].concat(data.series.map((s) => s.values)), box);
  }

  // Overlaid bars: categories (or bin centres) on x, one translucent bar series per {label, values}.
  function bars(fig, x, series, opts) {
    opts = opts || {};
    const box = plotBox(fig);
    const colors = [["#2563eb", "rgba(37,99,235,0.35)"], ["#dc2626", "rgba(220,38,38,0.35)"]];
    const us = [{ label: opts.xLabel || "value" }].concat(series.map((s, i) => ({
      label: s.label, stroke: colors[i % 2][0], fill: colors[i % 2][1], width: 1,
      paths: uPlot.paths.bars({ size: [opts.barSize || 0.9, Infinity], align: 0 }),
      points: { show: false },
    })));
    const axes = [{ label: opts.xLabel, values: opts.xValues, splits: opts.xSplits, size: opts.xSize }, { label: "share", size: 60 }];
    box.replaceChildren();
    return new uPlot({
      width: width(fig), height: opts.height || 280, series: us, axes: axes,
      scales: { x: { time: false, range: opts.xRange }, y: { range: [0, null] } },
    }, [x].concat(series.map((s) => s.values)), box);
  }

  function error(fig, err) {
    note(plotBox(fig), "could not load the chart: " + err.message, "error");
  }

  return { palette, getJSON, note, lines, bars, error };
})();
