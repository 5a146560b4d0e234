"""What the scheduler is doing: schedules and their next ticks, triggers and their
cursors, the leases and who holds them, the schedulers alive, and the last ticks' runs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from strataml.pipelines import _ticks as ticks
from strataml.pipelines._leases import MEMBER, SOURCE, WRITER, free
from strataml.pipelines._scheduler import _parse_iso, declared_sources
from strataml.pipelines._tables import scheduler_leases
from strataml.spine import utcnow

if TYPE_CHECKING:
    from strataml.spine import Workspace


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()


def scheduler_status(workspace: Workspace, *, last: int = 20) -> dict[str, Any]:
    """The scheduler's state as a JSON-ready dictionary (``strata scheduler status``)."""
    now = utcnow()
    sources = declared_sources(workspace)
    positions = ticks.cursors(workspace.catalog)
    with workspace.catalog.read() as conn:
        rows = (
            conn.execute(sa.select(scheduler_leases).order_by(scheduler_leases.c.name))
            .mappings()
            .all()
        )
    leases = {r["name"]: r for r in rows}
    writer = leases.get(WRITER)
    out: dict[str, Any] = {
        "schedules": [],
        "triggers": [],
        "leases": [],
        "schedulers": [],
        "last_runs": [],
    }
    for s in sources:
        lease = leases.get(SOURCE + s.id) or writer
        held_by = lease["holder"] if lease is not None and not free(lease, now) else None
        cursor = positions.get(s.id)
        entry: dict[str, Any] = {
            "pipeline": s.pipeline,
            "source": s.id,
            "held_by": held_by,
            "cursor": cursor[0] if cursor else None,
            "cursor_moved_at": _iso(cursor[1]) if cursor else None,
        }
        if s.schedule is not None:
            start = max(_parse_iso(cursor[0]), now) if cursor else now
            entry |= {
                "schedule": s.schedule.describe(),
                **s.schedule.to_dict(),
                "next_tick": _iso(s.schedule.next_after(start)),
            }
            out["schedules"].append(entry)
        elif s.trigger is not None:
            out["triggers"].append(entry | {"trigger": s.trigger.describe(), **s.trigger.to_dict()})
    for r in rows:
        item = {
            "name": r["name"],
            "holder": r["holder"],
            "alive": not free(r, now),
            "acquired_at": _iso(r["acquired_at"]),
            "heartbeat_at": _iso(r["heartbeat_at"]),
            "expires_at": _iso(r["expires_at"]),
        }
        (out["schedulers"] if r["name"].startswith(MEMBER) else out["leases"]).append(item)
    out["schedulers"] = [s for s in out["schedulers"] if s["alive"]]
    out["last_runs"] = [t.to_dict() for t in ticks.recent(workspace.catalog, last)]
    return out
