"""The server-backed queues pass the same conformance suite as the SQLite queue."""

from __future__ import annotations

import pytest

from strataml.spine import open_queue
from strataml.spine.queue._conformance import CHECKS, check_queue

ALL = [c.__name__ for c in CHECKS]


@pytest.mark.redis
def test_redis_streams_queue_conformance(redis_url: str) -> None:
    assert check_queue(lambda: open_queue(redis_url)) == ALL


@pytest.mark.rabbitmq
def test_rabbitmq_queue_conformance(rabbitmq_url: str) -> None:
    assert check_queue(lambda: open_queue(rabbitmq_url)) == ALL


@pytest.mark.nats
def test_nats_jetstream_queue_conformance(nats_url: str) -> None:
    assert check_queue(lambda: open_queue(nats_url)) == ALL
