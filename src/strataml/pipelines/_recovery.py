"""Who owns a running run, and what happens when that process is gone.

A run being executed records its owner (host, pid and the process's start time, since
pids are reused) and a heartbeat. :func:`recover_runs` marks every ``running`` run whose
owner is dead as ``failed``, so a run killed with SIGKILL (or lost with its machine) is
visible as such on the next start and can be resumed. :func:`cancel_run` stops a run: a
queued one at once, a running one by asking its owner, which ends the running attempts.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from strataml.errors import StrataError
from strataml.pipelines._runs import FINISHED, PipelineRun, get_run
from strataml.pipelines._tables import pipeline_attempts, pipeline_runs, pipeline_steps
from strataml.spine import append_event, process_alive, process_start_time, utcnow

if TYPE_CHECKING:
    from strataml.spine import Workspace

#: seconds between heartbeats of a running run
HEARTBEAT = 2.0
#: a run on another host whose heartbeat is older than this is presumed dead
STALE = 60.0


def owner() -> dict[str, Any]:
    """This process as a run's owner."""
    return {
        "owner_host": socket.gethostname(),
        "owner_pid": os.getpid(),
        "owner_start": process_start_time(os.getpid()),
    }


def owner_alive(row: Any) -> bool:
    """Whether the process recorded as a run's owner is still running."""
    if row["owner_pid"] is None:
        return False
    if row["owner_host"] != socket.gethostname():
        beat = row["heartbeat_at"]
        if beat is None:
            return False
        return bool((utcnow() - beat).total_seconds() < STALE)
    return process_alive(int(row["owner_pid"]), row["owner_start"])


def finish_run(
    conn: sa.Connection, run: Any, state: str, error: str | None, **details: Any
) -> None:
    """Move a run to a final state and append its event (inside the caller's transaction)."""
    t = pipeline_runs
    conn.execute(
        t.update()
        .where(t.c.id == run["id"])
        .values(
            state=state,
            finished_at=utcnow(),
            error=error,
            owner_pid=None,
            owner_host=None,
            owner_start=None,
        )
    )
    payload = {"run_id": run["id"], "run_key": run["run_key"], "error": error, **details}
    append_event(conn, f"pipeline.run.{state}", run["pipeline"], payload)


def _interrupt_steps(conn: sa.Connection, run_id: str, state: str, error: str) -> None:
    s, a = pipeline_steps, pipeline_attempts
    now = utcnow()
    conn.execute(
        s.update()
        .where(s.c.run_id == run_id, s.c.state == "running")
        .values(state=state, finished_at=now, error=error)
    )
    conn.execute(
        a.update()
        .where(a.c.run_id == run_id, a.c.state == "running")
        .values(state=state, finished_at=now, error=error)
    )


def recover_runs(workspace: Workspace) -> list[str]:
    """Mark every running run whose owner process is gone as failed; returns their ids."""
    t = pipeline_runs
    with workspace.catalog.read() as conn:
        rows = conn.execute(sa.select(t).where(t.c.state == "running")).mappings().all()
    dead = [r for r in rows if not owner_alive(r)]
    recovered = []
    for r in dead:
        where = (
            f"{r['owner_host']} pid {r['owner_pid']}"
            if r["owner_pid"] is not None
            else "no process"
        )
        error = f"the process running it ({where}) stopped before it finished; resume it with 'strata pipelines resume {r['id']}'"
        with workspace.catalog.write() as conn:
            state = conn.execute(sa.select(t.c.state).where(t.c.id == r["id"])).scalar()
            if state != "running":
                continue
            _interrupt_steps(conn, r["id"], "failed", "interrupted: the run's process stopped")
            finish_run(conn, r, "failed", error, reason="owner_died")
        recovered.append(r["id"])
    return recovered


def cancel_run(workspace: Workspace, run_id: str, *, wait: float = 0.0) -> PipelineRun:
    """Cancel a run: a queued or failed run at once; a running one by asking its owner,
    which kills the running attempts (``wait`` seconds for it to finish doing so)."""
    run = get_run(workspace, run_id)
    t = pipeline_runs
    if run.state in FINISHED and run.state != "failed":
        raise StrataError(
            f"run {run.id} already {run.state}",
            hint="only a queued, running or failed run can be cancelled",
        )
    with workspace.catalog.write() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == run.id)).mappings().one()
        if row["state"] == "running" and owner_alive(row):
            conn.execute(t.update().where(t.c.id == run.id).values(cancel_requested=True))
            append_event(
                conn,
                "pipeline.run.cancel_requested",
                row["pipeline"],
                {"run_id": run.id, "run_key": row["run_key"]},
            )
        elif row["state"] in ("queued", "running", "failed"):
            _interrupt_steps(conn, run.id, "cancelled", "cancelled")
            finish_run(conn, row, "cancelled", "cancelled")
    if wait > 0:
        done = threading.Event()
        deadline = utcnow() + dt.timedelta(seconds=wait)
        while utcnow() < deadline and not done.wait(0.2):
            if get_run(workspace, run.id).finished:
                break
    return get_run(workspace, run.id)


class Heartbeat:
    """A thread that refreshes a run's heartbeat and notices a requested cancel."""

    def __init__(self, workspace: Workspace, run_id: str, cancelled: threading.Event) -> None:
        self.workspace, self.run_id, self.cancelled = workspace, run_id, cancelled
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"strata-heartbeat-{run_id[:8]}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        t = pipeline_runs
        while not self._stop.wait(HEARTBEAT):
            try:
                with self.workspace.catalog.write() as conn:
                    conn.execute(
                        t.update().where(t.c.id == self.run_id).values(heartbeat_at=utcnow())
                    )
                    wanted = conn.execute(
                        sa.select(t.c.cancel_requested).where(t.c.id == self.run_id)
                    ).scalar()
                if wanted:
                    self.cancelled.set()
            except StrataError:  # the catalog is briefly unavailable; the next beat retries
                continue
