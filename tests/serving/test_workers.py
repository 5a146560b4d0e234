"""`strata serve --workers 2`: rate limits hold across worker processes, metrics add up,
and each worker's prediction log follows ``--no-fsync``."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import strataml as st
from strataml.serving import create_key, set_traffic

from .registry_setup import build


@pytest.mark.slow
def test_limits_and_metrics_span_workers(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    ws = st.Workspace.init(tmp_path / "ws", example=False)
    build(ws)
    key = create_key(ws.catalog, ["predict:fraud"])[1]
    set_traffic(ws.catalog, "fraud", {"rate": 0.01, "burst": 20})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([python, "-m", "strataml", "serve", "--port", str(port), "--workers", "2", "-m", "fraud", "-w", str(ws.root), "--log-level", "warning", "--no-fsync"], env=cli_env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        codes = []
        for _ in range(40):
            with httpx.Client() as c:  # a new connection each time, spread over the workers
                r = c.post(f"{base}/v1/models/fraud/predict", json={"instances": [{"user_id": "u1", "amount_now": 3.0}]}, headers={"authorization": f"Bearer {key}"})
                codes.append(r.status_code)
        assert codes.count(200) == 20 and codes.count(429) == 20
        # each worker publishes its counts every refresh interval (0.5 s): a scrape of either
        # shows both workers' requests within one
        served = 'strata_requests_total{model="fraud",route="v1.predict",status="200",version="1"} 20.0'
        deadline = time.monotonic() + 10
        while served not in (text := httpx.get(f"{base}/metrics").text) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert served in text
        assert 'status="429"' in text
        # every worker started its log writer, and told it not to flush (its last argument)
        writers = _log_writers(ws.state_dir / "predictions")
        assert len(writers) == 2 and all(argv[-1] == "0" for argv in writers), writers
    finally:
        server.terminate()
        server.wait(30)


def _log_writers(directory: Path) -> list[list[str]]:
    """The command lines of the prediction log writers running for ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if "-c" in argv and str(directory) in argv:
            found.append(argv)
    return found
