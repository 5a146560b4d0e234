"""A workspace with a registered model over online features, and API keys, for the workers' tests."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import strataml as st
from conftest import need_server
from serving.registry_setup import build
from strataml.serving import create_key
from strataml.spine import Outgoing, open_queue


@pytest.fixture(scope="session")
def scoring_ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """fraud@champion over the user_spend view (materialised online); keys for it and for another model."""
    root = tmp_path_factory.mktemp("scoring") / "ws"
    ws = st.Workspace.init(root)
    build(ws)
    keys = {
        "fraud": create_key(ws.catalog, ["predict:fraud"])[1],
        "other": create_key(ws.catalog, ["predict:other"])[1],
    }
    ws.close()
    return {"root": root, "keys": keys}


def queue_url(backend: str, root: Path) -> str:
    """The URL of ``backend`` for a test (a server's test URL, or a SQLite file under ``root``)."""
    if backend == "sqlite":
        return f"sqlite:///{root}/queue-{uuid.uuid4().hex[:8]}.db"
    if backend == "redis":
        return need_server(
            "Redis", os.environ.get("STRATA_TEST_REDIS", "redis://127.0.0.1:6379/0"), 6379
        )
    if backend == "rabbitmq":
        return need_server(
            "RabbitMQ",
            os.environ.get("STRATA_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/"),
            5672,
        )
    return need_server("NATS", os.environ.get("STRATA_TEST_NATS", "nats://127.0.0.1:4222"), 4222)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=[pytest.mark.redis, pytest.mark.slow]),
    pytest.param("rabbitmq", id="rabbitmq", marks=[pytest.mark.rabbitmq, pytest.mark.slow]),
    pytest.param("nats", id="nats", marks=[pytest.mark.nats, pytest.mark.slow]),
]


def publish(url: str, queue: str, messages: list[Outgoing]) -> None:
    async def go() -> None:
        q = open_queue(url)
        await q.publish_many(queue, messages)
        await q.close()

    asyncio.run(go())


def drain(url: str, queue: str, wait: float = 3.0) -> list[tuple[str, dict[str, Any]]]:
    """Every message on ``queue`` (id, JSON body), acknowledged."""

    async def go() -> list[tuple[str, dict[str, Any]]]:
        q = open_queue(url)
        out = []
        while True:
            got = await q.fetch(queue, 500, wait=wait)
            if not got:
                break
            out += [(d.id, orjson.loads(d.body)) for d in got]
            await q.ack(got)
        await q.close()
        return out

    return asyncio.run(go())


def request(
    key: str, instance: dict[str, Any], model: str = "fraud", id: str | None = None
) -> Outgoing:
    """A scoring request message."""
    return Outgoing(
        orjson.dumps({"model": model, "instances": [instance]}),
        id or uuid.uuid4().hex,
        {"authorization": f"Bearer {key}"},
    )


Req = Callable[..., Outgoing]
