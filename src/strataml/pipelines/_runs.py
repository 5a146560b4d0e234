"""The run store: pipeline runs and their steps in the catalog, every state change an event.

:func:`create_run` is idempotent on ``run_key`` (the scheduler derives one from stable
ids, so a tick or an event seen twice starts one run); the executor moves a run through
``queued → running → succeeded | failed | cancelled`` and records each step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from strataml.errors import NotFound, StrataError
from strataml.pipelines._tables import (
    pipeline_attempts,
    pipeline_logs,
    pipeline_runs,
    pipeline_steps,
)
from strataml.spine import append_event, utcnow

if TYPE_CHECKING:
    from strataml.pipelines._pipeline import Pipeline
    from strataml.spine import Workspace

#: states a run does not leave by itself
FINISHED = ("succeeded", "failed", "cancelled")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class StepRun:
    """One step of a run: its state (``pending``, ``running``, ``succeeded``, ``cached``,
    ``failed``, ``skipped``, ``cancelled``), attempts, cache key and stored output."""

    name: str
    state: str
    attempts: int = 0
    cache_key: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None

    @property
    def summary(self) -> Any:
        """A short description of the stored output."""
        return output_summary(self.output)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "state": self.state,
            "attempts": self.attempts,
            "cache_key": self.cache_key,
            "inputs": self.inputs,
            "output": self.output,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
        }


@dataclass
class PipelineRun:
    """One run of a pipeline, as the catalog records it."""

    id: str
    pipeline: str
    run_key: str | None
    state: str
    params: dict[str, Any]
    trigger: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    steps: list[StepRun] = field(default_factory=list)
    engine: str | None = None
    owner: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """Whether the run has reached a final state."""
        return self.state in FINISHED

    def step(self, name: str) -> StepRun:
        """The record of one step."""
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFound(f"run {self.id} has no step {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "run_key": self.run_key,
            "state": self.state,
            "params": self.params,
            "trigger": self.trigger,
            "engine": self.engine,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
            "owner": self.owner,
            "steps": [s.to_dict() for s in self.steps],
        }


def _run_from_row(row: Any, steps: list[StepRun]) -> PipelineRun:
    owner = None
    if row["owner_pid"] is not None:
        owner = {
            "host": row["owner_host"],
            "pid": row["owner_pid"],
            "heartbeat_at": _iso(row["heartbeat_at"]),
        }
    created = row["created_at"]
    assert created is not None
    return PipelineRun(
        id=row["id"],
        pipeline=row["pipeline"],
        run_key=row["run_key"],
        state=row["state"],
        params=dict(row["params"] or {}),
        trigger=dict(row["trigger"] or {}),
        created_at=created,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        steps=steps,
        engine=row["engine"],
        owner=owner,
    )


def _steps_of(conn: sa.Connection, run_ids: list[str]) -> dict[str, list[StepRun]]:
    out: dict[str, list[StepRun]] = {r: [] for r in run_ids}
    if not run_ids:
        return out
    t = pipeline_steps
    rows = conn.execute(
        sa.select(t)
        .where(t.c.run_id.in_(run_ids))
        .order_by(
            t.c.run_id, sa.case((t.c.started_at.is_(None), 1), else_=0), t.c.started_at, t.c.step
        )
    )
    for r in rows.mappings():
        out[r["run_id"]].append(
            StepRun(
                name=r["step"],
                state=r["state"],
                attempts=r["attempts"] or 0,
                cache_key=r["cache_key"],
                inputs=dict(r["inputs"] or {}),
                output=r["output"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                error=r["error"],
            )
        )
    return out


def resolve_pipeline(workspace: Workspace, pipeline: str | Pipeline | Any) -> Pipeline:
    """The :class:`Pipeline` a name declared in ``definitions.py`` (or an object) stands for."""
    from strataml.pipelines._pipeline import Pipeline

    obj = workspace.definitions.get("pipeline", pipeline) if isinstance(pipeline, str) else pipeline
    built = obj if isinstance(obj, Pipeline) else obj.build(workspace)
    if not isinstance(built, Pipeline):
        raise StrataError(
            f"pipeline {getattr(obj, 'name', obj)!r} built {type(built).__name__}, not a Pipeline",
            hint="a declared pipeline's build(workspace) must return st.Pipeline",
        )
    return built


def create_run(
    workspace: Workspace,
    pipeline: str | Pipeline,
    *,
    params: dict[str, Any] | None = None,
    run_key: str | None = None,
    trigger: dict[str, Any] | None = None,
) -> tuple[str, bool]:
    """Record a queued run of ``pipeline``; returns ``(run id, created)``.

    Idempotent on ``run_key``: when a run with that key exists its id is returned with
    ``created=False`` and nothing is written. Parameters are checked against the ones the
    pipeline declares and stored merged with their defaults.
    """
    built = resolve_pipeline(workspace, pipeline)
    unknown = sorted(set(params or {}) - set(built.params))
    if unknown:
        raise StrataError(
            f"pipeline {built.name!r} has no parameter(s) {', '.join(map(repr, unknown))}"
            f" (declared: {', '.join(sorted(built.params)) or 'none'})",
            hint=f"declare them in Pipeline({built.name!r}, ..., params={{...}})",
        )
    merged = {**built.params, **(params or {})}
    t = pipeline_runs
    if run_key is not None:
        with workspace.catalog.read() as conn:
            found = conn.execute(sa.select(t.c.id).where(t.c.run_key == run_key)).scalar()
        if found is not None:
            return str(found), False
    run_id = uuid.uuid4().hex
    try:
        with workspace.catalog.write() as conn:
            conn.execute(
                t.insert().values(
                    id=run_id,
                    pipeline=built.name,
                    run_key=run_key,
                    state="queued",
                    params=merged,
                    trigger=trigger or {},
                    created_at=utcnow(),
                    executions=0,
                    cancel_requested=False,
                )
            )
            append_event(
                conn,
                "pipeline.run.created",
                built.name,
                {"run_id": run_id, "run_key": run_key, "params": merged, "trigger": trigger or {}},
            )
    except sa.exc.IntegrityError:
        # another process created the run with this key between our read and our write
        with workspace.catalog.read() as conn:
            found = conn.execute(sa.select(t.c.id).where(t.c.run_key == run_key)).scalar()
        if found is None:
            raise
        return str(found), False
    return run_id, True


def find_id(conn: sa.Connection, column: sa.Column[Any], ident: str, what: str, hint: str) -> str:
    """The full id in ``column`` that ``ident`` is, or is the unique start of (at least 4
    characters); NotFound naming ``what`` (an ambiguous start too) otherwise."""
    if conn.execute(sa.select(column).where(column == ident)).scalar() is not None:
        return ident
    matches = conn.execute(sa.select(column).where(column.startswith(ident, autoescape=True)).limit(2)).scalars().all()
    if len(matches) == 1 and len(ident) >= 4:
        return str(matches[0])
    raise NotFound(f"no {what} {ident[:40]!r}" + (" (the prefix is ambiguous)" if matches else ""), hint=hint)


def _find_id(conn: sa.Connection, run_id: str) -> str:
    return find_id(conn, pipeline_runs.c.id, run_id, "pipeline run", "list runs with 'strata pipelines runs'")


def get_run(workspace: Workspace, run_id: str) -> PipelineRun:
    """One run with its steps (``run_id`` may be a unique prefix of at least 4 characters)."""
    t = pipeline_runs
    with workspace.catalog.read() as conn:
        full = _find_id(conn, run_id)
        row = conn.execute(sa.select(t).where(t.c.id == full)).mappings().one()
        steps = _steps_of(conn, [full])[full]
    return _run_from_row(row, steps)


def list_runs(
    workspace: Workspace, pipeline: str | None = None, limit: int = 50, *, state: str | None = None
) -> list[PipelineRun]:
    """The newest runs first, optionally of one pipeline or in one state."""
    t = pipeline_runs
    q = sa.select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
    if pipeline is not None:
        q = q.where(t.c.pipeline == pipeline)
    if state is not None:
        q = q.where(t.c.state == state)
    with workspace.catalog.read() as conn:
        rows = conn.execute(q).mappings().all()
        steps = _steps_of(conn, [r["id"] for r in rows])
    return [_run_from_row(r, steps[r["id"]]) for r in rows]


def run_attempts(workspace: Workspace, run_id: str) -> list[dict[str, Any]]:
    """Every attempt of every step of a run, in the order they started."""
    a = pipeline_attempts
    with workspace.catalog.read() as conn:
        full = _find_id(conn, run_id)
        rows = conn.execute(
            sa.select(a).where(a.c.run_id == full).order_by(a.c.started_at, a.c.step, a.c.attempt)
        )
        return [
            {
                "step": r["step"],
                "attempt": r["attempt"],
                "state": r["state"],
                "started_at": _iso(r["started_at"]),
                "finished_at": _iso(r["finished_at"]),
                "error": r["error"],
            }
            for r in rows.mappings()
        ]


def run_logs(workspace: Workspace, run_id: str, step: str | None = None) -> list[dict[str, Any]]:
    """The lines a run's steps printed or logged (``stream``: stdout, stderr or log)."""
    t = pipeline_logs
    with workspace.catalog.read() as conn:
        full = _find_id(conn, run_id)
        q = sa.select(t).where(t.c.run_id == full).order_by(t.c.id)
        if step is not None:
            q = q.where(t.c.step == step)
        return [
            {
                "step": r["step"],
                "attempt": r["attempt"],
                "ts": _iso(r["ts"]),
                "stream": r["stream"],
                "line": r["line"],
            }
            for r in conn.execute(q).mappings()
        ]


def output_summary(desc: dict[str, Any] | None) -> Any:
    """A short human description of a stored output."""
    if desc is None:
        return None
    kind = desc.get("kind")
    if kind == "multi":
        return {k: output_summary(d) for k, d in desc["outputs"].items()}
    if kind == "table":
        return f"table ({desc.get('rows')} rows, {desc['sha256'][:12]})"
    if desc.get("stored") == "artifact":
        return f"json ({desc.get('bytes')} bytes, {desc['sha256'][:12]})"
    text = orjson.dumps(desc.get("value")).decode()
    return text if len(text) <= 80 else text[:77] + "..."
