"""Queues: one small protocol, backends chosen by URL scheme.

``sqlite:///path`` (the embedded default), ``redis://`` (Redis Streams consumer groups),
``amqp://`` (RabbitMQ quorum queues) and ``nats://`` (NATS JetStream work queues).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strataml.errors import MissingExtra
from strataml.spine.queue._protocol import (
    DEFAULT_LEASE_S,
    DEFAULT_MAX_DELIVERIES,
    BaseQueue,
    DeadLetter,
    Delivery,
    Outgoing,
    Queue,
    QueueError,
    check_queue_name,
    new_id,
)


def _sqlite(url: str, **kw: Any) -> BaseQueue:
    from strataml.spine.queue._sqlite import SQLiteQueue

    return SQLiteQueue(url, **kw)


def _redis(url: str, **kw: Any) -> BaseQueue:
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise MissingExtra("redis", "redis", "A Redis Streams queue") from exc
    from strataml.spine.queue._redis_streams import RedisQueue

    return RedisQueue(url, **kw)


def _amqp(url: str, **kw: Any) -> BaseQueue:
    try:
        import aio_pika  # noqa: F401
    except ImportError as exc:
        raise MissingExtra("aio-pika", "rabbitmq", "A RabbitMQ queue") from exc
    from strataml.spine.queue._rabbitmq import RabbitMQQueue

    return RabbitMQQueue(url, **kw)


def _nats(url: str, **kw: Any) -> BaseQueue:
    try:
        import nats  # noqa: F401
    except ImportError as exc:
        raise MissingExtra("nats-py", "nats", "A NATS JetStream queue") from exc
    from strataml.spine.queue._nats_js import NatsQueue

    return NatsQueue(url, **kw)


#: URL scheme → backend constructor
BACKENDS: dict[str, Callable[..., BaseQueue]] = {
    "sqlite": _sqlite, "redis": _redis, "rediss": _redis, "amqp": _amqp, "amqps": _amqp, "nats": _nats, "tls": _nats,
}


def open_queue(url: str, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> BaseQueue:
    """The queue backend for ``url`` (network backends connect on first use)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    make = BACKENDS.get(scheme)
    if make is None:
        raise QueueError(
            f"unknown queue URL {url!r}",
            hint="use sqlite:///path/queue.db, redis://host:6379/0, amqp://user:pass@host:5672/ or nats://host:4222",
        )
    return make(url, max_deliveries=max_deliveries)


__all__ = [
    "BACKENDS",
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_DELIVERIES",
    "BaseQueue",
    "DeadLetter",
    "Delivery",
    "Outgoing",
    "Queue",
    "QueueError",
    "check_queue_name",
    "new_id",
    "open_queue",
]
