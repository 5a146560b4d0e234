"""Helpers for feature-store tests: small sources and labels ingested through the data layer."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import strataml as st
from strataml.data import Column, Contract, ingest

T0 = dt.datetime(2026, 1, 1)


def at(hours: float = 0, minutes: float = 0) -> dt.datetime:
    """A time ``hours`` and ``minutes`` after 2026-01-01 00:00 UTC (naive, as stored)."""
    return T0 + dt.timedelta(hours=hours, minutes=minutes)


TX = Contract(
    "tx",
    key="tx_id",
    timestamp="ts",
    columns=[
        Column("tx_id", "string"),
        Column("user_id", "string"),
        Column("amount", "float", nullable=True),
        Column("merchant", "string", nullable=True),
        Column("ts", "timestamp"),
    ],
)

LABELS = Contract(
    "labels",
    timestamp="ts",
    columns=[Column("user_id", "string", nullable=True), Column("ts", "timestamp", nullable=True), Column("y", "int", nullable=True)],
)


def put(ws: st.Workspace, rows: dict[str, list[object]] | pa.Table, contract: Contract, dataset: str | None = None) -> str:
    """Ingest ``rows`` under ``contract`` into ``dataset``; returns the new version's ref."""
    table = rows if isinstance(rows, pa.Table) else pa.table(rows)
    path = Path(ws.scratch_dir()) / f"in_{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    report = ingest(ws, str(path), contract=contract, dataset=dataset)
    assert report.status == "created", report.to_dict()
    return f"{report.dataset}@{report.version}"


def tx(rows: list[tuple[str, float | None, dt.datetime]], start: int = 0) -> dict[str, list[object]]:
    """Transactions from ``(user, amount, ts)`` tuples (ids numbered from ``start``)."""
    return {
        "tx_id": [f"t{start + i}" for i in range(len(rows))],
        "user_id": [r[0] for r in rows],
        "amount": [r[1] for r in rows],
        "merchant": [f"m{i % 3}" for i in range(len(rows))],
        "ts": [r[2] for r in rows],
    }


def labels(rows: list[tuple[str | None, dt.datetime | None]]) -> dict[str, list[object]]:
    """Label rows from ``(user, t)`` tuples, ``y`` numbering them."""
    return {"user_id": [r[0] for r in rows], "ts": [r[1] for r in rows], "y": list(range(len(rows)))}


USER = st.Entity("user", key="user_id")


@pytest.fixture
def fws(tmp_path: Path) -> Iterator[st.Workspace]:
    """An empty workspace (no example definitions)."""
    ws = st.Workspace.init(tmp_path / "fws", example=False)
    yield ws
    ws.close()
