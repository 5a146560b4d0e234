"""Pipelines: the scheduler's ticks, cursors and leases."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.pipelines import _tables as t
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(
        conn, tables=[t.scheduler_ticks, t.scheduler_cursors, t.scheduler_leases], checkfirst=True
    )
