"""``strata demo --serve`` leaves the gateway and its dashboard running until SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest


@pytest.mark.slow
def test_demo_serve_keeps_the_dashboard_up(python: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [python, "-m", "strataml", "demo", "--serve", "--port", str(port), "--dir", str(tmp_path / "demo")],
        env={**cli_env, "COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("sk_"):
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/ui" in text, text[-2000:]
        key = lines[-1].strip()
        assert re.fullmatch(r"sk_[0-9a-f]{16}_\S+", key)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                page = httpx.get(f"{base}/ui/login", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page.status_code == 200
        # the printed key has the read scope: the dashboard lets it in, predictions stay closed to it
        login = httpx.post(f"{base}/ui/login", data={"key": key}, timeout=10)
        assert login.status_code == 303 and "set-cookie" in login.headers
        denied = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": []},
                            headers={"authorization": f"Bearer {key}"}, timeout=10)
        assert denied.status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(30) == 0 or proc.returncode in (-signal.SIGTERM,)
        finally:
            if proc.poll() is None:
                proc.kill()
