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

import contextlib
import glob
import itertools
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlparse

import orjson

from strataml.errors import ConfigError, StrataError
from strataml.spine.data_version import DataVersion
from strataml.spine.paths import check_name
from strataml.spine.sqlite_wal import use_wal

KEY_SEP = "\x1f"
MMAP_BYTES = 1 << 34  # address space only; the OS pages in what lookups touch
CACHE_KIB = 65536
_commits = itertools.count(1)
# catalog path -> a fresh number at every commit made in this process: its readers see it at once
_LOCAL_COMMITS: dict[str, int] = {}
META = ("_event_ts", "_as_of")
LAYOUT = "array"  # meta["layout"] of values written as encode_value() arrays



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


def encode_value(features: Sequence[str], values: Mapping[str, Any]) -> str:
    """The stored form of one entity's values: a JSON array of ``features`` then the two meta fields.

    ``values`` maps feature names (and ``_event_ts`` / ``_as_of``) to values; absent
    ones are stored as nulls. The commit's metadata must list the same ``features``
    and set ``"layout": LAYOUT``.
    """
    return orjson.dumps([values.get(f) for f in (*features, *META)]).decode()


_Rows = Callable[[list[Any]], list[dict[str, Any] | None]]


class _Layout:
    """How the values of one committed generation decode into dictionaries.

    Array values are turned into dictionaries by a function generated once per
    (features asked, with meta) and built from a dict display, which is several times
    faster than ``dict(zip(names, row))`` for each entity of a batch.
    """

    def __init__(self, meta: dict[str, Any]) -> None:
        self.keys: list[str] = list(meta.get("keys") or [])
        self.features: list[str] = list(meta.get("features") or [])
        self.array = meta.get("layout") == LAYOUT
        self._decoders: dict[tuple[tuple[str, ...] | None, bool], _Rows] = {}

    def rows(self, values: list[Any], features: Sequence[str] | None, with_meta: bool) -> list[dict[str, Any] | None]:
        """Each decoded value as a dictionary of ``features`` (default: all stored), ``None`` kept."""
        wanted = None if features is None or features == self.features else tuple(features)
        decode = self._decoders.get((wanted, with_meta))
        if decode is None:
            decode = self._decoders[(wanted, with_meta)] = self._decoder(wanted, with_meta)
        return decode(values)

    def _decoder(self, wanted: tuple[str, ...] | None, with_meta: bool) -> _Rows:
        names = list(self.features if wanted is None else wanted) + (list(META) if with_meta else [])
        if not self.array:
            return lambda values: [None if d is None else {n: d.get(n) for n in names} for d in values]
        where = {f: i for i, f in enumerate([*self.features, *META])}
        # names are embedded as repr() literals and positions as integers: no other text enters the code
        items = ", ".join(f"{n!r}: {f'v[{where[n]}]' if n in where else 'None'}" for n in names)
        one = f"[None if (v := values[0]) is None else {{{items}}}]"  # one value (a serving request): no comprehension
        code = f"lambda values: {one} if len(values) == 1 else [None if v is None else {{{items}}} for v in values]"
        decode: _Rows = eval(code, {"__builtins__": {}, "len": len})
        return decode


