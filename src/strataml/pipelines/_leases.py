"""Leases: which scheduler process is in charge of which schedule or trigger.

A lease is a row in ``scheduler_leases`` with a holder and an expiry that the holder
renews with heartbeats. A holder that stops heartbeating (killed, hung, cut off) loses
its leases when they expire; a holder on this host whose process is gone loses them at
once. Every scheduler also heartbeats a ``member:`` row, so the others know how many
share the work.

- **PostgreSQL**: one lease per schedule or trigger (``source:<id>``). A scheduler claims
  free or expired ones with ``SELECT … FOR UPDATE SKIP LOCKED`` (two schedulers never wait
  on or take the same row), up to its fair share of the live schedulers, and gives back
  surplus idle ones when more schedulers join.
- **SQLite**: a single-writer lease row (``writer``): one scheduler is in charge of every
  schedule and trigger; the others wait as standbys and take over when it expires.

Holder names carry the host and process id only to recognise dead local holders; run
keys never depend on them.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from strataml.pipelines._tables import scheduler_leases
from strataml.spine import Catalog, process_alive, utcnow

WRITER = "writer"
MEMBER = "member:"
SOURCE = "source:"


class LeaseLost(Exception):
    """This scheduler no longer holds the lease it was about to act under."""


def new_holder() -> str:
    """A holder name for this process: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_gone(holder: str | None) -> bool:
    """Whether ``holder`` is a process on this host that no longer exists."""
    if not holder:
        return True
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not process_alive(pid)


def free(row: Any, now: dt.datetime) -> bool:
    """Whether a lease row may be taken: no holder, expired, or its holder is gone."""
    expires = row["expires_at"]
    return row["holder"] is None or expires is None or expires <= now or holder_gone(row["holder"])


