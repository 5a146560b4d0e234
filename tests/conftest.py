"""Shared fixtures: workspaces, generated data, and the real servers.

Server-backed tests skip with a reason when their server is absent, unless
``STRATA_REQUIRE_SERVERS=1`` (set by CI), which turns a missing server into a failure.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

import strataml as st

REQUIRE_SERVERS = os.environ.get("STRATA_REQUIRE_SERVERS") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need_server(name: str, url: str, default_port: int) -> str:
    """Return ``url`` if the server answers; otherwise skip (or fail under CI)."""
    if _reachable(url, default_port):
        return url
    message = f"{name} is not reachable at {url}; start it or set the test URL variable"
    if REQUIRE_SERVERS:
        pytest.fail(message + " (STRATA_REQUIRE_SERVERS=1)")
    pytest.skip(message)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[st.Workspace]:
    """A fresh workspace with the example definitions."""
    ws = st.Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running ``python -m strataml`` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") or k == "STRATA_REQUIRE_SERVERS"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def python() -> str:
    """The interpreter running the tests."""
    return sys.executable


@pytest.fixture
def postgres_url() -> str:
    """A PostgreSQL URL (``STRATA_TEST_POSTGRES``) whose server answers."""
    return need_server("PostgreSQL", os.environ.get("STRATA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"), 5432)


@pytest.fixture
def redis_url() -> str:
    """A Redis URL (``STRATA_TEST_REDIS``) whose server answers."""
    return need_server("Redis", os.environ.get("STRATA_TEST_REDIS", "redis://127.0.0.1:6379/0"), 6379)


@pytest.fixture
def rabbitmq_url() -> str:
    """A RabbitMQ URL (``STRATA_TEST_RABBITMQ``) whose broker answers."""
    return need_server("RabbitMQ", os.environ.get("STRATA_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/"), 5672)


@pytest.fixture
def nats_url() -> str:
    """A NATS (JetStream) URL (``STRATA_TEST_NATS``) whose server answers."""
    return need_server("NATS", os.environ.get("STRATA_TEST_NATS", "nats://127.0.0.1:4222"), 4222)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto's server mode), started for the test session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        if REQUIRE_SERVERS:
            pytest.fail("moto[server] is not installed (pip install 'strataml[dev]')")
        pytest.skip("moto[server] is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``STRATA_REQUIRE_SERVERS=1`` (CI) nothing may skip: a skip becomes a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRE_SERVERS and report.skipped and call.when in ("setup", "call") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under STRATA_REQUIRE_SERVERS=1, which forbids skips: {report.longrepr}"
