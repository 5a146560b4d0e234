"""Staying up under failure: deadlines, circuit breakers, bounded concurrency, fallbacks.

- :class:`CircuitBreaker` opens after ``failures`` consecutive errors, refuses calls
  for ``reset_after`` seconds, then lets one trial call through (half-open); a trial
  success closes it, a trial failure opens it again.
- :class:`Admission` bounds in-flight requests: beyond ``limit`` a request is refused
  at once (HTTP 503) instead of queueing without end, and it drains on shutdown.
- :class:`Deadline` runs an awaitable under the request's remaining time budget.
- :class:`BackendPool` runs the blocking calls of network backends (Redis) off the
  event loop, each within a timeout and through the backend's circuit breaker: a hung
  backend fails its calls in time, then (breaker open) at once, and never stalls the
  loop that answers every other request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from strataml.errors import StrataError

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class Overloaded(StrataError):
    """The gateway is at its concurrency limit or draining (HTTP 503)."""


class DeadlineExceeded(StrataError):
    """A request ran out of its time budget (HTTP 504)."""


class BreakerOpen(StrataError):
    """A circuit breaker refused the call because the dependency keeps failing."""


class BackendFailed(StrataError):
    """A backend call failed, timed out or was refused by its breaker (``backend`` names it)."""

    def __init__(self, backend: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.backend = backend


class Unavailable(StrataError):
    """A backend the request needs is down and the gateway is set to refuse rather than
    go on without it (HTTP 503 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class CircuitBreaker:
    """A three-state breaker around one dependency (a model version, the online store)."""

    def __init__(self, name: str, failures: int = 5, reset_after: float = 5.0, on_change: Callable[[str, str], None] | None = None) -> None:
        self.name = name
        self.threshold = failures
        self.reset_after = reset_after
        self.state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial = False
        self._lock = threading.Lock()
        self._on_change = on_change

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(self.name, state)

    def allow(self) -> bool:
        """Whether a call may go ahead now (reserves the half-open trial)."""
        with self._lock:
            if self.state == CLOSED:
                return True
            if self.state == OPEN and time.monotonic() - self._opened_at >= self.reset_after:
                self._set(HALF_OPEN)
                self._trial = False
            if self.state == HALF_OPEN and not self._trial:
                self._trial = True
                return True
            return False

    def release(self) -> None:
        """Give back a half-open trial without judging the dependency."""
        with self._lock:
            self._trial = False

    def success(self) -> None:
        """Record a successful call."""
        with self._lock:
            self._failures = 0
            self._trial = False
            self._set(CLOSED)

    def failure(self) -> None:
        """Record a failed call."""
        with self._lock:
            self._failures += 1
            self._trial = False
            if self.state == HALF_OPEN or self._failures >= self.threshold:
                self._opened_at = time.monotonic()
                self._set(OPEN)

    def _admit(self) -> None:
        if not self.allow():
            raise BreakerOpen(f"circuit breaker {self.name!r} is open after repeated failures", hint=f"it retries after {self.reset_after}s")

    def _settle(self, exc: BaseException | None) -> None:
        """Record how an admitted call ended; the caller's own mistakes (bad input, a
        cancelled request) say nothing about the dependency."""
        from strataml.serving._servable import InputError

        if exc is None:
            self.success()
        elif isinstance(exc, asyncio.CancelledError | InputError):
            self.release()
        else:
            self.failure()

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` through the breaker; :class:`BreakerOpen` when it refuses."""
        self._admit()
        try:
            result = await fn()
        except BaseException as exc:
            self._settle(exc)
            raise
        self._settle(None)
        return result

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous ``fn(*args)`` through the breaker (same rules as :meth:`call`)."""
        healthy = self.state == CLOSED and not self._failures
        if not healthy:
            self._admit()
        try:
            result = fn(*args)
        except BaseException as exc:
            self._settle(exc)
            raise
        if not healthy:  # a closed, healthy breaker has nothing to record (and takes no lock)
            self._settle(None)
        return result


class BackendPool:
    """Threads for the blocking calls of network backends, apart from the model's threads
    (so that calls stuck on a hung server cannot starve predictions), each call bounded
    by a timeout and guarded by its backend's circuit breaker.

    A call that times out counts as a failure of the backend (the breaker opens after a
    few), and its thread is left to its client's own socket timeout; a call still queued
    when it is given up never runs.
    """

    def __init__(self, threads: int = 32) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="strata-backend")

    async def call(self, breaker: CircuitBreaker, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread within ``timeout`` seconds; :class:`BackendFailed` when
        it raises, times out or the breaker refuses (a cancelled caller judges nothing)."""
        if not breaker.allow():
            raise BackendFailed(breaker.name, f"{breaker.name} is failing: its circuit breaker is open", hint=f"it is tried again after {breaker.reset_after}s")
        if timeout <= 0:
            breaker.release()
            raise BackendFailed(breaker.name, f"{breaker.name}: no time left in the request's deadline")
        try:
            async with asyncio.timeout(timeout):
                result = await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        except TimeoutError:
            breaker.failure()
            raise BackendFailed(breaker.name, f"{breaker.name} did not answer within {timeout * 1000:.0f} ms") from None
        except asyncio.CancelledError:
            breaker.release()
            raise
        except Exception as exc:
            from strataml.serving._servable import InputError

            if isinstance(exc, InputError):  # the request's fault (a key of the wrong type), not the backend's
                breaker.release()
                raise
            breaker.failure()
            raise BackendFailed(breaker.name, f"{breaker.name} failed: {type(exc).__name__}: {getattr(exc, 'message', exc)}") from exc
        breaker.success()
        return result

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a thread without waiting for it (a best-effort write)."""
        self.executor.submit(fn, *args)

    def close(self) -> None:
        """Stop the threads (those stuck on a hung server finish on their own)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


class Breakers:
    """Circuit breakers by name, created on first use with shared settings."""

    def __init__(self, failures: int = 5, reset_after: float = 5.0, on_change: Callable[[str, str], None] | None = None) -> None:
        self.failures = failures
        self.reset_after = reset_after
        self.on_change = on_change
        self._all: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        """The breaker called ``name``."""
        b = self._all.get(name)
        if b is None:
            b = self._all.setdefault(name, CircuitBreaker(name, self.failures, self.reset_after, self.on_change))
        return b

    def states(self) -> dict[str, str]:
        """Every breaker's state."""
        return {n: b.state for n, b in self._all.items()}


class Admission:
    """Bounded concurrency with immediate refusal and a drain for graceful shutdown."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        """Admit a request or raise :class:`Overloaded` at once."""
        if self.draining:
            raise Overloaded("the gateway is shutting down", hint="retry against another instance")
        if self.inflight >= self.limit:
            raise Overloaded(f"the gateway is at its limit of {self.limit} requests in flight", hint="retry with backoff")
        self.inflight += 1
        self._idle.clear()

    def leave(self) -> None:
        """Mark a request finished."""
        self.inflight -= 1
        if self.inflight <= 0:
            self.inflight = 0
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait up to ``timeout`` s for those in flight; True if all finished."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False


class Deadline:
    """A request's time budget of ``seconds``, measured from ``start`` (default: now)."""

    __slots__ = ("seconds", "start")

    def __init__(self, seconds: float, start: float = 0.0) -> None:
        self.seconds = seconds
        self.start = start or time.monotonic()

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.seconds - (time.monotonic() - self.start))

    def for_backend(self, cap: float) -> float:
        """The time a backend call may take: at most ``cap``, and leaving a tenth of the
        budget for the fallback chain to answer within the deadline if it fails."""
        return min(cap, self.remaining() - 0.1 * self.seconds)

    async def run(self, aw: Awaitable[T], what: str) -> T:
        """Await ``aw`` within the remaining budget, else :class:`DeadlineExceeded`."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(f"{what}: the request's {self.seconds * 1000:.0f} ms deadline passed before it started")
        try:
            async with asyncio.timeout(left):
                return await aw
        except TimeoutError:
            raise DeadlineExceeded(f"{what} did not finish within the request's {self.seconds * 1000:.0f} ms deadline") from None


def describe_failure(exc: BaseException) -> dict[str, Any]:
    """A short JSON-ready description of why a step of the fallback chain failed."""
    return {"error": type(exc).__name__, "message": str(getattr(exc, "message", exc))[:300]}
