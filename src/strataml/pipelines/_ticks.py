"""Tick rows and cursors: the scheduler's durable record of what it has started.

A tick is one (schedule or trigger, tick time or event). Its row is written before its
run is created, under a unique (source, tick key) and a unique run key derived only from
those two stable identifiers, so a tick seen again (after a restart, by another
scheduler, on a redelivered message) finds its row and its run instead of starting
another. States: ``claimed`` → ``created`` (the run exists) → ``started`` (handed to an
executor) → the run's final state; ``skipped`` marks files present before a files
trigger was first seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from strataml.pipelines._tables import scheduler_cursors, scheduler_ticks
from strataml.spine import utcnow

if TYPE_CHECKING:
    from strataml.pipelines._triggers import Fire
    from strataml.spine import Catalog

PENDING = ("claimed", "created", "started")
FINAL = ("succeeded", "failed", "cancelled", "skipped")


def run_key(source: str, tick_key: str) -> str:
    """The run key of a tick: a hash of its source and tick key, nothing else."""
    return "sched-" + hashlib.sha256(f"{source}\n{tick_key}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Tick:
    """One recorded tick."""

    id: int
    source: str
    tick_key: str
    pipeline: str
    run_key: str
    due_at: dt.datetime
    state: str
    run_id: str | None
    trigger: dict[str, Any]
    params: dict[str, Any]
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    claimed_by: str = ""
    """The scheduler that recorded the tick, or the one that last started its run."""

    @classmethod
    def from_row(cls, r: Any) -> Tick:
        """A tick from its row."""
        return cls(
            r["id"],
            r["source"],
            r["tick_key"],
            r["pipeline"],
            r["run_key"],
            r["due_at"],
            r["state"],
            r["run_id"],
            dict(r["trigger"] or {}),
            dict(r["params"] or {}),
            r["error"],
            r["created_at"],
            r["updated_at"],
            r["claimed_by"],
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "id": self.id,
            "source": self.source,
            "tick": self.tick_key,
            "pipeline": self.pipeline,
            "run_key": self.run_key,
            "due_at": self.due_at.isoformat(),
            "state": self.state,
            "run_id": self.run_id,
            "trigger": self.trigger,
            "error": self.error,
            "updated_at": self.updated_at.isoformat(),
            "scheduler": self.claimed_by,
        }


def known_keys(conn: sa.Connection, source: str, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` already have a tick row for ``source``."""
    t = scheduler_ticks
    out: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = list(keys[i : i + 500])
        q = sa.select(t.c.tick_key).where(t.c.source == source, t.c.tick_key.in_(chunk))
        out.update(conn.execute(q).scalars())
    return out


def claim(
    conn: sa.Connection,
    source: str,
    pipeline: str,
    fires: Iterable[Fire],
    holder: str,
    *,
    state: str = "claimed",
) -> list[Tick]:
    """Inside a write transaction: record the fires not yet recorded; the new ticks."""
    fires = list({f.key: f for f in fires}.values())
    seen = known_keys(conn, source, [f.key for f in fires])
    t = scheduler_ticks
    now = utcnow()
    out = []
    for f in fires:
        if f.key in seen:
            continue
        values = {
            "source": source,
            "tick_key": f.key,
            "pipeline": pipeline,
            "run_key": run_key(source, f.key),
            "due_at": f.due_at,
            "state": state,
            "run_id": None,
            "claimed_by": holder,
            "trigger": f.trigger,
            "params": f.params,
            "error": None,
            "created_at": now,
            "updated_at": now,
        }
        pk = conn.execute(t.insert().values(**values)).inserted_primary_key
        out.append(Tick.from_row({"id": int(pk[0]) if pk else 0, **values}))
    return out


def set_state(
    catalog: Catalog,
    tick_id: int,
    state: str,
    *,
    run_id: str | None = None,
    error: str | None = None,
    executor: str | None = None,
    conn: sa.Connection | None = None,
) -> None:
    """Move a tick to ``state`` (with its run id once known, and who executes it)."""
    t = scheduler_ticks
    values: dict[str, Any] = {"state": state, "updated_at": utcnow(), "error": error}
    if run_id is not None:
        values["run_id"] = run_id
    if executor is not None:
        values["claimed_by"] = executor
    if conn is not None:
        conn.execute(t.update().where(t.c.id == tick_id).values(**values))
        return
    with catalog.write() as c:
        c.execute(t.update().where(t.c.id == tick_id).values(**values))


def take(conn: sa.Connection, tick: Tick, holder: str) -> bool:
    """Inside a write transaction: make ``holder`` the tick's executor, unless another
    scheduler changed it since ``tick`` was read."""
    t = scheduler_ticks
    q = t.update().where(
        t.c.id == tick.id, t.c.claimed_by == tick.claimed_by, t.c.state == tick.state
    )
    return bool(conn.execute(q.values(claimed_by=holder, updated_at=utcnow())).rowcount)


def pending(catalog: Catalog, sources: Iterable[str]) -> list[Tick]:
    """Ticks of ``sources`` whose run has not finished, oldest first."""
    names = list(sources)
    if not names:
        return []
    t = scheduler_ticks
    q = sa.select(t).where(t.c.state.in_(PENDING), t.c.source.in_(names)).order_by(t.c.id)
    with catalog.read() as conn:
        return [Tick.from_row(r) for r in conn.execute(q).mappings()]


def recent(catalog: Catalog, limit: int = 20, *, pipeline: str | None = None) -> list[Tick]:
    """The newest ticks that started (or are starting) a run, newest first."""
    t = scheduler_ticks
    q = sa.select(t).where(t.c.state != "skipped").order_by(t.c.id.desc()).limit(limit)
    if pipeline is not None:
        q = q.where(t.c.pipeline == pipeline)
    with catalog.read() as conn:
        return [Tick.from_row(r) for r in conn.execute(q).mappings()]


def last_due(catalog: Catalog, source: str) -> dt.datetime | None:
    """When the last recorded tick of ``source`` was due (None before the first)."""
    t = scheduler_ticks
    with catalog.read() as conn:
        value = conn.execute(
            sa.select(sa.func.max(t.c.due_at)).where(t.c.source == source)
        ).scalar()
    return value if value is not None else None


def cursors(catalog: Catalog) -> dict[str, tuple[str, dt.datetime]]:
    """Every source's cursor and when it moved."""
    t = scheduler_cursors
    with catalog.read() as conn:
        return {
            r[0]: (r[1], r[2])
            for r in conn.execute(sa.select(t.c.source, t.c.position, t.c.updated_at))
        }


def get_cursor(catalog: Catalog, source: str) -> str | None:
    """How far ``source`` is handled (None before its first poll)."""
    t = scheduler_cursors
    with catalog.read() as conn:
        return conn.execute(sa.select(t.c.position).where(t.c.source == source)).scalar()


def set_cursor(conn: sa.Connection, source: str, position: str) -> None:
    """Inside a write transaction: move ``source``'s cursor."""
    t = scheduler_cursors
    now = utcnow()
    done = conn.execute(
        t.update().where(t.c.source == source).values(position=position, updated_at=now)
    )
    if not done.rowcount:
        conn.execute(t.insert().values(source=source, position=position, updated_at=now))
