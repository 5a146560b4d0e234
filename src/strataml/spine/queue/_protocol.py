"""The queue protocol: publish, fetch under a lease, acknowledge or reject, dead-letter.

Delivery is at least once. A fetched message is *leased* to its consumer: nobody else
receives it until the consumer acknowledges it (it is gone), rejects it (it is
delivered again, or dead-lettered), or the lease lapses (the consumer died or stopped
renewing it). Every delivery carries the message's id and how many times it has been
delivered; a message delivered ``max_deliveries`` times without being acknowledged is a
poison message and moves to the queue's durable dead-letter queue with its delivery
count and last error, where it stays until it is replayed or dropped.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

from strataml.errors import StrataError

#: queue names every backend accepts (NATS stream names and subjects are the strictest)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
DEFAULT_MAX_DELIVERIES = 5
DEFAULT_LEASE_S = 30.0


class QueueError(StrataError):
    """A queue cannot be reached, or a queue operation is refused."""


def check_queue_name(name: str) -> str:
    """``name`` if every backend accepts it as a queue name; QueueError otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise QueueError(
            f"invalid queue name {name!r}",
            hint="use 1-100 letters, digits, '_' or '-', starting with a letter or digit",
        )
    return name


def new_id() -> str:
    """A fresh message id."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class Outgoing:
    """A message to publish: its body, id (made when absent) and string headers."""

    body: bytes
    id: str = field(default_factory=new_id)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Delivery:
    """One delivery of a message to a consumer, which holds its lease."""

    queue: str
    id: str
    body: bytes
    headers: dict[str, str]
    attempts: int  #: deliveries so far, this one included
    handle: Any = field(default=None, repr=False)  #: the backend's own reference


@dataclass(slots=True)
class DeadLetter:
    """A poison message kept in a queue's dead-letter queue."""

    queue: str
    id: str
    body: bytes
    headers: dict[str, str]
    attempts: int
    error: str
    dead_at: float  #: seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the body as text when it is UTF-8)."""
        try:
            body: str = self.body.decode()
        except UnicodeDecodeError:
            body = self.body.hex()
        return {"queue": self.queue, "id": self.id, "attempts": self.attempts, "error": self.error,
                "dead_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.dead_at)),
                "headers": self.headers, "body": body}


@runtime_checkable
class Queue(Protocol):
    """What every queue backend offers (see the module docstring for the guarantees)."""

    url: str
    max_deliveries: int

    async def publish(self, queue: str, body: bytes, *, id: str | None = None, headers: Mapping[str, str] | None = None) -> str:
        """Publish one message durably; its id."""
        ...

    async def publish_many(self, queue: str, messages: Sequence[Outgoing]) -> list[str]:
        """Publish several messages durably, in order; their ids."""
        ...

    async def fetch(self, queue: str, max_messages: int = 1, *, wait: float = 1.0, lease: float = DEFAULT_LEASE_S) -> list[Delivery]:
        """Up to ``max_messages`` messages, waiting up to ``wait`` seconds for the first."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge handled messages: they are gone for good."""
        ...

    async def reject(self, delivery: Delivery, error: str) -> None:
        """Handling failed: deliver the message again, or dead-letter it after ``max_deliveries``."""
        ...

    async def renew(self, delivery: Delivery, lease: float = DEFAULT_LEASE_S) -> None:
        """Extend the lease on a message still being handled."""
        ...

    async def dead_letters(self, queue: str, limit: int = 1000) -> list[DeadLetter]:
        """The dead-letter queue of ``queue``, oldest first."""
        ...

    async def replay(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Put dead letters (all, or those with ``ids``) back on ``queue``, delivery count reset."""
        ...

    async def drop(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters (all, or those with ``ids``) for good."""
        ...

    async def close(self) -> None:
        """Release connections; leases held stay until they lapse (or the connection's end returns them)."""
        ...


class BaseQueue(ABC):
    """The parts every backend shares: name checks, the poison rule, ``async with``."""

    scheme: str = ""

    def __init__(self, url: str, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> None:
        if max_deliveries < 1:
            raise QueueError(f"max_deliveries must be at least 1, not {max_deliveries}")
        self.url = url
        self.max_deliveries = max_deliveries

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def publish(self, queue: str, body: bytes, *, id: str | None = None, headers: Mapping[str, str] | None = None) -> str:
        """Publish one message durably; its id."""
        msg = Outgoing(body, id or new_id(), dict(headers or {}))
        return (await self.publish_many(queue, [msg]))[0]

    async def publish_many(self, queue: str, messages: Sequence[Outgoing]) -> list[str]:
        """Publish several messages durably, in order; their ids."""
        check_queue_name(queue)
        for m in messages:
            if not isinstance(m.body, bytes):
                raise QueueError(f"message {m.id}: the body must be bytes, not {type(m.body).__name__}", hint="encode it (e.g. orjson.dumps)")
        if messages:
            await self._publish(queue, messages)
        return [m.id for m in messages]

    async def fetch(self, queue: str, max_messages: int = 1, *, wait: float = 1.0, lease: float = DEFAULT_LEASE_S) -> list[Delivery]:
        """Up to ``max_messages`` messages; one delivered too often already is dead-lettered instead."""
        check_queue_name(queue)
        if max_messages < 1:
            raise QueueError(f"max_messages must be at least 1, not {max_messages}")
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            got = await self._fetch(queue, max_messages, max(deadline - time.monotonic(), 0.0), lease)
            out = []
            for d in got:
                if d.attempts > self.max_deliveries:  # its leases lapsed that often: its consumers died on it
                    await self._dead_letter(d, f"delivered {d.attempts - 1} times without being acknowledged")
                else:
                    out.append(d)
            if out or not got or time.monotonic() >= deadline:
                return out

    async def reject(self, delivery: Delivery, error: str) -> None:
        """Deliver again, or dead-letter once delivered ``max_deliveries`` times."""
        if delivery.attempts >= self.max_deliveries:
            await self._dead_letter(delivery, error)
        else:
            await self._requeue(delivery, error)

    async def dead_letters(self, queue: str, limit: int = 1000) -> list[DeadLetter]:
        """The dead-letter queue of ``queue``, oldest first."""
        return await self._dead_letters(check_queue_name(queue), limit)

    async def replay(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Put dead letters back on ``queue`` with their delivery count reset."""
        return await self._replay(check_queue_name(queue), None if ids is None else set(ids))

    async def drop(self, queue: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters for good."""
        return await self._drop(check_queue_name(queue), None if ids is None else set(ids))

    @abstractmethod
    async def _publish(self, queue: str, messages: Sequence[Outgoing]) -> None: ...

    @abstractmethod
    async def _fetch(self, queue: str, max_messages: int, wait: float, lease: float) -> list[Delivery]: ...

    @abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge handled messages: they are gone for good."""

    @abstractmethod
    async def _requeue(self, delivery: Delivery, error: str) -> None: ...

    @abstractmethod
    async def _dead_letter(self, delivery: Delivery, error: str) -> None: ...

    @abstractmethod
    async def renew(self, delivery: Delivery, lease: float = DEFAULT_LEASE_S) -> None:
        """Extend the lease on a message still being handled."""

    @abstractmethod
    async def _dead_letters(self, queue: str, limit: int) -> list[DeadLetter]: ...

    @abstractmethod
    async def _replay(self, queue: str, ids: set[str] | None) -> int: ...

    @abstractmethod
    async def _drop(self, queue: str, ids: set[str] | None) -> int: ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
