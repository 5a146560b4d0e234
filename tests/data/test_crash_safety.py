"""SIGKILL during ingestion never leaves a partial version or a corrupt catalog."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import strataml as st
from strataml import synth
from strataml.data import get_version, list_versions
from strataml.errors import NotFound

FAILPOINTS = ["ingest.after_validate", "ingest.after_files", "ingest.before_commit", "ingest.after_commit"]


def _ingest(python: str, env: dict[str, str], ws: Path, path: Path, failpoint: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(env)
    if failpoint:
        env["STRATA_FAILPOINT"] = failpoint
    return subprocess.Popen(
        [python, "-m", "strataml", "ingest", str(path), "--contract", "transactions", "--workspace", str(ws), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _assert_consistent(ws_root: Path) -> None:
    ws = st.Workspace.open(ws_root)
    try:
        assert ws.catalog.integrity_check() == []
        for v in list_versions(ws, "transactions"):
            table = v.to_arrow()  # every visible version is complete and its files verify
            assert table.num_rows == v.rows == sum(f["rows"] for f in v.files)
    finally:
        ws.close()


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_kill_at_each_step(tmp_path: Path, python: str, cli_env: dict[str, str], failpoint: str) -> None:
    ws = st.Workspace.init(tmp_path / "ws")
    ws.close()
    data = synth.write_csv(synth.transactions(5000, seed=1), tmp_path / "a.csv")
    proc = _ingest(python, cli_env, ws.root, data, failpoint)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    _assert_consistent(ws.root)
    ws = st.Workspace.open(ws.root)
    committed = failpoint == "ingest.after_commit"
    if not committed:
        with pytest.raises(NotFound):
            get_version(ws, "transactions")
    # the re-run succeeds and never duplicates rows
    rerun = _ingest(python, cli_env, ws.root, data)
    _out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    v = get_version(ws, "transactions@latest")
    assert v.number == 1
    assert v.to_pandas()["tx_id"].is_unique
    ws.close()


@pytest.mark.slow
def test_kill_at_many_moments(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    ws_root = st.Workspace.init(tmp_path / "ws").root
    data = synth.write_csv(synth.transactions(300_000, seed=2), tmp_path / "big.csv")
    # Time one clean run in a scratch workspace to spread the kills over its length.
    scratch = st.Workspace.init(tmp_path / "scratch").root
    start = time.perf_counter()
    assert _ingest(python, cli_env, scratch, data).wait(timeout=300) == 0
    duration = time.perf_counter() - start
    for i in range(10):
        proc = _ingest(python, cli_env, ws_root, data)
        time.sleep(duration * (0.1 + 0.09 * i))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        _assert_consistent(ws_root)
    rerun = _ingest(python, cli_env, ws_root, data)
    assert rerun.wait(timeout=300) == 0
    ws = st.Workspace.open(ws_root)
    v = get_version(ws, "transactions@latest")
    df = v.to_pandas()
    assert df["tx_id"].is_unique
    clean = get_version(st.Workspace.open(scratch), "transactions@latest")
    assert v.rows == clean.rows  # exactly the good rows, once
