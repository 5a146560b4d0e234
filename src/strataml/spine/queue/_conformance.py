"""The conformance suite every queue backend passes: ``check_queue(factory)``.

``factory()`` opens a new, independent handle on the backend under test (as another
process would); the suite uses queue names of its own, unique per run, so it can run
against a shared server. A failed check raises AssertionError naming what broke.

    from strataml.spine.queue import open_queue
    check_queue(lambda: open_queue("redis://127.0.0.1:6379/0"))
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence

from strataml.errors import StrataError
from strataml.spine.queue._protocol import Delivery, Outgoing, Queue

Factory = Callable[[], Queue]


def _name(what: str) -> str:
    return f"conf-{what}-{uuid.uuid4().hex[:12]}"


async def _drain(q: Queue, queue: str, want: int, wait: float = 10.0, lease: float = 30.0) -> list[Delivery]:
    out: list[Delivery] = []
    deadline = time.monotonic() + wait
    while len(out) < want and time.monotonic() < deadline:
        out += await q.fetch(queue, want - len(out), wait=min(1.0, max(deadline - time.monotonic(), 0.01)), lease=lease)
    return out


async def _empty(q: Queue, queue: str, wait: float = 0.3) -> bool:
    return not await q.fetch(queue, 10, wait=wait)


async def publish_fetch_ack(make: Factory) -> None:
    """A published message arrives once, with its id, body, headers and one delivery; after its ack it is gone."""
    q, name = make(), _name("basic")
    try:
        mid = await q.publish(name, b'{"x": 1}', id="m-1", headers={"reply-to": "out"})
        assert mid == "m-1", f"publish returned {mid!r}, not the given id"
        got = await _drain(q, name, 1)
        assert len(got) == 1, f"expected the published message, got {len(got)}"
        d = got[0]
        assert (d.id, d.body, d.headers.get("reply-to"), d.attempts) == ("m-1", b'{"x": 1}', "out", 1), f"delivered {d!r}"
        await q.ack([d])
        assert await _empty(q, name), "an acknowledged message was delivered again"
    finally:
        await q.close()


async def batches_in_order(make: Factory) -> None:
    """A batch published in order is fetched in order, in batches, each message once."""
    q, name = make(), _name("batch")
    try:
        ids = await q.publish_many(name, [Outgoing(str(i).encode()) for i in range(50)])
        assert len(set(ids)) == 50, "publish_many must give every message its own id"
        got = await _drain(q, name, 50)
        assert [d.body for d in got] == [str(i).encode() for i in range(50)], "messages came out of order, missing or twice"
        assert [d.id for d in got] == ids
        await q.ack(got)
        assert await _empty(q, name)
    finally:
        await q.close()


async def reject_redelivers(make: Factory) -> None:
    """A rejected message is delivered again with its delivery count raised."""
    q, name = make(), _name("reject")
    try:
        await q.publish(name, b"r", id="r-1")
        (d,) = await _drain(q, name, 1)
        await q.reject(d, "boom")
        got = await _drain(q, name, 1)
        assert [(g.id, g.attempts) for g in got] == [("r-1", 2)], f"after a reject: {got!r}"
        await q.ack(got)
    finally:
        await q.close()


async def poison_to_dead_letters(make: Factory) -> None:
    """After max_deliveries failures a message is dead-lettered (durably, with count and
    last error), can be listed from another handle, replayed with its count reset, and dropped."""
    q, name = make(), _name("poison")
    q.max_deliveries = 3
    try:
        await q.publish(name, b"bad", id="p-1")
        await q.publish(name, b"bad2", id="p-2")
        for attempt in range(1, 4):
            got = await _drain(q, name, 2)
            assert sorted((d.id, d.attempts) for d in got) == [("p-1", attempt), ("p-2", attempt)], f"delivery {attempt}: {got!r}"
            for d in got:
                await q.reject(d, f"failure {attempt}")
        assert await _empty(q, name), "a poison message stayed on its queue"
    finally:
        await q.close()
    other = make()
    try:
        dead = await other.dead_letters(name)
        assert sorted((d.id, d.body, d.attempts, d.error) for d in dead) == [
            ("p-1", b"bad", 3, "failure 3"), ("p-2", b"bad2", 3, "failure 3")], f"dead letters: {dead!r}"
        assert await other.replay(name, ["p-1"]) == 1
        got = await _drain(other, name, 1)
        assert [(d.id, d.body, d.attempts) for d in got] == [("p-1", b"bad", 1)], f"replayed: {got!r}"
        await other.ack(got)
        assert [d.id for d in await other.dead_letters(name)] == ["p-2"]
        assert await other.drop(name, ["p-2"]) == 1
        assert await other.dead_letters(name) == []
        assert await other.drop(name) == 0
    finally:
        await other.close()


async def abandoned_lease_redelivered(make: Factory) -> None:
    """A consumer that goes away without acknowledging loses its lease: another consumer
    receives the message, delivery count raised."""
    a, b, name = make(), make(), _name("lease")
    try:
        await a.publish(name, b"l", id="l-1")
        (d,) = await _drain(a, name, 1, lease=1.0)
        assert d.attempts == 1
        await a.close()  # as if it crashed: no ack
        got = await _drain(b, name, 1, wait=15.0, lease=30.0)
        assert [(g.id, g.attempts) for g in got] == [("l-1", 2)], f"after the first consumer went away: {got!r}"
        await b.ack(got)
        assert await _empty(b, name)
    finally:
        await a.close()
        await b.close()


async def renewed_lease_held(make: Factory) -> None:
    """A consumer that renews its lease keeps the message from every other consumer."""
    a, b, name = make(), make(), _name("renew")
    try:
        await a.publish(name, b"s", id="s-1")
        (d,) = await _drain(a, name, 1, lease=1.0)
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            await a.renew(d, 1.0)
            assert await _empty(b, name, wait=0.3), "a renewed lease was delivered to another consumer"
        await a.ack([d])
        assert await _empty(b, name, wait=1.5)
    finally:
        await a.close()
        await b.close()


async def competing_consumers(make: Factory) -> None:
    """Two consumers on one queue share its messages: each message goes to exactly one."""
    a, b, name = make(), make(), _name("compete")
    try:
        await a.publish_many(name, [Outgoing(b"c", id=f"c-{i}") for i in range(40)])
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while len(seen) < 40 and time.monotonic() < deadline:
            for q in (a, b):
                got = await q.fetch(name, 7, wait=0.2)
                seen += [d.id for d in got]
                await q.ack(got)
        assert sorted(seen) == sorted(f"c-{i}" for i in range(40)), f"{len(seen)} deliveries, {len(set(seen))} distinct"
    finally:
        await a.close()
        await b.close()


async def bad_input_refused(make: Factory) -> None:
    """Invalid queue names and non-bytes bodies are refused with a StrataError, nothing published."""
    q = make()
    try:
        for bad in ("", "a.b", "x y", "../etc", "*"):
            try:
                await q.publish(bad, b"x")
            except StrataError:
                continue
            raise AssertionError(f"the queue name {bad!r} was accepted")
        name = _name("bad")
        try:
            await q.publish(name, "text")  # type: ignore[arg-type]
        except StrataError:
            pass
        else:
            raise AssertionError("a str body was accepted")
        assert await _empty(q, name)
    finally:
        await q.close()


CHECKS = (publish_fetch_ack, batches_in_order, reject_redelivers, poison_to_dead_letters,
          abandoned_lease_redelivered, renewed_lease_held, competing_consumers, bad_input_refused)


def check_queue(factory: Factory, only: Sequence[str] | None = None) -> list[str]:
    """Run the conformance checks (all, or those named in ``only``) against the backend
    ``factory`` opens; the names of the checks passed. Raises AssertionError on a failure."""
    passed = []
    for check in CHECKS:
        if only is not None and check.__name__ not in only:
            continue
        try:
            asyncio.run(check(factory))
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__}: {exc}") from exc
        passed.append(check.__name__)
    return passed
