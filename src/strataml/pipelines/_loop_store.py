"""The loop's durable state: one ``loop_runs`` row per canary analysis, read as a
:class:`LoopRun` and changed only by :func:`commit` — a compare-and-set on the row's
generation in the same transaction as the traffic and alias changes and the events,
so two processes advancing the same loop can never both act, and a process killed
mid-step leaves the previous state whole."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from strataml.errors import StrataError
from strataml.pipelines._canary import Canary
from strataml.pipelines._runs import find_id
from strataml.pipelines._tables import loop_runs
from strataml.spine import Workspace, append_event, failpoint, utcnow

ACTIVE = ("canary", "approval", "baking")
FINAL = ("promoted", "rolled_back", "superseded")


class LoopConflict(StrataError):
    """Another process changed the loop first; the caller reads it again."""


@dataclass
class LoopRun:
    """One canary analysis of the closed loop and where it stands.

    ``state``: ``canary`` (watching), ``approval`` (passed, waiting for a human),
    ``baking`` (promoted; the previous champion kept as alias ``previous``), then one
    of ``promoted``, ``rolled_back`` or ``superseded`` (a newer challenger took its place).
    ``rounds`` are the checks made so far, ``decision`` the final word with its reasons.
    """

    id: str
    model: str
    deployment: str
    state: str
    champion_version: int | None
    canary_version: int
    canary: Canary
    rounds: list[dict[str, Any]]
    decision: dict[str, Any] | None
    pipeline_run: str | None
    trigger: dict[str, Any] | None
    generation: int
    started_at: dt.datetime
    watch_until: dt.datetime
    watch_limit: dt.datetime
    next_check_at: dt.datetime
    approval_until: dt.datetime | None
    approved_by: str | None
    bake_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    ended_at: dt.datetime | None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Whether the analysis (or its bake) is still going."""
        return self.state in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""

        def iso(t: dt.datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "id": self.id,
            "model": self.model,
            "deployment": self.deployment,
            "state": self.state,
            "champion_version": self.champion_version,
            "canary_version": self.canary_version,
            "canary": self.canary.to_dict(),
            "rounds": self.rounds,
            "decision": self.decision,
            "pipeline_run": self.pipeline_run,
            "trigger": self.trigger,
            "started_at": iso(self.started_at),
            "watch_until": iso(self.watch_until),
            "watch_limit": iso(self.watch_limit),
            "next_check_at": iso(self.next_check_at),
            "approval_until": iso(self.approval_until),
            "approved_by": self.approved_by,
            "bake_until": iso(self.bake_until),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "ended_at": iso(self.ended_at),
        }


def _from_row(r: Any) -> LoopRun:
    t = {
        k: r[k]
        for k in (
            "started_at",
            "watch_until",
            "watch_limit",
            "next_check_at",
            "approval_until",
            "bake_until",
            "created_at",
            "updated_at",
            "ended_at",
        )
    }
    return LoopRun(
        id=r["id"],
        model=r["model"],
        deployment=r["deployment"],
        state=r["state"],
        champion_version=r["champion_version"],
        canary_version=int(r["canary_version"]),
        canary=Canary.from_dict(r["spec"]),
        rounds=list(r["rounds"] or []),
        decision=r["decision"],
        pipeline_run=r["pipeline_run"],
        trigger=r["trigger"],
        generation=int(r["generation"]),
        approved_by=r["approved_by"],
        **t,  # type: ignore[arg-type]
    )


def new_id() -> str:
    """A fresh loop run id."""
    return uuid.uuid4().hex


def get_loop(ws: Workspace, loop_id: str) -> LoopRun:
    """One loop run by id (or a unique start of it, at least 4 characters)."""
    with ws.catalog.read() as conn:
        full = find_id(conn, loop_runs.c.id, loop_id, "loop run", "'strata pipelines loops' lists them")
        r = conn.execute(sa.select(loop_runs).where(loop_runs.c.id == full)).mappings().one()
    return _from_row(r)


