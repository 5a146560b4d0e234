"""Reading the prediction log: where it lives, a DuckDB table expression over its files
(lines torn by a crash skipped), and the queries behind ``strata predictions query|stats``.

The log's writer is :mod:`strataml.serving._audit`; every line has the :data:`COLUMNS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from strataml.spine import duck, quote_literal

COLUMNS = {
    "request_id": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "deployment": "VARCHAR",
    "model": "VARCHAR",
    "version": "BIGINT",
    "instance": "BIGINT",
    "features": "JSON",
    "output": "JSON",
    "latency_ms": "DOUBLE",
    "key_id": "VARCHAR",
    "degraded": "BOOLEAN",
    "mode": "VARCHAR",
    "route": "VARCHAR",
}


def log_dir(state_dir: Path) -> Path:
    """Where a workspace's prediction log lives."""
    return state_dir / "predictions"


def log_relation_sql(directory: Path) -> str:
    """A DuckDB table expression over every log file (torn lines skipped)."""
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    glob = quote_literal(str(directory / "*.jsonl"))
    return f"(SELECT * FROM read_json({glob}, format='newline_delimited', ignore_errors=true, columns={cols}) WHERE request_id IS NOT NULL)"


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("*.jsonl"))


def query(
    directory: Path,
    model: str | None = None,
    since: str | None = None,
    limit: int | None = 100,
    mode: str | None = None,
    request_id: str | None = None,
) -> list[dict[str, Any]]:
    """Logged predictions, newest first, as JSON-ready dictionaries (``request_id``: one request's)."""
    if not _has_files(directory):
        return []
    where = []
    if request_id:
        where.append(f"request_id = {quote_literal(request_id)}")
    if model:
        where.append(f"model = {quote_literal(model)}")
    if since:
        where.append(f"ts >= CAST({quote_literal(since)} AS TIMESTAMPTZ)")
    if mode:
        where.append(f"mode = {quote_literal(mode)}")
    sql = f"SELECT * FROM {log_relation_sql(directory)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, request_id, instance"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    con = duck()
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    out = []
    for r in rows:
        d = dict(zip(names, r, strict=True))
        d["ts"] = d["ts"].isoformat() if d["ts"] is not None else None
        d["features"] = orjson.loads(d["features"]) if d["features"] else None
        d["output"] = orjson.loads(d["output"]) if d["output"] else None
        out.append(d)
    return out


def stats(directory: Path, model: str | None = None, since: str | None = None) -> dict[str, Any]:
    """Counts by version, latency percentiles (ms) and the degraded count of live predictions."""
    empty: dict[str, Any] = {
        "model": model,
        "count": 0,
        "requests": 0,
        "by_version": {},
        "p50": None,
        "p95": None,
        "p99": None,
        "degraded": 0,
        "shadow": 0,
    }
    if not _has_files(directory):
        return empty
    where = ["1=1"]
    if model:
        where.append(f"model = {quote_literal(model)}")
    if since:
        where.append(f"ts >= CAST({quote_literal(since)} AS TIMESTAMPTZ)")
    base = f"SELECT * FROM {log_relation_sql(directory)} WHERE {' AND '.join(where)}"
    con = duck()
    try:
        totals = con.execute(
            f"SELECT count(*) FILTER (WHERE mode = 'live'), count(DISTINCT request_id) FILTER (WHERE mode = 'live'), "
            f"count(*) FILTER (WHERE degraded AND mode = 'live'), count(*) FILTER (WHERE mode = 'shadow') FROM ({base})"
        ).fetchall()[0]
        lat = con.execute(
            f"SELECT quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FROM "
            f"(SELECT request_id, max(latency_ms) AS latency_ms FROM ({base}) WHERE mode = 'live' GROUP BY request_id)"
        ).fetchall()[0][0]
        versions = con.execute(
            f"SELECT mode, version, count(*) FROM ({base}) GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    finally:
        con.close()
    by_version = {f"v{v}": int(n) for m, v, n in versions if m == "live"}
    shadow_by_version = {f"v{v}": int(n) for m, v, n in versions if m == "shadow"}
    p = [round(float(x), 3) for x in lat] if lat else [None, None, None]
    return {
        "model": model,
        "count": int(totals[0]),
        "requests": int(totals[1]),
        "by_version": by_version,
        "p50": p[0],
        "p95": p[1],
        "p99": p[2],
        "degraded": int(totals[2]),
        "shadow": int(totals[3]),
        "shadow_by_version": shadow_by_version,
    }
