"""Training on feature views: point-in-time training set, lineage to view and source versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lightgbm import LGBMClassifier

import strataml as st
from strataml.models import get_model, load_model, model_lineage

TXC = st.Contract("txs", key="tx_id", timestamp="ts", columns=[
    st.Column("tx_id", "string"), st.Column("user_id", "string"), st.Column("amount", "float"), st.Column("ts", "timestamp"),
])
LABELS = st.Contract("fraud_labels", key="label_id", timestamp="ts", columns=[
    st.Column("label_id", "string"), st.Column("user_id", "string"), st.Column("ts", "timestamp"), st.Column("is_fraud", "int"),
])
USER = st.Entity("user", key="user_id")
SPEND = st.FeatureView("user_spend", entity=USER, source="txs", ttl="30d", features=[
    st.Feature("spend_7d", agg="sum", column="amount", window="7d"),
    st.Feature("tx_count_7d", agg="count", window="7d"),
    st.Feature("max_amount_7d", agg="max", column="amount", window="7d"),
])


def _ingest(ws: st.Workspace, tmp: Path, table: pa.Table, contract: st.Contract, name: str) -> None:
    pq.write_table(table, tmp / f"{name}.parquet")
    assert st.ingest(ws, str(tmp / f"{name}.parquet"), contract=contract).version is not None


@pytest.fixture
def fraud_ws(workspace: st.Workspace, tmp_path: Path) -> st.Workspace:
    """Risky users spend more; labels mark a risky user's later activity as fraud (with noise)."""
    rng = np.random.default_rng(1)
    users = np.array([f"u{i}" for i in range(200)])
    risky = rng.random(200) < 0.3
    n = 6000
    u = rng.integers(0, 200, n)
    amount = rng.lognormal(3 + 1.2 * risky[u], 0.5)
    t0 = np.datetime64(dt.datetime(2026, 1, 1), "s")
    ts = t0 + np.sort(rng.integers(0, 60 * 86400, n)).astype("timedelta64[s]")
    _ingest(workspace, tmp_path, pa.table({"tx_id": [f"t{i}" for i in range(n)], "user_id": users[u], "amount": amount,
                                            "ts": pa.array(ts, pa.timestamp("s"))}), TXC, "txs")
    m = 2000
    lu = rng.integers(0, 200, m)
    lts = t0 + np.sort(rng.integers(10 * 86400, 60 * 86400, m)).astype("timedelta64[s]")
    y = np.where(rng.random(m) < 0.9, risky[lu], ~risky[lu]).astype(np.int64)
    _ingest(workspace, tmp_path, pa.table({"label_id": [f"l{i}" for i in range(m)], "user_id": users[lu],
                                            "ts": pa.array(lts, pa.timestamp("s")), "is_fraud": y}), LABELS, "fraud_labels")
    workspace.definitions.add(SPEND)
    return workspace


def test_model_on_feature_views(fraud_ws: st.Workspace) -> None:
    m = st.Model("fraud", features=["user_spend"], labels="fraud_labels", target="is_fraud",
                 estimator=LGBMClassifier(n_estimators=30, n_jobs=1), metrics=["roc_auc"],
                 gate=st.Gate(min={"roc_auc": 0.75}))
    r = st.train(fraud_ws, m)
    assert r.version == 1, r.gate
    lm = load_model(fraud_ws, "fraud")
    assert lm.feature_views == ["user_spend"]
    assert [i["name"] for i in lm.signature["inputs"]] == ["spend_7d", "tx_count_7d", "max_amount_7d"]
    p = lm.predict(pa.table({"spend_7d": [10.0, 900.0], "tx_count_7d": [1, 12], "max_amount_7d": [10.0, 200.0]}))
    assert p.shape == (2,) and p[1] > p[0]
    lin = get_model(fraud_ws, "fraud")["versions"][0]["lineage"]
    assert lin["training_set"] and lin["training_set"].startswith("training_set_")
    assert set(lin["views"]) == {"user_spend"} and lin["labels"] == "fraud_labels@v1"
    assert lin["datasets"][:2] == ["fraud_labels@v1", "txs@v1"]
    full = model_lineage(fraud_ws, "fraud")
    assert full["feature_views"] == lin["views"]
    assert [d["ref"].split("@")[0] for d in full["datasets"]][:2] == ["fraud_labels", "txs"]
    # the same definitions and seed reproduce the same bytes through the feature store
    assert st.train(fraud_ws, m).sha256 == r.sha256
