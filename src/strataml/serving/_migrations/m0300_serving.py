"""Serving: API keys (stored hashed) and deployments (traffic configuration)."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.serving._tables import api_keys, deployments
from strataml.spine import metadata


def upgrade(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[api_keys, deployments], checkfirst=True)
