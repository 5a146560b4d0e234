"""Per-key token buckets shared by every worker process.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; each
request takes one. The state lives in a small backend chosen by URL, so that all
worker processes of a gateway (and several gateways) draw from the same buckets:

- ``sqlite:///path.db`` (default: the workspace's online store file): one atomic
  ``INSERT … ON CONFLICT … RETURNING`` statement per request;
- ``redis://host:port/db``: one Lua script per request;
- ``memory://``: a single process only.

A store that fails (down, or slower than its timeout) does not stop predictions by
default: the limiter falls back to per-process buckets of the same shape (fail open),
counts it and logs it; ``fail_open=False`` refuses instead (HTTP 503 with
``Retry-After``). Calls to a network store (Redis) run off the event loop.
"""

from __future__ import annotations

import functools
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from strataml.errors import ConfigError, StrataError
from strataml.spine import Backend, BackendKind, redis_client, use_wal

log = logging.getLogger("strataml.serving")

#: milliseconds a SQLite bucket store waits for another writer's lock; its calls run on
#: the event loop, so a writer stuck holding the lock must fail them soon (then fail open)
SQLITE_BUSY_MS = 200


class RateLimited(StrataError):
    """The key used up its request budget (HTTP 429)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, hint=f"retry after {retry_after:.2f}s or ask for a higher limit")
        self.retry_after = retry_after


class Decision(NamedTuple):
    """The outcome of taking a token: allowed, tokens left, and seconds until one is free."""

    allowed: bool
    remaining: float
    retry_after: float


@dataclass(frozen=True)
class Limit:
    """A bucket's shape: ``rate`` tokens per second, at most ``burst`` stored."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ConfigError(f"invalid rate limit rate={self.rate} burst={self.burst}", hint="rate must be > 0 and burst >= 1")

    @functools.cached_property
    def lease(self) -> int:
        """:func:`lease_size` of this limit (worked out once: it is read on every request)."""
        return lease_size(self)


def _decision(ok: bool, tokens: float, limit: Limit, cost: float) -> Decision:
    wait = 0.0 if ok else max(0.0, (cost - tokens) / limit.rate)
    return Decision(ok, tokens, wait)


class Buckets(Protocol):
    """A shared token-bucket store."""

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens from bucket ``key`` if it has them."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryBuckets:
    """Buckets in this process only (tests, single-worker gateways)."""

    remote = False

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        now = time.time()
        with self._lock:
            tokens, ts = self._state.get(key, (limit.burst, now))
            tokens = min(limit.burst, tokens + max(0.0, now - ts) * limit.rate)
            ok = tokens >= cost
            if ok:
                tokens -= cost
            self._state[key] = (tokens, now)
        return _decision(ok, tokens, limit, cost)

    def close(self) -> None:
        return None


_SQLITE_TAKE = """
INSERT INTO strata_rate_buckets(key, tokens, ts, ok) VALUES (:key, :burst - :cost, :now, 1)
ON CONFLICT(key) DO UPDATE SET
  tokens = CASE WHEN MIN(:burst, tokens + MAX(0, :now - ts) * :rate) >= :cost
                THEN MIN(:burst, tokens + MAX(0, :now - ts) * :rate) - :cost
                ELSE MIN(:burst, tokens + MAX(0, :now - ts) * :rate) END,
  ok = (MIN(:burst, tokens + MAX(0, :now - ts) * :rate) >= :cost),
  ts = :now
RETURNING tokens, ok
"""


class SQLiteBuckets:
    """Buckets in a SQLite file shared by processes on one machine.

    The file runs in WAL mode without fsync: bucket state need not survive a power
    cut, only be shared and updated atomically. A lock held by another writer is waited
    for at most :data:`SQLITE_BUSY_MS`.
    """

    remote = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        use_wal(self._con)
        self._con.execute("PRAGMA synchronous=OFF")
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS strata_rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, ts REAL NOT NULL, ok INTEGER NOT NULL)"
        )
        self._con.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")  # after the set-up, which may wait longer
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        params = {"key": key, "burst": float(limit.burst), "cost": float(cost), "now": time.time(), "rate": float(limit.rate)}
        with self._lock:
            tokens, ok = self._con.execute(_SQLITE_TAKE, params).fetchone()
        return _decision(bool(ok), float(tokens), limit, cost)

    def close(self) -> None:
        self._con.close()


