"""NATS JetStream (``nats://host:4222``) through nats-py.

Each queue is a file-backed work-queue stream (``STRATA_Q_<queue>``, subject
``strata.q.<queue>``) read by one durable pull consumer shared by every handle, so each
message goes to one of them. The lease is the consumer's ``ack_wait``, set from the
``lease`` of the first fetch that creates the consumer; ``renew`` is JetStream's
in-progress signal, which restarts it. The delivery count is JetStream's own. A publish
carries the message id as ``Nats-Msg-Id``, so the server drops a duplicate publish
within its duplicate window. Dead letters go to a second stream, ``STRATA_DLQ_<queue>``,
read message by message and deleted one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
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

_ID = "Strata-Id"
_META = "Strata-"


def _user_headers(h: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (h or {}).items() if not k.startswith(_META) and not k.startswith("Nats-")}


class NatsQueue(BaseQueue):
    """A queue on NATS JetStream work-queue streams."""

    scheme = "nats"

    def __init__(self, url: str, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES, max_ack_pending: int = 20_000) -> None:
        super().__init__(url, max_deliveries=max_deliveries)
        self.max_ack_pending = max_ack_pending
        self._nc: Any = None
        self._js: Any = None
        self._streams: set[str] = set()
        self._subs: dict[str, Any] = {}

    async def _jetstream(self) -> Any:
        if self._js is None:
            import nats

            try:
                self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=True)
            except Exception as exc:
                raise QueueError(f"cannot connect to NATS at {self.url}: {exc}", hint="check the nats:// URL and that nats-server runs with -js") from exc
            self._js = self._nc.jetstream()
        return self._js

    async def _stream(self, name: str, subject: str, work_queue: bool) -> Any:
        js = await self._jetstream()
        if name not in self._streams:
            from nats.js.api import RetentionPolicy, StorageType
            from nats.js.errors import BadRequestError

            try:
                await js.add_stream(name=name, subjects=[subject], storage=StorageType.FILE,
                                    retention=RetentionPolicy.WORK_QUEUE if work_queue else RetentionPolicy.LIMITS)
            except BadRequestError as exc:
                if "already in use" not in str(exc):
                    raise QueueError(f"cannot create the JetStream stream {name}: {exc}") from exc
            self._streams.add(name)
        return js

    async def _main(self, queue: str) -> Any:
        return await self._stream(f"STRATA_Q_{queue}", f"strata.q.{queue}", True)

    async def _dlq(self, queue: str) -> Any:
        return await self._stream(f"STRATA_DLQ_{queue}", f"strata.dlq.{queue}", False)

    async def _publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        js = await self._main(queue)
        subject, stream = f"strata.q.{queue}", f"STRATA_Q_{queue}"
        await asyncio.gather(*(js.publish(subject, m.body, stream=stream, headers={**m.headers, _ID: m.id, "Nats-Msg-Id": f"{queue}.{m.id}"})
                               for m in messages))

    async def _sub(self, queue: str, lease: float) -> Any:
        sub = self._subs.get(queue)
        if sub is None:
            from nats.js.api import ConsumerConfig

            js = await self._main(queue)
            config = ConsumerConfig(ack_wait=lease, max_deliver=-1, max_ack_pending=self.max_ack_pending)
            sub = self._subs[queue] = await js.pull_subscribe(f"strata.q.{queue}", durable="strata", stream=f"STRATA_Q_{queue}", config=config)
        return sub

    async def _fetch(self, queue: str, max_messages: int, wait: float, lease: float) -> list[Delivery]:
        import nats.errors

        sub = await self._sub(queue, lease)
        try:
            msgs = await sub.fetch(max_messages, timeout=max(wait, 0.05))
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        return [Delivery(queue, (m.headers or {}).get(_ID, ""), m.data, _user_headers(m.headers), int(m.metadata.num_delivered), m) for m in msgs]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge the messages (the work-queue stream deletes them)."""
        for d in deliveries:
            await d.handle.ack()

    async def _requeue(self, delivery: Delivery, error: str) -> None:
        await delivery.handle.nak()

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        js = await self._dlq(delivery.queue)
        headers = {**delivery.headers, _ID: delivery.id, f"{_META}Attempts": str(delivery.attempts),
                   f"{_META}Error": error[:4000].replace("\r", " ").replace("\n", " "), f"{_META}Dead-At": repr(time.time())}
        await js.publish(f"strata.dlq.{delivery.queue}", delivery.body, stream=f"STRATA_DLQ_{delivery.queue}", headers=headers)
        await delivery.handle.term()

    async def renew(self, delivery: Delivery, lease: float = DEFAULT_LEASE_S) -> None:
        """Restart the ack wait (the consumer's lease length)."""
        await delivery.handle.in_progress()

    async def _entries(self, queue: str, limit: int | None = None) -> list[tuple[int, DeadLetter]]:
        from nats.js.errors import NotFoundError

        js = await self._dlq(queue)
        stream = f"STRATA_DLQ_{queue}"
        state = (await js.stream_info(stream)).state
        out: list[tuple[int, DeadLetter]] = []
        if not state.messages:
            return out
        for seq in range(state.first_seq, state.last_seq + 1):
            if limit is not None and len(out) >= limit:
                break
            try:
                m = await js.get_msg(stream, seq)
            except NotFoundError:
                continue
            h = m.headers or {}
            out.append((seq, DeadLetter(queue, h.get(_ID, ""), m.data or b"", _user_headers(h), int(h.get(f"{_META}Attempts", 0)),
                                        h.get(f"{_META}Error", ""), float(h.get(f"{_META}Dead-At", 0)))))
        return out

    async def _dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        return [d for _, d in await self._entries(queue, limit)]

    async def _replay(self, queue: str, ids: set[str] | None) -> int:
        chosen = [(seq, d) for seq, d in await self._entries(queue) if ids is None or d.id in ids]
        js = await self._main(queue)
        for seq, d in chosen:
            await js.publish(f"strata.q.{queue}", d.body, stream=f"STRATA_Q_{queue}",
                             headers={**d.headers, _ID: d.id, "Nats-Msg-Id": f"{queue}.{d.id}.replay.{uuid.uuid4().hex}"})
            await js.delete_msg(f"STRATA_DLQ_{queue}", seq)
        return len(chosen)

    async def _drop(self, queue: str, ids: set[str] | None) -> int:
        chosen = [seq for seq, d in await self._entries(queue) if ids is None or d.id in ids]
        js = await self._dlq(queue)
        for seq in chosen:
            await js.delete_msg(f"STRATA_DLQ_{queue}", seq)
        return len(chosen)

    async def close(self) -> None:
        """Close the connection; leases held lapse after the ack wait."""
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = self._js = None
        self._streams.clear()
        self._subs.clear()
