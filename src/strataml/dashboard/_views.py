"""What the pages show from the catalog: datasets, models, deployments, events, lineage.

Each function reads through the layers' public doors and returns plain JSON-ready
data; the page templates and the ``/ui/api/…`` endpoints share them, so a chart and
the table beside it show the same numbers.
"""

from __future__ import annotations

from typing import Any

from strataml.dashboard._observed import _epoch
from strataml.data import get_version, list_datasets, list_versions
from strataml.models import get_model, list_models
from strataml.serving import list_traffic, prediction_log_dir, query_predictions
from strataml.spine import Workspace, list_events

# --- datasets ----------------------------------------------------------------------------


def _version_row(v: Any) -> dict[str, Any]:
    st = v.stats or {}
    by_rule = dict(st.get("rejected_by_rule") or {})
    return {
        "version": f"v{v.number}", "number": v.number, "rows": v.rows, "rows_read": st.get("rows_read"),
        "accepted": st.get("accepted"), "rejected": st.get("rejected"), "duplicates": st.get("duplicates"),
        "by_rule": by_rule, "quarantined": sum(int(n) for n in by_rule.values()),
        "contract": f"{v.contract_name}@{v.contract_version}" if v.contract_name else None,
        "source": v.source, "sha256": v.sha256, "created_at": v.created_at.isoformat(),
    }


def datasets(ws: Workspace) -> list[dict[str, Any]]:
    """Every dataset with its latest version, rows and the quarantine count of that version."""
    out = []
    for d in list_datasets(ws.catalog):
        q = None
        if d["latest"]:
            q = _version_row(get_version(ws, f"{d['name']}@{d['latest']}"))["quarantined"]
        out.append({**d, "quarantined": q})
    return out


def dataset(ws: Workspace, name: str) -> dict[str, Any]:
    """One dataset: every version (rows, accepted/rejected/duplicates, rejections by rule) and the rules seen."""
    versions = [_version_row(v) for v in list_versions(ws, name)]
    if not versions:
        get_version(ws, name)  # raises NotFound naming the datasets that exist
    rules = sorted({r for v in versions for r in v["by_rule"]})
    latest = get_version(ws, name)
    return {"name": name, "versions": versions, "rules": rules, "schema": latest.schema, "kind": latest.lineage.get("kind")}


def dataset_chart(ws: Workspace, name: str) -> dict[str, Any]:
    """uPlot data for the dataset page: per version, rows kept and rows quarantined by each rule."""
    d = dataset(ws, name)
    vs = d["versions"]
    series = [{"label": "rows", "values": [v["rows"] for v in vs]}]
    series += [{"label": f"quarantined: {r}", "values": [v["by_rule"].get(r, 0) for v in vs]} for r in d["rules"]]
    return {"x": [v["number"] for v in vs], "x_label": "version", "series": series}


# --- models and deployments -------------------------------------------------------------


def models(ws: Workspace) -> list[dict[str, Any]]:
    """Every model with its versions, aliases and deployment traffic."""
    traffic = list_traffic(ws.catalog)
    out = []
    for m in list_models(ws):
        t = traffic.get(m["name"])
        out.append({**m, "traffic": _split(t.model_dump(mode="json")) if t is not None else None})
    return out


def _split(t: dict[str, Any]) -> dict[str, Any]:
    """A deployment's traffic as shares: champion gets what canary and A/B arms leave."""
    arms = []
    rest = 1.0
    if t.get("canary"):
        arms.append({"arm": "canary", "ref": t["canary"]["ref"], "weight": t["canary"]["weight"]})
        rest -= t["canary"]["weight"]
    ab_total = sum(v["weight"] for v in t.get("ab") or [])
    for v in t.get("ab") or []:
        arms.append({"arm": "ab", "ref": v["ref"], "weight": v["weight"] * max(rest, 0.0)})
    arms.insert(0, {"arm": "champion", "ref": t.get("champion", "champion"), "weight": max(rest, 0.0) * (1 - ab_total)})
    return {"arms": arms, "shadow": t.get("shadow"), "runtime": t.get("runtime"), "config": t}


def model(ws: Workspace, name: str) -> dict[str, Any]:
    """One model: versions with metrics and runs, aliases, alias history and traffic."""
    m = get_model(ws, name)
    t = list_traffic(ws.catalog).get(name)
    split = _split(t.model_dump(mode="json")) if t is not None else None
    for arm in (split or {}).get("arms", []):
        ref = str(arm["ref"])
        arm["version"] = m["aliases"].get(ref) or (int(ref.lstrip("v")) if ref.lstrip("v").isdigit() else None)
    metric_names = sorted({k for v in m["versions"] for k in v["metrics"]})
    by_version: dict[int, list[str]] = {}
    for alias, ver in m["aliases"].items():
        by_version.setdefault(ver, []).append(alias)
    versions = [{**v, "aliases": sorted(by_version.get(v["version"], []))} for v in m["versions"]]
    return {
        "name": name, "versions": versions, "aliases": m["aliases"], "alias_history": m["alias_history"],
        "metric_names": metric_names, "traffic": split,
    }


def model_chart(ws: Workspace, name: str) -> dict[str, Any]:
    """uPlot data for the model page: each metric across versions."""
    m = model(ws, name)
    vs = m["versions"]
    return {
        "x": [v["version"] for v in vs], "x_label": "version",
        "series": [{"label": k, "values": [v["metrics"].get(k) for v in vs]} for k in m["metric_names"]],
    }


def deployments(ws: Workspace) -> list[dict[str, Any]]:
    """Deployments: configured traffic, plus every model with a champion (served by its name)."""
    traffic = list_traffic(ws.catalog)
    names = set(traffic)
    names.update(m["name"] for m in list_models(ws) if "champion" in m["aliases"])
    return [
        {"name": n, "traffic": _split(traffic[n].model_dump(mode="json")) if n in traffic else None}
        for n in sorted(names)
    ]


def recent_predictions(ws: Workspace, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """A deployment's newest logged requests (one row per request), linking to their lineage."""
    seen: dict[str, dict[str, Any]] = {}
    for r in query_predictions(prediction_log_dir(ws.state_dir), name, limit=limit * 4):
        if r["request_id"] not in seen and len(seen) < limit:
            seen[r["request_id"]] = {k: r.get(k) for k in ("request_id", "ts", "version", "latency_ms", "degraded", "mode")}
    return list(seen.values())


# --- events and lineage -----------------------------------------------------------------


def events(ws: Workspace, limit: int = 300, kind: str | None = None) -> list[dict[str, Any]]:
    """The newest events, newest first."""
    return [e.to_dict() for e in reversed(list_events(ws.catalog, kind=kind or None, limit=limit))]


def events_chart(evts: list[dict[str, Any]]) -> dict[str, Any]:
    """uPlot data for the timeline: one row of points per event family (the kind's first word)."""
    families = sorted({e["kind"].split(".", 1)[0] for e in evts})
    row = {f: i for i, f in enumerate(families)}
    pts = sorted((_epoch(e["ts"]) or 0.0, row[e["kind"].split(".", 1)[0]]) for e in evts)
    xs = sorted({t for t, _ in pts})
    index = {t: i for i, t in enumerate(xs)}
    series: list[list[float | None]] = [[None] * len(xs) for _ in families]
    for t, r in pts:
        series[r][index[t]] = float(r)
    return {"x": xs, "families": families, "series": [{"label": f, "values": series[i]} for i, f in enumerate(families)]}
