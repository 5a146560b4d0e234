"""RabbitMQ (``amqp://user:pass@host:5672/vhost``) through aio-pika and its aiormq channel.

Each queue is a durable quorum queue; messages are persistent and every publish waits
for the broker's confirm (a batch goes out as one write, its confirms awaited together).
A handle consumes with a prefetch window and hands out what arrived; a message it holds
is leased to its connection, so the lease lasts as long as the connection (``renew``
only checks that it is still open; the broker's ``consumer_timeout``, 30 minutes by
default, bounds how long one message may be held) and a consumer that dies returns its
messages at once. Acknowledgements are ``multiple`` acks up to the first message still
in hand. The delivery count is the quorum queue's ``x-delivery-count`` (messages
prefetched but never handed out by a consumer that went away count that delivery too).
Dead letters go to a durable classic queue ``<queue>.dead``; listing them reads them
without acknowledging and gives them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from strataml.spine.queue._protocol import (
    DEFAULT_LEASE_S,
    DEFAULT_MAX_DELIVERIES,
    BaseQueue,
    DeadLetter,
    Delivery,
    Outgoing,
    QueueError,
)

_META = "x-strata-"
#: what a bulk publish uses of aiormq's channel (it falls back to one publish per message without them)
_BULK = ("lock", "delivery_tag", "confirmations", "create_future", "write_queue", "number", "_split_body", "is_closed")


def _dead(queue: str) -> str:
    return f"{queue}.dead"


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _user_headers(h: dict[str, Any] | None) -> dict[str, str]:
    return {k: _text(v) for k, v in (h or {}).items() if not k.startswith(_META) and k != "x-delivery-count"}


class _Confirms:
    """The broker's confirms of a batch, counted: aiormq's table of unconfirmed messages
    holds this one object for each of them (in place of a future apiece), and the batch's
    future completes with the last confirm, or fails with the first refusal."""

    __slots__ = ("future", "left")

    def __init__(self, future: asyncio.Future[None], n: int) -> None:
        self.future = future
        self.left = n

    def done(self) -> bool:
        return False  # a confirm after a refusal is counted, not reported as one for a finished publish

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def set_result(self, frame: Any) -> None:
        self.left -= 1
        if self.left <= 0 and not self.future.done():
            self.future.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class RabbitMQQueue(BaseQueue):
    """A queue on RabbitMQ quorum queues."""

    scheme = "amqp"

    def __init__(self, url: str, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES, prefetch: int = 1024) -> None:
        super().__init__(url, max_deliveries=max_deliveries)
        self.prefetch = prefetch
        self._conn: Any = None
        self._ch: Any = None
        self._queues: dict[str, Any] = {}
        self._buffers: dict[str, asyncio.Queue[Any]] = {}
        self._out: set[int] = set()  # delivery tags handed out and not yet settled

    async def _channel(self) -> Any:
        if self._ch is None:
            import aio_pika

            try:
                self._conn = await aio_pika.connect(self.url)
            except Exception as exc:
                raise QueueError(f"cannot connect to RabbitMQ at {self.url.split('@')[-1]}: {exc}",
                                 hint="check the amqp:// URL and that the broker is running") from exc
            self._ch = await self._conn.channel(publisher_confirms=True)
            await self._ch.set_qos(prefetch_count=self.prefetch)
        return self._ch

    async def _declare(self, name: str, dead: bool = False) -> Any:
        q = self._queues.get(name)
        if q is None:
            ch = await self._channel()
            args = None if dead else {"x-queue-type": "quorum"}
            q = self._queues[name] = await ch.declare_queue(name, durable=True, arguments=args)
        return q

    async def _send(self, routing_key: str, body: bytes, msg_id: str, headers: dict[str, Any]) -> None:
        """Publish persistently and wait for the broker's confirm (on aiormq's channel:
        aio-pika's message object costs more than the frame it becomes)."""
        from pamqp.commands import Basic

        ch = await self._channel()
        underlay = await ch.get_underlay_channel()
        await underlay.basic_publish(body, exchange="", routing_key=routing_key, mandatory=False, wait=False,
                                     properties=Basic.Properties(message_id=msg_id, headers=headers, delivery_mode=2))

    async def _publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        await self._declare(queue)
        underlay = await (await self._channel()).get_underlay_channel()
        if len(messages) > 1 and all(hasattr(underlay, a) for a in _BULK):
            await self._publish_bulk(underlay, queue, messages)
        else:
            await asyncio.gather(*(self._send(queue, m.body, m.id, dict(m.headers)) for m in messages))

    @staticmethod
    async def _publish_bulk(ch: Any, queue: str, messages: Sequence[Outgoing]) -> None:
        """Publish a batch as one write of all its frames, then wait for the broker's
        confirms of every message (it confirms them together, in ``multiple`` acks).

        aiormq's own publish writes, times and tracks each message on its own, which costs
        more than the message; this takes the same channel lock, numbers the messages and
        registers their confirms (one counting object, see :class:`_Confirms`) where the
        channel's reader resolves them."""
        from aiormq.abc import ChannelFrame
        from pamqp.commands import Basic
        from pamqp.header import ContentHeader

        frames: list[Any] = []
        batch = _Confirms(ch.create_future(), len(messages))  # rejected by the channel if it closes first
        async with ch.lock:
            if ch.is_closed:
                raise QueueError(f"cannot publish to {queue}: the channel closed", hint="open the queue again")
            for m in messages:
                ch.delivery_tag += 1
                ch.confirmations[ch.delivery_tag] = batch
                props = Basic.Properties(message_id=m.id, headers=dict(m.headers), delivery_mode=2)
                frames += [Basic.Publish(exchange="", routing_key=queue), ContentHeader(properties=props, body_size=len(m.body)),
                           *ch._split_body(m.body)]
            await ch.write_queue.put(ChannelFrame.marshall(frames=frames, channel_number=ch.number))
        try:
            await batch.future
        except Exception as exc:
            raise QueueError(f"the broker did not take a message published to {queue}: {exc!r}",
                             hint="publish it again (its id makes the repeat harmless to the worker)") from exc

    async def _buffer(self, queue: str) -> asyncio.Queue[Any]:
        """Messages the broker pushed for ``queue`` (a consumer on aiormq's channel: no
        aio-pika message object per delivery)."""
        buf = self._buffers.get(queue)
        if buf is None:
            await self._declare(queue)
            ch = await self._channel()
            underlay = await ch.get_underlay_channel()
            buf = self._buffers[queue] = asyncio.Queue()
            await underlay.basic_consume(queue, buf.put, no_ack=False)
        return buf

    def _delivery(self, queue: str, m: Any) -> Delivery:
        p = m.header.properties
        h = p.headers or {}
        return Delivery(queue, _text(p.message_id or ""), m.body, _user_headers(h), int(h.get("x-delivery-count", 0)) + 1, m)

    async def _fetch(self, queue: str, max_messages: int, wait: float, lease: float) -> list[Delivery]:
        buf = await self._buffer(queue)
        out = []
        if buf.empty() and wait > 0:
            with contextlib.suppress(TimeoutError):
                out.append(await asyncio.wait_for(buf.get(), wait))
        while len(out) < max_messages and not buf.empty():
            out.append(buf.get_nowait())
        self._out.update(m.delivery.delivery_tag for m in out)
        return [self._delivery(queue, m) for m in out]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge the messages: those handed out before every other message still in
        hand with one ``multiple`` ack (the usual batch is all of them), the rest one by one."""
        if not deliveries:
            return
        ch = deliveries[0].handle.channel
        if ch.is_closed or any(d.handle.channel is not ch for d in deliveries):
            raise QueueError("the channel holding the messages closed, so they were delivered again",
                             hint="renew leases more often than they last, and keep the connection open while handling")
        tags = {d.handle.delivery.delivery_tag for d in deliveries}
        others = self._out - tags
        first_other = min(others) if others else None
        below = [t for t in tags if first_other is None or t < first_other]
        if below:  # every message up to there is acknowledged, none held back by another consumer's work
            await ch.basic_ack(max(below), multiple=True, wait=False)
        for t in sorted(tags.difference(below)):
            await ch.basic_ack(t, wait=False)
        self._out -= tags

    async def _requeue(self, delivery: Delivery, error: str) -> None:
        self._out.discard(delivery.handle.delivery.delivery_tag)
        await delivery.handle.channel.basic_nack(delivery.handle.delivery.delivery_tag, requeue=True, wait=False)

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        await self._declare(_dead(delivery.queue), dead=True)
        meta = {f"{_META}attempts": delivery.attempts, f"{_META}error": error[:4000], f"{_META}dead-at": repr(time.time())}
        await self._send(_dead(delivery.queue), delivery.body, delivery.id, {**delivery.headers, **meta})
        self._out.discard(delivery.handle.delivery.delivery_tag)
        await delivery.handle.channel.basic_ack(delivery.handle.delivery.delivery_tag, wait=False)

    async def renew(self, delivery: Delivery, lease: float = DEFAULT_LEASE_S) -> None:
        """The lease lasts as long as the connection: QueueError if it closed."""
        if self._conn is None or self._conn.is_closed or delivery.handle.channel.is_closed:
            raise QueueError(f"message {delivery.id}: the connection holding it closed, so it was delivered again")

    async def _scan(self, queue: str, act: Any) -> int:
        """Read the dead letters on a channel of their own, ``act`` on each, and give back
        the ones not acknowledged by closing that channel."""
        await self._channel()
        ch = await self._conn.channel(publisher_confirms=True)
        try:
            dq = await ch.declare_queue(_dead(queue), durable=True)
            n = 0
            while True:
                m = await dq.get(no_ack=False, fail=False, timeout=10)
                if m is None or not await act(m, ch):
                    break
                n += 1
            return n
        finally:
            await ch.close()

    @staticmethod
    def _letter(queue: str, m: Any) -> DeadLetter:
        h = m.headers or {}
        return DeadLetter(queue, _text(m.message_id or ""), m.body, _user_headers(h), int(h.get(f"{_META}attempts", 0)),
                          _text(h.get(f"{_META}error", "")), float(_text(h.get(f"{_META}dead-at", "0"))))

    async def _dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        out: list[DeadLetter] = []

        async def collect(m: Any, ch: Any) -> bool:
            out.append(self._letter(queue, m))
            return len(out) < limit

        await self._scan(queue, collect)
        return out

    async def _replay(self, queue: str, ids: set[str] | None) -> int:
        await self._declare(queue)
        n = 0

        async def back(m: Any, ch: Any) -> bool:
            nonlocal n
            d = self._letter(queue, m)
            if ids is None or d.id in ids:
                await self._send(queue, d.body, d.id, dict(d.headers))
                await m.ack()
                n += 1
            return True

        await self._scan(queue, back)
        return n

    async def _drop(self, queue: str, ids: set[str] | None) -> int:
        n = 0

        async def delete(m: Any, ch: Any) -> bool:
            nonlocal n
            if ids is None or _text(m.message_id or "") in ids:
                await m.ack()
                n += 1
            return True

        await self._scan(queue, delete)
        return n

    async def close(self) -> None:
        """Close the connection; the broker gives back the messages it held."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = self._ch = None
        self._queues.clear()
        self._buffers.clear()
        self._out.clear()
