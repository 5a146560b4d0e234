"""The Redis online store: one hash per view generation, switched atomically."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from strataml.errors import MissingExtra, StrataError
from strataml.features.online._codec import Layout, check_merge, encode_keys
from strataml.features.online._protocol import OnlineStoreError
from strataml.spine import check_name, redis_client

#: seconds a Redis online-store call may wait on its socket
REDIS_TIMEOUT_S = 10.0

# the values in the current generation; when that is not the generation the client knows
# (ARGV[2]), {generation, its metadata, the values}
_GET = """
local g = redis.call('GET', KEYS[1])
if not g then return false end
local v = redis.call('HMGET', ARGV[1] .. g, unpack(ARGV, 3))
if g ~= ARGV[2] then return {g, redis.call('GET', KEYS[2]), v} end
return v
"""

_MERGE = """
local kv = redis.call('HGETALL', KEYS[2])
for i = 1, #kv, 2 do redis.call('HSET', KEYS[1], kv[i], kv[i + 1]) end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return #kv / 2
"""


class RedisOnlineStore:
    """Online store in Redis: one hash per view generation, switched atomically.

    ``prefix`` (URL query ``?prefix=``, default ``strata:``) namespaces every key.
    Lookups run one server-side script (a round trip) that reads the current
    generation and the values together, so a reader never sees a half-written one;
    it also returns the generation's metadata when the client has not seen that
    generation, so values are always decoded with the metadata committed with them.
    """

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError as exc:
            raise MissingExtra("redis", "redis", "the Redis online store") from exc
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        self.prefix = query.pop("prefix", ["strata:"])[0]
        clean = parsed._replace(query="&".join(f"{k}={v[0]}" for k, v in query.items())).geturl()
        self.url = url
        self._redis = redis
        self._client: Any = None
        self._clean = clean
        self._layouts: dict[str, tuple[str, Layout]] = {}  # view -> (generation, its layout)
        self._checked: set[str] = set()
        self._get_script: Any = None

    def _c(self) -> Any:
        if self._client is None:
            # a socket timeout, so that a Redis that stops answering fails a lookup instead of hanging it
            self._client = redis_client(self._clean, "the Redis online store", timeout=REDIS_TIMEOUT_S)
            try:
                self._client.ping()
            except self._redis.RedisError as exc:
                self._client = None
                safe = urlparse(self._clean)._replace(netloc=urlparse(self._clean).hostname or "").geturl()
                raise OnlineStoreError(f"cannot reach the Redis online store at {safe}: {exc}",
                                       hint="start Redis or fix the 'online' setting (STRATA_ONLINE)") from exc
            self._get_script = self._client.register_script(_GET)
        return self._client

    def _k(self, view: str, part: str) -> str:
        if view not in self._checked:
            check_name(view, "feature view name")
            self._checked.add(view)
        return f"{self.prefix}fv:{view}:{part}"

    def open(self) -> None:
        self._c()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def begin(self, view: str, *, full: bool) -> str:
        c = self._c()
        token = uuid.uuid4().hex[:12] + ("f" if full else "i")
        c.delete(self._k(view, f"data:{token}"))
        return token

    def write_batch(self, view: str, token: str, rows: Sequence[tuple[str, str]]) -> None:
        if rows:
            self._c().hset(self._k(view, f"data:{token}"), mapping=dict(rows))

    def commit(self, view: str, token: str, meta: dict[str, Any]) -> None:
        c = self._c()
        gen_key, meta_key, views_key = self._k(view, "gen"), self._k(view, "meta"), f"{self.prefix}views"
        blob = orjson.dumps(meta).decode()
        old = c.get(gen_key)
        if token.endswith("i") and old is not None:
            check_merge(view, self.meta(view), meta)
            c.register_script(_MERGE)(
                keys=[self._k(view, "data:" + old.decode()), self._k(view, f"data:{token}"), meta_key, views_key],
                args=[blob, view],
            )
        else:
            pipe = c.pipeline(transaction=True)
            if not c.exists(self._k(view, f"data:{token}")):
                pipe.hset(self._k(view, f"data:{token}"), "\x00", "{}")  # an empty generation still exists
            pipe.set(gen_key, token).set(meta_key, blob).sadd(views_key, view)
            pipe.execute()
            if old is not None and old.decode() != token:
                c.unlink(self._k(view, "data:" + old.decode()))

    def abort(self, view: str, token: str) -> None:
        self._c().unlink(self._k(view, f"data:{token}"))

    def get(
        self, view: str, keys: Sequence[dict[str, Any]], *, with_meta: bool = False, features: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        self._c()
        gen, layout = self._layouts.get(view) or ("", None)
        if layout is None:
            meta = self.meta(view)
            if meta is None:
                return [None] * len(keys)
            layout = Layout(meta)
        try:
            encoded = encode_keys(view, layout.keys, keys)
        except StrataError:
            if self._layouts.pop(view, None) is None:
                raise
            return self.get(view, keys, with_meta=with_meta, features=features)  # the key columns may have changed
        out: list[dict[str, Any] | None] = []
        names = [self._k(view, "gen"), self._k(view, "meta")]
        base = self._k(view, "data:")
        try:
            for i in range(0, len(encoded), 1000):
                chunk = encoded[i : i + 1000]
                got = self._get_script(keys=names, args=[base, gen, *chunk])
                if not got:
                    out += [None] * len(chunk)
                    continue
                raw = got
                if len(got) == 3 and isinstance(got[2], list):  # a generation this client has not decoded yet
                    g, m, raw = got
                    if m is None:
                        raise OnlineStoreError(f"the Redis online store holds values of {view!r} without metadata",
                                               hint="materialise the view again")
                    gen, fresh = g.decode(), Layout(orjson.loads(m))
                    self._layouts[view] = (gen, fresh)
                    if fresh.keys != layout.keys:  # the keys were encoded for other key columns
                        return self.get(view, keys, with_meta=with_meta, features=features)
                    layout = fresh
                out += layout.rows([None if r is None else orjson.loads(r) for r in raw], features, with_meta)
        except self._redis.RedisError as exc:
            raise OnlineStoreError(f"the Redis online store failed a lookup of {view!r}: {exc}") from exc
        return out

    def meta(self, view: str) -> dict[str, Any] | None:
        raw = self._c().get(self._k(view, "meta"))
        return orjson.loads(raw) if raw else None

    def views(self) -> list[str]:
        return sorted(v.decode() for v in self._c().smembers(f"{self.prefix}views"))

    def count(self, view: str) -> int:
        g = self._c().get(self._k(view, "gen"))
        if g is None:
            return 0
        n = int(self._c().hlen(self._k(view, "data:" + g.decode())))
        return n - int(bool(self._c().hexists(self._k(view, "data:" + g.decode()), "\x00")))
