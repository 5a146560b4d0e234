"""Micro-batching coalesces concurrent calls; the response cache keys on version + canonical request."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from strataml.serving import from_lightgbm, set_traffic
from strataml.serving._batching import MicroBatcher
from strataml.serving._cache import MemoryCache, RedisCache, cache_key
from strataml.testing import check_response_cache

from .conftest import FEATURES, bearer, instance, make_client


def test_concurrent_requests_are_coalesced(boosters) -> None:
    s = from_lightgbm("fraud", 1, boosters[0])

    async def run() -> tuple[list[list[float]], MicroBatcher]:
        b = MicroBatcher(s.predict, max_batch=16, max_wait_ms=30, keep_sizes=100)
        outs = await asyncio.gather(*(b.submit([instance(i)]) for i in range(40)))
        await b.close()
        return outs, b

    outs, b = asyncio.run(run())
    assert b.stats.rows == 40 and b.stats.batches <= 4
    assert max(b.stats.sizes) == 16
    expected = boosters[0].predict(np.array([[instance(i)[f] for f in FEATURES] for i in range(40)]))
    assert np.allclose([o[0] for o in outs], expected)


def test_batch_failure_reaches_every_caller(boosters) -> None:
    def broken(rows):
        raise ValueError("boom")

    async def run() -> list[BaseException | list]:
        b = MicroBatcher(broken, max_wait_ms=10)
        res = await asyncio.gather(*(b.submit([instance()]) for _ in range(5)), return_exceptions=True)
        await b.close()
        return res

    assert all(isinstance(r, ValueError) for r in asyncio.run(run()))


def test_gateway_batches_under_concurrency(workspace, models, keys) -> None:
    import threading

    with make_client(workspace, models, max_wait_ms=20) as c:
        codes: list[int] = []

        def one(i: int) -> None:
            codes.append(c.post("/v1/models/fraud/predict", json={"instances": [instance(i)]}, headers=bearer(keys["fraud"])).status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes == [200] * 12
        stats = c.app.state.gateway.batcher(models.get("fraud", "champion")).stats
        assert stats.rows == 12 and stats.batches < 12
        text = c.get("/metrics").text
        assert "strata_batch_size_bucket" in text
        flushes = c.app.state.gateway.audit.flushes
        assert 1 <= flushes <= 12 and f"strata_audit_flushes_total {float(flushes)}" in text  # group commits, as the log counted them


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def new_cache(request):
    if request.param == "memory":
        return lambda: MemoryCache(max_entries=3)
    url = request.getfixturevalue("redis_url")
    return lambda: RedisCache(url, prefix=f"t{uuid.uuid4().hex}:")


def test_every_cache_backend_conforms(new_cache) -> None:
    check_response_cache(new_cache)


def test_cache_keys_are_canonical() -> None:
    k = cache_key("fraud@v1", [{"a": 1, "b": 2}])
    assert k == cache_key("fraud@v1", [{"b": 2, "a": 1}]) != cache_key("fraud@v2", [{"a": 1, "b": 2}])


def test_memory_cache_is_bounded() -> None:
    c = MemoryCache(max_entries=3)
    for i in range(5):
        c.set(b"%d" % i, [i], 60)
    assert len(c) == 3 and c.get(b"0") is None and c.get(b"4") == [4]
    c.set(b"2", [20], 60)  # an update is the most recent entry
    c.set(b"5", [5], 60)
    assert c.get(b"3") is None and c.get(b"2") == [20]
    got = c.get(b"2")
    assert got is not None
    got.append(1)  # what a caller does to its copy leaves the entry alone
    assert c.get(b"2") == [20]
    long = cache_key("fraud@v1", [{"a": "x" * 300}])
    assert long.startswith(b"#") and len(long) == 33 and cache_key("fraud@v1", [{"a": 1}]).startswith(b"=fraud@v1")


def test_gateway_cache_hits(workspace, models, keys) -> None:
    set_traffic(workspace.catalog, "fraud", {"cache_ttl": 60})
    with make_client(workspace, models) as c:
        a = c.post("/v1/models/fraud/predict", json={"instances": [instance(3)]}, headers=bearer(keys["fraud"])).json()
        b = c.post("/v1/models/fraud/predict", json={"instances": [dict(reversed(list(instance(3).items())))]}, headers=bearer(keys["fraud"])).json()
        assert a["predictions"] == b["predictions"] and not b["degraded"]
        text = c.get("/metrics").text
        assert 'strata_cache_requests_total{model="fraud",result="hit"} 1.0' in text
        assert 'strata_cache_requests_total{model="fraud",result="miss"} 1.0' in text
