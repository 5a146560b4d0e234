"""Serving on when a deployment's champion cannot be loaded: the registry changed under
the gateway (a version or alias no longer resolves) or an artifact failed its integrity
check. The gateway then serves the deployment's earlier traffic, else the fallback
chain (previous champion, declared default), else answers 503, naming no server path."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from strataml.errors import NotFound, StrataError
from strataml.serving._resilience import Deadline, describe_failure
from strataml.serving._servable import InputError, Servable
from strataml.serving._traffic import Traffic

if TYPE_CHECKING:
    from strataml.serving._gateway import Gateway

log = logging.getLogger("strataml.serving")


class PredictionFailed(StrataError):
    """Every step of the fallback chain failed (HTTP 503)."""


class ModelUnservable(StrataError):
    """A model version cannot be served: its artifact failed its integrity check (HTTP 503)."""


async def champion_or_earlier(
    gw: Gateway, name: str, tr: Traffic, deadline: Deadline | None = None,
) -> tuple[Traffic, Servable]:
    """The champion of ``tr``, loaded within ``deadline``; when it no longer resolves or
    loads (the registry changed under the gateway), the last traffic of ``name`` whose champion did."""
    try:
        return tr, await gw.servable(name, tr.champion, deadline)
    except (NotFound, ModelUnservable) as exc:
        if not gw.traffic.is_configured(name):
            raise
        for good in gw.traffic.earlier(name):
            if good.champion != tr.champion:
                try:
                    s = await gw.servable(name, good.champion, deadline)
                except (NotFound, ModelUnservable):
                    continue
                log.warning("deployment %s: champion %s unavailable (%s); serving its last good traffic", name, tr.champion, exc.message)
                return good, s
        raise


async def without_champion(
    gw: Gateway, name: str, tr: Traffic, instances: list[dict[str, Any]], exc: StrataError,
) -> tuple[int, list[Any], str, list[dict[str, Any]]]:
    """The fallback chain when no champion can be loaded: the previous champion, then the
    declared default; the version that answered, its predictions, the step and the failures."""
    if isinstance(exc, NotFound) and not gw.traffic.is_configured(name):
        raise exc  # an unknown model, not a broken deployment
    failures = [{"step": f"model {name}@{tr.champion}", **describe_failure(exc)}]
    try:
        prev = await asyncio.get_running_loop().run_in_executor(gw.executor, gw.models.previous, name, tr.champion)
        if prev is not None:
            s = await gw.servable(name, f"v{prev.version}")
            s.check_instances(instances)
            _, preds = await gw.run_model(s, instances, Deadline((tr.timeout_ms or gw.config.timeout_ms) / 1000.0))
            gw.metrics.fallbacks.labels(name, "previous_champion").inc()
            return s.version, preds, "previous_champion", failures
    except InputError:
        raise
    except Exception as e:
        failures.append({"step": "previous champion", **describe_failure(e)})
    if tr.default is not None:
        gw.metrics.fallbacks.labels(name, "default").inc()
        return 0, [tr.default] * len(instances), "default", failures
    raise PredictionFailed(
        f"deployment {name!r} cannot load its champion and no fallback could answer: " + "; ".join(f"{f['step']}: {f['message']}" for f in failures),
        hint=f"declare a default with 'strata deploy traffic {name} --default VALUE' or check the model",
    )
