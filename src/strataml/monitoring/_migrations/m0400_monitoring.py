"""Monitoring: stored profiles, per-minute window profiles of live predictions, log offsets."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.monitoring import _tables as t
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(
        conn, tables=[t.monitor_profiles, t.monitor_windows, t.monitor_log_offsets], checkfirst=True
    )
