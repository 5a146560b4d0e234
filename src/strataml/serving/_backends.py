"""The gateway's calls to backends that can fail or hang, and what it does instead.

- a network rate-limit store is asked off the loop, within a fifth of the deadline;
  a failing store falls back to per-process buckets or refuses (see
  :class:`~strataml.serving._ratelimit.RateLimiter`);
- a remote response cache is read off the loop (a failure is a miss) and written in
  the background (skipped while its breaker is open);
- a catalog on a database server is polled off the loop every refresh interval, and
  requests read the copy (the last one keeps serving while the server fails);
- a prediction log that stops acknowledging fails the requests waiting on it (503).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from strataml.serving._ratelimit import Decision, Limit, RateLimited
from strataml.serving._resilience import BackendFailed, Deadline

if TYPE_CHECKING:
    from strataml.serving._audit import AuditLog
    from strataml.serving._auth import ApiKey, KeyStore
    from strataml.serving._cache import ResponseCache
    from strataml.serving._gateway import GatewayConfig
    from strataml.serving._metrics import GatewayMetrics
    from strataml.serving._ratelimit import RateLimiter
    from strataml.serving._resilience import BackendPool, CircuitBreaker
    from strataml.serving._servable import ModelProvider
    from strataml.serving._traffic import Traffic, TrafficTable
    from strataml.spine import Workspace

log = logging.getLogger("strataml.serving")


class BackendCalls:
    """The :class:`~strataml.serving._gateway.Gateway`'s backend calls (a part of it, kept apart)."""

    ws: Workspace
    config: GatewayConfig
    metrics: GatewayMetrics
    audit: AuditLog | None
    backends: BackendPool
    limiter: RateLimiter
    cache: ResponseCache
    keys: KeyStore
    traffic: TrafficTable
    models: ModelProvider
    _backend_s: float
    _limits_breaker: CircuitBreaker
    _cache_breaker: CircuitBreaker
    _catalog_breaker: CircuitBreaker
    _catalog_seen: tuple[Any, Any] | None
    _catalog_logged: float
    _closing: bool
    _log_watch: asyncio.TimerHandle | None

    async def _rate_limit_remote(self, key: ApiKey, name: str, traffic: Traffic, bucket: str, limit: Limit) -> None:
        timeout = min(self._backend_s, 0.2 * (traffic.timeout_ms or self.config.timeout_ms) / 1000.0)
        decision = await self.limiter.check_remote(bucket, limit, functools.partial(self.backends.call, self._limits_breaker, timeout))
        if not decision.allowed:
            self._refuse(key, name, decision)

    def _refuse(self, key: ApiKey, name: str, decision: Decision) -> None:
        self.metrics.rate_limited.labels(f"predict:{name}").inc()
        raise RateLimited(f"API key {key.id} exceeded its rate limit on {name!r}", max(decision.retry_after, 0.001))

    def _limits_failed(self) -> None:
        self.metrics.backend_failures.labels("rate-limit-store", "per-process" if self.config.ratelimit_fail_open else "refused").inc()

    async def _cache_get(self, ck: bytes, deadline: Deadline) -> list[Any] | None:
        """A remote cache's entry, off the loop; a failing cache is a miss."""
        try:
            return await self.backends.call(self._cache_breaker, deadline.for_backend(self._backend_s), self.cache.get, ck)
        except BackendFailed as exc:
            self.metrics.backend_failures.labels("response-cache", "miss").inc()
            log.debug("response cache failed: %s", exc.message)
            return None

    def _cache_set(self, ck: bytes, preds: list[Any], ttl: float) -> None:
        """Store an answer in a remote cache (in a backend thread; skipped while its breaker is open)."""
        breaker = self._cache_breaker
        if not breaker.allow():
            return
        try:
            self.cache.set(ck, preds, ttl)
        except Exception:
            breaker.failure()
            self.metrics.backend_failures.labels("response-cache", "not-stored").inc()
            return
        breaker.success()

    def _watch_log(self) -> None:
        """Answer 503 to requests waiting on a prediction log that stopped answering (a
        hung disk) once it has been silent for 80% of the default deadline: checked every
        fifth of the deadline by a timer (no task, no coroutine), so that such a request
        answers by its deadline."""
        seconds = self.config.timeout_ms / 1000.0
        audit = self.audit
        if audit is None or self._closing:
            return
        if audit.fail_if_stalled(0.6 * seconds):  # first seen stuck up to a tick late: 0.8 of the deadline at most
            self.metrics.backend_failures.labels("prediction-log", "refused").inc()
            log.warning("the prediction log answered nothing for %.1f s: refusing the requests waiting on it", 0.8 * seconds)
        self._log_watch = asyncio.get_running_loop().call_later(0.2 * seconds, self._watch_log)

    def _read_catalog(self) -> tuple[Any, Any]:
        """The keys and traffic in the catalog (in a backend thread)."""
        from strataml.serving._auth import list_keys
        from strataml.serving._traffic import list_traffic

        return list_keys(self.ws.catalog), list_traffic(self.ws.catalog)

    def _install_catalog(self, state: tuple[Any, Any]) -> None:
        """Serve the polled keys and traffic (on the loop, so no request sees half of a change)."""
        if state != self._catalog_seen:
            version = self.keys.watcher.version() + 1
            self.keys.install(state[0], version)
            self.traffic.install(state[1], version)
            self.keys.watcher.bump(version)
            self._catalog_seen = state

    async def _poll(self) -> None:
        """One poll of a server catalog; while it fails the last copy keeps serving."""
        timeout = max(self._backend_s, 2.0)
        try:
            self._install_catalog(await self.backends.call(self._catalog_breaker, timeout, self._read_catalog))
            await self.backends.call(self._catalog_breaker, timeout, self.models.refresh)
        except BackendFailed as exc:
            self.metrics.backend_failures.labels("catalog", "last-copy").inc()
            now = time.monotonic()
            if now - self._catalog_logged >= 10.0:
                self._catalog_logged = now
                log.warning("catalog poll failed (%s); serving the keys, traffic and models last read", exc.message)
