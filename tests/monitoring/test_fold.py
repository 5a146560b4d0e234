"""Folding the prediction log: only new complete lines, incrementally; on SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import strataml as st
from strataml.monitoring import fold, window_profile
from strataml.monitoring._logread import _sample
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


def test_fold_counts_lines_the_sampled_types_did_not_foresee(workspace: st.Workspace) -> None:
    """A key only a few lines carry, a value of another type, a torn line from a crash and
    multiclass outputs: every whole prediction line is counted in its window."""
    log = prediction_log_dir(workspace.state_dir)
    log.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(400):
        rec = orjson.loads(_line(i, minute=i // 200))
        rec["output"] = {"a": 0.7, "b": 0.3} if i % 4 else {"a": 0.2, "b": 0.8}
        if i == 321:
            rec["features"]["rare"] = "yes"  # one line only
        if i == 322:
            rec["features"]["x"] = "n/a"  # text where the others have numbers
        lines.append(orjson.dumps(rec) + b"\n")
    lines.insert(250, b'{"request_id": "torn", "ts": "2026-01-01T00:01:0\n')  # a crash mid-line
    (log / "predictions-mixed-1.jsonl").write_bytes(b"".join(lines))
    r = fold(workspace)
    assert (r.rows, r.windows) == (400, 2)
    p = window_profile(workspace, "m", 1)
    assert p.rows == 400 and p.columns["plan"].count == 400
    assert p.columns["rare"].to_dict()["counts"]["yes"] == 1
    assert p.prediction is not None and p.prediction.kind == "categorical"
    assert {k: v for k, v in p.prediction.to_dict()["counts"].items() if v} == {"a": 300, "b": 100}


def test_fold_of_uniform_lines_equals_the_raw_values(workspace: st.Workspace) -> None:
    import numpy as np

    log = prediction_log_dir(workspace.state_dir)
    log.mkdir(parents=True, exist_ok=True)
    (log / "predictions-u-1.jsonl").write_bytes(b"".join(_line(i, minute=i % 3) for i in range(600)))
    assert fold(workspace).windows == 3
    p = window_profile(workspace, "m", 1)
    x = np.array([i / 10 for i in range(600)])
    s = p.columns["x"]
    assert s.count == 600 and s.min == 0.0 and s.max == 59.9
    assert abs(s.mean - x.mean()) < 1e-9 and abs(s.std - x.std(ddof=1)) < 1e-9
    assert p.columns["plan"].to_dict()["counts"]["basic"] == 200
    assert p.prediction is not None and p.prediction.count == 600


def test_fold_profiles_a_canary_version_with_inputs_of_its_own(workspace: st.Workspace) -> None:
    """A new version of the same model on a sliver of the traffic, logging an input the
    sampled lines do not carry: the fold profiles that input too."""
    log = prediction_log_dir(workspace.state_dir)
    log.mkdir(parents=True, exist_ok=True)
    lines = [_line(i) for i in range(2000)]
    canary = orjson.loads(_line(2000, version=2))
    canary["features"] = {**canary["features"], "z": 2.5}
    lines.insert(1236, orjson.dumps(canary) + b"\n")
    assert canary not in (_sample(b"".join(lines)) or [])  # the types come from lines without it
    (log / "predictions-canary-1.jsonl").write_bytes(b"".join(lines))
    assert fold(workspace).rows == 2001
    p = window_profile(workspace, "m", 2)
    assert p.rows == 1 and p.columns["z"].count == 1 and p.columns["z"].mean == 2.5


def test_fold_profiles_a_model_on_a_sliver_of_the_traffic(workspace: st.Workspace) -> None:
    """A canary's few lines carry features of their own: the fold profiles them too."""
    log = prediction_log_dir(workspace.state_dir)
    log.mkdir(parents=True, exist_ok=True)
    lines = [_line(i) for i in range(2000)]
    canary = orjson.loads(_line(2000))
    canary.update(model="c", deployment="c", features={"z": 1.5})
    lines.insert(1236, orjson.dumps(canary) + b"\n")
    assert canary not in (_sample(b"".join(lines)) or [])  # the types come from lines without it
    (log / "predictions-canary-1.jsonl").write_bytes(b"".join(lines))
    assert fold(workspace).rows == 2001
    p = window_profile(workspace, "c", 1)
    assert p.rows == 1 and p.columns["z"].count == 1 and p.columns["z"].mean == 1.5
    assert window_profile(workspace, "m", 1).columns["x"].count == 2000