_REDIS_TAKE = """
local burst = tonumber(ARGV[1]); local rate = tonumber(ARGV[2]); local cost = tonumber(ARGV[3]); local now = tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1]); local ts = tonumber(s[2])
if tokens == nil then tokens = burst; ts = now end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local ok = 0
if tokens >= cost then tokens = tokens - cost; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate) * 1000) + 60000)
return {ok, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis, shared by gateways on any number of machines (``remote``: its
    calls can hang on the network, so the gateway makes them off the event loop)."""

    remote = True

    def __init__(self, url: str, prefix: str = "strata:rl:") -> None:
        self._r = redis_client(url, "rate limits in Redis", timeout=1)
        self._script = self._r.register_script(_REDIS_TAKE)
        self.prefix = prefix

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        ok, tokens = self._script(keys=[self.prefix + key], args=[limit.burst, limit.rate, cost, time.time()])
        return _decision(bool(int(ok)), float(tokens), limit, cost)

    def close(self) -> None:
        self._r.close()


#: the rate-limit bucket backends, by URL scheme (more through the ``strataml.backends`` entry points)
BACKENDS = BackendKind(
    "rate_limit",
    "serve --ratelimit",
    {
        "memory": Backend("strataml.serving._ratelimit:memory_buckets"),
        "sqlite": Backend("strataml.serving._ratelimit:sqlite_buckets"),
        "redis": Backend("strataml.serving._ratelimit:RedisBuckets", ("redis", "redis")),
        "rediss": Backend("strataml.serving._ratelimit:RedisBuckets", ("redis", "redis")),
        "unix": Backend("strataml.serving._ratelimit:RedisBuckets", ("redis", "redis")),
    },
)


def memory_buckets(url: str) -> MemoryBuckets:
    """Buckets in this process only (``memory://``)."""
    return MemoryBuckets()


def sqlite_buckets(url: str) -> Buckets:
    """Buckets in a SQLite file (``sqlite:///path.db``; ``sqlite:///:memory:`` is in-process)."""
    path = url[len("sqlite:///") :]
    if not path or path == ":memory:":
        return MemoryBuckets()
    return SQLiteBuckets(path)


def open_buckets(url: str) -> Buckets:
    """The bucket store for ``url`` (``sqlite:///…``, ``redis://…``, ``memory://``)."""
    buckets: Buckets = BACKENDS.resolve(url)(url)
    return buckets


