"""Token buckets: one conformance suite for every backend, sharing across processes, HTTP 429."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from pathlib import Path

import pytest

from strataml.serving import set_traffic
from strataml.serving.ratelimit import (
    Limit,
    MemoryBuckets,
    RedisBuckets,
    SQLiteBuckets,
    open_buckets,
)

from .conftest import bearer, instance, make_client


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def buckets(request, tmp_path: Path):
    if request.param == "memory":
        b = MemoryBuckets()
    elif request.param == "sqlite":
        b = SQLiteBuckets(tmp_path / "online.db")
    else:
        b = RedisBuckets(request.getfixturevalue("redis_url"))
    yield b
    b.close()


def test_bucket_allows_burst_then_refuses_then_refills(buckets) -> None:
    key = uuid.uuid4().hex
    lim = Limit(rate=4.0, burst=5)  # a token per 250 ms: seven takes fit in that even on a busy machine
    results = [buckets.take(key, lim) for _ in range(7)]
    assert [d.allowed for d in results] == [True] * 5 + [False] * 2
    assert 0 < results[-1].retry_after <= 0.25 + 1e-6
    time.sleep(0.3)
    assert buckets.take(key, lim).allowed
    other = buckets.take(uuid.uuid4().hex, lim)
    assert other.allowed and other.remaining == pytest.approx(4, abs=0.01)


def _drain(path: str, key: str, n: int, out: mp.Queue) -> None:  # runs in a child process
    b = open_buckets(f"sqlite:///{path}")
    out.put(sum(b.take(key, Limit(rate=0.001, burst=30)).allowed for _ in range(n)))


def test_sqlite_buckets_hold_across_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    path = str(tmp_path / "online.db")
    procs = [ctx.Process(target=_drain, args=(path, "k", 40, q)) for _ in range(3)]
    for p in procs:
        p.start()
    total = sum(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(10)
    assert total == 30


@pytest.mark.redis
def test_redis_buckets_hold_across_processes(redis_url: str) -> None:
    key = uuid.uuid4().hex
    a, b = RedisBuckets(redis_url), RedisBuckets(redis_url)
    lim = Limit(rate=0.001, burst=10)
    allowed = sum(x.take(key, lim).allowed for _ in range(10) for x in (a, b))
    assert allowed == 10


def test_http_429_with_retry_after_per_deployment(workspace, models, keys) -> None:
    set_traffic(workspace.catalog, "fraud", {"rate": 0.5, "burst": 3})
    with make_client(workspace, models, ratelimit_url=f"sqlite:///{workspace.state_dir / 'online.db'}") as c:
        codes = [c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=bearer(keys["fraud"])) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        assert int(codes[-1].headers["retry-after"]) >= 1
        assert codes[-1].json()["error"]["type"] == "RateLimited"
        # another key has its own bucket
        assert c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=bearer(keys["admin"])).status_code == 200
        assert 'strata_rate_limited_total{scope="predict:fraud"} 2.0' in c.get("/metrics").text


def test_leases_never_exceed_the_shared_limit(tmp_path: Path) -> None:
    from strataml.serving.ratelimit import RateLimiter, lease_size

    lim = Limit(rate=0.001, burst=4000)
    assert lease_size(lim) == 2 and lease_size(Limit(1, 10)) == 1
    path = tmp_path / "online.db"
    workers = [RateLimiter(SQLiteBuckets(path), lim) for _ in range(3)]
    allowed = sum(w.check("k", "m").allowed for _ in range(2000) for w in workers)
    assert 3990 <= allowed <= 4000
    for w in workers:
        w.close()
