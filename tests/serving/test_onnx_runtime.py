"""A deployment may serve its versions' ONNX exports instead of the native artifacts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import strataml as st
from strataml.models import export_model
from strataml.serving import create_key, set_traffic

from .conftest import bearer, make_client
from .registry_setup import build, unknown_entities

INSTANCES = [
    {"user_id": "u3", "amount_now": 12.5},
    {"user_id": "u17", "amount_now": 140.0},
    {"user_id": "nobody", "amount_now": 80.0},
]


@pytest.fixture
def reg_ws(tmp_path: Path) -> Iterator[st.Workspace]:
    ws = st.Workspace.init(tmp_path / "rws", example=False)
    build(ws)
    yield ws
    ws.close()


def _expected(ws: st.Workspace, runtime: str, name: str = "fraud") -> list[float]:
    from strataml.features import compute_request_features, get_online_features, resolve_view
    from strataml.models import load_model

    stored = get_online_features(ws, ["user_spend"], [{"user_id": i["user_id"]} for i in INSTANCES])
    req = compute_request_features(resolve_view(ws, "request"), INSTANCES)
    rows = [{**i, **s, **r} for i, s, r in zip(INSTANCES, stored, req, strict=True)]
    return [float(x) for x in load_model(ws, name, 1, runtime=runtime).predict(rows)]


def _served_sha(client: Any) -> str | None:
    s = client.app.state.gateway.models.cached("fraud", "champion")
    return None if s is None else s.sha256


def test_deployment_serves_the_onnx_export(reg_ws: st.Workspace) -> None:
    export = export_model(reg_ws, "fraud")
    lineage = st.models.get_model(reg_ws, "fraud")["versions"][0]["lineage"]
    assert (
        export["sample"] == {"source": lineage["training_set"], "rows": 512}
        and export["max_abs_diff"] < 1e-5
    )
    set_traffic(reg_ws.catalog, "fraud", {"runtime": "onnx"}, reason="serve ONNX")
    key = create_key(reg_ws.catalog, ["predict:fraud"])[1]
    admin = create_key(reg_ws.catalog, ["admin"])[1]
    with make_client(reg_ws, None, preload=("fraud",)) as c:
        assert c.get("/readyz", headers=bearer(admin)).json()["checks"]["model:fraud"] == "ok"
        r = c.post("/v1/models/fraud/predict", json={"instances": INSTANCES}, headers=bearer(key))
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["version"] == 1 and doc["degraded"]  # "nobody" is unknown to the online store: answered from nulls, named
        assert doc["missing_features"] == unknown_entities(reg_ws, INSTANCES) and doc["missing_features"][-1]["instance"] == 2
        assert _served_sha(c) == export["sha256"]
        assert doc["predictions"] == pytest.approx(_expected(reg_ws, "onnx"), abs=1e-9)
        assert doc["predictions"] == pytest.approx(_expected(reg_ws, "native"), abs=1e-5)


def test_runtime_switch_applies_without_restart(reg_ws: st.Workspace) -> None:
    export = export_model(reg_ws, "fraud")
    native_sha = st.models.get_model(reg_ws, "fraud")["versions"][0]["sha256"]
    admin = create_key(reg_ws.catalog, ["admin"])[1]
    with make_client(reg_ws, None, preload=("fraud",), refresh_interval_s=0.05) as c:
        first = c.post(
            "/v1/models/fraud/predict", json={"instances": INSTANCES}, headers=bearer(admin)
        )
        assert first.status_code == 200 and _served_sha(c) == native_sha
        patched = c.patch(
            "/v1/deployments/fraud",
            json={"runtime": "onnx", "reason": "smaller, faster"},
            headers=bearer(admin),
        )
        assert patched.status_code == 200, patched.text
        deadline = time.monotonic() + 5
        while _served_sha(c) != export["sha256"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _served_sha(c) == export["sha256"]
        after = c.post(
            "/v1/models/fraud/predict", json={"instances": INSTANCES}, headers=bearer(admin)
        )
        assert after.status_code == 200
        assert after.json()["predictions"] == pytest.approx(first.json()["predictions"], abs=1e-5)
        bad = c.patch("/v1/deployments/fraud", json={"runtime": "tensorrt"}, headers=bearer(admin))
        assert bad.status_code in (400, 422) and "runtime" in bad.text


def test_onnx_runtime_without_an_export_is_refused_by_name(reg_ws: st.Workspace) -> None:
    from strataml.errors import NotFound
    from strataml.serving import RegistryModels

    set_traffic(reg_ws.catalog, "fraud", {"runtime": "onnx-int8"})
    with pytest.raises(NotFound, match="has no int8 ONNX export") as err:
        RegistryModels(reg_ws).get("fraud", "champion")
    assert "--quantize int8" in str(err.value.hint)


def test_deployment_serves_a_torch_networks_int8_export(reg_ws: st.Workspace) -> None:
    torch = pytest.importorskip("torch")

    def mlp(n_inputs: int) -> Any:
        return torch.nn.Sequential(torch.nn.Linear(n_inputs, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))

    reg_ws.definitions.add(st.Model("fraud_mlp", labels="labels", target="is_fraud", features=["user_spend", "request"],
                                    estimator=st.TorchEstimator(mlp, loss="bce", epochs=5, lr=0.01)))
    assert st.train(reg_ws, "fraud_mlp").version == 1
    export = export_model(reg_ws, "fraud_mlp", quantize="int8")
    assert export["quantized"] and export["max_abs_diff"] <= 0.05
    set_traffic(reg_ws.catalog, "fraud_mlp", {"runtime": "onnx-int8"}, reason="int8 network")
    key = create_key(reg_ws.catalog, ["predict:fraud_mlp"])[1]
    with make_client(reg_ws, None, preload=("fraud_mlp",)) as c:
        # "nobody" has no stored features: the graph fills them with the training means
        r = c.post("/v1/models/fraud_mlp/predict", json={"instances": INSTANCES}, headers=bearer(key))
        assert r.status_code == 200, r.text
        assert c.app.state.gateway.models.cached("fraud_mlp", "champion").sha256 == export["sha256"]
        got = r.json()["predictions"]
        assert got == pytest.approx(_expected(reg_ws, "onnx-int8", "fraud_mlp"), abs=1e-9)
        # dynamic int8 quantisation scales activations by the batch's range, so a row's error
        # depends on the rows beside it: near the native answer, not within the export check's 0.05
        assert got == pytest.approx(_expected(reg_ws, "native", "fraud_mlp"), abs=0.1)
