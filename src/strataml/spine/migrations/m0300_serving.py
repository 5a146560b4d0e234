"""Serving: API keys (stored hashed) and deployments (traffic configuration)."""

from __future__ import annotations

import sqlalchemy as sa

from strataml.spine import schema


def upgrade(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.api_keys, schema.deployments], checkfirst=True)
