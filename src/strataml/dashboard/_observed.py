"""What the pages show from the monitoring layer: SLO series, drift, quality, alerts.

The monitoring layer is imported when a page asks for it, by name: a build without
one (or without the function a page needs) shows "monitoring not available" rather
than anything made up.
"""

from __future__ import annotations

import bisect
import datetime as dt
import importlib
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

from strataml.errors import StrataError
from strataml.spine import Workspace, parse_duration


class MonitoringUnavailable(StrataError):
    """The monitoring layer, or the function a page needs from it, is not installed."""


def monitoring(name: str) -> Callable[..., Any]:
    """``strataml.monitoring.<name>``, or :class:`MonitoringUnavailable`."""
    try:
        mod = importlib.import_module("strataml.monitoring")
    except ImportError:
        raise MonitoringUnavailable("monitoring not available: this build has no monitoring layer") from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise MonitoringUnavailable(f"monitoring not available: strataml.monitoring has no {name}()")
    return fn  # type: ignore[no-any-return]


def _epoch(t: Any) -> float | None:
    """Seconds since the epoch of a time (a datetime, ISO text or a number); None for none."""
    if t is None or t == "":
        return None
    if isinstance(t, int | float):
        return float(t)
    v = t if isinstance(t, dt.datetime) else dt.datetime.fromisoformat(str(t))
    if v.tzinfo is None:
        v = v.replace(tzinfo=dt.UTC)
    return v.timestamp()


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _doc(obj: Any) -> dict[str, Any]:
    d = obj.to_dict() if hasattr(obj, "to_dict") else obj
    if not isinstance(d, dict):
        raise StrataError(f"the monitoring layer returned {type(obj).__name__}, not a report")
    return d


# --- latency and errors -------------------------------------------------------------------


def _version(point: dict[str, Any]) -> str:
    """A series point's version as text; "-" for failures that never reached a version."""
    v = point.get("version")
    return "-" if v is None else str(v)


def slo(ws: Workspace, name: str, window: str = "1h", bucket: str = "1m") -> dict[str, Any]:
    """Per model version over time: request rate (per second), errors, degraded answers and p50/p95/p99 (ms).

    Shaped for uPlot: one shared time axis ``x`` (epoch seconds) and, per measure, one
    series per version (None where a version had no requests in a bucket)."""
    report = _doc(monitoring("slo")(ws, name, window=window, bucket=bucket))
    seconds = parse_duration(bucket, "bucket")
    points = report.get("series") or []
    xs = sorted({e for p in points if (e := _epoch(p.get("t"))) is not None})
    index = {t: i for i, t in enumerate(xs)}
    versions = sorted({_version(p) for p in points}, key=lambda v: (len(v), v))
    measures = ("rate", "errors", "degraded", "p50", "p95", "p99")
    grid: dict[str, dict[str, list[float | None]]] = {m: {v: [None] * len(xs) for v in versions} for m in measures}
    totals = {v: {"requests": 0, "errors": 0, "degraded": 0} for v in versions}
    for p in points:
        t = _epoch(p.get("t"))
        if t is None:
            continue
        v, i = _version(p), index[t]
        req = _num(p.get("requests")) or 0.0
        grid["rate"][v][i] = req / seconds
        for m in ("errors", "degraded", "p50", "p95", "p99"):
            grid[m][v][i] = _num(p.get(m))
        for m in ("requests", "errors", "degraded"):
            totals[v][m] += int(_num(p.get(m)) or 0)
    return {
        "deployment": report.get("deployment", name), "window": window, "bucket": bucket, "x": xs, "versions": versions,
        "totals": totals, "charts": {m: [{"label": f"v{v}" if v.isdigit() else "no version", "values": grid[m][v]} for v in versions] for m in measures},
    }


# --- drift --------------------------------------------------------------------------------


def _severity(f: dict[str, Any]) -> tuple[int, float]:
    """Drifted features first, then by PSI (or distance, or 1 - p-value)."""
    for k in ("psi", "distance"):
        v = _num(f.get(k))
        if v is not None:
            return (1 if f.get("drifted") else 0, v)
    p = _num(f.get("p_value"))
    return (1 if f.get("drifted") else 0, 1.0 - p if p is not None else 0.0)


def drift(ws: Workspace, model: str, since: str | None = None) -> dict[str, Any]:
    """A model's drift report (live traffic since ``since``, else all of it, against its
    champion's reference) with its features as a list sorted by severity, worst first."""
    report = _doc(monitoring("drift")(ws, model, since=since or None))
    feats = [{"name": n, **f} for n, f in (report.get("features") or {}).items()]
    feats.sort(key=_severity, reverse=True)
    return {**report, "model": model, "since": since, "features": feats}


