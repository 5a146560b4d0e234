"""The online store: each entity's latest feature values, looked up in microseconds.

Backends sit behind :class:`OnlineStore` and are chosen by URL scheme
(``sqlite:///path.db`` by default, ``redis://host:6379/0?prefix=strata:``). A value is
one JSON object per entity and view holding the features plus ``_event_ts`` (event
time of the newest source row used) and ``_as_of`` (when it was computed).

Writes are staged and become visible in one atomic step (:meth:`OnlineStore.commit`):
a crash while materialising leaves readers on the previous complete values. A full
write replaces the view's values; an incremental write merges into them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, urlparse

import orjson

from strataml.errors import ConfigError, MissingExtra, StrataError
from strataml.spine.paths import check_name

KEY_SEP = "\x1f"
MMAP_BYTES = 1 << 34  # address space only; the OS pages in what lookups touch
CACHE_KIB = 65536
META = ("_event_ts", "_as_of")


class OnlineStoreError(StrataError):
    """The online store cannot be reached or written."""


def encode_key(key_columns: Sequence[str], key: dict[str, Any]) -> str:
    """The text form of one entity key (the same as the SQL used when materialising)."""
    if len(key_columns) == 1:
        return str(key[key_columns[0]])
    return KEY_SEP.join(str(key[k]) for k in key_columns)


def key_sql(key_columns: Sequence[str], alias: str = "") -> str:
    """DuckDB SQL giving :func:`encode_key` of a row's key columns."""
    pre = f"{alias}." if alias else ""
    parts = [f"CAST({pre}\"{k}\" AS VARCHAR)" for k in key_columns]
    return parts[0] if len(parts) == 1 else f"concat_ws(chr(31), {', '.join(parts)})"


def _decode(d: dict[str, Any] | None, with_meta: bool, features: Sequence[str]) -> dict[str, Any] | None:
    if d is None:
        return None
    out = {f: d.get(f) for f in features}
    if with_meta:
        out["_event_ts"], out["_as_of"] = d.get("_event_ts"), d.get("_as_of")
    return out


