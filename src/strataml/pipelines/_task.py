"""One attempt of one step, as a worker process (local or Ray) runs it.

The worker opens the workspace itself, finds the step (from ``definitions.py`` by name, or
from the pickled step when the pipeline was built in Python), turns the input descriptors
into values, calls the function inside a boundary that records what it printed and
logged, and hands back the value or the error. It stores nothing: the run's owner does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import os
import pickle
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class StepContext:
    """What a step function receives as its ``context`` parameter, when it has one."""

    run_id: str
    step: str
    attempt: int
    params: dict[str, Any]
    workspace: Any
    """The :class:`~strataml.spine.Workspace` the step runs in."""
    config: dict[str, Any]
    """The step's own settings (what a built-in step was made with)."""

    def log(self, message: str) -> None:
        """Record one log line for this step (kept with the run)."""
        logging.getLogger(f"strataml.step.{self.step}").info(message)


class _Lines(io.TextIOBase):
    """A text stream that records each complete line with its time and stream name."""

    def __init__(self, stream: str, sink: list[dict[str, Any]]) -> None:
        self.stream, self.sink, self.buf = stream, sink, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buf += text
        while "\n" in self.buf:
            line, _, self.buf = self.buf.partition("\n")
            self.sink.append(
                {"ts": dt.datetime.now(dt.UTC).isoformat(), "stream": self.stream, "line": line}
            )
        return len(text)

    def flush(self) -> None:
        if self.buf:
            self.sink.append(
                {"ts": dt.datetime.now(dt.UTC).isoformat(), "stream": self.stream, "line": self.buf}
            )
            self.buf = ""


class _Handler(logging.Handler):
    def __init__(self, sink: list[dict[str, Any]]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat()
        self.sink.append({"ts": ts, "stream": "log", "line": self.format(record)})


@contextlib.contextmanager
def _captured(sink: list[dict[str, Any]]) -> Any:
    out, err = _Lines("stdout", sink), _Lines("stderr", sink)
    handler = _Handler(sink)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level or logging.INFO, logging.INFO))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # type: ignore[type-var]
            yield
    finally:
        out.flush()
        err.flush()
        root.removeHandler(handler)
        root.setLevel(old_level)


def _find_step(workspace: Any, task: dict[str, Any]) -> Any:
    if task.get("step_pickle") is not None:
        return pickle.loads(task["step_pickle"])
    from strataml.pipelines._runs import resolve_pipeline

    return resolve_pipeline(workspace, task["pipeline"]).steps[task["step"]]


def _value(workspace: Any, desc: dict[str, Any]) -> Any:
    kind = desc["kind"]
    if kind == "value":
        return desc["value"]
    if kind == "output":
        from strataml.pipelines._cache import load_value

        return load_value(workspace, desc["output"])
    if kind == "dataset":
        from strataml.data import get_version

        return get_version(workspace, desc["ref"])
    return desc["ref"]  # feature view NAME@VERSION, model NAME@N


def _where(exc: BaseException, step: Any) -> str:
    """``file:line`` of the innermost frame in the step's own file."""
    code = getattr(getattr(step, "fn", None), "__code__", None)
    frames = traceback.extract_tb(exc.__traceback__)
    if code is not None:
        mine = [f for f in frames if f.filename == code.co_filename]
        if mine:
            return f"{Path(mine[-1].filename).name}:{mine[-1].lineno}"
    return getattr(step, "where", "") or ""


def _reuse_definitions(workspace: Any, cache: dict[tuple[str, float], Any] | None) -> None:
    """A worker loads ``definitions.py`` once per version of the file, not once per task."""
    if cache is None:
        return
    from strataml.spine import DEFINITIONS_FILE

    path = Path(workspace.root) / DEFINITIONS_FILE
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        return
    if key not in cache:
        cache.clear()
        cache[key] = workspace.definitions
    workspace._definitions = cache[key]


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one attempt; returns ``{"ok": True, "value", "logs"}`` or ``{"ok": False, "error",
    "where", "traceback", "retryable", "logs"}``. Never raises for an error of the step."""
    from strataml.spine import Workspace

    logs: list[dict[str, Any]] = []
    step = None
    # modules the owner could import (a pipeline built in Python names its steps by module)
    sys.path.extend(p for p in task.get("sys_path", []) if p not in sys.path)
    workspace = Workspace(Path(task["root"]), settings=task["settings"])
    _reuse_definitions(workspace, task.get("definitions_cache"))
    try:
        with _captured(logs):
            step = _find_step(workspace, task)
            kwargs = {name: _value(workspace, desc) for name, desc in task["args"].items()}
            if step.wants_context():
                kwargs["context"] = StepContext(
                    task["run_id"],
                    step.name,
                    task["attempt"],
                    task["params"],
                    workspace,
                    dict(step.config),
                )
            value = step.fn(**kwargs)
        return {"ok": True, "value": value, "logs": logs}
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        retryable = step is not None and isinstance(exc, tuple(step.retry_on))
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "where": _where(exc, step),
            "traceback": "".join(traceback.format_exception(exc)),
            "retryable": retryable,
            "logs": logs,
        }
    finally:
        workspace.close()


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a SIGKILLed run leaves no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _encode_result(result: dict[str, Any]) -> bytes:
    try:
        return pickle.dumps(result)
    except Exception as exc:  # the value cannot leave this process
        return pickle.dumps(
            {
                "ok": False,
                "error": f"the step returned a {type(result.get('value')).__name__} that cannot leave its process: {exc}",
                "where": "",
                "traceback": "",
                "retryable": False,
                "logs": result.get("logs", []),
            }
        )


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def send_frame(fd: int, data: bytes) -> None:
    """Write one length-prefixed frame."""
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int) -> bytes | None:
    """Read one length-prefixed frame (None at end of stream)."""
    header = _read_exact(fd, 8)
    return None if header is None else _read_exact(fd, int.from_bytes(header, "big"))


def _serve() -> None:
    """``python -m strataml.pipelines._task``: a worker process. Reads pickled tasks from
    stdin and writes each result to what was stdout, until stdin closes; what steps write
    to stdout at the C level goes to stderr instead of into the results."""
    inp, out = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _die_with_parent()
    definitions: dict[tuple[str, float], Any] = {}
    while True:
        frame = read_frame(inp)
        if frame is None:
            return
        task = pickle.loads(frame)
        if os.getppid() != task.get("parent_pid", os.getppid()):
            os._exit(3)  # the owner died before this process could ask to follow it
        task["definitions_cache"] = definitions
        send_frame(out, _encode_result(run_task(task)))


if __name__ == "__main__":
    _serve()
