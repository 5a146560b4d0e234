"""Redis Streams (``redis://host:6379/0``): one stream per queue, one consumer group.

A message is a stream entry (fields ``id``, ``body``, ``headers``, ``prior``); a fetch
reads new entries with ``XREADGROUP`` and first takes over entries whose consumer let
the lease lapse (a sorted set holds each lease's end) with ``XAUTOCLAIM``. The delivery count is
the group's own (``XPENDING``) plus ``prior``, the deliveries before a reject re-added
the entry. Taking messages and renewing a lease are Lua scripts, atomic on the server. Dead letters are a second stream per queue.
Durability is Redis's own (AOF with ``appendfsync always`` for no loss on a crash).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from strataml.spine.queue._protocol import (
    DEFAULT_LEASE_S,
    DEFAULT_MAX_DELIVERIES,
    BaseQueue,
    DeadLetter,
    Delivery,
    Outgoing,
    QueueError,
)

GROUP = "strata"


def _key(queue: str) -> str:
    return f"strata:queue:{queue}"


def _dlq(queue: str) -> str:
    return f"strata:queue:{queue}:dead"


def _leases(queue: str) -> str:
    return f"strata:queue:{queue}:leases"


#: take (atomically) up to N messages: entries whose lease lapsed first, then new ones;
#: each gets a lease (a score in the leases sorted set) and its delivery count
_TAKE = """
local out = {}
local n = tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, n)
for _, sid in ipairs(due) do
  local c = redis.call('XCLAIM', KEYS[1], ARGV[3], ARGV[4], 0, sid)
  if c[1] then
    redis.call('ZADD', KEYS[2], ARGV[5], sid)
    local p = redis.call('XPENDING', KEYS[1], ARGV[3], sid, sid, 1)
    table.insert(out, {sid, c[1][2], p[1][4]})
  else
    redis.call('ZREM', KEYS[2], sid)
  end
end
if #out < n then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[3], ARGV[4], 'COUNT', n - #out, 'STREAMS', KEYS[1], '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      redis.call('ZADD', KEYS[2], ARGV[5], e[1])
      table.insert(out, {e[1], e[2], 1})
    end
  end
end
return out
"""

#: extend a lease, if this consumer still holds the entry
_RENEW = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if p[1] == nil or p[1][2] ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[3])
return 1
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisQueue(BaseQueue):
    """A queue on Redis Streams consumer groups."""

    scheme = "redis"

    def __init__(self, url: str, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES) -> None:
        super().__init__(url, max_deliveries=max_deliveries)
        import redis.asyncio as aioredis

        self._r: Any = aioredis.Redis.from_url(url)
        self._consumer = uuid.uuid4().hex
        self._groups: set[str] = set()
        self._take = self._r.register_script(_TAKE)
        self._renew = self._r.register_script(_RENEW)

    async def _group(self, queue: str) -> str:
        key = _key(queue)
        if key not in self._groups:
            import redis

            try:
                await self._r.xgroup_create(key, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise QueueError(f"cannot create the consumer group of {queue!r}: {exc}") from exc
            self._groups.add(key)
        return key

    async def _publish(self, queue: str, messages: Sequence[Outgoing]) -> None:
        key = await self._group(queue)
        async with self._r.pipeline(transaction=True) as p:
            for m in messages:
                p.xadd(key, {"id": m.id, "body": m.body, "headers": orjson.dumps(m.headers), "prior": 0})
            await p.execute()

    def _delivery(self, queue: str, item: Any) -> Delivery:
        sid, flat, delivered = item
        f = {_s(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        return Delivery(queue, _s(f["id"]), bytes(f["body"]), orjson.loads(f["headers"]), int(f.get("prior", 0)) + int(delivered), _s(sid))

    async def _fetch(self, queue: str, max_messages: int, wait: float, lease: float) -> list[Delivery]:
        key = await self._group(queue)
        deadline = time.monotonic() + wait
        pause = 0.002
        while True:
            now = time.time()
            got = await self._take(keys=[key, _leases(queue)], args=[repr(now), max_messages, GROUP, self._consumer, repr(now + lease)])
            if got or time.monotonic() >= deadline:
                return [self._delivery(queue, item) for item in got]
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 0.05)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge and delete the entries."""
        if not deliveries:
            return
        async with self._r.pipeline(transaction=True) as p:
            for d in deliveries:
                p.xack(_key(d.queue), GROUP, d.handle)
                p.xdel(_key(d.queue), d.handle)
                p.zrem(_leases(d.queue), d.handle)
            await p.execute()

    async def _requeue(self, delivery: Delivery, error: str) -> None:
        key = _key(delivery.queue)
        async with self._r.pipeline(transaction=True) as p:
            p.xadd(key, {"id": delivery.id, "body": delivery.body, "headers": orjson.dumps(delivery.headers), "prior": delivery.attempts, "error": error})
            p.xack(key, GROUP, delivery.handle)
            p.xdel(key, delivery.handle)
            p.zrem(_leases(delivery.queue), delivery.handle)
            await p.execute()

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        key = _key(delivery.queue)
        async with self._r.pipeline(transaction=True) as p:
            p.xadd(_dlq(delivery.queue), {"id": delivery.id, "body": delivery.body, "headers": orjson.dumps(delivery.headers),
                                          "attempts": delivery.attempts, "error": error, "dead_at": repr(time.time())})
            p.xack(key, GROUP, delivery.handle)
            p.xdel(key, delivery.handle)
            p.zrem(_leases(delivery.queue), delivery.handle)
            await p.execute()

    async def renew(self, delivery: Delivery, lease: float = DEFAULT_LEASE_S) -> None:
        """Extend the lease; QueueError if it lapsed and another consumer took the entry."""
        held = await self._renew(keys=[_key(delivery.queue), _leases(delivery.queue)],
                                 args=[GROUP, self._consumer, delivery.handle, repr(time.time() + lease)])
        if not held:
            raise QueueError(f"message {delivery.id}: the lease lapsed and the message was delivered again", hint="renew leases more often than they last")

    async def _entries(self, queue: str, limit: int | None = None) -> list[tuple[str, DeadLetter]]:
        items = await self._r.xrange(_dlq(queue), count=limit)
        out = []
        for sid, fields in items:
            f = {_s(k): v for k, v in fields.items()}
            out.append((_s(sid), DeadLetter(queue, _s(f["id"]), bytes(f["body"]), orjson.loads(f["headers"]), int(f["attempts"]),
                                            _s(f["error"]), float(f["dead_at"]))))
        return out

    async def _dead_letters(self, queue: str, limit: int) -> list[DeadLetter]:
        return [d for _, d in await self._entries(queue, limit)]

    async def _replay(self, queue: str, ids: set[str] | None) -> int:
        key = await self._group(queue)
        chosen = [(sid, d) for sid, d in await self._entries(queue) if ids is None or d.id in ids]
        async with self._r.pipeline(transaction=True) as p:
            for sid, d in chosen:
                p.xadd(key, {"id": d.id, "body": d.body, "headers": orjson.dumps(d.headers), "prior": 0})
                p.xdel(_dlq(queue), sid)
            await p.execute()
        return len(chosen)

    async def _drop(self, queue: str, ids: set[str] | None) -> int:
        chosen = [sid for sid, d in await self._entries(queue) if ids is None or d.id in ids]
        if chosen:
            await self._r.xdel(_dlq(queue), *chosen)
        return len(chosen)

    async def close(self) -> None:
        """Close the connection pool; leases held lapse after their time."""
        await self._r.aclose()