def _check_merge(view: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Refuse an incremental write whose values are laid out unlike the ones it merges into."""
    if old is None:
        return
    if (old.get("layout"), old.get("features"), old.get("keys")) != (new.get("layout"), new.get("features"), new.get("keys")):
        raise OnlineStoreError(
            f"an incremental write of {view!r} has a different value layout (features, keys) than the stored values",
            hint="write all values again with a full write",
        )


def _encode_keys(view: str, cols: list[str], keys: Sequence[dict[str, Any]]) -> list[str]:
    try:
        if len(cols) == 1:
            col = cols[0]
            return [str(keys[0][col])] if len(keys) == 1 else [str(k[col]) for k in keys]
        return [KEY_SEP.join([str(k[c]) for c in cols]) for k in keys]
    except KeyError:
        for k in keys:
            missing = [c for c in cols if c not in k]
            if missing:
                raise StrataError(f"key {k!r} for view {view!r} lacks column(s) {missing}", hint=f"give {cols}") from None
        raise


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

    def meta(self, view: str) -> dict[str, Any] | None:
        raise NotImplementedError


# --- SQLite ---------------------------------------------------------------------------------


# the values of a JSON array of keys, as one JSON array in the keys' order (null where absent)
_MANY = (
    "SELECT '[' || group_concat(coalesce(v.value, 'null'), ',') || ']' "
    "FROM json_each(?) j LEFT JOIN v ON v.key = j.value"
)


# a view's current file and the metadata committed with it, read together
_CURRENT = "SELECT f.file, m.meta FROM strata_online_files f LEFT JOIN strata_online_meta m USING (view) WHERE f.view = ?"


class _Generation:
    """An open generation file and the layout of its values."""

    def __init__(self, conn: sqlite3.Connection, layout: _Layout) -> None:
        self.conn = conn
        self.cursor = conn.cursor()
        self.layout = layout


class SQLiteOnlineStore(_Base):
    """Online store in SQLite: a catalog file plus one immutable file per view generation.

    The catalog file (the URL's path) holds each view's metadata and the name of its
    current generation file (``<path>.<view>.<token>.fv``, one WITHOUT ROWID table keyed by
    the encoded entity key, so a lookup is one B-tree descent ending at the value). A
    write fills a new generation file with journalling off
    (nothing reads it yet), syncs it, then switches the catalog row in one transaction:
    a crash at any point leaves readers on the previous complete file. An incremental
    write starts from a copy of the current file. Readers open generation files
    read-only and immutable (no locks, memory-mapped) and notice a switch through the
    catalog's ``data_version``: at once after a commit made in this process, within
    :data:`~strataml.spine.data_version.RECHECK_NS` after one made by another process. A view's file name and metadata
    are read in one statement, so values are always decoded with the metadata
    committed with them.
    """

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else parsed.path
        if not path:
            raise ConfigError(f"online store URL {url!r} names no file", hint="use sqlite:///path/to/online.db")
        self.url = url
        self.path = path
        self._abspath = os.path.abspath(path)
        self._local = threading.local()
        self._writers: dict[str, tuple[sqlite3.Connection, str]] = {}

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, cached_statements=256)
                use_wal(conn, 60)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS strata_online_meta (view TEXT PRIMARY KEY, meta TEXT NOT NULL)")
                conn.execute("CREATE TABLE IF NOT EXISTS strata_online_files (view TEXT PRIMARY KEY, file TEXT NOT NULL)")
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"cannot open online store {self.path}: {exc}", hint="check the 'online' setting") from exc
            self._local.conn = conn
            self._local.cursor = conn.cursor()  # reused: a lookup's version check creates no cursor
            self._local.version = DataVersion(self._local.cursor)
            self._local.readers = {}
        return conn

    def open(self) -> None:
        self._conn()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            for reader in self._local.readers.values():
                if reader is not None:
                    reader.conn.close()
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
            if token.endswith("i"):
                _check_merge(view, self.meta(view), meta)
            conn.execute("INSERT OR REPLACE INTO strata_online_files VALUES (?, ?)", (view, os.path.basename(target)))
            conn.execute("INSERT OR REPLACE INTO strata_online_meta VALUES (?, ?)", (view, orjson.dumps(meta).decode()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _LOCAL_COMMITS[self._abspath] = next(_commits)
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
        """Drop the readers of views whose file was switched.

        Other writers share this database (the gateway's rate limits, say), so a commit
        does not mean a view changed: only a changed file name does.
        """
        files = dict(conn.execute("SELECT view, file FROM strata_online_files").fetchall())
        known: dict[str, str] = getattr(self._local, "files", {})
        for view in set(known) | set(files):
            if known.get(view) != files.get(view):
                reader = self._local.readers.pop(view, None)
                if reader is not None:
                    reader.conn.close()
        self._local.files = files

    def _reader(self, view: str) -> _Generation | None:
        conn = self._conn()
        local = self._local
        seen = local.version.value
        if local.version.read(_LOCAL_COMMITS.get(self._abspath, 0)) != seen:  # a commit: files may have switched
            self._forget_switched(conn)
        readers: dict[str, _Generation | None] = local.readers
        if view in readers:
            return readers[view]
        reader = None
        for _ in range(3):  # the file can be replaced between reading its name and opening it
            row = conn.execute(_CURRENT, (view,)).fetchone()
            if row is None:
                break
            current = os.path.join(os.path.dirname(os.path.abspath(self.path)), row[0])
            try:
                r = sqlite3.connect(f"file:{quote(current)}?mode=ro&immutable=1", uri=True, cached_statements=256)
                r.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # lookups read pages without a syscall
                r.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                reader = _Generation(r, _Layout(orjson.loads(row[1]) if row[1] else {}))
                break
            except sqlite3.OperationalError:
                reader = None
        readers[view] = reader
        return reader

    def get(
        self, view: str, keys: Sequence[dict[str, Any]], *, with_meta: bool = False, features: Sequence[str] | None = None
    ) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        gen = self._reader(view)
        if gen is None:
            return [None] * len(keys)
        encoded = _encode_keys(view, gen.layout.keys, keys)
        try:
            if len(encoded) == 1:
                row = gen.cursor.execute("SELECT value FROM v WHERE key = ?", encoded).fetchone()
                values = [orjson.loads(row[0]) if row else None]
            else:  # one statement and one decode for the whole batch: the values in the order asked
                values = orjson.loads(gen.cursor.execute(_MANY, (orjson.dumps(encoded),)).fetchone()[0])
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"online store {self.path} could not be read: {exc}") from exc
        return gen.layout.rows(values, features, with_meta)

    def meta(self, view: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT meta FROM strata_online_meta WHERE view = ?", (view,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def views(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT view FROM strata_online_meta ORDER BY view")]

    def count(self, view: str) -> int:
        reader = self._reader(view)
        return 0 if reader is None else int(reader.conn.execute("SELECT count(*) FROM v").fetchone()[0])


#: URL schemes of the backends (the Redis one lives in :mod:`strataml.features.online_redis`)
SCHEMES = ("sqlite", "redis", "rediss")


def open_online_store(url: str) -> OnlineStore:
    """The online store a URL names (``sqlite:///…`` or ``redis://…``), opened."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    cls: type[_Base] | None = None
    if scheme == "sqlite":
        cls = SQLiteOnlineStore
    elif scheme in ("redis", "rediss"):
        from strataml.features.online_redis import RedisOnlineStore

        cls = RedisOnlineStore
    if cls is None:
        raise ConfigError(
            f"online store URL {url.split('@')[-1]!r} has an unknown scheme {scheme!r}",
            hint=f"use one of {', '.join(s + '://' for s in SCHEMES)} (setting 'online' / STRATA_ONLINE)",
        )
    store: OnlineStore = cls(url)  # type: ignore[assignment, call-arg]
    store.open()
    return store
