"""The serving commands end to end, in subprocesses, against a real registry model."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

import strataml as st

from .registry_setup import build


def _run(python: str, env: dict[str, str], ws: Path, *args: str) -> dict | list:
    out = subprocess.run([python, "-m", "strataml", *args, "-w", str(ws), "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_keys_traffic_predictions_and_batch(tmp_path: Path, python: str, cli_env: dict[str, str]) -> None:
    ws = st.Workspace.init(tmp_path / "cws", example=False)
    build(ws)
    root = ws.root
    created = _run(python, cli_env, root, "keys", "create", "--scope", "predict:fraud")
    assert set(created) >= {"id", "key"} and created["key"].startswith("sk_")
    listed = _run(python, cli_env, root, "keys", "list")
    assert created["key"] not in json.dumps(listed) and listed[0]["id"] == created["id"]
    traffic = _run(python, cli_env, root, "deploy", "traffic", "fraud", "--rate", "500", "--burst", "500", "--default", "0.5", "--reason", "launch")
    assert traffic["traffic"]["rate"] == 500 and traffic["traffic"]["default"] == 0.5

    port = _port()
    server = subprocess.Popen([python, "-m", "strataml", "serve", "--port", str(port), "-m", "fraud", "-w", str(root), "--log-level", "warning"], env=cli_env, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # the edge's header limit
            raw.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n")
            assert raw.recv(65536).startswith(b"HTTP/1.1 431")
        h = {"authorization": f"Bearer {created['key']}"}
        for i in range(10):
            r = httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": [{"user_id": f"u{i}", "amount_now": 10.0 * i}]}, headers=h)
            assert r.status_code == 200, r.text
        assert "strata_requests_total" in httpx.get(f"{base}/metrics").text
        _run(python, cli_env, root, "keys", "revoke", created["id"])
        assert httpx.post(f"{base}/v1/models/fraud/predict", json={"instances": [{"user_id": "u1", "amount_now": 1.0}]}, headers=h).status_code == 401
    finally:
        server.terminate()
        server.wait(30)
    stats = _run(python, cli_env, root, "predictions", "stats", "--model", "fraud")
    assert stats["count"] == 10 and stats["by_version"] == {"v1": 10} and stats["degraded"] == 0
    assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"]
    rows = _run(python, cli_env, root, "predictions", "query", "--model", "fraud", "--limit", "3")
    assert len(rows) == 3 and {"request_id", "features", "output", "key_id", "latency_ms"} <= set(rows[0])

    out = tmp_path / "scores.parquet"
    report = _run(python, cli_env, root, "predict", "fraud", "--input", "labels", "--output", str(out))
    assert report["rows"] == 1200 and report["version"] == 1
    table = pq.read_table(out)
    assert table.num_rows == 1200 and table.column_names == ["row_id", "model", "version", "prediction"]
    bad = subprocess.run([python, "-m", "strataml", "keys", "create", "--scope", "root", "-w", str(root)], env=cli_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown scope" in bad.stderr and "Traceback" not in bad.stderr


def test_the_gateway_logs_json_lines_with_request_fields(capsys) -> None:
    import json
    import logging
    import logging.config

    from strataml.serving import log_config

    logging.config.dictConfig(log_config("info"))
    try:
        logging.getLogger("strataml.serving.access").info("request", extra={"fields": {"status": 200, "path": "/v1/x"}})
        logging.getLogger("strataml.serving").debug("below the level")
        lines = capsys.readouterr().err.strip().splitlines()
        (doc,) = [json.loads(line) for line in lines]
        assert (doc["level"], doc["logger"], doc["message"], doc["status"], doc["path"]) == ("info", "strataml.serving.access", "request", 200, "/v1/x")
    finally:
        for name in ("uvicorn", "strataml"):  # leave logging as the other tests expect it
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
