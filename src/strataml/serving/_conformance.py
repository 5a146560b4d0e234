"""The properties every rate-limit bucket store and response cache keeps (run by
:func:`strataml.testing.check_rate_limit_buckets` and :func:`strataml.testing.check_response_cache`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strataml.serving._cache import ResponseCache
    from strataml.serving._ratelimit import Buckets


def buckets_allow_a_burst_then_refuse_then_refill(buckets: Buckets) -> None:
    from strataml.serving._ratelimit import Limit

    key = uuid.uuid4().hex
    lim = Limit(rate=4.0, burst=5)  # a token per 250 ms: seven takes fit in that even on a busy machine
    results = [buckets.take(key, lim) for _ in range(7)]
    assert [d.allowed for d in results] == [True] * 5 + [False] * 2
    assert 0 < results[-1].retry_after <= 0.25 + 1e-6
    time.sleep(0.3)
    assert buckets.take(key, lim).allowed, "a bucket did not refill"


def buckets_are_separate_per_key(buckets: Buckets) -> None:
    from strataml.serving._ratelimit import Limit

    lim = Limit(rate=0.001, burst=5)
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    assert sum(buckets.take(a, lim).allowed for _ in range(6)) == 5
    other = buckets.take(b, lim)
    assert other.allowed and abs(other.remaining - 4) < 0.01


def buckets_take_a_cost(buckets: Buckets) -> None:
    from strataml.serving._ratelimit import Limit

    key, lim = uuid.uuid4().hex, Limit(rate=0.001, burst=10)
    assert buckets.take(key, lim, cost=8).allowed
    assert not buckets.take(key, lim, cost=3).allowed
    assert buckets.take(key, lim, cost=2).allowed


RATE_LIMIT_CHECKS: list[Callable[[Any], None]] = [
    buckets_allow_a_burst_then_refuse_then_refill,
    buckets_are_separate_per_key,
    buckets_take_a_cost,
]


def cache_misses_then_holds_until_the_ttl(cache: ResponseCache) -> None:
    from strataml.serving._cache import cache_key

    k = cache_key(f"m{uuid.uuid4().hex}@v1", [{"a": 1, "b": 2}])
    assert cache.get(k) is None
    cache.set(k, [0.25, {"x": 1}], ttl=0.2)
    assert cache.get(k) == [0.25, {"x": 1}]
    time.sleep(0.3)
    assert cache.get(k) is None, "an entry outlived its ttl"


def cache_keys_are_separate(cache: ResponseCache) -> None:
    from strataml.serving._cache import cache_key

    ref = f"m{uuid.uuid4().hex}"
    k1, k2 = cache_key(f"{ref}@v1", [{"a": 1}]), cache_key(f"{ref}@v2", [{"a": 1}])
    long = cache_key(f"{ref}@v1", [{"a": "x" * 300}])  # a hashed key
    cache.set(k1, [1], ttl=60)
    cache.set(long, [3], ttl=60)
    assert cache.get(k2) is None and cache.get(k1) == [1] and cache.get(long) == [3]


RESPONSE_CACHE_CHECKS: list[Callable[[Any], None]] = [cache_misses_then_holds_until_the_ttl, cache_keys_are_separate]


