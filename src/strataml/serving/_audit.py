"""The durable prediction log, written with group commit.

Every prediction is one JSON line in an append-only file under
``<state>/predictions/`` (one file per gateway process, rotated by size). Requests
hand their records to one writer process, which writes everything pending in a single
``write`` and ``fdatasync``s it before any of those requests is answered — so no
prediction acknowledged with a 2xx can be lost by a crash, and many concurrent
requests share one disk flush. A line torn by a crash belongs to a request that was
never acknowledged; readers skip it, and the zeros after the last line of a file whose
writer was killed (files are extended in zero-filled steps ahead of the data, and cut
to their data when closed).

DuckDB reads the log directly (:mod:`strataml.serving._log_query`), which is how
``strata predictions query|stats`` and monitoring analyse it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import os
import select
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from strataml.serving._resilience import Unavailable

_WRITER = Path(__file__).with_name("_audit_writer.py").read_text(encoding="utf-8")

_FAILED = 2**64 - 1
_Waiter = asyncio.Future[None] | threading.Event


_LINE = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
_OWN = orjson.OPT_SERIALIZE_NUMPY


def encode(records: Sequence[dict[str, Any]]) -> bytes:
    """The log lines of ``records``."""
    return b"".join([orjson.dumps(r, option=_LINE, default=str) for r in records])


class SeriesLines:
    """Log lines of one series of predictions: the fields every line of the series shares
    (deployment, model, version, key, degraded, mode, route) are encoded once, and a
    line adds only its own (request id, time, instance, features, output, latency)."""

    __slots__ = ("_shared",)

    def __init__(self, shared: dict[str, Any]) -> None:
        self._shared = b"," + orjson.dumps(shared, option=_LINE, default=str)[1:]  # closes the object and the line

    def encode(self, request_id: str, ts: Any, latency_ms: float, rows: Sequence[dict[str, Any]], outputs: Sequence[Any]) -> bytes:
        """The lines of one request's ``outputs``, the ``rows`` being their inputs."""
        if len(outputs) == 1:  # the usual request: one line, without a list to join
            return self._line(request_id, ts, 0, rows[0] if rows else None, outputs[0], latency_ms)
        return b"".join([self._line(request_id, ts, i, rows[i] if i < len(rows) else None, p, latency_ms) for i, p in enumerate(outputs)])

    def _line(self, request_id: str, ts: Any, instance: int, features: dict[str, Any] | None, output: Any, latency_ms: float) -> bytes:
        own = {"request_id": request_id, "ts": ts, "instance": instance, "features": features, "output": output, "latency_ms": latency_ms}
        return orjson.dumps(own, option=_OWN, default=str)[:-1] + self._shared


class LogUnavailable(Unavailable, OSError):
    """The prediction log cannot take appends now (its writer failed, or has not
    acknowledged a flush for too long): nothing is answered unlogged (HTTP 503)."""


#: seconds after a writer fails during which appends fail at once instead of starting
#: another (starting one waits for a process, which a request must not do every time)
RESTART_AFTER_S = 1.0