class Leases:
    """This scheduler's leases in one catalog (see the module docstring)."""

    def __init__(self, catalog: Catalog, holder: str, ttl_s: float) -> None:
        self.catalog = catalog
        self.holder = holder
        self.ttl = dt.timedelta(seconds=ttl_s)
        self.per_source = catalog.dialect == "postgresql"
        self.since: dict[str, dt.datetime] = {}
        """Sources held now, and since when (this holder took them)."""
        # one lease transaction at a time in this process (the heartbeat thread and the loop
        # would otherwise lock this holder's rows in different orders)
        self._mutex = threading.Lock()

    def lease_name(self, source: str) -> str:
        """The lease row guarding ``source``."""
        return SOURCE + source if self.per_source else WRITER

    def _upsert(self, conn: sa.Connection, name: str, values: dict[str, Any]) -> None:
        t = scheduler_leases
        if conn.execute(sa.select(t.c.name).where(t.c.name == name)).first() is None:
            if self.per_source:
                from sqlalchemy.dialects.postgresql import insert

                conn.execute(insert(t).values(name=name, **values).on_conflict_do_nothing())
            else:
                conn.execute(t.insert().values(name=name, **values))
        else:
            conn.execute(t.update().where(t.c.name == name).values(**values))

    def beat(self, sources: Iterable[str], busy: Iterable[str] = ()) -> dict[str, dt.datetime]:
        """Renew what this scheduler holds, take what is free (its fair share), and give
        back surplus idle sources; returns the sources held and since when."""
        sources = sorted(set(sources))
        now = utcnow()
        expires = now + self.ttl
        t = scheduler_leases
        with self._mutex, self.catalog.write() as conn:
            self._upsert(
                conn,
                MEMBER + self.holder,
                {
                    "holder": self.holder,
                    "heartbeat_at": now,
                    "expires_at": expires,
                    "info": {"pid": os.getpid()},
                    "acquired_at": now,
                },
            )
            if self.per_source:
                held = self._beat_rows(conn, sources, set(busy), now, expires)
            else:
                held = self._beat_writer(conn, sources, now, expires)
            # forget members long gone (their rows would otherwise pile up)
            conn.execute(
                t.delete().where(
                    t.c.name.startswith(MEMBER), t.c.expires_at < now - dt.timedelta(days=1)
                )
            )
        self.since = held
        return held

    def _beat_writer(
        self, conn: sa.Connection, sources: list[str], now: dt.datetime, expires: dt.datetime
    ) -> dict[str, dt.datetime]:
        t = scheduler_leases
        row = conn.execute(sa.select(t).where(t.c.name == WRITER)).mappings().first()
        if row is not None and row["holder"] == self.holder:
            since = row["acquired_at"] or now
            conn.execute(
                t.update().where(t.c.name == WRITER).values(heartbeat_at=now, expires_at=expires)
            )
        elif row is None or free(row, now):
            since = now
            self._upsert(
                conn,
                WRITER,
                {
                    "holder": self.holder,
                    "acquired_at": now,
                    "heartbeat_at": now,
                    "expires_at": expires,
                    "info": {},
                },
            )
        else:
            return {}
        return dict.fromkeys(sources, since)

    def _beat_rows(
        self,
        conn: sa.Connection,
        sources: list[str],
        busy: set[str],
        now: dt.datetime,
        expires: dt.datetime,
    ) -> dict[str, dt.datetime]:
        from sqlalchemy.dialects.postgresql import insert

        t = scheduler_leases
        names = [SOURCE + s for s in sources]
        if names:
            conn.execute(
                insert(t)
                .values([{"name": n, "holder": None, "info": {}} for n in names])
                .on_conflict_do_nothing(index_elements=["name"])
            )
        members = conn.execute(
            sa.select(sa.func.count()).where(t.c.name.startswith(MEMBER), t.c.expires_at > now)
        ).scalar_one()
        share = math.ceil(len(names) / max(1, int(members)))
        rows = conn.execute(sa.select(t).where(t.c.name.in_(names))).mappings().all()
        held: dict[str, dt.datetime] = {}
        mine = [r for r in rows if r["holder"] == self.holder]
        surplus = len(mine) - share
        for r in mine:
            source = r["name"][len(SOURCE) :]
            mine_now = (t.c.name == r["name"]) & (t.c.holder == self.holder)
            if surplus > 0 and source not in busy:  # give back one idle source per beat
                conn.execute(t.update().where(mine_now).values(holder=None, expires_at=None))
                surplus = 0
                continue
            renewed = conn.execute(
                t.update().where(mine_now).values(heartbeat_at=now, expires_at=expires)
            )
            if renewed.rowcount:
                held[source] = r["acquired_at"] or now
        room = share - len(held)
        candidates = [r["name"] for r in rows if r["holder"] != self.holder and free(r, now)]
        if room <= 0 or not candidates:
            return held
        # lock the free rows no other scheduler is looking at, and check them again
        locked = (
            conn.execute(
                sa.select(t).where(t.c.name.in_(candidates)).with_for_update(skip_locked=True)
            )
            .mappings()
            .all()
        )
        for r in locked:
            if room <= 0:
                break
            if not free(r, now):
                continue
            conn.execute(
                t.update()
                .where(t.c.name == r["name"])
                .values(holder=self.holder, acquired_at=now, heartbeat_at=now, expires_at=expires)
            )
            held[r["name"][len(SOURCE) :]] = now
            room -= 1
        return held

    def renew(self) -> None:
        """Extend every lease this scheduler holds (its heartbeat between passes)."""
        t = scheduler_leases
        now = utcnow()
        with self._mutex, self.catalog.write() as conn:
            conn.execute(
                t.update()
                .where(t.c.holder == self.holder, t.c.expires_at > now)
                .values(heartbeat_at=now, expires_at=now + self.ttl)
            )

    def alive(self) -> set[str]:
        """The holders of the schedulers alive now (heartbeating, and not gone from this host)."""
        t = scheduler_leases
        now = utcnow()
        with self.catalog.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.name.startswith(MEMBER))).mappings().all()
        return {r["holder"] for r in rows if not free(r, now)}

    def check(self, conn: sa.Connection, source: str) -> None:
        """Inside a write transaction: raise :class:`LeaseLost` unless this scheduler still
        holds ``source`` (on PostgreSQL the lease row stays locked until the commit)."""
        t = scheduler_leases
        q = sa.select(t.c.holder, t.c.expires_at).where(t.c.name == self.lease_name(source))
        if self.per_source:
            q = q.with_for_update()
        row = conn.execute(q).first()
        expires = row[1] if row is not None else None
        if row is None or row[0] != self.holder or expires is None or expires <= utcnow():
            self.since.pop(source, None)
            raise LeaseLost(source)

    def release(self) -> None:
        """Give back every lease (a clean stop: a standby takes over at once)."""
        t = scheduler_leases
        with self._mutex, self.catalog.write() as conn:
            conn.execute(
                t.update()
                .where(t.c.holder == self.holder, ~t.c.name.startswith(MEMBER))
                .values(holder=None, expires_at=None)
            )
            conn.execute(t.delete().where(t.c.name == MEMBER + self.holder))
        self.since = {}
