"""The loop under faults: a process killed mid-step (SIGKILL) leaves the traffic at the
champion alone or the champion plus the canary at its weight, never anything else, and
the next step resumes the watch; a gateway killed mid-canary changes nothing either."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import strataml as st
from strataml.models import get_model
from strataml.pipelines import (
    Canary,
    Check,
    advance,
    advance_loops,
    get_loop,
    list_loops,
    start_canary,
)
from strataml.serving import create_key, get_traffic

from .loop_setup import build_template, copy_of, rows

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import datetime as dt, sys
from strataml.spine import Workspace
from strataml.pipelines import advance, get_loop, start_canary, Canary, Check
ws = Workspace.open(sys.argv[1])
if sys.argv[2] == "start":
    start_canary(ws, "churn", 2, Canary(weight=0.25, watch="2s", interval="1s", bake="0s"))
else:
    run = get_loop(ws, sys.argv[2])
    advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=float(sys.argv[3])))
"""

CHURNER = """
import datetime as dt, sys
from strataml.spine import Workspace
from strataml.models import resolve_version
from strataml.pipelines import advance_loops, start_canary, Canary, Check
ws = Workspace.open(sys.argv[1])
spec = Canary(weight=0.3, watch="2s", interval="1s", max_watch="2s", bake="0s", promote_if=[Check("error_rate", min_requests=1)], rollback_if=[])
far = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
i = 0
print("ready", flush=True)
while True:
    champion = resolve_version(ws, "churn", "champion")
    start_canary(ws, "churn", 2 if champion != 2 else 1, spec)
    advance_loops(ws, now=far + dt.timedelta(minutes=i))
    i += 1
"""


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("loopf") / "tpl")


@pytest.fixture
def ws(template: Path, tmp_path: Path) -> Iterator[st.Workspace]:
    w = copy_of(template, tmp_path / "ws")
    yield w
    w.close()


def _env(failpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    if failpoint:
        env["STRATA_FAILPOINT"] = failpoint
    return env


def _child(ws: st.Workspace, *args: str, failpoint: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ws.root), *args],
        env=_env(failpoint),
        capture_output=True,
        text=True,
        timeout=180,
    )
    return out.returncode


def _valid_split(ws: st.Workspace) -> str:
    """Which of the two valid states the catalog holds (the test fails on any other)."""
    t = get_traffic(ws.catalog, "churn")
    live = list_loops(ws, active=True)
    canaries = [r for r in live if r.state in ("canary", "approval")]
    if t is None or t.canary is None:
        assert not canaries, f"a live canary {canaries} but no canary traffic"
        return "champion"
    assert len(canaries) == 1, f"canary traffic {t.canary} without exactly one live canary ({live})"
    run = canaries[0]
    assert (t.canary.ref, t.canary.weight) == (f"v{run.canary_version}", run.canary.weight)
    assert t.champion == "champion"
    return "champion+canary"


def _serve_a_little(ws: st.Workspace) -> None:
    from .loop_setup import serve

    serve(ws, rows(40, 11))


def test_killed_while_promoting_the_split_is_unchanged_and_the_next_step_promotes(
    ws: st.Workspace,
) -> None:
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(
            weight=0.25,
            watch="2s",
            interval="1s",
            bake="0s",
            promote_if=[Check("error_rate", min_requests=5)],
            rollback_if=[],
        ),
    )
    _serve_a_little(ws)
    assert _child(ws, run.id, "2", failpoint="loop.promote") == -signal.SIGKILL
    assert _valid_split(ws) == "champion+canary"
    assert get_model(ws, "churn")["aliases"] == {"champion": 1, "challenger": 2}
    assert get_loop(ws, run.id).generation == run.generation  # the step left nothing behind
    done = advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=2))
    assert done.state == "promoted" and _valid_split(ws) == "champion"
    assert get_model(ws, "churn")["aliases"]["champion"] == 2


