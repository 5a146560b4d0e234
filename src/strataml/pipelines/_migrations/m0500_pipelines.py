"""Pipelines: runs, their steps, attempts and log lines, and the step cache."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.pipelines._tables import TABLES
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=TABLES, checkfirst=True)
