"""The append-only event log: every state change writes one event.

Events are written in the same transaction as the change they describe, so the log
and the state can never disagree. The timeline, the audit trail and triggers read it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from strataml.spine import _schema as schema
from strataml.spine._catalog import Catalog, utcnow


def current_actor() -> str:
    """Who is acting: ``STRATA_ACTOR`` or the operating-system user."""
    actor = os.environ.get("STRATA_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no user database in some containers
        return "unknown"


@dataclass(frozen=True)
class Event:
    """One recorded state change."""

    id: int
    ts: dt.datetime
    kind: str
    subject: str
    actor: str
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "id": self.id,
            "ts": self.ts.isoformat(),
            "kind": self.kind,
            "subject": self.subject,
            "actor": self.actor,
            "payload": self.payload,
        }


def append_event(
    conn: sa.Connection, kind: str, subject: str, payload: dict[str, Any] | None = None, actor: str | None = None
) -> int:
    """Append an event inside the caller's write transaction; returns its id."""
    result = conn.execute(
        schema.events.insert().values(
            ts=utcnow(), kind=kind, subject=subject, actor=actor or current_actor(), payload=payload or {}
        )
    )
    pk = result.inserted_primary_key
    return int(pk[0]) if pk else 0


def list_events(
    catalog: Catalog,
    *,
    kind: str | None = None,
    subject: str | None = None,
    after_id: int | None = None,
    limit: int | None = 100,
) -> list[Event]:
    """Events in the order they happened, optionally filtered.

    ``kind`` matches a prefix (``dataset.`` matches every dataset event).
    """
    t = schema.events
    q = sa.select(t).order_by(t.c.id)
    if kind:
        q = q.where(t.c.kind.startswith(kind, autoescape=True))
    if subject:
        q = q.where(t.c.subject == subject)
    if after_id is not None:
        q = q.where(t.c.id > after_id)
    if limit is not None:
        # newest `limit`, still returned oldest first
        sub = q.order_by(None).order_by(t.c.id.desc()).limit(limit).subquery()
        q = sa.select(sub).order_by(sub.c.id)
    with catalog.read() as conn:
        rows = conn.execute(q).mappings().all()
    out = []
    for r in rows:
        out.append(Event(r["id"], r["ts"], r["kind"], r["subject"], r["actor"], dict(r["payload"])))
    return out
