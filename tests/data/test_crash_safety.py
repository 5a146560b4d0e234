"""SIGKILL during ingestion never leaves a partial version or a corrupt catalog."""

from __future__ import annotations

import json
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
    # the killed process left its staging folder; the next write removes it
    tmp = ws.root / ".strata" / "artifacts" / "tmp"
    left = [p for p in tmp.iterdir() if f"~{proc.pid}~" in p.name]
    assert left
    # the re-run succeeds and never duplicates rows
    rerun = _ingest(python, cli_env, ws.root, data)
    _out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    assert not any(p.exists() for p in left) and list(tmp.iterdir()) == []
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


def test_gc_lists_then_removes_what_killed_writers_left(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    ws = st.Workspace.init(tmp_path / "ws")
    data = synth.write_csv(synth.transactions(2000, seed=1), tmp_path / "a.csv")
    assert _ingest(python, cli_env, ws.root, data).wait(timeout=120) == 0
    # an object no catalog row names, older than the grace period; the version's files stay
    stray = ws.artifacts.put_bytes(b"nobody refers to this")
    killed = _ingest(python, cli_env, ws.root, data, "ingest.after_validate")
    assert killed.wait(timeout=120) == -signal.SIGKILL
    old = time.time() - 2 * 24 * 3600
    for sha in (stray, *(f["sha256"] for f in get_version(ws, "transactions").files)):
        os.utime(ws.artifacts.local_path(sha), (old, old))
    ws.close()

    def gc(*args: str) -> dict[str, object]:
        r = subprocess.run([python, "-m", "strataml", "gc", "--json", *args], env=cli_env, cwd=ws.root, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    listed = gc()
    staging = [Path(str(e["path"])) for e in listed["staging"]]  # type: ignore[attr-defined]
    assert staging and all(f"~{killed.pid}~" in p.name and p.exists() for p in staging)
    assert [o["sha256"] for o in listed["objects"]] == [stray]  # type: ignore[attr-defined]
    assert listed["applied"] is False and ws.artifacts.exists(stray)
    removed = gc("--apply")
    assert removed["bytes"] == listed["bytes"] and not any(p.exists() for p in staging)
    assert not ws.artifacts.exists(stray)
    assert gc() == {"applied": False, "staging": [], "objects": [], "bytes": 0, "objects_checked": True}
    _assert_consistent(ws.root)


def test_gc_counts_references_in_every_table_the_catalog_holds(workspace: st.Workspace) -> None:
    # a layer's tables need not be imported by the process that collects: a table no loaded
    # module defines still protects the objects it names
    import sqlalchemy as sa

    from strataml.spine._gc import referenced

    sha = workspace.artifacts.put_bytes(b"a profile no loaded module knows about")
    with workspace.catalog.write() as conn:
        conn.execute(sa.text("CREATE TABLE layer_table_not_imported (ref TEXT)"))
        conn.execute(sa.text("INSERT INTO layer_table_not_imported VALUES (:s)"), {"s": f"profile {sha}"})
    assert sha in referenced(workspace)
