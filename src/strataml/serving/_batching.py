"""Micro-batching: concurrent requests to one model version become one predict call.

Each model version gets a :class:`MicroBatcher`. Requests queue their rows; one
dispatcher task takes everything queued (up to ``max_batch`` rows), optionally
waits up to ``max_wait_ms`` for more, runs a single ``predict`` (in a worker thread,
or inline for batches of at most ``inline_rows`` rows of a model whose calls average
under half a millisecond, where a thread handoff would cost more than the prediction) and hands each request its slice. While a batch runs, newcomers accumulate for the
next one, so batches grow with load and a lone request is not delayed. A request
that finds nothing queued or running for a model that qualifies for inline calls is
predicted at once (:meth:`MicroBatcher.run_inline`): there is nothing to coalesce it
with, and an inline call blocks the loop so nothing could join it anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Item:
    rows: list[dict[str, Any]]
    future: asyncio.Future[list[Any]]


@dataclass
class BatchStats:
    """Counts of what a batcher did."""

    batches: int = 0
    rows: int = 0
    sizes: list[int] = field(default_factory=list)


class CallCost:
    """A moving average of how long a call takes, and whether that is quick enough to make
    the call on the event loop: below ``quick_s`` a hand-off to a worker thread and back
    costs more than the call itself."""

    def __init__(self, quick_s: float = 0.0005) -> None:
        self.quick_s = quick_s
        self.seconds: float | None = None  # None until a call was measured

    @property
    def quick(self) -> bool:
        """Whether calls have averaged under ``quick_s``."""
        return self.seconds is not None and self.seconds < self.quick_s

    def add(self, seconds: float) -> None:
        """Account one call's duration (capped at 4x ``quick_s``: one call preempted by the
        operating system moves the average off the loop only if more follow)."""
        seconds = min(seconds, 4 * self.quick_s)
        self.seconds = seconds if self.seconds is None else 0.8 * self.seconds + 0.2 * seconds

    @staticmethod
    def clock(inline: bool) -> Callable[[], float]:
        """The clock that times a call fairly: wall time on the event loop (what it blocks),
        the thread's CPU time in a worker, whose wall time mostly waits for the interpreter
        lock the busy loop holds and would keep a quick call off the loop for good."""
        return time.perf_counter if inline else time.thread_time


class MicroBatcher:
    """Coalesces concurrent predict calls to one function, bounded by size and wait time."""

    def __init__(
        self,
        predict: Callable[[list[dict[str, Any]]], list[Any]],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        executor: Executor | None = None,
        on_batch: Callable[[int], None] | None = None,
        keep_sizes: int = 0,
        inline_rows: int = 0,
    ) -> None:
        self.predict = predict
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.executor = executor
        self.on_batch = on_batch
        self.inline_rows = inline_rows
        self.cost = CallCost()  # of one predict call
        self.stats = BatchStats()
        self._keep = keep_sizes
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False

    def can_inline(self, rows: list[dict[str, Any]]) -> bool:
        """Whether ``rows`` may be predicted at once on the caller's thread: few enough
        rows, a model known to answer quickly, and no batch queued or running."""
        return (
            self.cost.quick and len(rows) <= self.inline_rows
            and not self._running and (self._queue is None or self._queue.empty())
        )

    def run_inline(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Predict ``rows`` now as a batch of their own (see :meth:`can_inline`)."""
        outputs = self._call(rows, True)
        self._count(len(rows))
        return outputs

    def _count(self, n: int) -> None:
        self.stats.batches += 1
        self.stats.rows += n
        if self._keep:
            self.stats.sizes.append(n)
            del self.stats.sizes[: -self._keep]
        if self.on_batch is not None:
            self.on_batch(n)

    async def submit(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Predict ``rows`` as part of the next batch; returns one output per row."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.done() or self._loop is not loop:
            self._queue = asyncio.Queue()
            self._loop = loop
            self._task = loop.create_task(self._dispatch())
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(rows, fut))
        return await fut

    async def _dispatch(self) -> None:
        assert self._queue is not None
        q = self._queue
        loop = asyncio.get_running_loop()
        while True:
            first = await q.get()
            self._running = True  # from here until its answers are out, a batch is forming or running
            try:
                await self._batch(q, first, loop)
            finally:
                self._running = False

    async def _batch(self, q: asyncio.Queue[_Item], first: _Item, loop: asyncio.AbstractEventLoop) -> None:
        items = [first]
        n = len(first.rows)
        deadline = time.monotonic() + self.max_wait
        while n < self.max_batch:
            if q.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(q.get(), left)
                except TimeoutError:
                    break
            else:
                nxt = q.get_nowait()
            items.append(nxt)
            n += len(nxt.rows)
        live = [it for it in items if not it.future.done()]
        if not live:
            return
        rows = [r for it in live for r in it.rows]
        try:
            if len(rows) <= self.inline_rows and self.cost.quick:  # small, quick batches: cheaper than a thread handoff
                outputs = self._call(rows, True)
            else:
                outputs = await loop.run_in_executor(self.executor, self._call, rows, False)
        except BaseException as exc:
            for it in live:
                if not it.future.done():
                    it.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._count(len(rows))
        i = 0
        for it in live:
            k = len(it.rows)
            if not it.future.done():
                it.future.set_result(outputs[i : i + k])
            i += k

    def _call(self, rows: list[dict[str, Any]], inline: bool) -> list[Any]:
        """Predict ``rows``, accounting the call's cost; one output per row or an error."""
        clock = CallCost.clock(inline)
        t0 = clock()
        outputs = self.predict(rows)
        self.cost.add(clock() - t0)
        if len(outputs) != len(rows):
            raise RuntimeError(f"the model returned {len(outputs)} predictions for {len(rows)} rows")
        return outputs

    async def close(self) -> None:
        """Stop the dispatcher (pending callers get CancelledError)."""
        if self._task is not None and self._loop is asyncio.get_running_loop():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
