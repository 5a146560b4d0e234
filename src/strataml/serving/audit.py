"""The durable prediction log, written with group commit.

Every prediction is one JSON line in an append-only file under
``<state>/predictions/`` (one file per gateway process, rotated by size). Requests
hand their records to one writer thread, which writes everything pending in a single
``write`` and ``fsync``s it before any of those requests is answered — so no
prediction acknowledged with a 2xx can be lost by a crash, and many concurrent
requests share one disk flush. A line torn by a crash belongs to a request that was
never acknowledged; readers skip it.

DuckDB reads the log directly (:func:`log_relation_sql`), which is how
``strata predictions query|stats`` and monitoring analyse it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from strataml.spine.engine import duck, quote_literal

COLUMNS = {
    "request_id": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "deployment": "VARCHAR",
    "model": "VARCHAR",
    "version": "BIGINT",
    "instance": "BIGINT",
    "features": "JSON",
    "output": "JSON",
    "latency_ms": "DOUBLE",
    "key_id": "VARCHAR",
    "degraded": "BOOLEAN",
    "mode": "VARCHAR",
    "route": "VARCHAR",
}


def log_dir(state_dir: Path) -> Path:
    """Where a workspace's prediction log lives."""
    return state_dir / "predictions"


class _Lane:
    """One log file with its writer thread: everything pending goes out in one write + fsync."""

    def __init__(self, directory: Path, *, rotate_bytes: int = 256 << 20, fsync: bool = True) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        self._pending: list[tuple[bytes, asyncio.Future[None] | threading.Event | None, asyncio.AbstractEventLoop | None]] = []
        self._cond = threading.Condition()
        self._closed = False
        self.busy = False
        self._fd = -1
        self._size = 0
        self.flushes = 0
        self.records = 0
        self._open_file()
        self._thread = threading.Thread(target=self._run, name="strata-audit", daemon=True)
        self._thread.start()

    def _open_file(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        name = f"predictions-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.path = self.directory / name
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._size = 0
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the new file's name survives a crash too
        finally:
            os.close(dfd)

    @property
    def idle(self) -> bool:
        """Neither flushing nor holding pending records."""
        return not self.busy and not self._pending

    async def append_bytes(self, data: bytes) -> None:
        """Append encoded lines; returns once they are on disk."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the prediction log is closed")
            self._pending.append((data, fut, loop))
            self._cond.notify()
        await fut

    def append_bytes_sync(self, data: bytes) -> None:
        """Append encoded lines from a thread; returns once they are on disk."""
        done = threading.Event()
        with self._cond:
            self._pending.append((data, done, None))
            self._cond.notify()
        done.wait()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
                self.busy = True
            error: BaseException | None = None
            try:
                blob = b"".join(d for d, _, _ in batch)
                view = memoryview(blob)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
                if self.fsync:
                    os.fdatasync(self._fd)
                self._size += len(blob)
                self.flushes += 1
                self.records += len(batch)
                if self._size >= self.rotate_bytes:
                    self._open_file()
            except BaseException as exc:  # disk full, I/O error: every waiter fails
                error = exc
            with self._cond:
                self.busy = False
            self._resolve(batch, error)

    @staticmethod
    def _resolve(batch: list[tuple[bytes, Any, asyncio.AbstractEventLoop | None]], error: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, waiter, loop in batch:
            if loop is None:
                waiter.set()
            else:
                by_loop.setdefault(loop, []).append(waiter)

        def finish(futs: list[asyncio.Future[None]]) -> None:
            for f in futs:
                if not f.done():
                    if error is None:
                        f.set_result(None)
                    else:
                        f.set_exception(OSError(f"the prediction log could not be written: {error}"))

        for loop, futs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(finish, futs)

    def close(self) -> None:
        """Flush what is pending and stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def encode(records: Iterable[dict[str, Any]]) -> bytes:
    """The log lines of ``records``."""
    return b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE, default=str) for r in records)


