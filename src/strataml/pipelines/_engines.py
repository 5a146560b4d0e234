"""Where step attempts run: local worker processes (default) or Ray tasks.

An engine runs one attempt and waits for it, bounded by the step's timeout and
interrupted by a cancel; both end the attempt's process or task. The local engine
runs at most ``workers`` attempts at once in worker processes of its own (fresh
interpreters: no state shared with the owner's threads, no re-import of the caller's
``__main__``), so a step that hangs or is cancelled is killed without disturbing the
others.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from typing import Any, Protocol

from strataml.errors import ConfigError, MissingExtra, StrataError

#: seconds between checks for a result, a timeout or a cancel
POLL = 0.1


class Interrupted(Exception):
    """The attempt was ended from outside (timeout or cancel); ``reason`` says which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Engine(Protocol):
    """Runs one attempt of a step and returns :func:`~strataml.pipelines._task.run_task`'s result."""

    name: str

    def run(
        self, task: dict[str, Any], *, timeout: float | None, cancelled: threading.Event
    ) -> dict[str, Any]:
        """Run ``task``; raise :class:`Interrupted` on timeout or cancel."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...


class _Worker:
    """One local worker process (``python -m strataml.pipelines._task``) and its pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "strataml.pipelines._task"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin.fileno(), self.process.stdout.fileno()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def stop(self) -> None:
        """End an idle worker: closing its input ends its loop."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


class LocalEngine:
    """Attempts in local worker processes, at most ``workers`` at once.

    A worker is a fresh interpreter started for the run and reused by its attempts (it
    loads ``definitions.py`` once); a worker whose attempt timed out or was cancelled is
    killed, and one that died is replaced.
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or (os.cpu_count() or 1))
        self._slots = threading.BoundedSemaphore(self.workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                worker.kill()
        return _Worker()

    def run(
        self, task: dict[str, Any], *, timeout: float | None, cancelled: threading.Event
    ) -> dict[str, Any]:
        """Run one attempt on an idle worker (or a new one)."""
        with self._slots:
            if cancelled.is_set():
                raise Interrupted("cancelled", "the run was cancelled")
            from strataml.pipelines._task import read_frame, send_frame

            worker = self._take()
            healthy = False
            try:
                try:
                    send_frame(worker.stdin, pickle.dumps({**task, "parent_pid": os.getpid()}))
                except BrokenPipeError:
                    return self._died(worker)
                deadline = None if timeout is None else time.monotonic() + timeout
                while True:
                    ready, _, _ = select.select([worker.stdout], [], [], POLL)
                    if ready:
                        frame = read_frame(worker.stdout)
                        if frame is None:
                            return self._died(worker)
                        healthy = True
                        result: dict[str, Any] = pickle.loads(frame)
                        return result
                    if cancelled.is_set():
                        raise Interrupted("cancelled", "the run was cancelled")
                    if deadline is not None and time.monotonic() > deadline:
                        raise Interrupted("timeout", f"timed out after {timeout:g} s")
            finally:
                if healthy:
                    with self._lock:
                        self._idle.append(worker)
                else:
                    worker.kill()

    @staticmethod
    def _died(worker: _Worker) -> dict[str, Any]:
        worker.kill()
        code = worker.process.returncode
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        return {
            "ok": False,
            "error": f"the worker process {how}",
            "where": "",
            "traceback": "",
            "retryable": False,
            "logs": [],
        }

    def close(self) -> None:
        """Stop the idle workers."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()


class RayEngine:
    """Attempts as Ray tasks: on the cluster ``address`` names (``STRATA_RAY``), else a
    local Ray instance started for this process."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingExtra("ray", "ray", "running pipeline steps on Ray") from exc
        from strataml.pipelines._task import run_task

        self._ray = ray
        address = address or os.environ.get("STRATA_RAY") or None
        self._started = False
        if not ray.is_initialized():
            pythonpath = os.environ.get("PYTHONPATH")
            env = {"env_vars": {"PYTHONPATH": pythonpath}} if pythonpath else None
            options: dict[str, Any] = {"address": address} if address else {"num_cpus": 1}
            try:
                ray.init(
                    **options,
                    include_dashboard=False,
                    runtime_env=env,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
            except Exception as exc:
                raise StrataError(
                    f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}",
                    hint="set STRATA_RAY=ray://host:10001 for a cluster, or leave it unset for a local instance",
                ) from exc
            self._started = True
        self._remote = ray.remote(max_retries=0)(run_task)

    def run(
        self, task: dict[str, Any], *, timeout: float | None, cancelled: threading.Event
    ) -> dict[str, Any]:
        """Run one attempt as a Ray task and wait for it."""
        ref = self._remote.remote(task)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready, _ = self._ray.wait([ref], timeout=POLL)
            if ready:
                try:
                    result: dict[str, Any] = self._ray.get(ref)
                except Exception as exc:  # the task's worker died
                    return {
                        "ok": False,
                        "error": f"the Ray task failed: {exc}",
                        "where": "",
                        "traceback": "",
                        "retryable": False,
                        "logs": [],
                    }
                return result
            if cancelled.is_set():
                self._ray.cancel(ref, force=True)
                raise Interrupted("cancelled", "the run was cancelled")
            if deadline is not None and time.monotonic() > deadline:
                self._ray.cancel(ref, force=True)
                raise Interrupted("timeout", f"timed out after {timeout:g} s")

    def close(self) -> None:
        """Shut down the local Ray instance this engine started."""
        if self._started:
            self._ray.shutdown()


def open_engine(name: str, *, workers: int | None = None, ray_address: str | None = None) -> Engine:
    """The engine ``name`` (``local`` or ``ray``; Ray at ``ray_address`` or ``STRATA_RAY``,
    else a local instance)."""
    if name == "local":
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(ray_address)
    raise ConfigError(f"unknown engine {name!r}", hint="use --engine local or --engine ray")
