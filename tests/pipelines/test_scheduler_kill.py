"""``strata scheduler`` killed with SIGKILL at each state transition and restarted: every
tick still has exactly one run, none is skipped, and the interrupted ones finish."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

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

BODY = """
@st.step
def work():
    mark("work")


tick = st.Pipeline("tick", [work], schedule=st.Schedule(every="1s", catchup="all", max_catchup=1000))
"""

POINTS = [
    pytest.param("scheduler.claimed", id="claimed"),
    pytest.param("scheduler.run_created", id="run-created", marks=pytest.mark.slow),
    pytest.param("scheduler.run_started", id="run-started", marks=pytest.mark.slow),
    pytest.param("scheduler.cursor_committed", id="cursor-committed", marks=pytest.mark.slow),
]


def _restart_and_check(root: Path, at_kill: list[dict[str, object]]) -> None:
    from strataml import Workspace

    ws = Workspace.open(root)
    proc = start_scheduler(root)
    try:
        ids = {t["id"] for t in at_kill}

        def caught_up() -> bool:
            ticks = ticks_of(ws, "tick")
            done = {t["id"] for t in ticks if t["state"] == "succeeded"}
            return ids <= done and len(done) >= len(ids) + 2

        wait_until(caught_up, "the interrupted ticks to finish and two more")
    finally:
        assert stop(proc) == 0
    ticks = assert_one_run_per_tick(ws, "tick")
    assert_contiguous(ticks, 1.0)
    # nothing failed; a run is only left queued when the scheduler stopped before starting it
    assert {r["state"] for r in runs_of(ws, "tick")} <= {"succeeded", "queued"}
    ws.close()


@pytest.mark.parametrize("point", POINTS)
def test_killed_at_a_transition_and_restarted_runs_each_tick_once(
    tmp_path: Path, point: str
) -> None:
    ws = scheduler_workspace(tmp_path / "ws", BODY)
    proc = start_scheduler(ws.root, STRATA_FAILPOINT=point)
    assert proc.wait(120) == -signal.SIGKILL  # it killed itself at the failpoint
    at_kill = ticks_of(ws, "tick")
    assert at_kill and all(t["state"] in ("claimed", "created", "started") for t in at_kill[-1:])
    ws.close()
    _restart_and_check(ws.root, at_kill)


@pytest.mark.slow
def test_killed_from_outside_while_a_run_executes(tmp_path: Path) -> None:
    ws = scheduler_workspace(
        tmp_path / "ws",
        BODY.replace('    mark("work")', '    mark("work")\n    import time\n    time.sleep(2)'),
    )
    proc = start_scheduler(ws.root)
    try:
        wait_until(
            lambda: any(r["state"] == "running" for r in runs_of(ws, "tick")), "a run to execute"
        )
    finally:
        proc.kill()
        proc.wait(60)
    at_kill = ticks_of(ws, "tick")
    assert any(
        r["state"] == "running" for r in runs_of(ws, "tick")
    )  # left behind by the killed process
    ws.close()
    _restart_and_check(ws.root, at_kill)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["scheduler.claimed", "scheduler.cursor_committed"])
def test_queue_messages_start_one_run_each_when_killed_before_the_acknowledgement(
    tmp_path: Path, point: str
) -> None:
    import asyncio

    from strataml.spine import Outgoing, open_queue

    url = f"sqlite:///{tmp_path}/queue.db"
    ws = scheduler_workspace(
        tmp_path / "ws",
        f"""
        @st.step
        def handle(n=0):
            return n


        queued = st.Pipeline("queued", [handle], params={{"n": 0}}, triggers=[st.on_queue("jobs", url={url!r})])
        """,
    )

    async def publish() -> None:
        q = open_queue(url)
        await q.publish_many(
            "jobs", [Outgoing(b'{"params": {"n": %d}}' % i, id=f"job-{i}") for i in range(3)]
        )
        await q.close()

    asyncio.run(publish())
    proc = start_scheduler(ws.root, STRATA_FAILPOINT=point)
    assert proc.wait(120) == -signal.SIGKILL
    assert len(ticks_of(ws, "queued")) == 3  # recorded, not acknowledged
    proc = start_scheduler(ws.root)
    try:
        # the messages come back when their lease lapses; their ticks are found, not made again
        wait_until(
            lambda: (
                sum(t["state"] == "succeeded" for t in ticks_of(ws, "queued")) == 3
                and "redelivered" in (ws.root / "scheduler-1.log").read_text()
            ),
            "the runs to finish and the messages to come back",
        )
    finally:
        assert stop(proc) == 0
    ticks = assert_one_run_per_tick(ws, "queued")
    assert sorted(t["trigger"]["message_id"] for t in ticks) == ["job-0", "job-1", "job-2"]