class AuditLog:
    """The append-only prediction log of one process, with group commit.

    It writes through ``lanes`` files, each with its own writer thread; a record goes
    to an idle lane when there is one (so it is flushed at once instead of waiting for
    the flush in progress), else to the lane with the least pending. Every lane
    ``fsync``s before acknowledging, so the guarantee is the same with any number.
    """

    def __init__(self, directory: Path, *, rotate_bytes: int = 256 << 20, fsync: bool = True, lanes: int = 2) -> None:
        self.directory = directory
        self.lanes = [_Lane(directory, rotate_bytes=rotate_bytes, fsync=fsync) for _ in range(max(1, lanes))]
        self._next = 0

    @staticmethod
    def encode(records: Iterable[dict[str, Any]]) -> bytes:
        """The log lines of ``records``."""
        return encode(records)

    def _pick(self) -> _Lane:
        for lane in self.lanes:
            if lane.idle:
                return lane
        self._next = (self._next + 1) % len(self.lanes)
        return self.lanes[self._next]

    async def append(self, records: list[dict[str, Any]]) -> None:
        """Append records and return once they are on disk (fsync'ed)."""
        await self._pick().append_bytes(encode(records))

    def append_sync(self, records: list[dict[str, Any]]) -> None:
        """Append records from a thread; returns once they are on disk."""
        self._pick().append_bytes_sync(encode(records))

    @property
    def flushes(self) -> int:
        """Disk flushes so far (each acknowledges a group of appends)."""
        return sum(lane.flushes for lane in self.lanes)

    @property
    def records(self) -> int:
        """Appends acknowledged so far."""
        return sum(lane.records for lane in self.lanes)

    @property
    def paths(self) -> list[Path]:
        """The files being written."""
        return [lane.path for lane in self.lanes]

    def close(self) -> None:
        """Flush what is pending and stop the writers."""
        for lane in self.lanes:
            lane.close()


def log_relation_sql(directory: Path) -> str:
    """A DuckDB table expression over every log file (torn lines skipped)."""
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    glob = quote_literal(str(directory / "*.jsonl"))
    return f"(SELECT * FROM read_json({glob}, format='newline_delimited', ignore_errors=true, columns={cols}) WHERE request_id IS NOT NULL)"


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("*.jsonl"))


def query(directory: Path, model: str | None = None, since: str | None = None, limit: int | None = 100, mode: str | None = None) -> list[dict[str, Any]]:
    """Logged predictions, newest first, as JSON-ready dictionaries."""
    if not _has_files(directory):
        return []
    where = []
    if model:
        where.append(f"model = {quote_literal(model)}")
    if since:
        where.append(f"ts >= CAST({quote_literal(since)} AS TIMESTAMPTZ)")
    if mode:
        where.append(f"mode = {quote_literal(mode)}")
    sql = f"SELECT * FROM {log_relation_sql(directory)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, request_id, instance"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    con = duck()
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    out = []
    for r in rows:
        d = dict(zip(names, r, strict=True))
        d["ts"] = d["ts"].isoformat() if d["ts"] is not None else None
        d["features"] = orjson.loads(d["features"]) if d["features"] else None
        d["output"] = orjson.loads(d["output"]) if d["output"] else None
        out.append(d)
    return out


def stats(directory: Path, model: str | None = None, since: str | None = None) -> dict[str, Any]:
    """Counts by version, latency percentiles (ms) and the degraded count of live predictions."""
    empty: dict[str, Any] = {"model": model, "count": 0, "requests": 0, "by_version": {}, "p50": None, "p95": None, "p99": None, "degraded": 0, "shadow": 0}
    if not _has_files(directory):
        return empty
    where = ["1=1"]
    if model:
        where.append(f"model = {quote_literal(model)}")
    if since:
        where.append(f"ts >= CAST({quote_literal(since)} AS TIMESTAMPTZ)")
    base = f"SELECT * FROM {log_relation_sql(directory)} WHERE {' AND '.join(where)}"
    con = duck()
    try:
        totals = con.execute(
            f"SELECT count(*) FILTER (WHERE mode = 'live'), count(DISTINCT request_id) FILTER (WHERE mode = 'live'), "
            f"count(*) FILTER (WHERE degraded AND mode = 'live'), count(*) FILTER (WHERE mode = 'shadow') FROM ({base})"
        ).fetchall()[0]
        lat = con.execute(
            f"SELECT quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FROM "
            f"(SELECT request_id, max(latency_ms) AS latency_ms FROM ({base}) WHERE mode = 'live' GROUP BY request_id)"
        ).fetchall()[0][0]
        versions = con.execute(f"SELECT mode, version, count(*) FROM ({base}) GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    finally:
        con.close()
    by_version = {f"v{v}": int(n) for m, v, n in versions if m == "live"}
    shadow_by_version = {f"v{v}": int(n) for m, v, n in versions if m == "shadow"}
    p = [round(float(x), 3) for x in lat] if lat else [None, None, None]
    return {
        "model": model, "count": int(totals[0]), "requests": int(totals[1]), "by_version": by_version,
        "p50": p[0], "p95": p[1], "p99": p[2], "degraded": int(totals[2]), "shadow": int(totals[3]),
        "shadow_by_version": shadow_by_version,
    }
