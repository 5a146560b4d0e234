"""Service levels from the prediction log and the failed-request log."""

from __future__ import annotations

import numpy as np
from starlette.testclient import TestClient

import strataml as st
from strataml.monitoring import slo
from strataml.serving import GatewayConfig, create_app, create_key, query_predictions

from .conftest import customers


def test_slo_counts_every_request_error_and_latency(mon_ws: st.Workspace) -> None:
    key = create_key(mon_ws.catalog, ["predict:churn"])[1]
    rows = customers(120, 5).select(["tenure", "spend", "plan"]).to_pylist()
    app = create_app(mon_ws, None, GatewayConfig(ratelimit_url="memory://"))
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as c:
        for i in range(0, 120, 4):
            assert c.post("/v1/models/churn/predict", json={"instances": rows[i : i + 4]}, headers=auth).status_code == 200
        for _ in range(5):  # bad input
            assert c.post("/v1/models/churn/predict", json={"instances": [{"tenure": "x"}]}, headers=auth).status_code == 422
        for _ in range(3):  # no key
            assert c.post("/v1/models/churn/predict", json={"instances": rows[:1]}).status_code == 401
    rep = slo(mon_ws, "churn", window="1h", bucket="1h").to_dict()
    assert rep["deployment"] == "churn"
    assert sum(s["requests"] for s in rep["series"]) == 30
    assert sum(s["errors"] for s in rep["series"]) == sum(s["failed_requests"] for s in rep["series"]) == 8
    live = [s for s in rep["series"] if s["version"] == 1]
    assert live and all(s["p50"] <= s["p95"] <= s["p99"] for s in live)
    logged = query_predictions(mon_ws.state_dir / "predictions", model="churn", limit=None)
    per_request: dict[str, float] = {}
    for r in logged:
        per_request[r["request_id"]] = max(per_request.get(r["request_id"], 0.0), r["latency_ms"])
    if len(live) == 1:
        assert live[0]["p99"] == round(float(np.quantile(list(per_request.values()), 0.99)), 3)
    assert set(rep["series"][0]) == {"version", "t", "requests", "errors", "failed_requests", "degraded", "p50", "p95", "p99"}
    assert slo(mon_ws, "elsewhere").to_dict()["series"] == []
