"""The response cache: predictions keyed by model version and canonical request, with a TTL.

Keys are the model version together with the request's instances serialised with
sorted keys (hashed when long), so two requests that differ only in key order share
an entry and a new model version never sees an old version's answers. Backends:
in-process LRU (default) or Redis by URL. The fallback chain also reads it when a
model fails, which is why every answer is stored: the in-process backend keeps the
prediction lists themselves (copied in and out), so storing one costs a dictionary
update, not a serialisation.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from strataml.spine import Backend, BackendKind, redis_client

#: keys up to this long are kept as they are; longer ones by their SHA-256
_RAW_KEY_BYTES = 256


def cache_key(model_ref: str, instances: list[dict[str, Any]]) -> bytes:
    """The cache key of a request to ``model_ref`` (``NAME@vN``)."""
    key = b"=" + model_ref.encode() + b"\x00" + orjson.dumps(instances, option=orjson.OPT_SORT_KEYS)
    return key if len(key) <= _RAW_KEY_BYTES else b"#" + hashlib.sha256(key).digest()


class ResponseCache(Protocol):
    """A TTL cache of prediction lists."""

    def get(self, key: bytes) -> list[Any] | None:
        """The cached predictions, or None when absent or expired."""
        ...

    def set(self, key: bytes, value: list[Any], ttl: float) -> None:
        """Store predictions for ``ttl`` seconds."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryCache:
    """An in-process LRU cache bounded by entry count."""

    remote = False

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[bytes, tuple[float, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> list[Any] | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            expires, value = hit
            if expires < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
        return list(value)

    def set(self, key: bytes, value: list[Any], ttl: float) -> None:
        entry = (time.monotonic() + ttl, list(value))
        with self._lock:
            data = self._data
            data[key] = entry
            data.move_to_end(key)  # a replaced entry keeps its place otherwise
            if len(data) > self.max_entries:
                data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        return None


class RedisCache:
    """A cache shared by every gateway through Redis (entries expire server-side;
    ``remote``: its calls can hang on the network, so the gateway makes them off the loop)."""

    remote = True

    def __init__(self, url: str, prefix: str = "strata:cache:") -> None:
        self._r = redis_client(url, "a response cache in Redis", timeout=1)
        self.prefix = prefix

    def _name(self, key: bytes) -> str:
        return self.prefix + hashlib.sha256(key).hexdigest()

    def get(self, key: bytes) -> list[Any] | None:
        blob = self._r.get(self._name(key))
        if blob is None:
            return None
        value: list[Any] = orjson.loads(blob)
        return value

    def set(self, key: bytes, value: list[Any], ttl: float) -> None:
        self._r.set(self._name(key), orjson.dumps(value), px=max(1, int(ttl * 1000)))

    def close(self) -> None:
        self._r.close()


#: the response-cache backends, by URL scheme (more through the ``strataml.backends`` entry points)
BACKENDS = BackendKind(
    "response_cache",
    "serve --cache",
    {
        "memory": Backend("strataml.serving._cache:memory_cache"),
        "redis": Backend("strataml.serving._cache:RedisCache", ("redis", "redis")),
        "rediss": Backend("strataml.serving._cache:RedisCache", ("redis", "redis")),
        "unix": Backend("strataml.serving._cache:RedisCache", ("redis", "redis")),
    },
)


def memory_cache(url: str) -> MemoryCache:
    """The in-process cache (``memory://``)."""
    return MemoryCache()


def open_cache(url: str | None) -> ResponseCache:
    """The cache for ``url``: ``memory://`` (default) or ``redis://host:port/db``."""
    cache: ResponseCache = BACKENDS.resolve(url or "memory://")(url or "memory://")
    return cache
