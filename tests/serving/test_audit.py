"""The prediction log: group commit, DuckDB-readable, nothing acknowledged is lost to SIGKILL,
and SIGTERM drains requests in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import strataml as st
from strataml.serving import AuditLog, create_key, prediction_stats, query_predictions
from strataml.serving._audit import RESTART_AFTER_S, LogUnavailable

from .conftest import instance

ROOT = Path(__file__).resolve().parents[2]


def test_group_commit_shares_flushes_and_reads_back(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "p")

    async def run() -> None:
        await asyncio.gather(*(
            log.append([{"request_id": f"r{i}", "ts": "2026-01-01T00:00:00+00:00", "model": "m", "version": 1 + i % 2, "instance": 0,
                         "features": {"x": i}, "output": i / 100, "latency_ms": float(i), "key_id": "k", "degraded": i % 10 == 0,
                         "mode": "live", "deployment": "m", "route": "t"}])
            for i in range(200)
        ))

    asyncio.run(run())
    log.close()
    assert log.records == 200 and log.flushes < 200
    rows = query_predictions(tmp_path / "p", "m", limit=None)
    assert len(rows) == 200 and rows[0]["features"]["x"] in range(200)
    st_ = prediction_stats(tmp_path / "p", "m")
    assert st_["count"] == 200 and st_["by_version"] == {"v1": 100, "v2": 100} and st_["degraded"] == 20
    assert st_["p50"] == pytest.approx(99.5) and st_["p99"] == pytest.approx(197.01)
    # a torn last line (a crash mid-write of an unacknowledged request) is skipped
    with open(next((tmp_path / "p").glob("*.jsonl")), "ab") as fh:
        fh.write(b'{"request_id": "torn", "ts": "2026-01')
    assert len(query_predictions(tmp_path / "p", "m", limit=None)) == 200


def test_series_lines_are_the_records_lines_and_read_back(tmp_path: Path) -> None:
    import datetime as dt

    import orjson

    from strataml.serving._audit import SeriesLines, encode
    from strataml.serving._log_query import COLUMNS

    shared = {"deployment": "m", "model": "m", "version": 3, "key_id": "k1", "degraded": True, "mode": "shadow", "route": "v1.predict"}
    ts = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    rows = [{"user_id": "u1", "x": 0.25}, {"user_id": "u2", "x": None}, {"user_id": "u3", "x": -1.5}]
    for outputs in ([0.75], [0.1, {"a": 0.4, "b": 0.6}, None]):
        got = SeriesLines(shared).encode("req-1", ts, 1.234, rows, outputs)
        records = [{"request_id": "req-1", "ts": ts, "instance": i, "features": rows[i], "output": p, "latency_ms": 1.234, **shared}
                   for i, p in enumerate(outputs)]
        assert got.endswith(b"\n") and [orjson.loads(line) for line in got.splitlines()] == [orjson.loads(line) for line in encode(records).splitlines()]
        assert set(orjson.loads(got.splitlines()[0])) == set(COLUMNS)
    log = AuditLog(tmp_path / "p")

    async def run() -> None:
        await log.append_lines_nowait(SeriesLines(shared).encode("req-2", ts, 2.5, rows, [0.1, 0.2, 0.3]))

    asyncio.run(run())
    log.close()
    back = query_predictions(tmp_path / "p", "m", limit=None, mode="shadow")
    assert [(r["request_id"], r["instance"], r["output"], r["features"]["user_id"], r["degraded"], r["version"]) for r in sorted(back, key=lambda r: r["instance"])] == [
        ("req-2", 0, 0.1, "u1", True, 3), ("req-2", 1, 0.2, "u2", True, 3), ("req-2", 2, 0.3, "u3", True, 3)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(ws: st.Workspace, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.serving.server_main", str(ws.root), str(port), *extra], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not become ready")


@pytest.mark.slow
@pytest.mark.parametrize("fsync", [True, False], ids=["fsync", "no-fsync"])
def test_no_acknowledged_prediction_is_lost_to_sigkill(workspace: st.Workspace, fsync: bool) -> None:
    """Without fsync too: an answer waits for the writer process to have written the
    record, and the gateway's death does not take the writer or the page cache with it."""
    key = create_key(workspace.catalog, ["predict:fraud"])[1]
    port = _port()
    proc = _start(workspace, port, *([] if fsync else ["0", "nofsync"]))
    acked: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load(seed: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {key}"}, timeout=5) as c:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = c.post("/v1/models/fraud/predict", json={"instances": [instance(seed * 100000 + i)]})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with lock:
                        acked.append(r.json()["request_id"])

    threads = [threading.Thread(target=load, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGKILL)  # under load, no cleanup
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 100
    logged = {r["request_id"] for r in query_predictions(workspace.state_dir / "predictions", "fraud", limit=None)}
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged predictions are missing"


@pytest.mark.slow
def test_sigterm_drains_requests_in_flight(workspace: st.Workspace) -> None:
    key = create_key(workspace.catalog, ["predict:fraud"])[1]
    port = _port()
    proc = _start(workspace, port, "400")
    results: list[int] = []
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {key}"}, timeout=30) for _ in range(4)]
    for c in clients:
        assert c.get("/healthz").status_code == 200  # connections are open before the signal

    def one(i: int) -> None:
        results.append(clients[i].post("/v1/models/fraud/predict", json={"instances": [instance(i)]}).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    for c in clients:
        c.close()
    assert results == [200] * 4
    assert len(query_predictions(workspace.state_dir / "predictions", "fraud", limit=None)) == 4


def _record(i: int) -> dict[str, object]:
    return {"request_id": f"r{i}", "ts": "2026-01-01T00:00:00+00:00", "model": "m", "version": 1, "instance": 0, "features": {"x": i},
            "output": 0.5, "latency_ms": 1.0, "key_id": "k", "degraded": False, "mode": "live", "deployment": "m", "route": "t"}


def test_appends_made_during_a_flush_are_flushed_together_when_it_ends(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "p")
    (lane,) = log.lanes
    assert lane._proc is not None
    os.kill(lane._proc.pid, signal.SIGSTOP)  # a flush that takes as long as the test wants

    async def run() -> None:
        first = log.append_nowait([_record(0)])
        later = []
        for i in range(1, 10):  # each in a loop iteration of its own, while the first is unacknowledged
            await asyncio.sleep(0.01)
            later.append(log.append_nowait([_record(i)]))
        assert not first.done() and lane.pending == 10
        assert lane._proc is not None
        os.kill(lane._proc.pid, signal.SIGCONT)
        # no append comes after them: the first flush's acknowledgement sends the rest
        await asyncio.wait_for(asyncio.gather(first, *later), 10)

    try:
        asyncio.run(run())
    finally:
        if lane._proc is not None:
            os.kill(lane._proc.pid, signal.SIGCONT)
    log.close()
    assert log.records == 10 and log.flushes == 2
    assert len(query_predictions(tmp_path / "p", "m", limit=None)) == 10


def test_a_dead_writer_fails_its_appends_and_the_next_append_starts_a_new_one(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "p", lanes=1)
    (lane,) = log.lanes

    async def run() -> None:
        await log.append([_record(0)])
        assert lane._proc is not None
        lane._proc.kill()  # the writer dies (OOM killer, operator error)
        lane._proc.wait()
        with pytest.raises(OSError, match="prediction log could not be written"):
            await asyncio.wait_for(log.append([_record(1)]), 10)
        with pytest.raises(LogUnavailable, match="failed a moment ago"):  # at once, without starting a writer per append
            log.append_nowait([_record(9)])
        await asyncio.sleep(RESTART_AFTER_S)
        with pytest.raises(LogUnavailable, match="restarting"):  # a new writer starts in a thread, not on the loop
            log.append_nowait([_record(8)])
        for _ in range(200):
            if not lane._restarting:
                break
            await asyncio.sleep(0.05)
        await asyncio.wait_for(log.append([_record(2)]), 10)  # a new writer, a new file

    asyncio.run(run())
    log.append_sync([_record(3)])  # from a thread without a loop
    log.close()
    logged = {r["request_id"] for r in query_predictions(tmp_path / "p", "m", limit=None)}
    assert {"r0", "r2", "r3"} <= logged and len(list((tmp_path / "p").glob("*.jsonl"))) == 2


def test_files_are_cut_to_their_data_and_a_killed_writer_leaves_a_readable_file(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "p", lanes=1)

    async def run() -> None:
        await asyncio.gather(*(log.append([_record(i)]) for i in range(50)))

    asyncio.run(run())
    (path,) = log.paths
    assert path.stat().st_size > 1 << 20  # extended ahead of the data, in zero-filled steps
    proc = log.lanes[0]._proc
    assert proc is not None
    proc.kill()  # no chance to cut the file: the zeros stay, readers skip them
    proc.wait()
    assert len(query_predictions(tmp_path / "p", "m", limit=None)) == 50
    log.close()

    log = AuditLog(tmp_path / "q", lanes=2)
    asyncio.run(log.append([_record(0)]))
    log.close()
    sizes = sorted(p.stat().st_size for p in log.paths)
    assert sizes[0] == 0 and 0 < sizes[1] < 1000  # closed files hold exactly their lines
