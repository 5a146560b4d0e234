"""A workspace with a real registry model over a feature view and a request feature."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import strataml as st
from strataml.data import Column, Contract, ingest

TX = Contract("tx", key="tx_id", timestamp="ts", columns=[
    Column("tx_id", "string"), Column("user_id", "string"), Column("amount", "float"), Column("ts", "timestamp"),
])
LABELS = Contract("labels", timestamp="ts", columns=[
    Column("user_id", "string"), Column("ts", "timestamp"), Column("amount_now", "float"), Column("is_fraud", "int"),
])
USER = st.Entity("user", key="user_id")
#: the data's first day: recent, so the online store's values are within the view's ttl (the usual case)
T0 = dt.datetime.combine(dt.date.today() - dt.timedelta(days=25), dt.time())
#: the time of the data's last transactions
T_END = T0 + dt.timedelta(days=20)

SPEND = st.FeatureView("user_spend", entity=USER, source="tx", ttl="30d", features=[
    st.Feature("spend_7d", agg="sum", column="amount", window="7d"),
    st.Feature("tx_count_7d", agg="count", window="7d"),
])
REQUEST = st.FeatureView("request", features=[st.RequestFeature("amount_log", expr="ln(1 + amount_now)", fields={"amount_now": "float"})])


def _put(ws: st.Workspace, table: pa.Table, contract: Contract) -> None:
    path = Path(ws.scratch_dir()) / f"in_{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    assert ingest(ws, str(path), contract=contract).status == "created"


def build(ws: st.Workspace, users: int = 40, seed: int = 0) -> None:
    """Ingest transactions and labels, declare the views and the model, materialise, train v1 (champion)."""
    from lightgbm import LGBMClassifier

    from strataml.features import apply, materialize
    from strataml.models import train

    rng = np.random.default_rng(seed)
    t0 = T0
    n = users * 20
    uid = [f"u{i % users}" for i in range(n)]
    amount = rng.gamma(2.0, 20.0, n) * np.array([1 + (i % users) / users for i in range(n)])
    ts = [t0 + dt.timedelta(hours=int(h)) for h in np.sort(rng.integers(0, 24 * 20, n))]
    _put(ws, pa.table({"tx_id": [f"t{i}" for i in range(n)], "user_id": uid, "amount": amount, "ts": pa.array(ts, pa.timestamp("us"))}), TX)
    m = 1200
    luid = [f"u{int(i)}" for i in rng.integers(0, users, m)]
    lts = [t0 + dt.timedelta(hours=int(h)) for h in np.sort(rng.integers(24 * 5, 24 * 20, m))]
    now = rng.gamma(2.0, 30.0, m)
    fraud = ((now > 70) ^ (rng.random(m) < 0.1)).astype(np.int64)
    _put(ws, pa.table({"user_id": luid, "ts": pa.array(lts, pa.timestamp("us")), "amount_now": now, "is_fraud": fraud}), LABELS)
    ws.definitions.add(SPEND)
    ws.definitions.add(REQUEST)
    apply(ws)
    materialize(ws, ["user_spend"])
    for seed_, name in ((0, "fraud"),):
        ws.definitions.add(st.Model(name, labels="labels", target="is_fraud", features=["user_spend", "request"],
                                    estimator=LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, random_state=seed_)))
    result = train(ws, "fraud")
    assert result.version == 1, result


def train_again(ws: st.Workspace, trees: int) -> int:
    """Register another version (challenger) with a different estimator."""
    from lightgbm import LGBMClassifier

    from strataml.models import train

    ws.definitions.add(st.Model("fraud", labels="labels", target="is_fraud", features=["user_spend", "request"],
                                estimator=LGBMClassifier(n_estimators=trees, num_leaves=7, verbose=-1)))
    r = train(ws, "fraud", promote=False)
    assert r.version is not None, r
    return int(r.version)


def unknown_entities(ws: st.Workspace, instances: list[dict]) -> list[dict]:
    """What an answer's ``missing_features`` should be: the instances whose user the online
    store holds no values for (its values expire with the view's ttl), with its features."""
    from strataml.features import ViewReader

    found = ViewReader(ws, "user_spend").read([{"user_id": i["user_id"]} for i in instances])
    return [{"instance": i, "features": ["spend_7d", "tx_count_7d"]} for i, got in enumerate(found) if got is None]
