"""HTTP JSON sources: retried with backoff on transient failures, then read as JSON Lines."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import strataml as st
from strataml.data import ingest
from strataml.errors import SourceError

ROWS = [
    {"tx_id": "tx1", "user_id": "u1", "amount": 3.5, "refund": None, "country": "US", "merchant": "m", "ts": "2026-01-01T00:00:00Z"},
    {"tx_id": "tx2", "user_id": "u2", "amount": -1, "refund": None, "country": "DE", "merchant": "m", "ts": "2026-01-01T00:00:00Z"},
]


class _Handler(BaseHTTPRequestHandler):
    plan: list[int] = []
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        status = self.plan.pop(0) if self.plan else 200
        body = json.dumps({"data": ROWS}).encode() if status == 200 else b"busy"
        if self.path == "/lines" and status == 200:
            body = b"\n".join(json.dumps(r).encode() for r in ROWS)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"plan": [], "hits": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()


def test_retries_transient_errors_then_ingests(workspace: st.Workspace, server) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    handler.plan = [503, 502]
    r = ingest(workspace, url + "/tx", contract="transactions")
    assert handler.hits == 3
    assert (r.rows_read, r.accepted, r.rejected_by_rule) == (2, 1, {"amount.min": 1})


def test_json_lines_endpoint(workspace: st.Workspace, server) -> None:  # type: ignore[no-untyped-def]
    url, _ = server
    assert ingest(workspace, url + "/lines", contract="transactions").accepted == 1


def test_gives_up_after_bounded_attempts(tmp_path, server) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    handler.plan = [503] * 10
    ws = st.Workspace(st.Workspace.init(tmp_path / "w").root, http_retries=3)
    with pytest.raises(SourceError, match="answered 503"):
        ingest(ws, url + "/tx", contract="transactions")
    assert handler.hits == 3


def test_client_errors_are_not_retried(workspace: st.Workspace, server) -> None:  # type: ignore[no-untyped-def]
    url, handler = server
    handler.plan = [404]
    with pytest.raises(SourceError, match="answered 404"):
        ingest(workspace, url + "/tx", contract="transactions")
    assert handler.hits == 1
