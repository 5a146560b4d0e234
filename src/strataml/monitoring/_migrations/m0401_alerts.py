"""Monitoring: the state of each alert rule."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.monitoring._tables import monitor_alerts
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[monitor_alerts], checkfirst=True)
