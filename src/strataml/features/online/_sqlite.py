"""The SQLite online store: a catalog file plus one immutable file per view generation."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlparse

import orjson

from strataml.errors import ConfigError
from strataml.features.online._codec import Layout, check_merge, encode_keys
from strataml.features.online._protocol import OnlineStoreError
from strataml.spine import DataVersion, check_name, use_wal

MMAP_BYTES = 1 << 34  # address space only; the OS pages in what lookups touch
CACHE_KIB = 65536
_commits = itertools.count(1)
# catalog path -> a fresh number at every commit made in this process: its readers see it at once
_LOCAL_COMMITS: dict[str, int] = {}




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

    def __init__(self, conn: sqlite3.Connection, layout: Layout) -> None:
        self.conn = conn
        self.cursor = conn.cursor()
        self.layout = layout


class SQLiteOnlineStore:
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
    :data:`~strataml.spine._data_version.RECHECK_NS` after one made by another process. A view's file name and metadata
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
                check_merge(view, self.meta(view), meta)
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
                reader = _Generation(r, Layout(orjson.loads(row[1]) if row[1] else {}))
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
        encoded = encode_keys(view, gen.layout.keys, keys)
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