class _Writer:
    """One log file fed through a pipe to its writer process (see :class:`AuditLog`)."""

    def __init__(self, directory: Path, *, rotate_bytes: int, fsync: bool) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        self.flushes = 0
        self.records = 0
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._failed_at = -RESTART_AFTER_S
        self._restarting = False
        self._why_down = ""
        self._stall_mark: tuple[int, float] | None = None  # (bytes acknowledged, when first seen) while lines are outstanding
        self._start()

    # --- the writer process ------------------------------------------------------------

    def _start(self) -> None:
        self.prefix = f"predictions-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _WRITER, str(self.directory), self.prefix, str(self.rotate_bytes), "1" if self.fsync else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._wfd = self._proc.stdin.fileno()
        self._rfd = self._proc.stdout.fileno()
        with contextlib.suppress(OSError):  # a larger pipe lets a burst queue up without blocking the loop
            fcntl.fcntl(self._wfd, 1031, 1 << 20)  # F_SETPIPE_SZ (Linux)
        self._buf = bytearray()
        self._queued = 0
        self._acked = 0
        self._ackbuf = b""
        self._waiters: collections.deque[tuple[int, _Waiter]] = collections.deque()
        self._flush_scheduled = False
        self._writing = False
        self._ready = False

    def _wait_ready(self, on_loop: bool = True) -> None:
        """Wait for the writer's first answer (0, once its file exists); ``on_loop``:
        called on the loop's thread, else the loop is told to read the answers."""
        if self._ready:
            return
        if not self._read_acks(block=True) or self._proc is None or self._proc.poll() is not None:
            self._failed("its writer could not start")
            raise LogUnavailable(f"the prediction log writer could not start in {self.directory}", RESTART_AFTER_S,
                                 hint="check that the gateway's state folder is writable and has free space")
        self._ready = True
        self.flushes -= 1  # the start-up answer flushed nothing
        os.set_blocking(self._wfd, False)
        os.set_blocking(self._rfd, False)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if on_loop:
                loop.add_reader(self._rfd, self._on_acks)
            else:
                loop.call_soon_threadsafe(loop.add_reader, self._rfd, self._on_acks)

    def _restart_in_thread(self) -> None:
        """Start a new writer from a thread: starting one waits for a Python process,
        which the loop must not (appends fail at once until it is ready)."""
        self._restarting = True

        def run() -> None:
            try:
                with self._lock:
                    self._start()
                select.select([self._rfd], [], [], 30.0)  # its first answer, waited for off the lock
                with self._lock:
                    self._wait_ready(on_loop=False)
            except Exception as exc:  # _wait_ready has failed the writer: the next append after RESTART_AFTER_S tries again
                self._why_down = str(exc)
            finally:
                self._restarting = False

        threading.Thread(target=run, name="strata-log-restart", daemon=True).start()

    def _failed(self, why: str) -> None:
        """The writer is gone: fail every pending append; the next append starts a new writer."""
        self._failed_at = time.monotonic()
        self._why_down = why
        err = LogUnavailable(f"the prediction log could not be written: {why}", RESTART_AFTER_S)
        waiters, self._waiters = self._waiters, collections.deque()
        for _, w in waiters:
            self._resolve(w, err)
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._rfd)
                self._loop.remove_writer(self._wfd)
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    f.close()  # type: ignore[union-attr]

    # --- appending ---------------------------------------------------------------------

    def _enqueue(self, data: bytes, waiter: _Waiter, on_loop: bool = False) -> None:
        if self._closed:
            raise RuntimeError("the prediction log is closed")
        if self._restarting:
            raise LogUnavailable("the prediction log's writer is restarting; predictions are refused until it is ready", RESTART_AFTER_S)
        if self._proc is None:
            if time.monotonic() - self._failed_at < RESTART_AFTER_S:
                raise LogUnavailable(f"the prediction log's writer failed a moment ago ({self._why_down[:200]}); predictions are refused until it restarts",
                                     RESTART_AFTER_S)
            if on_loop and self._loop is not None:
                self._restart_in_thread()
                raise LogUnavailable("the prediction log's writer is restarting; predictions are refused until it is ready", RESTART_AFTER_S)
            self._start()
        self._wait_ready()
        self._queued += len(data)
        self._buf += data
        self._waiters.append((self._queued, waiter))

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read acknowledgements on ``loop`` (the loop of the latest async append)."""
        old = self._loop
        if old is not None and not old.is_closed():
            with contextlib.suppress(Exception):
                old.remove_reader(self._rfd)
                old.remove_writer(self._wfd)
        self._loop = loop
        self._writing = False
        loop.add_reader(self._rfd, self._on_acks)

    def append_nowait(self, records: list[dict[str, Any]]) -> asyncio.Future[None]:
        """Append records; the future is done once they are on disk."""
        return self.append_lines_nowait(encode(records))

    def append_lines_nowait(self, data: bytes) -> asyncio.Future[None]:
        """Append encoded lines; the future is done once they are on disk."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._enqueue(data, fut, on_loop=True)
            if self._loop is not loop:
                self._attach(loop)
            if not self._flush_scheduled:  # this loop iteration's appends go to the writer together
                self._flush_scheduled = True
                loop.call_soon(self._kick)
        return fut

    def append_sync(self, records: list[dict[str, Any]]) -> None:
        """Append records from a thread without a running loop; returns once they are on disk."""
        done = threading.Event()
        with self._lock:
            self._enqueue(encode(records), done)
            self._send(block=True)
        loop = self._loop
        if loop is not None and loop.is_running():  # that loop reads the acknowledgements
            done.wait()
        else:
            while not done.is_set():
                with self._lock:
                    if not done.is_set():
                        self._read_acks(block=True)
        error = getattr(done, "error", None)
        if error is not None:
            raise error

    def _kick(self) -> None:
        """Hand the writer what this loop iteration gathered, if it is idle; while a flush
        runs, appends keep gathering here and its acknowledgement sends them as the next
        group (one pipe write and one wake-up of the writer per flush)."""
        with self._lock:
            self._flush_scheduled = False
            if self._idle:
                self._send()

    def _send(self, block: bool = False) -> None:
        with self._lock:
            while self._buf and self._proc is not None:
                try:
                    n = os.write(self._wfd, self._buf)
                except BlockingIOError:
                    if block:
                        select.select([], [self._wfd], [], 1.0)
                        continue
                    if not self._writing and self._loop is not None:  # the pipe is full: continue when it drains
                        self._writing = True
                        self._loop.add_writer(self._wfd, self._send)
                    return
                except OSError as exc:
                    self._failed(f"the writer process exited ({exc})")
                    return
                del self._buf[:n]
            if self._writing and self._loop is not None:
                self._writing = False
                self._loop.remove_writer(self._wfd)

    # --- acknowledgements --------------------------------------------------------------

    def _on_acks(self) -> None:
        with self._lock:
            self._read_acks(block=False)

    def _read_acks(self, block: bool) -> bool:
        """Take the writer's answers and resolve every append they cover; False if none came."""
        if block:
            select.select([self._rfd], [], [], 30.0)
        try:
            data = os.read(self._rfd, 1 << 16)
        except BlockingIOError:
            return False
        except OSError as exc:
            data = b""
            why = str(exc)
        else:
            why = "the writer process exited"
        if not data:
            code = self._proc.poll() if self._proc is not None else None
            self._failed(f"{why} (exit code {code})")
            return False
        data = self._ackbuf + data
        whole = len(data) - len(data) % 8
        self._ackbuf = data[whole:]
        if whole == 0:
            return False
        acked = struct.unpack_from("<Q", data, whole - 8)[0]
        if acked == _FAILED:
            self._failed("the writer process failed (its error is on the gateway's stderr)")
            return True
        self.flushes += whole // 8
        self._acked = acked
        waiters = self._waiters
        while waiters and waiters[0][0] <= acked:
            self._resolve(waiters.popleft()[1], None)
            self.records += 1
        if self._buf and self._idle and not self._flush_scheduled:
            self._send(block=block)  # the group gathered during that flush
        return True

    def _resolve(self, waiter: _Waiter, error: BaseException | None) -> None:
        if isinstance(waiter, threading.Event):
            waiter.error = error  # type: ignore[attr-defined]
            waiter.set()
            return
        loop = waiter.get_loop()
        if loop is self._loop:
            _finish(waiter, error)
        else:  # appended from another loop than the one reading acknowledgements
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_finish, waiter, error)

    @property
    def pending(self) -> int:
        """Appends waiting for their flush."""
        return len(self._waiters)

    def fail_if_stalled(self, limit: float) -> int:
        """Fail the appends waiting on a writer that has answered nothing for ``limit``
        seconds while holding lines it was sent (a hung disk); how many. Called every
        fraction of ``limit``: it notes when it first saw the writer stuck, so a healthy
        log costs the request path nothing. Lines not yet sent (a busy loop) are no
        stall. The writer is left alone: a write it finishes later still lands in the
        log, for requests that were answered 503."""
        with self._lock:
            if self._waiters and self._queued - len(self._buf) != self._acked:
                self._read_acks(block=False)  # answers in the pipe that the loop has not read yet
            if not self._waiters or self._queued - len(self._buf) == self._acked:
                self._stall_mark = None
                return 0
            now = time.monotonic()
            mark = self._stall_mark
            if mark is None or mark[0] != self._acked:
                self._stall_mark = (self._acked, now)
                return 0
            stalled = now - mark[1]
            if stalled < limit:
                return 0
            waiters, self._waiters = self._waiters, collections.deque()
            self._stall_mark = None
        err = LogUnavailable(f"the prediction log has not finished a write for {stalled:.1f} s (a hung disk?)",
                             RESTART_AFTER_S, hint="retry later; predictions are answered only once logged")
        for _, w in waiters:
            self._resolve(w, err)
        return len(waiters)

    @property
    def _idle(self) -> bool:
        """Whether the writer has acknowledged everything sent to it (and nothing is half sent)."""
        return not self._writing and self._queued - len(self._buf) == self._acked

    @property
    def gathering(self) -> bool:
        """Whether this loop iteration's appends are being gathered into one write to an
        idle writer (nothing of earlier writes is still waiting for its flush)."""
        return self._flush_scheduled and self._idle

    def close(self) -> None:
        """Flush what is pending and stop the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            proc = self._proc
            if proc is None:
                return
            with contextlib.suppress(OSError):
                self._send(block=True)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    loop.remove_reader(self._rfd)
                    loop.remove_writer(self._wfd)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()  # end of input: the writer flushes and exits
            os.set_blocking(self._rfd, True)
            while self._waiters and self._read_acks(block=True):
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            self._proc = None
            self._failed("the prediction log was closed")


class AuditLog:
    """The append-only prediction log of one process, with group commit.

    Appended lines go through a pipe to a small writer process, which writes everything
    the pipe holds, ``fdatasync``s it, and answers with the number of bytes now durable;
    an append returns once that number covers it. While one flush runs, later appends
    gather in the process and go to the writer in one pipe write when its
    acknowledgement arrives, so concurrent requests share disk flushes and each flush
    costs one wake-up of the writer. The writer is a process rather than a thread so
    that waiting on the disk never competes with the event loop for the interpreter
    lock: acknowledgements arrive as ordinary readable-pipe events on the loop. If the
    gateway dies, the writer reads end-of-file and exits; if the writer dies, pending
    and later appends fail (and the next append starts a new writer).

    There are ``lanes`` such writers (files); an append joins the write being gathered
    in this loop iteration for an idle writer, else goes to an idle one when there is
    one, so it is flushed at once instead of waiting for the flush in progress, else to
    the one with the fewest appends pending. Every lane flushes before acknowledging,
    so the guarantee is the same with any number. One lane is the default: on a disk
    that runs one flush at a time, more lanes only make smaller groups, and more flushes
    and wake-ups for the same predictions (the serving bench measured about 15% fewer
    requests per second with four).
    """

    def __init__(self, directory: Path, *, rotate_bytes: int = 256 << 20, fsync: bool = True, lanes: int = 1) -> None:
        self.directory = directory
        self.lanes = [_Writer(directory, rotate_bytes=rotate_bytes, fsync=fsync) for _ in range(max(1, lanes))]
        for lane in self.lanes:  # started together, waited for together
            lane._wait_ready()

    def _pick(self) -> _Writer:
        if len(self.lanes) == 1:
            return self.lanes[0]
        best = idle = None
        for lane in self.lanes:
            if lane.gathering:  # share the write (and the flush) being gathered for an idle writer
                return lane
            pending = lane.pending
            if pending == 0:
                idle = idle or lane
            elif best is None or pending < best.pending:
                best = lane
        return idle or best or self.lanes[0]

    async def append(self, records: list[dict[str, Any]]) -> None:
        """Append records and return once they are on disk (fsync'ed)."""
        await self._pick().append_nowait(records)

    def append_nowait(self, records: list[dict[str, Any]]) -> asyncio.Future[None]:
        """Append records; the future is done once they are on disk (fsync'ed). Awaiting
        it high in a request's call chain, rather than deep inside, spares resuming every
        frame in between when the flush completes."""
        return self._pick().append_nowait(records)

    def append_lines_nowait(self, data: bytes) -> asyncio.Future[None]:
        """:meth:`append_nowait` for lines already encoded (by :class:`SeriesLines`, say)."""
        return self._pick().append_lines_nowait(data)

    def append_sync(self, records: list[dict[str, Any]]) -> None:
        """Append records from a thread without a running loop; returns once they are on disk."""
        self._pick().append_sync(records)

    def fail_if_stalled(self, limit: float) -> int:
        """:meth:`_Writer.fail_if_stalled` for every lane: appends failed."""
        return sum(lane.fail_if_stalled(limit) for lane in self.lanes)

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
        """The files this log has written."""
        return sorted(p for lane in self.lanes for p in self.directory.glob(f"{lane.prefix}-*.jsonl"))

    def close(self) -> None:
        """Flush what is pending and stop the writers."""
        for lane in self.lanes:
            lane.close()


def _finish(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if not fut.done():
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


