"""Fixtures for the models layer: a workspace holding a labelled dataset."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strataml as st

LOANS = st.Contract(
    "loans",
    key="loan_id",
    timestamp="ts",
    columns=[
        st.Column("loan_id", "string", unique=True),
        st.Column("ts", "timestamp"),
        st.Column("amount", "float", min=0),
        st.Column("age", "int"),
        st.Column("income", "float", nullable=True),
        st.Column("country", "string"),
        st.Column("defaulted", "int"),
        st.Column("grade", "string"),
        st.Column("loss", "float"),
    ],
)


def loans_table(n: int, seed: int = 0) -> pa.Table:
    """Synthetic loans whose default depends on amount, age, income and country."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(8, 0.6, n)
    age = rng.integers(18, 80, n)
    income = rng.lognormal(10, 0.5, n)
    income_col = pa.array(np.where(rng.random(n) < 0.02, np.nan, income), pa.float64(), from_pandas=True)
    country = rng.choice(["US", "DE", "FR", "GB"], n)
    logit = 0.9 * np.log(amount / 3000) - 0.03 * (age - 45) - 0.8 * np.log(income / 22000) + (country == "FR") * 0.7
    p = 1 / (1 + np.exp(-(logit - 1.2)))
    defaulted = (rng.random(n) < p).astype(np.int64)
    grade = np.where(logit < -0.5, "A", np.where(logit < 0.8, "B", "C"))
    loss = np.where(defaulted == 1, amount * rng.uniform(0.2, 0.9, n), 0.0) + rng.normal(0, 10, n)
    start = np.datetime64(dt.datetime(2026, 1, 1), "s")
    ts = start + np.sort(rng.integers(0, 90 * 86400, n)).astype("timedelta64[s]")
    return pa.table({
        "loan_id": pa.array([f"L{i:07d}" for i in range(n)]),
        "ts": pa.array(ts, pa.timestamp("s")),
        "amount": amount,
        "age": age,
        "income": income_col,
        "country": country,
        "defaulted": defaulted,
        "grade": grade,
        "loss": loss,
    })


def ingest_loans(ws: st.Workspace, path: Path, n: int = 4000, seed: int = 0) -> str:
    """Write and ingest synthetic loans; returns the dataset version reference."""
    pq.write_table(loans_table(n, seed), path)
    report = st.ingest(ws, str(path), contract=LOANS)
    assert report.version is not None
    return f"loans@{report.version}"


@pytest.fixture
def loans_ws(workspace: st.Workspace, tmp_path: Path) -> Iterator[st.Workspace]:
    """A workspace whose 'loans' dataset holds 4,000 labelled rows."""
    ingest_loans(workspace, tmp_path / "loans.parquet")
    yield workspace


def register_bytes(ws: st.Workspace, model: str, payload: bytes, fmt: str, signature: dict[str, object]) -> int:
    """Store ``payload`` under its own (valid) hash and register it as a version of ``model``:
    what an attacker with write access to the store and catalog could plant."""
    from strataml.models._registry import register_version

    sha = ws.artifacts.put_bytes(payload)
    with ws.catalog.write() as conn:
        return int(register_version(conn, model, run_id=None, sha256=sha, fmt=fmt, signature=signature,
                                    metrics={}, params={}, lineage={}, feature_views=[], trusted_types=[]))
