"""The real path: registry models over online and request-time features, alias moves, rollback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import strataml as st
from strataml.serving import create_key

from .conftest import bearer, make_client
from .registry_setup import build, train_again, unknown_entities


@pytest.fixture
def reg_ws(tmp_path: Path):
    ws = st.Workspace.init(tmp_path / "rws", example=False)
    build(ws)
    yield ws
    ws.close()


def _expected(ws: st.Workspace, version: int, insts: list[dict]) -> list[float]:
    from strataml.features import compute_request_features, get_online_features, resolve_view
    from strataml.models import load_model

    stored = get_online_features(ws, ["user_spend"], [{"user_id": i["user_id"]} for i in insts])
    req = compute_request_features(resolve_view(ws, "request"), insts)
    rows = [{**i, **s, **r} for i, s, r in zip(insts, stored, req, strict=True)]
    return [float(x) for x in load_model(ws, "fraud", version).predict(rows)]


def test_serves_registry_model_with_online_and_request_features(reg_ws) -> None:
    key = create_key(reg_ws.catalog, ["predict:fraud"])[1]
    insts = [{"user_id": "u3", "amount_now": 12.5}, {"user_id": "u17", "amount_now": 140.0}, {"user_id": "nobody", "amount_now": 80.0}]
    admin = create_key(reg_ws.catalog, ["admin"])[1]
    with make_client(reg_ws, None, preload=("fraud",)) as c:
        assert c.get("/readyz", headers=bearer(admin)).json()["checks"]["model:fraud"] == "ok"
        r = c.post("/v1/models/fraud/predict", json={"instances": insts}, headers=bearer(key))
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["version"] == 1 and doc["degraded"]  # "nobody" is unknown to the online store: answered from nulls, named
        assert doc["missing_features"] == unknown_entities(reg_ws, insts) and doc["missing_features"][-1]["instance"] == 2
        assert doc["predictions"] == pytest.approx(_expected(reg_ws, 1, insts))
        bad = c.post("/v1/models/fraud/predict", json={"instances": [{"amount_now": 3.0}]}, headers=bearer(key))
        assert bad.status_code == 422 and "'user_id'" in bad.json()["error"]["message"]
        bad = c.post("/v1/models/fraud/predict", json={"instances": [{"user_id": "u1", "amount_now": "lots"}]}, headers=bearer(key))
        assert bad.status_code == 422 and "'amount_now'" in bad.json()["error"]["message"]
        bad = c.post("/v1/models/fraud/predict", json={"instances": [{"user_id": 7, "amount_now": 1.0}]}, headers=bearer(key))
        assert bad.status_code == 422
        assert c.post("/v1/models/ghost/predict", json={"instances": insts}, headers=bearer(create_key(reg_ws.catalog, ["admin"])[1])).status_code == 404
    logged = st.Workspace.open(reg_ws.root)
    from strataml.serving import query_predictions

    rows = query_predictions(logged.state_dir / "predictions", "fraud", limit=None)
    assert {r["features"]["user_id"] for r in rows} == {"u3", "u17", "nobody"}
    assert all("spend_7d" in r["features"] and "amount_log" in r["features"] for r in rows)


def test_alias_move_and_rollback_without_restart(reg_ws) -> None:
    from strataml.models import set_alias

    v2 = train_again(reg_ws, trees=40)
    key = create_key(reg_ws.catalog, ["admin"])[1]
    inst = [{"user_id": "u5", "amount_now": 55.0}]
    with make_client(reg_ws, None, preload=("fraud",), refresh_interval_s=0.05) as c:
        assert c.post("/v1/models/fraud/predict", json={"instances": inst}, headers=bearer(key)).json()["version"] == 1
        set_alias(reg_ws, "fraud", "champion", v2, reason="better")
        deadline = time.monotonic() + 5
        seen = set()
        while time.monotonic() < deadline:
            r = c.post("/v1/models/fraud/predict", json={"instances": inst}, headers=bearer(key))
            assert r.status_code == 200
            seen.add(r.json()["version"])
            if r.json()["version"] == v2:
                break
        assert v2 in seen
        assert r.json()["predictions"] == pytest.approx(_expected(reg_ws, v2, inst))
        rb = c.post("/v1/models/fraud/rollback", headers=bearer(key))
        assert rb.status_code == 200 and rb.json()["to"] == 1
        assert c.post("/v1/models/fraud/predict", json={"instances": inst}, headers=bearer(key)).json()["version"] == 1


@pytest.mark.ray
@pytest.mark.slow
def test_ray_batch_scoring_looks_up_feature_views(reg_ws, tmp_path) -> None:
    # the Ray workers open the workspace to read the online store, as the local engine does
    pytest.importorskip("ray")
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from strataml.serving import score

    insts = [{"tx": f"r{i}", "user_id": f"u{i % 45}", "amount_now": float(10 + 3 * i)} for i in range(300)]  # u40+ unknown
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(insts), src)
    local = score(reg_ws, "fraud", str(src), tmp_path / "l.parquet", id_column="tx")
    remote = score(reg_ws, "fraud", str(src), tmp_path / "r.parquet", id_column="tx", engine="ray")
    assert local["rows"] == remote["rows"] == 300
    a = pq.read_table(tmp_path / "l.parquet").sort_by("row_id")
    b = pq.read_table(tmp_path / "r.parquet").sort_by("row_id")
    assert a.column("row_id").to_pylist() == b.column("row_id").to_pylist()
    by_id = {i["tx"]: i for i in insts}
    expected = _expected(reg_ws, 1, [by_id[r] for r in b.column("row_id").to_pylist()])
    assert np.allclose(b.column("prediction").to_numpy(), expected)
    assert np.allclose(a.column("prediction").to_numpy(), b.column("prediction").to_numpy())
