"""Breakers, fallbacks (previous champion → cache → default), bounded concurrency, deadlines."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from strataml.serving import InMemoryModels, from_lightgbm, set_traffic
from strataml.serving._resilience import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Admission,
    CircuitBreaker,
    Overloaded,
)

from .conftest import bearer, failing, instance, make_client


def test_breaker_opens_half_opens_and_closes() -> None:
    b = CircuitBreaker("m", failures=3, reset_after=0.05)
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert b.state == OPEN and not b.allow()
    time.sleep(0.06)
    assert b.allow() and b.state == HALF_OPEN
    assert not b.allow()  # one trial at a time
    b.failure()
    assert b.state == OPEN
    time.sleep(0.06)
    assert b.allow()
    b.success()
    assert b.state == CLOSED and b.allow()


def test_admission_refuses_at_once_and_drains() -> None:
    async def run() -> None:
        a = Admission(2)
        a.enter()
        a.enter()
        with pytest.raises(Overloaded):
            a.enter()
        a.leave()

        async def finish() -> None:
            await asyncio.sleep(0.05)
            a.leave()

        task = asyncio.create_task(finish())
        assert await a.drain(1.0)
        await task
        with pytest.raises(Overloaded):
            a.enter()

    asyncio.run(run())


def _models_with_broken_champion(boosters: Any) -> InMemoryModels:
    m = InMemoryModels()
    m.add(from_lightgbm("fraud", 1, boosters[0]), ["champion"])
    m.add(failing("fraud", 2, boosters[1]))
    m.set_alias("fraud", "champion", 2)
    return m


def test_fallback_to_previous_champion(workspace, keys, boosters) -> None:
    models = _models_with_broken_champion(boosters)
    with make_client(workspace, models) as c:
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=bearer(keys["fraud"]))
        doc = r.json()
        assert r.status_code == 200 and doc["degraded"] is True and doc["version"] == 1 and doc["fallback"] == "previous_champion"
        metrics = c.get("/metrics").text
        assert 'strata_fallbacks_total{model="fraud",step="previous_champion"} 1.0' in metrics


def test_fallback_to_cache_then_default_then_503(workspace, keys, boosters) -> None:
    models = InMemoryModels()
    good = from_lightgbm("fraud", 1, boosters[0])
    models.add(good, ["champion"])
    with make_client(workspace, models, breaker_failures=2, breaker_reset_s=60) as c:
        h = bearer(keys["fraud"])
        ok = c.post("/v1/models/fraud/predict", json={"instances": [instance(7)]}, headers=h).json()
        good.predict_rows = failing("fraud", 1, boosters[0]).predict_rows  # the model breaks while served
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance(7)]}, headers=h).json()
        assert r["degraded"] and r["fallback"] == "cache" and r["predictions"] == ok["predictions"]
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance(8)]}, headers=h)
        assert r.status_code == 503 and "no fallback" in r.json()["error"]["message"]
        set_traffic(workspace.catalog, "fraud", {"default": 0.5})
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance(9), instance(10)]}, headers=h).json()
        assert r["degraded"] and r["fallback"] == "default" and r["predictions"] == [0.5, 0.5]
        assert c.app.state.gateway.breakers.get("model:fraud@v1").state == OPEN
        assert 'strata_breaker_state{breaker="model:fraud@v1"} 2.0' in c.get("/metrics").text


def _slow_models(boosters: Any, delay: float) -> InMemoryModels:
    s = from_lightgbm("fraud", 1, boosters[0])
    inner = s.predict_rows

    def slow(rows: list[dict[str, Any]]) -> Any:
        time.sleep(delay)
        return inner(rows)

    s.predict_rows = slow
    m = InMemoryModels()
    m.add(s, ["champion"])
    return m


def test_overload_answers_503_at_once(workspace, keys, boosters) -> None:
    with make_client(workspace, _slow_models(boosters, 0.5), concurrency=1, max_batch=1) as c:
        h = bearer(keys["fraud"])
        results: list[int] = []
        t = threading.Thread(target=lambda: results.append(c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=h).status_code))
        t.start()
        time.sleep(0.15)
        t0 = time.perf_counter()
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=h)
        assert r.status_code == 503 and time.perf_counter() - t0 < 0.5  # refused, not queued behind the 0.5 s prediction
        assert c.get("/healthz").status_code == 200
        t.join()
        assert results == [200]
        assert "strata_overload_rejections_total 1.0" in c.get("/metrics").text


def test_deadline_gives_504(workspace, keys, boosters) -> None:
    with make_client(workspace, _slow_models(boosters, 0.4), timeout_ms=100) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/models/fraud/predict", json={"instances": [instance()]}, headers=bearer(keys["fraud"]))
        assert r.status_code == 504 and time.perf_counter() - t0 < 0.4  # given up, not waited for the 0.4 s model


def test_a_failing_canary_counts_against_its_version_not_the_deployments_error_rate(workspace, keys, boosters) -> None:
    """Every request sent to a broken canary is answered by its champion: the canary's
    version shows its failures, the deployment's error rate (what pages) stays zero."""
    from strataml.monitoring import slo

    models = InMemoryModels()
    models.add(from_lightgbm("fraud", 1, boosters[0]), ["champion"])
    models.add(failing("fraud", 2, boosters[1]))
    set_traffic(workspace.catalog, "fraud", {"canary": {"ref": "v2", "weight": 1.0}})
    with make_client(workspace, models) as c:
        for i in range(6):
            r = c.post("/v1/models/fraud/predict", json={"instances": [instance(i)]}, headers=bearer(keys["fraud"]))
            assert r.status_code == 200 and r.json()["version"] == 1, r.text
        assert c.post("/v1/models/fraud/predict", json={"instances": [{"f0": "x"}]}, headers=bearer(keys["fraud"])).status_code == 422
    rep = slo(workspace, "fraud", window="1h", bucket="1h")
    by_version = {s["version"]: s for s in rep.series}
    assert (by_version[2]["errors"], by_version[2]["failed_requests"], by_version[2]["requests"]) == (6, 0, 0)
    assert by_version[1]["requests"] == 6 and by_version[None]["failed_requests"] == 1
    assert rep.totals()["errors"] == 1 and rep.totals()["error_rate"] == 1 / 7
