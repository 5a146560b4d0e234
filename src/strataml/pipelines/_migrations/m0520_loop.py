"""Pipelines: the closed loop's canary analyses."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.pipelines._tables import loop_runs
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[loop_runs], checkfirst=True)
