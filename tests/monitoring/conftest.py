"""Fixtures for monitoring: a workspace with two dataset versions and a trained model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strataml as st

CUSTOMERS = st.Contract("customers", key="id", columns=[
    st.Column("id", "string"), st.Column("tenure", "float"), st.Column("spend", "float", nullable=True),
    st.Column("plan", "string"), st.Column("churned", "int"),
])


def customers(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    """Generated customers; ``shift`` moves spend and the plan mix."""
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 12.0, n)
    spend = rng.normal(50 + shift * 30, 15, n)
    plan = rng.choice(["basic", "plus", "pro"], p=[0.5 - shift * 0.3, 0.3, 0.2 + shift * 0.3], size=n)
    churned = (rng.random(n) < 1 / (1 + np.exp(0.08 * tenure - 1))).astype(np.int64)
    return pa.table({"id": [f"c{seed}_{i}" for i in range(n)], "tenure": tenure, "spend": spend, "plan": plan, "churned": churned})


def put(ws: st.Workspace, table: pa.Table) -> str:
    """Ingest a table as a new version of ``customers``; its ref."""
    path = Path(ws.scratch_dir()) / f"in_{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    report = st.ingest(ws, str(path), contract=CUSTOMERS)
    assert report.status == "created", report
    return f"customers@{report.version}"


@pytest.fixture
def mon_ws(tmp_path: Path) -> Iterator[st.Workspace]:
    """customers@v1 (3000 rows), and churn@v1 trained on it (LightGBM over tenure, spend, plan)."""
    from lightgbm import LGBMClassifier

    ws = st.Workspace.init(tmp_path / "mws", example=False)
    put(ws, customers(3000, 0))
    ws.definitions.add(st.Model("churn", labels="customers", target="churned", columns=["tenure", "spend", "plan"],
                                estimator=LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1)))
    from strataml.models import train

    assert train(ws, "churn").version == 1
    yield ws
    ws.close()
