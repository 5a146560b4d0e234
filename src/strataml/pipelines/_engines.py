"""Where step attempts run: local worker processes (default) or Ray tasks.

An engine runs one attempt and waits for it, bounded by the step's timeout and
interrupted by a cancel; both end the attempt's process or task. The local engine
runs at most ``workers`` attempts at once, each in its own fresh interpreter (no state
shared with the owner's threads, no re-import of the caller's ``__main__``), so a step
that hangs or is cancelled is killed without disturbing the others.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Protocol

from strataml.errors import ConfigError, MissingExtra

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


class LocalEngine:
    """Attempts in local worker processes, ``workers`` at a time."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or (os.cpu_count() or 1))
        self._slots = threading.BoundedSemaphore(self.workers)

    def run(
        self, task: dict[str, Any], *, timeout: float | None, cancelled: threading.Event
    ) -> dict[str, Any]:
        """Run one attempt in a fresh worker process (``python -m strataml.pipelines._task``)."""
        with self._slots, tempfile.TemporaryDirectory(prefix="strata-attempt-") as folder:
            if cancelled.is_set():
                raise Interrupted("cancelled", "the run was cancelled")
            out = os.path.join(folder, "result.pkl")
            with open(os.path.join(folder, "stderr"), "w+b") as stderr:
                process = subprocess.Popen(
                    [sys.executable, "-m", "strataml.pipelines._task", out],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
                try:
                    assert process.stdin is not None
                    payload = {
                        **task,
                        "parent_pid": os.getpid(),
                    }
                    with contextlib.suppress(BrokenPipeError):
                        process.stdin.write(pickle.dumps(payload))
                        process.stdin.close()
                    deadline = None if timeout is None else time.monotonic() + timeout
                    while True:
                        try:
                            code = process.wait(POLL)
                            break
                        except subprocess.TimeoutExpired:
                            pass
                        if cancelled.is_set():
                            raise Interrupted("cancelled", "the run was cancelled")
                        if deadline is not None and time.monotonic() > deadline:
                            raise Interrupted("timeout", f"timed out after {timeout:g} s")
                finally:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
                if code == 0 and os.path.exists(out):
                    with open(out, "rb") as fh:
                        result: dict[str, Any] = pickle.load(fh)
                    return result
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                return {
                    "ok": False,
                    "error": f"the worker process {how}"
                    + (": " + " | ".join(tail) if tail else ""),
                    "where": "",
                    "traceback": "",
                    "retryable": False,
                    "logs": [],
                }

    def close(self) -> None:
        """Nothing to release: each attempt's process ends with it."""


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
            env = (
                {"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}}
                if os.environ.get("PYTHONPATH")
                else None
            )
            if address:
                ray.init(
                    address=address,
                    runtime_env=env,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
            else:
                ray.init(
                    num_cpus=1,
                    include_dashboard=False,
                    runtime_env=env,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                )
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


def open_engine(name: str, *, workers: int | None = None) -> Engine:
    """The engine ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine()
    raise ConfigError(f"unknown engine {name!r}", hint="use --engine local or --engine ray")
