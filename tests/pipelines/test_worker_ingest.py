"""The ingesting worker turns event messages into dataset versions (contract, quarantine),
and a worker killed between ingesting and acknowledging ingests nothing twice."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import orjson
import pytest

import strataml as st
from strataml.data import list_versions
from strataml.spine import Outgoing

from .conftest import BACKENDS, publish, queue_url

# no key: a row ingested twice would be stored twice, so the row count proves once-only
DEFINITIONS = """import strataml as st

clicks = st.Contract("clicks", timestamp="ts", columns=[
    st.Column("user_id", "string"), st.Column("amount", "float"), st.Column("ts", "timestamp"),
])
"""


def event(i: int, amount: object = None) -> Outgoing:
    row = {"user_id": f"u{i % 7}", "amount": float(i) if amount is None else amount, "ts": f"2026-03-01T00:{i // 60:02d}:{i % 60:02d}"}
    return Outgoing(orjson.dumps(row), f"e{i}")


def run(python: str, env: dict[str, str], root: Path, url: str, queue: str, *extra: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    e = {**env, "STRATA_FAILPOINT": failpoint} if failpoint else env
    return subprocess.run([python, "-m", "strataml", "worker", "--mode", "ingest", "--contract", "clicks", "--queue", queue, "--url", url,
                           "-w", str(root), "--lease", "3", "--interval", "0.5", *extra], env=e, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("backend", BACKENDS)
def test_events_become_versions_once_despite_sigkill(backend: str, tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    root = tmp_path / "ws"
    st.Workspace.init(root, example=False).close()
    (root / "definitions.py").write_text(DEFINITIONS)
    url, queue = queue_url(backend, tmp_path), f"events-{uuid.uuid4().hex[:8]}"
    publish(url, queue, [event(i) for i in range(20)])
    killed = run(python, cli_env, root, url, queue, "--batch-rows", "20", "--idle-exit", "2", failpoint="worker.before_ack")
    assert killed.returncode == -9, killed.stderr
    publish(url, queue, [*(event(i) for i in range(20, 45)), event(45, amount="not a number")])

    r = run(python, cli_env, root, url, queue, "--batch-rows", "20", "--idle-exit", "6")
    assert r.returncode == 0, r.stderr
    ws = st.Workspace.open(root)
    versions = list_versions(ws, "clicks")
    assert versions[0].rows == 20  # the batch ingested before the kill
    assert versions[-1].rows == 45, [v.rows for v in versions]  # every good event once; the bad one quarantined
    assert len(versions) >= 2
    ws.close()
