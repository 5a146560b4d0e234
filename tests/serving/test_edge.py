"""The HTTP edge over raw sockets: header size and count, slow senders, a slow body."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

import strataml as st
from strataml.serving import GatewayConfig, create_app
from strataml.serving._edge import EdgeLimits, EdgeProtocol

LIMITS = EdgeLimits(max_header_bytes=8192, max_headers=50, header_timeout_s=1.0, body_timeout_s=1.0)


@pytest.fixture
def server(workspace: st.Workspace, models: Any) -> Iterator[int]:
    """A real uvicorn server (the gateway, in a thread) with the edge's limits."""
    proto = type("TestEdge", (EdgeProtocol,), {"limits": LIMITS})
    cfg = uvicorn.Config(create_app(workspace, models, GatewayConfig(ratelimit_url="memory://", rate=None)), host="127.0.0.1", port=0, http=proto, log_level="error")
    srv = uvicorn.Server(cfg)
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not (srv.started and srv.servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield srv.servers[0].sockets[0].getsockname()[1]
    srv.should_exit = True
    t.join(30)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _answer(s: socket.socket) -> tuple[int, dict[str, Any] | None, bytes]:
    """Read until the server closes the connection (or one whole response with a length)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return status, doc, head


def test_a_huge_header_is_refused_with_431_after_the_limit(server: int) -> None:
    s = _connect(server)
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    try:
        for _ in range(2000):  # up to 128 MB; the server stops reading long before
            s.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, doc, _ = _answer(s)
    assert status == 431 and doc is not None and doc["error"]["type"] == "HeadersTooLarge"
    assert sent < 64 * 1024 * 1024  # the connection was cut, not read to the end
    s.close()


def test_a_header_just_over_the_limit_in_one_read_is_refused(server: int) -> None:
    s = _connect(server)
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 9000 + b"\r\n\r\n")
    status, doc, _ = _answer(s)
    assert status == 431 and "8192 bytes" in doc["error"]["message"]


def test_too_many_headers_are_refused(server: int) -> None:
    s = _connect(server)
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: 1\r\n" % i for i in range(60)) + b"\r\n")
    status, doc, _ = _answer(s)
    assert status == 431 and "50 headers" in doc["error"]["message"]


def test_a_trickled_header_times_out_with_408(server: int) -> None:
    s = _connect(server)
    t0 = time.monotonic()
    status = 0
    try:
        for ch in b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: " + b"a" * 100:
            s.sendall(bytes([ch]))
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, doc, _ = _answer(s)
    assert status == 408 and doc["error"]["type"] == "RequestTimeout"
    assert time.monotonic() - t0 < 5


def test_an_idle_connection_is_closed(server: int) -> None:
    s = _connect(server)
    t0 = time.monotonic()
    status, _, _ = _answer(s)
    assert status == 408 and time.monotonic() - t0 < 5


def test_a_slow_body_times_out_with_408(server: int, keys: dict[str, str]) -> None:
    s = _connect(server)
    s.sendall(b"POST /v1/models/fraud/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
              b"authorization: Bearer " + keys["fraud"].encode() + b"\r\ncontent-length: 200\r\n\r\n{\"instances\"")
    t0 = time.monotonic()
    status, _, _ = _answer(s)
    assert status == 408 and time.monotonic() - t0 < 5


def test_ordinary_requests_pass_and_keep_alive(server: int) -> None:
    s = _connect(server)
    for _ in range(3):
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: 1\r\n" % i for i in range(40)) + b"\r\n")
        status, doc, _ = _answer(s)
        assert status == 200 and doc == {"status": "ok"}
    s.close()
