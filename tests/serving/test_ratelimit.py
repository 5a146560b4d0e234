"""Token buckets: strataml.testing.check_rate_limit_buckets over every backend, sharing across processes, HTTP 429."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from strataml.serving import set_traffic
from strataml.serving._ratelimit import (
    Buckets,
    Limit,
    MemoryBuckets,
    RedisBuckets,
    SQLiteBuckets,
    open_buckets,
)
from strataml.testing import check_rate_limit_buckets

from .conftest import bearer, instance, make_client


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def new_buckets(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Buckets]:
    if request.param == "memory":
        return MemoryBuckets
    if request.param == "sqlite":
        return lambda: SQLiteBuckets(tmp_path / f"{uuid.uuid4().hex}.db")
    url = request.getfixturevalue("redis_url")
    return lambda: RedisBuckets(url, prefix=f"test-{uuid.uuid4().hex}:")


def test_every_backend_conforms(new_buckets: Callable[[], Buckets]) -> None:
    check_rate_limit_buckets(new_buckets)


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
    from strataml.serving._ratelimit import RateLimiter, lease_size

    lim = Limit(rate=0.001, burst=4000)
    assert lease_size(lim) == 2 and lease_size(Limit(1, 10)) == 1
    path = tmp_path / "online.db"
    workers = [RateLimiter(SQLiteBuckets(path), lim) for _ in range(3)]
    allowed = sum(w.check("k", "m").allowed for _ in range(2000) for w in workers)
    assert 3990 <= allowed <= 4000
    for w in workers:
        w.close()
