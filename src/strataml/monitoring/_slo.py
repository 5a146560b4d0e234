"""Service levels of a deployment, from the prediction log and the failed-request log.

Per model version and time bucket: requests, errors, degraded answers and latency
percentiles (p50/p95/p99 of each request's latency). Every figure is counted from the
durable records — every logged prediction and every failed request — not sampled.
A series' ``errors`` are the failures of its version: requests answered with an error
once a version was chosen, and the failures of a canary or A/B arm whose request the
gateway answered otherwise (its champion, a fallback); failures before a version was
chosen are under version ``None``. ``failed_requests`` counts only the requests answered
with an error: the deployment's error rate (:meth:`SloReport.totals`, burn-rate rules)
is failed requests over all requests, so an arm's failure the caller never saw does not
count twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from strataml.spine import Workspace, duck, parse_duration, quote_literal


@dataclass
class SloReport:
    """Per version and bucket: requests, errors, failed requests, degraded, p50/p95/p99 latency (ms)."""

    deployment: str
    window: str
    bucket: str
    series: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"deployment","window","bucket","series":[{"version","t","requests","errors","failed_requests","degraded","p50","p95","p99"}…]}``."""
        return {"deployment": self.deployment, "window": self.window, "bucket": self.bucket, "series": self.series}

    def totals(self) -> dict[str, Any]:
        """Requests, failed requests (``errors``), degraded answers, error and degraded rates over the whole window, and the worst bucket's p99."""
        req = sum(s["requests"] for s in self.series)
        err = sum(s["failed_requests"] for s in self.series)  # an arm's failure the gateway answered for is no failed request
        deg = sum(s["degraded"] for s in self.series)
        total = req + err
        p99 = [s["p99"] for s in self.series if s["p99"] is not None]
        return {"requests": req, "errors": err, "degraded": deg, "error_rate": err / total if total else None,
                "degraded_rate": deg / req if req else None, "p99_max": max(p99) if p99 else None}


def counts(ws: Workspace, deployment: str, since: dt.datetime) -> tuple[int, int]:
    """Answered requests and failed requests of ``deployment`` since ``since`` (burn-rate rules)."""
    rep = _query(ws, deployment, since, None)
    return sum(r["requests"] for r in rep), sum(r["failed_requests"] for r in rep)


def live_requests_sql(ws: Workspace, deployment: str, since: dt.datetime) -> str | None:
    """A DuckDB table expression of ``deployment``'s live requests from ``since`` on, a row
    a request: ``request_id, version, ts`` (its first line), ``degraded`` (any instance)
    and ``latency_ms``; None when no prediction is logged."""
    from strataml.serving import prediction_log_dir, prediction_log_sql

    pdir = prediction_log_dir(ws.state_dir)
    if not (pdir.is_dir() and any(pdir.glob("*.jsonl"))):
        return None
    return (f"(SELECT request_id, any_value(version) AS version, min(ts) AS ts, bool_or(degraded) AS degraded, "
            f"max(latency_ms) AS latency_ms FROM {prediction_log_sql(pdir)} WHERE deployment = {quote_literal(deployment)} "
            f"AND mode = 'live' AND ts >= {_at(since)} GROUP BY request_id)")


def failures_sql(ws: Workspace, deployment: str, since: dt.datetime) -> str | None:
    """A DuckDB table expression of ``deployment``'s lines in the failed-request log from
    ``since`` on (``version`` is ``-`` when none was chosen; ``kind`` is ``request``, or
    ``arm`` for an arm's failure the gateway answered for); None when there are none."""
    from strataml.serving import error_log_dir, error_log_sql

    edir = error_log_dir(ws.state_dir)
    if not (edir.is_dir() and any(edir.glob("*.jsonl"))):
        return None
    return (f"(SELECT * FROM {error_log_sql(edir)} WHERE (scope = {quote_literal('predict:' + deployment)} "
            f"OR model = {quote_literal(deployment)}) AND ts >= {_at(since)})")


def _at(t: dt.datetime) -> str:
    return f"CAST({quote_literal(t.isoformat())} AS TIMESTAMPTZ)"


def _query(ws: Workspace, deployment: str, since: dt.datetime, bucket_s: float | None) -> list[dict[str, Any]]:
    b = "NULL::TIMESTAMPTZ" if bucket_s is None else f"time_bucket(to_microseconds({int(bucket_s * 1e6)}), ts)"
    parts = []
    live = live_requests_sql(ws, deployment, since)
    if live is not None:
        parts.append(
            f"SELECT {b} AS t, CAST(version AS VARCHAR) AS version, count(*) AS requests, 0 AS errors, 0 AS failed_requests, "
            f"count(*) FILTER (WHERE degraded) AS degraded, quantile_cont(latency_ms, 0.5) AS p50, "
            f"quantile_cont(latency_ms, 0.95) AS p95, quantile_cont(latency_ms, 0.99) AS p99 FROM {live} GROUP BY 1, 2")
    failed = failures_sql(ws, deployment, since)
    if failed is not None:
        parts.append(
            f"SELECT {b} AS t, CASE WHEN version = '-' THEN NULL ELSE version END AS version, 0, count(*), "
            f"count(*) FILTER (WHERE coalesce(kind, 'request') = 'request'), 0, NULL, NULL, NULL FROM {failed} GROUP BY 1, 2")
    if not parts:
        return []
    sql = (f"SELECT t, version, sum(requests), sum(errors), sum(failed_requests), sum(degraded), max(p50), max(p95), max(p99) FROM ("
           f"{' UNION ALL '.join(parts)}) GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2 NULLS FIRST")
    con = duck()
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    out = []
    for t, v, req, err, failed_n, deg, p50, p95, p99 in rows:
        out.append({"version": int(v) if v is not None and str(v).isdigit() else None, "t": t.isoformat() if t is not None else None,
                    "requests": int(req), "errors": int(err), "failed_requests": int(failed_n), "degraded": int(deg),
                    "p50": None if p50 is None else round(float(p50), 3), "p95": None if p95 is None else round(float(p95), 3),
                    "p99": None if p99 is None else round(float(p99), 3)})
    return out


def slo(ws: Workspace, name: str, *, window: str = "1h", bucket: str = "1m") -> SloReport:
    """Request rate, error rate, degraded rate and latency percentiles of deployment ``name``
    per model version and ``bucket`` over the last ``window``."""
    w = parse_duration(window, "window")
    b = parse_duration(bucket, "bucket")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=w)
    return SloReport(name, window, bucket, _query(ws, name, since, b))
