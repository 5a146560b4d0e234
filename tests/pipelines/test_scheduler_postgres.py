"""Three ``strata scheduler`` processes on one PostgreSQL catalog, one killed mid-run:
every tick of every schedule still has exactly one run, and none is skipped."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from .scheduler_ws import (
    assert_contiguous,
    assert_one_run_per_tick,
    runs_of,
    scheduler_workspace,
    start_scheduler,
    stop,
    ticks_of,
    wait_until,
)

PIPELINES = ["p0", "p1", "p2"]
BODY = """
@st.step(cache=False)
def work(name="p"):
    import time

    mark(name)
    time.sleep(0.5)


""" + "\n".join(
    f'{p} = st.Pipeline("{p}", [work], params={{"name": "{p}"}}, '
    f'schedule=st.Schedule(every="2s", catchup="all", max_catchup=1000))'
    for p in PIPELINES
)


@pytest.fixture
def catalog_url(postgres_url: str) -> Iterator[str]:
    """A catalog in a schema of its own in the test database, dropped afterwards."""
    schema = f"sched_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_schedulers_run_each_tick_once_when_one_is_killed_mid_run(
    tmp_path: Path, catalog_url: str
) -> None:
    ws = scheduler_workspace(tmp_path / "ws", BODY, catalog=catalog_url)
    procs = [start_scheduler(ws.root, STRATA_CATALOG=catalog_url) for _ in range(3)]
    by_pid = {p.pid: p for p in procs}
    try:

        def running_source_holder() -> int | None:
            with ws.catalog.read() as conn:
                leases = {
                    r[0]: r[1]
                    for r in conn.execute(sa.text("SELECT name, holder FROM scheduler_leases"))
                }
            for p in PIPELINES:
                if not all(
                    sum(t["state"] == "succeeded" for t in ticks_of(ws, q)) >= 2 for q in PIPELINES
                ):
                    return None
                if any(r["state"] == "running" for r in runs_of(ws, p)):
                    holder = leases.get(f"source:{p}:schedule") or ""
                    pid = int(holder.split(":")[1]) if holder.count(":") >= 2 else None
                    if pid in by_pid:
                        return pid
            return None

        pid = wait_until(running_source_holder, "a scheduler to be running a run")
        victim = by_pid[pid]
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(60) == -signal.SIGKILL
        at_kill = {p: {t["id"] for t in ticks_of(ws, p)} for p in PIPELINES}

        def caught_up() -> bool:
            for p in PIPELINES:
                done = {t["id"] for t in ticks_of(ws, p) if t["state"] == "succeeded"}
                if not at_kill[p] <= done or len(done) < len(at_kill[p]) + 2:
                    return False
            return True

        wait_until(
            caught_up, "the survivors to finish the victim's ticks and run more", timeout=240
        )
    finally:
        codes = [stop(p) for p in procs if p.poll() is None]
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0]
    holders = set()
    for p in PIPELINES:
        ticks = assert_one_run_per_tick(ws, p)
        assert_contiguous(ticks, 2.0)
        assert {r["state"] for r in runs_of(ws, p)} <= {"succeeded", "queued"}
        holders |= {t["claimed_by"] for t in ticks}
    assert len({h.split(":")[1] for h in holders}) >= 2  # the work was shared
    assert os.getpid() not in {int(h.split(":")[1]) for h in holders}
    ws.close()