def _minute_since(since: str) -> int:
    """The first minute of a span reaching ``since`` back from now (as the drift check counts it)."""
    return int(time.time() // 60) - max(1, int(-(-parse_duration(since, "since") // 60)))


def distributions(ws: Workspace, model: str, column: str, since: str | None = None) -> dict[str, Any]:
    """One input's distributions, as shares of rows on shared bins (numbers) or categories:
    the champion's reference (its training rows) and its live traffic since ``since``."""
    from strataml.models import resolve_version

    version = resolve_version(ws, model, "champion")
    reference = _doc(monitoring("profile")(ws, f"{model}@v{version}"))
    current = _doc(monitoring("window_profile")(ws, model, version, start_minute=_minute_since(since) if since else None))
    ref, cur = _dist(reference, column), _dist(current, column)
    if ref is None or cur is None:
        raise StrataError(f"{column[:80]!r} is not profiled on both sides of {model}@v{version}'s drift check",
                          hint="the drift table lists the inputs compared")
    stats = {"reference": _summary(ref), "current": _summary(cur)}
    if "numeric" in (ref.get("kind"), cur.get("kind")):
        sides = [c for c in (ref, cur) if c.get("histogram")]
        if not sides:
            return {"kind": "numeric", "column": column, "x": [], "edges": [], "reference": [], "current": [], "stats": stats}
        # one set of bins over both sides' ranges, as many as the reference's histogram has
        lo, hi = min(float(c["min"]) for c in sides), max(float(c["max"]) for c in sides)
        n = max(len(sides[0]["histogram"]["edges"]) - 1, 20)
        edges = [lo + (hi - lo) * i / n for i in range(n + 1)] if hi > lo else [lo - 0.5, lo + 0.5]
        mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        empty = [0.0] * (len(edges) - 1)
        return {"kind": "numeric", "column": column, "x": mids, "edges": edges,
                "reference": _shares(_rebin(ref, edges) if ref.get("histogram") else empty),
                "current": _shares(_rebin(cur, edges) if cur.get("histogram") else empty), "stats": stats}
    rcount, ccount = dict(ref.get("counts") or {}), dict(cur.get("counts") or {})
    cats = sorted(set(rcount) | set(ccount), key=lambda c: -(rcount.get(c, 0) + ccount.get(c, 0)))[:50]
    return {"kind": "categorical", "column": column, "categories": [str(c) for c in cats],
            "reference": _shares([rcount.get(c, 0) for c in cats]), "current": _shares([ccount.get(c, 0) for c in cats]), "stats": stats}


def _dist(profile: dict[str, Any], column: str) -> dict[str, Any] | None:
    cols = profile.get("columns")
    c = cols.get(column) if isinstance(cols, dict) else None
    return c if isinstance(c, dict) else None


def _rebin(col: dict[str, Any], edges: list[float]) -> list[float]:
    """A histogram's counts on other bin edges: each own bin's count goes to the bin holding
    its centre (the outermost bins take what falls outside)."""
    h = col["histogram"]
    own, counts = [float(e) for e in h["edges"]], [float(c) for c in h["counts"]]
    if own == edges:
        return counts
    out = [0.0] * (len(edges) - 1)
    for (a, b), n in zip(itertools.pairwise(own), counts, strict=False):
        i = bisect.bisect_right(edges, (a + b) / 2) - 1
        out[min(max(i, 0), len(out) - 1)] += n
    return out


def _shares(counts: list[float] | list[int]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


def _summary(col: dict[str, Any]) -> dict[str, Any]:
    return {k: col.get(k) for k in ("count", "nulls", "mean", "std", "min", "max") if k in col}


# --- quality and alerts ---------------------------------------------------------------------


_ROW_FIELDS = {"version", "window", "predictions", "labelled", "unlabelled", "estimated"}


def quality(ws: Workspace, model: str, labels: str, by: str = "hour") -> dict[str, Any]:
    """Realised (from the labels) and estimated quality per version and window (``hour``
    or ``day``), one uPlot chart per metric with a line per version and kind."""
    if by not in ("hour", "day"):
        raise StrataError(f"invalid 'by' {by[:20]!r}", hint="hour or day")
    report = _doc(monitoring("quality")(ws, model, labels, by=by))
    rows = [r for r in report.get("rows") or [] if r.get("window") is not None]
    xs = sorted({e for r in rows if (e := _epoch(r["window"])) is not None})
    index = {t: i for i, t in enumerate(xs)}
    charts: dict[str, dict[str, list[float | None]]] = {}
    for r in rows:
        i = index[_epoch(r["window"]) or 0.0]
        realised = {k: v for k, v in r.items() if k not in _ROW_FIELDS and _num(v) is not None and not isinstance(v, bool)}
        for kind, values in (("realised", realised), ("estimated", r.get("estimated") or {})):
            for metric, value in values.items():
                if _num(value) is None:
                    continue
                line = charts.setdefault(str(metric), {}).setdefault(f"v{r['version']} {kind}", [None] * len(xs))
                line[i] = _num(value)
    return {
        **{k: v for k, v in report.items() if k != "rows"}, "model": model, "labels": labels, "by": by, "x": xs, "rows": rows,
        "charts": {m: [{"label": k, "values": v} for k, v in sorted(lines.items())] for m, lines in sorted(charts.items())},
    }


def alerts(ws: Workspace, state: str | None = None) -> list[dict[str, Any]]:
    """Alerts from the monitoring layer, newest first."""
    items = [_doc(a) for a in monitoring("list_alerts")(ws, state=state)]
    items.sort(key=lambda a: str(a.get("fired_at") or a.get("ts") or a.get("created_at") or ""), reverse=True)
    return items