def list_loops(
    ws: Workspace, *, model: str | None = None, active: bool | None = None, limit: int = 50
) -> list[LoopRun]:
    """Loop runs, newest first, optionally one model's or only the live ones."""
    q = sa.select(loop_runs).order_by(loop_runs.c.created_at.desc(), loop_runs.c.id).limit(limit)
    if model is not None:
        q = q.where(loop_runs.c.model == model)
    if active is True:
        q = q.where(loop_runs.c.active.is_not(None))
    elif active is False:
        q = q.where(loop_runs.c.active.is_(None))
    with ws.catalog.read() as conn:
        return [_from_row(r) for r in conn.execute(q).mappings()]


def active_loop(conn: sa.Connection, deployment: str) -> LoopRun | None:
    """The deployment's live loop, read inside a transaction."""
    r = (
        conn.execute(sa.select(loop_runs).where(loop_runs.c.active == deployment))
        .mappings()
        .first()
    )
    return None if r is None else _from_row(r)


def insert(conn: sa.Connection, run: LoopRun) -> None:
    """Store a new loop run."""
    conn.execute(
        loop_runs.insert().values(
            id=run.id,
            model=run.model,
            deployment=run.deployment,
            active=run.deployment if run.active else None,
            state=run.state,
            champion_version=run.champion_version,
            canary_version=run.canary_version,
            spec=run.canary.to_dict(),
            rounds=run.rounds,
            decision=run.decision,
            pipeline_run=run.pipeline_run,
            trigger=run.trigger,
            generation=run.generation,
            started_at=run.started_at,
            watch_until=run.watch_until,
            watch_limit=run.watch_limit,
            next_check_at=run.next_check_at,
            approval_until=run.approval_until,
            approved_by=run.approved_by,
            bake_until=run.bake_until,
            created_at=run.created_at,
            updated_at=run.updated_at,
            ended_at=run.ended_at,
        )
    )


def event(
    conn: sa.Connection, run: LoopRun, kind: str, payload: dict[str, Any], actor: str | None = None
) -> None:
    """Append one of the loop's events (subject ``loop:ID``) with the run's identity."""
    base = {
        "loop": run.id,
        "model": run.model,
        "deployment": run.deployment,
        "champion_version": run.champion_version,
        "canary_version": run.canary_version,
        "pipeline_run": run.pipeline_run,
    }
    append_event(conn, f"loop.{kind}", f"loop:{run.id}", {**base, **payload}, actor=actor)


def write(conn: sa.Connection, run: LoopRun, changes: dict[str, Any]) -> LoopRun:
    """Apply ``changes`` to the row if nobody changed it since ``run`` was read (LoopConflict otherwise)."""
    now = utcnow()
    values = {**changes, "generation": run.generation + 1, "updated_at": now}
    if "state" in changes:
        values["active"] = run.deployment if changes["state"] in ACTIVE else None
        if changes["state"] in FINAL:
            values["ended_at"] = now
    res = conn.execute(
        loop_runs.update()
        .where(loop_runs.c.id == run.id, loop_runs.c.generation == run.generation)
        .values(**values)
    )
    if res.rowcount != 1:
        raise LoopConflict(
            f"loop run {run.id} changed while this step was deciding", hint="read it again"
        )
    r = conn.execute(sa.select(loop_runs).where(loop_runs.c.id == run.id)).mappings().one()
    return _from_row(r)


def commit(
    ws: Workspace,
    run: LoopRun,
    changes: dict[str, Any],
    also: Callable[[sa.Connection, LoopRun], None] | None = None,
    point: str | None = None,
) -> LoopRun | None:
    """One step: the state change, then ``also`` (traffic, aliases, events) in the same
    transaction; None when another process moved the loop first. ``point`` names the
    failpoint reached just before the commit (for crash tests)."""
    try:
        with ws.catalog.write() as conn:
            fresh = write(conn, run, changes)
            if also is not None:
                also(conn, fresh)
            if point:
                failpoint(point)
    except LoopConflict:
        return None
    return fresh