def test_killed_while_rolling_back_or_starting(ws: st.Workspace) -> None:
    assert _child(ws, "start", failpoint="loop.canary.start") == -signal.SIGKILL
    assert _valid_split(ws) == "champion" and list_loops(ws) == []
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(
            weight=0.25,
            watch="2s",
            interval="1s",
            max_watch="2s",
            bake="0s",
            promote_if=[Check("error_rate", min_requests=10_000)],
            rollback_if=[],
        ),
    )
    assert _child(ws, run.id, "2", failpoint="loop.rollback") == -signal.SIGKILL
    assert _valid_split(ws) == "champion+canary"
    out = advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=2))
    assert out.state == "rolled_back" and _valid_split(ws) == "champion"


@pytest.mark.slow
def test_a_scheduler_killed_at_any_moment_leaves_a_valid_split_and_resumes(
    ws: st.Workspace,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHURNER, str(ws.root)], env=_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for pause in (1.0, 0.7, 1.3):  # kill it three times, mid-whatever it was doing
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(list_loops(ws, limit=1000)) < 2:
                time.sleep(0.1)
            time.sleep(pause)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            _valid_split(ws)
            proc = subprocess.Popen(
                [sys.executable, "-c", CHURNER, str(ws.root)],
                env=_env(),
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()
        proc.wait(30)
    state = _valid_split(ws)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    advance_loops(ws, now=later)  # the next tick resumes whatever was live, and ends it
    assert list_loops(ws, active=True) == [] and _valid_split(ws) == "champion"
    ended = list_loops(ws, limit=1000)
    assert len(ended) >= 3 and {r.state for r in ended} <= {"rolled_back", "superseded", "promoted"}
    assert state in ("champion", "champion+canary")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gateway(ws: st.Workspace, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "strataml",
            "serve",
            "-w",
            str(ws.root),
            "--port",
            str(port),
            "--rate",
            "0",
            "-m",
            "churn",
            "--timeout-ms",
            "60000",
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the gateway did not start")


@pytest.mark.slow
def test_a_gateway_killed_mid_canary_leaves_the_split_and_its_answers_count(
    ws: st.Workspace,
) -> None:
    key = create_key(ws.catalog, ["predict:churn"])[1]
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(
            weight=0.5,
            watch="2s",
            interval="1s",
            bake="0s",
            promote_if=[Check("error_rate", min_requests=20)],
            rollback_if=[],
        ),
    )
    answered: dict[int, int] = {}
    for batch in range(2):  # one gateway, killed; then another
        port = _port()
        proc = _gateway(ws, port)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"authorization": f"Bearer {key}"},
                timeout=10,
            ) as c:
                for inst in rows(40, 20 + batch):
                    r = c.post("/v1/models/churn/predict", json={"instances": [inst]})
                    assert r.status_code == 200, r.text
                    answered[r.json()["version"]] = answered.get(r.json()["version"], 0) + 1
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert _valid_split(ws) == "champion+canary"
    seen = advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=1)).rounds[-1]["figures"]
    assert seen["champion"]["requests"] == answered[1] and seen["canary"]["requests"] == answered[2]
    assert advance(ws, run.id, now=run.started_at + dt.timedelta(seconds=2)).state == "promoted"


def _wait(check, what: str, timeout: float = 180.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _scheduler(ws: st.Workspace) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "strataml", "scheduler", "-w", str(ws.root), "--poll", "0.2"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_the_scheduler_watches_a_canary_and_a_killed_one_resumes_on_restart(
    ws: st.Workspace,
) -> None:
    run = start_canary(
        ws,
        "churn",
        2,
        Canary(
            weight=0.5,
            watch="20s",
            interval="1s",
            bake="0s",
            promote_if=[Check("error_rate", min_requests=10)],
            rollback_if=[],
        ),
    )
    proc = _scheduler(ws)
    try:
        _serve_a_little(ws)
        _wait(lambda: len(get_loop(ws, run.id).rounds) >= 1, "the scheduler's first round")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        mid = get_loop(ws, run.id)
        assert mid.state == "canary" and _valid_split(ws) == "champion+canary"
        proc = _scheduler(ws)  # a new scheduler resumes the watch from the catalog
        done = _wait(lambda: (r := get_loop(ws, run.id)).state != "canary" and r, "the decision")
    finally:
        proc.kill()
        proc.wait(30)
    assert done.state == "promoted" and len(done.rounds) > len(mid.rounds)
    assert _valid_split(ws) == "champion" and get_model(ws, "churn")["aliases"]["champion"] == 2
