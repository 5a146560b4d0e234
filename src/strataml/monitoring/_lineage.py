"""The lineage of one logged prediction, back to the raw rows its features came from.

request id → the logged answer(s) → model version → training run → training set →
feature views → dataset versions (with their source files) → for each view, the rows of
its source dataset for the prediction's entity up to the prediction's time: what the
features were computed from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from strataml.data import get_version
from strataml.errors import NotFound, StrataError
from strataml.features import show_view
from strataml.models import get_run, model_lineage
from strataml.serving import prediction_log_dir, query_predictions
from strataml.spine import Workspace, check_name, quote_ident, quote_literal

#: source rows shown per feature view
RAW_ROWS = 5


def prediction_lineage(ws: Workspace, request_id: str, *, raw_rows: int = RAW_ROWS) -> dict[str, Any]:
    """One prediction's chain from its request id to the dataset rows behind its features."""
    records = query_predictions(prediction_log_dir(ws.state_dir), request_id=request_id, limit=None)
    if not records:
        raise NotFound(
            f"no logged prediction has request id {request_id[:80]!r}",
            hint="request ids are in each answer's 'request_id' field and X-Request-ID header",
        )
    live = [r for r in records if r.get("mode") == "live"] or records
    first = live[0]
    name, version = check_name(str(first["model"]), "model name"), int(first["version"])
    lin = model_lineage(ws, name, version)
    run = None
    if lin["run"]:
        r = get_run(ws, lin["run"]["id"], history=False)
        run = {k: r[k] for k in ("id", "name", "status", "started_at", "metrics", "params")}
    ts = lin.get("training_set") or None
    return {
        "request_id": request_id,
        "predictions": [
            {k: r.get(k) for k in ("ts", "deployment", "model", "version", "instance", "output", "latency_ms", "degraded", "mode", "route", "features")}
            for r in records
        ],
        "model": name, "version": version, "sha256": lin["sha256"], "run": run,
        "training_set": ts if isinstance(ts, str) else (ts or {}).get("ref") if isinstance(ts, dict) else None,
        "feature_views": lin["feature_views"], "datasets": lin["datasets"], "code": lin["code"],
        "raw_rows": _raw_rows(ws, lin["feature_views"], first, raw_rows) if raw_rows else {},
    }


def _raw_rows(ws: Workspace, views: dict[str, Any], record: dict[str, Any], limit: int) -> dict[str, Any]:
    """Per feature view: its source dataset version and the entity's newest rows up to the prediction."""
    features = record.get("features") or {}
    at = _instant(record.get("ts"))
    out: dict[str, Any] = {}
    for view in views:
        try:
            info = show_view(ws, view)
        except StrataError:
            continue  # the view is no longer declared: its versions stay in the lineage, its rows cannot be found
        keys = list((info.get("entity") or {}).get("keys") or [])
        if not keys or any(k not in features for k in keys) or not info.get("source"):
            continue
        dv = get_version(ws, f"{info['source']}@latest")
        where = " AND ".join(f"{quote_ident(k)} = {quote_literal(features[k])}" for k in keys)
        rel = dv.to_duckdb().filter(where)
        ts_col = info.get("timestamp") or (dv.contract.timestamp if dv.contract else None)
        if ts_col and at is not None:
            rel = rel.filter(f"{quote_ident(ts_col)} <= {quote_literal(at.replace(tzinfo=None).isoformat())}::TIMESTAMP")
            rel = rel.order(f"{quote_ident(ts_col)} DESC")
        rel = rel.limit(limit)
        rows = [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]
        out[view] = {"dataset": dv.ref, "source": dv.source, "key": {k: features[k] for k in keys}, "rows": rows}
    return out


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        t = dt.datetime.fromisoformat(value)
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return None