@runtime_checkable
class OnlineStore(Protocol):
    """What every online store backend provides."""

    url: str

    def open(self) -> None:
        """Connect (idempotent)."""

    def close(self) -> None:
        """Release connections."""

    def begin(self, view: str, *, full: bool) -> str:
        """Start a staged write for ``view``; returns its token."""

    def write_batch(self, view: str, token: str, rows: Sequence[tuple[str, str]]) -> None:
        """Stage ``(encoded key, JSON value)`` pairs (invisible until :meth:`commit`)."""

    def commit(self, view: str, token: str, meta: dict[str, Any]) -> None:
        """Make the staged values visible atomically and record ``meta`` (watermark etc.)."""

    def abort(self, view: str, token: str) -> None:
        """Discard a staged write."""

    def get(
        self, view: str, keys: Sequence[dict[str, Any]], *, with_meta: bool = False, features: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """Each key's values (``None`` where the store has none), in the order asked.

        ``features`` selects (and orders) the features returned, nulls for any not stored.
        """

    def meta(self, view: str) -> dict[str, Any] | None:
        """What the last commit recorded for ``view`` (version, watermark, as_of, keys…)."""

    def views(self) -> list[str]:
        """Views that have committed values."""

    def count(self, view: str) -> int:
        """How many entities ``view`` holds."""


class _Base:
    url: str
    _meta_cache: dict[str, dict[str, Any]]

    def meta(self, view: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _get_raw(self, view: str, encoded: list[str]) -> list[str | bytes | None]:
        raise NotImplementedError

    def _key_columns(self, view: str, sample: dict[str, Any]) -> list[str] | None:
        cached = self._meta_cache.get(view)
        if cached is None or not all(k in sample for k in cached["keys"]):
            fresh = self.meta(view)
            if fresh is None:
                return None
            self._meta_cache[view] = cached = fresh
        cols: list[str] = cached["keys"]
        return cols

    def _get_values(self, view: str, encoded: list[str]) -> list[dict[str, Any] | None]:
        """Each encoded key's decoded value (meta included), ``None`` where absent."""
        return [orjson.loads(r) if r is not None else None for r in self._get_raw(view, encoded)]

    def get(
        self, view: str, keys: Sequence[dict[str, Any]], *, with_meta: bool = False, features: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        cols = self._key_columns(view, keys[0])
        if cols is None:
            return [None] * len(keys)
        try:
            if len(cols) == 1:
                col = cols[0]
                encoded = [str(k[col]) for k in keys]
            else:
                encoded = [KEY_SEP.join([str(k[c]) for c in cols]) for k in keys]
        except KeyError:
            for k in keys:
                missing = [c for c in cols if c not in k]
                if missing:
                    raise StrataError(f"key {k!r} for view {view!r} lacks column(s) {missing}", hint=f"give {cols}") from None
            raise
        values = self._get_values(view, encoded)
        if features is not None and (self._meta_cache.get(view) or {}).get("features") == list(features):
            features = None  # stored exactly these features, in this order: no projection needed
        if features is not None:
            return [_decode(d, with_meta, features) for d in values]
        if not with_meta:
            for d in values:
                if d is not None:
                    d.pop("_event_ts", None)
                    d.pop("_as_of", None)
        return values


# --- SQLite ---------------------------------------------------------------------------------


# the values of a JSON array of keys, as one JSON array in the keys' order (null where absent)
_MANY = (
    "SELECT '[' || group_concat(coalesce(v.value, 'null'), ',') || ']' "
    "FROM json_each(?) j LEFT JOIN v ON v.key = j.value"
)


class SQLiteOnlineStore(_Base):
    """Online store in SQLite: a catalog file plus one immutable file per view generation.

    The catalog file (the URL's path) holds each view's metadata and the name of its
    current generation file (``<path>.<view>.<token>.fv``, one WITHOUT ROWID table keyed by
    the encoded entity key). A write fills a new generation file with journalling off
    (nothing reads it yet), syncs it, then switches the catalog row in one transaction:
    a crash at any point leaves readers on the previous complete file. An incremental
    write starts from a copy of the current file. Readers open generation files
    read-only and immutable (no locks, memory-mapped) and notice a switch through the
    catalog's ``data_version``.
    """

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else parsed.path
        if not path:
            raise ConfigError(f"online store URL {url!r} names no file", hint="use sqlite:///path/to/online.db")
        self.url = url
        self.path = path
        self._local = threading.local()
        self._meta_cache = {}
        self._writers: dict[str, tuple[sqlite3.Connection, str]] = {}

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, cached_statements=256)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS strata_online_meta (view TEXT PRIMARY KEY, meta TEXT NOT NULL)")
                conn.execute("CREATE TABLE IF NOT EXISTS strata_online_files (view TEXT PRIMARY KEY, file TEXT NOT NULL)")
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"cannot open online store {self.path}: {exc}", hint="check the 'online' setting") from exc
            self._local.conn = conn
            self._local.version = conn.execute("PRAGMA data_version").fetchone()[0]
            self._local.readers = {}
        return conn

    def open(self) -> None:
        self._conn()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            for reader in self._local.readers.values():
                if reader is not None:
                    reader.close()
            conn.close()
            self._local.conn = None

    def _file(self, view: str, token: str) -> str:
        check_name(view, "feature view name")
        return f"{self.path}.{view}.{token}.fv"

    def _current(self, view: str) -> str | None:
        row = self._conn().execute("SELECT file FROM strata_online_files WHERE view = ?", (view,)).fetchone()
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), row[0]) if row else None

    def begin(self, view: str, *, full: bool) -> str:
        current = self._current(view)
        for stale in glob.glob(glob.escape(self._file(view, "")[:-3]) + "*.fv"):  # left by a crashed run
            if os.path.abspath(stale) != current:
                with contextlib.suppress(OSError):
                    os.remove(stale)
        token = uuid.uuid4().hex[:12] + ("f" if full else "i")
        target = self._file(view, token)
        try:
            if not full and current is not None and os.path.exists(current):
                shutil.copyfile(current, target)  # generation files are never modified once live
            w = sqlite3.connect(target, isolation_level=None)
            w.execute("PRAGMA journal_mode=OFF")  # a half-written file is never read: see commit()
            w.execute("PRAGMA synchronous=OFF")
            w.execute("PRAGMA cache_size=-262144")
            w.execute("CREATE TABLE IF NOT EXISTS v (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
            w.execute("BEGIN")
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                os.remove(target)
            raise OnlineStoreError(f"cannot stage a write of {view!r} in {target}: {exc}", hint="check free disk space") from exc
        self._writers[token] = (w, target)
        return token

    def _writer(self, view: str, token: str) -> tuple[sqlite3.Connection, str]:
        got = self._writers.get(token)
        if got is None:
            raise OnlineStoreError(f"no staged write {token!r} of view {view!r} in this client", hint="call begin() first")
        return got

    def write_batch(self, view: str, token: str, rows: Sequence[tuple[str, str]]) -> None:
        w, _ = self._writer(view, token)
        w.executemany("INSERT OR REPLACE INTO v VALUES (?, ?)", rows)

    def commit(self, view: str, token: str, meta: dict[str, Any]) -> None:
        w, target = self._writer(view, token)
        w.execute("COMMIT")
        w.close()
        del self._writers[token]
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)  # the file is complete on disk before the catalog points at it
        finally:
            os.close(fd)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            old = self._current(view)
            conn.execute("INSERT OR REPLACE INTO strata_online_files VALUES (?, ?)", (view, os.path.basename(target)))
            conn.execute("INSERT OR REPLACE INTO strata_online_meta VALUES (?, ?)", (view, orjson.dumps(meta).decode()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if old is not None and old != target:
            with contextlib.suppress(OSError):
                os.remove(old)  # readers holding it open keep reading it until they notice the switch
        self._forget_switched(conn)

    def abort(self, view: str, token: str) -> None:
        got = self._writers.pop(token, None)
        if got is not None:
            got[0].close()
        with contextlib.suppress(OSError):
            os.remove(self._file(view, token))

    def _forget_switched(self, conn: sqlite3.Connection) -> None:
        """Drop the readers (and cached metadata) of views whose file was switched.

        Other writers share this database (the gateway's rate limits, say), so a commit
        does not mean a view changed: only a changed file name does.
        """
        files = dict(conn.execute("SELECT view, file FROM strata_online_files").fetchall())
        known: dict[str, str] = getattr(self._local, "files", {})
        for view in set(known) | set(files):
            if known.get(view) != files.get(view):
                reader = self._local.readers.pop(view, None)
                if reader is not None:
                    reader.close()
                self._meta_cache.pop(view, None)
        self._local.files = files

    def _reader(self, view: str) -> sqlite3.Connection | None:
        conn = self._conn()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._local.version:  # another connection committed: files may have switched
            self._local.version = version
            self._forget_switched(conn)
        readers: dict[str, sqlite3.Connection | None] = self._local.readers
        if view in readers:
            return readers[view]
        reader = None
        for _ in range(3):  # the file can be replaced between reading its name and opening it
            current = self._current(view)
            if current is None:
                break
            try:
                reader = sqlite3.connect(f"file:{quote(current)}?mode=ro&immutable=1", uri=True, cached_statements=256)
                reader.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # lookups read pages without a syscall
                reader.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                break
            except sqlite3.OperationalError:
                reader = None
        readers[view] = reader
        return reader

    def _get_values(self, view: str, encoded: list[str]) -> list[dict[str, Any] | None]:
        reader = self._reader(view)
        if reader is None:
            return [None] * len(encoded)
        try:
            if len(encoded) == 1:
                row = reader.execute("SELECT value FROM v WHERE key = ?", encoded).fetchone()
                return [orjson.loads(row[0]) if row else None]
            # one statement and one decode for the whole batch: the values in the order asked
            row = reader.execute(_MANY, (orjson.dumps(encoded),)).fetchone()
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"online store {self.path} could not be read: {exc}") from exc
        values: list[dict[str, Any] | None] = orjson.loads(row[0])
        return values

    def meta(self, view: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT meta FROM strata_online_meta WHERE view = ?", (view,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def views(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT view FROM strata_online_meta ORDER BY view")]

    def count(self, view: str) -> int:
        reader = self._reader(view)
        return 0 if reader is None else int(reader.execute("SELECT count(*) FROM v").fetchone()[0])


