"""Serving on when a deployment's champion cannot be loaded: the registry changed under
the gateway (a version or alias no longer resolves) or an artifact failed its integrity
check. The gateway then serves the deployment's earlier traffic, else the fallback
chain (previous champion, declared default), else answers 503, naming no server path.
And serving on when a loaded model fails on a request (:func:`when_model_fails`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from strataml.errors import NotFound, StrataError
from strataml.serving._prediction import Prediction
from strataml.serving._resilience import BackendFailed, Deadline, DeadlineExceeded, describe_failure
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


async def when_model_fails(gw: Gateway, name: str, failed: Servable, tr: Traffic, instances: list[dict[str, Any]], ck: bytes | None, deadline: Deadline,
                    first: Exception, champion: Servable) -> Prediction:
    """An answer for a request whose model ``failed``: from the champion when a canary or
    A/B arm failed (the answer any other request gets, so not degraded), else the previous
    champion, a cached response or the declared default (degraded), else an error."""
    failures = [{"step": f"model {failed.ref}", **describe_failure(first)}]
    log.warning("model %s failed (%s); trying the fallback chain", failed.ref, failures[0]["message"])
    if champion is not failed:
        try:
            (rows, missing), preds = await gw.run_model(champion, instances, deadline)
        except Exception as exc:
            failures.append({"step": f"champion {champion.ref}", **describe_failure(exc)})
        else:
            gw.metrics.fallbacks.labels(name, "champion").inc()
            result = Prediction(name, champion.version, preds, False, "champion", "champion", failures=failures, rows=rows)
            if missing is not None:
                gw._unknown_entities(champion, tr, instances, missing, result)
            return result
    store_down = isinstance(first, BackendFailed) and first.backend == gw._store_breaker.name
    if store_down:
        gw.metrics.backend_failures.labels("online-store", "fallback").inc()
    prev: Servable | None = None
    try:
        finding = asyncio.get_running_loop().run_in_executor(gw.executor, gw.models.previous, name, tr.champion)
        prev = await deadline.run(finding, "finding the previous champion")  # it reads the catalog, which may hang
    except Exception as exc:
        failures.append({"step": "previous champion", **describe_failure(exc)})
    if prev is not None and prev.version != failed.version:
        if store_down and prev.views:  # it needs the store that just failed: skip it rather than wait on it again
            failures.append({"step": f"previous champion {prev.ref}", "error": "Skipped", "message": "it needs the failing online store"})
        else:
            try:
                (rows, missing), preds = await gw.run_model(prev, instances, deadline)
                gw.metrics.fallbacks.labels(name, "previous_champion").inc()
                return Prediction(name, prev.version, preds, True, "fallback", "previous_champion", failures=failures, missing=missing,
                                  rows=rows)
            except Exception as exc:
                failures.append({"step": f"previous champion {prev.ref}", **describe_failure(exc)})
    if ck is not None:
        hit = gw.cache.get(ck) if not gw._remote_cache else await gw._cache_get(ck, deadline)
        if hit is not None:
            gw.metrics.fallbacks.labels(name, "cache").inc()
            return Prediction(name, failed.version, hit, True, "fallback", "cache", cached=True, failures=failures)
    if tr.default is not None:
        gw.metrics.fallbacks.labels(name, "default").inc()
        return Prediction(name, failed.version, [tr.default] * len(instances), True, "fallback", "default", failures=failures)
    if isinstance(first, DeadlineExceeded):
        raise first
    raise PredictionFailed(
        f"model {failed.ref} failed and no fallback could answer: " + "; ".join(f"{f['step']}: {f['message']}" for f in failures),
        hint=f"declare a default with 'strata deploy traffic {name} --default VALUE' or check the model",
    )
