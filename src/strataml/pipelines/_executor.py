"""Executing a run: steps in dependency order, independent ones in parallel.

For each step whose upstream steps are done, the owner resolves its inputs, computes its
cache key and reuses a stored result when one exists; otherwise it runs attempts on the
engine (retrying, with exponential backoff and jitter, the error types the step declares
retryable), and stores the value only after the step succeeded — a failed step leaves no
output. Every run, step, attempt and log line is written to the catalog, and every
state change is an event. A resumed run keeps the steps it already completed.
"""

from __future__ import annotations

import pickle
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import tenacity

from strataml.errors import ConcurrencyError, StrataError
from strataml.pipelines._cache import (
    StepOutputError,
    cache_key,
    cached_output,
    resolve_inputs,
    store_value,
)
from strataml.pipelines._engines import Engine, Interrupted, open_engine
from strataml.pipelines._graph import check_inputs, run_edges, topological
from strataml.pipelines._recovery import Heartbeat, finish_run, owner, owner_alive, recover_runs
from strataml.pipelines._refs import PipelineError
from strataml.pipelines._runs import PipelineRun, create_run, get_run, resolve_pipeline
from strataml.pipelines._tables import (
    pipeline_attempts,
    pipeline_cache,
    pipeline_logs,
    pipeline_runs,
    pipeline_steps,
)
from strataml.spine import DEFINITIONS_FILE, Workspace, append_event, utcnow

if TYPE_CHECKING:
    from strataml.pipelines._pipeline import Pipeline, Step


class _Retry(Exception):
    """An attempt failed with an error the step declares retryable."""


class _Failed(Exception):
    """A step failed for good."""


def _claim(workspace: Workspace, run_id: str, pipeline: Pipeline, engine: str) -> dict[str, Any]:
    """Make this process the run's owner and reset the steps it did not complete."""
    t, s = pipeline_runs, pipeline_steps
    with workspace.catalog.write() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == run_id)).mappings().one()
        if row["state"] == "running":
            raise ConcurrencyError(
                f"run {run_id} is already running ({row['owner_host']} pid {row['owner_pid']})",
                hint=f"wait for it, or stop it with 'strata pipelines cancel {run_id}'",
            )
        executions = int(row["executions"] or 0) + 1
        conn.execute(
            t.update()
            .where(t.c.id == run_id)
            .values(
                state="running",
                started_at=row["started_at"] or utcnow(),
                finished_at=None,
                error=None,
                engine=engine,
                heartbeat_at=utcnow(),
                executions=executions,
                cancel_requested=False,
                **owner(),
            )
        )
        existing = {
            r.step: r.state
            for r in conn.execute(sa.select(s.c.step, s.c.state).where(s.c.run_id == run_id))
        }
        for name in pipeline.steps:
            if name not in existing:
                conn.execute(
                    s.insert().values(
                        run_id=run_id, step=name, state="pending", attempts=0, inputs={}
                    )
                )
            elif existing[name] not in ("succeeded", "cached"):
                conn.execute(
                    s.update()
                    .where(s.c.run_id == run_id, s.c.step == name)
                    .values(state="pending", error=None, started_at=None, finished_at=None)
                )
        done = [n for n, st in existing.items() if st in ("succeeded", "cached")]
        append_event(
            conn,
            "pipeline.run.started",
            row["pipeline"],
            {
                "run_id": run_id,
                "run_key": row["run_key"],
                "engine": engine,
                "execution": executions,
                "completed_steps": done,
            },
        )
    return dict(row)


