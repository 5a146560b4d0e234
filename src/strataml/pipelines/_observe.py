"""What a canary and its champion did over the same span: requests, failures and
latencies from the prediction log and the failed-request log, prediction drift and
quality from the monitoring layer. Only the figures the rules need are gathered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from strataml.errors import NotFound, StrataError
from strataml.pipelines._canary import TRAFFIC_METRICS, Canary
from strataml.pipelines._checks import Observation
from strataml.spine import Workspace, duck, quote_literal


def _traffic(
    ws: Workspace, deployment: str, versions: list[int], since: dt.datetime, obs: Observation
) -> None:
    from strataml.monitoring import failures_sql, live_requests_sql

    listed = ", ".join(str(int(v)) for v in versions)
    live, failed = live_requests_sql(ws, deployment, since), failures_sql(ws, deployment, since)
    con = duck()
    try:
        if live is not None:
            by: dict[int, list[float]] = {}
            for v, lat in con.execute(f"SELECT version, latency_ms FROM {live} WHERE version IN ({listed})").fetchall():
                by.setdefault(int(v), []).append(float(lat) if lat is not None else np.nan)
            for v, lats in by.items():
                arr = np.asarray(lats, dtype=float)
                obs.requests[v] = len(arr)
                obs.latencies[v] = arr[~np.isnan(arr)]
        if failed is not None:  # a version's failures: the requests it failed, whoever answered them
            wanted = ", ".join(quote_literal(str(int(v))) for v in versions)
            for v, n in con.execute(f"SELECT version, count(*) FROM {failed} WHERE version IN ({wanted}) GROUP BY version").fetchall():
                obs.errors[int(v)] = int(n)
    finally:
        con.close()


def _labels_of(ws: Workspace, model: str, canary: Canary) -> str | None:
    if canary.labels:
        return canary.labels
    try:
        labels = getattr(ws.definitions.get("model", model), "labels", None)
    except NotFound:
        return None
    return labels if isinstance(labels, str) else None


def _quality(
    ws: Workspace, model: str, deployment: str, since: dt.datetime, canary: Canary, obs: Observation
) -> None:
    import strataml.monitoring as monitoring  # its quality() shares a name with its module

    quality = monitoring.quality
    labels = _labels_of(ws, model, canary)
    try:
        report = quality(ws, model, labels, deployment=deployment, since=since)
    except StrataError:  # labels that cannot be joined yet: the estimates still speak
        report = quality(ws, model, None, deployment=deployment, since=since)
    for row in report.rows:
        obs.quality[int(row["version"])] = dict(row)


def observe(
    ws: Workspace,
    *,
    model: str,
    deployment: str,
    champion: int | None,
    canary_version: int,
    since: dt.datetime,
    canary: Canary,
    only_thresholds: bool = False,
) -> Observation:
    """The figures ``canary``'s rules need, for both versions from ``since`` on."""
    obs = Observation(champion=None if only_thresholds else champion, canary=canary_version)
    versions = [v for v in (obs.champion, canary_version) if v is not None]
    needs = canary.needs()
    if needs & {"error_rate", "latency_p99"}:
        _traffic(ws, deployment, versions, since, obs)
    if "prediction_drift" in needs and obs.champion is not None:
        from strataml.monitoring import version_drift

        least = min(
            (
                c.min_requests
                for c in (*canary.promote_if, *canary.rollback_if)
                if c.metric == "prediction_drift"
            ),
            default=100,
        )
        rep = version_drift(
            ws,
            model,
            obs.champion,
            canary_version,
            deployment=deployment,
            since=since,
            thresholds={"min_rows": least},
        )
        obs.drift = dict(rep.prediction) if rep.prediction is not None else None
    if needs - set(TRAFFIC_METRICS):
        _quality(ws, model, deployment, since, canary, obs)
    return obs


def round_of(
    obs: Observation, canary: Canary, at: dt.datetime, *, rollback_only: bool = False
) -> dict[str, Any]:
    """One round of checks as stored with the loop: when, the figures, each check's result."""
    from strataml.pipelines._checks import evaluate

    out: dict[str, Any] = {"at": at.isoformat(), "figures": obs.summary()}
    if obs.drift is not None:
        out["figures"]["prediction_drift"] = {
            k: obs.drift.get(k) for k in ("test", "p_value", "distance", "drifted", "reason")
        }
    if obs.quality:
        out["figures"]["quality"] = {
            str(v): {
                k: q.get(k)
                for k in (
                    "predictions",
                    "labelled",
                    "roc_auc",
                    "accuracy",
                    "mae",
                    "rmse",
                    "estimated",
                )
            }
            for v, q in obs.quality.items()
        }
    checks = [
        c for c in canary.rollback_if if obs.champion is not None or c.vs is None
    ]  # after promotion: thresholds only
    out["rollback_if"] = [evaluate(c, obs).to_dict() for c in checks]
    out["promote_if"] = (
        [] if rollback_only else [evaluate(c, obs).to_dict() for c in canary.promote_if]
    )
    return out
