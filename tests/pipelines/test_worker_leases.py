"""A worker renews the lease on a message it is slow to handle: no other consumer (nor
its own next fetch) receives the message meanwhile, so it takes effect and is answered once."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import BACKENDS, drain, publish, queue_url, request
from .test_worker_scoring import logged


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_message_is_not_delivered_twice(backend: str, scoring_ws: dict[str, Any], tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    root, key = scoring_ws["root"], scoring_ws["keys"]["fraud"]
    url, queue = queue_url(backend, tmp_path), f"slow-{uuid.uuid4().hex[:8]}"
    slow = request(key, {"user_id": "u7", "amount_now": 70.0})
    publish(url, queue, [slow])
    # handled for 8 s under a 2 s lease: only renewals keep it from being delivered again, to the
    # other worker or to its own worker's next fetch (the model is loaded before the first fetch)
    env = {**cli_env, "STRATA_PAUSEPOINT": f"worker.handle.{slow.id}:8"}
    cmd = [python, "-m", "strataml", "worker", "--queue", queue, "--url", url, "-w", str(root), "--json", "--lease", "2", "--idle-exit", "12", "-m", "fraud"]
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outs = [w.communicate(timeout=180) for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outs]
    handled = [json.loads(out)["handled"] for out, _ in outs]
    assert sorted(handled) == [0, 1], f"messages acknowledged per worker: {handled}"
    assert [i for i, _ in drain(url, f"{queue}-results", wait=1.0)] == [slow.id]
    assert [r["request_id"] for r in logged(root, {slow.id})] == [slow.id]
