"""A model version's reference profile, and drift of its live traffic through the real gateway."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

import strataml as st
from strataml.models import load_model
from strataml.monitoring import drift, fold, profile, window_profile
from strataml.serving import GatewayConfig, create_app, create_key

from .conftest import customers


def _send(ws: st.Workspace, table: pa.Table, batch: int = 50) -> None:
    key = create_key(ws.catalog, ["predict:churn"])[1]
    rows = table.select(["tenure", "spend", "plan"]).to_pylist()
    app = create_app(ws, None, GatewayConfig(ratelimit_url="memory://"))
    with TestClient(app) as c:
        for i in range(0, len(rows), batch):
            r = c.post("/v1/models/churn/predict", json={"instances": rows[i : i + batch]}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text


def test_model_reference_profile_keeps_training_inputs_and_heldout_predictions(mon_ws: st.Workspace) -> None:
    p = profile(mon_ws, "churn@1")
    assert p.kind == "model" and set(p.columns) == {"tenure", "spend", "plan"}
    assert p.rows == 2400  # the 80% training split of 3000 rows
    held = p.heldout
    assert held is not None and held.num_rows == 600
    assert held.column_names == ["prediction", "label"] and held.schema.field("prediction").type == pa.float64()
    loaded = load_model(mon_ws, "churn", 1)
    labels = held["label"].to_numpy()
    assert set(np.unique(labels)) <= {0.0, 1.0}
    preds = held["prediction"].to_numpy()
    assert ((preds >= 0) & (preds <= 1)).all()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels, preds) == pytest.approx(loaded.metrics["roc_auc"], abs=1e-9)  # the same held-out rows
    assert p.prediction is not None and p.prediction.count == 600
    assert profile(mon_ws, "churn@champion").sha256 == p.sha256


def test_live_drift_through_the_gateway_and_incremental_folds(mon_ws: st.Workspace) -> None:
    _send(mon_ws, customers(600, 11))  # like training
    same = drift(mon_ws, "churn").to_dict()
    assert same["reference"] == "churn@v1" and same["rows"]["current"] == 600
    assert set(same["features"]) == {"tenure", "spend", "plan"} and not same["drifted"]
    assert same["prediction"]["test"] == "ks" and not same["prediction"]["drifted"]
    assert fold(mon_ws).rows == 0  # nothing new since the check folded the log
    _send(mon_ws, customers(1200, 12, shift=1.5))
    assert fold(mon_ws).rows == 1200
    whole = window_profile(mon_ws, "churn", 1)
    assert whole.rows == 1800 and whole.columns["spend"].count == 1800
    shifted = drift(mon_ws, "churn@1", deployment="churn", since="1h").to_dict()
    assert shifted["rows"]["current"] == 1800 and shifted["features"]["spend"]["drifted"] and shifted["features"]["plan"]["drifted"]
    assert shifted["drifted"] is True and "since 1h" in shifted["current"]
    empty = drift(mon_ws, "churn", deployment="elsewhere").to_dict()
    assert empty["drift_share"] == "insufficient_data" and empty["drifted"] is False
    assert all(f["reason"] == "insufficient_data" and f["statistic"] is None for f in empty["features"].values())
