"""Pipelines: runs, their steps, attempts and log lines, and the step cache."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine.pipeline_tables import TABLES
from strataml.spine.schema import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=TABLES, checkfirst=True)
