"""The catalog's shared :data:`metadata` and the spine's own tables.

Every catalog table is a SQLAlchemy Core table on :data:`metadata`, defined by the layer
that owns it (``strataml.<layer>._tables``) and created by that layer's migrations (see
:mod:`strataml.spine.migrations`). The spine owns the record of applied migrations and
the event log. JSON columns hold small documents (schemas, statistics, lineage), never
row data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A point in time, stored in UTC and always read back aware (UTC).

    SQLite keeps no offset, so its timestamps come back naive; PostgreSQL's come back in
    the session's zone. Every catalog time column has this type, so code reading the
    catalog compares and subtracts aware times without converting them itself. A naive
    time written is taken to be UTC already, like every time in strataml.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

# --- spine -------------------------------------------------------------------------

migrations_table = sa.Table(
    "strata_migrations",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("applied_at", UtcDateTime(), nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", UtcDateTime(), nullable=False, index=True),
    sa.Column("kind", sa.String(128), nullable=False, index=True),
    sa.Column("subject", sa.String(512), nullable=False, index=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
)