def lease_size(limit: Limit) -> int:
    """How many tokens a process may take from the shared bucket at once.

    Large buckets (burst ≥ 2,000) are drawn from in leases of up to 512 tokens, spent
    locally, so that the shared store sees one write per lease instead of one per
    request. Leased tokens leave the shared bucket at once, so the limit is never
    exceeded; at most ``lease * processes`` tokens (1/2,000 of the burst per process)
    sit unused. Smaller buckets are exact (one token per request).
    """
    return max(1, min(512, int(limit.burst // 2000)))


_UNLIMITED = Decision(True, math.inf, 0.0)
_SPENT = (0, 0.0)  # no lease held: no tokens, expired


#: takes a token from a remote store off the loop: ``run(take, bucket, limit, cost)``
RemoteCall = Callable[..., Awaitable[Decision]]


class RateLimiter:
    """Applies per-key limits. A failing store is counted and logged, then either
    replaced by per-process buckets until it recovers (``fail_open``, the default) or
    reported as :class:`~strataml.serving._resilience.Unavailable` (HTTP 503)."""

    #: seconds within which a process spends a lease or gives up what is left of it
    lease_s = 1.0
    #: seconds a fail-closed refusal asks the client to wait
    retry_after_s = 1.0

    def __init__(self, buckets: Buckets, default: Limit | None, *, fail_open: bool = True, on_store_failure: Callable[[], None] | None = None) -> None:
        self.buckets = buckets
        self.default = default
        self.fail_open = fail_open
        self.remote = bool(getattr(buckets, "remote", False))
        self.local = MemoryBuckets()  # the fallback while the store fails
        self._on_failure = on_store_failure
        self._leased: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._logged_at = -math.inf

    def plan(self, key_id: str, scope: str, limit: Limit | None = None) -> Decision | tuple[str, Limit]:
        """The decision when it needs no store (unlimited, or a token of a lease held
        here); else the bucket and limit to take from the store."""
        lim = limit or self.default
        if lim is None:
            return _UNLIMITED
        bucket = f"{key_id}:{scope}"
        if lim.lease > 1:
            now = time.monotonic()
            with self._lock:
                left, until = self._leased.get(bucket, _SPENT)
                if left > 0 and now < until:
                    self._leased[bucket] = (left - 1, until)
                    return Decision(True, float(left - 1), 0.0)
        return bucket, lim

    def check(self, key_id: str, scope: str, limit: Limit | None = None) -> Decision:
        """Take one token from ``key_id``'s bucket for ``scope`` (always allowed when
        unlimited), calling the store on this thread."""
        planned = self.plan(key_id, scope, limit)
        if type(planned) is Decision:
            return planned
        return self.take(*planned)  # type: ignore[misc]

    def take(self, bucket: str, lim: Limit) -> Decision:
        """Take what :meth:`plan` left to the store, calling it on this thread."""
        try:
            if lim.lease > 1:
                got = self.buckets.take(bucket, lim, cost=float(lim.lease))
                if got.allowed:
                    return self._leased_now(bucket, lim, got)
            return self.buckets.take(bucket, lim)
        except Exception as exc:
            return self.store_failed(bucket, lim, exc)

    async def check_remote(self, bucket: str, lim: Limit, run: RemoteCall) -> Decision:
        """:meth:`check` for what :meth:`plan` left to the store, through ``run`` (which
        calls the store off the loop within a timeout)."""
        try:
            if lim.lease > 1:
                got = await run(self.buckets.take, bucket, lim, float(lim.lease))
                if got.allowed:
                    return self._leased_now(bucket, lim, got)
            return await run(self.buckets.take, bucket, lim, 1.0)
        except Exception as exc:
            return self.store_failed(bucket, lim, exc)

    def _leased_now(self, bucket: str, lim: Limit, got: Decision) -> Decision:
        with self._lock:
            self._leased[bucket] = (lim.lease - 1, time.monotonic() + self.lease_s)
        return got

    def store_failed(self, bucket: str, lim: Limit, exc: BaseException) -> Decision:
        """The decision when the store failed: a per-process bucket's (fail open) or
        :class:`~strataml.serving._resilience.Unavailable`."""
        from strataml.serving._resilience import Unavailable

        if self._on_failure is not None:
            self._on_failure()
        why = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        now = time.monotonic()
        if now - self._logged_at >= 10.0:  # one line per 10 s while it lasts, not one per request
            self._logged_at = now
            log.warning("rate-limit store failed (%s); %s", why[:300],
                        "limiting with per-process buckets until it answers" if self.fail_open else "refusing predictions (fail closed)")
        if self.fail_open:
            return self.local.take(bucket, lim)
        raise Unavailable(f"rate-limit store unavailable ({why[:300]}) and the gateway is set to fail closed",
                          self.retry_after_s, hint="retry later, or serve with --ratelimit-fail open to limit per process while the store is down")

    def close(self) -> None:
        """Release the backend."""
        self.buckets.close()


def describe(limit: Limit | None) -> dict[str, Any] | None:
    """A JSON-ready description of a limit."""
    return None if limit is None else {"rate": limit.rate, "burst": limit.burst}
