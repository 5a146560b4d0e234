"""The online store: each entity's latest feature values, looked up in microseconds.

Backends sit behind :class:`OnlineStore` and are chosen by URL scheme
(``sqlite:///path.db`` by default, ``redis://host:6379/0?prefix=strata:``). A value is
one JSON array per entity and view (see :func:`encode_value`): the features in the
order the view's metadata lists them (``meta["features"]``, with ``meta["layout"] ==
"array"``), then ``_event_ts`` (event time of the newest source row used) and
``_as_of`` (when it was computed). Stores written before that layout hold one JSON
object per entity (no ``layout`` in the metadata) and are still read.

Writes are staged and become visible in one atomic step (:meth:`OnlineStore.commit`):
a crash while materialising leaves readers on the previous complete values. A full
write replaces the view's values; an incremental write merges into them.
"""

from __future__ import annotations

from strataml.features.online._codec import KEY_SEP, LAYOUT, META, encode_key, encode_value, key_sql
from strataml.features.online._protocol import OnlineStore, OnlineStoreError
from strataml.features.online._redis import RedisOnlineStore
from strataml.features.online._sqlite import SQLiteOnlineStore
from strataml.spine import Backend, BackendKind

#: the online-store backends, by URL scheme (more through the ``strataml.backends`` entry points)
BACKENDS = BackendKind(
    "online_store",
    "setting 'online' / STRATA_ONLINE",
    {
        "sqlite": Backend("strataml.features.online._sqlite:SQLiteOnlineStore"),
        "redis": Backend("strataml.features.online._redis:RedisOnlineStore", ("redis", "redis")),
        "rediss": Backend("strataml.features.online._redis:RedisOnlineStore", ("redis", "redis")),
    },
)
#: URL schemes of the built-in backends
SCHEMES = tuple(BACKENDS.schemes)


def open_online_store(url: str) -> OnlineStore:
    """The online store a URL names (``sqlite:///…``, ``redis://…`` or a registered scheme), opened."""
    store: OnlineStore = BACKENDS.resolve(url)(url)
    store.open()
    return store


__all__ = [
    "BACKENDS",
    "KEY_SEP",
    "LAYOUT",
    "META",
    "OnlineStore",
    "OnlineStoreError",
    "RedisOnlineStore",
    "SQLiteOnlineStore",
    "encode_key",
    "encode_value",
    "key_sql",
    "open_online_store",
]
