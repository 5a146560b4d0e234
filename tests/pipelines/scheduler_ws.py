"""Workspaces with scheduled pipelines, and the checks the scheduler's tests share."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import strataml as st
from strataml.pipelines._tables import pipeline_runs, scheduler_ticks

HEADER = '''
from pathlib import Path

import strataml as st

MARKS = Path(__file__).parent / "marks"


def mark(name, text="x"):
    """Record one execution of ``name`` (a line in a file the test reads)."""
    MARKS.mkdir(exist_ok=True)
    with open(MARKS / f"{name}.count", "a") as fh:
        fh.write(f"{text}\\n")
'''

SRC = str(Path(__file__).resolve().parents[2] / "src")


def scheduler_workspace(root: Path, body: str, **overrides: str) -> st.Workspace:
    """A workspace at ``root`` whose definitions.py is the helpers above plus ``body``."""
    st.Workspace.init(root, example=False).close()
    (root / "definitions.py").write_text(HEADER + textwrap.dedent(body))
    return st.Workspace.open(root, **overrides)


def marks(root: Path, name: str) -> list[str]:
    """The lines step code wrote with ``mark(name, text)``."""
    path = root / "marks" / f"{name}.count"
    return path.read_text().splitlines() if path.exists() else []


def ticks_of(ws: st.Workspace, pipeline: str) -> list[dict[str, Any]]:
    """The tick rows of ``pipeline``, oldest first."""
    t = scheduler_ticks
    with ws.catalog.read() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.pipeline == pipeline).order_by(t.c.due_at, t.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def runs_of(ws: st.Workspace, pipeline: str) -> list[dict[str, Any]]:
    """The run rows of ``pipeline``."""
    t = pipeline_runs
    with ws.catalog.read() as conn:
        return [
            dict(r) for r in conn.execute(sa.select(t).where(t.c.pipeline == pipeline)).mappings()
        ]


def assert_one_run_per_tick(ws: st.Workspace, pipeline: str) -> list[dict[str, Any]]:
    """Every tick that is not skipped has exactly one run, and every run has its tick."""
    ticks = [t for t in ticks_of(ws, pipeline) if t["state"] != "skipped"]
    runs = runs_of(ws, pipeline)
    run_ids = [t["run_id"] for t in ticks]
    assert None not in run_ids, [t for t in ticks if t["run_id"] is None]
    assert len(set(run_ids)) == len(run_ids)
    by_id = {r["id"]: r for r in runs}
    assert set(by_id) == set(run_ids), (len(by_id), len(run_ids))
    for t in ticks:
        assert by_id[t["run_id"]]["run_key"] == t["run_key"]
    keys = [(t["source"], t["tick_key"]) for t in ticks]
    assert len(set(keys)) == len(keys)
    return ticks


def assert_contiguous(ticks: list[dict[str, Any]], seconds: float) -> None:
    """The schedule's ticks follow each other at ``seconds`` with none missing."""
    due = sorted({_aware(t["due_at"]) for t in ticks})
    assert len(due) == len(ticks)
    for a, b in itertools.pairwise(due):
        assert (b - a).total_seconds() == seconds, (a, b)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def wait_until(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``check`` until it returns something true (fail after ``timeout`` seconds)."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def env_for(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a scheduler process for the workspace at ``root``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STRATA_") or k == "STRATA_REQUIRE_SERVERS"
    }
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["STRATA_WORKSPACE"] = str(root)
    env.update(extra)
    return env


def start_scheduler(root: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """``strata scheduler`` on the workspace at ``root`` (its log in ``root/scheduler-N.log``)."""
    n = len(list(root.glob("scheduler-*.log")))
    log = open(root / f"scheduler-{n}.log", "wb")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        [sys.executable, "-m", "strataml", "scheduler", "--poll", "0.1", "--lease", "3", *args],
        env=env_for(root, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 120.0) -> int:
    """SIGTERM a scheduler and wait for it; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)
