"""Pipelines: the closed loop's canary analyses."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.loop_tables import loop_runs
from strataml.spine.schema import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[loop_runs], checkfirst=True)