# --- Redis ----------------------------------------------------------------------------------

_GET = """
local g = redis.call('GET', KEYS[1])
if not g then return false end
return redis.call('HMGET', ARGV[1] .. g, unpack(ARGV, 2))
"""

_MERGE = """
local kv = redis.call('HGETALL', KEYS[2])
for i = 1, #kv, 2 do redis.call('HSET', KEYS[1], kv[i], kv[i + 1]) end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return #kv / 2
"""


class RedisOnlineStore(_Base):
    """Online store in Redis: one hash per view generation, switched atomically.

    ``prefix`` (URL query ``?prefix=``, default ``strata:``) namespaces every key.
    Lookups run one server-side script (a round trip) that reads the current
    generation and the values together, so a reader never sees a half-written one.
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
        self._meta_cache = {}
        self._checked: set[str] = set()
        self._get_script: Any = None

    def _c(self) -> Any:
        if self._client is None:
            self._client = self._redis.Redis.from_url(self._clean)
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
        self._meta_cache.pop(view, None)

    def abort(self, view: str, token: str) -> None:
        self._c().unlink(self._k(view, f"data:{token}"))

    def _get_raw(self, view: str, encoded: list[str]) -> list[str | bytes | None]:
        self._c()
        out: list[str | bytes | None] = []
        base = self._k(view, "data:")
        try:
            for i in range(0, len(encoded), 1000):
                chunk = encoded[i : i + 1000]
                got = self._get_script(keys=[self._k(view, "gen")], args=[base, *chunk])
                out += got if got else [None] * len(chunk)
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


#: URL scheme → backend class
BACKENDS: dict[str, type[_Base]] = {"sqlite": SQLiteOnlineStore, "redis": RedisOnlineStore, "rediss": RedisOnlineStore}


def open_online_store(url: str) -> OnlineStore:
    """The online store a URL names (``sqlite:///…`` or ``redis://…``), opened."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    cls = BACKENDS.get(scheme)
    if cls is None:
        raise ConfigError(
            f"online store URL {url.split('@')[-1]!r} has an unknown scheme {scheme!r}",
            hint=f"use one of {', '.join(s + '://' for s in BACKENDS)} (setting 'online' / STRATA_ONLINE)",
        )
    store: OnlineStore = cls(url)  # type: ignore[assignment, call-arg]
    store.open()
    return store
