"""The demo's closing summary: what the workspace now holds, and one prediction traced back to its raw rows."""

from __future__ import annotations

from typing import Any

from rich.table import Table

import strataml as st
from strataml.demo._show import console


def summary(ws: st.Workspace, request_id: str | None) -> None:
    """Datasets, runs, models and aliases, traffic, alerts, and the lineage of one prediction."""
    console.print("\n[bold]summary[/]")
    d = Table(title="datasets", title_justify="left")
    for col in ("dataset", "latest", "rows"):
        d.add_column(col, justify="right" if col == "rows" else "left")
    for ds in st.list_datasets(ws.catalog):
        d.add_row(ds["name"], ds["latest"] or "—", f"{ds['rows']:,}")
    console.print(d)

    m = Table(title="models", title_justify="left")
    for col in ("model", "version", "aliases", "roc_auc", "run", "traffic"):
        m.add_column(col)
    for name in sorted({v.name for v in ws.definitions.all("model")}):
        reg = st.get_model(ws, name)
        traffic = st.get_traffic(ws.catalog, name)
        for v in reg["versions"]:
            aliases = ", ".join(a for a, n in reg["aliases"].items() if n == v["version"])
            m.add_row(name, f"v{v['version']}", aliases, f"{v['metrics'].get('roc_auc', 0):.4f}", (v["run"] or "")[:12],
                      _share(traffic, aliases.split(", "), v["version"]))
    console.print(m)

    alerts = st.list_alerts(ws)
    console.print("alerts: " + (", ".join(f"{a.rule} ({a.state})" for a in alerts) or "none"))
    if request_id:
        _lineage(ws, request_id)


def _share(traffic: Any, aliases: list[str], version: int) -> str:
    """The share of the deployment's traffic this version takes (champion, canary or none)."""
    if traffic is None:
        return "—"
    refs = {f"v{version}", *aliases}
    canary = traffic.canary
    weight = canary.weight if canary is not None and canary.ref in refs else 0.0
    if traffic.champion in refs:
        return f"{1 - (canary.weight if canary else 0.0):.0%} (champion)"
    return f"{weight:.0%} (canary)" if weight else "—"


def _lineage(ws: st.Workspace, request_id: str) -> None:
    lin = st.prediction_lineage(ws, request_id, raw_rows=3)
    t = Table(title=f"lineage of prediction {request_id[:12]}…", title_justify="left", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    p = lin["predictions"][0]
    t.add_row("answer", f"{p['output']} by {lin['model']} v{lin['version']} at {p['ts']} via {p.get('route') or 'http'}")
    t.add_row("model file", f"sha256 {lin['sha256'][:16]}…")
    if lin["run"]:
        t.add_row("training run", f"{lin['run']['id'][:12]} ({lin['run']['status']})")
    if lin["training_set"]:
        t.add_row("training set", lin["training_set"])
    for view, version in lin["feature_views"].items():
        t.add_row(f"feature view {view}", str(version))
    for ds in lin["datasets"]:
        t.add_row(f"dataset {ds['ref']}", f"{ds['rows']:,} rows from {ds['source'] or '—'}")
    for view, raw in lin["raw_rows"].items():
        for row in raw["rows"]:
            t.add_row(f"raw row of {raw['dataset']} ({view})", ", ".join(f"{k}={v}" for k, v in row.items()))
    console.print(t)