class _Execution:
    """One execution of a run by this process."""

    def __init__(
        self,
        workspace: Workspace,
        run: dict[str, Any],
        pipeline: Pipeline,
        engine: Engine,
        source: str,
    ) -> None:
        self.ws, self.run, self.pipeline, self.engine, self.source = (
            workspace,
            run,
            pipeline,
            engine,
            source,
        )
        # parameters declared after the run was created take their defaults
        self.params: dict[str, Any] = {**pipeline.params, **(run["params"] or {})}
        self.progress: Callable[[str, str, str | None], None] | None = None
        self.cancelled = threading.Event()
        self.done: dict[str, dict[str, Any]] = {}
        t = pipeline_steps
        with workspace.catalog.read() as conn:
            for r in conn.execute(
                sa.select(t.c.step, t.c.state, t.c.output).where(t.c.run_id == run["id"])
            ):
                if r.state in ("succeeded", "cached") and r.output is not None:
                    self.done[r.step] = dict(r.output)

    # --- recording -----------------------------------------------------------------

    def _step_event(self, conn: sa.Connection, kind: str, name: str, **details: Any) -> None:
        payload = {
            "run_id": self.run["id"],
            "run_key": self.run["run_key"],
            "step": name,
            **details,
        }
        append_event(conn, f"pipeline.step.{kind}", self.pipeline.name, payload)

    def _set_step(self, conn: sa.Connection, name: str, **values: Any) -> None:
        s = pipeline_steps
        conn.execute(
            s.update().where(s.c.run_id == self.run["id"], s.c.step == name).values(**values)
        )

    # --- one step ------------------------------------------------------------------

    def step(self, name: str) -> tuple[str, str | None]:
        """Run one step to its end: ``("succeeded" | "cached" | "failed" | "cancelled", error)``."""
        s = self.pipeline.steps[name]
        args, material = resolve_inputs(self.ws, self.pipeline, name, self.params, self.done)
        extra = s.fingerprint(self.ws, s.config) if s.fingerprint is not None else None
        key = cache_key(s, material, extra)
        hit = cached_output(self.ws, key) if s.cache else None
        now = utcnow()
        if hit is not None:
            with self.ws.catalog.write() as conn:
                self._set_step(
                    conn,
                    name,
                    state="cached",
                    cache_key=key,
                    inputs=material,
                    output=hit,
                    started_at=now,
                    finished_at=now,
                )
                self._step_event(conn, "cached", name, cache_key=key)
            self.done[name] = hit
            return "cached", None
        with self.ws.catalog.write() as conn:
            self._set_step(
                conn,
                name,
                state="running",
                cache_key=key,
                inputs=material,
                started_at=now,
                attempts=0,
            )
            self._step_event(conn, "started", name, cache_key=key)
        task = {
            "root": str(self.ws.root),
            "settings": self.ws.settings,
            "pipeline": self.pipeline.name,
            "step": name,
            "step_pickle": None if self.source == "definitions" else pickle.dumps(s),
            "args": args,
            "params": self.params,
            "run_id": self.run["id"],
            "sys_path": [p for p in sys.path if p],
        }
        a = pipeline_attempts
        with self.ws.catalog.read() as conn:  # a resumed step numbers its attempts on
            q = sa.select(sa.func.max(a.c.attempt)).where(
                a.c.run_id == self.run["id"], a.c.step == name
            )
            base = int(conn.execute(q).scalar() or 0)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(s.retries + 1),
            # exponential backoff plus up to one base interval of random jitter
            wait=tenacity.wait_exponential(multiplier=s.backoff, max=s.max_backoff)
            + tenacity.wait_random(0, s.backoff),
            retry=tenacity.retry_if_exception_type(_Retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            value: Any = None
            for attempt in retrying:
                with attempt:
                    value = self._attempt(
                        s, {**task, "attempt": base + attempt.retry_state.attempt_number}
                    )
            output = store_value(self.ws, s, value)
        except Interrupted as exc:
            state = "cancelled" if exc.reason == "cancelled" else "failed"
            return self._end(name, state, str(exc))
        except (_Retry, _Failed) as exc:
            return self._end(name, "failed", str(exc))
        except StepOutputError as exc:
            return self._end(name, "failed", exc.message)
        try:
            self._succeed(name, key, output, remember=s.cache)
        except sa.exc.IntegrityError:  # another run stored the same key first: keep theirs
            self._succeed(name, key, output, remember=False)
        self.done[name] = output
        return "succeeded", None

    def _succeed(self, name: str, key: str, output: dict[str, Any], *, remember: bool) -> None:
        c = pipeline_cache
        with self.ws.catalog.write() as conn:
            self._set_step(conn, name, state="succeeded", output=output, finished_at=utcnow())
            known = conn.execute(sa.select(c.c.cache_key).where(c.c.cache_key == key)).first()
            if remember and known is None:
                conn.execute(
                    c.insert().values(
                        cache_key=key,
                        step=name,
                        output=output,
                        run_id=self.run["id"],
                        created_at=utcnow(),
                    )
                )
            self._step_event(conn, "succeeded", name, cache_key=key)

    def _sleep(self, seconds: float) -> None:
        self.cancelled.wait(seconds)  # a cancel ends the backoff at once

    def _end(self, name: str, state: str, error: str) -> tuple[str, str | None]:
        with self.ws.catalog.write() as conn:
            self._set_step(conn, name, state=state, finished_at=utcnow(), error=error)
            self._step_event(conn, state, name, error=error)
        return state, error

    def _attempt(self, s: Step, task: dict[str, Any]) -> Any:
        """One attempt on the engine, recorded; returns the value or raises."""
        number = task["attempt"]
        run_id = self.run["id"]
        a = pipeline_attempts
        with self.ws.catalog.write() as conn:
            conn.execute(
                a.insert().values(
                    run_id=run_id, step=s.name, attempt=number, state="running", started_at=utcnow()
                )
            )
            self._set_step(conn, s.name, attempts=number)
        try:
            result = self.engine.run(task, timeout=s.timeout, cancelled=self.cancelled)
        except Interrupted as exc:
            retry = exc.reason == "timeout" and any(issubclass(TimeoutError, e) for e in s.retry_on)
            self._record_attempt(
                s.name,
                number,
                "cancelled" if exc.reason == "cancelled" else "timeout",
                str(exc),
                [],
            )
            if retry and not self.cancelled.is_set():
                self._retrying(s.name, number, str(exc))
                raise _Retry(str(exc)) from exc
            raise
        error = (
            None
            if result["ok"]
            else (f"{result['where']}: " if result.get("where") else "") + result["error"]
        )
        self._record_attempt(
            s.name, number, "succeeded" if result["ok"] else "failed", error, result.get("logs", [])
        )
        if result["ok"]:
            return result["value"]
        if result.get("retryable") and not self.cancelled.is_set():
            self._retrying(s.name, number, error or "")
            raise _Retry(error)
        raise _Failed(error)

    def _retrying(self, name: str, number: int, error: str) -> None:
        with self.ws.catalog.write() as conn:
            self._step_event(conn, "retrying", name, attempt=number, error=error)

    def _record_attempt(
        self, name: str, number: int, state: str, error: str | None, logs: list[dict[str, Any]]
    ) -> None:
        a, lg = pipeline_attempts, pipeline_logs
        with self.ws.catalog.write() as conn:
            conn.execute(
                a.update()
                .where(a.c.run_id == self.run["id"], a.c.step == name, a.c.attempt == number)
                .values(state=state, finished_at=utcnow(), error=error)
            )
            if logs:
                from datetime import datetime

                conn.execute(
                    lg.insert(),
                    [
                        {
                            "run_id": self.run["id"],
                            "step": name,
                            "attempt": number,
                            "ts": datetime.fromisoformat(entry["ts"]),
                            "stream": entry["stream"],
                            "line": entry["line"],
                        }
                        for entry in logs
                    ],
                )

    # --- the whole run -------------------------------------------------------------

    def run_all(self) -> tuple[str, str | None]:
        """Run every step not yet completed; the run's final state and error."""
        upstream = run_edges(self.ws, self.pipeline)
        order = topological(upstream)
        started = set(self.done)
        failure: str | None = None
        running: dict[Future[tuple[str, str | None]], str] = {}
        with ThreadPoolExecutor(
            max_workers=max(1, len(upstream)), thread_name_prefix="strata-step"
        ) as pool:
            while True:
                if failure is None and not self.cancelled.is_set():
                    for name in order:
                        if name not in started and upstream[name] <= set(self.done):
                            started.add(name)
                            running[pool.submit(self.step, name)] = name
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    try:
                        state, error = future.result()
                    except StrataError as exc:
                        state, error = "failed", exc.message
                        self._end(name, "failed", error)
                    if state == "failed" and failure is None:
                        failure = f"step {name!r} failed: {error}"
                    if self.progress is not None:
                        self.progress(name, state, error)
        leftover = [n for n in self.pipeline.steps if n not in started]
        if self.cancelled.is_set():
            final, error = "cancelled", "cancelled"
        elif failure is not None:
            final, error = "failed", failure
        else:
            return "succeeded", None
        with self.ws.catalog.write() as conn:
            for name in leftover:
                self._set_step(conn, name, state="skipped" if final == "failed" else "cancelled")
        return final, error


def _source(workspace: Workspace, pipeline: Pipeline) -> str:
    """``definitions`` when workers can find the pipeline by name in ``definitions.py``."""
    try:
        declared = resolve_pipeline(workspace, pipeline.name)
    except StrataError:
        return "object"
    same = declared is pipeline or set(declared.steps) == set(pipeline.steps)
    path = Path(workspace.root) / DEFINITIONS_FILE
    return "definitions" if same and path.is_file() else "object"


def execute_run(
    workspace: Workspace,
    run_id: str,
    *,
    engine: str = "local",
    pipeline: Pipeline | None = None,
    workers: int | None = None,
    progress: Callable[[str, str, str | None], None] | None = None,
) -> PipelineRun:
    """Run a queued, failed or cancelled run to its end and return it.

    Steps completed by an earlier execution of the same run are kept; the others run
    (or reuse a cached result). Runs whose owner died are marked failed first.
    ``progress(step, state, error)`` is called as each step ends.
    """
    recover_runs(workspace)
    run = get_run(workspace, run_id)
    if run.state == "succeeded":
        return run
    built = resolve_pipeline(workspace, pipeline or run.pipeline)
    source = _source(workspace, built)
    if source == "object":
        for s in built.steps.values():
            try:
                pickle.dumps(s)
            except Exception as exc:
                raise PipelineError(
                    f"step {s.name!r} ({s.where}) cannot be sent to a worker process: {exc}",
                    hint="declare the pipeline in definitions.py, or define step functions at module level",
                ) from exc
    row = _claim(workspace, run.id, built, engine)
    try:
        check_inputs(workspace, built)
    except PipelineError as exc:
        with workspace.catalog.write() as conn:
            finish_run(conn, row, "failed", exc.message)
        raise
    try:
        eng = open_engine(engine, workers=workers, ray_address=workspace.settings.ray)
    except StrataError as exc:
        with workspace.catalog.write() as conn:
            finish_run(conn, row, "failed", exc.message)
        raise
    execution = _Execution(workspace, row, built, eng, source)
    execution.progress = progress
    try:
        with Heartbeat(workspace, run.id, execution.cancelled):
            state, error = execution.run_all()
    except BaseException as exc:
        with workspace.catalog.write() as conn:
            finish_run(conn, row, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        eng.close()
    with workspace.catalog.write() as conn:
        steps = {
            r.step: r.state
            for r in conn.execute(
                sa.select(pipeline_steps.c.step, pipeline_steps.c.state).where(
                    pipeline_steps.c.run_id == run.id
                )
            )
        }
        finish_run(conn, row, state, error, steps=steps)
    return get_run(workspace, run.id)


def resume_run(
    workspace: Workspace,
    run_id: str,
    *,
    engine: str = "local",
    workers: int | None = None,
    progress: Callable[[str, str, str | None], None] | None = None,
) -> PipelineRun:
    """Continue a failed or cancelled run from its last completed step."""
    recover_runs(workspace)
    run = get_run(workspace, run_id)
    if run.state == "succeeded":
        raise StrataError(
            f"run {run.id} already succeeded; there is nothing to resume",
            hint=f"start a new run: 'strata pipelines run {run.pipeline}'",
        )
    if run.state == "running":
        t = pipeline_runs
        with workspace.catalog.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == run.id)).mappings().one()
        if owner_alive(row):
            raise ConcurrencyError(
                f"run {run.id} is still running",
                hint=f"cancel it first: 'strata pipelines cancel {run.id}'",
            )
    return execute_run(workspace, run.id, engine=engine, workers=workers, progress=progress)


def run_pipeline(
    workspace: Workspace | str | Path | None,
    pipeline: str | Pipeline,
    *,
    params: dict[str, Any] | None = None,
    engine: str = "local",
    run_key: str | None = None,
    trigger: dict[str, Any] | None = None,
    workers: int | None = None,
) -> PipelineRun:
    """Create a run of ``pipeline`` (a name declared in ``definitions.py`` or an object) in
    ``workspace`` (a :class:`Workspace`, a folder, or None for the current one) and execute
    it; returns the finished run (check ``run.state``; all steps ``cached`` means nothing
    changed since a run with the same inputs and code)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    run_id, _ = create_run(
        ws, pipeline, params=params, run_key=run_key, trigger=trigger or {"kind": "manual"}
    )
    return execute_run(
        ws,
        run_id,
        engine=engine,
        pipeline=None if isinstance(pipeline, str) else pipeline,
        workers=workers,
    )
