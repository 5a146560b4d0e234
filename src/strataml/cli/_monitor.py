"""``strata monitor``: profiles and drift."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._output import console, emit, kv, table
from strataml.errors import ConfigError

monitor_app = typer.Typer(help="Profiles, drift and live model monitoring.", no_args_is_help=True)


def _thresholds(pairs: list[str] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep:
            raise ConfigError(f"--threshold {p!r} is not KEY=VALUE", hint="e.g. --threshold alpha=0.01 --threshold min_rows=500")
        try:
            out[key.strip()] = float(value)
        except ValueError as exc:
            raise ConfigError(f"--threshold {p!r}: {value!r} is not a number") from exc
    return out


# --- profiles ------------------------------------------------------------------------


@monitor_app.command("profile")
def profile_cmd(
    ref: Annotated[str, typer.Argument(help="DATASET@V or MODEL@V (a model version's reference profile)")],
    rebuild: Annotated[bool, typer.Option("--rebuild", help="build and store it again even if one is stored")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (or show the stored) profile of a dataset or model version."""
    from strataml.monitoring import profile

    ws = open_workspace(workspace)
    p = profile(ws, ref, rebuild=rebuild)

    def human(d: dict[str, Any]) -> None:
        rows = []
        for name, c in d["columns"].items():
            if c["kind"] == "numeric":
                q = c["quantiles"] or {}
                rows.append({"column": name, "kind": "numeric", "count": c["count"], "nulls": c["nulls"],
                             "summary": f"mean {c['mean']:.4g}  p50 {q.get('p50', 0):.4g}  [{c['min']:.4g}, {c['max']:.4g}]" if c["count"] else ""})
            else:
                top = ", ".join(f"{k}:{v}" for k, v in list(c["counts"].items())[:4])
                rows.append({"column": name, "kind": "categorical", "count": c["count"], "nulls": c["nulls"], "summary": top})
        table(f"profile {d['ref']} ({d['rows']} rows)", rows)

    emit(p.to_dict(), as_json, human)


# --- drift ---------------------------------------------------------------------------


@monitor_app.command("drift")
def drift_cmd(
    model: Annotated[str | None, typer.Argument(help="model NAME (its champion) or NAME@V: live traffic vs its reference")] = None,
    reference: Annotated[str | None, typer.Option("--reference", help="DATASET@V to compare against")] = None,
    current: Annotated[str | None, typer.Option("--current", help="DATASET@V to compare")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="comma-separated columns (default: those both share)")] = None,
    deployment: Annotated[str | None, typer.Option("--deployment", help="only this deployment's traffic")] = None,
    since: Annotated[str | None, typer.Option("--since", help="traffic since a duration ago (1h) or an ISO time")] = None,
    window: Annotated[str | None, typer.Option("--window", help="the latest span of traffic (1h), ending at the newest prediction")] = None,
    threshold: Annotated[list[str] | None, typer.Option("--threshold", help="override a threshold: alpha, numeric_distance, "
                                                        "categorical_distance, min_rows, drift_share (KEY=VALUE)")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-column drift tests: a model's live traffic, or --reference/--current dataset versions."""
    from strataml.monitoring import dataset_drift, drift

    ws = open_workspace(workspace)
    th = _thresholds(threshold)
    if reference or current:
        if not (reference and current) or model:
            raise ConfigError("dataset drift needs both --reference and --current and no model name",
                              hint="strata monitor drift --reference data@v1 --current data@v2")
        cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        rep = dataset_drift(ws, reference, current, columns=cols, thresholds=th)
    elif model:
        rep = drift(ws, model, deployment=deployment, since=since, window=window, thresholds=th)
    else:
        raise ConfigError("name a model or give --reference and --current",
                          hint="strata monitor drift fraud --since 1h, or strata monitor drift --reference d@v1 --current d@v2")

    def human(d: dict[str, Any]) -> None:
        def fmt(x: Any) -> str:
            return f"{x:.4g}" if isinstance(x, float) else ("" if x is None else str(x))

        rows = [{"column": k, "kind": f["kind"], "test": f["test"], "statistic": fmt(f["statistic"]), "p_value": fmt(f["p_value"]),
                 "psi": fmt(f["psi"]), "distance": fmt(f["distance"]), "drifted": "DRIFT" if f["drifted"] else "",
                 "note": f.get("reason", "")} for k, f in {**d["features"], **({"(prediction)": d["prediction"]} if d.get("prediction") else {})}.items()]
        table(f"drift: {d['current']} vs {d['reference']}", rows)
        kv("summary", {"rows": d["rows"], "drift_share": d["drift_share"], "drifted": d["drifted"]})
        if d["drifted"]:
            console.print("[bold red]drift detected[/]")

    emit(rep.to_dict(), as_json, human)
