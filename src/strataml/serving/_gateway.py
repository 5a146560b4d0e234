"""The gateway's request pipeline, independent of HTTP.

For one prediction request: authenticate and authorise the key, take a rate-limit
token, pick the model version by the deployment's traffic (champion, sticky canary,
A/B), validate the instances against its signature, look up stored features,
predict through the version's micro-batcher inside its circuit breaker and the
request's deadline, fall back (previous champion → cached response → declared
default) when that fails, mirror to the shadow, and append every prediction to the
durable log before answering. Backends that can hang on a network are called off the
event loop within timeouts shorter than the deadline (see :mod:`strataml.serving._backends`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from strataml.errors import IntegrityError, NotFound, UnsafePath
from strataml.serving._audit import AuditLog, SeriesLines
from strataml.serving._auth import ApiKey, AuthError, CatalogWatcher, KeyStore
from strataml.serving._backends import BackendCalls
from strataml.serving._batching import CallCost, MicroBatcher
from strataml.serving._cache import ResponseCache, cache_key, open_cache
from strataml.serving._continuity import (
    ModelUnservable,
    champion_or_earlier,
    when_model_fails,
    without_champion,
)
from strataml.serving._control import ControlPlane
from strataml.serving._errorlog import ErrorLog, error_log_dir
from strataml.serving._log_query import log_dir
from strataml.serving._lookup import FeatureLookup, Features
from strataml.serving._metrics import GatewayMetrics
from strataml.serving._prediction import Prediction
from strataml.serving._ratelimit import Decision, Limit, RateLimiter, open_buckets
from strataml.serving._ratelimit import RateLimited as RateLimited  # where the HTTP layer finds it
from strataml.serving._resilience import (
    STATE_VALUE,
    Admission,
    BackendPool,
    Breakers,
    CircuitBreaker,
    Deadline,
)
from strataml.serving._servable import (
    ChainModels,
    InputError,
    ModelProvider,
    RegistryModels,
    Servable,
    _parse_version,
)
from strataml.serving._traffic import (
    Traffic,
    TrafficTable,
    refs,
    route,
)
from strataml.spine import Workspace

log = logging.getLogger("strataml.serving")


@dataclass
class GatewayConfig:
    """Tuning and safety knobs of a gateway (``strata serve`` options map onto these)."""

    max_body_bytes: int = 1 << 20
    max_depth: int = 32
    max_instances: int = 1000
    concurrency: int = 512
    timeout_ms: float = 2000.0
    rate: float | None = 1000.0
    burst: float | None = 2000.0
    ratelimit_url: str | None = None
    cache_url: str | None = None
    fallback_cache_ttl: float = 300.0
    max_batch: int = 64
    max_wait_ms: float = 0.0
    inline_rows: int = 32
    #: False: every request goes through the micro-batcher, so requests made together become one model call
    inline_predict: bool = True
    audit: bool = True
    audit_fsync: bool = True
    breaker_failures: int = 5
    breaker_reset_s: float = 5.0
    trusted_proxies: tuple[str, ...] = ()
    drain_timeout_s: float = 30.0
    preload: tuple[str, ...] = ()
    refresh_interval_s: float = 0.5
    log_requests: bool = True
    freeze_gc: bool = False
    #: a failing rate-limit store: limit per process (True) or refuse with 503 + Retry-After
    ratelimit_fail_open: bool = True
    #: the longest a call to a network backend (Redis) may take; never more than the request's deadline allows
    backend_timeout_ms: float = 500.0


class Gateway(BackendCalls, ControlPlane):
    """Holds a gateway's state: keys, limits, traffic, models, batchers, breakers, cache, log."""

    def __init__(self, ws: Workspace, models: ModelProvider | None = None, config: GatewayConfig | None = None) -> None:
        self.ws = ws
        self.config = cfg = config or GatewayConfig()
        self.models: ModelProvider = models if models is not None else RegistryModels(ws)
        self.metrics = GatewayMetrics()
        self.breakers = Breakers(cfg.breaker_failures, cfg.breaker_reset_s, self._breaker_changed)
        self._store_breaker = self.breakers.get("online-store")
        self._limits_breaker = self.breakers.get("rate-limit-store")
        self._cache_breaker = self.breakers.get("response-cache")
        self._catalog_breaker = self.breakers.get("catalog")
        self._backend_s = cfg.backend_timeout_ms / 1000.0
        self._open()

    def _open(self) -> None:
        """Open connections, the prediction log and the worker threads."""
        ws, cfg = self.ws, self.config
        self.keys = KeyStore(ws.catalog)
        self.traffic = TrafficTable(ws.catalog)
        self._model_watcher = CatalogWatcher(ws.catalog)
        self.errors = ErrorLog(error_log_dir(ws.state_dir))  # failed requests, and arms' failures under their version
        # a catalog on a database server: keys and traffic are polled off the loop and
        # requests read the copy, so that no request waits on (or hangs with) the server
        self._poll_catalog = not self.keys.watcher.exact
        if self._poll_catalog:
            self.keys.watcher.polled()
        self._catalog_seen: tuple[Any, Any] | None = None
        self._catalog_logged = -1e9
        rl_url = cfg.ratelimit_url or ws.resolve_url(ws.settings.online)
        self.limiter = RateLimiter(open_buckets(rl_url), Limit(cfg.rate, cfg.burst or cfg.rate) if cfg.rate else None,
                                   fail_open=cfg.ratelimit_fail_open, on_store_failure=self._limits_failed)
        self.cache: ResponseCache = open_cache(cfg.cache_url)
        self._remote_cache = bool(getattr(self.cache, "remote", False))
        self.backends = BackendPool()
        self.admission = Admission(cfg.concurrency)
        admission = self.admission
        self.count_inflight = not self.metrics.follow_inflight(lambda: admission.inflight)
        self.audit: AuditLog | None = AuditLog(log_dir(ws.state_dir), fsync=cfg.audit_fsync) if cfg.audit else None
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="strata-predict")
        self._batchers: dict[tuple[str, int, str | None], tuple[MicroBatcher, CircuitBreaker]] = {}
        self._prediction_counters: dict[tuple[str, int, str, bool], Any] = {}
        self._log_series: dict[tuple[str, int, str, bool, str, str], tuple[Any, SeriesLines]] = {}
        self._limits: dict[tuple[float, float], Limit] = {}  # deployments' limits by shape, made once
        self._lookup_cost = CallCost()  # of one feature lookup
        self.lookup = FeatureLookup(ws)
        self._embedded_store = ws.resolve_url(ws.settings.online).startswith("sqlite")
        self._background: set[asyncio.Task[Any]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._log_watch: asyncio.TimerHandle | None = None
        self._closing = False
        self.started = False
        self.closed = False
        self._version = -1
        self._flushes_counted = 0
        self.unservable: dict[str, str] = {}  # NAME@REF → why it is refused (until the catalog changes)

    def sync_metrics(self) -> None:
        """Bring the Prometheus values up to date: the requests' tallies and the prediction log's flush count."""
        self.metrics.publish()
        if self.audit is not None:
            flushes = self.audit.flushes
            if flushes > self._flushes_counted:
                self.metrics.audit_flushes.inc(flushes - self._flushes_counted)
                self._flushes_counted = flushes

    # --- lifecycle -------------------------------------------------------------------

    async def startup(self) -> None:
        """Load the preloaded models and start watching for alias and traffic changes."""
        if self.closed:  # started again after a shutdown (e.g. an embedding server's restart)
            self._open()
        if self._poll_catalog:  # the first copy, before any request
            self._install_catalog(await asyncio.get_running_loop().run_in_executor(self.backends.executor, self._read_catalog))
        else:
            self.traffic.refresh_if_changed()
        for name in self.config.preload:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.models.get, name, self.traffic.get(name).champion)
        await self._warm()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())
        self._closing = False
        self._watch_log()
        if self.config.freeze_gc:  # long-lived objects (models, modules) leave the collector's view:
            gc.collect()  # full collections stop scanning them, which removes their pauses from the tail
            gc.freeze()
        self.started = True

    async def _refresh_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.refresh_interval_s)
            try:
                self.sync_metrics()  # every worker publishes its own counts, for a scrape of any of them
                if self._poll_catalog:
                    seen = self._catalog_seen
                    await self._poll()
                    if self._catalog_seen is not seen:
                        self.unservable.clear()  # a new version or alias is tried again
                        self.lookup.clear()
                        await self._warm()
                elif self._model_watcher.changed():
                    self.unservable.clear()  # a restored artifact or a new version is tried again
                    self.lookup.clear()
                    self.traffic.refresh_if_changed()
                    await loop.run_in_executor(self.executor, self.models.refresh)
                    await self._warm()
            except Exception as exc:  # a transient catalog (or metrics) error must not stop refreshing
                log.warning("refresh failed: %s", exc)

    async def _warm(self) -> None:
        """Load the versions configured deployments route to (a canary, A/B variants, a
        shadow) before their first request, so that none of them answers its first
        requests late — a canary judged on its latency would be judged on its loading."""
        for name, traffic in self.traffic.configured().items():
            for _, ref in refs(traffic):
                try:
                    await self.servable(name, ref)  # cached or known unservable: nothing to do
                except ModelUnservable:
                    continue
                except Exception as exc:  # the request path reports it (and records a canary's failure)
                    log.warning("deployment %s: %s could not be loaded ahead of traffic: %s", name, ref, exc)

    async def shutdown(self) -> None:
        """Drain requests in flight, then flush the prediction log and release everything."""
        drained = await self.admission.drain(self.config.drain_timeout_s)
        if not drained:
            log.warning("drain timed out with %d requests in flight", self.admission.inflight)
        if self._refresher is not None:
            self._refresher.cancel()
        self._closing = True
        if self._log_watch is not None:
            self._log_watch.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=self.config.drain_timeout_s)
        for b, _ in self._batchers.values():
            await b.close()
        if self.audit is not None:
            self.audit.close()
        self.executor.shutdown(wait=False)
        self.backends.close()
        self.limiter.close()
        self.cache.close()
        self.keys.close()
        self.traffic.close()
        self._model_watcher.close()
        self.errors.close()
        self.closed = True
        self.started = False

    def _breaker_changed(self, name: str, state: str) -> None:
        self.metrics.breaker.labels(name).set(STATE_VALUE[state])
        log.warning("circuit breaker %s is now %s", name, state)

    # --- gatekeeping -----------------------------------------------------------------

    def authorize(self, authorization: str | None, scope: str) -> ApiKey:
        """The request's key, if it may act within ``scope`` ("" = any valid key); AuthError (401/403) otherwise."""
        self._version = self.keys.watcher.version()
        try:
            key = self.keys.authenticate(authorization, self._version)
        except AuthError:
            self.metrics.auth_failures.labels("401").inc()
            raise
        if scope and not key.allows(scope):
            self.metrics.auth_failures.labels("403").inc()
            raise AuthError(f"API key {key.id} lacks the scope {scope!r}", status=403, hint=f"create a key with --scope {scope}")
        return key

    def rate_limit(self, key: ApiKey, name: str, traffic: Traffic) -> Awaitable[None] | None:
        """Take a token for ``key`` on deployment ``name``; RateLimited (429) when empty.

        None when decided here; an awaitable when a network store must be asked (off the
        loop, within the backend timeout and a fifth of the request's deadline), which
        the caller awaits before going on."""
        limit = None
        if traffic.rate:
            shape = (traffic.rate, traffic.burst or traffic.rate)
            limit = self._limits.get(shape)
            if limit is None:
                limit = self._limits[shape] = Limit(*shape)
        decision = self.limiter.plan(key.id, name, limit)
        if type(decision) is not Decision:
            if self.limiter.remote:
                return self._rate_limit_remote(key, name, traffic, *decision)
            decision = self.limiter.take(*decision)
        if not decision.allowed:  # type: ignore[union-attr]
            self._refuse(key, name, decision)  # type: ignore[arg-type]
        return None

    def deployment(self, name: str) -> Traffic:
        """The current traffic of ``name`` (picking up catalog changes first)."""
        self.traffic.refresh_if_changed(self._version)
        return self.traffic.get(name)

    # --- models ----------------------------------------------------------------------

    async def servable(self, name: str, ref: str, deadline: Deadline | None = None) -> Servable:
        """The servable for ``name@ref``; NotFound (404) when the model or ref is unknown.

        Loading one reads the catalog: within ``deadline`` when given (DeadlineExceeded, 504)."""
        hit = self.models.cached(name, ref)
        if hit is not None:
            return hit
        why = self.unservable.get(f"{name}@{ref}")
        if why is not None:
            raise ModelUnservable(f"model {name}@{ref} is unservable: {why}", hint="GET /readyz with an admin key shows the problem")
        try:
            loading = asyncio.get_running_loop().run_in_executor(self.executor, self.models.get, name, ref)
            return await (loading if deadline is None else deadline.run(loading, f"loading {name}@{ref}"))
        except (UnsafePath, NotFound):  # the registry's message may name other models: a key learns only of its own
            raise NotFound(f"model {name!r} has no servable version {ref[:130]!r}", hint="GET /v1/models lists the models you may use") from None
        except IntegrityError as exc:  # the path stays in the log, out of the answer
            log.error("model %s@%s refused: %s", name, ref, exc)
            self.unservable[f"{name}@{ref}"] = "its artifact failed its integrity check"
            raise ModelUnservable(f"model {name}@{ref} is unservable: its artifact failed its integrity check", hint="restore the artifact; the gateway's log names it") from None

    def batcher(self, s: Servable) -> MicroBatcher:
        """The micro-batcher of one model version."""
        return self._lane(s)[0]

    def _lane(self, s: Servable) -> tuple[MicroBatcher, CircuitBreaker]:
        """The micro-batcher of one model version and the circuit breaker around it."""
        key = (s.name, s.version, s.sha256)  # a version's native and ONNX servables batch apart
        b = self._batchers.get(key)
        if b is None:
            hist = self.metrics.tally(self.metrics.batch_size.labels(s.name, str(s.version)))
            b = (MicroBatcher(s.predict, max_batch=self.config.max_batch, max_wait_ms=self.config.max_wait_ms, executor=self.executor, on_batch=hist.observe,
                              inline_rows=self.config.inline_rows), self.breakers.get(f"model:{s.ref}"))
            self._batchers[key] = b
        return b

    def _inline_lookup(self, instances: list[dict[str, Any]], deadline: Deadline) -> bool:
        """Whether to look features up on the loop: a few keys from the embedded store,
        whose read of a local file takes microseconds, far less than handing the call to a
        thread and back (a network store, whose call could hang past the deadline, always
        goes through the executor)."""
        return self._embedded_store and self._lookup_cost.quick and len(instances) <= self.config.inline_rows and deadline.remaining() > 0

    async def _features_in_thread(self, s: Servable, instances: list[dict[str, Any]], deadline: Deadline) -> Features:
        # in the backend threads, within the backend timeout and leaving the fallback chain time to answer
        return await self.backends.call(self._store_breaker, deadline.for_backend(self._backend_s), self._lookup_features, s, instances, False)

    def _lookup_features(self, s: Servable, instances: list[dict[str, Any]], inline: bool) -> Features:
        clock = CallCost.clock(inline)
        t0 = clock()
        missing: dict[int, list[str]] = {}
        rows = self.lookup(s, instances, missing)
        self._lookup_cost.add(clock() - t0)
        return rows, missing or None

    def _features_now(self, s: Servable, instances: list[dict[str, Any]], deadline: Deadline) -> Features | None:
        """The instances with their features when they can be had on the loop (None: they need a thread)."""
        if not s.views:
            return instances, None
        if self._inline_lookup(instances, deadline):
            return self._store_breaker.call_sync(self._lookup_features, s, instances, True)
        return None

    def _run(self, s: Servable, instances: list[dict[str, Any]], deadline: Deadline) -> tuple[Features, list[Any]] | Awaitable[tuple[Features, list[Any]]]:
        """Look the features up and predict: the answer when both steps could run on the
        loop at once (the usual small request, without a coroutine), else an awaitable of it."""
        got = self._features_now(s, instances, deadline)
        if got is not None:
            batcher, breaker = self._lane(s)
            if self.config.inline_predict and batcher.can_inline(got[0]) and deadline.remaining() > 0:  # an inline call cannot be interrupted: no timer needed
                return got, breaker.call_sync(batcher.run_inline, got[0])
        return self._run_later(s, instances, deadline, got)

    async def _run_later(self, s: Servable, instances: list[dict[str, Any]], deadline: Deadline, got: Features | None) -> tuple[Features, list[Any]]:
        """:meth:`_run` for what needs a thread: the features (unless ``got``) or the model."""
        if got is None:
            got = await self._features_in_thread(s, instances, deadline)
        rows = got[0]
        batcher, breaker = self._lane(s)
        if self.config.inline_predict and batcher.can_inline(rows) and deadline.remaining() > 0:
            return got, breaker.call_sync(batcher.run_inline, rows)
        preds = await deadline.run(breaker.call(lambda: batcher.submit(rows)), f"model {s.ref}")
        return got, preds

    async def run_model(self, s: Servable, instances: list[dict[str, Any]], deadline: Deadline) -> tuple[Features, list[Any]]:
        """The instances' features and predictions by ``s`` (:meth:`_run`, awaited)."""
        ran = self._run(s, instances, deadline)
        return ran if type(ran) is tuple else await ran  # type: ignore[misc]

    # --- the pipeline ----------------------------------------------------------------

    async def predict(self, name: str, instances: list[dict[str, Any]], key: ApiKey, request_id: str, route_name: str, traffic: Traffic | None = None) -> Prediction:
        """Answer one request (see the module docstring for the steps) once it is logged durably."""
        result, logged = await self.predict_logging(name, instances, key, request_id, route_name, traffic)
        if logged is not None:
            await logged
        return result

    async def predict_logging(
        self, name: str, instances: list[dict[str, Any]], key: ApiKey, request_id: str, route_name: str, traffic: Traffic | None = None,
    ) -> tuple[Prediction, asyncio.Future[None] | None]:
        """Like :meth:`predict`, but answers at once with the future of the prediction
        log's flush (None without a log): the caller must await it before answering."""
        t0 = time.perf_counter()
        tr = traffic or self.deployment(name)
        deadline = Deadline((tr.timeout_ms or self.config.timeout_ms) / 1000.0)
        champion = self.models.cached(name, tr.champion)
        if champion is None:
            try:
                tr, champion = await champion_or_earlier(self, name, tr, deadline)
            except (NotFound, ModelUnservable) as exc:
                version, preds, how, failures = await without_champion(self, name, tr, instances, exc)
                result = Prediction(name, version, preds, True, "fallback", how, failures=failures)
                return result, self._log(result, instances, key, request_id, route_name, t0, "live")
        ref, arm = route(tr, instances[0], champion.entity_keys)
        s = champion
        if ref != tr.champion:
            try:
                s = await self.servable(name, ref, deadline)
            except (NotFound, ModelUnservable) as exc:
                log.warning("deployment %s: %s arm %s unavailable (%s); serving the champion", name, arm, ref, exc.message)
                self.errors.record(request_id, f"predict:{name}", {"model": name, "version": _version_label(ref)}, 503, type(exc).__name__, "arm")
                arm = "champion"
        s.check_instances(instances)
        ck = cache_key(s.ref, instances) if (tr.cache_ttl > 0 or self.config.fallback_cache_ttl > 0) else None
        if ck is not None and tr.cache_ttl > 0:
            hit = self.cache.get(ck) if not self._remote_cache else await self._cache_get(ck, deadline)
            self.metrics.cache.labels(name, "hit" if hit is not None else "miss").inc()
            if hit is not None:
                result = Prediction(name, s.version, hit, False, arm, cached=True)
                return result, self._log(result, instances, key, request_id, route_name, t0, "live")
        try:
            ran = self._run(s, instances, deadline)
            (rows, missing), preds = ran if type(ran) is tuple else await ran  # type: ignore[misc]
            result = Prediction(name, s.version, preds, False, arm)
            if missing is not None:
                self._unknown_entities(s, tr, instances, missing, result)
            elif ck is not None:  # an answer from features the store lacked is never reused
                if self._remote_cache:
                    self.backends.submit(self._cache_set, ck, preds, max(tr.cache_ttl, self.config.fallback_cache_ttl))
                else:
                    self.cache.set(ck, preds, max(tr.cache_ttl, self.config.fallback_cache_ttl))
        except InputError:
            raise
        except Exception as exc:
            if s is not champion:  # the arm's failure stays on record under its version, whoever answers
                self.errors.record(request_id, f"predict:{name}", {"model": name, "version": str(s.version)}, 500, type(exc).__name__, "arm")
            result = await when_model_fails(self, name, s, tr, instances, ck, deadline, exc, champion)
            rows = result.rows if result.rows is not None else instances
        if tr.shadow:
            self._spawn(self._shadow(name, tr.shadow, instances, key, request_id, route_name))
        return result, self._log(result, rows, key, request_id, route_name, t0, "live")

    def _unknown_entities(self, s: Servable, tr: Traffic, instances: list[dict[str, Any]], missing: dict[int, list[str]], result: Prediction) -> None:
        """Apply the deployment's ``unknown_entity`` setting to an answer made without some stored features."""
        self.metrics.missing_features.labels(s.name, tr.unknown_entity).inc(len(missing))
        if tr.unknown_entity == "refuse":
            i = min(missing)
            keys = {k: instances[i].get(k) for k in s.entity_keys}
            raise InputError(
                f"instance {i} of the request for {s.ref}: the online store has no features for entity {keys} "
                f"({', '.join(missing[i])}), and deployment {s.name!r} refuses unknown entities",
                hint=f"materialise the entity's view, or 'strata deploy traffic {s.name} --unknown-entity degrade' to answer such requests",
                errors=[{"instance": j, "field": ",".join(s.entity_keys), "problem": "unknown entity", "missing_features": f} for j, f in sorted(missing.items())],
            )
        result.missing = missing
        result.degraded = tr.unknown_entity == "degrade"

    async def _shadow(self, name: str, ref: str, instances: list[dict[str, Any]], key: ApiKey, request_id: str, route_name: str) -> None:
        t0 = time.perf_counter()
        try:
            s = await self.servable(name, ref)
            s.check_instances(instances)
            (rows, _), preds = await self.run_model(s, instances, Deadline(self.config.timeout_ms / 1000.0))
        except Exception as exc:
            log.warning("shadow %s@%s failed for request %s: %s", name, ref, request_id, exc)
            return
        logged = self._log(Prediction(name, s.version, preds, False, "shadow"), rows, key, request_id, route_name, t0, "shadow")
        if logged is not None:
            await logged

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _log(self, r: Prediction, rows: list[dict[str, Any]], key: ApiKey, request_id: str, route_name: str, t0: float, mode: str) -> asyncio.Future[None] | None:
        """Count the predictions and append them to the log; the future of their flush."""
        latency_ms = round((time.perf_counter() - t0) * 1e6) / 1000.0  # to the microsecond; round(x, 3) formats a string
        series = (r.model, r.version, mode, r.degraded, key.id, route_name)
        known = self._log_series.get(series)
        if known is None:
            known = self._new_series(series)
        known[0].inc(len(r.predictions))
        if self.audit is None:
            return None
        ts = dt.datetime.now(dt.UTC)  # orjson writes it as isoformat() would, for less
        return self.audit.append_lines_nowait(known[1].encode(request_id, ts, latency_ms, rows, r.predictions))

    def _new_series(self, series: tuple[str, int, str, bool, str, str]) -> tuple[Any, SeriesLines]:
        """The prediction counter and the log lines of a series (model, version, mode,
        degraded, key id, route) new to :meth:`_log`."""
        model, version, mode, degraded, key_id, route_name = series
        labels = series[:4]
        counter = self._prediction_counters.get(labels)
        if counter is None:
            counter = self.metrics.predictions.labels(model, str(version), mode, "true" if degraded else "false")
            if len(self._prediction_counters) < 10_000:  # beyond that many series, each request updates Prometheus itself
                counter = self._prediction_counters[labels] = self.metrics.tally(counter)
        lines = SeriesLines({"deployment": model, "model": model, "version": version, "key_id": key_id, "degraded": degraded, "mode": mode, "route": route_name})
        known = (counter, lines)
        if len(self._log_series) < 10_000:
            self._log_series[series] = known
        return known


def _version_label(ref: str) -> str:
    """The version a reference names, else ``-`` (an alias not resolved)."""
    v = _parse_version(ref)
    return "-" if v is None else str(v)


def providers(ws: Workspace, extra: ModelProvider | None) -> ModelProvider:
    """The registry, optionally preceded by an in-process provider."""
    reg = RegistryModels(ws)
    return reg if extra is None else ChainModels(extra, reg)
