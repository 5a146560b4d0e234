"""The loop's state machine on a PostgreSQL catalog: the same steps, and two processes
advancing one loop at once make each step once."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import strataml as st
from strataml.models import get_model
from strataml.pipelines import Canary, Check, advance, get_loop, start_canary
from strataml.serving import get_traffic
from strataml.spine import list_events

from .loop_setup import churn, customers, put, rows, serve


@pytest.fixture
def pg_ws(postgres_url: str, tmp_path: Path) -> Iterator[st.Workspace]:
    import psycopg

    from strataml.models import train

    name = f"strata_loop_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    st.Workspace.init(tmp_path / "ws", example=False).close()
    ws = st.Workspace.open(tmp_path / "ws", catalog=admin.rsplit("/", 1)[0] + "/" + name)
    try:
        put(ws, customers(1500, 0))
        ws.definitions.add(churn(10))
        assert train(ws, "churn").version == 1
        ws.definitions.add(churn(25))
        assert train(ws, "churn", promote=False).version == 2
        yield ws
    finally:
        ws.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_loop_on_postgres_steps_once_under_concurrent_advances(pg_ws: st.Workspace) -> None:
    ws = pg_ws
    assert ws.catalog.dialect == "postgresql"
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(
            weight=0.5,
            watch="2s",
            interval="1s",
            bake="0s",
            promote_if=[Check("error_rate", min_requests=10)],
            rollback_if=[],
        ),
    )
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is not None and t.canary.ref == "v2"
    serve(ws, rows(60, 3))
    when = run.started_at + dt.timedelta(seconds=1)
    barrier = threading.Barrier(4)

    def tick() -> None:
        barrier.wait()
        advance(ws, run.id, now=when)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    after = get_loop(ws, run.id)
    assert len(after.rounds) == 1 and after.generation == run.generation + 1
    assert [e.kind for e in list_events(ws.catalog, subject=f"loop:{run.id}")].count(
        "loop.canary.checked"
    ) == 1
    done = advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=2))
    assert done.state == "promoted" and get_model(ws, "churn")["aliases"]["champion"] == 2
    t = get_traffic(ws.catalog, "churn")
    assert t is not None and t.canary is None
