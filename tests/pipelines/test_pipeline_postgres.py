"""The run store, the cache, resume and recovery with the catalog on a real PostgreSQL server."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import strataml as st
from strataml.pipelines import create_run, get_run, recover_runs, resume_run
from strataml.pipelines._tables import pipeline_runs
from strataml.spine import list_events

from .pipeline_ws import counts, pipeline_workspace
from .test_pipeline_runs import WAITING


@pytest.fixture
def pg_catalog(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"strata_pipes_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_runs_cache_resume_and_recovery_on_postgres(
    pg_catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ws"
    monkeypatch.setenv("STRATA_TEST_MARKS", str(root / "marks"))
    ws = pipeline_workspace(root, WAITING, catalog=pg_catalog)
    assert ws.catalog.dialect == "postgresql"

    # many schedulers creating the same run at once: one run
    got: list[tuple[str, bool]] = []
    threads = [
        threading.Thread(target=lambda: got.append(create_run(ws, "p", run_key="tick-7")))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({run_id for run_id, _ in got}) == 1 and sum(created for _, created in got) == 1

    failed = st.run_pipeline(ws, "p")
    assert failed.state == "failed" and failed.step("first").state == "succeeded"
    (root / "marks" / "go").touch()
    resumed = resume_run(ws, failed.id)
    assert resumed.state == "succeeded" and counts(root, "first") == 1
    again = st.run_pipeline(ws, "p")
    assert [s.state for s in again.steps] == ["cached", "cached"]

    # a run whose owner process is gone is failed by the next start
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    run_id, _ = create_run(ws, "p")
    with ws.catalog.write() as conn:
        conn.execute(
            pipeline_runs.update()
            .where(pipeline_runs.c.id == run_id)
            .values(state="running", owner_pid=dead_pid, owner_host=socket.gethostname())
        )
    assert recover_runs(ws) == [run_id]
    assert get_run(ws, run_id).state == "failed"
    failures = [
        e
        for e in list_events(ws.catalog, kind="pipeline.run.failed")
        if e.payload["run_id"] == run_id
    ]
    assert failures[0].payload["reason"] == "owner_died"
    with ws.catalog.read() as conn:
        states = dict(conn.execute(sa.select(pipeline_runs.c.id, pipeline_runs.c.state)).all())
    assert sorted(states.values()) == ["failed", "queued", "succeeded", "succeeded"]
    ws.close()
