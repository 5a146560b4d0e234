"""``strata pipelines ...``, and a run killed with SIGKILL: failed on the next start, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from strataml.pipelines import create_run

from .pipeline_ws import counts, pipeline_workspace
from .test_pipeline_runs import BASIC, WAITING


def strata(python: str, env: dict[str, str], *args: str, ok: bool = True) -> Any:
    out = subprocess.run(
        [python, "-m", "strataml", *args], env=env, capture_output=True, text=True, timeout=300
    )
    if ok:
        assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout) if "--json" in args and out.stdout.strip() else out


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **cli_env,
        "STRATA_TEST_MARKS": str(tmp_path / "ws" / "marks"),
        "STRATA_WORKSPACE": str(tmp_path / "ws"),
    }


def test_list_run_runs_show_and_cancel(tmp_path: Path, python: str, env: dict[str, str]) -> None:
    root = tmp_path / "ws"
    pipeline_workspace(root, BASIC).close()
    listed = strata(python, env, "pipelines", "list", "--json")
    assert listed == [
        {
            "name": "basic",
            "steps": ["load", "frame", "total"],
            "params": {"n": 4},
            "where": listed[0]["where"],
        }
    ]
    run = strata(python, env, "pipelines", "run", "basic", "--param", "n=3", "--json")
    assert run["state"] == "succeeded" and run["params"] == {"n": 3}
    assert {s["name"]: s["output"].get("value") for s in run["steps"]}["total"] == 3.0 + 3
    again = strata(python, env, "pipelines", "run", "basic", "--param", "n=3")
    assert "nothing changed" in again.stdout
    runs = strata(python, env, "pipelines", "runs", "basic", "--json")
    assert [r["id"] for r in runs][1] == run["id"] and len(runs) == 2
    shown = strata(python, env, "pipelines", "show", run["id"][:8], "--json")
    assert shown["id"] == run["id"] and {a["step"] for a in shown["attempts"]} == {
        "load",
        "frame",
        "total",
    }
    assert any(line["line"] == "loading 3" for line in shown["logs"])

    ws = pipeline_workspace(root, BASIC)
    queued, _ = create_run(ws, "basic")
    ws.close()
    cancelled = strata(python, env, "pipelines", "cancel", queued, "--json")
    assert cancelled["state"] == "cancelled"
    bad = strata(python, env, "pipelines", "run", "basic", "--param", "nope", ok=False)
    assert bad.returncode != 0 and "KEY=VALUE" in bad.stderr


def test_a_run_killed_with_sigkill_is_failed_on_the_next_start_and_resumes(
    tmp_path: Path, python: str, env: dict[str, str]
) -> None:
    root = tmp_path / "ws"
    pipeline_workspace(root, WAITING).close()
    proc = subprocess.Popen(
        [python, "-m", "strataml", "pipelines", "run", "p"],
        env={**env, "STRATA_TEST_WAIT": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = root / "marks" / "second-started"
    deadline = time.monotonic() + 240
    while not started.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the second step never started"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    runs = strata(python, env, "pipelines", "runs", "--json")
    assert len(runs) == 1
    run = runs[0]
    assert run["state"] == "failed" and "stopped before it finished" in run["error"]
    assert {s["name"]: s["state"] for s in run["steps"]} == {
        "first": "succeeded",
        "second": "failed",
    }

    (root / "marks" / "go").touch()
    resumed = strata(python, env, "pipelines", "resume", run["id"], "--json")
    assert resumed["state"] == "succeeded" and resumed["id"] == run["id"]
    assert {s["name"]: s["output"]["value"] for s in resumed["steps"]} == {"first": 1, "second": 2}
    assert counts(root, "first") == 1  # the completed step did not run again
    shown = strata(python, env, "pipelines", "show", run["id"], "--json")
    assert [
        (a["step"], a["attempt"], a["state"]) for a in shown["attempts"] if a["step"] == "second"
    ] == [
        ("second", 1, "failed"),
        ("second", 2, "succeeded"),
    ]
