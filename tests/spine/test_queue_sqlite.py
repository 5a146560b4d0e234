"""The SQLite queue passes the conformance suite, and keeps its messages across handles."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from strataml.errors import StrataError
from strataml.spine import open_queue
from strataml.spine.queue._conformance import CHECKS, check_queue


def test_sqlite_queue_conformance(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    assert check_queue(lambda: open_queue(url)) == [c.__name__ for c in CHECKS]


def test_published_messages_survive_a_new_handle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"

    async def run() -> None:
        a = open_queue(url)
        await a.publish("jobs", b"1", id="one")
        await a.publish("jobs", b"dup", id="one")  # an id still queued: ignored
        await a.close()
        b = open_queue(url)
        got = await b.fetch("jobs", 10, wait=0)
        assert [(d.id, d.body) for d in got] == [("one", b"1")]
        await b.close()

    asyncio.run(run())


def test_unknown_url_names_the_fix() -> None:
    with pytest.raises(StrataError, match="unknown queue URL") as info:
        open_queue("kafka://host:9092")
    assert "amqp://" in (info.value.hint or "")
    with pytest.raises(StrataError, match="needs a file"):
        open_queue("sqlite:///:memory:")
