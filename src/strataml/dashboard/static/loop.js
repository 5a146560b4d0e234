"use strict";
// Loop page: the canary's error rate and p99 latency against the champion's, round by round.
(async () => {
  const errors = document.getElementById("chart-loop-errors");
  const p99 = document.getElementById("chart-loop-p99");
  if (!errors || !p99) return;
  try {
    const data = await Strata.getJSON(errors.dataset.src);
    Strata.lines(errors, data.error_rate, { xTime: true, yLabel: "error rate", empty: "no round of checks yet" });
    Strata.lines(p99, data.p99_ms, { xTime: true, yLabel: "ms", empty: "no round of checks yet" });
  } catch (err) { Strata.error(errors, err); Strata.error(p99, err); }
})();
