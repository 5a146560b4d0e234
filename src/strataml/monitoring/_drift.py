"""Drift checks: a model's live traffic against its version's reference profile, or any
two dataset versions against each other — both computed from stored profiles."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from strataml.errors import ConfigError
from strataml.monitoring._profiles import profile
from strataml.monitoring._stats import DriftReport, Thresholds, report
from strataml.spine import Workspace, parse_duration


def _minutes_of(value: str, what: str) -> int:
    return max(1, int(-(-parse_duration(value, what) // 60)))


def _since_minute(since: str) -> int:
    """The first minute of ``--since``: a duration back from now, or an ISO time."""
    try:
        when = dt.datetime.fromisoformat(since)
    except ValueError:
        return int(time.time() // 60) - _minutes_of(since, "--since")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() // 60)


def drift(ws: Workspace, model: str, *, deployment: str | None = None, since: str | None = None,
          window: str | None = None, thresholds: Thresholds | dict[str, Any] | None = None) -> DriftReport:
    """Drift of a model version's live inputs and outputs against its reference profile.

    ``model`` is ``NAME`` (its champion) or ``NAME@V``/``NAME@ALIAS``. The prediction log
    is folded first, so the check sees every acknowledged prediction. ``since`` keeps the
    windows from that long ago (``1h``) or that time (ISO) on; ``window`` keeps the
    latest such span ending at the newest logged prediction; neither means all traffic.
    """
    from strataml.models import resolve_version
    from strataml.monitoring._windows import fold, last_minute, window_profile

    if since and window:
        raise ConfigError("--since and --window cannot be used together", hint="give one of them")
    th = Thresholds.of(thresholds)
    name, _, ref = model.partition("@")
    version = resolve_version(ws, name, ref or "champion")
    reference = profile(ws, f"{name}@v{version}")
    fold(ws)
    start = end = None
    span = ""
    if since:
        start, span = _since_minute(since), f" since {since}"
    elif window:
        newest = last_minute(ws, name, version, deployment)
        if newest is not None:
            end = newest + 1
            start = end - _minutes_of(window, "--window")
        span = f" last {window}"
    current = window_profile(ws, name, version, deployment=deployment, start_minute=start, end_minute=end)
    where = f" deployment {deployment}" if deployment else ""
    return report(
        f"{name}@v{version}", f"{name}@v{version} live{where}{span}", reference.columns, current.columns,
        list(reference.columns), (reference.rows, current.rows), th, (reference.prediction, current.prediction),
    )


def version_drift(ws: Workspace, model: str, reference: int, current: int, *, deployment: str | None = None,
                  since: dt.datetime | None = None, thresholds: Thresholds | dict[str, Any] | None = None) -> DriftReport:
    """Drift between two versions of a model serving side by side (a canary against its
    champion): the live inputs and outputs of ``current`` against those of ``reference``
    over the same minutes, from ``since`` on (the minute it falls in), folded first."""
    from strataml.monitoring._windows import fold, window_profile

    th = Thresholds.of(thresholds)
    fold(ws)
    start = None if since is None else int(since.timestamp() // 60)
    ref = window_profile(ws, model, reference, deployment=deployment, start_minute=start)
    cur = window_profile(ws, model, current, deployment=deployment, start_minute=start)
    names = [c for c in ref.columns if c in cur.columns]
    where = f" deployment {deployment}" if deployment else ""
    return report(f"{model}@v{reference} live{where}", f"{model}@v{current} live{where}", ref.columns, cur.columns, names,
                  (ref.rows, cur.rows), th, (ref.prediction, cur.prediction))


def dataset_drift(ws: Workspace, reference: str, current: str, *, columns: list[str] | None = None,
                  thresholds: Thresholds | dict[str, Any] | None = None) -> DriftReport:
    """Drift between two dataset versions, from their stored profiles (built on first use):
    the columns both profiles have, or those named (a named column missing on one side is
    reported with that reason)."""
    th = Thresholds.of(thresholds)
    ref, cur = profile(ws, reference), profile(ws, current)
    if ref.kind != "dataset" or cur.kind != "dataset":
        raise ConfigError("--reference and --current must be dataset versions",
                          hint="for a model's live traffic use 'strata monitor drift NAME'")
    names = list(columns) if columns else [c for c in ref.columns if c in cur.columns]
    return report(ref.ref.split(":", 1)[1], cur.ref.split(":", 1)[1], ref.columns, cur.columns, names, (ref.rows, cur.rows), th)
