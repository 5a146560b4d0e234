"""``strata monitor quality|slo|check|run|alerts``: realised and estimated quality,
service levels and alert rules (commands of the ``monitor`` sub-app)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from strataml.cli._common import JsonOpt, WorkspaceOpt, open_workspace
from strataml.cli._monitor import monitor_app
from strataml.cli._output import console, emit, table


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else ("" if x is None else str(x))


@monitor_app.command("quality")
def quality_cmd(
    name: Annotated[str, typer.Argument(help="model (deployment) name")],
    labels: Annotated[str | None, typer.Option("--labels", help="labels DATASET[@V]; without it, estimates only")] = None,
    by: Annotated[str, typer.Option("--by", help="version, day or hour")] = "version",
    horizon: Annotated[str, typer.Option("--horizon", help="how long after a prediction its label may arrive (entity-key joins)")] = "30d",
    deployment: Annotated[str | None, typer.Option("--deployment", help="only this deployment's traffic")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Realised quality of live predictions once labels arrive, with the estimate beside it."""
    from strataml.monitoring import quality

    rep = quality(open_workspace(workspace), name, labels, by=by, horizon=horizon, deployment=deployment)

    def human(d: dict[str, Any]) -> None:
        skip = {"version", "window", "predictions", "labelled", "unlabelled", "estimated"}
        rows = []
        for r in d["rows"]:
            row: dict[str, Any] = {"version": r["version"]}
            if r["window"]:
                row["window"] = r["window"]
            row.update({"labelled": r["labelled"], "unlabelled": r["unlabelled"]})
            row.update({k: _fmt(v) for k, v in r.items() if k not in skip})
            for k, v in (r.get("estimated") or {}).items():
                if k != "rows":
                    row[f"est. {k}"] = _fmt(v)
            rows.append(row)
        thr = f", threshold {d['threshold']:g}" if d["threshold"] is not None else ""
        table(f"quality of {d['model']} ({d['kind']}; labels {d['labels'] or 'none'}, join {d['join']}{thr})", rows)

    emit(rep.to_dict(), as_json, human)


@monitor_app.command("slo")
def slo_cmd(
    name: Annotated[str, typer.Argument(help="deployment name")],
    window: Annotated[str, typer.Option("--window", help="how far back")] = "1h",
    bucket: Annotated[str, typer.Option("--bucket", help="bucket size")] = "1m",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, errors, degraded answers and latency percentiles per version and bucket."""
    from strataml.monitoring import slo

    rep = slo(open_workspace(workspace), name, window=window, bucket=bucket)

    def human(d: dict[str, Any]) -> None:
        table(f"slo of {d['deployment']} (last {d['window']}, per {d['bucket']})",
              [{k: _fmt(v) for k, v in s.items()} for s in d["series"]])
        t = rep.totals()
        console.print(f"requests {t['requests']}  errors {t['errors']}  error rate {_fmt(t['error_rate'])}  "
                      f"degraded rate {_fmt(t['degraded_rate'])}  worst p99 {_fmt(t['p99_max'])} ms")

    emit(rep.to_dict(), as_json, human)


def _events_table(events: list[dict[str, Any]]) -> None:
    table("alert events", [{"rule": e["rule"], "kind": e["kind"], "severity": e["severity"], "message": e["message"]} for e in events])


@monitor_app.command("check")
def check_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Evaluate every alert rule once."""
    from strataml.monitoring import check_alerts, list_alerts

    ws = open_workspace(workspace)
    events = [e.to_dict() for e in check_alerts(ws)]
    doc = {"events": events, "alerts": [a.to_dict() for a in list_alerts(ws)]}

    def human(d: dict[str, Any]) -> None:
        if d["events"]:
            _events_table(d["events"])
        _alerts_table(d["alerts"])

    emit(doc, as_json, human)


@monitor_app.command("run")
def run_cmd(
    interval: Annotated[str, typer.Option("--interval", help="time between checks")] = "1m",
    workspace: WorkspaceOpt = None,
) -> None:
    """Evaluate every alert rule each interval until stopped (SIGTERM or Ctrl-C)."""
    from strataml.monitoring import run_monitor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    n = run_monitor(open_workspace(workspace), interval)
    console.print(f"stopped after {n} checks")


def _alerts_table(alerts: list[dict[str, Any]]) -> None:
    table("alerts", [{"rule": a["rule"], "state": a["state"], "severity": a["severity"], "value": _fmt(a["value"]),
                      "threshold": _fmt(a["threshold"]), "since": a["fired_at"] if a["state"] == "firing" else a["resolved_at"],
                      "message": a["message"]} for a in alerts])


@monitor_app.command("alerts")
def alerts_cmd(
    state: Annotated[str | None, typer.Option("--state", help="firing or ok")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The alert rules' states."""
    from strataml.monitoring import list_alerts

    doc = {"alerts": [a.to_dict() for a in list_alerts(open_workspace(workspace), state)]}
    emit(doc, as_json, lambda d: _alerts_table(d["alerts"]))
