"""Folding the prediction log: only new complete lines, incrementally; on SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import strataml as st
from strataml.monitoring import fold, window_profile
from strataml.serving import prediction_log_dir


def _line(i: int, minute: int = 0, version: int = 1) -> bytes:
    rec = {"request_id": f"r{i}", "ts": f"2026-01-01T00:{minute:02d}:{i % 60:02d}+00:00", "instance": 0,
           "features": {"x": i / 10, "plan": "pro" if i % 3 else "basic"}, "output": (i % 10) / 10, "latency_ms": 1.0,
           "deployment": "m", "model": "m", "version": version, "key_id": "k", "degraded": False, "mode": "live", "route": "r"}
    return orjson.dumps(rec) + b"\n"


def _check_folds(ws: st.Workspace) -> None:
    log = prediction_log_dir(ws.state_dir)
    log.mkdir(parents=True, exist_ok=True)
    path = log / "predictions-test-1.jsonl"
    lines = b"".join(_line(i) for i in range(3)) + b"".join(_line(i, minute=1) for i in range(3, 6))
    torn = _line(6, minute=1)
    path.write_bytes(lines + torn[:25] + b"\0" * 200)  # a line being written, and the zero-filled tail ahead of it
    r = fold(ws)
    assert (r.rows, r.windows) == (6, 2)
    assert fold(ws).rows == 0  # nothing new
    with open(path, "r+b") as fh:  # the writer finishes the line and adds another, over the zeros
        fh.seek(len(lines))
        fh.write(torn + _line(7, minute=1) + _line(8, version=2))
    assert fold(ws).rows == 3
    p = window_profile(ws, "m", 1)
    assert p.rows == 8 and p.columns["x"].count == 8 and p.columns["plan"].to_dict()["counts"]["basic"] == 3
    assert p.prediction is not None and p.prediction.count == 8
    assert window_profile(ws, "m", 1, start_minute=p_minute(1)).rows == 5
    assert window_profile(ws, "m", 2).rows == 1


def p_minute(minute: int) -> int:
    import datetime as dt

    return int(dt.datetime(2026, 1, 1, 0, minute, tzinfo=dt.UTC).timestamp() // 60)


def test_fold_reads_only_new_complete_lines(workspace: st.Workspace) -> None:
    _check_folds(workspace)


@pytest.fixture
def pg_workspace(postgres_url: str, tmp_path: Path) -> Iterator[st.Workspace]:
    """A workspace whose catalog is a fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"strata_monitor_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    st.Workspace.init(tmp_path / "ws").close()
    ws = st.Workspace.open(tmp_path / "ws", catalog=admin.rsplit("/", 1)[0] + "/" + name)
    try:
        yield ws
    finally:
        ws.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_fold_on_a_postgres_catalog(pg_workspace: st.Workspace) -> None:
    _check_folds(pg_workspace)
